import { describe, expect, it } from 'vitest';
import { MIN_MEMORY_BYTES } from './memory.js';
import { TrackedMemory } from './tracked-memory.js';
import { VMSA } from '../arch/index.js';
import { makePte, Mmu, pagingRegisters, PTE_FLAGS } from './mmu.js';
import { ACCESS, Rmp } from './rmp.js';
import { Vcpu } from './vcpu.js';

describe('TrackedMemory', () => {
  it('knows untouched pages are zero and forgets it for every page a store reaches', () => {
    const m = new TrackedMemory(MIN_MEMORY_BYTES);
    expect(m.knownZero(0x5000, 0x2000)).toBe(true);
    m.write(0x5ffe, Uint8Array.of(1, 2, 3));
    expect(m.knownZero(0x5000, 0x1000)).toBe(false);
    expect(m.knownZero(0x6000, 0x1000)).toBe(false);
    expect(m.knownZero(0x7000, 0x1000)).toBe(true);
    m.fill(0x8000, 0x1000, 0);
    expect(m.knownZero(0x8000, 0x1000)).toBe(true);
    m.fill(0x8000, 1, 0xff);
    expect(m.knownZero(0x8000, 0x1000)).toBe(false);
    m.page(9);
    expect(m.knownZero(0x9000, 0x1000)).toBe(false);
    m.markWritten(0xa000, 1);
    expect(m.knownZero(0xa000, 0x1000)).toBe(false);
  });

  it('knows nothing once someone took the raw bytes or the WebAssembly memory', () => {
    const a = new TrackedMemory(MIN_MEMORY_BYTES);
    expect(a.trackedBytes().length).toBe(MIN_MEMORY_BYTES);
    expect(a.knownZero(0x5000, 0x1000)).toBe(true);
    a.bytes[0x5000] = 1;
    expect(a.knownZero(0x5000, 0x1000)).toBe(false);
    expect(a.knownZero(0x6000, 0x1000)).toBe(false);
    const b = new TrackedMemory(MIN_MEMORY_BYTES);
    new Uint8Array(b.memory.buffer)[0x5000] = 1;
    expect(b.knownZero(0x5000, 0x1000)).toBe(false);
  });

  it('reads and writes like PhysicalMemory', () => {
    const m = new TrackedMemory(MIN_MEMORY_BYTES);
    m.write(0x1000, Uint8Array.of(7, 8));
    expect([...m.read(0x1000, 2)]).toEqual([7, 8]);
    expect(m.page(1)[1]).toBe(8);
    expect(() => m.write(MIN_MEMORY_BYTES, Uint8Array.of(1))).toThrow();
  });

  it('counts the stores of the world switch and of the page walk', () => {
    const m = new TrackedMemory(MIN_MEMORY_BYTES);
    const rmp = new Rmp(m.pageCount);
    for (let pfn = 0; pfn < 0x20; pfn++)
      rmp.firmwareAssign(pfn, { validated: true, vmsa: pfn === 5 });
    // Written through a view that does not mark: the page is marked by hand, as a writer must.
    VMSA.on(m.trackedBytes(), 0x5000).set('efer', 0x1000n).set('sevFeatures', 1n).set('vmpl', 2);
    const cpu = new Vcpu(0, m, rmp);
    cpu.vmrun(0x5000);
    expect(m.knownZero(0x5000, 0x1000)).toBe(true);
    cpu.vmexit(0x403n);
    expect(m.knownZero(0x5000, 0x1000)).toBe(false);

    const { P, RW } = PTE_FLAGS;
    const v = new DataView(m.trackedBytes().buffer);
    v.setBigUint64(0x1000, makePte(0x2000, P | RW, 51), true);
    v.setBigUint64(0x2000, makePte(0x3000, P | RW, 51), true);
    v.setBigUint64(0x3000, makePte(0x4000, P | RW, 51), true);
    v.setBigUint64(0x4000, makePte(0x10000, P | RW, 51), true);
    const regs = pagingRegisters(
      (1n << 31n) | 1n,
      0x1000n | (1n << 51n),
      1n << 5n,
      (1n << 8n) | (1n << 10n),
    );
    expect(new Mmu(m, rmp, 51).translate(regs, 0, ACCESS.READ, 0, 0).gpa).toBe(0x10000);
    // The accessed bits went into each table.
    for (const t of [0x1000, 0x2000, 0x3000, 0x4000]) expect(m.knownZero(t, 0x1000)).toBe(false);
    expect(m.knownZero(0x10000, 0x1000)).toBe(true);
  });

  it('tells store listeners of every store, zeros over written memory included', () => {
    const m = new TrackedMemory(16 << 20);
    const heard: [number, number][] = [];
    m.onStore((gpa, length) => heard.push([gpa, length]));
    m.write(0x1234, new Uint8Array(3));
    m.fill(0x2000, 0x100, 0);
    m.fill(0x3000, 0x10, 7);
    m.markWritten(0x4000, 8);
    m.page(5);
    expect(heard).toEqual([
      [0x1234, 3],
      [0x2000, 0x100],
      [0x3000, 0x10],
      [0x4000, 8],
      [0x5000, 0x1000],
    ]);
  });
});
