// The rules of the IGVM format that concern a file's meaning rather than its bytes: platforms,
// compatibility masks, alignment, parameter-area life cycle, VP-context formats. The reader runs
// them on what it decoded and the writer on what it is given, so a file this project writes is one
// it reads back. Sources: igvm_defs doc comments and the `igvm` crate's validation
// (reference/igvm.md sections 2-4).

import {
  IGVM_ARCHITECTURE,
  IGVM_PAGE_DATA_TYPE,
  IGVM_PAGE_SIZE_2M,
  IGVM_PAGE_SIZE_4K,
  IGVM_PARAMETER_TYPES,
  IGVM_PLATFORM_TYPE,
  IGVM_PLATFORM_VERSION,
  IGVM_VBS_VP_CONTEXT_HEADER_SIZE,
  IGVM_VBS_VP_CONTEXT_REGISTER_SIZE,
  IGVM_VHS_SNP_ID_BLOCK,
  IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY,
  IGVM_VHS_SNP_ID_BLOCK_SIGNATURE,
  IGVM_VHS_VBS_MEASUREMENT,
  IGVM_VHT_OPTIONAL,
  igvmVhtName,
} from '../arch/igvm.js';
import { VMSA_SIZE } from '../arch/vmsa.js';
import {
  IGVM_MAX_GPA,
  type IgvmDirective,
  IgvmFormatError,
  type IgvmIgnoredHeader,
  type IgvmInitHeader,
  type IgvmModel,
  type IgvmSupportedPlatform,
} from './model.js';

/** x64 IgvmNativeVpContextX64 size; the rest of its 4 KiB page must be zero. */
export const NATIVE_VP_CONTEXT_X64_SIZE = 232;

const U8 = 0xff;
const U16 = 0xffff;
const U32 = 0xffff_ffff;

function fail(reason: string): never {
  throw new IgvmFormatError(reason);
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function checkInt(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) fail(`${what} ${String(v)} is out of range`);
}

function checkGpa(gpa: number, align: number, what: string, size = 0): void {
  if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa + size > IGVM_MAX_GPA) {
    fail(`${what} GPA ${hex(gpa)} lies outside the 52-bit guest physical address space`);
  }
  if (gpa % align !== 0) fail(`${what} GPA ${hex(gpa)} is not aligned to ${hex(align)}`);
}

function checkSize(n: number, max: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max)
    fail(`${what} size ${String(n)} is out of range`);
  if (n % IGVM_PAGE_SIZE_4K !== 0) fail(`${what} size ${hex(n)} is not a multiple of 4 KiB`);
}

function checkBytes(b: Uint8Array, length: number, what: string): void {
  if (!(b instanceof Uint8Array) || b.length !== length) fail(`${what} must be ${length} bytes`);
}

function checkIgnored(h: IgvmIgnoredHeader): void {
  checkInt(h.type, U32, 'header type');
  if ((h.type & IGVM_VHT_OPTIONAL) === 0) {
    fail(`header type ${hex(h.type)} is kept unread but is not marked optional (bit 31)`);
  }
  if (!(h.body instanceof Uint8Array)) fail('an ignored header needs a body');
}

/** What the walk over the platform headers found, for the checks of the later sections. */
export interface PlatformInfo {
  readonly platforms: readonly IgvmSupportedPlatform[];
  /** OR of every platform's mask: a header's mask must be a non-empty subset of it. */
  readonly allMasks: number;
}

