// Between launch plans and IGVM files: the image builder's plan written as an IGVM file, and an
// IGVM file turned back into the plan the host launches. The reader side accepts what a plan can
// express (page data of every SNP type, one BSP VP context, the guest policy); parameter areas,
// 2 MiB pages and further VP contexts are refused with a reason rather than ignored.

import { PAGE_INFO_VMSA_GPA, PAGE_TYPE } from '../arch/index.js';
import {
  IGVM_ARCHITECTURE,
  IGVM_PAGE_DATA_TYPE,
  IGVM_PAGE_SIZE_4K,
  IGVM_PLATFORM_TYPE,
} from '../arch/igvm.js';
import type { LaunchPage, LaunchPlan } from './launch-plan.js';
import { IgvmFormatError, type IgvmDirective, type IgvmModel } from './model.js';

const PAGE = IGVM_PAGE_SIZE_4K;
/** The compatibility mask our files give the SEV-SNP platform. */
export const SNP_COMPATIBILITY_MASK = 0x1;

const noFlags = { is2mbPage: false, unmeasured: false, shared: false } as const;

function fullPage(data: Uint8Array | undefined): Uint8Array | null {
  if (data === undefined) return null;
  const p = new Uint8Array(PAGE);
  p.set(data);
  return p;
}

export function launchPlanToIgvm(plan: LaunchPlan): IgvmModel {
  const m = SNP_COMPATIBILITY_MASK;
  const directives: IgvmDirective[] = [];
  let vmsa: Uint8Array | null = null;
  for (const p of plan.pages) {
    const base = { kind: 'pageData' as const, gpa: p.gpa, compatibilityMask: m };
    switch (p.type) {
      case PAGE_TYPE.NORMAL:
        directives.push({
          ...base,
          flags: noFlags,
          dataType: IGVM_PAGE_DATA_TYPE.NORMAL,
          data: fullPage(p.data),
        });
        break;
      case PAGE_TYPE.ZERO:
        directives.push({
          ...base,
          flags: noFlags,
          dataType: IGVM_PAGE_DATA_TYPE.NORMAL,
          data: null,
        });
        break;
      case PAGE_TYPE.UNMEASURED:
        directives.push({
          ...base,
          flags: { ...noFlags, unmeasured: true },
          dataType: IGVM_PAGE_DATA_TYPE.NORMAL,
          data: fullPage(p.data),
        });
        break;
      case PAGE_TYPE.SECRETS:
        directives.push({
          ...base,
          flags: noFlags,
          dataType: IGVM_PAGE_DATA_TYPE.SECRETS,
          data: null,
        });
        break;
      case PAGE_TYPE.CPUID:
        directives.push({
          ...base,
          flags: noFlags,
          dataType: IGVM_PAGE_DATA_TYPE.CPUID_DATA,
          data: fullPage(p.data),
        });
        break;
      case PAGE_TYPE.VMSA:
        if (p.gpa !== plan.bspVmsaGpa || vmsa !== null) {
          throw new IgvmFormatError('an IGVM file carries one VMSA per VP; the plan has another');
        }
        vmsa = fullPage(p.data) ?? new Uint8Array(PAGE);
        break;
    }
  }
  if (vmsa === null) throw new IgvmFormatError('the plan has no BSP VMSA');
  directives.push({
    kind: 'vpContext',
    gpa: PAGE_INFO_VMSA_GPA,
    compatibilityMask: m,
    vpIndex: 0,
    context: vmsa,
  });
  return {
    formatVersion: 1,
    architecture: IGVM_ARCHITECTURE.X64,
    platforms: [
      {
        kind: 'supportedPlatform',
        compatibilityMask: m,
        highestVtl: 0,
        platformType: IGVM_PLATFORM_TYPE.SEV_SNP,
        platformVersion: 1,
        sharedGpaBoundary: 0,
      },
    ],
    initialization: [{ kind: 'guestPolicy', policy: plan.policy, compatibilityMask: m }],
    directives,
  };
}

/** The plan of an IGVM file; the BSP's VMSA goes to `vmsaGpa`. */
export function igvmToLaunchPlan(model: IgvmModel, vmsaGpa: number): LaunchPlan {
  const snp = model.platforms.find(
    (p) => p.kind === 'supportedPlatform' && p.platformType === IGVM_PLATFORM_TYPE.SEV_SNP,
  );
  if (snp === undefined || snp.kind !== 'supportedPlatform') {
    throw new IgvmFormatError('the file has no SEV-SNP platform');
  }
  const mask = snp.compatibilityMask;
  const applies = (m: number): boolean => (m & mask) !== 0;
  let policy: bigint | null = null;
  for (const h of model.initialization) {
    if (h.kind === 'guestPolicy' && applies(h.compatibilityMask)) policy ??= h.policy;
  }
  if (policy === null) throw new IgvmFormatError('the file has no SEV-SNP guest policy');
  const pages: LaunchPage[] = [];
  let vmsa: Uint8Array | null = null;
  for (const d of model.directives) {
    if (d.kind === 'pageData') {
      if (!applies(d.compatibilityMask)) continue;
      if (d.flags.is2mbPage)
        throw new IgvmFormatError('2 MiB page data is not supported by this loader');
      const data = d.data ?? undefined;
      if (d.dataType === IGVM_PAGE_DATA_TYPE.SECRETS)
        pages.push({ gpa: d.gpa, type: PAGE_TYPE.SECRETS });
      else if (d.dataType === IGVM_PAGE_DATA_TYPE.CPUID_DATA) {
        pages.push(
          data === undefined
            ? { gpa: d.gpa, type: PAGE_TYPE.CPUID }
            : { gpa: d.gpa, type: PAGE_TYPE.CPUID, data },
        );
      } else if (d.dataType !== IGVM_PAGE_DATA_TYPE.NORMAL) {
        throw new IgvmFormatError(`page data type ${d.dataType} is not supported by this loader`);
      } else if (d.flags.unmeasured) {
        pages.push(
          data === undefined
            ? { gpa: d.gpa, type: PAGE_TYPE.UNMEASURED }
            : { gpa: d.gpa, type: PAGE_TYPE.UNMEASURED, data },
        );
      } else if (data === undefined) pages.push({ gpa: d.gpa, type: PAGE_TYPE.ZERO });
      else pages.push({ gpa: d.gpa, type: PAGE_TYPE.NORMAL, data });
    } else if (d.kind === 'vpContext') {
      if (!applies(d.compatibilityMask)) continue;
      if (d.vpIndex !== 0 || vmsa !== null)
        throw new IgvmFormatError('only one VP context (the BSP) is supported');
      vmsa = d.context;
    } else if (d.kind === 'requiredMemory' || d.kind === 'ignored') {
      continue;
    } else {
      throw new IgvmFormatError(`the ${d.kind} directive is not supported by this loader`);
    }
  }
  if (vmsa === null) throw new IgvmFormatError('the file has no VP context for the BSP');
  pages.push({ gpa: vmsaGpa, type: PAGE_TYPE.VMSA, data: vmsa });
  return { policy, pages, bspVmsaGpa: vmsaGpa };
}
