// The SVSM's address space: its own region mapped at SVSM_VA.KERNEL_BASE with 2 MiB private
// pages, and one 2 MiB window per vCPU of 4 KiB mappings - temporary mappings of guest pages and
// shared (C-bit clear) pages such as the GHCB. The tables live in the SVSM's own pages.

import { PTE, SVSM_VA, type Vmpl0 } from '../../arch/index.js';
import { SvsmPanic } from '../errors.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
const P = 1n << BigInt(PTE.specs.P.lo);
const RW = 1n << BigInt(PTE.specs.RW.lo);
const PS = 1n << BigInt(PTE.specs.PS.lo);
const NX = 1n << BigInt(PTE.specs.NX.lo);

export interface RegionLayout {
  /** GPA of the SVSM region, 2 MiB aligned. */
  readonly base: number;
  readonly size: number;
}

/** Page-table index of `va` at `level` (4 = PML4 ... 1 = PT). */
function index(va: number, level: number): number {
  return Math.floor(va / 2 ** (12 + 9 * (level - 1))) % 512;
}

/** `AddressSpace.mapped` value of an empty window slot. */
const UNMAPPED = -1;

export class AddressSpace {
  private readonly cBit: bigint;
  /**
   * What each window slot maps, by vCPU * 512 + slot: the GPA, +1 when shared, or UNMAPPED. The
   * window tables are the SVSM's own private pages, written only here, so this mirrors them and
   * lets a slot that already maps the right page skip the PTE write and INVLPG.
   */
  private readonly mapped: Float64Array;

  constructor(
    cBitPosition: number,
    readonly region: RegionLayout,
    /** GPA of the PML4. */
    readonly pml4: number,
    /** GPA of each vCPU's window page table. */
    private readonly windowTables: readonly number[],
    /** GPA of the page directory holding each vCPU's 2 MiB window entry. */
    private readonly hugeWindowDirectory: number,
  ) {
    this.cBit = 1n << BigInt(cBitPosition);
    this.mapped = new Float64Array(windowTables.length * 512).fill(UNMAPPED);
  }

  /** Kernel virtual address of a GPA inside the SVSM region. */
  va(gpa: number): number {
    if (gpa < this.region.base || gpa >= this.region.base + this.region.size) {
      throw new SvsmPanic(`0x${gpa.toString(16)} is not in the SVSM region`);
    }
    return SVSM_VA.KERNEL_BASE + (gpa - this.region.base);
  }

  /** GPA of a kernel virtual address. */
  gpa(va: number): number {
    const off = va - SVSM_VA.KERNEL_BASE;
    if (off < 0 || off >= this.region.size)
      throw new SvsmPanic(`0x${va.toString(16)} is not a kernel address`);
    return this.region.base + off;
  }

  /** CR3 value: the PML4 with the C-bit (the tables are private). */
  get cr3(): bigint {
    return BigInt(this.pml4) | this.cBit;
  }

  /** Virtual address of slot `slot` of vCPU `cpuIndex`'s window. */
  static windowVa(cpuIndex: number, slot: number): number {
    return SVSM_VA.WINDOWS_BASE + cpuIndex * SVSM_VA.WINDOW_SIZE + slot * PAGE;
  }

