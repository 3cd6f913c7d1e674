// The SVSM's page allocator: a binary buddy allocator over a contiguous region of the SVSM's own
// 4 KiB pages, with its per-page metadata in an injected store (page-metadata.ts). Blocks of order
// k are 2^k pages aligned to 2^k pages in *physical* address space, so an order-9 block is a 2 MiB
// page the SVSM can map large. Orders 0..MAX_ORDER, one doubly-linked free list per order threaded
// through the metadata, a bitmask of non-empty lists: allocation and free are O(MAX_ORDER) with no
// JS allocation. Out of memory is a null result; misuse (double free, foreign pointer) is a fatal
// AllocatorError. Modelled on COCONUT-SVSM's buddy allocator (reference/coconut-svsm.md §5), with
// a larger MAX_ORDER and fallible allocation.

import { AllocatorError, hexAddress } from './allocator-error.js';
import {
  INFO_ORDER_MASK,
  INFO_ORDER_SHIFT,
  INFO_TYPE_MASK,
  META,
  NIL,
  PAGE_METADATA_SHIFT,
  PAGE_TYPE,
  type PageMetadata,
} from './page-metadata.js';

export const PAGE_SIZE = 0x1000;
export const PAGE_SHIFT = 12;
/** Largest order: 2^10 pages = 4 MiB blocks. */
export const MAX_ORDER = 10;
/** Number of free lists (orders 0..MAX_ORDER). */
export const ORDER_COUNT = MAX_ORDER + 1;
/** Physical addresses are at most 52 bits (STYLE.md "Numbers"). */
const MAX_PHYSICAL_ADDRESS = 2 ** 52;

/** A page-aligned range of physical memory. */
export interface PageRange {
  readonly address: number;
  readonly pageCount: number;
}

/** A snapshot of the allocator's occupancy, for the footprint figure and for tests. */
export interface BuddyStats {
  readonly totalPages: number;
  readonly reservedPages: number;
  readonly freePages: number;
  /** Pages handed out (to callers or to the slab allocator). */
  readonly allocatedPages: number;
  /** Free blocks on each order's list, indexed by order. */
  readonly freeBlocks: readonly number[];
  /** Free pages in blocks of each order (freeBlocks[k] << k), indexed by order. */
  readonly freePagesByOrder: readonly number[];
  /** The largest order with a free block, or -1 when nothing is free. */
  readonly largestFreeOrder: number;
}

/** Smallest order whose block holds `pages` pages (0 for one page). */
export function orderForPages(pages: number): number {
  return pages <= 1 ? 0 : 32 - Math.clz32(pages - 1);
}

const INFO_FREE_ORDER_0 = PAGE_TYPE.FREE;
const INFO_ALLOCATED_ORDER_0 = PAGE_TYPE.ALLOCATED;

export class BuddyAllocator {
  /** Physical address of the region's first page. */
  readonly base: number;
  readonly pageCount: number;
  readonly metadata: PageMetadata;
  /** The store's words, cached for the hot paths. */
  private readonly words: Uint32Array;
  /** First page of each order's free list, NIL when empty. */
  private readonly heads = new Uint32Array(ORDER_COUNT).fill(NIL);
  /** Blocks on each order's free list. */
  private readonly counts = new Uint32Array(ORDER_COUNT);
  /** Bit k set when order k's free list is not empty. */
  private nonEmpty = 0;
  private freeTotal = 0;
  private readonly reservedPageCount: number;
  /** The base page frame number modulo 2^(MAX_ORDER+1): enough low bits to find any buddy. */
  private readonly basePfnLow: number;

