// x87 floating point (APM vol. 1, ch. 6; Intel SDM vol. 1, ch. 8; vol. 2/5 per instruction).
// Registers hold the exact 80-bit double-extended value (f80.ts, SimdState.stSe/stHi/stLo), and
// every result is rounded once from the exact value (f80-arith.ts, f80-round.ts):
//
// - FCW.PC (24, 53 or 64 significand bits; the reserved 1 acts as 64, as the difftest's host
//   does) applies to FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR in all forms and FSQRT, as SDM 8.1.5.2
//   lists; the exponent keeps its 15 bits. FCW.RC applies to all of them, FST m32/m64, FIST/FISTP,
//   FRNDINT, FSCALE and the constants (the exact value rounded to 64 bits, without PE).
// - Masked responses: IE with the QNaN indefinite for invalid operations and unsupported
//   encodings (unnormals, pseudo-NaNs, pseudo-infinities), NaNs propagated with their payloads,
//   DE for denormal and pseudo-denormal operands of arithmetic and compares (FST and FIST raise
//   none; a NaN operand or a division by zero takes its place), ZE, OE, UE (tiny after rounding
//   and inexact), PE, and C1 set when the result was rounded up. FLD/FSTP m80, FXSAVE/FXRSTOR,
//   FNSAVE/FRSTOR and the VMSA world switch copy the 80 bits.
// - FPREM/FPREM1 with exponents D >= 64 apart reduce partially (C2 set) by 2^(D - N) with
//   N = 32 + D mod 32, the host's choice within the SDM's 32..63.
//
// Gaps: arithmetic handles exceptions as if masked (an unmasked one sets its FSW flag but not
// ES or B, and nothing raises #MF; only FLDENV/FRSTOR/FXRSTOR recompute ES and B from the flags
// and masks they load, so FSW can show a flag unmasked with ES clear); there are no transcendental instructions (F2XM1, FYL2X, FYL2XP1, FPTAN, FPATAN,
// FSIN, FCOS, FSINCOS are #UD) nor FBLD/FBSTP. Speed: FADD/FSUB/FMUL of normal operands and
// FST m64 round on 32-bit limbs (f80-fast.ts, about 0.3 us per instruction); the rest rounds on
// BigInt (about 1 us). x87 is not on Linux's hot paths.
//
// Implemented: FNINIT, FNCLEX, FWAIT, FLDCW/FNSTCW, FNSTSW (AX, m16), FNSTENV/FLDENV, FNSAVE/
// FRSTOR, FLD/FST/FSTP (m32, m64, m80, ST(i)), FILD/FIST/FISTP (m16, m32, m64), FISTTP (m16,
// m32, m64), FLDZ/FLD1/FLDPI/FLDL2T/FLDL2E/FLDLG2/FLDLN2, FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR (m32,
// m64, m16int, m32int, ST(i), P forms), FCHS, FABS, FSQRT, FRNDINT, FSCALE, FXTRACT, FPREM/FPREM1,
// FXCH, FCOM/FCOMP/FCOMPP/FUCOM/FUCOMP/FUCOMPP, FCOMI/FCOMIP/FUCOMI/FUCOMIP, FCMOVcc, FTST, FXAM,
// FFREE, FINCSTP/FDECSTP, FNOP. Everything else in D8..DF is #UD.

import { type Cpu, VEC_UD } from './cpu.js';
import type { Insn } from './insn.js';
import {
  FSW_C0,
  FSW_C1,
  FSW_C2,
  FSW_C3,
  FSW_IE,
  FSW_SF,
  RC_NEAREST,
  RC_UP,
  RC_ZERO,
  type SimdState,
} from './simd-state.js';
import { ea } from './effective-address.js';
import { ACCESS_WRITE } from './translator.js';
import { fwaitCheck, x87Check } from './sse-operands.js';
import {
  classify,
  copyF80,
  F80,
  f32ToF80,
  f64ToF80Bits,
  i64ToF80,
  K_DENORMAL,
  K_INF,
  K_NORMAL,
  K_QNAN,
  K_SNAN,
  K_UNSUPPORTED,
  K_ZERO,
  quiet,
  setF80,
  setIndefinite,
  setInf,
  setZero,
  X_C1,
  X_DE,
  X_IE,
  X_PE,
  X_ZE,
} from './f80.js';
import {
  f64Lo,
  FMT_F32,
  FMT_F64,
  FMT_REG,
  intInexact,
  intUp,
  intValue,
  packF32,
  packF64,
  round,
  roundToInteger,
} from './f80-round.js';
import { f64FastHi, f64FastLo, fastToF64 } from './f80-fast.js';
import {
  add,
  cmpResult,
  compare,
  div,
  extract,
  mul,
  prem,
  premPartial,
  premQuotient,
  qOf,
  roundInteger,
  scale,
  sigOf,
  sqrt,
} from './f80-arith.js';

