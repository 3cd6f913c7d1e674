import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { writeIgvm } from './igvm-file.js';
import { IgvmMeasureError, measure, type MeasureOptions } from './measure.js';
import type { IgvmDirective, IgvmModel } from './model.js';
import {
  filledPage,
  flags,
  page,
  PAGE,
  smallSnpModel,
  snpVmsa,
  SNP_MASK,
} from './model.fixture.js';

const h384 = (b: Uint8Array): Buffer => createHash('sha384').update(b).digest();

/** The PAGE_INFO chain written out from reference/sev-snp-abi.md 1.1, without src/arch. */
function chain(steps: [contents: Buffer | null, type: number, gpa: bigint][]): string {
  let ld: Buffer = Buffer.alloc(48);
  for (const [contents, type, gpa] of steps) {
    const info = Buffer.alloc(0x70);
    ld.copy(info, 0);
    (contents ?? Buffer.alloc(48)).copy(info, 0x30);
    info.writeUInt16LE(0x70, 0x60);
    info[0x62] = type;
    info.writeBigUInt64LE(gpa, 0x68);
    ld = h384(info);
  }
  return ld.toString('hex');
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function withDirectives(directives: IgvmDirective[], base = smallSnpModel()): IgvmModel {
  return { ...base, directives };
}

function measureError(model: IgvmModel, options?: MeasureOptions): string {
  try {
    measure(model, options);
  } catch (e) {
    expect(e).toBeInstanceOf(IgvmMeasureError);
    return (e as Error).message;
  }
  throw new Error('measure() accepted the file');
}

const VMSA_GPA = 0xffff_ffff_f000;
const vmsaDirective = (gpa = VMSA_GPA, context = snpVmsa()): IgvmDirective => ({
  kind: 'vpContext',
  gpa,
  compatibilityMask: SNP_MASK,
  vpIndex: 0,
  context,
});

describe('SNP launch digest of an IGVM file: known answers', () => {
  // reference/igvm.md section 6, cross-checked there with sev-snp-measure.
  it('a zero page at 0x1000, then an unmeasured page at 0x2000', () => {
    const one = measure(writeIgvm(withDirectives([page(0x1000, null)])));
    expect(hex(one.digest)).toBe(
      'e6e4d78904d9d6b33c0cbfd121998fd2d11744dae606b3aee35e2a45d6869b60b35c63928a9232bef72d6be386f48ec6',
    );
    const two = measure(
      writeIgvm(
        withDirectives([
          page(0x1000, null),
          { ...page(0x2000, null), flags: flags({ unmeasured: true }) },
        ]),
      ),
    );
    expect(hex(two.digest)).toBe(
      'ab14e223762671f21a8c0896be664ead6aba795ef662ef127c68049ae2d7d08a678ab6a3ce067a2ee108a98a5ea099ab',
    );
    expect(two.pageCounts).toEqual({
      normal: 1,
      vmsa: 0,
      zero: 0,
      unmeasured: 1,
      secrets: 0,
      cpuid: 0,
    });
  });

  it('the small SNP image: insert, pages by data type, then the VMSA at 0xFFFFFFFFF000', () => {
    const r = measure(writeIgvm(smallSnpModel()));
    const expected = chain([
      [null, 4, 0x8000n],
      [h384(filledPage(0x90)), 1, 0x10000n],
      [h384(new Uint8Array(PAGE)), 1, 0x11000n],
      [null, 4, 0x12000n],
      [null, 5, 0x13000n],
      [null, 6, 0x14000n],
      [h384(snpVmsa()), 2, 0xffff_ffff_f000n],
    ]);
    expect(hex(r.digest)).toBe(expected);
    expect(r.pageCounts).toEqual({
      normal: 2,
      vmsa: 1,
      zero: 0,
      unmeasured: 2,
      secrets: 1,
      cpuid: 1,
    });
    expect(r.policy).toBe(0x30000n);
    expect(r.platformMask).toBe(SNP_MASK);
    expect(r.notes).toEqual([]);
    expect(r.idBlock).toBeNull();
  });

  it('--native-zero measures zero pages as ZERO with zero contents', () => {
    const m = withDirectives([page(0x1000, null), page(0x2000, filledPage(3))]);
    expect(hex(measure(m, { nativeZero: true }).digest)).toBe(
      chain([
        [null, 3, 0x1000n],
        [h384(filledPage(3)), 1, 0x2000n],
      ]),
    );
  });

  it('data types win over flags; SHARED is measured as if absent; CPUID_XF is a CPUID page', () => {
    const m = withDirectives([
      { ...page(0x1000, filledPage(1), 1), flags: flags({ unmeasured: true }) },
      { ...page(0x2000, filledPage(2)), flags: flags({ shared: true }) },
      page(0x3000, filledPage(3), 3),
    ]);
    expect(hex(measure(m).digest)).toBe(
      chain([
        [null, 5, 0x1000n],
        [h384(filledPage(2)), 1, 0x2000n],
        [null, 6, 0x3000n],
      ]),
    );
  });

  it('a 2 MiB zero page is 512 normal zero pages', () => {
    const r = measure(
      withDirectives([{ ...page(0x20_0000, null), flags: flags({ is2mbPage: true }) }]),
    );
    expect(r.pageCounts.normal).toBe(512);
    const zero = h384(new Uint8Array(PAGE));
    expect(hex(r.digest)).toBe(
      chain([...Array(512).keys()].map((i) => [zero, 1, BigInt(0x20_0000 + i * PAGE)])),
    );
  });

  it('measures only what applies to the SNP platform', () => {
    const base = smallSnpModel();
    const twoPlatforms: IgvmModel = {
      ...base,
      platforms: [
        ...base.platforms,
        {
          kind: 'supportedPlatform',
          compatibilityMask: 0x2,
          highestVtl: 0,
          platformType: 0,
          platformVersion: 1,
          sharedGpaBoundary: 0,
        },
      ],
    };
    const mixed = withDirectives(
      [
        page(0x1000, filledPage(1), 0, 0x2),
        page(0x2000, filledPage(2), 0, 0x3),
        { kind: 'parameterArea', numberOfBytes: PAGE, parameterAreaIndex: 5, initialData: null },
        { kind: 'parameterInsert', gpa: 0x9000, compatibilityMask: 0x2, parameterAreaIndex: 5 },
        vmsaDirective(),
      ],
      twoPlatforms,
    );
    expect(hex(measure(mixed).digest)).toBe(
      chain([
        [h384(filledPage(2)), 1, 0x2000n],
        [h384(snpVmsa()), 2, 0xffff_ffff_f000n],
      ]),
    );
  });

  it('reports whether the SNP ID block expects this digest', () => {
    const digest = measure(smallSnpModel()).digest;
    const idBlock = (ld: Uint8Array): IgvmDirective => ({
      kind: 'snpIdBlock',
      compatibilityMask: SNP_MASK,
      authorKeyEnabled: 0,
      ld,
      familyId: new Uint8Array(16),
      imageId: new Uint8Array(16),
      version: 1,
      guestSvn: 0,
      idKeyAlgorithm: 1,
      authorKeyAlgorithm: 0,
      idKeySignature: new Uint8Array(144),
      idPublicKey: new Uint8Array(152),
      authorKeySignature: new Uint8Array(144),
      authorPublicKey: new Uint8Array(152),
    });
    const base = smallSnpModel();
    const good = measure(withDirectives([...base.directives, idBlock(digest)]));
    expect(good.idBlock?.matches).toBe(true);
    expect(hex(good.digest)).toBe(hex(digest));
    const bad = measure(withDirectives([...base.directives, idBlock(new Uint8Array(48))]));
    expect(bad.idBlock?.matches).toBe(false);
  });
});

describe('SNP launch digest of an IGVM file: QEMU/KVM rules', () => {
  it('refuses a VMSA away from 0xFFFFFFFFF000, which igvmmeasure alone hashes at its GPA', () => {
    const m = withDirectives([page(0x1000, null), vmsaDirective(0x5000)]);
    expect(measureError(m)).toMatch(/measures the VMSA at 0xfffffffff000/);
    expect(hex(measure(m, { checkKvm: false }).digest)).toBe(
      chain([
        [h384(new Uint8Array(PAGE)), 1, 0x1000n],
        [h384(snpVmsa()), 2, 0x5000n],
      ]),
    );
  });

  it('refuses a second VMSA and any page after the VMSA', () => {
    expect(measureError(withDirectives([vmsaDirective(), vmsaDirective()]))).toMatch(/several/);
    expect(measureError(withDirectives([vmsaDirective(), page(0x1000, null)]))).toMatch(
      /follows the VMSA/,
    );
  });

  it('refuses an insert after PAGE_DATA and an insert of more than one page', () => {
    const area = (size: number): IgvmDirective => ({
      kind: 'parameterArea',
      numberOfBytes: size,
      parameterAreaIndex: 1,
      initialData: null,
    });
    const insert: IgvmDirective = {
      kind: 'parameterInsert',
      gpa: 0x8000,
      compatibilityMask: SNP_MASK,
      parameterAreaIndex: 1,
    };
    expect(measureError(withDirectives([area(PAGE), page(0x1000, null), insert]))).toMatch(
      /issues inserts before its pending pages/,
    );
    const big = withDirectives([area(2 * PAGE), insert]);
    expect(measureError(big)).toMatch(/keep areas at 4 KiB/);
    const loose = measure(big, { checkKvm: false });
    expect(loose.pageCounts.unmeasured).toBe(1);
    expect(loose.notes.join(' ')).toMatch(/one unmeasured page/);
  });

  it('notes a VMSA CR0 other than 0x31 without changing the digest', () => {
    const vmsa = snpVmsa();
    vmsa[0x158] = 0x11;
    const r = measure(withDirectives([vmsaDirective(VMSA_GPA, vmsa)]));
    expect(r.notes.join(' ')).toMatch(/CR0 is 0x11/);
  });

  it('refuses a file without an SEV-SNP platform', () => {
    const base = smallSnpModel();
    const native: IgvmModel = {
      ...base,
      platforms: [{ ...base.platforms[0]!, platformType: 0 } as IgvmModel['platforms'][number]],
      initialization: [],
      directives: [page(0x1000, null)],
    };
    expect(measureError(native)).toMatch(/no SEV-SNP platform/);
  });
});
