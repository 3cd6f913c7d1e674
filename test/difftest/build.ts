// Builds the native harness with the system gcc, once per source change, into a cache folder
// (so CI compiles it as part of the test run). Returns null where it cannot run: not Linux on
// x86-64, or no gcc.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./harness.c', import.meta.url));

/** Why the harness cannot run here, or null if it can. */
export function unsupportedReason(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return `difftest needs Linux on x86-64 (this is ${process.platform}/${process.arch})`;
  }
  try {
    execFileSync(process.env.CC ?? 'gcc', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'difftest needs gcc (set CC to another compiler)';
  }
  return null;
}

/** Path of the compiled harness, building it if its source changed. */
export function buildHarness(): string {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'svsm-ts-difftest');
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, `harness-${hash}`);
  if (!existsSync(exe)) {
    const tmp = `${exe}.${process.pid}.tmp`;
    execFileSync(process.env.CC ?? 'gcc', ['-O2', '-Wall', '-Wextra', '-o', tmp, SOURCE], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    renameSync(tmp, exe);
  }
  return exe;
}
