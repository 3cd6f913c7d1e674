// The GHCB MSR protocol (GHCB spec "GHCB MSR protocol"): requests a guest makes in the GHCB MSR
// itself, before it has a GHCB page or when it must not use one (e.g. SNP_RUN_VMPL from the SVSM).

import {
  decodeMsrProtocol,
  msrRunVmplRequest,
  GHCB_HV_FEATURES,
  GHCB_MSR_PREFERRED_GPA_NONE,
  msrApResetHoldResponse,
  msrCpuidResponse,
  msrHvFeaturesResponse,
  msrPreferredGpaResponse,
  msrPscResponse,
  msrRegisterGpaResponse,
  msrRunVmplResponse,
  msrSevInfoResponse,
} from '../arch/index.js';
import type { ExitDecision } from '../hw/engine.js';
import { PAGE_SIZE } from '../hw/memory.js';
import { platformOf } from './devices/platform.js';
import type { VmsaRunning } from '../hw/vcpu.js';
import { changePageState } from './page-state.js';
import type { HostVcpu, VmContext } from './vm-context.js';

/**
 * The hypervisor features we implement, and only those: SNP, AP creation, the GET_APIC_IDS list
 * and multiple VMPLs (SNP_RUN_VMPL). Not restricted injection (and its timer), nor coconut's
 * page-state-change or extended-interrupt features.
 */
export const HOST_HV_FEATURES = GHCB_HV_FEATURES.encode({
  snp: true,
  apCreation: true,
  apicIdList: true,
  multiVmpl: true,
});
export const GHCB_PROTOCOL_MIN = 2;
export const GHCB_PROTOCOL_MAX = 2;

/**
 * SNP_RUN_VMPL requests for VMPL0..3 and the two answers, encoded once: every SVSM call makes two
 * such requests (the guest's to VMPL0, the SVSM's back), so they skip the general decoder.
 */
const RUN_VMPL_REQUESTS: readonly bigint[] = [0, 1, 2, 3].map(msrRunVmplRequest);
const RUN_VMPL_OK = msrRunVmplResponse(0);
const RUN_VMPL_REFUSED = msrRunVmplResponse(1);

function runVmpl(vm: VmContext, hv: HostVcpu, from: VmsaRunning, vmpl: number): ExitDecision {
  if (!vm.switchTo(hv, vmpl)) {
    hv.vcpu.ghcbMsr[from.vmpl] = RUN_VMPL_REFUSED;
    return 'resume';
  }
  hv.vcpu.ghcbMsr[from.vmpl] = RUN_VMPL_OK;
  return 'suspend';
}

export function handleMsrProtocol(
  vm: VmContext,
  hv: HostVcpu,
  from: VmsaRunning,
  value: bigint,
): ExitDecision {
  for (let vmpl = 0; vmpl < RUN_VMPL_REQUESTS.length; vmpl++) {
    if (value === RUN_VMPL_REQUESTS[vmpl]) return runVmpl(vm, hv, from, vmpl);
  }
  const vcpu = hv.vcpu;
  const reply = (v: bigint): ExitDecision => {
    vcpu.ghcbMsr[from.vmpl] = v;
    return 'resume';
  };
  const m = decodeMsrProtocol(value);
  switch (m.kind) {
    case 'sevInfoRequest':
      return reply(msrSevInfoResponse(GHCB_PROTOCOL_MAX, GHCB_PROTOCOL_MIN, vm.machine.cBit));
    case 'cpuidRequest': {
      // The same virtual-CPU description the GHCB CPUID exit and the CPUID page come from.
      const r = platformOf(vm).cpu.cpuid(m.fn, 0, 1n, 0n, vcpu.apicId);
      const value32 = [r.eax, r.ebx, r.ecx, r.edx][m.register]!;
      return reply(msrCpuidResponse(m.register, value32));
    }
    case 'preferredGpaRequest':
      return reply(msrPreferredGpaResponse(GHCB_MSR_PREFERRED_GPA_NONE));
    case 'registerGpaRequest': {
      const gpa = m.gfn * PAGE_SIZE;
      if (!vm.machine.hypervisorMemory.isShared(gpa)) {
        // KVM refuses a GHCB it cannot read by answering with another GFN.
        return reply(msrRegisterGpaResponse(GHCB_MSR_PREFERRED_GPA_NONE));
      }
      hv.ghcbs[from.vmpl] = gpa;
      return reply(msrRegisterGpaResponse(m.gfn));
    }
    case 'pscRequest': {
      const err = changePageState(vm, m.gfn * PAGE_SIZE, false, m.operation);
      return reply(msrPscResponse(err === 0 ? 0 : 1));
    }
    case 'runVmplRequest':
      return runVmpl(vm, hv, from, m.vmpl);
    case 'hvFeaturesRequest':
      return reply(msrHvFeaturesResponse(HOST_HV_FEATURES));
    case 'apResetHoldRequest':
      // The vCPU waits until an AP creation or INIT-SIPI gives it something to run.
      vcpu.ghcbMsr[from.vmpl] = msrApResetHoldResponse(1n);
      hv.next = null;
      return 'suspend';
    case 'terminate':
      vm.guestTerminated(m.reasonSet, m.reasonCode);
      return 'suspend';
    default:
      vm.terminate(
        `vCPU ${vcpu.apicId}: unsupported GHCB MSR protocol request 0x${value.toString(16)}`,
        false,
      );
      return 'suspend';
  }
}
