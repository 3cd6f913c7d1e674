// The run loop: fetch through the TLB (execute permission), look the physical address up in the
// decoded-instruction cache (decode on a miss), advance RIP, execute. Runs a budget of
// instructions per call with no allocation per instruction; stops early on HLT or an exception.
//
// JIT seam (jit/): after the fetch, `Jit.enter` runs the compiled block that starts at this
// instruction when there is one (it counts entries and compiles hot ones); otherwise the
// instruction is executed here. Blocks hang off the same cached Insn records, so the code-page
// protection that invalidates decodings drops them too.

import { type Cpu, VEC_BP, VEC_GP, VEC_UD, X86Fault } from './cpu.js';
import { decode, DECODE_MORE, DECODE_TOO_LONG, DECODE_UD } from './decoder.js';
import { execute } from './execute.js';
import { Insn } from './insn.js';
import { Jit, type JitOptions } from './jit/jit.js';
import { ACCESS_EXEC } from './translator.js';

/** Why `run` returned. */
export const STOP_BUDGET = 0;
export const STOP_HLT = 1;
/** An exception: `cpu.exVector`, `cpu.exErrorCode`; RIP at the faulting instruction (after INT3). */
export const STOP_EXCEPTION = 2;

export class Interpreter {
  /** For instructions that cross a page: decoded into this record each time, never cached. */
  private readonly crossing = new Insn();
  private readonly bytes = new Uint8Array(15);

  /** The block compiler, or null when the JIT is off (then this is a pure interpreter). */
  readonly jit: Jit | null;

  constructor(
    readonly cpu: Cpu,
    options: { jit?: boolean | JitOptions } = {},
  ) {
    const j = options.jit ?? true;
    this.jit = j === false ? null : new Jit(j === true ? {} : j);
  }

  /** Runs up to `budget` instructions. Returns a STOP_* reason. */
  run(budget: number): number {
    const c = this.cpu;
    let left = budget;
    c.exVector = -1;
    c.halted = false;
    try {
      const jit = this.jit;
      while (left > 0) {
        const i = this.fetch(c);
        // Cold instructions only bump a counter here; Jit.enter compiles and runs blocks.
        if (jit !== null && (i.block !== null || ++i.heat >= jit.threshold)) {
          const n = jit.enter(c, i, left);
          if (n > 0) {
            left -= n;
            continue;
          }
        }
        execute(c, i);
        c.instructions++;
        left--;
        if (c.halted) return STOP_HLT;
      }
    } catch (e) {
      if (!(e instanceof X86Fault)) throw e;
      if (c.exVector !== VEC_BP) {
        // Faults report the address of the faulting instruction.
        c.r[32] = c.startLo;
        c.r[33] = c.startHi;
      } else {
        c.instructions++;
      }
      return STOP_EXCEPTION;
    }
    return STOP_BUDGET;
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
