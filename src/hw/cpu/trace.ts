// An instruction trace: one line per instruction the interpreter executes, with its address,
// bytes and disassembly, optionally followed by the registers it changed, and a line per event
// (exception, interrupt) delivered through the IDT. While a tracer is attached the interpreter
// runs every instruction itself (no compiled blocks), so the trace is complete.
//
// Line formats (addresses in hex, the count in decimal):
//   <count> <rip> <bytes> <text>[  <reg>=<value> ...]
//   -- event <vector> <name>[ error <code>] -> <rip of the handler>

import { formatInsn, regName } from './disasm.js';
import type { Cpu } from './cpu.js';
import type { Insn } from './insn.js';
import { MODE_64 } from './cpu.js';

/** Names of the exception vectors 0..31 (APM vol. 2, 8.2). */
const VECTOR_NAMES = [
  '#DE', '#DB', 'NMI', '#BP', '#OF', '#BR', '#UD', '#NM', '#DF', '', '#TS', '#NP', '#SS', '#GP',
  '#PF', '', '#MF', '#AC', '#MC', '#XM', '', '', '', '', '', '', '', '', '#HV', '#VC', '#SX', '',
]; // prettier-ignore

/** The mnemonic of exception vector `v` ('reserved' for unnamed ones below 32, 'interrupt' above). */
export function vectorName(v: number): string {
  return v < 32 ? VECTOR_NAMES[v] || 'reserved' : 'interrupt';
}

export interface TraceOptions {
  /** After each instruction, the general registers and RFLAGS it changed. */
  readonly registers?: boolean;
}

const hex = (v: number | bigint, width = 0): string => v.toString(16).padStart(width, '0');

export class InstructionTracer {
  private readonly registers: boolean;
  /** The registers before the instruction being traced (32-bit halves, RFLAGS at 32). */
  private readonly before = new Int32Array(33);
  private pending = '';
  private readonly cache = new WeakMap<Insn, { lo: number; hi: number; text: string }>();

  constructor(
    private readonly write: (line: string) => void,
    options: TraceOptions = {},
  ) {
    this.registers = options.registers ?? false;
  }

  /** Called by the interpreter before it executes `i` (c.startLo/startHi = its address). */
  step(c: Cpu, i: Insn): void {
    this.flush(c);
    const line = `${String(c.instructions).padStart(10)} ${this.text(c, i)}`;
    if (this.registers) {
      this.before.set(c.r.subarray(0, 32));
      this.before[32] = c.rflags;
      this.pending = line;
    } else {
      this.write(line);
    }
  }

  /** Called when an event is delivered (Cpu.onEvent). */
  event(c: Cpu, vector: number, errorCode: number): void {
    this.flush(c);
    const name = vectorName(vector);
    const err = errorCode >= 0 ? ` error ${hex(errorCode >>> 0)}` : '';
    this.write(`-- event ${vector} ${name}${err} -> ${hex(c.rip, 16)}`);
  }

  /** Writes the line still waiting for its register changes (at the next step, event or end). */
  flush(c: Cpu): void {
    if (this.pending === '') return;
    let changes = '';
    for (let n = 0; n < 16; n++) {
      if (c.r[2 * n] !== this.before[2 * n] || c.r[2 * n + 1] !== this.before[2 * n + 1]) {
        changes += ` ${regName(n, 8)}=${hex(c.getReg64(n))}`;
      }
    }
    if (c.rflags !== this.before[32]) changes += ` rflags=${hex(c.rflags)}`;
    this.write(changes === '' ? this.pending : `${this.pending.trimEnd()} ;${changes}`);
    this.pending = '';
  }

  /**
   * Address, bytes and disassembly of `i` at c.startHi:startLo. Cached per decoded record and
   * address: a trace is mostly loops, and formatting is most of its cost. Records decoded into
   * the interpreter's scratch (legacy modes, page-crossing instructions) are formatted each time.
   */
  private text(c: Cpu, i: Insn): string {
    const hit = this.cache.get(i);
    if (hit !== undefined && hit.lo === c.startLo && hit.hi === c.startHi) {
      return hit.text;
    }
    const rip = (BigInt(c.startHi >>> 0) << 32n) | BigInt(c.startLo >>> 0);
    const text = `${hex(rip, 16)} ${this.bytes(c, i).padEnd(30)} ${formatInsn(i, rip)}`;
    // Only records the code cache keeps are stable (a store into their page replaces them); the
    // scratch records of 16/32-bit code and of page-crossing instructions are reused.
    const crossesPage = (c.startLo & 0xfff) + i.len > 0x1000;
    if (c.mode === MODE_64 && !crossesPage) {
      this.cache.set(i, { lo: c.startLo, hi: c.startHi, text });
    }
    return text;
  }

  /** The instruction's bytes, read where the fetch found them (already translated). */
  private bytes(c: Cpu, i: Insn): string {
    let lo = c.startLo;
    let hi = c.startHi;
    if (c.mode !== MODE_64) {
      lo = (c.segBase[2]! + lo) | 0; // CS.base + IP (legacy modes address below 4 GiB)
      hi = 0;
    }
    const out: string[] = [];
    for (let k = 0; k < i.len; k++) {
      const a = (lo + k) | 0;
      const pa = c.fetchAddress(a, a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi);
      out.push(hex(c.mem[pa]!, 2));
    }
    return out.join(' ');
  }
}
