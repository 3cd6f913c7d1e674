// The x2APIC of each vCPU through RDMSR/WRMSR #VC exits forwarded as GHCB MSR exits, as Linux
// uses it under SNP (reference/linux-snp-guest.md sections 3.7 and 4): a scripted guest at VMPL2
// makes its GHCB shared, switches APIC_BASE to x2APIC mode and talks to MSRs 0x800-0x8FF. Facts:
// Intel SDM vol. 3A 11.12 (x2APIC), KVM lapic.c.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  clearValid,
  exceptionEvent,
  GHCB,
  type GuestCpu,
  markValid,
  MSR,
  msrPscRequest,
  msrRegisterGpaRequest,
  PSC_OP,
  SW_EXITCODE,
  X2APIC_MSR as A,
} from '../src/arch/index.js';
import { platformOf } from '../src/host/devices/platform.js';
import {
  apicBaseWriteAllowed,
  timerDivisor,
  X2APIC_VERSION,
  X2apics,
} from '../src/host/devices/x2apic.js';
import type { Machine } from '../src/hw/machine.js';
import { createTestCvm, type TestCvm } from './support/cvm.js';

const GHCB_GPA = 0x5_0000;
const GP = exceptionEvent(13);
const X2APIC_ON = 0xfee0_0d00n; // base, EN, EXTD, BSP

/** One MSR exit's answer: [EXITINFO1, EXITINFO2] and the value read (RDX:RAX), if any. */
interface MsrAnswer {
  readonly status: bigint[];
  readonly value: bigint | undefined;
}

function* msrExit(cpu: GuestCpu, msr: number, write?: bigint): Generator<void, MsrAnswer, void> {
  const page = new Uint8Array(0x1000);
  const g = GHCB.on(page);
  g.set('protocolVersion', 2);
  clearValid(page);
  g.set('swExitCode', BigInt(SW_EXITCODE.MSR));
  g.set('swExitInfo1', write === undefined ? 0n : 1n).set('swExitInfo2', 0n);
  g.set('rcx', BigInt(msr));
  const fields = ['swExitCode', 'swExitInfo1', 'swExitInfo2', 'rcx'] as const;
  for (const f of fields) markValid(page, f);
  if (write !== undefined) {
    g.set('rax', write & 0xffff_ffffn).set('rdx', write >> 32n);
    markValid(page, 'rax');
    markValid(page, 'rdx');
  }
  cpu.write(GHCB_GPA, page, true);
  cpu.wrmsr(MSR.GHCB, BigInt(GHCB_GPA));
  yield* cpu.vmgexit();
  const after = GHCB.on(cpu.read(GHCB_GPA, 0x1000, true));
  const status = [after.get('swExitInfo1'), after.get('swExitInfo2')];
  const value =
    write === undefined && status[0] === 0n
      ? (after.get('rdx') << 32n) | after.get('rax')
      : undefined;
  return { status, value };
}

/** A guest's view of its APIC: rd/wr through the GHCB, and the machine to move virtual time. */
interface Guest {
  rd(msr: number): Generator<void, bigint, void>;
  wr(msr: number, value: bigint): Generator<void, void, void>;
  raw(msr: number, write?: bigint): Generator<void, MsrAnswer, void>;
  readonly machine: Machine;
  readonly cpu: GuestCpu;
}

