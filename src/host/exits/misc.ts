// The small NAE events: RDTSC (0x6E) and RDTSCP (0x87) from the virtual TSC, WBINVD (0x89, a
// no-op: simulated memory has no caches), VMMCALL (0x81, no hypercalls are offered), NMI_COMPLETE
// (0x8000_0003) and DR7 read/write (0x27/0x37). Inputs and outputs follow KVM
// (`sev_es_validate_vmgexit`, `sev_es_sync_to_ghcb`).

import { MSR } from '../../arch/index.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

/** KVM's hypercall errors (uapi/linux/kvm_para.h), negated into RAX. */
export const KVM_ENOSYS = 1000n;
export const KVM_EPERM = 1n;

function vcpuMsrs(x: GhcbExit) {
  return platformOf(x.vm).msrs[x.hv.vcpu.apicId];
}

/** RDTSC, and RDTSCP with TSC_AUX in RCX: the machine's virtual TSC plus the vCPU's offset. */
export function rdtscExit(x: GhcbExit, withAux: boolean): void {
  const msrs = vcpuMsrs(x);
  const tsc = BigInt.asUintN(64, x.vm.machine.tsc + (msrs?.tscOffset ?? 0n));
  x.output('rax', tsc & 0xffff_ffffn);
  x.output('rdx', tsc >> 32n);
  if (withAux) x.output('rcx', msrs?.read(MSR.TSC_AUX) ?? 0n);
  x.ok(0n);
}

/**
 * VMMCALL: RAX (hypercall number) and CPL are required. No KVM PV feature is advertised, so every
 * hypercall from CPL0 answers -KVM_ENOSYS, and from user mode -KVM_EPERM, as KVM does.
 */
export function vmmcallExit(x: GhcbExit): void {
  if (x.missing('rax', 'cpl')) return;
  const cpl = x.g.get('cpl') & 3;
  x.output('rax', cpl !== 0 ? -KVM_EPERM : -KVM_ENOSYS);
  x.ok(0n);
}

export function dr7Exit(x: GhcbExit, write: boolean): void {
  const msrs = vcpuMsrs(x);
  if (write) {
    if (x.missing('rax')) return;
    if (msrs !== undefined) msrs.dr7 = x.get('rax');
  } else {
    x.output('rax', msrs?.dr7 ?? 0x400n);
  }
  x.ok(0n);
}
