// NV storage (Part 3, section 31): NV_DefineSpace, NV_UndefineSpace, NV_ReadPublic, NV_Write,
// NV_Extend, NV_Read, NV_Increment.

import { CC, LIMITS, NT, NVA, RC, RH } from '../constants.js';
import { digestSize, hash } from '../crypto.js';
import { fail, rcHandle, rcParam } from '../errors.js';
import { nvName, type Entity, type TpmMachine } from '../machine.js';
import { b2, params, u16 } from '../marshal.js';
import type { NvIndex } from '../state.js';
import { readNvPublic, writeNvPublic, type NvPublic } from '../types.js';
import { command, type CommandDef, type ExecContext } from '../command.js';

const typeOf = (attrs: number): number => (attrs & NVA.TPM_NT_MASK) >> 4;
const has = (attrs: number, bit: number): boolean => (attrs & bit) >>> 0 !== 0;

/** The checks of Part 3, 31.3 on a new index's public area (parameter 2). */
function checkDefine(m: TpmMachine, auth: number, authValue: Uint8Array, p: NvPublic): void {
  const a = p.attributes;
  const bad = (rc: number): never => fail(rcParam(rc, 2));
  if ((a & NVA.reserved) !== 0) bad(RC.ATTRIBUTES);
  if (authValue.length > digestSize(p.nameAlg)) fail(rcParam(RC.SIZE, 1));
  if (p.authPolicy.length !== 0 && p.authPolicy.length !== digestSize(p.nameAlg)) bad(RC.SIZE);
  const t = typeOf(a);
  if (![NT.ORDINARY, NT.COUNTER, NT.BITS, NT.EXTEND].includes(t as 0)) bad(RC.ATTRIBUTES);
  if (t === NT.COUNTER || t === NT.BITS) {
    if (p.dataSize !== 8) bad(RC.SIZE);
  } else if (t === NT.EXTEND) {
    if (p.dataSize !== digestSize(p.nameAlg)) bad(RC.SIZE);
  } else if (p.dataSize > LIMITS.NV_INDEX_MAX) {
    bad(RC.SIZE);
  }
  const canRead =
    has(a, NVA.PPREAD) || has(a, NVA.OWNERREAD) || has(a, NVA.AUTHREAD) || has(a, NVA.POLICYREAD);
  const canWrite =
    has(a, NVA.PPWRITE) ||
    has(a, NVA.OWNERWRITE) ||
    has(a, NVA.AUTHWRITE) ||
    has(a, NVA.POLICYWRITE);
  if (!canRead || !canWrite) bad(RC.ATTRIBUTES);
  if (has(a, NVA.WRITTEN) || has(a, NVA.WRITELOCKED) || has(a, NVA.READLOCKED)) bad(RC.ATTRIBUTES);
  if (has(a, NVA.POLICY_DELETE) && p.authPolicy.length === 0) bad(RC.ATTRIBUTES);
  if (has(a, NVA.PLATFORMCREATE) !== (auth === RH.PLATFORM)) bad(RC.ATTRIBUTES);
  if (m.nvIndex(p.nvIndex) !== undefined) fail(RC.NV_DEFINED);
  if (m.state.nvIndices.length >= LIMITS.NV_INDICES_MAX) fail(RC.NV_SPACE);
  const used = m.state.nvIndices.reduce((n, x) => n + x.public.dataSize, 0);
  if (used + p.dataSize > LIMITS.NV_MEMORY) fail(RC.NV_SPACE);
}

/**
 * Whether `authHandle` may read or write the index (Part 3, 31.1 "NV access controls"): the owner
 * with OWNER*, the platform with PP*, the index itself with AUTH* (password or HMAC) or POLICY*.
 */
function checkAccess(auth: Entity, nv: NvIndex, ctx: ExecContext, write: boolean): void {
  const a = nv.public.attributes;
  let ok: boolean;
  if (auth.kind === 'permanent') {
    ok =
      auth.handle === RH.OWNER
        ? has(a, write ? NVA.OWNERWRITE : NVA.OWNERREAD)
        : has(a, write ? NVA.PPWRITE : NVA.PPREAD);
  } else {
    ok =
      ctx.authKinds[0] === 'policy'
        ? has(a, write ? NVA.POLICYWRITE : NVA.POLICYREAD)
        : has(a, write ? NVA.AUTHWRITE : NVA.AUTHREAD);
  }
  if (!ok) fail(RC.NV_AUTHORIZATION);
  if (auth.kind === 'nv' && auth.handle !== nv.public.nvIndex)
    fail(rcHandle(RC.NV_AUTHORIZATION, 1));
}

function nvOf(e: Entity | undefined): NvIndex {
  if (e === undefined || e.kind !== 'nv') return fail(rcHandle(RC.HANDLE, 2));
  return e.nv;
}

function markWritten(m: TpmMachine, nv: NvIndex): void {
  nv.public = { ...nv.public, attributes: (nv.public.attributes | NVA.WRITTEN) >>> 0 };
  m.dirty = true;
}