  /**
   * @param basePhysicalAddress first byte of the region, page-aligned.
   * @param pageCount pages in the region.
   * @param metadata the per-page store; every record is initialised here.
   * @param reserved ranges of the region that are never handed out (the SVSM image, its page
   *   tables, the metadata store itself when it lives inside the region). May overlap.
   */
  constructor(
    basePhysicalAddress: number,
    pageCount: number,
    metadata: PageMetadata,
    reserved: readonly PageRange[] = [],
  ) {
    if (
      !Number.isSafeInteger(basePhysicalAddress) ||
      basePhysicalAddress < 0 ||
      basePhysicalAddress % PAGE_SIZE !== 0
    ) {
      throw config(`base ${hexAddress(basePhysicalAddress)} is not a page-aligned address`);
    }
    if (!Number.isSafeInteger(pageCount) || pageCount < 1 || pageCount > metadata.pageCount) {
      throw config(
        `page count ${pageCount} is not in 1..${metadata.pageCount} (the metadata store's size)`,
      );
    }
    if (basePhysicalAddress + pageCount * PAGE_SIZE > MAX_PHYSICAL_ADDRESS) {
      throw config('region extends beyond the 52-bit physical address space');
    }
    this.base = basePhysicalAddress;
    this.pageCount = pageCount;
    this.metadata = metadata;
    this.words = metadata.words;
    this.basePfnLow = (basePhysicalAddress / PAGE_SIZE) % 2 ** (MAX_ORDER + 1);

    const w = this.words;
    w.fill(0, 0, pageCount << PAGE_METADATA_SHIFT);
    let reservedPages = 0;
    for (const r of reserved) {
      const first = (r.address - basePhysicalAddress) / PAGE_SIZE;
      if (
        !Number.isInteger(first) ||
        !Number.isInteger(r.pageCount) ||
        r.pageCount < 0 ||
        first < 0 ||
        first + r.pageCount > pageCount
      ) {
        throw config(
          `reserved range ${hexAddress(r.address)} + ${r.pageCount} pages is not page-aligned ` +
            'inside the region',
        );
      }
      for (let p = first; p < first + r.pageCount; p++) {
        const i = p << PAGE_METADATA_SHIFT;
        if (w[i] !== PAGE_TYPE.RESERVED) {
          w[i] = PAGE_TYPE.RESERVED;
          w[i + META.NEXT] = NIL;
          w[i + META.PREV] = NIL;
          reservedPages++;
        }
      }
    }
    this.reservedPageCount = reservedPages;
    this.carveFreeBlocks();
  }

  /**
   * Splits the unreserved pages into the largest aligned blocks that fit, lowest address first on
   * each list: the fully coalesced state, the same one freeing everything returns to.
   */
  private carveFreeBlocks(): void {
    const w = this.words;
    const tails = new Uint32Array(ORDER_COUNT).fill(NIL);
    let nextReserved = -1;
    let page = 0;
    while (page < this.pageCount) {
      if (w[page << PAGE_METADATA_SHIFT] === PAGE_TYPE.RESERVED) {
        page++;
        continue;
      }
      if (nextReserved < page) {
        nextReserved = page;
        while (
          nextReserved < this.pageCount &&
          w[nextReserved << PAGE_METADATA_SHIFT] !== PAGE_TYPE.RESERVED
        ) {
          nextReserved++;
        }
      }
      const limit = nextReserved - page;
      let order = MAX_ORDER;
      while (
        order > 0 &&
        (1 << order > limit || ((this.basePfnLow + page) & ((1 << order) - 1)) !== 0)
      ) {
        order--;
      }
      const r = page << PAGE_METADATA_SHIFT;
      w[r] = INFO_FREE_ORDER_0 | (order << INFO_ORDER_SHIFT);
      w[r + META.NEXT] = NIL;
      const tail = tails[order]!;
      w[r + META.PREV] = tail;
      if (tail === NIL) this.heads[order] = page;
      else w[(tail << PAGE_METADATA_SHIFT) + META.NEXT] = page;
      tails[order] = page;
      this.counts[order]! += 1;
      this.nonEmpty |= 1 << order;
      this.freeTotal += 1 << order;
      page += 1 << order;
    }
  }

