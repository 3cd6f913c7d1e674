// The JIT's JavaScript backend: turns a BlockPlan into the source of one function over the CPU's
// register file, lazy flags and memory methods, compiled with `new Function` (V8 then optimises
// it like any hot function). A WebAssembly backend would consume the same plan.
//
// Contract of the generated function `(c, left) => executed`:
// - entered with c.startLo/startHi = the block's virtual entry RIP (the run loop's fetch set them)
//   and `left` >= the block's length;
// - executes the plan's instructions in order with the interpreter's semantics (inline code
//   mirrors execute.ts field for field; TIER_CALL instructions call `execute` itself);
// - before anything that may fault it has set c.startLo to that instruction and written every
//   earlier effect (registers, memory, lazy-flag fields), so a throw leaves the state the
//   interpreter would leave; the caller adds the instructions retired in the unfinished pass;
// - on a normal exit RIP is set, c.instructions counts every retired instruction, and the return
//   value is their number; a looping block repeats while another whole pass fits in `left`;
// - after every instruction that may store, it leaves (RIP at the next instruction) if its own
//   code page was invalidated, so self-modifying code sees its new bytes.

import { mul64, umul32, w } from '../arith.js';
import { execute, shiftValue } from '../execute.js';
import { LF_ADC1, LF_ADD, LF_DEC, LF_INC, LF_LOGIC, LF_SBB1, LF_SUB, PARITY } from '../flags.js';
import { type Insn, RIP_BASE } from '../insn.js';
import * as H from '../ops.js';
import { type BlockPlan, TIER_CALL, TIER_INLINE, TIER_SIMD, TIER_SIMD_MEM } from './block.js';
import { executeSimdReg, isSimdStore } from '../sse.js';
import { readMem, writeMem } from '../sse-operands.js';
import { XMM_SRC } from '../simd-state.js';
import { VEC_GP } from '../cpu.js';
import { SIMD_LOAD, SIMD_REG, SIMD_SRC, SIMD_STORE, simdInline } from './simd-inline.js';

/** A compiled block: `(cpu, budget) => instructions executed`. */
export type BlockFn = (c: unknown, left: number) => number;

/**
 * Truncated signed 64 x 64 multiply for IMUL's two- and three-operand forms: the low 64 bits in
 * w[0], w[1]; returns whether the signed product did not fit. When the product estimated in
 * doubles is far inside the range (|p| < 4e18 < 2^63, with the estimate's relative error about
 * 2^-51) it cannot have overflowed and one 32 x 32 product plus two cross terms suffice.
 */
export function imul64(a0: number, a1: number, b0: number, b1: number): boolean {
  const p = (a1 * 4294967296 + (a0 >>> 0)) * (b1 * 4294967296 + (b0 >>> 0));
  if (p > -4e18 && p < 4e18) {
    umul32(a0, b0);
    w[1] = (w[1]! + Math.imul(a0, b1) + Math.imul(a1, b0)) | 0;
    return false;
  }
  mul64(a0, a1, b0, b1, true);
  return w[2] !== w[1]! >> 31 || w[3] !== w[1]! >> 31;
}

/** Operand-size masks as source text (sizes 4 and 8 keep int32 halves). */
function maskOp(size: number, e: string): string {
  return size === 1 ? `((${e}) & 0xff)` : size === 2 ? `((${e}) & 0xffff)` : `((${e}) | 0)`;
}

function lit(n: number): string {
  return n < 0 ? `(${n})` : `${n}`;
}

/** What the compiler knows about the lazy flags at the current point of the generated code. */
interface FlagState {
  op: number;
  size: number;
  d0: string;
  d1: string;
  s0: string;
  s1: string;
  r0: string;
  r1: string;
  /** The CPU's flag fields do not hold this state yet. */
  dirty: boolean;
}

type Pair = [string, string];

class Emitter {
  private readonly out: string[] = [];
  private t = 0;
  /** null: the CPU's flag fields are the truth. */
  private fs: FlagState | null = null;
  /** With fs null: the fields are known to hold op = LF_NONE, so `f.bits` has every flag. */
  private none = false;
  /** The SSE availability check has run earlier in this pass. */
  private simdChecked = false;
  /** c.startLo already points at the current instruction. */
  private startSet = false;
  private k = 0;
  private pi!: { off: number; next: number };
  /** What each half of `r` holds at this point of the pass, when a local already has it. */
  private readonly known: (string | null)[] = new Array<string | null>(34).fill(null);
  /** Halves whose value is only in a local so far. */
  private readonly dirty = new Set<number>();

  constructor(private readonly plan: BlockPlan) {}

  private tmp(p = 'v'): string {
    return `${p}${this.t++}`;
  }

  private emit(s: string): void {
    this.out.push(s);
  }

  /** Source that writes a known, dirty flag state into the CPU's fields. */
  private commitCode(): string {
    const s = this.fs;
    if (s === null || !s.dirty) return '';
    if (s.op === LF_LOGIC)
      return `f.op = ${LF_LOGIC}; f.size = ${s.size}; f.r0 = ${s.r0}; f.r1 = ${s.r1};`;
    return (
      `f.op = ${s.op}; f.size = ${s.size}; f.d0 = ${s.d0}; f.d1 = ${s.d1}; f.s0 = ${s.s0}; ` +
      `f.s1 = ${s.s1}; f.r0 = ${s.r0}; f.r1 = ${s.r1};`
    );
  }

  private sync(): void {
    const code = this.commitCode();
    if (code !== '') this.emit(code);
    if (this.fs !== null) this.fs.dirty = false;
  }

  /** Source that writes the register halves held only in locals back to `r`. */
  private flushCode(): string {
    let out = '';
    for (const idx of this.dirty) out += `r[${idx}] = ${this.known[idx]}; `;
    return out;
  }

  private flushRegs(): void {
    const code = this.flushCode();
    if (code !== '') this.emit(code);
    this.dirty.clear();
  }

  /**
   * Makes the state fault-ready for the current instruction: registers and flags written back,
   * startLo set.
   */
  private faultPoint(): void {
    this.flushRegs();
    this.sync();
    if (!this.startSet) {
      this.emit(`c.startLo = (L + ${this.pi.off}) | 0;`);
      this.startSet = true;
    }
  }