/** FCW as stored: bit 6 reads as one; bits 7 and 13-15 are reserved zero (as AMD parts keep it). */
export function fcwValue(v: number): number {
  return (v & 0x1f3f) | 0x40;
}

// Operands and results, allocated once.
const A = new F80();
const B = new F80();
const R = new F80();

// ---- the stack -------------------------------------------------------------------------------

function stIndex(s: SimdState, i: number): number {
  return (s.top + i) & 7;
}

/** Physical register p into d. */
export function loadReg(s: SimdState, p: number, d: F80): void {
  d.se = s.stSe[p]!;
  d.hi = s.stHi[p]!;
  d.lo = s.stLo[p]!;
}

/** x into physical register p (its tag is not changed). */
export function storeReg(s: SimdState, p: number, x: F80): void {
  s.stSe[p] = x.se;
  s.stHi[p] = x.hi;
  s.stLo[p] = x.lo;
}

/** ST(i) into d; an empty register is a stack underflow (IE, SF, C1 = 0) and reads as the indefinite. */
function get(s: SimdState, i: number, d: F80): boolean {
  const p = stIndex(s, i);
  if (s.empty[p] !== 0) {
    s.fsw = (s.fsw & ~FSW_C1) | FSW_IE | FSW_SF;
    setIndefinite(d);
    return false;
  }
  loadReg(s, p, d);
  return true;
}

function set(s: SimdState, i: number, x: F80): void {
  const p = stIndex(s, i);
  storeReg(s, p, x);
  s.empty[p] = 0;
}

/**
 * Pushes x (which a stack overflow replaces by the indefinite); returns the overflow's flags
 * (IE, SF, C1 = 1) or 0, for the caller's report.
 */
function push(s: SimdState, x: F80): number {
  const p = (s.top - 1) & 7;
  let flags = 0;
  if (s.empty[p] === 0) {
    setIndefinite(x);
    flags = X_IE | FSW_SF | X_C1;
  }
  s.top = p;
  s.empty[p] = 0;
  storeReg(s, p, x);
  return flags;
}

function pop(s: SimdState): void {
  s.empty[s.top] = 1;
  s.top = (s.top + 1) & 7;
}

/**
 * Exception flags (and SF) of an operation into FSW, where they stay set; C1 is replaced by the
 * operation's (rounded up, or the stack fault's direction). An underflow's SF/IE set by get() stay.
 */
function report(s: SimdState, flags: number): void {
  s.fsw = (s.fsw & ~FSW_C1) | (flags & (0x7f | X_C1));
}

function setCc(s: SimdState, cc: number): void {
  s.fsw = (s.fsw & ~(FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)) | cc;
}

/** FCOM-style condition codes by cmpResult (greater, less, equal, unordered). */
const FCOM_CC = [0, FSW_C0, FSW_C3, FSW_C3 | FSW_C2 | FSW_C0];
/** FCOMI's ZF PF CF by cmpResult. */
const FCOMI_FLAGS = [0, 0x1, 0x40, 0x45];

// ---- memory operands ---------------------------------------------------------------------------

/** A real operand of `size` bytes into d; returns X_DE for a float32/float64 denormal. */
function readReal(c: Cpu, size: number, d: F80): number {
  if (size === 4) return f32ToF80(c.read32(c.a0, c.a1), d);
  const lo = c.read64(c.a0, c.a1);
  const hi = c.v1;
  if (size === 8) return f64ToF80Bits(hi, lo, d);
  const n0 = (c.a0 + 8) | 0;
  const se = c.read16(n0, n0 >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1);
  setF80(d, se, hi, lo);
  return 0;
}

