// The SVSM's small-block allocator: slabs of one 4 KiB page each, carved into blocks of one size
// class (32..2048 bytes, powers of two, as COCONUT-SVSM's; reference/coconut-svsm.md §5), on top
// of the buddy allocator. A slab's state lives in its page's metadata record (page-metadata.ts):
// the size class in INFO, the free-block count in SLAB_FREE and a 128-bit free bitmap in
// SLAB_BITMAP, so there is no JS object per slab or block and no header inside the page. Slabs
// with at least one free block sit on their class's partial list (threaded through NEXT/PREV);
// full slabs sit on no list. A slab that becomes empty goes back to the buddy allocator, except
// for up to `maxEmptySlabsPerClass` kept per class so that an alloc/free pair at a class boundary
// does not split and merge a page every time.

import { AllocatorError, hexAddress } from './allocator-error.js';
import { type BuddyAllocator, PAGE_SIZE } from './buddy-allocator.js';
import {
  INFO_SLAB_CLASS_MASK,
  INFO_SLAB_CLASS_SHIFT,
  INFO_TYPE_MASK,
  META,
  NIL,
  PAGE_METADATA_SHIFT,
  PAGE_TYPE,
  SLAB_BITMAP_WORDS,
} from './page-metadata.js';

/** Block sizes, smallest first. A request is rounded up to the next one. */
export const SLAB_SIZE_CLASSES = [32, 64, 128, 256, 512, 1024, 2048] as const;
export const SLAB_MIN_BLOCK = 32;
const SLAB_MIN_SHIFT = 5;
/** Largest request the slab allocator serves; larger ones go to the buddy allocator. */
export const SLAB_MAX_BLOCK = 2048;
const CLASS_COUNT = SLAB_SIZE_CLASSES.length;

/** Size class index (into SLAB_SIZE_CLASSES) of a request of `size` bytes, 1..SLAB_MAX_BLOCK. */
export function slabClassOf(size: number): number {
  return size <= SLAB_MIN_BLOCK ? 0 : 32 - SLAB_MIN_SHIFT - Math.clz32(size - 1);
}

/** Blocks in one slab page of class `cls`. */
function blocksPerSlab(cls: number): number {
  return PAGE_SIZE >>> (cls + SLAB_MIN_SHIFT);
}

export interface SlabOptions {
  /** Empty slabs each class keeps instead of returning them to the buddy allocator. Default 1. */
  readonly maxEmptySlabsPerClass?: number;
}

export interface SlabClassStats {
  readonly blockSize: number;
  readonly slabPages: number;
  readonly usedBlocks: number;
  readonly freeBlocks: number;
  /** Slab pages with no block in use, kept for reuse. */
  readonly emptySlabs: number;
}

export interface SlabStats {
  readonly classes: readonly SlabClassStats[];
  readonly slabPages: number;
  /** Bytes in blocks handed out (block sizes, not request sizes). */
  readonly usedBytes: number;
}

export class SlabAllocator {
  readonly buddy: BuddyAllocator;
  readonly maxEmptySlabsPerClass: number;
  private readonly words: Uint32Array;
  private readonly base: number;
  private readonly regionBytes: number;
  /** First slab of each class's partial list, NIL when empty. */
  private readonly heads = new Uint32Array(CLASS_COUNT).fill(NIL);
  private readonly slabPages = new Uint32Array(CLASS_COUNT);
  private readonly usedBlocks = new Uint32Array(CLASS_COUNT);
  private readonly emptySlabs = new Uint32Array(CLASS_COUNT);

  constructor(buddy: BuddyAllocator, options: SlabOptions = {}) {
    const keep = options.maxEmptySlabsPerClass ?? 1;
    if (!Number.isSafeInteger(keep) || keep < 0) {
      throw new AllocatorError(
        'bad-configuration',
        `slab allocator: maxEmptySlabsPerClass ${keep} is not a count`,
      );
    }
    this.buddy = buddy;
    this.maxEmptySlabsPerClass = keep;
    this.words = buddy.metadata.words;
    this.base = buddy.base;
    this.regionBytes = buddy.pageCount * PAGE_SIZE;
  }

