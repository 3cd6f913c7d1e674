// The IGVM launch-image format (Independent Guest Virtual Machine): the fixed header, the
// variable-header records and every structure the SEV-SNP path reads or writes, plus the CRC-32
// that guards the headers.
//
// Spec: Microsoft's `igvm_defs` crate (the format's definition; cited below as "igvm_defs" with the
// structure's name) and its parser/serializer in the `igvm` crate; restated in
// /work/shared/reference/igvm.md sections 1-4. Everything is little-endian and packed as C lays it
// out (no hidden padding). Bodies of variable headers start 8-aligned in the file; a record's
// `length` counts only its body, the zero padding after it up to 8 is not counted.

import { defineBits, flag } from './bits.js';
import { defineStruct, embed } from './struct.js';

// ---------------------------------------------------------------------------------------------
// Fixed header

/** igvm_defs `IGVM_MAGIC_VALUE`: the bytes "IGVM" read as a little-endian u32. */
export const IGVM_MAGIC = 0x4d564749;

/** igvm_defs `IGVM_FORMAT_VERSION_1/2`. Version 2 (unstable in the spec) adds arch + page size. */
export const IGVM_FORMAT_VERSION = { V1: 1, V2: 2 } as const;

/** igvm_defs `IgvmArchitecture` (version 2 fixed header). */
export const IGVM_ARCHITECTURE = { X64: 0, AARCH64: 1 } as const;

/** igvm_defs `PAGE_SIZE_4K`; the only page size the reference parser accepts. */
export const IGVM_PAGE_SIZE_4K = 0x1000;
/** The size a PAGE_DATA with the 2MB flag describes. */
export const IGVM_PAGE_SIZE_2M = 0x20_0000;

// igvm_defs `IGVM_FIXED_HEADER` (version 1, 24 bytes).
export const IGVM_FIXED_HEADER = defineStruct('IGVM_FIXED_HEADER', 0x18, {
  magic: { offset: 0x00, type: 'u32', doc: 'IGVM_MAGIC' },
  formatVersion: { offset: 0x04, type: 'u32', doc: 'IGVM_FORMAT_VERSION' },
  variableHeaderOffset: { offset: 0x08, type: 'u32', doc: '>= fixed header size, 8-aligned' },
  variableHeaderSize: { offset: 0x0c, type: 'u32' },
  totalFileSize: { offset: 0x10, type: 'u32' },
  checksum: { offset: 0x14, type: 'u32', doc: 'CRC-32 of fixed + variable headers' },
});

// igvm_defs `IGVM_FIXED_HEADER_V2` (32 bytes): version 1's fields, then architecture, page size.
export const IGVM_FIXED_HEADER_V2 = defineStruct('IGVM_FIXED_HEADER_V2', 0x20, {
  ...IGVM_FIXED_HEADER.specs,
  architecture: { offset: 0x18, type: 'u32', doc: 'IGVM_ARCHITECTURE' },
  pageSize: { offset: 0x1c, type: 'u32', doc: 'must be 4096' },
});

/** The fixed header's size for a format version (1 or 2). */
export function igvmFixedHeaderSize(formatVersion: number): number {
  return formatVersion === IGVM_FORMAT_VERSION.V1
    ? IGVM_FIXED_HEADER.size
    : IGVM_FIXED_HEADER_V2.size;
}

// ---------------------------------------------------------------------------------------------
// Checksum

/**
 * The fixed header's checksum rule (igvm_defs `IGVM_FIXED_HEADER.checksum`): CRC-32 in the
 * zlib/IEEE 802.3 variant (reflected polynomial 0xEDB88320, initial value and final XOR
 * 0xFFFFFFFF) over the fixed header with its checksum field zero, followed by the variable-header
 * section. The file data is not covered.
 */
export const IGVM_CRC32_POLYNOMIAL = 0xedb88320;

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? IGVM_CRC32_POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Continues a CRC-32 over more bytes; start with `crc32(first)` and feed the result back. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let c = (previous ^ 0xffff_ffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffff_ffff) >>> 0;
}

