// IGVM files to and from the typed model. The reader trusts nothing: every size, offset, type,
// alignment and the checksum is checked, and every failure is an IgvmFormatError with one
// sentence saying why; the writer lays a file out as the `igvm` crate does (fixed header, records
// 8-aligned, file data in header order with identical blobs stored once, CRC last). Format:
// src/arch/igvm.ts and reference/igvm.md sections 1-4.

import { createHash } from 'node:crypto';
import {
  IGVM_ARCHITECTURE,
  IGVM_BODY_SIZE,
  IGVM_FIXED_HEADER,
  IGVM_FIXED_HEADER_V2,
  IGVM_FORMAT_VERSION,
  IGVM_MAGIC,
  IGVM_PAGE_DATA_FLAGS,
  IGVM_PAGE_SIZE_4K,
  IGVM_PARAMETER_TYPES,
  IGVM_RELOCATABLE_REGION_FLAGS,
  IGVM_REQUIRED_MEMORY_FLAGS,
  IGVM_VARIABLE_HEADER_ALIGN,
  IGVM_VHS_ERROR_RANGE,
  IGVM_VHS_GUEST_POLICY,
  IGVM_VHS_PAGE_DATA,
  IGVM_VHS_PAGE_TABLE_RELOCATION,
  IGVM_VHS_PARAMETER,
  IGVM_VHS_PARAMETER_AREA,
  IGVM_VHS_PARAMETER_INSERT,
  IGVM_VHS_RELOCATABLE_REGION,
  IGVM_VHS_REQUIRED_MEMORY,
  IGVM_VHS_SNP_ID_BLOCK,
  IGVM_VHS_SUPPORTED_PLATFORM,
  IGVM_VHS_VARIABLE_HEADER,
  IGVM_VHS_VBS_MEASUREMENT,
  IGVM_VHS_VP_CONTEXT,
  IGVM_VHT,
  IGVM_VHT_OPTIONAL,
  type IgvmPageDataType,
  type IgvmSection,
  igvmAlign8,
  igvmChecksum,
  igvmFixedHeaderSize,
  igvmSectionOf,
  igvmVhtName,
} from '../arch/igvm.js';
import { FieldRangeError, type StructLayout, type FieldSpecs } from '../arch/struct.js';
import {
  IGVM_MAX_GPA,
  type IgvmDirective,
  IgvmFormatError,
  type IgvmIgnoredHeader,
  type IgvmInitHeader,
  type IgvmModel,
  type IgvmParameterType,
  type IgvmPlatformHeader,
  type IgvmSupportedPlatform,
} from './model.js';
import {
  checkPlatforms,
  platformName,
  validateModel,
  vpContextPlatform,
  vpContextSize,
} from './validate.js';

function fail(reason: string): never {
  throw new IgvmFormatError(reason);
}

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const U32_MAX = 0xffff_ffff;

/** A u64 field that holds a GPA or size: a number, refused at 2^52 or above. */
function gpaOf(v: bigint, what: string): number {
  if (v >= BigInt(IGVM_MAX_GPA)) fail(`${what} ${hex(v)} lies outside the 52-bit address space`);
  return Number(v);
}

// =============================================================================================
// Reading

const SECTION_RANK: Readonly<Record<IgvmSection, number>> = {
  PLATFORM: 0,
  INIT: 1,
  DIRECTIVE: 2,
};

interface ReadContext {
  readonly bytes: Uint8Array;
  /** First byte of the file-data section: every file offset must point at or after it. */
  readonly dataStart: number;
  readonly platforms: IgvmSupportedPlatform[];
}

/** File data at `offset` (0 = none) of `length` bytes, which must lie inside the data section. */
function fileData(ctx: ReadContext, offset: number, length: number, what: string): Uint8Array {
  if (offset < ctx.dataStart || offset + length > ctx.bytes.length) {
    fail(
      `${what} data at file offset ${hex(offset)} (${hex(length)} bytes) lies outside the file data section`,
    );
  }
  return ctx.bytes.slice(offset, offset + length);
}

