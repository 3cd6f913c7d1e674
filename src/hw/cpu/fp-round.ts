// Directed rounding for SSE arithmetic (MXCSR.RC = down, up, toward zero). JS computes the
// round-to-nearest result; this finds on which side of it the exact result lies, with exact
// dyadic arithmetic on BigInt, and steps to the neighbouring float when the mode asks for it.
// Only taken when RC is not nearest, which software selects rarely (fesetround, rint), so the
// BigInt cost stays off the common path.

const BITS = new DataView(new ArrayBuffer(8));

/** A finite double as m * 2^e with integer m (sign in m). */
function dyadic(x: number): [bigint, number] {
  BITS.setFloat64(0, x);
  const hi = BITS.getUint32(0);
  const lo = BITS.getUint32(4);
  const exp = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e = -1074;
  if (exp !== 0) {
    m |= 1n << 52n;
    e = exp - 1075;
  }
  return [hi >>> 31 !== 0 ? -m : m, e];
}

function sign(v: bigint): number {
  return v > 0n ? 1 : v < 0n ? -1 : 0;
}

/** sign(x - y) for dyadics x = mx 2^ex and y = my 2^ey. */
function cmpDyadic(mx: bigint, ex: number, my: bigint, ey: number): number {
  const e = Math.min(ex, ey);
  return sign((mx << BigInt(ex - e)) - (my << BigInt(ey - e)));
}

/** Operation codes as in sse-table.ts (FP_ADD 0, FP_MUL 1, FP_SUB 2, FP_DIV 4, FP_SQRT 6). */
export const OP_ADD = 0;
export const OP_MUL = 1;
export const OP_SUB = 2;
export const OP_DIV = 4;
export const OP_SQRT = 6;

/**
 * sign(exact - r) for the exact result of `a op b` (b alone for SQRT) and a finite candidate r;
 * a, b finite, and for DIV b non-zero.
 */
export function errorSign(op: number, a: number, b: number, r: number): number {
  const [mr, er] = dyadic(r);
  const [mb, eb] = dyadic(b);
  switch (op) {
    case OP_ADD:
    case OP_SUB: {
      const [ma, ea] = dyadic(a);
      const e = Math.min(ea, eb);
      const sb = op === OP_SUB ? -mb : mb;
      const exact = (ma << BigInt(ea - e)) + (sb << BigInt(eb - e));
      return cmpDyadic(exact, e, mr, er);
    }
    case OP_MUL: {
      const [ma, ea] = dyadic(a);
      return cmpDyadic(ma * mb, ea + eb, mr, er);
    }
    case OP_DIV: {
      // a / b - r has the sign of (a - r * b) * sign(b).
      const [ma, ea] = dyadic(a);
      return cmpDyadic(ma, ea, mr * mb, er + eb) * (b < 0 ? -1 : 1);
    }
    default:
      // sqrt(b) - r has the sign of b - r * r (r >= 0).
      return cmpDyadic(mb, eb, mr * mr, er + er);
  }
}

const RC_DOWN = 1;
const RC_UP = 2;
const RC_ZERO = 3;
const F32 = new Float32Array(1);
const U32 = new Int32Array(F32.buffer);
const F64 = new Float64Array(1);
const U64 = new BigInt64Array(F64.buffer);

/** The float (float32 when `single`) next to finite r towards +inf (up) or -inf. */
export function nextFloat(r: number, up: boolean, single: boolean): number {
  if (single) {
    F32[0] = r;
    if (r === 0) U32[0] = up ? 1 : 0x80000001 | 0;
    else if (r > 0 === up) U32[0]! += 1;
    else U32[0]! -= 1;
    return F32[0]!;
  }
  F64[0] = r;
  if (r === 0) U64[0] = up ? 1n : -0x7fffffffffffffffn;
  else if (r > 0 === up) U64[0]! += 1n;
  else U64[0]! -= 1n;
  return F64[0]!;
}

/**
 * The result of `a op b` rounded by `mode` (not nearest), given the nearest-rounded r of the
 * same precision; finite operands. Overflow follows APM vol. 1 4.9.3.3: toward zero, and toward
 * the other infinity, give the largest finite value.
 */
export function roundDirected(
  op: number,
  a: number,
  b: number,
  r: number,
  mode: number,
  single: boolean,
): number {
  if (r !== r) return r;
  if (!Number.isFinite(r)) {
    if (op === OP_DIV && b === 0) return r; // exact infinity (division by zero)
    const max = single ? 3.4028234663852886e38 : 1.7976931348623157e308;
    if (mode === RC_ZERO || (mode === RC_DOWN && r > 0) || (mode === RC_UP && r < 0)) {
      return r > 0 ? max : -max;
    }
    return r;
  }
  const s = errorSign(op, a, b, r);
  if (s === 0) {
    // An exact zero sum of operands of opposite signs is -0 when rounding down (IEEE 754 6.3).
    if (r === 0 && mode === RC_DOWN && (op === OP_ADD || op === OP_SUB)) {
      const nb = op === OP_SUB ? -b : b;
      return Object.is(a, 0) && Object.is(nb, 0) ? 0 : -0;
    }
    return r;
  }
  if (mode === RC_UP) return s > 0 ? nextFloat(r, true, single) : r;
  if (mode === RC_DOWN) return s < 0 ? nextFloat(r, false, single) : r;
  // Toward zero: step back when r overshot in magnitude.
  if (r > 0 && s < 0) return nextFloat(r, false, single);
  if (r < 0 && s > 0) return nextFloat(r, true, single);
  return r;
}