  /**
   * Allocates a block of at least `size` bytes, aligned to its size class.
   * @returns the block's physical address, or null when a new slab page is needed and the buddy
   *   allocator has none (the allocators are then unchanged).
   * @throws AllocatorError when `size` is not an integer in 1..SLAB_MAX_BLOCK.
   */
  alloc(size: number): number | null {
    if (!(size >= 1 && size <= SLAB_MAX_BLOCK) || (size | 0) !== size) {
      throw new AllocatorError(
        'bad-request',
        `slab alloc: size ${size} is not in 1..${SLAB_MAX_BLOCK} (use the buddy allocator)`,
      );
    }
    const cls = slabClassOf(size);
    let page = this.heads[cls]!;
    if (page === NIL) {
      page = this.newSlab(cls);
      if (page === NIL) return null;
    }
    const w = this.words;
    const r = page << PAGE_METADATA_SHIFT;
    let j = 0;
    let word = w[r + META.SLAB_BITMAP]!;
    while (word === 0) {
      if (++j === SLAB_BITMAP_WORDS)
        throw this.corrupt(page, 'is on a partial list with no free block');
      word = w[r + META.SLAB_BITMAP + j]!;
    }
    const bit = 31 - Math.clz32(word & -word);
    w[r + META.SLAB_BITMAP + j] = word & ~(1 << bit);
    const free = w[r + META.SLAB_FREE]!;
    if (free === blocksPerSlab(cls)) this.emptySlabs[cls]! -= 1;
    w[r + META.SLAB_FREE] = free - 1;
    if (free === 1) this.unlink(cls, page);
    this.usedBlocks[cls]! += 1;
    return this.base + page * PAGE_SIZE + (((j << 5) + bit) << (cls + SLAB_MIN_SHIFT));
  }

  /**
   * Returns a block from alloc.
   * @throws AllocatorError on a double free, an address inside a block, or an address that is not
   *   in a slab page of this allocator's region.
   */
  free(address: number): void {
    const page = this.slabPageOf(address, 'slab free');
    const w = this.words;
    const r = page << PAGE_METADATA_SHIFT;
    const cls = (w[r]! >>> INFO_SLAB_CLASS_SHIFT) & INFO_SLAB_CLASS_MASK;
    const shift = cls + SLAB_MIN_SHIFT;
    const inPage = address - this.base - page * PAGE_SIZE;
    if ((inPage & ((1 << shift) - 1)) !== 0) {
      throw new AllocatorError(
        'not-allocated',
        `slab free: ${hexAddress(address)} is inside a ${1 << shift}-byte block`,
        address,
      );
    }
    const block = inPage >>> shift;
    const at = r + META.SLAB_BITMAP + (block >>> 5);
    const mask = 1 << (block & 31);
    const word = w[at]!;
    if ((word & mask) !== 0) {
      throw new AllocatorError(
        'double-free',
        `slab free: ${hexAddress(address)} is already free`,
        address,
      );
    }
    w[at] = word | mask;
    const free = w[r + META.SLAB_FREE]! + 1;
    w[r + META.SLAB_FREE] = free;
    this.usedBlocks[cls]! -= 1;
    if (free === 1) this.push(cls, page);
    if (free === blocksPerSlab(cls)) {
      if (this.emptySlabs[cls]! < this.maxEmptySlabsPerClass) this.emptySlabs[cls]! += 1;
      else this.releaseSlab(cls, page);
    }
  }

  /**
   * The block size of the allocated block at `address`.
   * @throws AllocatorError as free does when `address` is not an allocated block.
   */
  blockSizeOf(address: number): number {
    const page = this.slabPageOf(address, 'slab blockSizeOf');
    const r = page << PAGE_METADATA_SHIFT;
    const shift =
      ((this.words[r]! >>> INFO_SLAB_CLASS_SHIFT) & INFO_SLAB_CLASS_MASK) + SLAB_MIN_SHIFT;
    const inPage = address - this.base - page * PAGE_SIZE;
    const block = inPage >>> shift;
    const free = this.words[r + META.SLAB_BITMAP + (block >>> 5)]! & (1 << (block & 31));
    if ((inPage & ((1 << shift) - 1)) !== 0 || free !== 0) {
      throw new AllocatorError(
        'not-allocated',
        `slab blockSizeOf: ${hexAddress(address)} is not an allocated block`,
        address,
      );
    }
    return 1 << shift;
  }

