// Boot of the SVSM on the BSP. Stage 1 runs with paging off (addresses are physical): it reads the
// measured boot parameters (GPA in RSI), validates the part of its region the launch did not, and
// builds the kernel's page tables and its own; then it turns paging on and the kernel part sets up
// the page allocator, the GHCB, its keys and the guest (secrets page copy, calling area, VMPL2
// VMSA).

import {
  AP_CREATION_OP,
  CR0,
  CR4,
  EFER,
  MSR,
  PSC_ENTRY,
  PSC_HEADER,
  PSC_OP,
  SNP_SECRETS_PAGE,
  SVSM_BOOT_PARAMS,
  SVSM_BOOT_PARAMS_MAGIC,
  SVSM_BOOT_PARAMS_VERSION,
  SW_EXITCODE,
  SVSM_VA,
  VMSA,
  VMSA_INIT_FP,
  VMPL_PERM,
  decodeMsrProtocol,
  msrPscRequest,
  msrRegisterGpaRequest,
  type Vmpl0,
} from '../../arch/index.js';
import { SvsmPanic } from '../errors.js';
import { type BootInfo, type Kernel, type PerCpu, setKernel } from '../kernel.js';
import { logLine } from '../log.js';
import { AddressSpace, buildAddressSpace } from '../mm/address-space.js';
import { BuddyAllocator } from '../mm/buddy-allocator.js';
import { DepositedMemory } from '../mm/deposited-memory.js';
import { GuestMemory } from '../mm/guest-memory.js';
import { PageMetadata } from '../mm/page-metadata.js';
import { GhcbClient, msrProtocol } from '../sev/ghcb-client.js';
import { RMPADJUST_VMSA, allocVmsaPage, apCreation } from './vmsa-page.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
/** SVSM spec: the SVSM protocol version the guest sees in the secrets page. */
const SVSM_MAX_VERSION = 1;

function readBootInfo(cpu: Vmpl0): BootInfo & { launchedSize: number; guestCaaGpa: number } {
  const gpa = Number(cpu.readRegister('rsi'));
  const p = SVSM_BOOT_PARAMS.on(cpu.read(gpa, PAGE));
  if (p.get('magic') !== SVSM_BOOT_PARAMS_MAGIC || p.get('version') !== SVSM_BOOT_PARAMS_VERSION) {
    throw new SvsmPanic(
      `no version ${SVSM_BOOT_PARAMS_VERSION} boot parameters at 0x${gpa.toString(16)}`,
    );
  }
  const n = (v: bigint): number => Number(v);
  return {
    svsmBase: n(p.get('svsmBase')),
    svsmSize: n(p.get('svsmSize')),
    launchedSize: n(p.get('launchedSize')),
    memorySize: n(p.get('memorySize')),
    secretsGpa: n(p.get('secretsGpa')),
    cpuidGpa: n(p.get('cpuidGpa')),
    guestSecretsGpa: n(p.get('guestSecretsGpa')),
    guestCaaGpa: n(p.get('guestCaaGpa')),
    guestRip: p.get('guestRip'),
    guestRsi: p.get('guestRsi'),
    vcpuCount: p.get('vcpuCount'),
    guestVmpl: p.get('guestVmpl'),
  };
}

/** PVALIDATEs [start, end) of the SVSM region, 2 MiB at a time where the RMP allows. */
function validateRange(cpu: Vmpl0, start: number, end: number): void {
  for (let pa = start; pa < end;) {
    if (pa % HUGE === 0 && end - pa >= HUGE) {
      const r = cpu.pvalidate(pa, true, true);
      if (r.rax === 0) {
        pa += HUGE;
        continue;
      }
      if (r.rax !== 6) throw new SvsmPanic(`PVALIDATE 2M of 0x${pa.toString(16)} failed: ${r.rax}`);
    }
    const r = cpu.pvalidate(pa, false, true);
    if (r.rax !== 0) throw new SvsmPanic(`PVALIDATE of 0x${pa.toString(16)} failed: ${r.rax}`);
    pa += PAGE;
  }
}

/** Allocates a page and makes it the vCPU's shared GHCB, registered with the host. */
export function setupGhcb(cpu: Vmpl0, space: AddressSpace, pages: BuddyAllocator): GhcbClient {
  const pa = pages.allocPage();
  if (pa === null) throw new SvsmPanic('no memory for a GHCB');
  const r = cpu.pvalidate(space.va(pa), false, false);
  if (r.rax !== 0) throw new SvsmPanic(`rescinding the GHCB page failed: ${r.rax}`);
  const gfn = pa / PAGE;
  const psc = decodeMsrProtocol(msrProtocol(cpu, msrPscRequest(gfn, PSC_OP.SHARED)));
  if (psc.kind !== 'pscResponse' || psc.error !== 0)
    throw new SvsmPanic('the host refused to share the GHCB page');
  const va = space.mapWindow(cpu, SVSM_VA.SHARED_FIRST_SLOT, pa, true);
  cpu.fill(va, PAGE, 0);
  const reg = decodeMsrProtocol(msrProtocol(cpu, msrRegisterGpaRequest(gfn)));
  if (reg.kind !== 'registerGpaResponse' || reg.gfn !== gfn)
    throw new SvsmPanic('the host refused the GHCB');
  cpu.wrmsr(MSR.GHCB, BigInt(pa));
  return new GhcbClient(cpu, va, pa);
}

