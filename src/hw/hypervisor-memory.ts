// The hypervisor's view of guest memory: the only way host code reads or writes it. Like the RMP
// on real hardware, it lets the host touch pages it owns (shared with the guest, or never given to
// it) and refuses every page assigned to the guest - private, VMSA, SVSM - naming the page.
// (Real hardware lets a hypervisor read private pages as ciphertext; refusing the read as well
// makes a host that tries it fail loudly instead of computing on garbage.)

import { describeRmpEntry, RMP_ASSIGNED } from '../arch/index.js';
import { PAGE_SIZE, type PhysicalMemory } from './memory.js';
import type { Rmp } from './rmp.js';

/** A host access the RMP refuses, or one outside memory. */
export class HostAccessError extends Error {
  override readonly name = 'HostAccessError';
  constructor(
    message: string,
    readonly gpa: number,
  ) {
    super(message);
  }
}

/** Page views `sharedPage` keeps (GHCB pages: one per vCPU and VMPL in use). */
const PAGE_VIEW_LIMIT = 1024;

export class HypervisorMemory {
  private readonly pageViews = new Map<number, Uint8Array>();

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly rmp: Rmp,
  ) {}

  get size(): number {
    return this.memory.size;
  }

  /** Throws HostAccessError unless every page of [gpa, gpa+length) is hypervisor-owned. */
  private check(gpa: number, length: number, what: 'read' | 'write'): void {
    if (!this.memory.contains(gpa, length)) {
      throw new HostAccessError(
        `host ${what} of 0x${gpa.toString(16)}+0x${length.toString(16)} is outside guest memory`,
        gpa,
      );
    }
    if (length === 0) return;
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + length - 1) / PAGE_SIZE);
    for (let pfn = first; pfn <= last; pfn++) {
      const e = this.rmp.entries[pfn]!;
      if ((e & RMP_ASSIGNED) !== 0) {
        const page = pfn * PAGE_SIZE;
        throw new HostAccessError(
          `host ${what} of page 0x${page.toString(16)} refused by the RMP: the page is assigned to the guest (${describeRmpEntry(e)})`,
          page,
        );
      }
    }
  }

  /** True when the host may touch the whole range. */
  isShared(gpa: number, length = PAGE_SIZE): boolean {
    try {
      this.check(gpa, length, 'read');
      return true;
    } catch (e) {
      if (e instanceof HostAccessError) return false;
      throw e;
    }
  }

  read(gpa: number, length: number): Uint8Array {
    this.check(gpa, length, 'read');
    return this.memory.read(gpa, length);
  }

  write(gpa: number, data: Uint8Array): void {
    this.check(gpa, data.length, 'write');
    this.memory.write(gpa, data);
  }

  fill(gpa: number, length: number, value = 0): void {
    this.check(gpa, length, 'write');
    this.memory.fill(gpa, length, value);
  }

  /**
   * A live view of the whole page at `gpa` (page-aligned), for host code that reads and writes a
   * page in place during one exit (the GHCB), with no copies. The RMP is checked now, and the page
   * counts as written; the view must not be used after the exit without asking again.
   */
  sharedPage(gpa: number): Uint8Array {
    if (gpa % PAGE_SIZE !== 0) {
      throw new HostAccessError(
        `host page access at 0x${gpa.toString(16)} is not page aligned`,
        gpa,
      );
    }
    this.check(gpa, PAGE_SIZE, 'write');
    const pfn = gpa / PAGE_SIZE;
    let view = this.pageViews.get(pfn);
    if (view === undefined) {
      // `page` marks the page written once; the mark is never cleared, so the view can be kept.
      view = this.memory.page(pfn);
      if (this.pageViews.size >= PAGE_VIEW_LIMIT) this.pageViews.clear();
      this.pageViews.set(pfn, view);
    }
    return view;
  }

  readU64(gpa: number): bigint {
    const b = this.read(gpa, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  writeU64(gpa: number, value: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value, true);
    this.write(gpa, b);
  }
}
