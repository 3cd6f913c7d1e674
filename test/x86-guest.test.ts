// A CVM whose VMPL2 vCPU runs real x86-64 machine code on the x86 engine, under our SVSM at VMPL0
// and the host: vCPU 0's scripted guest validates pages through the SVSM, writes page tables, the
// code and a 64-bit VMSA, and starts vCPU 1 on it with CREATE_VCPU; vCPU 1 then talks to the host
// with the GHCB MSR protocol (VMGEXIT), uses RMPADJUST, and ends in HLT, a termination request, an
// NPF or a shutdown. Registers and the VMSA are checked after the exits.
// WRMSR/RDMSR of the GHCB MSR are executed by the CPU itself (held in `Cpu.ghcbMsr` under
// SEV-ES, synced with the vCPU's at every exit).
import { describe, expect, it } from 'vitest';
import {
  type GuestCpu,
  MSR,
  PvalidatePageSize,
  VMSA,
  msrCpuidRequest,
  msrCpuidResponse,
  msrPscRequest,
  msrTerminateRequest,
} from '../src/arch/index.js';
import { SvsmClient } from '../src/guest/svsm-client.js';
import type { Cpu } from '../src/hw/cpu/cpu.js';
import type { VmExit } from '../src/hw/engine.js';
import { X86Engine } from '../src/hw/engines/x86-engine.js';
import type { Machine } from '../src/hw/machine.js';
import type { Vcpu } from '../src/hw/vcpu.js';
import { createTestCvm } from './support/cvm.js';

const PAGE = 0x1000;
const C_BIT = 1n << 51n;
const AP_VMSA = 0x11000;
const AP_CAA = 0x12000;
const PML4 = 0x20000; // then PDPT, PD, PT
const CODE = 0x24000;
const DATA = 0x25000;
const STACK = 0x26000;
/** Mapped with the C-bit clear: a shared access to a private page. */
const SHARED = 0x28000;
const VALIDATED = [
  AP_VMSA,
  AP_CAA,
  PML4,
  PML4 + PAGE,
  PML4 + 2 * PAGE,
  PML4 + 3 * PAGE,
  CODE,
  DATA,
  STACK,
];

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const imm32 = (v: number | bigint) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(Number(BigInt(v) & 0xffff_ffffn));
  return b.toString('hex');
};
/** mov r32, imm32 for EAX (0), ECX (1), EDX (2), EBX (3). */
const mov = (reg: number, v: number | bigint) => (0xb8 + reg).toString(16) + imm32(v);
/** Loads the GHCB MSR with `value` (ECX = MSR, EDX:EAX = value) and writes it. */
const wrGhcb = (value: bigint) =>
  mov(1, MSR.GHCB) + mov(0, value & 0xffff_ffffn) + mov(2, value >> 32n) + '0f30';
const VMGEXIT = 'f30f01d9';
const RDMSR = '0f32';
const HLT = 'f4';

/** The test's x86 engine: records the exceptions the guest raises before delivering them. */
class TestEngine extends X86Engine {
  readonly faults: [number, number][] = [];
  protected override guestException(c: Cpu, vcpu: Vcpu): VmExit | null {
    this.faults.push([c.exVector, c.exErrorCode]);
    return super.guestException(c, vcpu);
  }
}

/** vCPU 0: prepares memory and a 64-bit VMSA for vCPU 1 running `code`, and starts it. */
function* bsp(cpu: GuestCpu, code: string): Generator<void, void, void> {
  const svsm = new SvsmClient(cpu, SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))));
  const r = yield* svsm.pvalidate(
    VALIDATED.map((gpa) => ({
      gfn: gpa / PAGE,
      pageSize: PvalidatePageSize.SIZE_4K,
      validate: true,
      ignoreCf: false,
    })),
  );
  if (r.rax !== 0n) throw new Error(`PVALIDATE failed: ${r.rax}`);
  const q = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  for (let l = 0; l < 3; l++)
    cpu.write(PML4 + l * PAGE, q(BigInt(PML4 + (l + 1) * PAGE) | C_BIT | 3n));
  const pt = new Uint8Array(PAGE);
  for (let i = 0; i < 512; i++) {
    new DataView(pt.buffer).setBigUint64(
      i * 8,
      BigInt(i * PAGE) | (i * PAGE === SHARED ? 0n : C_BIT) | 3n,
      true,
    );
  }
  cpu.write(PML4 + 3 * PAGE, pt);
  cpu.write(CODE, hex(code));
  const page = VMSA.alloc();
  VMSA.set(page, 'cs.selector', 8);
  VMSA.set(page, 'cs.attrib', 0x29b); // 64-bit code segment
  VMSA.on(page)
    .set('vmpl', cpu.vmpl)
    .set('efer', 0x1d00n) // SVME, LME, LMA, NXE
    .set('cr0', 0x8001_0033n)
    .set('cr4', 0x20n)
    .set('cr3', BigInt(PML4) | C_BIT)
    .set('rflags', 2n)
    .set('rip', BigInt(CODE))
    .set('rsp', BigInt(STACK + PAGE))
    .set('sevFeatures', cpu.rdmsr(MSR.SEV_STATUS) >> 2n);
  cpu.write(AP_VMSA, page);
  const created = yield* svsm.createVcpu(AP_VMSA, AP_CAA, 1);
  if (created !== 0n) throw new Error(`CREATE_VCPU failed: 0x${created.toString(16)}`);
}

function x86Cvm(code: string) {
  let engine: TestEngine | null = null;
  const cvm = createTestCvm((cpu) => bsp(cpu, code), {
    vcpus: 2,
    x86Vcpus: [1],
    x86Engine: (m: Machine) => (engine = new TestEngine(m)),
  });
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
