import { createHash, randomBytes } from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import { describe, expect, it } from 'vitest';
import { ECC_CURVE } from './constants.js';
import {
  bigintToBytes,
  bytesToBigint,
  eccPublic,
  eccScalar,
  ecdsaSign,
  ecdsaVerify,
} from './asym.js';

const random = (n: number): Uint8Array => new Uint8Array(randomBytes(n));

describe('ECDSA over a caller-computed digest', () => {
  const cases = [
    { name: 'P-256', id: ECC_CURVE.NIST_P256, noble: p256, size: 32 },
    { name: 'P-384', id: ECC_CURVE.NIST_P384, noble: p384, size: 48 },
  ];
  for (const c of cases) {
    for (const alg of ['sha1', 'sha256', 'sha384', 'sha512']) {
      it(`${c.name} signatures over ${alg} digests verify (noble and the TPM's verifier)`, () => {
        for (let i = 0; i < 8; i++) {
          const d = eccScalar(c.id, random(c.size + 8));
          const pub = eccPublic(c.id, d);
          const digest = new Uint8Array(createHash(alg).update(random(20)).digest());
          const { r, s } = ecdsaSign(c.id, d, digest, random);
          expect(r.length).toBe(c.size);
          expect(s.length).toBe(c.size);
          const sig = new Uint8Array([...r, ...s]);
          const q = new Uint8Array([4, ...pub.x, ...pub.y]);
          expect(c.noble.verify(sig, digest, q, { prehash: false, lowS: false })).toBe(true);
          expect(ecdsaVerify(c.id, pub, digest, r, s)).toBe(true);
          const other = digest.slice();
          other[0]! ^= 1;
          expect(ecdsaVerify(c.id, pub, other, r, s)).toBe(false);
        }
      });
    }
  }

  it('the same random stream gives the same signature (k comes only from the TPM RNG)', () => {
    const d = eccScalar(ECC_CURVE.NIST_P256, new Uint8Array(40).fill(7));
    const digest = new Uint8Array(32).fill(0x22);
    const stream = (): ((n: number) => Uint8Array) => (n) => new Uint8Array(n).fill(0x5a);
    expect(ecdsaSign(ECC_CURVE.NIST_P256, d, digest, stream())).toEqual(
      ecdsaSign(ECC_CURVE.NIST_P256, d, digest, stream()),
    );
  });
});

describe('big-endian integers', () => {
  it('round-trip and refuse values wider than the size', () => {
    const b = Uint8Array.from([0, 1, 2, 0xff]);
    expect(bigintToBytes(bytesToBigint(b), 4)).toEqual(b);
    expect(bytesToBigint(new Uint8Array(0))).toBe(0n);
    expect(() => bigintToBytes(0x10000n, 2)).toThrow();
  });
});
