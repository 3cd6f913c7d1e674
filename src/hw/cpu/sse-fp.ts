// SIMD instruction semantics, part 3: SSE/SSE2 floating point (APM vol. 4 per instruction; NaN
// and exception rules: APM vol. 1, 4.9 "SSE Instruction Exceptions" and table 4-7 "Result for
// SNaN/QNaN operands").
//
// Values are computed as JS doubles. float32 results of + - * / sqrt are the double result rounded
// once more by Math.fround, which equals the directly rounded result (double has more than
// 2 * 24 + 2 bits). NaN operands are handled from their bit patterns (first source NaN wins,
// quieted), and invalid operations store the "QNaN floating-point indefinite" explicitly, so no
// JS NaN bits ever reach a register.
//
// Rounding: MXCSR.RC is honoured; directed modes adjust the nearest result with an exact error
// sign (fp-round.ts). DAZ and FTZ are honoured. All six MXCSR flags are set as with masked
// exceptions (PE from TwoSum / Dekker products, BigInt at extreme exponents; UE = tiny before
// rounding and inexact or flushed). Unmasked SIMD exceptions (#XM) are not raised.

import type { Cpu } from './cpu.js';
import type { Insn } from './insn.js';
import {
  MXCSR_DAZ,
  MXCSR_DE,
  MXCSR_FZ,
  MXCSR_IE,
  MXCSR_OE,
  MXCSR_PE,
  MXCSR_UE,
  MXCSR_ZE,
  RC_DOWN,
  RC_NEAREST,
  RC_UP,
  RC_ZERO,
  type SimdState,
  XMM_TMP,
} from './simd-state.js';
import { srcW } from './sse-operands.js';
import { errorSign, nextFloat, roundDirected } from './fp-round.js';
import * as K from './sse-table.js';

const MIN_NORMAL32 = 1.1754943508222875e-38;
const MIN_NORMAL64 = 2.2250738585072014e-308;
const TWO32 = 4294967296;

// ---- operand reading with DAZ and DE -----------------------------------------------------------

/** The float32 lane at int32 index `k` as a number (not NaN: callers check first). */
function getF32(st: SimdState, k: number): number {
  const b = st.x32[k]!;
  if ((b & 0x7f800000) === 0 && (b & 0x7fffff) !== 0) {
    if ((st.mxcsr & MXCSR_DAZ) !== 0) return b < 0 ? -0 : 0;
    st.mxcsr |= MXCSR_DE;
  }
  return st.f32[k]!;
}

/** The float64 lane at int32 index `k` (low half) as a number (not NaN). */
function getF64(st: SimdState, k: number): number {
  const hi = st.x32[k + 1]!;
  if ((hi & 0x7ff00000) === 0 && ((hi & 0xfffff) | st.x32[k]!) !== 0) {
    if ((st.mxcsr & MXCSR_DAZ) !== 0) return hi < 0 ? -0 : 0;
    st.mxcsr |= MXCSR_DE;
  }
  return st.f64[k >> 1]!;
}

function isNaN32(b: number): boolean {
  return (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
}

function isNaN64(x: Int32Array, k: number): boolean {
  const hi = x[k + 1]!;
  return (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) | x[k]!) !== 0;
}

function isSNaN32(b: number): boolean {
  return isNaN32(b) && (b & 0x400000) === 0;
}

function isSNaN64(x: Int32Array, k: number): boolean {
  return isNaN64(x, k) && (x[k + 1]! & 0x80000) === 0;
}

/**
 * Stores a float32 result (JS NaN = invalid operation: the indefinite). FTZ flushes results whose
 * exact value (`exact`, or a double on the same side of 2^-126) is below the smallest normal:
 * tininess is detected before rounding, so a result that rounds up to 2^-126 is flushed too.
 */
