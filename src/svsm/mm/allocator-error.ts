// The fatal errors of the SVSM's memory allocators. Out of memory is not one of them: allocation
// is fallible and returns null. These are the conditions that mean the SVSM itself is broken (a
// double free, a pointer the allocator never handed out, a metadata store that was overwritten),
// which the SVSM turns into a panic: there is no safe way to continue with a corrupt heap.

/** What went wrong, in the allocator's words. */
export type AllocatorErrorKind =
  /** The block at this address is already free. */
  | 'double-free'
  /** The address is inside the region but is not the start of a block this allocator handed out
   * (an interior pointer, a block already merged into a free buddy, or a never-allocated page). */
  | 'not-allocated'
  /** The address is outside the allocator's region, or not aligned as the allocator's blocks are. */
  | 'foreign-pointer'
  /** The page belongs to the other allocator (a slab page freed as pages, or pages freed as a slab
   * block), or is reserved. */
  | 'wrong-allocator'
  /** A caller asked for something no allocator can give (an order above MAX_ORDER, a size of 0 or
   * above the largest slab class). */
  | 'bad-request'
  /** The construction parameters or the injected metadata store cannot describe the region. */
  | 'bad-configuration';

/** A fatal condition of the SVSM's heap: the SVSM panics on it. */
export class AllocatorError extends Error {
  override readonly name = 'AllocatorError';

  constructor(
    readonly kind: AllocatorErrorKind,
    message: string,
    /** The address the caller passed, where there is one. */
    readonly address?: number,
  ) {
    super(message);
  }
}

/** Formats a physical address the way the rest of the SVSM prints them. */
export function hexAddress(address: number): string {
  return Number.isFinite(address) ? `0x${address.toString(16)}` : String(address);
}
