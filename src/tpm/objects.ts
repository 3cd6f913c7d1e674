// TPM objects: a public area, its sensitive area and what the TPM derives from them (Name, keys).
// Creation follows Part 1 section 27 (object creation): the TPM makes the secret when
// sensitiveDataOrigin is set, keyed hashes and symmetric keys get unique = H(seedValue || secret),
// and primaries are derived deterministically from the hierarchy seed and the template so that
// CreatePrimary twice gives the same key. Private blobs are Part 1 section 23 (protected storage).

import { ALG, OA, RC } from './constants.js';
import {
  aesCfbDecrypt,
  aesCfbEncrypt,
  concat,
  digestSize,
  equalBytes,
  hash,
  hmac,
  kdfa,
  u32be,
} from './crypto.js';
import {
  eccPublic,
  eccScalar,
  rsaGenerate,
  rsaPrivateKey,
  rsaPublicKey,
  type RsaKey,
} from './asym.js';
import { fail, TpmError } from './errors.js';
import { marshal, Reader } from './marshal.js';
import {
  curveBytes,
  readSensitive,
  writePublic,
  writeSensitive,
  type Public,
  type Sensitive,
  type SensitiveCreate,
} from './types.js';

export interface TpmObject {
  readonly public: Public;
  readonly sensitive: Sensitive;
  readonly name: Uint8Array;
  readonly qualifiedName: Uint8Array;
  /** The hierarchy the object belongs to (TPM_RH_OWNER, _ENDORSEMENT, _PLATFORM or _NULL). */
  readonly hierarchy: number;
  /** The RSA key, built once from the sensitive prime. */
  rsa?: RsaKey;
}

export function objectName(pub: Public): Uint8Array {
  const bytes = marshal((w) => writePublic(w, pub));
  return concat(Uint8Array.of(pub.nameAlg >> 8, pub.nameAlg & 0xff), hash(pub.nameAlg, bytes));
}

/** QN(child) = nameAlg || H(QN(parent) || Name(child)) (Part 1, 16). */
export function qualifiedName(parentQn: Uint8Array, pub: Public, name: Uint8Array): Uint8Array {
  return concat(name.subarray(0, 2), hash(pub.nameAlg, parentQn, name));
}

export function makeObject(
  pub: Public,
  sensitive: Sensitive,
  hierarchy: number,
  parentQn: Uint8Array,
): TpmObject {
  const name = objectName(pub);
  return {
    public: pub,
    sensitive,
    name,
    qualifiedName: qualifiedName(parentQn, pub, name),
    hierarchy,
  };
}

export function rsaKeyOf(obj: TpmObject): RsaKey {
  if (obj.public.type !== ALG.RSA) return fail(RC.KEY);
  if (obj.rsa === undefined) {
    const { unique, parameters } = obj.public;
    obj.rsa =
      obj.sensitive.sensitive.length > 0
        ? rsaPrivateKey(unique, parameters.exponent, obj.sensitive.sensitive)
        : rsaPublicKey(unique, parameters.exponent);
  }
  return obj.rsa;
}

const isSet = (attrs: number, bit: number): boolean => (attrs & bit) !== 0;

/** A storage parent: restricted decryption key with a symmetric algorithm (Part 1, 27.2). */
export function isStorageParent(pub: Public): boolean {
  const a = pub.objectAttributes;
  return (
    isSet(a, OA.restricted) &&
    isSet(a, OA.decrypt) &&
    !isSet(a, OA.sign) &&
    (pub.type === ALG.RSA || pub.type === ALG.ECC || pub.type === ALG.SYMCIPHER)
  );
}

/**
 * The checks of Part 3 "CreatePrimary"/"Create" on a template (PublicAttributesValidation and
 * SchemeChecks in the reference code), for parameter `param` (inPublic).
 */
