// Session commands (Part 3, section 11) and the policy commands (section 23) this TPM implements:
// PolicyPCR, PolicyPassword, PolicyAuthValue, PolicyCommandCode, PolicySecret, PolicyGetDigest,
// PolicyRestart.

import { ALG, CC, LIMITS, OA, RC, RH, SE, ST } from '../constants.js';
import { ecdhZ, rsaDecrypt } from '../asym.js';
import { digestSize, equalBytes, hash, kdfe, u32be } from '../crypto.js';
import { fail, numbered, rcHandle, rcParam } from '../errors.js';
import type { Entity } from '../machine.js';
import { b2, marshal, params, Reader, u8, u32 } from '../marshal.js';
import { rsaKeyOf } from '../objects.js';
import { resetPolicy, sessionKey, type Session } from '../session.js';
import {
  readEccPoint2B,
  readHashAlg,
  readPcrSelectionList,
  readSymDef,
  writePcrSelectionList,
  type PcrSelection,
  type SymDef,
} from '../types.js';
import { command, type CommandDef } from '../command.js';

type StartParams = [Uint8Array, Uint8Array, number, SymDef, number];

/** Recovers the salt from encryptedSalt with the tpmKey (Part 1, 19.6.13 and annex C.6/C.7). */
function decryptSalt(tpmKey: Entity, encryptedSalt: Uint8Array): Uint8Array {
  if (tpmKey.kind !== 'object') {
    if (encryptedSalt.length !== 0) fail(rcParam(RC.VALUE, 2));
    return new Uint8Array(0);
  }
  const obj = tpmKey.obj;
  const pub = obj.public;
  if ((pub.objectAttributes & OA.decrypt) === 0 || obj.sensitive.sensitive.length === 0)
    fail(rcHandle(RC.KEY, 1));
  const nameAlg = pub.nameAlg;
  let salt: Uint8Array;
  if (pub.type === ALG.RSA) {
    salt = numbered(
      () =>
        rsaDecrypt(
          rsaKeyOf(obj),
          ALG.OAEP,
          nameAlg,
          encryptedSalt,
          new TextEncoder().encode('SECRET\0'),
        ),
      () => rcParam(RC.VALUE, 2),
    );
  } else if (pub.type === ALG.ECC) {
    const q = numbered(
      () => {
        const r = new Reader(marshal((w) => w.b2(encryptedSalt)));
        return readEccPoint2B(r);
      },
      () => rcParam(RC.VALUE, 2),
    );
    const z = numbered(
      () => ecdhZ(pub.parameters.curveID, obj.sensitive.sensitive, q),
      () => rcParam(RC.ECC_POINT, 2),
    );
    salt = kdfe(nameAlg, z, 'SECRET', q.x, pub.unique.x, digestSize(nameAlg) * 8);
  } else {
    return fail(rcHandle(RC.KEY, 1));
  }
  if (salt.length > digestSize(nameAlg)) fail(rcParam(RC.VALUE, 2));
  return salt;
}

function policySession(e: Entity | undefined): Session {
  if (e === undefined || e.kind !== 'session') return fail(rcHandle(RC.HANDLE, 1));
  return e.session;
}

/** TPML_DIGEST as PolicyOR takes it: two to eight digests (Part 2, 10.9.2), else TPM_RC_SIZE. */
function readPolicyOrList(r: Reader): Uint8Array[] {
  const count = r.u32();
  if (count < 2 || count > 8) fail(RC.SIZE);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(r.b2(LIMITS.MAX_DIGEST));
  return out;
}

/** policyDigest ← H(policyDigest || parts...) */
function extendPolicy(s: Session, ...parts: Uint8Array[]): void {
  s.policyDigest = hash(s.authHash, s.policyDigest, ...parts);
}

