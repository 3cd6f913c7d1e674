// Object commands (Part 3, sections 12 and 24.1): CreatePrimary, Create, CreateLoaded, Load,
// ReadPublic, ObjectChangeAuth, Unseal.

import { ALG, CC, OA, RC, RH, ST } from '../constants.js';
import { digestSize, hash, u32be } from '../crypto.js';
import { fail, numbered, rcHandle, rcParam } from '../errors.js';
import type { Entity, TpmMachine } from '../machine.js';
import { b2, marshal, params, type Writer } from '../marshal.js';
import {
  checkPair,
  generateObject,
  isStorageParent,
  makeObject,
  objectName,
  primaryStream,
  unwrapPrivate,
  validateTemplate,
  wrapPrivate,
  type TpmObject,
} from '../objects.js';
import {
  readPcrSelectionList,
  readPublic2B,
  readSensitiveCreate2B,
  writePcrSelectionList,
  writePublic,
  writeTicket,
  type PcrSelection,
  type Public,
  type SensitiveCreate,
} from '../types.js';
import { command, type CommandDef, type ExecContext } from '../command.js';
import { bytesToHex } from '../hex.js';

type CreateParams = [SensitiveCreate, Public, Uint8Array, PcrSelection[]];

const parseCreate = (r: Parameters<CommandDef['parse']>[0]): CreateParams =>
  params<CreateParams>(r, readSensitiveCreate2B, readPublic2B, b2(1024), readPcrSelectionList);

/** Primaries are cached by seed, template and data: deriving an RSA key takes a prime search. */
const primaryCache = new Map<string, { public: Public; sensitive: TpmObject['sensitive'] }>();

function derivePrimary(
  m: TpmMachine,
  hierarchy: number,
  template: Public,
  inSensitive: SensitiveCreate,
): TpmObject {
  const seed = m.seedOf(hierarchy);
  const templateBytes = marshal((w) => writePublic(w, template));
  const key = `${bytesToHex(seed)}:${bytesToHex(templateBytes)}:${bytesToHex(inSensitive.data)}`;
  let made = primaryCache.get(key);
  if (made === undefined) {
    made = generateObject(
      template,
      { userAuth: new Uint8Array(0), data: inSensitive.data },
      primaryStream(seed, template, inSensitive.data),
    );
    if (primaryCache.size > 64) primaryCache.clear();
    primaryCache.set(key, made);
  }
  const sensitive = { ...made.sensitive, authValue: inSensitive.userAuth };
  return makeObject(made.public, sensitive, hierarchy, u32be(hierarchy));
}

/** TPMS_CREATION_DATA, its hash and the creation ticket (Part 3, 12.1 and Part 2, 15.1). */
function writeCreation(
  m: TpmMachine,
  out: Writer,
  obj: TpmObject,
  parent: Entity,
  outsideInfo: Uint8Array,
  creationPCR: PcrSelection[],
  locality: number,
): void {
  const nameAlg = obj.public.nameAlg;
  const parentName = m.name(parent);
  const parentQn = parent.kind === 'object' ? parent.obj.qualifiedName : parentName;
  const parentNameAlg = parent.kind === 'object' ? parent.obj.public.nameAlg : ALG.NULL;
  const data = marshal((w) => {
    writePcrSelectionList(w, creationPCR);
    w.b2(m.pcrs.digest(nameAlg, creationPCR));
    w.u8(1 << Math.min(locality, 4))
      .u16(parentNameAlg)
      .b2(parentName)
      .b2(parentQn)
      .b2(outsideInfo);
  });
  const creationHash = hash(nameAlg, data);
  out.b2(data).b2(creationHash);
  writeTicket(out, {
    tag: ST.CREATION,
    hierarchy: obj.hierarchy,
    digest: m.ticketDigest(ST.CREATION, obj.hierarchy, obj.name, creationHash),
  });
}

