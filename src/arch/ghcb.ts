// The GHCB (guest-hypervisor communication block), protocol version 2: the shared 4 KiB page a
// SEV-ES/SNP guest fills before VMGEXIT, its valid bitmap, the return convention, the MSR
// protocol carried in the GHCB MSR itself, the SW_EXITCODE values, and the page-state-change
// buffer.
//
// Spec: AMD GHCB specification v2, restated in /work/shared/reference/sev-snp-abi.md §6 and
// linux-snp-guest.md §2.3/§3.3; cross-checked against Linux arch/x86/include/asm/svm.h
// (struct ghcb_save_area, struct ghcb), asm/sev-common.h (GHCB_MSR_*, struct psc_*,
// GHCB_TERM_*), uapi/asm/svm.h (SVM_EXIT_*, SVM_VMGEXIT_*) and coconut-svsm kernel/src/sev.

import { defineStruct, embed, FieldRangeError, LayoutError, type FieldValue } from './struct.js';
import { defineBits, field, flag } from './bits.js';
import { EVENT_INJ, EVENT_TYPE } from './vmsa.js';
import { MSR } from './x86.js';

/** MSR_AMD64_SEV_ES_GHCB: holds the GHCB's GPA or an MSR-protocol request/response. */
export const MSR_GHCB = MSR.GHCB;
export const GHCB_SIZE = 0x1000;
/** PROTOCOL_VERSION a guest writes; SNP needs 2. */
export const GHCB_PROTOCOL_VERSION = 2;
/** GHCB_USAGE 0: the standard layout below (other values are hypervisor-defined formats). */
export const GHCB_USAGE_STANDARD = 0;
export const GHCB_SHARED_BUFFER_SIZE = 0x7f0;

// ---------------------------------------------------------------------------------------------
// Page layout

// GHCB spec, table "GHCB layout" (save-area fields used by the protocol; everything else is
// reserved). Linux struct ghcb_save_area / struct ghcb give the same offsets.
export const GHCB = defineStruct('GHCB', GHCB_SIZE, {
  cpl: { offset: 0x0cb, type: 'u8', doc: 'CPL' },
  xss: { offset: 0x140, type: 'u64', doc: 'XSS' },
  dr7: { offset: 0x160, type: 'u64', doc: 'DR7' },
  rip: { offset: 0x178, type: 'u64', doc: 'RIP' },
  rsp: { offset: 0x1d8, type: 'u64', doc: 'RSP' },
  rax: { offset: 0x1f8, type: 'u64', doc: 'RAX' },
  rcx: { offset: 0x308, type: 'u64', doc: 'RCX' },
  rdx: { offset: 0x310, type: 'u64', doc: 'RDX' },
  rbx: { offset: 0x318, type: 'u64', doc: 'RBX' },
  rbp: { offset: 0x328, type: 'u64', doc: 'RBP' },
  rsi: { offset: 0x330, type: 'u64', doc: 'RSI' },
  rdi: { offset: 0x338, type: 'u64', doc: 'RDI' },
  r8: { offset: 0x340, type: 'u64', doc: 'R8' },
  r9: { offset: 0x348, type: 'u64', doc: 'R9' },
  r10: { offset: 0x350, type: 'u64', doc: 'R10' },
  r11: { offset: 0x358, type: 'u64', doc: 'R11' },
  r12: { offset: 0x360, type: 'u64', doc: 'R12' },
  r13: { offset: 0x368, type: 'u64', doc: 'R13' },
  r14: { offset: 0x370, type: 'u64', doc: 'R14' },
  r15: { offset: 0x378, type: 'u64', doc: 'R15' },
  swExitCode: { offset: 0x390, type: 'u64', doc: 'SW_EXITCODE' },
  swExitInfo1: { offset: 0x398, type: 'u64', doc: 'SW_EXITINFO1' },
  swExitInfo2: { offset: 0x3a0, type: 'u64', doc: 'SW_EXITINFO2' },
  swScratch: { offset: 0x3a8, type: 'u64', doc: 'SW_SCRATCH (GPA of the scratch area)' },
  xcr0: { offset: 0x3e8, type: 'u64', doc: 'XCR0' },
  validBitmap: { offset: 0x3f0, type: 'bytes', size: 16, doc: 'VALID_BITMAP (128 bits, LE)' },
  x87StateGpa: { offset: 0x400, type: 'u64', doc: 'X87_STATE_GPA' },
  sharedBuffer: {
    offset: 0x800,
    type: 'bytes',
    size: GHCB_SHARED_BUFFER_SIZE,
    doc: 'SHARED_BUFFER',
  },
  protocolVersion: { offset: 0xffa, type: 'u16', doc: 'PROTOCOL_VERSION' },
  ghcbUsage: { offset: 0xffc, type: 'u32', doc: 'GHCB_USAGE' },
});

