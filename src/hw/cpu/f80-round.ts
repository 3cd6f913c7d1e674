// Rounding an exact result m * 2^q (m a positive BigInt) to a binary format, as the x87 does with
// its exceptions masked (Intel SDM vol. 1, 4.8.4 "Rounding", 4.9.1.4-4.9.1.6 and 8.5.4-8.5.6):
//
// - p significand bits (FCW.PC: 24, 53 or 64 for register results; 24/53 for FST m32/m64), the
//   nearest-even or directed rounding of FCW.RC, PE when inexact and C1 when the magnitude was
//   rounded up;
// - overflow (OE, PE): infinity or the largest finite value, by rounding direction and sign;
// - underflow: tininess is detected after rounding (as x86 does), and with UE masked the result is
//   denormalised and UE is set only if it is also inexact. Register results keep the 15-bit
//   exponent whatever PC says; their denormals have p - 1 bits below 2^-16382.
//
// Only the operations' finite, nonzero cases come here, so BigInt stays off the moves, loads and
// compares. The result is left in module state (no allocation) for a packer to read.

import { type F80, F80_BIAS, setF80, setInf, X_C1, X_OE, X_PE, X_UE } from './f80.js';
import { RC_DOWN, RC_NEAREST, RC_UP } from './simd-state.js';

/** A destination format: precision, normal exponent range and the smallest quantum. */
export interface Format {
  readonly p: number;
  readonly emin: number;
  readonly emax: number;
  readonly qmin: number;
}

export const FMT_F32: Format = { p: 24, emin: -126, emax: 127, qmin: -149 };
export const FMT_F64: Format = { p: 53, emin: -1022, emax: 1023, qmin: -1074 };
const REG_EMIN = 1 - F80_BIAS;
const REG_QMIN = REG_EMIN - 63;
/**
 * Register results by FCW.PC (SDM table 8-2). The reserved value 1 rounds to 64 bits, as the
 * difftest's host (AMD EPYC) does.
 */
export const FMT_REG: readonly Format[] = [24, 64, 53, 64].map((p) => ({
  p,
  emin: REG_EMIN,
  emax: F80_BIAS,
  // A denormal result keeps p - 1 bits below 2^emin, as if the format were narrower: with PC =
  // single the last bit is 2^-16405, not the register's 2^-16445.
  qmin: REG_EMIN - p + 1,
}));
export const FMT_EXT = FMT_REG[3]!;

/** 2^k for the bit lengths the operations produce (products, quotients, aligned sums). */
const POW2: readonly bigint[] = Array.from({ length: 400 }, (_, k) => 1n << BigInt(k));

/** Number of bits of a positive BigInt. */
export function bitLength(m: bigint): number {
  // Number(m) rounds to nearest, so its exponent is the bit length or, when m rounds up to a
  // power of two, one more; a comparison settles it without string conversion.
  let n = Math.floor(Math.log2(Number(m))) + 1;
  if (n > POW2.length) {
    const s = m.toString(16);
    return s.length * 4 - (Math.clz32(parseInt(s[0]!, 16)) - 28);
  }
  if (m < POW2[n - 1]!) n--;
  return n;
}

// The rounded result: sign, significand and exponent of its last bit (value = sig * 2^q), and
// whether it is an infinity.
let rSign = 0;
let rSig = 0n;
let rQ = 0;
/** The exponent of the result's leading bit (when rSig is not zero). */
let rE = 0;
let rInf = false;

// The last roundAt: the multiple kept, and whether it was rounded up / inexact.
let raKept = 0n;
let raUp = false;
let raInexact = false;

/** m * 2^q rounded by rc to a multiple of 2^at (at > q), into raKept/raUp/raInexact. */
function roundAt(sign: number, m: bigint, q: number, at: number, rc: number): void {
  const sh = BigInt(at - q);
  let kept = m >> sh;
  const rest = m - (kept << sh);
  raInexact = rest !== 0n;
  raUp = false;
  if (raInexact) {
    if (rc === RC_NEAREST) {
      const half = 1n << (sh - 1n);
      raUp = rest > half || (rest === half && (kept & 1n) === 1n);
    } else if (rc === RC_UP) {
      raUp = sign === 0;
    } else if (rc === RC_DOWN) {
      raUp = sign !== 0;
    }
  }
  if (raUp) kept++;
  raKept = kept;
}

/**
 * Rounds (-1)^sign * m * 2^q (m > 0) to `f` by `rc`, into the module's result; returns the flags
 * (PE, UE, OE, C1).
 */
