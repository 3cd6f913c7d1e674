// The TPM's state and the rules that every command shares: entities behind handles, their Names,
// authValues and policies, hierarchy enables, dictionary-attack protection, the clock, tickets
// and saved contexts. Commands (commands/*.ts) act on a TpmMachine; dispatch.ts drives them.

import { randomBytes, type Hash, type Hmac } from 'node:crypto';
import { ALG, HT, LIMITS, NVA, OA, RC, RH } from './constants.js';
import {
  aesCfbDecrypt,
  aesCfbEncrypt,
  concat,
  digestSize,
  equalBytes,
  hash,
  hmac,
  kdfa,
  trimAuth,
  u32be,
} from './crypto.js';
import { fail, TpmError } from './errors.js';
import { marshal, Reader, type Writer } from './marshal.js';
import { makeObject, type TpmObject } from './objects.js';
import { PcrBanks } from './pcr.js';
import { readSessionState, writeSessionState, type Session } from './session.js';
import { manufacture, type NvIndex, type PersistentState } from './state.js';
import { readPublic, readSensitive, writeNvPublic, writePublic, writeSensitive } from './types.js';

export type Entity =
  | { kind: 'permanent'; handle: number }
  | { kind: 'pcr'; handle: number }
  | { kind: 'object'; handle: number; obj: TpmObject }
  | { kind: 'nv'; handle: number; nv: NvIndex }
  | { kind: 'session'; handle: number; session: Session }
  | { kind: 'sequence'; handle: number; seq: HashSequence };

/**
 * A hash, HMAC or event sequence object (Part 1, 32; Part 3, 17): a transient handle whose state
 * is the running hash. Not saved by ContextSave (the tools never save one).
 */
export interface HashSequence {
  readonly type: 'hash' | 'hmac' | 'event';
  /** The hash of a hash or HMAC sequence (ALG_NULL for an event sequence). */
  readonly hashAlg: number;
  readonly authValue: Uint8Array;
  /** Running state: one hash for a hash sequence, one per PCR bank for an event sequence. */
  readonly hashes: ReadonlyMap<number, Hash | Hmac>;
  /** The first bytes of the data (up to 4), to refuse a ticket for TPM_GENERATED_VALUE data. */
  firstBytes: Uint8Array;
}

export interface TpmOptions {
  /** The persistent state to start from; a fresh TPM is manufactured when absent. */
  state?: PersistentState;
  /** The random source (the system CSPRNG by default; seedable in tests). */
  random?: (n: number) => Uint8Array;
  /** Milliseconds of wall time, for the TPM clock and dictionary-attack recovery. */
  now?: () => number;
}

const handleBytes = (h: number): Uint8Array => u32be(h);

export class TpmMachine {
  state: PersistentState;
  readonly randomSource: (n: number) => Uint8Array;
  readonly now: () => number;
  /** The persistent state changed since the owner last saved it. */
  dirty = false;

  // ---- power and startup ----
  powered = false;
  started = false;

  // ---- per-boot state (lost at power off) ----
  pcrs = new PcrBanks();
  readonly objects = new Map<number, TpmObject>();
  /** Hash, HMAC and event sequences: transient handles sharing the objects' slots. */
  readonly sequences = new Map<number, HashSequence>();
  readonly sessions = new Map<number, Session>();
  platformAuth: Uint8Array = new Uint8Array(0);
  platformPolicy = { alg: ALG.NULL as number, digest: new Uint8Array(0) };
  phEnable = true;
  shEnable = true;
  ehEnable = true;
  phEnableNV = true;
  nullProof: Uint8Array;
  nullSeed: Uint8Array;
  /** Context sequence counter (Part 1, 30.2: contextCounter). */
  contextCounter = 1n;
  /** Last Startup's shutdown was orderly: the `safe` flag of TPMS_CLOCK_INFO. */
  safe = true;
  private clockBase: number;
  private stirPool: Uint8Array = new Uint8Array(32);
  selfTested = false;

  constructor(options: TpmOptions = {}) {
    this.randomSource = options.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.now = options.now ?? (() => Date.now());
    this.state = options.state ?? manufacture(this.randomSource);
    if (options.state === undefined) this.dirty = true;
    this.nullProof = this.randomSource(64);
    this.nullSeed = this.randomSource(64);
    this.clockBase = this.now();
  }

  // ---- randomness, clock ----

  /** TPM random bytes: the RNG mixed with what StirRandom added (Part 1, 11.4.11). */
  random(n: number): Uint8Array {
    const out = this.randomSource(n);
    if (this.stirPool.some((b) => b !== 0)) {
      const mask = kdfa(ALG.SHA256, this.stirPool, 'STIR', out, new Uint8Array(0), n * 8);
      for (let i = 0; i < n; i++) out[i]! ^= mask[i]!;
    }
    return out;
  }