export type GhcbField = keyof typeof GHCB.specs & string;

/**
 * Save-area fields that have a valid-bitmap bit. The bitmap covers offsets 0x000..0x3FF, so the
 * bitmap itself, X87_STATE_GPA (0x400 would be bit 128) and everything after the save area have
 * none.
 */
export type GhcbValidatedField = Exclude<
  GhcbField,
  'validBitmap' | 'x87StateGpa' | 'sharedBuffer' | 'protocolVersion' | 'ghcbUsage'
>;

const VALID_BITMAP_OFFSET = GHCB.offset('validBitmap');

/** Every field with a valid bit, in offset order. */
export const GHCB_VALIDATED_FIELDS: readonly GhcbValidatedField[] = GHCB.fields
  .filter((f) => f.offset < VALID_BITMAP_OFFSET)
  .map((f) => f.name as GhcbValidatedField);

// ---------------------------------------------------------------------------------------------
// Valid bitmap

/**
 * The valid-bitmap bit of a save-area field: offset / 8 (GHCB spec "valid bitmap"; bit n is bit
 * n % 8 of bitmap byte n / 8, i.e. qword 0 holds bits 0-63, qword 1 bits 64-127, little-endian).
 */
export function ghcbValidBit(name: GhcbValidatedField): number {
  const offset = GHCB.offset(name);
  if (offset >= VALID_BITMAP_OFFSET) {
    throw new LayoutError(`GHCB.${name} at 0x${offset.toString(16)} has no valid-bitmap bit`);
  }
  return offset >> 3;
}

function checkPage(page: Uint8Array, base: number): void {
  if (!Number.isInteger(base) || base < 0 || base + GHCB_SIZE > page.length) {
    throw new FieldRangeError(
      `GHCB needs 0x1000 bytes at 0x${base.toString(16)}, buffer has 0x${page.length.toString(16)}`,
    );
  }
}

function bitmapByte(name: GhcbValidatedField, base: number): { at: number; mask: number } {
  const bit = ghcbValidBit(name);
  return { at: base + VALID_BITMAP_OFFSET + (bit >> 3), mask: 1 << (bit & 7) };
}

/** Sets the valid bit of `name` (the field's value is left alone). */
export function markValid(page: Uint8Array, name: GhcbValidatedField, base = 0): void {
  checkPage(page, base);
  const { at, mask } = bitmapByte(name, base);
  page[at] = page[at]! | mask;
}

export function isValid(page: Uint8Array, name: GhcbValidatedField, base = 0): boolean {
  checkPage(page, base);
  const { at, mask } = bitmapByte(name, base);
  return (page[at]! & mask) !== 0;
}

/** Zeroes the whole bitmap, as a guest does before each request. */
export function clearValid(page: Uint8Array, base = 0): void {
  checkPage(page, base);
  page.fill(0, base + VALID_BITMAP_OFFSET, base + VALID_BITMAP_OFFSET + 16);
}

/**
 * The required fields whose valid bit is clear, in the order given. A hypervisor answers a
 * non-empty result with GHCB error MISSING_INPUT. Bits that no required field maps to are
 * ignored on purpose: guests set stray bits (coconut's setters put PROTOCOL_VERSION and
 * GHCB_USAGE at bit 127).
 */
export function missingInputs(
  page: Uint8Array,
  required: readonly GhcbValidatedField[],
  base = 0,
): GhcbValidatedField[] {
  return required.filter((name) => !isValid(page, name, base));
}

/** The 128-bit bitmap as one bigint (bit n = bit n), for logs. */
export function readValidBitmap(page: Uint8Array, base = 0): bigint {
  checkPage(page, base);
  let v = 0n;
  for (let i = 15; i >= 0; i--) v = (v << 8n) | BigInt(page[base + VALID_BITMAP_OFFSET + i]!);
  return v;
}

/** The fields whose valid bit is set, in offset order, for logs and tests. */
export function validFields(page: Uint8Array, base = 0): GhcbValidatedField[] {
  return GHCB_VALIDATED_FIELDS.filter((name) => isValid(page, name, base));
}

type GhcbValue<K extends GhcbField> = FieldValue<(typeof GHCB.specs)[K]>;

/** Writes a save-area field and marks it valid (what a guest or a responding hypervisor does). */
export function setValidField<K extends GhcbValidatedField>(
  page: Uint8Array,
  name: K,
  value: GhcbValue<K>,
  base = 0,
): void {
  GHCB.set(page, name, value, base);
  markValid(page, name, base);
}