/**
 * The checksum a fixed header must carry: CRC-32 of `fixedHeader` (24 or 32 bytes, its checksum
 * field treated as zero whatever it holds) followed by `variableHeaders`.
 */
export function igvmChecksum(fixedHeader: Uint8Array, variableHeaders: Uint8Array): number {
  const zeroed = Uint8Array.from(fixedHeader);
  IGVM_FIXED_HEADER.set(zeroed, 'checksum', 0);
  return crc32(variableHeaders, crc32(zeroed));
}

// ---------------------------------------------------------------------------------------------
// Variable headers: record framing, type codes and sections

// igvm_defs `IGVM_VHS_VARIABLE_HEADER`: the 8-byte type/length prefix of every record.
export const IGVM_VHS_VARIABLE_HEADER = defineStruct('IGVM_VHS_VARIABLE_HEADER', 0x08, {
  type: { offset: 0x0, type: 'u32', doc: 'IGVM_VHT' },
  length: { offset: 0x4, type: 'u32', doc: 'body bytes, without prefix or padding' },
});

/** Every record (prefix + body + padding) starts at a multiple of this in the file. */
export const IGVM_VARIABLE_HEADER_ALIGN = 8;

/** Rounds a length up to the variable-header alignment. */
export function igvmAlign8(n: number): number {
  return Math.ceil(n / IGVM_VARIABLE_HEADER_ALIGN) * IGVM_VARIABLE_HEADER_ALIGN;
}

/**
 * igvm_defs `IgvmVariableHeaderType`. 0x104-0x106 (CoRIM document and signature, CCA policy) are
 * newer init types of the crate, 0x314 an older crate's CoRIM directive; none is used by SNP.
 */
export const IGVM_VHT = {
  SUPPORTED_PLATFORM: 0x001,
  GUEST_POLICY: 0x101,
  RELOCATABLE_REGION: 0x102,
  PAGE_TABLE_RELOCATION_REGION: 0x103,
  CORIM_DOCUMENT: 0x104,
  CORIM_SIGNATURE: 0x105,
  CCA_POLICY: 0x106,
  PARAMETER_AREA: 0x301,
  PAGE_DATA: 0x302,
  PARAMETER_INSERT: 0x303,
  VP_CONTEXT: 0x304,
  REQUIRED_MEMORY: 0x305,
  /** Was SHARED_BOUNDARY_GPA in early revisions; never to be used. */
  RESERVED_DO_NOT_USE: 0x306,
  VP_COUNT_PARAMETER: 0x307,
  SRAT: 0x308,
  MADT: 0x309,
  MMIO_RANGES: 0x30a,
  SNP_ID_BLOCK: 0x30b,
  MEMORY_MAP: 0x30c,
  ERROR_RANGE: 0x30d,
  COMMAND_LINE: 0x30e,
  SLIT: 0x30f,
  PPTT: 0x310,
  VBS_MEASUREMENT: 0x311,
  DEVICE_TREE: 0x312,
  ENVIRONMENT_INFO_PARAMETER: 0x313,
  CORIM_MEASUREMENT: 0x314,
} as const;
export type IgvmVhtCode = (typeof IGVM_VHT)[keyof typeof IGVM_VHT];

/** The spec's name of a header type code, or a hex string for a code it does not define. */
export function igvmVhtName(type: number): string {
  for (const [name, code] of Object.entries(IGVM_VHT)) if (code === type) return name;
  return `0x${type.toString(16)}`;
}

/**
 * igvm_defs `IgvmVariableHeaderType`: "The top bit of this type may be set to indicate a loader
 * may safely ignore that structure." Without it, a loader that does not support a type must refuse
 * the file.
 */
export const IGVM_VHT_OPTIONAL = 0x8000_0000;

/** igvm_defs `IGVM_VHT_RANGE_*`: sections appear in this order and never return to an earlier one. */
export const IGVM_VHT_RANGE = {
  PLATFORM: [0x001, 0x100],
  INIT: [0x101, 0x200],
  DIRECTIVE: [0x301, 0x400],
} as const;
export type IgvmSection = keyof typeof IGVM_VHT_RANGE;

