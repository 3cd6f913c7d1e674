// The SVSM calling convention and protocol wire formats, from AMD 58019 ("Secure VM Service
// Module for SEV-SNP Guests", rev. 1.00): protocol and call numbers, result codes, the Calling
// Area, the core PVALIDATE list, QUERY_PROTOCOL and CREATE_VCPU register encodings, the
// attestation operands and services manifest, and the vTPM request/response buffers.
// Cross-checked against Linux arch/x86/include/asm/sev.h (SVSM_*, struct svsm_ca,
// svsm_pvalidate_call, svsm_loc_entry, svsm_attest_call), include/linux/tpm_svsm.h and coconut
// kernel/src/protocols/{core,errors,attest,vtpm}.rs; notes in reference/coconut-svsm.md section 3
// and reference/sev-snp-abi.md section 7.5.
//
// Every integer in these structures is little-endian (x86 native). Note that this differs from
// the MSSIM socket protocol the vTPM request imitates, whose u32 fields are big-endian.

import { guidFromBytesLe as guidFromBytes, guidToBytesLe as guidToBytes } from './certs.js';
import { defineBits, field, flag } from './bits.js';
import { defineStruct, FieldRangeError, type FieldSpecs, type StructLayout } from './struct.js';

const PAGE_SIZE = 0x1000;
const U32_MAX = 0xffff_ffff;

function checkU32(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) {
    throw new FieldRangeError(`${what}: ${v} is not a u32`);
  }
}

function checkU64(what: string, v: bigint): void {
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) {
    throw new FieldRangeError(`${what}: ${v} is not a u64`);
  }
}

function hex(n: number | bigint): string {
  return '0x' + n.toString(16);
}

// ---------------------------------------------------------------------------------------------
// Protocols and calls (58019 chapter 4 onwards; RAX = protocol << 32 | call)

/** SVSM protocol numbers (RAX[63:32]). APIC and UEFI_MM are COCONUT additions. */
export const SvsmProtocol = {
  CORE: 0,
  ATTEST: 1,
  VTPM: 2,
  APIC: 3,
  UEFI_MM: 4,
} as const;
export type SvsmProtocolNumber = (typeof SvsmProtocol)[keyof typeof SvsmProtocol];

/** Core protocol calls (58019 "Core Protocol", Linux SVSM_CORE_*). */
export const SvsmCoreCall = {
  REMAP_CA: 0,
  PVALIDATE: 1,
  CREATE_VCPU: 2,
  DELETE_VCPU: 3,
  DEPOSIT_MEM: 4,
  WITHDRAW_MEM: 5,
  QUERY_PROTOCOL: 6,
  CONFIGURE_VTOM: 7,
} as const;

/** Attestation protocol calls (58019 "Attestation Protocol", Linux SVSM_ATTEST_*). */
export const SvsmAttestCall = {
  ATTEST_SERVICES: 0,
  ATTEST_SINGLE_SERVICE: 1,
} as const;

/** vTPM protocol calls (58019 chapter 8, Table 14; Linux SVSM_VTPM_QUERY/SVSM_VTPM_CMD). */
export const SvsmVtpmCall = {
  QUERY: 0,
  CMD: 1,
} as const;

/** COCONUT's APIC protocol calls (reference/coconut-svsm.md, protocol 3). */
export const SvsmApicCall = {
  QUERY_FEATURES: 0,
  CONFIGURE: 1,
  READ_REGISTER: 2,
  WRITE_REGISTER: 3,
  CONFIGURE_VECTOR: 4,
} as const;

/** RAX at call time: protocol in bits 63:32, call number in bits 31:0. */
export const SVSM_CALL_RAX = defineBits('SVSM_CALL_RAX', 64, {
  call: field(0, 32),
  protocol: field(32, 32),
});

/** RAX for a call: `protocol << 32 | call`. Both must be u32. */
export function svsmCallRax(protocol: number, call: number): bigint {
  checkU32('SVSM protocol', protocol);
  checkU32('SVSM call', call);
  return (BigInt(protocol) << 32n) | BigInt(call);
}