/** Runs `body` on vCPU 0 of a fresh CVM after GHCB set-up and the switch to x2APIC mode. */
function runGuest(
  body: (g: Guest) => Generator<void, void, void>,
  o: { vcpus?: number; x2apic?: boolean; before?: (cvm: TestCvm) => void } = {},
): TestCvm {
  const box: { machine?: Machine } = {};
  const cvm = createTestCvm(
    function* (cpu) {
      cpu.wrmsr(MSR.GHCB, msrPscRequest(GHCB_GPA / 0x1000, PSC_OP.SHARED));
      yield* cpu.vmgexit();
      cpu.wrmsr(MSR.GHCB, msrRegisterGpaRequest(GHCB_GPA / 0x1000));
      yield* cpu.vmgexit();
      const raw = (msr: number, write?: bigint) => msrExit(cpu, msr, write);
      const g: Guest = {
        raw,
        *rd(msr) {
          const a = yield* raw(msr);
          if (a.value === undefined) throw new Error(`RDMSR 0x${msr.toString(16)} failed`);
          return a.value;
        },
        *wr(msr, value) {
          const a = yield* raw(msr, value);
          if (a.status[0] !== 0n) throw new Error(`WRMSR 0x${msr.toString(16)} failed`);
        },
        machine: box.machine!,
        cpu,
      };
      if (o.x2apic !== false) yield* g.wr(MSR.APIC_BASE, X2APIC_ON);
      yield* body(g);
    },
    { vcpus: o.vcpus ?? 1 },
  );
  box.machine = cvm.machine;
  o.before?.(cvm);
  cvm.vm.run();
  expect(cvm.vm.termination).toBeNull();
  expect(cvm.hostLog.filter((l) => l.includes('unhandled'))).toEqual([]);
  return cvm;
}

const bit = (v: number): [number, bigint] => [A.IRR0 + (v >> 5), 1n << BigInt(v & 31)];

describe('x2APIC registers through the GHCB MSR exit', () => {
  it('answers ID, version, LDR and SVR, and #GP outside x2APIC mode', () => {
    const got: Record<string, bigint | MsrAnswer> = {};
    runGuest(function* (g) {
      got.id = yield* g.rd(A.ID);
      got.version = yield* g.rd(A.VERSION);
      got.ldr = yield* g.rd(A.LDR);
      got.svr = yield* g.rd(A.SVR);
      got.lvtt = yield* g.rd(A.LVT_TIMER);
      got.base = yield* g.rd(MSR.APIC_BASE);
      // x2APIC -> xAPIC is illegal; x2APIC -> disabled -> xAPIC is the way back.
      got.toXapic = yield* g.raw(MSR.APIC_BASE, 0xfee0_0900n);
      yield* g.wr(MSR.APIC_BASE, 0xfee0_0100n);
      got.disabledId = yield* g.raw(A.ID);
      got.toX2apic = yield* g.raw(MSR.APIC_BASE, X2APIC_ON); // disabled -> x2APIC: illegal
      got.invalid = yield* g.raw(MSR.APIC_BASE, 0xfee0_0500n); // EXTD without EN
      yield* g.wr(MSR.APIC_BASE, 0xfee0_0900n);
      got.xapicId = yield* g.raw(A.ID);
    });
    expect(got.id).toBe(0n);
    expect(got.version).toBe(BigInt(X2APIC_VERSION));
    expect(got.ldr).toBe(1n); // cluster 0, bit 0
    expect(got.svr).toBe(0xffn);
    expect(got.lvtt).toBe(0x1_0000n);
    expect(got.base).toBe(X2APIC_ON);
    for (const k of ['toXapic', 'disabledId', 'toX2apic', 'invalid', 'xapicId'])
      expect((got[k] as MsrAnswer).status, k).toEqual([1n, GP]);
  });

  it('injects #GP for reserved, absent, read-only and write-only registers and reserved bits', () => {
    const got: Record<string, MsrAnswer> = {};
    runGuest(function* (g) {
      for (const r of [0x800, 0x801, 0x804, 0x809, 0x80c, 0x80e, 0x82f, 0x831, 0x83a, 0x840, 0x8ff])
        got[`read ${r.toString(16)}`] = yield* g.raw(r);
      for (const r of [A.EOI, A.SELF_IPI]) got[`read ${r.toString(16)}`] = yield* g.raw(r);
      for (const r of [A.ID, A.VERSION, A.PPR, A.LDR, A.ISR0, A.TMR0 + 3, A.IRR0 + 7, 0x839])
        got[`write ${r.toString(16)}`] = yield* g.raw(r, 0n);
      got['write 80e (DFR)'] = yield* g.raw(0x80e, 0n);
      got['EOI 1'] = yield* g.raw(A.EOI, 1n);
      got['ESR 1'] = yield* g.raw(A.ESR, 1n);
      got['TPR bit 32'] = yield* g.raw(A.TPR, 1n << 32n);
      got['ICR bit 13'] = yield* g.raw(A.ICR, 0x2000n | 0x40n);
      got['ICR bit 20'] = yield* g.raw(A.ICR, 0x10_0000n | 0x40n);
      // Without TSC-deadline in CPUID (the default model), IA32_TSC_DEADLINE does not exist.
      got['read 6e0'] = yield* g.raw(MSR.TSC_DEADLINE);
      got['write 6e0'] = yield* g.raw(MSR.TSC_DEADLINE, 1n);
    });
    for (const [k, a] of Object.entries(got)) expect(a.status, k).toEqual([1n, GP]);
  });

  it('computes the PPR from TPR and ISR, and EOI clears the highest in-service vector', () => {
    const got: Record<string, bigint | number> = {};
    const cvm = runGuest(
      function* (g) {
        yield* g.wr(A.SVR, 0x1ffn);
        yield* g.wr(A.TPR, 0x35n);
        got.tpr = yield* g.rd(A.TPR);
        got.ppr = yield* g.rd(A.PPR); // no ISR: PPR = TPR
      },
      {
        before: (c) => {
          // Two vectors in service (as if taken by an injection step): 0x61 and 0x52.
          const apic = platformOf(c.vm).apics.apics[0]!;
          apic.isr.set(0x61);
          apic.isr.set(0x52);
        },
      },
    );
    expect(got.tpr).toBe(0x35n);
    expect(got.ppr).toBe(0x60n); // ISRV class 6 > TPR class 3
    const apic = platformOf(cvm.vm).apics.apics[0]!;
    apic.tpr = 0x75;
    expect(apic.ppr).toBe(0x75); // TPR class 7 >= ISRV class 6: PPR = TPR, low bits too
    apic.tpr = 0;

    const got2: Record<string, bigint> = {};
    runGuest(
      function* (g) {
        got2.isrBefore = yield* g.rd(A.ISR0 + 3); // vectors 0x60-0x7F
        got2.pprBefore = yield* g.rd(A.PPR);
        yield* g.wr(A.EOI, 0n);
        got2.isr3 = yield* g.rd(A.ISR0 + 3);
        got2.isr2 = yield* g.rd(A.ISR0 + 2);
        got2.ppr = yield* g.rd(A.PPR);
        yield* g.wr(A.EOI, 0n);
        got2.isr2After = yield* g.rd(A.ISR0 + 2);
        got2.pprAfter = yield* g.rd(A.PPR);
        yield* g.wr(A.EOI, 0n); // nothing in service: no effect
      },
      {
        before: (c) => {
          const a = platformOf(c.vm).apics.apics[0]!;
          a.isr.set(0x61);
          a.isr.set(0x52);
        },
      },
    );
    expect(got2.isrBefore).toBe(1n << 1n);
    expect(got2.pprBefore).toBe(0x60n);
    expect(got2.isr3).toBe(0n);
    expect(got2.isr2).toBe(1n << 18n);
    expect(got2.ppr).toBe(0x50n);
    expect(got2.isr2After).toBe(0n);
    expect(got2.pprAfter).toBe(0n);
  });
});

