// The TPM's symmetric cryptography over node:crypto: hashes, HMAC, the KDFs of Part 1 section
// 11.4.10 (KDFa, SP 800-108 counter mode with HMAC; KDFe, SP 800-56A concatenation) and AES-CFB
// parameter/blob encryption (Part 1, 11.4.6).

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hash as oneShotHash,
  timingSafeEqual,
} from 'node:crypto';
import { ALG, RC } from './constants.js';
import { fail } from './errors.js';

export interface HashInfo {
  readonly alg: number;
  readonly node: string;
  readonly size: number;
  readonly blockSize: number;
  /** DER DigestInfo prefix for RSASSA-PKCS1-v1_5 (RFC 8017, section 9.2 note 1). */
  readonly digestInfo: Uint8Array;
}

const hexBytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

export const HASHES: ReadonlyMap<number, HashInfo> = new Map([
  [
    ALG.SHA1,
    {
      alg: ALG.SHA1,
      node: 'sha1',
      size: 20,
      blockSize: 64,
      digestInfo: hexBytes('3021300906052b0e03021a05000414'),
    },
  ],
  [
    ALG.SHA256,
    {
      alg: ALG.SHA256,
      node: 'sha256',
      size: 32,
      blockSize: 64,
      digestInfo: hexBytes('3031300d060960864801650304020105000420'),
    },
  ],
  [
    ALG.SHA384,
    {
      alg: ALG.SHA384,
      node: 'sha384',
      size: 48,
      blockSize: 128,
      digestInfo: hexBytes('3041300d060960864801650304020205000430'),
    },
  ],
  [
    ALG.SHA512,
    {
      alg: ALG.SHA512,
      node: 'sha512',
      size: 64,
      blockSize: 128,
      digestInfo: hexBytes('3051300d060960864801650304020305000440'),
    },
  ],
]);

/** The hash algorithm `alg`, or TPM_RC_HASH. */
export function hashInfo(alg: number): HashInfo {
  return HASHES.get(alg) ?? fail(RC.HASH);
}

export function isHash(alg: number): boolean {
  return HASHES.has(alg);
}

export function digestSize(alg: number): number {
  return hashInfo(alg).size;
}

export function hash(alg: number, ...parts: Uint8Array[]): Uint8Array {
  const name = hashInfo(alg).node;
  // One-shot hashing is several times cheaper than a Hash object for the small inputs that
  // dominate (PCR extends, cpHash, names).
  if (parts.length === 1) return oneShot(name, parts[0]!);
  if (parts.length === 2) return oneShot(name, concat(parts[0]!, parts[1]!));
  const h = createHash(name);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function oneShot(name: string, data: Uint8Array): Uint8Array {
  const d = oneShotHash(name, data, 'buffer') as unknown as Buffer;
  return new Uint8Array(d.buffer, d.byteOffset, d.length);
}

export function hmac(alg: number, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const h = createHmac(hashInfo(alg).node, key);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

export function u16be(v: number): Uint8Array {
  return Uint8Array.of((v >> 8) & 0xff, v & 0xff);
}

/** Constant-time equality of two byte strings (false when the lengths differ). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && (a.length === 0 || timingSafeEqual(a, b));
}

const encoder = new TextEncoder();

/** A KDF label with its terminating zero byte (added unless the label already ends with one). */
function label0(label: string): Uint8Array {
  const l = encoder.encode(label);
  return l.length > 0 && l[l.length - 1] === 0 ? l : concat(l, Uint8Array.of(0));
}

/** KDFa (Part 1, 11.4.10.2): SP 800-108 counter-mode KDF with HMAC. */
export function kdfa(
  alg: number,
  key: Uint8Array,
  label: string,
  contextU: Uint8Array,
  contextV: Uint8Array,
  bits: number,
): Uint8Array {
  const bytes = Math.ceil(bits / 8);
  const size = digestSize(alg);
  const out = new Uint8Array(Math.ceil(bytes / size) * size);
  const l = label0(label);
  const bitsBe = u32be(bits);
  for (let i = 1, at = 0; at < bytes; i++, at += size) {
    out.set(hmac(alg, key, u32be(i), l, contextU, contextV, bitsBe), at);
  }
  const result = out.slice(0, bytes);
  // An odd bit count keeps only the low bits of the first byte (Part 1, 11.4.10.2).
  if (bits % 8 !== 0) result[0]! &= (1 << (bits % 8)) - 1;
  return result;
}

/** KDFe (Part 1, 11.4.10.3): SP 800-56A concatenation KDF. */
export function kdfe(
  alg: number,
  z: Uint8Array,
  label: string,
  partyU: Uint8Array,
  partyV: Uint8Array,
  bits: number,
): Uint8Array {
  const bytes = Math.ceil(bits / 8);
  const size = digestSize(alg);
  const out = new Uint8Array(Math.ceil(bytes / size) * size);
  const l = label0(label);
  for (let i = 1, at = 0; at < bytes; i++, at += size) {
    out.set(hash(alg, u32be(i), z, l, partyU, partyV), at);
  }
  return out.slice(0, bytes);
}

function aesName(keyBytes: number): string {
  if (keyBytes !== 16 && keyBytes !== 24 && keyBytes !== 32) fail(RC.KEY_SIZE);
  return `aes-${keyBytes * 8}-cfb`;
}

/** AES in CFB mode with 128-bit feedback, the TPM's only AES mode for parameters and blobs. */
export function aesCfbEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv(aesName(key.length), key, iv);
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

export function aesCfbDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createDecipheriv(aesName(key.length), key, iv);
  return new Uint8Array(Buffer.concat([c.update(data), c.final()]));
}

/** Strips trailing zero bytes of an authValue (Part 1, 19.6.4.3: authValues compare that way). */
export function trimAuth(auth: Uint8Array): Uint8Array {
  let n = auth.length;
  while (n > 0 && auth[n - 1] === 0) n--;
  return auth.subarray(0, n);
}
