// Asymmetric cryptography for TPM keys: RSA through node:crypto (keys imported as JWK from the
// TPM's sensitive prime), ECDSA signing over a digest the caller computed with [k]G from
// node:crypto's ECDH and the rest in BigInt, ECDSA verification, point checks and ECDH on NIST
// P-256/P-384 through @noble/curves. Padding schemes that Node does not expose over a given
// digest (EMSA-PSS, and PKCS#1 v1.5 decryption, which Node 20 refuses) are RFC 8017 encodings.

import {
  checkPrimeSync,
  constants,
  createECDH,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  type ECDH,
  type KeyObject,
} from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import { ALG, ECC_CURVE, RC } from './constants.js';
import { concat, equalBytes, hash, hashInfo } from './crypto.js';
import { fail, TpmError } from './errors.js';

// ---- big integers -------------------------------------------------------------------------------

export function bytesToBigint(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt('0x' + Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex'));
}

export function bigintToBytes(v: bigint, size: number): Uint8Array {
  if (v < 0n) fail(RC.VALUE);
  const hex = v.toString(16);
  if (hex.length > size * 2) fail(RC.VALUE);
  return new Uint8Array(Buffer.from(hex.padStart(size * 2, '0'), 'hex'));
}

function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [a % m, m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) fail(RC.KEY);
  return ((oldS % m) + m) % m;
}

function b64u(v: bigint): string {
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex').toString('base64url');
}

// ---- RSA ----------------------------------------------------------------------------------------

export const RSA_DEFAULT_EXPONENT = 65537;

export interface RsaKey {
  readonly n: Uint8Array;
  readonly e: number;
  readonly publicKey: KeyObject;
  readonly privateKey?: KeyObject;
}

function exponentOf(e: number): number {
  return e === 0 ? RSA_DEFAULT_EXPONENT : e;
}

/** The public RSA key of modulus n (TPM exponent 0 means 65537). */
export function rsaPublicKey(n: Uint8Array, exponent: number): RsaKey {
  const e = exponentOf(exponent);
  const publicKey = createPublicKey({
    key: { kty: 'RSA', n: b64u(bytesToBigint(n)), e: b64u(BigInt(e)) },
    format: 'jwk',
  });
  return { n, e, publicKey };
}

/** The RSA key pair of modulus n and prime p (the TPM's sensitive part), or TPM_RC_BINDING. */
export function rsaPrivateKey(n: Uint8Array, exponent: number, pBytes: Uint8Array): RsaKey {
  const e = exponentOf(exponent);
  const N = bytesToBigint(n);
  const p = bytesToBigint(pBytes);
  if (p <= 1n || N % p !== 0n) fail(RC.BINDING);
  const q = N / p;
  const E = BigInt(e);
  const d = modInverse(E, (p - 1n) * (q - 1n));
  const jwk = {
    kty: 'RSA',
    n: b64u(N),
    e: b64u(E),
    d: b64u(d),
    p: b64u(p),
    q: b64u(q),
    dp: b64u(d % (p - 1n)),
    dq: b64u(d % (q - 1n)),
    qi: b64u(modInverse(q, p)),
  };
  return {
    n,
    e,
    publicKey: createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' }),
    privateKey: createPrivateKey({ key: jwk, format: 'jwk' }),
  };
}

/**
 * A prime of `bits` bits with both top bits set (so p*q has exactly 2*bits bits) and p-1 coprime
 * to e, searched upward from candidates drawn from `draw` (random or a deterministic stream).
 */
export function findPrime(bits: number, e: number, draw: (n: number) => Uint8Array): bigint {
  const E = BigInt(exponentOf(e));
  for (;;) {
    const start = draw(bits / 8);
    start[0]! |= 0xc0;
    start[start.length - 1]! |= 1;
    let c = bytesToBigint(start);
    for (let step = 0; step < 4096; step++, c += 2n) {
      if (c >> BigInt(bits) !== 0n) break;
      if ((c - 1n) % E === 0n) continue;
      if (checkPrimeSync(c, { checks: 32 })) return c;
    }
  }
}