  /**
   * Maps the page `gpa` at a slot of `cpu`'s window: private (C-bit) or shared. Returns the VA. A
   * slot that already maps that page the same way is left as it is.
   */
  mapWindow(cpu: Vmpl0, slot: number, gpa: number, shared: boolean): number {
    const cpuIndex = cpu.vcpuIndex;
    const table = this.windowTables[cpuIndex];
    if (table === undefined || !Number.isInteger(slot) || slot < 0 || slot >= 512)
      throw new SvsmPanic(`no window slot ${slot} on vCPU ${cpuIndex}`);
    if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % PAGE !== 0)
      throw new SvsmPanic(`0x${gpa.toString(16)} is not a page address`);
    const va = AddressSpace.windowVa(cpuIndex, slot);
    const what = gpa + (shared ? 1 : 0);
    const at = cpuIndex * 512 + slot;
    if (this.mapped[at] === what) return va;
    const pte = BigInt(gpa) | P | RW | NX | (shared ? 0n : this.cBit);
    cpu.writeU64(this.va(table) + slot * 8, pte);
    this.mapped[at] = what;
    cpu.invlpg(va);
    return va;
  }

  /** Virtual address of `cpu`'s 2 MiB window. */
  static hugeWindowVa(cpuIndex: number): number {
    return SVSM_VA.HUGE_WINDOWS_BASE + cpuIndex * HUGE;
  }

  /** Maps the 2 MiB guest page at `gpa` (private) in `cpu`'s huge window; returns its VA. */
  mapHugeWindow(cpu: Vmpl0, gpa: number): number {
    if (gpa % HUGE !== 0) throw new SvsmPanic(`0x${gpa.toString(16)} is not 2 MiB aligned`);
    const slot = this.va(this.hugeWindowDirectory) + cpu.vcpuIndex * 8;
    cpu.writeU64(slot, BigInt(gpa) | P | RW | PS | NX | this.cBit);
    // A 2 MiB translation may be cached per 4 KiB page: drop them all.
    cpu.flushTlb();
    return AddressSpace.hugeWindowVa(cpu.vcpuIndex);
  }

  unmapHugeWindow(cpu: Vmpl0): void {
    cpu.writeU64(this.va(this.hugeWindowDirectory) + cpu.vcpuIndex * 8, 0n);
    cpu.flushTlb();
  }

  unmapWindow(cpu: Vmpl0, slot: number): void {
    const table = this.windowTables[cpu.vcpuIndex]!;
    cpu.writeU64(this.va(table) + slot * 8, 0n);
    this.mapped[cpu.vcpuIndex * 512 + slot] = UNMAPPED;
    cpu.invlpg(AddressSpace.windowVa(cpu.vcpuIndex, slot));
  }
}

/**
 * Builds the tables while paging is still off (addresses are physical): PML4, one PDPT and PD for
 * the region (2 MiB pages), and the window tables. `takePage` hands out zeroed pages.
 */
export function buildAddressSpace(
  cpu: Vmpl0,
  region: RegionLayout,
  vcpuCount: number,
  takePage: () => number,
): AddressSpace {
  if (region.base % HUGE !== 0 || region.size % HUGE !== 0 || region.size > 512 * HUGE) {
    throw new SvsmPanic('the SVSM region must be 2 MiB aligned and at most 1 GiB');
  }
  const c = 1n << BigInt(cpu.cBit);
  const entry = (gpa: number, flags: bigint): bigint => BigInt(gpa) | flags | c;
  const pml4 = takePage();
  const pdpt = takePage();
  const pd = takePage();
  const kb = SVSM_VA.KERNEL_BASE;
  cpu.writeU64(pml4 + index(kb, 4) * 8, entry(pdpt, P | RW));
  cpu.writeU64(pdpt + index(kb, 3) * 8, entry(pd, P | RW));
  for (let off = 0; off < region.size; off += HUGE) {
    cpu.writeU64(pd + index(kb + off, 2) * 8, entry(region.base + off, P | RW | PS));
  }
  const wPdpt = takePage();
  const wPd = takePage();
  const wb = SVSM_VA.WINDOWS_BASE;
  cpu.writeU64(pml4 + index(wb, 4) * 8, entry(wPdpt, P | RW));
  cpu.writeU64(wPdpt + index(wb, 3) * 8, entry(wPd, P | RW));
  const windows: number[] = [];
  for (let i = 0; i < vcpuCount; i++) {
    const pt = takePage();
    cpu.writeU64(wPd + index(wb + i * SVSM_VA.WINDOW_SIZE, 2) * 8, entry(pt, P | RW));
    windows.push(pt);
  }
  // The second GiB of the windows area: one 2 MiB entry per vCPU.
  const hugePd = takePage();
  cpu.writeU64(wPdpt + index(SVSM_VA.HUGE_WINDOWS_BASE, 3) * 8, entry(hugePd, P | RW));
  if (vcpuCount > 512) throw new SvsmPanic('at most 512 vCPUs have a huge window');
  return new AddressSpace(cpu.cBit, region, pml4, windows, hugePd);
}