  stir(data: Uint8Array): void {
    this.stirPool = hash(ALG.SHA256, this.stirPool, data);
  }

  /** TPMS_CLOCK_INFO.clock: milliseconds the TPM has been powered, kept across restarts. */
  clock(): bigint {
    const t = this.now();
    const elapsed = Math.max(0, t - this.clockBase);
    this.clockBase = t;
    this.state.clock += BigInt(Math.floor(elapsed));
    return this.state.clock;
  }

  writeClockInfo(w: Writer): void {
    w.u64(this.clock())
      .u32(this.state.resetCount)
      .u32(this.state.restartCount)
      .u8(this.safe ? 1 : 0);
  }

  // ---- hierarchies ----

  hierarchyEnabled(h: number): boolean {
    switch (h) {
      case RH.OWNER:
        return this.shEnable;
      case RH.ENDORSEMENT:
        return this.ehEnable;
      case RH.PLATFORM:
        return this.phEnable;
      case RH.NULL:
        return true;
      default:
        return false;
    }
  }

  /** The primary seed of a hierarchy (Part 1, 14.3). */
  seedOf(h: number): Uint8Array {
    switch (h) {
      case RH.OWNER:
        return this.state.sps;
      case RH.ENDORSEMENT:
        return this.state.eps;
      case RH.PLATFORM:
        return this.state.pps;
      default:
        return this.nullSeed;
    }
  }

  /** The proof value of a hierarchy: the HMAC key of its tickets and contexts. */
  proofOf(h: number): Uint8Array {
    switch (h) {
      case RH.OWNER:
        return this.state.shProof;
      case RH.ENDORSEMENT:
        return this.state.ehProof;
      case RH.PLATFORM:
        return this.state.phProof;
      default:
        return this.nullProof;
    }
  }

  /** A ticket's HMAC: HMAC_SHA256(proof(hierarchy), tag || parts...) (Part 1, 10.7). */
  ticketDigest(tag: number, hierarchy: number, ...parts: Uint8Array[]): Uint8Array {
    return hmac(ALG.SHA256, this.proofOf(hierarchy), Uint8Array.of(tag >> 8, tag & 0xff), ...parts);
  }

  // ---- entities ----

  /** The loaded object behind a transient or persistent handle, or undefined. */
  object(handle: number): TpmObject | undefined {
    if (handle >>> 24 === HT.TRANSIENT) return this.objects.get(handle);
    if (handle >>> 24 === HT.PERSISTENT) {
      const p = this.state.persistentObjects.find((o) => o.handle === handle);
      if (p === undefined) return undefined;
      const parentQn = handleBytes(p.hierarchy);
      return makeObject(p.public, p.sensitive, p.hierarchy, parentQn);
    }
    return undefined;
  }

  nvIndex(handle: number): NvIndex | undefined {
    return this.state.nvIndices.find((n) => n.public.nvIndex === handle);
  }

  name(e: Entity): Uint8Array {
    switch (e.kind) {
      case 'object':
        return e.obj.name;
      case 'nv':
        return nvName(e.nv);
      case 'sequence':
        // A sequence object's Name is empty: ESYS puts nothing for it into cpHash (checked with
        // tpm2_hmac and tpm2_pcrevent, whose HMAC sessions cover a sequence handle).
        return new Uint8Array(0);
      default:
        return handleBytes(e.handle);
    }
  }

  authValue(e: Entity): Uint8Array {
    switch (e.kind) {
      case 'object':
        return trimAuth(e.obj.sensitive.authValue);
      case 'nv':
        return trimAuth(e.nv.authValue);
      case 'sequence':
        return trimAuth(e.seq.authValue);
      case 'permanent':
        switch (e.handle) {
          case RH.OWNER:
            return trimAuth(this.state.ownerAuth);
          case RH.ENDORSEMENT:
            return trimAuth(this.state.endorsementAuth);
          case RH.LOCKOUT:
            return trimAuth(this.state.lockoutAuth);
          case RH.PLATFORM:
            return trimAuth(this.platformAuth);
          default:
            return new Uint8Array(0);
        }
      default:
        return new Uint8Array(0);
    }
  }