/** A fresh RSA key: modulus and prime p (the TPM's unique and sensitive). */
export function rsaGenerate(
  keyBits: number,
  exponent: number,
  draw: (n: number) => Uint8Array,
): { n: Uint8Array; p: Uint8Array } {
  if (keyBits !== 2048 && keyBits !== 3072 && keyBits !== 4096 && keyBits !== 1024) {
    fail(RC.KEY_SIZE);
  }
  const half = keyBits / 2;
  for (;;) {
    const p = findPrime(half, exponent, draw);
    const q = findPrime(half, exponent, draw);
    if (p === q) continue;
    const n = p * q;
    if (n >> BigInt(keyBits - 1) !== 1n) continue;
    return { n: bigintToBytes(n, keyBits / 8), p: bigintToBytes(p, half / 8) };
  }
}

function rsaRaw(key: KeyObject, data: Uint8Array, priv: boolean): Uint8Array {
  const opts = { key, padding: constants.RSA_NO_PADDING };
  return new Uint8Array(priv ? privateDecrypt(opts, data) : publicEncrypt(opts, data));
}

/** MGF1 (RFC 8017, B.2.1). */
function mgf1(hashAlg: number, seed: Uint8Array, len: number): Uint8Array {
  const h = hashInfo(hashAlg).size;
  const out = new Uint8Array(Math.ceil(len / h) * h);
  for (let i = 0; i * h < len; i++) {
    const c = Uint8Array.of(i >>> 24, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff);
    out.set(hash(hashAlg, seed, c), i * h);
  }
  return out.slice(0, len);
}

/** The PSS salt length the TPM uses (Part 1, B.7: the digest size, or less if it does not fit). */
function pssSaltLength(k: number, hLen: number): number {
  return Math.min(hLen, k - hLen - 2);
}

