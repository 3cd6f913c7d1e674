import { describe, expect, it } from 'vitest';
import { VMSA } from '../arch/index.js';
import { PhysicalMemory, MIN_MEMORY_BYTES } from './memory.js';
import { Rmp } from './rmp.js';
import { Vcpu, VmrunError } from './vcpu.js';

function setup(): { mem: PhysicalMemory; rmp: Rmp; cpu: Vcpu } {
  const mem = new PhysicalMemory(MIN_MEMORY_BYTES);
  const rmp = new Rmp(mem.pageCount);
  return { mem, rmp, cpu: new Vcpu(0, mem, rmp) };
}

function writeVmsa(mem: PhysicalMemory, gpa: number, vmpl: number, rip: bigint): void {
  VMSA.on(mem.bytes, gpa)
    .set('efer', 0x1000n)
    .set('sevFeatures', 1n)
    .set('vmpl', vmpl)
    .set('rip', rip)
    .set('rax', 0x1234n);
}

describe('vCPU world switch through VMSA pages', () => {
  it('loads registers from the VMSA page on VMRUN and saves them back on #VMEXIT', () => {
    const { mem, rmp, cpu } = setup();
    writeVmsa(mem, 0x5000, 2, 0xfff0n);
    rmp.firmwareAssign(5, { validated: true, vmsa: true });
    expect(cpu.vmrun(0x5000)).toEqual({ gpa: 0x5000, vmpl: 2 });
    expect(cpu.regs.get('rip')).toBe(0xfff0n);
    cpu.regs.set('rax', 0xdeadn);
    // While the VMPL runs, the page still holds the state VMRUN loaded.
    expect(VMSA.get(mem.bytes, 'rax', 0x5000)).toBe(0x1234n);
    cpu.vmexit(0x403n, 1n, 2n);
    expect(VMSA.get(mem.bytes, 'rax', 0x5000)).toBe(0xdeadn);
    expect(VMSA.get(mem.bytes, 'guestExitCode', 0x5000)).toBe(0x403n);
    expect(VMSA.get(mem.bytes, 'guestExitInfo2', 0x5000)).toBe(2n);
    expect(cpu.running).toBeNull();
  });

  it('refuses pages the RMP does not mark as validated VMSA pages', () => {
    const { mem, rmp, cpu } = setup();
    writeVmsa(mem, 0x5000, 0, 0n);
    expect(() => cpu.vmrun(0x5000)).toThrow(/not a validated VMSA page/);
    rmp.firmwareAssign(5, { validated: true });
    expect(() => cpu.vmrun(0x5000)).toThrow(VmrunError);
    rmp.firmwareAssign(5, { validated: false, vmsa: true });
    expect(() => cpu.vmrun(0x5000)).toThrow(VmrunError);
    expect(() => cpu.vmrun(0x5008)).toThrow(/not a page/);
  });

  it('refuses a VMSA without EFER.SVME or SNPActive', () => {
    const { mem, rmp, cpu } = setup();
    writeVmsa(mem, 0x6000, 0, 0n);
    VMSA.set(mem.bytes, 'efer', 0n, 0x6000);
    rmp.firmwareAssign(6, { validated: true, vmsa: true });
    expect(() => cpu.vmrun(0x6000)).toThrow(/SVME/);
    VMSA.set(mem.bytes, 'efer', 0x1000n, 0x6000);
    VMSA.set(mem.bytes, 'sevFeatures', 0n, 0x6000);
    expect(() => cpu.vmrun(0x6000)).toThrow(/SNPActive/);
  });
});
