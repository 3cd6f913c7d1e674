// Out of SVSM memory on a guest request is a result for the guest, not a panic: the client
// answers outOfMemory before anything is sealed or sent, VMPCK0 and its sequence number intact.
// (An end-to-end exhaustion through a guest is not reachable: the smallest SVSM region, 2 MiB,
// leaves hundreds of free pages after boot and no guest call allocates repeatedly.)
import { describe, expect, it } from 'vitest';
import type { Vmpl0 } from '../../arch/index.js';
import type { AddressSpace } from '../mm/address-space.js';
import { BuddyAllocator } from '../mm/buddy-allocator.js';
import { PageMetadata } from '../mm/page-metadata.js';
import type { GhcbClient } from '../sev/ghcb-client.js';
import { GuestRequestClient } from './client.js';

/** Any use of these throws: the out-of-memory path must not touch the CPU, GHCB or mappings. */
function untouchable<T extends object>(what: string): T {
  return new Proxy({} as T, {
    get: (_t, p) => {
      throw new Error(`${what}.${String(p)} used on the out-of-memory path`);
    },
  });
}

describe('guest requests without SVSM memory', () => {
  it('answer outOfMemory, keep VMPCK0 and the sequence number, and allocate nothing', () => {
    const pages = 4;
    const allocator = new BuddyAllocator(
      0x100_0000,
      pages,
      new PageMetadata(new Uint32Array((PageMetadata.bytesFor(pages) + 3) >>> 2), pages),
    );
    while (allocator.allocPage() !== null);
    const keys = { vmpck0: new Uint8Array(32).fill(7), vmpck0Seqno: 4n };
    const client = new GuestRequestClient(
      untouchable<AddressSpace>('space'),
      allocator,
      keys,
      0x1000,
    );
    const r = client.send(
      untouchable<Vmpl0>('cpu'),
      untouchable<GhcbClient>('ghcb'),
      5,
      1,
      new Uint8Array(32),
      true,
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.outOfMemory).toBe(true);
    expect(keys.vmpck0.every((b) => b === 7)).toBe(true);
    expect(keys.vmpck0Seqno).toBe(4n);
    expect(client.stats.requests).toBe(0);
    expect(allocator.freePageCount).toBe(0);
  });
});
