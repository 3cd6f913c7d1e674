// Decoded instructions per physical page, shared by every vCPU on the same physical memory.
// A page that holds cached code is "protected": CPUs drop write permission for it from their
// TLBs (through the listeners), so a store to it takes the CPU's slow path, which invalidates the
// page before writing. Writers that are not CPUs (host, ASP, DMA) must call `invalidate()`.

import type { Insn } from './insn.js';

const PAGE = 4096;

export class CodeCache {
  private readonly pages: (Insn[] | undefined)[];
  /** 1 where a page holds cached code. */
  readonly hasCode: Uint8Array;
  private readonly protectListeners: ((pfn: number) => void)[] = [];
  /** How many pages have been invalidated by writes (for tests and statistics). */
  invalidations = 0;

  constructor(pageCount: number) {
    this.pages = new Array<Insn[] | undefined>(pageCount);
    this.hasCode = new Uint8Array(pageCount);
  }

  /** Called with the frame number each time a page starts holding code. */
  onProtect(listener: (pfn: number) => void): void {
    this.protectListeners.push(listener);
  }

  /** The cached instruction at physical address `pa`, or undefined. */
  lookup(pa: number): Insn | undefined {
    const page = this.pages[pa >>> 12];
    return page === undefined ? undefined : page[pa & (PAGE - 1)];
  }

  /** Caches `insn` decoded at `pa` (it must not cross into the next page). */
  insert(pa: number, insn: Insn): void {
    const pfn = pa >>> 12;
    let page = this.pages[pfn];
    if (page === undefined) {
      page = new Array<Insn>(PAGE);
      this.pages[pfn] = page;
      this.hasCode[pfn] = 1;
      for (const l of this.protectListeners) l(pfn);
    }
    page[pa & (PAGE - 1)] = insn;
  }

  /** Forgets the decoded code of page `pfn` (its bytes are about to change). */
  invalidatePage(pfn: number): void {
    if (this.hasCode[pfn] === 0) return;
    this.pages[pfn] = undefined;
    this.hasCode[pfn] = 0;
    this.invalidations++;
  }

  /** Forgets decoded code in the physical range [pa, pa + length). */
  invalidate(pa: number, length: number): void {
    if (length <= 0) return;
    for (let p = Math.floor(pa / PAGE); p <= Math.floor((pa + length - 1) / PAGE); p++) {
      this.invalidatePage(p);
    }
  }

  /** Forgets everything (e.g. when the decoding mode changes). */
  clear(): void {
    for (let p = 0; p < this.pages.length; p++) this.invalidatePage(p);
  }
}
