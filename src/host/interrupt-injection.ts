// Interrupt injection, as KVM does it for an SEV-SNP guest without Restricted Injection
// (reference/linux-snp-guest.md 3.7: "Interrupts are injected normally"): before each VMRUN of
// the vCPU's guest VMPL (never of VMPL0 running an SVSM under it), the host brings the timed
// devices up to virtual time, takes an NMI or the highest pending vector of the vCPU's x2APIC,
// and puts it in EVENTINJ (`vcpu.eventInj`), which the engine delivers at VMRUN. An external
// interrupt goes in only when the guest can take it: the engine reports RFLAGS.IF and the
// interrupt shadow in `vcpu.intState` at each exit (under SEV-ES the hypervisor sees nothing
// else); otherwise the host sets V_IRQ (`vcpu.vIrq`) to get a VINTR exit once it can. Taking the
// vector moves it from the IRR to the ISR (INTA); the guest's EOI ends it. An NMI stays blocked
// until the guest's NMI_COMPLETE, the SEV-ES stand-in for the IRET the host cannot see.

import { EVENT_TYPE } from '../arch/index.js';
import { EVENTINJ_TYPE_SHIFT, EVENTINJ_VALID, INT_STATE, type Vcpu } from '../hw/vcpu.js';
import { platformOf } from './devices/platform.js';
import type { HostVcpu, VmContext } from './vm-context.js';

/**
 * The VMPL that takes interrupts: the least privileged one any vCPU has a VMSA for (the guest's
 * under an SVSM; VMPL0 only for a guest without one). VM-wide, so an AP whose SVSM runs before
 * the guest created the AP's own VMSA is not interrupted at VMPL0.
 */
export function interruptVmpl(vm: VmContext): number {
  let max = 0;
  for (const hv of vm.vcpus) {
    for (let vmpl = hv.vmsas.length - 1; vmpl > max; vmpl--) {
      if (hv.vmsas[vmpl] !== null) {
        max = vmpl;
        break;
      }
    }
  }
  return max;
}

function canTakeInterrupt(vcpu: Vcpu): boolean {
  return (vcpu.intState & (INT_STATE.IF | INT_STATE.SHADOW)) === INT_STATE.IF;
}

/** Sets EVENTINJ on `hv` for the VMRUN of `vmpl` that follows, if something is deliverable. */
export function injectBeforeVmrun(vm: VmContext, hv: HostVcpu, vmpl: number): void {
  const vcpu = hv.vcpu;
  if (vmpl !== interruptVmpl(vm)) return;
  if ((vcpu.eventInj & EVENTINJ_VALID) !== 0) return; // one event per VMRUN
  const p = platformOf(vm);
  p.pc.poll();
  const id = vcpu.apicId;
  if (!p.nmiBlocked[id] && p.apics.takeNmi(id)) {
    p.nmiBlocked[id] = true;
    vcpu.eventInj = (EVENTINJ_VALID | (EVENT_TYPE.NMI << EVENTINJ_TYPE_SHIFT) | 2) >>> 0;
    vm.log(`vCPU ${id}: NMI injected into VMPL${vmpl}`);
    return;
  }
  const vector = p.apics.highestPending(id);
  if (vector < 0) {
    vcpu.vIrq = false;
    return;
  }
  if (!canTakeInterrupt(vcpu)) {
    vcpu.vIrq = true;
    return;
  }
  p.apics.apics[id]!.acknowledge(vector);
  vcpu.vIrq = false;
  vcpu.eventInj = (EVENTINJ_VALID | (EVENT_TYPE.INTR << EVENTINJ_TYPE_SHIFT) | vector) >>> 0;
  p.injected.set(vector, (p.injected.get(vector) ?? 0) + 1);
}

/** Whether a vCPU halted in its guest VMPL has something to wake for (an NMI, or IF and a vector). */
export function canWake(vm: VmContext, hv: HostVcpu): boolean {
  const p = platformOf(vm);
  p.pc.poll();
  const id = hv.vcpu.apicId;
  const apic = p.apics.apics[id];
  if (apic === undefined) return false;
  if (apic.nmiPending && !p.nmiBlocked[id]) return true;
  return canTakeInterrupt(hv.vcpu) && p.apics.highestPending(id) >= 0;
}

/** The guest's NMI handler is done (NMI_COMPLETE): NMIs may be injected again. */
export function nmiComplete(vm: VmContext, hv: HostVcpu): void {
  platformOf(vm).nmiBlocked[hv.vcpu.apicId] = false;
}