function optionalData(ctx: ReadContext, offset: number, length: number, what: string) {
  return offset === 0 ? null : fileData(ctx, offset, length, what);
}

function decodePlatform(body: Uint8Array): IgvmSupportedPlatform {
  const v = IGVM_VHS_SUPPORTED_PLATFORM.on(body);
  return {
    kind: 'supportedPlatform',
    compatibilityMask: v.get('compatibilityMask'),
    highestVtl: v.get('highestVtl'),
    platformType: v.get('platformType'),
    platformVersion: v.get('platformVersion'),
    sharedGpaBoundary: gpaOf(v.get('sharedGpaBoundary'), 'SUPPORTED_PLATFORM shared boundary'),
  };
}

function decodeInit(type: number, body: Uint8Array): IgvmInitHeader {
  switch (type) {
    case IGVM_VHT.GUEST_POLICY: {
      const v = IGVM_VHS_GUEST_POLICY.on(body);
      if (v.get('reserved') !== 0) fail('GUEST_POLICY has a non-zero reserved field');
      return {
        kind: 'guestPolicy',
        policy: v.get('policy'),
        compatibilityMask: v.get('compatibilityMask'),
      };
    }
    case IGVM_VHT.RELOCATABLE_REGION: {
      const v = IGVM_VHS_RELOCATABLE_REGION.on(body);
      const what = 'RELOCATABLE_REGION';
      if (IGVM_RELOCATABLE_REGION_FLAGS.reservedBits(BigInt(v.get('flags'))) !== 0n) {
        fail(`${what} sets reserved flag bits`);
      }
      return {
        kind: 'relocatableRegion',
        compatibilityMask: v.get('compatibilityMask'),
        vpIndex: v.get('vpIndex'),
        vtl: v.get('vtl'),
        flags: v.get('flags'),
        relocationAlignment: gpaOf(v.get('relocationAlignment'), `${what} alignment`),
        relocationRegionGpa: gpaOf(v.get('relocationRegionGpa'), `${what} base`),
        relocationRegionSize: gpaOf(v.get('relocationRegionSize'), `${what} size`),
        minimumRelocationGpa: gpaOf(v.get('minimumRelocationGpa'), `${what} minimum`),
        maximumRelocationGpa: gpaOf(v.get('maximumRelocationGpa'), `${what} maximum`),
      };
    }
    case IGVM_VHT.PAGE_TABLE_RELOCATION_REGION: {
      const v = IGVM_VHS_PAGE_TABLE_RELOCATION.on(body);
      const what = 'PAGE_TABLE_RELOCATION';
      if (v.get('reserved') !== 0) fail(`${what} has a non-zero reserved field`);
      return {
        kind: 'pageTableRelocation',
        compatibilityMask: v.get('compatibilityMask'),
        vpIndex: v.get('vpIndex'),
        vtl: v.get('vtl'),
        gpa: gpaOf(v.get('gpa'), `${what} GPA`),
        size: gpaOf(v.get('size'), `${what} size`),
        usedSize: gpaOf(v.get('usedSize'), `${what} used size`),
      };
    }
    default:
      return fail(`initialization header ${igvmVhtName(type)} is not supported`);
  }
}