function putF32(st: SimdState, k: number, r: number, exact = r): void {
  if (r !== r) {
    st.x32[k] = 0xffc00000 | 0;
    st.mxcsr |= MXCSR_IE;
    return;
  }
  const f = Math.fround(r);
  if ((st.mxcsr & MXCSR_FZ) !== 0 && exact !== 0 && Math.abs(exact) < MIN_NORMAL32) {
    st.x32[k] = exact < 0 ? 0x80000000 | 0 : 0;
    return;
  }
  st.f32[k] = f;
}

/** Stores a float64 result; `tiny` says the exact result is below the smallest normal (FTZ). */
function putF64(st: SimdState, k: number, r: number, tiny = false): void {
  if (r !== r) {
    st.x32[k] = 0;
    st.x32[k + 1] = 0xfff80000 | 0;
    st.mxcsr |= MXCSR_IE;
    return;
  }
  if ((st.mxcsr & MXCSR_FZ) !== 0 && r !== 0 && (tiny || Math.abs(r) < MIN_NORMAL64)) {
    st.x32[k] = 0;
    st.x32[k + 1] = r < 0 ? 0x80000000 | 0 : 0;
    return;
  }
  st.f64[k >> 1] = r;
}

const MAX32 = 3.4028234663852886e38;

/** The rounding error of p = RN(a * b) (Dekker's product; |a|, |b|, |p| in [2^-450, 2^450]). */
function productError(a: number, b: number, p: number): number {
  const C = 134217729; // 2^27 + 1
  let t = C * a;
  const ah = t - (t - a);
  const al = a - ah;
  t = C * b;
  const bh = t - (t - b);
  const bl = b - bh;
  return ah * bh - p + ah * bl + al * bh + al * bl;
}

function safe(v: number): boolean {
  const m = Math.abs(v);
  return m === 0 || (m >= 3.5e-136 && m <= 2.9e135); // 2^-450 .. 2^450
}

/** Whether rn (the nearest double to a op b, finite operands, finite rn) is exact. */
function exact64(op: number, a: number, b: number, rn: number): boolean {
  if (op === K.FP_ADD || op === K.FP_SUB) {
    // Knuth's TwoSum: exact for any finite inputs without overflow.
    const bb = op === K.FP_SUB ? -b : b;
    const bv = rn - a;
    return a - (rn - bv) + (bb - bv) === 0;
  }
  if (safe(a) && safe(b) && safe(rn) && rn !== 0) {
    if (op === K.FP_MUL) return productError(a, b, rn) === 0;
    if (op === K.FP_DIV) return rn * b === a && productError(rn, b, rn * b) === 0;
    if (op === K.FP_SQRT) return rn * rn === b && productError(rn, rn, rn * rn) === 0;
  }
  return errorSign(op, a, b, rn) === 0;
}

/**
 * PE, UE, OE for a finite-operand result: `inexact` (before any flush), `tiny` (exact value
 * nonzero and below the smallest normal), `ovf` (rounded past the largest finite value).
 */
function roundingFlags(st: SimdState, inexact: boolean, tiny: boolean, ovf: boolean): void {
  const ftz = (st.mxcsr & MXCSR_FZ) !== 0;
  let f = 0;
  if (ovf) f |= MXCSR_OE | MXCSR_PE;
  if (inexact) f |= MXCSR_PE;
  if (tiny && (inexact || ftz)) f |= MXCSR_UE | MXCSR_PE;
  st.mxcsr |= f;
}

function arith(op: number, a: number, b: number, st: SimdState): number {
  switch (op) {
    case K.FP_ADD:
      return a + b;
    case K.FP_SUB:
      return a - b;
    case K.FP_MUL:
      return a * b;
    case K.FP_DIV:
      if (b === 0 && a === a && a !== 0 && Math.abs(a) !== Infinity) st.mxcsr |= MXCSR_ZE;
      return a / b;
    case K.FP_SQRT:
      return b < 0 ? NaN : Math.sqrt(b);
    case K.FP_RSQRT:
      // Architecturally an approximation (relative error <= 1.5 * 2^-12); this returns the
      // correctly rounded value, which meets the bound but differs from silicon's tables.
      return b < 0 ? NaN : 1 / Math.sqrt(b);
    default:
      return 1 / b; // RCP, same remark
  }
}

