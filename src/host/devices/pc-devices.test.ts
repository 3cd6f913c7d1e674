// The PC devices sit where our ACPI tables say they are (FADT ports, MADT IOAPIC and overrides,
// the DSDT's \_S5), and survive any port traffic.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FADT,
  FADT_F,
  MADT_ENTRY_HEADER,
  MADT_HEADER,
  MADT_INTERRUPT_OVERRIDE,
  MADT_IO_APIC,
  MADT_TYPE,
  MPS_INTI,
  SDT_HEADER,
} from '../../arch/index.js';
import { ACPI_PM_TMR_PORT, buildAcpiTables } from '../../igvm/acpi-tables.js';
import type { PortSize } from './bus.js';
import { ioapicPinOfIsaIrq } from './pc-devices.js';
import { HostPlatform } from './platform.js';
import { PIT_CW, PIT_IRQ } from './pit8254.js';

function platform(onOff: () => void = () => undefined) {
  const t = { tsc: 0n };
  const p = new HostPlatform({
    cpu: { product: 'Milan', vcpuCount: 2 },
    serial: () => undefined,
    tsc: () => t.tsc,
    powerOff: onOff,
  });
  return { t, p };
}

describe('PC devices against the ACPI tables', () => {
  const tables = buildAcpiTables({
    vcpuCount: 2,
    baseGpa: 0x10_0000,
    pmTimerPort: ACPI_PM_TMR_PORT,
  });
  const at = (gpa: number): number => gpa - tables.baseGpa;
  const fadt = FADT.on(tables.bytes, at(tables.fadtGpa));

  it('claims the FADT PM1a event, control and PM timer blocks with the ACPI PM device', () => {
    const { p } = platform();
    const owner = (port: number): string | undefined =>
      p.ports.claims().find((c) => port >= c.first && port <= c.last)?.device.name;
    const blocks: [number, number][] = [
      [fadt.get('pm1aEvtBlk'), fadt.get('pm1EvtLen')],
      [fadt.get('pm1aCntBlk'), fadt.get('pm1CntLen')],
      [fadt.get('pmTmrBlk'), fadt.get('pmTmrLen')],
    ];
    for (const [base, len] of blocks) {
      expect(len).toBeGreaterThan(0);
      for (let i = 0; i < len; i++) expect(owner(base + i)).toBe('acpi-pm');
    }
    // Without TMR_VAL_EXT the timer is 24 bits: it wraps at 2^24.
    expect(fadt.get('flags') & FADT_F.TMR_VAL_EXT).toBe(0);
    expect(p.ports.in(fadt.get('pmTmrBlk'), 4)).toBe(0);
  });

  it('puts the IOAPIC at the MADT address and routes ISA IRQs as its overrides say', () => {
    const { p } = platform();
    const madt = at(tables.madtGpa);
    const length = SDT_HEADER.get(tables.bytes, 'length', madt);
    const overrides = new Map<number, { gsi: number; flags: number }>();
    let ioapicAddress = -1;
    for (let off = madt + MADT_HEADER.size; off < madt + length;) {
      const type = MADT_ENTRY_HEADER.get(tables.bytes, 'type', off);
      if (type === MADT_TYPE.IO_APIC)
        ioapicAddress = MADT_IO_APIC.get(tables.bytes, 'address', off);
      if (type === MADT_TYPE.INTERRUPT_SOURCE_OVERRIDE) {
        const o = MADT_INTERRUPT_OVERRIDE.on(tables.bytes, off);
        overrides.set(o.get('source'), { gsi: o.get('gsi'), flags: o.get('flags') });
      }
      off += MADT_ENTRY_HEADER.get(tables.bytes, 'length', off);
    }
    expect(p.mmio.claims().find((c) => c.base === ioapicAddress)?.device.name).toBe('ioapic');
    for (let irq = 0; irq < 16; irq++)
      expect(ioapicPinOfIsaIrq(irq)).toBe(overrides.get(irq)?.gsi ?? irq);
    expect(ioapicPinOfIsaIrq(PIT_IRQ)).toBe(2);
    const sci = fadt.get('sciInt');
    expect(overrides.get(sci)?.flags).toBe(MPS_INTI.POLARITY_ACTIVE_HIGH | MPS_INTI.TRIGGER_LEVEL);
  });

  it("powers off when the DSDT's \\_S5 SLP_TYP goes to the FADT's PM1a_CNT with SLP_EN", () => {
    let offs = 0;
    const { p } = platform(() => offs++);
    const dsdt = at(tables.dsdtGpa) + SDT_HEADER.size;
    // Name(_S5_, Package(4) { BytePrefix slpTyp, ... })
    expect([...tables.bytes.subarray(dsdt, dsdt + 5)]).toEqual([0x08, 0x5f, 0x53, 0x35, 0x5f]);
    const slpTyp = tables.bytes[dsdt + 9]!;
    p.ports.out(fadt.get('pm1aCntBlk'), 2, (slpTyp << 10) | (1 << 13));
    expect(offs).toBe(1);
  });
});

describe('port traffic', () => {
  it('never throws, and every unclaimed port reads as all ones', () => {
    const { t, p } = platform();
    const claimed = (port: number): boolean =>
      p.ports.claims().some((c) => port >= c.first && port <= c.last);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            port: fc.oneof(
              fc.integer({ min: 0x3f, max: 0x72 }),
              fc.integer({ min: 0x5fe, max: 0x60c }),
              fc.integer({ min: 0, max: 0xffff }),
            ),
            size: fc.constantFrom<PortSize>(1, 2, 4),
            write: fc.boolean(),
            value: fc.integer({ min: 0, max: 0xffff_ffff }),
            dt: fc.bigInt({ min: 0n, max: 5_000_000_000n }),
          }),
          { maxLength: 100 },
        ),
        (ops) => {
          for (const op of ops) {
            t.tsc += op.dt;
            // The S5 request powers off (a callback here); everything else is fair game.
            if (op.write) p.ports.out(op.port, op.size, op.value);
            else {
              const v = p.ports.in(op.port, op.size);
              const max = op.size === 4 ? 0xffff_ffff : (1 << (8 * op.size)) - 1;
              expect(v).toBeLessThanOrEqual(max);
              if (!claimed(op.port)) expect(v).toBe(max);
            }
            p.pc.poll();
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('8254 rules', () => {
  it('mode 0: the count is N - elapsed (mod 2^16) and OUT rises exactly at N, for any N and time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.bigInt({ min: 0n, max: 200_000n }),
        (n, d) => {
          const { t, p } = platform();
          const pit = p.pc.pit;
          pit.out(0x43, 1, (2 << 6) | (PIT_CW.ACCESS_WORD << 4)); // channel 2, mode 0
          p.pc.port61.out(0x61, 1, 1); // gate on
          const clock = (tick: bigint): bigint => (tick * 1_000_000_000n + 1_193_181n) / 1_193_182n;
          const start = (t.tsc * 1_193_182n) / 1_000_000_000n;
          pit.out(0x42, 1, n & 0xff);
          pit.out(0x42, 1, n >> 8);
          t.tsc = clock(start + d);
          pit.out(0x43, 1, 2 << 6); // latch
          const count = pit.in(0x42, 1) | (pit.in(0x42, 1) << 8);
          const big = BigInt(n === 0 ? 0x10000 : n);
          expect(count).toBe(Number((((big - d) % 0x10000n) + 0x10000n) % 0x10000n));
          expect(pit.out2()).toBe(d >= big);
        },
      ),
      { numRuns: 300 },
    );
  });
});
