import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hexToBytes } from '../../arch/index.js';
import { bigIntToBytes } from './bignum.js';
import { P384_ORDER, p384PrivateScalarOf, signP384Sha384 } from './ecdsa-p384.js';

// RFC 6979 appendix A.2.6: P-384, SHA-384.
const X = hexToBytes(
  '6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5',
);
const UX =
  'EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64DEF8F0EA9055866064A254515480BC13';
const UY =
  '8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1288B231C3AE0D4FE7344FD2533264720';
const VECTORS = [
  {
    message: 'sample',
    r: '94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46',
    s: '99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8',
  },
  {
    message: 'test',
    r: '8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB0542A7F0812998DA8F1DD3CA3CF023DB',
    s: 'DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E06A739F040649A667BF3B828246BAA5A5',
  },
];

const rfcPublicKey = createPublicKey({
  key: {
    kty: 'EC',
    crv: 'P-384',
    x: Buffer.from(UX, 'hex').toString('base64url'),
    y: Buffer.from(UY, 'hex').toString('base64url'),
  },
  format: 'jwk',
});

describe('signP384Sha384 (RFC 6979 deterministic ECDSA)', () => {
  for (const v of VECTORS) {
    it(`reproduces RFC 6979 A.2.6 for "${v.message}" with SHA-384`, () => {
      const sig = signP384Sha384(X, new TextEncoder().encode(v.message));
      expect(Buffer.from(sig.r).toString('hex').toUpperCase()).toBe(v.r);
      expect(Buffer.from(sig.s).toString('hex').toUpperCase()).toBe(v.s);
      const p1363 = Buffer.concat([sig.r, sig.s]);
      expect(
        verify(
          'sha384',
          Buffer.from(v.message),
          { key: rfcPublicKey, dsaEncoding: 'ieee-p1363' },
          p1363,
        ),
      ).toBe(true);
    });
  }

  it('signs verifiably with a key node generated, and the same message twice the same', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
    const d = p384PrivateScalarOf(privateKey);
    const msg = new TextEncoder().encode('report bytes');
    const a = signP384Sha384(d, msg);
    const b = signP384Sha384(d, msg);
    expect(b).toEqual(a);
    const sig = Buffer.concat([a.r, a.s]);
    expect(verify('sha384', msg, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(
      verify(
        'sha384',
        Buffer.from('report bytez'),
        { key: publicKey, dsaEncoding: 'ieee-p1363' },
        sig,
      ),
    ).toBe(false);
  });

  it('refuses private scalars outside [1, n-1] and of the wrong size', () => {
    const msg = new Uint8Array(1);
    expect(() => signP384Sha384(new Uint8Array(48), msg)).toThrow(RangeError);
    expect(() => signP384Sha384(bigIntToBytes(P384_ORDER, 48), msg)).toThrow(RangeError);
    expect(() => signP384Sha384(new Uint8Array(32).fill(1), msg)).toThrow(RangeError);
  });

  it('refuses a key that is not a P-384 private key', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => p384PrivateScalarOf(privateKey)).toThrow(TypeError);
    expect(() => p384PrivateScalarOf(publicKey)).toThrow(TypeError);
  });
});
