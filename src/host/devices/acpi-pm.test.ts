// The ACPI PM1a blocks and PM timer at the FADT's ports: timer rate and 24-bit wrap, status bits
// (write one to clear), the SCI, SCI_EN hard-wired on, and S5 as the DSDT's \_S5 names it.
import { describe, expect, it } from 'vitest';
import {
  ACPI_PM1A_CNT_PORT as CNT,
  ACPI_PM1A_EVT_PORT as EVT,
  ACPI_PM_TMR_PORT as TMR,
  ACPI_SLP_TYP_S5,
} from '../../igvm/acpi-tables.js';
import { AcpiPm, PM1_CNT, PM1_EN, PM1_STS } from './acpi-pm.js';
import { ACPI_PM_TIMER_HZ, DeviceClock } from './virtual-clock.js';

function setup() {
  const t = { tsc: 0n };
  const sci: boolean[] = [];
  let off = 0;
  const clock = new DeviceClock(ACPI_PM_TIMER_HZ, () => t.tsc);
  const pm = new AcpiPm({
    clock,
    pm1aEvt: EVT,
    pm1aCnt: CNT,
    pmTimer: TMR,
    s5SleepType: ACPI_SLP_TYP_S5,
    sci: (l) => sci.push(l),
    powerOff: () => off++,
  });
  return { t, pm, sci, clock, offs: () => off };
}

describe('ACPI PM timer', () => {
  it('counts 3.579545 MHz of virtual time in 24 bits', () => {
    const { t, pm } = setup();
    expect(pm.in(TMR, 4)).toBe(0);
    t.tsc = 1_000_000_000n; // one second
    expect(pm.in(TMR, 4)).toBe(3_579_545);
    t.tsc = 10_000_000_000n;
    expect(pm.in(TMR, 4)).toBe(35_795_450 & 0xff_ffff);
    expect(pm.in(TMR, 2)).toBe(35_795_450 & 0xffff);
    expect(pm.in(TMR + 2, 1)).toBe((35_795_450 >> 16) & 0xff);
    pm.out(TMR, 4, 0); // read-only
    expect(pm.in(TMR, 4)).toBe(35_795_450 & 0xff_ffff);
  });

  it('sets TMR_STS when bit 23 flips and raises the SCI while TMR_EN is set', () => {
    const { t, pm, sci, clock } = setup();
    pm.out(EVT + 2, 2, PM1_EN.TMR);
    expect(pm.nextEvent()).toBe(clock.tscOf(1n << 23n));
    t.tsc = clock.tscOf(1n << 23n) - 1n;
    expect(pm.in(EVT, 2) & PM1_STS.TMR).toBe(0);
    t.tsc = clock.tscOf(1n << 23n);
    expect(pm.in(EVT, 2) & PM1_STS.TMR).toBe(PM1_STS.TMR);
    expect(sci).toEqual([true]);
    expect(pm.nextEvent()).toBeNull(); // the SCI is already up
    pm.out(EVT, 2, PM1_STS.TMR); // write one to clear
    expect(pm.in(EVT, 2) & PM1_STS.TMR).toBe(0);
    expect(sci).toEqual([true, false]);
    expect(pm.in(EVT + 2, 2)).toBe(PM1_EN.TMR);
  });
});

describe('ACPI PM1 control', () => {
  it('reads SCI_EN as 1 whatever is written, and keeps SLP_TYP', () => {
    const { pm } = setup();
    expect(pm.in(CNT, 2)).toBe(PM1_CNT.SCI_EN);
    pm.out(CNT, 2, 3 << PM1_CNT.SLP_TYP_SHIFT);
    expect(pm.in(CNT, 2)).toBe(PM1_CNT.SCI_EN | (3 << PM1_CNT.SLP_TYP_SHIFT));
  });

  it('powers off on SLP_EN with the S5 type, in one word or in two byte writes, and not otherwise', () => {
    const a = setup();
    a.pm.out(CNT, 2, (ACPI_SLP_TYP_S5 << PM1_CNT.SLP_TYP_SHIFT) | PM1_CNT.SCI_EN); // no SLP_EN
    expect(a.offs()).toBe(0);
    a.pm.out(CNT, 2, (1 << PM1_CNT.SLP_TYP_SHIFT) | PM1_CNT.SLP_EN); // S1: not offered
    expect(a.offs()).toBe(0);
    a.pm.out(CNT, 2, (ACPI_SLP_TYP_S5 << PM1_CNT.SLP_TYP_SHIFT) | PM1_CNT.SLP_EN);
    expect(a.offs()).toBe(1);
    const b = setup();
    b.pm.out(CNT, 1, 0);
    b.pm.out(CNT + 1, 1, ((ACPI_SLP_TYP_S5 << PM1_CNT.SLP_TYP_SHIFT) | PM1_CNT.SLP_EN) >> 8);
    expect(b.offs()).toBe(1);
  });
});
