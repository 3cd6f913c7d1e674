// The SVSM's address space. Every vCPU has its own PML4 (COCONUT's per-CPU page tables,
// reference/coconut-svsm.md section 5), with two entries:
// - the kernel region (SVSM_VA.KERNEL_BASE): the one kernel PDPT, shared by every PML4, mapping
//   the SVSM region with 2 MiB private pages;
// - the windows area (SVSM_VA.WINDOWS_BASE): a PDPT of the vCPU's own, with its 4 KiB window
//   (slots 0..255 temporary mappings of guest pages, 256..511 shared pages such as the GHCB) and
//   its 2 MiB huge window. Every vCPU's window is at the same VA but in its own tables, so a
//   mapping one vCPU makes does not exist for the others (a VA of it faults there).
// The tables live in the SVSM's own pages.

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

// The window and the huge window share the vCPU's one window page directory.
if (
  SVSM_VA.WINDOW_SIZE !== HUGE ||
  index(SVSM_VA.WINDOWS_BASE, 2) !== 0 ||
  SVSM_VA.HUGE_WINDOW !== SVSM_VA.WINDOWS_BASE + SVSM_VA.WINDOW_SIZE ||
  index(SVSM_VA.HUGE_WINDOW, 4) !== index(SVSM_VA.WINDOWS_BASE, 4) ||
  index(SVSM_VA.KERNEL_BASE, 4) === index(SVSM_VA.WINDOWS_BASE, 4)
) {
  throw new Error('address-space.ts: SVSM_VA no longer matches the table layout');
}

/** `AddressSpace.mapped` value of an empty window slot. */
const UNMAPPED = -1;

/** A vCPU's own tables (GPAs): its PML4 and the page directory and table of its windows. */
interface CpuTables {
  readonly pml4: number;
  /** Entry 0: the window's page table; entry 1: the huge window (a 2 MiB leaf). */
  readonly windowPd: number;
  readonly windowPt: number;
}

/** Writes a table entry: at a physical address while paging is off, else through the kernel VA. */
type WriteEntry = (gpa: number, value: bigint) => void;

export class AddressSpace {
  private readonly cBit: bigint;
  /** Each vCPU's tables, by vCPU index, once made (`addCpu`). */
  private readonly tables: (CpuTables | undefined)[];
  /**
   * What each window slot maps, by vCPU * 512 + slot: the GPA, +1 when shared, or UNMAPPED. The
   * window tables are the SVSM's own private pages, written only here, so this mirrors them and
   * lets a slot that already maps the right page skip the PTE write and INVLPG.
   */
  private readonly mapped: Float64Array;