/** Checks the platform section (also on its own, before the reader decodes the headers after it). */
export function checkPlatforms(model: Pick<IgvmModel, 'architecture' | 'platforms'>): PlatformInfo {
  const platforms: IgvmSupportedPlatform[] = [];
  let allMasks = 0;
  const x64 = model.architecture === IGVM_ARCHITECTURE.X64;
  for (const p of model.platforms) {
    if (p.kind === 'ignored') {
      checkIgnored(p);
      continue;
    }
    const name = platformName(p.platformType);
    checkInt(p.compatibilityMask, U32, `${name} compatibility mask`);
    if (p.compatibilityMask === 0 || (p.compatibilityMask & (p.compatibilityMask - 1)) !== 0) {
      fail(`platform ${name} has compatibility mask ${hex(p.compatibilityMask)}, not one bit`);
    }
    if (p.highestVtl !== 0 && p.highestVtl !== 2) {
      fail(`platform ${name} has highest VTL ${String(p.highestVtl)}; it must be 0 or 2`);
    }
    if (!Object.values(IGVM_PLATFORM_TYPE).includes(p.platformType as never)) {
      fail(`platform type ${String(p.platformType)} is not defined by the spec`);
    }
    if (p.platformVersion !== IGVM_PLATFORM_VERSION) {
      fail(`platform ${name} has version ${String(p.platformVersion)}; only 1 is defined`);
    }
    checkGpa(p.sharedGpaBoundary, 1, `platform ${name} shared boundary`);
    if (
      (p.platformType === IGVM_PLATFORM_TYPE.NATIVE ||
        p.platformType === IGVM_PLATFORM_TYPE.VSM_ISOLATION) &&
      p.sharedGpaBoundary !== 0
    ) {
      fail(`platform ${name} cannot have a shared GPA boundary`);
    }
    const x64Only: number[] = [
      IGVM_PLATFORM_TYPE.SEV_SNP,
      IGVM_PLATFORM_TYPE.TDX,
      IGVM_PLATFORM_TYPE.SEV,
      IGVM_PLATFORM_TYPE.SEV_ES,
    ];
    if (x64Only.includes(p.platformType) && !x64) fail(`platform ${name} exists only on x64`);
    if (p.platformType === IGVM_PLATFORM_TYPE.CCA && x64)
      fail('platform CCA exists only on AArch64');
    if ((allMasks & p.compatibilityMask) !== 0) {
      fail(`two platforms share compatibility mask ${hex(p.compatibilityMask)}`);
    }
    if (platforms.some((q) => q.platformType === p.platformType)) {
      fail(`platform ${name} is declared twice`);
    }
    allMasks |= p.compatibilityMask;
    platforms.push(p);
  }
  if (platforms.length === 0) fail('the file declares no supported platform');
  return { platforms, allMasks: allMasks >>> 0 };
}

/** The spec's name of a platform type. */
export function platformName(type: number): string {
  for (const [name, code] of Object.entries(IGVM_PLATFORM_TYPE)) if (code === type) return name;
  return `type ${String(type)}`;
}

function checkMask(mask: number, info: PlatformInfo, what: string): void {
  checkInt(mask, U32, `${what} compatibility mask`);
  if (mask === 0) fail(`${what} has compatibility mask 0, so it applies to no platform`);
  if ((mask & ~info.allMasks) !== 0) {
    fail(`${what} has compatibility mask ${hex(mask)}, naming an undeclared platform`);
  }
}