/** One float32 lane: d = d op s (int32 indices). */
function lane32Raw(st: SimdState, op: number, d: number, s: number): void {
  const x = st.x32;
  const db = x[d]!;
  const sb = x[s]!;
  const unary = op === K.FP_SQRT || op === K.FP_RSQRT || op === K.FP_RCP;
  if (op === K.FP_MIN || op === K.FP_MAX) {
    // Either NaN, or both zeros: the second operand (APM "MINPS").
    if (isNaN32(db) || isNaN32(sb)) {
      st.mxcsr |= MXCSR_IE;
      // The second operand, flushed to zero if it is a denormal under DAZ.
      const den = (sb & 0x7f800000) === 0 && (st.mxcsr & MXCSR_DAZ) !== 0;
      x[d] = den ? sb & (0x80000000 | 0) : sb;
      return;
    }
    const a = getF32(st, d);
    const b = getF32(st, s);
    const pickD = op === K.FP_MIN ? a < b : a > b;
    // The chosen operand's bits, or its signed zero when DAZ flushed it.
    const v = pickD ? a : b;
    if (v === 0) x[d] = Object.is(v, -0) ? 0x80000000 | 0 : 0;
    else x[d] = pickD ? db : sb;
    return;
  }
  const dn = !unary && isNaN32(db);
  const sn = isNaN32(sb);
  if (dn || sn) {
    if ((!unary && isSNaN32(db)) || isSNaN32(sb)) st.mxcsr |= MXCSR_IE;
    x[d] = (dn ? db : sb) | 0x400000;
    return;
  }
  const b = getF32(st, s);
  const a = unary ? 0 : getF32(st, d);
  const r64 = arith(op, a, b, st);
  let r = r64;
  const mode = (st.mxcsr >> 13) & 3;
  const finite = op <= K.FP_SQRT && Number.isFinite(a) && Number.isFinite(b);
  if (mode !== RC_NEAREST && finite) r = roundDirected(op, a, b, Math.fround(r), mode, true);
  // Division by zero reports ZE only, not DE for a denormal dividend (as AMD parts do).
  if (op === K.FP_DIV && b === 0) st.mxcsr &= ~MXCSR_DE;
  let exact = r64;
  if (finite && Math.abs(r64) === MIN_NORMAL32 && (st.mxcsr & MXCSR_FZ) !== 0) {
    // The double result sits on 2^-126: is the exact one just below?
    if (errorSign(op, a, b, r64) * Math.sign(r64) < 0) exact = r64 / 2;
  }
  if (finite && r64 === r64 && !(op === K.FP_DIV && b === 0)) {
    // float32 operands: products are exact in double, and a double quotient or root that is a
    // float32 is exact; sums need TwoSum.
    const f = Math.fround(r64);
    const dInexact =
      Number.isFinite(r64) && (op === K.FP_ADD || op === K.FP_SUB) && !exact64(op, a, b, r64);
    const inexact = f !== r64 || dInexact;
    const ovf = !Number.isFinite(f) || !Number.isFinite(r);
    const tiny = Math.abs(exact) < MIN_NORMAL32 && (exact !== 0 || inexact);
    roundingFlags(st, inexact, tiny, ovf);
  }
  putF32(st, d, r, exact);
}

