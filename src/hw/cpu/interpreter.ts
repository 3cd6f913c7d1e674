// The run loop: fetch through the TLB (execute permission), look the physical address up in the
// decoded-instruction cache (decode on a miss), advance RIP, execute. Runs a budget of
// instructions per call with no allocation per instruction; stops early on HLT or an exception.
//
// JIT seam (jit/): after the fetch, `Jit.enter` runs the compiled block that starts at this
// instruction when there is one (it counts entries and compiles hot ones); otherwise the
// instruction is executed here. Blocks hang off the same cached Insn records, so the code-page
// protection that invalidates decodings drops them too.

import {
  type Cpu,
  MODE_64,
  MODE_PROT32,
  SEG_CS,
  TRAP_NONE,
  TRAP_SOFTWARE,
  VEC_DB,
  VEC_GP,
  VEC_NMI,
  VEC_UD,
  X86Fault,
} from './cpu.js';
import { decode, DECODE_MORE, DECODE_TOO_LONG, DECODE_UD } from './decoder.js';
import {
  deliverEvent,
  EVENT_EXCEPTION,
  EVENT_EXTERNAL,
  EVENT_NMI,
  EVENT_SOFTWARE,
  NO_ERROR_CODE,
  pushesErrorCode,
  ShutdownError,
} from './events.js';
import { execute } from './execute.js';
import { armDebug, debugTrap } from './debug.js';
import { IF, RF, TF } from './flags.js';
// The system instructions register their handlers with execute.ts.
import './system.js';
import { Insn } from './insn.js';
import { Jit, type JitOptions } from './jit/jit.js';
import type { InstructionTracer } from './trace.js';
import { ACCESS_EXEC } from './translator.js';

/** Why `run` returned. */
export const STOP_BUDGET = 0;
export const STOP_HLT = 1;
/**
 * An exception: `cpu.exVector`, `cpu.exErrorCode`, `cpu.exKind`; RIP at the faulting instruction,
 * or after it for traps (INT n, INT3, INTO, INT1: `exKind !== TRAP_NONE`). With
 * `cpu.deliverFaults` only events that cannot go through the IDT stop here (VEC_NPF).
 */
export const STOP_EXCEPTION = 2;
/** Event delivery ended in a triple fault (the vCPU shuts down). */
export const STOP_SHUTDOWN = 3;
/**
 * An instruction completed and asked for a #VMEXIT (VMGEXIT): `cpu.exitCode`; RIP after it.
 */
export const STOP_EXIT = 4;

/** Whether a pending NMI or interrupt could be taken now (HLT wakes for it). */
function interruptReady(c: Cpu): boolean {
  return (c.pendingNmi && !c.nmiBlocked) || (c.pendingIrq >= 0 && (c.flags.bits & IF) !== 0);
}

export class Interpreter {
  /** For instructions that cross a page: decoded into this record each time, never cached. */
  private readonly crossing = new Insn();
  private readonly bytes = new Uint8Array(15);
  /** The record 16/32-bit code is decoded into (never cached). */
  private readonly legacy = new Insn();

  /** The block compiler, or null when the JIT is off (then this is a pure interpreter). */
  readonly jit: Jit | null;
  /** Set: every instruction is interpreted and shown to it first (compiled blocks are skipped). */
  private tracer: InstructionTracer | null = null;

  constructor(
    readonly cpu: Cpu,
    options: { jit?: boolean | JitOptions } = {},
  ) {
    const j = options.jit ?? true;
    this.jit = j === false ? null : new Jit(j === true ? {} : j);
  }

  /** Attaches an instruction tracer (null detaches it), with the CPU's event hook. */
  setTracer(tracer: InstructionTracer | null): void {
    this.tracer?.flush(this.cpu);
    this.tracer = tracer;
    this.cpu.onEvent = tracer === null ? null : (v, err) => tracer.event(this.cpu, v, err);
  }

