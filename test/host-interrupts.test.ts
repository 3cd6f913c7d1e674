// Device interrupts end to end: a scripted guest at VMPL2 programs its x2APIC (MSR exits), the
// IOAPIC (MMIO exits) and the devices (IOIO exits) as Linux does, enables interrupts and halts;
// the host routes IRQs through the IOAPIC to the x2APIC and injects the vector (EVENTINJ) into
// VMPL2 when the guest can take it, skipping virtual time to the next timer while all vCPUs halt.
// Facts: reference/linux-snp-guest.md 1.5 and 3.7, Intel 82093AA, SDM vol. 3A chapter 11.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type GuestCpu, MSR, X2APIC_MSR as A } from '../src/arch/index.js';
import { platformOf } from '../src/host/devices/platform.js';
import { PM1_CNT, PM1_EN, PM1_STS } from '../src/host/devices/acpi-pm.js';
import { IOAPIC_RTE } from '../src/host/devices/ioapic.js';
import { UART_IER, UART_IIR, UART_MCR } from '../src/host/devices/uart8250.js';
import { DeviceClock, PIT_HZ } from '../src/host/devices/virtual-clock.js';
import {
  ACPI_PM1A_CNT_PORT,
  ACPI_PM1A_EVT_PORT,
  ACPI_SLP_TYP_S5,
} from '../src/igvm/acpi-tables.js';
import { createTestCvm, type TestCvm } from './support/cvm.js';
import { GhcbIo } from './support/ghcb-io.js';

const IOAPIC = 0xfec0_0000;
const X2APIC_ON = 0xfee0_0d00n;

/** The guest's side: its I/O, and a record of the interrupts its handler saw. */
interface Guest {
  readonly io: GhcbIo;
  readonly cpu: GuestCpu;
  /** [vector, machine TSC at handler entry] per interrupt taken. */
  readonly taken: [number, bigint][];
  /** The CVM the guest runs in (for the test's view of the host). */
  cvm(): TestCvm;
  /** Programs IOAPIC pin `pin` (low dword and destination APIC ID). */
  route(pin: number, low: number, dest?: number): Generator<void, void, void>;
  redirLow(pin: number): Generator<void, number, void>;
  eoi(): Generator<void, void, void>;
}

/**
 * Runs `body` on vCPU 0's VMPL2 after GHCB set-up, x2APIC mode and APIC software-enable. The
 * handler records each interrupt and runs `onIrq` (which must EOI), or EOIs itself.
 */
function runGuest(
  body: (g: Guest) => Generator<void, void, void>,
  onIrq?: (g: Guest, vector: number) => Generator<void, void, void>,
  taken: [number, bigint][] = [],
): TestCvm {
  const box: { cvm?: TestCvm } = {};
  const cvm = createTestCvm(function* (cpu) {
    const io = new GhcbIo(cpu);
    yield* io.setUp();
    const g: Guest = {
      io,
      cpu,
      taken,
      cvm: () => box.cvm!,
      *route(pin, low, dest = 0) {
        yield* io.write32(IOAPIC, 0x11 + 2 * pin);
        yield* io.write32(IOAPIC + 0x10, dest << 24);
        yield* io.write32(IOAPIC, 0x10 + 2 * pin);
        yield* io.write32(IOAPIC + 0x10, low);
      },
      *redirLow(pin) {
        yield* io.write32(IOAPIC, 0x10 + 2 * pin);
        return yield* io.read32(IOAPIC + 0x10);
      },
      *eoi() {
        yield* io.wrmsr(A.EOI, 0n);
      },
    };
    cpu.onInterrupt = function* (vector) {
      g.taken.push([vector, box.cvm!.machine.tsc]);
      if (onIrq !== undefined) yield* onIrq(g, vector);
      else yield* g.eoi();
    };
    yield* io.wrmsr(MSR.APIC_BASE, X2APIC_ON);
    yield* io.wrmsr(A.SVR, 0x1ffn);
    yield* body(g);
  });
  box.cvm = cvm;
  return cvm;
}

function run(cvm: TestCvm): void {
  if (cvm.vm.state === 'stopped') cvm.vm.state = 'running';
  cvm.vm.run(100_000);
  expect(cvm.vm.termination?.reason ?? null, cvm.guest.logLines.join('\n')).toBeNull();
}

