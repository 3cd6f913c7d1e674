// x87 floating point, the subset a kernel and glibc touch (APM vol. 1, ch. 6; vol. 5 per
// instruction). Registers hold float64, not the 80-bit double-extended format:
//
// PRECISION CAVEAT. Every x87 result is rounded to 53 bits (as with FCW.PC = double) and to the
// float64 exponent range, whatever FCW.PC says; FLD m80 rounds to the nearest float64 (values
// outside its range become 0 or infinity, with their sign), FSTP m80 writes the float64 exactly.
// NaNs keep only their sign (stored as the default negative QNaN "indefinite"). Results therefore
// match hardware when FCW.PC selects double precision and the values stay in float64 range; with
// the default extended precision they can differ in the last bits. FCW.RC is honoured by FIST/
// FISTP/FRNDINT and FST m32 only (arithmetic rounds to nearest); FLDPI, FLDL2T, FLDL2E, FLDLG2
// and FLDLN2 load the nearest float64, not the 64-bit-significand constant. Unmasked x87
// exceptions (#MF) are never raised; IE, ZE and the stack-fault bits (SF, C1) are set in FSW,
// PE/UE/OE/DE and the C1 rounding indicator are not.
//
// Implemented: FNINIT, FNCLEX, FWAIT, FLDCW/FNSTCW, FNSTSW (AX, m16), FNSTENV/FLDENV, FNSAVE/
// FRSTOR, FLD/FST/FSTP (m32, m64, m80, ST(i)), FILD/FIST/FISTP (m16, m32, m64), FLDZ/FLD1 and
// the other constants, FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR (m32, m64, m16int, m32int, ST(i), P
// forms), FCHS, FABS, FSQRT, FRNDINT, FXCH, FCOM/FCOMP/FCOMPP/FUCOM/FUCOMP/FUCOMPP, FCOMI/FCOMIP/
// FUCOMI/FUCOMIP, FCMOVcc, FTST, FXAM, FFREE, FINCSTP/FDECSTP, FNOP. Everything else in D8..DF is #UD.

import { type Cpu, VEC_UD } from './cpu.js';
import type { Insn } from './insn.js';
import { FSW_C0, FSW_C1, FSW_C2, FSW_C3, FSW_IE, FSW_SF, type SimdState } from './simd-state.js';
import { ea } from './effective-address.js';
import { fwaitCheck, x87Check } from './sse-operands.js';
import { roundInt, toF32 } from './sse-fp.js';

const FSW_ZE = 0x4;
const TWO32 = 4294967296;

/** float64 -> 80-bit double-extended, little-endian into view[0..9] (exact). */
export function f64ToF80(v: number, out: DataView): void {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, v, true);
  const hi = b.getUint32(4, true);
  const lo = b.getUint32(0, true);
  const sign = hi >>> 31;
  const exp = (hi >>> 20) & 0x7ff;
  let mhi = ((hi & 0xfffff) << 11) | (lo >>> 21);
  let mlo = (lo << 11) >>> 0;
  let e: number;
  if (exp === 0x7ff) {
    e = 0x7fff;
    if (v !== v) {
      // NaN: the indefinite (see the file comment).
      out.setUint32(0, 0, true);
      out.setUint32(4, 0xc0000000, true);
      out.setUint16(8, 0xffff, true);
      return;
    }
    mhi = 0x80000000;
    mlo = 0;
  } else if (exp === 0) {
    if (mhi === 0 && mlo === 0) {
      e = 0;
    } else {
      // Denormal float64: normalise (the 80-bit format has a wider exponent).
      e = 1 - 1023 + 16383;
      while ((mhi & 0x80000000) === 0) {
        mhi = ((mhi << 1) | (mlo >>> 31)) >>> 0;
        mlo = (mlo << 1) >>> 0;
        e--;
      }
    }
  } else {
    e = exp - 1023 + 16383;
    mhi = (mhi | 0x80000000) >>> 0;
  }
  out.setUint32(0, mlo, true);
  out.setUint32(4, mhi >>> 0, true);
  out.setUint16(8, (sign << 15) | e, true);
}

