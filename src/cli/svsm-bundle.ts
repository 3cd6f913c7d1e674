// Bundles the SVSM (src/svsm/main.ts) into the one JavaScript module the image builder places in
// measured memory: an IIFE that defines `svsm` with its entry point. Its source map stays outside
// the image, with the tools, which use it to symbolize the SVSM's panic backtraces.

import { buildSync } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface SvsmBundle {
  readonly code: string;
  /** The source map (JSON) of `code`, with sources relative to the repository. */
  readonly map: string;
}

let cached: SvsmBundle | null = null;

/** The SVSM bundle, built from the sources once per process (about 50 ms). */
export function svsmBundleWithMap(): SvsmBundle {
  if (cached !== null) return cached;
  const r = buildSync({
    entryPoints: [root + 'src/svsm/main.ts'],
    outfile: root + 'svsm.js',
    bundle: true,
    format: 'iife',
    globalName: 'svsm',
    platform: 'neutral',
    target: 'es2022',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
    sourcemap: 'external',
    sourceRoot: '',
    // Names stay readable in backtraces.
    keepNames: true,
    mainFields: ['module', 'main'],
  });
  const code = r.outputFiles.find((f) => f.path.endsWith('.js'));
  const map = r.outputFiles.find((f) => f.path.endsWith('.map'));
  if (code === undefined || map === undefined) throw new Error('esbuild produced no SVSM bundle');
  // esbuild appends a sourceMappingURL comment that points nowhere inside guest memory.
  cached = { code: code.text.replace(/\/\/# sourceMappingURL=.*\n?$/, ''), map: map.text };
  return cached;
}

/** The SVSM bundle's code. */
export function svsmBundle(): string {
  return svsmBundleWithMap().code;
}
