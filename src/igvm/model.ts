// The typed model of an IGVM file: what readIgvm returns and writeIgvm takes. Each header of the
// file is one object, in file order within its section, with its file data (page contents, VMSA,
// parameter-area data) attached, so nobody downstream handles file offsets. Layouts and codes are
// in src/arch/igvm.ts.

import type { IGVM_VHT, IgvmPageDataType } from '../arch/igvm.js';

/** A file that breaks the IGVM format, or a model that cannot be written as one. */
export class IgvmFormatError extends Error {
  override readonly name = 'IgvmFormatError';
}

/** GPAs and sizes are numbers: exact below 2^53, and the reader refuses anything at 2^52 or above. */
export const IGVM_MAX_GPA = 2 ** 52;

/**
 * A header the file marks optional (type bit 31) and that we keep unread, as the spec lets a
 * loader do. `type` includes bit 31; `body` excludes the prefix and padding.
 */
export interface IgvmIgnoredHeader {
  readonly kind: 'ignored';
  readonly type: number;
  readonly body: Uint8Array;
}

// --- Platform section -------------------------------------------------------------------------

/** IGVM_VHS_SUPPORTED_PLATFORM. */
export interface IgvmSupportedPlatform {
  readonly kind: 'supportedPlatform';
  /** Exactly one bit; the other headers name the platforms they apply to by these bits. */
  readonly compatibilityMask: number;
  readonly highestVtl: number;
  /** IGVM_PLATFORM_TYPE. */
  readonly platformType: number;
  readonly platformVersion: number;
  /** SNP: vTOM, the GPA from which memory is host-visible; 0 = unused. */
  readonly sharedGpaBoundary: number;
}

export type IgvmPlatformHeader = IgvmSupportedPlatform | IgvmIgnoredHeader;

// --- Initialization section -------------------------------------------------------------------

/** IGVM_VHS_GUEST_POLICY; for SEV-SNP `policy` is the SNP guest policy for SNP_LAUNCH_START. */
export interface IgvmGuestPolicy {
  readonly kind: 'guestPolicy';
  readonly policy: bigint;
  readonly compatibilityMask: number;
}

/** IGVM_VHS_RELOCATABLE_REGION (decoded, never applied: no SNP loader supports it). */
export interface IgvmRelocatableRegion {
  readonly kind: 'relocatableRegion';
  readonly compatibilityMask: number;
  readonly vpIndex: number;
  readonly vtl: number;
  /** IGVM_RELOCATABLE_REGION_FLAGS. */
  readonly flags: number;
  readonly relocationAlignment: number;
  readonly relocationRegionGpa: number;
  readonly relocationRegionSize: number;
  readonly minimumRelocationGpa: number;
  readonly maximumRelocationGpa: number;
}

/** IGVM_VHS_PAGE_TABLE_RELOCATION (decoded, never applied). */
export interface IgvmPageTableRelocation {
  readonly kind: 'pageTableRelocation';
  readonly compatibilityMask: number;
  readonly vpIndex: number;
  readonly vtl: number;
  readonly gpa: number;
  readonly size: number;
  readonly usedSize: number;
}

export type IgvmInitHeader =
  IgvmGuestPolicy | IgvmRelocatableRegion | IgvmPageTableRelocation | IgvmIgnoredHeader;

// --- Directive section ------------------------------------------------------------------------

/** IgvmPageDataFlags. */
export interface IgvmPageDataFlags {
  readonly is2mbPage: boolean;
  readonly unmeasured: boolean;
  readonly shared: boolean;
}

/** IGVM_VHS_PAGE_DATA with its contents. */
export interface IgvmPageData {
  readonly kind: 'pageData';
  readonly gpa: number;
  readonly compatibilityMask: number;
  readonly flags: IgvmPageDataFlags;
  readonly dataType: IgvmPageDataType;
  /**
   * The page (4096 bytes as read; the writer pads shorter data with zeros), or null for a page of
   * zeros (file_offset 0).
   */
  readonly data: Uint8Array | null;
}

/** IGVM_VHS_PARAMETER_AREA with its initial contents. */
export interface IgvmParameterArea {
  readonly kind: 'parameterArea';
  readonly numberOfBytes: number;
  readonly parameterAreaIndex: number;
  /** numberOfBytes bytes as read (the writer pads shorter data), or null for zeros. */
  readonly initialData: Uint8Array | null;
}