/** 80-bit double-extended at view[0..9] -> float64 (rounded to nearest). */
export function f80ToF64(v: DataView): number {
  const mlo = v.getUint32(0, true);
  const mhi = v.getUint32(4, true);
  const se = v.getUint16(8, true);
  const sign = se & 0x8000 ? -1 : 1;
  const e = se & 0x7fff;
  if (e === 0x7fff) {
    if ((mhi & 0x7fffffff) === 0 && mlo === 0) return sign * Infinity;
    return NaN;
  }
  // The 64-bit significand as top (43 bits, exact) + rest / 2^21: the addition is the one
  // rounding to 53 bits. The scaling is split in two so neither factor under- or overflows early.
  const top = mhi * 2048 + (mlo >>> 21);
  const m = top + (mlo & 0x1fffff) / 2097152;
  const x = (e === 0 ? 1 : e) - 16383 - 42;
  const half = Math.trunc(x / 2);
  return sign * m * 2 ** half * 2 ** (x - half);
}

/** FCW as stored: bit 6 reads as one; bits 7 and 13-15 are reserved zero (as AMD parts keep it). */
export function fcwValue(v: number): number {
  return (v & 0x1f3f) | 0x40;
}

// ---- the stack -------------------------------------------------------------------------------

function stIndex(s: SimdState, i: number): number {
  return (s.top + i) & 7;
}

function get(s: SimdState, i: number): number {
  const p = stIndex(s, i);
  if (s.empty[p] !== 0) {
    s.fsw = (s.fsw & ~FSW_C1) | FSW_IE | FSW_SF; // stack underflow
    return NaN;
  }
  return s.st[p]!;
}

function set(s: SimdState, i: number, v: number): void {
  const p = stIndex(s, i);
  s.st[p] = v;
  s.empty[p] = 0;
}

function push(s: SimdState, v: number): void {
  const p = (s.top - 1) & 7;
  if (s.empty[p] === 0) {
    s.fsw |= FSW_IE | FSW_SF | FSW_C1; // stack overflow: the indefinite is loaded
    v = NaN;
  }
  s.top = p;
  s.st[p] = v;
  s.empty[p] = 0;
}

function pop(s: SimdState): void {
  s.empty[s.top] = 1;
  s.top = (s.top + 1) & 7;
}

/** op 0 add 1 mul 4 sub 5 subr 6 div 7 divr (the ModRM.reg numbering of D8). */
function arith(s: SimdState, op: number, a: number, b: number): number {
  let r: number;
  switch (op) {
    case 0:
      r = a + b;
      break;
    case 1:
      r = a * b;
      break;
    case 4:
      r = a - b;
      break;
    case 5:
      r = b - a;
      break;
    case 6:
      if (b === 0 && a === a && a !== 0 && Math.abs(a) !== Infinity) s.fsw |= FSW_ZE;
      r = a / b;
      break;
    default:
      if (a === 0 && b === b && b !== 0 && Math.abs(b) !== Infinity) s.fsw |= FSW_ZE;
      r = b / a;
  }
  if (r !== r && a === a && b === b) s.fsw |= FSW_IE;
  return r;
}

/** FCOM-style condition codes C3 C2 C0 from comparing a with b. */
function compare(s: SimdState, a: number, b: number, quiet: boolean): number {
  if (a !== a || b !== b) {
    if (!quiet) s.fsw |= FSW_IE;
    return FSW_C3 | FSW_C2 | FSW_C0;
  }
  return a > b ? 0 : a < b ? FSW_C0 : FSW_C3;
}

function setCc(s: SimdState, cc: number): void {
  s.fsw = (s.fsw & ~(FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)) | cc;
}

// ---- memory operands ---------------------------------------------------------------------------

const SCRATCH = new DataView(new ArrayBuffer(16));