/** The section a type code belongs to (bit 31 ignored), or null outside every range. */
export function igvmSectionOf(type: number): IgvmSection | null {
  const t = (type & ~IGVM_VHT_OPTIONAL) >>> 0;
  for (const [name, [lo, hi]] of Object.entries(IGVM_VHT_RANGE) as [
    IgvmSection,
    readonly [number, number],
  ][]) {
    if (t >= lo && t <= hi) return name;
  }
  return null;
}

/** The parameter-usage types, all with the `IGVM_VHS_PARAMETER` body. */
export const IGVM_PARAMETER_TYPES: readonly number[] = [
  IGVM_VHT.VP_COUNT_PARAMETER,
  IGVM_VHT.SRAT,
  IGVM_VHT.MADT,
  IGVM_VHT.MMIO_RANGES,
  IGVM_VHT.MEMORY_MAP,
  IGVM_VHT.COMMAND_LINE,
  IGVM_VHT.SLIT,
  IGVM_VHT.PPTT,
  IGVM_VHT.DEVICE_TREE,
  IGVM_VHT.ENVIRONMENT_INFO_PARAMETER,
];

// ---------------------------------------------------------------------------------------------
// Platform section

/** igvm_defs `IgvmPlatformType`. SEV, SEV-ES and CCA are "unstable" in the spec. */
export const IGVM_PLATFORM_TYPE = {
  NATIVE: 0x00,
  VSM_ISOLATION: 0x01,
  SEV_SNP: 0x02,
  TDX: 0x03,
  SEV: 0x04,
  SEV_ES: 0x05,
  CCA: 0x06,
} as const;
export type IgvmPlatformType = (typeof IGVM_PLATFORM_TYPE)[keyof typeof IGVM_PLATFORM_TYPE];

/** igvm_defs `IGVM_*_PLATFORM_VERSION`: 1 for every platform type. */
export const IGVM_PLATFORM_VERSION = 1;

// igvm_defs `IGVM_VHS_SUPPORTED_PLATFORM` (type 0x001).
export const IGVM_VHS_SUPPORTED_PLATFORM = defineStruct('IGVM_VHS_SUPPORTED_PLATFORM', 0x10, {
  compatibilityMask: { offset: 0x0, type: 'u32', doc: 'exactly one bit' },
  highestVtl: { offset: 0x4, type: 'u8', doc: '0 or 2' },
  platformType: { offset: 0x5, type: 'u8', doc: 'IGVM_PLATFORM_TYPE' },
  platformVersion: { offset: 0x6, type: 'u16', doc: 'IGVM_PLATFORM_VERSION' },
  sharedGpaBoundary: { offset: 0x8, type: 'u64', doc: 'vTOM; 0 = unused' },
});

// ---------------------------------------------------------------------------------------------
// Initialization section

// igvm_defs `IGVM_VHS_GUEST_POLICY` (0x101). For SEV-SNP the policy is the SNP guest policy
// (GUEST_POLICY in report.ts: ABI minor/major, SMT, bit 17 = 1, MIGRATE_MA, DEBUG, ...).
export const IGVM_VHS_GUEST_POLICY = defineStruct('IGVM_VHS_GUEST_POLICY', 0x10, {
  policy: { offset: 0x0, type: 'u64', doc: 'SNP: GUEST_POLICY' },
  compatibilityMask: { offset: 0x8, type: 'u32' },
  reserved: { offset: 0xc, type: 'u32', doc: 'must be zero' },
});

/** igvm_defs `IGVM_VHF_RELOCATABLE_REGION_*` flag bits. */
export const IGVM_RELOCATABLE_REGION_FLAGS = defineBits('IGVM_RELOCATABLE_REGION_FLAGS', 8, {
  isVtl2: flag(0, 'region describes VTL2'),
  applyRip: flag(1, 'APPLY_PC: relocate RIP of vp_index/vtl'),
  applyGdtr: flag(2, 'relocate GDTR of vp_index/vtl'),
});