describe('UART interrupts through the IOAPIC into the guest', () => {
  it('injects the THR-empty interrupt (IRQ 4, pin 4) with the programmed vector, then RX data', () => {
    const seen: Record<string, unknown> = {};
    const iirs: number[] = [];
    const rx: number[] = [];
    const cvm = runGuest(
      function* (g) {
        yield* g.route(4, 0x24); // edge, active high, fixed, physical APIC 0
        yield* g.io.out(0x3fc, UART_MCR.OUT2);
        g.cpu.interruptsEnabled = true;
        yield* g.io.out(0x3f9, UART_IER.THRI); // THR is empty: the interrupt is due at once
        seen.afterIer = g.taken.length;
        yield* g.io.out(0x3f9, UART_IER.RDI); // now wait for input
        yield* g.cpu.hlt();
        seen.afterHlt = g.taken.length;
      },
      function* (g, vector) {
        const iir = yield* g.io.in(0x3fa);
        iirs.push(iir);
        if ((iir & 0x0f) === UART_IIR.RDI || (iir & 0x0f) === UART_IIR.TIMEOUT)
          rx.push(yield* g.io.in(0x3f8));
        expect(vector).toBe(0x24);
        yield* g.eoi();
      },
    );
    run(cvm);
    // The guest halted waiting for input, with nothing armed: the VM stops until input comes.
    expect(cvm.vm.state).toBe('stopped');
    expect(seen.afterIer).toBe(1); // the handler ran right after the IER write returned
    expect(iirs).toEqual([UART_IIR.THRI]);
    const p = platformOf(cvm.vm);
    expect(p.com1.receive(Uint8Array.of(0x61))).toBe(1);
    run(cvm);
    expect(cvm.vm.state).toBe('stopped');
    expect(seen.afterHlt).toBe(2);
    expect(iirs).toEqual([UART_IIR.THRI, UART_IIR.RDI]);
    expect(rx).toEqual([0x61]);
    expect(p.injected.get(0x24)).toBe(2);
    expect(p.apics.apics[0]!.isr.highest()).toBe(-1); // both EOIed
  });

  it('does not inject while the pin is masked or the guest has IF clear, and asks for a window', () => {
    const seen: Record<string, unknown> = {};
    const cvm = runGuest(function* (g) {
      yield* g.route(4, IOAPIC_RTE.MASKED | 0x24);
      yield* g.io.out(0x3fc, UART_MCR.OUT2);
      yield* g.io.out(0x3f9, UART_IER.THRI);
      seen.masked = g.taken.length;
      yield* g.route(4, 0x24); // unmasked with the line already high: the edge was lost
      yield* g.io.out(0x3f9, 0);
      yield* g.io.out(0x3f9, UART_IER.THRI); // a new edge, but IF is clear
      seen.ifClear = g.taken.length;
      seen.vIrq = cvm.machine.vcpus[0]!.vIrq;
      g.cpu.interruptsEnabled = true; // STI: the next exit lets it in
      yield* g.io.in(0x3fd);
      seen.afterSti = g.taken.length;
    });
    run(cvm);
    expect(seen.masked).toBe(0);
    expect(seen.ifClear).toBe(0);
    expect(seen.vIrq).toBe(true);
    expect(seen.afterSti).toBe(1);
  });
});

