// A CVM whose VMPL2 vCPU runs real x86-64 machine code on the x86 engine, under our SVSM at VMPL0
// and the host: vCPU 0's scripted guest validates pages through the SVSM, writes page tables, the
// code and a 64-bit VMSA, and starts vCPU 1 on it with CREATE_VCPU; vCPU 1 then talks to the host
// with the GHCB MSR protocol (VMGEXIT), uses RMPADJUST, and ends in HLT, a termination request, an
// NPF or a shutdown. Registers and the VMSA are checked after the exits.
// WRMSR/RDMSR of the GHCB MSR are executed by the CPU itself (held in `Cpu.ghcbMsr` under
// SEV-ES, synced with the vCPU's at every exit).
import { describe, expect, it } from 'vitest';
import {
  MSR,
  VMSA,
  msrCpuidRequest,
  msrCpuidResponse,
  msrPscRequest,
  msrTerminateRequest,
} from '../src/arch/index.js';
import type { Machine } from '../src/hw/machine.js';
import { createTestCvm } from './support/cvm.js';
import {
  AP_VMSA,
  CODE,
  DATA,
  hex,
  mov,
  PAGE,
  RecordingX86Engine,
  startX86Ap,
} from './support/x86-ap.js';

/** Mapped with the C-bit clear: a shared access to a private page. */
const SHARED = 0x28000;

/** Loads the GHCB MSR with `value` (ECX = MSR, EDX:EAX = value) and writes it. */
const wrGhcb = (value: bigint) =>
  mov(1, MSR.GHCB) + mov(0, value & 0xffff_ffffn) + mov(2, value >> 32n) + '0f30';
const VMGEXIT = 'f30f01d9';
const RDMSR = '0f32';
const HLT = 'f4';

function x86Cvm(code: string) {
  let engine: RecordingX86Engine | null = null;
  const cvm = createTestCvm(
    (cpu) => startX86Ap(cpu, { shared: SHARED, writes: [[CODE, hex(code)]] }),
    {
      vcpus: 2,
      x86Vcpus: [1],
      x86Engine: (m: Machine) => (engine = new RecordingX86Engine(m)),
    },
  );
  const state = cvm.vm.run();
  const vmsa = VMSA.on(cvm.machine.trackedMemory().read(AP_VMSA, PAGE));
  return { cvm, state, vmsa, engine: engine! };
}

describe('an x86-64 guest at VMPL2 under the SVSM', () => {
  it('asks the host for CPUID over the GHCB MSR protocol, uses RMPADJUST, stores, and halts', () => {
    const code =
      wrGhcb(msrCpuidRequest(0, 1)) +
      VMGEXIT +
      RDMSR +
      '4189c4 4189d5' + // mov r12d,eax; mov r13d,edx
      mov(0, DATA) +
      '31c9' +
      mov(2, 0x103) + // VMPL3 may read DATA
      'f30f01fe 4189c6' + // rmpadjust; mov r14d,eax
      mov(3, DATA) +
      '4c892b' + // mov [rbx],r13
      HLT;
    const { cvm, state, vmsa, engine } = x86Cvm(code);
    expect(cvm.vm.termination).toBeNull();
    expect(state).toBe('stopped');
    expect(engine.faults).toEqual([]);
    // The host answered the MSR-protocol CPUID request: leaf 0 EBX = "Auth".
    const answer = msrCpuidResponse(1, 0x68747541);
    expect(vmsa.get('r12')).toBe(answer & 0xffff_ffffn);
    expect(vmsa.get('r13')).toBe(0x68747541n);
    expect(cvm.machine.vcpus[1]!.ghcbMsr[2]).toBe(answer);
    // RMPADJUST from VMPL2 granted VMPL3 read on the guest's page.
    expect(vmsa.get('r14')).toBe(0n);
    expect(cvm.machine.rmp.vmplPerms(DATA / PAGE)[2]).toBe(1);
    // The store reached private memory; the VMSA says HLT with RIP after it.
    expect(Buffer.from(cvm.machine.trackedMemory().read(DATA, 4)).readUInt32LE()).toBe(0x68747541);
    expect(vmsa.get('guestExitCode')).toBe(0x78n);
    expect(vmsa.get('rip')).toBe(BigInt(CODE + hex(code).length));
    expect(cvm.hostLog.some((l) => l.includes('vCPU 1 VMPL2 halted'))).toBe(true);
  });

  it('ends the VM with a GHCB MSR termination request', () => {
    const code = wrGhcb(msrTerminateRequest(1, 0x2a)) + VMGEXIT + HLT;
    const { cvm, state, vmsa } = x86Cvm(code);
    expect(state).toBe('terminated');
    expect(cvm.vm.termination?.byGuest).toBe(true);
    expect(vmsa.get('guestExitCode')).toBe(0x403n);
    expect(vmsa.get('rip')).toBe(BigInt(CODE + hex(code).length - 1));
  });

  it('a shared access to a private page is an NPF the host cannot fix: the VM ends', () => {
    const code = mov(3, SHARED) + '8b03' + HLT; // mov eax,[rbx]
    const { cvm, state, vmsa } = x86Cvm(code);
    expect(state).toBe('terminated');
    expect(cvm.vm.termination?.reason).toContain(`nested page fault at 0x${SHARED.toString(16)}`);
    expect(vmsa.get('guestExitCode')).toBe(0x400n);
    expect(vmsa.get('guestExitInfo2')).toBe(BigInt(SHARED));
    expect(vmsa.get('rip')).toBe(BigInt(CODE + 5));
  });

  it('a private access to a page made shared: NPF, the host makes it private, then #VC 0x404', () => {
    const page = 0x29000;
    const code =
      wrGhcb(msrPscRequest(page / PAGE, 2)) + // page-state change to shared
      VMGEXIT +
      mov(3, page) +
      '8b03' + // mov eax,[rbx] through a C-bit mapping
      HLT;
    const { cvm, state, engine } = x86Cvm(code);
    expect(cvm.vm.exitCounts.get('npf')).toBe(1);
    expect(cvm.machine.rmp.isAssigned(page / PAGE)).toBe(true);
    expect(engine.faults).toEqual([[29, 0x404]]);
    expect(state).toBe('terminated');
    expect(cvm.vm.termination?.reason).toContain('shut down');
  });

  it('CPUID raises #VC 0x72 in the guest; with no IDT the vCPU shuts down', () => {
    const code = '31c0 0fa2' + HLT;
    const { cvm, state, vmsa, engine } = x86Cvm(code);
    expect(engine.faults).toEqual([[29, 0x72]]);
    expect(state).toBe('terminated');
    expect(cvm.vm.termination?.reason).toContain('shut down');
    expect(vmsa.get('guestExitCode')).toBe(0x7fn);
  });
});
