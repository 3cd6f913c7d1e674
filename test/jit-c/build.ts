// Builds workload.c with the system gcc into a flat image for the CPU engine (text at 0x400000,
// then rodata, data and bss), cached by source hash. Null where it cannot run.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = fileURLToPath(new URL('./workload.c', import.meta.url));
export const LOAD = 0x40_0000;

export interface Image {
  bytes: Uint8Array;
  entry: number;
  /** Addresses of the workload's result symbols. */
  symbols: Map<string, number>;
}

/** Why the workload cannot be built here, or null if it can. */
export function unsupportedReason(): string | null {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'needs Linux on x86-64';
  try {
    execFileSync(process.env.CC ?? 'gcc', ['--version'], { stdio: 'ignore' });
    execFileSync('objcopy', ['--version'], { stdio: 'ignore' });
    execFileSync('nm', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'needs gcc, objcopy and nm';
  }
  return null;
}

export function buildWorkload(): Image {
  const source = readFileSync(SOURCE);
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'svsm-ts-jit-c');
  mkdirSync(dir, { recursive: true });
  const elf = join(dir, `workload-${hash}.elf`);
  if (!existsSync(elf)) {
    const tmp = `${elf}.${process.pid}.tmp`;
    // General registers only (no SSE), no libc, no stack protector, absolute addresses.
    execFileSync(
      process.env.CC ?? 'gcc',
      [
        '-O2',
        '-ffreestanding',
        '-fno-pic',
        '-no-pie',
        '-fno-asynchronous-unwind-tables',
        '-mno-red-zone',
        '-mgeneral-regs-only',
        '-fno-stack-protector',
        '-fno-tree-loop-distribute-patterns',
        '-nostdlib',
        '-static',
        `-Wl,-Ttext=0x${LOAD.toString(16)}`,
        '-Wl,--build-id=none',
        '-Wl,-e,_start',
        '-o',
        tmp,
        SOURCE,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    renameSync(tmp, elf);
  }
  const bin = `${elf}.bin`;
  if (!existsSync(bin)) execFileSync('objcopy', ['-O', 'binary', elf, bin]);
  const symbols = new Map<string, number>();
  for (const line of execFileSync('nm', [elf], { encoding: 'utf8' }).split('\n')) {
    const [addr, , name] = line.trim().split(' ');
    if (addr !== undefined && name !== undefined) symbols.set(name, parseInt(addr, 16));
  }
  return { bytes: readFileSync(bin), entry: symbols.get('_start')!, symbols };
}
