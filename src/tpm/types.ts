// TPM 2.0 structures of Part 2 that commands carry: public areas, sensitive areas, schemes, PCR
// selections, signatures, NV public areas. Each has an unmarshal that validates as the reference
// implementation does (TPM_RC_* with the failing member's meaning) and a marshal that produces the
// canonical bytes, so that unmarshal then marshal is the identity on every accepted input.

import { ALG, ECC_CURVE, LIMITS, OA, RC } from './constants.js';
import { isHash } from './crypto.js';
import { fail } from './errors.js';
import type { Reader, Writer } from './marshal.js';

/** TPMT_SYM_DEF(_OBJECT) (Part 2, 11.1.6/7): for XOR, keyBits holds the hash and mode is NULL. */
export interface SymDef {
  algorithm: number;
  keyBits: number;
  mode: number;
}

export const SYM_NULL: SymDef = { algorithm: ALG.NULL, keyBits: 0, mode: ALG.NULL };

/** A scheme with its hash (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_SIG_SCHEME, TPMT_KDF_SCHEME...). */
export interface Scheme {
  scheme: number;
  hashAlg: number;
  /** ECDAA count, or the KDF of a keyedhash XOR scheme. */
  extra?: number;
}

export const SCHEME_NULL: Scheme = { scheme: ALG.NULL, hashAlg: ALG.NULL };

export interface RsaParms {
  symmetric: SymDef;
  scheme: Scheme;
  keyBits: number;
  exponent: number;
}

export interface EccParms {
  symmetric: SymDef;
  scheme: Scheme;
  curveID: number;
  kdf: Scheme;
}

export interface EccPoint {
  x: Uint8Array;
  y: Uint8Array;
}

/** TPMT_PUBLIC (Part 2, 12.2.4). */
export type Public =
  | PublicCommon<typeof ALG.RSA, RsaParms, Uint8Array>
  | PublicCommon<typeof ALG.ECC, EccParms, EccPoint>
  | PublicCommon<typeof ALG.KEYEDHASH, { scheme: Scheme }, Uint8Array>
  | PublicCommon<typeof ALG.SYMCIPHER, { symmetric: SymDef }, Uint8Array>;

interface PublicCommon<T extends number, P, U> {
  type: T;
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
  parameters: P;
  unique: U;
}

export type RsaPublic = Extract<Public, { type: typeof ALG.RSA }>;
export type EccPublic = Extract<Public, { type: typeof ALG.ECC }>;

/** TPMT_SENSITIVE (Part 2, 12.3.2.5). */
export interface Sensitive {
  sensitiveType: number;
  authValue: Uint8Array;
  seedValue: Uint8Array;
  /** RSA prime p, ECC private scalar, keyedhash data or symmetric key. */
  sensitive: Uint8Array;
}

/** TPMS_SENSITIVE_CREATE (Part 2, 11.1.15). */
export interface SensitiveCreate {
  userAuth: Uint8Array;
  data: Uint8Array;
}

/** One entry of a TPML_PCR_SELECTION (TPMS_PCR_SELECTION, Part 2, 10.6.2). */
export interface PcrSelection {
  hash: number;
  /** Bitmap bytes: PCR n is bit n%8 of byte n/8. */
  select: Uint8Array;
}

/** TPMT_SIGNATURE (Part 2, 11.3.4). */
export type Signature =
  | { sigAlg: typeof ALG.NULL }
  | { sigAlg: typeof ALG.RSASSA | typeof ALG.RSAPSS; hash: number; sig: Uint8Array }
  | { sigAlg: typeof ALG.ECDSA; hash: number; r: Uint8Array; s: Uint8Array };

/** TPMT_TK_* tickets (Part 2, 10.7). */
export interface Ticket {
  tag: number;
  hierarchy: number;
  digest: Uint8Array;
}

/** TPMS_NV_PUBLIC (Part 2, 13.5). */
export interface NvPublic {
  nvIndex: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Uint8Array;
  dataSize: number;
}

const MAX_DIGEST = LIMITS.MAX_DIGEST;

// ---- hash, symmetric and scheme selectors ------------------------------------------------------

