// The TPM: command bytes in, response bytes out. Command processing follows Part 3, section 5:
// header, handle area, authorization area, authorization checks, parameter decryption, parameter
// unmarshalling, action, then the response with parameter encryption and response HMACs. Any
// failure is a 10-byte error response; state changes only when a command succeeds (and, by
// design, when a failed authorization counts toward dictionary-attack lockout).

import { LIMITS, RC, RH, SA, SE, ST } from './constants.js';
import { concat, equalBytes, trimAuth } from './crypto.js';
import { fail, rcHandle, rcParam, rcSession, TpmError } from './errors.js';
import type { CommandDef, ExecContext, Handles } from './command.js';
import { resolveHandle } from './command.js';
import { COMMANDS } from './commands/index.js';
import { TpmMachine, type Entity, type TpmOptions } from './machine.js';
import { Reader, Writer } from './marshal.js';
import {
  cpHash,
  isPolicy,
  paramCrypt,
  resetPolicy,
  rpHash,
  sessionHmac,
  type Session,
} from './session.js';
import type { PersistentState } from './state.js';
import { OA } from './constants.js';

interface CommandSession {
  handle: number;
  nonceCaller: Uint8Array;
  attrs: number;
  hmac: Uint8Array;
  /** Undefined for the password session. */
  session: Session | undefined;
  /** The entity this session authorizes, if any, and how. */
  entity: Entity | undefined;
  /** Whether the entity's authValue is part of the HMAC key. */
  includeAuth: boolean;
}

function errorResponse(rc: number): Uint8Array {
  return new Writer().u16(ST.NO_SESSIONS).u32(10).u32(rc).finish();
}

const EMPTY = new Uint8Array(0);

/** Which handles of a command need authorization (by index), computed once per command. */
const authIndexCache = new WeakMap<CommandDef, readonly number[]>();
function authIndicesOf(def: CommandDef): readonly number[] {
  let v = authIndexCache.get(def);
  if (v === undefined) {
    v = def.handles.flatMap((s, i) => (s.auth === undefined ? [] : [i]));
    authIndexCache.set(def, v);
  }
  return v;
}

export class Tpm {
  readonly machine: TpmMachine;
  /** The action's output and the response, reused from command to command (never reentered). */
  private readonly out = new Writer();
  private readonly response = new Writer();
  /** Called with an unexpected exception before it is answered as TPM_RC_FAILURE. */
  onInternalError: ((e: unknown) => void) | undefined;

  constructor(options: TpmOptions = {}) {
    this.machine = new TpmMachine(options);
  }

  get state(): PersistentState {
    return this.machine.state;
  }

  /** Power on (if off): _TPM_Init; the TPM then needs Startup. */
  powerOn(): void {
    if (this.machine.powered) return;
    this.machine.powered = true;
    this.machine.init();
  }

  powerOff(): void {
    this.machine.powered = false;
    this.machine.init();
  }

  /** _TPM_Init while powered (the platform's reset). */
  reset(): void {
    if (this.machine.powered) this.machine.init();
  }

  /** True once if the persistent state changed since the last call (so the owner saves it). */
  takeDirty(): boolean {
    const d = this.machine.dirty;
    this.machine.dirty = false;
    return d;
  }

  /** Executes one command; never throws. */
  execute(command: Uint8Array, locality = 0): Uint8Array {
    try {
      return this.process(command, locality);
    } catch (e) {
      if (e instanceof TpmError) return errorResponse(e.rc);
      this.onInternalError?.(e);
      return errorResponse(RC.FAILURE);
    }
  }

