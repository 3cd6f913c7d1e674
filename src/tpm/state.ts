// The TPM's persistent state (Part 1, section 37 "NV memory"): seeds, proofs, hierarchy auths and
// policies, dictionary-attack state, clock and counters, NV indices, persistent objects and what an
// orderly Shutdown(STATE) saved. It is one versioned blob: `serializeState` / `parseState`.
// Everything else (loaded objects, sessions, PCRs) is lost at power off, as on a real TPM.

import { LIMITS } from './constants.js';
import { fail } from './errors.js';
import { marshal, Reader } from './marshal.js';
import {
  readNvPublic,
  readPublic,
  readSensitive,
  writeNvPublic,
  writePublic,
  writeSensitive,
  type NvPublic,
  type Public,
  type Sensitive,
} from './types.js';

export interface HierarchyPolicy {
  alg: number;
  digest: Uint8Array;
}

export interface NvIndex {
  public: NvPublic;
  authValue: Uint8Array;
  data: Uint8Array;
}

export interface PersistentObject {
  handle: number;
  hierarchy: number;
  public: Public;
  sensitive: Sensitive;
}

/** PCR values saved by Shutdown(STATE), by bank hash algorithm. */
export interface SavedPcrs {
  banks: Map<number, Uint8Array[]>;
  updateCounter: number;
}

export interface PersistentState {
  eps: Uint8Array;
  sps: Uint8Array;
  pps: Uint8Array;
  ehProof: Uint8Array;
  shProof: Uint8Array;
  phProof: Uint8Array;
  ownerAuth: Uint8Array;
  endorsementAuth: Uint8Array;
  lockoutAuth: Uint8Array;
  ownerPolicy: HierarchyPolicy;
  endorsementPolicy: HierarchyPolicy;
  lockoutPolicy: HierarchyPolicy;
  disableClear: boolean;
  /** Dictionary-attack protection (Part 1, 19.8.6). Times are in clock milliseconds. */
  failedTries: number;
  maxTries: number;
  recoveryTime: number;
  lockoutRecovery: number;
  /** Clock time of the last failure that counted, for self-healing. */
  lastFailureAt: number;
  /** Clock time until which lockoutAuth may not be used after a failure with it. */
  lockoutAuthBlockedUntil: number;
  /** TPMS_CLOCK_INFO: clock in ms, and the reset and restart counters. */
  clock: bigint;
  resetCount: number;
  restartCount: number;
  /** The highest value any NV counter index has had (Part 1, 37.7: counters never go back). */
  maxCounter: bigint;
  /** How the TPM was last shut down: 'none' (no Shutdown), Shutdown(CLEAR) or Shutdown(STATE). */
  orderly: 'none' | 'clear' | 'state';
  savedPcrs: SavedPcrs | undefined;
  nvIndices: NvIndex[];
  persistentObjects: PersistentObject[];
}

/** What a fresh TPM chip holds when it leaves the factory: new seeds and proofs, no auths. */
export function manufacture(random: (n: number) => Uint8Array): PersistentState {
  const empty = (): HierarchyPolicy => ({ alg: 0x0010, digest: new Uint8Array(0) });
  return {
    eps: random(64),
    sps: random(64),
    pps: random(64),
    ehProof: random(64),
    shProof: random(64),
    phProof: random(64),
    ownerAuth: new Uint8Array(0),
    endorsementAuth: new Uint8Array(0),
    lockoutAuth: new Uint8Array(0),
    ownerPolicy: empty(),
    endorsementPolicy: empty(),
    lockoutPolicy: empty(),
    disableClear: false,
    failedTries: 0,
    maxTries: 3,
    recoveryTime: 1000_000,
    lockoutRecovery: 1000_000,
    lastFailureAt: 0,
    lockoutAuthBlockedUntil: 0,
    clock: 0n,
    resetCount: 0,
    restartCount: 0,
    maxCounter: 0n,
    orderly: 'none',
    savedPcrs: undefined,
    nvIndices: [],
    persistentObjects: [],
  };
}

const MAGIC = 0x54504d53; // "TPMS"
const VERSION = 1;
const ORDERLY = ['none', 'clear', 'state'] as const;

/**
 * The state as bytes: magic "TPMS", version u32, then every field in declaration order, in TPM
 * marshalling (big-endian, 2B-sized byte strings, u32-counted lists).
 */
