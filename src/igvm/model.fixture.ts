// Test-only builders of IGVM models: a small SNP launch image and fast-check arbitraries of valid
// models of every header kind, for the reader/writer and measurement tests.

import fc from 'fast-check';
import {
  IGVM_ARCHITECTURE,
  IGVM_PAGE_DATA_TYPE,
  IGVM_PARAMETER_TYPES,
  IGVM_PLATFORM_TYPE,
  IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY,
  IGVM_VHS_SNP_ID_BLOCK_SIGNATURE,
  IGVM_VHS_VBS_MEASUREMENT,
  type IgvmPageDataType,
} from '../arch/igvm.js';
import { PAGE_INFO_VMSA_GPA } from '../arch/rmp.js';
import { VMSA } from '../arch/vmsa.js';
import type {
  IgvmDirective,
  IgvmInitHeader,
  IgvmModel,
  IgvmPageData,
  IgvmParameterType,
  IgvmPlatformHeader,
  IgvmSupportedPlatform,
} from './model.js';

export const SNP_MASK = 0x1;
export const PAGE = 0x1000;

/** A page filled with `value` (distinct values give distinct pages). */
export function filledPage(value: number): Uint8Array {
  return new Uint8Array(PAGE).fill(value);
}

/** A VMSA page as igvmbuilder's SVSM BSP starts: CR0 0x31, RIP set, SEV_FEATURES SNP. */
export function snpVmsa(rip = 0x10000n): Uint8Array {
  const page = VMSA.alloc();
  VMSA.on(page)
    .set('cr0', 0x31n)
    .set('efer', 0x1000n)
    .set('rip', rip)
    .set('rflags', 0x2n)
    .set('gPat', 0x0007040600070406n)
    .set('xcr0', 1n)
    .set('sevFeatures', 1n);
  return page;
}

/**
 * A small SNP image laid out as igvmbuilder does (non-page directives, inserts, then pages sorted
 * by GPA, the VMSA last): a code page, a zero page, an unmeasured page, secrets and CPUID pages,
 * one 4 KiB parameter area with VP_COUNT, inserted at 0x8000, and a VMSA.
 */
export function smallSnpModel(): IgvmModel {
  return {
    formatVersion: 1,
    architecture: IGVM_ARCHITECTURE.X64,
    platforms: [
      {
        kind: 'supportedPlatform',
        compatibilityMask: SNP_MASK,
        highestVtl: 0,
        platformType: IGVM_PLATFORM_TYPE.SEV_SNP,
        platformVersion: 1,
        sharedGpaBoundary: 0,
      },
    ],
    initialization: [{ kind: 'guestPolicy', policy: 0x30000n, compatibilityMask: SNP_MASK }],
    directives: [
      {
        kind: 'requiredMemory',
        gpa: 0,
        compatibilityMask: SNP_MASK,
        numberOfBytes: 0x10_0000,
        vtl2Protectable: false,
      },
      { kind: 'parameterArea', numberOfBytes: PAGE, parameterAreaIndex: 0, initialData: null },
      {
        kind: 'parameter',
        parameterType: 0x307,
        parameterAreaIndex: 0,
        byteOffset: 0,
      },
      { kind: 'parameterInsert', gpa: 0x8000, compatibilityMask: SNP_MASK, parameterAreaIndex: 0 },
      page(0x10000, filledPage(0x90)),
      page(0x11000, null),
      { ...page(0x12000, filledPage(0x55)), flags: flags({ unmeasured: true }) },
      page(0x13000, null, IGVM_PAGE_DATA_TYPE.SECRETS),
      page(0x14000, null, IGVM_PAGE_DATA_TYPE.CPUID_DATA),
      {
        kind: 'vpContext',
        gpa: PAGE_INFO_VMSA_GPA,
        compatibilityMask: SNP_MASK,
        vpIndex: 0,
        context: snpVmsa(),
      },
    ],
  };
}

export function flags(f: Partial<{ is2mbPage: boolean; unmeasured: boolean; shared: boolean }>) {
  return { is2mbPage: false, unmeasured: false, shared: false, ...f };
}

export function page(
  gpa: number,
  data: Uint8Array | null,
  dataType: IgvmPageDataType = IGVM_PAGE_DATA_TYPE.NORMAL,
  compatibilityMask = SNP_MASK,
): IgvmPageData {
  return { kind: 'pageData', gpa, compatibilityMask, flags: flags({}), dataType, data };
}

// --- fast-check arbitraries of valid, normalized models (read(write(m)) deep-equals m) --------

const pageGpa = fc.integer({ min: 0, max: 0xf_ffff }).map((n) => n * PAGE);
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
/** 4 KiB of data from a small seed, so that equal seeds give equal (de-duplicated) blobs. */
const pageData = fc.option(fc.integer({ min: 0, max: 4 }).map(filledPage), { freq: 3 });

function subsetOf(masks: number): fc.Arbitrary<number> {
  const bits = [...Array(32).keys()].filter((b) => (masks >>> b) & 1).map((b) => (1 << b) >>> 0);
  return fc.subarray(bits, { minLength: 1 }).map((bs) => bs.reduce((a, b) => (a | b) >>> 0, 0));
}

