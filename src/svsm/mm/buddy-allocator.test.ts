import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AllocatorError, type AllocatorErrorKind } from './allocator-error.js';
import {
  BuddyAllocator,
  MAX_ORDER,
  orderForPages,
  PAGE_SIZE,
  type PageRange,
} from './buddy-allocator.js';
import { PAGE_METADATA_WORDS, PAGE_TYPE, PageMetadata, packInfo } from './page-metadata.js';

const MIB = 1024 * 1024;

function buddyOf(base: number, pages: number, reserved: readonly PageRange[] = []): BuddyAllocator {
  return new BuddyAllocator(base, pages, PageMetadata.detached(pages), reserved);
}

function kindOf(fn: () => unknown): AllocatorErrorKind | 'no error' {
  try {
    fn();
  } catch (e) {
    if (e instanceof AllocatorError) return e.kind;
    throw e;
  }
  return 'no error';
}

function expectConsistent(b: BuddyAllocator): void {
  expect(b.checkConsistency()).toEqual([]);
}

describe('BuddyAllocator construction', () => {
  it('carves a 4 MiB-aligned 8 MiB region into two max-order blocks', () => {
    const b = buddyOf(64 * MIB, 2048);
    expect(b.stats()).toEqual({
      totalPages: 2048,
      reservedPages: 0,
      freePages: 2048,
      allocatedPages: 0,
      freeBlocks: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
      freePagesByOrder: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2048],
      largestFreeOrder: MAX_ORDER,
    });
    expectConsistent(b);
  });

  it('aligns blocks in physical address space, not relative to the region', () => {
    // Pages at pfn 3..10: pfn 3 alone, 4..7 as order 2, 8..9 as order 1, 10 alone.
    const b = buddyOf(3 * PAGE_SIZE, 8);
    expect(b.stats().freeBlocks.slice(0, 4)).toEqual([2, 1, 1, 0]);
    expect(b.allocPages(2)).toBe(4 * PAGE_SIZE);
    expect(b.allocPages(1)).toBe(8 * PAGE_SIZE);
    expectConsistent(b);
  });

  it('hands out 2 MiB blocks at 2 MiB-aligned physical addresses', () => {
    const b = buddyOf(0x1_0000_0000 + 5 * PAGE_SIZE, 4096);
    for (let a = b.allocPages(9); a !== null; a = b.allocPages(9)) {
      expect(a % (2 * MIB)).toBe(0);
    }
    expectConsistent(b);
  });

  it('never hands out reserved pages and counts them apart', () => {
    const base = 16 * MIB;
    const b = buddyOf(base, 512, [
      { address: base, pageCount: 3 },
      { address: base + 100 * PAGE_SIZE, pageCount: 1 },
      { address: base + PAGE_SIZE, pageCount: 4 }, // overlaps the first
    ]);
    expect(b.stats().reservedPages).toBe(6);
    expect(b.freePageCount).toBe(506);
    expectConsistent(b);
    const got = new Set<number>();
    for (let a = b.allocPage(); a !== null; a = b.allocPage()) got.add((a - base) / PAGE_SIZE);
    expect(got.size).toBe(506);
    for (const p of [0, 1, 2, 3, 4, 100]) expect(got.has(p)).toBe(false);
    expect(kindOf(() => b.freePages(base))).toBe('wrong-allocator');
  });

  it('ignores whatever the metadata store held before', () => {
    const meta = new PageMetadata(
      new Uint32Array(300 * PAGE_METADATA_WORDS).fill(0xdead_beef),
      300,
    );
    const b = new BuddyAllocator(0x20_0000, 300, meta);
    expect(b.freePageCount).toBe(300);
    expectConsistent(b);
  });

  it('rejects a store too small, an unaligned base and reserved ranges outside the region', () => {
    expect(kindOf(() => new BuddyAllocator(0, 10, PageMetadata.detached(9)))).toBe(
      'bad-configuration',
    );
    expect(kindOf(() => buddyOf(0x800, 10))).toBe('bad-configuration');
    expect(kindOf(() => buddyOf(0, 0))).toBe('bad-configuration');
    expect(kindOf(() => buddyOf(0, 10, [{ address: 9 * PAGE_SIZE, pageCount: 2 }]))).toBe(
      'bad-configuration',
    );
    expect(kindOf(() => buddyOf(0, 10, [{ address: 0x10, pageCount: 1 }]))).toBe(
      'bad-configuration',
    );
    expect(kindOf(() => new PageMetadata(new Uint32Array(7), 1))).toBe('bad-configuration');
  });
});

