// VMSA pages the SVSM makes or adopts: allocation that avoids the 2 MiB-alignment erratum, the
// RMPADJUST attribute that marks a page as a VMSA, and telling the host about a VMSA (GHCB AP
// creation NAE), which is only a hint: the RMP VMSA bit is what lets the hardware run a page.

import { AP_CREATION_EXITINFO1, SW_EXITCODE, type Vmpl0 } from '../../arch/index.js';
import { SvsmPanic } from '../errors.js';
import type { Kernel } from '../kernel.js';
import type { BuddyAllocator } from '../mm/buddy-allocator.js';

const HUGE = 0x20_0000;
/** RMPADJUST RDX bit 16: the page becomes a VMSA (APM vol. 3 "RMPADJUST"). */
export const RMPADJUST_VMSA = 0x1_0000;
/** RMPADJUST RDX permission bits start at bit 8. */
export const RMPADJUST_PERMS_SHIFT = 8;

/**
 * A page for a VMSA (the caller writes all of it). The CPU may signal a wrong RMP violation when a
 * large page overlaps the RMP entry of a VMSA page (the SNP erratum Linux's snp_alloc_vmsa_page
 * and COCONUT work around), so a 2 MiB-aligned page is skipped and freed again.
 */
export function allocVmsaPage(pages: BuddyAllocator): number {
  const skipped: number[] = [];
  try {
    for (;;) {
      const pa = pages.allocPage();
      if (pa === null) throw new SvsmPanic('no memory for a VMSA');
      if (pa % HUGE !== 0) return pa;
      skipped.push(pa);
    }
  } finally {
    for (const pa of skipped) pages.freePages(pa);
  }
}

/**
 * GHCB AP creation NAE (GHCB spec "SNP AP Creation"): `op` for the VMSA at `vmsaGpa` of VMPL
 * `vmpl` on the vCPU with APIC ID `apicId`, through this vCPU's GHCB. False when the host refused.
 */
export function apCreation(
  k: Kernel,
  cpu: Vmpl0,
  op: number,
  vmpl: number,
  apicId: number,
  vmsaGpa: number,
): boolean {
  const ghcb = k.cpus[cpu.vcpuIndex]?.ghcb ?? null;
  if (ghcb === null) throw new SvsmPanic(`vCPU ${cpu.vcpuIndex} has no GHCB for AP creation`);
  const ans = ghcb.callOrPanic(SW_EXITCODE.AP_CREATION, {
    swExitInfo1: AP_CREATION_EXITINFO1.encode({ request: op, vmpl, apicId }),
    swExitInfo2: BigInt(vmsaGpa),
    rax: k.sevFeatures,
  });
  return ans.exitInfo1 === 0n;
}
