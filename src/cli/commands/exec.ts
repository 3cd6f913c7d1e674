// `svsm exec`: runs a freestanding x86 program on the simulated CPU alone (src/hw/bare-machine.ts)
// - no firmware, hypervisor or SVSM - and prints what it writes to the debug port, optionally with
// an instruction trace. For trying guest code, and for seeing exactly what the CPU model does.

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { BareMachine, type RunResult } from '../../hw/bare-machine.js';
import { ElfError } from '../../hw/elf-loader.js';
import {
  type Cpu,
  formatInsn,
  InstructionTracer,
  MODE_64,
  regName,
  vectorName,
} from '../../hw/cpu/index.js';
import { decode } from '../../hw/cpu/decoder.js';
import { Insn } from '../../hw/cpu/insn.js';
import { type CliIo, EXIT, UserError } from '../io.js';

const HELP_AFTER = `
FILE is a static x86-64 ELF executable (ET_EXEC, linked at physical = virtual addresses below
16 MiB), started at its entry point at CPL 0 in 64-bit mode with RSP = 0x7ff0 and flat segments;
or, with --rom, a flat binary of at most 64 KiB placed to end at 1 MiB and started in real mode
at F000:FFF0. The machine has 16 MiB of memory and nothing else: the program prints by writing
bytes to I/O port 0xE9 (shown on standard output as it runs) or into a mailbox in memory (a
u32 length at 0x8000, a u32 exit code at 0x8004, the bytes from 0x8010; shown at the end), and
stops with HLT.
Exit status: the program's exit code from the mailbox (0 if it set none) when it halts; 1 when it
stops on an exception, a triple fault or the instruction limit; 2 for a bad command line or file.
Examples:
  svsm exec hello.elf
  svsm exec hello.elf --trace --trace-registers --max-instructions 200
  svsm exec big.elf --trace --trace-from 1_000_000 --max-instructions 1_000_100
  svsm exec boot.rom --rom --trace --trace-file boot.trace`;

export interface ExecOptions {
  readonly rom?: boolean;
  readonly paging?: boolean;
  readonly events?: boolean;
  readonly jit: boolean;
  readonly maxInstructions: string;
  readonly trace?: boolean;
  readonly traceRegisters?: boolean;
  readonly traceFile?: string;
  readonly traceFrom?: string;
}

/** Instructions per run slice: output is shown between slices. */
const SLICE = 10_000_000;

/** A count option: a whole number of at least `min` (underscores allowed, as in 1_000_000). */
function parseCount(name: string, text: string, min: number): number {
  const clean = text.replace(/_/g, '');
  if (!/^[0-9]+$/.test(clean) || Number(clean) < min || !Number.isSafeInteger(Number(clean))) {
    const what = min > 0 ? 'a positive whole number' : 'a whole number';
    throw new UserError(`${name} must be ${what}, got "${text}"`);
  }
  return Number(clean);
}