  private process(cmd: Uint8Array, locality: number): Uint8Array {
    const m = this.machine;
    if (cmd.length < 10) fail(RC.COMMAND_SIZE);
    const r = new Reader(cmd);
    const tag = r.u16();
    const size = r.u32();
    const cc = r.u32();
    if (tag !== ST.NO_SESSIONS && tag !== ST.SESSIONS) fail(RC.BAD_TAG);
    if (size !== cmd.length || size > LIMITS.MAX_COMMAND_SIZE) fail(RC.COMMAND_SIZE);
    const def = COMMANDS.get(cc);
    if (!m.started && cc !== 0x144) fail(RC.INITIALIZE);
    if (def === undefined) fail(RC.COMMAND_CODE);

    // Handle area.
    const nHandles = def.handles.length;
    const entities: Entity[] = [];
    for (let i = 0; i < nHandles; i++) {
      try {
        entities.push(resolveHandle(m, def.handles[i]!.kind, r.u32(), i + 1));
      } catch (e) {
        if (e instanceof TpmError) throw new TpmError(rcHandle(e.rc, i + 1));
        throw e;
      }
    }
    const authIndices = authIndicesOf(def);

    // Authorization area.
    const sessions: CommandSession[] = [];
    let passwordOnly = true;
    if (tag === ST.SESSIONS) {
      if (def.noSessions) fail(RC.AUTH_CONTEXT);
      if (r.remaining < 4) fail(RC.AUTHSIZE);
      const authSize = r.u32();
      if (authSize < 9 || authSize > r.remaining) fail(RC.AUTHSIZE);
      const sr = new Reader(cmd, r.offset, r.offset + authSize);
      while (sr.remaining > 0) {
        const n = sessions.length + 1;
        if (n > 3) fail(RC.AUTH_CONTEXT);
        let cs: CommandSession;
        try {
          cs = this.readSession(sr, n, authIndices.length);
        } catch (e) {
          if (e instanceof TpmError) throw new TpmError(rcSession(e.rc, n));
          throw e;
        }
        if (cs.session !== undefined) passwordOnly = false;
        sessions.push(cs);
      }
      r.bytes(authSize);
    } else if (authIndices.length > 0) {
      fail(RC.AUTH_MISSING);
    }
    if (sessions.length < authIndices.length) fail(RC.AUTH_MISSING);
    const rawParams = cmd.subarray(r.offset);

    // Which sessions decrypt and encrypt (at most one each, only for commands whose first
    // parameter is a TPM2B).
    const decIdx = this.cryptSession(sessions, SA.decrypt, def.decrypt === true);
    const encIdx = this.cryptSession(sessions, SA.encrypt, def.encrypt === true);

    // Authorization checks. Names enter only HMACs (cpHash), so password sessions skip them.
    const names: Uint8Array[] = passwordOnly ? [] : entities.map((e) => m.name(e));
    const authKinds: ExecContext['authKinds'][number][] = [];
    let extraNonces: Uint8Array = EMPTY;
    if (decIdx > 0) extraNonces = concat(extraNonces, sessions[decIdx]!.session!.nonceTPM);
    if (encIdx > 0 && encIdx !== decIdx)
      extraNonces = concat(extraNonces, sessions[encIdx]!.session!.nonceTPM);
    for (let i = 0; i < sessions.length; i++) {
      const cs = sessions[i]!;
      const handleIndex = authIndices[i];
      const role = handleIndex === undefined ? undefined : def.handles[handleIndex]!.auth;
      cs.entity = handleIndex === undefined ? undefined : entities[handleIndex];
      try {
        const kind = this.authorize(def, cs, role, names, rawParams, i === 0 ? extraNonces : EMPTY);
        if (handleIndex !== undefined) authKinds.push(kind);
      } catch (e) {
        if (e instanceof TpmError) throw new TpmError(rcSession(e.rc, i + 1));
        throw e;
      }
    }

    // Parameter decryption: the bytes of the first parameter, its size stays in the clear.
    let params = rawParams;
    if (decIdx >= 0) {
      const cs = sessions[decIdx]!;
      if (rawParams.length < 2) fail(rcParam(RC.INSUFFICIENT, 1));
      const n = (rawParams[0]! << 8) | rawParams[1]!;
      if (rawParams.length < 2 + n) fail(rcParam(RC.INSUFFICIENT, 1));
      const key = this.cryptKey(cs);
      const plain = paramCrypt(
        cs.session!,
        key,
        cs.nonceCaller,
        cs.session!.nonceTPM,
        rawParams.subarray(2, 2 + n),
        false,
      );
      params = concat(rawParams.subarray(0, 2), plain, rawParams.subarray(2 + n));
    }
    const parsed = def.parse(new Reader(params));

    // The action.
    const ctx: ExecContext = { cc, locality, authKinds };
    const out = this.out.reset();
    def.run(m, entities as unknown as Handles, parsed, out, ctx);
    let rsp = out.finish();

    // New nonces, response encryption, response HMACs.
    const newNonces = passwordOnly
      ? []
      : sessions.map((cs) =>
          cs.session === undefined ? EMPTY : m.random(cs.session.nonceTPM.length),
        );
    if (encIdx >= 0 && rsp.length >= 2) {
      const cs = sessions[encIdx]!;
      const n = (rsp[0]! << 8) | rsp[1]!;
      const enc = paramCrypt(
        cs.session!,
        this.cryptKey(cs),
        newNonces[encIdx]!,
        cs.nonceCaller,
        rsp.subarray(2, 2 + n),
        true,
      );
      rsp = concat(rsp.subarray(0, 2), enc, rsp.subarray(2 + n));
    }

    const w = this.response.reset();
    w.u16(tag).u32(0).u32(RC.SUCCESS);
    if (def.returnsHandle) w.u32(ctx.returnHandle ?? fail(RC.FAILURE));
    if (tag === ST.SESSIONS) {
      w.u32(rsp.length).bytes(rsp);
      const hashes = new Map<number, Uint8Array>();
      for (let i = 0; i < sessions.length; i++) {
        const cs = sessions[i]!;
        const s = cs.session;
        if (s === undefined) {
          // Password session: empty nonce, continueSession, empty HMAC.
          w.u16(0).u8(SA.continueSession).u16(0);
          continue;
        }
        let rpH = hashes.get(s.authHash);
        if (rpH === undefined) {
          rpH = rpHash(s.authHash, cc, rsp);
          hashes.set(s.authHash, rpH);
        }
        let responseHmac: Uint8Array;
        if (isPolicy(s) && s.isPasswordNeeded && cs.entity !== undefined) {
          responseHmac = new Uint8Array(0);
        } else {
          const auth =
            cs.includeAuth && cs.entity !== undefined
              ? this.currentAuth(def, cs.entity)
              : new Uint8Array(0);
          responseHmac = sessionHmac(
            s,
            concat(s.sessionKey, auth),
            rpH,
            newNonces[i]!,
            cs.nonceCaller,
            new Uint8Array(0),
            cs.attrs,
          );
        }
        w.b2(newNonces[i]!).u8(cs.attrs).b2(responseHmac);
      }
    } else {
      w.bytes(rsp);
    }

    // Session bookkeeping after success.
    if (!passwordOnly) {
      for (let i = 0; i < sessions.length; i++) {
        const cs = sessions[i]!;
        const s = cs.session;
        if (s === undefined || !m.sessions.has(s.handle)) continue;
        s.nonceTPM = newNonces[i]!;
        if (isPolicy(s) && cs.entity !== undefined) resetPolicy(s);
        if ((cs.attrs & SA.continueSession) === 0) m.sessions.delete(s.handle);
      }
    }

    w.patchU32(2, w.length);
    return w.finish();
  }

