// One pass of a vCPU's request loop, run each time the guest enters VMPL0: if the guest's VMSA
// shows a VMGEXIT and its calling area has call_pending set, the call is taken from the guest's
// registers, dispatched to its protocol, and the results written back; then the guest runs again.

import {
  MSR,
  SvsmProtocol,
  SvsmResult,
  VMSA,
  decodeMsrProtocol,
  decodeSvsmCallRax,
  msrRunVmplRequest,
  type Vmpl0,
} from '../../arch/index.js';
import type { Kernel, PerCpu } from '../kernel.js';
import { GuestMemoryFault } from '../mm/guest-memory.js';
import { attestProtocol } from '../protocols/attest.js';
import type { ProtocolHandler, SvsmCall } from '../protocols/call.js';
import { coreProtocol } from '../protocols/core.js';

const SVM_EXIT_VMGEXIT = 0x403n;

const PROTOCOLS: ReadonlyMap<number, ProtocolHandler> = new Map([
  [SvsmProtocol.CORE, coreProtocol],
  [SvsmProtocol.ATTEST, attestProtocol],
]);

/** Handles a pending call, if any, on this vCPU. */
export function serviceGuest(k: Kernel, cpu: Vmpl0, pc: PerCpu): void {
  if (pc.guestVmsa === null || pc.caa === null) return;
  const vmsa = k.space.va(pc.guestVmsa);
  const reg = (name: 'rax' | 'rcx' | 'rdx' | 'r8' | 'guestExitCode'): number =>
    vmsa + VMSA.offset(name);
  if (cpu.readU64(reg('guestExitCode')) !== SVM_EXIT_VMGEXIT) return;
  let pending: number;
  try {
    pending = k.guest.readU8(cpu, pc.caa);
    if (pending !== 0) k.guest.writeU8(cpu, pc.caa, 0);
  } catch (e) {
    // A calling area the guest made inaccessible holds no call.
    if (e instanceof GuestMemoryFault) return;
    throw e;
  }
  if (pending !== 1) return;
  const { protocol, call } = decodeSvsmCallRax(cpu.readU64(reg('rax')));
  const c: SvsmCall = {
    k,
    cpu,
    pc,
    call,
    rcx: cpu.readU64(reg('rcx')),
    rdx: cpu.readU64(reg('rdx')),
    r8: cpu.readU64(reg('r8')),
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
  cpu.writeU64(reg('rax'), BigInt(result));
  cpu.writeU64(reg('rcx'), c.rcx);
  cpu.writeU64(reg('rdx'), c.rdx);
  cpu.writeU64(reg('r8'), c.r8);
}

/**
 * Asks the host to run the guest's VMPL (MSR protocol SNP_RUN_VMPL, as COCONUT does). The VMGEXIT
 * suspends VMPL0; the caller returns from the entry point.
 */
export function runGuest(k: Kernel, cpu: Vmpl0): void {
  cpu.wrmsr(MSR.GHCB, msrRunVmplRequest(k.boot.guestVmpl));
  if (cpu.vmgexit()) {
    // The host answered without switching: the guest VMSA is not registered.
    const r = decodeMsrProtocol(cpu.rdmsr(MSR.GHCB));
    k.log(cpu, `the host did not run VMPL${k.boot.guestVmpl} (${r.kind})`);
  }
}

/** After the guest ran: restore the GHCB GPA in the MSR (it held the RUN_VMPL response). */
export function restoreGhcbMsr(pc: PerCpu, cpu: Vmpl0): void {
  if (pc.ghcb !== null) cpu.wrmsr(MSR.GHCB, BigInt(pc.ghcb.gpa));
}