// igvm_defs `IGVM_VHS_RELOCATABLE_REGION` (0x102). Decoded only: the crate ties it to a VBS VP
// context, so it is never part of an SNP launch.
export const IGVM_VHS_RELOCATABLE_REGION = defineStruct('IGVM_VHS_RELOCATABLE_REGION', 0x30, {
  compatibilityMask: { offset: 0x00, type: 'u32' },
  vpIndex: { offset: 0x04, type: 'u16' },
  vtl: { offset: 0x06, type: 'u8' },
  flags: { offset: 0x07, type: 'u8', doc: 'IGVM_RELOCATABLE_REGION_FLAGS' },
  relocationAlignment: { offset: 0x08, type: 'u64', doc: 'multiple of 4 KiB' },
  relocationRegionGpa: { offset: 0x10, type: 'u64' },
  relocationRegionSize: { offset: 0x18, type: 'u64' },
  minimumRelocationGpa: { offset: 0x20, type: 'u64' },
  maximumRelocationGpa: { offset: 0x28, type: 'u64' },
});

// igvm_defs `IGVM_VHS_PAGE_TABLE_RELOCATION` (0x103). Decoded only, as above.
export const IGVM_VHS_PAGE_TABLE_RELOCATION = defineStruct('IGVM_VHS_PAGE_TABLE_RELOCATION', 0x20, {
  compatibilityMask: { offset: 0x00, type: 'u32' },
  vpIndex: { offset: 0x04, type: 'u16' },
  vtl: { offset: 0x06, type: 'u8' },
  reserved: { offset: 0x07, type: 'u8', doc: 'must be zero' },
  gpa: { offset: 0x08, type: 'u64' },
  size: { offset: 0x10, type: 'u64' },
  usedSize: { offset: 0x18, type: 'u64' },
});

// ---------------------------------------------------------------------------------------------
// Directive section

// igvm_defs `IGVM_VHS_PARAMETER_AREA` (0x301).
export const IGVM_VHS_PARAMETER_AREA = defineStruct('IGVM_VHS_PARAMETER_AREA', 0x10, {
  numberOfBytes: { offset: 0x0, type: 'u64', doc: 'multiple of 4 KiB' },
  parameterAreaIndex: { offset: 0x8, type: 'u32', doc: 'declared once' },
  fileOffset: { offset: 0xc, type: 'u32', doc: 'initial contents; 0 = zeros' },
});

/** igvm_defs `IgvmPageDataFlags`. */
export const IGVM_PAGE_DATA_FLAGS = defineBits('IGVM_PAGE_DATA_FLAGS', 32, {
  is2mbPage: flag(0, 'gpa must be 2 MiB-aligned'),
  unmeasured: flag(1, 'imported unmeasured'),
  shared: flag(2, 'assigned but host-visible (unstable)'),
});

/** igvm_defs `IgvmPageDataType`. */
export const IGVM_PAGE_DATA_TYPE = {
  NORMAL: 0x0,
  SECRETS: 0x1,
  CPUID_DATA: 0x2,
  CPUID_XF: 0x3,
} as const;
export type IgvmPageDataType = (typeof IGVM_PAGE_DATA_TYPE)[keyof typeof IGVM_PAGE_DATA_TYPE];

// igvm_defs `IGVM_VHS_PAGE_DATA` (0x302). file_offset counts from the start of the file; 0 means
// a page of zeros, which a loader imports as a normal private page.
export const IGVM_VHS_PAGE_DATA = defineStruct('IGVM_VHS_PAGE_DATA', 0x18, {
  gpa: { offset: 0x00, type: 'u64', doc: 'page-aligned' },
  compatibilityMask: { offset: 0x08, type: 'u32' },
  fileOffset: { offset: 0x0c, type: 'u32', doc: '0 = zero page' },
  flags: { offset: 0x10, type: 'u32', doc: 'IGVM_PAGE_DATA_FLAGS' },
  dataType: { offset: 0x14, type: 'u16', doc: 'IGVM_PAGE_DATA_TYPE' },
  reserved: { offset: 0x16, type: 'u16', doc: 'must be zero' },
});

