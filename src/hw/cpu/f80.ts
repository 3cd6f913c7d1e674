// The x87 double-extended format (Intel SDM vol. 1, 4.2.2 and 8.2.2; APM vol. 1, 6.4.2): a sign,
// a 15-bit biased exponent and a 64-bit significand whose top bit (J) is the explicit integer bit.
// A value is held as three numbers - `se` (sign << 15 | exponent), `hi` (significand bits 63:32)
// and `lo` (bits 31:0) - so registers live in typed arrays and moves never allocate.
//
// Encodings (SDM table 8-3): exponent 0 with J = 0 is zero or a denormal, with J = 1 a
// pseudo-denormal (a valid operand, read as exponent 1); exponent 0x7FFF with J = 1 is an infinity
// (fraction 0) or a NaN (quiet when bit 62 is set); any other encoding with J = 0 (unnormals,
// pseudo-NaNs, pseudo-infinities) is unsupported: arithmetic raises IE and yields the indefinite.

/** A double-extended value (see the file comment). */
export class F80 {
  se = 0;
  hi = 0;
  lo = 0;
}

export const F80_BIAS = 16383;
export const F80_EXP_MAX = 0x7fff;

/** Operand classes, the order the x87 checks them in. */
export const K_ZERO = 0;
export const K_NORMAL = 1;
/** Denormals and pseudo-denormals (both raise DE as operands). */
export const K_DENORMAL = 2;
export const K_INF = 3;
export const K_QNAN = 4;
export const K_SNAN = 5;
export const K_UNSUPPORTED = 6;

/** FSW exception bits and C1, as the operations below report them. */
export const X_IE = 0x1;
export const X_DE = 0x2;
export const X_ZE = 0x4;
export const X_OE = 0x8;
export const X_UE = 0x10;
export const X_PE = 0x20;
/** C1 in an arithmetic result: the significand was rounded up (SDM 8.1.3.3). */
export const X_C1 = 0x200;

export function setF80(d: F80, se: number, hi: number, lo: number): void {
  d.se = se;
  d.hi = hi >>> 0;
  d.lo = lo >>> 0;
}

export function copyF80(d: F80, s: F80): void {
  d.se = s.se;
  d.hi = s.hi;
  d.lo = s.lo;
}

/** The QNaN floating-point indefinite: negative, significand 0xC000000000000000. */
export function setIndefinite(d: F80): void {
  setF80(d, 0xffff, 0xc0000000, 0);
}

export function setZero(d: F80, sign: number): void {
  setF80(d, sign << 15, 0, 0);
}

export function setInf(d: F80, sign: number): void {
  setF80(d, (sign << 15) | F80_EXP_MAX, 0x80000000, 0);
}

export function classify(x: F80): number {
  const e = x.se & 0x7fff;
  const j = x.hi >>> 31;
  if (e === 0) {
    if (j !== 0) return K_DENORMAL;
    return x.hi === 0 && x.lo === 0 ? K_ZERO : K_DENORMAL;
  }
  if (j === 0) return K_UNSUPPORTED;
  if (e !== F80_EXP_MAX) return K_NORMAL;
  if ((x.hi & 0x7fffffff) === 0 && x.lo === 0) return K_INF;
  return (x.hi & 0x40000000) !== 0 ? K_QNAN : K_SNAN;
}

/** Sets the quiet bit of a NaN. */
export function quiet(x: F80): void {
  x.hi = (x.hi | 0x40000000) >>> 0;
}

// ---- exact conversions from the memory formats -------------------------------------------------

/** Leading zeros of the 64-bit hi:lo (64 for zero). */
function clz64(hi: number, lo: number): number {
  return hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo);
}

/**
 * Sets `d` to sign * hi:lo * 2^(exp2 - 63) with hi:lo shifted so J is set; the value must fit the
 * normal range (it does for every memory format and integer).
 */
