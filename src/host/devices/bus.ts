// The buses the host routes intercepted device accesses through: port I/O (IOIO exits) and MMIO
// (MMIO_READ/MMIO_WRITE exits). A device claims a range; an access nobody claims reads as all
// ones and writes go nowhere, as on a PC with nothing at that address (reference/linux-snp-guest.md
// section 4: "Unknown ports: read all-ones, ignore writes").

/** Operand sizes of port I/O. */
export type PortSize = 1 | 2 | 4;

export interface PortDevice {
  readonly name: string;
  /** IN of `size` bytes at `port` (inside the claimed range). */
  in(port: number, size: PortSize): number;
  out(port: number, size: PortSize, value: number): void;
}

export interface MmioDevice {
  readonly name: string;
  /** Fills `data` with the bytes at `offset` from the device's base. */
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

interface PortRange {
  readonly first: number;
  readonly last: number;
  readonly device: PortDevice;
}

interface MmioRange {
  readonly base: number;
  readonly size: number;
  readonly device: MmioDevice;
}

function allOnes(size: PortSize): number {
  return size === 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
}

export class PortBus {
  /** Device by port, for the 64 Ki ports (a lookup per IOIO exit must be cheap). */
  private readonly byPort: (PortDevice | undefined)[] = new Array<PortDevice | undefined>(0x1_0000);
  private readonly ranges: PortRange[] = [];

  /** Claims ports [first, first + count). Overlapping claims are a host bug and throw. */
  register(first: number, count: number, device: PortDevice): void {
    const last = first + count - 1;
    if (!Number.isInteger(first) || first < 0 || count < 1 || last > 0xffff)
      throw new RangeError(`port range 0x${first.toString(16)}+${count} is outside 0..0xffff`);
    for (let p = first; p <= last; p++) {
      const other = this.byPort[p];
      if (other !== undefined)
        throw new RangeError(`port 0x${p.toString(16)} is already claimed by ${other.name}`);
    }
    for (let p = first; p <= last; p++) this.byPort[p] = device;
    this.ranges.push({ first, last, device });
  }

  in(port: number, size: PortSize): number {
    const d = this.byPort[port & 0xffff];
    return d === undefined ? allOnes(size) : d.in(port & 0xffff, size) >>> 0;
  }

  out(port: number, size: PortSize, value: number): void {
    this.byPort[port & 0xffff]?.out(port & 0xffff, size, value >>> 0);
  }

  /** The claimed ranges, for the inspector. */
  claims(): readonly PortRange[] {
    return this.ranges;
  }
}

export class MmioBus {
  private readonly ranges: MmioRange[] = [];

  /** Claims [base, base + size). Overlapping claims are a host bug and throw. */
  register(base: number, size: number, device: MmioDevice): void {
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size < 1)
      throw new RangeError(`MMIO range 0x${base.toString(16)}+0x${size.toString(16)} is invalid`);
    for (const r of this.ranges) {
      if (base < r.base + r.size && r.base < base + size)
        throw new RangeError(`MMIO 0x${base.toString(16)} overlaps ${r.device.name}`);
    }
    this.ranges.push({ base, size, device });
  }

  private find(gpa: number, length: number): MmioRange | undefined {
    return this.ranges.find((r) => gpa >= r.base && gpa + length <= r.base + r.size);
  }

  /** Reads `data.length` bytes at `gpa`; an access no single device claims whole reads all ones. */
  read(gpa: number, data: Uint8Array): void {
    const r = this.find(gpa, data.length);
    if (r === undefined) data.fill(0xff);
    else r.device.read(gpa - r.base, data);
  }

  write(gpa: number, data: Uint8Array): void {
    const r = this.find(gpa, data.length);
    r?.device.write(gpa - r.base, data);
  }

  claims(): readonly MmioRange[] {
    return this.ranges;
  }
}
