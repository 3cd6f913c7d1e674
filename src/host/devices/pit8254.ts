// The 8254 programmable interval timer at ports 0x40-0x43 (Intel 82C54 datasheet) and system
// control port B at 0x61, clocked at 1.193182 MHz from the virtual TSC. Linux uses channel 2 to
// measure the TSC (`quick_pit_calibrate`, `pit_calibrate_tsc`: gate on through port 0x61 bit 0,
// mode 0, count 0xFFFF, then polling the MSB or OUT2 in port 0x61 bit 5) and, only when it has no
// better clock event, channel 0 in mode 2 or 3 on ISA IRQ 0.
// Modelled: the six modes (6 and 7 alias 2 and 3) with their OUT waveforms, binary and BCD
// counting, LSB / MSB / LSB-then-MSB access, counter latch and read-back (status and count), null
// count, and the gate (channels 0 and 1 tied high; channel 2's from port 0x61): low pauses modes 0
// and 4 and stops modes 2 and 3 with OUT high; a rising edge restarts modes 1, 2, 3 and 5. New
// counts take effect at once (the datasheet waits for the end of the period in modes 2 and 3).
// Channel 0's OUT rising edges pulse IRQ 0; edges nobody looked at coalesce into one, as a busy
// IRR bit does. Everything is computed from the tick at which counting started, so nothing runs
// between accesses: `poll` and `nextEvent` serve the scheduler.

import type { PortDevice, PortSize } from './bus.js';
import { DeviceClock, type IrqLine } from './virtual-clock.js';

export const PIT_PORT = 0x40;
export const PIT_CONTROL_PORT = 0x43;
export const SYSTEM_CONTROL_B_PORT = 0x61;
/** The PIT's ISA IRQ. */
export const PIT_IRQ = 0;

/** Control word (port 0x43) fields. */
export const PIT_CW = {
  SELECT_SHIFT: 6,
  READ_BACK: 3,
  ACCESS_SHIFT: 4,
  ACCESS_LATCH: 0,
  ACCESS_LSB: 1,
  ACCESS_MSB: 2,
  ACCESS_WORD: 3,
  MODE_SHIFT: 1,
  BCD: 1,
} as const;
/** Read-back command bits: bit 5 clear latches counts, bit 4 clear latches status. */
export const PIT_READ_BACK = { NO_COUNT: 1 << 5, NO_STATUS: 1 << 4 } as const;
/** Status byte: OUT and null count above the channel's control bits 5:0. */
export const PIT_STATUS = { OUT: 1 << 7, NULL_COUNT: 1 << 6 } as const;
/** Port 0x61 bits. */
export const PORT61 = {
  GATE2: 1 << 0,
  SPEAKER: 1 << 1,
  REFRESH: 1 << 4,
  OUT2: 1 << 5,
} as const;
const PORT61_WRITABLE = 0x0f;
/** DRAM refresh request toggles every 18 PIT clocks (~15 us), as channel 1 was programmed. */
const REFRESH_TICKS = 18n;

function toBcd(n: number): number {
  return (
    (n % 10) |
    ((Math.floor(n / 10) % 10) << 4) |
    ((Math.floor(n / 100) % 10) << 8) |
    (Math.floor(n / 1000) << 12)
  );
}
function fromBcd(n: number): number {
  return (n & 0xf) + ((n >> 4) & 0xf) * 10 + ((n >> 8) & 0xf) * 100 + ((n >> 12) & 0xf) * 1000;
}

class PitChannel {
  mode = 0;
  access: number = PIT_CW.ACCESS_WORD;
  bcd = false;
  /** The count register as written (0 = the maximum). */
  reload = 0;
  /** PIT tick where counting from `reload` started; null = not counting (no count, no trigger). */
  start: bigint | null = null;
  /** Elapsed ticks held while the gate is low (modes 0, 2, 3, 4); null while running. */
  frozen: bigint | null = null;
  gate: boolean;
  /** OUT before counting starts (after a control word). */
  idleOut = true;
  private latchedCount: number | null = null;
  private latchedStatus: number | null = null;
  private readMsbNext = false;
  private writeMsbNext = false;
  private pendingLsb = 0;
  /** The tick until which a newly written count is not yet in the counting element. */
  private nullUntil = -1n;
  /** Rising OUT edges already signalled since `start` (channel 0's IRQ). */
  edgesSignalled = 0n;

  constructor(gate: boolean) {
    this.gate = gate;
  }

  private get modulus(): bigint {
    return this.bcd ? 10_000n : 0x1_0000n;
  }

  /** The initial count N (0 means the modulus). */
  get n(): bigint {
    const r = BigInt(this.reload);
    return r === 0n ? this.modulus : r;
  }

  private get periodic(): boolean {
    return this.mode === 2 || this.mode === 3;
  }

  /** Ticks counted since `start` at PIT tick `now`, or null when not counting. */
  elapsed(now: bigint): bigint | null {
    if (this.start === null) return null;
    if (this.frozen !== null) return this.frozen;
    return now >= this.start ? now - this.start : 0n;
  }

