// SNP guest messages (SNP_GUEST_REQUEST): the 0x60-byte message header, its AES-256-GCM
// conventions, the message types, the REPORT and KEY request/response payloads, the firmware
// status codes they carry and the VMM error half of SW_EXITINFO2.
// Facts: reference/sev-snp-abi.md section 3 (SNP ABI, "Message Header Format", "MSG_REPORT_REQ",
// "MSG_KEY_REQ"); Linux `struct snp_guest_msg_hdr` and uapi `linux/psp-sev.h`.
// The ATTESTATION_REPORT itself lives in report.ts.

import { defineBits, field, flag } from './bits.js';
import { defineStruct, FieldRangeError } from './struct.js';

/** One guest message (header + payload) fills one 4 KiB shared page. */
export const GUEST_MSG_PAGE_SIZE = 0x1000;
export const GUEST_MSG_HDR_SIZE = 0x60;
/** The encrypted payload starts right after the header. */
export const GUEST_MSG_PAYLOAD_OFFSET = 0x60;
/** 4000 bytes: what fits in the page after the header (Linux `snp_guest_msg.payload`). */
export const GUEST_MSG_MAX_PAYLOAD = GUEST_MSG_PAGE_SIZE - GUEST_MSG_HDR_SIZE;
/** Additional authenticated data: header bytes 0x30..0x5F inclusive (48 bytes). */
export const GUEST_MSG_AAD_OFFSET = 0x30;
export const GUEST_MSG_AAD_SIZE = 0x30;
/** The AUTHTAG field is 32 bytes; AES-GCM uses the first 16. */
export const GUEST_MSG_AUTHTAG_SIZE = 16;
export const GUEST_MSG_IV_SIZE = 12;
/** ALGO values (SNP ABI "AEAD Algorithm Encodings"). */
export const AEAD_ALGO_INVALID = 0;
export const AEAD_ALGO_AES_256_GCM = 1;
/** The only HDR_VERSION defined. */
export const GUEST_MSG_HDR_VERSION = 1;
/** VMPCK indices run 0..3 (one per VMPL). */
export const GUEST_MSG_MAX_VMPCK = 3;

// SNP ABI, Table "Message Header Format"; Linux `struct snp_guest_msg_hdr`.
export const GUEST_MSG_HDR = defineStruct('GUEST_MSG_HDR', GUEST_MSG_HDR_SIZE, {
  authtag: { offset: 0x00, type: 'bytes', size: 32, doc: 'AES-GCM tag in bytes 0..15' },
  msgSeqno: { offset: 0x20, type: 'u64', doc: 'MSG_SEQNO' },
  reserved28: { offset: 0x28, type: 'bytes', size: 8 },
  algo: { offset: 0x30, type: 'u8', doc: 'ALGO, 1 = AES-256-GCM' },
  hdrVersion: { offset: 0x31, type: 'u8', doc: 'HDR_VERSION' },
  hdrSize: { offset: 0x32, type: 'u16', doc: 'HDR_SIZE' },
  msgType: { offset: 0x34, type: 'u8', doc: 'MSG_TYPE' },
  msgVersion: { offset: 0x35, type: 'u8', doc: 'MSG_VERSION' },
  msgSize: { offset: 0x36, type: 'u16', doc: 'MSG_SIZE, plaintext payload bytes' },
  reserved38: { offset: 0x38, type: 'u32' },
  msgVmpck: { offset: 0x3c, type: 'u8', doc: 'MSG_VMPCK' },
  reserved3D: { offset: 0x3d, type: 'bytes', size: 35 },
});

/** MSG_TYPE values (SNP ABI "Message Type Encodings"); a response is its request's type + 1. */
export const SNP_MSG_TYPE = {
  INVALID: 0,
  CPUID_REQ: 1,
  CPUID_RSP: 2,
  KEY_REQ: 3,
  KEY_RSP: 4,
  REPORT_REQ: 5,
  REPORT_RSP: 6,
  EXPORT_REQ: 7,
  EXPORT_RSP: 8,
  IMPORT_REQ: 9,
  IMPORT_RSP: 10,
  ABSORB_REQ: 11,
  ABSORB_RSP: 12,
  VMRK_REQ: 13,
  VMRK_RSP: 14,
  ABSORB_NOMA_REQ: 15,
  ABSORB_NOMA_RSP: 16,
  TSC_INFO_REQ: 17,
  TSC_INFO_RSP: 18,
} as const;

export type SnpMsgType = (typeof SNP_MSG_TYPE)[keyof typeof SNP_MSG_TYPE];

const MSG_TYPE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(SNP_MSG_TYPE).map(([name, value]) => [value, name]),
);

/** The spec name of a MSG_TYPE ("REPORT_REQ"), or undefined for an unassigned value. */
export function snpMsgTypeName(type: number): string | undefined {
  return MSG_TYPE_NAMES.get(type);
}