export const sessionCommands: CommandDef[] = [
  command({
    cc: CC.StartAuthSession,
    name: 'StartAuthSession',
    handles: [{ kind: 'objectOrNull' }, { kind: 'entityOrNull' }],
    returnsHandle: true,
    decrypt: true,
    encrypt: true,
    parse: (r) =>
      params<StartParams>(
        r,
        b2(LIMITS.MAX_DIGEST),
        b2(512),
        u8,
        (x: Reader) => readSymDef(x, true),
        (x: Reader) => readHashAlg(x, false),
      ),
    run(m, [tpmKey, bind], [nonceCaller, encryptedSalt, type, symmetric, authHash], out, ctx) {
      if (nonceCaller.length < 16) fail(rcParam(RC.SIZE, 1));
      if (type !== SE.HMAC && type !== SE.POLICY && type !== SE.TRIAL) fail(rcParam(RC.VALUE, 3));
      const salt = decryptSalt(tpmKey!, encryptedSalt);
      const handle = m.allocateSessionHandle(type !== SE.HMAC);
      const nonceTPM = m.random(nonceCaller.length);
      const bound = bind!.kind !== 'permanent' || bind!.handle !== RH.NULL;
      const bindAuth = bound ? m.authValue(bind!) : new Uint8Array(0);
      const s: Session = {
        handle,
        type,
        authHash,
        nonceTPM,
        sessionKey: sessionKey(
          authHash,
          bound || tpmKey!.kind === 'object',
          bindAuth,
          salt,
          nonceTPM,
          nonceCaller,
        ),
        symmetric,
        bind: bound && type === SE.HMAC ? { name: m.name(bind!), auth: bindAuth } : undefined,
        policyDigest: new Uint8Array(digestSize(authHash)),
        commandCode: undefined,
        pcrCounter: undefined,
        isAuthValueNeeded: false,
        isPasswordNeeded: false,
        saved: false,
        savedSequence: 0n,
      };
      m.sessions.set(handle, s);
      ctx.returnHandle = handle;
      out.b2(nonceTPM);
    },
  }),
  command({
    cc: CC.PolicyPCR,
    name: 'PolicyPCR',
    handles: [{ kind: 'policySession' }],
    decrypt: true,
    parse: (r) =>
      params<[Uint8Array, PcrSelection[]]>(r, b2(LIMITS.MAX_DIGEST), readPcrSelectionList),
    run(m, [e], [pcrDigest, pcrs]) {
      const s = policySession(e);
      const current = m.pcrs.digest(s.authHash, pcrs);
      let digest = current;
      if (s.type === SE.TRIAL) {
        if (pcrDigest.length > 0) digest = pcrDigest;
      } else if (pcrDigest.length > 0 && !equalBytes(pcrDigest, current)) {
        fail(rcParam(RC.VALUE, 1));
      }
      extendPolicy(
        s,
        u32be(CC.PolicyPCR),
        marshal((w) => writePcrSelectionList(w, pcrs)),
        digest,
      );
      if (s.type !== SE.TRIAL) s.pcrCounter = m.pcrs.updateCounter;
    },
  }),
  command({
    cc: CC.PolicyPassword,
    name: 'PolicyPassword',
    handles: [{ kind: 'policySession' }],
    parse: (r) => params<[]>(r),
    run(_m, [e]) {
      const s = policySession(e);
      // Same digest as PolicyAuthValue (Part 3, 23.18).
      extendPolicy(s, u32be(CC.PolicyAuthValue));
      s.isPasswordNeeded = true;
      s.isAuthValueNeeded = false;
    },
  }),
  command({
    cc: CC.PolicyAuthValue,
    name: 'PolicyAuthValue',
    handles: [{ kind: 'policySession' }],
    parse: (r) => params<[]>(r),
    run(_m, [e]) {
      const s = policySession(e);
      extendPolicy(s, u32be(CC.PolicyAuthValue));
      s.isAuthValueNeeded = true;
      s.isPasswordNeeded = false;
    },
  }),
  command({
    cc: CC.PolicyCommandCode,
    name: 'PolicyCommandCode',
    handles: [{ kind: 'policySession' }],
    parse: (r) => params<[number]>(r, u32),
    run(_m, [e], [code]) {
      const s = policySession(e);
      if (s.commandCode !== undefined && s.commandCode !== code) fail(rcParam(RC.VALUE, 1));
      extendPolicy(s, u32be(CC.PolicyCommandCode), u32be(code));
      s.commandCode = code;
    },
  }),
  command({
    cc: CC.PolicySecret,
    name: 'PolicySecret',
    handles: [{ kind: 'entity', auth: 'USER' }, { kind: 'policySession' }],
    decrypt: true,
    encrypt: true,
    parse: (r) =>
      params<[Uint8Array, Uint8Array, Uint8Array, number]>(
        r,
        b2(LIMITS.MAX_DIGEST),
        b2(LIMITS.MAX_DIGEST),
        b2(LIMITS.MAX_DIGEST),
        u32,
      ),
    run(m, [auth, e], [nonceTPM, cpHashA, policyRef, expiration], out) {
      const s = policySession(e);
      if (nonceTPM.length > 0 && !equalBytes(nonceTPM, s.nonceTPM)) fail(rcParam(RC.NONCE, 1));
      if (cpHashA.length > 0 && cpHashA.length !== digestSize(s.authHash))
        fail(rcParam(RC.SIZE, 2));
      if (expiration !== 0 && (expiration | 0) > 0 && nonceTPM.length === 0)
        fail(rcParam(RC.EXPIRED, 4));
      const inner = hash(s.authHash, s.policyDigest, u32be(CC.PolicySecret), m.name(auth!));
      s.policyDigest = hash(s.authHash, inner, policyRef);
      // No timeout and a NULL ticket: the authorization is not exported (expiration 0).
      out.b2(new Uint8Array(0)).u16(ST.AUTH_SECRET).u32(RH.NULL).b2(new Uint8Array(0));
    },
  }),
  command({
    cc: CC.PolicyOR,
    name: 'PolicyOR',
    handles: [{ kind: 'policySession' }],
    parse: (r) => params<[Uint8Array[]]>(r, readPolicyOrList),
    run(_m, [e], [hashList]) {
      const s = policySession(e);
      // A real session must already satisfy one branch; a trial session takes the list as given
      // (Part 3, 23.6).
      if (s.type !== SE.TRIAL && !hashList.some((d) => equalBytes(d, s.policyDigest)))
        fail(rcParam(RC.VALUE, 1));
      s.policyDigest = hash(
        s.authHash,
        new Uint8Array(digestSize(s.authHash)),
        u32be(CC.PolicyOR),
        ...hashList,
      );
    },
  }),
  command({
    cc: CC.PolicyGetDigest,
    name: 'PolicyGetDigest',
    handles: [{ kind: 'policySession' }],
    encrypt: true,
    parse: (r) => params<[]>(r),
    run(_m, [e], _p, out) {
      out.b2(policySession(e).policyDigest);
    },
  }),
  command({
    cc: CC.PolicyRestart,
    name: 'PolicyRestart',
    handles: [{ kind: 'policySession' }],
    parse: (r) => params<[]>(r),
    run(_m, [e]) {
      resetPolicy(policySession(e));
    },
  }),
];