// igvm_defs `IGVM_VHS_PARAMETER_INSERT` (0x303): imports a parameter area at gpa as unmeasured
// pages; each area can be inserted once.
export const IGVM_VHS_PARAMETER_INSERT = defineStruct('IGVM_VHS_PARAMETER_INSERT', 0x10, {
  gpa: { offset: 0x0, type: 'u64', doc: 'page-aligned' },
  compatibilityMask: { offset: 0x8, type: 'u32' },
  parameterAreaIndex: { offset: 0xc, type: 'u32' },
});

// igvm_defs `IGVM_VHS_PARAMETER`: the body of every parameter-usage type (IGVM_PARAMETER_TYPES).
// It has no compatibility mask.
export const IGVM_VHS_PARAMETER = defineStruct('IGVM_VHS_PARAMETER', 0x08, {
  parameterAreaIndex: { offset: 0x0, type: 'u32' },
  byteOffset: { offset: 0x4, type: 'u32' },
});

// igvm_defs `IGVM_VHS_VP_CONTEXT` (0x304): 20 bytes, "not aligned to 8 bytes" (gpa is a packed
// u64), so its record carries 4 bytes of padding. For SEV-SNP the file data is a 4 KiB VMSA.
export const IGVM_VHS_VP_CONTEXT = defineStruct('IGVM_VHS_VP_CONTEXT', 0x14, {
  gpa: { offset: 0x00, type: 'u64', doc: 'SNP: where the VMSA goes' },
  compatibilityMask: { offset: 0x08, type: 'u32', doc: "equals one platform's mask" },
  fileOffset: { offset: 0x0c, type: 'u32' },
  vpIndex: { offset: 0x10, type: 'u16' },
  reserved: { offset: 0x12, type: 'u16', doc: 'must be zero' },
});

// igvm_defs `VbsVpContextHeader` / `VbsVpContextRegister`: VSM VP-context file data is a u32
// register count followed by that many 32-byte records.
export const IGVM_VBS_VP_CONTEXT_HEADER_SIZE = 4;
export const IGVM_VBS_VP_CONTEXT_REGISTER_SIZE = 0x20;

/** igvm_defs `RequiredMemoryFlags`. */
export const IGVM_REQUIRED_MEMORY_FLAGS = defineBits('IGVM_REQUIRED_MEMORY_FLAGS', 32, {
  vtl2Protectable: flag(0),
});

// igvm_defs `IGVM_VHS_REQUIRED_MEMORY` (0x305): a hint that memory must exist; not measured.
export const IGVM_VHS_REQUIRED_MEMORY = defineStruct('IGVM_VHS_REQUIRED_MEMORY', 0x18, {
  gpa: { offset: 0x00, type: 'u64', doc: 'page-aligned' },
  compatibilityMask: { offset: 0x08, type: 'u32' },
  numberOfBytes: { offset: 0x0c, type: 'u32', doc: 'multiple of 4 KiB' },
  flags: { offset: 0x10, type: 'u32', doc: 'IGVM_REQUIRED_MEMORY_FLAGS' },
  reserved: { offset: 0x14, type: 'u32', doc: 'must be zero' },
});

// igvm_defs `IGVM_VHS_ERROR_RANGE` (0x30D): host-visible range for guest error reports.
export const IGVM_VHS_ERROR_RANGE = defineStruct('IGVM_VHS_ERROR_RANGE', 0x10, {
  gpa: { offset: 0x0, type: 'u64', doc: 'page-aligned' },
  compatibilityMask: { offset: 0x8, type: 'u32' },
  sizeBytes: { offset: 0xc, type: 'u32', doc: 'multiple of 4 KiB' },
});

// igvm_defs `IGVM_VHS_SNP_ID_BLOCK_SIGNATURE`: ECDSA r and s, little-endian, zero-padded to 72.
export const IGVM_VHS_SNP_ID_BLOCK_SIGNATURE = defineStruct(
  'IGVM_VHS_SNP_ID_BLOCK_SIGNATURE',
  0x90,
  {
    rComp: { offset: 0x00, type: 'bytes', size: 72 },
    sComp: { offset: 0x48, type: 'bytes', size: 72 },
  },
);