  /**
   * Allocates 2^order contiguous pages aligned to 2^order pages.
   * @returns the block's physical address, or null when no block of that order is free (the
   *   allocator is then unchanged).
   */
  allocPages(order: number): number | null {
    if (!(order >= 0 && order <= MAX_ORDER) || (order | 0) !== order) {
      throw new AllocatorError(
        'bad-request',
        `allocPages: order ${order} is not in 0..${MAX_ORDER}`,
      );
    }
    const available = this.nonEmpty >>> order;
    if (available === 0) return null;
    let k = order + 31 - Math.clz32(available & -available);
    const w = this.words;
    const page = this.heads[k]!;
    this.popHead(k, page);
    // Split: keep the lower half, put the upper half on the next list down.
    while (k > order) {
      k--;
      const upper = page + (1 << k);
      w[upper << PAGE_METADATA_SHIFT] = INFO_FREE_ORDER_0 | (k << INFO_ORDER_SHIFT);
      this.push(k, upper);
    }
    w[page << PAGE_METADATA_SHIFT] = INFO_ALLOCATED_ORDER_0 | (order << INFO_ORDER_SHIFT);
    this.freeTotal -= 1 << order;
    return this.base + page * PAGE_SIZE;
  }

  /** Allocates one page. */
  allocPage(): number | null {
    return this.allocPages(0);
  }

  /**
   * Returns a block from allocPages, merging it with its free buddies as far as they go.
   * @throws AllocatorError on a double free, an address that is not the start of an allocated
   *   block, or a slab or reserved page.
   */
  freePages(address: number): void {
    let page = this.blockPageOf(address, 'freePages');
    const w = this.words;
    const info = w[page << PAGE_METADATA_SHIFT]!;
    const type = info & INFO_TYPE_MASK;
    if (type !== PAGE_TYPE.ALLOCATED) throw this.misuse('freePages', address, type);
    let order = (info >>> INFO_ORDER_SHIFT) & INFO_ORDER_MASK;
    this.freeTotal += 1 << order;
    while (order < MAX_ORDER) {
      const size = 1 << order;
      const buddy = ((this.basePfnLow + page) & size) === 0 ? page + size : page - size;
      // A buddy past either end of the region is never free.
      if (buddy + size > this.pageCount || buddy < 0) break;
      if (w[buddy << PAGE_METADATA_SHIFT] !== (INFO_FREE_ORDER_0 | (order << INFO_ORDER_SHIFT))) {
        break;
      }
      this.unlink(order, buddy);
      // The higher of the two becomes the inside of the merged block.
      if (buddy > page) {
        w[buddy << PAGE_METADATA_SHIFT] = PAGE_TYPE.TAIL;
      } else {
        w[page << PAGE_METADATA_SHIFT] = PAGE_TYPE.TAIL;
        page = buddy;
      }
      order++;
    }
    w[page << PAGE_METADATA_SHIFT] = INFO_FREE_ORDER_0 | (order << INFO_ORDER_SHIFT);
    this.push(order, page);
  }

  /**
   * The order of the allocated block starting at `address`.
   * @throws AllocatorError when `address` is not the start of a block allocPages handed out.
   */
  allocatedOrder(address: number): number {
    const page = this.blockPageOf(address, 'allocatedOrder');
    const info = this.words[page << PAGE_METADATA_SHIFT]!;
    const type = info & INFO_TYPE_MASK;
    if (type !== PAGE_TYPE.ALLOCATED) throw this.misuse('allocatedOrder', address, type);
    return (info >>> INFO_ORDER_SHIFT) & INFO_ORDER_MASK;
  }

  /** Whether `address` is a byte of this region. */
  contains(address: number): boolean {
    const offset = address - this.base;
    return offset >= 0 && offset < this.pageCount * PAGE_SIZE;
  }

  /** Free pages in total. */
  get freePageCount(): number {
    return this.freeTotal;
  }

  /** Free blocks on order `order`'s list. */
  freeBlocks(order: number): number {
    return this.counts[order] ?? 0;
  }