export function round(sign: number, m: bigint, q: number, f: Format, rc: number): number {
  const n = bitLength(m);
  const e = q + n - 1;
  rSign = sign;
  rInf = false;
  // Tininess after rounding: the result rounded to p bits with an unbounded exponent is below
  // 2^emin; only a value just under 2^emin can round up out of it.
  let tiny = e < f.emin;
  if (e === f.emin - 1 && e - f.p + 1 > q) {
    roundAt(sign, m, q, e - f.p + 1, rc);
    if (bitLength(raKept) > f.p) tiny = false;
  }
  const at = Math.max(e - f.p + 1, f.qmin);
  let flags = 0;
  let sig = m;
  let qq = q;
  // The exponent of the result's leading bit, tracked so the BigInt is measured only once.
  let lead = e;
  if (at > q) {
    roundAt(sign, m, q, at, rc);
    sig = raKept;
    qq = at;
    if (raInexact) flags |= X_PE | (tiny ? X_UE : 0);
    if (raUp) flags |= X_C1;
    if (e < at) {
      // All bits were below the last place: the result is 0 or one unit.
      lead = at;
    } else if (raUp && sig === POW2[e - at + 1]) {
      // The increment carried out of the top bit.
      lead = e + 1;
      if (e - at + 1 >= f.p) {
        sig >>= 1n;
        qq++;
      }
    }
  }
  if (sig !== 0n && lead > f.emax) {
    // Overflow: infinity when the rounding goes away from zero, else the largest finite value.
    const toInf =
      rc === RC_NEAREST || (rc === RC_UP && sign === 0) || (rc === RC_DOWN && sign !== 0);
    if (toInf) {
      rInf = true;
      return X_OE | X_PE | X_C1;
    }
    rSig = POW2[f.p]! - 1n;
    rQ = f.emax - f.p + 1;
    rE = f.emax;
    return X_OE | X_PE;
  }
  rE = lead;
  rSig = sig;
  rQ = qq;
  return flags;
}

/** The rounded result into a register value. */
export function packReg(d: F80): void {
  if (rInf) {
    setInf(d, rSign);
    return;
  }
  if (rSig === 0n) {
    setF80(d, rSign << 15, 0, 0);
    return;
  }
  const e = rE;
  let biased = 0;
  let sig: bigint;
  if (e >= REG_EMIN) {
    biased = e + F80_BIAS;
    sig = rSig << BigInt(63 - (e - rQ));
  } else {
    sig = rSig << BigInt(rQ - REG_QMIN);
  }
  setF80(d, (rSign << 15) | biased, Number(sig >> 32n), Number(sig & 0xffffffffn));
}

/** The exponent field and fraction of the result in an IEEE format, |value| only. */
function ieeeBits(f: Format): bigint {
  const frac = f.p - 1;
  if (rInf) return BigInt(2 * f.emax + 1) << BigInt(frac);
  if (rSig === 0n) return 0n;
  const e = rE;
  if (e < f.emin) return rSig << BigInt(rQ - f.qmin);
  const m = rSig << BigInt(frac - (e - rQ));
  return (BigInt(e + f.emax) << BigInt(frac)) | (m - (1n << BigInt(frac)));
}

/** The rounded result as float32 bits. */
export function packF32(): number {
  return ((rSign << 31) | Number(ieeeBits(FMT_F32))) >>> 0;
}

/** The low word of the last packF64. */
export let f64Lo = 0;

/** The rounded result as float64 bits: returns the high word, the low word goes to `f64Lo`. */
export function packF64(): number {
  const b = ieeeBits(FMT_F64);
  f64Lo = Number(b & 0xffffffffn);
  return ((rSign << 31) | Number(b >> 32n)) >>> 0;
}

/** The integer of the last roundToInteger (magnitude) and whether it was rounded up / inexact. */
export let intValue = 0n;
export let intUp = false;
export let intInexact = false;

/** Rounds (-1)^sign * m * 2^q (m >= 0) to an integer by rc, into intValue/intUp/intInexact. */
export function roundToInteger(sign: number, m: bigint, q: number, rc: number): void {
  if (q >= 0) {
    intValue = m << BigInt(q);
    intUp = false;
    intInexact = false;
    return;
  }
  roundAt(sign, m, q, 0, rc);
  intValue = raKept;
  intUp = raUp;
  intInexact = raInexact;
}