  private readSession(r: Reader, n: number, authCount: number): CommandSession {
    const m = this.machine;
    const handle = r.u32();
    const nonceCaller = r.b2(LIMITS.MAX_DIGEST);
    const attrs = r.u8();
    const hmacField = r.b2(LIMITS.MAX_DIGEST);
    if ((attrs & SA.reserved) !== 0) fail(RC.ATTRIBUTES);
    if ((attrs & (SA.audit | SA.auditExclusive | SA.auditReset)) !== 0) fail(RC.ATTRIBUTES);
    const cs: CommandSession = {
      handle,
      nonceCaller,
      attrs,
      hmac: hmacField,
      session: undefined,
      entity: undefined,
      includeAuth: false,
    };
    if (handle === RH.PW) {
      if (nonceCaller.length !== 0) fail(RC.NONCE);
      if ((attrs & (SA.decrypt | SA.encrypt)) !== 0) fail(RC.ATTRIBUTES);
      if (n > authCount) fail(RC.AUTH_CONTEXT);
      return cs;
    }
    const type = handle >>> 24;
    if (type !== 0x02 && type !== 0x03) fail(RC.HANDLE);
    const s = m.loadedSession(handle) ?? fail(RC.REFERENCE_S0 + n - 1);
    if (n > authCount && (attrs & (SA.decrypt | SA.encrypt)) === 0) fail(RC.ATTRIBUTES);
    cs.session = s;
    return cs;
  }

  private cryptSession(sessions: CommandSession[], bit: number, allowed: boolean): number {
    let idx = -1;
    sessions.forEach((cs, i) => {
      if ((cs.attrs & bit) === 0) return;
      if (!allowed || idx >= 0) fail(rcSession(RC.ATTRIBUTES, i + 1));
      if (cs.session!.symmetric.algorithm === 0x0010) fail(rcSession(RC.SYMMETRIC, i + 1));
      idx = i;
    });
    return idx;
  }