function storageParent(e: Entity): TpmObject {
  if (
    e.kind !== 'object' ||
    !isStorageParent(e.obj.public) ||
    e.obj.sensitive.sensitive.length === 0
  ) {
    return fail(rcHandle(RC.TYPE, 1));
  }
  return e.obj;
}

function checkPcrSelection(selection: PcrSelection[], param: number): void {
  for (const s of selection)
    if (![ALG.SHA1, ALG.SHA256, ALG.SHA384].includes(s.hash as 4)) fail(rcParam(RC.PCR, param));
}

function createPrimary(
  m: TpmMachine,
  h: Entity,
  p: CreateParams,
  out: Writer,
  ctx: ExecContext,
  loaded: boolean,
): void {
  const [inSensitive, template, outsideInfo, creationPCR] = p;
  numbered(
    () => validateTemplate(template, undefined, true),
    (rc) => rcParam(rc, 2),
  );
  if (inSensitive.userAuth.length > digestSize(template.nameAlg)) fail(rcParam(RC.SIZE, 1));
  const obj = numbered(
    () => derivePrimary(m, h.handle, template, inSensitive),
    (rc) => rcParam(rc, 1),
  );
  const handle = m.allocateObjectHandle();
  m.objects.set(handle, obj);
  ctx.returnHandle = handle;
  if (loaded) {
    out.b2(new Uint8Array(0));
    out.sized((w) => writePublic(w, obj.public));
    out.b2(obj.name);
    return;
  }
  checkPcrSelection(creationPCR, 4);
  out.sized((w) => writePublic(w, obj.public));
  writeCreation(m, out, obj, h, outsideInfo, creationPCR, ctx.locality);
  out.b2(obj.name);
}

function createOrdinary(
  m: TpmMachine,
  parentEntity: Entity,
  p: CreateParams,
): { obj: TpmObject; priv: Uint8Array } {
  const [inSensitive, template] = p;
  const parent = storageParent(parentEntity);
  numbered(
    () => validateTemplate(template, parent.public, false),
    (rc) => rcParam(rc, 2),
  );
  if (inSensitive.userAuth.length > digestSize(template.nameAlg)) fail(rcParam(RC.SIZE, 1));
  const made = numbered(
    () => generateObject(template, inSensitive, (n) => m.random(n)),
    (rc) => rcParam(rc, 1),
  );
  const obj = makeObject(made.public, made.sensitive, parent.hierarchy, parent.qualifiedName);
  const priv = wrapPrivate(parent, obj.name, obj.sensitive, m.random(16));
  return { obj, priv };
}

