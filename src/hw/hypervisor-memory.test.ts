import { describe, expect, it } from 'vitest';
import { HostAccessError, HypervisorMemory } from './hypervisor-memory.js';
import { MIN_MEMORY_BYTES } from './memory.js';
import { Rmp } from './rmp.js';
import { TrackedMemory } from './tracked-memory.js';

describe('HypervisorMemory.sharedPage', () => {
  function setUp() {
    const memory = new TrackedMemory(MIN_MEMORY_BYTES);
    const rmp = new Rmp(memory.pageCount);
    return { memory, rmp, hv: new HypervisorMemory(memory, rmp) };
  }

  it('is a live view of a host-owned page, which then counts as written', () => {
    const { memory, hv } = setUp();
    expect(memory.knownZero(0x5000, 0x1000)).toBe(true);
    const page = hv.sharedPage(0x5000);
    expect(page.length).toBe(0x1000);
    expect(memory.knownZero(0x5000, 0x1000)).toBe(false);
    page[0x10] = 0xab;
    expect(hv.read(0x5010, 1)[0]).toBe(0xab);
    hv.write(0x5020, Uint8Array.of(7));
    expect(page[0x20]).toBe(7);
    expect(hv.sharedPage(0x5000)).toBe(page); // kept, not rebuilt per exit
  });

  it('refuses guest-assigned, unaligned and out-of-memory pages every time it is asked', () => {
    const { rmp, hv } = setUp();
    hv.sharedPage(0x6000);
    rmp.rmpupdate(0x6000, false, true);
    expect(() => hv.sharedPage(0x6000)).toThrow(HostAccessError);
    expect(() => hv.sharedPage(0x7008)).toThrow(/not page aligned/);
    expect(() => hv.sharedPage(MIN_MEMORY_BYTES)).toThrow(/outside guest memory/);
  });
});
