// The MC146818 real-time clock and its CMOS RAM at ports 0x70 (index; bit 7 masks NMIs) and 0x71
// (data) (Motorola MC146818A datasheet; the PC's century byte at 0x32). Registers 0x00-0x09 are
// seconds, seconds alarm, minutes, minutes alarm, hours, hours alarm, day of week (1 = Sunday),
// day of month, month, year; 0x0A-0x0D are status A-D; 0x0E-0x7F are battery-backed RAM.
// Time is wall-clock seconds = `epoch` + the seconds the 32.768 kHz divider chain has counted on
// the virtual TSC, so a run is deterministic; a guest that sets the clock moves the epoch.
// Modelled: binary or BCD (B.DM), 24 or 12 hour (B.24/12, PM in hour bit 7), SET (B bit 7)
// freezing the time while the guest writes it, the divider (A.DV: only 010 runs; leaving reset
// restarts the second 500 ms before its end), UIP in the last 244 us before each update, the
// periodic rate (A.RS), and flags PF/AF/UF in C (cleared by reading C) with IRQF raising ISA
// IRQ 8 when enabled in B; alarm bytes 0xC0-0xFF match anything. Not modelled: daylight saving
// (B.DSE), square-wave output, the 1984 us update window (values change at the tick).

import type { PortDevice, PortSize } from './bus.js';
import { DeviceClock, type IrqLine } from './virtual-clock.js';

export const RTC_INDEX_PORT = 0x70;
export const RTC_DATA_PORT = 0x71;
export const RTC_IRQ = 8;
/** Port 0x70 bit 7: NMIs masked (the index is bits 6:0). */
export const RTC_NMI_DISABLE = 0x80;

export const RTC_REG = {
  SECONDS: 0x00,
  SECONDS_ALARM: 0x01,
  MINUTES: 0x02,
  MINUTES_ALARM: 0x03,
  HOURS: 0x04,
  HOURS_ALARM: 0x05,
  DAY_OF_WEEK: 0x06,
  DAY_OF_MONTH: 0x07,
  MONTH: 0x08,
  YEAR: 0x09,
  A: 0x0a,
  B: 0x0b,
  C: 0x0c,
  D: 0x0d,
  CENTURY: 0x32,
} as const;
export const RTC_A = { UIP: 0x80, DV_MASK: 0x70, DV_NORMAL: 0x20, RS_MASK: 0x0f } as const;
export const RTC_B = {
  SET: 0x80,
  PIE: 0x40,
  AIE: 0x20,
  UIE: 0x10,
  SQWE: 0x08,
  DM_BINARY: 0x04,
  HOUR_24: 0x02,
  DSE: 0x01,
} as const;
export const RTC_C = { IRQF: 0x80, PF: 0x40, AF: 0x20, UF: 0x10 } as const;
export const RTC_D = { VRT: 0x80 } as const;

/** 2025-01-01T00:00:00Z: the default wall-clock time at virtual TSC 0. */
export const DEFAULT_RTC_EPOCH = 1_735_689_600;

const TICKS_PER_SECOND = 32_768n;
/** UIP is set this long before each update: 244 us, 8 ticks of 32.768 kHz. */
const UIP_TICKS = 8n;
const CMOS_SIZE = 128;

/** Periodic interrupt period in 32.768 kHz ticks for rate select 1-15 (0 = off). */
function periodTicks(rs: number): bigint {
  if (rs === 0) return 0n;
  if (rs <= 2) return rs === 1 ? 128n : 256n; // 256 Hz and 128 Hz, as on rates 8 and 9
  return 1n << BigInt(rs - 1);
}

const toBcd = (n: number): number => ((Math.floor(n / 10) % 10) << 4) | (n % 10);
const fromBcd = (b: number): number => (b >> 4) * 10 + (b & 0xf);

interface Fields {
  sec: number;
  min: number;
  hour: number;
  dow: number;
  day: number;
  month: number;
  year: number;
}

function fieldsOf(unix: number): Fields {
  const d = new Date(unix * 1000);
  return {
    sec: d.getUTCSeconds(),
    min: d.getUTCMinutes(),
    hour: d.getUTCHours(),
    dow: d.getUTCDay() + 1,
    day: d.getUTCDate(),
    month: d.getUTCMonth() + 1,
    year: d.getUTCFullYear(),
  };
}

function unixOf(f: Fields): number {
  return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.min, f.sec) / 1000;
}

