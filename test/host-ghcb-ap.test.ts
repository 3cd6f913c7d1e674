// AP_HLT_LOOP, AP_JUMP_TABLE and GET_APIC_IDS through the GHCB, the answer to an exit code nobody
// defined, and the hypervisor features the host advertises: a scripted VMPL2 guest makes the
// exits, honest and hostile. Facts: reference/sev-snp-abi.md 6.1-6.3, KVM `sev_handle_vmgexit`.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GHCB,
  GHCB_ERR,
  GHCB_HV_FEATURES,
  MSR,
  msrPscRequest,
  PSC_OP,
  SW_EXITCODE,
} from '../src/arch/index.js';
import { apicIdListSize } from '../src/host/exits/ap.js';
import { HOST_HV_FEATURES } from '../src/host/ghcb-msr-protocol.js';
import {
  type Answer,
  GHCB_GPA,
  ghcbExit,
  OUTSIDE_GPA,
  runGhcbGuest,
} from './support/ghcb-guest.js';

const INVALID_INPUT = [2n, BigInt(GHCB_ERR.INVALID_INPUT)];
const pair = (a: Answer): bigint[] => [a.info1, a.info2];

describe('AP_JUMP_TABLE', () => {
  it('keeps what the guest sets and returns it; other requests are INVALID_INPUT', () => {
    const got: Answer[] = [];
    runGhcbGuest(function* (cpu) {
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.AP_JUMP_TABLE, 1n, 0n));
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.AP_JUMP_TABLE, 0n, 0x9_f000n));
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.AP_JUMP_TABLE, 1n, 0xdeadn));
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.AP_JUMP_TABLE, 2n, 0x1234n));
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.AP_JUMP_TABLE, 1n << 63n, 0n));
      // Any value is kept as given: the host never reads through it.
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.AP_JUMP_TABLE, 0n, (1n << 64n) - 1n));
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.AP_JUMP_TABLE, 1n, 0n));
    });
    expect(got.map(pair)).toEqual([
      [0n, 0n],
      [0n, 0n],
      [0n, 0x9_f000n],
      INVALID_INPUT,
      INVALID_INPUT,
      [0n, 0n],
      [0n, (1n << 64n) - 1n],
    ]);
  });
});

describe('GET_APIC_IDS', () => {
  function listAt(page: Uint8Array): number[] {
    const v = new DataView(page.buffer, page.byteOffset);
    const n = v.getUint32(0, true);
    return Array.from({ length: n }, (_, i) => v.getUint32(4 + 4 * i, true));
  }

  it('returns every vCPU APIC ID after the page-count retry', () => {
    const got: Answer[] = [];
    let list: Uint8Array | null = null;
    let untouched: Uint8Array | null = null;
    runGhcbGuest(
      function* (cpu) {
        cpu.write(OUTSIDE_GPA, new Uint8Array(0x1000).fill(0xee), true);
        // Zero pages: RAX comes back with the pages needed, the buffer is not written.
        got.push(
          yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, BigInt(OUTSIDE_GPA), 0n, { rax: 0n }),
        );
        untouched = cpu.read(OUTSIDE_GPA, 0x1000, true);
        const pages = got[0]!.reg('rax')!;
        got.push(
          yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, BigInt(OUTSIDE_GPA), 0n, { rax: pages }),
        );
        list = cpu.read(OUTSIDE_GPA, 0x1000, true);
      },
      { vcpus: 3 },
    );
    expect(pair(got[0]!)).toEqual([0n, 0n]);
    expect(got[0]!.reg('rax')).toBe(1n);
    expect(untouched!.every((b) => b === 0xee)).toBe(true);
    expect(pair(got[1]!)).toEqual([0n, 0n]);
    expect(listAt(list!)).toEqual([0, 1, 2]);
    // Bytes past the list are the guest's own.
    expect(list![apicIdListSize(3)]).toBe(0xee);
  });

  it('refuses a missing page count, a misaligned, private or out-of-memory buffer', () => {
    const got: Answer[] = [];
    runGhcbGuest(function* (cpu) {
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, BigInt(OUTSIDE_GPA), 0n));
      got.push(
        yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, BigInt(OUTSIDE_GPA + 8), 0n, { rax: 1n }),
      );
      // A private page: the host cannot write it.
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, 0x6_0000n, 0n, { rax: 1n }));
      got.push(yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, 1n << 52n, 0n, { rax: 1n }));
      got.push(
        yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, (1n << 64n) - 0x1000n, 0n, { rax: 1n }),
      );
    });
    expect(got.map(pair)).toEqual([
      [2n, BigInt(GHCB_ERR.MISSING_INPUT)],
      INVALID_INPUT,
      INVALID_INPUT,
      INVALID_INPUT,
      INVALID_INPUT,
    ]);
  });

  it('answers random inputs with success, a retry or INVALID_INPUT and writes only shared pages', () => {
    const u64 = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.constantFrom(0n, 1n, 2n, BigInt(OUTSIDE_GPA), BigInt(GHCB_GPA), 0x6_0000n),
    );
    const cases = fc.sample(fc.record({ gpa: u64, pages: u64 }), { numRuns: 200, seed: 17 });
    const got: Answer[] = [];
    let rmpBefore: Uint32Array | null = null;
    let rmpAfter: Uint32Array | null = null;
    runGhcbGuest(
      function* (cpu, cvm) {
        const snapshot = (): Uint32Array => cvm.machine.rmp.entries;
        rmpBefore = Uint32Array.from(snapshot());
        for (const c of cases)
          got.push(yield* ghcbExit(cpu, SW_EXITCODE.GET_APIC_IDS, c.gpa, 0n, { rax: c.pages }));
        rmpAfter = Uint32Array.from(snapshot());
      },
      { vcpus: 2 },
    );
    cases.forEach((c, i) => {
      const a = got[i]!;
      if (c.pages === 0n) {
        expect(pair(a)).toEqual([0n, 0n]);
        expect(a.reg('rax')).toBe(1n);
      } else if (a.info1 === 0n) {
        expect(c.gpa === BigInt(OUTSIDE_GPA) || c.gpa === BigInt(GHCB_GPA)).toBe(true);
      } else {
        expect(pair(a)).toEqual(INVALID_INPUT);
      }
    });
    expect(rmpAfter).toEqual(rmpBefore);
  });
});