/** Splits a call's RAX into protocol and call number. */
export function decodeSvsmCallRax(rax: bigint): { protocol: number; call: number } {
  checkU64('SVSM call RAX', rax);
  // SVSM_CALL_RAX's two fields are the 32-bit halves; read directly, this runs on every call.
  return { protocol: Number(rax >> 32n), call: Number(rax & 0xffff_ffffn) };
}

// ---------------------------------------------------------------------------------------------
// Result codes (returned in RAX)

/**
 * SVSM result codes. Protocol-specific codes are PROTOCOL_BASE + n; the PVALIDATE ones carry the
 * PVALIDATE/RMPADJUST return code as n (SNP ABI section 7.3/7.4). FAIL_INUSE is AMD's
 * (linux-svsm `SVSM_ERR_PROTOCOL_FAIL_INUSE`, CREATE/DELETE_VCPU); Linux does not define it and
 * COCONUT never returns it. COCONUT also uses PROTOCOL_BASE + 0 for the APIC protocol's
 * "cannot register".
 */
export const SvsmResult = {
  SUCCESS: 0x0000_0000,
  INCOMPLETE: 0x8000_0000,
  UNSUPPORTED_PROTOCOL: 0x8000_0001,
  UNSUPPORTED_CALL: 0x8000_0002,
  INVALID_ADDRESS: 0x8000_0003,
  INVALID_FORMAT: 0x8000_0004,
  INVALID_PARAMETER: 0x8000_0005,
  INVALID_REQUEST: 0x8000_0006,
  BUSY: 0x8000_0007,
  PROTOCOL_BASE: 0x8000_1000,
  PVALIDATE_FAIL_INPUT: 0x8000_1001,
  PVALIDATE_FAIL_PERMISSION: 0x8000_1002,
  FAIL_INUSE: 0x8000_1003,
  PVALIDATE_FAIL_SIZE_MISMATCH: 0x8000_1006,
  PVALIDATE_FAIL_UNCHANGED: 0x8000_1010,
} as const;
export type SvsmResultName = keyof typeof SvsmResult;

const RESULT_NAMES: ReadonlyMap<number, SvsmResultName> = new Map(
  (Object.entries(SvsmResult) as [SvsmResultName, number][]).map(([k, v]) => [v, k]),
);

/** PROTOCOL_BASE + n: how a protocol reports its own failure codes (e.g. a PVALIDATE return). */
export function svsmProtocolResult(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xfff) {
    throw new FieldRangeError(`protocol-specific result ${n} is outside [0, 0xfff]`);
  }
  return SvsmResult.PROTOCOL_BASE + n;
}

/**
 * A result code's name for logs: "INVALID_PARAMETER", "PROTOCOL_BASE+0x20" for a
 * protocol-specific code without a name, "UNKNOWN(0x...)" otherwise.
 */
export function resultName(code: number | bigint): string {
  const n =
    typeof code === 'bigint' ? (code >= 0n && code <= BigInt(U32_MAX) ? Number(code) : -1) : code;
  const known = RESULT_NAMES.get(n);
  if (known !== undefined) return known;
  if (Number.isInteger(n) && n > SvsmResult.PROTOCOL_BASE && n <= U32_MAX) {
    return `PROTOCOL_BASE+${hex(n - SvsmResult.PROTOCOL_BASE)}`;
  }
  const isWord = typeof code === 'bigint' ? code >= 0n : Number.isInteger(code) && code >= 0;
  return `UNKNOWN(${isWord ? hex(code) : String(code)})`;
}

// ---------------------------------------------------------------------------------------------
// Calling Area (58019 "Calling Area"; Linux struct svsm_ca; COCONUT SvsmCaa)

export const SVSM_CAA_SIZE = PAGE_SIZE;
/** Offset of the guest-usable buffer in the CAA (Linux puts its PVALIDATE list here). */
export const SVSM_CAA_BUFFER_OFFSET = 0x8;

