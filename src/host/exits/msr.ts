// MSR NAE event (SVM_EXIT_MSR 0x7C): EXITINFO1 0 = RDMSR, 1 = WRMSR; RCX = MSR, RAX/RDX = value
// (both required for a write, KVM `sev_es_validate_vmgexit`). IA32_TSC reads the virtual TSC plus
// the vCPU's offset and a write moves the offset; the rest comes from the vCPU's MSR table
// (msr-table.ts). An MSR the table refuses gets #GP injected, as KVM does through the GHCB.

import { MSR, MSR_EXITINFO1, VECTOR } from '../../arch/index.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

export function msrExit(x: GhcbExit): void {
  if (x.missing('rcx')) return;
  const write = x.get('swExitInfo1') !== BigInt(MSR_EXITINFO1.RDMSR);
  if (write && x.missing('rax', 'rdx')) return;
  const msr = Number(x.get('rcx') & 0xffff_ffffn);
  const msrs = platformOf(x.vm).msrs[x.hv.vcpu.apicId];
  if (msrs === undefined) {
    x.exception(VECTOR.GP);
    return;
  }
  const tsc = x.vm.machine.tsc;
  if (write) {
    const value = ((x.get('rdx') & 0xffff_ffffn) << 32n) | (x.get('rax') & 0xffff_ffffn);
    if (msr === MSR.TSC) msrs.tscOffset = value - tsc;
    else if (!msrs.write(msr, value)) {
      x.exception(VECTOR.GP);
      return;
    }
    x.ok(0n);
    return;
  }
  const value = msr === MSR.TSC ? BigInt.asUintN(64, tsc + msrs.tscOffset) : msrs.read(msr);
  if (value === undefined) {
    x.exception(VECTOR.GP);
    return;
  }
  x.output('rax', value & 0xffff_ffffn);
  x.output('rdx', value >> 32n);
  x.ok(0n);
}