describe('AP_HLT_LOOP', () => {
  it('parks the vCPU until something gives it a VMSA, answering EXITINFO2 = 1', () => {
    let after = false;
    const cvm = runGhcbGuest(function* (cpu) {
      yield* ghcbExit(cpu, SW_EXITCODE.AP_HLT_LOOP, 0n, 0n);
      after = true;
    });
    expect(cvm.vm.state).toBe('stopped');
    expect(after).toBe(false);
    expect(cvm.vm.vcpus[0]!.next).toBeNull();
    const page = cvm.machine.hypervisorMemory.read(GHCB_GPA, 0x1000);
    expect(GHCB.get(page, 'swExitInfo1')).toBe(0n);
    expect(GHCB.get(page, 'swExitInfo2')).toBe(1n);
    expect(cvm.hostLog.some((l) => /vCPU 0 VMPL2 parked/.test(l))).toBe(true);
  });
});

describe('AP_HLT_LOOP with garbage around it', () => {
  it('takes no inputs: whatever EXITINFO1/2 and registers say, the vCPU parks and nothing else', () => {
    const cases = fc.sample(
      fc.record({
        info1: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        info2: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        rax: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      }),
      { numRuns: 20, seed: 11 },
    );
    for (const c of cases) {
      let after = false;
      let rmpBefore: Uint32Array | null = null;
      const cvm = runGhcbGuest(function* (cpu, self) {
        rmpBefore = Uint32Array.from(self.machine.rmp.entries);
        yield* ghcbExit(cpu, SW_EXITCODE.AP_HLT_LOOP, c.info1, c.info2, { rax: c.rax });
        after = true;
      });
      expect(after).toBe(false);
      expect(cvm.vm.state).toBe('stopped');
      const page = cvm.machine.hypervisorMemory.read(GHCB_GPA, 0x1000);
      expect([GHCB.get(page, 'swExitInfo1'), GHCB.get(page, 'swExitInfo2')]).toEqual([0n, 1n]);
      // RAX is not an output of this exit: the guest's value stays.
      expect(GHCB.get(page, 'rax')).toBe(c.rax);
      expect(cvm.machine.rmp.entries).toEqual(rmpBefore);
    }
  });
});

describe('exit codes the host does not implement', () => {
  it('answers them as KVM does: EXITINFO1 = 2, EXITINFO2 = INVALID_EVENT, nothing else changed', () => {
    const codes = fc.sample(
      fc.oneof(
        fc.constantFrom(
          SW_EXITCODE.HV_DOORBELL_PAGE,
          SW_EXITCODE.HV_IPI,
          SW_EXITCODE.SAVIC,
          SW_EXITCODE.RDPMC,
          SW_EXITCODE.EXCP_AC,
          0x8000_0099,
          0x1_0000_0072,
        ),
        fc.integer({ min: 0x8000_0020, max: 0x8000_fff0 }),
      ),
      { numRuns: 60, seed: 3 },
    );
    const got: Answer[] = [];
    runGhcbGuest(function* (cpu) {
      for (const c of codes) got.push(yield* ghcbExit(cpu, c, 0n, 0n));
    });
    for (const a of got) expect(pair(a)).toEqual([2n, BigInt(GHCB_ERR.INVALID_EVENT)]);
  });

  it('ends the VM when the guest reports an unsupported event', () => {
    const cvm = runGhcbGuest(
      function* (cpu) {
        yield* ghcbExit(cpu, SW_EXITCODE.UNSUPPORTED, 0x29n, 0n);
      },
      {},
      false,
    );
    expect(cvm.vm.termination?.reason).toMatch(/unsupported event: EXITINFO1 0x29/);
  });
});

describe('hypervisor features', () => {
  it('advertises exactly what is implemented, through the GHCB and the MSR protocol', () => {
    let viaGhcb: Answer | null = null;
    let viaMsr = 0n;
    runGhcbGuest(function* (cpu) {
      viaGhcb = yield* ghcbExit(cpu, SW_EXITCODE.HV_FEATURES, 0n, 0n);
      cpu.wrmsr(MSR.GHCB, 0x080n);
      yield* cpu.vmgexit();
      viaMsr = cpu.rdmsr(MSR.GHCB);
      // Back to the GHCB page for the run's end.
      cpu.wrmsr(MSR.GHCB, msrPscRequest(GHCB_GPA / 0x1000, PSC_OP.SHARED));
      yield* cpu.vmgexit();
    });
    expect(GHCB_HV_FEATURES.describe(HOST_HV_FEATURES)).toBe('snp|apCreation|apicIdList|multiVmpl');
    expect(pair(viaGhcb!)).toEqual([0n, HOST_HV_FEATURES]);
    expect(viaMsr).toBe((HOST_HV_FEATURES << 12n) | 0x081n);
  });
});