  /** Runs up to `budget` instructions. Returns a STOP_* reason. */
  run(budget: number): number {
    const c = this.cpu;
    let left = budget;
    c.exVector = -1;
    c.halted = false;
    c.exitCode = -1;
    const tracer = this.tracer;
    const jit = tracer === null ? this.jit : null;
    for (;;) {
      try {
        while (left > 0) {
          let i: Insn;
          let cached = true;
          if (c.attention !== 0) {
            const stop = this.boundary(c);
            if (stop >= 0) return stop;
            // 16/32-bit code keeps `attention` set: it is decoded each time, never cached.
            if (c.mode === MODE_64) {
              i = this.fetch(c);
              // While debugging (debug.ts) instructions run one at a time: no compiled blocks.
              cached = c.dbArmedAt < 0;
            } else {
              i = this.fetchLegacy(c);
              cached = false;
            }
          } else {
            i = this.fetch(c);
          }
          // Cold instructions only bump a counter here; Jit.enter compiles and runs blocks.
          if (cached && jit !== null && (i.block !== null || ++i.heat >= jit.threshold)) {
            const n = jit.enter(c, i, left);
            if (n > 0) {
              left -= n;
              continue;
            }
          }
          if (tracer !== null) tracer.step(c, i);
          execute(c, i);
          c.instructions++;
          left--;
          if (c.halted) {
            if (c.exitCode >= 0) return STOP_EXIT;
            if (!interruptReady(c)) return STOP_HLT;
            c.halted = false; // a deliverable interrupt wakes it at the next boundary
          }
        }
        return STOP_BUDGET;
      } catch (e) {
        if (e instanceof ShutdownError) return STOP_SHUTDOWN;
        if (!(e instanceof X86Fault)) throw e;
        const kind = c.exKind;
        if (kind === TRAP_NONE) {
          // Faults report the address of the faulting instruction.
          c.r[32] = c.startLo;
          c.r[33] = c.startHi;
        } else {
          c.instructions++;
        }
        const v = c.exVector;
        if (!c.deliverFaults || v > 255) return STOP_EXCEPTION;
        // Every delivery costs one unit of budget, so a fault loop still returns.
        left--;
        const soft = kind === TRAP_SOFTWARE;
        const err = !soft && pushesErrorCode(v) ? c.exErrorCode : NO_ERROR_CODE;
        // The RFLAGS image a fault pushes has RF set, so the restarted instruction does not hit
        // its instruction breakpoint again; #DB's has it clear (APM vol. 2, 8.2.2 "#DB").
        if (v === VEC_DB) c.flags.bits &= ~RF;
        else if (kind === TRAP_NONE) c.flags.bits |= RF;
        c.exKind = TRAP_NONE;
        c.exVector = -1;
        try {
          deliverEvent(c, v, err, soft ? EVENT_SOFTWARE : EVENT_EXCEPTION);
        } catch (e2) {
          if (e2 instanceof ShutdownError) return STOP_SHUTDOWN;
          throw e2;
        }
      }
    }
  }

  /**
   * Between instructions when `attention` is set: the #DB trap of the previous instruction, then
   * a pending NMI or (with IF, outside an STI/MOV SS shadow) interrupt is delivered; then the
   * next instruction's breakpoint check and single-step arming (debug.ts). Returns a STOP_* or -1.
   */
  private boundary(c: Cpu): number {
    // A fault raised here (an instruction breakpoint, a nested page fault while delivering an
    // event) belongs to the instruction about to start.
    c.startLo = c.r[32]!;
    c.startHi = c.r[33]!;
    if (c.dbArmedAt >= 0 && debugTrap(c)) return STOP_EXCEPTION;
    if (c.instructions !== c.shadowEnd) {
      if (c.pendingNmi && !c.nmiBlocked) {
        c.pendingNmi = false;
        deliverEvent(c, VEC_NMI, NO_ERROR_CODE, EVENT_NMI);
      } else if (c.pendingIrq >= 0 && (c.flags.bits & IF) !== 0) {
        const v = c.pendingIrq;
        c.pendingIrq = -1;
        c.onInterruptTaken?.(v);
        deliverEvent(c, v, NO_ERROR_CODE, EVENT_EXTERNAL);
      }
    }
    if ((c.flags.bits & (TF | RF)) !== 0 || (c.bpExec | c.bpWatch) !== 0) armDebug(c);
    c.updateAttention();
    return -1;
  }

