// The 8254 and port 0x61 as Linux's TSC calibration and clock event drive them, with virtual time
// moved by hand: 1 GHz TSC, 1.193182 MHz PIT.
import { describe, expect, it } from 'vitest';
import { PIT_CONTROL_PORT as CTRL, PORT61, Pit8254, SystemControlB } from './pit8254.js';
import { DeviceClock, PIT_HZ, VIRTUAL_TSC_HZ } from './virtual-clock.js';

function setup() {
  const t = { tsc: 0n };
  const clock = new DeviceClock(PIT_HZ, () => t.tsc);
  const edges: bigint[] = [];
  let level = false;
  const pit = new Pit8254({
    clock,
    irq0: (l) => {
      if (l && !level) edges.push(t.tsc);
      level = l;
    },
  });
  const p61 = new SystemControlB(pit);
  const out = (port: number, v: number): void =>
    port === 0x61 ? p61.out(port, 1, v) : pit.out(port, 1, v);
  const inb = (port: number): number => (port === 0x61 ? p61.in(port, 1) : pit.in(port, 1));
  /** Moves virtual time to PIT tick `tick`. */
  const toTick = (tick: bigint): void => {
    t.tsc = clock.tscOf(tick);
  };
  return { t, clock, pit, out, inb, toTick, edges };
}

describe('8254 channel 2 and port 0x61 (TSC calibration)', () => {
  it('counts down from 0xFFFF in mode 0 and reads LSB then MSB, as quick_pit_calibrate does', () => {
    const { out, inb, toTick } = setup();
    toTick(1000n);
    out(0x61, (inb(0x61) & ~PORT61.SPEAKER) | PORT61.GATE2);
    out(CTRL, 0xb0); // channel 2, LSB then MSB, mode 0, binary
    out(0x42, 0xff);
    out(0x42, 0xff);
    toTick(1000n + 0x100n); // 256 clocks later
    const lsb = inb(0x42);
    const msb = inb(0x42);
    expect((msb << 8) | lsb).toBe(0xffff - 0x100);
    toTick(1000n + 0x1234n);
    inb(0x42);
    expect(inb(0x42)).toBe((0xffff - 0x1234) >> 8);
  });

  it('raises OUT2 in port 0x61 bit 5 at terminal count, at the virtual time 1.193182 MHz predicts', () => {
    const { out, inb, t, clock } = setup();
    out(0x61, PORT61.GATE2);
    out(CTRL, 0xb0);
    const start = clock.ticks();
    out(0x42, 0x9c); // 11932 clocks: 10 ms, as pit_calibrate_tsc's latch
    out(0x42, 0x2e);
    expect(inb(0x61) & PORT61.OUT2).toBe(0);
    let polls = 0;
    while ((inb(0x61) & PORT61.OUT2) === 0) {
      t.tsc += 1000n; // 1 us per poll
      polls++;
    }
    const expected = Number(((start + 11932n) * VIRTUAL_TSC_HZ) / PIT_HZ / 1000n);
    expect(Math.abs(Number(t.tsc / 1000n) - expected)).toBeLessThanOrEqual(1);
    expect(polls).toBeGreaterThan(9990);
    expect(polls).toBeLessThan(10010);
  });

  it('stops channel 2 while its gate is low (mode 0) and goes on when it is raised', () => {
    const { out, inb, toTick } = setup();
    out(CTRL, 0xb0);
    out(0x42, 0x00);
    out(0x42, 0x10); // 0x1000, gate low: not counting
    toTick(500n);
    out(CTRL, 0x80); // latch channel 2
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(0x1000);
    out(0x61, PORT61.GATE2);
    toTick(600n);
    out(CTRL, 0x80);
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(0x1000 - 100);
    out(0x61, 0);
    toTick(5000n);
    out(CTRL, 0x80);
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(0x1000 - 100);
  });

  it('latches the count until both bytes are read, and read-back latches status then count', () => {
    const { out, inb, toTick } = setup();
    out(0x61, PORT61.GATE2);
    out(CTRL, 0xb4); // channel 2, word, mode 2, at tick 0
    out(0x42, 0x00);
    out(0x42, 0x01); // 256
    toTick(10n);
    out(CTRL, 0x80); // counter latch
    toTick(50n);
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(256 - 10);
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(256 - 50); // live again
    toTick(300n); // mode 2 reloads every 256 clocks
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(256 - 44);
    out(CTRL, 0xc8); // read-back: count and status of channel 2
    toTick(310n);
    expect(inb(0x42)).toBe(0x80 | 0x30 | (2 << 1)); // OUT high, word access, mode 2
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(256 - 44);
    out(CTRL, 0xe8); // read-back of status only (bit 5: no count)
    expect(inb(0x42)).toBe(0x80 | 0x30 | (2 << 1));
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(256 - 54);
  });

  it('counts in BCD and in LSB-only and MSB-only access modes', () => {
    const { out, inb, toTick } = setup();
    out(0x61, PORT61.GATE2);
    out(CTRL, 0xb1); // word, mode 0, BCD
    out(0x42, 0x00);
    out(0x42, 0x10); // 1000 decimal
    toTick(1n);
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(0x0999);
    out(CTRL, 0x90); // LSB only, mode 0
    out(0x42, 0x80);
    toTick(0x11n);
    expect(inb(0x42)).toBe(0x80 - 0x10);
    out(CTRL, 0xa0); // MSB only
    out(0x42, 0x02); // 0x200
    toTick(0x111n);
    expect(inb(0x42)).toBe(0x01);
  });

  it('reads all ones from the control port and survives any byte at any PIT port', () => {
    const { pit } = setup();
    expect(pit.in(CTRL, 1)).toBe(0xff);
    for (let v = 0; v < 256; v++) {
      for (let port = 0x40; port <= 0x43; port++) {
        pit.out(port, 1, v);
        pit.in(port, 1);
        pit.in(port, 2);
      }
    }
  });
});

