// Guest pages the guest deposited with the SVSM (core protocol DEPOSIT_MEM) and may withdraw again
// (WITHDRAW_MEM). The protocol handler (protocols/core.ts) does the RMP work: a deposited page is
// private, validated and inaccessible to the guest's VMPL and those above it, and zero whenever it
// changes hands. This module is the bookkeeping: which pages are deposited, which of them the SVSM
// is using, and a page allocator over the free ones. A page in use cannot be withdrawn.
//
// The pages lie outside the SVSM region, so the SVSM reaches them through its temporary windows
// (GuestMemory), never through the kernel mapping. Allocation order is deterministic (the oldest
// free deposit first), as everything under src/svsm must be.

import { AllocatorError, hexAddress } from './allocator-error.js';

const PAGE = 0x1000;

/** What withdraw() found. */
export type WithdrawOutcome = 'withdrawn' | 'not-deposited' | 'in-use';

export class DepositedMemory {
  /** Deposited pages by GPA; true while the SVSM uses the page. */
  private readonly pages = new Map<number, boolean>();
  /** Free deposited pages, oldest deposit first (a Set keeps insertion order). */
  private readonly free = new Set<number>();

  /** Deposited pages in total. */
  get pageCount(): number {
    return this.pages.size;
  }

  /** Deposited pages the SVSM is not using. */
  get freePageCount(): number {
    return this.free.size;
  }

  /** Whether the 4 KiB page at `gpa` (page-aligned) is deposited. */
  has(gpa: number): boolean {
    return this.pages.has(gpa);
  }

  /** Whether the deposited page at `gpa` is in use by the SVSM. */
  inUse(gpa: number): boolean {
    return this.pages.get(gpa) === true;
  }

  /** Whether any deposited page lies in [gpa, gpa+size). */
  overlaps(gpa: number, size: number): boolean {
    if (size <= PAGE) return this.pages.has(gpa - (gpa % PAGE));
    for (const p of this.pages.keys()) if (p >= gpa && p < gpa + size) return true;
    return false;
  }

  /** Records a page the handler has taken from the guest. False if it was deposited already. */
  deposit(gpa: number): boolean {
    checkPage(gpa);
    if (this.pages.has(gpa)) return false;
    this.pages.set(gpa, false);
    this.free.add(gpa);
    return true;
  }

  /**
   * Forgets a free deposited page (the handler gives it back to the guest afterwards). A page in
   * use or never deposited stays as it is.
   */
  withdraw(gpa: number): WithdrawOutcome {
    const used = this.pages.get(gpa);
    if (used === undefined) return 'not-deposited';
    if (used) return 'in-use';
    this.pages.delete(gpa);
    this.free.delete(gpa);
    return 'withdrawn';
  }

  /** Takes a free deposited page for the SVSM's own use; null when none is free. */
  allocPage(): number | null {
    for (const gpa of this.free) {
      this.free.delete(gpa);
      this.pages.set(gpa, true);
      return gpa;
    }
    return null;
  }

  /** Returns a page from allocPage (the caller has zeroed it). */
  freePage(gpa: number): void {
    if (this.pages.get(gpa) !== true) {
      throw new AllocatorError(
        'not-allocated',
        `${hexAddress(gpa)} is not a deposited page in use`,
        gpa,
      );
    }
    this.pages.set(gpa, false);
    this.free.add(gpa);
  }

  /** Every deposited page, for tests and logs. */
  list(): number[] {
    return [...this.pages.keys()];
  }
}

function checkPage(gpa: number): void {
  if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % PAGE !== 0) {
    throw new AllocatorError(
      'foreign-pointer',
      `${hexAddress(gpa)} is not a page-aligned GPA`,
      gpa,
    );
  }
}