function decodeDirective(ctx: ReadContext, type: number, body: Uint8Array): IgvmDirective {
  if (IGVM_PARAMETER_TYPES.includes(type)) {
    const v = IGVM_VHS_PARAMETER.on(body);
    return {
      kind: 'parameter',
      parameterType: type as IgvmParameterType,
      parameterAreaIndex: v.get('parameterAreaIndex'),
      byteOffset: v.get('byteOffset'),
    };
  }
  switch (type) {
    case IGVM_VHT.PAGE_DATA: {
      const v = IGVM_VHS_PAGE_DATA.on(body);
      const gpa = gpaOf(v.get('gpa'), 'PAGE_DATA GPA');
      if (v.get('reserved') !== 0) fail(`PAGE_DATA at ${hex(gpa)} has a non-zero reserved field`);
      const flags = BigInt(v.get('flags'));
      if (IGVM_PAGE_DATA_FLAGS.reservedBits(flags) !== 0n) {
        fail(`PAGE_DATA at ${hex(gpa)} sets reserved flag bits ${hex(flags)}`);
      }
      return {
        kind: 'pageData',
        gpa,
        compatibilityMask: v.get('compatibilityMask'),
        flags: {
          is2mbPage: IGVM_PAGE_DATA_FLAGS.has(flags, 'is2mbPage'),
          unmeasured: IGVM_PAGE_DATA_FLAGS.has(flags, 'unmeasured'),
          shared: IGVM_PAGE_DATA_FLAGS.has(flags, 'shared'),
        },
        dataType: v.get('dataType') as IgvmPageDataType,
        // A page's file data is always 4 KiB, as the igvm crate reads it (even for 2 MiB pages,
        // which validation then refuses).
        data: optionalData(ctx, v.get('fileOffset'), IGVM_PAGE_SIZE_4K, `PAGE_DATA ${hex(gpa)}`),
      };
    }
    case IGVM_VHT.PARAMETER_AREA: {
      const v = IGVM_VHS_PARAMETER_AREA.on(body);
      const index = v.get('parameterAreaIndex');
      const size = gpaOf(v.get('numberOfBytes'), `parameter area ${index} size`);
      return {
        kind: 'parameterArea',
        numberOfBytes: size,
        parameterAreaIndex: index,
        initialData: optionalData(ctx, v.get('fileOffset'), size, `parameter area ${index}`),
      };
    }
    case IGVM_VHT.PARAMETER_INSERT: {
      const v = IGVM_VHS_PARAMETER_INSERT.on(body);
      return {
        kind: 'parameterInsert',
        gpa: gpaOf(v.get('gpa'), 'PARAMETER_INSERT GPA'),
        compatibilityMask: v.get('compatibilityMask'),
        parameterAreaIndex: v.get('parameterAreaIndex'),
      };
    }
    case IGVM_VHT.VP_CONTEXT: {
      const v = IGVM_VHS_VP_CONTEXT.on(body);
      if (v.get('reserved') !== 0) fail('VP_CONTEXT has a non-zero reserved field');
      const mask = v.get('compatibilityMask');
      const platform = vpContextPlatform(mask, ctx.platforms);
      if (platform === undefined)
        fail(`VP_CONTEXT mask ${hex(mask)} is not the mask of one platform`);
      const name = platformName(platform.platformType);
      const offset = v.get('fileOffset');
      if (offset === 0) fail(`VP_CONTEXT for ${name} has no context data`);
      const first = fileData(ctx, offset, Math.min(4, ctx.bytes.length - offset), 'VP_CONTEXT');
      const firstWord = first.length === 4 ? new DataView(first.buffer).getUint32(0, true) : 0;
      const size = vpContextSize(platform.platformType, firstWord);
      if (size === null) fail(`a ${name} file cannot carry a VP_CONTEXT`);
      return {
        kind: 'vpContext',
        gpa: gpaOf(v.get('gpa'), 'VP_CONTEXT GPA'),
        compatibilityMask: mask,
        vpIndex: v.get('vpIndex'),
        context: fileData(ctx, offset, size, `VP_CONTEXT for ${name}`),
      };
    }
    case IGVM_VHT.REQUIRED_MEMORY: {
      const v = IGVM_VHS_REQUIRED_MEMORY.on(body);
      if (v.get('reserved') !== 0) fail('REQUIRED_MEMORY has a non-zero reserved field');
      const flags = BigInt(v.get('flags'));
      if (IGVM_REQUIRED_MEMORY_FLAGS.reservedBits(flags) !== 0n) {
        fail('REQUIRED_MEMORY sets reserved flag bits');
      }
      return {
        kind: 'requiredMemory',
        gpa: gpaOf(v.get('gpa'), 'REQUIRED_MEMORY GPA'),
        compatibilityMask: v.get('compatibilityMask'),
        numberOfBytes: v.get('numberOfBytes'),
        vtl2Protectable: IGVM_REQUIRED_MEMORY_FLAGS.has(flags, 'vtl2Protectable'),
      };
    }
    case IGVM_VHT.ERROR_RANGE: {
      const v = IGVM_VHS_ERROR_RANGE.on(body);
      return {
        kind: 'errorRange',
        gpa: gpaOf(v.get('gpa'), 'ERROR_RANGE GPA'),
        compatibilityMask: v.get('compatibilityMask'),
        sizeBytes: v.get('sizeBytes'),
      };
    }
    case IGVM_VHT.SNP_ID_BLOCK: {
      const v = IGVM_VHS_SNP_ID_BLOCK.on(body);
      if (v.get('reserved').some((b) => b !== 0)) fail('SNP_ID_BLOCK has non-zero reserved bytes');
      const sub = (name: string, size: number): Uint8Array => {
        const at = IGVM_VHS_SNP_ID_BLOCK.offset(name as 'ld');
        return body.slice(at, at + size);
      };
      return {
        kind: 'snpIdBlock',
        compatibilityMask: v.get('compatibilityMask'),
        authorKeyEnabled: v.get('authorKeyEnabled'),
        ld: v.get('ld'),
        familyId: v.get('familyId'),
        imageId: v.get('imageId'),
        version: v.get('version'),
        guestSvn: v.get('guestSvn'),
        idKeyAlgorithm: v.get('idKeyAlgorithm'),
        authorKeyAlgorithm: v.get('authorKeyAlgorithm'),
        idKeySignature: sub('idKeySignature.rComp', SIG_SIZE),
        idPublicKey: sub('idPublicKey.curve', KEY_SIZE),
        authorKeySignature: sub('authorKeySignature.rComp', SIG_SIZE),
        authorPublicKey: sub('authorPublicKey.curve', KEY_SIZE),
      };
    }
    case IGVM_VHT.VBS_MEASUREMENT:
      return { kind: 'vbsMeasurement', body: body.slice() };
    case IGVM_VHT.RESERVED_DO_NOT_USE:
      return fail('header type 0x306 is reserved and must not be used');
    default:
      return fail(`directive header ${igvmVhtName(type)} is not supported`);
  }
}

