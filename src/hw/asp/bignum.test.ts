import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bigIntToBytes,
  bigIntToMinimalBytes,
  bitLength,
  bytesToBigInt,
  gcd,
  mod,
  modInverse,
  modPow,
} from './bignum.js';

describe('bignum', () => {
  it('round-trips big-endian bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (b) => {
        expect(bigIntToBytes(bytesToBigInt(b), b.length)).toEqual(b);
      }),
    );
    expect(bigIntToMinimalBytes(0n)).toEqual(Uint8Array.of(0));
    expect(bigIntToMinimalBytes(0x10001n)).toEqual(Uint8Array.of(1, 0, 1));
    expect(() => bigIntToBytes(256n, 1)).toThrow(RangeError);
    expect(() => bigIntToBytes(-1n, 1)).toThrow(RangeError);
  });

  it('computes inverses, powers and gcds that agree with each other', () => {
    const p = 0xffffffffffffffc5n; // the largest 64-bit prime
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: p - 1n }), (a) => {
        expect(mod(a * modInverse(a, p), p)).toBe(1n);
        expect(modPow(a, p - 1n, p)).toBe(1n); // Fermat
      }),
    );
    expect(gcd(12n, -18n)).toBe(6n);
    expect(() => modInverse(6n, 9n)).toThrow(RangeError);
    expect(bitLength(0n)).toBe(0);
    expect(bitLength(0x80n)).toBe(8);
    expect(mod(-1n, 7n)).toBe(6n);
  });
});
