// Per-vCPU page tables (reference/coconut-svsm.md section 5): every vCPU's VMPL0 CR3 is a PML4 of
// its own whose kernel entry is the same shared PDPT and whose windows entry is a PDPT of its own,
// so a window VA maps each vCPU's own page (its GHCB, its calling area) and nothing on the others.
import { describe, expect, it } from 'vitest';
import { SvsmProtocol, SVSM_VA, VMSA } from '../src/arch/index.js';
import { SvsmClient } from '../src/guest/svsm-client.js';
import { FAULT_NONE, FAULT_PF, Mmu, pagingRegisters } from '../src/hw/mmu.js';
import { ACCESS } from '../src/hw/rmp.js';
import { type TestCvm, createTestCvm } from './support/cvm.js';

const PAGE = 0x1000;
const SVSM_BASE = 0x200_0000;
const SVSM_END = 0x300_0000;
/** Window slot of the calling area the request loop keeps mapped (mm/guest-memory.ts). */
const CAA_SLOT = SVSM_VA.TEMP_SLOTS - 2;

const pml4Index = (va: number): number => Math.floor(va / 2 ** 39) % 512;

/** VMPL0 state of vCPU `i` as the machine holds it. */
function vmpl0State(cvm: TestCvm, i: number) {
  const gpa = cvm.vm.vcpus[i]!.vmsas[0]!;
  return VMSA.on(cvm.machine.physicalMemory().bytes.subarray(gpa, gpa + PAGE));
}

/** GPA of the PML4 that vCPU `i`'s VMPL0 CR3 names. */
function pml4Of(cvm: TestCvm, i: number): number {
  const cr3 = vmpl0State(cvm, i).get('cr3');
  return Number(cr3 & ((1n << BigInt(cvm.machine.cBit)) - 1n) & ~0xfffn);
}

function pml4Entry(cvm: TestCvm, pml4: number, va: number): bigint {
  const view = new DataView(cvm.machine.physicalMemory().bytes.buffer);
  return view.getBigUint64(pml4 + pml4Index(va) * 8, true);
}

/** Translates `va` with vCPU `i`'s VMPL0 paging registers, on an MMU with an empty TLB. */
function translate(cvm: TestCvm, i: number, va: number): { fault: number; gpa: number } {
  const s = vmpl0State(cvm, i);
  const regs = pagingRegisters(s.get('cr0'), s.get('cr3'), s.get('cr4'), s.get('efer'));
  const mmu = new Mmu(cvm.machine.physicalMemory(), cvm.machine.rmp, cvm.machine.cBit);
  const t = mmu.translate(regs, va, ACCESS.READ, 0, 0);
  return { fault: t.fault, gpa: t.gpa };
}

describe('per-vCPU page tables', () => {
  it('gives each vCPU its own PML4 with the kernel shared and the windows its own', () => {
    let answer: unknown = null;
    const cvm = createTestCvm(
      function* (cpu) {
        if (cpu.vcpuIndex !== 0) return;
        const svsm = new SvsmClient(
          cpu,
          SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))),
        );
        answer = yield* svsm.queryProtocol(SvsmProtocol.CORE, 1);
      },
      { vcpus: 2 },
    );
    cvm.vm.run();
    expect(cvm.vm.termination).toBeNull();
    expect(answer).toEqual({ minVersion: 1, maxVersion: 1 });
    expect(cvm.serial.join('\n')).toContain('vCPU 1 (APIC ID 1) online');

    // Two PML4s, both SVSM pages.
    const pml4s = [pml4Of(cvm, 0), pml4Of(cvm, 1)];
    expect(pml4s[0]).not.toBe(pml4s[1]);
    for (const p of pml4s) {
      expect(p).toBeGreaterThanOrEqual(SVSM_BASE);
      expect(p).toBeLessThan(SVSM_END);
    }
    // The kernel entry is the same PDPT in both; the windows entries are PDPTs of their own.
    const kernel = pml4s.map((p) => pml4Entry(cvm, p, SVSM_VA.KERNEL_BASE));
    const windows = pml4s.map((p) => pml4Entry(cvm, p, SVSM_VA.WINDOWS_BASE));
    expect(kernel[0]).not.toBe(0n);
    expect(kernel[0]).toBe(kernel[1]);
    expect(windows[0]).not.toBe(0n);
    expect(windows[1]).not.toBe(0n);
    expect(windows[0]).not.toBe(windows[1]);

    // The kernel region reads the same on both vCPUs.
    for (const i of [0, 1]) {
      expect(translate(cvm, i, SVSM_VA.KERNEL_BASE + 0x5000)).toEqual({
        fault: FAULT_NONE,
        gpa: SVSM_BASE + 0x5000,
      });
    }
    // The same shared-slot VA is each vCPU's own GHCB.
    const ghcbVa = SVSM_VA.WINDOWS_BASE + SVSM_VA.SHARED_FIRST_SLOT * PAGE;
    const ghcbs = [translate(cvm, 0, ghcbVa), translate(cvm, 1, ghcbVa)];
    expect(ghcbs.map((t) => t.fault)).toEqual([FAULT_NONE, FAULT_NONE]);
    expect(ghcbs[0]!.gpa).not.toBe(ghcbs[1]!.gpa);
    // vCPU 0 keeps its calling area mapped after the call; at that VA vCPU 1 has nothing.
    const caaVa = SVSM_VA.WINDOWS_BASE + CAA_SLOT * PAGE;
    expect(translate(cvm, 0, caaVa)).toEqual({ fault: FAULT_NONE, gpa: cvm.caaGpa });
    expect(translate(cvm, 1, caaVa).fault).toBe(FAULT_PF);
  });

  it("starts the VMSAs it builds (its APs', the guest's) in the INIT x87/SSE state, as COCONUT", () => {
    const cvm = createTestCvm(function* () {}, { vcpus: 2 });
    cvm.vm.run();
    expect(cvm.vm.termination).toBeNull();
    const ap = vmpl0State(cvm, 1);
    const guestGpa = cvm.vm.vcpus[0]!.vmsas[2]!;
    const guest = VMSA.on(cvm.machine.physicalMemory().bytes.subarray(guestGpa, guestGpa + PAGE));
    for (const v of [ap, guest]) {
      expect([v.get('mxcsr'), v.get('x87Fcw'), v.get('x87Ftw')]).toEqual([0x1f80, 0x40, 0x5555]);
    }
  });
});