/** TPMI_ALG_HASH, optionally +NULL. */
export function readHashAlg(r: Reader, allowNull: boolean): number {
  const alg = r.u16();
  if (alg === ALG.NULL && allowNull) return alg;
  if (!isHash(alg)) fail(RC.HASH);
  return alg;
}

/** TPMT_SYM_DEF_OBJECT / TPMT_SYM_DEF (the latter allows XOR with a hash). */
export function readSymDef(r: Reader, allowXor: boolean): SymDef {
  const algorithm = r.u16();
  if (algorithm === ALG.NULL) return SYM_NULL;
  if (algorithm === ALG.XOR && allowXor) {
    return { algorithm, keyBits: readHashAlg(r, false), mode: ALG.NULL };
  }
  if (algorithm !== ALG.AES) fail(RC.SYMMETRIC);
  const keyBits = r.u16();
  if (keyBits !== 128 && keyBits !== 192 && keyBits !== 256) fail(RC.KEY_SIZE);
  const mode = r.u16();
  if (mode !== ALG.CFB) fail(RC.MODE);
  return { algorithm, keyBits, mode };
}

export function writeSymDef(w: Writer, s: SymDef): void {
  w.u16(s.algorithm);
  if (s.algorithm === ALG.NULL) return;
  w.u16(s.keyBits);
  if (s.algorithm !== ALG.XOR) w.u16(s.mode);
}

const SIG_SCHEMES = new Set<number>([ALG.RSASSA, ALG.RSAPSS, ALG.ECDSA, ALG.ECSCHNORR, ALG.SM2]);
const RSA_SCHEMES = new Set<number>([ALG.RSASSA, ALG.RSAPSS, ALG.RSAES, ALG.OAEP]);
const ECC_SCHEMES = new Set<number>([ALG.ECDSA, ALG.ECDH, ALG.ECDAA, ALG.ECSCHNORR, ALG.SM2]);
const KDF_SCHEMES = new Set<number>([ALG.KDF1_SP800_56A, ALG.KDF2, ALG.KDF1_SP800_108, ALG.MGF1]);

/** A scheme whose details are a hash (plus an ECDAA count); `allowed` is the selector's set. */
function readScheme(r: Reader, allowed: ReadonlySet<number>): Scheme {
  const scheme = r.u16();
  if (scheme === ALG.NULL) return SCHEME_NULL;
  if (!allowed.has(scheme)) fail(RC.SCHEME);
  if (scheme === ALG.RSAES) return { scheme, hashAlg: ALG.NULL };
  const hashAlg = readHashAlg(r, false);
  if (scheme === ALG.ECDAA) return { scheme, hashAlg, extra: r.u16() };
  return { scheme, hashAlg };
}

function writeScheme(w: Writer, s: Scheme): void {
  w.u16(s.scheme);
  if (s.scheme === ALG.NULL || s.scheme === ALG.RSAES) return;
  w.u16(s.hashAlg);
  if (s.extra !== undefined) w.u16(s.extra);
}

export const readRsaScheme = (r: Reader): Scheme => readScheme(r, RSA_SCHEMES);
export const readEccScheme = (r: Reader): Scheme => readScheme(r, ECC_SCHEMES);
export const readSigScheme = (r: Reader): Scheme => readScheme(r, SIG_SCHEMES);
export const readKdfScheme = (r: Reader): Scheme => readScheme(r, KDF_SCHEMES);
/** TPMT_RSA_DECRYPT: RSAES, OAEP or NULL. */
export const readRsaDecryptScheme = (r: Reader): Scheme =>
  readScheme(r, new Set<number>([ALG.RSAES, ALG.OAEP]));
export const writeSchemeTo = writeScheme;

/** TPMT_KEYEDHASH_SCHEME: HMAC(hash) or XOR(hash, kdf). */
function readKeyedHashScheme(r: Reader): Scheme {
  const scheme = r.u16();
  if (scheme === ALG.NULL) return SCHEME_NULL;
  if (scheme === ALG.HMAC) return { scheme, hashAlg: readHashAlg(r, false) };
  if (scheme === ALG.XOR) {
    const hashAlg = readHashAlg(r, false);
    const kdf = r.u16();
    if (!KDF_SCHEMES.has(kdf)) fail(RC.KDF);
    return { scheme, hashAlg, extra: kdf };
  }
  return fail(RC.SCHEME);
}

