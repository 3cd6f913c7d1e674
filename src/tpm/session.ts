// Authorization sessions (Part 1, section 19): the session record, its key, the command and
// response HMACs, and parameter encryption (Part 1, 21: AES-CFB and XOR obfuscation).

import { ALG, SE } from './constants.js';
import {
  aesCfbDecrypt,
  aesCfbEncrypt,
  concat,
  digestSize,
  hash,
  hmac,
  kdfa,
  u32be,
} from './crypto.js';
import type { Reader, Writer } from './marshal.js';
import { readSymDef, writeSymDef, type SymDef } from './types.js';

export interface Session {
  handle: number;
  type: number;
  authHash: number;
  nonceTPM: Uint8Array;
  sessionKey: Uint8Array;
  symmetric: SymDef;
  /** Name and (trimmed) authValue of the bind entity, when the session is bound. */
  bind: { name: Uint8Array; auth: Uint8Array } | undefined;
  policyDigest: Uint8Array;
  /** Policy state (Part 3, 23): the command code bound by PolicyCommandCode, if any. */
  commandCode: number | undefined;
  /** The PCR update counter PolicyPCR recorded, if any. */
  pcrCounter: number | undefined;
  isAuthValueNeeded: boolean;
  isPasswordNeeded: boolean;
  /** Whether the session was saved by ContextSave (its handle stays reserved). */
  saved: boolean;
  /** The context sequence number of its saved context, so a blob loads only once. */
  savedSequence: bigint;
}

export function isPolicy(s: Session): boolean {
  return s.type === SE.POLICY || s.type === SE.TRIAL;
}

/** Resets a policy session's policy state (PolicyRestart, and after each use). */
export function resetPolicy(s: Session): void {
  s.policyDigest = new Uint8Array(digestSize(s.authHash));
  s.commandCode = undefined;
  s.pcrCounter = undefined;
  s.isAuthValueNeeded = false;
  s.isPasswordNeeded = false;
}

/**
 * sessionKey = KDFa(authHash, bindAuth || salt, "ATH", nonceTPM, nonceCaller, digestBits); empty
 * when the session is neither bound nor salted (Part 1, 19.6.8), even if both values are empty.
 */
export function sessionKey(
  authHash: number,
  boundOrSalted: boolean,
  bindAuth: Uint8Array,
  salt: Uint8Array,
  nonceTPM: Uint8Array,
  nonceCaller: Uint8Array,
): Uint8Array {
  if (!boundOrSalted) return new Uint8Array(0);
  const bits = digestSize(authHash) * 8;
  return kdfa(authHash, concat(bindAuth, salt), 'ATH', nonceTPM, nonceCaller, bits);
}

/** cpHash = H(commandCode || names || parameters) (Part 1, 18.7). */
export function cpHash(
  alg: number,
  cc: number,
  names: Uint8Array[],
  params: Uint8Array,
): Uint8Array {
  return hash(alg, u32be(cc), ...names, params);
}

/** rpHash = H(responseCode(0) || commandCode || parameters) (Part 1, 18.8). */
export function rpHash(alg: number, cc: number, params: Uint8Array): Uint8Array {
  return hash(alg, u32be(0), u32be(cc), params);
}

/** HMAC over a parameter hash, nonces and attributes (Part 1, 19.6.5 and 19.6.7). */
export function sessionHmac(
  s: Session,
  key: Uint8Array,
  pHash: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  extraNonces: Uint8Array,
  attrs: number,
): Uint8Array {
  return hmac(s.authHash, key, pHash, nonceNewer, nonceOlder, extraNonces, Uint8Array.of(attrs));
}

/** Encrypts (toTpm false) or decrypts the bytes of a first parameter (Part 1, 21). */
export function paramCrypt(
  s: Session,
  key: Uint8Array,
  nonceNewer: Uint8Array,
  nonceOlder: Uint8Array,
  data: Uint8Array,
  encrypt: boolean,
): Uint8Array {
  const sym = s.symmetric;
  if (sym.algorithm === ALG.XOR) {
    const mask = kdfa(s.authHash, key, 'XOR', nonceNewer, nonceOlder, data.length * 8);
    return data.map((b, i) => b ^ mask[i]!);
  }
  const keyBytes = sym.keyBits / 8;
  const kiv = kdfa(s.authHash, key, 'CFB', nonceNewer, nonceOlder, sym.keyBits + 128);
  const aesKey = kiv.subarray(0, keyBytes);
  const iv = kiv.subarray(keyBytes);
  return encrypt ? aesCfbEncrypt(aesKey, iv, data) : aesCfbDecrypt(aesKey, iv, data);
}

/** The session's state for a saved context blob. */
export function writeSessionState(w: Writer, s: Session): void {
  w.u32(s.handle).u8(s.type).u16(s.authHash).b2(s.nonceTPM).b2(s.sessionKey);
  writeSymDef(w, s.symmetric);
  if (s.bind === undefined) w.u8(0);
  else w.u8(1).b2(s.bind.name).b2(s.bind.auth);
  w.b2(s.policyDigest);
  w.u8(s.commandCode === undefined ? 0 : 1).u32(s.commandCode ?? 0);
  w.u8(s.pcrCounter === undefined ? 0 : 1).u32(s.pcrCounter ?? 0);
  w.u8((s.isAuthValueNeeded ? 1 : 0) | (s.isPasswordNeeded ? 2 : 0));
}

export function readSessionState(r: Reader): Session {
  const handle = r.u32();
  const type = r.u8();
  const authHash = r.u16();
  const nonceTPM = r.b2(64);
  const key = r.b2(64);
  const symmetric = readSymDef(r, true);
  const bind = r.u8() === 1 ? { name: r.b2(70), auth: r.b2(64) } : undefined;
  const policyDigest = r.b2(64);
  const hasCc = r.u8() === 1;
  const cc = r.u32();
  const hasPcr = r.u8() === 1;
  const pcr = r.u32();
  const flags = r.u8();
  return {
    handle,
    type,
    authHash,
    nonceTPM,
    sessionKey: key,
    symmetric,
    bind,
    policyDigest,
    commandCode: hasCc ? cc : undefined,
    pcrCounter: hasPcr ? pcr : undefined,
    isAuthValueNeeded: (flags & 1) !== 0,
    isPasswordNeeded: (flags & 2) !== 0,
    saved: false,
    savedSequence: 0n,
  };
}
