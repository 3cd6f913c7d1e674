// Bundles the SVSM (src/svsm/main.ts) into the one JavaScript module the image builder places in
// measured memory: an IIFE that defines `svsm` with its entry point. `npm install` builds it into
// dist/svsm.js; running from source bundles on the fly.

import { buildSync } from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** The SVSM bundle built now from the sources (about 50 ms). */
export function bundleSvsmFromSource(): string {
  const r = buildSync({
    entryPoints: [root + 'src/svsm/main.ts'],
    bundle: true,
    format: 'iife',
    globalName: 'svsm',
    platform: 'neutral',
    target: 'es2022',
    write: false,
    legalComments: 'none',
    logLevel: 'silent',
    // Names stay readable in backtraces.
    keepNames: true,
    mainFields: ['module', 'main'],
  });
  const out = r.outputFiles[0];
  if (out === undefined) throw new Error('esbuild produced no SVSM bundle');
  return out.text;
}

/** The SVSM bundle: dist/svsm.js when `npm install` built it, else built from source. */
export function svsmBundle(): string {
  const built = root + 'dist/svsm.js';
  if (existsSync(built) && !existsSync(root + 'src/svsm/main.ts'))
    return readFileSync(built, 'utf8');
  return bundleSvsmFromSource();
}