  /** Parameter-encryption key: sessionKey || authValue of the entity it authorizes (21.2). */
  private cryptKey(cs: CommandSession): Uint8Array {
    const auth = cs.entity === undefined ? new Uint8Array(0) : this.machine.authValue(cs.entity);
    return concat(cs.session!.sessionKey, auth);
  }

  /** The entity's authValue for the response HMAC: after the command for HierarchyChangeAuth. */
  private currentAuth(def: CommandDef, e: Entity): Uint8Array {
    const m = this.machine;
    if (def.authAfter) {
      if (e.kind === 'nv') {
        const nv = m.nvIndex(e.handle);
        return nv === undefined ? new Uint8Array(0) : trimAuth(nv.authValue);
      }
      return m.authValue(e);
    }
    return m.authValue(e);
  }

  /** Checks one session's authorization (Part 1, 19.6 and 19.7). */
  private authorize(
    def: CommandDef,
    cs: CommandSession,
    role: 'USER' | 'ADMIN' | 'DUP' | undefined,
    names: Uint8Array[],
    rawParams: Uint8Array,
    extraNonces: Uint8Array,
  ): 'password' | 'hmac' | 'policy' {
    const m = this.machine;
    const e = cs.entity;
    const s = cs.session;
    const policyRequired =
      e !== undefined && e.kind === 'object'
        ? role === 'USER'
          ? (e.obj.public.objectAttributes & OA.userWithAuth) === 0
          : (e.obj.public.objectAttributes & OA.adminWithPolicy) !== 0
        : false;
    if (s === undefined) {
      // Password session (Part 1, 19.6.3).
      const entity = e ?? fail(RC.AUTH_CONTEXT);
      if (policyRequired) fail(RC.AUTH_UNAVAILABLE);
      m.checkLockout(entity);
      if (!equalBytes(trimAuth(cs.hmac), m.authValue(entity))) fail(m.authFailure(entity));
      return 'password';
    }
    const expectHmac = (key: Uint8Array): boolean => {
      if (key.length === 0 && cs.hmac.length === 0) return true;
      const cp = cpHash(s.authHash, def.cc, names, rawParams);
      return equalBytes(
        cs.hmac,
        sessionHmac(s, key, cp, cs.nonceCaller, s.nonceTPM, extraNonces, cs.attrs),
      );
    };
    if (e === undefined) {
      // A session used only for parameter encryption: its HMAC is keyed by sessionKey alone.
      if (!expectHmac(s.sessionKey)) fail(RC.AUTH_FAIL);
      return 'hmac';
    }
    if (s.type === SE.HMAC) {
      if (policyRequired) fail(RC.AUTH_UNAVAILABLE);
      m.checkLockout(e);
      const bound =
        s.bind !== undefined &&
        equalBytes(s.bind.name, m.name(e)) &&
        equalBytes(s.bind.auth, m.authValue(e));
      cs.includeAuth = !bound;
      if (!expectHmac(concat(s.sessionKey, bound ? new Uint8Array(0) : m.authValue(e))))
        fail(m.authFailure(e));
      return 'hmac';
    }
    // Policy session (Part 1, 19.7).
    if (s.type === SE.TRIAL) fail(RC.AUTH_TYPE);
    const policy = m.authPolicy(e);
    if (policy.digest.length === 0 || !equalBytes(policy.digest, s.policyDigest))
      fail(RC.POLICY_FAIL);
    if (s.commandCode !== undefined && s.commandCode !== def.cc) fail(RC.POLICY_CC);
    if (s.pcrCounter !== undefined && s.pcrCounter !== m.pcrs.updateCounter) fail(RC.PCR_CHANGED);
    if (s.isPasswordNeeded) {
      m.checkLockout(e);
      if (!equalBytes(trimAuth(cs.hmac), m.authValue(e))) fail(m.authFailure(e));
      return 'policy';
    }
    if (s.isAuthValueNeeded) m.checkLockout(e);
    cs.includeAuth = s.isAuthValueNeeded;
    if (
      !expectHmac(concat(s.sessionKey, s.isAuthValueNeeded ? m.authValue(e) : new Uint8Array(0)))
    ) {
      fail(s.isAuthValueNeeded ? m.authFailure(e) : RC.AUTH_FAIL);
    }
    return 'policy';
  }
}