export const nvCommands: CommandDef[] = [
  command({
    cc: CC.NV_DefineSpace,
    name: 'NV_DefineSpace',
    handles: [{ kind: 'provision', auth: 'USER' }],
    decrypt: true,
    nv: true,
    parse: (r) =>
      params<[Uint8Array, NvPublic]>(r, b2(64), (x) => x.sized(readNvPublic) ?? fail(RC.SIZE)),
    run(m, [auth], [authValue, pub]) {
      checkDefine(m, auth!.handle, authValue, pub);
      // Bytes never written read back as 0xFF; counters start at the highest value any had.
      const data = new Uint8Array(pub.dataSize).fill(0xff);
      m.state.nvIndices.push({ public: { ...pub }, authValue, data });
      m.dirty = true;
    },
  }),
  command({
    cc: CC.NV_UndefineSpace,
    name: 'NV_UndefineSpace',
    handles: [{ kind: 'provision', auth: 'USER' }, { kind: 'nvIndex' }],
    nv: true,
    parse: (r) => params<[]>(r),
    run(m, [auth, e]) {
      const nv = nvOf(e);
      const a = nv.public.attributes;
      if (has(a, NVA.POLICY_DELETE)) fail(rcHandle(RC.ATTRIBUTES, 2));
      if (has(a, NVA.PLATFORMCREATE) && auth!.handle !== RH.PLATFORM) fail(RC.NV_AUTHORIZATION);
      m.state.nvIndices = m.state.nvIndices.filter((x) => x !== nv);
      m.dirty = true;
    },
  }),
  command({
    cc: CC.NV_ReadPublic,
    name: 'NV_ReadPublic',
    handles: [{ kind: 'nvIndex' }],
    encrypt: true,
    parse: (r) => params<[]>(r),
    run(_m, [e], _p, out) {
      const nv = nvOf(e);
      out.sized((w) => writeNvPublic(w, nv.public));
      out.b2(nvName(nv));
    },
  }),
  command({
    cc: CC.NV_Write,
    name: 'NV_Write',
    handles: [{ kind: 'nvAuth', auth: 'USER' }, { kind: 'nvIndex' }],
    decrypt: true,
    nv: true,
    parse: (r) => params<[Uint8Array, number]>(r, b2(LIMITS.NV_BUFFER_MAX), u16),
    run(m, [auth, e], [data, offset], _out, ctx) {
      const nv = nvOf(e);
      checkAccess(auth!, nv, ctx, true);
      const a = nv.public.attributes;
      if (has(a, NVA.WRITELOCKED)) fail(RC.NV_LOCKED);
      if (typeOf(a) !== NT.ORDINARY) fail(RC.ATTRIBUTES);
      if (offset + data.length > nv.public.dataSize) fail(RC.NV_RANGE);
      if (has(a, NVA.WRITEALL) && (offset !== 0 || data.length !== nv.public.dataSize))
        fail(RC.NV_RANGE);
      nv.data.set(data, offset);
      markWritten(m, nv);
    },
  }),
  command({
    cc: CC.NV_Extend,
    name: 'NV_Extend',
    handles: [{ kind: 'nvAuth', auth: 'USER' }, { kind: 'nvIndex' }],
    decrypt: true,
    nv: true,
    parse: (r) => params<[Uint8Array]>(r, b2(LIMITS.NV_BUFFER_MAX)),
    run(m, [auth, e], [data], _out, ctx) {
      const nv = nvOf(e);
      checkAccess(auth!, nv, ctx, true);
      const a = nv.public.attributes;
      if (has(a, NVA.WRITELOCKED)) fail(RC.NV_LOCKED);
      if (typeOf(a) !== NT.EXTEND) fail(RC.ATTRIBUTES);
      // An extend index starts from zeros: value ← H_nameAlg(value || data) (Part 3, 31.7).
      const old = has(a, NVA.WRITTEN) ? nv.data : new Uint8Array(nv.public.dataSize);
      nv.data.set(hash(nv.public.nameAlg, old, data));
      markWritten(m, nv);
    },
  }),
  command({
    cc: CC.NV_Read,
    name: 'NV_Read',
    handles: [{ kind: 'nvAuth', auth: 'USER' }, { kind: 'nvIndex' }],
    encrypt: true,
    parse: (r) => params<[number, number]>(r, u16, u16),
    run(_m, [auth, e], [size, offset], out, ctx) {
      const nv = nvOf(e);
      checkAccess(auth!, nv, ctx, false);
      const a = nv.public.attributes;
      if (has(a, NVA.READLOCKED)) fail(RC.NV_LOCKED);
      if (!has(a, NVA.WRITTEN)) fail(RC.NV_UNINITIALIZED);
      if (size > LIMITS.NV_BUFFER_MAX) fail(rcParam(RC.VALUE, 1));
      if (offset + size > nv.public.dataSize) fail(RC.NV_RANGE);
      out.b2(nv.data.slice(offset, offset + size));
    },
  }),
  command({
    cc: CC.NV_Increment,
    name: 'NV_Increment',
    handles: [{ kind: 'nvAuth', auth: 'USER' }, { kind: 'nvIndex' }],
    nv: true,
    parse: (r) => params<[]>(r),
    run(m, [auth, e], _p, _out, ctx) {
      const nv = nvOf(e);
      checkAccess(auth!, nv, ctx, true);
      const a = nv.public.attributes;
      if (has(a, NVA.WRITELOCKED)) fail(RC.NV_LOCKED);
      if (typeOf(a) !== NT.COUNTER) fail(RC.ATTRIBUTES);
      const view = new DataView(nv.data.buffer, nv.data.byteOffset, 8);
      // A counter starts at the highest value any counter ever had (Part 1, 37.4.3).
      const current = has(a, NVA.WRITTEN) ? view.getBigUint64(0) : m.state.maxCounter;
      const next = current + 1n;
      view.setBigUint64(0, next);
      if (next > m.state.maxCounter) m.state.maxCounter = next;
      markWritten(m, nv);
    },
  }),
];