export interface RtcCmosOptions {
  readonly clock: DeviceClock;
  readonly irq8: IrqLine;
  /** Wall-clock seconds (Unix time) at virtual TSC 0; default DEFAULT_RTC_EPOCH. */
  readonly epoch?: number;
}

export class RtcCmos implements PortDevice {
  readonly name = 'rtc-cmos';
  private index = 0;
  /** Port 0x70 bit 7. */
  nmiDisabled = false;
  private readonly ram = new Uint8Array(CMOS_SIZE);
  private readonly clock: DeviceClock;
  private readonly irq8: IrqLine;
  /** Unix seconds at divider tick `baseTick`, where a second starts. */
  private baseSeconds: number;
  private baseTick = 0n;
  /** Time held while SET is on or the divider is in reset; null while running. */
  private frozen: number | null = null;
  /** Divider tick up to which flags have been brought. */
  private seenTick = 0n;
  private regC = 0;
  private irqLevel = false;

  constructor(o: RtcCmosOptions) {
    this.clock = o.clock;
    this.irq8 = o.irq8;
    this.baseSeconds = o.epoch ?? DEFAULT_RTC_EPOCH;
    this.ram[RTC_REG.A] = RTC_A.DV_NORMAL | 0x06; // 1024 Hz periodic rate, as a BIOS leaves it
    this.ram[RTC_REG.B] = RTC_B.HOUR_24;
  }

  private get regA(): number {
    return this.ram[RTC_REG.A]!;
  }
  private get regB(): number {
    return this.ram[RTC_REG.B]!;
  }
  private get running(): boolean {
    return this.frozen === null;
  }

  /** The current wall-clock time (Unix seconds) as the RTC keeps it. */
  seconds(): number {
    if (this.frozen !== null) return this.frozen;
    const ticks = this.clock.ticks() - this.baseTick;
    return this.baseSeconds + Number((ticks < 0n ? 0n : ticks) / TICKS_PER_SECOND);
  }

  private encode(n: number): number {
    return this.regB & RTC_B.DM_BINARY ? n : toBcd(n);
  }
  private decode(n: number): number {
    return this.regB & RTC_B.DM_BINARY ? n : fromBcd(n);
  }
  private encodeHour(h: number): number {
    if (this.regB & RTC_B.HOUR_24) return this.encode(h);
    const h12 = h % 12 === 0 ? 12 : h % 12;
    return this.encode(h12) | (h >= 12 ? 0x80 : 0);
  }
  private decodeHour(v: number): number {
    if (this.regB & RTC_B.HOUR_24) return this.decode(v);
    const h12 = this.decode(v & 0x7f) % 12;
    return (v & 0x80) !== 0 ? h12 + 12 : h12;
  }

  private timeRegister(reg: number): number {
    const f = fieldsOf(this.seconds());
    switch (reg) {
      case RTC_REG.SECONDS:
        return this.encode(f.sec);
      case RTC_REG.MINUTES:
        return this.encode(f.min);
      case RTC_REG.HOURS:
        return this.encodeHour(f.hour);
      case RTC_REG.DAY_OF_WEEK:
        return this.encode(f.dow);
      case RTC_REG.DAY_OF_MONTH:
        return this.encode(f.day);
      case RTC_REG.MONTH:
        return this.encode(f.month);
      case RTC_REG.YEAR:
        return this.encode(f.year % 100);
      default: // century
        return this.encode(Math.floor(f.year / 100));
    }
  }

  /** A guest write of a time register: the clock continues from the changed time. */
  private setTimeRegister(reg: number, value: number): void {
    const f = fieldsOf(this.seconds());
    const v = reg === RTC_REG.HOURS ? this.decodeHour(value) : this.decode(value);
    switch (reg) {
      case RTC_REG.SECONDS:
        f.sec = v;
        break;
      case RTC_REG.MINUTES:
        f.min = v;
        break;
      case RTC_REG.HOURS:
        f.hour = v;
        break;
      case RTC_REG.DAY_OF_WEEK:
        return; // derived from the date here
      case RTC_REG.DAY_OF_MONTH:
        f.day = v;
        break;
      case RTC_REG.MONTH:
        f.month = v;
        break;
      case RTC_REG.YEAR:
        f.year = Math.floor(f.year / 100) * 100 + (v % 100);
        break;
      default:
        f.year = v * 100 + (f.year % 100);
    }
    const t = unixOf(f);
    // Garbage (BCD digits above 9, day 0...) makes an invalid date: the write is dropped.
    if (!Number.isFinite(t)) return;
    if (this.frozen !== null) {
      this.frozen = t;
      return;
    }
    // Keep the phase of the current second.
    const now = this.clock.ticks();
    const into = (now - this.baseTick) % TICKS_PER_SECOND;
    this.baseTick = now - (into < 0n ? 0n : into);
    this.baseSeconds = t;
  }