/** One float64 lane: d = d op s (int32 indices of the low halves). */
function lane64Raw(st: SimdState, op: number, d: number, s: number): void {
  const x = st.x32;
  const unary = op === K.FP_SQRT;
  if (op === K.FP_MIN || op === K.FP_MAX) {
    if (isNaN64(x, d) || isNaN64(x, s)) {
      st.mxcsr |= MXCSR_IE;
      const den = (x[s + 1]! & 0x7ff00000) === 0 && (st.mxcsr & MXCSR_DAZ) !== 0;
      x[d] = den ? 0 : x[s]!;
      x[d + 1] = den ? x[s + 1]! & (0x80000000 | 0) : x[s + 1]!;
      return;
    }
    const a = getF64(st, d);
    const b = getF64(st, s);
    const pickD = op === K.FP_MIN ? a < b : a > b;
    const v = pickD ? a : b;
    const from = pickD ? d : s;
    if (v === 0) {
      x[d] = 0;
      x[d + 1] = Object.is(v, -0) ? 0x80000000 | 0 : 0;
    } else {
      x[d] = x[from]!;
      x[d + 1] = x[from + 1]!;
    }
    return;
  }
  const dn = !unary && isNaN64(x, d);
  const sn = isNaN64(x, s);
  if (dn || sn) {
    if ((!unary && isSNaN64(x, d)) || isSNaN64(x, s)) st.mxcsr |= MXCSR_IE;
    const from = dn ? d : s;
    x[d] = x[from]!;
    x[d + 1] = x[from + 1]! | 0x80000;
    return;
  }
  const b = getF64(st, s);
  const a = unary ? 0 : getF64(st, d);
  const rn = arith(op, a, b, st);
  let r = rn;
  const mode = (st.mxcsr >> 13) & 3;
  const finite = Number.isFinite(a) && Number.isFinite(b);
  if (mode !== RC_NEAREST && finite) r = roundDirected(op, a, b, r, mode, false);
  if (op === K.FP_DIV && b === 0) st.mxcsr &= ~MXCSR_DE;
  const tiny =
    finite &&
    Math.abs(rn) === MIN_NORMAL64 &&
    (st.mxcsr & MXCSR_FZ) !== 0 &&
    errorSign(op, a, b, rn) * Math.sign(rn) < 0;
  if (finite && rn === rn && !(op === K.FP_DIV && b === 0)) {
    const ovf = !Number.isFinite(rn) || !Number.isFinite(r);
    const inexact = ovf || !exact64(op, a, b, rn);
    const small = Math.abs(rn) < MIN_NORMAL64 && (rn !== 0 || inexact);
    roundingFlags(st, inexact, small || tiny, ovf);
  }
  putF64(st, d, r, tiny);
}

/**
 * An invalid operation hides a denormal operand: DE is reported only for lanes without IE (the
 * pre-computation exception priority of APM vol. 1, 4.9.2).
 */
function prioritise(st: SimdState, before: number): void {
  let got = st.mxcsr;
  if ((got & MXCSR_IE) !== 0) got &= ~MXCSR_DE;
  st.mxcsr = got | (before & (MXCSR_IE | MXCSR_DE));
}

/**
 * `raw` with its lane's IE/DE collected apart and then merged by `prioritise` (so an operand's
 * DE does not stand beside its own IE).
 */
function prioritised(raw: LaneOp): LaneOp {
  return (st, arg, d, s) => {
    const before = st.mxcsr;
    st.mxcsr &= ~(MXCSR_IE | MXCSR_DE);
    raw(st, arg, d, s);
    prioritise(st, before);
  };
}

const lane32 = prioritised(lane32Raw);
const lane64 = prioritised(lane64Raw);
const cmp32 = prioritised(cmp32Raw);
const cmp64 = prioritised(cmp64Raw);

/** ADD/SUB/MUL/DIV/MIN/MAX/SQRT/RSQRT/RCP in PS/PD/SS/SD forms. */
export function executeFp(c: Cpu, i: Insn): void {
  const st = c.simd;
  const type = i.sub >> 4;
  const op = i.sub & 15;
  const s = srcW(c, i, type === K.T_SS ? 4 : type === K.T_SD ? 8 : 16, type < 2);
  byForm(st, type, i.reg, s, op, lane32, lane64);
}

type LaneOp = (st: SimdState, arg: number, d: number, s: number) => void;

/**
 * Runs `f32` or `f64` on the lanes the form `type` (PS, PD, SS, SD) covers, destination slot `d`
 * and source slot `s`. Packed forms compute into the scratch slot first: the source may be the
 * destination.
 */