function checkInit(h: IgvmInitHeader, info: PlatformInfo): void {
  switch (h.kind) {
    case 'ignored':
      return checkIgnored(h);
    case 'guestPolicy':
      if (typeof h.policy !== 'bigint' || h.policy < 0n || h.policy > 0xffff_ffff_ffff_ffffn) {
        fail('GUEST_POLICY policy is not a 64-bit value');
      }
      return checkMask(h.compatibilityMask, info, 'GUEST_POLICY');
    case 'relocatableRegion':
      checkMask(h.compatibilityMask, info, 'RELOCATABLE_REGION');
      checkInt(h.vpIndex, U16, 'RELOCATABLE_REGION vp index');
      checkInt(h.vtl, U8, 'RELOCATABLE_REGION VTL');
      checkInt(h.flags, 0x7, 'RELOCATABLE_REGION flags');
      checkSize(h.relocationAlignment, IGVM_MAX_GPA, 'RELOCATABLE_REGION alignment');
      if (h.relocationAlignment === 0) fail('RELOCATABLE_REGION alignment is zero');
      checkGpa(h.relocationRegionGpa, h.relocationAlignment, 'RELOCATABLE_REGION base');
      checkSize(h.relocationRegionSize, IGVM_MAX_GPA, 'RELOCATABLE_REGION');
      checkGpa(h.minimumRelocationGpa, h.relocationAlignment, 'RELOCATABLE_REGION minimum');
      checkGpa(h.maximumRelocationGpa, h.relocationAlignment, 'RELOCATABLE_REGION maximum');
      return;
    case 'pageTableRelocation':
      checkMask(h.compatibilityMask, info, 'PAGE_TABLE_RELOCATION');
      checkInt(h.vpIndex, U16, 'PAGE_TABLE_RELOCATION vp index');
      checkInt(h.vtl, U8, 'PAGE_TABLE_RELOCATION VTL');
      checkGpa(h.gpa, IGVM_PAGE_SIZE_4K, 'PAGE_TABLE_RELOCATION');
      checkSize(h.size, IGVM_MAX_GPA, 'PAGE_TABLE_RELOCATION');
      checkSize(h.usedSize, h.size, 'PAGE_TABLE_RELOCATION used');
      return;
  }
}

/** The platform a VP context's mask names: it must equal exactly one platform's mask. */
export function vpContextPlatform(
  mask: number,
  platforms: readonly IgvmSupportedPlatform[],
): IgvmSupportedPlatform | undefined {
  return platforms.find((p) => p.compatibilityMask === mask);
}

/**
 * The number of file-data bytes a VP context of `platform` occupies, given the first 4 bytes of it
 * (VSM contexts are counted); null when the platform has no VP context (TDX).
 */
export function vpContextSize(platformType: number, firstWord: number): number | null {
  switch (platformType) {
    case IGVM_PLATFORM_TYPE.VSM_ISOLATION:
      return IGVM_VBS_VP_CONTEXT_HEADER_SIZE + firstWord * IGVM_VBS_VP_CONTEXT_REGISTER_SIZE;
    case IGVM_PLATFORM_TYPE.TDX:
      return null;
    default:
      return IGVM_PAGE_SIZE_4K;
  }
}

type AreaState = { readonly numberOfBytes: number; inserted: boolean };