export const SVSM_CAA = defineStruct('SVSM_CAA', SVSM_CAA_SIZE, {
  callPending: { offset: 0x0, type: 'u8', doc: 'call_pending' },
  memAvailable: { offset: 0x1, type: 'u8', doc: 'mem_available' },
  noEoiRequired: { offset: 0x2, type: 'u8', doc: 'no_eoi_required (COCONUT APIC protocol)' },
  reserved: { offset: 0x3, type: 'bytes', size: 0x5 },
  buffer: {
    offset: SVSM_CAA_BUFFER_OFFSET,
    type: 'bytes',
    size: SVSM_CAA_SIZE - SVSM_CAA_BUFFER_OFFSET,
    doc: 'svsm_buffer',
  },
});

// ---------------------------------------------------------------------------------------------
// Core PVALIDATE (58019 "SVSM_CORE_PVALIDATE Call"; Linux struct svsm_pvalidate_call)

export const PVALIDATE_HEADER_SIZE = 0x8;
export const PVALIDATE_ENTRY_SIZE = 0x8;

/** The list header; u64 entries follow at offset 8. The list may not cross its 4 KiB page. */
export const PVALIDATE_HEADER = defineStruct('SVSM_PVALIDATE_CALL', PVALIDATE_HEADER_SIZE, {
  numEntries: { offset: 0x0, type: 'u16', doc: 'num_entries' },
  curIndex: { offset: 0x2, type: 'u16', doc: 'cur_index (COCONUT: next)' },
  reserved: { offset: 0x4, type: 'bytes', size: 0x4 },
});

/** Entry page_size values. 2 and 3 are invalid (INVALID_PARAMETER). */
export const PvalidatePageSize = { SIZE_4K: 0, SIZE_2M: 1 } as const;

/** One list entry (Linux struct svsm_pvalidate_entry). Bits 11:4 are reserved, must be zero. */
export const PVALIDATE_ENTRY = defineBits('SVSM_PVALIDATE_ENTRY', 64, {
  pageSize: field(0, 2, 'page_size: 0 = 4K, 1 = 2M'),
  action: flag(2, 'action: 1 = validate, 0 = rescind'),
  ignoreCf: flag(3, 'ignore_cf'),
  gfn: field(12, 52, 'pfn'),
});

export interface PvalidateEntry {
  /** Raw page_size field (0..3); only 0 (4K) and 1 (2M) are valid. */
  readonly pageSize: number;
  /** The action bit: true = validate, false = rescind. */
  readonly validate: boolean;
  readonly ignoreCf: boolean;
  /** Guest frame number, < 2^52 (so exact as a number). */
  readonly gfn: number;
}

export function encodePvalidateEntry(e: PvalidateEntry): bigint {
  if (!Number.isInteger(e.gfn) || e.gfn < 0) {
    throw new FieldRangeError(`PVALIDATE entry gfn ${e.gfn} is not a frame number`);
  }
  if (!Number.isInteger(e.pageSize)) {
    throw new FieldRangeError(`PVALIDATE entry page size ${e.pageSize} is not an integer`);
  }
  return PVALIDATE_ENTRY.encode({
    pageSize: e.pageSize,
    action: e.validate,
    ignoreCf: e.ignoreCf,
    gfn: e.gfn,
  });
}

/** Decodes an entry's defined fields; check pvalidateEntryReservedBits() separately. */
export function decodePvalidateEntry(word: bigint): PvalidateEntry {
  return {
    pageSize: Number(PVALIDATE_ENTRY.get(word, 'pageSize')),
    validate: PVALIDATE_ENTRY.has(word, 'action'),
    ignoreCf: PVALIDATE_ENTRY.has(word, 'ignoreCf'),
    gfn: Number(PVALIDATE_ENTRY.get(word, 'gfn')),
  };
}

/** The set reserved bits (11:4) of an entry; non-zero means INVALID_PARAMETER in COCONUT. */
export function pvalidateEntryReservedBits(word: bigint): bigint {
  return PVALIDATE_ENTRY.reservedBits(word);
}