function byForm(
  st: SimdState,
  type: number,
  d: number,
  s: number,
  arg: number,
  f32: LaneOp,
  f64: LaneOp,
): void {
  switch (type) {
    case K.T_PS: {
      const t = XMM_TMP;
      for (let k = 0; k < 4; k++) {
        st.x32[4 * t + k] = st.x32[4 * d + k]!;
        f32(st, arg, 4 * t + k, 4 * s + k);
      }
      for (let k = 0; k < 4; k++) st.x32[4 * d + k] = st.x32[4 * t + k]!;
      return;
    }
    case K.T_PD: {
      const t = XMM_TMP;
      for (let k = 0; k < 4; k++) st.x32[4 * t + k] = st.x32[4 * d + k]!;
      f64(st, arg, 4 * t, 4 * s);
      f64(st, arg, 4 * t + 2, 4 * s + 2);
      for (let k = 0; k < 4; k++) st.x32[4 * d + k] = st.x32[4 * t + k]!;
      return;
    }
    case K.T_SS:
      f32(st, arg, 4 * d, 4 * s);
      return;
    default:
      f64(st, arg, 4 * d, 4 * s);
  }
}

// ---- compares ----------------------------------------------------------------------------------

function predicate(p: number, a: number, b: number): boolean {
  switch (p) {
    case 0:
      return a === b;
    case 1:
      return a < b;
    case 2:
      return a <= b;
    case 3:
      return a !== a || b !== b;
    case 4:
      return !(a === b);
    case 5:
      return !(a < b);
    case 6:
      return !(a <= b);
    default:
      return a === a && b === b;
  }
}

/** Predicates that signal on a QNaN as well (LT, LE, NLT, NLE). */
const SIGNALING = 0x66;

function cmp32Raw(st: SimdState, p: number, d: number, s: number): void {
  const x = st.x32;
  const db = x[d]!;
  const sb = x[s]!;
  // A NaN in the lane: no denormal check on the other operand (no DE).
  const nan = isNaN32(db) || isNaN32(sb);
  const a = nan ? NaN : getF32(st, d);
  const b = nan ? NaN : getF32(st, s);
  if (isSNaN32(db) || isSNaN32(sb) || ((a !== a || b !== b) && ((SIGNALING >> p) & 1) !== 0))
    st.mxcsr |= MXCSR_IE;
  x[d] = predicate(p, a, b) ? -1 : 0;
}

function cmp64Raw(st: SimdState, p: number, d: number, s: number): void {
  const x = st.x32;
  const dn = isNaN64(x, d);
  const sn = isNaN64(x, s);
  const a = dn || sn ? NaN : getF64(st, d);
  const b = dn || sn ? NaN : getF64(st, s);
  if (isSNaN64(x, d) || isSNaN64(x, s) || ((dn || sn) && ((SIGNALING >> p) & 1) !== 0))
    st.mxcsr |= MXCSR_IE;
  const r = predicate(p, a, b) ? -1 : 0;
  x[d] = r;
  x[d + 1] = r;
}

/** CMPPS/CMPPD/CMPSS/CMPSD with the predicate in imm8 bits 2:0. */
export function executeCmp(c: Cpu, i: Insn): void {
  const st = c.simd;
  const type = i.sub;
  const s = srcW(c, i, type === K.T_SS ? 4 : type === K.T_SD ? 8 : 16, type < 2);
  byForm(st, type, i.reg, s, i.imm & 7, cmp32, cmp64);
}