export const objectCommands: CommandDef[] = [
  command({
    cc: CC.CreatePrimary,
    name: 'CreatePrimary',
    handles: [{ kind: 'hierarchyOrNull', auth: 'USER' }],
    returnsHandle: true,
    decrypt: true,
    encrypt: true,
    parse: parseCreate,
    run: (m, [h], p, out, ctx) => createPrimary(m, h!, p, out, ctx, false),
  }),
  command({
    cc: CC.Create,
    name: 'Create',
    handles: [{ kind: 'object', auth: 'USER' }],
    decrypt: true,
    encrypt: true,
    parse: parseCreate,
    run(m, [parent], p, out, ctx) {
      checkPcrSelection(p[3], 4);
      const { obj, priv } = createOrdinary(m, parent!, p);
      out.b2(priv);
      out.sized((w) => writePublic(w, obj.public));
      writeCreation(m, out, obj, parent!, p[2], p[3], ctx.locality);
    },
  }),
  command({
    cc: CC.CreateLoaded,
    name: 'CreateLoaded',
    handles: [{ kind: 'entityOrNull', auth: 'USER' }],
    returnsHandle: true,
    decrypt: true,
    encrypt: true,
    parse: (r) => {
      const [s, t] = params<[SensitiveCreate, Public]>(r, readSensitiveCreate2B, readPublic2B);
      return [s, t, new Uint8Array(0), []] as CreateParams;
    },
    run(m, [parent], p, out, ctx) {
      if (parent!.kind === 'permanent') {
        if (parent!.handle === RH.LOCKOUT) fail(rcHandle(RC.HANDLE, 1));
        createPrimary(m, parent!, p, out, ctx, true);
        return;
      }
      const { obj, priv } = createOrdinary(m, parent!, p);
      const handle = m.allocateObjectHandle();
      m.objects.set(handle, obj);
      ctx.returnHandle = handle;
      out.b2(priv);
      out.sized((w) => writePublic(w, obj.public));
      out.b2(obj.name);
    },
  }),
  command({
    cc: CC.Load,
    name: 'Load',
    handles: [{ kind: 'object', auth: 'USER' }],
    returnsHandle: true,
    decrypt: true,
    parse: (r) => params<[Uint8Array, Public]>(r, b2(1024), readPublic2B),
    run(m, [parentEntity], [inPrivate, pub], out, ctx) {
      const parent = storageParent(parentEntity!);
      numbered(
        () => validateTemplate(pub, parent.public, false),
        (rc) => rcParam(rc, 2),
      );
      const name = objectName(pub);
      const sensitive = numbered(
        () => unwrapPrivate(parent, name, inPrivate),
        (rc) => rcParam(rc, 1),
      );
      numbered(
        () => checkPair(pub, sensitive),
        (rc) => rcParam(rc, 2),
      );
      const obj = makeObject(pub, sensitive, parent.hierarchy, parent.qualifiedName);
      const handle = m.allocateObjectHandle();
      m.objects.set(handle, obj);
      ctx.returnHandle = handle;
      out.b2(obj.name);
    },
  }),
  command({
    cc: CC.ReadPublic,
    name: 'ReadPublic',
    handles: [{ kind: 'object' }],
    encrypt: true,
    parse: (r) => params<[]>(r),
    run(_m, [e], _p, out) {
      if (e!.kind !== 'object') return;
      out.sized((w) => writePublic(w, e.obj.public));
      out.b2(e.obj.name).b2(e.obj.qualifiedName);
    },
  }),
  command({
    cc: CC.ObjectChangeAuth,
    name: 'ObjectChangeAuth',
    handles: [{ kind: 'object', auth: 'ADMIN' }, { kind: 'object' }],
    decrypt: true,
    encrypt: true,
    parse: (r) => params<[Uint8Array]>(r, b2(64)),
    run(m, [objectEntity, parentEntity], [newAuth], out) {
      if (objectEntity!.kind !== 'object') return;
      const obj = objectEntity.obj;
      if (objectEntity.handle >>> 24 !== 0x80) fail(rcHandle(RC.HANDLE, 1));
      const parent = storageParent(parentEntity!);
      if (obj.hierarchy !== parent.hierarchy) fail(rcHandle(RC.TYPE, 2));
      if (newAuth.length > digestSize(obj.public.nameAlg)) fail(rcParam(RC.SIZE, 1));
      const sensitive = { ...obj.sensitive, authValue: newAuth };
      out.b2(wrapPrivate(parent, obj.name, sensitive, m.random(16)));
    },
  }),
  command({
    cc: CC.Unseal,
    name: 'Unseal',
    handles: [{ kind: 'object', auth: 'USER' }],
    encrypt: true,
    parse: (r) => params<[]>(r),
    run(_m, [e], _p, out) {
      if (e!.kind !== 'object') return;
      const pub = e.obj.public;
      if (pub.type !== ALG.KEYEDHASH) fail(rcHandle(RC.TYPE, 1));
      if ((pub.objectAttributes & (OA.sign | OA.decrypt | OA.restricted)) !== 0)
        fail(rcHandle(RC.ATTRIBUTES, 1));
      out.b2(e.obj.sensitive.sensitive);
    },
  }),
];
