// The common x87 cases without BigInt: FADD/FSUB/FMUL of two normal operands, and FST m64 of a
// normal value, when the rounded result is normal (no underflow, no overflow). The exact result
// is kept in a 128-bit window of four 32-bit limbs, with the bits shifted out below it ORed into
// the lowest bit (the "sticky jam"; with 64 or more bits between the rounding position and the
// window's end it never decides a rounding, since an operand that loses bits has its leading bit
// in the window's low half, but it keeps the window's value on the right side of every boundary
// by construction). Anything else returns -1 and the caller takes
// the exact BigInt path (f80-arith.ts), which also decides every case tested against this one.

import { type F80, setF80, X_C1, X_PE } from './f80.js';
import { RC_DOWN, RC_NEAREST, RC_UP } from './simd-state.js';

const TWO32 = 4294967296;

// The window, most significant limb first: value = w3:w2:w1:w0 * 2^(e - 127).
let w3 = 0;
let w2 = 0;
let w1 = 0;
let w0 = 0;
let we = 0;

// The rounded significand (J at bit 31 of kHi) and its leading exponent.
let kHi = 0;
let kLo = 0;
let kE = 0;

/** Shifts the window left until bit 127 is set (the window is not zero). */
function normalise(): void {
  while (w3 === 0) {
    w3 = w2;
    w2 = w1;
    w1 = w0;
    w0 = 0;
    we -= 32;
  }
  const z = Math.clz32(w3);
  if (z !== 0) {
    w3 = ((w3 << z) | (w2 >>> (32 - z))) >>> 0;
    w2 = ((w2 << z) | (w1 >>> (32 - z))) >>> 0;
    w1 = ((w1 << z) | (w0 >>> (32 - z))) >>> 0;
    w0 = (w0 << z) >>> 0;
    we -= z;
  }
}

/**
 * Rounds the normalised window to p (24, 53 or 64) bits by rc into kHi/kLo/kE; returns PE and
 * C1 as they apply.
 */
function roundWindow(sign: number, p: number, rc: number): number {
  let hi = w3;
  let lo: number;
  let half: boolean;
  let rest: boolean;
  let odd: boolean;
  if (p === 64) {
    lo = w2;
    half = w1 >>> 31 !== 0;
    rest = (w1 & 0x7fffffff) !== 0 || w0 !== 0;
    odd = (lo & 1) !== 0;
  } else if (p === 53) {
    lo = (w2 & ~0x7ff) >>> 0;
    half = (w2 & 0x400) !== 0;
    rest = (w2 & 0x3ff) !== 0 || w1 !== 0 || w0 !== 0;
    odd = (w2 & 0x800) !== 0;
  } else {
    hi = (w3 & ~0xff) >>> 0;
    lo = 0;
    half = (w3 & 0x80) !== 0;
    rest = (w3 & 0x7f) !== 0 || w2 !== 0 || w1 !== 0 || w0 !== 0;
    odd = (w3 & 0x100) !== 0;
  }
  kE = we;
  if (!half && !rest) {
    kHi = hi;
    kLo = lo;
    return 0;
  }
  let up: boolean;
  if (rc === RC_NEAREST) up = half && (rest || odd);
  else if (rc === RC_UP) up = sign === 0;
  else if (rc === RC_DOWN) up = sign !== 0;
  else up = false;
  if (up) {
    // One unit in the last kept place, carried through the 64 bits.
    if (p === 24) hi += 0x100;
    else lo += p === 64 ? 1 : 0x800;
    if (lo >= TWO32) {
      lo -= TWO32;
      hi++;
    }
    if (hi >= TWO32) {
      hi = 0x80000000;
      lo = 0;
      kE++;
    }
  }
  kHi = hi;
  kLo = lo;
  return up ? X_PE | X_C1 : X_PE;
}

/** The rounded window into d as a register value, or false if its exponent is not normal. */
function packNormal(d: F80, sign: number): boolean {
  const biased = kE + 16383;
  if (biased <= 0 || biased >= 0x7fff) return false;
  setF80(d, (sign << 15) | biased, kHi, kLo);
  return true;
}

/**
 * a + b (negB: a - b) for normal a and b: the flags, or -1 to take the exact path (a result that
 * is not normal).
 */