/** COMISS/COMISD/UCOMISS/UCOMISD: ZF PF CF from the compare; OF SF AF cleared. */
export function executeComi(c: Cpu, i: Insn): void {
  const st = c.simd;
  const dbl = (i.sub & 2) !== 0;
  const quiet = (i.sub & 1) !== 0;
  const s = srcW(c, i, dbl ? 8 : 4, false);
  const x = st.x32;
  const d = 4 * i.reg;
  const before = st.mxcsr;
  st.mxcsr &= ~(MXCSR_IE | MXCSR_DE);
  let a: number;
  let b: number;
  let snan: boolean;
  if (dbl) {
    const nan = isNaN64(x, d) || isNaN64(x, 4 * s);
    a = nan ? NaN : getF64(st, d);
    b = nan ? NaN : getF64(st, 4 * s);
    snan = isSNaN64(x, d) || isSNaN64(x, 4 * s);
  } else {
    const nan = isNaN32(x[d]!) || isNaN32(x[4 * s]!);
    a = nan ? NaN : getF32(st, d);
    b = nan ? NaN : getF32(st, 4 * s);
    snan = isSNaN32(x[d]!) || isSNaN32(x[4 * s]!);
  }
  let f: number;
  if (a !== a || b !== b) {
    f = 0x45; // ZF PF CF
    if (snan || !quiet) st.mxcsr |= MXCSR_IE;
  } else if (a > b) {
    f = 0;
  } else if (a < b) {
    f = 0x01;
  } else {
    f = 0x40;
  }
  prioritise(st, before);
  c.flags.assign(0x8d5, f);
}

// ---- conversions -------------------------------------------------------------------------------

function rc(st: SimdState): number {
  return (st.mxcsr >> 13) & 3;
}

/** Rounds a double to an integral double by `mode` (a zero result keeps the sign of v). */
export function roundInt(v: number, mode: number): number {
  const r = roundIntAbs(v, mode);
  return r === 0 && v < 0 ? -0 : r;
}

function roundIntAbs(v: number, mode: number): number {
  switch (mode) {
    case RC_NEAREST: {
      const f = Math.floor(v);
      const diff = v - f;
      if (diff < 0.5) return f;
      if (diff > 0.5) return f + 1;
      return f % 2 === 0 ? f : f + 1;
    }
    case RC_DOWN:
      return Math.floor(v);
    case RC_UP:
      return Math.ceil(v);
    default:
      return Math.trunc(v);
  }
}

/** Adjusts `r` (the nearest rounding of the exact value) for a directed mode; cmp = sign(exact - r). */
function direct(r: number, cmp: number, mode: number, single: boolean): number {
  if (cmp === 0 || mode === RC_NEAREST || !Number.isFinite(r)) return r;
  if (mode === RC_UP && cmp > 0) return nextFloat(r, true, single);
  if (mode === RC_DOWN && cmp < 0) return nextFloat(r, false, single);
  if (mode === RC_ZERO && ((r > 0 && cmp < 0) || (r < 0 && cmp > 0))) {
    return nextFloat(r, r < 0, single);
  }
  return r;
}

/** A double rounded to float32 by `mode` (exact input). */
export function toF32(v: number, mode: number): number {
  const f = Math.fround(v);
  if (!Number.isFinite(f) && Number.isFinite(v)) {
    // Overflow: directed modes may stop at the largest finite value.
    const max = 3.4028234663852886e38;
    if (mode === RC_ZERO || (mode === RC_DOWN && v > 0) || (mode === RC_UP && v < 0))
      return v > 0 ? max : -max;
    return f;
  }
  return direct(f, v > f ? 1 : v < f ? -1 : 0, mode, true);
}

/** A signed 64-bit integer (halves) to float32 or float64 with rounding `mode`. */
function intToFloat(st: SimdState, lo: number, hi: number, single: boolean, mode: number): number {
  if ((hi === 0 && lo >= 0) || (hi === -1 && lo < 0)) {
    const v = lo; // fits in 32 bits: exact as a double
    const r = single ? toF32(v, mode) : v;
    if (r !== v) st.mxcsr |= MXCSR_PE;
    return r;
  }
  const exact = (BigInt(hi) << 32n) | BigInt(lo >>> 0);
  let r: number;
  if (single) {
    // Keep 32 significant bits plus a sticky bit so one rounding to 24 bits is exact.
    const neg = exact < 0n;
    const mag = neg ? -exact : exact;
    const len = mag.toString(2).length;
    const k = BigInt(len - 32);
    const sticky = (mag & ((1n << k) - 1n)) !== 0n ? 1n : 0n;
    const m = Number((mag >> k) | sticky) * 2 ** Number(k);
    r = Math.fround(neg ? -m : m);
  } else {
    r = hi * TWO32 + (lo >>> 0);
  }
  const rb = BigInt(r);
  if (rb !== exact) st.mxcsr |= MXCSR_PE;
  return direct(r, exact > rb ? 1 : exact < rb ? -1 : 0, mode, single);
}

