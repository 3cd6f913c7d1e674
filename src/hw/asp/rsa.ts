// RSA as AMD's ARK and ASK use it: 4096-bit keys, e = 65537, signatures RSASSA-PSS with
// SHA-384, MGF1-SHA-384 and a 48-byte salt (reference/sev-snp-abi.md section 4.1).
//
// Both halves take their randomness from the caller so that a machine is reproducible from its
// seed (STYLE.md "Determinism"): key generation draws its prime candidates from a RandomSource
// (node's generateKeyPair cannot be seeded), and signing takes the PSS salt as an argument
// (node's sign() draws it from OpenSSL). The heavy arithmetic stays native: primality tests
// through crypto.checkPrimeSync, the private-key operation through privateEncrypt without
// padding.

import {
  checkPrimeSync,
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  privateEncrypt,
  type KeyObject,
} from 'node:crypto';
import type { RandomSource } from '../random.js';
import {
  base64url,
  bigIntToMinimalBytes,
  bitLength,
  bytesToBigInt,
  gcd,
  modInverse,
} from './bignum.js';

export const RSA_PUBLIC_EXPONENT = 65537n;
export const AMD_RSA_MODULUS_BITS = 4096;
/** RSASSA-PSS salt length of AMD's certificates: 0x30, the SHA-384 digest size. */
export const PSS_SALT_LENGTH = 48;
const SHA384_BYTES = 48;

export interface RsaKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

// Odd primes below 2^12 for the trial-division sieve in front of the Miller-Rabin test.
const SMALL_PRIMES: readonly number[] = (() => {
  const limit = 4096;
  const composite = new Uint8Array(limit);
  const out: number[] = [];
  for (let i = 3; i < limit; i += 2) {
    if (composite[i]) continue;
    out.push(i);
    for (let j = i * i; j < limit; j += 2 * i) composite[j] = 1;
  }
  return out;
})();

/**
 * A random prime of exactly `bits` bits with its two top bits set (so that the product of two
 * such primes has exactly 2*bits bits) and p mod e != 1 (so that e is invertible). Incremental
 * search from a random odd start, sieved by small primes; checkPrimeSync does the Miller-Rabin
 * rounds OpenSSL chooses for the size.
 */
function randomPrime(random: RandomSource, bits: number): bigint {
  const bytes = new Uint8Array(bits / 8);
  for (;;) {
    random.fill(bytes);
    bytes[0] = bytes[0]! | 0xc0;
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! | 0x01;
    const start = bytesToBigInt(bytes);
    const residues = SMALL_PRIMES.map((p) => Number(start % BigInt(p)));
    // Stay inside the same bit length; a start that runs out simply draws again.
    for (let delta = 0; delta < 1 << 16; delta += 2) {
      let sieved = false;
      for (let i = 0; i < SMALL_PRIMES.length; i++) {
        if ((residues[i]! + delta) % SMALL_PRIMES[i]! === 0) {
          sieved = true;
          break;
        }
      }
      if (sieved) continue;
      const candidate = start + BigInt(delta);
      if (bitLength(candidate) !== bits) break;
      if (candidate % RSA_PUBLIC_EXPONENT === 1n) continue;
      if (checkPrimeSync(candidate)) return candidate;
    }
  }
}

/**
 * An RSA key pair with e = 65537 and a modulus of exactly `modulusBits` bits, every random bit
 * drawn from `random`: the same seed gives the same key.
 */
export function generateRsaKeyPair(
  random: RandomSource,
  modulusBits: number = AMD_RSA_MODULUS_BITS,
): RsaKeyPair {
  if (!Number.isInteger(modulusBits) || modulusBits < 1024 || modulusBits % 16 !== 0) {
    throw new RangeError(`unsupported RSA modulus size ${modulusBits}`);
  }
  const e = RSA_PUBLIC_EXPONENT;
  for (;;) {
    const a = randomPrime(random, modulusBits / 2);
    const b = randomPrime(random, modulusBits / 2);
    if (a === b) continue;
    const [p, q] = a > b ? [a, b] : [b, a];
    const n = p * q;
    if (bitLength(n) !== modulusBits) continue;
    const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
    const d = modInverse(e, lambda);
    const b64 = (v: bigint): string => base64url(bigIntToMinimalBytes(v));
    const privateKey = createPrivateKey({
      key: {
        kty: 'RSA',
        n: b64(n),
        e: b64(e),
        d: b64(d),
        p: b64(p),
        q: b64(q),
        dp: b64(d % (p - 1n)),
        dq: b64(d % (q - 1n)),
        qi: b64(modInverse(q, p)),
      },
      format: 'jwk',
    });
    return { privateKey, publicKey: createPublicKey(privateKey) };
  }
}

function mgf1Sha384(seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const counter = new Uint8Array(4);
  const view = new DataView(counter.buffer);
  for (let i = 0, at = 0; at < length; i++, at += SHA384_BYTES) {
    view.setUint32(0, i, false);
    const block = createHash('sha384').update(seed).update(counter).digest();
    out.set(block.subarray(0, Math.min(SHA384_BYTES, length - at)), at);
  }
  return out;
}

/** The modulus length in bits of an RSA KeyObject. */
function modulusBitsOf(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || bits === undefined) {
    throw new TypeError('expected an RSA key');
  }
  return bits;
}

/**
 * RSASSA-PSS signature (RFC 8017 section 8.1.1) of `message` with SHA-384, MGF1-SHA-384 and the
 * given salt. A deterministic salt is allowed by RFC 8017 (section 9.1, note 4); security then
 * rests on the hash as for a full-domain hash.
 */
export function signRsaPssSha384(
  privateKey: KeyObject,
  message: Uint8Array,
  salt: Uint8Array,
): Uint8Array {
  if (privateKey.type !== 'private') throw new TypeError('expected an RSA private key');
  const modBits = modulusBitsOf(privateKey);
  // EMSA-PSS-ENCODE (RFC 8017 section 9.1.1) with emBits = modBits - 1.
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  if (emLen < SHA384_BYTES + salt.length + 2) {
    throw new RangeError('RSA modulus too small for this salt');
  }
  const mHash = createHash('sha384').update(message).digest();
  const h = new Uint8Array(
    createHash('sha384').update(new Uint8Array(8)).update(mHash).update(salt).digest(),
  );
  const dbLen = emLen - SHA384_BYTES - 1;
  const db = new Uint8Array(dbLen);
  db[dbLen - salt.length - 1] = 0x01;
  db.set(salt, dbLen - salt.length);
  const mask = mgf1Sha384(h, dbLen);
  for (let i = 0; i < dbLen; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & (0xff >> (8 * emLen - emBits));
  const em = new Uint8Array(Math.ceil(modBits / 8));
  const emAt = em.length - emLen;
  em.set(db, emAt);
  em.set(h, emAt + dbLen);
  em[em.length - 1] = 0xbc;
  // RSASP1: the raw private-key operation on the encoded message.
  return new Uint8Array(privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em));
}
