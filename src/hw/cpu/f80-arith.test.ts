import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  F80,
  fromNumber,
  setF80,
  toNumber,
  X_C1,
  X_DE,
  X_IE,
  X_OE,
  X_PE,
  X_UE,
  X_ZE,
} from './f80.js';
import { add, div, mul, prem, premQuotient, sqrt } from './f80-arith.js';
import { fastAdd, fastMul } from './f80-fast.js';
import { FMT_EXT, FMT_REG, type Format, packReg, round } from './f80-round.js';
import { RC_DOWN, RC_NEAREST, RC_UP, RC_ZERO } from './simd-state.js';

const A = new F80();
const B = new F80();
const R = new F80();

const PC_SINGLE = FMT_REG[0]!;
const PC_DOUBLE = FMT_REG[2]!;

function f80(se: number, sig: bigint): F80 {
  const x = new F80();
  setF80(x, se, Number(sig >> 32n), Number(sig & 0xffffffffn));
  return x;
}

function bitsOf(x: F80): [number, bigint] {
  return [x.se, (BigInt(x.hi) << 32n) | BigInt(x.lo)];
}

/** A finite double whose arithmetic stays well inside the float64 normal range. */
const moderate = fc
  .double({ min: -1e100, max: 1e100, noNaN: true, noDefaultInfinity: true })
  .filter((x) => x === 0 || Math.abs(x) > 1e-100);

describe('double-extended rounding at PC = double', () => {
  it('FADD/FSUB/FMUL/FDIV/FSQRT of float64 values give the float64 result (property)', () => {
    fc.assert(
      fc.property(moderate, moderate, (a, b) => {
        fromNumber(a, A);
        fromNumber(b, B);
        const check = (flags: number, want: number): void => {
          expect(Object.is(toNumber(R), want)).toBe(true);
          expect(flags & ~(X_PE | X_C1)).toBe(0);
        };
        check(add(A, B, false, R, PC_DOUBLE, RC_NEAREST), a + b);
        check(add(A, B, true, R, PC_DOUBLE, RC_NEAREST), a - b);
        check(mul(A, B, R, PC_DOUBLE, RC_NEAREST), a * b);
        if (b !== 0) check(div(A, B, R, PC_DOUBLE, RC_NEAREST), a / b);
        if (a >= 0) check(sqrt(A, R, PC_DOUBLE, RC_NEAREST), Math.sqrt(a));
      }),
      { numRuns: 3000 },
    );
  });

  it('reports PE exactly when the float64 result is inexact', () => {
    fromNumber(1, A);
    fromNumber(3, B);
    expect(div(A, B, R, PC_DOUBLE, RC_NEAREST) & X_PE).toBe(X_PE);
    fromNumber(0.75, B);
    expect(div(B, A, R, PC_DOUBLE, RC_NEAREST)).toBe(0);
  });
});

/** |x| as a rational n / d (d a power of two or the divisor), x = sig * 2^q. */
type Rational = [bigint, bigint];

function ratio(sig: bigint, q: number): Rational {
  return q >= 0 ? [sig << BigInt(q), 1n] : [sig, 1n << BigInt(-q)];
}

function cmp(x: Rational, y: Rational): number {
  const l = x[0] * y[1];
  const r = y[0] * x[1];
  return l < r ? -1 : l > r ? 1 : 0;
}

function plus(x: Rational, y: Rational): Rational {
  return [x[0] * y[1] + y[0] * x[1], x[1] * y[1]];
}

function magnitudeOf(x: F80): Rational {
  const [se, sig] = bitsOf(x);
  return ratio(sig, Math.max(se & 0x7fff, 1) - 16383 - 63);
}

/**
 * Checks that r is x correctly rounded to p bits by rc, from the definition: r has p significant
 * bits and, by the direction, brackets x against its neighbours (normal results only).
 */
function expectRounded(r: F80, sign: number, x: Rational, p: number, rc: number): void {
  const [se, sig] = bitsOf(r);
  expect(se >>> 15).toBe(sign);
  expect(sig & ((1n << BigInt(64 - p)) - 1n)).toBe(0n);
  const e = (se & 0x7fff) - 16383;
  const m = magnitudeOf(r);
  const ulp = ratio(1n, e - p + 1);
  const ulpBelow = sig === 1n << 63n ? ratio(1n, e - p) : ulp;
  const succ = plus(m, ulp);
  const pred = plus(m, [-ulpBelow[0], ulpBelow[1]]);
  const towardZero =
    rc === RC_ZERO || (rc === RC_DOWN && sign === 0) || (rc === RC_UP && sign !== 0);
  if (rc === RC_NEAREST) {
    // Halfway points on both sides bracket x.
    const hiHalf = plus(m, [ulp[0], ulp[1] * 2n]);
    const loHalf = plus(m, [-ulpBelow[0], ulpBelow[1] * 2n]);
    expect(cmp(x, hiHalf)).toBeLessThanOrEqual(0);
    expect(cmp(x, loHalf)).toBeGreaterThanOrEqual(0);
  } else if (towardZero) {
    expect(cmp(m, x)).toBeLessThanOrEqual(0);
    expect(cmp(x, succ)).toBeLessThan(0);
  } else {
    expect(cmp(pred, x)).toBeLessThan(0);
    expect(cmp(x, m)).toBeLessThanOrEqual(0);
  }
}