// igvm_defs `IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY`: curve 2 = P-384; qx, qy little-endian.
export const IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY = defineStruct(
  'IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY',
  0x98,
  {
    curve: { offset: 0x00, type: 'u32', doc: '2 = P-384' },
    reserved: { offset: 0x04, type: 'u32' },
    qx: { offset: 0x08, type: 'bytes', size: 72 },
    qy: { offset: 0x50, type: 'bytes', size: 72 },
  },
);

/** SNP ID block algorithm and curve codes (SNP ABI ID_BLOCK / ID_AUTH_INFO). */
export const SNP_ID_KEY_ALGORITHM = { ECDSA_P384_SHA384: 1 } as const;
export const SNP_ID_CURVE = { P384: 2 } as const;

// igvm_defs `IGVM_VHS_SNP_ID_BLOCK` (0x30B, 696 bytes): the SNP ABI ID_BLOCK fields the loader
// passes to SNP_LAUNCH_FINISH, with the ID_AUTH_INFO signatures and keys.
export const IGVM_VHS_SNP_ID_BLOCK = defineStruct('IGVM_VHS_SNP_ID_BLOCK', 0x2b8, {
  compatibilityMask: { offset: 0x000, type: 'u32' },
  authorKeyEnabled: { offset: 0x004, type: 'u8', doc: '1 = author key fields used' },
  reserved: { offset: 0x005, type: 'bytes', size: 3 },
  ld: { offset: 0x008, type: 'bytes', size: 48, doc: 'expected launch digest' },
  familyId: { offset: 0x038, type: 'bytes', size: 16 },
  imageId: { offset: 0x048, type: 'bytes', size: 16 },
  version: { offset: 0x058, type: 'u32' },
  guestSvn: { offset: 0x05c, type: 'u32' },
  idKeyAlgorithm: { offset: 0x060, type: 'u32', doc: 'SNP_ID_KEY_ALGORITHM' },
  authorKeyAlgorithm: { offset: 0x064, type: 'u32', doc: 'SNP_ID_KEY_ALGORITHM' },
  ...embed('idKeySignature', 0x068, IGVM_VHS_SNP_ID_BLOCK_SIGNATURE),
  ...embed('idPublicKey', 0x0f8, IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY),
  ...embed('authorKeySignature', 0x190, IGVM_VHS_SNP_ID_BLOCK_SIGNATURE),
  ...embed('authorPublicKey', 0x220, IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY),
});

// igvm_defs `IGVM_VHS_VBS_MEASUREMENT` (0x311, 864 bytes): Hyper-V VBS only; kept as bytes.
export const IGVM_VHS_VBS_MEASUREMENT = defineStruct('IGVM_VHS_VBS_MEASUREMENT', 0x360, {
  compatibilityMask: { offset: 0x000, type: 'u32' },
  version: { offset: 0x004, type: 'u32' },
  productId: { offset: 0x008, type: 'u32' },
  moduleId: { offset: 0x00c, type: 'u32' },
  securityVersion: { offset: 0x010, type: 'u32' },
  policyFlags: { offset: 0x014, type: 'u32' },
  bootDigestAlgo: { offset: 0x018, type: 'u32' },
  signingAlgo: { offset: 0x01c, type: 'u32' },
  bootMeasurementDigest: { offset: 0x020, type: 'bytes', size: 64 },
  signature: { offset: 0x060, type: 'bytes', size: 256 },
  publicKey: { offset: 0x160, type: 'bytes', size: 512 },
});