  /** The authPolicy of an entity and the hash it was computed with (empty: none). */
  authPolicy(e: Entity): { alg: number; digest: Uint8Array } {
    switch (e.kind) {
      case 'object':
        return { alg: e.obj.public.nameAlg, digest: e.obj.public.authPolicy };
      case 'nv':
        return { alg: e.nv.public.nameAlg, digest: e.nv.public.authPolicy };
      case 'permanent':
        switch (e.handle) {
          case RH.OWNER:
            return this.state.ownerPolicy;
          case RH.ENDORSEMENT:
            return this.state.endorsementPolicy;
          case RH.LOCKOUT:
            return this.state.lockoutPolicy;
          case RH.PLATFORM:
            return this.platformPolicy;
          default:
            return { alg: ALG.NULL, digest: new Uint8Array(0) };
        }
      default:
        return { alg: ALG.NULL, digest: new Uint8Array(0) };
    }
  }

  /** Whether a failed authorization of `e` counts toward lockout (Part 1, 19.8.6). */
  daProtected(e: Entity): boolean {
    if (e.kind === 'object') return (e.obj.public.objectAttributes & OA.noDA) === 0;
    if (e.kind === 'nv') return (e.nv.public.attributes & NVA.NO_DA) === 0;
    return false;
  }

  // ---- dictionary-attack protection ----

  /** Applies self-healing: one failure forgiven per recoveryTime since the last one. */
  private healLockout(): void {
    const s = this.state;
    if (s.failedTries === 0 || s.recoveryTime === 0) return;
    const t = Number(this.clock());
    const forgiven = Math.floor((t - s.lastFailureAt) / s.recoveryTime);
    if (forgiven > 0) {
      s.failedTries = Math.max(0, s.failedTries - forgiven);
      s.lastFailureAt += forgiven * s.recoveryTime;
      this.dirty = true;
    }
  }

  inLockout(): boolean {
    this.healLockout();
    return this.state.failedTries >= this.state.maxTries;
  }

  lockoutAuthBlocked(): boolean {
    return Number(this.clock()) < this.state.lockoutAuthBlockedUntil;
  }

  /** Before an authorization of `e` is checked: TPM_RC_LOCKOUT if it may not be tried now. */
  checkLockout(e: Entity): void {
    if (e.kind === 'permanent' && e.handle === RH.LOCKOUT) {
      if (this.lockoutAuthBlocked()) fail(RC.LOCKOUT);
      return;
    }
    if (this.daProtected(e) && this.inLockout()) fail(RC.LOCKOUT);
  }

  /** A failed authorization: counts it where it counts and gives the code to return. */
  authFailure(e: Entity): number {
    if (e.kind === 'permanent' && e.handle === RH.LOCKOUT) {
      const s = this.state;
      s.lockoutAuthBlockedUntil =
        s.lockoutRecovery === 0
          ? Number.MAX_SAFE_INTEGER
          : Number(this.clock()) + s.lockoutRecovery;
      this.dirty = true;
      return RC.AUTH_FAIL;
    }
    if (!this.daProtected(e)) return RC.BAD_AUTH;
    this.healLockout();
    this.state.failedTries = Math.min(this.state.failedTries + 1, this.state.maxTries);
    this.state.lastFailureAt = Number(this.clock());
    this.dirty = true;
    return RC.AUTH_FAIL;
  }

  // ---- handles ----

  /** The lowest free transient handle (0x80000000 + slot), or TPM_RC_OBJECT_MEMORY. */
  allocateObjectHandle(): number {
    for (let i = 0; i < LIMITS.TRANSIENT_SLOTS; i++) {
      const h = (0x80000000 + i) >>> 0;
      if (!this.objects.has(h) && !this.sequences.has(h)) return h;
    }
    return fail(RC.OBJECT_MEMORY);
  }

  /** A free session slot: handle HMAC 0x02.. or policy 0x03.., slots shared. */
  allocateSessionHandle(policy: boolean): number {
    for (let i = 0; i < LIMITS.SESSION_SLOTS; i++) {
      const taken = this.sessions.has(0x02000000 + i) || this.sessions.has(0x03000000 + i);
      if (!taken) return (policy ? 0x03000000 : 0x02000000) + i;
    }
    return fail(RC.SESSION_MEMORY);
  }

  loadedSession(handle: number): Session | undefined {
    const s = this.sessions.get(handle);
    return s === undefined || s.saved ? undefined : s;
  }

  /** Removes transient objects (and sequences) of a hierarchy, or all when `h` is undefined. */
  flushObjects(h?: number): void {
    for (const [handle, obj] of this.objects) {
      if (h === undefined || obj.hierarchy === h) this.objects.delete(handle);
    }
  }

  // ---- saved contexts (Part 1, 30) ----