  private freeze(): void {
    this.update();
    if (this.frozen === null) this.frozen = this.seconds();
  }

  /**
   * Lets the time run on from the frozen value: after a divider reset the first update comes
   * `firstUpdate` ticks later; after SET (null) at the divider's next second, as it kept running.
   */
  private unfreeze(firstUpdate: bigint | null): void {
    if (this.frozen === null) return;
    const now = this.clock.ticks();
    if (firstUpdate === null) {
      const into =
        (((now - this.baseTick) % TICKS_PER_SECOND) + TICKS_PER_SECOND) % TICKS_PER_SECOND;
      firstUpdate = TICKS_PER_SECOND - into;
    }
    this.baseSeconds = this.frozen;
    this.baseTick = now + firstUpdate - TICKS_PER_SECOND;
    this.frozen = null;
    this.seenTick = now;
  }

  /** Status A with UIP, which is set in the 244 us before each update while the clock runs. */
  private statusA(): number {
    let a = this.regA & ~RTC_A.UIP;
    if (this.running && (this.regB & RTC_B.SET) === 0) {
      const ticks = this.clock.ticks() - this.baseTick;
      const into = ((ticks % TICKS_PER_SECOND) + TICKS_PER_SECOND) % TICKS_PER_SECOND;
      if (into >= TICKS_PER_SECOND - UIP_TICKS) a |= RTC_A.UIP;
    }
    return a;
  }

  private alarmMatches(unix: number): boolean {
    // Time of day by arithmetic: the alarm scan may look at a day of seconds.
    const sod = ((unix % 86_400) + 86_400) % 86_400;
    const f = { hour: Math.floor(sod / 3600), min: Math.floor(sod / 60) % 60, sec: sod % 60 };
    const ok = (reg: number, value: number, hour: boolean): boolean => {
      const a = this.ram[reg]!;
      if ((a & 0xc0) === 0xc0) return true; // "don't care"
      return (hour ? this.decodeHour(a) : this.decode(a)) === value;
    };
    return (
      ok(RTC_REG.SECONDS_ALARM, f.sec, false) &&
      ok(RTC_REG.MINUTES_ALARM, f.min, false) &&
      ok(RTC_REG.HOURS_ALARM, f.hour, true)
    );
  }

  /** Brings the flags of C up to virtual time and drives IRQ 8. */
  update(): void {
    const now = this.clock.ticks();
    if (this.running && now > this.seenTick) {
      const from = this.seenTick - this.baseTick;
      const to = now - this.baseTick;
      const period = periodTicks(this.regA & RTC_A.RS_MASK);
      if (period > 0n && floorDiv(to, period) > floorDiv(from, period)) this.regC |= RTC_C.PF;
      const s0 = floorDiv(from, TICKS_PER_SECOND);
      const s1 = floorDiv(to, TICKS_PER_SECOND);
      if (s1 > s0 && (this.regB & RTC_B.SET) === 0) {
        this.regC |= RTC_C.UF;
        // Look at (at most a day of) the seconds that began since the last look.
        const first = s1 - s0 > 86_400n ? s1 - 86_400n : s0;
        for (let s = first + 1n; s <= s1; s++) {
          if (this.alarmMatches(this.baseSeconds + Number(s))) {
            this.regC |= RTC_C.AF;
            break;
          }
        }
      }
      this.seenTick = now;
    }
    this.driveIrq();
  }

  private irqf(): boolean {
    const b = this.regB;
    const c = this.regC;
    return (
      ((b & RTC_B.PIE) !== 0 && (c & RTC_C.PF) !== 0) ||
      ((b & RTC_B.AIE) !== 0 && (c & RTC_C.AF) !== 0) ||
      ((b & RTC_B.UIE) !== 0 && (c & RTC_C.UF) !== 0)
    );
  }

  private driveIrq(): void {
    const level = this.irqf();
    if (level !== this.irqLevel) {
      this.irqLevel = level;
      this.irq8(level);
    }
  }