export function fastAdd(a: F80, b: F80, negB: boolean, d: F80, p: number, rc: number): number {
  const sa = a.se >>> 15;
  const sb = (b.se >>> 15) ^ (negB ? 1 : 0);
  const ea = a.se & 0x7fff;
  const eb = b.se & 0x7fff;
  // x is the operand of larger magnitude, so a subtraction never goes negative.
  const swap = ea < eb || (ea === eb && (a.hi < b.hi || (a.hi === b.hi && a.lo < b.lo)));
  const x = swap ? b : a;
  const y = swap ? a : b;
  const sx = swap ? sb : sa;
  const sy = swap ? sa : sb;
  const ex = x.se & 0x7fff;
  const ey = y.se & 0x7fff;
  const xh = x.hi;
  const xl = x.lo;
  const yh = y.hi;
  const yl = y.lo;
  const sh = ex - ey;
  // y shifted right by sh within the window (y3..y0), lost bits jammed into y0's bit 0.
  let y3 = 0;
  let y2 = 0;
  let y1 = 0;
  let y0 = 0;
  if (sh >= 128) {
    y0 = 1;
  } else {
    const limbs = sh >>> 5;
    const r = sh & 31;
    // y as four limbs before the bit shift: [yh, yl, 0, 0] moved down by whole limbs.
    let t3 = yh;
    let t2 = yl;
    let t1 = 0;
    let t0 = 0;
    let lost = 0;
    for (let k = 0; k < limbs; k++) {
      lost |= t0;
      t0 = t1;
      t1 = t2;
      t2 = t3;
      t3 = 0;
    }
    if (r !== 0) {
      lost |= (t0 << (32 - r)) >>> 0;
      t0 = ((t0 >>> r) | (t1 << (32 - r))) >>> 0;
      t1 = ((t1 >>> r) | (t2 << (32 - r))) >>> 0;
      t2 = ((t2 >>> r) | (t3 << (32 - r))) >>> 0;
      t3 = t3 >>> r;
    }
    y3 = t3;
    y2 = t2;
    y1 = t1;
    y0 = (t0 | (lost !== 0 ? 1 : 0)) >>> 0;
  }
  we = ex - 16383;
  if (sx === sy) {
    let s0 = y0;
    let s1 = y1;
    let s2 = xl + y2;
    let s3 = xh + y3;
    if (s2 >= TWO32) {
      s2 -= TWO32;
      s3++;
    }
    if (s3 >= TWO32) {
      // Carry out of bit 127: shift right by one, the lost bit jammed.
      const jam = s0 & 1;
      s0 = ((s0 >>> 1) | ((s1 & 1) << 31) | jam) >>> 0;
      s1 = ((s1 >>> 1) | ((s2 & 1) << 31)) >>> 0;
      s2 = ((s2 >>> 1) | ((s3 & 1) << 31)) >>> 0;
      s3 = (0x80000000 | ((s3 - TWO32) >>> 1)) >>> 0;
      we++;
    }
    w3 = s3;
    w2 = s2;
    w1 = s1;
    w0 = s0;
  } else {
    // x - y, borrowing limb by limb.
    let s0 = -y0;
    let s1 = -y1;
    let s2 = xl - y2;
    let s3 = xh - y3;
    if (s0 < 0) {
      s0 += TWO32;
      s1--;
    }
    if (s1 < 0) {
      s1 += TWO32;
      s2--;
    }
    if (s2 < 0) {
      s2 += TWO32;
      s3--;
    }
    if ((s3 | s2 | s1 | s0) === 0) {
      // An exact zero: +0, or -0 when rounding down.
      setF80(d, rc === RC_DOWN ? 0x8000 : 0, 0, 0);
      return 0;
    }
    w3 = s3;
    w2 = s2;
    w1 = s1;
    w0 = s0;
    normalise();
  }
  const flags = roundWindow(sx, p, rc);
  return packNormal(d, sx) ? flags : -1;
}

/** a * b for normal a and b: the flags, or -1 to take the exact path. */
export function fastMul(a: F80, b: F80, d: F80, p: number, rc: number): number {
  const sign = (a.se ^ b.se) >>> 15;
  // 16-bit pieces: every partial product is below 2^32 and every column sum below 2^35.
  const a0 = a.lo & 0xffff;
  const a1 = a.lo >>> 16;
  const a2 = a.hi & 0xffff;
  const a3 = a.hi >>> 16;
  const b0 = b.lo & 0xffff;
  const b1 = b.lo >>> 16;
  const b2 = b.hi & 0xffff;
  const b3 = b.hi >>> 16;
  let c = a0 * b0;
  const p0 = c % 65536;
  c = Math.floor(c / 65536) + a0 * b1 + a1 * b0;
  const p1 = c % 65536;
  c = Math.floor(c / 65536) + a0 * b2 + a1 * b1 + a2 * b0;
  const p2 = c % 65536;
  c = Math.floor(c / 65536) + a0 * b3 + a1 * b2 + a2 * b1 + a3 * b0;
  const p3 = c % 65536;
  c = Math.floor(c / 65536) + a1 * b3 + a2 * b2 + a3 * b1;
  const p4 = c % 65536;
  c = Math.floor(c / 65536) + a2 * b3 + a3 * b2;
  const p5 = c % 65536;
  c = Math.floor(c / 65536) + a3 * b3;
  const p6 = c % 65536;
  const p7 = Math.floor(c / 65536);
  w0 = p0 + p1 * 65536;
  w1 = p2 + p3 * 65536;
  w2 = p4 + p5 * 65536;
  w3 = p6 + p7 * 65536;
  // The product of two significands in [2^63, 2^64) is in [2^126, 2^128).
  we = (a.se & 0x7fff) + (b.se & 0x7fff) - 2 * 16383 + 1;
  normalise();
  const flags = roundWindow(sign, p, rc);
  return packNormal(d, sign) ? flags : -1;
}

/**
 * FST m64 of a normal register value whose rounded result is a float64 normal: returns the flags
 * with the float64's high word in f64FastHi and low word in f64FastLo, or -1.
 */
export let f64FastHi = 0;
export let f64FastLo = 0;
export function fastToF64(x: F80, rc: number): number {
  const sign = x.se >>> 15;
  w3 = x.hi;
  w2 = x.lo;
  w1 = 0;
  w0 = 0;
  we = (x.se & 0x7fff) - 16383;
  const flags = roundWindow(sign, 53, rc);
  if (kE < -1022 || kE > 1023) return -1;
  f64FastHi = ((sign << 31) | ((kE + 1023) << 20) | ((kHi >>> 11) & 0xfffff)) >>> 0;
  f64FastLo = ((kHi << 21) | (kLo >>> 11)) >>> 0;
  return flags;
}