describe('IPIs through the ICR', () => {
  it('lands a self-IPI (ICR shorthand and SELF IPI register) in the IRR; illegal vectors set ESR', () => {
    const got: Record<string, bigint | number> = {};
    const events: number[][] = [];
    const cvm = runGuest(function* (g) {
      // NMIs are injected whatever IF says: the guest needs a handler for its own.
      g.cpu.onInterrupt = function* (vector, type) {
        events.push([vector, type]);
        yield* g.raw(A.ID); // the handler's own exits nest inside the interrupted code
      };
      yield* g.wr(A.ICR, (1n << 18n) | 0x30n);
      got.irrDisabled = yield* g.rd(bit(0x30)[0]); // software-disabled APIC drops fixed IPIs
      yield* g.wr(A.SVR, 0x1ffn);
      yield* g.wr(A.ICR, (1n << 18n) | 0x41n); // fixed, self
      yield* g.wr(A.SELF_IPI, 0xe3n);
      yield* g.wr(A.ICR, 0x0000_0000_0000_0072n); // fixed, physical destination 0 (itself)
      got.irr2 = yield* g.rd(A.IRR0 + 2);
      got.irr3 = yield* g.rd(A.IRR0 + 3);
      got.irr7 = yield* g.rd(A.IRR0 + 7);
      got.icr = yield* g.rd(A.ICR);
      yield* g.wr(A.ICR, (1n << 18n) | 0x05n); // vector 5: illegal
      yield* g.wr(A.ESR, 0n);
      got.esr = yield* g.rd(A.ESR);
      yield* g.wr(A.ICR, (1n << 18n) | 0x400n); // NMI to self
      got.afterNmi = yield* g.rd(A.ID);
    });
    // The NMI went in at the VMRUN after the ICR write (EVENTINJ type 2, vector 2); the fixed
    // vectors stay pending: the guest runs with IF clear.
    expect(events).toEqual([[2, 2]]);
    expect(got.irrDisabled).toBe(0n);
    expect(got.irr2).toBe(1n << 1n); // 0x41
    expect(got.irr3).toBe(1n << 18n); // 0x72
    expect(got.irr7).toBe(1n << 3n); // 0xE3
    expect(got.icr).toBe(0x72n);
    expect(got.esr).toBe(0x20n);
    const apics = platformOf(cvm.vm).apics;
    expect(apics.highestPending(0)).toBe(0xe3);
    expect(apics.takeNmi(0)).toBe(false);
    // The injection step's view: TPR masks classes at or below it; acknowledge moves IRR to ISR.
    const apic = apics.apics[0]!;
    apic.tpr = 0xe0;
    expect(apics.highestPending(0)).toBe(-1);
    apic.tpr = 0x40;
    expect(apics.highestPending(0)).toBe(0xe3);
    apic.acknowledge(0xe3);
    expect(apics.highestPending(0)).toBe(-1); // 0x72 is below the in-service 0xE3
    apic.eoi();
    expect(apics.highestPending(0)).toBe(0x72);
    apic.tpr = 0x70;
    expect(apics.highestPending(0)).toBe(-1);
  });

  it("delivers a fixed IPI to vCPU 1's IRR (physical and logical), and NMIs", () => {
    const got: Record<string, bigint> = {};
    const cvm = runGuest(
      function* (g) {
        yield* g.wr(A.SVR, 0x1ffn);
        yield* g.wr(A.ICR, (1n << 32n) | 0x51n); // physical destination 1
        yield* g.wr(A.ICR, (1n << 32n) | 0x800n | 0x62n); // logical: cluster 0, bit 0 = APIC 0
        yield* g.wr(A.ICR, (2n << 32n) | 0x800n | 0x63n); // logical: cluster 0, bit 1 = APIC 1
        yield* g.wr(A.ICR, (3n << 18n) | 0x64n); // all but self
        yield* g.wr(A.ICR, (5n << 32n) | 0x65n); // nobody has APIC ID 5
        yield* g.wr(A.ICR, (1n << 32n) | 0x400n); // NMI to vCPU 1
        got.own = yield* g.rd(A.IRR0 + 3);
      },
      {
        vcpus: 2,
        // vCPU 1 does not run in this test; its APIC is software-enabled as its kernel would.
        before: (c) => void platformOf(c.vm).apics.apics[1]!.write(A.SVR, 0x1ffn),
      },
    );
    const apics = platformOf(cvm.vm).apics;
    expect(got.own).toBe(1n << 2n); // 0x62 only
    expect([...apics.apics[1]!.irr.words]).toEqual([
      0,
      0,
      1 << 17,
      (1 << 3) | (1 << 4),
      0,
      0,
      0,
      0,
    ]);
    expect(apics.highestPending(1)).toBe(0x64);
    expect(apics.takeNmi(1)).toBe(true);
    expect(apics.takeNmi(0)).toBe(false);
    expect(apics.highestPending(7)).toBe(-1);
  });
});