/**
 * The most entries a list at `listOffsetInPage` can hold without crossing its page:
 * floor((4096 - 8 - offset) / 8). 511 at offset 0; 510 for Linux's list at CAA + 8
 * (Linux SVSM_PVALIDATE_MAX_COUNT).
 */
export function maxPvalidateEntries(listOffsetInPage: number): number {
  if (
    !Number.isInteger(listOffsetInPage) ||
    listOffsetInPage < 0 ||
    listOffsetInPage > PAGE_SIZE - PVALIDATE_HEADER_SIZE
  ) {
    throw new FieldRangeError(
      `PVALIDATE list offset ${listOffsetInPage} leaves no room for a header in its page`,
    );
  }
  return Math.floor((PAGE_SIZE - PVALIDATE_HEADER_SIZE - listOffsetInPage) / PVALIDATE_ENTRY_SIZE);
}

// ---------------------------------------------------------------------------------------------
// Core QUERY_PROTOCOL, CREATE_VCPU, CONFIGURE_VTOM register encodings

/** QUERY_PROTOCOL input RCX: protocol in 63:32, requested version in 31:0. */
export const QUERY_PROTOCOL_RCX = defineBits('QUERY_PROTOCOL_RCX', 64, {
  version: field(0, 32),
  protocol: field(32, 32),
});

/** QUERY_PROTOCOL output RCX: highest version in 63:32, lowest in 31:0; 0 = unsupported. */
export const QUERY_PROTOCOL_ANSWER = defineBits('QUERY_PROTOCOL_ANSWER', 64, {
  minVersion: field(0, 32),
  maxVersion: field(32, 32),
});

/** The answer for "not supported" (the requested protocol or version is unknown). */
export const QUERY_PROTOCOL_UNSUPPORTED = 0n;

export function queryProtocolRcx(protocol: number, version: number): bigint {
  checkU32('QUERY_PROTOCOL protocol', protocol);
  checkU32('QUERY_PROTOCOL version', version);
  return (BigInt(protocol) << 32n) | BigInt(version);
}

export function decodeQueryProtocolRcx(rcx: bigint): { protocol: number; version: number } {
  checkU64('QUERY_PROTOCOL RCX', rcx);
  // QUERY_PROTOCOL_RCX's two fields are the 32-bit halves.
  return { protocol: Number(rcx >> 32n), version: Number(rcx & 0xffff_ffffn) };
}

export function queryProtocolAnswer(minVersion: number, maxVersion: number): bigint {
  checkU32('QUERY_PROTOCOL min version', minVersion);
  checkU32('QUERY_PROTOCOL max version', maxVersion);
  return (BigInt(maxVersion) << 32n) | BigInt(minVersion);
}

/** The supported version range, or null for an answer of 0 (not supported). */
export function decodeQueryProtocolAnswer(
  rcx: bigint,
): { minVersion: number; maxVersion: number } | null {
  checkU64('QUERY_PROTOCOL answer', rcx);
  if (rcx === QUERY_PROTOCOL_UNSUPPORTED) return null;
  return {
    minVersion: Number(QUERY_PROTOCOL_ANSWER.get(rcx, 'minVersion')),
    maxVersion: Number(QUERY_PROTOCOL_ANSWER.get(rcx, 'maxVersion')),
  };
}

/** CREATE_VCPU: RCX = VMSA GPA, RDX = CAA GPA, R8[31:0] = APIC ID of the new vCPU. */
export const CREATE_VCPU_R8 = defineBits('CREATE_VCPU_R8', 64, {
  apicId: field(0, 32),
});

export function createVcpuApicId(r8: bigint): number {
  checkU64('CREATE_VCPU R8', r8);
  return Number(CREATE_VCPU_R8.get(r8, 'apicId'));
}

/** CONFIGURE_VTOM RCX: bit 0 = query (answer RCX = 0 means vTOM configuration unsupported). */
export const CONFIGURE_VTOM_RCX = defineBits('CONFIGURE_VTOM_RCX', 64, {
  query: flag(0),
});

