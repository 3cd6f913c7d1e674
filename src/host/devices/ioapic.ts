// The I/O APIC at 0xFEC00000 (Intel 82093AA datasheet; KVM's ioapic.c where it leaves a choice),
// reached through MMIO exits: IOREGSEL at +0x00 selects a register, IOWIN at +0x10 reads or writes
// it. Registers: 0x00 ID (bits 27:24), 0x01 version (0x11, maximum redirection entry 23 in bits
// 23:16), 0x02 arbitration ID, 0x10 + 2n / 0x11 + 2n the low / high half of pin n's redirection
// entry. Version 0x11 has no EOI register: the x2APIC does not offer directed EOI either, so the
// end of a level-triggered interrupt arrives as the local APIC's EOI broadcast (`eoi`).
// Pin semantics: the wire level of each pin comes from a device (`setLine`); the entry's polarity
// says which level is "asserted". An edge-triggered pin delivers on each assertion while unmasked
// (an edge while masked is lost); a level-triggered pin delivers while asserted, unmasked and
// Remote IRR clear, sets Remote IRR when an APIC accepted it, and is delivered again if still
// asserted when the EOI of its vector clears Remote IRR (or when it is unmasked).
// Indirect registers that do not exist read as all ones, as do offsets other than IOREGSEL/IOWIN.

import type { MmioDevice } from './bus.js';
import type { InterruptMessage } from './x2apic.js';

export const IOAPIC_BASE = 0xfec0_0000;
/** The MMIO window claimed (one page, as the MADT's IOAPIC entry implies). */
export const IOAPIC_WINDOW = 0x1000;
export const IOAPIC_PINS = 24;
export const IOAPIC_VERSION = 0x11;

/** MMIO offsets. */
export const IOAPIC_MMIO = { IOREGSEL: 0x00, IOWIN: 0x10 } as const;
/** Indirect register indexes. */
export const IOAPIC_REG = { ID: 0x00, VERSION: 0x01, ARBITRATION: 0x02, REDTBL: 0x10 } as const;

/** Redirection entry bits (low dword; the destination is bits 63:56). */
export const IOAPIC_RTE = {
  VECTOR: 0xff,
  DELIVERY_MODE_SHIFT: 8,
  DEST_LOGICAL: 1 << 11,
  DELIVERY_STATUS: 1 << 12,
  POLARITY_LOW: 1 << 13,
  REMOTE_IRR: 1 << 14,
  TRIGGER_LEVEL: 1 << 15,
  MASKED: 1 << 16,
} as const;

/** What the guest may write: vector, delivery and destination mode, polarity, trigger, mask. */
const RTE_LOW_WRITABLE =
  0xfff | IOAPIC_RTE.POLARITY_LOW | IOAPIC_RTE.TRIGGER_LEVEL | IOAPIC_RTE.MASKED;
const RTE_HIGH_WRITABLE = 0xff00_0000;

export interface IoapicOptions {
  readonly id?: number;
  /** Sends an interrupt message to the local APICs; returns how many accepted it. */
  readonly deliver: (m: InterruptMessage) => number;
}

export class Ioapic implements MmioDevice {
  readonly name = 'ioapic';
  private ioregsel = 0;
  private id: number;
  private readonly low = new Uint32Array(IOAPIC_PINS);
  private readonly high = new Uint32Array(IOAPIC_PINS);
  /** Wire level of each pin as its device drives it. */
  private readonly wire = new Uint8Array(IOAPIC_PINS);
  /** Assertion state last seen, for edge detection. */
  private readonly asserted = new Uint8Array(IOAPIC_PINS);
  private readonly deliverFn: (m: InterruptMessage) => number;
  /** Interrupts sent, by pin (for the inspector and tests). */
  readonly delivered = new Uint32Array(IOAPIC_PINS);

  constructor(o: IoapicOptions) {
    this.id = (o.id ?? 0) & 0xf;
    this.deliverFn = o.deliver;
    this.low.fill(IOAPIC_RTE.MASKED); // every pin masked at reset
  }

  /** The redirection entry of `pin` as 64 bits. */
  entry(pin: number): bigint {
    return (BigInt(this.high[pin]!) << 32n) | BigInt(this.low[pin]!);
  }

  /** Whether `pin` cannot deliver anything now (masked, or no such pin). */
  masked(pin: number): boolean {
    return pin < 0 || pin >= IOAPIC_PINS || (this.low[pin]! & IOAPIC_RTE.MASKED) !== 0;
  }

  /** A device drives the wire of `pin` (out-of-range pins are not wired). */
  setLine(pin: number, level: boolean): void {
    if (pin < 0 || pin >= IOAPIC_PINS) return;
    this.wire[pin] = level ? 1 : 0;
    this.evaluate(pin);
  }

  /** A rising and a falling edge (an ISA device's pulse, e.g. the PIT's channel 0 output). */
  pulse(pin: number): void {
    this.setLine(pin, true);
    this.setLine(pin, false);
  }