/** Body sizes of the types this project decodes; a record of one of these must match exactly. */
export const IGVM_BODY_SIZE: Readonly<Partial<Record<number, number>>> = {
  [IGVM_VHT.SUPPORTED_PLATFORM]: IGVM_VHS_SUPPORTED_PLATFORM.size,
  [IGVM_VHT.GUEST_POLICY]: IGVM_VHS_GUEST_POLICY.size,
  [IGVM_VHT.RELOCATABLE_REGION]: IGVM_VHS_RELOCATABLE_REGION.size,
  [IGVM_VHT.PAGE_TABLE_RELOCATION_REGION]: IGVM_VHS_PAGE_TABLE_RELOCATION.size,
  [IGVM_VHT.PARAMETER_AREA]: IGVM_VHS_PARAMETER_AREA.size,
  [IGVM_VHT.PAGE_DATA]: IGVM_VHS_PAGE_DATA.size,
  [IGVM_VHT.PARAMETER_INSERT]: IGVM_VHS_PARAMETER_INSERT.size,
  [IGVM_VHT.VP_CONTEXT]: IGVM_VHS_VP_CONTEXT.size,
  [IGVM_VHT.REQUIRED_MEMORY]: IGVM_VHS_REQUIRED_MEMORY.size,
  [IGVM_VHT.SNP_ID_BLOCK]: IGVM_VHS_SNP_ID_BLOCK.size,
  [IGVM_VHT.ERROR_RANGE]: IGVM_VHS_ERROR_RANGE.size,
  [IGVM_VHT.VBS_MEASUREMENT]: IGVM_VHS_VBS_MEASUREMENT.size,
  ...Object.fromEntries(IGVM_PARAMETER_TYPES.map((t) => [t, IGVM_VHS_PARAMETER.size])),
};

// ---------------------------------------------------------------------------------------------
// What the loader writes into parameter areas (unmeasured; the guest must validate it)

// igvm_defs `IGVM_VHS_MEMORY_RANGE`; MMIO_RANGES is two of these.
export const IGVM_VHS_MEMORY_RANGE = defineStruct('IGVM_VHS_MEMORY_RANGE', 0x10, {
  startingGpaPageNumber: { offset: 0x0, type: 'u64' },
  numberOfPages: { offset: 0x8, type: 'u64' },
});

// igvm_defs `IGVM_VHS_MMIO_RANGES`.
export const IGVM_VHS_MMIO_RANGES = defineStruct('IGVM_VHS_MMIO_RANGES', 0x20, {
  ...embed('range0', 0x00, IGVM_VHS_MEMORY_RANGE),
  ...embed('range1', 0x10, IGVM_VHS_MEMORY_RANGE),
});

/** igvm_defs `MemoryMapEntryType` (4 and 5 are in newer crates). */
export const IGVM_MEMORY_MAP_ENTRY_TYPE = {
  MEMORY: 0x0,
  PLATFORM_RESERVED: 0x1,
  PERSISTENT: 0x2,
  VTL2_PROTECTABLE: 0x3,
  SPECIFIC_PURPOSE: 0x4,
  HIDDEN: 0x5,
} as const;

// igvm_defs `IGVM_VHS_MEMORY_MAP_ENTRY`: sorted by the loader; number_of_pages 0 ends the list.
export const IGVM_VHS_MEMORY_MAP_ENTRY = defineStruct('IGVM_VHS_MEMORY_MAP_ENTRY', 0x18, {
  startingGpaPageNumber: { offset: 0x00, type: 'u64' },
  numberOfPages: { offset: 0x08, type: 'u64', doc: '0 ends the list' },
  entryType: { offset: 0x10, type: 'u16', doc: 'IGVM_MEMORY_MAP_ENTRY_TYPE' },
  flags: { offset: 0x12, type: 'u16' },
  reserved: { offset: 0x14, type: 'u32' },
});

/** igvm_defs `IgvmEnvironmentInfo`: the u32 an ENVIRONMENT_INFO parameter receives. */
export const IGVM_ENVIRONMENT_INFO = defineBits('IGVM_ENVIRONMENT_INFO', 32, {
  memoryIsShared: flag(0, 'memory starts host-visible (shared)'),
});

/** The u32 a VP_COUNT parameter receives: the number of vCPUs the host starts. */
export const IGVM_VP_COUNT_SIZE = 4;