/** Everything of the BSP's boot up to the point where the guest can run. */
export function bootBsp(cpu: Vmpl0): Kernel {
  const info = readBootInfo(cpu);
  const region = { base: info.svsmBase, size: info.svsmSize };
  validateRange(cpu, region.base + info.launchedSize, region.base + region.size);

  // Page tables from the first pages after the launched part, taken while paging is off: the
  // kernel region's, shared by every vCPU, and the BSP's own PML4 and windows
  // (mm/address-space.ts).
  let next = region.base + info.launchedSize;
  const takePage = (): number => {
    const pa = next;
    next += PAGE;
    cpu.fill(pa, PAGE, 0);
    return pa;
  };
  const space = buildAddressSpace(cpu, region, info.vcpuCount, takePage);
  cpu.writeCr(4, CR4.with(cpu.readCr(4), 'PAE', true));
  cpu.writeEfer(EFER.encode({ SVME: true, LME: true, NXE: true }));
  cpu.writeCr(3, space.cr3(cpu.vcpuIndex));
  cpu.writeCr(0, CR0.encode({ PE: true, ET: true, WP: true, PG: true }));

  // The page allocator over the rest of the region; its metadata is bookkeeping of this object.
  const heapPages = (region.base + region.size - next) / PAGE;
  const metadata = new PageMetadata(
    new Uint32Array((PageMetadata.bytesFor(heapPages) + 3) >>> 2),
    heapPages,
  );
  const pages = new BuddyAllocator(next, heapPages, metadata);
  const guest = new GuestMemory(space, info.memorySize);

  const cpus: PerCpu[] = Array.from({ length: info.vcpuCount }, (_, index) => ({
    index,
    apicId: index,
    ghcb: null,
    svsmVmsa: null,
    guestVmsa: null,
    caa: null,
    online: false,
  }));
  const bsp = cpus[0]!;
  bsp.ghcb = setupGhcb(cpu, space, pages);

  const secrets = SNP_SECRETS_PAGE.on(cpu.read(space.va(info.secretsGpa), PAGE));
  const kernel: Kernel = {
    boot: info,
    space,
    pages,
    guest,
    deposited: new DepositedMemory(),
    cpus,
    vmsas: new Map(),
    sevFeatures: cpu.rdmsr(MSR.SEV_STATUS) >> 2n,
    vmpck0: secrets.get('vmpck0'),
    vmpck0Seqno: 0n,
    log: (c, text) => logLine(c, cpus[c.vcpuIndex]?.ghcb ?? null, text),
  };
  // From here on a panic can log and wipe the keys.
  setKernel(kernel);
  kernel.log(
    cpu,
    `booted at 0x${region.base.toString(16)} (${region.size >> 20} MiB), ${info.vcpuCount} vCPU(s)`,
  );
  prepareGuest(kernel, cpu, secrets.bytes, info.guestCaaGpa);
  bsp.online = true;
  // What the SVSM occupies once booted: its launched image, the page tables taken during boot
  // and what its allocator has handed out (GHCBs, VMSAs, shared pages).
  const usedBytes = next - region.base + pages.stats().allocatedPages * PAGE;
  kernel.log(cpu, `memory: ${Math.ceil(usedBytes / 1024)} KiB in use of ${region.size >> 20} MiB`);
  return kernel;
}

/** Validates a guest page, zeroes it and grants the guest's VMPL `perms` on it. */
export function giveGuestPage(k: Kernel, cpu: Vmpl0, gpa: number, perms: number): void {
  k.guest.onPage(cpu, gpa, PAGE, (va) => {
    let r = cpu.pvalidate(va, false, true);
    if (r.rax === 6) {
      psmash(k, cpu, gpa);
      r = cpu.pvalidate(va, false, true);
    }
    if (r.rax !== 0)
      throw new SvsmPanic(`validating guest page 0x${gpa.toString(16)} failed: ${r.rax}`);
    cpu.fill(va, PAGE, 0);
    const a = cpu.rmpadjust(va, false, k.boot.guestVmpl | (perms << 8));
    if (a.rax !== 0)
      throw new SvsmPanic(`granting guest page 0x${gpa.toString(16)} failed: ${a.rax}`);
  });
}

/**
 * Creates the guest VMSA for vCPU `apicId`: a page of the SVSM's memory, VMPL2, EFER.SVME, our
 * SEV_FEATURES, then marked as a VMSA (RMPADJUST with the VMSA bit and no access for the guest,
 * as COCONUT's rmp_set_guest_vmsa) and registered with the host (AP creation).
 */
