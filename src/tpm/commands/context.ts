// Context management (Part 3, section 28): ContextSave, ContextLoad, FlushContext, EvictControl.

import { CC, HT, LIMITS, OA, RC, RH } from '../constants.js';
import { fail, numbered, rcHandle, rcParam } from '../errors.js';
import { params, u32, type Reader } from '../marshal.js';
import { command, type CommandDef } from '../command.js';

/** TPMS_CONTEXT (Part 2, 14.5). */
interface SavedContext {
  sequence: bigint;
  savedHandle: number;
  hierarchy: number;
  blob: Uint8Array;
}

const OBJECT_CONTEXT = 0x80000000;

function readContext(r: Reader): SavedContext {
  return {
    sequence: r.u64(),
    savedHandle: r.u32(),
    hierarchy: r.u32(),
    blob: r.b2(LIMITS.MAX_CONTEXT_SIZE),
  };
}

const isSessionHandle = (h: number): boolean =>
  h >>> 24 === HT.HMAC_SESSION || h >>> 24 === HT.POLICY_SESSION;

export const contextCommands: CommandDef[] = [
  command({
    cc: CC.ContextSave,
    name: 'ContextSave',
    handles: [{ kind: 'context' }],
    noSessions: true,
    parse: (r) => params<[]>(r),
    run(m, [e], _p, out) {
      const sequence = m.contextCounter++;
      if (e!.kind === 'session') {
        const s = e.session;
        const blob = m.sealContext(RH.NULL, sequence, s.handle, m.sessionContextState(s));
        s.saved = true;
        s.savedSequence = sequence;
        out.u64(sequence).u32(s.handle).u32(RH.NULL).b2(blob);
        return;
      }
      if (e!.kind !== 'object') return;
      const obj = e.obj;
      const blob = m.sealContext(
        obj.hierarchy,
        sequence,
        OBJECT_CONTEXT,
        m.objectContextState(obj),
      );
      out.u64(sequence).u32(OBJECT_CONTEXT).u32(obj.hierarchy).b2(blob);
    },
  }),
  command({
    cc: CC.ContextLoad,
    name: 'ContextLoad',
    handles: [],
    noSessions: true,
    returnsHandle: true,
    parse: (r) => params<[SavedContext]>(r, readContext),
    run(m, _h, [c], _out, ctx) {
      if (isSessionHandle(c.savedHandle)) {
        const s = m.sessions.get(c.savedHandle);
        // A saved session loads once, from its latest context (Part 1, 30.4).
        if (
          s === undefined ||
          !s.saved ||
          s.savedSequence !== c.sequence ||
          c.hierarchy !== RH.NULL
        ) {
          fail(rcParam(RC.HANDLE, 1));
        }
        const plain = numbered(
          () => m.openContext(RH.NULL, c.sequence, c.savedHandle, c.blob),
          (rc) => rcParam(rc, 1),
        );
        const restored = numbered(
          () => m.sessionFromContextState(plain),
          () => rcParam(RC.INTEGRITY, 1),
        );
        if (restored.handle !== c.savedHandle) fail(rcParam(RC.INTEGRITY, 1));
        Object.assign(s, restored, { saved: false, savedSequence: 0n });
        ctx.returnHandle = s.handle;
        return;
      }
      if (c.savedHandle !== OBJECT_CONTEXT) fail(rcParam(RC.HANDLE, 1));
      if (![RH.OWNER, RH.ENDORSEMENT, RH.PLATFORM, RH.NULL].includes(c.hierarchy as 0x40000001)) {
        fail(rcParam(RC.HIERARCHY, 1));
      }
      if (!m.hierarchyEnabled(c.hierarchy)) fail(rcParam(RC.HIERARCHY, 1));
      const plain = numbered(
        () => m.openContext(c.hierarchy, c.sequence, c.savedHandle, c.blob),
        (rc) => rcParam(rc, 1),
      );
      const obj = numbered(
        () => m.objectFromContextState(plain),
        () => rcParam(RC.INTEGRITY, 1),
      );
      if (obj.hierarchy !== c.hierarchy) fail(rcParam(RC.INTEGRITY, 1));
      const handle = m.allocateObjectHandle();
      m.objects.set(handle, obj);
      ctx.returnHandle = handle;
    },
  }),
  command({
    cc: CC.FlushContext,
    name: 'FlushContext',
    handles: [],
    noSessions: true,
    parse: (r) => params<[number]>(r, u32),
    run(m, _h, [handle]) {
      const type = handle >>> 24;
      if (type === HT.TRANSIENT) {
        if (!m.objects.delete(handle) && !m.sequences.delete(handle)) fail(rcParam(RC.HANDLE, 1));
        return;
      }
      if (isSessionHandle(handle)) {
        if (!m.sessions.delete(handle)) fail(rcParam(RC.HANDLE, 1));
        return;
      }
      fail(rcParam(RC.HANDLE, 1));
    },
  }),
  command({
    cc: CC.EvictControl,
    name: 'EvictControl',
    handles: [{ kind: 'provision', auth: 'USER' }, { kind: 'object' }],
    nv: true,
    parse: (r) => params<[number]>(r, u32),
    run(m, [auth, objEntity], [persistentHandle]) {
      if (objEntity!.kind !== 'object') return;
      const obj = objEntity.obj;
      const s = m.state;
      if (objEntity.handle >>> 24 === HT.PERSISTENT) {
        // Removing: the same handle twice, by the hierarchy that owns it.
        if (persistentHandle !== objEntity.handle) fail(rcParam(RC.HANDLE, 1));
        if ((obj.hierarchy === RH.PLATFORM) !== (auth!.handle === RH.PLATFORM))
          fail(rcHandle(RC.HIERARCHY, 2));
        s.persistentObjects = s.persistentObjects.filter((o) => o.handle !== persistentHandle);
        m.dirty = true;
        return;
      }
      const ownerRange = persistentHandle >= 0x81000000 && persistentHandle <= 0x817fffff;
      const platformRange = persistentHandle >= 0x81800000 && persistentHandle <= 0x81ffffff;
      if (auth!.handle === RH.OWNER ? !ownerRange : !platformRange) fail(rcParam(RC.RANGE, 1));
      if (obj.hierarchy === RH.NULL) fail(rcHandle(RC.HIERARCHY, 2));
      if ((obj.hierarchy === RH.PLATFORM) !== (auth!.handle === RH.PLATFORM))
        fail(rcHandle(RC.HIERARCHY, 2));
      if ((obj.public.objectAttributes & OA.stClear) !== 0) fail(rcHandle(RC.ATTRIBUTES, 2));
      if (s.persistentObjects.some((o) => o.handle === persistentHandle)) fail(RC.NV_DEFINED);
      if (s.persistentObjects.length >= LIMITS.PERSISTENT_MAX) fail(RC.NV_SPACE);
      s.persistentObjects.push({
        handle: persistentHandle,
        hierarchy: obj.hierarchy,
        public: obj.public,
        sensitive: obj.sensitive,
      });
      m.dirty = true;
    },
  }),
];