/** Float to int32/int64 (halves into out), or the integer indefinite; IE on NaN or overflow. */
function floatToInt(st: SimdState, v: number, bits: number, mode: number, out: Int32Array): void {
  const r = v !== v ? NaN : roundInt(v, mode);
  const limit = bits === 32 ? 2147483648 : 9223372036854775808;
  if (r !== r || r >= limit || r < -limit) {
    st.mxcsr |= MXCSR_IE;
    out[0] = bits === 32 ? 0x80000000 | 0 : 0;
    out[1] = bits === 32 ? 0 : 0x80000000 | 0;
    return;
  }
  if (r !== v) st.mxcsr |= MXCSR_PE;
  const hi = Math.floor(r / TWO32);
  out[0] = (r - hi * TWO32) | 0;
  out[1] = hi | 0;
}

const I2 = new Int32Array(2);

/**
 * A float32 lane (int32 index) as a number for a conversion to integer: NaN stays NaN, and
 * denormals set no DE (these conversions report only IE and PE); DAZ makes them zero.
 */
function f32Lane(st: SimdState, k: number): number {
  if (isNaN32(st.x32[k]!)) return NaN;
  const m = st.mxcsr;
  const v = getF32(st, k);
  st.mxcsr = (st.mxcsr & ~MXCSR_DE) | (m & MXCSR_DE);
  return v;
}

function f64Lane(st: SimdState, k: number): number {
  if (isNaN64(st.x32, k)) return NaN;
  const m = st.mxcsr;
  const v = getF64(st, k);
  st.mxcsr = (st.mxcsr & ~MXCSR_DE) | (m & MXCSR_DE);
  return v;
}

/** float32 bits to float64 at int32 index `k` (NaNs quieted, payload kept). */
function cvtSsToSd(st: SimdState, from: number, to: number): void {
  const x = st.x32;
  const b = x[from]!;
  if (isNaN32(b)) {
    if ((b & 0x400000) === 0) st.mxcsr |= MXCSR_IE;
    x[to + 1] = (b & 0x80000000) | 0x7ff80000 | ((b & 0x3fffff) >>> 3);
    x[to] = (b & 7) << 29;
    return;
  }
  st.f64[to >> 1] = getF32(st, from);
}

function cvtSdToSs(st: SimdState, from: number, to: number): void {
  const x = st.x32;
  if (isNaN64(x, from)) {
    const hi = x[from + 1]!;
    if ((hi & 0x80000) === 0) st.mxcsr |= MXCSR_IE;
    x[to] = (hi & 0x80000000) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (x[from]! >>> 29);
    return;
  }
  const v = getF64(st, from);
  const f = toF32(v, rc(st));
  if (Number.isFinite(v)) {
    const inexact = f !== v;
    roundingFlags(
      st,
      inexact,
      v !== 0 && Math.abs(v) < MIN_NORMAL32,
      !Number.isFinite(Math.fround(v)) || !Number.isFinite(f) || Math.abs(v) > MAX32,
    );
  }
  putF32(st, to, f, v);
}

