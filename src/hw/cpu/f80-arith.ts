// x87 arithmetic on double-extended values with exceptions masked (Intel SDM vol. 1, 4.8.3 and
// 8.5; the per-instruction tables of vol. 2). Each operation writes its result to `d` (which may
// be one of its operands) and returns the FSW exception bits it raises, with X_C1 when the
// result was rounded up. Finite nonzero results are computed exactly on BigInt and rounded once
// by f80-round.ts; special operands (zeros, infinities, NaNs, unsupported encodings) are settled
// from their encodings first.
//
// Order of the checks, as SDM 4.9.2 ranks them: an unsupported encoding or an SNaN (IE), then
// QNaN propagation, then the invalid combinations (IE, the indefinite), then denormal operands
// (DE, and the operation goes on with the denormal), then division by zero (ZE), then the
// rounding's OE/UE/PE. FADD/FSUB/FMUL of two normal operands with a normal result take the
// BigInt-free path of f80-fast.ts first.

import {
  classify,
  copyF80,
  type F80,
  F80_BIAS,
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
import { fastAdd, fastMul } from './f80-fast.js';
import { bitLength, type Format, FMT_EXT, packReg, round, roundToInteger } from './f80-round.js';
import { intInexact, intUp, intValue } from './f80-round.js';
import { RC_DOWN, RC_ZERO } from './simd-state.js';

/** The significand as a BigInt. */
export function sigOf(x: F80): bigint {
  return (BigInt(x.hi) << 32n) | BigInt(x.lo);
}

/** The exponent of the significand's last bit: x = sig * 2^qOf(x) (pseudo-denormals included). */
export function qOf(x: F80): number {
  return Math.max(x.se & 0x7fff, 1) - F80_BIAS - 63;
}

/**
 * NaN operand(s), at least one of a and b a NaN, into d (SDM table 4-7, x87 column): an SNaN
 * raises IE and is quieted; of two NaNs the larger significand wins, the QNaN if only one is
 * quiet. Returns the flags.
 */
function propagate(a: F80, ka: number, b: F80, kb: number, d: F80): number {
  const ie = ka === K_SNAN || kb === K_SNAN ? X_IE : 0;
  let pick = a;
  if (ka < K_QNAN) pick = b;
  else if (kb >= K_QNAN) {
    if (ka !== kb) pick = ka === K_QNAN ? a : b;
    else if (b.hi > a.hi || (b.hi === a.hi && b.lo > a.lo)) pick = b;
    else if (b.hi === a.hi && b.lo === a.lo && b.se < a.se) pick = b;
  }
  copyF80(d, pick);
  quiet(d);
  return ie;
}

/** Unsupported encodings and NaNs of a two-operand operation: flags | 0x10000 when settled. */
const SETTLED = 0x10000;
function nanOrUnsupported(a: F80, ka: number, b: F80, kb: number, d: F80): number {
  if (ka === K_UNSUPPORTED || kb === K_UNSUPPORTED) {
    setIndefinite(d);
    return X_IE | SETTLED;
  }
  if (ka >= K_QNAN || kb >= K_QNAN) return propagate(a, ka, b, kb, d) | SETTLED;
  return 0;
}

/** Rounds (-1)^sign m 2^q into d. */
function finish(d: F80, sign: number, m: bigint, q: number, f: Format, rc: number): number {
  const flags = round(sign, m, q, f, rc);
  packReg(d);
  return flags;
}

/** a + b (negB: a - b). */
export function add(a: F80, b: F80, negB: boolean, d: F80, f: Format, rc: number): number {
  const ka = classify(a);
  const kb = classify(b);
  if (ka === K_NORMAL && kb === K_NORMAL) {
    const flags = fastAdd(a, b, negB, d, f.p, rc);
    if (flags >= 0) return flags;
  }
  const sa = a.se >>> 15;
  const sb = (b.se >>> 15) ^ (negB ? 1 : 0);
  const nan = nanOrUnsupported(a, ka, b, kb, d);
  if (nan !== 0) return nan & ~SETTLED;
  if (ka === K_INF || kb === K_INF) {
    if (ka === kb && sa !== sb) {
      setIndefinite(d);
      return X_IE;
    }
    setInf(d, ka === K_INF ? sa : sb);
    return ka === K_DENORMAL || kb === K_DENORMAL ? X_DE : 0;
  }
  const de = ka === K_DENORMAL || kb === K_DENORMAL ? X_DE : 0;
  if (ka === K_ZERO && kb === K_ZERO) {
    setZero(d, sa === sb ? sa : rc === RC_DOWN ? 1 : 0);
    return 0;
  }
  // x + 0 is x rounded to the precision; aligning it with the zero's exponent would build a sum
  // thousands of bits long.
  if (ka === K_ZERO) return de | finish(d, sb, sigOf(b), qOf(b), f, rc);
  if (kb === K_ZERO) return de | finish(d, sa, sigOf(a), qOf(a), f, rc);
  let ma = sigOf(a);
  let qa = qOf(a);
  let mb = sigOf(b);
  let qb = qOf(b);
  // A far smaller operand only decides the rounding direction: stand it in by one unit far
  // below the other's last bit (same sign), so the shifts stay short.
  if (ka !== K_ZERO && kb !== K_ZERO) {
    if (qa - qb > 200) {
      mb = 1n;
      qb = qa - 200;
    } else if (qb - qa > 200) {
      ma = 1n;
      qa = qb - 200;
    }
  }
  const q = Math.min(qa, qb);
  const va = ma << BigInt(qa - q);
  const vb = mb << BigInt(qb - q);
  const sum = (sa !== 0 ? -va : va) + (sb !== 0 ? -vb : vb);
  if (sum === 0n) {
    setZero(d, rc === RC_DOWN ? 1 : 0);
    return de;
  }
  return de | finish(d, sum < 0n ? 1 : 0, sum < 0n ? -sum : sum, q, f, rc);
}

export function mul(a: F80, b: F80, d: F80, f: Format, rc: number): number {
  const ka = classify(a);
  const kb = classify(b);
  if (ka === K_NORMAL && kb === K_NORMAL) {
    const flags = fastMul(a, b, d, f.p, rc);
    if (flags >= 0) return flags;
  }
  const sign = (a.se ^ b.se) >>> 15;
  const nan = nanOrUnsupported(a, ka, b, kb, d);
  if (nan !== 0) return nan & ~SETTLED;
  if ((ka === K_INF && kb === K_ZERO) || (ka === K_ZERO && kb === K_INF)) {
    setIndefinite(d);
    return X_IE;
  }
  const de = ka === K_DENORMAL || kb === K_DENORMAL ? X_DE : 0;
  if (ka === K_INF || kb === K_INF) {
    setInf(d, sign);
    return de;
  }
  if (ka === K_ZERO || kb === K_ZERO) {
    setZero(d, sign);
    return de;
  }
  return de | finish(d, sign, sigOf(a) * sigOf(b), qOf(a) + qOf(b), f, rc);
}

/** a / b. */
export function div(a: F80, b: F80, d: F80, f: Format, rc: number): number {
  const ka = classify(a);
  const kb = classify(b);
  const sign = (a.se ^ b.se) >>> 15;
  const nan = nanOrUnsupported(a, ka, b, kb, d);
  if (nan !== 0) return nan & ~SETTLED;
  if ((ka === K_INF && kb === K_INF) || (ka === K_ZERO && kb === K_ZERO)) {
    setIndefinite(d);
    return X_IE;
  }
  const de = ka === K_DENORMAL || kb === K_DENORMAL ? X_DE : 0;
  if (ka === K_INF || kb === K_ZERO) {
    setInf(d, sign);
    // Division by zero takes the place of a denormal dividend's DE.
    return ka !== K_INF ? X_ZE : de;
  }
  if (ka === K_ZERO || kb === K_INF) {
    setZero(d, sign);
    return de;
  }
  // 130 extra quotient bits leave at least 66 (p + 2) bits even for a one-bit denormal dividend;
  // the remainder becomes a sticky bit below them.
  const num = sigOf(a) << 130n;
  const den = sigOf(b);
  const quo = num / den;
  const m = (quo << 1n) | (num - quo * den !== 0n ? 1n : 0n);
  return de | finish(d, sign, m, qOf(a) - qOf(b) - 131, f, rc);
}

/** The integer square root of n > 0 (floor). */
function isqrt(n: bigint): bigint {
  // Start above the root (the float estimate is within 2^-50 relative), then Newton downwards.
  let x = BigInt(Math.ceil(Math.sqrt(Number(n)) * (1 + 2 ** -40))) + 1n;
  for (;;) {
    const y = (x + n / x) >> 1n;
    if (y >= x) return x;
    x = y;
  }
}

export function sqrt(a: F80, d: F80, f: Format, rc: number): number {
  const ka = classify(a);
  const sign = a.se >>> 15;
  const nan = nanOrUnsupported(a, ka, a, ka, d);
  if (nan !== 0) return nan & ~SETTLED;
  if (ka === K_ZERO) {
    setZero(d, sign);
    return 0;
  }
  if (sign !== 0) {
    setIndefinite(d);
    return X_IE;
  }
  if (ka === K_INF) {
    setInf(d, 0);
    return 0;
  }
  const m = sigOf(a);
  const q = qOf(a);
  // Scale to at least 140 bits with an even exponent: the root then has 70 or more bits.
  let k = Math.max(0, 140 - bitLength(m));
  if (((q - k) & 1) !== 0) k++;
  const n = m << BigInt(k);
  const r = isqrt(n);
  const mr = (r << 1n) | (r * r !== n ? 1n : 0n);
  return (ka === K_DENORMAL ? X_DE : 0) | finish(d, 0, mr, (q - k) / 2 - 1, f, rc);
}

/** FRNDINT: a rounded to an integer by rc (PE when inexact, C1 when rounded up). */
export function roundInteger(a: F80, d: F80, rc: number): number {
  const ka = classify(a);
  const nan = nanOrUnsupported(a, ka, a, ka, d);
  if (nan !== 0) return nan & ~SETTLED;
  if (ka === K_ZERO || ka === K_INF) {
    copyF80(d, a);
    return 0;
  }
  if (ka === K_NORMAL && qOf(a) >= 0) {
    // Already an integer (no bit below 2^0): itself, without building a 2^q-bit integer.
    copyF80(d, a);
    return 0;
  }
  const sign = a.se >>> 15;
  roundToInteger(sign, sigOf(a), qOf(a), rc);
  const flags = (ka === K_DENORMAL ? X_DE : 0) | (intInexact ? X_PE : 0) | (intUp ? X_C1 : 0);
  if (intValue === 0n) setZero(d, sign);
  else finish(d, sign, intValue, 0, FMT_EXT, rc);
  return flags;
}

/** FSCALE: a * 2^trunc(b). */
export function scale(a: F80, b: F80, d: F80, rc: number): number {
  const ka = classify(a);
  const kb = classify(b);
  const nan = nanOrUnsupported(a, ka, b, kb, d);
  if (nan !== 0) return nan & ~SETTLED;
  const sa = a.se >>> 15;
  const sb = b.se >>> 15;
  const de = ka === K_DENORMAL || kb === K_DENORMAL ? X_DE : 0;
  if (kb === K_INF) {
    if ((ka === K_ZERO && sb === 0) || (ka === K_INF && sb !== 0)) {
      setIndefinite(d);
      return X_IE;
    }
    if (ka === K_ZERO || ka === K_INF) copyF80(d, a);
    else if (sb === 0) setInf(d, sa);
    else setZero(d, sa);
    return de;
  }
  if (ka === K_ZERO || ka === K_INF) {
    copyF80(d, a);
    return de;
  }
  // trunc(b), clamped where any larger scale over- or underflows just the same.
  let n = 0;
  if (kb !== K_ZERO) {
    const qb = qOf(b);
    if (leadExp(b) > 20) n = 1 << 20;
    else if (qb >= 0) n = Number(sigOf(b) << BigInt(qb));
    else n = Number(sigOf(b) >> BigInt(-qb));
    if (sb !== 0) n = -n;
  }
  return de | finish(d, sa, sigOf(a), qOf(a) + n, FMT_EXT, rc);
}

/** Quotient bits of the last prem (Q2 Q1 Q0 in bits 2..0) and whether it was partial. */
export let premQuotient = 0;
export let premPartial = false;

/** Exponent of the leading bit of a nonzero finite value. */
function leadExp(x: F80): number {
  return qOf(x) + bitLength(sigOf(x)) - 1;
}

/**
 * FPREM (nearest = false: the quotient truncated) and FPREM1 (rounded to nearest even): the
 * exact partial remainder of a by b. When the exponents differ by 64 or more the reduction is
 * partial (C2 set, the quotient bits clear): a is reduced by b * Q * 2^(D - N) with Q the
 * truncated quotient of a / (b * 2^(D - N)). The SDM allows any N in 32..63; N = 32 + (D mod 32)
 * is what the difftest's host does (AMD EPYC), for FPREM1 too.
 */
export function prem(a: F80, b: F80, d: F80, nearest: boolean): number {
  premQuotient = 0;
  premPartial = false;
  const ka = classify(a);
  const kb = classify(b);
  const nan = nanOrUnsupported(a, ka, b, kb, d);
  if (nan !== 0) return nan & ~SETTLED;
  if (ka === K_INF || kb === K_ZERO) {
    setIndefinite(d);
    return X_IE;
  }
  const de = ka === K_DENORMAL || kb === K_DENORMAL ? X_DE : 0;
  if (ka === K_ZERO || kb === K_INF) {
    copyF80(d, a);
    // A pseudo-denormal comes back in its normal encoding (exponent 1).
    if ((a.se & 0x7fff) === 0 && a.hi >>> 31 !== 0) d.se |= 1;
    return de;
  }
  const sa = a.se >>> 15;
  const ma = sigOf(a);
  const mb = sigOf(b);
  const qa = qOf(a);
  const qb = qOf(b);
  const diff = leadExp(a) - leadExp(b);
  let sign = sa;
  let r: bigint;
  let rq: number;
  if (diff >= 64) {
    premPartial = true;
    // Divide by b * 2^(diff - N): the truncated quotient has about N bits.
    const shift = diff - (32 + (diff & 31));
    const qd = qb + shift;
    const qm = Math.min(qa, qd);
    const va = ma << BigInt(qa - qm);
    const vb = mb << BigInt(qd - qm);
    const quo = va / vb;
    r = va - quo * vb;
    rq = qm;
  } else {
    const qm = Math.min(qa, qb);
    const va = ma << BigInt(qa - qm);
    const vb = mb << BigInt(qb - qm);
    let quo = va / vb;
    r = va - quo * vb;
    if (nearest && (r << 1n > vb || (r << 1n === vb && (quo & 1n) === 1n))) {
      quo++;
      r = vb - r;
      sign ^= 1;
    }
    premQuotient = Number(quo & 7n);
    rq = qm;
  }
  if (r === 0n) {
    setZero(d, sa);
    return de;
  }
  // The remainder is exact, so rounding only repacks it (a denormal result stays exact).
  return de | finish(d, sign, r, rq, FMT_EXT, 0);
}

/**
 * FXTRACT's parts of a finite nonzero a: the significand (exponent 0, sign of a) into `sig`,
 * the unbiased exponent as a value into `exp`.
 */
export function extract(a: F80, exp: F80, sig: F80): void {
  const e = leadExp(a);
  const m = sigOf(a);
  const s = m << BigInt(64 - bitLength(m));
  setF80(sig, (a.se & 0x8000) | F80_BIAS, Number(s >> 32n), Number(s & 0xffffffffn));
  if (e === 0) setZero(exp, 0);
  else finish(exp, e < 0 ? 1 : 0, BigInt(Math.abs(e)), 0, FMT_EXT, RC_ZERO);
}

/**
 * Compares a with b: 0 a > b, 1 a < b, 2 equal, 3 unordered (a NaN or unsupported operand).
 * IE for an SNaN or unsupported operand, and for any NaN unless `quiet` (FUCOM); DE for a
 * denormal of an ordered comparison. The result goes to cmpResult, the flags are returned.
 */
export let cmpResult = 0;
export function compare(a: F80, b: F80, quietNaN: boolean): number {
  const ka = classify(a);
  const kb = classify(b);
  if (ka >= K_QNAN || kb >= K_QNAN) {
    cmpResult = 3;
    const signalling =
      ka === K_SNAN || kb === K_SNAN || ka === K_UNSUPPORTED || kb === K_UNSUPPORTED;
    return signalling || !quietNaN ? X_IE : 0;
  }
  const de = ka === K_DENORMAL || kb === K_DENORMAL ? X_DE : 0;
  const sa = ka === K_ZERO ? 0 : a.se >>> 15 === 0 ? 1 : -1;
  const sb = kb === K_ZERO ? 0 : b.se >>> 15 === 0 ? 1 : -1;
  let c: number;
  if (sa !== sb) c = sa > sb ? 1 : -1;
  else if (sa === 0) c = 0;
  else {
    // Same sign, both nonzero: compare magnitudes as (exponent read as >= 1, significand).
    const ea = Math.max(a.se & 0x7fff, 1);
    const eb = Math.max(b.se & 0x7fff, 1);
    const mag = ea !== eb ? ea - eb : a.hi !== b.hi ? a.hi - b.hi : a.lo !== b.lo ? a.lo - b.lo : 0;
    c = mag === 0 ? 0 : (mag > 0 ? 1 : -1) * sa;
  }
  cmpResult = c > 0 ? 0 : c < 0 ? 1 : 2;
  return de;
}