describe('timer interrupts at the right virtual time', () => {
  it('wakes a halted guest for each PIT channel 0 period (IRQ 0 on pin 2), at the exact TSC', () => {
    const count = 1193n; // ~1 ms
    const taken: [number, bigint][] = [];
    const seen: { start?: bigint | null } = {};
    const cvm = runGuest(
      function* (g) {
        yield* g.route(2, 0x30);
        yield* g.io.out(0x43, 0x34); // channel 0, LSB/MSB, mode 2
        yield* g.io.out(0x40, Number(count & 0xffn));
        yield* g.io.out(0x40, Number(count >> 8n));
        seen.start = platformOf(g.cvm().vm).pc.pit.channels[0].start;
        g.cpu.interruptsEnabled = true;
        for (let i = 0; i < 3; i++) yield* g.cpu.hlt();
        g.cpu.interruptsEnabled = false;
        yield* g.io.out(0x43, 0x30); // mode 0: Linux's PIT shutdown
      },
      undefined,
      taken,
    );
    run(cvm);
    expect(cvm.vm.state).toBe('stopped');
    const clock = new DeviceClock(PIT_HZ, () => 0n);
    const start = seen.start!;
    // Each HLT skipped virtual time to the next period: the handler ran at its first TSC.
    expect(taken).toEqual([1n, 2n, 3n].map((k) => [0x30, clock.tscOf(start + k * count)]));
  });

  it('wakes a halted guest for the x2APIC timer and the RTC periodic interrupt in time order', () => {
    const taken: [number, bigint][] = [];
    const seen: { t0?: bigint } = {};
    const cvm = runGuest(
      function* (g) {
        yield* g.route(8, 0x38); // RTC on IRQ 8
        yield* g.io.out(0x70, 0x0b);
        yield* g.io.out(0x71, 0x42); // PIE, 24-hour
        seen.t0 = g.cvm().machine.tsc;
        yield* g.io.wrmsr(A.TIMER_DIVIDE_CONFIG, 0xbn); // divide by 1
        yield* g.io.wrmsr(A.LVT_TIMER, 0xecn);
        yield* g.io.wrmsr(A.TIMER_INITIAL_COUNT, 300_000n); // 300 us one-shot
        g.cpu.interruptsEnabled = true;
        for (let i = 0; i < 2; i++) yield* g.cpu.hlt();
        g.cpu.interruptsEnabled = false;
      },
      function* (g, vector) {
        if (vector === 0x38) {
          yield* g.io.out(0x70, 0x0c);
          yield* g.io.in(0x71); // reading C ends the interrupt
        }
        yield* g.eoi();
      },
      taken,
    );
    run(cvm);
    // 1024 Hz RTC: the first period ends at 976563 ns; the APIC timer at 300 us after its write.
    expect(taken.map(([v]) => v)).toEqual([0xec, 0x38]);
    expect(taken[1]![1]).toBe(976_563n);
    expect(taken[0]![1]).toBeGreaterThan(seen.t0! + 300_000n);
    expect(taken[0]![1]).toBeLessThan(seen.t0! + 305_000n);
  });

  it('holds the level-triggered SCI in Remote IRR until EOI and re-injects it while still asserted', () => {
    const taken: [number, bigint][] = [];
    const remote: number[] = [];
    let calls = 0;
    const cvm = runGuest(
      function* (g) {
        yield* g.route(9, IOAPIC_RTE.TRIGGER_LEVEL | 0x59); // the SCI: level, active high
        yield* g.io.out(ACPI_PM1A_EVT_PORT + 2, PM1_EN.TMR, 2);
        g.cpu.interruptsEnabled = true;
        yield* g.cpu.hlt(); // the PM timer's bit 23 flips after 2.34 s of virtual time
        g.cpu.interruptsEnabled = false;
        remote.push((yield* g.redirLow(9)) & IOAPIC_RTE.REMOTE_IRR);
      },
      function* (g) {
        remote.push((yield* g.redirLow(9)) & IOAPIC_RTE.REMOTE_IRR);
        // First time: EOI with the status still set, so the level is still there.
        if (calls++ > 0) yield* g.io.out(ACPI_PM1A_EVT_PORT, PM1_STS.TMR, 2);
        yield* g.eoi();
      },
      taken,
    );
    run(cvm);
    expect(taken.map(([v]) => v)).toEqual([0x59, 0x59]);
    expect(taken[0]![1]).toBeGreaterThanOrEqual(2_343_484_000n); // 2^23 / 3.579545 MHz
    expect(remote).toEqual([IOAPIC_RTE.REMOTE_IRR, IOAPIC_RTE.REMOTE_IRR, 0]);
  });
});

describe('a halted guest nothing can wake', () => {
  it('stops the VM when the timers that fire are all blocked by the TPR', () => {
    const taken: [number, bigint][] = [];
    const cvm = runGuest(
      function* (g) {
        yield* g.io.wrmsr(A.TPR, 0xf0n);
        yield* g.io.wrmsr(A.TIMER_DIVIDE_CONFIG, 0xbn);
        yield* g.io.wrmsr(A.LVT_TIMER, (1n << 17n) | 0x40n); // periodic, vector 0x40
        yield* g.io.wrmsr(A.TIMER_INITIAL_COUNT, 10_000n);
        g.cpu.interruptsEnabled = true;
        yield* g.cpu.hlt();
      },
      undefined,
      taken,
    );
    cvm.vm.run(); // the default bound on VMRUNs is far above the idle-skip bound
    expect(cvm.vm.state).toBe('stopped');
    expect(taken).toEqual([]);
    expect(cvm.hostLog).toContain('every vCPU waits; 10000 timer events woke none');
  });
});