  /** Returns every kept empty slab to the buddy allocator (under memory pressure, at shutdown). */
  releaseEmptySlabs(): number {
    let released = 0;
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      const blocks = blocksPerSlab(cls);
      let page = this.heads[cls]!;
      while (page !== NIL) {
        const r = page << PAGE_METADATA_SHIFT;
        const next = this.words[r + META.NEXT]!;
        if (this.words[r + META.SLAB_FREE] === blocks) {
          this.emptySlabs[cls]! -= 1;
          this.releaseSlab(cls, page);
          released++;
        }
        page = next;
      }
    }
    return released;
  }

  stats(): SlabStats {
    const classes: SlabClassStats[] = [];
    let slabPages = 0;
    let usedBytes = 0;
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      const pages = this.slabPages[cls]!;
      const used = this.usedBlocks[cls]!;
      const blockSize = SLAB_SIZE_CLASSES[cls]!;
      classes.push({
        blockSize,
        slabPages: pages,
        usedBlocks: used,
        freeBlocks: pages * blocksPerSlab(cls) - used,
        emptySlabs: this.emptySlabs[cls]!,
      });
      slabPages += pages;
      usedBytes += used * blockSize;
    }
    return { classes, slabPages, usedBytes };
  }

  /**
   * Checks the slab metadata (O(pages), for tests): every partial list is a consistent list of
   * slab pages of its class with a free block; every slab page's free count matches its bitmap,
   * with no bit set past its last block; full slabs are on no list; the counters match.
   * @returns the problems found, empty when consistent.
   */
  checkConsistency(): string[] {
    const problems: string[] = [];
    const w = this.words;
    const pageCount = this.buddy.pageCount;
    const listed = new Uint8Array(pageCount);
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      let prev = NIL;
      let empty = 0;
      for (let p = this.heads[cls]!; p !== NIL; p = w[(p << PAGE_METADATA_SHIFT) + META.NEXT]!) {
        if (p >= pageCount || listed[p] !== 0) {
          problems.push(`class ${cls} list: page ${p} is outside the region or listed twice`);
          break;
        }
        listed[p] = 1;
        const r = p << PAGE_METADATA_SHIFT;
        if ((w[r]! & INFO_TYPE_MASK) !== PAGE_TYPE.SLAB)
          problems.push(`class ${cls} list: page ${p} is not a slab`);
        else if (((w[r]! >>> INFO_SLAB_CLASS_SHIFT) & INFO_SLAB_CLASS_MASK) !== cls) {
          problems.push(`class ${cls} list: page ${p} belongs to another class`);
        }
        if (w[r + META.PREV] !== prev)
          problems.push(`class ${cls} list: page ${p} prev link broken`);
        if (w[r + META.SLAB_FREE] === blocksPerSlab(cls)) empty++;
        prev = p;
      }
      if (empty !== this.emptySlabs[cls]) {
        problems.push(
          `class ${cls}: ${empty} empty slabs listed, counter says ${this.emptySlabs[cls]}`,
        );
      }
      if (empty > this.maxEmptySlabsPerClass)
        problems.push(`class ${cls}: ${empty} empty slabs kept`);
    }
    const pages = new Uint32Array(CLASS_COUNT);
    const used = new Uint32Array(CLASS_COUNT);
    for (let p = 0; p < pageCount; p++) {
      const r = p << PAGE_METADATA_SHIFT;
      if ((w[r]! & INFO_TYPE_MASK) !== PAGE_TYPE.SLAB) continue;
      const cls = (w[r]! >>> INFO_SLAB_CLASS_SHIFT) & INFO_SLAB_CLASS_MASK;
      if (cls >= CLASS_COUNT) {
        problems.push(`slab page ${p} has class ${cls}`);
        continue;
      }
      const blocks = blocksPerSlab(cls);
      let bits = 0;
      for (let j = 0; j < SLAB_BITMAP_WORDS; j++) {
        const word = w[r + META.SLAB_BITMAP + j]!;
        bits += popcount(word);
        const valid = Math.max(0, Math.min(32, blocks - 32 * j));
        if (valid < 32 && word >>> valid !== 0)
          problems.push(`slab page ${p} has bits past its last block`);
      }
      const free = w[r + META.SLAB_FREE]!;
      if (bits !== free)
        problems.push(`slab page ${p}: bitmap has ${bits} free blocks, count says ${free}`);
      if (free > 0 !== (listed[p] === 1)) {
        problems.push(
          `slab page ${p} with ${free} free blocks is ${listed[p] === 1 ? '' : 'not '}listed`,
        );
      }
      pages[cls]! += 1;
      used[cls]! += blocks - free;
    }
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      if (pages[cls] !== this.slabPages[cls] || used[cls] !== this.usedBlocks[cls]) {
        problems.push(
          `class ${cls}: ${pages[cls]} pages / ${used[cls]} used blocks found, counters say ` +
            `${this.slabPages[cls]} / ${this.usedBlocks[cls]}`,
        );
      }
    }
    return problems;
  }

  /** Takes a page from the buddy allocator and makes it an empty slab of class `cls`, or NIL. */
  private newSlab(cls: number): number {
    const address = this.buddy.allocPages(0);
    if (address === null) return NIL;
    const page = (address - this.base) / PAGE_SIZE;
    const w = this.words;
    const r = page << PAGE_METADATA_SHIFT;
    const blocks = blocksPerSlab(cls);
    w[r] = PAGE_TYPE.SLAB | (cls << INFO_SLAB_CLASS_SHIFT);
    w[r + META.SLAB_FREE] = blocks;
    for (let j = 0; j < SLAB_BITMAP_WORDS; j++) {
      const bits = Math.max(0, Math.min(32, blocks - 32 * j));
      w[r + META.SLAB_BITMAP + j] = bits === 32 ? 0xffff_ffff : (1 << bits) - 1;
    }
    this.push(cls, page);
    this.slabPages[cls]! += 1;
    this.emptySlabs[cls]! += 1;
    return page;
  }

  /** Takes an empty slab off its list and returns its page to the buddy allocator. */
  private releaseSlab(cls: number, page: number): void {
    this.unlink(cls, page);
    // Back to an allocated order-0 page, which is what the buddy allocator handed out.
    this.words[page << PAGE_METADATA_SHIFT] = PAGE_TYPE.ALLOCATED;
    this.slabPages[cls]! -= 1;
    this.buddy.freePages(this.base + page * PAGE_SIZE);
  }

  /** Page index of the slab page holding `address`; throws when it is not one. */
  private slabPageOf(address: number, operation: string): number {
    const offset = address - this.base;
    if (!(offset >= 0 && offset < this.regionBytes) || !Number.isInteger(offset)) {
      throw new AllocatorError(
        'foreign-pointer',
        `${operation}: ${hexAddress(address)} is outside the region at ${hexAddress(this.base)}`,
        address,
      );
    }
    const page = Math.floor(offset / PAGE_SIZE);
    const type = this.words[page << PAGE_METADATA_SHIFT]! & INFO_TYPE_MASK;
    if (type !== PAGE_TYPE.SLAB) {
      const owner = type === PAGE_TYPE.ALLOCATED || type === PAGE_TYPE.RESERVED;
      throw new AllocatorError(
        owner ? 'wrong-allocator' : 'not-allocated',
        `${operation}: ${hexAddress(address)} is not in a slab page` +
          (owner
            ? ` (the page is ${type === PAGE_TYPE.RESERVED ? 'reserved' : 'a buddy allocation'})`
            : ''),
        address,
      );
    }
    return page;
  }

  private corrupt(page: number, what: string): AllocatorError {
    return new AllocatorError(
      'bad-configuration',
      `slab metadata corrupt: page ${hexAddress(this.base + page * PAGE_SIZE)} ${what}`,
    );
  }

  private push(cls: number, page: number): void {
    const w = this.words;
    const r = page << PAGE_METADATA_SHIFT;
    const head = this.heads[cls]!;
    w[r + META.NEXT] = head;
    w[r + META.PREV] = NIL;
    if (head !== NIL) w[(head << PAGE_METADATA_SHIFT) + META.PREV] = page;
    this.heads[cls] = page;
  }

  private unlink(cls: number, page: number): void {
    const w = this.words;
    const r = page << PAGE_METADATA_SHIFT;
    const next = w[r + META.NEXT]!;
    const prev = w[r + META.PREV]!;
    if (prev === NIL) this.heads[cls] = next;
    else w[(prev << PAGE_METADATA_SHIFT) + META.NEXT] = next;
    if (next !== NIL) w[(next << PAGE_METADATA_SHIFT) + META.PREV] = prev;
  }
}

function popcount(x: number): number {
  let v = x >>> 0;
  let n = 0;
  while (v !== 0) {
    v &= v - 1;
    n++;
  }
  return n;
}