  private contextKeys(
    hierarchy: number,
    sequence: bigint,
    handle: number,
  ): { key: Uint8Array; iv: Uint8Array; mac: Uint8Array } {
    const seq = new Uint8Array(8);
    new DataView(seq.buffer).setBigUint64(0, sequence);
    // Sessions are bound to this boot: their contexts use the null proof, renewed by TPM Reset.
    const proof = this.proofOf(hierarchy);
    const k = kdfa(ALG.SHA256, proof, 'CONTEXT', seq, u32be(handle), 256 + 128);
    const mac = kdfa(ALG.SHA256, proof, 'INTEGRITY', seq, u32be(handle), 256);
    return { key: k.subarray(0, 32), iv: k.subarray(32), mac };
  }

  /** The TPMS_CONTEXT blob: integrity HMAC (32) || AES-256-CFB(state). */
  sealContext(
    hierarchy: number,
    sequence: bigint,
    savedHandle: number,
    plain: Uint8Array,
  ): Uint8Array {
    const { key, iv, mac } = this.contextKeys(hierarchy, sequence, savedHandle);
    const enc = aesCfbEncrypt(key, iv, plain);
    return concat(hmac(ALG.SHA256, mac, enc), enc);
  }

  openContext(
    hierarchy: number,
    sequence: bigint,
    savedHandle: number,
    blob: Uint8Array,
  ): Uint8Array {
    if (blob.length < 32) fail(RC.SIZE);
    const { key, iv, mac } = this.contextKeys(hierarchy, sequence, savedHandle);
    const enc = blob.subarray(32);
    if (!equalBytes(blob.subarray(0, 32), hmac(ALG.SHA256, mac, enc))) fail(RC.INTEGRITY);
    return aesCfbDecrypt(key, iv, enc);
  }

  objectContextState(obj: TpmObject): Uint8Array {
    return marshal((w) => {
      w.u32(obj.hierarchy).b2(obj.qualifiedName);
      w.sized((i) => writePublic(i, obj.public));
      w.sized((i) => writeSensitive(i, obj.sensitive));
    });
  }

  objectFromContextState(plain: Uint8Array): TpmObject {
    const r = new Reader(plain);
    const hierarchy = r.u32();
    const qn = r.b2(70);
    const pub = r.sized(readPublic) ?? fail(RC.SIZE);
    const sensitive = r.sized(readSensitive) ?? fail(RC.SIZE);
    r.done();
    const obj = makeObject(pub, sensitive, hierarchy, new Uint8Array(0));
    return { ...obj, qualifiedName: qn };
  }

  sessionContextState(s: Session): Uint8Array {
    return marshal((w) => writeSessionState(w, s));
  }

  sessionFromContextState(plain: Uint8Array): Session {
    const r = new Reader(plain);
    const s = readSessionState(r);
    r.done();
    return s;
  }

  // ---- lifecycle ----

  /** _TPM_Init: the TPM forgets everything volatile and waits for Startup. */
  init(): void {
    this.started = false;
    this.objects.clear();
    this.sequences.clear();
    this.sessions.clear();
    this.pcrs = new PcrBanks();
  }

  /** Clears what TPM2_Clear clears (Part 3, 24.6), keeping the EPS. */
  clearOwner(): void {
    const s = this.state;
    s.sps = this.randomSource(64);
    s.shProof = this.randomSource(64);
    s.ehProof = this.randomSource(64);
    s.ownerAuth = new Uint8Array(0);
    s.endorsementAuth = new Uint8Array(0);
    s.lockoutAuth = new Uint8Array(0);
    s.ownerPolicy = { alg: ALG.NULL, digest: new Uint8Array(0) };
    s.endorsementPolicy = { alg: ALG.NULL, digest: new Uint8Array(0) };
    s.lockoutPolicy = { alg: ALG.NULL, digest: new Uint8Array(0) };
    s.persistentObjects = s.persistentObjects.filter((o) => o.hierarchy === RH.PLATFORM);
    s.nvIndices = s.nvIndices.filter((n) => (n.public.attributes & NVA.PLATFORMCREATE) !== 0);
    s.failedTries = 0;
    s.lockoutAuthBlockedUntil = 0;
    this.flushObjects(RH.OWNER);
    this.flushObjects(RH.ENDORSEMENT);
    this.dirty = true;
  }
}

/** Name of an NV index: nameAlg || H(TPMS_NV_PUBLIC) (Part 1, 16). */
export function nvName(nv: NvIndex): Uint8Array {
  const p = nv.public;
  const bytes = marshal((w) => writeNvPublic(w, p));
  return concat(Uint8Array.of(p.nameAlg >> 8, p.nameAlg & 0xff), hash(p.nameAlg, bytes));
}

export function isTpmError(e: unknown): e is TpmError {
  return e instanceof TpmError;
}

export { digestSize };
