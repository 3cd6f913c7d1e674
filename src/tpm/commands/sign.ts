// Hashing, signing and asymmetric encryption (Part 3, sections 14, 15, 18 and 20): Hash, HMAC,
// Sign, VerifySignature, Quote, RSA_Encrypt, RSA_Decrypt.

import { ALG, CC, LIMITS, OA, RC, RH, ST, TPM_GENERATED_VALUE } from '../constants.js';
import { ecdsaSign, ecdsaVerify, rsaDecrypt, rsaEncrypt, rsaSign, rsaVerify } from '../asym.js';
import { digestSize, equalBytes, hash, hmac } from '../crypto.js';
import { fail, numbered, rcHandle, rcParam } from '../errors.js';
import type { Entity, TpmMachine } from '../machine.js';
import { b2, marshal, params, type Reader } from '../marshal.js';
import { rsaKeyOf, type TpmObject } from '../objects.js';
import {
  readHashAlg,
  readPcrSelectionList,
  readRsaDecryptScheme,
  readSigScheme,
  readSignature,
  readTicket,
  writePcrSelectionList,
  writeSignature,
  writeTicket,
  type PcrSelection,
  type Scheme,
  type Signature,
  type Ticket,
} from '../types.js';
import { command, type CommandDef } from '../command.js';
import { PCR_BANKS } from '../pcr.js';

const readHierarchyParam = (r: Reader): number => {
  const h = r.u32();
  if (![RH.OWNER, RH.ENDORSEMENT, RH.PLATFORM, RH.NULL].includes(h as 0x40000001)) fail(RC.VALUE);
  return h;
};

function objectOf(e: Entity | undefined): TpmObject {
  if (e === undefined || e.kind !== 'object') return fail(rcHandle(RC.HANDLE, 1));
  return e.obj;
}

/** The signing scheme: the key's own if it has one, else the caller's (Part 3, 20.2). */
function signingScheme(key: TpmObject, inScheme: Scheme, param: number): Scheme {
  const pub = key.public;
  if ((pub.objectAttributes & OA.sign) === 0) fail(rcHandle(RC.KEY, 1));
  if (pub.type !== ALG.RSA && pub.type !== ALG.ECC) fail(rcHandle(RC.KEY, 1));
  const keyScheme = pub.parameters.scheme;
  let scheme: Scheme;
  if (keyScheme.scheme === ALG.NULL) {
    if (inScheme.scheme === ALG.NULL) fail(rcParam(RC.SCHEME, param));
    scheme = inScheme;
  } else {
    if (
      inScheme.scheme !== ALG.NULL &&
      (inScheme.scheme !== keyScheme.scheme || inScheme.hashAlg !== keyScheme.hashAlg)
    ) {
      fail(rcParam(RC.SCHEME, param));
    }
    scheme = keyScheme;
  }
  const ok =
    pub.type === ALG.RSA
      ? scheme.scheme === ALG.RSASSA || scheme.scheme === ALG.RSAPSS
      : scheme.scheme === ALG.ECDSA;
  if (!ok) fail(rcParam(RC.SCHEME, param));
  return scheme;
}

function sign(m: TpmMachine, key: TpmObject, scheme: Scheme, digest: Uint8Array): Signature {
  const pub = key.public;
  if (pub.type === ALG.RSA) {
    const sig = rsaSign(rsaKeyOf(key), scheme.scheme, scheme.hashAlg, digest, (n) => m.random(n));
    return { sigAlg: scheme.scheme as typeof ALG.RSASSA, hash: scheme.hashAlg, sig };
  }
  if (pub.type !== ALG.ECC) return fail(RC.KEY);
  const { r, s } = ecdsaSign(pub.parameters.curveID, key.sensitive.sensitive, digest, (n) =>
    m.random(n),
  );
  return { sigAlg: ALG.ECDSA, hash: scheme.hashAlg, r, s };
}

function verify(key: TpmObject, digest: Uint8Array, sig: Signature): boolean {
  const pub = key.public;
  if (sig.sigAlg === ALG.NULL) return false;
  if (pub.type === ALG.RSA) {
    if (sig.sigAlg !== ALG.RSASSA && sig.sigAlg !== ALG.RSAPSS) return false;
    return rsaVerify(rsaKeyOf(key), sig.sigAlg, sig.hash, digest, sig.sig);
  }
  if (pub.type === ALG.ECC) {
    if (sig.sigAlg !== ALG.ECDSA) return false;
    return ecdsaVerify(pub.parameters.curveID, pub.unique, digest, sig.r, sig.s);
  }
  return false;
}