// ---------------------------------------------------------------------------------------------
// Attestation operands (58019 Table 11 "Attest Services Operation", Table 13 "Attest Single
// Service Operation"; Linux struct svsm_attest_call; COCONUT AttestServicesOp and
// AttestSingleServiceOp). Outputs: RCX = manifest length, RDX = certificates length,
// R8 = report length.

export const ATTEST_SERVICES_OP_SIZE = 0x40;
export const ATTEST_SINGLE_SERVICE_OP_SIZE = 0x58;
/** The nonce becomes REPORT_DATA input; it must be exactly 64 bytes. */
export const ATTEST_NONCE_SIZE = 64;

const ATTEST_SERVICES_FIELDS = {
  reportGpa: { offset: 0x00, type: 'u64', doc: 'report buffer, page-aligned' },
  reportSize: { offset: 0x08, type: 'u32' },
  reserved1: { offset: 0x0c, type: 'bytes', size: 4 },
  nonceGpa: { offset: 0x10, type: 'u64' },
  // Linux's svsm_loc_entry writes a u32 here; with a 64-byte nonce the high half is zero.
  nonceSize: { offset: 0x18, type: 'u16' },
  reserved2: { offset: 0x1a, type: 'bytes', size: 6 },
  manifestGpa: { offset: 0x20, type: 'u64', doc: 'manifest buffer, page-aligned' },
  manifestSize: { offset: 0x28, type: 'u32' },
  reserved3: { offset: 0x2c, type: 'bytes', size: 4 },
  certificatesGpa: { offset: 0x30, type: 'u64', doc: '0 = no certificates' },
  certificatesSize: { offset: 0x38, type: 'u32' },
  reserved4: { offset: 0x3c, type: 'bytes', size: 4 },
} as const satisfies FieldSpecs;

export const ATTEST_SERVICES_OP = defineStruct(
  'SVSM_ATTEST_SERVICES_OP',
  ATTEST_SERVICES_OP_SIZE,
  ATTEST_SERVICES_FIELDS,
);

export const ATTEST_SINGLE_SERVICE_OP = defineStruct(
  'SVSM_ATTEST_SINGLE_SERVICE_OP',
  ATTEST_SINGLE_SERVICE_OP_SIZE,
  {
    ...ATTEST_SERVICES_FIELDS,
    serviceGuid: { offset: 0x40, type: 'bytes', size: 16, doc: 'mixed-endian GUID' },
    manifestVersion: { offset: 0x50, type: 'u32', doc: 'service_manifest_ver' },
    reserved5: { offset: 0x54, type: 'bytes', size: 4 },
  },
);

/** True when every field whose name starts with "reserved" is all zero bytes/zero. */
export function reservedFieldsClear<F extends FieldSpecs>(
  layout: StructLayout<F>,
  bytes: Uint8Array,
  base = 0,
): boolean {
  if (!Number.isInteger(base) || base < 0 || base + layout.size > bytes.length) {
    throw new FieldRangeError(`${layout.name} does not fit at ${hex(base)}`);
  }
  for (const f of layout.fields) {
    if (!f.name.startsWith('reserved')) continue;
    for (let i = 0; i < f.size; i++) if (bytes[base + f.offset + i] !== 0) return false;
  }
  return true;
}

// GUIDs as the SVSM spec stores them: EFI byte order (the first three groups little-endian, the
// last eight bytes as written), which COCONUT calls `Uuid::to_bytes_le`; certs.ts defines it.
export { guidToBytesLe as guidToBytes, guidFromBytesLe as guidFromBytes } from './certs.js';

// ---------------------------------------------------------------------------------------------
// Services manifest (58019 section 7 "Attestation Protocol", GUID table; COCONUT GuidTable):
// a 24-byte header {manifest GUID, total size u32, number of services u32}, one 24-byte entry
// per service {service GUID, offset u32, size u32} with offsets from the start of the manifest,
// then the services' data. ATTEST_SERVICES returns it; REPORT_DATA = SHA-512(nonce || manifest).