const SIG_SIZE = 0x90;
const KEY_SIZE = 0x98;

/**
 * Parses and validates an IGVM file. Throws IgvmFormatError (one sentence) for anything that is
 * not a well-formed file, and never another error, whatever the bytes.
 */
export function readIgvm(file: Uint8Array): IgvmModel {
  if (!(file instanceof Uint8Array)) fail('an IGVM file must be given as bytes');
  // A plain view, so that slice() copies even when given a Node Buffer.
  const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
  if (bytes.length < IGVM_FIXED_HEADER.size) {
    fail(`the file is ${bytes.length} bytes, too short for an IGVM fixed header`);
  }
  const fixed = IGVM_FIXED_HEADER.on(bytes);
  const magic = fixed.get('magic');
  if (magic !== IGVM_MAGIC) fail(`the file's magic is ${hex(magic)}, not "IGVM"`);
  const version = fixed.get('formatVersion');
  if (version !== IGVM_FORMAT_VERSION.V1 && version !== IGVM_FORMAT_VERSION.V2) {
    fail(`IGVM format version ${version} is not supported (only 1 and 2 are)`);
  }
  const fixedSize = igvmFixedHeaderSize(version);
  let architecture: number = IGVM_ARCHITECTURE.X64;
  if (version === IGVM_FORMAT_VERSION.V2) {
    if (bytes.length < fixedSize) fail('the file is too short for a version 2 fixed header');
    const v2 = IGVM_FIXED_HEADER_V2.on(bytes);
    architecture = v2.get('architecture');
    if (architecture !== IGVM_ARCHITECTURE.X64 && architecture !== IGVM_ARCHITECTURE.AARCH64) {
      fail(`architecture ${architecture} is neither x64 (0) nor AArch64 (1)`);
    }
    if (v2.get('pageSize') !== IGVM_PAGE_SIZE_4K) {
      fail(`page size ${hex(v2.get('pageSize'))} is not supported (only 4 KiB is)`);
    }
  }
  const total = fixed.get('totalFileSize');
  if (total !== bytes.length) {
    fail(`the header says the file is ${total} bytes but it is ${bytes.length}`);
  }
  const vhOffset = fixed.get('variableHeaderOffset');
  const vhSize = fixed.get('variableHeaderSize');
  if (vhOffset < fixedSize || vhOffset % IGVM_VARIABLE_HEADER_ALIGN !== 0) {
    fail(`variable headers at ${hex(vhOffset)} must start 8-aligned after the fixed header`);
  }
  const vhEnd = vhOffset + vhSize;
  if (vhEnd > bytes.length) fail('the variable headers run past the end of the file');
  const expected = igvmChecksum(bytes.subarray(0, fixedSize), bytes.subarray(vhOffset, vhEnd));
  const stored = fixed.get('checksum');
  if (stored !== expected) {
    fail(`the header checksum is ${hex(stored)} but the headers' CRC-32 is ${hex(expected)}`);
  }

  const ctx: ReadContext = { bytes, dataStart: vhEnd, platforms: [] };
  const platforms: IgvmPlatformHeader[] = [];
  const initialization: IgvmInitHeader[] = [];
  const directives: IgvmDirective[] = [];
  let section: IgvmSection = 'PLATFORM';
  let pos = vhOffset;
  while (pos < vhEnd) {
    if (vhEnd - pos < IGVM_VHS_VARIABLE_HEADER.size) {
      fail(`the variable header at ${hex(pos)} is cut short`);
    }
    const type = IGVM_VHS_VARIABLE_HEADER.get(bytes, 'type', pos);
    const length = IGVM_VHS_VARIABLE_HEADER.get(bytes, 'length', pos);
    const bodyStart = pos + IGVM_VHS_VARIABLE_HEADER.size;
    const next = bodyStart + igvmAlign8(length);
    const name = igvmVhtName(type);
    if (next > vhEnd) fail(`header ${name} at ${hex(pos)} runs past the variable headers`);
    if (bytes.subarray(bodyStart + length, next).some((b) => b !== 0)) {
      fail(`header ${name} at ${hex(pos)} has non-zero padding`);
    }
    const body = bytes.subarray(bodyStart, bodyStart + length);
    const optional = (type & IGVM_VHT_OPTIONAL) !== 0;
    const own: IgvmSection | null = igvmSectionOf(type) ?? (optional ? section : null);
    if (own === null) fail(`header type ${name} at ${hex(pos)} belongs to no section`);
    if (SECTION_RANK[own] < SECTION_RANK[section]) {
      fail(`header ${name} at ${hex(pos)} returns to the ${own} section`);
    }
    if (section === 'PLATFORM' && own !== 'PLATFORM') checkPlatforms({ architecture, platforms });
    section = own;
    if (optional) {
      const ignored: IgvmIgnoredHeader = { kind: 'ignored', type: type >>> 0, body: body.slice() };
      (own === 'PLATFORM' ? platforms : own === 'INIT' ? initialization : directives).push(ignored);
    } else {
      const size = IGVM_BODY_SIZE[type];
      if (size === undefined) {
        if (type === IGVM_VHT.RESERVED_DO_NOT_USE) {
          fail('header type 0x306 is reserved and must not be used');
        }
        fail(`header type ${name} at ${hex(pos)} is not supported and not marked optional`);
      }
      if (length !== size) fail(`header ${name} at ${hex(pos)} is ${length} bytes, not ${size}`);
      if (own === 'PLATFORM') {
        const p = decodePlatform(body);
        platforms.push(p);
        ctx.platforms.push(p);
      } else if (own === 'INIT') {
        initialization.push(decodeInit(type, body));
      } else {
        directives.push(decodeDirective(ctx, type, body));
      }
    }
    pos = next;
  }
  const model: IgvmModel = {
    formatVersion: version,
    architecture,
    platforms,
    initialization,
    directives,
  };
  validateModel(model);
  return model;
}