  stats(): BuddyStats {
    const freeBlocks = Array.from(this.counts);
    return {
      totalPages: this.pageCount,
      reservedPages: this.reservedPageCount,
      freePages: this.freeTotal,
      allocatedPages: this.pageCount - this.reservedPageCount - this.freeTotal,
      freeBlocks,
      freePagesByOrder: freeBlocks.map((n, k) => n * 2 ** k),
      largestFreeOrder: 31 - Math.clz32(this.nonEmpty),
    };
  }

  /**
   * Checks every invariant of the free lists and the metadata (O(pages), for tests and for a
   * debug build's periodic check): lists are consistent doubly-linked lists of FREE heads of their
   * order; the heads partition the region into aligned blocks whose other pages are TAIL; the
   * counters match; no two free buddies of the same order are left unmerged.
   * @returns the problems found, empty when the allocator is consistent.
   */
  checkConsistency(): string[] {
    const problems: string[] = [];
    const w = this.words;
    const onList = new Uint8Array(this.pageCount);
    let listedFree = 0;
    for (let k = 0; k <= MAX_ORDER; k++) {
      let prev = NIL;
      let n = 0;
      for (let p = this.heads[k]!; p !== NIL; p = w[(p << PAGE_METADATA_SHIFT) + META.NEXT]!) {
        if (p >= this.pageCount) {
          problems.push(`order ${k} list: page ${p} is outside the region`);
          break;
        }
        if (onList[p] !== 0) {
          problems.push(`order ${k} list: page ${p} is listed twice (cycle or shared node)`);
          break;
        }
        onList[p] = 1;
        const r = p << PAGE_METADATA_SHIFT;
        if (w[r] !== (INFO_FREE_ORDER_0 | (k << INFO_ORDER_SHIFT))) {
          problems.push(`order ${k} list: page ${p} has info 0x${w[r]!.toString(16)}`);
        }
        if (w[r + META.PREV] !== prev) {
          problems.push(`order ${k} list: page ${p} prev is ${w[r + META.PREV]}, expected ${prev}`);
        }
        prev = p;
        n++;
        listedFree += 1 << k;
      }
      if (n !== this.counts[k])
        problems.push(`order ${k}: ${n} blocks listed, count says ${this.counts[k]}`);
      if (n > 0 !== ((this.nonEmpty & (1 << k)) !== 0)) {
        problems.push(`order ${k}: non-empty mask bit disagrees with the list`);
      }
    }
    if (listedFree !== this.freeTotal) {
      problems.push(`free lists hold ${listedFree} pages, counter says ${this.freeTotal}`);
    }
    let reserved = 0;
    let page = 0;
    while (page < this.pageCount) {
      const info = w[page << PAGE_METADATA_SHIFT]!;
      const type = info & INFO_TYPE_MASK;
      const order = (info >>> INFO_ORDER_SHIFT) & INFO_ORDER_MASK;
      if (type === PAGE_TYPE.TAIL) {
        problems.push(`page ${page} is TAIL but not inside any block`);
        page++;
        continue;
      }
      if (order > MAX_ORDER) {
        problems.push(`page ${page} has order ${order}`);
        page++;
        continue;
      }
      const size = 1 << order;
      if (((this.basePfnLow + page) & (size - 1)) !== 0 || page + size > this.pageCount) {
        problems.push(
          `block at page ${page} of order ${order} is misaligned or overruns the region`,
        );
      }
      if ((type === PAGE_TYPE.SLAB || type === PAGE_TYPE.RESERVED) && order !== 0) {
        problems.push(`page ${page} of type ${type} has order ${order}`);
      }
      if (type === PAGE_TYPE.RESERVED) reserved++;
      if ((type === PAGE_TYPE.FREE) !== (onList[page] === 1)) {
        problems.push(
          `page ${page} of type ${type} is ${onList[page] === 1 ? '' : 'not '}on a free list`,
        );
      }
      if (type === PAGE_TYPE.FREE && order < MAX_ORDER) {
        const buddy = ((this.basePfnLow + page) & size) === 0 ? page + size : page - size;
        if (
          buddy >= 0 &&
          buddy + size <= this.pageCount &&
          w[buddy << PAGE_METADATA_SHIFT] === info
        ) {
          problems.push(
            `free buddies at pages ${page} and ${buddy} (order ${order}) are not merged`,
          );
        }
      }
      const end = Math.min(page + size, this.pageCount);
      for (let t = page + 1; t < end; t++) {
        if (w[t << PAGE_METADATA_SHIFT] !== PAGE_TYPE.TAIL) {
          problems.push(`page ${t} inside the block at page ${page} is not TAIL`);
          break;
        }
      }
      page = end;
    }
    if (reserved !== this.reservedPageCount) {
      problems.push(`${reserved} reserved pages, counter says ${this.reservedPageCount}`);
    }
    return problems;
  }

