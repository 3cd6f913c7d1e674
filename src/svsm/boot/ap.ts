// Application processors. As COCONUT does (reference/coconut-svsm.md section 2, svsm_init "start
// APs"), the BSP gives every AP its own VMPL0 VMSA during boot: a page of SVSM memory with the
// SVSM's paging registers (the code image is shared by all vCPUs; CR0/CR3/CR4/EFER live in each
// VMSA; CR3 is the AP's own PML4, made here, whose kernel entry is the one every vCPU shares and
// whose windows are the AP's alone, mm/address-space.ts), marked as a VMSA and announced to the
// host with AP creation at VMPL0. The AP enters the same entry point; on its first entry it sets
// up its own GHCB and marks itself online.
//
// While an AP has no guest VMSA it waits in AP reset hold (GHCB MSR protocol 0x006), so it does
// not spin: the host runs it again only when an AP creation names a VMSA for it, which CREATE_VCPU
// does for the guest VMSA, so the AP resumes directly in its guest.

import { AP_CREATION_OP, CR0, VMSA, VMSA_INIT_FP, type Vmpl0 } from '../../arch/index.js';
import { SvsmPanic } from '../errors.js';
import type { Kernel, PerCpu } from '../kernel.js';
import { setupGhcb } from './boot.js';
import { RMPADJUST_VMSA, allocVmsaPage, apCreation } from './vmsa-page.js';

/** 64-bit code segment attributes (P, S, code/read/accessed, L) and flat data segments. */
const CS_ATTRIB_64 = 0x29b;
const DS_ATTRIB = 0xc93;
/** RMPADJUST target for marking an SVSM page as a VMSA: VMPL1, no permissions. */
const VMPL1 = 1;

/** Creates the VMPL0 VMSA of every AP and asks the host to start them. Runs on the BSP. */
export function startAps(k: Kernel, cpu: Vmpl0): void {
  if (!CR0.has(cpu.readCr(0), 'PG')) throw new SvsmPanic('APs need the SVSM paging on');
  const rip = Number(cpu.readRegister('rip'));
  const { base, size } = k.space.region;
  const entryVa = rip >= base && rip < base + size ? k.space.va(rip) : rip;
  for (const pc of k.cpus) {
    if (pc.index === cpu.vcpuIndex) continue;
    // The AP's own PML4 (the kernel entry shared, its windows its own) is its CR3.
    const cr3 = k.space.addCpu(cpu, pc.index, () => k.pages.allocPage());
    const pa = allocVmsaPage(k.pages);
    const page = VMSA.alloc();
    VMSA.set(page, 'cs.attrib', CS_ATTRIB_64);
    VMSA.set(page, 'cs.limit', 0xffff_ffff);
    for (const s of ['es', 'ss', 'ds', 'fs', 'gs'] as const) {
      VMSA.set(page, `${s}.attrib`, DS_ATTRIB);
      VMSA.set(page, `${s}.limit`, 0xffff_ffff);
    }
    VMSA.on(page)
      .set('vmpl', 0)
      .set('efer', cpu.readEfer())
      .set('cr0', cpu.readCr(0))
      .set('cr3', cr3)
      .set('cr4', cpu.readCr(4))
      .set('rflags', 2n)
      .set('rip', BigInt(entryVa))
      .set('sevFeatures', k.sevFeatures)
      .set('gPat', 0x0007040600070406n)
      .set('xcr0', 1n)
      // The INIT x87/SSE state, as COCONUT's init_svsm_vmsa (MXCSR 0x1F80, FCW 0x40, FTW 0x5555).
      .set('mxcsr', VMSA_INIT_FP.mxcsr)
      .set('x87Fcw', VMSA_INIT_FP.x87Fcw)
      .set('x87Ftw', VMSA_INIT_FP.x87Ftw);
    const va = k.space.va(pa);
    cpu.write(va, page);
    const r = cpu.rmpadjust(va, false, VMPL1 | RMPADJUST_VMSA);
    if (r.rax !== 0) throw new SvsmPanic(`making 0x${pa.toString(16)} a VMSA failed: ${r.rax}`);
    pc.svsmVmsa = pa;
    if (!apCreation(k, cpu, AP_CREATION_OP.CREATE, 0, pc.apicId, pa))
      throw new SvsmPanic(`the host refused to start vCPU ${pc.apicId}`);
  }
}

/** First entry of an AP: its own GHCB, then it is online. */
export function apFirstEntry(k: Kernel, cpu: Vmpl0, pc: PerCpu): void {
  pc.ghcb = setupGhcb(cpu, k.space, k.pages);
  pc.online = true;
  k.log(cpu, `vCPU ${pc.index} (APIC ID ${pc.apicId}) online`);
}