/** RSASSA-PKCS1-v1_5 or RSASSA-PSS over `digest` (Part 1, annex B.7). */
export function rsaSign(
  key: RsaKey,
  scheme: number,
  hashAlg: number,
  digest: Uint8Array,
  random: (n: number) => Uint8Array,
): Uint8Array {
  const info = hashInfo(hashAlg);
  if (digest.length !== info.size) fail(RC.SIZE);
  const privateKey = key.privateKey ?? fail(RC.KEY);
  if (scheme === ALG.RSASSA) {
    return new Uint8Array(
      privateEncrypt(
        { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
        concat(info.digestInfo, digest),
      ),
    );
  }
  if (scheme !== ALG.RSAPSS) fail(RC.SCHEME);
  // EMSA-PSS-ENCODE (RFC 8017, 9.1.1) with emBits = modBits - 1.
  const k = key.n.length;
  const modBits = bytesToBigint(key.n).toString(2).length;
  const emLen = Math.ceil((modBits - 1) / 8);
  const sLen = pssSaltLength(k, info.size);
  const salt = random(sLen);
  const h = hash(hashAlg, new Uint8Array(8), digest, salt);
  const db = new Uint8Array(emLen - info.size - 1);
  db[emLen - sLen - info.size - 2] = 0x01;
  db.set(salt, emLen - sLen - info.size - 1);
  const mask = mgf1(hashAlg, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - (modBits - 1));
  const em = concat(db, h, Uint8Array.of(0xbc));
  const padded = new Uint8Array(k);
  padded.set(em, k - em.length);
  return rsaRaw(privateKey, padded, true);
}

/** Verifies an RSASSA or RSAPSS signature over `digest` (any PSS salt length). */
export function rsaVerify(
  key: RsaKey,
  scheme: number,
  hashAlg: number,
  digest: Uint8Array,
  sig: Uint8Array,
): boolean {
  const info = hashInfo(hashAlg);
  const k = key.n.length;
  if (sig.length !== k || bytesToBigint(sig) >= bytesToBigint(key.n)) return false;
  const em = new Uint8Array(
    publicDecrypt({ key: key.publicKey, padding: constants.RSA_NO_PADDING }, sig),
  );
  if (scheme === ALG.RSASSA) {
    const t = concat(info.digestInfo, digest);
    const expected = new Uint8Array(k);
    expected[1] = 0x01;
    expected.fill(0xff, 2, k - t.length - 1);
    expected.set(t, k - t.length);
    return equalBytes(em, expected);
  }
  if (scheme !== ALG.RSAPSS) return false;
  // EMSA-PSS-VERIFY (RFC 8017, 9.1.2), salt length recovered from the padding.
  const modBits = bytesToBigint(key.n).toString(2).length;
  const emLen = Math.ceil((modBits - 1) / 8);
  const e = em.subarray(k - emLen);
  if (k - emLen === 1 && em[0] !== 0) return false;
  if (e[emLen - 1] !== 0xbc) return false;
  const db = e.slice(0, emLen - info.size - 1);
  const h = e.subarray(emLen - info.size - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - (modBits - 1));
  if ((db[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(hashAlg, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= topMask;
  let i = 0;
  while (i < db.length && db[i] === 0) i++;
  if (db[i] !== 0x01) return false;
  const salt = db.subarray(i + 1);
  return equalBytes(hash(hashAlg, new Uint8Array(8), digest, salt), h);
}

/** RSA_Encrypt: RSAES-PKCS1-v1_5, OAEP (label with its zero byte) or raw (scheme NULL). */
export function rsaEncrypt(
  key: RsaKey,
  scheme: number,
  hashAlg: number,
  message: Uint8Array,
  label: Uint8Array,
): Uint8Array {
  const k = key.n.length;
  try {
    if (scheme === ALG.OAEP) {
      if (message.length > k - 2 * hashInfo(hashAlg).size - 2) fail(RC.VALUE);
      return new Uint8Array(
        publicEncrypt(
          {
            key: key.publicKey,
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: hashInfo(hashAlg).node,
            ...(label.length > 0 ? { oaepLabel: label } : {}),
          },
          message,
        ),
      );
    }
    if (scheme === ALG.RSAES) {
      if (message.length > k - 11) fail(RC.VALUE);
      return new Uint8Array(
        publicEncrypt({ key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, message),
      );
    }
    if (scheme !== ALG.NULL) fail(RC.SCHEME);
    if (message.length > k) fail(RC.VALUE);
    const m = new Uint8Array(k);
    m.set(message, k - message.length);
    if (bytesToBigint(m) >= bytesToBigint(key.n)) fail(RC.VALUE);
    return rsaRaw(key.publicKey, m, false);
  } catch (e) {
    if (e instanceof TpmError) throw e;
    return fail(RC.VALUE);
  }
}

/** RSA_Decrypt; a padding failure is TPM_RC_VALUE. */
export function rsaDecrypt(
  key: RsaKey,
  scheme: number,
  hashAlg: number,
  cipher: Uint8Array,
  label: Uint8Array,
): Uint8Array {
  const privateKey = key.privateKey ?? fail(RC.KEY);
  const k = key.n.length;
  if (cipher.length > k || bytesToBigint(cipher) >= bytesToBigint(key.n)) fail(RC.VALUE);
  const c = new Uint8Array(k);
  c.set(cipher, k - cipher.length);
  try {
    if (scheme === ALG.OAEP) {
      return new Uint8Array(
        privateDecrypt(
          {
            key: privateKey,
            padding: constants.RSA_PKCS1_OAEP_PADDING,
            oaepHash: hashInfo(hashAlg).node,
            ...(label.length > 0 ? { oaepLabel: label } : {}),
          },
          c,
        ),
      );
    }
    const m = rsaRaw(privateKey, c, true);
    if (scheme === ALG.NULL) return m;
    if (scheme !== ALG.RSAES) return fail(RC.SCHEME);
    // EME-PKCS1-v1_5 decoding (RFC 8017, 7.2.2).
    if (m[0] !== 0 || m[1] !== 2) return fail(RC.VALUE);
    const sep = m.indexOf(0, 2);
    if (sep < 10) return fail(RC.VALUE);
    return m.slice(sep + 1);
  } catch (e) {
    if (e instanceof TpmError) throw e;
    return fail(RC.VALUE);
  }
}

// ---- ECC ----------------------------------------------------------------------------------------

function curve(curveID: number): typeof p256 {
  if (curveID === ECC_CURVE.NIST_P256) return p256;
  if (curveID === ECC_CURVE.NIST_P384) return p384;
  return fail(RC.CURVE);
}

export function curveOrder(curveID: number): bigint {
  return curve(curveID).Point.CURVE().n;
}

/** The public point [d]G, coordinates of the curve's size. */
export function eccPublic(curveID: number, d: Uint8Array): { x: Uint8Array; y: Uint8Array } {
  const pub = curve(curveID).getPublicKey(d, false);
  const size = (pub.length - 1) / 2;
  return { x: pub.slice(1, 1 + size), y: pub.slice(1 + size) };
}

/** A private scalar in [1, n-1] from bytes (reduced as FIPS 186-5 A.2.1 does with extra bits). */
export function eccScalar(curveID: number, bytes: Uint8Array): Uint8Array {
  const n = curveOrder(curveID);
  const size = (n.toString(16).length + 1) >> 1;
  const d = (bytesToBigint(bytes) % (n - 1n)) + 1n;
  return bigintToBytes(d, size);
}

/** Checks that (x, y) is on the curve; TPM_RC_ECC_POINT otherwise. */
function pointBytes(curveID: number, x: Uint8Array, y: Uint8Array): Uint8Array {
  const c = curve(curveID);
  const size = c.lengths.secretKey ?? 32;
  if (x.length > size || y.length > size) fail(RC.ECC_POINT);
  const enc = new Uint8Array(1 + 2 * size);
  enc[0] = 4;
  enc.set(x, 1 + size - x.length);
  enc.set(y, 1 + 2 * size - y.length);
  try {
    c.Point.fromBytes(enc).assertValidity();
  } catch {
    fail(RC.ECC_POINT);
  }
  return enc;
}

/** node:crypto's name of a curve, for [k]G through ECDH (OpenSSL's constant-time ladder). */
const ECDH_CURVES: ReadonlyMap<number, string> = new Map([
  [ECC_CURVE.NIST_P256, 'prime256v1'],
  [ECC_CURVE.NIST_P384, 'secp384r1'],
]);
const ecdhByCurve = new Map<number, ECDH>();
/** Private scalars as integers, by the sensitive bytes they came from (keys sign repeatedly). */
const scalarCache = new WeakMap<Uint8Array, bigint>();

/**
 * ECDSA over a digest the caller computed (Part 1, annex C.4; FIPS 186-5, 6.4.1): k from the TPM's
 * random source, R = [k]G by node:crypto's ECDH (node:crypto cannot sign a given digest, and
 * OpenSSL's scalar multiplication is ten times faster than a BigInt one), r = R.x mod n and
 * s = k^-1 (e + r·d) mod n with e the digest's leftmost bits.
 */
export function ecdsaSign(
  curveID: number,
  d: Uint8Array,
  digest: Uint8Array,
  random: (n: number) => Uint8Array,
): { r: Uint8Array; s: Uint8Array } {
  const n = curveOrder(curveID);
  const size = curve(curveID).lengths.secretKey ?? 32;
  let ecdh = ecdhByCurve.get(curveID);
  if (ecdh === undefined) {
    ecdh = createECDH(ECDH_CURVES.get(curveID) ?? fail(RC.CURVE));
    ecdhByCurve.set(curveID, ecdh);
  }
  let dv = scalarCache.get(d);
  if (dv === undefined) {
    dv = bytesToBigint(d);
    if (dv <= 0n || dv >= n) fail(RC.KEY);
    scalarCache.set(d, dv);
  }
  let e = bytesToBigint(digest);
  const excess = digest.length * 8 - size * 8;
  if (excess > 0) e >>= BigInt(excess);
  for (;;) {
    // 64 extra random bits make k's bias negligible (FIPS 186-5, A.3.1).
    const k = (bytesToBigint(random(size + 8)) % (n - 1n)) + 1n;
    ecdh.setPrivateKey(bigintToBytes(k, size));
    const point = ecdh.getPublicKey();
    const r = bytesToBigint(point.subarray(1, 1 + size)) % n;
    if (r === 0n) continue;
    const s = (modInverse(k, n) * ((e + r * dv) % n)) % n;
    if (s === 0n) continue;
    return { r: bigintToBytes(r, size), s: bigintToBytes(s, size) };
  }
}

export function ecdsaVerify(
  curveID: number,
  pub: { x: Uint8Array; y: Uint8Array },
  digest: Uint8Array,
  r: Uint8Array,
  s: Uint8Array,
): boolean {
  const c = curve(curveID);
  const size = c.lengths.secretKey ?? 32;
  if (r.length > size || s.length > size) return false;
  const sig = new Uint8Array(2 * size);
  sig.set(r, size - r.length);
  sig.set(s, 2 * size - s.length);
  try {
    return c.verify(sig, digest, pointBytes(curveID, pub.x, pub.y), {
      prehash: false,
      lowS: false,
    });
  } catch {
    return false;
  }
}

/** ECDH: the x coordinate of [d]Q (the shared secret Z of SP 800-56A). */
export function ecdhZ(
  curveID: number,
  d: Uint8Array,
  q: { x: Uint8Array; y: Uint8Array },
): Uint8Array {
  const shared = curve(curveID).getSharedSecret(d, pointBytes(curveID, q.x, q.y), false);
  const size = (shared.length - 1) / 2;
  return shared.slice(1, 1 + size);
}