function readReal(c: Cpu, size: number): number {
  const v = SCRATCH;
  if (size === 4) {
    v.setInt32(0, c.read32(c.a0, c.a1), true);
    return v.getFloat32(0, true);
  }
  if (size === 8) {
    v.setInt32(0, c.read64(c.a0, c.a1), true);
    v.setInt32(4, c.v1, true);
    return v.getFloat64(0, true);
  }
  v.setInt32(0, c.read64(c.a0, c.a1), true);
  v.setInt32(4, c.v1, true);
  const n0 = (c.a0 + 8) | 0;
  v.setUint16(8, c.read16(n0, n0 >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1), true);
  return f80ToF64(v);
}

function writeReal(c: Cpu, size: number, x: number): void {
  const v = SCRATCH;
  if (size === 4) {
    v.setFloat32(0, x === x ? toF32(x, (c.simd.fcw >> 10) & 3) : x, true);
    if (x !== x) v.setUint32(0, 0xffc00000, true);
    c.write32(c.a0, c.a1, v.getInt32(0, true));
    return;
  }
  if (size === 8) {
    v.setFloat64(0, x, true);
    if (x !== x) {
      v.setUint32(4, 0xfff80000, true);
      v.setUint32(0, 0, true);
    }
    c.write64(c.a0, c.a1, v.getInt32(0, true), v.getInt32(4, true));
    return;
  }
  f64ToF80(x, v);
  const n0 = (c.a0 + 8) | 0;
  const n1 = n0 >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1;
  c.write16(n0, n1, v.getUint16(8, true)); // the second part first: a fault leaves nothing
  c.write64(c.a0, c.a1, v.getInt32(0, true), v.getInt32(4, true));
}

function readInt(c: Cpu, size: number): number {
  if (size === 2) return (c.read16(c.a0, c.a1) << 16) >> 16;
  if (size === 4) return c.read32(c.a0, c.a1);
  const lo = c.read64(c.a0, c.a1);
  return c.v1 * TWO32 + (lo >>> 0); // rounds above 2^53 (precision caveat)
}

function writeInt(c: Cpu, s: SimdState, size: number, x: number): void {
  const r = x !== x ? NaN : roundInt(x, (s.fcw >> 10) & 3);
  const limit = size === 2 ? 32768 : size === 4 ? 2147483648 : 9223372036854775808;
  let lo: number;
  let hi: number;
  if (r !== r || r >= limit || r < -limit) {
    s.fsw |= FSW_IE;
    lo = size === 2 ? 0x8000 : size === 4 ? 0x80000000 | 0 : 0;
    hi = size === 8 ? 0x80000000 | 0 : 0;
  } else {
    hi = Math.floor(r / TWO32);
    lo = (r - hi * TWO32) | 0;
  }
  if (size === 2) c.write16(c.a0, c.a1, lo & 0xffff);
  else if (size === 4) c.write32(c.a0, c.a1, lo);
  else c.write64(c.a0, c.a1, lo, hi | 0);
}

/** The full tag word: 00 valid, 01 zero, 10 special, 11 empty, per physical register. */
function fullTag(s: SimdState): number {
  let t = 0;
  for (let p = 0; p < 8; p++) {
    let tag = 3;
    if (s.empty[p] === 0) {
      const v = s.st[p]!;
      tag = v === 0 ? 1 : Number.isFinite(v) && Math.abs(v) >= 2.2250738585072014e-308 ? 0 : 2;
    }
    t |= tag << (2 * p);
  }
  return t;
}

/** FNSTENV/FNSAVE's 28-byte protected-mode environment (APM vol. 1, figure 6-12). */
function storeEnv(c: Cpu, s: SimdState): void {
  const words = [s.fcw, s.fswFull, fullTag(s), s.fip, (s.fop & 0x7ff) << 16, s.fdp, 0];
  for (let k = 0; k < 7; k++) {
    const lo = (c.a0 + 4 * k) | 0;
    c.write32(lo, lo >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1, words[k]! | 0);
  }
}