  count(now: bigint): number {
    const d = this.elapsed(now);
    const n = this.n;
    if (d === null) return Number(BigInt(this.reload) % this.modulus);
    let c: bigint;
    if (this.mode === 2) c = n - (d % n);
    else if (this.mode === 3) {
      // Counts down by two each clock through each half of the period.
      const half = (n + 1n) / 2n;
      c = n - 2n * (d % n < half ? d % n : (d % n) - half);
      if (c <= 0n) c += n;
    } else c = (((n - d) % this.modulus) + this.modulus) % this.modulus;
    return Number(c % this.modulus);
  }

  out(now: bigint): boolean {
    const d = this.elapsed(now);
    if (d === null) return this.idleOut;
    const n = this.n;
    switch (this.mode) {
      case 0:
      case 1:
        return d >= n;
      case 2:
        return this.frozen !== null || d % n !== n - 1n;
      case 3:
        return this.frozen !== null || d % n < (n + 1n) / 2n;
      default: // 4, 5: a one-clock low pulse at terminal count
        return d !== n;
    }
  }

  /** Rising OUT edges from `start` up to elapsed `d`. */
  risingEdges(d: bigint): bigint {
    const n = this.n;
    switch (this.mode) {
      case 0:
      case 1:
        return d >= n ? 1n : 0n;
      case 2:
      case 3:
        return d / n;
      default:
        return d >= n + 1n ? 1n : 0n;
    }
  }

  /** Elapsed ticks at which the next rising edge after `edges` of them comes, or null. */
  nextEdgeAt(edges: bigint): bigint | null {
    const n = this.n;
    if (this.periodic) return (edges + 1n) * n;
    if (edges > 0n) return null;
    return this.mode === 0 || this.mode === 1 ? n : n + 1n;
  }

  control(cw: number): void {
    this.access = (cw >> PIT_CW.ACCESS_SHIFT) & 3;
    const mode = (cw >> PIT_CW.MODE_SHIFT) & 7;
    this.mode = mode > 5 ? mode - 4 : mode;
    this.bcd = (cw & PIT_CW.BCD) !== 0;
    this.start = null;
    this.frozen = null;
    this.idleOut = this.mode !== 0;
    this.latchedCount = null;
    this.latchedStatus = null;
    this.readMsbNext = false;
    this.writeMsbNext = false;
    this.edgesSignalled = 0n;
  }

  latchCount(now: bigint): void {
    if (this.latchedCount === null) this.latchedCount = this.count(now);
  }

  latchStatus(now: bigint): void {
    if (this.latchedStatus !== null) return;
    this.latchedStatus =
      (this.out(now) ? PIT_STATUS.OUT : 0) |
      (now < this.nullUntil ? PIT_STATUS.NULL_COUNT : 0) |
      (this.access << PIT_CW.ACCESS_SHIFT) |
      (this.mode << PIT_CW.MODE_SHIFT) |
      (this.bcd ? PIT_CW.BCD : 0);
  }

  read(now: bigint): number {
    if (this.latchedStatus !== null) {
      const s = this.latchedStatus;
      this.latchedStatus = null;
      return s;
    }
    const latched = this.latchedCount;
    let v = latched ?? this.count(now);
    if (this.bcd) v = toBcd(v);
    let byte: number;
    if (this.access === PIT_CW.ACCESS_MSB) byte = v >> 8;
    else if (this.access === PIT_CW.ACCESS_WORD && this.readMsbNext) byte = v >> 8;
    else byte = v & 0xff;
    const done = this.access !== PIT_CW.ACCESS_WORD || this.readMsbNext;
    if (this.access === PIT_CW.ACCESS_WORD) this.readMsbNext = !this.readMsbNext;
    if (latched !== null && done) this.latchedCount = null;
    return byte & 0xff;
  }

  write(value: number, now: bigint): void {
    let count: number;
    if (this.access === PIT_CW.ACCESS_LSB) count = value;
    else if (this.access === PIT_CW.ACCESS_MSB) count = value << 8;
    else if (!this.writeMsbNext) {
      this.pendingLsb = value;
      this.writeMsbNext = true;
      // Mode 0: writing the first byte stops the count (OUT stays low).
      if (this.mode === 0) {
        this.start = null;
        this.idleOut = false;
      }
      return;
    } else {
      count = this.pendingLsb | (value << 8);
      this.writeMsbNext = false;
    }
    this.reload = this.bcd ? fromBcd(count) % 10_000 : count;
    this.nullUntil = now + 1n;
    this.edgesSignalled = 0n;
    this.frozen = null;
    // Modes 1 and 5 wait for a gate trigger; the others count from the next clock.
    if (this.mode === 1 || this.mode === 5) return;
    this.start = now;
    if (!this.gate) this.frozen = 0n;
  }

