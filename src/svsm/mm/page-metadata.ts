// Per-page metadata of the SVSM's own region, shared by the buddy and the slab allocator: a
// fixed-stride record of 32-bit words per 4 KiB page in a Uint32Array that the caller provides.
// The SVSM places that array in simulated memory (a view of pages it reserves in its own region),
// so the heap's bookkeeping lives where a real SVSM's would, with no JS object per page or block.
//
// Record of one page (PAGE_METADATA_WORDS words, native-endian; the constructor checks that the
// platform is little-endian, as x86 is, so the bytes in simulated memory read as x86 would):
//
//   word 0  INFO   bits 3:0 page type (PAGE_TYPE), bits 11:4 block order, bits 15:12 slab class
//   word 1  NEXT   page index of the next record in a list (free list or slab partial list), NIL
//   word 2  PREV   page index of the previous record in that list, NIL at the head
//   word 3  SLAB_FREE   slab pages: number of free blocks in the page
//   words 4..7  SLAB_BITMAP   slab pages: 128-bit free bitmap, bit n set = block n free
//
// Only the first page of a block carries a type other than TAIL; every other page of a block
// (free or allocated) is TAIL. That keeps allocation and free O(MAX_ORDER) instead of O(block
// size), and lets free() tell the start of a block from an interior pointer.

import { AllocatorError } from './allocator-error.js';

/** 32-bit words of metadata per page. A power of two, so a record is found with a shift. */
export const PAGE_METADATA_WORDS = 8;
/** log2(PAGE_METADATA_WORDS): the record of page i starts at word `i << PAGE_METADATA_SHIFT`. */
export const PAGE_METADATA_SHIFT = 3;
/** Bytes of metadata per page (0.78 % of the region). */
export const PAGE_METADATA_BYTES = PAGE_METADATA_WORDS * 4;

/** Word offsets inside a page's record. */
export const META = {
  INFO: 0,
  NEXT: 1,
  PREV: 2,
  SLAB_FREE: 3,
  SLAB_BITMAP: 4,
} as const;
/** Words of the slab free bitmap: 128 bits, one per 32-byte block of a 4 KiB page. */
export const SLAB_BITMAP_WORDS = 4;

/** Page types (INFO bits 3:0). */
export const PAGE_TYPE = {
  /** Not the first page of a block: the inside of a free or allocated block. Zero, so a cleared
   * store describes no block at all. */
  TAIL: 0,
  /** First page of a free block, on the free list of its order. */
  FREE: 1,
  /** First page of a block handed out by the buddy allocator. */
  ALLOCATED: 2,
  /** A page carved into slab blocks (order 0). */
  SLAB: 3,
  /** A page reserved at construction (kernel image, page tables, this metadata). Order 0. */
  RESERVED: 15,
} as const;
export type PageType = (typeof PAGE_TYPE)[keyof typeof PAGE_TYPE];

export const INFO_TYPE_MASK = 0xf;
export const INFO_ORDER_SHIFT = 4;
export const INFO_ORDER_MASK = 0xff;
export const INFO_SLAB_CLASS_SHIFT = 12;
export const INFO_SLAB_CLASS_MASK = 0xf;

/** End of a list: no page. */
export const NIL = 0xffff_ffff;
/** Most pages one store describes (1 TiB of 4 KiB pages), so that a record index fits in 31 bits. */
export const MAX_METADATA_PAGES = 2 ** 28;

/** Packs an INFO word. */
export function packInfo(type: PageType, order: number, slabClass = 0): number {
  return (type | (order << INFO_ORDER_SHIFT) | (slabClass << INFO_SLAB_CLASS_SHIFT)) >>> 0;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * The metadata store of one region: `pageCount` records over an injected Uint32Array. The
 * allocators read and write `words` directly (record of page i at `i << 3`), which is why the
 * array is exposed; everything else should go through the allocators.
 */
export class PageMetadata {
  /** Bytes of store a region of `pageCount` pages needs. */
  static bytesFor(pageCount: number): number {
    return pageCount * PAGE_METADATA_BYTES;
  }

  /** A store in a fresh JS array, for tests and benchmarks; the SVSM passes a view instead. */
  static detached(pageCount: number): PageMetadata {
    return new PageMetadata(new Uint32Array(pageCount * PAGE_METADATA_WORDS), pageCount);
  }

  readonly words: Uint32Array;
  readonly pageCount: number;

  /**
   * @param words the store: at least `pageCount * PAGE_METADATA_WORDS` words, e.g. a Uint32Array
   *   view of reserved pages in simulated memory. Its contents are ignored; the buddy allocator
   *   initialises every record.
   */
  constructor(words: Uint32Array, pageCount: number) {
    if (!LITTLE_ENDIAN) {
      throw new AllocatorError(
        'bad-configuration',
        'page metadata assumes a little-endian platform, as x86 is',
      );
    }
    if (!Number.isInteger(pageCount) || pageCount < 1 || pageCount > MAX_METADATA_PAGES) {
      throw new AllocatorError(
        'bad-configuration',
        `page metadata: page count ${pageCount} is not in 1..2^28`,
      );
    }
    if (words.length < pageCount * PAGE_METADATA_WORDS) {
      throw new AllocatorError(
        'bad-configuration',
        `page metadata: ${pageCount} pages need ${pageCount * PAGE_METADATA_WORDS} words, ` +
          `the store has ${words.length}`,
      );
    }
    this.words = words;
    this.pageCount = pageCount;
  }

  /** Index of page `page`'s record in `words`. */
  static recordOf(page: number): number {
    return page << PAGE_METADATA_SHIFT;
  }

  typeOf(page: number): PageType {
    return (this.words[page << PAGE_METADATA_SHIFT]! & INFO_TYPE_MASK) as PageType;
  }

  orderOf(page: number): number {
    return (this.words[page << PAGE_METADATA_SHIFT]! >>> INFO_ORDER_SHIFT) & INFO_ORDER_MASK;
  }

  slabClassOf(page: number): number {
    return (
      (this.words[page << PAGE_METADATA_SHIFT]! >>> INFO_SLAB_CLASS_SHIFT) & INFO_SLAB_CLASS_MASK
    );
  }

  nextOf(page: number): number {
    return this.words[(page << PAGE_METADATA_SHIFT) + META.NEXT]!;
  }

  prevOf(page: number): number {
    return this.words[(page << PAGE_METADATA_SHIFT) + META.PREV]!;
  }
}