  /** Machine TSC of the next enabled interrupt while IRQ 8 is idle, or null. */
  nextEvent(): bigint | null {
    if (!this.running || this.irqLevel) return null;
    const b = this.regB;
    const now = this.clock.ticks();
    const rel = now - this.baseTick;
    let best: bigint | null = null;
    const take = (tickRel: bigint): void => {
      if (best === null || tickRel < best) best = tickRel;
    };
    const period = periodTicks(this.regA & RTC_A.RS_MASK);
    if ((b & RTC_B.PIE) !== 0 && period > 0n) take((floorDiv(rel, period) + 1n) * period);
    if ((b & RTC_B.SET) === 0 && (b & (RTC_B.UIE | RTC_B.AIE)) !== 0) {
      const next = (floorDiv(rel, TICKS_PER_SECOND) + 1n) * TICKS_PER_SECOND;
      if ((b & RTC_B.UIE) !== 0) take(next);
      else {
        for (let s = 0n; s < 86_400n; s++) {
          const at = next + s * TICKS_PER_SECOND;
          if (this.alarmMatches(this.baseSeconds + Number(at / TICKS_PER_SECOND))) {
            take(at);
            break;
          }
        }
      }
    }
    return best === null ? null : this.clock.tscOf(this.baseTick + (best as bigint));
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
    if (port === RTC_INDEX_PORT) return 0xff; // write-only on the PC
    if (port !== RTC_DATA_PORT) return 0xff;
    this.update();
    const reg = this.index;
    switch (reg) {
      case RTC_REG.SECONDS:
      case RTC_REG.MINUTES:
      case RTC_REG.HOURS:
      case RTC_REG.DAY_OF_WEEK:
      case RTC_REG.DAY_OF_MONTH:
      case RTC_REG.MONTH:
      case RTC_REG.YEAR:
      case RTC_REG.CENTURY:
        return this.timeRegister(reg);
      case RTC_REG.A:
        return this.statusA();
      case RTC_REG.C: {
        const c = this.regC | (this.irqf() ? RTC_C.IRQF : 0);
        this.regC = 0;
        this.driveIrq();
        return c;
      }
      case RTC_REG.D:
        return RTC_D.VRT; // the battery is good
      default:
        return this.ram[reg]!;
    }
  }

  private outByte(port: number, v: number): void {
    if (port === RTC_INDEX_PORT) {
      this.index = v & 0x7f;
      this.nmiDisabled = (v & RTC_NMI_DISABLE) !== 0;
      return;
    }
    if (port !== RTC_DATA_PORT) return;
    this.update();
    const reg = this.index;
    switch (reg) {
      case RTC_REG.SECONDS:
      case RTC_REG.MINUTES:
      case RTC_REG.HOURS:
      case RTC_REG.DAY_OF_WEEK:
      case RTC_REG.DAY_OF_MONTH:
      case RTC_REG.MONTH:
      case RTC_REG.YEAR:
      case RTC_REG.CENTURY:
        this.setTimeRegister(reg, v);
        return;
      case RTC_REG.A: {
        const wasNormal = (this.regA & RTC_A.DV_MASK) === RTC_A.DV_NORMAL;
        this.ram[reg] = v & ~RTC_A.UIP;
        const isNormal = (v & RTC_A.DV_MASK) === RTC_A.DV_NORMAL;
        if (wasNormal && !isNormal) this.freeze();
        else if (!wasNormal && isNormal && (this.regB & RTC_B.SET) === 0)
          this.unfreeze(TICKS_PER_SECOND / 2n);
        break;
      }
      case RTC_REG.B: {
        const wasSet = (this.regB & RTC_B.SET) !== 0;
        // SET stops updates (and ends a pending update-ended interrupt, as UIE is cleared too).
        let b = v;
        if ((b & RTC_B.SET) !== 0) b &= ~RTC_B.UIE;
        this.ram[reg] = b;
        const dividerRuns = (this.regA & RTC_A.DV_MASK) === RTC_A.DV_NORMAL;
        if (!wasSet && (b & RTC_B.SET) !== 0) this.freeze();
        else if (wasSet && (b & RTC_B.SET) === 0 && dividerRuns) this.unfreeze(null);
        break;
      }
      case RTC_REG.C:
      case RTC_REG.D:
        return; // read-only
      default:
        this.ram[reg] = v;
        return;
    }
    this.driveIrq();
  }

  /** CMOS RAM byte `index` (0x0E-0x7F; the host may preset them, e.g. memory sizes). */
  cmos(index: number): number {
    return this.ram[index & 0x7f]!;
  }

  setCmos(index: number, value: number): void {
    const i = index & 0x7f;
    if (i >= 0x0e && i !== RTC_REG.CENTURY) this.ram[i] = value & 0xff;
  }
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