  /** RIP of the next instruction: [lo, hi] source (the page's last instruction may carry). */
  private nextRip(): Pair {
    const end = this.plan.pageOff + this.pi.next;
    if (end < 4096) return [`((L + ${this.pi.next}) | 0)`, 'H'];
    const lo = this.tmp('n');
    this.emit(`const ${lo} = (L + ${this.pi.next}) | 0;`);
    return [lo, `(${lo} === 0 ? (H + 1) | 0 : H)`];
  }

  /** Source of a return from the block with RIP = lo:hi after `count` instructions of this pass. */
  private exitCode(lo: string, hi: string, count: number): string {
    return (
      `${this.flushCode()}${this.commitCode()} r[32] = ${lo}; r[33] = ${hi}; ` +
      `c.instructions += ${count}; ` +
      `return done + ${count};`
    );
  }

  /** After a possible store: leave if this block's page lost its decoded code. */
  private smcCheck(): void {
    const [lo, hi] = this.nextRip();
    this.emit(`if (hc[${this.plan.pa >>> 12}] === 0) { ${this.exitCode(lo, hi, this.k + 1)} }`);
  }

  // ---- registers and memory ----------------------------------------------------------------

  /** A register half (index into `r`): the local holding it, loading it once per pass. */
  private half(idx: number): string {
    const k = this.known[idx];
    if (k !== null && k !== undefined) return k;
    const v = this.tmp('h');
    this.emit(`const ${v} = r[${idx}];`);
    this.known[idx] = v;
    return v;
  }

  /**
   * Writes a register half into a local only; `r` is written back (flushRegs) before anything
   * that can fault or look at `r`, and on every exit.
   */
  private setHalf(idx: number, expr: string): void {
    if (/^([A-Za-z_]\w*|\(?-?\d+\)?)$/.test(expr)) {
      this.known[idx] = expr;
    } else {
      const v = this.tmp('h');
      this.emit(`const ${v} = ${expr};`);
      this.known[idx] = v;
    }
    this.dirty.add(idx);
  }

  /** Forgets every cached register half (after `execute` wrote `r`; nothing may be dirty). */
  private forget(): void {
    if (this.dirty.size !== 0) throw new Error('jit: forgetting unflushed registers');
    this.known.fill(null);
  }

  private readReg(n: number, size: number): Pair {
    switch (size) {
      case 8:
        return [this.half(2 * n), this.half(2 * n + 1)];
      case 4:
        return [this.half(2 * n), '0'];
      case 2:
        return [`(${this.half(2 * n)} & 0xffff)`, '0'];
      default:
        return n < 16
          ? [`(${this.half(2 * n)} & 0xff)`, '0']
          : [`((${this.half(2 * (n - 16))} >> 8) & 0xff)`, '0'];
    }
  }

  private writeReg(n: number, size: number, lo: string, hi: string): void {
    switch (size) {
      case 8:
        this.setHalf(2 * n, lo);
        this.setHalf(2 * n + 1, hi);
        return;
      case 4:
        this.setHalf(2 * n, lo);
        this.setHalf(2 * n + 1, '0');
        return;
      case 2:
        this.setHalf(2 * n, `(${this.half(2 * n)} & ~0xffff) | (${lo} & 0xffff)`);
        return;
      default:
        if (n < 16) this.setHalf(2 * n, `(${this.half(2 * n)} & ~0xff) | (${lo} & 0xff)`);
        else {
          const m = 2 * (n - 16);
          this.setHalf(m, `(${this.half(m)} & ~0xff00) | ((${lo} & 0xff) << 8)`);
        }
    }
  }

  /** 64-bit add of b to the address pair a (new names). */
  private add64(a: Pair, b: Pair): Pair {
    const lo = this.tmp('a');
    const hi = this.tmp('a');
    this.emit(
      `const ${lo} = (${a[0]} + ${b[0]}) | 0; ` +
        `const ${hi} = (${a[1]} + ${b[1]} + ((${lo} >>> 0) < (${a[0]} >>> 0) ? 1 : 0)) | 0;`,
    );
    return [lo, hi];
  }

  /** Effective address (eaOffset, then the FS/GS base unless `noSeg`). */
  private ea(i: Insn, noSeg = false): Pair {
    let a: Pair | null = null;
    if (i.base >= 0) {
      a = i.base === RIP_BASE ? this.nextRip() : [this.half(2 * i.base), this.half(2 * i.base + 1)];
    }
    if (i.index >= 0) {
      const x0 = this.tmp('x');
      const x1 = this.tmp('x');
      const s = i.scale;
      const r0 = this.half(2 * i.index);
      const r1 = this.half(2 * i.index + 1);
      if (s === 0) this.emit(`const ${x0} = ${r0}, ${x1} = ${r1};`);
      else
        this.emit(`const ${x1} = (${r1} << ${s}) | (${r0} >>> ${32 - s}), ${x0} = ${r0} << ${s};`);
      a = a === null ? [x0, x1] : this.add64(a, [x0, x1]);
    }
    if (a === null) a = [lit(i.disp), lit(i.dispHi)];
    else if (i.disp !== 0 || i.dispHi !== 0) a = this.add64(a, [lit(i.disp), lit(i.dispHi)]);
    if (i.asz === 4) a = [a[0], '0'];
    if (!noSeg && i.seg >= 0) {
      a = this.add64(a, [`c.segBase[${2 * i.seg}]`, `c.segBase[${2 * i.seg + 1}]`]);
    }
    return a;
  }

  private readMem(a: Pair, size: number): Pair {
    this.faultPoint();
    const lo = this.tmp();
    switch (size) {
      case 8: {
        const hi = this.tmp();
        this.emit(`const ${lo} = c.read64(${a[0]}, ${a[1]}), ${hi} = c.v1;`);
        return [lo, hi];
      }
      case 4:
        this.emit(`const ${lo} = c.read32(${a[0]}, ${a[1]});`);
        break;
      case 2:
        this.emit(`const ${lo} = c.read16(${a[0]}, ${a[1]});`);
        break;
      default:
        this.emit(`const ${lo} = c.read8(${a[0]}, ${a[1]});`);
    }
    return [lo, '0'];
  }

  private writeMem(a: Pair, size: number, v: Pair): void {
    this.faultPoint();
    switch (size) {
      case 8:
        this.emit(`c.write64(${a[0]}, ${a[1]}, ${v[0]}, ${v[1]});`);
        return;
      case 4:
        this.emit(`c.write32(${a[0]}, ${a[1]}, ${v[0]});`);
        return;
      case 2:
        this.emit(`c.write16(${a[0]}, ${a[1]}, ${v[0]});`);
        return;
      default:
        this.emit(`c.write8(${a[0]}, ${a[1]}, ${v[0]});`);
    }
  }