  /** Page index of a page-aligned address inside the region; throws foreign-pointer otherwise. */
  private blockPageOf(address: number, operation: string): number {
    const offset = address - this.base;
    // floor and multiply rather than `%`, which is a library call (fmod) on a double.
    const page = Math.floor(offset / PAGE_SIZE);
    if (!(page >= 0 && page < this.pageCount) || page * PAGE_SIZE !== offset) {
      throw new AllocatorError(
        'foreign-pointer',
        `${operation}: ${hexAddress(address)} is not a page of the region at ` +
          `${hexAddress(this.base)} (${this.pageCount} pages)`,
        address,
      );
    }
    return page;
  }

  private misuse(operation: string, address: number, type: number): AllocatorError {
    const at = `${operation}: ${hexAddress(address)}`;
    switch (type) {
      case PAGE_TYPE.FREE:
        return new AllocatorError('double-free', `${at} is already free`, address);
      case PAGE_TYPE.SLAB:
        return new AllocatorError('wrong-allocator', `${at} is a slab page`, address);
      case PAGE_TYPE.RESERVED:
        return new AllocatorError('wrong-allocator', `${at} is a reserved page`, address);
      default:
        return new AllocatorError(
          'not-allocated',
          `${at} is not the start of an allocated block (double free or interior pointer)`,
          address,
        );
    }
  }

  /** Puts `page` at the head of order `k`'s free list. Its INFO word is already FREE. */
  private push(k: number, page: number): void {
    const w = this.words;
    const r = page << PAGE_METADATA_SHIFT;
    const head = this.heads[k]!;
    w[r + META.NEXT] = head;
    w[r + META.PREV] = NIL;
    if (head !== NIL) w[(head << PAGE_METADATA_SHIFT) + META.PREV] = page;
    this.heads[k] = page;
    this.counts[k]! += 1;
    this.nonEmpty |= 1 << k;
  }

  /** Takes `page`, the head, off order `k`'s free list. */
  private popHead(k: number, page: number): void {
    const w = this.words;
    const next = w[(page << PAGE_METADATA_SHIFT) + META.NEXT]!;
    this.heads[k] = next;
    if (next !== NIL) w[(next << PAGE_METADATA_SHIFT) + META.PREV] = NIL;
    const count = this.counts[k]! - 1;
    this.counts[k] = count;
    if (count === 0) this.nonEmpty &= ~(1 << k);
  }

  /** Takes `page` off order `k`'s free list. */
  private unlink(k: number, page: number): void {
    const w = this.words;
    const r = page << PAGE_METADATA_SHIFT;
    const next = w[r + META.NEXT]!;
    const prev = w[r + META.PREV]!;
    if (prev === NIL) this.heads[k] = next;
    else w[(prev << PAGE_METADATA_SHIFT) + META.NEXT] = next;
    if (next !== NIL) w[(next << PAGE_METADATA_SHIFT) + META.PREV] = prev;
    const count = this.counts[k]! - 1;
    this.counts[k] = count;
    if (count === 0) this.nonEmpty &= ~(1 << k);
  }
}

function config(message: string): AllocatorError {
  return new AllocatorError('bad-configuration', `buddy allocator: ${message}`);
}
