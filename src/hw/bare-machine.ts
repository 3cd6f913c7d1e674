// A bare x86 machine for one freestanding program: no firmware, no hypervisor, no SVSM. It loads
// a static ELF (64-bit C and assembly programs, run at CPL 0 in long mode) or a flat binary (a
// ROM that starts in real mode), sets the CPU up, runs under an instruction budget until HLT and
// collects what the program printed. `svsm exec` runs programs on it; the system tests
// (test/system, whose builder makes the programs with gcc and as) and bench/cpu.bench.ts use it,
// so the benchmark runs exactly what the tests check.
//
// Memory is 16 MiB of guest physical memory. Every page is assigned and validated in the RMP at
// VMPL0, so the machine is an SEV-SNP guest that owns all of its memory: accesses without paging
// are private, and page tables mark pages private with the C-bit (bit 51), as
// test/system/programs/sys.h says.
//
// Output: the mailbox (sys.h: u32 length, u32 exit code, bytes) and every byte written to the
// debug port 0xE9 through CpuPlatform.ioOut, concatenated in that order (a program uses one or the
// other, by SYS_OUTPUT_PORT_E9).

import {
  Cpu,
  type CpuPlatform,
  MINIMAL_PLATFORM,
  RSP,
  SEG_CS,
  SEG_DS,
  SEG_ES,
  SEG_FS,
  SEG_GS,
  SEG_SS,
} from './cpu/cpu.js';
import {
  Interpreter,
  STOP_BUDGET,
  STOP_EXCEPTION,
  STOP_HLT,
  STOP_SHUTDOWN,
} from './cpu/interpreter.js';
import type { JitOptions } from './cpu/jit/jit.js';
import { PagingTranslator } from './cpu/paging-translator.js';
import { FlatTranslator } from './cpu/translator.js';
import { MIN_MEMORY_BYTES, PhysicalMemory } from './memory.js';
import { makePte, PTE_FLAGS } from './mmu.js';
import { Rmp } from './rmp.js';
import { ELF_PF } from '../arch/index.js';
import { type ElfImage, loadElf } from './elf-loader.js';

export const MEMORY_BYTES = MIN_MEMORY_BYTES;
/** The C-bit position of this machine's page tables. */
export const C_BIT = 51;
/** The mailbox of programs/sys.h. */
export const MAILBOX = { len: 0x8000, exit: 0x8004, buf: 0x8010, cap: 0x7ff0 } as const;
export const DEBUG_PORT = 0xe9;
/** Identity page tables the runner builds for 64-bit programs run with paging. */
export const RUNNER_PML4 = 0x1000;
/** Initial RSP of 64-bit programs (crt0 sets its own; bare assembly may use this one). */
export const RUNNER_STACK_TOP = 0x7ff0;
/** Where a flat ROM is loaded: the top 64 KiB below 1 MiB, reset vector at 0xFFFF0. */
export const ROM_BASE = 0xf0000;
export const ROM_SIZE = 0x10000;

/** How a 64-bit program's addresses are translated. */
export type LongModeSetup = 'flat' | 'paging';

export interface MachineOptions {
  /**
   * Exceptions and INT n go through the guest's IDT (`Cpu.deliverFaults`). Off, the run stops at
   * the first exception, which is what a program without an IDT wants reported.
   */
  readonly deliverEvents?: boolean;
  /** The block JIT (on by default, as in the Interpreter); false runs the pure interpreter. */
  readonly jit?: boolean | JitOptions;
}

export interface RunResult {
  /** 'shutdown': a triple fault; 'other': a reason this runner does not name (see stopCode). */
  readonly stop: 'hlt' | 'budget' | 'exception' | 'shutdown' | 'other';
  /** The interpreter's STOP_* code. */
  readonly stopCode: number;
  /** Instructions retired by this run. */
  readonly instructions: number;
  /** The mailbox's bytes, then the debug port's, as Latin-1 text. */
  readonly output: string;
  /** What crt0 stored from main's return value, or null if the program never set it. */
  readonly exitCode: number | null;
  /** On 'exception': vector, error code and the faulting RIP. */
  readonly exception: { vector: number; errorCode: number; rip: bigint } | null;
}

/** Exit code before a program stores one. */
const NO_EXIT = 0xffff_ffff;

