// The launch image of a CVM with our SVSM: the SVSM region (boot parameters, secrets page, CPUID
// page, the BSP's VMPL0 VMSA, the SVSM code image) placed at any 2 MiB-aligned GPA, and the
// firmware area at 0xE0000 (boot_params with the e820 map, ACPI tables: firmware-tables.ts), as a
// launch plan the host carries out through the secure processor. Everything measured is here, so
// the launch digest covers the code that runs and the tables the guest trusts.

import {
  CR0,
  EFER,
  PAGE_TYPE,
  SEV_FEATURES,
  SVSM_BOOT_PARAMS,
  SVSM_BOOT_PARAMS_MAGIC,
  SVSM_BOOT_PARAMS_VERSION,
  VMSA,
  svsmCodeImage,
} from '../arch/index.js';
import { AcpiBuildError } from './acpi-tables.js';
import { buildFirmwareTables, type FirmwareTables } from './firmware-tables.js';
import type { LaunchPage, LaunchPlan } from './launch-plan.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;

/** Offsets of the measured pages inside the SVSM region. */
export const SVSM_REGION_LAYOUT = {
  BOOT_PARAMS: 0x0000,
  SECRETS: 0x1000,
  CPUID: 0x2000,
  CODE: 0x3000,
} as const;

/**
 * The BSP's VMPL0 VMSA lives in the last page of RAM, which the guest never gets (KVM keeps VMSAs
 * outside guest memory; here every VMSA must be a page of simulated memory). It is launched last,
 * as KVM measures VMSAs at SNP_LAUNCH_FINISH, at GPA 0xFFFFFFFFF000 whatever its address.
 */
export function bspVmsaGpa(memorySize: number): number {
  return memorySize - PAGE;
}

export const DEFAULT_SVSM_SIZE = 16 * 1024 * 1024;
/** SMT allowed, reserved bit 17 set: QEMU's default policy. */
export const DEFAULT_POLICY = 0x30000n;

export interface SvsmImageOptions {
  /** The SVSM bundle (JavaScript). */
  readonly code: string;
  /** The SNP CPUID page (4 KiB), from the platform's CPUID description. */
  readonly cpuidPage: Uint8Array;
  readonly memorySize: number;
  readonly svsmBase: number;
  readonly svsmSize?: number;
  readonly vcpuCount?: number;
  readonly policy?: bigint;
  /** Guest side: where the SVSM puts the guest's calling area and secrets-page copy. */
  readonly guestCaaGpa: number;
  readonly guestSecretsGpa: number;
  readonly guestRip?: bigint;
  readonly guestRsi?: bigint;
  /** SEV_FEATURES of the SVSM's VMSA (and of the guest's); SNPActive by default. */
  readonly sevFeatures?: bigint;
}

/** A layout the image cannot have, said in one sentence. */
export class ImageLayoutError extends Error {
  override readonly name = 'ImageLayoutError';
}

function pages(gpa: number, bytes: Uint8Array): LaunchPage[] {
  const out: LaunchPage[] = [];
  for (let off = 0; off < bytes.length; off += PAGE) {
    out.push({
      gpa: gpa + off,
      type: PAGE_TYPE.NORMAL,
      data: bytes.subarray(off, Math.min(off + PAGE, bytes.length)),
    });
  }
  return out;
}

export interface SvsmImage extends LaunchPlan {
  readonly launchedSize: number;
  /** The firmware area's boot_params, ACPI tables and e820 map, as launched. */
  readonly firmware: FirmwareTables;
}