/** The CVT* instructions. */
export function executeCvt(c: Cpu, i: Insn): void {
  const st = c.simd;
  const x = st.x32;
  const d = 4 * i.reg;
  const mode = rc(st);
  const t = 4 * XMM_TMP;
  switch (i.sub) {
    case K.CVT_SI2SS:
    case K.CVT_SI2SD: {
      let lo: number;
      let hi: number;
      if (i.rm >= 0) {
        lo = c.r[2 * i.rm]!;
        hi = i.osz === 8 ? c.r[2 * i.rm + 1]! : lo >> 31;
      } else {
        srcW(c, i, i.osz === 8 ? 8 : 4, false);
        lo = x[64]!;
        hi = i.osz === 8 ? x[65]! : lo >> 31;
      }
      if (i.sub === K.CVT_SI2SS) putF32(st, d, intToFloat(st, lo, hi, true, mode));
      else st.f64[d >> 1] = intToFloat(st, lo, hi, false, mode);
      return;
    }
    case K.CVT_TSS2SI:
    case K.CVT_TSD2SI:
    case K.CVT_SS2SI:
    case K.CVT_SD2SI: {
      const dbl = i.sub === K.CVT_TSD2SI || i.sub === K.CVT_SD2SI;
      const s = 4 * srcW(c, i, dbl ? 8 : 4, false);
      const v = dbl ? f64Lane(st, s) : f32Lane(st, s);
      const m = i.sub === K.CVT_TSS2SI || i.sub === K.CVT_TSD2SI ? RC_ZERO : mode;
      floatToInt(st, v, i.osz === 8 ? 64 : 32, m, I2);
      c.r[2 * i.reg] = I2[0]!;
      c.r[2 * i.reg + 1] = i.osz === 8 ? I2[1]! : 0;
      return;
    }
    case K.CVT_SS2SD:
      cvtSsToSd(st, 4 * srcW(c, i, 4, false), d);
      return;
    case K.CVT_SD2SS:
      cvtSdToSs(st, 4 * srcW(c, i, 8, false), d);
      return;
    case K.CVT_PS2PD: {
      const s = 4 * srcW(c, i, 8, false);
      cvtSsToSd(st, s, t);
      cvtSsToSd(st, s + 1, t + 2);
      break;
    }
    case K.CVT_PD2PS: {
      const s = 4 * srcW(c, i, 16, true);
      cvtSdToSs(st, s, t);
      cvtSdToSs(st, s + 2, t + 1);
      x[t + 2] = 0;
      x[t + 3] = 0;
      break;
    }
    case K.CVT_DQ2PS: {
      const s = 4 * srcW(c, i, 16, true);
      for (let k = 0; k < 4; k++) {
        const v = x[s + k]!;
        const f = toF32(v, mode);
        if (f !== v) st.mxcsr |= MXCSR_PE;
        putF32(st, t + k, f);
      }
      break;
    }
    case K.CVT_DQ2PD: {
      const s = 4 * srcW(c, i, 8, false);
      const a = x[s]!;
      const b = x[s + 1]!;
      st.f64[t >> 1] = a;
      st.f64[(t >> 1) + 1] = b;
      break;
    }
    case K.CVT_PS2DQ:
    case K.CVT_TPS2DQ: {
      const s = 4 * srcW(c, i, 16, true);
      const m = i.sub === K.CVT_TPS2DQ ? RC_ZERO : mode;
      for (let k = 0; k < 4; k++) {
        floatToInt(st, f32Lane(st, s + k), 32, m, I2);
        x[t + k] = I2[0]!;
      }
      break;
    }
    default: {
      // CVTPD2DQ, CVTTPD2DQ
      const s = 4 * srcW(c, i, 16, true);
      const m = i.sub === K.CVT_TPD2DQ ? RC_ZERO : mode;
      for (let k = 0; k < 2; k++) {
        floatToInt(st, f64Lane(st, s + 2 * k), 32, m, I2);
        x[t + k] = I2[0]!;
      }
      x[t + 2] = 0;
      x[t + 3] = 0;
    }
  }
  x[d] = x[t]!;
  x[d + 1] = x[t + 1]!;
  x[d + 2] = x[t + 2]!;
  x[d + 3] = x[t + 3]!;
}