/** FLD m32/m64/m80: the operand pushed; an SNaN from m32/m64 is quieted with IE. */
function fld(c: Cpu, s: SimdState, size: number): void {
  let flags = readReal(c, size, B);
  if (size !== 10 && classify(B) === K_SNAN) {
    quiet(B);
    flags |= X_IE;
  }
  // A stack overflow replaces the operand and with it the operand's DE.
  const overflow = push(s, B);
  report(s, overflow !== 0 ? overflow | (flags & X_IE) : flags);
}

/** FST/FSTP m32/m64/m80 of x; the state changes only after the store (a fault leaves none). */
function writeReal(c: Cpu, s: SimdState, size: number, x: F80): void {
  if (size === 10) {
    // Both ends writable before any byte is written: a fault leaves memory untouched.
    const l0 = (c.a0 + 9) | 0;
    c.translate(c.a0, c.a1, ACCESS_WRITE);
    c.translate(l0, l0 >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1, ACCESS_WRITE);
    const n0 = (c.a0 + 8) | 0;
    const n1 = n0 >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1;
    c.write64(c.a0, c.a1, x.lo | 0, x.hi | 0);
    c.write16(n0, n1, x.se);
    report(s, 0);
    return;
  }
  const single = size === 4;
  const k = classify(x);
  const sign = x.se >>> 15;
  const fast = !single && k === K_NORMAL ? fastToF64(x, (s.fcw >> 10) & 3) : -1;
  let flags = 0;
  let hi: number;
  let lo = 0;
  if (k === K_ZERO || k === K_INF) {
    hi = (sign << 31) | (k === K_ZERO ? 0 : single ? 0x7f800000 : 0x7ff00000);
  } else if (k === K_QNAN || k === K_SNAN || k === K_UNSUPPORTED) {
    // NaNs keep their top fraction bits, quieted; unsupported encodings store the indefinite.
    if (k === K_SNAN || k === K_UNSUPPORTED) flags = X_IE;
    const h = k === K_UNSUPPORTED ? 0xc0000000 : (x.hi | 0x40000000) >>> 0;
    const l = k === K_UNSUPPORTED ? 0 : x.lo;
    const sg = k === K_UNSUPPORTED ? 1 : sign;
    if (single) {
      hi = (sg << 31) | 0x7f800000 | ((h >>> 8) & 0x7fffff);
    } else {
      hi = (sg << 31) | 0x7ff00000 | ((h >>> 11) & 0xfffff);
      lo = (h << 21) | (l >>> 11);
    }
  } else if (fast >= 0) {
    // A float64 normal result, rounded without BigInt.
    flags = fast;
    hi = f64FastHi;
    lo = f64FastLo;
  } else {
    // No DE: a denormal register is stored (rounded) like any other value.
    flags = round(sign, sigOf(x), qOf(x), single ? FMT_F32 : FMT_F64, (s.fcw >> 10) & 3);
    if (single) {
      hi = packF32();
    } else {
      hi = packF64();
      lo = f64Lo;
    }
  }
  if (single) c.write32(c.a0, c.a1, hi | 0);
  else c.write64(c.a0, c.a1, lo | 0, hi | 0);
  report(s, flags);
}

/** An integer operand of `size` bytes into d (exact). */
function readInt(c: Cpu, size: number, d: F80): void {
  if (size === 2) {
    const v = (c.read16(c.a0, c.a1) << 16) >> 16;
    i64ToF80(v >> 31, v, d);
  } else if (size === 4) {
    const v = c.read32(c.a0, c.a1);
    i64ToF80(v >> 31, v, d);
  } else {
    const lo = c.read64(c.a0, c.a1);
    i64ToF80(c.v1, lo, d);
  }
}

