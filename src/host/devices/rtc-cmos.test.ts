// The MC146818 RTC on virtual time: the date it shows, BCD/binary and 12/24-hour formats, UIP,
// SET, the divider, flags and IRQ 8, the NMI mask bit and the CMOS RAM.
import { describe, expect, it } from 'vitest';
import { RTC_B, RTC_C, RtcCmos } from './rtc-cmos.js';
import { DeviceClock, RTC_HZ } from './virtual-clock.js';

const SEC = 1_000_000_000n;
/** 2026-11-27 16:45:30 UTC, a Friday. */
const EPOCH = Date.UTC(2026, 10, 27, 16, 45, 30) / 1000;

function setup(epoch = EPOCH) {
  const t = { tsc: 0n };
  const irq: boolean[] = [];
  const rtc = new RtcCmos({
    clock: new DeviceClock(RTC_HZ, () => t.tsc),
    irq8: (l) => irq.push(l),
    epoch,
  });
  const rd = (reg: number): number => {
    rtc.out(0x70, 1, reg);
    return rtc.in(0x71, 1);
  };
  const wr = (reg: number, v: number): void => {
    rtc.out(0x70, 1, reg);
    rtc.out(0x71, 1, v);
  };
  const time = (): number[] => [9, 8, 7, 6, 4, 2, 0].map(rd);
  return { t, rtc, rd, wr, irq, time };
}