function loadEnv(c: Cpu, s: SimdState): void {
  const w: number[] = [];
  for (let k = 0; k < 7; k++) {
    const lo = (c.a0 + 4 * k) | 0;
    w.push(c.read32(lo, lo >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1));
  }
  s.fcw = fcwValue(w[0]!);
  s.fsw = w[1]! & 0xffff & ~0x3800;
  s.top = (w[1]! >> 11) & 7;
  for (let p = 0; p < 8; p++) s.empty[p] = ((w[2]! >> (2 * p)) & 3) === 3 ? 1 : 0;
  s.fip = w[3]!;
  s.fop = (w[4]! >>> 16) & 0x7ff;
  s.fdp = w[5]!;
}

function offset(c: Cpu, base0: number, base1: number, off: number): void {
  const lo = (base0 + off) | 0;
  c.a0 = lo;
  c.a1 = lo >>> 0 < base0 >>> 0 ? (base1 + 1) | 0 : base1;
}

// ---- execution -------------------------------------------------------------------------------

const CONSTANTS = [1, Math.log2(10), Math.LOG2E, Math.PI, Math.log10(2), Math.LN2, 0];

/** FWAIT: #NM when MP and TS are set; unmasked exceptions are never pending (no #MF). */
export function fwait(c: Cpu): void {
  fwaitCheck(c);
}

export function executeX87(c: Cpu, i: Insn): void {
  x87Check(c);
  const s = c.simd;
  const esc = i.sub >> 3; // opcode - 0xD8
  const reg = i.sub & 7;
  if (i.rm < 0) {
    ea(c, i);
    memoryForm(c, s, esc, reg);
    if (!(esc === 1 && reg >= 4) && !(esc === 5 && reg >= 4)) {
      s.fdp = c.a0;
      s.fip = c.startLo;
      s.fop = (esc << 8) | (reg << 3);
    }
    return;
  }
  const rm = i.rm & 7;
  registerForm(c, s, esc, reg, rm);
  if (!(esc === 3 && reg === 4) && !(esc === 7 && reg === 4)) {
    s.fip = c.startLo;
    s.fop = (esc << 8) | 0xc0 | (reg << 3) | rm;
  }
}

function memoryForm(c: Cpu, s: SimdState, esc: number, reg: number): void {
  switch (esc) {
    case 0: // D8: arithmetic with m32fp
    case 2: // DA: m32int
    case 4: // DC: m64fp
    case 6: {
      // DE: m16int
      const b =
        esc === 0 ? readReal(c, 4) : esc === 4 ? readReal(c, 8) : readInt(c, esc === 2 ? 4 : 2);
      const a = get(s, 0);
      if (reg === 2 || reg === 3) {
        setCc(s, compare(s, a, b, false));
        if (reg === 3) pop(s);
        return;
      }
      set(s, 0, arith(s, reg, a, b));
      return;
    }
    case 1: // D9
      switch (reg) {
        case 0:
          push(s, readReal(c, 4));
          return;
        case 2:
        case 3:
          writeReal(c, 4, get(s, 0));
          if (reg === 3) pop(s);
          return;
        case 4:
          loadEnv(c, s);
          return;
        case 5:
          s.fcw = fcwValue(c.read16(c.a0, c.a1));
          return;
        case 6:
          storeEnv(c, s);
          s.fcw |= 0x3f; // FNSTENV masks all exceptions afterwards
          return;
        case 7:
          c.write16(c.a0, c.a1, s.fcw);
          return;
        default:
          c.fault(VEC_UD);
      }
      return;
    case 3: // DB
      switch (reg) {
        case 0:
          push(s, readInt(c, 4));
          return;
        case 2:
        case 3:
          writeInt(c, s, 4, get(s, 0));
          if (reg === 3) pop(s);
          return;
        case 5:
          push(s, readReal(c, 10));
          return;
        case 7:
          writeReal(c, 10, get(s, 0));
          pop(s);
          return;
        default:
          c.fault(VEC_UD); // FISTTP (SSE3, not advertised)
      }
      return;
    case 5: // DD
      switch (reg) {
        case 0:
          push(s, readReal(c, 8));
          return;
        case 2:
        case 3:
          writeReal(c, 8, get(s, 0));
          if (reg === 3) pop(s);
          return;
        case 4: {
          // FRSTOR: environment then ST0..ST7 as 80-bit values.
          const b0 = c.a0;
          const b1 = c.a1;
          const regs: number[] = [];
          for (let k = 0; k < 8; k++) {
            offset(c, b0, b1, 28 + 10 * k);
            regs.push(readReal(c, 10));
          }
          offset(c, b0, b1, 0);
          loadEnv(c, s);
          for (let k = 0; k < 8; k++) s.st[(s.top + k) & 7] = regs[k]!;
          return;
        }
        case 6: {
          // FNSAVE, then FNINIT.
          const b0 = c.a0;
          const b1 = c.a1;
          offset(c, b0, b1, 107);
          c.translate(c.a0, c.a1, 1);
          offset(c, b0, b1, 0);
          storeEnv(c, s);
          for (let k = 0; k < 8; k++) {
            offset(c, b0, b1, 28 + 10 * k);
            writeReal(c, 10, s.st[(s.top + k) & 7]!);
          }
          s.fninit();
          return;
        }
        case 7:
          c.write16(c.a0, c.a1, s.fswFull);
          return;
        default:
          c.fault(VEC_UD);
      }
      return;
    default: // DF
      switch (reg) {
        case 0:
          push(s, readInt(c, 2));
          return;
        case 2:
        case 3:
          writeInt(c, s, 2, get(s, 0));
          if (reg === 3) pop(s);
          return;
        case 5:
          push(s, readInt(c, 8));
          return;
        case 7:
          writeInt(c, s, 8, get(s, 0));
          pop(s);
          return;
        default:
          c.fault(VEC_UD); // FBLD/FBSTP/FISTTP
      }
  }
}