  /** readE: the value and, for memory, the address (for writeE). */
  private readE(i: Insn, size: number): { v: Pair; a: Pair | null } {
    if (i.rm >= 0) return { v: this.readReg(i.rm, size), a: null };
    const a = this.ea(i);
    return { v: this.readMem(a, size), a };
  }

  private writeE(i: Insn, a: Pair | null, size: number, v: Pair): void {
    if (a === null) this.writeReg(i.rm, size, v[0], v[1]);
    else this.writeMem(a, size, v);
  }

  private storeE(i: Insn, size: number, v: Pair): void {
    if (i.rm >= 0) this.writeReg(i.rm, size, v[0], v[1]);
    else this.writeMem(this.ea(i), size, v);
  }

  // ---- flags -------------------------------------------------------------------------------

  private setFlags(op: number, size: number, d: Pair, s: Pair, res: Pair): void {
    this.none = false;
    this.fs = {
      op,
      size,
      d0: d[0],
      d1: d[1],
      s0: s[0],
      s1: s[1],
      r0: res[0],
      r1: res[1],
      dirty: true,
    };
  }

  private static ult(size: number, a0: string, a1: string, b0: string, b1: string): string {
    if (size !== 8) return `((${a0} >>> 0) < (${b0} >>> 0))`;
    return `(${a1} === ${b1} ? (${a0} >>> 0) < (${b0} >>> 0) : (${a1} >>> 0) < (${b1} >>> 0))`;
  }

  /** CF as a 0/1 number expression. */
  private cfExpr(): string {
    const s = this.fs;
    if (s === null) return this.none ? '(f.bits & 1)' : 'f.cf()';
    switch (s.op) {
      case LF_ADD:
        return `(${Emitter.ult(s.size, s.r0, s.r1, s.d0, s.d1)} ? 1 : 0)`;
      case LF_SUB:
        return `(${Emitter.ult(s.size, s.d0, s.d1, s.s0, s.s1)} ? 1 : 0)`;
      case LF_LOGIC:
        return '0';
      default:
        return '(f.bits & 1)'; // INC/DEC keep CF in bits (written at once, never deferred)
    }
  }

  private zfExpr(s: FlagState): string {
    return s.size === 8 ? `((${s.r0} | ${s.r1}) === 0)` : `(${s.r0} === 0)`;
  }

  private sfExpr(s: FlagState): string {
    switch (s.size) {
      case 8:
        return `(${s.r1} < 0)`;
      case 4:
        return `(${s.r0} < 0)`;
      case 2:
        return `((${s.r0} << 16) < 0)`;
      default:
        return `((${s.r0} << 24) < 0)`;
    }
  }

  private ofExpr(s: FlagState): string {
    if (s.op === LF_LOGIC) return 'false';
    const hiHalf = s.size === 8;
    const d = hiHalf ? s.d1 : s.d0;
    const sr = hiHalf ? s.s1 : s.s0;
    const r = hiHalf ? s.r1 : s.r0;
    const t =
      s.op === LF_ADD || s.op === LF_INC
        ? `((${d} ^ ${r}) & (${sr} ^ ${r}))`
        : `((${d} ^ ${sr}) & (${d} ^ ${r}))`;
    const sh = s.size === 1 ? 24 : s.size === 2 ? 16 : 0;
    return sh === 0 ? `(${t} < 0)` : `((${t} << ${sh}) < 0)`;
  }

  /** Condition code `cc` as a boolean expression (LazyFlags.cond on the known state). */
  private condExpr(cc: number): string {
    const s = this.fs;
    if (s === null && this.none) {
      const b = (m: number): string => `((f.bits & ${m}) !== 0)`;
      const so = `(((f.bits >> 7) ^ (f.bits >> 11)) & 1) !== 0`;
      const t = [
        b(0x800),
        b(1),
        b(0x40),
        b(0x41),
        b(0x80),
        b(4),
        `(${so})`,
        `(${b(0x40)} || ${so})`,
      ][cc >> 1]!;
      return (cc & 1) === 0 ? t : `!${t}`;
    }
    if (s === null) return `f.cond(${cc})`;
    let t: string;
    const sub = s.op === LF_SUB;
    const sh = s.size === 1 ? 24 : s.size === 2 ? 16 : 0;
    const sx = (v: string): string => (sh === 0 ? v : `(${v} << ${sh})`);
    switch (cc >> 1) {
      case 0:
        t = this.ofExpr(s);
        break;
      case 1:
        t = `(${this.cfExpr()} !== 0)`;
        break;
      case 2:
        t = this.zfExpr(s);
        break;
      case 3:
        t = sub
          ? `!${Emitter.ult(s.size, s.s0, s.s1, s.d0, s.d1)}` // d <= s unsigned
          : `((${this.cfExpr()} !== 0) || ${this.zfExpr(s)})`;
        break;
      case 4:
        t = this.sfExpr(s);
        break;
      case 5:
        t = `(P[${s.r0} & 0xff] !== 0)`;
        break;
      case 6:
        if (sub && s.size !== 8) t = `(${sx(s.d0)} < ${sx(s.s0)})`;
        else if (sub)
          t = `(${s.d1} === ${s.s1} ? (${s.d0} >>> 0) < (${s.s0} >>> 0) : ${s.d1} < ${s.s1})`;
        else t = `(${this.sfExpr(s)} !== ${this.ofExpr(s)})`;
        break;
      default:
        if (sub && s.size !== 8) t = `(${sx(s.d0)} <= ${sx(s.s0)})`;
        else if (sub)
          t = `(${s.d1} === ${s.s1} ? (${s.d0} >>> 0) <= (${s.s0} >>> 0) : ${s.d1} < ${s.s1})`;
        else t = `(${this.zfExpr(s)} || ${this.sfExpr(s)} !== ${this.ofExpr(s)})`;
    }
    return (cc & 1) === 0 ? t : `!${t}`;
  }

  // ---- instructions ------------------------------------------------------------------------

