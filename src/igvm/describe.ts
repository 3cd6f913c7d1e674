// A readable listing of an IGVM model, one line per header (runs of similar pages folded into one
// line), for `svsm igvm show` and anything else that shows images to people.

import {
  IGVM_ARCHITECTURE,
  IGVM_PAGE_SIZE_2M,
  IGVM_PAGE_SIZE_4K,
  igvmVhtName,
} from '../arch/igvm.js';
import { GUEST_POLICY } from '../arch/report.js';
import { SEV_FEATURES, VMSA } from '../arch/vmsa.js';
import type {
  IgvmDirective,
  IgvmInitHeader,
  IgvmModel,
  IgvmPageData,
  IgvmPlatformHeader,
  IgvmSupportedPlatform,
} from './model.js';
import { sha384 } from './page-info-chain.js';
import { platformName } from './validate.js';

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;
const hexBytes = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const PAGE_DATA_TYPE_NAME = ['NORMAL', 'SECRETS', 'CPUID_DATA', 'CPUID_XF'];

function ignored(type: number, body: Uint8Array): string {
  return `${igvmVhtName(type & 0x7fff_ffff)} (optional ${hex(type)}, ${body.length} bytes, ignored)`;
}

function platformLine(p: IgvmPlatformHeader): string {
  if (p.kind === 'ignored') return ignored(p.type, p.body);
  return (
    `SUPPORTED_PLATFORM ${platformName(p.platformType)} mask=${hex(p.compatibilityMask)} ` +
    `highest_vtl=${p.highestVtl} version=${p.platformVersion} ` +
    `shared_gpa_boundary=${hex(p.sharedGpaBoundary)}`
  );
}

function initLine(h: IgvmInitHeader, snp: IgvmSupportedPlatform | undefined): string {
  switch (h.kind) {
    case 'ignored':
      return ignored(h.type, h.body);
    case 'guestPolicy': {
      const bits =
        snp !== undefined && (h.compatibilityMask & snp.compatibilityMask) !== 0
          ? ` (${GUEST_POLICY.describe(h.policy)})`
          : '';
      return `GUEST_POLICY policy=${hex(h.policy)}${bits} mask=${hex(h.compatibilityMask)}`;
    }
    case 'relocatableRegion':
      return (
        `RELOCATABLE_REGION gpa=${hex(h.relocationRegionGpa)} size=${hex(h.relocationRegionSize)} ` +
        `alignment=${hex(h.relocationAlignment)} range=${hex(h.minimumRelocationGpa)}-` +
        `${hex(h.maximumRelocationGpa)} vp=${h.vpIndex} vtl=${h.vtl} flags=${hex(h.flags)} ` +
        `mask=${hex(h.compatibilityMask)}`
      );
    case 'pageTableRelocation':
      return (
        `PAGE_TABLE_RELOCATION gpa=${hex(h.gpa)} size=${hex(h.size)} used=${hex(h.usedSize)} ` +
        `vp=${h.vpIndex} vtl=${h.vtl} mask=${hex(h.compatibilityMask)}`
      );
  }
}

function pageAttrs(p: IgvmPageData): string {
  const f = p.flags;
  const parts = [PAGE_DATA_TYPE_NAME[p.dataType] ?? String(p.dataType)];
  if (f.is2mbPage) parts.push('2MB');
  if (f.unmeasured) parts.push('UNMEASURED');
  if (f.shared) parts.push('SHARED');
  parts.push(p.data === null ? 'zero' : 'data');
  return `${parts.join(' ')} mask=${hex(p.compatibilityMask)}`;
}

function vmsaSummary(context: Uint8Array): string {
  const v = VMSA.on(context);
  return (
    `rip=${hex(v.get('rip'))} cr0=${hex(v.get('cr0'))} cr4=${hex(v.get('cr4'))} ` +
    `efer=${hex(v.get('efer'))} sev_features=${SEV_FEATURES.describe(v.get('sevFeatures'))} ` +
    `sha384=${hexBytes(sha384(context)).slice(0, 16)}...`
  );
}

