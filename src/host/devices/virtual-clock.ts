// Device clocks derived from the machine's virtual TSC: the PIT's 1.193182 MHz, the ACPI PM
// timer's 3.579545 MHz and the RTC's 32.768 kHz are whole ticks of `tsc * hz / tscHz`, so every
// device agrees with the TSC and with each other, and a run is the same bit for bit.

/**
 * The virtual TSC's rate: one machine TSC tick is a nanosecond. Nothing measures it from the
 * outside; it only fixes how device clocks relate to `machine.tsc` (and what a guest's
 * calibration against the PIT finds).
 */
export const VIRTUAL_TSC_HZ = 1_000_000_000n;

export const PIT_HZ = 1_193_182n;
export const ACPI_PM_TIMER_HZ = 3_579_545n;
export const RTC_HZ = 32_768n;

/** A device clock of `hz` driven by the TSC. */
export class DeviceClock {
  constructor(
    readonly hz: bigint,
    private readonly now: () => bigint,
    private readonly tscHz: bigint = VIRTUAL_TSC_HZ,
  ) {}

  /** Whole ticks of this clock since TSC 0. */
  ticks(): bigint {
    return this.ticksAt(this.now());
  }

  ticksAt(tsc: bigint): bigint {
    return tsc <= 0n ? 0n : (tsc * this.hz) / this.tscHz;
  }

  /** The first TSC value at which `ticks()` reaches `tick`. */
  tscOf(tick: bigint): bigint {
    return tick <= 0n ? 0n : (tick * this.tscHz + this.hz - 1n) / this.hz;
  }

  tsc(): bigint {
    return this.now();
  }
}

/** An interrupt request line as a device drives it (true = asserted, active high). */
export type IrqLine = (level: boolean) => void;