function registerForm(c: Cpu, s: SimdState, esc: number, reg: number, rm: number): void {
  switch (esc) {
    case 0: {
      // D8: ST(0) = ST(0) op ST(i); FCOM/FCOMP ST(i)
      const a = get(s, 0);
      const b = get(s, rm);
      if (reg === 2 || reg === 3) {
        setCc(s, compare(s, a, b, false));
        if (reg === 3) pop(s);
        return;
      }
      set(s, 0, arith(s, reg, a, b));
      return;
    }
    case 4:
    case 6: {
      // DC / DE: ST(i) = ST(i) op ST(0) (sub/subr and div/divr swapped), DE pops.
      if (reg === 2 || reg === 3) {
        if (esc === 6 && reg === 3 && rm === 1) {
          // FCOMPP
          setCc(s, compare(s, get(s, 0), get(s, 1), false));
          pop(s);
          pop(s);
          return;
        }
        c.fault(VEC_UD);
      }
      const op = reg >= 4 ? reg ^ 1 : reg;
      set(s, rm, arith(s, op, get(s, rm), get(s, 0)));
      if (esc === 6) pop(s);
      return;
    }
    case 1: // D9
      d9(c, s, reg, rm);
      return;
    case 2: // DA
      if (reg === 5 && rm === 1) {
        // FUCOMPP
        setCc(s, compare(s, get(s, 0), get(s, 1), true));
        pop(s);
        pop(s);
        return;
      }
      fcmov(c, s, reg, rm, false);
      return;
    case 3: // DB
      if (reg === 4 && rm === 2) {
        s.fsw &= 0x7f00; // FNCLEX: exception flags, SF, ES and B
        return;
      }
      if (reg === 4 && rm === 3) {
        s.fninit();
        return;
      }
      if (reg === 5 || reg === 6) {
        comi(c, s, rm, reg === 5);
        return;
      }
      if (reg < 4) {
        fcmov(c, s, reg, rm, true);
        return;
      }
      c.fault(VEC_UD);
      return;
    case 5: // DD
      switch (reg) {
        case 0: // FFREE
          s.empty[stIndex(s, rm)] = 1;
          return;
        case 2:
        case 3:
          set(s, rm, get(s, 0));
          if (reg === 3) pop(s);
          return;
        case 4:
        case 5:
          setCc(s, compare(s, get(s, 0), get(s, rm), true));
          if (reg === 5) pop(s);
          return;
        default:
          c.fault(VEC_UD);
      }
      return;
    default: // DF
      if (reg === 4 && rm === 0) {
        c.r[0] = (c.r[0]! & ~0xffff) | s.fswFull; // FNSTSW AX
        return;
      }
      if (reg === 5 || reg === 6) {
        comi(c, s, rm, reg === 5);
        pop(s);
        return;
      }
      c.fault(VEC_UD);
  }
}

