// Hash, HMAC and event sequences (Part 3, section 17): HMAC_Start, HashSequenceStart,
// SequenceUpdate, SequenceComplete, EventSequenceComplete. They hash data larger than one command
// buffer (tpm2_hash, tpm2_hmac and tpm2_pcrevent of more than 1024 bytes).

import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { ALG, CC, LIMITS, OA, RC, RH, ST, TPM_GENERATED_VALUE } from '../constants.js';
import { hashInfo } from '../crypto.js';
import { fail, rcHandle, rcParam } from '../errors.js';
import type { Entity, HashSequence, TpmMachine } from '../machine.js';
import { b2, params, type Reader } from '../marshal.js';
import { PCR_BANKS } from '../pcr.js';
import { readHashAlg, writeTicket } from '../types.js';
import { command, type CommandDef } from '../command.js';

const readHierarchyParam = (r: Reader): number => {
  const h = r.u32();
  if (h !== RH.OWNER && h !== RH.ENDORSEMENT && h !== RH.PLATFORM && h !== RH.NULL) fail(RC.VALUE);
  return h;
};

function sequenceOf(e: Entity | undefined, n: number): HashSequence {
  if (e === undefined || e.kind !== 'sequence') return fail(rcHandle(RC.MODE, n));
  return e.seq;
}

/** Adds data to every running hash of a sequence, remembering its first four bytes. */
function update(seq: HashSequence, data: Uint8Array): void {
  if (seq.firstBytes.length < 4 && data.length > 0) {
    const take = data.subarray(0, 4 - seq.firstBytes.length);
    const first = new Uint8Array(seq.firstBytes.length + take.length);
    first.set(seq.firstBytes);
    first.set(take, seq.firstBytes.length);
    seq.firstBytes = first;
  }
  for (const h of seq.hashes.values()) h.update(data);
}

function digestOf(h: Hash | Hmac): Uint8Array {
  return new Uint8Array(h.digest());
}

function start(m: TpmMachine, seq: HashSequence): number {
  const handle = m.allocateObjectHandle();
  m.sequences.set(handle, seq);
  return handle;
}

export const sequenceCommands: CommandDef[] = [
  command({
    cc: CC.HMAC_Start,
    name: 'HMAC_Start',
    handles: [{ kind: 'object', auth: 'USER' }],
    returnsHandle: true,
    decrypt: true,
    parse: (r) =>
      params<[Uint8Array, number]>(r, b2(LIMITS.MAX_DIGEST), (x) => readHashAlg(x, true)),
    run(m, [e], [auth, alg], _out, ctx) {
      if (e!.kind !== 'object') return fail(rcHandle(RC.HANDLE, 1));
      const key = e!.obj;
      const pub = key.public;
      // The same key rules as TPM2_HMAC (Part 3, 17.2.3).
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
      const node = hashInfo(hashAlg).node;
      ctx.returnHandle = start(m, {
        type: 'hmac',
        hashAlg,
        authValue: auth,
        hashes: new Map([[hashAlg, createHmac(node, key.sensitive.sensitive)]]),
        firstBytes: new Uint8Array(0),
      });
    },
  }),
  command({
    cc: CC.HashSequenceStart,
    name: 'HashSequenceStart',
    handles: [],
    returnsHandle: true,
    decrypt: true,
    parse: (r) =>
      params<[Uint8Array, number]>(r, b2(LIMITS.MAX_DIGEST), (x) => readHashAlg(x, true)),
    run(m, _h, [auth, hashAlg], _out, ctx) {
      // hashAlg NULL starts an event sequence: one hash per PCR bank (Part 3, 17.3).
      const hashes =
        hashAlg === ALG.NULL
          ? new Map(PCR_BANKS.map((alg) => [alg, createHash(hashInfo(alg).node)] as const))
          : new Map([[hashAlg, createHash(hashInfo(hashAlg).node)]]);
      ctx.returnHandle = start(m, {
        type: hashAlg === ALG.NULL ? 'event' : 'hash',
        hashAlg,
        authValue: auth,
        hashes,
        firstBytes: new Uint8Array(0),
      });
    },
  }),
  command({
    cc: CC.SequenceUpdate,
    name: 'SequenceUpdate',
    handles: [{ kind: 'sequence', auth: 'USER' }],
    decrypt: true,
    parse: (r) => params<[Uint8Array]>(r, b2(LIMITS.MAX_BUFFER)),
    run(_m, [e], [buffer]) {
      update(sequenceOf(e, 1), buffer);
    },
  }),
  command({
    cc: CC.SequenceComplete,
    name: 'SequenceComplete',
    handles: [{ kind: 'sequence', auth: 'USER' }],
    decrypt: true,
    encrypt: true,
    parse: (r) => params<[Uint8Array, number]>(r, b2(LIMITS.MAX_BUFFER), readHierarchyParam),
    run(m, [e], [buffer, hierarchy], out) {
      const seq = sequenceOf(e, 1);
      if (seq.type === 'event') fail(rcHandle(RC.MODE, 1));
      if (hierarchy !== RH.NULL && !m.hierarchyEnabled(hierarchy)) fail(rcParam(RC.HIERARCHY, 2));
      update(seq, buffer);
      const result = digestOf(seq.hashes.get(seq.hashAlg)!);
      m.sequences.delete(e!.handle);
      out.b2(result);
      // A hash sequence earns a hashcheck ticket unless its data could pass for a TPM-generated
      // structure; an HMAC sequence gets a NULL ticket (Part 3, 17.5).
      const generated =
        seq.firstBytes.length === 4 &&
        new DataView(seq.firstBytes.buffer).getUint32(0) === TPM_GENERATED_VALUE;
      if (seq.type === 'hmac' || hierarchy === RH.NULL || generated) {
        writeTicket(out, { tag: ST.HASHCHECK, hierarchy: RH.NULL, digest: new Uint8Array(0) });
      } else {
        writeTicket(out, {
          tag: ST.HASHCHECK,
          hierarchy,
          digest: m.ticketDigest(ST.HASHCHECK, hierarchy, result),
        });
      }
    },
  }),
  command({
    cc: CC.EventSequenceComplete,
    name: 'EventSequenceComplete',
    handles: [
      { kind: 'pcrOrNull', auth: 'USER' },
      { kind: 'sequence', auth: 'USER' },
    ],
    decrypt: true,
    parse: (r) => params<[Uint8Array]>(r, b2(LIMITS.MAX_BUFFER)),
    run(m, [pcr, e], [buffer], out, ctx) {
      const seq = sequenceOf(e, 2);
      if (seq.type !== 'event') fail(rcHandle(RC.MODE, 2));
      if (pcr!.kind === 'pcr' && pcr!.handle >= 17 && pcr!.handle <= 22 && ctx.locality < 3)
        fail(RC.LOCALITY);
      update(seq, buffer);
      const digests = [...seq.hashes].map(([alg, h]) => ({ alg, digest: digestOf(h) }));
      m.sequences.delete(e!.handle);
      if (pcr!.kind === 'pcr') {
        for (const d of digests) m.pcrs.extend(d.alg, pcr!.handle, d.digest);
        m.pcrs.updateCounter++;
      }
      out.u32(digests.length);
      for (const d of digests) out.u16(d.alg).bytes(d.digest);
    },
  }),
];