// =============================================================================================
// Writing

interface HeaderRecord {
  readonly type: number;
  readonly body: Uint8Array;
  /** File data for this header and where its offset goes in the body. */
  readonly blob?: { readonly bytes: Uint8Array; readonly offsetField: number };
}

function encode<F extends FieldSpecs>(
  layout: StructLayout<F>,
  fill: (v: ReturnType<StructLayout<F>['on']>) => void,
): Uint8Array {
  const body = layout.alloc();
  fill(layout.on(body));
  return body;
}

function padded(data: Uint8Array, size: number): Uint8Array {
  if (data.length === size) return data;
  const out = new Uint8Array(size);
  out.set(data);
  return out;
}

function platformRecord(h: IgvmPlatformHeader): HeaderRecord {
  if (h.kind === 'ignored') return { type: h.type, body: h.body };
  return {
    type: IGVM_VHT.SUPPORTED_PLATFORM,
    body: encode(IGVM_VHS_SUPPORTED_PLATFORM, (v) =>
      v
        .set('compatibilityMask', h.compatibilityMask)
        .set('highestVtl', h.highestVtl)
        .set('platformType', h.platformType)
        .set('platformVersion', h.platformVersion)
        .set('sharedGpaBoundary', BigInt(h.sharedGpaBoundary)),
    ),
  };
}

