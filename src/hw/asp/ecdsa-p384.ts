// ECDSA over P-384 with SHA-384, the algorithm of the attestation report signature (SNP ABI,
// "Signature Algorithm Encodings": 1 = ECDSA P-384 with SHA-384). The nonce is derived as RFC
// 6979 section 3.2 specifies, so a signature is a function of key and message: the same report
// signs to the same bytes on every run (STYLE.md "Determinism"), which node's own ECDSA, with
// its random nonce, would not give. The point multiplication k*G is done natively through
// ECDH; only the scalar arithmetic mod n is done here.

import { createECDH, createHash, createHmac, type KeyObject } from 'node:crypto';
import { bigIntToBytes, bytesToBigInt, modInverse } from './bignum.js';

/** Size of a P-384 scalar or coordinate in bytes. */
export const P384_BYTES = 48;
/** The order n of the P-384 base point (FIPS 186-5 / SP 800-186 section 3.2.1.4). */
export const P384_ORDER = BigInt(
  '0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
);

/** An ECDSA signature as two 48-byte big-endian integers. */
export interface EcdsaSignature {
  readonly r: Uint8Array;
  readonly s: Uint8Array;
}

function hmac384(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac('sha384', key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** x(k*G) for a scalar k in [1, n-1], by the native ECDH implementation. */
function baseMultiplyX(k: bigint): bigint {
  const ecdh = createECDH('secp384r1');
  ecdh.setPrivateKey(bigIntToBytes(k, P384_BYTES));
  const point = ecdh.getPublicKey(); // 0x04 || X || Y
  return bytesToBigInt(point.subarray(1, 1 + P384_BYTES));
}

/** Checks that d is a private scalar in [1, n-1] and returns it as a bigint. */
export function p384Scalar(privateKey: Uint8Array): bigint {
  if (privateKey.length !== P384_BYTES) {
    throw new RangeError(`a P-384 private key is ${P384_BYTES} bytes, got ${privateKey.length}`);
  }
  const d = bytesToBigInt(privateKey);
  if (d < 1n || d >= P384_ORDER) throw new RangeError('P-384 private key is not in [1, n-1]');
  return d;
}

/** The private scalar of a node P-384 private KeyObject, as 48 big-endian bytes. */
export function p384PrivateScalarOf(key: KeyObject): Uint8Array {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ec') {
    throw new TypeError('expected an EC private key');
  }
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'P-384' || jwk.d === undefined) {
    throw new TypeError(`expected a P-384 private key, got curve ${String(jwk.crv)}`);
  }
  return new Uint8Array(Buffer.from(jwk.d, 'base64url'));
}

/**
 * ECDSA-P384-SHA384 signature of `message` under the private scalar `privateKey` (48 bytes,
 * big-endian), with the RFC 6979 deterministic nonce.
 */
export function signP384Sha384(privateKey: Uint8Array, message: Uint8Array): EcdsaSignature {
  const d = p384Scalar(privateKey);
  const h1 = new Uint8Array(createHash('sha384').update(message).digest());
  // qlen = hlen = 384: bits2int(h1) is int(h1), bits2octets(h1) is int2octets(int(h1) mod n).
  const e = bytesToBigInt(h1);
  const x = bigIntToBytes(d, P384_BYTES);
  const h1Octets = bigIntToBytes(e % P384_ORDER, P384_BYTES);

  // RFC 6979 section 3.2, steps b-f.
  let v: Uint8Array = new Uint8Array(P384_BYTES).fill(0x01);
  let k: Uint8Array = new Uint8Array(P384_BYTES);
  k = hmac384(k, v, Uint8Array.of(0x00), x, h1Octets);
  v = hmac384(k, v);
  k = hmac384(k, v, Uint8Array.of(0x01), x, h1Octets);
  v = hmac384(k, v);

  for (;;) {
    // Step h: with tlen = qlen = hlen one HMAC block is one candidate.
    v = hmac384(k, v);
    const nonce = bytesToBigInt(v);
    if (nonce >= 1n && nonce < P384_ORDER) {
      const r = baseMultiplyX(nonce) % P384_ORDER;
      if (r !== 0n) {
        const s = (modInverse(nonce, P384_ORDER) * (e + r * d)) % P384_ORDER;
        if (s !== 0n) {
          return { r: bigIntToBytes(r, P384_BYTES), s: bigIntToBytes(s, P384_BYTES) };
        }
      }
    }
    k = hmac384(k, v, Uint8Array.of(0x00));
    v = hmac384(k, v);
  }
}
