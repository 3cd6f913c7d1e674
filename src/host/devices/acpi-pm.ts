// The ACPI fixed hardware our FADT describes (ACPI 6.5, 4.8 "ACPI Hardware Features" and 4.8.3
// "PM1 Event/Control Grouping"): the PM1a event block (PM1_STS at +0, PM1_EN at +2, 16 bits
// each), the PM1a control block (PM1_CNT) and the power-management timer, a free-running 24-bit
// counter at 3.579545 MHz on the virtual TSC (32-bit if the FADT sets TMR_VAL_EXT; ours does not).
// Status bits are write-one-to-clear; the SCI (ISA IRQ 9, level, as the MADT's override says) is
// asserted while a status bit and its enable are both set. SMI_CMD is 0, so the hardware is
// always in ACPI mode: SCI_EN reads 1 and cannot be cleared. Writing SLP_EN with the sleeping
// type that the DSDT's \_S5 names powers the machine off; other sleeping states are not offered
// (the DSDT has no \_S1-\_S4) and their requests are ignored. The PM timer's MSB toggling sets
// TMR_STS, the only status source here (no fixed buttons: the FADT marks both as control-method
// devices; no RTC wake; no global lock owner, as there is no SMM firmware).

import type { PortDevice, PortSize } from './bus.js';
import { DeviceClock, type IrqLine } from './virtual-clock.js';

export const PM1_STS = {
  TMR: 1 << 0,
  BM: 1 << 4,
  GBL: 1 << 5,
  PWRBTN: 1 << 8,
  SLPBTN: 1 << 9,
  RTC: 1 << 10,
  WAK: 1 << 15,
} as const;
export const PM1_EN = {
  TMR: 1 << 0,
  GBL: 1 << 5,
  PWRBTN: 1 << 8,
  SLPBTN: 1 << 9,
  RTC: 1 << 10,
} as const;
export const PM1_CNT = {
  SCI_EN: 1 << 0,
  BM_RLD: 1 << 1,
  GBL_RLS: 1 << 2,
  SLP_TYP_SHIFT: 10,
  SLP_TYP_MASK: 7 << 10,
  SLP_EN: 1 << 13,
} as const;
const PM1_EN_WRITABLE = PM1_EN.TMR | PM1_EN.GBL | PM1_EN.PWRBTN | PM1_EN.SLPBTN | PM1_EN.RTC;
/** BM_RLD and SLP_TYP are kept; SCI_EN is hard-wired on; GBL_RLS and SLP_EN read as 0. */
const PM1_CNT_KEPT = PM1_CNT.BM_RLD | PM1_CNT.SLP_TYP_MASK;

export interface AcpiPmOptions {
  readonly clock: DeviceClock;
  /** The ports the FADT advertises. */
  readonly pm1aEvt: number;
  readonly pm1aCnt: number;
  readonly pmTimer: number;
  /** 32-bit timer (FADT TMR_VAL_EXT); default 24-bit. */
  readonly timer32?: boolean;
  /** The SLP_TYP value the DSDT's \_S5 package gives for PM1a. */
  readonly s5SleepType: number;
  /** ISA IRQ 9, the SCI. */
  readonly sci: IrqLine;
  /** The guest entered S5 (soft off). */
  readonly powerOff: () => void;
}

export class AcpiPm implements PortDevice {
  readonly name = 'acpi-pm';
  private sts = 0;
  private en = 0;
  private cnt = PM1_CNT.SCI_EN;
  /** The timer MSB period count last folded into TMR_STS. */
  private msbPeriodSeen = 0n;
  private sciLevel = false;
  private readonly msbShift: bigint;
  private readonly timerMask: bigint;

  constructor(private readonly o: AcpiPmOptions) {
    this.msbShift = o.timer32 === true ? 31n : 23n;
    this.timerMask = o.timer32 === true ? 0xffff_ffffn : 0xff_ffffn;
  }

  /** PM_TMR: the counter's value now. */
  timer(): number {
    return Number(this.o.clock.ticks() & this.timerMask);
  }

  /** Brings TMR_STS up to virtual time and drives the SCI. */
  update(): void {
    const period = this.o.clock.ticks() >> this.msbShift;
    if (period > this.msbPeriodSeen) {
      this.msbPeriodSeen = period;
      this.sts |= PM1_STS.TMR;
    }
    const level = (this.sts & this.en) !== 0;
    if (level !== this.sciLevel) {
      this.sciLevel = level;
      this.o.sci(level);
    }
  }

  /** Machine TSC of the next timer-carry SCI while the SCI is idle, or null. */
  nextEvent(): bigint | null {
    if ((this.en & PM1_EN.TMR) === 0 || this.sciLevel) return null;
    return this.o.clock.tscOf((this.msbPeriodSeen + 1n) << this.msbShift);
  }

  private readByte(port: number): number {
    const o = this.o;
    if (port >= o.pm1aEvt && port < o.pm1aEvt + 4) {
      const i = port - o.pm1aEvt;
      const reg = i < 2 ? this.sts : this.en;
      return (reg >> (8 * (i & 1))) & 0xff;
    }
    if (port >= o.pm1aCnt && port < o.pm1aCnt + 2)
      return ((this.cnt | PM1_CNT.SCI_EN) >> (8 * (port - o.pm1aCnt))) & 0xff;
    if (port >= o.pmTimer && port < o.pmTimer + 4)
      return (this.timer() >>> (8 * (port - o.pmTimer))) & 0xff;
    return 0xff;
  }

  in(port: number, size: PortSize): number {
    this.update();
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.readByte(port + i) << (8 * i);
    return v >>> 0;
  }

  out(port: number, size: PortSize, value: number): void {
    this.update();
    const o = this.o;
    let cntWritten = false;
    let cntValue = this.cnt;
    for (let i = 0; i < size; i++) {
      const p = port + i;
      const b = (value >>> (8 * i)) & 0xff;
      if (p >= o.pm1aEvt && p < o.pm1aEvt + 2) {
        this.sts &= ~(b << (8 * (p - o.pm1aEvt))); // write one to clear
      } else if (p >= o.pm1aEvt + 2 && p < o.pm1aEvt + 4) {
        const shift = 8 * (p - o.pm1aEvt - 2);
        this.en = ((this.en & ~(0xff << shift)) | (b << shift)) & PM1_EN_WRITABLE;
      } else if (p >= o.pm1aCnt && p < o.pm1aCnt + 2) {
        const shift = 8 * (p - o.pm1aCnt);
        cntValue = (cntValue & ~(0xff << shift)) | (b << shift);
        cntWritten = true;
      }
      // PM_TMR is read-only.
    }
    if (cntWritten) {
      this.cnt = (cntValue & PM1_CNT_KEPT) | PM1_CNT.SCI_EN;
      if ((cntValue & PM1_CNT.SLP_EN) !== 0) {
        const type = (cntValue & PM1_CNT.SLP_TYP_MASK) >> PM1_CNT.SLP_TYP_SHIFT;
        if (type === o.s5SleepType) {
          o.powerOff();
          return;
        }
      }
    }
    this.update();
  }
}