/**
 * The AES-GCM IV of a message: MSG_SEQNO as a little-endian u64 followed by four zero bytes
 * (Linux `enc_payload`, coconut `build_iv`).
 */
export function gcmIv(seqno: bigint): Uint8Array {
  if (seqno < 0n || seqno > 0xffff_ffff_ffff_ffffn) {
    throw new FieldRangeError(`MSG_SEQNO ${seqno} does not fit a u64`);
  }
  const iv = new Uint8Array(GUEST_MSG_IV_SIZE);
  new DataView(iv.buffer).setBigUint64(0, seqno, true);
  return iv;
}

/** A copy of the 48 AAD bytes (header 0x30..0x5F) of the message at `base` in `bytes`. */
export function guestMsgAad(bytes: Uint8Array, base = 0): Uint8Array {
  const start = base + GUEST_MSG_AAD_OFFSET;
  if (!Number.isInteger(base) || base < 0 || start + GUEST_MSG_AAD_SIZE > bytes.length) {
    throw new FieldRangeError(`a guest message header needs 0x60 bytes at 0x${base.toString(16)}`);
  }
  return bytes.slice(start, start + GUEST_MSG_AAD_SIZE);
}

// SNP ABI, Table "MSG_REPORT_REQ Message Structure".
export const MSG_REPORT_REQ = defineStruct('MSG_REPORT_REQ', 0x60, {
  reportData: { offset: 0x00, type: 'bytes', size: 64, doc: 'REPORT_DATA' },
  vmpl: { offset: 0x40, type: 'u32', doc: 'VMPL, >= the requester VMPL' },
  keySel: { offset: 0x44, type: 'u32', doc: 'KEY_SEL in bits 1:0' },
  reserved48: { offset: 0x48, type: 'bytes', size: 24 },
});

/** KEY_SEL of MSG_REPORT_REQ (bits 1:0) and of MSG_KEY_REQ (ROOT_KEY_SELECT bits 2:1). */
export const KEY_SEL = { DEFAULT: 0, VCEK: 1, VLEK: 2 } as const;

export const MSG_REPORT_RSP_REPORT_OFFSET = 0x20;
/** Size of the embedded ATTESTATION_REPORT (the layout itself is in report.ts). */
export const MSG_REPORT_RSP_REPORT_SIZE = 0x4a0;

// SNP ABI, Table "MSG_REPORT_RSP Message Structure": 0x4C0 bytes, so MSG_SIZE = 0x4C0.
export const MSG_REPORT_RSP = defineStruct('MSG_REPORT_RSP', 0x4c0, {
  status: { offset: 0x00, type: 'u32', doc: 'SEV_FW_STATUS' },
  reportSize: { offset: 0x04, type: 'u32', doc: 'REPORT_SIZE, 0x4A0' },
  reserved08: { offset: 0x08, type: 'bytes', size: 24 },
  report: {
    offset: MSG_REPORT_RSP_REPORT_OFFSET,
    type: 'bytes',
    size: MSG_REPORT_RSP_REPORT_SIZE,
    doc: 'ATTESTATION_REPORT',
  },
});

export const MSG_KEY_REQ_SIZE_V1 = 0x20;
export const MSG_KEY_REQ_SIZE_V2 = 0x28;

// SNP ABI, Table "MSG_KEY_REQ Message Structure" (MSG_VERSION 1).
const KEY_REQ_FIELDS_V1 = {
  rootKeySelect: { offset: 0x00, type: 'u32', doc: 'ROOT_KEY_SELECT' },
  reserved04: { offset: 0x04, type: 'u32' },
  guestFieldSelect: { offset: 0x08, type: 'u64', doc: 'GUEST_FIELD_SELECT' },
  vmpl: { offset: 0x10, type: 'u32', doc: 'VMPL, >= the requester VMPL' },
  guestSvn: { offset: 0x14, type: 'u32', doc: 'GUEST_SVN, <= launch SVN' },
  tcbVersion: { offset: 0x18, type: 'u64', doc: 'TCB_VERSION, <= committed TCB' },
} as const;

export const MSG_KEY_REQ_V1 = defineStruct(
  'MSG_KEY_REQ_V1',
  MSG_KEY_REQ_SIZE_V1,
  KEY_REQ_FIELDS_V1,
);

/** MSG_VERSION 2 appends LAUNCH_MIT_VECTOR. */
export const MSG_KEY_REQ_V2 = defineStruct('MSG_KEY_REQ_V2', MSG_KEY_REQ_SIZE_V2, {
  ...KEY_REQ_FIELDS_V1,
  launchMitVector: { offset: 0x20, type: 'u64', doc: 'LAUNCH_MIT_VECTOR' },
});

