// Builds the system-test programs (test/system/programs) with the system gcc and GNU as, once per
// source change, into a cache folder, like the difftest harness (test/difftest/build.ts): the test
// set-up and `npm run bench` call `buildProgram`, so CI compiles them as part of the run. Shared by
// the tests and bench/cpu.bench.ts so both measure the same binary.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROGRAMS = fileURLToPath(new URL('./programs/', import.meta.url));

/**
 * Flags of every C file. gcc may use SSE2 (the x86-64 baseline; the SIMD work is on main), so the
 * workload exercises it too. No loop-to-memcpy rewriting: lib.c defines memcpy with a loop.
 */
export const CFLAGS = [
  '-O2',
  '-std=gnu11',
  '-ffreestanding',
  '-nostdlib',
  '-fno-pic',
  '-fno-pie',
  '-mno-red-zone',
  '-fno-stack-protector',
  '-fcf-protection=none',
  '-fno-asynchronous-unwind-tables',
  '-fno-tree-loop-distribute-patterns',
  '-Wall',
  '-Wextra',
  '-Werror',
];

/** One program: its sources (in link order, the entry first), linker script and output form. */
export interface ProgramSpec {
  readonly sources: readonly string[];
  readonly linkerScript: string;
  /** 'elf': the static ELF; 'flat': its loadable bytes from the lowest address (objcopy). */
  readonly format: 'elf' | 'flat';
}

/** The programs, by name. */
export const PROGRAM_SPECS = {
  workload: {
    sources: ['crt0.S', 'workload.c', 'lib.c', 'sha256.c'],
    linkerScript: 'c64.ld',
    format: 'elf',
  },
  /** Real mode at the reset vector -> protected mode -> long mode (a flat 64 KiB ROM). */
  modes: { sources: ['modes.S', 'lib64.S'], linkerScript: 'rom.ld', format: 'flat' },
  /** IDT, #PF handler that maps the page and returns. */
  pf: { sources: ['kernel64.S', 'pf.S', 'lib64.S'], linkerScript: 'c64.ld', format: 'elf' },
  /** INT n, INT3 and #UD through interrupt and trap gates. */
  interrupts: {
    sources: ['kernel64.S', 'interrupts.S', 'lib64.S'],
    linkerScript: 'c64.ld',
    format: 'elf',
  },
  /** SYSCALL/SYSRET to a ring-3 function and back. */
  syscall: {
    sources: ['kernel64.S', 'syscall.S', 'lib64.S'],
    linkerScript: 'c64.ld',
    format: 'elf',
  },
} as const satisfies Record<string, ProgramSpec>;

export type ProgramName = keyof typeof PROGRAM_SPECS;

/** A readable reason when the toolchain is missing: the programs cannot be built without it. */
function checkToolchain(cc: string): void {
  for (const [tool, args] of [
    [cc, ['--version']],
    [cc, ['-print-prog-name=as']],
    ['objcopy', ['--version']],
  ] as const) {
    try {
      execFileSync(tool, args, { stdio: 'ignore' });
    } catch {
      throw new Error(
        `system tests build their programs with gcc, GNU as and objcopy (binutils): '${tool}' ` +
          `did not run. Install gcc and binutils, or set CC to an x86-64 gcc.`,
      );
    }
  }
}

/** Where cached builds live. */
export function cacheDir(): string {
  return join(tmpdir(), 'svsm-ts-system');
}

/**
 * The program `name` built from its current sources: the bytes of the ELF or flat binary. Builds
 * into the cache when no build of exactly these sources, headers, script and flags exists.
 */
export function buildProgram(name: ProgramName): Uint8Array {
  return readFileSync(buildProgramFile(name));
}

/** Path of the built program (see `buildProgram`). */
export function buildProgramFile(name: ProgramName): string {
  const spec: ProgramSpec = PROGRAM_SPECS[name];
  const cc = process.env.CC ?? 'gcc';
  const headers = readdirSync(PROGRAMS).filter((f) => f.endsWith('.h') || f.endsWith('.inc'));
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ cc, CFLAGS, spec }));
  for (const f of [...spec.sources, spec.linkerScript, ...headers.sort()]) {
    hash.update(f).update(readFileSync(join(PROGRAMS, f)));
  }
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  const out = join(
    dir,
    `${name}-${hash.digest('hex').slice(0, 16)}.${spec.format === 'elf' ? 'elf' : 'bin'}`,
  );
  if (existsSync(out)) return out;

  checkToolchain(cc);
  const work = `${out}.${process.pid}.d`;
  mkdirSync(work, { recursive: true });
  try {
    const objects = spec.sources.map((src) => {
      const obj = join(work, `${basename(src)}.o`);
      // .S goes through the C preprocessor and then GNU as (gcc drives both).
      const flags = src.endsWith('.S') ? ['-I', PROGRAMS] : [...CFLAGS, '-I', PROGRAMS];
      run(cc, [...flags, '-c', '-o', obj, join(PROGRAMS, src)]);
      return obj;
    });
    const elf = join(work, `${name}.elf`);
    run(cc, [
      '-nostdlib',
      '-static',
      '-no-pie',
      `-Wl,-T,${join(PROGRAMS, spec.linkerScript)}`,
      '-Wl,--build-id=none',
      '-Wl,-z,noexecstack',
      '-o',
      elf,
      ...objects,
    ]);
    let product = elf;
    if (spec.format === 'flat') {
      product = join(work, `${name}.bin`);
      run('objcopy', ['-O', 'binary', elf, product]);
    }
    renameSync(product, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

function run(tool: string, args: string[]): void {
  try {
    execFileSync(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed:\n${err.stderr?.toString() ?? err.message}`);
  }
}