export function validateTemplate(
  pub: Public,
  parent: Public | undefined,
  isPrimary: boolean,
): void {
  const a = pub.objectAttributes;
  const fixedTPM = isSet(a, OA.fixedTPM);
  const fixedParent = isSet(a, OA.fixedParent);
  if (fixedTPM && !fixedParent) fail(RC.ATTRIBUTES);
  if (isPrimary) {
    if (fixedTPM !== fixedParent) fail(RC.ATTRIBUTES);
  } else if (parent !== undefined) {
    const parentFixedTPM = isSet(parent.objectAttributes, OA.fixedTPM);
    if (fixedTPM && !parentFixedTPM) fail(RC.ATTRIBUTES);
  }
  const restricted = isSet(a, OA.restricted);
  const decrypt = isSet(a, OA.decrypt);
  const sign = isSet(a, OA.sign);
  if (restricted && decrypt && sign) fail(RC.ATTRIBUTES);
  if (isSet(a, OA.encryptedDuplication) && fixedParent) fail(RC.ATTRIBUTES);
  switch (pub.type) {
    case ALG.RSA:
    case ALG.ECC: {
      const { symmetric, scheme } = pub.parameters;
      if (restricted && decrypt) {
        if (symmetric.algorithm === ALG.NULL) fail(RC.SYMMETRIC);
        if (scheme.scheme !== ALG.NULL) fail(RC.SCHEME);
      } else if (symmetric.algorithm !== ALG.NULL) {
        fail(RC.SYMMETRIC);
      }
      if (restricted && sign && scheme.scheme === ALG.NULL) fail(RC.SCHEME);
      if (scheme.scheme !== ALG.NULL) {
        const signing = [ALG.RSASSA, ALG.RSAPSS, ALG.ECDSA, ALG.ECDAA, ALG.ECSCHNORR, ALG.SM2];
        const isSigning = (signing as number[]).includes(scheme.scheme);
        if (isSigning && !sign) fail(RC.SCHEME);
        if (!isSigning && !decrypt) fail(RC.SCHEME);
        if (sign && decrypt) fail(RC.SCHEME);
      }
      if (pub.type === ALG.RSA) {
        const { keyBits, exponent } = pub.parameters;
        if (keyBits !== 2048 && keyBits !== 3072) fail(RC.KEY_SIZE);
        if (exponent !== 0 && exponent !== 65537) fail(RC.VALUE);
        if ((scheme.scheme === ALG.ECDSA || scheme.scheme === ALG.ECDH) as boolean) fail(RC.SCHEME);
      } else {
        curveBytes(pub.parameters.curveID);
        if (pub.parameters.kdf.scheme !== ALG.NULL) fail(RC.KDF);
      }
      return;
    }
    case ALG.KEYEDHASH: {
      const { scheme } = pub.parameters;
      if (sign && decrypt) {
        if (scheme.scheme !== ALG.NULL) fail(RC.SCHEME);
      } else if (sign && scheme.scheme !== ALG.HMAC && scheme.scheme !== ALG.NULL) {
        fail(RC.SCHEME);
      } else if (decrypt && scheme.scheme !== ALG.XOR && scheme.scheme !== ALG.NULL) {
        fail(RC.SCHEME);
      }
      if (!sign && !decrypt && scheme.scheme !== ALG.NULL) fail(RC.SCHEME);
      if (restricted && !(sign || decrypt)) fail(RC.ATTRIBUTES);
      if (restricted && decrypt) fail(RC.ATTRIBUTES);
      return;
    }
    case ALG.SYMCIPHER:
      if (pub.parameters.symmetric.algorithm === ALG.NULL) fail(RC.SYMMETRIC);
      if (sign) fail(RC.ATTRIBUTES);
      return;
  }
}

/**
 * Fills in the secret and unique fields of a validated template. `draw` supplies the random bytes
 * (the RNG for ordinary objects, a deterministic stream for primaries).
 */
export function generateObject(
  template: Public,
  inSensitive: SensitiveCreate,
  draw: (n: number) => Uint8Array,
): { public: Public; sensitive: Sensitive } {
  const origin = isSet(template.objectAttributes, OA.sensitiveDataOrigin);
  const nameSize = digestSize(template.nameAlg);
  const authValue = inSensitive.userAuth;
  if (authValue.length > nameSize) fail(RC.SIZE);
  switch (template.type) {
    case ALG.RSA: {
      if (inSensitive.data.length > 0) fail(RC.SIZE);
      const { n, p } = rsaGenerate(template.parameters.keyBits, template.parameters.exponent, draw);
      const seedValue = isStorageParent(template) ? draw(nameSize) : new Uint8Array(0);
      return {
        public: { ...template, unique: n },
        sensitive: { sensitiveType: ALG.RSA, authValue, seedValue, sensitive: p },
      };
    }
    case ALG.ECC: {
      if (inSensitive.data.length > 0) fail(RC.SIZE);
      const { curveID } = template.parameters;
      const size = curveBytes(curveID);
      const d = eccScalar(curveID, draw(size + 8));
      const seedValue = isStorageParent(template) ? draw(nameSize) : new Uint8Array(0);
      return {
        public: { ...template, unique: eccPublic(curveID, d) },
        sensitive: { sensitiveType: ALG.ECC, authValue, seedValue, sensitive: d },
      };
    }
    case ALG.KEYEDHASH:
    case ALG.SYMCIPHER: {
      let secret: Uint8Array;
      if (template.type === ALG.SYMCIPHER) {
        const keyBytes = template.parameters.symmetric.keyBits / 8;
        if (origin) {
          if (inSensitive.data.length > 0) fail(RC.SIZE);
          secret = draw(keyBytes);
        } else {
          if (inSensitive.data.length !== keyBytes) fail(RC.SIZE);
          secret = inSensitive.data;
        }
      } else if (origin) {
        if (inSensitive.data.length > 0) fail(RC.SIZE);
        secret = draw(nameSize);
      } else {
        secret = inSensitive.data;
      }
      const seedValue = draw(nameSize);
      return {
        public: { ...template, unique: hash(template.nameAlg, seedValue, secret) } as Public,
        sensitive: { sensitiveType: template.type, authValue, seedValue, sensitive: secret },
      };
    }
  }
}