export const SERVICES_MANIFEST_GUID = '63849ebb-3d92-4670-a1ff-58f9c94b87bb';
export const SERVICES_MANIFEST_HEADER_SIZE = 0x18;
export const SERVICES_MANIFEST_ENTRY_SIZE = 0x18;

export const SERVICES_MANIFEST_HEADER = defineStruct(
  'SERVICES_MANIFEST_HEADER',
  SERVICES_MANIFEST_HEADER_SIZE,
  {
    guid: { offset: 0x00, type: 'bytes', size: 16, doc: SERVICES_MANIFEST_GUID },
    size: { offset: 0x10, type: 'u32', doc: 'whole manifest, header and data included' },
    numServices: { offset: 0x14, type: 'u32' },
  },
);

export const SERVICES_MANIFEST_ENTRY = defineStruct(
  'SERVICES_MANIFEST_ENTRY',
  SERVICES_MANIFEST_ENTRY_SIZE,
  {
    guid: { offset: 0x00, type: 'bytes', size: 16, doc: 'service GUID' },
    offset: { offset: 0x10, type: 'u32', doc: 'from the start of the manifest' },
    size: { offset: 0x14, type: 'u32' },
  },
);

/**
 * The vTPM service (58019 section 8.3.1). Manifest version 0 of this service is the vTPM's
 * endorsement key as a marshalled TPMT_PUBLIC (COCONUT: TCG default template L-1, RSA-2048).
 */
export const VTPM_SERVICE_GUID = 'c476f1eb-0123-45a5-9641-b4e7dde5bfe3';
export const VTPM_SERVICE_MANIFEST_VERSION = 0;
/**
 * COCONUT's UEFI MM (variable store) service. [uncertain] Its data blob is {version 0, flags:
 * bit 0 persistent_nv_vars, bit 1 secureboot_enabled, bit 2 db_update} per
 * reference/coconut-svsm.md, which does not give the field widths, so no layout is declared.
 */
export const UEFI_MM_SERVICE_GUID = 'a4453a59-9e1b-4787-a033-1986d6adbe55';

export interface ServiceManifestEntry {
  /** Lower-case GUID text. */
  readonly guid: string;
  readonly data: Uint8Array;
}

/** A services manifest that cannot be parsed or built; the message says which rule failed. */
export class ServicesManifestError extends Error {
  override readonly name = 'ServicesManifestError';
}

/** Builds a manifest: header, entry table, then each service's data in order. */
export function encodeServicesManifest(entries: readonly ServiceManifestEntry[]): Uint8Array {
  const tableEnd = SERVICES_MANIFEST_HEADER_SIZE + entries.length * SERVICES_MANIFEST_ENTRY_SIZE;
  const total = entries.reduce((n, e) => n + e.data.length, tableEnd);
  if (total > U32_MAX) throw new ServicesManifestError(`manifest of ${total} bytes exceeds u32`);
  const seen = new Set<string>();
  const guids = entries.map((e) => {
    let g: Uint8Array;
    try {
      g = guidToBytes(e.guid);
    } catch (err) {
      if (err instanceof FieldRangeError) throw new ServicesManifestError(err.message);
      throw err;
    }
    const key = guidFromBytes(g);
    if (seen.has(key)) throw new ServicesManifestError(`service ${key} appears twice`);
    seen.add(key);
    return g;
  });
  const out = new Uint8Array(total);
  const hdr = SERVICES_MANIFEST_HEADER.on(out);
  hdr.set('guid', guidToBytes(SERVICES_MANIFEST_GUID));
  hdr.set('size', total);
  hdr.set('numServices', entries.length);
  let cursor = tableEnd;
  entries.forEach((e, i) => {
    const ent = SERVICES_MANIFEST_ENTRY.on(
      out,
      SERVICES_MANIFEST_HEADER_SIZE + i * SERVICES_MANIFEST_ENTRY_SIZE,
    );
    ent.set('guid', guids[i]!);
    ent.set('offset', cursor);
    ent.set('size', e.data.length);
    out.set(e.data, cursor);
    cursor += e.data.length;
  });
  return out;
}