  setGate(level: boolean, now: bigint): void {
    if (level === this.gate) return;
    this.gate = level;
    if (level) {
      if ((this.mode === 0 || this.mode === 4) && this.start !== null && this.frozen !== null) {
        this.start = now - this.frozen;
        this.frozen = null;
      } else if (this.mode !== 0 && this.mode !== 4) {
        // Rising edge: modes 1 and 5 trigger, modes 2 and 3 reload.
        this.start = now;
        this.frozen = null;
        this.edgesSignalled = 0n;
      }
      return;
    }
    if (this.start !== null && this.mode !== 1 && this.mode !== 5) this.frozen = this.elapsed(now);
  }
}

export interface Pit8254Options {
  readonly clock: DeviceClock;
  /** IRQ 0 (channel 0's OUT). */
  readonly irq0: IrqLine;
}

export class Pit8254 implements PortDevice {
  readonly name = 'pit8254';
  readonly channels = [new PitChannel(true), new PitChannel(true), new PitChannel(false)] as const;
  private readonly clock: DeviceClock;
  private readonly irq0: IrqLine;
  /** IRQ 0 pulses sent (for the inspector and tests). */
  irqs = 0;

  constructor(o: Pit8254Options) {
    this.clock = o.clock;
    this.irq0 = o.irq0;
  }

  private now(): bigint {
    return this.clock.ticks();
  }

  in(port: number, size: PortSize): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.inByte(port + i) << (8 * i);
    return v >>> 0;
  }

  out(port: number, size: PortSize, value: number): void {
    for (let i = 0; i < size; i++) this.outByte(port + i, (value >>> (8 * i)) & 0xff);
  }

  private inByte(port: number): number {
    const i = port - PIT_PORT;
    if (i < 0 || i > 2) return 0xff; // the control word register is write-only
    this.poll();
    return this.channels[i as 0 | 1 | 2].read(this.now());
  }

  private outByte(port: number, v: number): void {
    const i = port - PIT_PORT;
    this.poll();
    const now = this.now();
    if (i >= 0 && i <= 2) {
      this.channels[i as 0 | 1 | 2].write(v, now);
      return;
    }
    if (port !== PIT_CONTROL_PORT) return;
    const select = v >> PIT_CW.SELECT_SHIFT;
    if (select === PIT_CW.READ_BACK) {
      for (let c = 0; c < 3; c++) {
        if ((v & (2 << c)) === 0) continue;
        const ch = this.channels[c as 0 | 1 | 2];
        if ((v & PIT_READ_BACK.NO_STATUS) === 0) ch.latchStatus(now);
        if ((v & PIT_READ_BACK.NO_COUNT) === 0) ch.latchCount(now);
      }
      return;
    }
    const ch = this.channels[select as 0 | 1 | 2];
    if (((v >> PIT_CW.ACCESS_SHIFT) & 3) === PIT_CW.ACCESS_LATCH) ch.latchCount(now);
    else ch.control(v);
  }

  /** Channel 2's gate (port 0x61 bit 0). */
  setGate2(level: boolean): void {
    this.poll();
    this.channels[2].setGate(level, this.now());
  }

  out2(): boolean {
    return this.channels[2].out(this.now());
  }

  /** Signals channel 0's rising edges that virtual time has reached since the last look. */
  poll(): void {
    const ch = this.channels[0];
    const d = ch.elapsed(this.now());
    if (d === null) return;
    const edges = ch.risingEdges(d);
    if (edges > ch.edgesSignalled) {
      ch.edgesSignalled = edges;
      this.irqs++;
      this.irq0(true);
      this.irq0(false);
    }
  }

  /** Machine TSC of channel 0's next IRQ 0 edge, or null. */
  nextEvent(): bigint | null {
    const ch = this.channels[0];
    if (ch.start === null || ch.frozen !== null) return null;
    const at = ch.nextEdgeAt(ch.edgesSignalled);
    return at === null ? null : this.clock.tscOf(ch.start + at);
  }

  /** The refresh-request toggle of port 0x61 bit 4. */
  refreshToggle(): boolean {
    return (this.now() / REFRESH_TICKS) % 2n === 1n;
  }
}

/** System control port B (0x61): channel 2's gate and speaker enable, OUT2, refresh toggle. */
export class SystemControlB implements PortDevice {
  readonly name = 'port61';
  private value = 0;

  constructor(private readonly pit: Pit8254) {}

  in(_port: number, size: PortSize): number {
    const v =
      (this.value & PORT61_WRITABLE) |
      (this.pit.refreshToggle() ? PORT61.REFRESH : 0) |
      (this.pit.out2() ? PORT61.OUT2 : 0);
    return size === 1 ? v : v | (size === 2 ? 0xff00 : 0xffff_ff00);
  }

  out(_port: number, _size: PortSize, value: number): void {
    this.value = value & PORT61_WRITABLE;
    this.pit.setGate2((value & PORT61.GATE2) !== 0);
  }

  /** Whether the speaker sounds (gate and speaker data on): nothing plays it. */
  get speakerOn(): boolean {
    return (this.value & (PORT61.GATE2 | PORT61.SPEAKER)) === (PORT61.GATE2 | PORT61.SPEAKER);
  }
}