/** A restricted signing key signs only digests the TPM hashed itself (hashcheck ticket). */
function checkHashTicket(m: TpmMachine, key: TpmObject, digest: Uint8Array, t: Ticket): void {
  if ((key.public.objectAttributes & OA.restricted) === 0) return;
  if (t.tag !== ST.HASHCHECK || t.hierarchy === RH.NULL) fail(rcParam(RC.TICKET, 3));
  if (!equalBytes(t.digest, m.ticketDigest(ST.HASHCHECK, t.hierarchy, digest)))
    fail(rcParam(RC.TICKET, 3));
}

export const signCommands: CommandDef[] = [
  command({
    cc: CC.Hash,
    name: 'Hash',
    handles: [],
    decrypt: true,
    encrypt: true,
    parse: (r) =>
      params<[Uint8Array, number, number]>(
        r,
        b2(LIMITS.MAX_BUFFER),
        (x) => readHashAlg(x, false),
        readHierarchyParam,
      ),
    run(m, _h, [data, alg, hierarchy], out) {
      const digest = hash(alg, data);
      out.b2(digest);
      // Data that could pass for a TPM-generated structure gets a NULL ticket (Part 3, 15.4).
      const generated =
        data.length >= 4 &&
        new DataView(data.buffer, data.byteOffset).getUint32(0) === TPM_GENERATED_VALUE;
      if (hierarchy === RH.NULL || generated) {
        writeTicket(out, { tag: ST.HASHCHECK, hierarchy: RH.NULL, digest: new Uint8Array(0) });
      } else {
        writeTicket(out, {
          tag: ST.HASHCHECK,
          hierarchy,
          digest: m.ticketDigest(ST.HASHCHECK, hierarchy, digest),
        });
      }
    },
  }),
  command({
    cc: CC.HMAC,
    name: 'HMAC',
    handles: [{ kind: 'object', auth: 'USER' }],
    decrypt: true,
    encrypt: true,
    parse: (r) =>
      params<[Uint8Array, number]>(r, b2(LIMITS.MAX_BUFFER), (x) => readHashAlg(x, true)),
    run(_m, [e], [buffer, alg], out) {
      const key = objectOf(e);
      const pub = key.public;
      if (pub.type !== ALG.KEYEDHASH || (pub.objectAttributes & OA.sign) === 0)
        fail(rcHandle(RC.TYPE, 1));
      if ((pub.objectAttributes & OA.restricted) !== 0) fail(rcHandle(RC.ATTRIBUTES, 1));
      const keyScheme = pub.parameters.scheme;
      let hashAlg = alg;
      if (keyScheme.scheme === ALG.HMAC) {
        if (alg !== ALG.NULL && alg !== keyScheme.hashAlg) fail(rcParam(RC.VALUE, 2));
        hashAlg = keyScheme.hashAlg;
      } else if (alg === ALG.NULL) {
        fail(rcParam(RC.VALUE, 2));
      }
      out.b2(hmac(hashAlg, key.sensitive.sensitive, buffer));
    },
  }),
  command({
    cc: CC.Sign,
    name: 'Sign',
    handles: [{ kind: 'object', auth: 'USER' }],
    decrypt: true,
    parse: (r) =>
      params<[Uint8Array, Scheme, Ticket]>(r, b2(LIMITS.MAX_DIGEST), readSigScheme, readTicket),
    run(m, [e], [digest, inScheme, validation], out) {
      const key = objectOf(e);
      const scheme = signingScheme(key, inScheme, 2);
      if (digest.length !== digestSize(scheme.hashAlg)) fail(rcParam(RC.SIZE, 1));
      checkHashTicket(m, key, digest, validation);
      writeSignature(out, sign(m, key, scheme, digest));
    },
  }),
  command({
    cc: CC.VerifySignature,
    name: 'VerifySignature',
    handles: [{ kind: 'object' }],
    decrypt: true,
    parse: (r) => params<[Uint8Array, Signature]>(r, b2(LIMITS.MAX_DIGEST), readSignature),
    run(m, [e], [digest, signature], out) {
      const key = objectOf(e);
      if ((key.public.objectAttributes & OA.sign) === 0) fail(rcHandle(RC.ATTRIBUTES, 1));
      if (
        !numbered(
          () => verify(key, digest, signature),
          () => rcParam(RC.SIGNATURE, 2),
        )
      ) {
        fail(rcParam(RC.SIGNATURE, 2));
      }
      const h = key.hierarchy;
      writeTicket(out, {
        tag: ST.VERIFIED,
        hierarchy: h,
        digest:
          h === RH.NULL ? new Uint8Array(0) : m.ticketDigest(ST.VERIFIED, h, digest, key.name),
      });
    },
  }),
  command({
    cc: CC.Quote,
    name: 'Quote',
    handles: [{ kind: 'object', auth: 'USER' }],
    decrypt: true,
    encrypt: true,
    parse: (r) =>
      params<[Uint8Array, Scheme, PcrSelection[]]>(
        r,
        b2(LIMITS.MAX_DIGEST),
        readSigScheme,
        readPcrSelectionList,
      ),
    run(m, [e], [qualifyingData, inScheme, pcrSelect], out) {
      const key = objectOf(e);
      const scheme = signingScheme(key, inScheme, 2);
      for (const s of pcrSelect) if (!PCR_BANKS.includes(s.hash)) fail(rcParam(RC.PCR, 3));
      // TPMS_ATTEST with TPMS_QUOTE_INFO (Part 2, 10.12.8 and 10.12.12).
      const attest = marshal((w) => {
        w.u32(TPM_GENERATED_VALUE).u16(ST.ATTEST_QUOTE).b2(key.qualifiedName).b2(qualifyingData);
        m.writeClockInfo(w);
        w.u32(0x00010000).u32(0x00000001);
        writePcrSelectionList(w, pcrSelect);
        w.b2(m.pcrs.digest(scheme.hashAlg, pcrSelect));
      });
      out.b2(attest);
      writeSignature(out, sign(m, key, scheme, hash(scheme.hashAlg, attest)));
    },
  }),
  command({
    cc: CC.RSA_Encrypt,
    name: 'RSA_Encrypt',
    handles: [{ kind: 'object' }],
    decrypt: true,
    encrypt: true,
    parse: (r) =>
      params<[Uint8Array, Scheme, Uint8Array]>(
        r,
        b2(512),
        readRsaDecryptScheme,
        b2(LIMITS.MAX_DIGEST),
      ),
    run(_m, [e], [message, inScheme, label], out) {
      const key = objectOf(e);
      const scheme = rsaScheme(key, inScheme);
      out.b2(
        numbered(
          () => rsaEncrypt(rsaKeyOf(key), scheme.scheme, scheme.hashAlg, message, label0(label)),
          (rc) => rcParam(rc, 1),
        ),
      );
    },
  }),
  command({
    cc: CC.RSA_Decrypt,
    name: 'RSA_Decrypt',
    handles: [{ kind: 'object', auth: 'USER' }],
    decrypt: true,
    encrypt: true,
    parse: (r) =>
      params<[Uint8Array, Scheme, Uint8Array]>(
        r,
        b2(512),
        readRsaDecryptScheme,
        b2(LIMITS.MAX_DIGEST),
      ),
    run(_m, [e], [cipher, inScheme, label], out) {
      const key = objectOf(e);
      if ((key.public.objectAttributes & OA.restricted) !== 0) fail(rcHandle(RC.ATTRIBUTES, 1));
      const scheme = rsaScheme(key, inScheme);
      out.b2(
        numbered(
          () => rsaDecrypt(rsaKeyOf(key), scheme.scheme, scheme.hashAlg, cipher, label0(label)),
          (rc) => rcParam(rc, 1),
        ),
      );
    },
  }),
];

/** The label a caller gives is used with a terminating zero if it has none (Part 1, B.4). */
function label0(label: Uint8Array): Uint8Array {
  if (label.length === 0 || label[label.length - 1] === 0) return label;
  const out = new Uint8Array(label.length + 1);
  out.set(label);
  return out;
}

/** RSA decryption scheme: the key's own or the caller's (Part 3, 14.2). */
function rsaScheme(key: TpmObject, inScheme: Scheme): Scheme {
  const pub = key.public;
  if (pub.type !== ALG.RSA) fail(rcHandle(RC.KEY, 1));
  if ((pub.objectAttributes & OA.decrypt) === 0) fail(rcHandle(RC.ATTRIBUTES, 1));
  const keyScheme = pub.parameters.scheme;
  if (keyScheme.scheme === ALG.NULL) return inScheme;
  if (
    inScheme.scheme !== ALG.NULL &&
    (inScheme.scheme !== keyScheme.scheme || inScheme.hashAlg !== keyScheme.hashAlg)
  ) {
    fail(rcParam(RC.SCHEME, 2));
  }
  return keyScheme;
}
