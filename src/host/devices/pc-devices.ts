// The PC devices of a VM beside COM1 and the local APICs, wired as the ACPI tables of
// src/igvm/acpi-tables.ts describe them: the IOAPIC at the MADT's address, ISA IRQs on the GSIs
// its overrides name (IRQ 0 on pin 2, the SCI on IRQ 9), the PIT and port 0x61, the CMOS RTC,
// and the PM1a blocks and PM timer at the FADT's ports. Every clock is the virtual TSC.

import {
  ACPI_PM1A_CNT_PORT,
  ACPI_PM1A_EVT_PORT,
  ACPI_PM_TMR_PORT,
  ACPI_SCI_IRQ,
  ACPI_SLP_TYP_S5,
  DEFAULT_IOAPIC,
  QEMU_ISA_OVERRIDES,
} from '../../igvm/acpi-tables.js';
import { AcpiPm } from './acpi-pm.js';
import type { MmioBus, PortBus, PortDevice } from './bus.js';
import { IOAPIC_WINDOW, Ioapic } from './ioapic.js';
import { PIT_IRQ, PIT_PORT, Pit8254, SYSTEM_CONTROL_B_PORT, SystemControlB } from './pit8254.js';
import { RTC_INDEX_PORT, RTC_IRQ, RtcCmos } from './rtc-cmos.js';
import {
  ACPI_PM_TIMER_HZ,
  DeviceClock,
  type IrqLine,
  PIT_HZ,
  RTC_HZ,
  VIRTUAL_TSC_HZ,
} from './virtual-clock.js';
import type { X2apics } from './x2apic.js';

export interface PcDevicesOptions {
  readonly ports: PortBus;
  readonly mmio: MmioBus;
  readonly apics: X2apics;
  /** The machine's virtual TSC. */
  readonly tsc: () => bigint;
  /** The TSC's rate, which the device clocks divide; default VIRTUAL_TSC_HZ (1 GHz). */
  readonly tscHz?: bigint;
  /** The RTC's wall-clock time (Unix seconds) at TSC 0; default a fixed date (deterministic). */
  readonly rtcEpoch?: number;
  /** The guest entered ACPI S5 (soft off). */
  readonly powerOff: () => void;
}

/** The IOAPIC pin of ISA IRQ `irq`: the MADT's override, else the pin of the same number. */
export function ioapicPinOfIsaIrq(irq: number): number {
  return (QEMU_ISA_OVERRIDES.find((o) => o.source === irq)?.gsi ?? irq) - DEFAULT_IOAPIC.gsiBase;
}

/** Later than any TSC a run reaches. */
const NEVER = 1n << 64n;

export class PcDevices {
  readonly ioapic: Ioapic;
  readonly pit: Pit8254;
  readonly port61: SystemControlB;
  readonly rtc: RtcCmos;
  readonly acpiPm: AcpiPm;
  private readonly apics: X2apics;
  private readonly tsc: () => bigint;
  /**
   * Machine TSC before which no timed device raises an interrupt, so `poll` has nothing to do
   * (it runs before every VMRUN of the guest); any access to those devices resets it.
   */
  private dueAt = 0n;

  constructor(o: PcDevicesOptions) {
    this.apics = o.apics;
    this.tsc = o.tsc;
    this.ioapic = new Ioapic({ id: DEFAULT_IOAPIC.id, deliver: (m) => o.apics.deliver(m) });
    o.apics.onEoi((v) => this.ioapic.eoi(v));
    o.mmio.register(DEFAULT_IOAPIC.address, IOAPIC_WINDOW, this.ioapic);
    const tscHz = o.tscHz ?? VIRTUAL_TSC_HZ;
    const clock = (hz: bigint): DeviceClock => new DeviceClock(hz, o.tsc, tscHz);
    this.pit = new Pit8254({ clock: clock(PIT_HZ), irq0: this.isaIrq(PIT_IRQ) });
    o.ports.register(PIT_PORT, 4, this.touching(this.pit));
    this.port61 = new SystemControlB(this.pit);
    o.ports.register(SYSTEM_CONTROL_B_PORT, 1, this.touching(this.port61));
    this.rtc = new RtcCmos({
      clock: clock(RTC_HZ),
      irq8: this.isaIrq(RTC_IRQ),
      ...(o.rtcEpoch === undefined ? {} : { epoch: o.rtcEpoch }),
    });
    o.ports.register(RTC_INDEX_PORT, 2, this.touching(this.rtc));
    this.acpiPm = new AcpiPm({
      clock: clock(ACPI_PM_TIMER_HZ),
      pm1aEvt: ACPI_PM1A_EVT_PORT,
      pm1aCnt: ACPI_PM1A_CNT_PORT,
      pmTimer: ACPI_PM_TMR_PORT,
      s5SleepType: ACPI_SLP_TYP_S5,
      sci: this.isaIrq(ACPI_SCI_IRQ),
      powerOff: o.powerOff,
    });
    const pm = this.touching(this.acpiPm);
    o.ports.register(ACPI_PM1A_EVT_PORT, 4, pm);
    o.ports.register(ACPI_PM1A_CNT_PORT, 2, pm);
    o.ports.register(ACPI_PM_TMR_PORT, 4, pm);
  }

  /** `device` on the bus, with every access making `poll` look again. */
  private touching(device: PortDevice): PortDevice {
    return {
      name: device.name,
      in: (port, size) => {
        this.dueAt = 0n;
        return device.in(port, size);
      },
      out: (port, size, value) => {
        this.dueAt = 0n;
        device.out(port, size, value);
      },
    };
  }

  /** The line a device raises for ISA IRQ `irq`, wired to its IOAPIC pin. */
  isaIrq(irq: number): IrqLine {
    const pin = ioapicPinOfIsaIrq(irq);
    return (level) => this.ioapic.setLine(pin, level);
  }

  /** Brings the timed devices up to virtual time, raising the interrupts that are due. */
  poll(): void {
    if (this.tsc() < this.dueAt) return;
    this.pit.poll();
    this.rtc.update();
    this.acpiPm.update();
    let due: bigint | null = null;
    for (const t of [this.pit.nextEvent(), this.rtc.nextEvent(), this.acpiPm.nextEvent()])
      if (t !== null && (due === null || t < due)) due = t;
    this.dueAt = due ?? NEVER;
  }

  /**
   * The earliest machine TSC at which a timer raises an interrupt that can reach a local APIC
   * (IOAPIC pin or LVT unmasked), or null: where a host whose vCPUs all halted skips to.
   */
  nextEvent(): bigint | null {
    let best: bigint | null = null;
    const take = (t: bigint | null): void => {
      if (t !== null && (best === null || t < best)) best = t;
    };
    const open = (irq: number): boolean => !this.ioapic.masked(ioapicPinOfIsaIrq(irq));
    if (open(PIT_IRQ)) take(this.pit.nextEvent());
    if (open(RTC_IRQ)) take(this.rtc.nextEvent());
    if (open(ACPI_SCI_IRQ)) take(this.acpiPm.nextEvent());
    for (const a of this.apics.apics) if (a.timerUnmasked) take(a.nextTimerEvent());
    return best;
  }
}
