// The SEV-SNP launch digest an IGVM file leads to, computed the way coconut's `igvmmeasure` does
// (reference/igvm.md section 6): directives in file order, for the SEV-SNP platform's mask M;
// PAGE_DATA pages by data type and flags, a PARAMETER_INSERT as one unmeasured page, the SNP VMSA
// of VP_CONTEXT hashed at the directive's GPA. With `checkKvm` (the default, igvmmeasure
// --check-kvm) files whose digest QEMU/KVM would compute differently are refused, so the result is
// what the ASP reports for the file when the host loads it as QEMU does (section 5).

import {
  IGVM_PAGE_DATA_TYPE,
  IGVM_PAGE_SIZE_2M,
  IGVM_PAGE_SIZE_4K,
  IGVM_PLATFORM_TYPE,
} from '../arch/igvm.js';
import { PAGE_INFO_VMSA_GPA, PAGE_TYPE, type PageType } from '../arch/rmp.js';
import { VMSA } from '../arch/vmsa.js';
import { readIgvm } from './igvm-file.js';
import {
  appliesTo,
  type IgvmModel,
  type IgvmPageData,
  type IgvmVpContext,
  supportedPlatforms,
} from './model.js';
import { validateModel } from './validate.js';
import { contentsFor, type LaunchUpdate, PageInfoChain } from './page-info-chain.js';

/** A file that is a valid IGVM file but cannot be measured (no SNP platform, or a KVM rule). */
export class IgvmMeasureError extends Error {
  override readonly name = 'IgvmMeasureError';
}

export interface MeasureOptions {
  /**
   * igvmmeasure --check-kvm (default true): refuse a second VMSA, a VMSA GPA other than
   * 0xFFFFFFFFF000, a page directive after the VMSA (KVM measures the VMSA last), a
   * PARAMETER_INSERT after a PAGE_DATA (QEMU issues inserts before its pending page run) and an
   * insert of an area larger than 4 KiB (QEMU measures each page, igvmmeasure one).
   */
  readonly checkKvm?: boolean;
  /** igvmmeasure --native-zero: zero pages as ZERO (3) instead of NORMAL; QEMU does not. */
  readonly nativeZero?: boolean;
}

/** SNP page types by the names the CLI prints. */
export const PAGE_TYPE_NAME: Readonly<Record<PageType, PageTypeName>> = {
  [PAGE_TYPE.NORMAL]: 'normal',
  [PAGE_TYPE.VMSA]: 'vmsa',
  [PAGE_TYPE.ZERO]: 'zero',
  [PAGE_TYPE.UNMEASURED]: 'unmeasured',
  [PAGE_TYPE.SECRETS]: 'secrets',
  [PAGE_TYPE.CPUID]: 'cpuid',
};
export type PageTypeName = 'normal' | 'vmsa' | 'zero' | 'unmeasured' | 'secrets' | 'cpuid';

export interface IgvmMeasurement {
  /** The launch digest: MEASUREMENT of the attestation report (48 bytes). */
  readonly digest: Uint8Array;
  /** Compatibility mask of the file's SEV-SNP platform. */
  readonly platformMask: number;
  /** The SNP guest policy of GUEST_POLICY, or null when the file has none (QEMU then uses 0). */
  readonly policy: bigint | null;
  /** SNP_LAUNCH_UPDATE pages by type. */
  readonly pageCounts: Readonly<Record<PageTypeName, number>>;
  /** Every page in launch order, as the digest chained it. */
  readonly updates: readonly LaunchUpdate[];
  /** The file's SNP ID block's expected digest, and whether it equals `digest`. */
  readonly idBlock: { readonly ld: Uint8Array; readonly matches: boolean } | null;
  /** Things a builder should know that do not change the digest (one sentence each). */
  readonly notes: readonly string[];
}

/** igvmmeasure's CR0 for KVM's initial VMSA (PE | ET | NE); KVM overrides what the file says. */
export const KVM_VMSA_CR0 = 0x31n;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function pageTypeOf(d: IgvmPageData, nativeZero: boolean): PageType {
  switch (d.dataType) {
    case IGVM_PAGE_DATA_TYPE.SECRETS:
      return PAGE_TYPE.SECRETS;
    case IGVM_PAGE_DATA_TYPE.CPUID_DATA:
    case IGVM_PAGE_DATA_TYPE.CPUID_XF:
      return PAGE_TYPE.CPUID;
    default:
      if (d.flags.unmeasured) return PAGE_TYPE.UNMEASURED;
      if (d.data === null && nativeZero) return PAGE_TYPE.ZERO;
      return PAGE_TYPE.NORMAL;
  }
}