  /** ALU op `op` on d and s; returns the result (alu() in execute.ts). */
  private alu(op: number, size: number, d: Pair, s: Pair): Pair {
    const r0 = this.tmp('r');
    switch (op) {
      case H.ALU_OR:
      case H.ALU_AND:
      case H.ALU_XOR: {
        const o = op === H.ALU_OR ? '|' : op === H.ALU_AND ? '&' : '^';
        this.emit(`const ${r0} = ${d[0]} ${o} ${s[0]};`);
        let r1 = '0';
        if (size === 8) {
          r1 = this.tmp('r');
          this.emit(`const ${r1} = ${d[1]} ${o} ${s[1]};`);
        }
        this.none = false;
        this.fs = { op: LF_LOGIC, size, d0: '0', d1: '0', s0: '0', s1: '0', r0, r1, dirty: true };
        return [r0, r1];
      }
      case H.ALU_ADC:
      case H.ALU_SBB: {
        // The operation recorded depends on the carry in: commit at once, state from fields.
        const cin = this.tmp('c');
        this.emit(`const ${cin} = ${this.cfExpr()};`);
        let r1 = '0';
        const adc = op === H.ALU_ADC;
        if (size === 8) {
          const t = this.tmp('t');
          r1 = this.tmp('r');
          this.emit(
            adc
              ? `const ${t} = (${d[0]} >>> 0) + (${s[0]} >>> 0) + ${cin}; const ${r0} = ${t} | 0; ` +
                  `const ${r1} = (${d[1]} + ${s[1]} + (${t} >= 4294967296 ? 1 : 0)) | 0;`
              : `const ${t} = (${d[0]} >>> 0) - (${s[0]} >>> 0) - ${cin}; const ${r0} = ${t} | 0; ` +
                  `const ${r1} = (${d[1]} - ${s[1]} - (${t} < 0 ? 1 : 0)) | 0;`,
          );
        } else {
          this.emit(
            `const ${r0} = ${maskOp(size, adc ? `${d[0]} + ${s[0]} + ${cin}` : `${d[0]} - ${s[0]} - ${cin}`)};`,
          );
        }
        const opE = adc
          ? `(${cin} !== 0 ? ${LF_ADC1} : ${LF_ADD})`
          : `(${cin} !== 0 ? ${LF_SBB1} : ${LF_SUB})`;
        this.fs = null;
        this.none = false;
        this.emit(
          `f.op = ${opE}; f.size = ${size}; f.d0 = ${d[0]}; f.d1 = ${d[1]}; f.s0 = ${s[0]}; ` +
            `f.s1 = ${s[1]}; f.r0 = ${r0}; f.r1 = ${r1};`,
        );
        return [r0, r1];
      }
      case H.ALU_ADD: {
        let r1 = '0';
        if (size === 8) {
          const t = this.tmp('t');
          r1 = this.tmp('r');
          this.emit(
            `const ${t} = (${d[0]} >>> 0) + (${s[0]} >>> 0); const ${r0} = ${t} | 0; ` +
              `const ${r1} = (${d[1]} + ${s[1]} + (${t} >= 4294967296 ? 1 : 0)) | 0;`,
          );
        } else {
          this.emit(`const ${r0} = ${maskOp(size, `${d[0]} + ${s[0]}`)};`);
        }
        this.setFlags(LF_ADD, size, d, s, [r0, r1]);
        return [r0, r1];
      }
      default: {
        // SUB, CMP
        let r1 = '0';
        if (size === 8) {
          const t = this.tmp('t');
          r1 = this.tmp('r');
          this.emit(
            `const ${t} = (${d[0]} >>> 0) - (${s[0]} >>> 0); const ${r0} = ${t} | 0; ` +
              `const ${r1} = (${d[1]} - ${s[1]} - (${t} < 0 ? 1 : 0)) | 0;`,
          );
        } else {
          this.emit(`const ${r0} = ${maskOp(size, `${d[0]} - ${s[0]}`)};`);
        }
        this.setFlags(LF_SUB, size, d, s, [r0, r1]);
        return [r0, r1];
      }
    }
  }

  private push(size: number, v: Pair): void {
    const lo = this.tmp('s');
    const hi = this.tmp('s');
    const s0 = this.half(8);
    const s1 = this.half(9);
    this.emit(
      `const ${lo} = (${s0} - ${size}) | 0; const ${hi} = (${lo} >>> 0) > (${s0} >>> 0) ? (${s1} - 1) | 0 : ${s1};`,
    );
    this.writeMem([lo, hi], size, v);
    this.setHalf(8, lo);
    this.setHalf(9, hi);
  }

  private pop(size: number): Pair {
    const lo = this.half(8);
    const hi = this.half(9);
    const v = this.readMem([lo, hi], size);
    const n = this.tmp('s');
    this.emit(`const ${n} = (${lo} + ${size}) | 0;`);
    this.setHalf(8, n);
    this.setHalf(9, `(${n} >>> 0) < (${lo} >>> 0) ? (${hi} + 1) | 0 : ${hi}`);
    return v;
  }

  /** Relative target: next RIP + imm (jumpRel). */
  private relTarget(i: Insn): Pair {
    const [nlo, nhi] = this.nextRip();
    const t = this.tmp('j');
    const lo = this.tmp('j');
    const hi = this.tmp('j');
    this.emit(
      `const ${t} = (${nlo} >>> 0) + ${i.imm >>> 0}; const ${lo} = ${t} | 0; ` +
        `const ${hi} = (${nhi} + ${lit(i.immHi)} + (${t} >= 4294967296 ? 1 : 0)) | 0;`,
    );
    return [lo, hi];
  }

  /**
   * Sets all six arithmetic flags to `values` except those in `keepAf` (AF kept when true): the
   * lazy state is folded like LazyFlags.assign, using the known state where there is one.
   */
  private assignArith(values: string, keepAf: boolean): void {
    const s = this.fs;
    let af = '0';
    if (keepAf) {
      // fs never holds ADC1/SBB1 (those commit at once), so the formula below covers the rest.
      if (this.none) af = '(f.bits & 0x10)';
      else if (s === null) af = '(f.get() & 0x10)';
      else if (s.op !== LF_LOGIC) af = `((${s.d0} ^ ${s.s0} ^ ${s.r0}) & 0x10)`;
    }
    const t = this.tmp('f');
    this.emit(`const ${t} = ${af}; f.bits = (f.bits & ~0x8d5) | ${t} | ${values}; f.op = 0;`);
    // The pending state is fully replaced: it never needs to reach the fields.
    this.fs = null;
    this.none = true;
  }