describe('NMIs', () => {
  it('wakes a vCPU halted with IF clear; a program that ended does not start again', () => {
    let starts = 0;
    const cvm = runGuest(function* () {
      starts++;
      yield* (function* () {})(); // the program ends: HLT with IF clear
    });
    run(cvm);
    expect(cvm.vm.state).toBe('stopped');
    platformOf(cvm.vm).apics.apics[0]!.nmiPending = true;
    run(cvm);
    expect(cvm.hostLog).toContain('vCPU 0: NMI injected into VMPL2');
    expect(starts).toBe(1);
    expect(cvm.vm.state).toBe('stopped');
  });

  it('blocks a second NMI until the guest signals NMI_COMPLETE', () => {
    const taken: [number, bigint][] = [];
    const seen: number[] = [];
    const cvm = runGuest(
      function* (g) {
        yield* g.io.wrmsr(A.ICR, (1n << 18n) | 0x400n); // NMI to self: the handler runs
        seen.push(taken.length);
        yield* g.io.wrmsr(A.ICR, (1n << 18n) | 0x400n); // blocked: no NMI_COMPLETE yet
        yield* g.io.in(0x80);
        seen.push(taken.length);
        yield* g.io.nmiComplete();
        yield* g.io.in(0x80);
        seen.push(taken.length);
      },
      function* () {
        // An NMI handler that does not tell the host it is done.
      },
      taken,
    );
    run(cvm);
    expect(seen).toEqual([1, 1, 2]);
    expect(taken.map(([v]) => v)).toEqual([2, 2]);
  });
});

describe('ACPI S5', () => {
  it('powers the VM off cleanly when the guest writes SLP_TYP(S5) | SLP_EN', () => {
    const after: string[] = [];
    const cvm = runGuest(function* (g) {
      yield* g.io.out(
        ACPI_PM1A_CNT_PORT,
        (ACPI_SLP_TYP_S5 << PM1_CNT.SLP_TYP_SHIFT) | PM1_CNT.SLP_EN,
        2,
      );
      after.push('ran on');
    });
    cvm.vm.run(100_000);
    expect(cvm.vm.state).toBe('powered-off');
    expect(cvm.vm.termination).toBeNull();
    expect(after).toEqual([]);
    expect(cvm.hostLog).toContain('powered off: the guest entered ACPI S5 (soft off)');
  });
});

describe('hostile device traffic', () => {
  it('never ends the VM or throws: random port and MMIO accesses through the GHCB', () => {
    const ops = fc.sample(
      fc.record({
        kind: fc.constantFrom('in', 'out', 'mmioRead', 'mmioWrite'),
        port: fc.oneof(
          fc.integer({ min: 0x3f8, max: 0x3ff }),
          fc.integer({ min: 0x40, max: 0x43 }),
          fc.constantFrom(0x61, 0x70, 0x71, 0x600, 0x601, 0x602, 0x603, 0x608, 0x2f8, 0xcf8),
          fc.integer({ min: 0, max: 0xffff }),
        ),
        size: fc.constantFrom(1 as const, 2 as const, 4 as const),
        value: fc.integer({ min: 0, max: 0xffff_ffff }),
        gpa: fc.oneof(
          fc.integer({ min: IOAPIC - 8, max: IOAPIC + 0x1010 }),
          fc.integer({ min: 0xfed0_0000, max: 0xfee0_1000 }),
        ),
        length: fc.integer({ min: 1, max: 8 }),
      }),
      { numRuns: 300, seed: 7 },
    );
    const unclaimed: number[] = [];
    const nmis: number[] = [];
    const cvm = runGuest(
      function* (g) {
        const claims = platformOf(g.cvm().vm).ports.claims();
        const claimed = (p: number): boolean => claims.some((c) => p >= c.first && p <= c.last);
        for (const op of ops) {
          // The S5 request is the one write that rightly ends the VM; it has its own test.
          if (op.kind === 'out' && op.port >= 0x603 && op.port <= 0x605) continue;
          if (op.kind === 'in') {
            const v = yield* g.io.in(op.port, op.size);
            if (![...Array(op.size).keys()].some((i) => claimed(op.port + i)))
              unclaimed.push(
                v === (op.size === 4 ? 0xffff_ffff : (1 << (op.size * 8)) - 1) ? 1 : 0,
              );
          } else if (op.kind === 'out') yield* g.io.out(op.port, op.value, op.size);
          else if (op.kind === 'mmioRead') yield* g.io.mmioRead(op.gpa, op.length);
          else {
            const d = Uint8Array.from({ length: op.length }, (_, i) => op.value >>> (8 * (i & 3)));
            yield* g.io.mmioWrite(op.gpa, d);
          }
        }
      },
      // An IOAPIC entry scribbled into NMI mode delivers NMIs: the guest completes them.
      function* (g, vector) {
        nmis.push(vector);
        if (vector === 2) yield* g.io.nmiComplete();
        else yield* g.eoi();
      },
    );
    run(cvm);
    expect(cvm.vm.state).toBe('stopped');
    expect(unclaimed.length).toBeGreaterThan(10);
    expect(unclaimed.every((ok) => ok === 1)).toBe(true);
  });
});