/** Page data as the file holds it: the writer pads short data with zeros to 4 KiB. */
function pagePadded(data: Uint8Array): Uint8Array {
  if (data.length === IGVM_PAGE_SIZE_4K) return data;
  const page = new Uint8Array(IGVM_PAGE_SIZE_4K);
  page.set(data);
  return page;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The launch digest of an IGVM file (bytes, which are read and validated first, or a model).
 * Throws IgvmFormatError for a malformed file and IgvmMeasureError for one that cannot be measured.
 */
export function measure(
  input: IgvmModel | Uint8Array,
  options: MeasureOptions = {},
): IgvmMeasurement {
  let model: IgvmModel;
  if (input instanceof Uint8Array) {
    model = readIgvm(input);
  } else {
    validateModel(input);
    model = input;
  }
  const checkKvm = options.checkKvm ?? true;
  const nativeZero = options.nativeZero ?? false;
  const snp = supportedPlatforms(model).find((p) => p.platformType === IGVM_PLATFORM_TYPE.SEV_SNP);
  if (snp === undefined) throw new IgvmMeasureError('the file declares no SEV-SNP platform');
  const m = snp.compatibilityMask;

  const kvm = (reason: string): never => {
    throw new IgvmMeasureError(`QEMU/KVM would measure this file differently: ${reason}`);
  };
  const notes: string[] = [];
  const chain = new PageInfoChain();
  const updates: LaunchUpdate[] = [];
  const launch = (pageType: PageType, gpa: number, page: Uint8Array | null): void => {
    const u: LaunchUpdate = { pageType, gpa, contents: contentsFor(pageType, page) };
    chain.update(u);
    updates.push(u);
  };

  let policy: bigint | null = null;
  for (const h of model.initialization) {
    if (h.kind === 'guestPolicy' && appliesTo(h.compatibilityMask, m) && policy === null) {
      policy = h.policy;
    }
  }

  const areaSize = new Map<number, number>();
  let vmsa: IgvmVpContext | null = null;
  let pageSeen = false;
  let idBlockLd: Uint8Array | null = null;
  for (const d of model.directives) {
    switch (d.kind) {
      case 'parameterArea':
        areaSize.set(d.parameterAreaIndex, d.numberOfBytes);
        break;
      case 'pageData': {
        if (!appliesTo(d.compatibilityMask, m)) break;
        if (checkKvm && vmsa !== null) kvm(`PAGE_DATA at ${hex(d.gpa)} follows the VMSA`);
        pageSeen = true;
        const type = pageTypeOf(d, nativeZero);
        const count = d.flags.is2mbPage ? IGVM_PAGE_SIZE_2M / IGVM_PAGE_SIZE_4K : 1;
        // A 2 MiB page has no file data (validation refuses it), so each 4 KiB of it is zero.
        const page = d.data === null || d.data.length === 0 ? null : pagePadded(d.data);
        for (let i = 0; i < count; i++) launch(type, d.gpa + i * IGVM_PAGE_SIZE_4K, page);
        break;
      }
      case 'parameterInsert': {
        if (!appliesTo(d.compatibilityMask, m)) break;
        const size = areaSize.get(d.parameterAreaIndex) ?? IGVM_PAGE_SIZE_4K;
        if (checkKvm) {
          if (vmsa !== null) kvm(`the PARAMETER_INSERT at ${hex(d.gpa)} follows the VMSA`);
          if (pageSeen) {
            kvm(
              `the PARAMETER_INSERT at ${hex(d.gpa)} follows PAGE_DATA, and QEMU issues inserts before its pending pages`,
            );
          }
          if (size > IGVM_PAGE_SIZE_4K) {
            kvm(
              `parameter area ${d.parameterAreaIndex} is ${hex(size)} bytes; QEMU measures every page of it and igvmmeasure one, so keep areas at 4 KiB`,
            );
          }
        } else if (size > IGVM_PAGE_SIZE_4K) {
          notes.push(
            `parameter area ${d.parameterAreaIndex} (${hex(size)} bytes) is measured as one unmeasured page, as igvmmeasure does.`,
          );
        }
        launch(PAGE_TYPE.UNMEASURED, d.gpa, null);
        break;
      }
      case 'vpContext': {
        if (d.compatibilityMask !== m) break;
        if (checkKvm) {
          if (vmsa !== null) kvm('it starts only the first VMSA, and the file has several');
          if (d.gpa !== PAGE_INFO_VMSA_GPA) {
            kvm(
              `KVM measures the VMSA at ${hex(PAGE_INFO_VMSA_GPA)}, the file places it at ${hex(d.gpa)}`,
            );
          }
        }
        const cr0 = VMSA.get(d.context, 'cr0');
        if (cr0 !== KVM_VMSA_CR0) {
          notes.push(
            `the VMSA's CR0 is ${hex(cr0)}; igvmmeasure --check-kvm wants ${hex(KVM_VMSA_CR0)}, the value older KVMs force.`,
          );
        }
        vmsa = d;
        launch(PAGE_TYPE.VMSA, d.gpa, d.context);
        break;
      }
      case 'snpIdBlock':
        if (appliesTo(d.compatibilityMask, m)) idBlockLd = d.ld;
        break;
      default:
        break;
    }
  }
  if (vmsa === null) notes.push('the file has no SEV-SNP VP context, so no vCPU can start.');
  if (policy === null) notes.push('the file has no GUEST_POLICY for SEV-SNP; QEMU then uses 0.');

  const pageCounts: Record<PageTypeName, number> = {
    normal: 0,
    vmsa: 0,
    zero: 0,
    unmeasured: 0,
    secrets: 0,
    cpuid: 0,
  };
  for (const u of updates) pageCounts[PAGE_TYPE_NAME[u.pageType]]++;
  const digest = chain.digest;
  return {
    digest,
    platformMask: m,
    policy,
    pageCounts,
    updates,
    idBlock: idBlockLd === null ? null : { ld: idBlockLd, matches: bytesEqual(idBlockLd, digest) },
    notes,
  };
}