const STOPS: Record<number, RunResult['stop']> = {
  [STOP_HLT]: 'hlt',
  [STOP_BUDGET]: 'budget',
  [STOP_EXCEPTION]: 'exception',
  [STOP_SHUTDOWN]: 'shutdown',
};

export class BareMachine {
  readonly memory = new PhysicalMemory(MEMORY_BYTES);
  readonly rmp = new Rmp(this.memory.pageCount);
  readonly cpu: Cpu;
  readonly interp: Interpreter;
  /** The translator under paging (null for FlatTranslator machines). */
  readonly paging: PagingTranslator | null;
  /** Bytes written to port 0xE9. */
  readonly portOutput: number[] = [];
  /** The loaded ELF and its image (long-mode programs), for `restart`. */
  private elf: { file: Uint8Array; image: ElfImage } | null = null;

  private constructor(flat: boolean, options: MachineOptions) {
    const platform: CpuPlatform = {
      ...MINIMAL_PLATFORM,
      ioOut: (port, size, value) => {
        if (port === DEBUG_PORT && size === 1) this.portOutput.push(value & 0xff);
      },
    };
    for (let pfn = 0; pfn < this.memory.pageCount; pfn++) {
      this.rmp.firmwareAssign(pfn, { validated: true });
    }
    const bytes = this.memory.bytes;
    this.cpu = new Cpu(bytes, new FlatTranslator(0, MEMORY_BYTES), undefined, platform);
    this.cpu.deliverFaults = options.deliverEvents ?? false;
    if (flat) {
      this.paging = null;
    } else {
      this.paging = new PagingTranslator(this.memory, this.rmp, this.cpu, C_BIT, 48, this.cpu.code);
      this.paging.attach(() => this.cpu.flushTlb());
      this.cpu.translator = this.paging;
    }
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(MAILBOX.exit, NO_EXIT, true);
    this.interp = new Interpreter(this.cpu, { jit: options.jit ?? true });
  }

  /**
   * A 64-bit program (static ELF) at CPL 0 in long mode, at its entry point, with the CPU's
   * default flat 64-bit segments. 'flat': virtual = physical over all of memory (FlatTranslator).
   * 'paging': the same through 4-level page tables the runner builds at RUNNER_PML4 (CR3), with
   * page 0 not present so null pointers fault.
   */
  static longMode(
    elf: Uint8Array,
    setup: LongModeSetup,
    options: MachineOptions = {},
  ): BareMachine {
    const m = new BareMachine(setup === 'flat', options);
    const image = loadElf(elf, m.memory.bytes);
    m.elf = { file: elf, image };
    if (m.paging !== null) {
      m.buildIdentityTables();
      m.cpu.cr3 = BigInt(RUNNER_PML4) | (1n << BigInt(C_BIT));
      m.cpu.controlChanged();
    }
    m.enter();
    return m;
  }

  private enter(): void {
    this.cpu.rip = BigInt(this.elf!.image.entry);
    this.cpu.setReg64(RSP, BigInt(RUNNER_STACK_TOP));
  }

  /**
   * Runs a long-mode program again from its entry point in the same machine: its writable
   * segments are reloaded, the mailbox and port output cleared; code pages and everything the CPU
   * cached about them stay (a guest running code it has run before). For programs that do not
   * change their control state (the C programs on the runner's page tables).
   */
  restart(): void {
    if (this.elf === null) throw new Error('restart needs a program loaded by longMode');
    const { file, image } = this.elf;
    const mem = this.memory.bytes;
    for (const seg of image.segments) {
      if ((seg.flags & ELF_PF.W) === 0) continue;
      mem.set(file.subarray(seg.offset, seg.offset + seg.filesz), seg.paddr);
      mem.fill(0, seg.paddr + seg.filesz, seg.paddr + seg.memsz);
      this.cpu.code.invalidate(seg.paddr, seg.memsz);
    }
    mem.fill(0, MAILBOX.len, MAILBOX.buf + MAILBOX.cap);
    new DataView(mem.buffer, mem.byteOffset).setUint32(MAILBOX.exit, NO_EXIT, true);
    this.portOutput.length = 0;
    this.enter();
  }