  /** Executes one instruction. */
  step(): number {
    return this.run(1);
  }

  private fetch(c: Cpu): Insn {
    const r = c.r;
    const lo = r[32]!;
    const hi = r[33]!;
    c.startLo = lo;
    c.startHi = hi;
    const pa = c.fetchAddress(lo, hi);
    let i = c.code.lookup(pa);
    if (i === undefined) i = this.decodeAt(c, pa, lo, hi);
    const n = (lo + i.len) | 0;
    r[32] = n;
    if (n >>> 0 < lo >>> 0) r[33] = (hi + 1) | 0;
    return i;
  }

  /**
   * Fetch outside 64-bit mode: linear = CS.base + IP, decoded with the mode's defaults into a
   * private record (decodings of one address differ between modes, so none enters the shared
   * cache), IP wrapping at 16 bits unless CS.D.
   */
  private fetchLegacy(c: Cpu): Insn {
    const r = c.r;
    const ip = r[32]!;
    c.startLo = ip;
    c.startHi = r[33]!;
    // Code fetches beyond CS's limit raise #GP(0) (APM vol. 2, 4.8.1): the first byte before
    // anything is translated, the last once the length is known.
    const limit = c.seg[SEG_CS]!.limit;
    if (ip >>> 0 > limit) c.fault(VEC_GP, 0);
    const lin = (c.segBase[2]! + ip) | 0;
    const pa = c.fetchAddress(lin, 0);
    const pageEnd = pa - (pa % 4096) + 4096;
    const insn = this.legacy;
    let n = decode(c.mem, pa, pageEnd, insn, c.mode);
    if (n === DECODE_MORE) {
      const w = this.bytes;
      const first = pageEnd - pa;
      w.set(c.mem.subarray(pa, pageEnd));
      const pa2 = c.translate((lin + first) | 0, 0, ACCESS_EXEC);
      w.set(c.mem.subarray(pa2, pa2 + (15 - first)), first);
      n = decode(w, 0, 15, insn, c.mode);
    }
    if (n === DECODE_TOO_LONG) c.fault(VEC_GP, 0);
    if (n < 0) c.fault(VEC_UD);
    if ((ip >>> 0) + n - 1 > limit) c.fault(VEC_GP, 0);
    const next = ip + n;
    r[32] = c.mode === MODE_PROT32 ? next | 0 : next & 0xffff;
    r[33] = 0;
    return insn;
  }

  private decodeAt(c: Cpu, pa: number, lo: number, hi: number): Insn {
    const pageEnd = (pa | 0xfff) + 1;
    const insn = new Insn();
    let n = decode(c.mem, pa, pageEnd, insn);
    if (n > 0) {
      c.code.insert(pa, insn);
      return insn;
    }
    if (n === DECODE_MORE) {
      // The instruction continues on the next virtual page: gather its bytes (fetching the next
      // page only now, so a fault there is raised only when the bytes are really needed).
      const w = this.bytes;
      const first = pageEnd - pa;
      w.set(c.mem.subarray(pa, pageEnd));
      const nlo = (lo + first) | 0;
      const nhi = nlo >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
      const pa2 = c.translate(nlo, nhi, ACCESS_EXEC);
      w.set(c.mem.subarray(pa2, pa2 + (15 - first)), first);
      n = decode(w, 0, 15, this.crossing);
      if (n > 0) return this.crossing;
    }
    if (n === DECODE_TOO_LONG) c.fault(VEC_GP, 0);
    if (n === DECODE_UD || n === DECODE_MORE) c.fault(VEC_UD);
    return c.fault(VEC_UD);
  }
}