/** FIST/FISTP (rc = FCW.RC) and FISTTP (RC_ZERO) of x to a `size`-byte integer. */
function writeInt(c: Cpu, s: SimdState, size: number, x: F80, rc: number): void {
  const k = classify(x);
  const sign = x.se >>> 15;
  let flags = 0;
  let ok = false;
  let lo = 0;
  let hi = 0;
  if (k === K_ZERO) {
    ok = true;
  } else if (k === K_NORMAL || k === K_DENORMAL) {
    const q = qOf(x);
    // Beyond 2^64 every size overflows; skip the shift.
    if (q <= 0) {
      roundToInteger(sign, sigOf(x), q, rc);
      const limit = 1n << BigInt(8 * size - 1);
      if (sign !== 0 ? intValue <= limit : intValue < limit) {
        ok = true;
        const v = BigInt.asUintN(64, sign !== 0 ? -intValue : intValue);
        lo = Number(v & 0xffffffffn);
        hi = Number(v >> 32n);
        flags = (intInexact ? X_PE : 0) | (intUp ? X_C1 : 0);
      }
    }
  }
  if (!ok) {
    // The integer indefinite.
    flags = X_IE;
    lo = size === 2 ? 0x8000 : size === 4 ? 0x80000000 : 0;
    hi = size === 8 ? 0x80000000 : 0;
  }
  if (size === 2) c.write16(c.a0, c.a1, lo & 0xffff);
  else if (size === 4) c.write32(c.a0, c.a1, lo | 0);
  else c.write64(c.a0, c.a1, lo | 0, hi | 0);
  report(s, flags);
}

/** The full tag word: 00 valid, 01 zero, 10 special, 11 empty, per physical register. */
function fullTag(s: SimdState): number {
  let t = 0;
  for (let p = 0; p < 8; p++) {
    let tag = 3;
    if (s.empty[p] === 0) {
      loadReg(s, p, R);
      const k = classify(R);
      tag = k === K_NORMAL ? 0 : k === K_ZERO ? 1 : 2;
    }
    t |= tag << (2 * p);
  }
  return t;
}

/**
 * A loaded FSW (without TOP) with ES and B recomputed from it and FCW: set when an exception flag
 * is unmasked, as FLDENV/FRSTOR/FXRSTOR leave them (SDM 8.1.3; the difftest's host agrees).
 */
