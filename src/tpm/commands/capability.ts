// TPM2_GetCapability (Part 3, 30.2) over the capabilities of Part 2, 6.12: algorithms, handles,
// commands, PCRs, TPM properties and ECC curves.

import {
  ALG,
  CAP,
  CC,
  ECC_CURVE,
  HT,
  LIMITS,
  NVA,
  PERMANENT_HANDLES,
  PT,
  RC,
} from '../constants.js';
import { fail, rcParam } from '../errors.js';
import type { TpmMachine } from '../machine.js';
import { params, u32, type Writer } from '../marshal.js';
import { PCR_BANKS } from '../pcr.js';
import { command, type CommandDef } from '../command.js';

/** TPMA_ALGORITHM of each implemented algorithm (Part 2, 8.2). */
const ALGORITHMS: ReadonlyArray<[number, number]> = [
  [ALG.RSA, 0x0009],
  [ALG.SHA1, 0x0004],
  [ALG.HMAC, 0x0104],
  [ALG.AES, 0x0002],
  [ALG.MGF1, 0x0404],
  [ALG.KEYEDHASH, 0x030c],
  [ALG.XOR, 0x0006],
  [ALG.SHA256, 0x0004],
  [ALG.SHA384, 0x0004],
  [ALG.SHA512, 0x0004],
  [ALG.NULL, 0x0000],
  [ALG.RSASSA, 0x0101],
  [ALG.RSAES, 0x0201],
  [ALG.RSAPSS, 0x0101],
  [ALG.OAEP, 0x0201],
  [ALG.ECDSA, 0x0501],
  [ALG.ECDH, 0x0401],
  [ALG.KDF1_SP800_56A, 0x0404],
  [ALG.KDF1_SP800_108, 0x0404],
  [ALG.ECC, 0x0009],
  [ALG.SYMCIPHER, 0x0008],
  [ALG.CFB, 0x0202],
];

const CURVES = [ECC_CURVE.NIST_P256, ECC_CURVE.NIST_P384];

const ascii = (s: string): number =>
  ((s.charCodeAt(0) << 24) | (s.charCodeAt(1) << 16) | (s.charCodeAt(2) << 8) | s.charCodeAt(3)) >>>
  0;

/** TPMA_CC of a command (Part 2, 8.9). */
export function commandAttributes(def: CommandDef): number {
  return (
    ((def.cc & 0xffff) |
      (def.nv ? 1 << 22 : 0) |
      (def.flushed ? 1 << 24 : 0) |
      ((def.handles.length & 7) << 25) |
      (def.returnsHandle ? 1 << 28 : 0)) >>>
    0
  );
}

function fixedProperties(commands: number): Map<number, number> {
  return new Map([
    [PT.FAMILY_INDICATOR, ascii('2.0\0')],
    [PT.LEVEL, 0],
    [PT.REVISION, 159],
    [PT.DAY_OF_YEAR, 1],
    [PT.YEAR, 2025],
    [PT.MANUFACTURER, ascii('SVSM')],
    [PT.VENDOR_STRING_1, ascii('svsm')],
    [PT.VENDOR_STRING_2, ascii('-ts\0')],
    [PT.VENDOR_STRING_3, 0],
    [PT.VENDOR_STRING_4, 0],
    [PT.VENDOR_TPM_TYPE, 1],
    [PT.FIRMWARE_VERSION_1, 0x00010000],
    [PT.FIRMWARE_VERSION_2, 0x00000001],
    [PT.INPUT_BUFFER, LIMITS.MAX_BUFFER],
    [PT.HR_TRANSIENT_MIN, LIMITS.TRANSIENT_SLOTS],
    [PT.HR_PERSISTENT_MIN, LIMITS.PERSISTENT_MAX],
    [PT.HR_LOADED_MIN, LIMITS.SESSION_SLOTS],
    [PT.ACTIVE_SESSIONS_MAX, LIMITS.SESSION_SLOTS],
    [PT.PCR_COUNT, LIMITS.PCR_COUNT],
    [PT.PCR_SELECT_MIN, LIMITS.PCR_SELECT_MIN],
    [PT.CONTEXT_GAP_MAX, 0xffff],
    [PT.NV_COUNTERS_MAX, 0],
    [PT.NV_INDEX_MAX, LIMITS.NV_INDEX_MAX],
    [PT.MEMORY, 0],
    [PT.CLOCK_UPDATE, 0],
    [PT.CONTEXT_HASH, ALG.SHA256],
    [PT.CONTEXT_SYM, ALG.AES],
    [PT.CONTEXT_SYM_SIZE, 256],
    [PT.ORDERLY_COUNT, 0],
    [PT.MAX_COMMAND_SIZE, LIMITS.MAX_COMMAND_SIZE],
    [PT.MAX_RESPONSE_SIZE, LIMITS.MAX_RESPONSE_SIZE],
    [PT.MAX_DIGEST, LIMITS.MAX_DIGEST],
    [PT.MAX_OBJECT_CONTEXT, LIMITS.MAX_CONTEXT_SIZE],
    [PT.MAX_SESSION_CONTEXT, LIMITS.MAX_CONTEXT_SIZE],
    [PT.PS_FAMILY_INDICATOR, 1],
    [PT.PS_LEVEL, 0],
    [PT.PS_REVISION, 0x105],
    [PT.PS_DAY_OF_YEAR, 0],
    [PT.PS_YEAR, 0],
    [PT.SPLIT_MAX, 0],
    [PT.TOTAL_COMMANDS, commands],
    [PT.LIBRARY_COMMANDS, commands],
    [PT.VENDOR_COMMANDS, 0],
    [PT.NV_BUFFER_MAX, LIMITS.NV_BUFFER_MAX],
    [PT.MODES, 0],
    [PT.MAX_CAP_BUFFER, 1024],
  ]);
}