describe('BuddyAllocator allocation and free', () => {
  it('splits a max-order block down to one page and merges it back on free', () => {
    const b = buddyOf(0, 1024);
    const a = b.allocPage();
    expect(a).toBe(0);
    expect(b.stats().freeBlocks).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    expectConsistent(b);
    b.freePages(0);
    expect(b.stats().freeBlocks).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expectConsistent(b);
  });

  it('reports the order of an allocated block', () => {
    const b = buddyOf(0, 64);
    const a = b.allocPages(3)!;
    expect(b.allocatedOrder(a)).toBe(3);
    expect(orderForPages(8)).toBe(3);
    expect(orderForPages(9)).toBe(4);
    expect(orderForPages(1)).toBe(0);
  });

  it('detects a double free as a fatal error and leaves the allocator unchanged', () => {
    const b = buddyOf(0, 64);
    const keep = b.allocPages(1)!; // the buddy stays allocated, so `a` stays a FREE head
    const a = b.allocPages(1)!;
    expect(a).toBeGreaterThan(keep);
    b.freePages(a);
    const before = Uint32Array.from(b.metadata.words);
    expect(kindOf(() => b.freePages(a))).toBe('double-free');
    expect(b.metadata.words).toEqual(before);
    b.freePages(keep);
    // Now merged into the lower buddy's block: the page is inside a free block.
    expect(kindOf(() => b.freePages(a))).toBe('not-allocated');
    expectConsistent(b);
  });

  it('rejects interior pointers, foreign addresses and never-allocated pages', () => {
    const b = buddyOf(0x10_0000, 64);
    const a = b.allocPages(2)!;
    expect(kindOf(() => b.freePages(a + PAGE_SIZE))).toBe('not-allocated');
    expect(kindOf(() => b.freePages(a + 8))).toBe('foreign-pointer');
    expect(kindOf(() => b.freePages(0))).toBe('foreign-pointer');
    expect(kindOf(() => b.freePages(0x10_0000 + 64 * PAGE_SIZE))).toBe('foreign-pointer');
    expect(kindOf(() => b.freePages(Number.NaN))).toBe('foreign-pointer');
    expect(kindOf(() => b.freePages(0x10_0000 + 32 * PAGE_SIZE))).toBe('double-free');
    expect(kindOf(() => b.allocatedOrder(a + PAGE_SIZE))).toBe('not-allocated');
    expectConsistent(b);
  });

  it('rejects an order outside 0..MAX_ORDER', () => {
    const b = buddyOf(0, 64);
    for (const order of [-1, MAX_ORDER + 1, 1.5, Number.NaN]) {
      expect(kindOf(() => b.allocPages(order))).toBe('bad-request');
    }
  });

  it('returns null when out of memory and changes nothing', () => {
    const b = buddyOf(0, 24); // blocks of 16 and 8 pages
    expect(b.allocPages(5)).toBeNull();
    const a = b.allocPages(4)!;
    expect(b.allocPages(4)).toBeNull();
    const words = Uint32Array.from(b.metadata.words);
    const stats = b.stats();
    expect(b.allocPages(4)).toBeNull();
    expect(b.metadata.words).toEqual(words);
    expect(b.stats()).toEqual(stats);
    b.freePages(a);
    expect(b.freePageCount).toBe(24);
  });

  it('does not merge with a would-be buddy past the end of the region', () => {
    // order 1 at 0..1, order 0 at 2; 3 is outside, though the store has a record for it that
    // looks like a free order-0 head.
    const meta = PageMetadata.detached(4);
    const b = new BuddyAllocator(0, 3, meta);
    meta.words[3 * PAGE_METADATA_WORDS] = packInfo(PAGE_TYPE.FREE, 0);
    const a = b.allocPages(0)!;
    expect(a).toBe(2 * PAGE_SIZE);
    b.freePages(a);
    expect(b.stats().freeBlocks.slice(0, 2)).toEqual([1, 1]);
    expectConsistent(b);
  });
});

// ---- Property tests ---------------------------------------------------------------------------

type Command =
  | { readonly op: 'alloc'; readonly order: number }
  | { readonly op: 'free'; readonly pick: number }
  | { readonly op: 'freeAgain'; readonly pick: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: MAX_ORDER }) },
      )
      .map((order) => ({ op: 'alloc' as const, order })),
  },
  { weight: 4, arbitrary: fc.nat().map((pick) => ({ op: 'free' as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ op: 'freeAgain' as const, pick })) },
);