function normalise(d: F80, sign: number, hi: number, lo: number, exp2: number): void {
  if (hi === 0 && lo === 0) {
    setZero(d, sign);
    return;
  }
  const z = clz64(hi >>> 0, lo >>> 0);
  let h = hi >>> 0;
  let l = lo >>> 0;
  if (z >= 32) {
    h = l;
    l = 0;
  }
  const r = z & 31;
  if (r !== 0) {
    h = ((h << r) | (l >>> (32 - r))) >>> 0;
    l = (l << r) >>> 0;
  }
  setF80(d, (sign << 15) | (exp2 - z + F80_BIAS), h, l);
}

/**
 * float32 bits -> double-extended, exactly (an SNaN stays signalling; the caller raises IE).
 * Returns X_DE when the source is a float32 denormal.
 */
export function f32ToF80(bits: number, d: F80): number {
  const sign = bits >>> 31;
  const e = (bits >>> 23) & 0xff;
  const f = bits & 0x7fffff;
  if (e === 0xff) {
    setF80(d, (sign << 15) | F80_EXP_MAX, 0x80000000 | (f << 8), 0);
    return 0;
  }
  if (e === 0) {
    normalise(d, sign, 0, f, 63 - 149);
    return f !== 0 ? X_DE : 0;
  }
  setF80(d, (sign << 15) | (e - 127 + F80_BIAS), 0x80000000 | (f << 8), 0);
  return 0;
}

/** float64 bits (hi, lo words) -> double-extended, exactly; X_DE for a float64 denormal. */
export function f64ToF80Bits(hi: number, lo: number, d: F80): number {
  const sign = hi >>> 31;
  const e = (hi >>> 20) & 0x7ff;
  const fh = hi & 0xfffff;
  if (e === 0) {
    normalise(d, sign, fh, lo, 63 - 1074);
    return fh !== 0 || lo !== 0 ? X_DE : 0;
  }
  const sh = 0x80000000 | (fh << 11) | (lo >>> 21);
  const sl = lo << 11;
  setF80(d, (sign << 15) | (e === 0x7ff ? F80_EXP_MAX : e - 1023 + F80_BIAS), sh, sl);
  return 0;
}

/** A signed 64-bit integer (hi:lo two's complement) -> double-extended, exactly (FILD). */
export function i64ToF80(hi: number, lo: number, d: F80): void {
  let h = hi >>> 0;
  let l = lo >>> 0;
  const sign = h >>> 31;
  if (sign !== 0) {
    l = (~l + 1) >>> 0;
    h = (~h + (l === 0 ? 1 : 0)) >>> 0;
  }
  normalise(d, sign, h, l, 63);
}

// ---- the number view (tools and tests, not the x87 itself) ------------------------------------

const BITS = new DataView(new ArrayBuffer(8));

/** float64 -> double-extended, exactly (NaN payloads kept). */
export function fromNumber(v: number, d: F80): void {
  BITS.setFloat64(0, v);
  f64ToF80Bits(BITS.getUint32(0), BITS.getUint32(4), d);
}

/**
 * double-extended -> the nearest float64 (NaNs and unsupported encodings give NaN; below the
 * float64 normal range the value can be rounded twice).
 */
export function toNumber(x: F80): number {
  const k = classify(x);
  const sign = x.se >>> 15 !== 0 ? -1 : 1;
  if (k === K_ZERO) return sign * 0;
  if (k === K_INF) return sign * Infinity;
  if (k >= K_QNAN) return NaN;
  // top (43 bits, exact) + rest / 2^21: the addition is the one rounding to 53 bits; the scaling
  // is split in two so neither factor under- or overflows early.
  const m = x.hi * 2048 + (x.lo >>> 21) + (x.lo & 0x1fffff) / 2097152;
  const p = Math.max(x.se & 0x7fff, 1) - F80_BIAS - 42;
  const half = Math.trunc(p / 2);
  return sign * m * 2 ** half * 2 ** (p - half);
}