describe('the APIC timer on virtual time', () => {
  it('counts down from the initial count at TSC / divisor; one-shot expiry pends the LVT vector', () => {
    const got: Record<string, bigint> = {};
    const cvm = runGuest(function* (g) {
      yield* g.wr(A.SVR, 0x1ffn);
      yield* g.wr(A.LVT_TIMER, 0xecn); // one-shot, vector 0xEC, unmasked
      yield* g.wr(A.TIMER_DIVIDE_CONFIG, 0x3n); // divide by 16
      got.tdcr = yield* g.rd(A.TIMER_DIVIDE_CONFIG);
      yield* g.wr(A.TIMER_INITIAL_COUNT, 100_000n);
      got.t0 = g.machine.tsc;
      got.c1 = yield* g.rd(A.TIMER_CURRENT_COUNT);
      got.t1 = g.machine.tsc;
      g.machine.tsc += 160_000n;
      got.c2 = yield* g.rd(A.TIMER_CURRENT_COUNT);
      got.t2 = g.machine.tsc;
      got.irrBefore = yield* g.rd(A.IRR0 + 7);
      got.tmict = yield* g.rd(A.TIMER_INITIAL_COUNT);
      g.machine.tsc += 1_600_000n; // past 100k * 16
      got.irrAfter = yield* g.rd(A.IRR0 + 7);
      got.c3 = yield* g.rd(A.TIMER_CURRENT_COUNT);
    });
    expect(got.tdcr).toBe(3n);
    const expectCount = (t: bigint): bigint => 100_000n - (t - got.t0!) / 16n;
    expect(got.c1).toBe(expectCount(got.t1!));
    expect(got.c2).toBe(expectCount(got.t2!));
    expect(got.c2).toBeLessThan(got.c1!);
    expect(got.c1).toBeLessThan(100_000n);
    expect(got.irrBefore).toBe(0n);
    expect(got.tmict).toBe(100_000n);
    expect(got.irrAfter).toBe(1n << 12n); // 0xEC
    expect(got.c3).toBe(0n);
    const apics = platformOf(cvm.vm).apics;
    expect(apics.highestPending(0)).toBe(0xec);
    expect(apics.apics[0]!.nextTimerEvent()).toBeNull(); // one-shot: done
  });

  it('reloads in periodic mode, keeps quiet when masked, and counts on across a divide change', () => {
    const got: Record<string, bigint> = {};
    const cvm = runGuest(function* (g) {
      yield* g.wr(A.SVR, 0x1ffn);
      yield* g.wr(A.LVT_TIMER, 0x1_0000n | 0x2_0000n | 0xd0n); // periodic, masked
      yield* g.wr(A.TIMER_DIVIDE_CONFIG, 0xbn); // divide by 1
      yield* g.wr(A.TIMER_INITIAL_COUNT, 10_000n);
      const t0 = g.machine.tsc;
      g.machine.tsc += 25_000n - 1000n; // the read's exit adds 1000: 2.5 periods
      got.c = yield* g.rd(A.TIMER_CURRENT_COUNT);
      got.dt = g.machine.tsc - t0;
      got.irrMasked = yield* g.rd(A.IRR0 + 6);
      yield* g.wr(A.LVT_TIMER, 0x2_0000n | 0xd0n); // unmask (same mode: keeps counting)
      g.machine.tsc += 10_000n;
      got.irr = yield* g.rd(A.IRR0 + 6);
      // Divide change: the count goes on from where it was, 2x slower.
      yield* g.wr(A.TIMER_INITIAL_COUNT, 1_000_000n);
      const before = yield* g.rd(A.TIMER_CURRENT_COUNT);
      yield* g.wr(A.TIMER_DIVIDE_CONFIG, 0x0n); // divide by 2
      const after = yield* g.rd(A.TIMER_CURRENT_COUNT);
      got.drop = before - after;
      // A mode change disarms.
      yield* g.wr(A.LVT_TIMER, 0xd0n);
      got.stopped = yield* g.rd(A.TIMER_CURRENT_COUNT);
      got.tmict = yield* g.rd(A.TIMER_INITIAL_COUNT);
    });
    expect(got.dt).toBe(25_000n);
    expect(got.c).toBe(5_000n);
    expect(got.irrMasked).toBe(0n);
    expect(got.irr).toBe(1n << 16n); // 0xD0
    // Two exits of 1000 TSC each: the divide write's at /1, the read's at /2.
    expect(got.drop).toBe(1500n);
    expect(got.stopped).toBe(0n);
    expect(got.tmict).toBe(0n);
    expect(platformOf(cvm.vm).apics.apics[0]!.nextTimerEvent()).toBeNull();
  });

  it('divides by 2..128 and 1, and fires in TSC-deadline mode when the CPU offers it', () => {
    expect([0, 1, 2, 3, 8, 9, 0xa, 0xb].map(timerDivisor)).toEqual([
      2n,
      4n,
      8n,
      16n,
      32n,
      64n,
      128n,
      1n,
    ]);
    let now = 0n;
    const apics = new X2apics({
      vcpuCount: 1,
      now: () => now,
      guestTsc: () => now + 500n,
      tscDeadline: true,
    });
    const apic = apics.apics[0]!;
    apic.write(A.SVR, 0x1ffn);
    apic.writeTscDeadline(5_000n); // ignored: not in deadline mode
    expect(apic.readTscDeadline()).toBe(0n);
    apic.write(A.LVT_TIMER, 0x4_0000n | 0xefn);
    apic.write(A.TIMER_INITIAL_COUNT, 99n); // ignored in deadline mode
    expect(apic.read(A.TIMER_INITIAL_COUNT)).toBe(0n);
    apic.writeTscDeadline(5_000n);
    expect(apic.readTscDeadline()).toBe(5_000n);
    expect(apic.nextTimerEvent()).toBe(4_500n);
    now = 4_499n;
    expect(apics.highestPending(0)).toBe(-1);
    now = 4_500n;
    expect(apics.highestPending(0)).toBe(0xef);
    expect(apic.readTscDeadline()).toBe(0n);
    // A CPU without it refuses the deadline mode bits.
    const plain = new X2apics({ vcpuCount: 1, now: () => now, tscDeadline: false }).apics[0]!;
    plain.write(A.LVT_TIMER, 0x4_0000n | 0xefn);
    expect(plain.timerMode).toBe(0);
  });

  it('APIC_BASE transitions follow the SDM', () => {
    const [dis, xapic, x2, inv] = [0x0n, 0x800n, 0xc00n, 0x400n];
    expect(apicBaseWriteAllowed(xapic, x2, true)).toBe(true);
    expect(apicBaseWriteAllowed(xapic, x2, false)).toBe(false);
    expect(apicBaseWriteAllowed(x2, xapic, true)).toBe(false);
    expect(apicBaseWriteAllowed(x2, dis, true)).toBe(true);
    expect(apicBaseWriteAllowed(dis, x2, true)).toBe(false);
    expect(apicBaseWriteAllowed(dis, xapic, true)).toBe(true);
    expect(apicBaseWriteAllowed(xapic, inv, true)).toBe(false);
  });
});