  /** SF, ZF, PF of a result (LazyFlags.szp) as a number expression. */
  private static szp(size: number, r0: string, r1: string): string {
    const z = size === 8 ? `((${r0} | ${r1}) === 0 ? 0x40 : 0)` : `(${r0} === 0 ? 0x40 : 0)`;
    const sg =
      size === 8
        ? `(${r1} < 0 ? 0x80 : 0)`
        : size === 4
          ? `(${r0} < 0 ? 0x80 : 0)`
          : `((${r0} << ${size === 2 ? 16 : 24}) < 0 ? 0x80 : 0)`;
    return `(P[${r0} & 0xff] | ${z} | ${sg})`;
  }

  /** IMUL with a truncated result (imulTrunc in execute.ts), sizes 2, 4, 8. */
  private imulTrunc(i: Insn, a: Pair, b: Pair): void {
    const size = i.osz;
    const r0 = this.tmp('r');
    const ov = this.tmp('o');
    let r1 = '0';
    if (size === 2) {
      const p = this.tmp('p');
      this.emit(
        `const ${p} = ((${a[0]} << 16) >> 16) * ((${b[0]} << 16) >> 16); const ${r0} = ${p} & 0xffff; ` +
          `const ${ov} = ${p} !== ((${r0} << 16) >> 16);`,
      );
    } else if (size === 4) {
      this.emit(
        `const ${r0} = Math.imul(${a[0]}, ${b[0]}); const ${ov} = ${a[0]} * ${b[0]} !== ${r0};`,
      );
    } else if (this.cfOfDeadAfter(this.k)) {
      // CF/OF (whether the signed product overflowed, a 128-bit product) are overwritten before
      // anything can see them: the low 64 bits are one 32 x 32 product and two cross terms.
      r1 = this.tmp('r');
      this.emit(
        `U(${a[0]}, ${b[0]}); const ${ov} = false, ${r0} = W[0], ` +
          `${r1} = (W[1] + Math.imul(${a[0]}, ${b[1]}) + Math.imul(${a[1]}, ${b[0]})) | 0;`,
      );
    } else {
      r1 = this.tmp('r');
      this.emit(
        `const ${ov} = M(${a[0]}, ${a[1]}, ${b[0]}, ${b[1]}); const ${r0} = W[0], ${r1} = W[1];`,
      );
    }
    this.assignArith(`(${ov} ? 0x801 : 0) | ${Emitter.szp(size, r0, r1)}`, false);
    this.writeReg(i.reg, size, r0, r1);
  }

  /**
   * Whether CF and OF as instruction `k` leaves them are dead: a later instruction of the block
   * writes both before anything reads them, and nothing in between can fault (a fault shows
   * RFLAGS to its handler) or leave the block. Conservative: anything not listed keeps them live.
   */
  private cfOfDeadAfter(k: number): boolean {
    const insns = this.plan.insns;
    for (let j = k + 1; j < insns.length; j++) {
      const { insn: i, tier } = insns[j]!;
      if (tier !== TIER_INLINE) return false;
      const reg = i.rm >= 0; // no memory operand: cannot fault
      switch (i.op) {
        case H.H_ALU_EG:
        case H.H_ALU_GE:
        case H.H_ALU_EI:
          if (!reg || i.sub === H.ALU_ADC || i.sub === H.ALU_SBB) return false;
          return true;
        case H.H_TEST_EG:
        case H.H_TEST_EI:
        case H.H_IMUL_GE:
        case H.H_IMUL_GEI:
          return reg;
        case H.H_SHIFT_I: // inline: SHL/SHR/SAR/ROL/ROR at 32/64 bits; a count of 0 writes none
          return reg && (i.imm & (i.osz === 8 ? 63 : 31)) !== 0;
        case H.H_NOTNEG:
          if (!reg) return false;
          if (i.sub !== 2) return true; // NEG; NOT touches no flag
          break;
        case H.H_MOV_EG:
        case H.H_MOV_GE:
        case H.H_MOV_EI:
        case H.H_MOVZX:
        case H.H_MOVSX:
          if (!reg) return false;
          break;
        case H.H_LEA:
        case H.H_NOP:
          break;
        default:
          return false;
      }
    }
    return false;
  }

  /** Shift or rotate by an immediate, sizes 4 and 8 (shift() in execute.ts). */
  private shiftImm(i: Insn): void {
    const size = i.osz;
    const n = i.imm & (size === 8 ? 63 : 31);
    const e = this.readE(i, size);
    const [v0, v1] = e.v;
    if (n === 0) {
      if (size === 4 && i.rm >= 0) this.writeReg(i.rm, 4, v0, '0');
      return;
    }
    const r0 = this.tmp('r');
    const r1 = size === 8 ? this.tmp('r') : '0';
    const cf = this.tmp('c');
    const of = this.tmp('o');
    const bit = (k: number): string =>
      k < 32 ? `((${v0} >>> ${k}) & 1)` : `((${v1} >>> ${k - 32}) & 1)`;
    const res = (p: Pair): void => {
      this.emit(`const ${r0} = ${p[0]};${size === 8 ? ` const ${r1} = ${p[1]};` : ''}`);
    };
    const kind = i.sub;
    if (kind === 0 || kind === 1) {
      // ROL, ROR: CF and OF only; the other flags are kept (materialised first).
      if (size === 4) {
        res([
          kind === 0
            ? `((${v0} << ${n}) | (${v0} >>> ${32 - n}))`
            : `((${v0} >>> ${n}) | (${v0} << ${32 - n}))`,
          '0',
        ]);
      } else {
        const a = kind === 0 ? shl64src(v0, v1, n) : shr64src(v0, v1, n);
        const b = kind === 0 ? shr64src(v0, v1, 64 - n) : shl64src(v0, v1, 64 - n);
        res([`(${a[0]} | ${b[0]})`, `(${a[1]} | ${b[1]})`]);
      }
      const msb = size === 8 ? `(${r1} >>> 31)` : `(${r0} >>> 31)`;
      if (kind === 0) this.emit(`const ${cf} = ${r0} & 1; const ${of} = ${msb} ^ ${cf};`);
      else
        this.emit(
          `const ${cf} = ${msb}; const ${of} = ${cf} ^ ((${size === 8 ? r1 : r0} >>> 30) & 1);`,
        );
      const co = `${cf} | (${of} !== 0 ? 0x800 : 0)`;
      const prev = this.fs;
      if (this.none) {
        this.emit(`f.bits = (f.bits & ~0x801) | ${co};`);
      } else if (prev !== null) {
        // The other four flags from the known producer, folded like LazyFlags.get.
        const af = prev.op === LF_LOGIC ? '0' : `((${prev.d0} ^ ${prev.s0} ^ ${prev.r0}) & 0x10)`;
        const t = this.tmp('f');
        this.emit(
          `const ${t} = ${af} | ${Emitter.szp(prev.size, prev.r0, prev.r1)}; ` +
            `f.bits = (f.bits & ~0x8d5) | ${t} | ${co}; f.op = 0;`,
        );
      } else {
        this.emit(`f.bits = (f.get() & ~0x801) | ${co};`);
      }
      this.fs = null;
      this.none = true;
      this.writeE(i, e.a, size, [r0, r1]);
      return;
    }
    if (kind === 5) {
      res(size === 8 ? shr64src(v0, v1, n) : [`((${v0} >>> ${n}) | 0)`, '0']);
      this.emit(`const ${cf} = ${bit(n - 1)}; const ${of} = ${size === 8 ? v1 : v0} >>> 31;`);
    } else if (kind === 7) {
      res(size === 8 ? sar64src(v0, v1, n) : [`(${v0} >> ${n})`, '0']);
      const c = size === 8 && n - 1 >= 32 ? `((${v1} >> ${Math.min(n - 33, 31)}) & 1)` : bit(n - 1);
      this.emit(`const ${cf} = ${c}; const ${of} = 0;`);
    } else {
      // SHL, SAL
      res(size === 8 ? shl64src(v0, v1, n) : [`(${v0} << ${n})`, '0']);
      this.emit(
        `const ${cf} = ${bit(size * 8 - n)}; const ${of} = (${size === 8 ? r1 : r0} >>> 31) ^ ${cf};`,
      );
    }
    this.assignArith(`${cf} | (${of} !== 0 ? 0x800 : 0) | ${Emitter.szp(size, r0, r1)}`, true);
    this.writeE(i, e.a, size, [r0, r1]);
  }

