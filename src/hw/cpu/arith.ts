// 64-bit arithmetic on 32-bit halves for the interpreter: multiplication to 128 bits and shifts.
// Results go to the shared scratch `w` (no allocation). All inputs and outputs are int32 halves.

/** Scratch words: products are w[0] (lowest) .. w[3]; shifts return w[0] (low), w[1] (high). */
export const w = new Int32Array(4);

/** Unsigned 32 x 32 -> 64: w[0] low, w[1] high. */
export function umul32(a: number, b: number): void {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  w[0] = (mid << 16) | (ll & 0xffff);
  w[1] = ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16);
}

/** Signed 32 x 32 -> 64: w[0] low, w[1] high. */
export function imul32(a: number, b: number): void {
  umul32(a, b);
  w[1] = w[1]! - (a < 0 ? b : 0) - (b < 0 ? a : 0);
}

const TWO32 = 4294967296;

/** 64 x 64 -> 128 (unsigned, or signed when `signed`): w[0..3], lowest first. */
export function mul64(a0: number, a1: number, b0: number, b1: number, signed: boolean): void {
  umul32(a0, b0);
  const w0 = w[0]!;
  const h00 = w[1]! >>> 0;
  umul32(a0, b1);
  const l01 = w[0]! >>> 0;
  const h01 = w[1]! >>> 0;
  umul32(a1, b0);
  const l10 = w[0]! >>> 0;
  const h10 = w[1]! >>> 0;
  umul32(a1, b1);
  const l11 = w[0]! >>> 0;
  const h11 = w[1]!;
  const t1 = h00 + l01 + l10;
  const c1 = Math.floor(t1 / TWO32);
  const t2 = l11 + h01 + h10 + c1;
  const c2 = Math.floor(t2 / TWO32);
  let w2 = t2 | 0;
  let w3 = (h11 + c2) | 0;
  if (signed) {
    // Two's-complement correction of the upper 64 bits: subtract b if a < 0, a if b < 0.
    if (a1 < 0) {
      const s = (w2 >>> 0) - (b0 >>> 0);
      w3 = (w3 - b1 - (s < 0 ? 1 : 0)) | 0;
      w2 = s | 0;
    }
    if (b1 < 0) {
      const s = (w2 >>> 0) - (a0 >>> 0);
      w3 = (w3 - a1 - (s < 0 ? 1 : 0)) | 0;
      w2 = s | 0;
    }
  }
  w[0] = w0;
  w[1] = t1 | 0;
  w[2] = w2;
  w[3] = w3;
}

/** Logical left shift of hi:lo by n (0..63): w[0], w[1]. */
export function shl64(lo: number, hi: number, n: number): void {
  if (n === 0) {
    w[0] = lo;
    w[1] = hi;
  } else if (n < 32) {
    w[1] = (hi << n) | (lo >>> (32 - n));
    w[0] = lo << n;
  } else {
    w[1] = lo << (n - 32);
    w[0] = 0;
  }
}

/** Logical right shift of hi:lo by n (0..63). */
export function shr64(lo: number, hi: number, n: number): void {
  if (n === 0) {
    w[0] = lo;
    w[1] = hi;
  } else if (n < 32) {
    w[0] = (lo >>> n) | (hi << (32 - n));
    w[1] = hi >>> n;
  } else {
    w[0] = hi >>> (n - 32);
    w[1] = 0;
  }
}

/** Arithmetic right shift of hi:lo by n (0..63). */
export function sar64(lo: number, hi: number, n: number): void {
  if (n === 0) {
    w[0] = lo;
    w[1] = hi;
  } else if (n < 32) {
    w[0] = (lo >>> n) | (hi << (32 - n));
    w[1] = hi >> n;
  } else {
    w[0] = hi >> (n - 32);
    w[1] = hi >> 31;
  }
}

/** hi:lo as an unsigned bigint (rare paths: 128-bit division). */
export function toBig(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Number of set bits in a 32-bit value. */
export function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}