/** Reads a save-area field if its valid bit is set, else undefined. */
export function getValidField<K extends GhcbValidatedField>(
  page: Uint8Array,
  name: K,
  base = 0,
): GhcbValue<K> | undefined {
  return isValid(page, name, base) ? GHCB.get(page, name, base) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Return convention (hypervisor -> guest, in SW_EXITINFO1[31:0] / SW_EXITINFO2)

/** SW_EXITINFO1[31:0] after a VMGEXIT. */
export const GHCB_RESULT = {
  /** Success. */
  OK: 0,
  /** SW_EXITINFO2 holds an event (SVM_EVENT_INJ format) for the guest to raise. */
  EXCEPTION: 1,
  /** SW_EXITINFO2 holds a GHCB_ERR code. */
  GHCB_ERROR: 2,
} as const;

/** GHCB error codes in SW_EXITINFO2 when SW_EXITINFO1[31:0] = 2 (GHCB_ERR_* in sev-common.h). */
export const GHCB_ERR = {
  NOT_REGISTERED: 1,
  INVALID_USAGE: 2,
  INVALID_SCRATCH_AREA: 3,
  MISSING_INPUT: 4,
  INVALID_INPUT: 5,
  INVALID_EVENT: 6,
} as const;
export type GhcbErrCode = (typeof GHCB_ERR)[keyof typeof GHCB_ERR];

/** The result code in SW_EXITINFO1[31:0]. */
export function ghcbResultCode(swExitInfo1: bigint): number {
  return Number(swExitInfo1 & 0xffff_ffffn);
}

/**
 * A valid exception event in EVENTINJ format (vmsa.ts), as SW_EXITINFO2 carries it when the
 * result is EXCEPTION; with an error code if one is given (e.g. #GP(0): 13, 0).
 */
export function exceptionEvent(vector: number, errorCode?: number): bigint {
  return EVENT_INJ.encode({
    vector,
    type: EVENT_TYPE.EXCEPTION,
    valid: true,
    errorCodeValid: errorCode !== undefined,
    errorCode: errorCode ?? 0,
  });
}

// ---------------------------------------------------------------------------------------------
// MSR protocol (GHCB spec "GHCB MSR protocol"; GHCBInfo in bits 11:0, GHCBData in 63:12)

export const GHCB_MSR_INFO = {
  SEV_INFO_RESP: 0x001,
  SEV_INFO_REQ: 0x002,
  CPUID_REQ: 0x004,
  CPUID_RESP: 0x005,
  AP_RESET_HOLD_REQ: 0x006,
  AP_RESET_HOLD_RESP: 0x007,
  PREFERRED_GPA_REQ: 0x010,
  PREFERRED_GPA_RESP: 0x011,
  REGISTER_GPA_REQ: 0x012,
  REGISTER_GPA_RESP: 0x013,
  PSC_REQ: 0x014,
  PSC_RESP: 0x015,
  RUN_VMPL_REQ: 0x016,
  RUN_VMPL_RESP: 0x017,
  HV_FEATURES_REQ: 0x080,
  HV_FEATURES_RESP: 0x081,
  TERM_REQ: 0x100,
} as const;

/** PREFERRED_GPA response GFN meaning "no preference" (GHCB_MSR_PREF_GPA_NONE). */
export const GHCB_MSR_PREFERRED_GPA_NONE = 0xf_ffff_ffff_ffff;

const info = field(0, 12, 'GHCBInfo');

/**
 * Any MSR-protocol value: the function code and the data above it (also the layout of the AP
 * reset hold result and the HV feature bitmap, which fill all of [63:12]).
 */
export const GHCB_MSR_VALUE = defineBits('GHCB_MSR', 64, { info, data: field(12, 52) });

export const GHCB_MSR_SEV_INFO = defineBits('GHCB_MSR_SEV_INFO_RESP', 64, {
  info,
  cBitPosition: field(24, 8),
  minProtocol: field(32, 16),
  maxProtocol: field(48, 16),
});

/** CPUID request and response: the register in [31:30] (echoed back), leaf or value in [63:32]. */
export const GHCB_MSR_CPUID = defineBits('GHCB_MSR_CPUID', 64, {
  info,
  register: field(30, 2, '0 EAX, 1 EBX, 2 ECX, 3 EDX'),
  data: field(32, 32, 'request: function (leaf); response: register value'),
});

/** GHCB GPA, preferred-GPA and register-GPA values: a GFN in [63:12]. */
export const GHCB_MSR_GFN = defineBits('GHCB_MSR_GFN', 64, { info, gfn: field(12, 52) });

export const GHCB_MSR_PSC_REQUEST = defineBits('GHCB_MSR_PSC_REQ', 64, {
  info,
  gfn: field(12, 40),
  operation: field(52, 4, 'PSC_OP: 1 private, 2 shared'),
});

/** PSC and RUN_VMPL responses: an error code in [63:32], 0 = success. */
export const GHCB_MSR_ERROR_RESPONSE = defineBits('GHCB_MSR_ERROR_RESP', 64, {
  info,
  error: field(32, 32),
});

export const GHCB_MSR_RUN_VMPL_REQUEST = defineBits('GHCB_MSR_VMPL_REQ', 64, {
  info,
  vmpl: field(32, 8),
});

export const GHCB_MSR_TERM_REQUEST = defineBits('GHCB_MSR_TERM_REQ', 64, {
  info,
  reasonSet: field(12, 4),
  reasonCode: field(16, 8),
});

export const CPUID_REGISTER = { EAX: 0, EBX: 1, ECX: 2, EDX: 3 } as const;
export type CpuidRegister = (typeof CPUID_REGISTER)[keyof typeof CPUID_REGISTER];

/**
 * One decoded GHCB MSR value. GFNs and codes are numbers (all fit in 52 bits); 52-bit bitmaps and
 * opaque data are bigints. Reserved bits are dropped by decoding.
 */
export type GhcbMsrMessage =
  /** GHCBInfo 0: the value is the GHCB's GPA, i.e. a full-GHCB VMGEXIT. */
  | { readonly kind: 'ghcbGpa'; readonly gfn: number }
  | { readonly kind: 'sevInfoRequest' }
  | {
      readonly kind: 'sevInfoResponse';
      readonly maxProtocol: number;
      readonly minProtocol: number;
      readonly cBitPosition: number;
    }
  | { readonly kind: 'cpuidRequest'; readonly fn: number; readonly register: CpuidRegister }
  | { readonly kind: 'cpuidResponse'; readonly register: CpuidRegister; readonly value: number }
  | { readonly kind: 'apResetHoldRequest' }
  /** Non-zero result = the AP was woken. */
  | { readonly kind: 'apResetHoldResponse'; readonly result: bigint }
  | { readonly kind: 'preferredGpaRequest' }
  | { readonly kind: 'preferredGpaResponse'; readonly gfn: number }
  | { readonly kind: 'registerGpaRequest'; readonly gfn: number }
  | { readonly kind: 'registerGpaResponse'; readonly gfn: number }
  | { readonly kind: 'pscRequest'; readonly gfn: number; readonly operation: number }
  | { readonly kind: 'pscResponse'; readonly error: number }
  | { readonly kind: 'runVmplRequest'; readonly vmpl: number }
  | { readonly kind: 'runVmplResponse'; readonly error: number }
  | { readonly kind: 'hvFeaturesRequest' }
  | { readonly kind: 'hvFeaturesResponse'; readonly features: bigint }
  | { readonly kind: 'terminate'; readonly reasonSet: number; readonly reasonCode: number }
  /** A GHCBInfo code this table does not know; data is bits 63:12. */
  | { readonly kind: 'unknown'; readonly info: number; readonly data: bigint };

export type GhcbMsrKind = GhcbMsrMessage['kind'];

/** The GHCBInfo function code (bits 11:0) of a GHCB MSR value. */
export function ghcbMsrInfo(value: bigint): number {
  return Number(GHCB_MSR_VALUE.get(value, 'info'));
}

/** Decodes a GHCB MSR value. Throws FieldRangeError only if the value is not a u64. */
export function decodeMsrProtocol(value: bigint): GhcbMsrMessage {
  const code = ghcbMsrInfo(value);
  const num = (v: bigint): number => Number(v);
  switch (code) {
    case 0:
      return { kind: 'ghcbGpa', gfn: num(GHCB_MSR_GFN.get(value, 'gfn')) };
    case GHCB_MSR_INFO.SEV_INFO_REQ:
      return { kind: 'sevInfoRequest' };
    case GHCB_MSR_INFO.SEV_INFO_RESP: {
      const d = GHCB_MSR_SEV_INFO.decode(value);
      return {
        kind: 'sevInfoResponse',
        maxProtocol: num(d.maxProtocol),
        minProtocol: num(d.minProtocol),
        cBitPosition: num(d.cBitPosition),
      };
    }
    case GHCB_MSR_INFO.CPUID_REQ:
    case GHCB_MSR_INFO.CPUID_RESP: {
      const d = GHCB_MSR_CPUID.decode(value);
      const register = num(d.register) as CpuidRegister;
      return code === GHCB_MSR_INFO.CPUID_REQ
        ? { kind: 'cpuidRequest', fn: num(d.data), register }
        : { kind: 'cpuidResponse', register, value: num(d.data) };
    }
    case GHCB_MSR_INFO.AP_RESET_HOLD_REQ:
      return { kind: 'apResetHoldRequest' };
    case GHCB_MSR_INFO.AP_RESET_HOLD_RESP:
      return { kind: 'apResetHoldResponse', result: GHCB_MSR_VALUE.get(value, 'data') };
    case GHCB_MSR_INFO.PREFERRED_GPA_REQ:
      return { kind: 'preferredGpaRequest' };
    case GHCB_MSR_INFO.PREFERRED_GPA_RESP:
      return { kind: 'preferredGpaResponse', gfn: num(GHCB_MSR_GFN.get(value, 'gfn')) };
    case GHCB_MSR_INFO.REGISTER_GPA_REQ:
      return { kind: 'registerGpaRequest', gfn: num(GHCB_MSR_GFN.get(value, 'gfn')) };
    case GHCB_MSR_INFO.REGISTER_GPA_RESP:
      return { kind: 'registerGpaResponse', gfn: num(GHCB_MSR_GFN.get(value, 'gfn')) };
    case GHCB_MSR_INFO.PSC_REQ: {
      const d = GHCB_MSR_PSC_REQUEST.decode(value);
      return { kind: 'pscRequest', gfn: num(d.gfn), operation: num(d.operation) };
    }
    case GHCB_MSR_INFO.PSC_RESP:
      return { kind: 'pscResponse', error: num(GHCB_MSR_ERROR_RESPONSE.get(value, 'error')) };
    case GHCB_MSR_INFO.RUN_VMPL_REQ:
      return { kind: 'runVmplRequest', vmpl: num(GHCB_MSR_RUN_VMPL_REQUEST.get(value, 'vmpl')) };
    case GHCB_MSR_INFO.RUN_VMPL_RESP:
      return { kind: 'runVmplResponse', error: num(GHCB_MSR_ERROR_RESPONSE.get(value, 'error')) };
    case GHCB_MSR_INFO.HV_FEATURES_REQ:
      return { kind: 'hvFeaturesRequest' };
    case GHCB_MSR_INFO.HV_FEATURES_RESP:
      return { kind: 'hvFeaturesResponse', features: GHCB_MSR_VALUE.get(value, 'data') };
    case GHCB_MSR_INFO.TERM_REQ: {
      const d = GHCB_MSR_TERM_REQUEST.decode(value);
      return { kind: 'terminate', reasonSet: num(d.reasonSet), reasonCode: num(d.reasonCode) };
    }
    default:
      return { kind: 'unknown', info: code, data: GHCB_MSR_VALUE.get(value, 'data') };
  }
}

/**
 * Encodes a message as a GHCB MSR value; fields wider than their bit range throw
 * FieldRangeError. decodeMsrProtocol(encodeMsrProtocol(m)) deep-equals m.
 */
export function encodeMsrProtocol(m: GhcbMsrMessage): bigint {
  const I = GHCB_MSR_INFO;
  switch (m.kind) {
    case 'ghcbGpa':
      return GHCB_MSR_GFN.encode({ info: 0, gfn: m.gfn });
    case 'sevInfoRequest':
      return BigInt(I.SEV_INFO_REQ);
    case 'sevInfoResponse':
      return GHCB_MSR_SEV_INFO.encode({
        info: I.SEV_INFO_RESP,
        maxProtocol: m.maxProtocol,
        minProtocol: m.minProtocol,
        cBitPosition: m.cBitPosition,
      });
    case 'cpuidRequest':
      return GHCB_MSR_CPUID.encode({ info: I.CPUID_REQ, register: m.register, data: m.fn });
    case 'cpuidResponse':
      return GHCB_MSR_CPUID.encode({ info: I.CPUID_RESP, register: m.register, data: m.value });
    case 'apResetHoldRequest':
      return BigInt(I.AP_RESET_HOLD_REQ);
    case 'apResetHoldResponse':
      return GHCB_MSR_VALUE.encode({ info: I.AP_RESET_HOLD_RESP, data: m.result });
    case 'preferredGpaRequest':
      return BigInt(I.PREFERRED_GPA_REQ);
    case 'preferredGpaResponse':
      return GHCB_MSR_GFN.encode({ info: I.PREFERRED_GPA_RESP, gfn: m.gfn });
    case 'registerGpaRequest':
      return GHCB_MSR_GFN.encode({ info: I.REGISTER_GPA_REQ, gfn: m.gfn });
    case 'registerGpaResponse':
      return GHCB_MSR_GFN.encode({ info: I.REGISTER_GPA_RESP, gfn: m.gfn });
    case 'pscRequest':
      return GHCB_MSR_PSC_REQUEST.encode({ info: I.PSC_REQ, gfn: m.gfn, operation: m.operation });
    case 'pscResponse':
      return GHCB_MSR_ERROR_RESPONSE.encode({ info: I.PSC_RESP, error: m.error });
    case 'runVmplRequest':
      return GHCB_MSR_RUN_VMPL_REQUEST.encode({ info: I.RUN_VMPL_REQ, vmpl: m.vmpl });
    case 'runVmplResponse':
      return GHCB_MSR_ERROR_RESPONSE.encode({ info: I.RUN_VMPL_RESP, error: m.error });
    case 'hvFeaturesRequest':
      return BigInt(I.HV_FEATURES_REQ);
    case 'hvFeaturesResponse':
      return GHCB_MSR_VALUE.encode({ info: I.HV_FEATURES_RESP, data: m.features });
    case 'terminate':
      return GHCB_MSR_TERM_REQUEST.encode({
        info: I.TERM_REQ,
        reasonSet: m.reasonSet,
        reasonCode: m.reasonCode,
      });
    case 'unknown':
      return GHCB_MSR_VALUE.encode({ info: m.info, data: m.data });
  }
}

export const msrGhcbGpa = (gfn: number): bigint => encodeMsrProtocol({ kind: 'ghcbGpa', gfn });
export const msrSevInfoRequest = (): bigint => encodeMsrProtocol({ kind: 'sevInfoRequest' });
export const msrSevInfoResponse = (
  maxProtocol: number,
  minProtocol: number,
  cBitPosition: number,
): bigint => encodeMsrProtocol({ kind: 'sevInfoResponse', maxProtocol, minProtocol, cBitPosition });
export const msrCpuidRequest = (fn: number, register: CpuidRegister): bigint =>
  encodeMsrProtocol({ kind: 'cpuidRequest', fn, register });
export const msrCpuidResponse = (register: CpuidRegister, value: number): bigint =>
  encodeMsrProtocol({ kind: 'cpuidResponse', register, value });
export const msrApResetHoldRequest = (): bigint =>
  encodeMsrProtocol({ kind: 'apResetHoldRequest' });
export const msrApResetHoldResponse = (result: bigint): bigint =>
  encodeMsrProtocol({ kind: 'apResetHoldResponse', result });
export const msrPreferredGpaRequest = (): bigint =>
  encodeMsrProtocol({ kind: 'preferredGpaRequest' });
export const msrPreferredGpaResponse = (gfn: number): bigint =>
  encodeMsrProtocol({ kind: 'preferredGpaResponse', gfn });
export const msrRegisterGpaRequest = (gfn: number): bigint =>
  encodeMsrProtocol({ kind: 'registerGpaRequest', gfn });
export const msrRegisterGpaResponse = (gfn: number): bigint =>
  encodeMsrProtocol({ kind: 'registerGpaResponse', gfn });
export const msrPscRequest = (gfn: number, operation: number): bigint =>
  encodeMsrProtocol({ kind: 'pscRequest', gfn, operation });
export const msrPscResponse = (error: number): bigint =>
  encodeMsrProtocol({ kind: 'pscResponse', error });
export const msrRunVmplRequest = (vmpl: number): bigint =>
  encodeMsrProtocol({ kind: 'runVmplRequest', vmpl });
export const msrRunVmplResponse = (error: number): bigint =>
  encodeMsrProtocol({ kind: 'runVmplResponse', error });
export const msrHvFeaturesRequest = (): bigint => encodeMsrProtocol({ kind: 'hvFeaturesRequest' });
export const msrHvFeaturesResponse = (features: bigint): bigint =>
  encodeMsrProtocol({ kind: 'hvFeaturesResponse', features });
export const msrTerminateRequest = (reasonSet: number, reasonCode: number): bigint =>
  encodeMsrProtocol({ kind: 'terminate', reasonSet, reasonCode });

// GHCB spec "Hypervisor feature support" (GHCB_HV_FT_* in sev-common.h; bits 6 and 9 from
// coconut's GHCBHvFeatures). Returned in GHCBData of HV_FEATURES_RESP and in SW_EXITINFO2 of the
// HV_FEATURES NAE event.
export const GHCB_HV_FEATURES = defineBits('GHCB_HV_FEATURES', 64, {
  snp: flag(0, 'SEV-SNP'),
  apCreation: flag(1, 'SNP AP creation'),
  restrictedInjection: flag(2, 'restricted injection'),
  restrictedInjectionTimer: flag(3, 'restricted injection timer'),
  apicIdList: flag(4, 'GET_APIC_IDS'),
  multiVmpl: flag(5, 'multiple VMPLs (SNP_RUN_VMPL)'),
  pageStateChange: flag(6, 'coconut SEV_PAGE_STATE_CHANGE'),
  extendedInterrupts: flag(9, 'coconut SEV_SNP_EXT_INTERRUPTS (bit 7 in older coconut)'),
});

/** What an SVSM needs from the hypervisor: SNP, AP creation and multiple VMPLs. */
export const SVSM_REQUIRED_HV_FEATURES = GHCB_HV_FEATURES.encode({
  snp: true,
  apCreation: true,
  multiVmpl: true,
});

// Termination reasons (GHCB spec "termination request"; SEV_TERM_SET_* / GHCB_TERM_* in
// sev-common.h). Reason set 0 is the spec's; set 1 is Linux's own.
export const GHCB_TERM_REASON_SET = { GENERAL: 0, LINUX: 1 } as const;

export const GHCB_TERM_GENERAL = {
  GENERAL_REQUEST: 0,
  PROTOCOL_UNSUPPORTED: 1,
  SNP_UNSUPPORTED: 2,
} as const;

/** Linux reason codes (set 1); 10-12 are absent from Linux 6.12. */
export const GHCB_TERM_LINUX = {
  REGISTER: 0,
  PSC: 1,
  PVALIDATE: 2,
  NOT_VMPL0: 3,
  CPUID: 4,
  CPUID_HV: 5,
  SECRETS_PAGE: 6,
  NO_SVSM: 7,
  SVSM_VMPL0: 8,
  SVSM_CAA: 9,
  SECURE_TSC: 10,
  SVSM_CA_REMAP_FAIL: 11,
  SAVIC_FAIL: 12,
} as const;

function nameOf(table: Readonly<Record<string, number>>, value: number): string | undefined {
  for (const [k, v] of Object.entries(table)) if (v === value) return k;
  return undefined;
}

/** "general/SNP_UNSUPPORTED", "linux/PVALIDATE" or "set 5/code 3", for logs and exit messages. */
export function describeTermination(reasonSet: number, reasonCode: number): string {
  const table =
    reasonSet === GHCB_TERM_REASON_SET.GENERAL
      ? GHCB_TERM_GENERAL
      : reasonSet === GHCB_TERM_REASON_SET.LINUX
        ? GHCB_TERM_LINUX
        : undefined;
  const setName = nameOf(GHCB_TERM_REASON_SET, reasonSet)?.toLowerCase() ?? `set ${reasonSet}`;
  const codeName = table === undefined ? undefined : nameOf(table, reasonCode);
  return `${setName}/${codeName ?? `code ${reasonCode}`}`;
}

// ---------------------------------------------------------------------------------------------
// SW_EXITCODE values

/**
 * Exit codes a guest puts in SW_EXITCODE: the SVM automatic-exit codes of the NAE events it
 * forwards (uapi/asm/svm.h SVM_EXIT_*), then the software-defined VMGEXIT codes
 * (SVM_VMGEXIT_*; GHCB spec table "NAE events").
 */
export const SW_EXITCODE = {
  READ_DR7: 0x27,
  WRITE_DR7: 0x37,
  /** #AC intercept (SVM_EXIT_EXCP_BASE + 17). */
  EXCP_AC: 0x51,
  RDTSC: 0x6e,
  RDPMC: 0x6f,
  CPUID: 0x72,
  IOIO: 0x7b,
  /** EXITINFO1 0 = RDMSR, 1 = WRMSR (MSR_EXITINFO1). */
  MSR: 0x7c,
  VMMCALL: 0x81,
  RDTSCP: 0x87,
  WBINVD: 0x89,
  NPF: 0x400,
  VMGEXIT: 0x403,
  /** Only a #VC error code: access to a page whose RMP Validated bit is clear. */
  PAGE_NOT_VALIDATED: 0x404,
  MMIO_READ: 0x8000_0001,
  MMIO_WRITE: 0x8000_0002,
  NMI_COMPLETE: 0x8000_0003,
  AP_HLT_LOOP: 0x8000_0004,
  AP_JUMP_TABLE: 0x8000_0005,
  PSC: 0x8000_0010,
  GUEST_REQUEST: 0x8000_0011,
  EXT_GUEST_REQUEST: 0x8000_0012,
  AP_CREATION: 0x8000_0013,
  HV_DOORBELL_PAGE: 0x8000_0014,
  HV_IPI: 0x8000_0015,
  GET_APIC_IDS: 0x8000_0017,
  SNP_RUN_VMPL: 0x8000_0018,
  SAVIC: 0x8000_001a,
  /** coconut's numbering; older coconut used 0x8000_0019..1B for these three. */
  CONFIGURE_INT_INJ: 0x8000_001b,
  DISABLE_ALT_INJ: 0x8000_001c,
  SPECIFIC_EOI: 0x8000_001d,
  SEV_TIO_GUEST_REQUEST: 0x8000_0020,
  HV_FEATURES: 0x8000_fffd,
  TERM_REQUEST: 0x8000_fffe,
  UNSUPPORTED: 0x8000_ffff,
} as const;

export type SwExitCodeName = keyof typeof SW_EXITCODE;
export type SwExitCode = (typeof SW_EXITCODE)[SwExitCodeName];

const EXIT_CODE_NAMES: ReadonlyMap<number, SwExitCodeName> = new Map(
  (Object.entries(SW_EXITCODE) as [SwExitCodeName, number][]).map(([k, v]) => [v, k]),
);

/** The name of an exit code ("CPUID", "PSC"...), or undefined for codes this table lacks. */
export function swExitCodeName(code: number | bigint): SwExitCodeName | undefined {
  const n = typeof code === 'bigint' ? (code <= 0xffff_ffffn ? Number(code) : -1) : code;
  return EXIT_CODE_NAMES.get(n);
}

/** SW_EXITINFO1 of the MSR exit. */
export const MSR_EXITINFO1 = { RDMSR: 0, WRMSR: 1 } as const;

/** SW_EXITINFO1 of AP_JUMP_TABLE: SET takes the GPA in EXITINFO2, GET returns it there. */
export const AP_JUMP_TABLE_OP = { SET: 0, GET: 1 } as const;

// AMD APM vol. 2, "IOIO intercept" EXITINFO1 (same format in SW_EXITINFO1); data in RAX, string
// forms go through SW_SCRATCH with the repeat count in SW_EXITINFO2.
export const IOIO_EXITINFO1 = defineBits('IOIO_EXITINFO1', 64, {
  in: flag(0, 'TYPE: 1 = IN, 0 = OUT'),
  string: flag(2, 'STR'),
  rep: flag(3, 'REP'),
  size8: flag(4, 'SZ8'),
  size16: flag(5, 'SZ16'),
  size32: flag(6, 'SZ32'),
  address16: flag(7, 'A16'),
  address32: flag(8, 'A32'),
  address64: flag(9, 'A64'),
  segment: field(10, 3, 'SEG (effective segment of a string OUT)'),
  port: field(16, 16),
});

// GHCB spec "SNP AP creation" (SVM_VMGEXIT_AP_CREATE*); EXITINFO2 = VMSA GPA, RAX = SEV_FEATURES.
export const AP_CREATION_EXITINFO1 = defineBits('AP_CREATION_EXITINFO1', 64, {
  request: field(0, 16, 'AP_CREATION_OP'),
  vmpl: field(16, 4),
  apicId: field(32, 32),
});

export const AP_CREATION_OP = { CREATE_ON_INIT: 0, CREATE: 1, DESTROY: 2 } as const;

// SVM_VMGEXIT_TERM_REASON: the NAE form of the termination request.
export const TERM_REQUEST_EXITINFO1 = defineBits('TERM_REQUEST_EXITINFO1', 64, {
  reasonSet: field(0, 4),
  reasonCode: field(4, 8),
});

// ---------------------------------------------------------------------------------------------
// Page State Change (GHCB spec "SNP page state change"; struct psc_hdr / psc_entry)

export const PSC_HEADER = defineStruct('PSC_HEADER', 8, {
  curEntry: { offset: 0x0, type: 'u16', doc: 'cur_entry' },
  endEntry: { offset: 0x2, type: 'u16', doc: 'end_entry (inclusive)' },
  reserved: { offset: 0x4, type: 'u32' },
});

/** Entries that fit the shared buffer after the header: (0x7F0 - 8) / 8. */
export const PSC_MAX_ENTRIES = 253;

/** A whole PSC descriptor as it sits in the shared buffer. */
export const PSC_DESC = defineStruct('PSC_DESC', GHCB_SHARED_BUFFER_SIZE, {
  ...embed('hdr', 0, PSC_HEADER),
  entries: { offset: 0x8, type: 'bytes', size: 8 * PSC_MAX_ENTRIES, doc: 'u64 entries' },
});

export const PSC_ENTRY = defineBits('PSC_ENTRY', 64, {
  curPage: field(0, 12, 'cur_page: progress inside a 2 MiB entry'),
  gfn: field(12, 40),
  operation: field(52, 4, 'PSC_OP'),
  pageSize: flag(56, '0 = 4 KiB, 1 = 2 MiB'),
});

export const PSC_OP = { PRIVATE: 1, SHARED: 2, PSMASH: 3, UNSMASH: 4 } as const;
export type PscOp = (typeof PSC_OP)[keyof typeof PSC_OP];

/** SW_EXITINFO2 errors of the PSC NAE event (VMGEXIT_PSC_ERROR_*). */
export const PSC_ERROR = {
  INVALID_HEADER: (1n << 32n) | 1n,
  INVALID_ENTRY: (1n << 32n) | 2n,
  GENERIC: 0x100n << 32n,
} as const;

const PSC_ENTRY_SLOT = defineStruct('PSC_ENTRY_SLOT', 8, {
  entry: { offset: 0, type: 'u64' },
});

/** Byte offset of entry `index` inside a PSC descriptor. */
export function pscEntryOffset(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= PSC_MAX_ENTRIES) {
    throw new FieldRangeError(`PSC entry index ${index} outside [0, ${PSC_MAX_ENTRIES})`);
  }
  return PSC_DESC.offset('entries') + 8 * index;
}

/** Reads entry `index` of the PSC descriptor at `base`. */
export function readPscEntry(bytes: Uint8Array, index: number, base = 0): bigint {
  return PSC_ENTRY_SLOT.get(bytes, 'entry', base + pscEntryOffset(index));
}

export function writePscEntry(bytes: Uint8Array, index: number, entry: bigint, base = 0): void {
  PSC_ENTRY_SLOT.set(bytes, 'entry', entry, base + pscEntryOffset(index));
}