/**
 * Parses a manifest. Bytes beyond the header's size field are ignored (a guest buffer is usually
 * larger than the manifest). Rejects, with ServicesManifestError and never another error: a
 * buffer shorter than the header or than the declared size, a wrong manifest GUID, a service
 * count whose table does not fit, data ranges outside [end of table, size), duplicate GUIDs.
 */
export function parseServicesManifest(bytes: Uint8Array): ServiceManifestEntry[] {
  if (bytes.length < SERVICES_MANIFEST_HEADER_SIZE) {
    throw new ServicesManifestError(
      `truncated: ${bytes.length} bytes, the header alone is ${SERVICES_MANIFEST_HEADER_SIZE}`,
    );
  }
  const hdr = SERVICES_MANIFEST_HEADER.on(bytes);
  const guid = guidFromBytes(hdr.get('guid'));
  if (guid !== SERVICES_MANIFEST_GUID) {
    throw new ServicesManifestError(`manifest GUID is ${guid}, expected ${SERVICES_MANIFEST_GUID}`);
  }
  const size = hdr.get('size');
  if (size < SERVICES_MANIFEST_HEADER_SIZE) {
    throw new ServicesManifestError(`declared size ${size} is smaller than the header`);
  }
  if (size > bytes.length) {
    throw new ServicesManifestError(`truncated: declared size ${size}, only ${bytes.length} bytes`);
  }
  const count = hdr.get('numServices');
  const maxCount = Math.floor(
    (size - SERVICES_MANIFEST_HEADER_SIZE) / SERVICES_MANIFEST_ENTRY_SIZE,
  );
  if (count > maxCount) {
    throw new ServicesManifestError(
      `service count ${count} out of range: a ${size}-byte manifest holds at most ${maxCount} entries`,
    );
  }
  const tableEnd = SERVICES_MANIFEST_HEADER_SIZE + count * SERVICES_MANIFEST_ENTRY_SIZE;
  const seen = new Set<string>();
  const out: ServiceManifestEntry[] = [];
  for (let i = 0; i < count; i++) {
    const ent = SERVICES_MANIFEST_ENTRY.on(
      bytes,
      SERVICES_MANIFEST_HEADER_SIZE + i * SERVICES_MANIFEST_ENTRY_SIZE,
    );
    const g = guidFromBytes(ent.get('guid'));
    const off = ent.get('offset');
    const len = ent.get('size');
    if (off < tableEnd || off + len > size) {
      throw new ServicesManifestError(
        `service ${i} (${g}): data ${hex(off)}+${hex(len)} lies outside ${hex(tableEnd)}..${hex(size)}`,
      );
    }
    if (seen.has(g)) throw new ServicesManifestError(`service ${g} appears twice`);
    seen.add(g);
    out.push({ guid: g, data: bytes.slice(off, off + len) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// vTPM protocol (58019 chapter 8; Linux include/linux/tpm_svsm.h; COCONUT protocols/vtpm.rs).
// The request and response share one 4 KiB guest buffer (not necessarily page-aligned); the
// platform command numbers are those of the TCG simulator (MSSIM) protocol.

/** MSSIM platform commands usable through SVSM_VTPM_CMD; only TPM_SEND_COMMAND is defined. */
export const TpmPlatformCommand = {
  TPM_SEND_COMMAND: 8,
} as const;

/** Size of the shared request/response buffer (Linux SVSM_VTPM_MAX_BUFFER). */
export const VTPM_BUFFER_SIZE = 0x1000;
export const VTPM_REQUEST_HEADER_SIZE = 0x9;
export const VTPM_RESPONSE_HEADER_SIZE = 0x4;
/** Largest TPM command: 4096 - 9 = 4087 bytes. */
export const VTPM_MAX_COMMAND_SIZE = VTPM_BUFFER_SIZE - VTPM_REQUEST_HEADER_SIZE;
/** Largest TPM response: 4096 - 4 = 4092 bytes. */
export const VTPM_MAX_RESPONSE_SIZE = VTPM_BUFFER_SIZE - VTPM_RESPONSE_HEADER_SIZE;

/** TPM_SEND_COMMAND request (58019 Table 16; packed, so bufSize is unaligned at 5). */
export const VTPM_SEND_COMMAND_REQUEST = defineStruct('SVSM_VTPM_CMD_REQUEST', VTPM_BUFFER_SIZE, {
  cmd: { offset: 0x0, type: 'u32', doc: 'platform command, 8 = TPM_SEND_COMMAND' },
  locality: { offset: 0x4, type: 'u8', doc: 'must be 0' },
  bufSize: { offset: 0x5, type: 'u32', doc: 'TPM command size' },
  buf: { offset: 0x9, type: 'bytes', size: VTPM_MAX_COMMAND_SIZE, doc: 'TPM command' },
});

/** TPM_SEND_COMMAND response, written over the request (58019 Table 17). */
export const VTPM_SEND_COMMAND_RESPONSE = defineStruct('SVSM_VTPM_CMD_RESPONSE', VTPM_BUFFER_SIZE, {
  bufSize: { offset: 0x0, type: 'u32', doc: 'TPM response size' },
  buf: { offset: 0x4, type: 'bytes', size: VTPM_MAX_RESPONSE_SIZE, doc: 'TPM response' },
});

/** SVSM_VTPM_QUERY output: RCX = bitmap with bit n set for each supported platform command n. */
export function vtpmPlatformCommandBitmap(commands: readonly number[]): bigint {
  let bitmap = 0n;
  for (const c of commands) {
    if (!Number.isInteger(c) || c < 0 || c > 63) {
      throw new FieldRangeError(`platform command ${c} has no bit in the 64-bit query bitmap`);
    }
    bitmap |= 1n << BigInt(c);
  }
  return bitmap;
}

export function vtpmBitmapHasCommand(bitmap: bigint, command: number): boolean {
  checkU64('vTPM command bitmap', bitmap);
  if (!Number.isInteger(command) || command < 0 || command > 63) return false;
  return ((bitmap >> BigInt(command)) & 1n) === 1n;
}

/** SVSM_VTPM_QUERY output RDX: supported features; none are defined, so it must be 0. */
export const VTPM_QUERY_FEATURES_NONE = 0n;

/** Writes a TPM_SEND_COMMAND request for `command` into a fresh 4 KiB buffer (guest side). */
export function buildVtpmSendCommandRequest(command: Uint8Array, locality = 0): Uint8Array {
  if (command.length > VTPM_MAX_COMMAND_SIZE) {
    throw new FieldRangeError(
      `TPM command of ${command.length} bytes exceeds ${VTPM_MAX_COMMAND_SIZE}`,
    );
  }
  const page = VTPM_SEND_COMMAND_REQUEST.alloc();
  VTPM_SEND_COMMAND_REQUEST.on(page)
    .set('cmd', TpmPlatformCommand.TPM_SEND_COMMAND)
    .set('locality', locality)
    .set('bufSize', command.length);
  page.set(command, VTPM_REQUEST_HEADER_SIZE);
  return page;
}

/** Reads the TPM response out of a TPM_SEND_COMMAND response buffer (guest side). */
export function readVtpmSendCommandResponse(buffer: Uint8Array, base = 0): Uint8Array {
  const size = VTPM_SEND_COMMAND_RESPONSE.get(buffer, 'bufSize', base);
  if (size > VTPM_MAX_RESPONSE_SIZE) {
    throw new FieldRangeError(`vTPM response size ${size} exceeds ${VTPM_MAX_RESPONSE_SIZE}`);
  }
  const at = base + VTPM_RESPONSE_HEADER_SIZE;
  return buffer.slice(at, at + size);
}