// ---- TPMT_PUBLIC --------------------------------------------------------------------------------

/** TPMT_PUBLIC. `allowNullNameAlg` is for TPM2B_PUBLIC in LoadExternal only. */
export function readPublic(r: Reader): Public {
  const type = r.u16();
  const nameAlg = readHashAlg(r, false);
  const objectAttributes = r.u32();
  if ((objectAttributes & OA.reserved) !== 0) fail(RC.ATTRIBUTES);
  const authPolicy = r.b2(MAX_DIGEST);
  switch (type) {
    case ALG.RSA: {
      const symmetric = readSymDef(r, false);
      const scheme = readRsaScheme(r);
      const keyBits = r.u16();
      const exponent = r.u32();
      const unique = r.b2(512);
      return {
        type,
        nameAlg,
        objectAttributes,
        authPolicy,
        parameters: { symmetric, scheme, keyBits, exponent },
        unique,
      };
    }
    case ALG.ECC: {
      const symmetric = readSymDef(r, false);
      const scheme = readEccScheme(r);
      const curveID = r.u16();
      const kdf = readKdfScheme(r);
      const x = r.b2(128);
      const y = r.b2(128);
      return {
        type,
        nameAlg,
        objectAttributes,
        authPolicy,
        parameters: { symmetric, scheme, curveID, kdf },
        unique: { x, y },
      };
    }
    case ALG.KEYEDHASH: {
      const scheme = readKeyedHashScheme(r);
      const unique = r.b2(MAX_DIGEST);
      return { type, nameAlg, objectAttributes, authPolicy, parameters: { scheme }, unique };
    }
    case ALG.SYMCIPHER: {
      const symmetric = readSymDef(r, false);
      const unique = r.b2(MAX_DIGEST);
      return { type, nameAlg, objectAttributes, authPolicy, parameters: { symmetric }, unique };
    }
    default:
      return fail(RC.TYPE);
  }
}

export function writePublic(w: Writer, p: Public): void {
  w.u16(p.type).u16(p.nameAlg).u32(p.objectAttributes).b2(p.authPolicy);
  switch (p.type) {
    case ALG.RSA:
      writeSymDef(w, p.parameters.symmetric);
      writeScheme(w, p.parameters.scheme);
      w.u16(p.parameters.keyBits).u32(p.parameters.exponent).b2(p.unique);
      return;
    case ALG.ECC:
      writeSymDef(w, p.parameters.symmetric);
      writeScheme(w, p.parameters.scheme);
      w.u16(p.parameters.curveID);
      writeScheme(w, p.parameters.kdf);
      w.b2(p.unique.x).b2(p.unique.y);
      return;
    case ALG.KEYEDHASH:
      writeScheme(w, p.parameters.scheme);
      w.b2(p.unique);
      return;
    case ALG.SYMCIPHER:
      writeSymDef(w, p.parameters.symmetric);
      w.b2(p.unique);
      return;
  }
}

/** TPM2B_PUBLIC; an empty one is TPM_RC_SIZE. */
export function readPublic2B(r: Reader): Public {
  const p = r.sized(readPublic, true);
  return p ?? fail(RC.SIZE);
}

/** TPM2B_TEMPLATE (CreateLoaded): a TPMT_PUBLIC in a size. */
export const readTemplate = readPublic2B;

// ---- TPMT_SENSITIVE and TPM2B_SENSITIVE_CREATE --------------------------------------------------

export function readSensitive(r: Reader): Sensitive {
  const sensitiveType = r.u16();
  const authValue = r.b2(MAX_DIGEST);
  const seedValue = r.b2(MAX_DIGEST);
  const sensitive = r.b2(512);
  return { sensitiveType, authValue, seedValue, sensitive };
}

export function writeSensitive(w: Writer, s: Sensitive): void {
  w.u16(s.sensitiveType).b2(s.authValue).b2(s.seedValue).b2(s.sensitive);
}