/** FCMOVcc ST(0), ST(i): reg 0 B, 1 E, 2 BE, 3 U; DB (negate) the NB/NE/NBE/NU forms. */
function fcmov(c: Cpu, s: SimdState, reg: number, rm: number, negate: boolean): void {
  if (reg > 3) c.fault(VEC_UD);
  const f = c.flags;
  let t: boolean;
  if (reg === 0) t = f.cf() !== 0;
  else if (reg === 1) t = f.zf();
  else if (reg === 2) t = f.cf() !== 0 || f.zf();
  else t = f.pf();
  // A stack underflow (either register empty) loads the indefinite whatever the condition.
  const under = s.empty[stIndex(s, rm)] !== 0 || s.empty[s.top] !== 0;
  const v = get(s, rm);
  const v0 = get(s, 0);
  set(s, 0, under ? NaN : t !== negate ? v : v0);
}

/** FCOMI/FUCOMI: ZF PF CF from ST(0) vs ST(i); OF SF AF cleared. */
function comi(c: Cpu, s: SimdState, rm: number, quiet: boolean): void {
  const a = get(s, 0);
  const b = get(s, rm);
  let f: number;
  if (a !== a || b !== b) {
    if (!quiet) s.fsw |= FSW_IE;
    f = 0x45;
  } else {
    f = a > b ? 0 : a < b ? 1 : 0x40;
  }
  s.fsw &= ~FSW_C1;
  c.flags.assign(0x8d5, f);
}

function d9(c: Cpu, s: SimdState, reg: number, rm: number): void {
  switch (reg) {
    case 0: // FLD ST(i)
      push(s, get(s, rm));
      return;
    case 1: {
      // FXCH
      const a = get(s, 0);
      const b = get(s, rm);
      set(s, 0, b);
      set(s, rm, a);
      s.fsw &= ~FSW_C1;
      return;
    }
    case 2:
      if (rm === 0) return; // FNOP
      break;
    case 4:
      switch (rm) {
        case 0:
          set(s, 0, -get(s, 0));
          return;
        case 1:
          set(s, 0, Math.abs(get(s, 0)));
          return;
        case 4: // FTST
          setCc(s, compare(s, get(s, 0), 0, false));
          return;
        case 5: {
          // FXAM: class in C3 C2 C0, sign in C1
          const p = s.top;
          const v = s.st[p]!;
          let cc: number;
          if (s.empty[p] !== 0) cc = FSW_C3 | FSW_C0;
          else if (v !== v) cc = FSW_C0;
          else if (!Number.isFinite(v)) cc = FSW_C2 | FSW_C0;
          else if (v === 0) cc = FSW_C3;
          else cc = FSW_C2; // normal (float64 denormals are normal in 80-bit format)
          if (Object.is(v, -0) || v < 0 || (v !== v && s.empty[p] === 0)) cc |= FSW_C1;
          setCc(s, cc);
          return;
        }
        default:
      }
      break;
    case 5:
      if (rm <= 6) {
        push(s, CONSTANTS[rm]!);
        return;
      }
      break;
    case 6:
      if (rm === 6) {
        s.top = (s.top - 1) & 7; // FDECSTP
        return;
      }
      if (rm === 7) {
        s.top = (s.top + 1) & 7; // FINCSTP
        return;
      }
      break;
    case 7:
      if (rm === 2) {
        const a = get(s, 0);
        if (a < 0) s.fsw |= FSW_IE;
        set(s, 0, a < 0 ? NaN : Math.sqrt(a));
        return;
      }
      if (rm === 4) {
        set(s, 0, roundInt(get(s, 0), (s.fcw >> 10) & 3)); // FRNDINT
        return;
      }
      break;
    default:
  }
  c.fault(VEC_UD);
}