const platformTypes = [
  IGVM_PLATFORM_TYPE.NATIVE,
  IGVM_PLATFORM_TYPE.VSM_ISOLATION,
  IGVM_PLATFORM_TYPE.SEV_SNP,
  IGVM_PLATFORM_TYPE.TDX,
  IGVM_PLATFORM_TYPE.SEV_ES,
];

const platformsArb: fc.Arbitrary<IgvmSupportedPlatform[]> = fc
  .tuple(
    fc.uniqueArray(fc.constantFrom(...platformTypes), { minLength: 1, maxLength: 3 }),
    fc.uniqueArray(fc.integer({ min: 0, max: 31 }), { minLength: 3, maxLength: 3 }),
    fc.array(fc.constantFrom(0, 2), { minLength: 3, maxLength: 3 }),
    fc.array(fc.integer({ min: 0, max: 0xfffff }), { minLength: 3, maxLength: 3 }),
  )
  .map(([types, bits, vtls, bounds]) =>
    types.map((platformType, i) => ({
      kind: 'supportedPlatform' as const,
      compatibilityMask: (1 << bits[i]!) >>> 0,
      highestVtl: vtls[i]!,
      platformType,
      platformVersion: 1,
      sharedGpaBoundary:
        platformType === IGVM_PLATFORM_TYPE.NATIVE ||
        platformType === IGVM_PLATFORM_TYPE.VSM_ISOLATION
          ? 0
          : bounds[i]! * PAGE,
    })),
  );

const idBlockArb = (mask: fc.Arbitrary<number>): fc.Arbitrary<IgvmDirective> =>
  fc
    .record({
      compatibilityMask: mask,
      authorKeyEnabled: fc.constantFrom(0, 1),
      ld: bytes(48),
      familyId: bytes(16),
      imageId: bytes(16),
      version: u32,
      guestSvn: u32,
      idKeyAlgorithm: u32,
      authorKeyAlgorithm: u32,
      idKeySignature: bytes(IGVM_VHS_SNP_ID_BLOCK_SIGNATURE.size),
      idPublicKey: bytes(IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY.size),
      authorKeySignature: bytes(IGVM_VHS_SNP_ID_BLOCK_SIGNATURE.size),
      authorPublicKey: bytes(IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY.size),
    })
    .map((r) =>
      r.authorKeyEnabled === 1
        ? { kind: 'snpIdBlock' as const, ...r }
        : {
            kind: 'snpIdBlock' as const,
            ...r,
            authorKeyAlgorithm: 0,
            authorKeySignature: new Uint8Array(IGVM_VHS_SNP_ID_BLOCK_SIGNATURE.size),
            authorPublicKey: new Uint8Array(IGVM_VHS_SNP_ID_BLOCK_PUBLIC_KEY.size),
          },
    );

/** One parameter area with its usages and maybe its insert: a block kept in order. */
const areaBlockArb = (index: number, mask: fc.Arbitrary<number>) =>
  fc
    .record({
      pages: fc.integer({ min: 1, max: 3 }),
      data: fc.option(fc.integer({ min: 1, max: 3 }), { freq: 2 }),
      params: fc.array(
        fc.record({
          type: fc.constantFrom(...IGVM_PARAMETER_TYPES),
          offset: fc.integer({ min: 0, max: PAGE - 1 }),
        }),
        { maxLength: 3 },
      ),
      insert: fc.option(fc.record({ gpa: pageGpa, mask })),
    })
    .map(({ pages, data, params, insert }): IgvmDirective[] => {
      const numberOfBytes = pages * PAGE;
      const block: IgvmDirective[] = [
        {
          kind: 'parameterArea',
          numberOfBytes,
          parameterAreaIndex: index,
          initialData: data === null ? null : new Uint8Array(numberOfBytes).fill(data),
        },
        ...params.map((p): IgvmDirective => ({
          kind: 'parameter',
          parameterType: p.type as IgvmParameterType,
          parameterAreaIndex: index,
          byteOffset: p.offset,
        })),
      ];
      if (insert !== null) {
        block.push({
          kind: 'parameterInsert',
          gpa: insert.gpa,
          compatibilityMask: insert.mask,
          parameterAreaIndex: index,
        });
      }
      return block;
    });

