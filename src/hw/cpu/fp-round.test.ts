import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  errorSign,
  nextFloat,
  OP_ADD,
  OP_DIV,
  OP_MUL,
  OP_SQRT,
  OP_SUB,
  roundDirected,
} from './fp-round.js';

const DOWN = 1;
const UP = 2;
const ZERO = 3;
const MAX = 1.7976931348623157e308;

describe('directed rounding of SSE arithmetic', () => {
  it('rounds 1/3 down, up and toward zero to the neighbouring doubles', () => {
    const rn = 1 / 3;
    const below = roundDirected(OP_DIV, 1, 3, rn, DOWN, false);
    const above = roundDirected(OP_DIV, 1, 3, rn, UP, false);
    expect(above).toBeGreaterThan(below);
    expect(nextFloat(below, true, false)).toBe(above);
    expect(roundDirected(OP_DIV, 1, 3, rn, ZERO, false)).toBe(below);
    expect(roundDirected(OP_DIV, -1, 3, -rn, ZERO, false)).toBe(-below);
    expect(roundDirected(OP_DIV, -1, 3, -rn, DOWN, false)).toBe(-above);
  });

  it('handles exact results, signed zeros and overflow', () => {
    expect(roundDirected(OP_ADD, 1, 2, 3, UP, false)).toBe(3);
    expect(Object.is(roundDirected(OP_SUB, 1, 1, 0, DOWN, false), -0)).toBe(true);
    expect(Object.is(roundDirected(OP_SUB, 1, 1, 0, UP, false), 0)).toBe(true);
    expect(roundDirected(OP_MUL, MAX, 2, Infinity, ZERO, false)).toBe(MAX);
    expect(roundDirected(OP_MUL, MAX, 2, Infinity, UP, false)).toBe(Infinity);
    expect(roundDirected(OP_MUL, -MAX, 2, -Infinity, UP, false)).toBe(-MAX);
    expect(roundDirected(OP_DIV, 1, 0, Infinity, ZERO, false)).toBe(Infinity);
    expect(roundDirected(OP_ADD, 1, 2 ** -60, 1, UP, false)).toBe(1 + 2 ** -52);
    expect(roundDirected(OP_SQRT, 0, 2, Math.SQRT2, DOWN, false)).toBeLessThan(Math.SQRT2 + 1e-16);
    // float32: 1 + 2^-30 rounds up to the next float after 1.
    expect(roundDirected(OP_ADD, 1, 2 ** -30, 1, UP, true)).toBe(1 + 2 ** -23);
    // A tiny product below half the smallest denormal: RU gives the smallest denormal.
    expect(roundDirected(OP_MUL, 2 ** -600, 2 ** -600, 0, UP, false)).toBe(5e-324);
  });

  it('brackets the exact result: RD <= exact <= RU, adjacent unless exact (property)', () => {
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e150, max: 1e150 });
    fc.assert(
      fc.property(finite, finite, fc.constantFrom(OP_ADD, OP_SUB, OP_MUL, OP_DIV), (a, b, op) => {
        if (op === OP_DIV && b === 0) return;
        const rn = op === OP_ADD ? a + b : op === OP_SUB ? a - b : op === OP_MUL ? a * b : a / b;
        if (!Number.isFinite(rn)) return; // overflow: the explicit cases above
        const lo = roundDirected(op, a, b, rn, DOWN, false);
        const hi = roundDirected(op, a, b, rn, UP, false);
        if (!Number.isFinite(lo) || !Number.isFinite(hi)) return; // rounded past the largest finite
        expect(errorSign(op, a, b, lo)).toBeGreaterThanOrEqual(0);
        expect(errorSign(op, a, b, hi)).toBeLessThanOrEqual(0);
        if (lo !== hi) expect(nextFloat(lo, true, false)).toBe(hi);
      }),
      { numRuns: 1000 },
    );
  });
});