function initRecord(h: IgvmInitHeader): HeaderRecord {
  switch (h.kind) {
    case 'ignored':
      return { type: h.type, body: h.body };
    case 'guestPolicy':
      return {
        type: IGVM_VHT.GUEST_POLICY,
        body: encode(IGVM_VHS_GUEST_POLICY, (v) =>
          v.set('policy', h.policy).set('compatibilityMask', h.compatibilityMask),
        ),
      };
    case 'relocatableRegion':
      return {
        type: IGVM_VHT.RELOCATABLE_REGION,
        body: encode(IGVM_VHS_RELOCATABLE_REGION, (v) =>
          v
            .set('compatibilityMask', h.compatibilityMask)
            .set('vpIndex', h.vpIndex)
            .set('vtl', h.vtl)
            .set('flags', h.flags)
            .set('relocationAlignment', BigInt(h.relocationAlignment))
            .set('relocationRegionGpa', BigInt(h.relocationRegionGpa))
            .set('relocationRegionSize', BigInt(h.relocationRegionSize))
            .set('minimumRelocationGpa', BigInt(h.minimumRelocationGpa))
            .set('maximumRelocationGpa', BigInt(h.maximumRelocationGpa)),
        ),
      };
    case 'pageTableRelocation':
      return {
        type: IGVM_VHT.PAGE_TABLE_RELOCATION_REGION,
        body: encode(IGVM_VHS_PAGE_TABLE_RELOCATION, (v) =>
          v
            .set('compatibilityMask', h.compatibilityMask)
            .set('vpIndex', h.vpIndex)
            .set('vtl', h.vtl)
            .set('gpa', BigInt(h.gpa))
            .set('size', BigInt(h.size))
            .set('usedSize', BigInt(h.usedSize)),
        ),
      };
  }
}