export function readSensitiveCreate2B(r: Reader): SensitiveCreate {
  return (
    r.sized((i) => ({ userAuth: i.b2(MAX_DIGEST), data: i.b2(256) }), true) ?? {
      userAuth: new Uint8Array(0),
      data: new Uint8Array(0),
    }
  );
}

// ---- PCR selections -----------------------------------------------------------------------------

/** TPML_PCR_SELECTION (at most 16 entries; sizeofSelect 3 or 4 as the TSS sends). */
export function readPcrSelectionList(r: Reader): PcrSelection[] {
  const count = r.u32();
  if (count > 16) fail(RC.SIZE);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const hash = readHashAlg(r, false);
    const size = r.u8();
    if (size < LIMITS.PCR_SELECT_MIN - 3 || size > 4) fail(RC.VALUE);
    out.push({ hash, select: r.bytes(size) });
  }
  return out;
}

export function writePcrSelectionList(w: Writer, list: readonly PcrSelection[]): void {
  w.u32(list.length);
  for (const s of list) w.u16(s.hash).u8(s.select.length).bytes(s.select);
}

/** The PCR numbers of a selection, ascending. */
export function selectedPcrs(s: PcrSelection): number[] {
  const out: number[] = [];
  s.select.forEach((byte, i) => {
    for (let bit = 0; bit < 8; bit++) if ((byte >> bit) & 1) out.push(i * 8 + bit);
  });
  return out;
}

// ---- signatures and tickets ---------------------------------------------------------------------

export function readSignature(r: Reader): Signature {
  const sigAlg = r.u16();
  switch (sigAlg) {
    case ALG.NULL:
      return { sigAlg };
    case ALG.RSASSA:
    case ALG.RSAPSS:
      return { sigAlg, hash: readHashAlg(r, false), sig: r.b2(512) };
    case ALG.ECDSA:
      return { sigAlg, hash: readHashAlg(r, false), r: r.b2(128), s: r.b2(128) };
    default:
      return fail(RC.SCHEME);
  }
}

export function writeSignature(w: Writer, s: Signature): void {
  w.u16(s.sigAlg);
  if (s.sigAlg === ALG.NULL) return;
  w.u16(s.hash);
  if (s.sigAlg === ALG.ECDSA) w.b2(s.r).b2(s.s);
  else w.b2(s.sig);
}

export function readTicket(r: Reader): Ticket {
  return { tag: r.u16(), hierarchy: r.u32(), digest: r.b2(MAX_DIGEST) };
}

export function writeTicket(w: Writer, t: Ticket): void {
  w.u16(t.tag).u32(t.hierarchy).b2(t.digest);
}

// ---- NV -----------------------------------------------------------------------------------------

export function readNvPublic(r: Reader): NvPublic {
  const nvIndex = r.u32();
  if (nvIndex >>> 24 !== 0x01) fail(RC.HANDLE);
  const nameAlg = readHashAlg(r, false);
  const attributes = r.u32();
  const authPolicy = r.b2(MAX_DIGEST);
  const dataSize = r.u16();
  return { nvIndex, nameAlg, attributes, authPolicy, dataSize };
}

export function writeNvPublic(w: Writer, p: NvPublic): void {
  w.u32(p.nvIndex).u16(p.nameAlg).u32(p.attributes).b2(p.authPolicy).u16(p.dataSize);
}

// ---- ECC points ---------------------------------------------------------------------------------

export function readEccPoint2B(r: Reader): EccPoint {
  return r.sized((i) => ({ x: i.b2(128), y: i.b2(128) }), true) ?? fail(RC.SIZE);
}

export function writeEccPoint(w: Writer, p: EccPoint): void {
  w.b2(p.x).b2(p.y);
}

/** The byte size of a coordinate on a supported curve, or TPM_RC_CURVE. */
export function curveBytes(curveID: number): number {
  if (curveID === ECC_CURVE.NIST_P256) return 32;
  if (curveID === ECC_CURVE.NIST_P384) return 48;
  return fail(RC.CURVE);
}
