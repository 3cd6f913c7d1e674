import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

/** Runs the layer check on a tree of files and returns its exit status and report. */
function cruise(files: Record<string, string>): { status: number | null; text: string } {
  const dir = mkdtempSync(join(tmpdir(), 'svsm-layers-'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext' } }),
  );
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const r = spawnSync(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'err'], {
    cwd: dir,
    encoding: 'utf8',
  });
  return { status: r.status, text: r.stdout + r.stderr };
}

describe('layer rules (ARCHITECTURE.md)', () => {
  it('pass on the project itself', () => {
    const r = spawnSync(DEPCRUISE, ['src', '--config', CONFIG, '--output-type', 'err'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
  });

  it('allow the imports the table permits', () => {
    const r = cruise({
      'src/arch/a.ts': 'export const A = 1;\n',
      'src/svsm/s.ts': "import { A } from '../arch/a.js';\nexport const S = A;\n",
      'src/host/h.ts':
        "import { A } from '../arch/a.js';\nimport { I } from '../igvm/i.js';\nexport const H = A + I;\n",
      'src/igvm/i.ts': "import { A } from '../arch/a.js';\nexport const I = A;\n",
      'src/cli/c.ts':
        "import { H } from '../host/h.js';\nimport { S } from '../svsm/s.js';\nexport const C = H + S;\n",
    });
    expect(r.text).not.toMatch(/error/i);
    expect(r.status).toBe(0);
  });

  it('report the SVSM importing host code', () => {
    const r = cruise({
      'src/host/h.ts': 'export const H = 1;\n',
      'src/svsm/s.ts': "import { H } from '../host/h.js';\nexport const S = H;\n",
    });
    expect(r.status).not.toBe(0);
    expect(r.text).toContain('layer-svsm');
    expect(r.text).toContain('src/svsm/s.ts');
  });

  it('report src/arch importing anything, and the guest importing the host', () => {
    const r = cruise({
      'src/hw/m.ts': 'export const M = 1;\n',
      'src/host/h.ts': 'export const H = 1;\n',
      'src/arch/a.ts': "import { M } from '../hw/m.js';\nexport const A = M;\n",
      'src/guest/g.ts': "import { H } from '../host/h.js';\nexport const G = H;\n",
    });
    expect(r.status).not.toBe(0);
    expect(r.text).toContain('layer-arch');
    expect(r.text).toContain('layer-guest');
  });

  it('report the SVSM using a Node built-in', () => {
    const r = cruise({
      'src/svsm/s.ts': "import { readFileSync } from 'node:fs';\nexport const S = readFileSync;\n",
    });
    expect(r.status).not.toBe(0);
    expect(r.text).toContain('svsm-is-self-contained');
  });
});