/**
 * The deterministic byte stream a primary object is drawn from: KDFa over the hierarchy seed with
 * the template's digest and the caller's sensitive data as context (Part 1, 27.1 "Primary
 * Objects": any deterministic function of these inputs gives the TPM's guarantee).
 */
export function primaryStream(
  seed: Uint8Array,
  template: Public,
  data: Uint8Array,
): (n: number) => Uint8Array {
  const context = concat(
    hash(
      template.nameAlg,
      marshal((w) => writePublic(w, template)),
    ),
    data,
  );
  let counter = 0;
  return (n) =>
    kdfa(template.nameAlg, seed, 'Primary Object Creation', context, u32be(counter++), n * 8);
}

/** Checks that a loaded public and sensitive area belong together (Part 1, 27.4 and 27.5). */
export function checkPair(pub: Public, s: Sensitive): void {
  if (s.sensitiveType !== pub.type) fail(RC.TYPE);
  if (s.authValue.length > digestSize(pub.nameAlg)) fail(RC.SIZE);
  switch (pub.type) {
    case ALG.RSA: {
      const key = rsaPrivateKey(pub.unique, pub.parameters.exponent, s.sensitive);
      if (!equalBytes(key.n, pub.unique)) fail(RC.BINDING);
      return;
    }
    case ALG.ECC: {
      const size = curveBytes(pub.parameters.curveID);
      if (s.sensitive.length !== size) fail(RC.KEY_SIZE);
      const q = eccPublic(pub.parameters.curveID, s.sensitive);
      if (!equalBytes(q.x, pub.unique.x) || !equalBytes(q.y, pub.unique.y)) fail(RC.BINDING);
      return;
    }
    case ALG.KEYEDHASH:
    case ALG.SYMCIPHER:
      if (!equalBytes(hash(pub.nameAlg, s.seedValue, s.sensitive), pub.unique)) fail(RC.BINDING);
      return;
  }
}

// ---- protected storage (Part 1, section 23) -----------------------------------------------------

interface ProtectionKeys {
  symKey: Uint8Array;
  hmacKey: Uint8Array;
  hashAlg: number;
}

function protectionKeys(parent: TpmObject, childName: Uint8Array): ProtectionKeys {
  const ppub = parent.public;
  if (ppub.type === ALG.KEYEDHASH) fail(RC.TYPE);
  const sym = ppub.parameters.symmetric;
  if (sym.algorithm !== ALG.AES) fail(RC.SYMMETRIC);
  const seed = parent.sensitive.seedValue;
  const hashAlg = ppub.nameAlg;
  return {
    symKey: kdfa(hashAlg, seed, 'STORAGE', childName, new Uint8Array(0), sym.keyBits),
    hmacKey: kdfa(
      hashAlg,
      seed,
      'INTEGRITY',
      new Uint8Array(0),
      new Uint8Array(0),
      digestSize(hashAlg) * 8,
    ),
    hashAlg,
  };
}

/** TPM2B_PRIVATE contents: integrity 2B || iv 2B || AES-CFB(2B-sized TPMT_SENSITIVE). */
export function wrapPrivate(
  parent: TpmObject,
  name: Uint8Array,
  sensitive: Sensitive,
  iv: Uint8Array,
): Uint8Array {
  const { symKey, hmacKey, hashAlg } = protectionKeys(parent, name);
  const plain = marshal((w) => w.sized((i) => writeSensitive(i, sensitive)));
  const encrypted = aesCfbEncrypt(symKey, iv, plain);
  const ivAndData = marshal((w) => w.b2(iv).bytes(encrypted));
  const integrity = hmac(hashAlg, hmacKey, ivAndData, name);
  return marshal((w) => w.b2(integrity).bytes(ivAndData));
}

/** Opens a private blob for the public whose Name is `name`; TPM_RC_INTEGRITY when it was altered. */
export function unwrapPrivate(parent: TpmObject, name: Uint8Array, blob: Uint8Array): Sensitive {
  const { symKey, hmacKey, hashAlg } = protectionKeys(parent, name);
  try {
    const r = new Reader(blob);
    const integrity = r.b2(64);
    const rest = blob.subarray(r.offset);
    if (!equalBytes(integrity, hmac(hashAlg, hmacKey, rest, name))) fail(RC.INTEGRITY);
    const iv = r.b2(16);
    if (iv.length !== 16) fail(RC.VALUE);
    const plain = aesCfbDecrypt(symKey, iv, blob.subarray(r.offset));
    const inner = new Reader(plain);
    const s = inner.sized(readSensitive);
    inner.done();
    return s ?? fail(RC.SIZE);
  } catch (e) {
    if (e instanceof TpmError && e.rc === RC.INTEGRITY) throw e;
    if (e instanceof TpmError) return fail(RC.SIZE);
    throw e;
  }
}