function directiveLine(d: IgvmDirective, model: IgvmModel): string {
  switch (d.kind) {
    case 'ignored':
      return ignored(d.type, d.body);
    case 'pageData':
      return `PAGE_DATA gpa=${hex(d.gpa)} ${pageAttrs(d)}`;
    case 'parameterArea':
      return (
        `PARAMETER_AREA index=${d.parameterAreaIndex} bytes=${hex(d.numberOfBytes)} ` +
        `initial=${d.initialData === null ? 'zeros' : 'data'}`
      );
    case 'parameter':
      return `${igvmVhtName(d.parameterType)} area=${d.parameterAreaIndex} offset=${hex(d.byteOffset)}`;
    case 'parameterInsert':
      return (
        `PARAMETER_INSERT gpa=${hex(d.gpa)} area=${d.parameterAreaIndex} ` +
        `mask=${hex(d.compatibilityMask)}`
      );
    case 'vpContext': {
      const platform = model.platforms.find(
        (p): p is IgvmSupportedPlatform =>
          p.kind === 'supportedPlatform' && p.compatibilityMask === d.compatibilityMask,
      );
      const name = platform === undefined ? '?' : platformName(platform.platformType);
      const vmsa =
        d.context.length === IGVM_PAGE_SIZE_4K && (name === 'SEV_SNP' || name === 'SEV_ES');
      return (
        `VP_CONTEXT ${name} vp=${d.vpIndex} gpa=${hex(d.gpa)} mask=${hex(d.compatibilityMask)}` +
        (vmsa ? ` VMSA ${vmsaSummary(d.context)}` : ` ${d.context.length} bytes`)
      );
    }
    case 'requiredMemory':
      return (
        `REQUIRED_MEMORY gpa=${hex(d.gpa)} bytes=${hex(d.numberOfBytes)}` +
        `${d.vtl2Protectable ? ' VTL2_PROTECTABLE' : ''} mask=${hex(d.compatibilityMask)}`
      );
    case 'errorRange':
      return `ERROR_RANGE gpa=${hex(d.gpa)} bytes=${hex(d.sizeBytes)} mask=${hex(d.compatibilityMask)}`;
    case 'snpIdBlock':
      return (
        `SNP_ID_BLOCK ld=${hexBytes(d.ld)} family=${hexBytes(d.familyId)} ` +
        `image=${hexBytes(d.imageId)} version=${d.version} guest_svn=${d.guestSvn} ` +
        `id_key_algorithm=${d.idKeyAlgorithm} author_key=${d.authorKeyEnabled ? 'yes' : 'no'} ` +
        `mask=${hex(d.compatibilityMask)}`
      );
    case 'vbsMeasurement':
      return `VBS_MEASUREMENT (${d.body.length} bytes)`;
  }
}

/** Whether `b` continues the run of pages that ended with `a`. */
function continuesRun(a: IgvmPageData, b: IgvmPageData): boolean {
  const size = a.flags.is2mbPage ? IGVM_PAGE_SIZE_2M : IGVM_PAGE_SIZE_4K;
  return b.gpa === a.gpa + size && pageAttrs(a) === pageAttrs(b);
}

export interface DescribeOptions {
  /** One line per PAGE_DATA instead of one per run of contiguous, similar pages. */
  readonly everyPage?: boolean;
}

/** The listing: a summary line, then each section's headers in file order. */
export function describeIgvm(
  model: IgvmModel,
  fileSize: number,
  options: DescribeOptions = {},
): string[] {
  const arch = model.architecture === IGVM_ARCHITECTURE.X64 ? 'x64' : 'AArch64';
  const count = model.platforms.length + model.initialization.length + model.directives.length;
  const snp = model.platforms.find(
    (p): p is IgvmSupportedPlatform => p.kind === 'supportedPlatform' && p.platformType === 2,
  );
  const lines = [
    `IGVM format version ${model.formatVersion} (${arch}), ${fileSize} bytes, ${count} headers`,
    'Platforms:',
    ...model.platforms.map((p) => `  ${platformLine(p)}`),
    'Initialization:',
    ...model.initialization.map((h) => `  ${initLine(h, snp)}`),
    'Directives:',
  ];
  const ds = model.directives;
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i]!;
    if (d.kind !== 'pageData' || options.everyPage === true) {
      lines.push(`  ${directiveLine(d, model)}`);
      continue;
    }
    let j = i;
    while (j + 1 < ds.length) {
      const next = ds[j + 1]!;
      if (next.kind !== 'pageData' || !continuesRun(ds[j] as IgvmPageData, next)) break;
      j++;
    }
    if (j === i) {
      lines.push(`  ${directiveLine(d, model)}`);
    } else {
      const last = ds[j] as IgvmPageData;
      const end = last.gpa + (last.flags.is2mbPage ? IGVM_PAGE_SIZE_2M : IGVM_PAGE_SIZE_4K) - 1;
      lines.push(`  PAGE_DATA x${j - i + 1} gpa=${hex(d.gpa)}-${hex(end)} ${pageAttrs(d)}`);
    }
    i = j;
  }
  return lines;
}