export function serializeState(s: PersistentState): Uint8Array {
  return marshal((w) => {
    w.u32(MAGIC).u32(VERSION);
    for (const b of [s.eps, s.sps, s.pps, s.ehProof, s.shProof, s.phProof]) w.b2(b);
    w.b2(s.ownerAuth).b2(s.endorsementAuth).b2(s.lockoutAuth);
    for (const p of [s.ownerPolicy, s.endorsementPolicy, s.lockoutPolicy])
      w.u16(p.alg).b2(p.digest);
    w.u8(s.disableClear ? 1 : 0);
    w.u32(s.failedTries).u32(s.maxTries).u32(s.recoveryTime).u32(s.lockoutRecovery);
    w.u64(BigInt(s.lastFailureAt)).u64(BigInt(s.lockoutAuthBlockedUntil));
    w.u64(s.clock).u32(s.resetCount).u32(s.restartCount).u64(s.maxCounter);
    w.u8(ORDERLY.indexOf(s.orderly));
    if (s.savedPcrs === undefined) {
      w.u8(0);
    } else {
      w.u8(1).u32(s.savedPcrs.updateCounter).u32(s.savedPcrs.banks.size);
      for (const [alg, values] of s.savedPcrs.banks) {
        w.u16(alg).u32(values.length);
        for (const v of values) w.b2(v);
      }
    }
    w.u32(s.nvIndices.length);
    for (const nv of s.nvIndices) {
      w.sized((i) => writeNvPublic(i, nv.public));
      w.b2(nv.authValue).u32(nv.data.length).bytes(nv.data);
    }
    w.u32(s.persistentObjects.length);
    for (const o of s.persistentObjects) {
      w.u32(o.handle).u32(o.hierarchy);
      w.sized((i) => writePublic(i, o.public));
      w.sized((i) => writeSensitive(i, o.sensitive));
    }
  });
}

/** A state blob that is not one this engine wrote. */
export class StateFormatError extends Error {
  override readonly name = 'StateFormatError';
}

/** Parses a blob from serializeState; StateFormatError says why one is refused. */
export function parseState(bytes: Uint8Array): PersistentState {
  const r = new Reader(bytes);
  try {
    if (r.u32() !== MAGIC) throw new StateFormatError('not a TPM state file (bad magic)');
    const version = r.u32();
    if (version !== VERSION) {
      throw new StateFormatError(
        `TPM state version ${version} is not supported (expected ${VERSION})`,
      );
    }
    const seed = (): Uint8Array => r.b2(64);
    const [eps, sps, pps, ehProof, shProof, phProof] = [
      seed(),
      seed(),
      seed(),
      seed(),
      seed(),
      seed(),
    ];
    const [ownerAuth, endorsementAuth, lockoutAuth] = [r.b2(64), r.b2(64), r.b2(64)];
    const policy = (): HierarchyPolicy => ({ alg: r.u16(), digest: r.b2(64) });
    const [ownerPolicy, endorsementPolicy, lockoutPolicy] = [policy(), policy(), policy()];
    const disableClear = r.u8() === 1;
    const [failedTries, maxTries, recoveryTime, lockoutRecovery] = [
      r.u32(),
      r.u32(),
      r.u32(),
      r.u32(),
    ];
    const lastFailureAt = Number(r.u64());
    const lockoutAuthBlockedUntil = Number(r.u64());
    const clock = r.u64();
    const resetCount = r.u32();
    const restartCount = r.u32();
    const maxCounter = r.u64();
    const orderly = ORDERLY[r.u8()];
    if (orderly === undefined) throw new StateFormatError('TPM state has a bad shutdown type');
    let savedPcrs: SavedPcrs | undefined;
    if (r.u8() === 1) {
      const updateCounter = r.u32();
      const banks = new Map<number, Uint8Array[]>();
      const nBanks = r.u32();
      for (let i = 0; i < nBanks; i++) {
        const alg = r.u16();
        const n = r.u32();
        if (n > LIMITS.PCR_COUNT) throw new StateFormatError('TPM state has too many PCRs');
        const values: Uint8Array[] = [];
        for (let j = 0; j < n; j++) values.push(r.b2(64));
        banks.set(alg, values);
      }
      savedPcrs = { banks, updateCounter };
    }
    const nvIndices: NvIndex[] = [];
    const nNv = r.u32();
    for (let i = 0; i < nNv; i++) {
      const pub = r.sized(readNvPublic) ?? fail(0);
      const authValue = r.b2(64);
      const data = r.bytes(r.u32());
      nvIndices.push({ public: pub, authValue, data });
    }
    const persistentObjects: PersistentObject[] = [];
    const nObj = r.u32();
    for (let i = 0; i < nObj; i++) {
      const handle = r.u32();
      const hierarchy = r.u32();
      const pub = r.sized(readPublic) ?? fail(0);
      const sensitive = r.sized(readSensitive) ?? fail(0);
      persistentObjects.push({ handle, hierarchy, public: pub, sensitive });
    }
    r.done();
    return {
      eps,
      sps,
      pps,
      ehProof,
      shProof,
      phProof,
      ownerAuth,
      endorsementAuth,
      lockoutAuth,
      ownerPolicy,
      endorsementPolicy,
      lockoutPolicy,
      disableClear,
      failedTries,
      maxTries,
      recoveryTime,
      lockoutRecovery,
      lastFailureAt,
      lockoutAuthBlockedUntil,
      clock,
      resetCount,
      restartCount,
      maxCounter,
      orderly,
      savedPcrs,
      nvIndices,
      persistentObjects,
    };
  } catch (e) {
    if (e instanceof StateFormatError) throw e;
    throw new StateFormatError('TPM state file is truncated or corrupt');
  }
}