/** ROOT_KEY_SELECT of MSG_KEY_REQ. */
export const ROOT_KEY_SELECT = defineBits('ROOT_KEY_SELECT', 32, {
  rootKeySel: flag(0, '0 VCEK, 1 VMRK'),
  keySel: field(1, 2, 'KEY_SEL: 0 default, 1 VCEK, 2 VLEK'),
});

/** GUEST_FIELD_SELECT of MSG_KEY_REQ: which guest fields are mixed into the derived key. */
export const GUEST_FIELD_SELECT = defineBits('GUEST_FIELD_SELECT', 64, {
  guestPolicy: flag(0),
  imageId: flag(1),
  familyId: flag(2),
  measurement: flag(3),
  guestSvn: flag(4),
  tcbVersion: flag(5),
  launchMitVector: flag(6, 'MSG_KEY_REQ version 2'),
});

// SNP ABI, Table "MSG_KEY_RSP Message Structure".
export const MSG_KEY_RSP = defineStruct('MSG_KEY_RSP', 0x40, {
  status: { offset: 0x00, type: 'u32', doc: 'SEV_FW_STATUS' },
  reserved04: { offset: 0x04, type: 'bytes', size: 28 },
  derivedKey: { offset: 0x20, type: 'bytes', size: 32, doc: 'DERIVED_KEY' },
});

/**
 * Firmware status codes (SNP ABI "Status Codes"; Linux uapi `enum sev_ret_code`). 0x1E is
 * unassigned.
 */
export const SEV_FW_STATUS = {
  SUCCESS: 0x00,
  INVALID_PLATFORM_STATE: 0x01,
  INVALID_GUEST_STATE: 0x02,
  INVALID_CONFIG: 0x03,
  INVALID_LEN: 0x04,
  ALREADY_OWNED: 0x05,
  INVALID_CERTIFICATE: 0x06,
  POLICY_FAILURE: 0x07,
  INACTIVE: 0x08,
  INVALID_ADDRESS: 0x09,
  BAD_SIGNATURE: 0x0a,
  BAD_MEASUREMENT: 0x0b,
  ASID_OWNED: 0x0c,
  INVALID_ASID: 0x0d,
  WBINVD_REQUIRED: 0x0e,
  DFFLUSH_REQUIRED: 0x0f,
  INVALID_GUEST: 0x10,
  INVALID_COMMAND: 0x11,
  ACTIVE: 0x12,
  HWERROR_PLATFORM: 0x13,
  HWERROR_UNSAFE: 0x14,
  UNSUPPORTED: 0x15,
  INVALID_PARAM: 0x16,
  RESOURCE_LIMIT: 0x17,
  SECURE_DATA_INVALID: 0x18,
  INVALID_PAGE_SIZE: 0x19,
  INVALID_PAGE_STATE: 0x1a,
  INVALID_MDATA_ENTRY: 0x1b,
  INVALID_PAGE_OWNER: 0x1c,
  AEAD_OFLOW: 0x1d,
  RB_MODE_EXITED: 0x1f,
  RMP_INIT_REQUIRED: 0x20,
  BAD_SVN: 0x21,
  BAD_VERSION: 0x22,
  SHUTDOWN_REQUIRED: 0x23,
  UPDATE_FAILED: 0x24,
  RESTORE_REQUIRED: 0x25,
  RMP_INIT_FAILED: 0x26,
  INVALID_KEY: 0x27,
} as const;

export type SevFwStatus = (typeof SEV_FW_STATUS)[keyof typeof SEV_FW_STATUS];

/**
 * VMM errors in SW_EXITINFO2[63:32] after (EXT_)GUEST_REQUEST (GHCB spec; Linux
 * `SNP_GUEST_VMM_ERR_*`). Any other non-zero value is a generic failure.
 */
export const GUEST_REQUEST_VMM_ERR = { INVALID_LEN: 1, BUSY: 2 } as const;

export interface GuestRequestResult {
  /** SW_EXITINFO2[31:0]: the firmware status. */
  readonly fwError: number;
  /** SW_EXITINFO2[63:32]: the VMM error. */
  readonly vmmError: number;
}

function checkU32(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new FieldRangeError(`${what} ${v} does not fit a u32`);
  }
}

/** SW_EXITINFO2 as the hypervisor leaves it after a guest request. */
export function encodeGuestRequestResult(r: GuestRequestResult): bigint {
  checkU32('firmware error', r.fwError);
  checkU32('VMM error', r.vmmError);
  return (BigInt(r.vmmError) << 32n) | BigInt(r.fwError);
}

export function decodeGuestRequestResult(exitInfo2: bigint): GuestRequestResult {
  if (exitInfo2 < 0n || exitInfo2 > 0xffff_ffff_ffff_ffffn) {
    throw new FieldRangeError(`SW_EXITINFO2 ${exitInfo2} does not fit a u64`);
  }
  return { fwError: Number(exitInfo2 & 0xffff_ffffn), vmmError: Number(exitInfo2 >> 32n) };
}