function variableProperties(m: TpmMachine): Map<number, number> {
  const s = m.state;
  const counters = s.nvIndices.filter(
    (n) => (n.public.attributes & NVA.TPM_NT_MASK) >> 4 === 1,
  ).length;
  const loaded = [...m.sessions.values()].filter((x) => !x.saved).length;
  const permanent =
    (s.ownerAuth.length > 0 ? 1 : 0) |
    (s.endorsementAuth.length > 0 ? 2 : 0) |
    (s.lockoutAuth.length > 0 ? 4 : 0) |
    (s.disableClear ? 1 << 8 : 0) |
    (m.inLockout() ? 1 << 9 : 0) |
    (1 << 10);
  const startupClear =
    (m.phEnable ? 1 : 0) |
    (m.shEnable ? 2 : 0) |
    (m.ehEnable ? 4 : 0) |
    (m.phEnableNV ? 8 : 0) |
    (1 << 31);
  return new Map([
    [PT.PERMANENT, permanent],
    [PT.STARTUP_CLEAR, startupClear >>> 0],
    [PT.HR_NV_INDEX, s.nvIndices.length],
    [PT.HR_LOADED, loaded],
    [PT.HR_LOADED_AVAIL, LIMITS.SESSION_SLOTS - m.sessions.size],
    [PT.HR_ACTIVE, m.sessions.size],
    [PT.HR_ACTIVE_AVAIL, LIMITS.SESSION_SLOTS - m.sessions.size],
    [PT.HR_TRANSIENT_AVAIL, LIMITS.TRANSIENT_SLOTS - m.objects.size - m.sequences.size],
    [PT.HR_PERSISTENT, s.persistentObjects.length],
    [PT.HR_PERSISTENT_AVAIL, LIMITS.PERSISTENT_MAX - s.persistentObjects.length],
    [PT.NV_COUNTERS, counters],
    [PT.NV_COUNTERS_AVAIL, LIMITS.NV_INDICES_MAX - s.nvIndices.length],
    [PT.ALGORITHM_SET, 0],
    [PT.LOADED_CURVES, CURVES.length],
    [PT.LOCKOUT_COUNTER, m.inLockout() ? s.maxTries : s.failedTries],
    [PT.MAX_AUTH_FAIL, s.maxTries],
    [PT.LOCKOUT_INTERVAL, Math.floor(s.recoveryTime / 1000)],
    [PT.LOCKOUT_RECOVERY, Math.floor(s.lockoutRecovery / 1000)],
    [PT.NV_WRITE_RECOVERY, 0],
    [PT.AUDIT_COUNTER_0, 0],
    [PT.AUDIT_COUNTER_1, 0],
  ]);
}

