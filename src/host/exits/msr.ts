// MSR NAE event (SVM_EXIT_MSR 0x7C): EXITINFO1 0 = RDMSR, 1 = WRMSR; RCX = MSR, RAX/RDX = value
// (both required for a write, KVM `sev_es_validate_vmgexit`). IA32_TSC reads the virtual TSC plus
// the vCPU's offset and a write moves the offset; the rest comes from the vCPU's MSR table
// (msr-table.ts). An MSR the table refuses gets #GP injected, as KVM does through the GHCB.
// The x2APIC MSRs (0x800-0x8FF) and IA32_TSC_DEADLINE go to the vCPU's local APIC
// (devices/x2apic.ts), which also decides which APIC_BASE writes are legal.

import { isX2apicMsr, MSR, MSR_EXITINFO1, VECTOR } from '../../arch/index.js';
import { type HostPlatform, platformOf } from '../devices/platform.js';
import { apicBaseWriteAllowed, isX2apicMode } from '../devices/x2apic.js';
import type { GhcbExit } from './ghcb-exit.js';

export function msrExit(x: GhcbExit): void {
  if (x.missing('rcx')) return;
  const write = x.get('swExitInfo1') !== BigInt(MSR_EXITINFO1.RDMSR);
  if (write && x.missing('rax', 'rdx')) return;
  const msr = Number(x.get('rcx') & 0xffff_ffffn);
  const platform = platformOf(x.vm);
  const msrs = platform.msrs[x.hv.vcpu.apicId];
  if (isX2apicMsr(msr) || msr === MSR.TSC_DEADLINE) {
    apicMsr(x, platform, msr, write);
    return;
  }
  if (msrs === undefined) {
    x.exception(VECTOR.GP);
    return;
  }
  const tsc = x.vm.machine.tsc;
  if (write) {
    const value = ((x.get('rdx') & 0xffff_ffffn) << 32n) | (x.get('rax') & 0xffff_ffffn);
    if (msr === MSR.TSC) msrs.tscOffset = value - tsc;
    else if (msr === MSR.APIC_BASE) {
      if (!apicBaseWrite(platform, x.hv.vcpu.apicId, value)) {
        x.exception(VECTOR.GP);
        return;
      }
    } else if (!msrs.write(msr, value)) {
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

function apicBaseWrite(platform: HostPlatform, apicId: number, value: bigint): boolean {
  const msrs = platform.msrs[apicId]!;
  const old = msrs.read(MSR.APIC_BASE) ?? 0n;
  const x2apic = ((platform.cpu.cpuid(1, 0, 1n, 0n, apicId).ecx >>> 21) & 1) === 1;
  if (!apicBaseWriteAllowed(old, value, x2apic) || !msrs.write(MSR.APIC_BASE, value)) return false;
  // Disabling the APIC resets it (SDM: the APIC state after EN is cleared is as at power-up).
  if ((value & 0x800n) === 0n) platform.apics.apics[apicId]?.reset();
  return true;
}

/** An x2APIC register or IA32_TSC_DEADLINE; #GP when absent, refused or not in x2APIC mode. */
function apicMsr(x: GhcbExit, platform: HostPlatform, msr: number, write: boolean): void {
  const apicId = x.hv.vcpu.apicId;
  const apic = platform.apics.apics[apicId];
  const base = platform.msrs[apicId]?.read(MSR.APIC_BASE) ?? 0n;
  const deadline = msr === MSR.TSC_DEADLINE;
  if (apic === undefined || (deadline ? !platform.apics.tscDeadline : !isX2apicMode(base))) {
    x.exception(VECTOR.GP);
    return;
  }
  if (write) {
    const value = ((x.get('rdx') & 0xffff_ffffn) << 32n) | (x.get('rax') & 0xffff_ffffn);
    if (deadline) apic.writeTscDeadline(value);
    else if (!apic.write(msr, value)) {
      x.exception(VECTOR.GP);
      return;
    }
    x.ok(0n);
    return;
  }
  const value = deadline ? apic.readTscDeadline() : apic.read(msr);
  if (value === undefined) {
    x.exception(VECTOR.GP);
    return;
  }
  x.output('rax', value & 0xffff_ffffn);
  x.output('rdx', value >> 32n);
  x.ok(0n);
}