describe('hostile x2APIC accesses', () => {
  it('answers every RDMSR/WRMSR of 0x800-0x8FF and 0x6E0 with OK or #GP, never a crash', () => {
    const access = fc.record({
      msr: fc.oneof(fc.integer({ min: 0x800, max: 0x8ff }), fc.constant(MSR.TSC_DEADLINE)),
      write: fc.option(
        fc.oneof(
          fc.bigInt({ min: 0n, max: 0xffn }),
          fc.bigInt({ min: 0n, max: 0xffff_ffffn }),
          fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        ),
      ),
    });
    const accesses = fc.sample(fc.array(access, { minLength: 300, maxLength: 300 }), {
      numRuns: 1,
      seed: 7,
    })[0]!;
    const bad: string[] = [];
    const cvm = runGuest(
      function* (g) {
        for (const a of accesses) {
          const r = yield* g.raw(a.msr, a.write ?? undefined);
          if (r.status[0] !== 0n && (r.status[0] !== 1n || r.status[1] !== GP))
            bad.push(`0x${a.msr.toString(16)}: ${r.status.join(',')}`);
        }
      },
      { vcpus: 2 },
    );
    expect(bad).toEqual([]);
    const h = platformOf(cvm.vm).apics.highestPending(0);
    expect(h === -1 || (h >= 16 && h <= 255)).toBe(true);
  });
});