function checkDirective(
  d: IgvmDirective,
  info: PlatformInfo,
  areas: Map<number, AreaState>,
  version: number,
): void {
  switch (d.kind) {
    case 'ignored':
      return checkIgnored(d);
    case 'pageData': {
      checkMask(d.compatibilityMask, info, 'PAGE_DATA');
      const flags = d.flags;
      const size = flags.is2mbPage ? IGVM_PAGE_SIZE_2M : IGVM_PAGE_SIZE_4K;
      checkGpa(d.gpa, size, 'PAGE_DATA', size);
      if (!Object.values(IGVM_PAGE_DATA_TYPE).includes(d.dataType)) {
        fail(
          `PAGE_DATA at ${hex(d.gpa)} has data type ${String(d.dataType)}, not one the spec defines`,
        );
      }
      if (d.data !== null) {
        if (!(d.data instanceof Uint8Array) || d.data.length > IGVM_PAGE_SIZE_4K) {
          fail(`PAGE_DATA at ${hex(d.gpa)} carries more than 4 KiB of data`);
        }
        if (flags.is2mbPage && d.data.length > 0) {
          fail(
            `PAGE_DATA at ${hex(d.gpa)} is a 2 MiB page with file data, which the igvm crate reads as 4 KiB; use 4 KiB pages`,
          );
        }
      }
      return;
    }
    case 'parameterArea': {
      checkInt(d.parameterAreaIndex, U32, 'parameter area index');
      checkSize(d.numberOfBytes, IGVM_MAX_GPA, `parameter area ${String(d.parameterAreaIndex)}`);
      if (d.numberOfBytes === 0) fail(`parameter area ${String(d.parameterAreaIndex)} is empty`);
      if (areas.has(d.parameterAreaIndex)) {
        fail(`parameter area index ${String(d.parameterAreaIndex)} is declared twice`);
      }
      if (d.initialData !== null && d.initialData.length > d.numberOfBytes) {
        fail(`parameter area ${String(d.parameterAreaIndex)} has more initial data than bytes`);
      }
      areas.set(d.parameterAreaIndex, { numberOfBytes: d.numberOfBytes, inserted: false });
      return;
    }
    case 'parameter': {
      const name = igvmVhtName(d.parameterType);
      if (!IGVM_PARAMETER_TYPES.includes(d.parameterType)) fail(`${name} is not a parameter type`);
      checkInt(d.parameterAreaIndex, U32, `${name} area index`);
      checkInt(d.byteOffset, U32, `${name} byte offset`);
      const area = areas.get(d.parameterAreaIndex);
      if (area === undefined || area.inserted) {
        fail(
          `${name} uses parameter area ${String(d.parameterAreaIndex)}, which is not declared or already inserted`,
        );
      }
      if (d.byteOffset >= area.numberOfBytes) {
        fail(`${name} byte offset ${hex(d.byteOffset)} lies outside its parameter area`);
      }
      return;
    }
    case 'parameterInsert': {
      checkMask(d.compatibilityMask, info, 'PARAMETER_INSERT');
      checkInt(d.parameterAreaIndex, U32, 'PARAMETER_INSERT area index');
      const area = areas.get(d.parameterAreaIndex);
      if (area === undefined || area.inserted) {
        fail(
          `PARAMETER_INSERT of area ${String(d.parameterAreaIndex)}, which is not declared or already inserted`,
        );
      }
      checkGpa(d.gpa, IGVM_PAGE_SIZE_4K, 'PARAMETER_INSERT', area.numberOfBytes);
      area.inserted = true;
      return;
    }
    case 'vpContext': {
      checkInt(d.compatibilityMask, U32, 'VP_CONTEXT compatibility mask');
      checkInt(d.vpIndex, U16, 'VP_CONTEXT vp index');
      const platform = vpContextPlatform(d.compatibilityMask, info.platforms);
      if (platform === undefined) {
        fail(`VP_CONTEXT mask ${hex(d.compatibilityMask)} is not the mask of one platform`);
      }
      const name = platformName(platform.platformType);
      if (!(d.context instanceof Uint8Array)) fail(`VP_CONTEXT for ${name} has no context bytes`);
      const expected = vpContextSize(
        platform.platformType,
        d.context.length >= 4
          ? new DataView(d.context.buffer, d.context.byteOffset, 4).getUint32(0, true)
          : 0,
      );
      if (expected === null) fail(`a ${name} file cannot carry a VP_CONTEXT`);
      if (d.context.length !== expected) {
        fail(`VP_CONTEXT for ${name} must be ${String(expected)} bytes`);
      }
      const snpLike =
        platform.platformType === IGVM_PLATFORM_TYPE.SEV_SNP ||
        platform.platformType === IGVM_PLATFORM_TYPE.SEV_ES;
      if (snpLike) {
        checkGpa(d.gpa, IGVM_PAGE_SIZE_4K, 'VP_CONTEXT (VMSA)', VMSA_SIZE);
      } else if (d.gpa !== 0) {
        fail(`VP_CONTEXT for ${name} must have GPA 0`);
      }
      if (
        platform.platformType === IGVM_PLATFORM_TYPE.NATIVE ||
        platform.platformType === IGVM_PLATFORM_TYPE.SEV
      ) {
        if (version < 2) fail(`a ${name} VP_CONTEXT needs format version 2`);
        if (d.context.subarray(NATIVE_VP_CONTEXT_X64_SIZE).some((b) => b !== 0)) {
          fail(`VP_CONTEXT for ${name} has non-zero bytes after its 232-byte register block`);
        }
      }
      return;
    }
    case 'requiredMemory':
      checkMask(d.compatibilityMask, info, 'REQUIRED_MEMORY');
      checkSize(d.numberOfBytes, U32, 'REQUIRED_MEMORY');
      checkGpa(d.gpa, IGVM_PAGE_SIZE_4K, 'REQUIRED_MEMORY', d.numberOfBytes);
      return;
    case 'errorRange':
      checkMask(d.compatibilityMask, info, 'ERROR_RANGE');
      checkSize(d.sizeBytes, U32, 'ERROR_RANGE');
      checkGpa(d.gpa, IGVM_PAGE_SIZE_4K, 'ERROR_RANGE', d.sizeBytes);
      return;
    case 'snpIdBlock': {
      checkMask(d.compatibilityMask, info, 'SNP_ID_BLOCK');
      checkBytes(d.ld, IGVM_VHS_SNP_ID_BLOCK.field('ld').size, 'SNP_ID_BLOCK ld');
      checkBytes(d.familyId, 16, 'SNP_ID_BLOCK family id');
      checkBytes(d.imageId, 16, 'SNP_ID_BLOCK image id');
      for (const [v, what] of [
        [d.version, 'version'],
        [d.guestSvn, 'guest SVN'],
        [d.idKeyAlgorithm, 'ID key algorithm'],
        [d.authorKeyAlgorithm, 'author key algorithm'],
      ] as const) {
        checkInt(v, U32, `SNP_ID_BLOCK ${what}`);
      }
      const sig = IGVM_VHS_SNP_ID_BLOCK_SIGNATURE.size;
      const key = IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY.size;
      checkBytes(d.idKeySignature, sig, 'SNP_ID_BLOCK ID signature');
      checkBytes(d.idPublicKey, key, 'SNP_ID_BLOCK ID public key');
      checkBytes(d.authorKeySignature, sig, 'SNP_ID_BLOCK author signature');
      checkBytes(d.authorPublicKey, key, 'SNP_ID_BLOCK author public key');
      if (d.authorKeyEnabled !== 0 && d.authorKeyEnabled !== 1) {
        fail(`SNP_ID_BLOCK author_key_enabled is ${String(d.authorKeyEnabled)}, not 0 or 1`);
      }
      const authorUsed =
        d.authorKeyAlgorithm !== 0 ||
        d.authorKeySignature.some((b) => b !== 0) ||
        d.authorPublicKey.some((b) => b !== 0);
      if (d.authorKeyEnabled === 0 && authorUsed) {
        fail('SNP_ID_BLOCK has author key fields but author_key_enabled is 0');
      }
      return;
    }
    case 'vbsMeasurement':
      checkBytes(d.body, IGVM_VHS_VBS_MEASUREMENT.size, 'VBS_MEASUREMENT');
      return;
  }
}

/** Checks a whole model; throws IgvmFormatError with the first rule it breaks. */
export function validateModel(model: IgvmModel): PlatformInfo {
  if (model.formatVersion !== 1 && model.formatVersion !== 2) {
    fail(`format version ${String(model.formatVersion)} is not 1 or 2`);
  }
  if (model.formatVersion === 1 && model.architecture !== IGVM_ARCHITECTURE.X64) {
    fail('a version 1 file is always x64; AArch64 needs format version 2');
  }
  if (!Object.values(IGVM_ARCHITECTURE).includes(model.architecture as never)) {
    fail(`architecture ${String(model.architecture)} is not x64 (0) or AArch64 (1)`);
  }
  const info = checkPlatforms(model);
  for (const h of model.initialization) checkInit(h, info);
  const areas = new Map<number, AreaState>();
  for (const d of model.directives) checkDirective(d, info, areas, model.formatVersion);
  return info;
}