function directiveRecord(d: IgvmDirective): HeaderRecord {
  switch (d.kind) {
    case 'ignored':
      return { type: d.type, body: d.body };
    case 'pageData': {
      const flags = IGVM_PAGE_DATA_FLAGS.encode(d.flags);
      const body = encode(IGVM_VHS_PAGE_DATA, (v) =>
        v
          .set('gpa', BigInt(d.gpa))
          .set('compatibilityMask', d.compatibilityMask)
          .set('flags', Number(flags))
          .set('dataType', d.dataType),
      );
      // The crate writes empty data as "no data" and pads the rest to a page.
      return d.data === null || d.data.length === 0
        ? { type: IGVM_VHT.PAGE_DATA, body }
        : {
            type: IGVM_VHT.PAGE_DATA,
            body,
            blob: {
              bytes: padded(d.data, IGVM_PAGE_SIZE_4K),
              offsetField: IGVM_VHS_PAGE_DATA.offset('fileOffset'),
            },
          };
    }
    case 'parameterArea': {
      const body = encode(IGVM_VHS_PARAMETER_AREA, (v) =>
        v
          .set('numberOfBytes', BigInt(d.numberOfBytes))
          .set('parameterAreaIndex', d.parameterAreaIndex),
      );
      return d.initialData === null || d.initialData.length === 0
        ? { type: IGVM_VHT.PARAMETER_AREA, body }
        : {
            type: IGVM_VHT.PARAMETER_AREA,
            body,
            blob: {
              bytes: padded(d.initialData, d.numberOfBytes),
              offsetField: IGVM_VHS_PARAMETER_AREA.offset('fileOffset'),
            },
          };
    }
    case 'parameter':
      return {
        type: d.parameterType,
        body: encode(IGVM_VHS_PARAMETER, (v) =>
          v.set('parameterAreaIndex', d.parameterAreaIndex).set('byteOffset', d.byteOffset),
        ),
      };
    case 'parameterInsert':
      return {
        type: IGVM_VHT.PARAMETER_INSERT,
        body: encode(IGVM_VHS_PARAMETER_INSERT, (v) =>
          v
            .set('gpa', BigInt(d.gpa))
            .set('compatibilityMask', d.compatibilityMask)
            .set('parameterAreaIndex', d.parameterAreaIndex),
        ),
      };
    case 'vpContext':
      return {
        type: IGVM_VHT.VP_CONTEXT,
        body: encode(IGVM_VHS_VP_CONTEXT, (v) =>
          v
            .set('gpa', BigInt(d.gpa))
            .set('compatibilityMask', d.compatibilityMask)
            .set('vpIndex', d.vpIndex),
        ),
        blob: { bytes: d.context, offsetField: IGVM_VHS_VP_CONTEXT.offset('fileOffset') },
      };
    case 'requiredMemory':
      return {
        type: IGVM_VHT.REQUIRED_MEMORY,
        body: encode(IGVM_VHS_REQUIRED_MEMORY, (v) =>
          v
            .set('gpa', BigInt(d.gpa))
            .set('compatibilityMask', d.compatibilityMask)
            .set('numberOfBytes', d.numberOfBytes)
            .set(
              'flags',
              Number(IGVM_REQUIRED_MEMORY_FLAGS.encode({ vtl2Protectable: d.vtl2Protectable })),
            ),
        ),
      };
    case 'errorRange':
      return {
        type: IGVM_VHT.ERROR_RANGE,
        body: encode(IGVM_VHS_ERROR_RANGE, (v) =>
          v
            .set('gpa', BigInt(d.gpa))
            .set('compatibilityMask', d.compatibilityMask)
            .set('sizeBytes', d.sizeBytes),
        ),
      };
    case 'snpIdBlock': {
      const body = encode(IGVM_VHS_SNP_ID_BLOCK, (v) =>
        v
          .set('compatibilityMask', d.compatibilityMask)
          .set('authorKeyEnabled', d.authorKeyEnabled)
          .set('ld', d.ld)
          .set('familyId', d.familyId)
          .set('imageId', d.imageId)
          .set('version', d.version)
          .set('guestSvn', d.guestSvn)
          .set('idKeyAlgorithm', d.idKeyAlgorithm)
          .set('authorKeyAlgorithm', d.authorKeyAlgorithm),
      );
      body.set(d.idKeySignature, IGVM_VHS_SNP_ID_BLOCK.offset('idKeySignature.rComp'));
      body.set(d.idPublicKey, IGVM_VHS_SNP_ID_BLOCK.offset('idPublicKey.curve'));
      body.set(d.authorKeySignature, IGVM_VHS_SNP_ID_BLOCK.offset('authorKeySignature.rComp'));
      body.set(d.authorPublicKey, IGVM_VHS_SNP_ID_BLOCK.offset('authorPublicKey.curve'));
      return { type: IGVM_VHT.SNP_ID_BLOCK, body };
    }
    case 'vbsMeasurement':
      return {
        type: IGVM_VHT.VBS_MEASUREMENT,
        body: padded(d.body, IGVM_VHS_VBS_MEASUREMENT.size),
      };
  }
}