export function createGuestVmsa(
  k: Kernel,
  cpu: Vmpl0,
  apicId: number,
  rip: bigint,
  rsi: bigint,
): number {
  const pa = allocVmsaPage(k.pages);
  const va = k.space.va(pa);
  const page = VMSA.alloc();
  const seg = (name: 'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs', attrib: number): void => {
    VMSA.set(page, `${name}.attrib`, attrib);
    VMSA.set(page, `${name}.limit`, 0xffff_ffff);
  };
  seg('cs', 0xc9b);
  for (const s of ['es', 'ss', 'ds', 'fs', 'gs'] as const) seg(s, 0xc93);
  VMSA.on(page)
    .set('vmpl', k.boot.guestVmpl)
    .set('efer', EFER.encode({ SVME: true }))
    .set('cr0', CR0.encode({ PE: true, ET: true }))
    .set('rflags', 2n)
    .set('rip', rip)
    .set('rsi', rsi)
    .set('sevFeatures', k.sevFeatures)
    .set('gPat', 0x0007040600070406n)
    .set('xcr0', 1n)
    // The INIT x87/SSE state, as COCONUT's init_guest_vmsa (MXCSR 0x1F80, FCW 0x40, FTW 0x5555).
    .set('mxcsr', VMSA_INIT_FP.mxcsr)
    .set('x87Fcw', VMSA_INIT_FP.x87Fcw)
    .set('x87Ftw', VMSA_INIT_FP.x87Ftw);
  cpu.write(va, page);
  const r = cpu.rmpadjust(va, false, k.boot.guestVmpl | RMPADJUST_VMSA);
  if (r.rax !== 0) throw new SvsmPanic(`making 0x${pa.toString(16)} a VMSA failed: ${r.rax}`);
  const owner = k.cpus.find((p) => p.apicId === apicId);
  if (owner === undefined) throw new SvsmPanic(`no vCPU has APIC ID ${apicId}`);
  k.vmsas.set(pa, { cpuIndex: owner.index, guestOwned: false });
  if (!apCreation(k, cpu, AP_CREATION_OP.CREATE, k.boot.guestVmpl, apicId, pa))
    throw new SvsmPanic(`the host refused the guest VMSA of vCPU ${apicId}`);
  return pa;
}

/** The guest's view of the secrets page, its calling area and its BSP VMSA. */
function prepareGuest(k: Kernel, cpu: Vmpl0, secrets: Uint8Array, caaGpa: number): void {
  const copy = Uint8Array.from(secrets);
  // The guest never gets VMPCK0 or VMPCK1, so it cannot ask for a report of a VMPL below its own.
  SNP_SECRETS_PAGE.on(copy)
    .set('vmpck0', new Uint8Array(32))
    .set('vmpck1', new Uint8Array(32))
    .set('svsmBase', BigInt(k.boot.svsmBase))
    .set('svsmSize', BigInt(k.boot.svsmSize))
    .set('svsmCaa', BigInt(caaGpa))
    .set('svsmMaxVersion', SVSM_MAX_VERSION)
    .set('svsmGuestVmpl', k.boot.guestVmpl);
  giveGuestPage(k, cpu, k.boot.guestSecretsGpa, VMPL_PERM.READ | VMPL_PERM.WRITE);
  k.guest.write(cpu, k.boot.guestSecretsGpa, copy);
  giveGuestPage(k, cpu, caaGpa, VMPL_PERM.READ | VMPL_PERM.WRITE);
  const bsp = k.cpus[0]!;
  bsp.caa = caaGpa;
  bsp.guestVmsa = createGuestVmsa(k, cpu, cpu.apicId, k.boot.guestRip, k.boot.guestRsi);
  k.log(
    cpu,
    `guest prepared: CAA 0x${caaGpa.toString(16)}, secrets copy 0x${k.boot.guestSecretsGpa.toString(16)}`,
  );
}

/**
 * Asks the host to split the 2 MiB RMP entry holding `gpa` into 4 KiB entries (PSC PSMASH), so a
 * single page of it can be validated.
 */
export function psmash(k: Kernel, cpu: Vmpl0, gpa: number): void {
  const ghcb = k.cpus[cpu.vcpuIndex]!.ghcb!;
  const desc = new Uint8Array(16);
  PSC_HEADER.on(desc).set('curEntry', 0).set('endEntry', 0);
  const entry = PSC_ENTRY.encode({
    gfn: Math.floor(gpa / HUGE) * (HUGE / PAGE),
    operation: PSC_OP.PSMASH,
    pageSize: true,
  });
  new DataView(desc.buffer).setBigUint64(8, entry, true);
  const r = ghcb.callOrPanic(SW_EXITCODE.PSC, { swScratch: BigInt(ghcb.sharedBufferGpa) }, desc);
  if (r.exitInfo1 !== 0n || r.exitInfo2 !== 0n) {
    throw new SvsmPanic(`the host refused PSMASH of 0x${gpa.toString(16)}`);
  }
}