const regionArb = fc
  .record({
    basePfn: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.constant(0x10_0000)),
    pageCount: fc.integer({ min: 1, max: 2600 }),
  })
  .chain(({ basePfn, pageCount }) =>
    fc.record({
      basePfn: fc.constant(basePfn),
      pageCount: fc.constant(pageCount),
      reserved: fc.array(
        fc
          .tuple(fc.integer({ min: 0, max: pageCount - 1 }), fc.integer({ min: 0, max: 40 }))
          .map(([first, n]) => ({
            address: (basePfn + first) * PAGE_SIZE,
            pageCount: Math.min(n, pageCount - first),
          })),
        { maxLength: 3 },
      ),
    }),
  );

describe('BuddyAllocator properties', () => {
  it('random alloc/free sequences keep blocks disjoint, aligned, in the region and the metadata consistent; freeing all restores the coalesced start', () => {
    fc.assert(
      fc.property(regionArb, fc.array(commandArb, { maxLength: 120 }), (region, commands) => {
        const base = region.basePfn * PAGE_SIZE;
        const b = buddyOf(base, region.pageCount, region.reserved);
        const initial = b.stats();
        expectConsistent(b);
        // Who holds each page: -1 nobody, -2 reserved, else the allocation's serial number.
        const owner = new Int32Array(region.pageCount).fill(-1);
        for (const r of region.reserved) {
          owner.fill(
            -2,
            r.address / PAGE_SIZE - region.basePfn,
            r.address / PAGE_SIZE - region.basePfn + r.pageCount,
          );
        }
        const live: { address: number; order: number }[] = [];
        const freed: number[] = [];
        let serial = 0;
        let livePages = 0;
        for (const c of commands) {
          if (c.op === 'alloc') {
            const before = Uint32Array.from(
              b.metadata.words.subarray(0, region.pageCount * PAGE_METADATA_WORDS),
            );
            const largest = b.stats().largestFreeOrder;
            const a = b.allocPages(c.order);
            if (a === null) {
              // Out of memory only when no block of that order or larger is free, and nothing moved.
              expect(largest).toBeLessThan(c.order);
              expect(b.metadata.words.subarray(0, before.length)).toEqual(before);
            } else {
              const size = 1 << c.order;
              expect(a % (size * PAGE_SIZE)).toBe(0);
              const first = (a - base) / PAGE_SIZE;
              expect(first).toBeGreaterThanOrEqual(0);
              expect(first + size).toBeLessThanOrEqual(region.pageCount);
              for (let p = first; p < first + size; p++) {
                expect(owner[p]).toBe(-1);
                owner[p] = serial;
              }
              serial++;
              livePages += size;
              live.push({ address: a, order: c.order });
            }
          } else if (c.op === 'free') {
            if (live.length === 0) continue;
            const [blk] = live.splice(c.pick % live.length, 1);
            b.freePages(blk!.address);
            const first = (blk!.address - base) / PAGE_SIZE;
            owner.fill(-1, first, first + (1 << blk!.order));
            livePages -= 1 << blk!.order;
            freed.push(blk!.address);
          } else {
            const stale = freed.filter((a) => !live.some((l) => l.address === a));
            if (stale.length === 0) continue;
            const a = stale[c.pick % stale.length]!;
            const before = Uint32Array.from(b.metadata.words);
            const kind = kindOf(() => b.freePages(a));
            // A stale address is either a FREE head (double free) or inside a merged or
            // reallocated block; reallocated at the same address counts as live above.
            expect(['double-free', 'not-allocated']).toContain(kind);
            expect(b.metadata.words).toEqual(before);
          }
          expect(b.checkConsistency()).toEqual([]);
          expect(b.freePageCount).toBe(initial.freePages - livePages);
        }
        for (const blk of live) b.freePages(blk.address);
        expect(b.stats()).toEqual(initial);
        expectConsistent(b);
      }),
      { numRuns: 150 },
    );
  });

  it('filling the region page by page hands out every free page once, then fails without change', () => {
    fc.assert(
      fc.property(regionArb, (region) => {
        const base = region.basePfn * PAGE_SIZE;
        const b = buddyOf(base, region.pageCount, region.reserved);
        const free = b.freePageCount;
        const seen = new Set<number>();
        for (let a = b.allocPage(); a !== null; a = b.allocPage()) {
          expect(seen.has(a)).toBe(false);
          seen.add(a);
        }
        expect(seen.size).toBe(free);
        const words = Uint32Array.from(b.metadata.words);
        for (let order = 0; order <= MAX_ORDER; order++) expect(b.allocPages(order)).toBeNull();
        expect(b.metadata.words).toEqual(words);
        // Free in an order unrelated to allocation order.
        const all = [...seen].sort((x, y) => ((x * 2654435761) % 4099) - ((y * 2654435761) % 4099));
        for (const a of all) b.freePages(a);
        expectConsistent(b);
        expect(b.freePageCount).toBe(free);
      }),
      { numRuns: 60 },
    );
  });
});