describe('8254 channel 0 on IRQ 0', () => {
  it('pulses IRQ 0 once per period in mode 2, and says when the next one comes', () => {
    const { out, t, clock, pit, edges } = setup();
    out(CTRL, 0x34); // channel 0, word, mode 2
    out(0x40, 0xa9);
    out(0x40, 0x04); // 1193: ~1 ms
    const period = 1193n;
    expect(pit.nextEvent()).toBe(clock.tscOf(period));
    for (let k = 1n; k <= 5n; k++) {
      t.tsc = pit.nextEvent()!;
      pit.poll();
      expect(edges[edges.length - 1]).toBe(clock.tscOf(k * period));
    }
    expect(edges).toHaveLength(5);
    // Periods nobody looked at coalesce into one pulse.
    t.tsc += 10_000_000n;
    pit.poll();
    expect(edges).toHaveLength(6);
    expect(pit.nextEvent()!).toBeGreaterThan(t.tsc);
  });

  it('pulses once at terminal count in mode 0, then has nothing more to say', () => {
    const { out, t, pit, edges, clock } = setup();
    out(CTRL, 0x30); // channel 0, mode 0 (Linux's clockevent shutdown writes this)
    out(0x40, 0x00);
    out(0x40, 0x00); // 65536
    t.tsc = clock.tscOf(65535n);
    pit.poll();
    expect(edges).toHaveLength(0);
    t.tsc = clock.tscOf(65536n);
    pit.poll();
    expect(edges).toHaveLength(1);
    expect(pit.nextEvent()).toBeNull();
  });
});

describe('8254 gate-triggered and strobe modes on channel 2', () => {
  it('starts a mode 1 one-shot on the gate rising edge, OUT low until terminal count', () => {
    const { out, inb, toTick } = setup();
    out(CTRL, 0xb2); // channel 2, word, mode 1
    out(0x42, 100);
    out(0x42, 0);
    toTick(50n);
    expect(inb(0x61) & PORT61.OUT2).toBe(PORT61.OUT2); // waiting for a trigger: OUT high
    out(0x61, PORT61.GATE2); // trigger at tick 50
    toTick(60n);
    expect(inb(0x61) & PORT61.OUT2).toBe(0);
    expect(inb(0x42) | (inb(0x42) << 8)).toBe(90);
    toTick(150n);
    expect(inb(0x61) & PORT61.OUT2).toBe(PORT61.OUT2);
    out(0x61, 0);
    out(0x61, PORT61.GATE2); // retrigger at tick 150
    toTick(151n);
    expect(inb(0x61) & PORT61.OUT2).toBe(0);
  });

  it('drops OUT for exactly one clock at terminal count in mode 4', () => {
    const { out, inb, toTick } = setup();
    out(0x61, PORT61.GATE2);
    out(CTRL, 0xb8); // channel 2, word, mode 4, at tick 0
    out(0x42, 10);
    out(0x42, 0);
    const at = (tick: bigint): number => {
      toTick(tick);
      return inb(0x61) & PORT61.OUT2;
    };
    expect([at(9n), at(10n), at(11n)]).toEqual([PORT61.OUT2, 0, PORT61.OUT2]);
  });

  it('toggles the refresh bit every 18 clocks and keeps the writable bits of port 0x61', () => {
    const { out, inb, toTick } = setup();
    out(0x61, 0xff);
    toTick(0n);
    expect(inb(0x61) & 0x0f).toBe(0x0f);
    const r0 = inb(0x61) & PORT61.REFRESH;
    toTick(18n);
    expect(inb(0x61) & PORT61.REFRESH).not.toBe(r0);
  });
});