/** Stores each distinct blob once, as the crate's FileDataSerializer does. */
class FileData {
  private readonly chunks: Uint8Array[] = [];
  private readonly seen = new Map<string, { offset: number; bytes: Uint8Array }[]>();
  private next: number;

  constructor(readonly start: number) {
    this.next = start;
  }

  place(bytes: Uint8Array): number {
    const key = createHash('sha256').update(bytes).digest('hex');
    const same = this.seen.get(key) ?? [];
    const hit = same.find(
      (s) => s.bytes.length === bytes.length && s.bytes.every((b, i) => b === bytes[i]),
    );
    if (hit !== undefined) return hit.offset;
    const offset = this.next;
    if (offset + bytes.length > U32_MAX) fail('the file would be larger than 4 GiB');
    this.chunks.push(bytes);
    same.push({ offset, bytes });
    this.seen.set(key, same);
    this.next += bytes.length;
    return offset;
  }

  get length(): number {
    return this.next - this.start;
  }

  copyInto(out: Uint8Array): void {
    let at = this.start;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
  }
}

/**
 * Lays a model out as an IGVM file. The model is validated first (IgvmFormatError with the rule it
 * breaks); page data shorter than 4 KiB and parameter data shorter than its area are zero-padded.
 */
export function writeIgvm(model: IgvmModel): Uint8Array {
  validateModel(model);
  try {
    const records: HeaderRecord[] = [
      ...model.platforms.map(platformRecord),
      ...model.initialization.map(initRecord),
      ...model.directives.map(directiveRecord),
    ];
    const fixedSize = igvmFixedHeaderSize(model.formatVersion);
    let vhSize = 0;
    for (const r of records) vhSize += IGVM_VHS_VARIABLE_HEADER.size + igvmAlign8(r.body.length);
    const data = new FileData(fixedSize + vhSize);
    const vh = new Uint8Array(vhSize);
    let pos = 0;
    for (const r of records) {
      IGVM_VHS_VARIABLE_HEADER.on(vh, pos).set('type', r.type).set('length', r.body.length);
      const at = pos + IGVM_VHS_VARIABLE_HEADER.size;
      vh.set(r.body, at);
      if (r.blob !== undefined) {
        new DataView(vh.buffer).setUint32(at + r.blob.offsetField, data.place(r.blob.bytes), true);
      }
      pos = at + igvmAlign8(r.body.length);
    }
    const total = fixedSize + vhSize + data.length;
    if (total > U32_MAX) fail('the file would be larger than 4 GiB');
    const out = new Uint8Array(total);
    const fixed = IGVM_FIXED_HEADER.on(out)
      .set('magic', IGVM_MAGIC)
      .set('formatVersion', model.formatVersion)
      .set('variableHeaderOffset', fixedSize)
      .set('variableHeaderSize', vhSize)
      .set('totalFileSize', total);
    if (model.formatVersion === IGVM_FORMAT_VERSION.V2) {
      IGVM_FIXED_HEADER_V2.on(out)
        .set('architecture', model.architecture)
        .set('pageSize', IGVM_PAGE_SIZE_4K);
    }
    out.set(vh, fixedSize);
    data.copyInto(out);
    fixed.set('checksum', igvmChecksum(out.subarray(0, fixedSize), vh));
    return out;
  } catch (e) {
    if (e instanceof FieldRangeError)
      throw new IgvmFormatError(`cannot write the file: ${e.message}`);
    throw e;
  }
}
