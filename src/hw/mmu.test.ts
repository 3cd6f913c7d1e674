import { describe, expect, it } from 'vitest';
import { MIN_MEMORY_BYTES, PhysicalMemory } from './memory.js';
import {
  FAULT_NONE,
  FAULT_NPF,
  FAULT_PF,
  FAULT_VC,
  makePte,
  Mmu,
  type PagingRegisters,
  pagingRegisters,
  PTE_FLAGS,
} from './mmu.js';
import { ACCESS, Rmp } from './rmp.js';

const C = 51;
const { P, RW, PS, NX, US } = PTE_FLAGS;

function setup(): { mem: PhysicalMemory; rmp: Rmp; mmu: Mmu; regs: PagingRegisters } {
  const mem = new PhysicalMemory(MIN_MEMORY_BYTES);
  const rmp = new Rmp(mem.pageCount);
  for (let pfn = 0; pfn < 0x400; pfn++) rmp.firmwareAssign(pfn, { validated: true });
  const mmu = new Mmu(mem, rmp, C);
  const w = (gpa: number, v: bigint): void =>
    new DataView(mem.bytes.buffer).setBigUint64(gpa, v, true);
  // PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000.
  w(0x1000 + 1 * 8, makePte(0x2000, P | RW, C)); // VA 0x80_0000_0000 (PML4 index 1)
  w(0x2000, makePte(0x3000, P | RW, C));
  w(0x3000, makePte(0x4000, P | RW, C));
  w(0x3000 + 8, makePte(0x200000, P | RW | PS, C)); // 2 MiB page at VA +0x200000
  w(0x4000, makePte(0x10000, P | RW, C)); // VA+0 -> 0x10000 private
  w(0x4000 + 8, makePte(0x11000, P | NX, C)); // VA+0x1000 -> read-only, NX
  w(0x4000 + 16, makePte(0x12000, P | RW | US, null)); // VA+0x2000 -> shared page
  w(0x4000 + 24, makePte(0x500000, P | RW, C)); // VA+0x3000 -> assigned but not validated
  const regs: PagingRegisters = pagingRegisters(
    (1n << 31n) | (1n << 16n) | 1n,
    0x1000n | (1n << 51n),
    1n << 5n,
    (1n << 8n) | (1n << 10n) | (1n << 11n),
  );
  rmp.rmpupdate(0x500000, false, true);
  return { mem, rmp, mmu, regs };
}

const BASE = 0x80_0000_0000;