export function buildSvsmImage(o: SvsmImageOptions): SvsmImage {
  const size = o.svsmSize ?? DEFAULT_SVSM_SIZE;
  const base = o.svsmBase;
  if (!Number.isSafeInteger(base) || base % HUGE !== 0) {
    throw new ImageLayoutError(`the SVSM base 0x${base.toString(16)} is not 2 MiB aligned`);
  }
  if (size % HUGE !== 0 || size < HUGE)
    throw new ImageLayoutError('the SVSM size must be a positive multiple of 2 MiB');
  // The last page of RAM holds the BSP's VMSA; guest RAM for the SVSM ends below it.
  const vmsaGpa = bspVmsaGpa(o.memorySize);
  const guestRam = vmsaGpa;
  if (base + size > guestRam)
    throw new ImageLayoutError('the SVSM region does not fit in guest memory');
  for (const [name, gpa] of [
    ['calling area', o.guestCaaGpa],
    ['secrets copy', o.guestSecretsGpa],
  ] as const) {
    if (gpa % PAGE !== 0 || gpa + PAGE > guestRam || (gpa + PAGE > base && gpa < base + size)) {
      throw new ImageLayoutError(
        `the guest ${name} 0x${gpa.toString(16)} is not a guest page outside the SVSM`,
      );
    }
  }
  if (o.cpuidPage.length !== PAGE) throw new ImageLayoutError('the CPUID page must be 4 KiB');
  const L = SVSM_REGION_LAYOUT;
  const image = svsmCodeImage(o.code);
  const launchedSize = Math.ceil((L.CODE + image.length) / PAGE) * PAGE;
  if (launchedSize > size / 2)
    throw new ImageLayoutError('the SVSM code does not fit in half of its region');

  const params = SVSM_BOOT_PARAMS.alloc();
  SVSM_BOOT_PARAMS.on(params)
    .set('magic', SVSM_BOOT_PARAMS_MAGIC)
    .set('version', SVSM_BOOT_PARAMS_VERSION)
    .set('svsmBase', BigInt(base))
    .set('svsmSize', BigInt(size))
    .set('launchedSize', BigInt(launchedSize))
    .set('secretsGpa', BigInt(base + L.SECRETS))
    .set('cpuidGpa', BigInt(base + L.CPUID))
    .set('memorySize', BigInt(guestRam))
    .set('guestSecretsGpa', BigInt(o.guestSecretsGpa))
    .set('guestCaaGpa', BigInt(o.guestCaaGpa))
    .set('guestRip', o.guestRip ?? 0n)
    .set('guestRsi', o.guestRsi ?? 0n)
    .set('vcpuCount', o.vcpuCount ?? 1)
    .set('guestVmpl', 2);

  // The BSP starts at VMPL0 with paging off, RIP at the code image and RSI at its parameters.
  // MXCSR and the x87 fields stay zero, as COCONUT's IGVM builder leaves them (changing them would
  // change the launch digest; the SVSM sets up any x87/SSE state it needs itself).
  const vmsa = VMSA.alloc();
  VMSA.on(vmsa)
    .set('vmpl', 0)
    .set('efer', EFER.encode({ SVME: true }))
    .set('cr0', CR0.encode({ PE: true, ET: true }))
    .set('rflags', 2n)
    .set('rip', BigInt(base + L.CODE))
    .set('rsi', BigInt(base + L.BOOT_PARAMS))
    .set('sevFeatures', o.sevFeatures ?? SEV_FEATURES.encode({ snpActive: true }))
    .set('gPat', 0x0007040600070406n)
    .set('xcr0', 1n);

  let firmware: FirmwareTables;
  try {
    firmware = buildFirmwareTables({
      memorySize: o.memorySize,
      vcpuCount: o.vcpuCount ?? 1,
      svsmBase: base,
      svsmSize: size,
      reservedPages: [o.guestSecretsGpa, o.guestCaaGpa],
    });
  } catch (e) {
    if (e instanceof RangeError || e instanceof AcpiBuildError)
      throw new ImageLayoutError(e.message);
    throw e;
  }

  const planPages: LaunchPage[] = [
    ...firmware.pages,
    { gpa: base + L.BOOT_PARAMS, type: PAGE_TYPE.NORMAL, data: params },
    { gpa: base + L.SECRETS, type: PAGE_TYPE.SECRETS },
    { gpa: base + L.CPUID, type: PAGE_TYPE.CPUID, data: o.cpuidPage },
    ...pages(base + L.CODE, image),
    { gpa: vmsaGpa, type: PAGE_TYPE.VMSA, data: vmsa },
  ];
  return {
    policy: o.policy ?? DEFAULT_POLICY,
    pages: planPages,
    bspVmsaGpa: vmsaGpa,
    launchedSize,
    firmware,
  };
}
