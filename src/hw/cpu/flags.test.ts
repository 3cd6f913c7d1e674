import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AF, ARITH_FLAGS, CF, LazyFlags, OF, PF, SF, ZF } from './flags.js';

const i32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });

/** A lazy state with arbitrary fields (both ways of reading it read the same fields). */
const arbState = fc.record({
  op: fc.integer({ min: 0, max: 7 }),
  size: fc.constantFrom(1, 2, 4, 8),
  bits: fc.integer({ min: 0, max: 0x3fffff }),
  d0: i32,
  d1: i32,
  s0: i32,
  s1: i32,
  r0: i32,
  r1: i32,
});

function lazy(s: typeof arbState extends fc.Arbitrary<infer T> ? T : never): LazyFlags {
  const f = new LazyFlags();
  Object.assign(f, s);
  return f;
}

describe('LazyFlags.assign', () => {
  it('equals replacing the masked bits of the materialised flags, for every state and mask', () => {
    const shiftMask = CF | OF | SF | ZF | PF; // what shifts assign (AF kept)
    fc.assert(
      fc.property(
        arbState,
        fc.oneof(
          fc.constant(shiftMask),
          fc.constant(ARITH_FLAGS),
          fc.constant(CF | OF),
          fc.constant(shiftMask | 0x400), // with DF: a non-arithmetic bit in the mask
          fc.integer({ min: 0, max: 0xfff }),
        ),
        fc.integer({ min: 0, max: 0xfff }),
        (s, mask, values) => {
          const f = lazy(s);
          const reference = lazy(s);
          f.assign(mask, values);
          const expected = (reference.get() & ~mask) | (values & mask);
          expect(f.get()).toBe(expected);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('keeps the pending AF when a shift replaces the other five', () => {
    const f = new LazyFlags();
    Object.assign(f, { op: 1, size: 4, d0: 0x0f, d1: 0, s0: 0x01, s1: 0, r0: 0x10, r1: 0 });
    f.assign(CF | OF | SF | ZF | PF, CF);
    expect(f.get() & ARITH_FLAGS).toBe(CF | AF);
  });
});