  /** Emits one TIER_INLINE instruction (`last`: the block's final one). */
  private insn(i: Insn, last: boolean): void {
    const size = i.osz;
    switch (i.op) {
      case H.H_ALU_EG: {
        const e = this.readE(i, size);
        const g = this.readReg(i.reg, size);
        const res = this.alu(i.sub, size, e.v, g);
        if (i.sub !== H.ALU_CMP) this.writeE(i, e.a, size, res);
        return;
      }
      case H.H_ALU_GE: {
        const e = this.readE(i, size);
        const g = this.readReg(i.reg, size);
        const res = this.alu(i.sub, size, g, e.v);
        if (i.sub !== H.ALU_CMP) this.writeReg(i.reg, size, res[0], res[1]);
        return;
      }
      case H.H_ALU_EI: {
        const e = this.readE(i, size);
        const res = this.alu(i.sub, size, e.v, [lit(i.imm), lit(i.immHi)]);
        if (i.sub !== H.ALU_CMP) this.writeE(i, e.a, size, res);
        return;
      }
      case H.H_TEST_EG:
      case H.H_TEST_EI: {
        const e = this.readE(i, size);
        const s: Pair =
          i.op === H.H_TEST_EG ? this.readReg(i.reg, size) : [lit(i.imm), lit(i.immHi)];
        const r0 = this.tmp('r');
        this.emit(`const ${r0} = ${e.v[0]} & ${s[0]};`);
        let r1 = '0';
        if (size === 8) {
          r1 = this.tmp('r');
          this.emit(`const ${r1} = ${e.v[1]} & ${s[1]};`);
        }
        this.none = false;
        this.fs = { op: LF_LOGIC, size, d0: '0', d1: '0', s0: '0', s1: '0', r0, r1, dirty: true };
        return;
      }
      case H.H_MOV_EG:
        this.storeE(i, size, this.readReg(i.reg, size));
        return;
      case H.H_MOV_GE: {
        const e = this.readE(i, size);
        this.writeReg(i.reg, size, e.v[0], e.v[1]);
        return;
      }
      case H.H_MOV_EI:
        this.storeE(i, size, [lit(i.imm), lit(i.immHi)]);
        return;
      case H.H_LEA: {
        const a = this.ea(i, true);
        this.writeReg(i.reg, size, size === 2 ? `(${a[0]} & 0xffff)` : a[0], a[1]);
        return;
      }
      case H.H_INCDEC: {
        const e = this.readE(i, size);
        const d = e.v;
        const r0 = this.tmp('r');
        let r1 = '0';
        const step = i.sub === 0 ? 1 : -1;
        if (size === 8) {
          const t = this.tmp('t');
          r1 = this.tmp('r');
          this.emit(
            `const ${t} = (${d[0]} >>> 0) + ${lit(step)}; const ${r0} = ${t} | 0; ` +
              `const ${r1} = (${d[1]} + (${t} >= 4294967296 ? 1 : ${t} < 0 ? -1 : 0)) | 0;`,
          );
        } else {
          this.emit(`const ${r0} = ${maskOp(size, `${d[0]} + ${lit(step)}`)};`);
        }
        this.emit(`f.bits = (f.bits & ~1) | ${this.cfExpr()};`);
        this.setFlags(i.sub === 1 ? LF_DEC : LF_INC, size, d, ['1', '0'], [r0, r1]);
        this.writeE(i, e.a, size, [r0, r1]);
        return;
      }
      case H.H_PUSH_R:
        this.push(size, this.readReg(i.rm, size));
        return;
      case H.H_POP_R: {
        const v = this.pop(size);
        this.writeReg(i.rm, size, v[0], v[1]);
        return;
      }
      case H.H_SETCC: {
        const v = this.tmp('v');
        this.emit(`const ${v} = ${this.condExpr(i.sub)} ? 1 : 0;`);
        this.storeE(i, 1, [v, '0']);
        return;
      }
      case H.H_CMOVCC: {
        const e = this.readE(i, size);
        const cond = this.condExpr(i.sub);
        const n = i.reg;
        const t = this.tmp('m');
        this.emit(`const ${t} = ${cond};`);
        const lo = this.half(2 * n);
        if (size === 2) {
          this.setHalf(2 * n, `${t} ? (${lo} & ~0xffff) | (${e.v[0]} & 0xffff) : ${lo}`);
        } else {
          // A 32-bit CMOVcc clears the high half whether or not it moves.
          this.setHalf(2 * n, `${t} ? ${e.v[0]} : ${lo}`);
          this.setHalf(2 * n + 1, size === 4 ? '0' : `${t} ? ${e.v[1]} : ${this.half(2 * n + 1)}`);
        }
        return;
      }
      case H.H_MOVZX: {
        const e = this.readE(i, i.sub);
        this.writeReg(i.reg, size, e.v[0], '0');
        return;
      }
      case H.H_MOVSX: {
        const e = this.readE(i, i.sub);
        const v = this.tmp('v');
        const sx =
          i.sub === 1
            ? `((${e.v[0]} << 24) >> 24)`
            : i.sub === 2
              ? `((${e.v[0]} << 16) >> 16)`
              : e.v[0];
        this.emit(`const ${v} = ${sx};`);
        this.writeReg(i.reg, size, size === 2 ? `(${v} & 0xffff)` : v, `(${v} >> 31)`);
        return;
      }
      case H.H_NOP:
        return;
      case H.H_IMUL_GE: {
        const e = this.readE(i, size);
        this.imulTrunc(i, this.readReg(i.reg, size), e.v);
        return;
      }
      case H.H_IMUL_GEI: {
        const e = this.readE(i, size);
        this.imulTrunc(i, e.v, [lit(i.imm), lit(i.immHi)]);
        return;
      }
      case H.H_SHIFT_I:
        this.shiftImm(i);
        return;
      case H.H_SHIFT_CL: {
        // The count is known only at run time and a count of 0 changes no flag: the pending
        // flags go to the fields, and execute.ts's shiftValue assigns there when CL & mask > 0.
        const [v0, v1] = this.readReg(i.rm, size);
        const n = this.tmp('n');
        const r0 = this.tmp('r');
        const r1 = this.tmp('r');
        this.emit(`const ${n} = ${this.half(2)} & ${size === 8 ? 63 : 31};`);
        this.sync();
        this.emit(
          `let ${r0} = ${v0}, ${r1} = ${v1}; ` +
            `if (${n} !== 0) { ${r0} = SH(f, ${i.sub}, ${size}, ${v0}, ${v1}, ${n}); ${r1} = W[1]; }`,
        );
        this.fs = null;
        this.none = false;
        this.writeReg(i.rm, size, r0, r1);
        return;
      }
      case H.H_NOTNEG: {
        const e = this.readE(i, size);
        if (i.sub === 2) {
          const m = size === 1 ? 0xff : size === 2 ? 0xffff : -1;
          this.writeE(i, e.a, size, [
            `(~${e.v[0]} & ${lit(m)})`,
            size === 8 ? `(~${e.v[1]})` : '0',
          ]);
        } else {
          this.writeE(i, e.a, size, this.alu(H.ALU_SUB, size, ['0', '0'], e.v));
        }
        return;
      }
      case H.H_JCC:
      case H.H_JMP_J: {
        const [tlo, thi] = this.relTarget(i);
        const count = this.k + 1;
        const cond = i.op === H.H_JCC ? this.condExpr(i.sub) : 'true';
        if (!last) {
          // A side exit (only Jcc is planned mid-block): taken leaves, fall-through goes on.
          this.emit(`if (${cond}) { ${this.exitCode(tlo, thi, count)} }`);
          return;
        }
        if (this.plan.loops && last) {
          // Back to the entry: run another pass while a whole one fits in the budget.
          const [nlo, nhi] = this.nextRip();
          this.emit(`if (${cond}) {`);
          this.emit(
            `if (done + ${2 * count} <= left) { ${this.flushCode()}${this.commitCode()} ` +
              `c.instructions += ${count}; done += ${count}; continue; }`,
          );
          this.emit(this.exitCode(tlo, thi, count));
          this.emit('}');
          this.emit(this.exitCode(nlo, nhi, count));
          return;
        }
        const [nlo, nhi] = this.nextRip();
        this.emit(`if (${cond}) { ${this.exitCode(tlo, thi, count)} }`);
        this.emit(this.exitCode(nlo, nhi, count));
        return;
      }
      case H.H_CALL_J: {
        const rip = this.nextRip();
        const target = this.relTarget(i);
        this.push(8, rip);
        this.emit(this.exitCode(target[0], target[1], this.k + 1));
        return;
      }
      case H.H_RET: {
        const v = this.pop(size);
        const hi = size === 8 ? v[1] : '0';
        if (i.imm !== 0) {
          const t = this.tmp('t');
          const s0 = this.half(8);
          const s1 = this.half(9);
          this.emit(`const ${t} = (${s0} >>> 0) + ${i.imm};`);
          this.setHalf(8, `${t} | 0`);
          this.setHalf(9, `(${s1} + (${t} >= 4294967296 ? 1 : 0)) | 0`);
        }
        this.emit(this.exitCode(v[0], hi, this.k + 1));
        return;
      }
      default:
        throw new Error(`jit: handler ${i.op} is not generated inline`);
    }
  }

