import { constants, createHash, generateKeyPairSync, verify, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededRandom, randomBytesFrom } from '../random.js';
import { generateRsaKeyPair, PSS_SALT_LENGTH, signRsaPssSha384 } from './rsa.js';

const pssVerify = (key: KeyObject, msg: Uint8Array, sig: Uint8Array): boolean =>
  verify(
    'sha384',
    msg,
    { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PSS_SALT_LENGTH },
    sig,
  );

describe('generateRsaKeyPair', () => {
  it('gives the same key for the same seed and a modulus of exactly the asked size', () => {
    const a = generateRsaKeyPair(seededRandom('rsa'), 1024);
    const b = generateRsaKeyPair(seededRandom('rsa'), 1024);
    const spki = (k: typeof a): string =>
      k.publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
    expect(spki(b)).toBe(spki(a));
    expect(a.privateKey.asymmetricKeyDetails?.modulusLength).toBe(1024);
    expect(a.privateKey.asymmetricKeyDetails?.publicExponent).toBe(65537n);
    const c = generateRsaKeyPair(seededRandom('rsa-other'), 1024);
    expect(spki(c)).not.toBe(spki(a));
  });

  it('makes keys OpenSSL accepts as consistent (sign with node, verify)', () => {
    const { privateKey, publicKey } = generateRsaKeyPair(seededRandom('rsa-2'), 2048);
    const msg = Buffer.from('hello');
    const sig = signRsaPssSha384(privateKey, msg, new Uint8Array(PSS_SALT_LENGTH));
    expect(pssVerify(publicKey, msg, sig)).toBe(true);
  });

  it('refuses odd modulus sizes', () => {
    expect(() => generateRsaKeyPair(seededRandom('x'), 1000)).toThrow(RangeError);
  });
});

describe('signRsaPssSha384', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 4096 });

  it('produces RSASSA-PSS SHA-384 / MGF1-SHA-384 / salt 48 signatures node verifies', () => {
    const msg = createHash('sha256').update('tbs').digest();
    const salt = randomBytesFrom(seededRandom('salt'), PSS_SALT_LENGTH);
    const sig = signRsaPssSha384(privateKey, msg, salt);
    expect(sig.length).toBe(512);
    expect(pssVerify(publicKey, msg, sig)).toBe(true);
    // Same salt, same signature; a tampered message fails.
    expect(signRsaPssSha384(privateKey, msg, salt)).toEqual(sig);
    const bad = Buffer.from(msg);
    bad[0] = bad[0]! ^ 1;
    expect(pssVerify(publicKey, bad, sig)).toBe(false);
  });

  it('is rejected under a different salt length (the salt really is 48 bytes)', () => {
    const msg = Buffer.from('m');
    const sig = signRsaPssSha384(privateKey, msg, new Uint8Array(PSS_SALT_LENGTH).fill(7));
    expect(
      verify(
        'sha384',
        msg,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
        sig,
      ),
    ).toBe(false);
  });

  it('refuses a public key', () => {
    expect(() => signRsaPssSha384(publicKey, new Uint8Array(1), new Uint8Array(48))).toThrow(
      TypeError,
    );
  });
});
