import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AllocatorError, type AllocatorErrorKind } from './allocator-error.js';
import { BuddyAllocator, PAGE_SIZE } from './buddy-allocator.js';
import { PageMetadata } from './page-metadata.js';
import {
  SLAB_MAX_BLOCK,
  SLAB_SIZE_CLASSES,
  SlabAllocator,
  type SlabOptions,
  slabClassOf,
} from './slab-allocator.js';

function heap(
  base: number,
  pages: number,
  options?: SlabOptions,
): { buddy: BuddyAllocator; slab: SlabAllocator } {
  const buddy = new BuddyAllocator(base, pages, PageMetadata.detached(pages));
  return { buddy, slab: new SlabAllocator(buddy, options) };
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

function expectConsistent(buddy: BuddyAllocator, slab: SlabAllocator): void {
  expect(buddy.checkConsistency()).toEqual([]);
  expect(slab.checkConsistency()).toEqual([]);
}

describe('SlabAllocator', () => {
  it('rounds a request up to its power-of-two size class', () => {
    expect([1, 32, 33, 64, 65, 1000, 1024, 1025, 2048].map(slabClassOf)).toEqual([
      0, 0, 1, 1, 2, 5, 5, 6, 6,
    ]);
    expect(SLAB_SIZE_CLASSES[slabClassOf(1000)]).toBe(1024);
    const { slab } = heap(0x40_0000, 16);
    const a = slab.alloc(33)!;
    expect(slab.blockSizeOf(a)).toBe(64);
    expect(a % 64).toBe(0);
  });

  it('carves one page into 128 blocks of 32 bytes before taking a second page', () => {
    const { buddy, slab } = heap(0, 16);
    const first = new Set<number>();
    for (let i = 0; i < 128; i++) first.add(slab.alloc(32)!);
    expect(first.size).toBe(128);
    const pages = new Set([...first].map((a) => Math.floor(a / PAGE_SIZE)));
    expect(pages.size).toBe(1);
    expect(buddy.freePageCount).toBe(15);
    slab.alloc(32);
    expect(buddy.freePageCount).toBe(14);
    expectConsistent(buddy, slab);
  });

  it('keeps one empty slab per class and returns further empty slabs to the buddy allocator', () => {
    const { buddy, slab } = heap(0, 16);
    const a = [slab.alloc(2048)!, slab.alloc(2048)!, slab.alloc(2048)!, slab.alloc(2048)!];
    expect(buddy.freePageCount).toBe(14);
    for (const x of a) slab.free(x);
    expect(buddy.freePageCount).toBe(15);
    expect(slab.stats().classes[6]).toEqual({
      blockSize: 2048,
      slabPages: 1,
      usedBlocks: 0,
      freeBlocks: 2,
      emptySlabs: 1,
    });
    expectConsistent(buddy, slab);
    expect(slab.releaseEmptySlabs()).toBe(1);
    expect(buddy.freePageCount).toBe(16);
    expect(buddy.stats().freeBlocks[4]).toBe(1);
    expectConsistent(buddy, slab);
  });

  it('returns every empty slab at once when told to keep none', () => {
    const { buddy, slab } = heap(0, 16, { maxEmptySlabsPerClass: 0 });
    const a = slab.alloc(100)!;
    slab.free(a);
    expect(buddy.freePageCount).toBe(16);
    expectConsistent(buddy, slab);
  });

  it('detects a double free, an interior pointer and foreign pointers', () => {
    const { buddy, slab } = heap(0x10_0000, 16);
    const a = slab.alloc(64)!;
    const b = slab.alloc(64)!;
    slab.free(a);
    const words = Uint32Array.from(buddy.metadata.words);
    expect(kindOf(() => slab.free(a))).toBe('double-free');
    expect(buddy.metadata.words).toEqual(words);
    expect(kindOf(() => slab.free(b + 8))).toBe('not-allocated');
    expect(kindOf(() => slab.free(0x10))).toBe('foreign-pointer');
    expect(kindOf(() => slab.free(0x10_0000 + 16 * PAGE_SIZE))).toBe('foreign-pointer');
    expect(kindOf(() => slab.free(b + 0.5))).toBe('foreign-pointer');
    const page = buddy.allocPage()!;
    expect(kindOf(() => slab.free(page))).toBe('wrong-allocator');
    expect(kindOf(() => slab.free(page + 64))).toBe('wrong-allocator');
    expect(kindOf(() => slab.blockSizeOf(a))).toBe('not-allocated');
    // A slab page handed to the buddy allocator's free is refused too.
    expect(kindOf(() => buddy.freePages(b - (b % PAGE_SIZE)))).toBe('wrong-allocator');
    // A block in a slab page already returned to the buddy allocator is no longer a slab block.
    slab.free(b);
    slab.releaseEmptySlabs();
    expect(kindOf(() => slab.free(b))).toBe('not-allocated');
    expectConsistent(buddy, slab);
  });

  it('rejects sizes the slab allocator does not serve', () => {
    const { slab } = heap(0, 4);
    for (const size of [0, -1, SLAB_MAX_BLOCK + 1, 4096, 1.5, Number.NaN]) {
      expect(kindOf(() => slab.alloc(size))).toBe('bad-request');
    }
  });

  it('returns null when no page is left for a new slab and changes nothing', () => {
    const { buddy, slab } = heap(0, 2);
    const p = buddy.allocPage()!;
    const blocks = [];
    for (let i = 0; i < 4; i++) blocks.push(slab.alloc(1024)!);
    const words = Uint32Array.from(buddy.metadata.words);
    const stats = [buddy.stats(), slab.stats()];
    expect(slab.alloc(1024)).toBeNull();
    expect(slab.alloc(32)).toBeNull();
    expect(buddy.metadata.words).toEqual(words);
    expect([buddy.stats(), slab.stats()]).toEqual(stats);
    // Freeing a block makes room in that class only.
    slab.free(blocks[2]!);
    expect(slab.alloc(1000)).toBe(blocks[2]);
    buddy.freePages(p);
    expect(slab.alloc(32)).not.toBeNull();
    expectConsistent(buddy, slab);
  });
});

// ---- Property tests ---------------------------------------------------------------------------

type Command =
  | { readonly op: 'slab'; readonly size: number }
  | { readonly op: 'pages'; readonly order: number }
  | { readonly op: 'free'; readonly pick: number }
  | { readonly op: 'freeAgain'; readonly pick: number }
  | { readonly op: 'release' };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .oneof(
        fc.integer({ min: 1, max: SLAB_MAX_BLOCK }),
        fc.constantFrom(...SLAB_SIZE_CLASSES),
        fc.integer({ min: 1, max: 64 }),
      )
      .map((size) => ({ op: 'slab' as const, size })),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 2 }).map((order) => ({ op: 'pages' as const, order })),
  },
  { weight: 6, arbitrary: fc.nat().map((pick) => ({ op: 'free' as const, pick })) },
  { weight: 1, arbitrary: fc.nat().map((pick) => ({ op: 'freeAgain' as const, pick })) },
  { weight: 1, arbitrary: fc.constant({ op: 'release' as const }) },
);