  /**
   * A register-only SSE instruction (TIER_SIMD): nothing the block keeps in locals is involved,
   * so nothing is written back unless SSE is unavailable; then the state is made fault-ready and
   * `execute` raises the #UD or #NM (it cannot return).
   */
  private simd(k: number): void {
    this.emit(
      `if (!S(c, I[${k}])) { ${this.flushCode()}${this.commitCode()} ` +
        `c.startLo = (L + ${this.pi.off}) | 0; X(c, I[${k}]); ` +
        `throw new Error('jit: SSE unavailable without a fault'); }`,
    );
  }

  /**
   * A memory-form SSE instruction that writes no GPR or flag (TIER_SIMD_MEM): fault-ready state
   * and RIP for `execute` (RIP-relative operands), but the cached registers stay valid after.
   */
  private simdMem(k: number, i: Insn): void {
    this.faultPoint();
    const [lo, hi] = this.nextRip();
    this.emit(`r[32] = ${lo}; r[33] = ${hi}; X(c, I[${k}]);`);
    if (isSimdStore(i)) this.smcCheck();
  }

  /**
   * An XMM-only instruction generated inline (simd-inline.ts), or false to run it through the
   * interpreter. The SSE availability check (#UD, then #NM) runs once per pass, before the
   * first such instruction: nothing a block runs changes CR0 or CR4.
   */
  private simdInline(k: number, i: Insn): boolean {
    const g = simdInline(i);
    if (g === null) return false;
    if (!this.simdChecked) {
      const [lo, hi] = this.nextRip();
      this.emit(
        `if ((c.cr0 & 0xc) !== 0 || (c.cr4 & 0x200) === 0) { ${this.flushCode()}${this.commitCode()} ` +
          `c.startLo = (L + ${this.pi.off}) | 0; r[32] = ${lo}; r[33] = ${hi}; X(c, I[${k}]); ` +
          `throw new Error('jit: SSE unavailable without a fault'); }`,
      );
      this.simdChecked = true;
    }
    if (g.mem !== SIMD_REG) {
      const a = this.ea(i);
      this.faultPoint();
      this.emit(`c.a0 = ${a[0]}; c.a1 = ${a[1]};`);
      if (g.aligned) this.emit(`if ((c.a0 & 15) !== 0) c.fault(${VEC_GP}, 0);`);
      if (g.mem === SIMD_LOAD) this.emit(`RM(c, ${g.reg}, ${g.bytes});`);
      else if (g.mem === SIMD_SRC) this.emit(`RM(c, ${XMM_SRC}, 16);`);
    }
    this.emit(g.lanes(() => this.tmp('s')));
    if (g.mem === SIMD_STORE) {
      this.emit(`WM(c, ${g.reg}, ${g.bytes});`);
      this.smcCheck();
    }
    return true;
  }