describe('CMOS RTC', () => {
  it('shows the epoch in BCD, 24-hour, and counts virtual seconds', () => {
    const { t, time, rd } = setup();
    // year, month, day, weekday (1 = Sunday), hours, minutes, seconds
    expect(time()).toEqual([0x26, 0x11, 0x27, 0x06, 0x16, 0x45, 0x30]);
    expect(rd(0x32)).toBe(0x20); // century
    t.tsc = 29n * SEC + SEC / 2n;
    expect(time()).toEqual([0x26, 0x11, 0x27, 0x06, 0x16, 0x45, 0x59]);
    t.tsc = 30n * SEC;
    expect(time()).toEqual([0x26, 0x11, 0x27, 0x06, 0x16, 0x46, 0x00]);
    expect(rd(0x0d)).toBe(0x80); // valid RAM and time
  });

  it('answers in binary and 12-hour format when status B asks for them', () => {
    const { wr, rd } = setup();
    wr(0x0b, RTC_B.DM_BINARY); // binary, 12-hour
    expect(rd(0x04)).toBe(0x80 | 4); // 4 PM
    expect(rd(0x02)).toBe(45);
    wr(0x0b, 0); // BCD, 12-hour
    expect(rd(0x04)).toBe(0x80 | 0x04);
  });

  it('sets UIP in the 244 us before each update and never otherwise', () => {
    const { t, rd } = setup();
    const uip = (): number => rd(0x0a) & 0x80;
    t.tsc = SEC - 245_000n;
    expect(uip()).toBe(0);
    t.tsc = SEC - 240_000n;
    expect(uip()).toBe(0x80);
    t.tsc = SEC;
    expect(uip()).toBe(0);
    expect(rd(0x0a) & 0x7f).toBe(0x26); // divider on, 1024 Hz
  });

  it('freezes the time while SET is on and runs on from what the guest wrote', () => {
    const { t, wr, rd, time } = setup();
    wr(0x0b, RTC_B.SET | RTC_B.HOUR_24);
    wr(0x09, 0x30);
    wr(0x04, 0x23);
    wr(0x02, 0x59);
    wr(0x00, 0x58);
    t.tsc = 5n * SEC;
    expect(time()).toEqual([0x30, 0x11, 0x27, 0x04, 0x23, 0x59, 0x58]); // 2030-11-27 is a Wednesday
    expect(rd(0x0a) & 0x80).toBe(0); // no updates while SET
    wr(0x0b, RTC_B.HOUR_24);
    // The divider kept its phase: the next update is at the next whole second.
    t.tsc = 5n * SEC + SEC / 2n;
    expect(time()).toEqual([0x30, 0x11, 0x27, 0x04, 0x23, 0x59, 0x58]);
    t.tsc = 6n * SEC;
    expect(time()).toEqual([0x30, 0x11, 0x27, 0x04, 0x23, 0x59, 0x59]);
    t.tsc = 7n * SEC;
    expect(time()).toEqual([0x30, 0x11, 0x28, 0x05, 0x00, 0x00, 0x00]);
  });

  it('raises IRQ 8 for periodic and update-ended interrupts; reading C clears the flags', () => {
    const { t, wr, rd, irq, rtc } = setup();
    wr(0x0b, RTC_B.HOUR_24 | RTC_B.PIE); // 1024 Hz
    const period = 976_563n; // 32 ticks of 32.768 kHz = 976562.5 ns, the first TSC past it
    expect(rtc.nextEvent()).toBe(period);
    t.tsc = period - 1n;
    rtc.update();
    expect(irq).toEqual([]);
    t.tsc = period;
    rtc.update();
    expect(irq).toEqual([true]);
    expect(rd(0x0c)).toBe(RTC_C.IRQF | RTC_C.PF);
    expect(irq).toEqual([true, false]);
    expect(rd(0x0c)).toBe(0);
    wr(0x0b, RTC_B.HOUR_24 | RTC_B.UIE);
    expect(rtc.nextEvent()).toBe(SEC);
    t.tsc = SEC;
    rtc.update();
    expect(irq).toEqual([true, false, true]);
    expect(rd(0x0c)).toBe(RTC_C.IRQF | RTC_C.UF | RTC_C.PF); // PF is set whether enabled or not
  });

  it('matches the alarm, with 0xC0-0xFF as "any"', () => {
    const { t, wr, rd, rtc } = setup();
    wr(0x01, 0x33); // second 33 of any minute and hour
    wr(0x03, 0xff);
    wr(0x05, 0xc0);
    wr(0x0b, RTC_B.HOUR_24 | RTC_B.AIE);
    expect(rtc.nextEvent()).toBe(3n * SEC);
    t.tsc = 3n * SEC;
    expect(rd(0x0c) & RTC_C.AF).toBe(RTC_C.AF);
  });

  it('keeps CMOS RAM, takes port 0x70 bit 7 as the NMI mask, and ignores writes to C and D', () => {
    const { rtc, wr, rd } = setup();
    wr(0x40, 0xa5);
    expect(rd(0x40)).toBe(0xa5);
    rtc.out(0x70, 1, 0x80 | 0x40);
    expect(rtc.nmiDisabled).toBe(true);
    expect(rtc.in(0x71, 1)).toBe(0xa5);
    rtc.out(0x70, 1, 0x0d);
    expect(rtc.nmiDisabled).toBe(false);
    wr(0x0d, 0);
    expect(rd(0x0d)).toBe(0x80);
    expect(rtc.in(0x70, 1)).toBe(0xff);
    // Garbage time writes are dropped, never thrown.
    for (let v = 0; v < 256; v++) for (let r = 0; r < 0x0e; r++) wr(r, v);
  });
});

describe('CMOS RTC divider', () => {
  it('stops the clock while the divider is in reset and updates 500 ms after it is released', () => {
    const { t, wr, rd } = setup();
    t.tsc = SEC / 4n;
    wr(0x0a, 0x70 | 0x06); // divider reset
    t.tsc = 10n * SEC;
    expect(rd(0x00)).toBe(0x30);
    wr(0x0a, 0x26); // released at 10 s
    t.tsc = 10n * SEC + SEC / 2n - 1n;
    expect(rd(0x00)).toBe(0x30);
    t.tsc = 10n * SEC + SEC / 2n;
    expect(rd(0x00)).toBe(0x31);
  });
});