function readProgram(file: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function makeMachine(file: string, code: Uint8Array, opts: ExecOptions): BareMachine {
  // While tracing the interpreter runs every instruction itself; the JIT serves the rest.
  const jit = opts.jit;
  if (opts.rom === true) {
    if (opts.paging === true) throw new UserError('--paging is for ELF programs, not --rom');
    if (code.length > 0x10000) {
      throw new UserError(`${file} is ${code.length} bytes; a --rom image is at most 64 KiB`);
    }
    return BareMachine.realMode(code, { jit });
  }
  const isElf = code[0] === 0x7f && code[1] === 0x45 && code[2] === 0x4c && code[3] === 0x46;
  if (!isElf) throw new UserError(`${file} is not an ELF file (give --rom for a flat ROM image)`);
  try {
    return BareMachine.longMode(code, opts.paging === true ? 'paging' : 'flat', {
      deliverEvents: opts.events === true,
      jit,
    });
  } catch (e) {
    if (e instanceof ElfError) throw new UserError(`${file}: ${e.message}`);
    throw e;
  }
}

const cr2 = (c: Cpu): bigint => (BigInt(c.cr2Hi >>> 0) << 32n) | BigInt(c.cr2Lo >>> 0);

/** The instruction at RIP as text, for the report of a stop (empty if it cannot be read). */
function insnAtRip(c: Cpu): string {
  try {
    // Outside 64-bit mode the fetch address is CS.base + IP.
    const legacy = c.mode !== MODE_64;
    const pa = legacy
      ? c.fetchAddress((c.segBase[2]! + c.r[32]!) | 0, 0)
      : c.fetchAddress(c.r[32]!, c.r[33]!);
    const i = new Insn();
    if (decode(c.mem, pa, Math.min(pa + 15, c.mem.length), i, c.mode) <= 0) return '';
    return formatInsn(i, c.rip);
  } catch {
    return '';
  }
}

/** The registers, four to a line, for the report of a stop. */
function registerDump(c: Cpu): string[] {
  const names = Array.from({ length: 16 }, (_, k) => regName(k, 8));
  const cell = (n: string, v: bigint): string =>
    `${n.padStart(6)}=${v.toString(16).padStart(16, '0')}`;
  const cells = names.map((n, k) => cell(n, c.getReg64(k)));
  cells.push(cell('rip', c.rip), cell('rflags', BigInt(c.rflags)));
  cells.push(cell('cr0', BigInt(c.cr0 >>> 0)), cell('cr3', c.cr3));
  const lines: string[] = [];
  for (let k = 0; k < cells.length; k += 4) lines.push(cells.slice(k, k + 4).join(' '));
  return lines;
}

/** A trace written to a file in large pieces (a trace can have billions of lines). */
class TraceFile {
  private readonly fd: number;
  private chunk: string[] = [];
  private size = 0;
  constructor(private readonly path: string) {
    try {
      this.fd = openSync(path, 'w');
    } catch (e) {
      throw new UserError(`cannot write ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  write(line: string): void {
    this.chunk.push(line);
    this.size += line.length + 1;
    if (this.size >= 1 << 20) this.flush();
  }
  private flush(): void {
    if (this.chunk.length === 0) return;
    writeSync(this.fd, this.chunk.join('\n') + '\n');
    this.chunk = [];
    this.size = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** Splits the debug-port byte stream into lines for `io.out` (which ends each call with one). */
class LineBuffer {
  private partial = '';
  constructor(private readonly out: (line: string) => void) {}
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const text = this.partial + Buffer.from(bytes).toString('latin1');
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    for (const l of lines) this.out(l);
  }
  end(): void {
    if (this.partial !== '') this.out(this.partial);
    this.partial = '';
  }
}

function describeStop(r: RunResult, c: Cpu, total: number, limit: number): string[] {
  switch (r.stop) {
    case 'exception': {
      const e = r.exception!;
      const name = vectorName(e.vector);
      const at = insnAtRip(c);
      return [
        `exception ${name} (vector ${e.vector}, error code 0x${e.errorCode.toString(16)}) at ` +
          `rip 0x${e.rip.toString(16)}${at !== '' ? `: ${at}` : ''}` +
          (e.vector === 14 ? `, cr2 0x${cr2(c).toString(16)}` : ''),
        ...registerDump(c),
      ];
    }
    case 'shutdown':
      return ['triple fault: the CPU shut down', ...registerDump(c)];
    case 'budget':
      return [
        `stopped at the instruction limit (${limit}) at rip 0x${c.rip.toString(16)}; ` +
          'raise --max-instructions to run longer',
      ];
    case 'hlt':
      return [];
    default:
      return [`stopped (interpreter code ${r.stopCode}) after ${total} instructions`];
  }
}

export function addExecCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('exec')
    .description(
      'run a freestanding x86 program (static ELF, or a real-mode ROM) on the simulated CPU ' +
        'alone, showing what it prints, optionally with an instruction trace',
    )
    .argument('<file>', 'the program: an ELF executable, or a flat ROM with --rom')
    .option('--rom', 'FILE is a flat real-mode ROM image (at most 64 KiB)')
    .option('--paging', 'run the ELF under 4-level identity page tables (page 0 unmapped)')
    .option('--events', "deliver exceptions through the program's IDT instead of stopping")
    .option('--no-jit', 'interpret every instruction (no compiled blocks)')
    .option('--max-instructions <n>', 'stop after this many instructions', '1000000000')
    .option('--trace', 'print every instruction executed (to standard error)')
    .option('--trace-registers', 'with --trace: the registers each instruction changed')
    .option('--trace-file <path>', 'with --trace: write the trace to this file instead')
    .option('--trace-from <n>', 'with --trace: run at full speed until instruction N, then trace')
    .addHelpText('after', HELP_AFTER)
    .action((file: string, opts: ExecOptions) => {
      const limit = parseCount('--max-instructions', opts.maxInstructions, 1);
      const traceOnly = [opts.traceRegisters, opts.traceFile, opts.traceFrom];
      if (traceOnly.some((o) => o !== undefined && o !== false) && opts.trace !== true) {
        throw new UserError('--trace-registers, --trace-file and --trace-from need --trace');
      }
      const traceFrom =
        opts.traceFrom !== undefined ? parseCount('--trace-from', opts.traceFrom, 0) : 0;
      const m = makeMachine(file, readProgram(file), opts);
      let traceFile: TraceFile | null = null;
      let tracer: InstructionTracer | null = null;
      if (opts.trace === true) {
        let write = (line: string): void => io.err(line);
        if (opts.traceFile !== undefined) {
          const f = new TraceFile(opts.traceFile);
          traceFile = f;
          write = (line) => f.write(line);
        }
        tracer = new InstructionTracer(write, { registers: opts.traceRegisters === true });
      }
      const out = new LineBuffer((l) => io.out(l));
      const start = process.hrtime.bigint();
      let total = 0;
      let r: RunResult;
      try {
        for (;;) {
          // Untraced (JIT and all) up to --trace-from, traced from there on.
          let until = limit;
          if (tracer !== null) {
            if (total >= traceFrom) {
              m.interp.setTracer(tracer);
              tracer = null;
            } else {
              until = Math.min(limit, traceFrom);
            }
          }
          r = m.run(Math.min(SLICE, until - total));
          total += r.instructions;
          out.push(m.takePortOutput());
          if (r.stop !== 'budget' || total >= limit) break;
        }
      } finally {
        // Whatever ends the run, the trace up to it is written out.
        m.interp.setTracer(null);
        traceFile?.close();
      }
      out.push(Buffer.from(m.mailbox().text, 'latin1'));
      out.end();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      for (const line of describeStop(r, m.cpu, total, limit)) io.err(line);
      const mips = seconds > 0 ? total / seconds / 1e6 : 0;
      io.err(
        `svsm exec: ${r.stop === 'hlt' ? 'halted' : 'stopped'} after ${total} instructions ` +
          `in ${seconds.toFixed(2)} s (${mips.toFixed(1)} MIPS)`,
      );
      if (r.stop !== 'hlt') {
        setExitCode(EXIT.FAILED);
        return;
      }
      const code = m.mailbox().exitCode ?? 0;
      if (code !== 0) io.err(`svsm exec: the program's exit code is ${code}`);
      setExitCode(code === 0 ? EXIT.OK : code & 0xff || EXIT.FAILED);
    });
}