  /** The local APICs' EOI broadcast of a level-triggered `vector`. */
  eoi(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const lo = this.low[pin]!;
      if ((lo & IOAPIC_RTE.VECTOR) !== vector || (lo & IOAPIC_RTE.REMOTE_IRR) === 0) continue;
      this.low[pin] = lo & ~IOAPIC_RTE.REMOTE_IRR;
      this.evaluate(pin);
    }
  }

  private isAsserted(pin: number): boolean {
    return (this.wire[pin] === 1) !== ((this.low[pin]! & IOAPIC_RTE.POLARITY_LOW) !== 0);
  }

  /**
   * Applies a change of wire, entry or Remote IRR to `pin`. The assertion state is tracked while
   * masked too, so unmasking delivers a held level but never a stale edge.
   */
  private evaluate(pin: number): void {
    const now = this.isAsserted(pin);
    const was = this.asserted[pin] === 1;
    this.asserted[pin] = now ? 1 : 0;
    const lo = this.low[pin]!;
    if (!now || (lo & IOAPIC_RTE.MASKED) !== 0) return;
    if ((lo & IOAPIC_RTE.TRIGGER_LEVEL) === 0) {
      if (!was) this.send(pin);
      return;
    }
    if ((lo & IOAPIC_RTE.REMOTE_IRR) === 0) this.send(pin);
  }

  private send(pin: number): void {
    const lo = this.low[pin]!;
    const level = (lo & IOAPIC_RTE.TRIGGER_LEVEL) !== 0;
    const accepted = this.deliverFn({
      vector: lo & IOAPIC_RTE.VECTOR,
      deliveryMode: (lo >>> IOAPIC_RTE.DELIVERY_MODE_SHIFT) & 7,
      logical: (lo & IOAPIC_RTE.DEST_LOGICAL) !== 0,
      destination: this.high[pin]! >>> 24,
      level,
    });
    this.delivered[pin]!++;
    if (level && accepted > 0) this.low[pin] = this.low[pin]! | IOAPIC_RTE.REMOTE_IRR;
  }

  private readIndirect(): number {
    const r = this.ioregsel;
    if (r === IOAPIC_REG.ID) return this.id << 24;
    if (r === IOAPIC_REG.VERSION) return ((IOAPIC_PINS - 1) << 16) | IOAPIC_VERSION;
    if (r === IOAPIC_REG.ARBITRATION) return this.id << 24;
    const pin = (r - IOAPIC_REG.REDTBL) >> 1;
    if (r < IOAPIC_REG.REDTBL || pin >= IOAPIC_PINS) return 0xffff_ffff;
    return (r & 1) === 0 ? this.low[pin]! : this.high[pin]!;
  }

  private writeIndirect(value: number): void {
    const r = this.ioregsel;
    if (r === IOAPIC_REG.ID) {
      this.id = (value >>> 24) & 0xf;
      return;
    }
    const pin = (r - IOAPIC_REG.REDTBL) >> 1;
    if (r < IOAPIC_REG.REDTBL || pin >= IOAPIC_PINS) return; // version, arbitration: read-only
    if ((r & 1) === 1) {
      this.high[pin] = value & RTE_HIGH_WRITABLE;
      return;
    }
    const old = this.low[pin]!;
    let lo = (old & ~RTE_LOW_WRITABLE) | (value & RTE_LOW_WRITABLE);
    // Remote IRR means nothing for an edge-triggered pin (KVM clears it on the switch).
    if ((lo & IOAPIC_RTE.TRIGGER_LEVEL) === 0) lo &= ~IOAPIC_RTE.REMOTE_IRR;
    this.low[pin] = lo >>> 0;
    // A polarity change can make an edge; unmasking a held level delivers it.
    this.evaluate(pin);
  }

  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      let byte = 0xff;
      if (at < IOAPIC_MMIO.IOREGSEL + 4) byte = at === 0 ? this.ioregsel : 0;
      else if (at >= IOAPIC_MMIO.IOWIN && at < IOAPIC_MMIO.IOWIN + 4)
        byte = (this.readIndirect() >>> (8 * (at - IOAPIC_MMIO.IOWIN))) & 0xff;
      data[i] = byte;
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === IOAPIC_MMIO.IOREGSEL && data.length > 0) {
      this.ioregsel = data[0]!;
      return;
    }
    if (offset < IOAPIC_MMIO.IOWIN || offset + data.length > IOAPIC_MMIO.IOWIN + 4) return;
    // A narrower write merges its bytes into the selected register.
    let v = this.readIndirect();
    for (let i = 0; i < data.length; i++) {
      const shift = 8 * (offset - IOAPIC_MMIO.IOWIN + i);
      v = (v & ~(0xff << shift)) | (data[i]! << shift);
    }
    this.writeIndirect(v >>> 0);
  }
}
