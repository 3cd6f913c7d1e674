// One pass of a vCPU's request loop, run each time the guest enters VMPL0: if the guest's VMSA
// shows a VMGEXIT and its calling area has call_pending set, the call is taken from the guest's
// registers, dispatched to its protocol, and the results written back; then the guest runs again.
// A vCPU without a guest VMSA (an AP before CREATE_VCPU, or after DELETE_VCPU) waits in AP reset
// hold instead (COCONUT's request loop goes idle on "NoMappings" the same way).

import {
  MSR,
  SvsmProtocol,
  SVSM_VA,
  SvsmResult,
  SVSM_CALL_RAX,
  VMSA,
  decodeMsrProtocol,
  msrApResetHoldRequest,
  msrRunVmplRequest,
  type Vmpl0,
} from '../../arch/index.js';
import { SvsmPanic } from '../errors.js';
import type { Kernel, PerCpu } from '../kernel.js';
import { GuestMemoryFault } from '../mm/guest-memory.js';
import { attestProtocol } from '../protocols/attest.js';
import type { ProtocolHandler, SvsmCall } from '../protocols/call.js';
import { coreProtocol } from '../protocols/core.js';

const SVM_EXIT_VMGEXIT = 0x403n;
/**
 * Window slot of the calling vCPU's guest VMSA while a call is served: the last temporary slot, as
 * GuestMemory nests its temporary mappings upward from slot 0.
 */
const GUEST_VMSA_SLOT = SVSM_VA.TEMP_SLOTS - 1;

/** Offsets of the guest VMSA fields a call reads and writes, resolved once. */
const AT_RAX = VMSA.offset('rax');
const AT_RCX = VMSA.offset('rcx');
const AT_RDX = VMSA.offset('rdx');
const AT_R8 = VMSA.offset('r8');
const AT_EXIT_CODE = VMSA.offset('guestExitCode');
/** RAX's call and protocol fields (SVSM_CALL_RAX) are its 32-bit halves: read without a bigint. */
const AT_RAX_CALL = AT_RAX + SVSM_CALL_RAX.specs.call.lo / 8;
const AT_RAX_PROTOCOL = AT_RAX + SVSM_CALL_RAX.specs.protocol.lo / 8;
if (SVSM_CALL_RAX.specs.call.width !== 32 || SVSM_CALL_RAX.specs.protocol.width !== 32) {
  throw new Error('request-loop.ts: SVSM_CALL_RAX is no longer two 32-bit halves');
}

/** SNP_RUN_VMPL requests for VMPL0..3, encoded once (one per call). */
const RUN_VMPL_REQUESTS: readonly bigint[] = [0, 1, 2, 3].map(msrRunVmplRequest);

const PROTOCOLS: ReadonlyMap<number, ProtocolHandler> = new Map([
  [SvsmProtocol.CORE, coreProtocol],
  [SvsmProtocol.ATTEST, attestProtocol],
]);

/** Handles a pending call, if any, on this vCPU. */
export function serviceGuest(k: Kernel, cpu: Vmpl0, pc: PerCpu): void {
  const calling = pc.guestVmsa;
  if (calling === null || pc.caa === null) return;
  const vmsa = guestVmsaVa(k, cpu, calling);
  if (cpu.readU64(vmsa + AT_EXIT_CODE) !== SVM_EXIT_VMGEXIT) return;
  let pending: number;
  try {
    pending = k.guest.readCallingAreaU8(cpu, pc.caa);
    if (pending !== 0) k.guest.writeCallingAreaU8(cpu, pc.caa, 0);
  } catch (e) {
    // A calling area the guest made inaccessible holds no call.
    if (e instanceof GuestMemoryFault) return;
    throw e;
  }
  if (pending !== 1) return;
  const protocol = cpu.readU32(vmsa + AT_RAX_PROTOCOL);
  const call = cpu.readU32(vmsa + AT_RAX_CALL);
  const c: SvsmCall = {
    k,
    cpu,
    pc,
    call,
    rcx: cpu.readU64(vmsa + AT_RCX),
    rdx: cpu.readU64(vmsa + AT_RDX),
    r8: cpu.readU64(vmsa + AT_R8),
  };
  const handler = PROTOCOLS.get(protocol);
  let result: number;
  if (handler === undefined) {
    result = SvsmResult.UNSUPPORTED_PROTOCOL;
  } else {
    try {
      result = handler(c);
    } catch (e) {
      // Exception fixup: a fault on a guest address is the guest's mistake, not ours.
      if (!(e instanceof GuestMemoryFault)) throw e;
      result = SvsmResult.INVALID_ADDRESS;
    }
  }
  // A handler may have replaced or deleted the calling VMSA (CREATE_VCPU / DELETE_VCPU of its own
  // vCPU): then nobody will read the results there, and a deleted page is the guest's again.
  if (pc.guestVmsa !== calling) return;
  cpu.writeU64(vmsa + AT_RAX, BigInt(result));
  cpu.writeU64(vmsa + AT_RCX, c.rcx);
  cpu.writeU64(vmsa + AT_RDX, c.rdx);
  cpu.writeU64(vmsa + AT_R8, c.r8);
}

/**
 * The kernel VA of a guest VMSA: through the kernel mapping for one of the SVSM's own pages, else
 * (a guest page given by CREATE_VCPU) through this vCPU's window, private.
 */
function guestVmsaVa(k: Kernel, cpu: Vmpl0, gpa: number): number {
  const { base, size } = k.space.region;
  if (gpa >= base && gpa < base + size) return k.space.va(gpa);
  return k.space.mapWindow(cpu, GUEST_VMSA_SLOT, gpa, false);
}

/**
 * Asks the host to run the guest's VMPL (MSR protocol SNP_RUN_VMPL, as COCONUT does), or, when
 * this vCPU has no guest VMSA, to hold it. The VMGEXIT suspends VMPL0; the caller returns from
 * the entry point.
 */
export function runGuest(k: Kernel, cpu: Vmpl0): void {
  const pc = k.cpus[cpu.vcpuIndex];
  if (pc === undefined || pc.guestVmsa === null) {
    waitForGuestVmsa(cpu);
    return;
  }
  cpu.wrmsr(MSR.GHCB, RUN_VMPL_REQUESTS[k.boot.guestVmpl] ?? msrRunVmplRequest(k.boot.guestVmpl));
  if (cpu.vmgexit()) {
    // The host answered without switching: it has no guest VMSA registered for this vCPU.
    const r = decodeMsrProtocol(cpu.rdmsr(MSR.GHCB));
    k.log(cpu, `the host did not run VMPL${k.boot.guestVmpl} (${r.kind})`);
    waitForGuestVmsa(cpu);
  }
}

/**
 * Parks this vCPU in AP reset hold (GHCB MSR protocol 0x006) until an AP creation gives the host
 * something to run on it; no spinning. The VMGEXIT suspends VMPL0.
 */
export function waitForGuestVmsa(cpu: Vmpl0): void {
  cpu.wrmsr(MSR.GHCB, msrApResetHoldRequest());
  if (cpu.vmgexit()) {
    const r = decodeMsrProtocol(cpu.rdmsr(MSR.GHCB));
    throw new SvsmPanic(`the host did not hold vCPU ${cpu.vcpuIndex} (${r.kind})`);
  }
}

/** After the guest ran: restore the GHCB GPA in the MSR (it held the RUN_VMPL response). */
export function restoreGhcbMsr(pc: PerCpu, cpu: Vmpl0): void {
  if (pc.ghcb !== null) cpu.wrmsr(MSR.GHCB, BigInt(pc.ghcb.gpa));
}