const GRANULE = 32;

describe('SlabAllocator properties', () => {
  it('random slab and page allocations never overlap, are aligned to their block size, stay in the region, keep the metadata consistent, and freeing all restores the buddy allocator', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 2 }),
        fc.array(commandArb, { maxLength: 250 }),
        (basePfn, pageCount, keep, commands) => {
          const base = basePfn * PAGE_SIZE;
          const { buddy, slab } = heap(base, pageCount, { maxEmptySlabsPerClass: keep });
          const initial = buddy.stats();
          // Owner of each 32-byte granule of the region: 0 nobody, else an allocation's serial.
          const owner = new Int32Array((pageCount * PAGE_SIZE) / GRANULE);
          const live: { address: number; bytes: number; slab: boolean }[] = [];
          const freed: number[] = [];
          let serial = 0;
          const claim = (address: number, bytes: number): void => {
            expect(address).toBeGreaterThanOrEqual(base);
            expect(address + bytes).toBeLessThanOrEqual(base + pageCount * PAGE_SIZE);
            serial++;
            for (let g = (address - base) / GRANULE; g < (address - base + bytes) / GRANULE; g++) {
              expect(owner[g]).toBe(0);
              owner[g] = serial;
            }
          };
          for (const c of commands) {
            if (c.op === 'slab' || c.op === 'pages') {
              const words = Uint32Array.from(buddy.metadata.words);
              const a = c.op === 'slab' ? slab.alloc(c.size) : buddy.allocPages(c.order);
              if (a === null) {
                expect(buddy.metadata.words).toEqual(words);
                continue;
              }
              const bytes =
                c.op === 'slab' ? SLAB_SIZE_CLASSES[slabClassOf(c.size)]! : PAGE_SIZE << c.order;
              if (c.op === 'slab') {
                expect(bytes).toBeGreaterThanOrEqual(c.size);
                expect(slab.blockSizeOf(a)).toBe(bytes);
              }
              expect(a % bytes).toBe(0);
              claim(a, bytes);
              live.push({ address: a, bytes, slab: c.op === 'slab' });
            } else if (c.op === 'free') {
              if (live.length === 0) continue;
              const [blk] = live.splice(c.pick % live.length, 1);
              if (blk!.slab) slab.free(blk!.address);
              else buddy.freePages(blk!.address);
              owner.fill(
                0,
                (blk!.address - base) / GRANULE,
                (blk!.address - base + blk!.bytes) / GRANULE,
              );
              if (blk!.slab) freed.push(blk!.address);
            } else if (c.op === 'freeAgain') {
              const stale = freed.filter((a) => !live.some((l) => l.address === a));
              if (stale.length === 0) continue;
              const a = stale[c.pick % stale.length]!;
              const words = Uint32Array.from(buddy.metadata.words);
              // The block's page may since have gone back to the buddy allocator, or be a page
              // allocation now: either way the free is refused and nothing changes.
              expect(['double-free', 'not-allocated', 'wrong-allocator']).toContain(
                kindOf(() => slab.free(a)),
              );
              expect(buddy.metadata.words).toEqual(words);
            } else {
              slab.releaseEmptySlabs();
            }
            expectConsistent(buddy, slab);
            const s = slab.stats();
            expect(s.usedBytes).toBe(
              live.filter((l) => l.slab).reduce((sum, l) => sum + l.bytes, 0),
            );
          }
          for (const blk of live) {
            if (blk.slab) slab.free(blk.address);
            else buddy.freePages(blk.address);
          }
          slab.releaseEmptySlabs();
          expect(slab.stats().slabPages).toBe(0);
          expect(buddy.stats()).toEqual(initial);
          expectConsistent(buddy, slab);
        },
      ),
      { numRuns: 150 },
    );
  });
});