function directivesArb(platforms: IgvmSupportedPlatform[], all: number) {
  const mask = subsetOf(all);
  const vpPlatforms = platforms.filter(
    (p) =>
      p.platformType === IGVM_PLATFORM_TYPE.SEV_SNP ||
      p.platformType === IGVM_PLATFORM_TYPE.SEV_ES ||
      p.platformType === IGVM_PLATFORM_TYPE.VSM_ISOLATION,
  );
  const single: fc.Arbitrary<IgvmDirective>[] = [
    fc.record({
      kind: fc.constant('pageData' as const),
      gpa: pageGpa,
      compatibilityMask: mask,
      flags: fc.record({
        is2mbPage: fc.constant(false),
        unmeasured: fc.boolean(),
        shared: fc.boolean(),
      }),
      dataType: fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<IgvmPageDataType>,
      data: pageData,
    }),
    fc.record({
      kind: fc.constant('pageData' as const),
      gpa: fc.integer({ min: 0, max: 0x7ff }).map((n) => n * 0x20_0000),
      compatibilityMask: mask,
      flags: fc.constant(flags({ is2mbPage: true })),
      dataType: fc.constant(IGVM_PAGE_DATA_TYPE.NORMAL),
      data: fc.constant(null),
    }),
    fc.record({
      kind: fc.constant('requiredMemory' as const),
      gpa: pageGpa,
      compatibilityMask: mask,
      numberOfBytes: fc.integer({ min: 0, max: 0xffff }).map((n) => n * PAGE),
      vtl2Protectable: fc.boolean(),
    }),
    fc.record({
      kind: fc.constant('errorRange' as const),
      gpa: pageGpa,
      compatibilityMask: mask,
      sizeBytes: fc.integer({ min: 0, max: 16 }).map((n) => n * PAGE),
    }),
    idBlockArb(mask),
    bytes(IGVM_VHS_VBS_MEASUREMENT.size).map((body) => ({
      kind: 'vbsMeasurement' as const,
      body,
    })),
    fc
      .record({ t: fc.integer({ min: 0x301, max: 0x400 }), body: fc.uint8Array({ maxLength: 20 }) })
      .map(({ t, body }) => ({ kind: 'ignored' as const, type: (0x8000_0000 | t) >>> 0, body })),
  ];
  if (vpPlatforms.length > 0) {
    single.push(
      fc
        .record({
          platform: fc.constantFrom(...vpPlatforms),
          gpa: fc.oneof(fc.constant(PAGE_INFO_VMSA_GPA), pageGpa),
          vpIndex: fc.integer({ min: 0, max: 0xffff }),
          seed: fc.integer({ min: 0, max: 0xff }),
          regs: fc.integer({ min: 0, max: 3 }),
        })
        .map(({ platform, gpa, vpIndex, seed, regs }) => {
          const vsm = platform.platformType === IGVM_PLATFORM_TYPE.VSM_ISOLATION;
          const context = vsm ? new Uint8Array(4 + 32 * regs).fill(seed) : filledPage(seed);
          if (vsm) new DataView(context.buffer).setUint32(0, regs, true);
          return {
            kind: 'vpContext' as const,
            gpa: vsm ? 0 : gpa,
            compatibilityMask: platform.compatibilityMask,
            vpIndex,
            context,
          };
        }),
    );
  }
  const blocks = fc
    .integer({ min: 0, max: 3 })
    .chain((n) => fc.tuple(...[...Array(n).keys()].map((i) => areaBlockArb(i * 7 + 1, mask))));
  return fc
    .tuple(
      fc.array(
        fc.tuple(
          fc.oneof(...single).map((d) => [d]),
          fc.double({ noNaN: true }),
        ),
        {
          maxLength: 12,
        },
      ),
      blocks.chain((bs) =>
        fc.tuple(...bs.map((b) => fc.tuple(fc.constant(b), fc.double({ noNaN: true })))),
      ),
    )
    .map(([singles, areaBlocks]) =>
      [...singles, ...areaBlocks].sort((a, b) => a[1] - b[1]).flatMap(([ds]) => ds),
    );
}

/** Any valid model this project can write, normalized as the reader returns it. */
export const igvmModelArb: fc.Arbitrary<IgvmModel> = fc
  .tuple(platformsArb, fc.constantFrom(1 as const, 2 as const))
  .chain(([platforms, formatVersion]) => {
    const all = platforms.reduce((a, p) => (a | p.compatibilityMask) >>> 0, 0);
    const mask = subsetOf(all);
    const init: fc.Arbitrary<IgvmInitHeader[]> = fc.array(
      fc.oneof(
        fc.record({
          kind: fc.constant('guestPolicy' as const),
          policy: fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }),
          compatibilityMask: mask,
        }),
        fc
          .record({
            t: fc.integer({ min: 0x101, max: 0x200 }),
            body: fc.uint8Array({ maxLength: 12 }),
          })
          .map(({ t, body }) => ({
            kind: 'ignored' as const,
            type: (0x8000_0000 | t) >>> 0,
            body,
          })),
      ),
      { maxLength: 3 },
    );
    const platformHeaders: fc.Arbitrary<IgvmPlatformHeader[]> = fc
      .option(fc.uint8Array({ maxLength: 9 }), { freq: 4 })
      .map((body) =>
        body === null
          ? platforms
          : [...platforms, { kind: 'ignored' as const, type: 0x8000_0042, body }],
      );
    return fc.record({
      formatVersion: fc.constant(formatVersion),
      architecture: fc.constant(IGVM_ARCHITECTURE.X64 as number),
      platforms: platformHeaders,
      initialization: init,
      directives: directivesArb(platforms, all),
    });
  });