  constructor(
    cBitPosition: number,
    readonly region: RegionLayout,
    /** GPA of the kernel region's PDPT, which every vCPU's PML4 points to. */
    private readonly kernelPdpt: number,
    readonly vcpuCount: number,
  ) {
    this.cBit = 1n << BigInt(cBitPosition);
    this.tables = new Array<CpuTables | undefined>(vcpuCount).fill(undefined);
    this.mapped = new Float64Array(vcpuCount * 512).fill(UNMAPPED);
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

  private cpuTables(cpuIndex: number): CpuTables {
    const t = this.tables[cpuIndex];
    if (t === undefined) throw new SvsmPanic(`vCPU ${cpuIndex} has no page tables`);
    return t;
  }

  /** CR3 value of vCPU `cpuIndex`: its own PML4 with the C-bit (the tables are private). */
  cr3(cpuIndex: number): bigint {
    return BigInt(this.cpuTables(cpuIndex).pml4) | this.cBit;
  }

  /**
   * Makes vCPU `cpuIndex`'s tables: PML4, windows PDPT, window PD and PT, from `takePage`
   * (zeroed pages), each entry written by `write`. The kernel entry is the shared PDPT.
   */
  makeCpuTables(cpuIndex: number, takePage: () => number, write: WriteEntry): void {
    if (!Number.isInteger(cpuIndex) || cpuIndex < 0 || cpuIndex >= this.vcpuCount)
      throw new SvsmPanic(`no vCPU ${cpuIndex}`);
    if (this.tables[cpuIndex] !== undefined)
      throw new SvsmPanic(`vCPU ${cpuIndex} already has page tables`);
    const entry = (gpa: number): bigint => BigInt(gpa) | P | RW | this.cBit;
    const wb = SVSM_VA.WINDOWS_BASE;
    const pml4 = takePage();
    const pdpt = takePage();
    const windowPd = takePage();
    const windowPt = takePage();
    write(pml4 + index(SVSM_VA.KERNEL_BASE, 4) * 8, entry(this.kernelPdpt));
    write(pml4 + index(wb, 4) * 8, entry(pdpt));
    write(pdpt + index(wb, 3) * 8, entry(windowPd));
    write(windowPd + index(wb, 2) * 8, entry(windowPt));
    this.tables[cpuIndex] = { pml4, windowPd, windowPt };
  }

  /**
   * Makes vCPU `cpuIndex`'s tables with paging on (for an AP, on the vCPU that creates its VMSA):
   * pages from `allocPage`, zeroed and written through the kernel mapping. Returns its CR3.
   */
  addCpu(cpu: Vmpl0, cpuIndex: number, allocPage: () => number | null): bigint {
    this.makeCpuTables(
      cpuIndex,
      () => {
        const pa = allocPage();
        if (pa === null) throw new SvsmPanic(`no memory for the page tables of vCPU ${cpuIndex}`);
        cpu.fill(this.va(pa), PAGE, 0);
        return pa;
      },
      (gpa, value) => cpu.writeU64(this.va(gpa), value),
    );
    return this.cr3(cpuIndex);
  }

  /** Virtual address of window slot `slot`: the same on every vCPU, each in its own tables. */
  static windowVa(slot: number): number {
    return SVSM_VA.WINDOWS_BASE + slot * PAGE;
  }

  /**
   * Maps the page `gpa` at a slot of `cpu`'s window: private (C-bit) or shared. Returns the VA. A
   * slot that already maps that page the same way is left as it is.
   */
  mapWindow(cpu: Vmpl0, slot: number, gpa: number, shared: boolean): number {
    const cpuIndex = cpu.vcpuIndex;
    const table = this.tables[cpuIndex]?.windowPt;
    if (table === undefined || !Number.isInteger(slot) || slot < 0 || slot >= 512)
      throw new SvsmPanic(`no window slot ${slot} on vCPU ${cpuIndex}`);
    if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % PAGE !== 0)
      throw new SvsmPanic(`0x${gpa.toString(16)} is not a page address`);
    const va = SVSM_VA.WINDOWS_BASE + slot * PAGE;
    const what = gpa + (shared ? 1 : 0);
    const at = cpuIndex * 512 + slot;
    if (this.mapped[at] === what) return va;
    const pte = BigInt(gpa) | P | RW | NX | (shared ? 0n : this.cBit);
    cpu.writeU64(this.va(table) + slot * 8, pte);
    this.mapped[at] = what;
    cpu.invlpg(va);
    return va;
  }

  unmapWindow(cpu: Vmpl0, slot: number): void {
    const table = this.cpuTables(cpu.vcpuIndex).windowPt;
    cpu.writeU64(this.va(table) + slot * 8, 0n);
    this.mapped[cpu.vcpuIndex * 512 + slot] = UNMAPPED;
    cpu.invlpg(AddressSpace.windowVa(slot));
  }

  /** Maps the 2 MiB guest page at `gpa` (private) in `cpu`'s huge window; returns its VA. */
  mapHugeWindow(cpu: Vmpl0, gpa: number): number {
    if (gpa % HUGE !== 0) throw new SvsmPanic(`0x${gpa.toString(16)} is not 2 MiB aligned`);
    const pd = this.cpuTables(cpu.vcpuIndex).windowPd;
    const at = this.va(pd) + index(SVSM_VA.HUGE_WINDOW, 2) * 8;
    cpu.writeU64(at, BigInt(gpa) | P | RW | PS | NX | this.cBit);
    // A 2 MiB translation may be cached per 4 KiB page: drop them all.
    cpu.flushTlb();
    return SVSM_VA.HUGE_WINDOW;
  }

  unmapHugeWindow(cpu: Vmpl0): void {
    const pd = this.cpuTables(cpu.vcpuIndex).windowPd;
    cpu.writeU64(this.va(pd) + index(SVSM_VA.HUGE_WINDOW, 2) * 8, 0n);
    cpu.flushTlb();
  }
}

/**
 * Builds the tables while paging is still off (addresses are physical): the kernel region's PDPT
 * and PD (2 MiB pages), shared by every vCPU, and the tables of `cpu` itself (the BSP). The other
 * vCPUs get theirs with `AddressSpace.addCpu` when their VMSAs are made. `takePage` hands out
 * zeroed pages.
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
  const pdpt = takePage();
  const pd = takePage();
  const kb = SVSM_VA.KERNEL_BASE;
  cpu.writeU64(pdpt + index(kb, 3) * 8, BigInt(pd) | P | RW | c);
  for (let off = 0; off < region.size; off += HUGE) {
    cpu.writeU64(pd + index(kb + off, 2) * 8, BigInt(region.base + off) | P | RW | PS | c);
  }
  const space = new AddressSpace(cpu.cBit, region, pdpt, vcpuCount);
  space.makeCpuTables(cpu.vcpuIndex, takePage, (gpa, value) => cpu.writeU64(gpa, value));
  return space;
}