/** The header types whose body is IGVM_VHS_PARAMETER. */
export type IgvmParameterType =
  | typeof IGVM_VHT.VP_COUNT_PARAMETER
  | typeof IGVM_VHT.SRAT
  | typeof IGVM_VHT.MADT
  | typeof IGVM_VHT.MMIO_RANGES
  | typeof IGVM_VHT.MEMORY_MAP
  | typeof IGVM_VHT.COMMAND_LINE
  | typeof IGVM_VHT.SLIT
  | typeof IGVM_VHT.PPTT
  | typeof IGVM_VHT.DEVICE_TREE
  | typeof IGVM_VHT.ENVIRONMENT_INFO_PARAMETER;

/** A parameter usage: the loader writes `parameterType`'s value at byteOffset of the area. */
export interface IgvmParameter {
  readonly kind: 'parameter';
  readonly parameterType: IgvmParameterType;
  readonly parameterAreaIndex: number;
  readonly byteOffset: number;
}

/** IGVM_VHS_PARAMETER_INSERT. */
export interface IgvmParameterInsert {
  readonly kind: 'parameterInsert';
  readonly gpa: number;
  readonly compatibilityMask: number;
  readonly parameterAreaIndex: number;
}

/** IGVM_VHS_VP_CONTEXT with its file data. */
export interface IgvmVpContext {
  readonly kind: 'vpContext';
  /** SEV-SNP: the GPA the VMSA is placed (and, under KVM, measured) at; other platforms 0. */
  readonly gpa: number;
  /** Equal to the mask of exactly one platform, whose type decides the context's format. */
  readonly compatibilityMask: number;
  readonly vpIndex: number;
  /** SEV-SNP / SEV-ES: the 4096-byte VMSA page. VSM: count + registers. Others: 4096 bytes. */
  readonly context: Uint8Array;
}

/** IGVM_VHS_REQUIRED_MEMORY. */
export interface IgvmRequiredMemory {
  readonly kind: 'requiredMemory';
  readonly gpa: number;
  readonly compatibilityMask: number;
  readonly numberOfBytes: number;
  readonly vtl2Protectable: boolean;
}

/** IGVM_VHS_ERROR_RANGE. */
export interface IgvmErrorRange {
  readonly kind: 'errorRange';
  readonly gpa: number;
  readonly compatibilityMask: number;
  readonly sizeBytes: number;
}

/** IGVM_VHS_SNP_ID_BLOCK; signatures and keys are the raw 144/152-byte structures. */
export interface IgvmSnpIdBlock {
  readonly kind: 'snpIdBlock';
  readonly compatibilityMask: number;
  readonly authorKeyEnabled: number;
  /** The launch digest the ID block expects (48 bytes). */
  readonly ld: Uint8Array;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly version: number;
  readonly guestSvn: number;
  readonly idKeyAlgorithm: number;
  readonly authorKeyAlgorithm: number;
  /** IGVM_VHS_SNP_ID_BLOCK_SIGNATURE bytes. */
  readonly idKeySignature: Uint8Array;
  /** IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY bytes. */
  readonly idPublicKey: Uint8Array;
  readonly authorKeySignature: Uint8Array;
  readonly authorPublicKey: Uint8Array;
}

/** IGVM_VHS_VBS_MEASUREMENT, kept as its 864-byte body (Hyper-V VBS only). */
export interface IgvmVbsMeasurement {
  readonly kind: 'vbsMeasurement';
  readonly body: Uint8Array;
}

export type IgvmDirective =
  | IgvmPageData
  | IgvmParameterArea
  | IgvmParameter
  | IgvmParameterInsert
  | IgvmVpContext
  | IgvmRequiredMemory
  | IgvmErrorRange
  | IgvmSnpIdBlock
  | IgvmVbsMeasurement
  | IgvmIgnoredHeader;

// --- The file ---------------------------------------------------------------------------------

export interface IgvmModel {
  /** 1, or 2 (32-byte fixed header with architecture and page size; 4 KiB pages only). */
  readonly formatVersion: 1 | 2;
  /** IGVM_ARCHITECTURE; version 1 files are always x64. */
  readonly architecture: number;
  readonly platforms: readonly IgvmPlatformHeader[];
  readonly initialization: readonly IgvmInitHeader[];
  /** In file order: the order a loader applies them and the launch digest is chained. */
  readonly directives: readonly IgvmDirective[];
}

/** Whether a header with `mask` applies to the platform with mask `platformMask`. */
export function appliesTo(mask: number, platformMask: number): boolean {
  return (mask & platformMask) !== 0;
}

/** The file's supported platforms (the ignored headers left out). */
export function supportedPlatforms(model: IgvmModel): IgvmSupportedPlatform[] {
  return model.platforms.filter((p): p is IgvmSupportedPlatform => p.kind === 'supportedPlatform');
}