export function statusWithSummary(fsw: number, fcw: number): number {
  const pending = (fsw & ~fcw & 0x3f) !== 0;
  return (fsw & 0x7f7f & ~0x3800) | (pending ? 0x8080 : 0);
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
  s.fsw = statusWithSummary(w[1]!, s.fcw);
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

/**
 * FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2 (D9 E9..ED): sign-and-exponent, the significand truncated
 * to 64 bits, and whether the exact value rounds up to nearest. The SDM (FLD1/FLDL2T/...) rounds
 * the exact constant by FCW.RC without raising PE.
 */
const CONSTANTS: readonly (readonly [number, number, number, boolean])[] = [
  [0x4000, 0xd49a784b, 0xcd1b8afe, false], // log2(10)
  [0x3fff, 0xb8aa3b29, 0x5c17f0bb, true], // log2(e)
  [0x4000, 0xc90fdaa2, 0x2168c234, true], // pi
  [0x3ffd, 0x9a209a84, 0xfbcff798, true], // log10(2)
  [0x3ffe, 0xb17217f7, 0xd1cf79ab, true], // ln(2)
];

/** FWAIT: #NM when MP and TS are set; pending unmasked exceptions raise no #MF (see the header). */
export function fwait(c: Cpu): void {
  fwaitCheck(c);
}

/** FILD m16/m32/m64 (`size` bytes). */
function fild(c: Cpu, s: SimdState, size: number): void {
  readInt(c, size, B);
  report(s, push(s, B));
}

/** FISTTP (`reg` 1: truncating), FIST (2) and FISTP (3) of `size` bytes. */
function fist(c: Cpu, s: SimdState, size: number, reg: number): void {
  get(s, 0, A);
  writeInt(c, s, size, A, reg === 1 ? RC_ZERO : (s.fcw >> 10) & 3);
  if (reg !== 2) pop(s);
}

/**
 * Bytes of the memory operand of escape D8+`esc` with ModRM.reg `reg`, for the segment limit
 * check (SDM vol. 2 opcode maps; environments as their 32-bit images, which are what this CPU
 * stores). Invalid encodings answer 1, so their #UD is not preempted by a #GP.
 */
function operandBytes(esc: number, reg: number): number {
  switch (esc) {
    case 0: // m32 real arithmetic
    case 2: // m32 integer arithmetic
      return 4;
    case 4: // m64 real arithmetic
      return 8;
    case 6: // m16 integer arithmetic
      return 2;
    case 1: // FLD/FST/FSTP m32, FLDENV/FNSTENV, FLDCW/FNSTCW
      return reg === 1 ? 1 : reg === 4 || reg === 6 ? 28 : reg === 5 || reg === 7 ? 2 : 4;
    case 3: // FILD/FISTTP/FIST/FISTP m32, FLD/FSTP m80
      return reg === 4 || reg === 6 ? 1 : reg >= 5 ? 10 : 4;
    case 5: // FLD/FISTTP/FST/FSTP m64, FRSTOR/FNSAVE, FNSTSW m16
      return reg === 5 ? 1 : reg === 4 || reg === 6 ? 108 : reg === 7 ? 2 : 8;
    default: // FILD/FISTTP/FIST/FISTP m16, FBLD/FBSTP m80, FILD/FISTP m64
      return reg === 5 || reg === 7 ? 8 : reg === 4 || reg === 6 ? 10 : 2;
  }
}

export function executeX87(c: Cpu, i: Insn): void {
  x87Check(c);
  const s = c.simd;
  const esc = i.sub >> 3; // opcode - 0xD8
  const reg = i.sub & 7;
  if (i.rm < 0) {
    ea(c, i, operandBytes(esc, reg));
    const fdp = c.a0;
    memoryForm(c, s, esc, reg);
    if (!(esc === 1 && reg >= 4) && !(esc === 5 && reg >= 4)) {
      s.fdp = fdp;
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

/**
 * d = a op b for op by the ModRM.reg numbering of D8 (0 add, 1 mul, 4 sub, 5 subr, 6 div,
 * 7 divr), rounded by FCW.PC and FCW.RC; returns the flags.
 */
function arith(s: SimdState, op: number, a: F80, b: F80, d: F80): number {
  const f = FMT_REG[(s.fcw >> 8) & 3]!;
  const rc = (s.fcw >> 10) & 3;
  switch (op) {
    case 0:
      return add(a, b, false, d, f, rc);
    case 1:
      return mul(a, b, d, f, rc);
    case 4:
      return add(a, b, true, d, f, rc);
    case 5:
      return add(b, a, true, d, f, rc);
    case 6:
      return div(a, b, d, f, rc);
    default:
      return div(b, a, d, f, rc);
  }
}

/** ST(i) = ST(i) op x (ST(0) for the D8 forms); an empty operand gives the indefinite. */
function arithInto(
  s: SimdState,
  i: number,
  op: number,
  a: F80,
  okA: boolean,
  b: F80,
  okB: boolean,
  srcFlags: number,
): void {
  let flags: number;
  if (!okA || !okB) {
    setIndefinite(R);
    flags = 0;
  } else {
    // A float32/float64 denormal operand's DE gives way to a NaN or unsupported operand and to a
    // division by zero, as a register denormal's does.
    const nan = classify(a) >= K_QNAN || classify(b) >= K_QNAN;
    flags = arith(s, op, a, b, R);
    if (!nan && (flags & X_ZE) === 0) flags |= srcFlags;
  }
  set(s, i, R);
  report(s, flags | (s.fsw & (X_IE | FSW_SF)));
}

/** FCOM-family condition codes for ST(0) vs b (C1 cleared). */
function fcom(
  s: SimdState,
  okA: boolean,
  okB: boolean,
  b: F80,
  quietNaN: boolean,
  srcFlags: number,
): void {
  let flags = 0;
  let cc = FCOM_CC[3]!;
  if (okA && okB) {
    flags = compare(A, b, quietNaN);
    if ((flags & X_IE) === 0) flags |= srcFlags;
    cc = FCOM_CC[cmpResult]!;
  }
  s.fsw |= flags;
  setCc(s, cc);
}

function memoryForm(c: Cpu, s: SimdState, esc: number, reg: number): void {
  switch (esc) {
    case 0: // D8: arithmetic with m32fp
    case 2: // DA: m32int
    case 4: // DC: m64fp
    case 6: {
      // DE: m16int
      let src = 0;
      if (esc === 0) src = readReal(c, 4, B);
      else if (esc === 4) src = readReal(c, 8, B);
      else readInt(c, esc === 2 ? 4 : 2, B);
      const ok = get(s, 0, A);
      if (reg === 2 || reg === 3) {
        fcom(s, ok, true, B, false, src);
        if (reg === 3) pop(s);
        return;
      }
      arithInto(s, 0, reg, A, ok, B, true, src);
      return;
    }
    case 1: // D9
      switch (reg) {
        case 0:
          fld(c, s, 4);
          return;
        case 2:
        case 3:
          get(s, 0, A);
          writeReal(c, s, 4, A);
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
          fild(c, s, 4);
          return;
        case 1:
        case 2:
        case 3:
          fist(c, s, 4, reg);
          return;
        case 5:
          fld(c, s, 10);
          return;
        case 7:
          get(s, 0, A);
          writeReal(c, s, 10, A);
          pop(s);
          return;
        default:
          c.fault(VEC_UD);
      }
      return;
    case 5: // DD
      switch (reg) {
        case 0:
          fld(c, s, 8);
          return;
        case 1:
          fist(c, s, 8, 1); // FISTTP m64
          return;
        case 2:
        case 3:
          get(s, 0, A);
          writeReal(c, s, 8, A);
          if (reg === 3) pop(s);
          return;
        case 4:
          frstor(c, s);
          return;
        case 6:
          fnsave(c, s);
          return;
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
          fild(c, s, 2);
          return;
        case 1:
        case 2:
        case 3:
          fist(c, s, 2, reg);
          return;
        case 5:
          fild(c, s, 8);
          return;
        case 7:
          fist(c, s, 8, 3); // FISTP m64
          return;
        default:
          c.fault(VEC_UD); // FBLD/FBSTP
      }
  }
}

// FRSTOR reads the whole image before changing state; staged here.
const SAVE_SE = new Uint16Array(8);
const SAVE_HI = new Uint32Array(8);
const SAVE_LO = new Uint32Array(8);

/** FRSTOR: the environment, then ST0..ST7 as 80-bit values. */
function frstor(c: Cpu, s: SimdState): void {
  const b0 = c.a0;
  const b1 = c.a1;
  for (let k = 0; k < 8; k++) {
    offset(c, b0, b1, 28 + 10 * k);
    readReal(c, 10, R);
    SAVE_SE[k] = R.se;
    SAVE_HI[k] = R.hi;
    SAVE_LO[k] = R.lo;
  }
  offset(c, b0, b1, 0);
  loadEnv(c, s);
  for (let k = 0; k < 8; k++) {
    const p = (s.top + k) & 7;
    s.stSe[p] = SAVE_SE[k]!;
    s.stHi[p] = SAVE_HI[k]!;
    s.stLo[p] = SAVE_LO[k]!;
  }
}

/** FNSAVE: the environment and ST0..ST7, then FNINIT. */
function fnsave(c: Cpu, s: SimdState): void {
  const b0 = c.a0;
  const b1 = c.a1;
  offset(c, b0, b1, 107);
  c.translate(c.a0, c.a1, ACCESS_WRITE);
  offset(c, b0, b1, 0);
  storeEnv(c, s);
  for (let k = 0; k < 8; k++) {
    offset(c, b0, b1, 28 + 10 * k);
    loadReg(s, (s.top + k) & 7, R);
    const n0 = (c.a0 + 8) | 0;
    c.write16(n0, n0 >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1, R.se);
    c.write64(c.a0, c.a1, R.lo | 0, R.hi | 0);
  }
  s.fninit();
}

function registerForm(c: Cpu, s: SimdState, esc: number, reg: number, rm: number): void {
  switch (esc) {
    case 0: {
      // D8: ST(0) = ST(0) op ST(i); FCOM/FCOMP ST(i)
      const okA = get(s, 0, A);
      const okB = get(s, rm, B);
      if (reg === 2 || reg === 3) {
        fcom(s, okA, okB, B, false, 0);
        if (reg === 3) pop(s);
        return;
      }
      arithInto(s, 0, reg, A, okA, B, okB, 0);
      return;
    }
    case 4:
    case 6: {
      // DC / DE: ST(i) = ST(i) op ST(0) (sub/subr and div/divr swapped), DE pops.
      if (reg === 2 || reg === 3) {
        if (esc === 6 && reg === 3 && rm === 1) {
          // FCOMPP
          const okA = get(s, 0, A);
          const okB = get(s, 1, B);
          fcom(s, okA, okB, B, false, 0);
          pop(s);
          pop(s);
          return;
        }
        c.fault(VEC_UD);
      }
      const op = reg >= 4 ? reg ^ 1 : reg;
      const okB = get(s, rm, B);
      const okA = get(s, 0, A);
      arithInto(s, rm, op, B, okB, A, okA, 0);
      if (esc === 6) pop(s);
      return;
    }
    case 1: // D9
      d9(c, s, reg, rm);
      return;
    case 2: // DA
      if (reg === 5 && rm === 1) {
        // FUCOMPP
        const okA = get(s, 0, A);
        const okB = get(s, 1, B);
        fcom(s, okA, okB, B, true, 0);
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
          get(s, 0, A);
          set(s, rm, A);
          report(s, s.fsw & (X_IE | FSW_SF));
          if (reg === 3) pop(s);
          return;
        case 4:
        case 5: {
          const okA = get(s, 0, A);
          const okB = get(s, rm, B);
          fcom(s, okA, okB, B, true, 0);
          if (reg === 5) pop(s);
          return;
        }
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
  const okB = get(s, rm, B);
  const okA = get(s, 0, A);
  if (!okA || !okB) setIndefinite(A);
  else if (t !== negate) copyF80(A, B);
  set(s, 0, A);
  report(s, s.fsw & (X_IE | FSW_SF));
}

/** FCOMI/FUCOMI: ZF PF CF from ST(0) vs ST(i); OF SF AF cleared. */
function comi(c: Cpu, s: SimdState, rm: number, quietNaN: boolean): void {
  const okA = get(s, 0, A);
  const okB = get(s, rm, B);
  let f = FCOMI_FLAGS[3]!;
  if (okA && okB) {
    s.fsw |= compare(A, B, quietNaN);
    f = FCOMI_FLAGS[cmpResult]!;
  }
  s.fsw &= ~FSW_C1;
  c.flags.assign(0x8d5, f);
}

/** FXAM's class codes (C3 C2 C0) by operand class. */
const FXAM_CC = [
  FSW_C3, // zero
  FSW_C2, // normal
  FSW_C3 | FSW_C2, // denormal
  FSW_C2 | FSW_C0, // infinity
  FSW_C0, // QNaN
  FSW_C0, // SNaN
  0, // unsupported
];

function d9(c: Cpu, s: SimdState, reg: number, rm: number): void {
  switch (reg) {
    case 0: // FLD ST(i)
      get(s, rm, B);
      report(s, push(s, B) | (s.fsw & (X_IE | FSW_SF)));
      return;
    case 1: {
      // FXCH
      get(s, 0, A);
      get(s, rm, B);
      set(s, 0, B);
      set(s, rm, A);
      s.fsw &= ~FSW_C1;
      return;
    }
    case 2:
      if (rm === 0) return; // FNOP
      break;
    case 4:
      switch (rm) {
        case 0: // FCHS
        case 1: // FABS
          if (get(s, 0, A)) A.se = rm === 0 ? A.se ^ 0x8000 : A.se & 0x7fff;
          set(s, 0, A);
          report(s, s.fsw & (X_IE | FSW_SF));
          return;
        case 4: {
          // FTST
          const ok = get(s, 0, A);
          setZero(B, 0);
          fcom(s, ok, true, B, false, 0);
          return;
        }
        case 5: {
          // FXAM: class in C3 C2 C0, sign in C1 (of the register's contents, empty or not)
          const p = s.top;
          loadReg(s, p, A);
          const cc = s.empty[p] !== 0 ? FSW_C3 | FSW_C0 : FXAM_CC[classify(A)]!;
          setCc(s, cc | (A.se & 0x8000 ? FSW_C1 : 0));
          return;
        }
        default:
      }
      break;
    case 5:
      if (rm <= 6) {
        if (rm === 0) setF80(B, 0x3fff, 0x80000000, 0);
        else if (rm === 6) setZero(B, 0);
        else {
          const [se, hi, lo, nearestUp] = CONSTANTS[rm - 1]!;
          const rc = (s.fcw >> 10) & 3;
          const up = rc === RC_UP || (rc === RC_NEAREST && nearestUp);
          setF80(B, se, hi, lo + (up ? 1 : 0));
        }
        report(s, push(s, B));
        return;
      }
      break;
    case 6:
      switch (rm) {
        case 4:
          fxtract(s);
          return;
        case 5:
          fprem(s, true);
          return;
        case 6:
          s.top = (s.top - 1) & 7; // FDECSTP
          s.fsw &= ~FSW_C1;
          return;
        case 7:
          s.top = (s.top + 1) & 7; // FINCSTP
          s.fsw &= ~FSW_C1;
          return;
        default:
      }
      break;
    case 7:
      switch (rm) {
        case 0:
          fprem(s, false);
          return;
        case 2: // FSQRT
        case 4: {
          // FRNDINT
          let flags = 0;
          if (get(s, 0, A)) {
            flags =
              rm === 2
                ? sqrt(A, R, FMT_REG[(s.fcw >> 8) & 3]!, (s.fcw >> 10) & 3)
                : roundInteger(A, R, (s.fcw >> 10) & 3);
            copyF80(A, R);
          }
          set(s, 0, A);
          report(s, flags | (s.fsw & (X_IE | FSW_SF)));
          return;
        }
        case 5: {
          // FSCALE
          const okA = get(s, 0, A);
          const okB = get(s, 1, B);
          let flags = 0;
          if (okA && okB) flags = scale(A, B, R, (s.fcw >> 10) & 3);
          else setIndefinite(R);
          set(s, 0, R);
          report(s, flags | (s.fsw & (X_IE | FSW_SF)));
          return;
        }
        default:
      }
      break;
    default:
  }
  c.fault(VEC_UD);
}

/** FXTRACT: ST(0) = exponent of ST(0), then the significand pushed. */
function fxtract(s: SimdState): void {
  let flags = 0;
  // A stack overflow (ST(7) in use) leaves the indefinite in both halves.
  const overflow = s.empty[(s.top - 1) & 7] === 0;
  if (!get(s, 0, A) || overflow) {
    setIndefinite(B);
    setIndefinite(R);
  } else {
    const k = classify(A);
    if (k === K_UNSUPPORTED) {
      flags = X_IE;
      setIndefinite(B);
      setIndefinite(R);
    } else if (k === K_QNAN || k === K_SNAN) {
      if (k === K_SNAN) flags = X_IE;
      quiet(A);
      copyF80(B, A);
      copyF80(R, A);
    } else if (k === K_ZERO) {
      flags = X_ZE;
      setInf(B, 1);
      copyF80(R, A);
    } else if (k === K_INF) {
      setInf(B, 0);
      copyF80(R, A);
    } else {
      if (k === K_DENORMAL) flags = X_DE;
      extract(A, B, R);
    }
  }
  set(s, 0, B);
  report(s, flags | push(s, R) | (s.fsw & (X_IE | FSW_SF)));
}

/** FPREM/FPREM1: C2 set while the reduction is partial, else C0 C3 C1 = quotient bits 2 1 0. */
function fprem(s: SimdState, nearest: boolean): void {
  const okA = get(s, 0, A);
  const okB = get(s, 1, B);
  let flags = 0;
  let cc = 0;
  if (okA && okB) {
    flags = prem(A, B, R, nearest);
    const q = premQuotient;
    if (premPartial) cc = FSW_C2;
    else cc = (q & 4 ? FSW_C0 : 0) | (q & 2 ? FSW_C3 : 0) | (q & 1 ? FSW_C1 : 0);
  } else {
    setIndefinite(R);
  }
  set(s, 0, R);
  s.fsw |= flags | (s.fsw & (X_IE | FSW_SF));
  setCc(s, cc);
}