  /** One instruction through the interpreter's own `execute` (TIER_CALL). */
  private call(k: number, i: Insn): void {
    this.faultPoint();
    const [lo, hi] = this.nextRip();
    this.emit(`r[32] = ${lo}; r[33] = ${hi}; X(c, I[${k}]);`);
    this.fs = null;
    this.none = false;
    this.forget();
    if (i.op === H.H_JMP_E || i.op === H.H_CALL_E) {
      this.emit(`c.instructions += ${k + 1}; return done + ${k + 1};`);
      return;
    }
    this.smcCheck();
  }

  generate(): string {
    const plan = this.plan;
    this.emit('const r = c.r, f = c.flags, x = c.simd.x32, L = c.startLo, H = c.startHi;');
    this.emit('let done = 0;');
    this.emit('for (;;) {');
    const n = plan.insns.length;
    for (let k = 0; k < n; k++) {
      const p = plan.insns[k]!;
      this.k = k;
      this.pi = p;
      this.startSet = false;
      if (p.tier === TIER_CALL) {
        this.call(k, p.insn);
        continue;
      }
      if ((p.tier === TIER_SIMD || p.tier === TIER_SIMD_MEM) && this.simdInline(k, p.insn)) {
        continue;
      }
      if (p.tier === TIER_SIMD) {
        this.simd(k);
        continue;
      }
      if (p.tier === TIER_SIMD_MEM) {
        this.simdMem(k, p.insn);
        continue;
      }
      this.insn(p.insn, k === n - 1);
      if (writesMemory(p.insn)) this.smcCheck();
    }
    if (!plan.endsInBranch) {
      this.pi = plan.insns[n - 1]!;
      const [lo, hi] = this.nextRip();
      this.emit(this.exitCode(lo, hi, n));
    }
    this.emit('}');
    return this.out.join('\n');
  }
}

/** hi:lo << n for a constant n in 0..63, as source. */
function shl64src(lo: string, hi: string, n: number): Pair {
  if (n === 0) return [lo, hi];
  if (n < 32) return [`(${lo} << ${n})`, `((${hi} << ${n}) | (${lo} >>> ${32 - n}))`];
  return ['0', `(${lo} << ${n - 32})`];
}

/** hi:lo >>> n (logical) for a constant n in 0..63, as source. */
function shr64src(lo: string, hi: string, n: number): Pair {
  if (n === 0) return [lo, hi];
  if (n < 32) return [`((${lo} >>> ${n}) | (${hi} << ${32 - n}))`, `((${hi} >>> ${n}) | 0)`];
  return [`((${hi} >>> ${n - 32}) | 0)`, '0'];
}

/** hi:lo >> n (arithmetic) for a constant n in 1..63, as source. */
function sar64src(lo: string, hi: string, n: number): Pair {
  if (n < 32) return [`((${lo} >>> ${n}) | (${hi} << ${32 - n}))`, `(${hi} >> ${n})`];
  return [`(${hi} >> ${n - 32})`, `(${hi} >> 31)`];
}

/** An inline instruction that may store to memory (branches leave the block anyway). */
function writesMemory(i: Insn): boolean {
  switch (i.op) {
    case H.H_ALU_EG:
    case H.H_ALU_EI:
      return i.rm < 0 && i.sub !== H.ALU_CMP;
    case H.H_MOV_EG:
    case H.H_MOV_EI:
    case H.H_INCDEC:
    case H.H_SETCC:
    case H.H_SHIFT_I:
    case H.H_NOTNEG:
      return i.rm < 0;
    case H.H_PUSH_R:
      return true;
    default:
      return false;
  }
}

/** The generated source for `plan` (for tests and debugging). */
export function blockSource(plan: BlockPlan): string {
  return new Emitter(plan).generate();
}

/** Compiles `plan` against the CodeCache flags `hasCode`. */
export function compileBlock(plan: BlockPlan, hasCode: Uint8Array): BlockFn {
  const src = blockSource(plan);
  const records = plan.insns.map((p) => p.insn);
  // The generated code is built only from the decoded records (small integers), never from
  // guest-controlled strings, so `new Function` evaluates nothing the guest chose.
  const make = new Function(
    'X',
    'I',
    'hc',
    'P',
    'M',
    'W',
    'S',
    'RM',
    'WM',
    'U',
    'SH',
    `"use strict"; return function block(c, left) {\n${src}\n};`,
  ) as (
    x: typeof execute,
    i: Insn[],
    hc: Uint8Array,
    p: Uint8Array,
    m: typeof imul64,
    w: Int32Array,
    s: typeof executeSimdReg,
    rm: typeof readMem,
    wm: typeof writeMem,
    u: typeof umul32,
    sh: typeof shiftValue,
  ) => BlockFn;
  return make(
    execute,
    records,
    hasCode,
    PARITY,
    imul64,
    w,
    executeSimdReg,
    readMem,
    writeMem,
    umul32,
    shiftValue,
  );
}