/** Every handle of the type of `first`, ascending (Part 3, 30.2: TPM_CAP_HANDLES). */
function handlesOfType(m: TpmMachine, first: number): number[] {
  const type = first >>> 24;
  switch (type) {
    case HT.PCR:
      return Array.from({ length: LIMITS.PCR_COUNT }, (_, i) => i);
    case HT.NV_INDEX:
      return m.state.nvIndices.map((n) => n.public.nvIndex);
    case HT.HMAC_SESSION:
      // TPM_HT_LOADED_SESSION: every loaded session, HMAC or policy.
      return [...m.sessions.values()].filter((s) => !s.saved).map((s) => s.handle);
    case HT.POLICY_SESSION:
      // TPM_HT_SAVED_SESSION: sessions whose context is saved.
      return [...m.sessions.values()].filter((s) => s.saved).map((s) => s.handle);
    case HT.PERMANENT:
      return [...PERMANENT_HANDLES];
    case HT.TRANSIENT:
      return [...m.objects.keys()];
    case HT.PERSISTENT:
      return m.state.persistentObjects.map((o) => o.handle);
    default:
      return fail(rcParam(RC.VALUE, 2));
  }
}

/** Writes up to `count` of the entries at or after `first`, with moreData. */
function page<T>(
  out: Writer,
  cap: number,
  all: readonly T[],
  key: (t: T) => number,
  first: number,
  count: number,
  max: number,
  write: (w: Writer, t: T) => void,
): void {
  const from = [...all].sort((a, b) => key(a) - key(b)).filter((t) => key(t) >= first);
  const n = Math.min(count, max, from.length);
  out
    .u8(from.length > n ? 1 : 0)
    .u32(cap)
    .u32(n);
  for (let i = 0; i < n; i++) write(out, from[i]!);
}

export function capabilityCommands(all: () => readonly CommandDef[]): CommandDef[] {
  return [
    command({
      cc: CC.GetCapability,
      name: 'GetCapability',
      handles: [],
      parse: (r) => params<[number, number, number]>(r, u32, u32, u32),
      run(m, _h, [cap, property, count], out) {
        switch (cap) {
          case CAP.ALGS:
            if (property > 0xffff) fail(rcParam(RC.VALUE, 2));
            page(
              out,
              cap,
              ALGORITHMS,
              (a) => a[0],
              property,
              count,
              LIMITS.MAX_CAP_ALGS,
              (w, [alg, attrs]) => w.u16(alg).u32(attrs),
            );
            return;
          case CAP.HANDLES: {
            const handles = handlesOfType(m, property);
            page(
              out,
              cap,
              handles,
              (h) => h,
              property,
              count,
              LIMITS.MAX_CAP_HANDLES,
              (w, h) => w.u32(h),
            );
            return;
          }
          case CAP.COMMANDS:
            if (property > 0xffff) fail(rcParam(RC.VALUE, 2));
            page(
              out,
              cap,
              all(),
              (d) => d.cc,
              property,
              count,
              LIMITS.MAX_CAP_CC,
              (w, d) => w.u32(commandAttributes(d)),
            );
            return;
          case CAP.PP_COMMANDS:
          case CAP.AUDIT_COMMANDS:
            out.u8(0).u32(cap).u32(0);
            return;
          case CAP.PCRS:
            out.u8(0).u32(cap).u32(PCR_BANKS.length);
            for (const alg of PCR_BANKS)
              out
                .u16(alg)
                .u8(3)
                .bytes(Uint8Array.of(0xff, 0xff, 0xff));
            return;
          case CAP.TPM_PROPERTIES: {
            const group = property & 0xffffff00;
            const props =
              group === 0x100
                ? fixedProperties(all().length)
                : group === 0x200
                  ? variableProperties(m)
                  : new Map<number, number>();
            page(
              out,
              cap,
              [...props],
              (p) => p[0],
              property,
              count,
              LIMITS.MAX_CAP_PROPERTIES,
              (w, [p, v]) => w.u32(p).u32(v),
            );
            return;
          }
          case CAP.PCR_PROPERTIES:
            out.u8(0).u32(cap).u32(0);
            return;
          case CAP.ECC_CURVES:
            page(
              out,
              cap,
              CURVES,
              (c) => c,
              property,
              count,
              508,
              (w, c) => w.u16(c),
            );
            return;
          default:
            fail(rcParam(RC.VALUE, 1));
        }
      },
    }),
  ];
}
