// The IOAPIC's register file and pin semantics against the 82093AA datasheet, with real x2APICs
// behind it: edge and level triggering, masks, polarity, Remote IRR and the EOI broadcast,
// physical / logical / broadcast destinations, and hostile MMIO.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { X2APIC_MSR as A } from '../../arch/index.js';
import { IOAPIC_RTE as R, Ioapic } from './ioapic.js';
import { X2apics } from './x2apic.js';

function setup(vcpus = 2) {
  const apics = new X2apics({ vcpuCount: vcpus, now: () => 0n, tscDeadline: true });
  for (const a of apics.apics) a.write(A.SVR, 0x1ffn);
  const io = new Ioapic({ deliver: (m) => apics.deliver(m) });
  apics.onEoi((v) => io.eoi(v));
  const rd = (reg: number): number => {
    io.write(0, Uint8Array.of(reg));
    const d = new Uint8Array(4);
    io.read(0x10, d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  const wr = (reg: number, v: number): void => {
    io.write(0, Uint8Array.of(reg));
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    io.write(0x10, d);
  };
  /** Programs pin `pin`'s entry (low dword, destination APIC ID). */
  const route = (pin: number, low: number, dest = 0): void => {
    wr(0x11 + 2 * pin, dest << 24);
    wr(0x10 + 2 * pin, low);
  };
  const irr = (id: number, v: number): boolean => apics.apics[id]!.irr.has(v);
  /** The CPU takes the vector and its handler EOIs it. */
  const service = (id: number, v: number): void => {
    apics.apics[id]!.acknowledge(v);
    apics.apics[id]!.write(A.EOI, 0n);
  };
  return { apics, io, rd, wr, route, irr, service };
}

describe('IOAPIC registers', () => {
  it('has ID, version 0x11 with 24 entries, arbitration, and masked entries at reset', () => {
    const { rd, wr } = setup();
    expect(rd(0x01)).toBe(0x0017_0011);
    expect(rd(0x00)).toBe(0);
    wr(0x00, 0x0f00_00ff);
    expect(rd(0x00)).toBe(0x0f00_0000); // ID bits 27:24 only
    expect(rd(0x02)).toBe(0x0f00_0000); // arbitration ID follows it
    wr(0x01, 0);
    expect(rd(0x01)).toBe(0x0017_0011); // read-only
    for (let pin = 0; pin < 24; pin++) {
      expect(rd(0x10 + 2 * pin)).toBe(R.MASKED);
      expect(rd(0x11 + 2 * pin)).toBe(0);
    }
    // Registers that do not exist: 0x03-0x0F and beyond entry 23.
    for (const reg of [0x03, 0x0f, 0x40, 0x41, 0xff]) expect(rd(reg)).toBe(0xffff_ffff);
  });

  it('keeps only the writable bits: delivery status and Remote IRR are read-only', () => {
    const { rd, wr } = setup();
    wr(0x10, 0xffff_ffff);
    expect(rd(0x10)).toBe(0x1_afff | R.TRIGGER_LEVEL); // no delivery status, no Remote IRR
    wr(0x11, 0xffff_ffff);
    expect(rd(0x11)).toBe(0xff00_0000);
  });

  it('reads IOREGSEL back and answers bytes of IOWIN; other offsets read all ones', () => {
    const { io } = setup();
    io.write(0, Uint8Array.of(0x01));
    const b = new Uint8Array(1);
    io.read(0, b);
    expect(b[0]).toBe(0x01);
    io.read(0x12, b);
    expect(b[0]).toBe(0x17); // byte 2 of the version register
    const d = new Uint8Array(4);
    io.read(0x20, d);
    expect([...d]).toEqual([0xff, 0xff, 0xff, 0xff]);
  });
});

describe('IOAPIC pins', () => {
  it('delivers an edge-triggered pin once per rising edge to the physical destination', () => {
    const { io, route, irr, apics } = setup();
    route(4, 0x34, 1);
    io.setLine(4, true);
    expect(irr(1, 0x34)).toBe(true);
    expect(irr(0, 0x34)).toBe(false);
    expect(apics.apics[1]!.tmr.has(0x34)).toBe(false);
    io.setLine(4, true); // still high: no new edge
    expect(io.delivered[4]).toBe(1);
    io.setLine(4, false);
    io.setLine(4, true);
    expect(io.delivered[4]).toBe(2);
  });

  it('loses an edge while masked and does not replay it on unmask', () => {
    const { io, route, irr, wr } = setup();
    route(3, R.MASKED | 0x33);
    io.setLine(3, true);
    wr(0x10 + 6, 0x33); // unmask with the line still high
    expect(irr(0, 0x33)).toBe(false);
    expect(io.delivered[3]).toBe(0);
  });

  it('holds a level-triggered pin in Remote IRR until the EOI broadcast, then redelivers a held level', () => {
    const { io, route, irr, rd, service, apics } = setup();
    route(9, R.TRIGGER_LEVEL | 0x49);
    io.setLine(9, true);
    expect(irr(0, 0x49)).toBe(true);
    expect(apics.apics[0]!.tmr.has(0x49)).toBe(true);
    expect(rd(0x10 + 18) & R.REMOTE_IRR).toBe(R.REMOTE_IRR);
    io.setLine(9, true);
    expect(io.delivered[9]).toBe(1);
    service(0, 0x49); // still asserted at the EOI: delivered again
    expect(io.delivered[9]).toBe(2);
    expect(irr(0, 0x49)).toBe(true);
    io.setLine(9, false);
    service(0, 0x49);
    expect(rd(0x10 + 18) & R.REMOTE_IRR).toBe(0);
    expect(io.delivered[9]).toBe(2);
    expect(irr(0, 0x49)).toBe(false);
  });

  it('ignores the EOI of an edge-triggered vector and of other vectors', () => {
    const { io, route, service, rd } = setup();
    route(9, R.TRIGGER_LEVEL | 0x49);
    route(5, 0x48);
    io.setLine(9, true);
    io.setLine(5, true);
    service(0, 0x48);
    expect(rd(0x10 + 18) & R.REMOTE_IRR).toBe(R.REMOTE_IRR);
  });

  it('delivers a held level when the pin is unmasked', () => {
    const { io, route, wr, irr } = setup();
    route(9, R.MASKED | R.TRIGGER_LEVEL | 0x49);
    io.setLine(9, true);
    expect(irr(0, 0x49)).toBe(false);
    wr(0x10 + 18, R.TRIGGER_LEVEL | 0x49);
    expect(irr(0, 0x49)).toBe(true);
  });

  it('takes an active-low pin as asserted while its wire is low', () => {
    const { io, route, irr, service } = setup();
    route(10, R.TRIGGER_LEVEL | R.POLARITY_LOW | 0x5a); // wire idle low: asserted at once
    expect(irr(0, 0x5a)).toBe(true);
    io.setLine(10, true); // deasserted
    service(0, 0x5a);
    expect(io.delivered[10]).toBe(1);
  });

  it('does not set Remote IRR when no APIC accepts the interrupt', () => {
    const { io, route, rd, apics } = setup();
    apics.apics[0]!.write(A.SVR, 0xffn); // software-disabled
    route(9, R.TRIGGER_LEVEL | 0x49);
    io.setLine(9, true);
    expect(rd(0x10 + 18) & R.REMOTE_IRR).toBe(0);
  });

  it('routes by logical mask, broadcast, lowest priority and NMI', () => {
    const { io, route, irr, apics } = setup(3);
    route(1, R.DEST_LOGICAL | 0x41, 0b110); // logical: APICs 1 and 2
    io.setLine(1, true);
    expect([irr(0, 0x41), irr(1, 0x41), irr(2, 0x41)]).toEqual([false, true, true]);
    route(2, 0x42, 0xff); // physical broadcast
    io.setLine(2, true);
    expect([irr(0, 0x42), irr(1, 0x42), irr(2, 0x42)]).toEqual([true, true, true]);
    route(6, (1 << 8) | 0x46, 0xff); // lowest priority: one of them
    io.setLine(6, true);
    expect([0, 1, 2].filter((i) => irr(i, 0x46))).toHaveLength(1);
    route(7, (4 << 8) | 0x00, 2); // NMI
    io.setLine(7, true);
    expect(apics.takeNmi(2)).toBe(true);
    route(8, 0x48, 9); // no APIC 9
    io.setLine(8, true);
    expect([0, 1, 2].some((i) => irr(i, 0x48))).toBe(false);
  });

  it('survives any MMIO traffic and answers all ones outside IOREGSEL/IOWIN', () => {
    const { io } = setup();
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            offset: fc.integer({ min: 0, max: 0xfff }),
            data: fc.uint8Array({ minLength: 1, maxLength: 8 }),
            pin: fc.integer({ min: -2, max: 30 }),
            level: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (ops) => {
          for (const op of ops) {
            if (op.write) io.write(op.offset, op.data);
            else {
              const d = new Uint8Array(op.data.length);
              io.read(op.offset, d);
              for (let i = 0; i < d.length; i++) {
                const at = op.offset + i;
                if (at >= 0x14 || (at >= 4 && at < 0x10)) expect(d[i]).toBe(0xff);
              }
            }
            io.setLine(op.pin, op.level);
            io.eoi(op.offset & 0xff);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('IOAPIC rules', () => {
  it('never leaves a held, unmasked level undelivered, and edge pins never hold Remote IRR', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('assert', 'deassert', 'service', 'mask', 'unmask', 'edge', 'level'),
            pin: fc.integer({ min: 0, max: 3 }),
          }),
          { maxLength: 40 },
        ),
        (ops) => {
          const { io, wr, rd, apics } = setup(1);
          const wire = [false, false, false, false];
          const low = [0, 1, 2, 3].map((p) => R.TRIGGER_LEVEL | (0x40 + p));
          low.forEach((v, p) => wr(0x10 + 2 * p, v));
          const apic = apics.apics[0]!;
          for (const { op, pin } of ops) {
            if (op === 'assert' || op === 'deassert') {
              wire[pin] = op === 'assert';
              io.setLine(pin, wire[pin]);
            } else if (op === 'service') {
              const v = apic.irr.highest();
              if (v >= 0) {
                apic.acknowledge(v);
                apic.write(A.EOI, 0n);
              }
            } else {
              const bits = { mask: R.MASKED, unmask: 0, edge: 0, level: R.TRIGGER_LEVEL }[op];
              if (op === 'mask' || op === 'unmask') low[pin] = (low[pin]! & ~R.MASKED) | bits;
              else low[pin] = (low[pin]! & ~R.TRIGGER_LEVEL) | bits;
              wr(0x10 + 2 * pin, low[pin]!);
            }
            for (let p = 0; p < 4; p++) {
              const e = rd(0x10 + 2 * p);
              const level = (e & R.TRIGGER_LEVEL) !== 0;
              if (!level) expect(e & R.REMOTE_IRR).toBe(0);
              if (level && wire[p] && (e & R.MASKED) === 0)
                expect(e & R.REMOTE_IRR).toBe(R.REMOTE_IRR);
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
