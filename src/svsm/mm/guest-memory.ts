// Access to guest memory through temporary mappings, with exception fixups: a fault the machine
// raises while the SVSM touches a guest page (not validated, not private, no permission) becomes a
// GuestMemoryFault, which protocol handlers turn into INVALID_ADDRESS for the guest. A fault
// anywhere else in the SVSM is not caught here and ends as a panic.

import { CpuFaultError, SVSM_VA, VECTOR, type Vmpl0 } from '../../arch/index.js';
import type { AddressSpace } from './address-space.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
/** The first temporary-mapping slot of the vCPU's window; nested accesses use the next ones. */
const TEMP_SLOT = 0;
const TEMP_SLOTS = 16;
/**
 * The window slot that keeps the vCPU's calling area mapped between calls (COCONUT maps the CAA
 * once per vCPU): its call_pending byte is read and cleared on every call. The slot above it holds
 * the guest VMSA (request-loop.ts).
 */
const CAA_SLOT = SVSM_VA.TEMP_SLOTS - 2;

/** A CPU fault on a guest page as the guest's mistake (exception fixup); anything else as it is. */
function guestFault(e: unknown, page: number, gpa: number): unknown {
  if (
    e instanceof CpuFaultError &&
    (e.vector === VECTOR.VC || e.vector === VECTOR.PF || e.vector === VECTOR.MC)
  ) {
    return new GuestMemoryFault(
      `guest page 0x${page.toString(16)} is not accessible (${e.message})`,
      gpa,
    );
  }
  return e;
}

/** A guest address the SVSM may not or cannot touch. */
export class GuestMemoryFault extends Error {
  override readonly name = 'GuestMemoryFault';
  constructor(
    message: string,
    readonly gpa: number,
  ) {
    super(message);
  }
}

export class GuestMemory {
  /** Temporary mappings in use (a guest access inside another, e.g. zeroing inside PVALIDATE). */
  private depth = 0;

  constructor(
    private readonly space: AddressSpace,
    /** Bytes of guest RAM; the SVSM region inside it is never guest memory. */
    readonly memorySize: number,
  ) {}

  /** True when [gpa, gpa+length) is guest RAM and not part of the SVSM. */
  isGuestRange(gpa: number, length: number): boolean {
    const { base, size } = this.space.region;
    return (
      Number.isSafeInteger(gpa) &&
      gpa >= 0 &&
      length >= 0 &&
      gpa + length <= this.memorySize &&
      (gpa + length <= base || gpa >= base + size)
    );
  }

  private check(gpa: number, length: number): void {
    if (!this.isGuestRange(gpa, length)) {
      throw new GuestMemoryFault(
        `0x${gpa.toString(16)}+0x${length.toString(16)} is not guest memory`,
        gpa,
      );
    }
  }

  /** Runs `fn` on the kernel VA of the guest page holding `gpa`, with the fixup around it. */
  private withPage<T>(cpu: Vmpl0, gpa: number, fn: (va: number) => T): T {
    const page = gpa - (gpa % PAGE);
    if (this.depth >= TEMP_SLOTS) throw new Error('temporary mappings nested too deeply');
    const slot = TEMP_SLOT + this.depth;
    const va = this.space.mapWindow(cpu, slot, page, false);
    this.depth++;
    try {
      return fn(va + (gpa - page));
    } catch (e) {
      throw guestFault(e, page, gpa);
    } finally {
      this.depth--;
      this.space.unmapWindow(cpu, slot);
    }
  }

  read(cpu: Vmpl0, gpa: number, length: number): Uint8Array {
    this.check(gpa, length);
    const out = new Uint8Array(length);
    for (let done = 0; done < length;) {
      const at = gpa + done;
      const n = Math.min(length - done, PAGE - (at % PAGE));
      out.set(
        this.withPage(cpu, at, (va) => cpu.read(va, n)),
        done,
      );
      done += n;
    }
    return out;
  }

  write(cpu: Vmpl0, gpa: number, data: Uint8Array): void {
    this.check(gpa, data.length);
    for (let done = 0; done < data.length;) {
      const at = gpa + done;
      const n = Math.min(data.length - done, PAGE - (at % PAGE));
      this.withPage(cpu, at, (va) => cpu.write(va, data.subarray(done, done + n)));
      done += n;
    }
  }

  readU8(cpu: Vmpl0, gpa: number): number {
    this.check(gpa, 1);
    return this.withPage(cpu, gpa, (va) => cpu.readU8(va));
  }

  writeU8(cpu: Vmpl0, gpa: number, value: number): void {
    this.check(gpa, 1);
    this.withPage(cpu, gpa, (va) => cpu.writeU8(va, value));
  }

  /**
   * Reads a byte of `cpu`'s calling area through the mapping kept for it (made on first use and
   * when the calling area moved). Every access still goes through the MMU and the RMP check.
   */
  readCallingAreaU8(cpu: Vmpl0, gpa: number): number {
    this.check(gpa, 1);
    const page = gpa - (gpa % PAGE);
    const va = this.space.mapWindow(cpu, CAA_SLOT, page, false);
    try {
      return cpu.readU8(va + (gpa - page));
    } catch (e) {
      throw guestFault(e, page, gpa);
    }
  }

  /** Writes a byte of `cpu`'s calling area, as `readCallingAreaU8` reads one. */
  writeCallingAreaU8(cpu: Vmpl0, gpa: number, value: number): void {
    this.check(gpa, 1);
    const page = gpa - (gpa % PAGE);
    const va = this.space.mapWindow(cpu, CAA_SLOT, page, false);
    try {
      cpu.writeU8(va + (gpa - page), value);
    } catch (e) {
      throw guestFault(e, page, gpa);
    }
  }

  readU64(cpu: Vmpl0, gpa: number): bigint {
    this.check(gpa, 8);
    return new DataView(this.read(cpu, gpa, 8).buffer).getBigUint64(0, true);
  }

  writeU64(cpu: Vmpl0, gpa: number, value: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value, true);
    this.write(cpu, gpa, b);
  }

  /**
   * Zeroes the 2 MiB guest page at `gpa` through `cpu`'s huge window, except [skipFrom, skipTo)
   * (the legacy ISA range, which is never zeroed).
   */
  zeroHuge(cpu: Vmpl0, gpa: number, skipFrom = 0, skipTo = 0): void {
    this.check(gpa, HUGE);
    const va = this.space.mapHugeWindow(cpu, gpa);
    try {
      if (skipTo <= gpa || skipFrom >= gpa + HUGE) {
        cpu.fill(va, HUGE, 0);
      } else {
        const a = Math.max(skipFrom, gpa) - gpa;
        const b = Math.min(skipTo, gpa + HUGE) - gpa;
        if (a > 0) cpu.fill(va, a, 0);
        if (b < HUGE) cpu.fill(va + b, HUGE - b, 0);
      }
    } catch (e) {
      if (e instanceof CpuFaultError) {
        throw new GuestMemoryFault(
          `guest page 0x${gpa.toString(16)} is not accessible (${e.message})`,
          gpa,
        );
      }
      throw e;
    } finally {
      this.space.unmapHugeWindow(cpu);
    }
  }

  /**
   * PVALIDATE or RMPADJUST on a guest page: maps it (private) and runs the instruction on the
   * mapping's VA; faults become GuestMemoryFault.
   */
  onPage<T>(cpu: Vmpl0, gpa: number, size: number, fn: (va: number) => T): T {
    this.check(gpa, size);
    return this.withPage(cpu, gpa, fn);
  }
}