/** A normal double-extended value with an exponent within +-200 of 1. */
const ext = fc.record({
  sign: fc.integer({ min: 0, max: 1 }),
  exp: fc.integer({ min: 16383 - 200, max: 16383 + 200 }),
  sig: fc.bigInt({ min: 1n << 63n, max: (1n << 64n) - 1n }),
});

describe('double-extended rounding by FCW.PC and FCW.RC', () => {
  it('add, mul and div round the exact result correctly at 24, 53 and 64 bits, every RC (property)', () => {
    fc.assert(
      fc.property(
        ext,
        ext,
        fc.constantFrom(...FMT_REG),
        fc.integer({ min: 0, max: 3 }),
        (a, b, f: Format, rc) => {
          const x = f80((a.sign << 15) | a.exp, a.sig);
          const y = f80((b.sign << 15) | b.exp, b.sig);
          const xm = magnitudeOf(x);
          const ym = magnitudeOf(y);
          const sign = a.sign ^ b.sign;
          mul(x, y, R, f, rc);
          expectRounded(R, sign, [xm[0] * ym[0], xm[1] * ym[1]], f.p, rc);
          div(x, y, R, f, rc);
          expectRounded(R, sign, [xm[0] * ym[1], xm[1] * ym[0]], f.p, rc);
          // Same signs: the sum's magnitude is the magnitudes' sum.
          const y2 = f80((a.sign << 15) | b.exp, b.sig);
          add(x, y2, false, R, f, rc);
          expectRounded(R, a.sign, plus(xm, ym), f.p, rc);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('1/3 at each precision (known answers)', () => {
    const one = f80(0x3fff, 1n << 63n);
    const three = f80(0x4000, 3n << 62n);
    div(one, three, R, PC_SINGLE, RC_NEAREST);
    expect(bitsOf(R)).toEqual([0x3ffd, 0xaaaaab0000000000n]);
    div(one, three, R, PC_DOUBLE, RC_NEAREST);
    expect(bitsOf(R)).toEqual([0x3ffd, 0xaaaaaaaaaaaaa800n]);
    expect(div(one, three, R, FMT_EXT, RC_NEAREST)).toBe(X_PE | X_C1);
    expect(bitsOf(R)).toEqual([0x3ffd, 0xaaaaaaaaaaaaaaabn]);
    expect(div(one, three, R, FMT_EXT, RC_ZERO)).toBe(X_PE);
    expect(bitsOf(R)).toEqual([0x3ffd, 0xaaaaaaaaaaaaaaaan]);
  });

  it('sqrt(2) to 64 bits and the PC-independent exponent range (known answers)', () => {
    sqrt(f80(0x4000, 1n << 63n), R, FMT_EXT, RC_NEAREST);
    expect(bitsOf(R)).toEqual([0x3fff, 0xb504f333f9de6484n]);
    // 2^-8192 squared at PC = double is a denormal of the register format, not zero.
    const tiny = f80(16383 - 8192, 1n << 63n);
    expect(mul(tiny, tiny, R, PC_DOUBLE, RC_NEAREST)).toBe(0);
    expect(bitsOf(R)).toEqual([0, 1n << 61n]);
  });
});

describe('masked exception responses', () => {
  const max = f80(0x7ffe, (1n << 64n) - 1n);
  const two = f80(0x4000, 1n << 63n);

  it('overflow gives infinity or the largest finite value by RC, with OE and PE', () => {
    expect(mul(max, two, R, FMT_EXT, RC_NEAREST)).toBe(X_OE | X_PE | X_C1);
    expect(bitsOf(R)).toEqual([0x7fff, 1n << 63n]);
    expect(mul(max, two, R, FMT_EXT, RC_ZERO)).toBe(X_OE | X_PE);
    expect(bitsOf(R)).toEqual([0x7ffe, (1n << 64n) - 1n]);
    // The largest value at PC = single has 24 significand bits.
    expect(mul(max, two, R, PC_SINGLE, RC_DOWN)).toBe(X_OE | X_PE);
    expect(bitsOf(R)).toEqual([0x7ffe, 0xffffff0000000000n]);
  });

  it('underflow: UE only when tiny and inexact; tininess is detected after rounding', () => {
    const half = f80(0x3ffe, 1n << 63n);
    // 2^-16382 / 2 is an exact denormal: no UE.
    expect(mul(f80(1, 1n << 63n), half, R, FMT_EXT, RC_NEAREST)).toBe(0);
    expect(bitsOf(R)).toEqual([0, 1n << 62n]);
    // (1 + 2^-63) 2^-16382 / 2 loses its last bit: UE and PE.
    expect(mul(f80(1, (1n << 63n) | 1n), half, R, FMT_EXT, RC_NEAREST) & (X_UE | X_PE)).toBe(
      X_UE | X_PE,
    );
    // 2^-16382 (1 - 2^-66) rounds up to 2^-16382 with an unbounded exponent: not tiny.
    expect(round(0, (1n << 66n) - 1n, -16382 - 66, FMT_EXT, RC_NEAREST)).toBe(X_PE | X_C1);
    packReg(R);
    expect(bitsOf(R)).toEqual([1, 1n << 63n]);
  });

  it('invalid operations give the indefinite; NaNs propagate with their payloads', () => {
    const inf = f80(0x7fff, 1n << 63n);
    const ninf = f80(0xffff, 1n << 63n);
    expect(add(inf, ninf, false, R, FMT_EXT, RC_NEAREST)).toBe(X_IE);
    expect(bitsOf(R)).toEqual([0xffff, 0xcn << 60n]);
    const snan = f80(0x7fff, (1n << 63n) | 5n);
    expect(add(snan, two, false, R, FMT_EXT, RC_NEAREST)).toBe(X_IE);
    expect(bitsOf(R)).toEqual([0x7fff, (3n << 62n) | 5n]);
    const unnormal = f80(0x4000, 1n << 62n);
    expect(mul(unnormal, two, R, FMT_EXT, RC_NEAREST)).toBe(X_IE);
    expect(bitsOf(R)).toEqual([0xffff, 0xcn << 60n]);
  });

  it('denormal operands raise DE; a finite value over zero raises ZE', () => {
    const den = f80(0, 1n << 40n);
    expect(add(den, two, false, R, FMT_EXT, RC_NEAREST)).toBe(X_DE | X_PE);
    expect(div(two, f80(0, 0n), R, FMT_EXT, RC_NEAREST)).toBe(X_ZE);
    expect(bitsOf(R)).toEqual([0x7fff, 1n << 63n]);
  });
});

describe('FPREM/FPREM1', () => {
  it('leave the exact remainder and the low quotient bits (known answers)', () => {
    const seven = f80(0x4001, 7n << 61n);
    const two = f80(0x4000, 1n << 63n);
    // 7 = 3 * 2 + 1 (FPREM), 7 = 4 * 2 - 1 (FPREM1, quotient rounded to even).
    prem(seven, two, R, false);
    expect(toNumber(R)).toBe(1);
    expect(premQuotient).toBe(3);
    prem(seven, two, R, true);
    expect(toNumber(R)).toBe(-1);
    expect(premQuotient).toBe(4);
  });
});

describe('the BigInt-free path for normal operands', () => {
  const E = new F80();
  /** The exact path's answer: the BigInt result rounded by f80-round.ts. */
  function exact(
    sign: number,
    m: bigint,
    q: number,
    f: Format,
    rc: number,
  ): [number, number, bigint] {
    if (m === 0n) return [0, rc === RC_DOWN ? 0x8000 : 0, 0n];
    const flags = round(sign, m, q, f, rc);
    packReg(E);
    return [flags, ...bitsOf(E)];
  }
  /**
   * Operands near 1 and near both ends of the exponent range (where a product or sum leaves the
   * fast path's range and it must hand over to the exact one).
   */
  const extEdges = fc.oneof(
    ext,
    fc.record({
      sign: fc.integer({ min: 0, max: 1 }),
      exp: fc.oneof(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0x7ffe - 200, max: 0x7ffe }),
      ),
      sig: fc.bigInt({ min: 1n << 63n, max: (1n << 64n) - 1n }),
    }),
  );
  /** Near exponents as often as far ones, so sums cancel and carry. */
  const pair = fc.tuple(extEdges, extEdges, fc.integer({ min: -70, max: 70 }), fc.boolean());

  it('fastAdd and fastMul agree with rounding the exact BigInt result (property)', () => {
    fc.assert(
      fc.property(
        pair,
        fc.constantFrom(...FMT_REG),
        fc.integer({ min: 0, max: 3 }),
        ([a, b, delta, near], f: Format, rc) => {
          const eb = near ? Math.min(0x7ffe, Math.max(1, a.exp + delta)) : b.exp;
          const x = f80((a.sign << 15) | a.exp, a.sig);
          const y = f80((b.sign << 15) | eb, b.sig);
          const qx = a.exp - 16383 - 63;
          const qy = eb - 16383 - 63;
          const q = Math.min(qx, qy);
          const vx = (a.sig << BigInt(qx - q)) * (a.sign ? -1n : 1n);
          const vy = (b.sig << BigInt(qy - q)) * (b.sign ? -1n : 1n);
          for (const neg of [false, true]) {
            const sum = neg ? vx - vy : vx + vy;
            const want = exact(sum < 0n ? 1 : 0, sum < 0n ? -sum : sum, q, f, rc);
            const flags = fastAdd(x, y, neg, R, f.p, rc);
            if (flags >= 0) expect([flags, ...bitsOf(R)]).toEqual(want);
          }
          const flags = fastMul(x, y, R, f.p, rc);
          const want = exact(a.sign ^ b.sign, a.sig * b.sig, qx + qy, f, rc);
          if (flags >= 0) expect([flags, ...bitsOf(R)]).toEqual(want);
        },
      ),
      { numRuns: 5000 },
    );
  });
});