  /**
   * A flat ROM image of at most 64 KiB loaded to end at 1 MiB, started in real mode at a
   * reset-like state (APM vol. 2, 14.1.3): CS selector 0xF000 with base 0xF0000 and IP 0xFFF0 (the
   * reset vector, as after a BIOS's first far jump; the true reset base 0xFFFF0000 lies outside
   * this machine's memory), data segments 0 with 64 KiB limits, CR0 = 0x60000010, CR3 = CR4 = EFER
   * = 0, GDTR/IDTR base 0 limit 0xFFFF, RFLAGS = 2. Events are delivered (real-mode IVT, then the
   * program's IDT).
   */
  static realMode(rom: Uint8Array, options: { readonly jit?: boolean } = {}): BareMachine {
    if (rom.length > ROM_SIZE) throw new RangeError(`ROM of ${rom.length} bytes exceeds 64 KiB`);
    const m = new BareMachine(false, { ...options, deliverEvents: true });
    m.memory.bytes.set(rom, ROM_BASE + ROM_SIZE - rom.length);
    const c = m.cpu;
    c.cr0 = 0x6000_0010;
    c.cr3 = 0n;
    c.cr4 = 0;
    c.efer = 0;
    c.gdtrBase = 0n;
    c.gdtrLimit = 0xffff;
    c.idtrBase = 0n;
    c.idtrLimit = 0xffff;
    // Attributes: present, S, code execute/read accessed (0x9b) or data read/write accessed (0x93).
    c.setSegment(SEG_CS, 0xf000, BigInt(ROM_BASE), 0xffff, 0x9b);
    for (const s of [SEG_DS, SEG_ES, SEG_SS, SEG_FS, SEG_GS]) c.setSegment(s, 0, 0n, 0xffff, 0x93);
    c.controlChanged();
    c.rip = 0xfff0n;
    c.rflags = 0x2;
    return m;
  }

  /** PML4 -> one PDPT -> one PD: a 4 KiB table for the first 2 MiB (page 0 absent), then 2 MiB pages. */
  private buildIdentityTables(): void {
    const { P, RW, PS } = PTE_FLAGS;
    const view = new DataView(this.memory.bytes.buffer, this.memory.bytes.byteOffset);
    const w = (gpa: number, v: bigint): void => view.setBigUint64(gpa, v, true);
    const pdpt = RUNNER_PML4 + 0x1000;
    const pd = RUNNER_PML4 + 0x2000;
    const pt = RUNNER_PML4 + 0x3000;
    w(RUNNER_PML4, makePte(pdpt, P | RW, C_BIT));
    w(pdpt, makePte(pd, P | RW, C_BIT));
    w(pd, makePte(pt, P | RW, C_BIT));
    for (let i = 1; i < 512; i++) w(pt + 8 * i, makePte(i * 0x1000, P | RW, C_BIT));
    for (let i = 1; i < MEMORY_BYTES / 0x20_0000; i++) {
      w(pd + 8 * i, makePte(i * 0x20_0000, P | RW | PS, C_BIT));
    }
  }

  /** What the program left in the mailbox: its text (Latin-1) and exit code (null: none yet). */
  mailbox(): { text: string; exitCode: number | null } {
    const view = new DataView(this.memory.bytes.buffer, this.memory.bytes.byteOffset);
    // The length is the guest's word: never read past the buffer whatever it says.
    const len = Math.min(view.getUint32(MAILBOX.len, true), MAILBOX.cap);
    const text = Buffer.from(this.memory.bytes.subarray(MAILBOX.buf, MAILBOX.buf + len));
    const exit = view.getUint32(MAILBOX.exit, true);
    return { text: text.toString('latin1'), exitCode: exit === NO_EXIT ? null : exit };
  }

  /** The bytes written to port 0xE9 since the last call, taken out of `portOutput`. */
  takePortOutput(): Uint8Array {
    return Uint8Array.from(this.portOutput.splice(0));
  }

  /** Runs until HLT, an exception, a shutdown, another stop of the interpreter or `budget`. */
  run(budget: number): RunResult {
    const c = this.cpu;
    const before = c.instructions;
    const stop = this.interp.run(budget);
    const { text, exitCode } = this.mailbox();
    return {
      stop: STOPS[stop] ?? 'other',
      stopCode: stop,
      instructions: c.instructions - before,
      output: text + Buffer.from(this.portOutput).toString('latin1'),
      exitCode,
      exception:
        stop === STOP_EXCEPTION
          ? { vector: c.exVector, errorCode: c.exErrorCode, rip: c.rip }
          : null,
    };
  }
}
