import {
  BuddyAllocator,
  PAGE_SIZE,
  PageMetadata,
  SLAB_SIZE_CLASSES,
  SlabAllocator,
} from '../src/svsm/mm/index.js';
import { type Bench, nsPerOp, sink } from './harness.js';

// The SVSM's allocators in steady state: a ring of live allocations, each step freeing the oldest
// and allocating a new one, so the free lists hold a realistic mix rather than one coalesced
// block. Figures are ns per free+alloc pair, including the loop's own overhead (a few ns). The
// baseline is the cheapest page allocator there is, a stack of free page numbers in a
// Uint32Array, on the same ring: `svsm.buddy_vs_freelist` is what the buddy allocator's
// validation, metadata, splitting and merging cost over that. Each step is its own function so
// that no call site inside a step sees more than one allocator.
const PAGES = 4096; // 16 MiB, COCONUT-SVSM's default kernel region
const RING = 256;
const BASE = 0x100_0000;

function outOfMemory(): never {
  throw new Error('bench: out of memory');
}

/** A fixed pseudo-random sequence (xorshift32), so every run measures the same work. */
function sequence(length: number, pick: (x: number) => number): Uint8Array {
  const out = new Uint8Array(length);
  let x = 0x9e37_79b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = pick(x >>> 0);
  }
  return out;
}

// Baseline: a free-page stack.
const stack = new Uint32Array(PAGES);
for (let p = 0; p < PAGES; p++) stack[p] = PAGES - 1 - p;
let top = PAGES;
const freelistRing = new Float64Array(RING);
for (let i = 0; i < RING; i++) freelistRing[i] = BASE + stack[--top]! * PAGE_SIZE;
let freelistI = 0;
function freelistStep(): void {
  const slot = freelistI++ & (RING - 1);
  stack[top++] = (freelistRing[slot]! - BASE) / PAGE_SIZE;
  if (top === 0) outOfMemory();
  freelistRing[slot] = BASE + stack[--top]! * PAGE_SIZE;
}

// Buddy, order 0: the same work as the baseline.
const buddy0 = new BuddyAllocator(BASE, PAGES, PageMetadata.detached(PAGES));
const buddy0Ring = new Float64Array(RING);
for (let i = 0; i < RING; i++) buddy0Ring[i] = buddy0.allocPages(0) ?? outOfMemory();
let buddy0I = 0;
function buddyOrder0Step(): void {
  const slot = buddy0I++ & (RING - 1);
  buddy0.freePages(buddy0Ring[slot]!);
  buddy0Ring[slot] = buddy0.allocPages(0) ?? outOfMemory();
}

// Buddy, orders 0..3 (half order 0, a quarter order 1, an eighth each order 2 and 3): blocks of
// different sizes leave holes, so frees merge and allocations split.
const ORDERS = sequence(4096, (x) => [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3][x & 15]!);
const buddyMixed = new BuddyAllocator(BASE, PAGES, PageMetadata.detached(PAGES));
const buddyMixedRing = new Float64Array(RING);
for (let i = 0; i < RING; i++)
  buddyMixedRing[i] = buddyMixed.allocPages(ORDERS[i]!) ?? outOfMemory();
let buddyMixedI = 0;
function buddyMixedStep(): void {
  const i = buddyMixedI++;
  const slot = i & (RING - 1);
  buddyMixed.freePages(buddyMixedRing[slot]!);
  buddyMixedRing[slot] = buddyMixed.allocPages(ORDERS[i & 4095]!) ?? outOfMemory();
}

// Slab: every size class, in a fixed random order.
const SIZES = sequence(4096, (x) => SLAB_SIZE_CLASSES[x % SLAB_SIZE_CLASSES.length]! >>> 5);
const slabBuddy = new BuddyAllocator(BASE, PAGES, PageMetadata.detached(PAGES));
const slab = new SlabAllocator(slabBuddy);
const slabRing = new Float64Array(RING);
for (let i = 0; i < RING; i++) slabRing[i] = slab.alloc(SIZES[i]! << 5) ?? outOfMemory();
let slabI = 0;
function slabStep(): void {
  const i = slabI++;
  const slot = i & (RING - 1);
  slab.free(slabRing[slot]!);
  slabRing[slot] = slab.alloc(SIZES[i & 4095]! << 5) ?? outOfMemory();
}

/** The best of three runs: the machine's noise only ever adds time. */
function bestNs(fn: () => void): number {
  let best = Infinity;
  for (let r = 0; r < 3; r++) best = Math.min(best, nsPerOp(fn, 100));
  return best;
}

export const benches: Bench[] = [
  {
    name: 'svsm.freelist_alloc_free_ns',
    run: () => bestNs(freelistStep),
  },
  {
    name: 'svsm.buddy_alloc_free_ns',
    run: () => bestNs(buddyOrder0Step),
  },
  {
    name: 'svsm.buddy_vs_freelist',
    run() {
      const buddy = bestNs(buddyOrder0Step);
      const base = bestNs(freelistStep);
      sink.value = top;
      return buddy / base;
    },
  },
  {
    name: 'svsm.buddy_mixed_orders_alloc_free_ns',
    run: () => bestNs(buddyMixedStep),
  },
  {
    name: 'svsm.slab_alloc_free_ns',
    run: () => bestNs(slabStep),
  },
];