describe('MMU', () => {
  it('walks four levels to a private 4 KiB page and sets the accessed bit', () => {
    const { mem, mmu, regs } = setup();
    const t = mmu.translate(regs, BASE + 0x123, ACCESS.WRITE, 0, 0);
    expect(t).toMatchObject({ fault: FAULT_NONE, gpa: 0x10123 });
    expect(mem.bytes[0x4000]! & 0x60).toBe(0x60);
  });

  it('maps a 2 MiB page', () => {
    const { mmu, regs } = setup();
    expect(mmu.translate(regs, BASE + 0x200000 + 0x5432, ACCESS.READ, 0, 0)).toMatchObject({
      gpa: 0x205432,
    });
  });

  it('raises #PF for not present, read-only writes under WP, and NX fetches', () => {
    const { mmu, regs } = setup();
    expect(mmu.translate(regs, BASE + 0x5000, ACCESS.READ, 0, 0)).toMatchObject({
      fault: FAULT_PF,
      errorCode: 0,
    });
    expect(mmu.translate(regs, BASE + 0x1000, ACCESS.WRITE, 0, 0)).toMatchObject({
      fault: FAULT_PF,
      errorCode: 3,
    });
    expect(mmu.translate(regs, BASE + 0x1000, ACCESS.EXECUTE, 0, 0)).toMatchObject({
      fault: FAULT_PF,
      errorCode: 0x11,
    });
    expect(mmu.translate(regs, BASE + 0x1000, ACCESS.READ, 0, 0).fault).toBe(FAULT_NONE);
  });

  it('raises #VC 0x404 for an unvalidated private page and an NPF for a shared mapping of a private page', () => {
    const { mmu, regs } = setup();
    expect(mmu.translate(regs, BASE + 0x3000, ACCESS.READ, 0, 0)).toMatchObject({
      fault: FAULT_VC,
      errorCode: 0x404,
    });
    const t = mmu.translate(regs, BASE + 0x2000, ACCESS.READ, 0, 0);
    expect(t.fault).toBe(FAULT_NPF);
  });

  it('lets a shared access reach a hypervisor page', () => {
    const { rmp, mmu, regs } = setup();
    rmp.rmpupdate(0x12000, false, false);
    expect(mmu.translate(regs, BASE + 0x2000, ACCESS.WRITE, 0, 0)).toMatchObject({
      fault: FAULT_NONE,
      gpa: 0x12000,
    });
  });

  it('forgets cached walks when the RMP changes', () => {
    const { rmp, mmu, regs } = setup();
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 0).fault).toBe(FAULT_NONE);
    // Rescinding the page table page makes the next walk fault on it.
    rmp.pvalidate(0, 0, 0x4000, false, false);
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 0)).toMatchObject({
      fault: FAULT_VC,
      errorCode: 0x404,
    });
  });

  it('keeps cached walks across RMP changes that touch no page table, and still checks the final page', () => {
    const { mem, rmp, mmu, regs } = setup();
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 0).fault).toBe(FAULT_NONE);
    // Change the page table behind the MMU's back: a cached walk does not see it...
    new DataView(mem.bytes.buffer).setBigUint64(0x4000, makePte(0x13000, P | RW, C), true);
    rmp.pvalidate(0, 0, 0x20000, false, false);
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 0).gpa).toBe(0x10000);
    // ...but the final page's RMP entry is checked on every access, cached or not.
    rmp.pvalidate(0, 0, 0x10000, false, false);
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 0)).toMatchObject({
      fault: FAULT_VC,
      errorCode: 0x404,
    });
    mmu.invlpg(BASE);
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 0).gpa).toBe(0x13000);
  });

  it('caches a 2 MiB translation once for the whole page; INVLPG anywhere in it drops it', () => {
    const { mem, mmu, regs } = setup();
    const big = BASE + 0x200000;
    expect(mmu.translate(regs, big + 0x1234, ACCESS.READ, 0, 0).gpa).toBe(0x201234);
    // Repoint the PD entry: cached translations of any 4 KiB of the page do not see it.
    new DataView(mem.bytes.buffer).setBigUint64(0x3000 + 8, makePte(0, P | RW | PS, C), true);
    expect(mmu.translate(regs, big + 0x1ff000, ACCESS.READ, 0, 0).gpa).toBe(0x3ff000);
    mmu.invlpg(big + 0x5000);
    expect(mmu.translate(regs, big + 0x1ff000, ACCESS.READ, 0, 0)).toMatchObject({
      fault: FAULT_NONE,
      gpa: 0x1ff000,
    });
  });

  it('does not serve a walk checked for one VMPL to another', () => {
    const { rmp, mmu, regs } = setup();
    // VMPL1 may read the final page but not the page tables.
    expect(rmp.rmpadjust(0, 0, 0x10000, false, 1, 1, false)).toMatchObject({ rax: 0 });
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 0).fault).toBe(FAULT_NONE);
    // VMPL1's own walk faults on the PML4.
    expect(mmu.translate(regs, BASE, ACCESS.READ, 0, 1)).toMatchObject({
      fault: FAULT_NPF,
      gpa: 0x1000,
    });
  });

  it('treats addresses as physical and private when paging is off', () => {
    const { mmu, regs } = setup();
    const flat = pagingRegisters(1n, regs.cr3, regs.cr4, regs.efer);
    expect(mmu.translate(flat, 0x10010, ACCESS.READ, 0, 0)).toMatchObject({ gpa: 0x10010 });
    expect(mmu.translate(flat, 0x500000, ACCESS.READ, 0, 0).fault).toBe(FAULT_VC);
  });
});
