import { describe, expect, it } from 'vitest';
import { VMPL_PERM } from '../../arch/index.js';
import { MIN_MEMORY_BYTES, PhysicalMemory } from '../memory.js';
import { makePte, PTE_FLAGS } from '../mmu.js';
import { Rmp } from '../rmp.js';
import { Cpu, RAX, RBX, RCX, RDX } from './cpu.js';
import { Interpreter, STOP_EXCEPTION, STOP_HLT } from './interpreter.js';
import { PagingTranslator, VC_NOT_VALIDATED, VEC_NPF } from './paging-translator.js';
import {
  ACCESS_EXEC,
  ACCESS_READ,
  ACCESS_WRITE,
  FlatTranslator,
  PERM_R,
  PERM_W,
  PERM_X,
  type TranslateResult,
} from './translator.js';

const C = 51;
const { P, RW, PS, NX, US } = PTE_FLAGS;
const A = 0x20n;
const D = 0x40n;

const CR0_PE_WP_PG = (1n << 31n) | (1n << 16n) | 1n;
const CR4_PAE = 1n << 5n;
const CR4_SMEP = 1n << 20n;
const CR4_SMAP = 1n << 21n;
const EFER_LME_LMA_NXE = (1n << 8n) | (1n << 10n) | (1n << 11n);
const CR3 = 0x1000n | (1n << 51n);

/** VA 0x80_0000_0000 (PML4 index 1): the 4 KiB and 2 MiB mappings below. */
const BASE = 0x80_0000_0000;
/** The 1 GiB page at the start of the higher half (PML4 index 256). */
const HIGH = 0xffff_8000_0000_0000n;

// Page-table layout: PML4 0x1000; PDPT 0x2000 (under PML4[1]) and 0x5000 (under PML4[256]);
// PD 0x3000; PT 0x4000. Pages 0..0x3ff are assigned and validated, tables usable by VMPL1-3.
const PT_ENTRIES: readonly [number, bigint][] = [
  [0, makePte(0x10000, P | RW, C)], // supervisor RW
  [1, makePte(0x11000, P | NX, C)], // supervisor read-only NX
  [2, makePte(0x12000, P | RW, null)], // shared mapping of an assigned page
  [3, makePte(0x500000, P | RW, C)], // assigned, not validated
  [4, makePte(0x600000, P | RW, C)], // private mapping of a hypervisor page
  [5, makePte(0x601000, P | RW, null)], // shared mapping of a hypervisor page
  [6, makePte(0x13000, P | RW | US, C)], // user RW
  [7, makePte(0x14000, P | US, C)], // user read-only
  [8, makePte(0x15000, P | RW | US | NX, C)], // user NX
  // 9: not present
  [10, makePte(0x16000, P | RW, C) | (1n << 50n)], // reserved address bit (MAXPHYADDR 48)
  [11, makePte(0x17000, P | RW, C)], // VMPL2 may only read it
];

function setup() {
  const mem = new PhysicalMemory(MIN_MEMORY_BYTES);
  const rmp = new Rmp(mem.pageCount);
  for (let pfn = 0; pfn < 0x400; pfn++) {
    rmp.firmwareAssign(pfn, {
      validated: true,
      vmplPerms: pfn === 0x17 ? [0xf, VMPL_PERM.READ, 0xf] : [0xf, 0xf, 0xf],
    });
  }
  rmp.rmpupdate(0x500000, false, true);
  const view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset);
  const w = (gpa: number, v: bigint): void => view.setBigUint64(gpa, v, true);
  const r = (gpa: number): bigint => view.getBigUint64(gpa, true);
  w(0x1000 + 1 * 8, makePte(0x2000, P | RW | US, C));
  w(0x1000 + 2 * 8, makePte(0x2000, P | RW | PS, C)); // PS in a PML4E: reserved
  w(0x1000 + 256 * 8, makePte(0x5000, P | RW, C));
  w(0x5000, makePte(0, P | RW | PS, C)); // 1 GiB page at physical 0
  w(0x2000, makePte(0x3000, P | RW | US, C));
  w(0x3000, makePte(0x4000, P | RW | US, C));
  w(0x3000 + 1 * 8, makePte(0x200000, P | RW | PS, C)); // 2 MiB page
  w(0x3000 + 2 * 8, makePte(0x202000, P | RW | PS, C)); // misaligned 2 MiB leaf: reserved
  w(0x3000 + 3 * 8, makePte(0x600000, P | RW, C)); // table in a hypervisor page
  w(0x3000 + 4 * 8, makePte(0x500000, P | RW, C)); // table in an unvalidated page
  for (const [i, v] of PT_ENTRIES) w(0x4000 + i * 8, v);
  const flags = { rflags: 0x2 };
  const t = new PagingTranslator(mem, rmp, flags, C, 48);
  t.setControl(CR0_PE_WP_PG, CR3, CR4_PAE, EFER_LME_LMA_NXE);
  const out: TranslateResult = { perm: 0, vector: -1, errorCode: 0 };
  /** Translates a 64-bit VA; returns the frame (or -1) with `out` filled. */
  const tr = (va: number | bigint, access = ACCESS_READ, user = false): number => {
    const v = BigInt(va);
    out.vector = -1;
    return t.translate(Number(v & 0xffff_ffffn) | 0, Number(v >> 32n) | 0, access, user, out);
  };
  return { mem, rmp, t, out, tr, r, w, flags };
}

const pt = (i: number): number => BASE + i * 0x1000;

describe('PagingTranslator', () => {
  it('walks four levels to a 4 KiB page, sets A on every level, and grants W only once D is set', () => {
    const { tr, out, r } = setup();
    expect(tr(pt(0) + 0x123)).toBe(0x10);
    expect(out.perm).toBe(PERM_R | PERM_X);
    for (const e of [0x1008, 0x2000, 0x3000, 0x4000]) expect(r(e) & A).toBe(A);
    expect(r(0x4000) & D).toBe(0n);
    expect(tr(pt(0), ACCESS_WRITE)).toBe(0x10);
    expect(out.perm).toBe(PERM_R | PERM_W | PERM_X);
    expect(r(0x4000) & D).toBe(D);
    // D is now set: a read grants W too.
    expect(tr(pt(0))).toBe(0x10);
    expect(out.perm & PERM_W).toBe(PERM_W);
    // D only on the leaf.
    expect(r(0x3000) & D).toBe(0n);
  });

  it('maps 2 MiB and 1 GiB pages, setting D on the large leaf', () => {
    const { tr, out, r } = setup();
    expect(tr(BASE + 0x200000 + 0x5432, ACCESS_WRITE)).toBe(0x205);
    expect(r(0x3008) & (A | D)).toBe(A | D);
    expect(tr(HIGH + 0x123456n)).toBe(0x123);
    expect(out.perm).toBe(PERM_R | PERM_X);
    expect(tr(HIGH + 0x3ff000n, ACCESS_WRITE)).toBe(0x3ff);
    expect(r(0x5000) & (A | D)).toBe(A | D);
  });

  it('raises #GP(0) for a non-canonical address', () => {
    const { tr, out } = setup();
    expect(tr(0x0000_8000_0000_0000n)).toBe(-1);
    expect(out).toMatchObject({ vector: 13, errorCode: 0 });
    expect(tr(0xfff0_0000_0000_0000n)).toBe(-1);
    expect(out.vector).toBe(13);
  });

  it('raises #PF with the error code of each permission fault', () => {
    const { t, tr, out, flags } = setup();
    const pf = (va: number, access: number, user: boolean): number => {
      expect(tr(va, access, user)).toBe(-1);
      expect(out.vector).toBe(14);
      return out.errorCode;
    };
    expect(pf(pt(9), ACCESS_READ, false)).toBe(0); // not present
    expect(pf(pt(9), ACCESS_WRITE, false)).toBe(2);
    expect(pf(pt(9), ACCESS_READ, true)).toBe(4);
    expect(pf(pt(9), ACCESS_EXEC, true)).toBe(0x14);
    expect(pf(pt(1), ACCESS_WRITE, false)).toBe(3); // read-only under CR0.WP
    expect(pf(pt(1), ACCESS_EXEC, false)).toBe(0x11); // NX
    expect(pf(pt(0), ACCESS_READ, true)).toBe(5); // user access to a supervisor page
    expect(pf(pt(7), ACCESS_WRITE, true)).toBe(7); // user write to a read-only page
    expect(pf(pt(8), ACCESS_EXEC, true)).toBe(0x15); // user fetch from an NX page
    expect(pf(pt(10), ACCESS_READ, false)).toBe(9); // reserved address bit
    expect(pf(BASE + 2 * 0x200000, ACCESS_WRITE, false)).toBe(0xb); // misaligned 2 MiB leaf
    expect(pf(0x100_0000_0000, ACCESS_READ, true)).toBe(0xd); // PS in a PML4E
    // User reads of user pages and user writes to writable ones work.
    expect(tr(pt(7), ACCESS_READ, true)).toBe(0x14);
    expect(tr(pt(6), ACCESS_WRITE, true)).toBe(0x13);

    // Without CR0.WP the supervisor writes to read-only pages (user pages included).
    t.setControl(CR0_PE_WP_PG & ~(1n << 16n), CR3, CR4_PAE, EFER_LME_LMA_NXE);
    expect(tr(pt(1), ACCESS_WRITE)).toBe(0x11);
    expect(out.perm & PERM_W).toBe(PERM_W);
    expect(pf(pt(7), ACCESS_WRITE, true)).toBe(7);

    // Without EFER.NXE, NX is reserved and fetch faults carry no I/D bit.
    t.setControl(CR0_PE_WP_PG, CR3, CR4_PAE, EFER_LME_LMA_NXE & ~(1n << 11n));
    expect(pf(pt(1), ACCESS_READ, false)).toBe(9);
    expect(pf(pt(9), ACCESS_EXEC, false)).toBe(0);

    // SMEP: no supervisor fetch from a user page.
    t.setControl(CR0_PE_WP_PG, CR3, CR4_PAE | CR4_SMEP, EFER_LME_LMA_NXE);
    expect(pf(pt(6), ACCESS_EXEC, false)).toBe(0x11);
    expect(tr(pt(6), ACCESS_EXEC, true)).toBe(0x13);

    // SMAP: supervisor data accesses to user pages only with RFLAGS.AC, and never cached.
    t.setControl(CR0_PE_WP_PG, CR3, CR4_PAE | CR4_SMAP, EFER_LME_LMA_NXE);
    expect(pf(pt(6), ACCESS_READ, false)).toBe(1);
    expect(pf(pt(6), ACCESS_WRITE, false)).toBe(3);
    expect(tr(pt(6), ACCESS_EXEC, false)).toBe(0x13); // SMAP leaves fetches alone
    flags.rflags |= 1 << 18;
    expect(tr(pt(6), ACCESS_WRITE, false)).toBe(0x13);
    // Only X is cached: the next data access walks again and sees AC.
    expect(out.perm).toBe(PERM_X);
    flags.rflags &= ~(1 << 18);
    expect(pf(pt(6), ACCESS_READ, false)).toBe(1);
    flags.rflags |= 1 << 18;
    expect(pf(pt(7), ACCESS_WRITE, false)).toBe(3); // AC does not override WP
    expect(tr(pt(6), ACCESS_READ, true)).toBe(0x13); // user accesses are unaffected
    expect(out.perm).toBe(PERM_R | PERM_W | PERM_X);
  });

  it('answers #VC 0x404 for an unvalidated page and NPF outcomes for RMP violations', () => {
    const { tr, out } = setup();
    const RMP = 2 ** 31;
    const FINAL = 2 ** 32;
    const PAGE = 2 ** 33;
    const ENC = 2 ** 34;

    expect(tr(pt(3))).toBe(-1);
    expect(out).toMatchObject({ vector: 29, errorCode: VC_NOT_VALIDATED });

    // Private access to a hypervisor page.
    expect(tr(pt(4), ACCESS_WRITE)).toBe(-1);
    expect(out.vector).toBe(VEC_NPF);
    expect(out.errorCode).toBe(1 + 2 + RMP + FINAL + ENC);

    // Shared mapping of an assigned page.
    expect(tr(pt(2), ACCESS_READ)).toBe(-1);
    expect(out).toMatchObject({ vector: VEC_NPF, errorCode: 1 + RMP + FINAL });

    // Shared mapping of a hypervisor page is fine.
    expect(tr(pt(5), ACCESS_WRITE)).toBe(0x601);

    // Page tables are checked too: a table in a hypervisor page, a table not validated.
    expect(tr(BASE + 3 * 0x200000)).toBe(-1);
    expect(out).toMatchObject({ vector: VEC_NPF, errorCode: 1 + RMP + PAGE + ENC });
    expect(tr(BASE + 4 * 0x200000)).toBe(-1);
    expect(out).toMatchObject({ vector: 29, errorCode: 0x404 });
  });

  it('walks tables and fetches code as private whatever the C-bits say; data follows the leaf', () => {
    const { t, tr, out, w } = setup();
    // The same tables reached with no C-bit anywhere: CR3 and every non-leaf entry shared-looking.
    w(0x1000 + 1 * 8, makePte(0x2000, P | RW | US, null));
    w(0x2000, makePte(0x3000, P | RW | US, null));
    w(0x3000, makePte(0x4000, P | RW | US, null));
    t.setControl(CR0_PE_WP_PG, CR3 & ~(1n << 51n), CR4_PAE, EFER_LME_LMA_NXE);
    // Walked as private (assigned, validated pages): a private leaf is reached.
    expect(tr(pt(0), ACCESS_READ)).toBe(0x10);
    // A shared leaf over a private assigned page: data is a shared access (NPF), a fetch is private.
    expect(tr(pt(2), ACCESS_READ)).toBe(-1);
    expect(out.vector).toBe(VEC_NPF);
    expect(tr(pt(2), ACCESS_EXEC)).toBe(0x12);
    expect(out.perm & PERM_X).toBe(PERM_X);
    expect(out.perm & PERM_R).toBe(0);
    // A shared leaf over a hypervisor page: data fine, but code there cannot be fetched (private).
    expect(tr(pt(5), ACCESS_READ)).toBe(0x601);
    expect(tr(pt(5), ACCESS_EXEC)).toBe(-1);
    expect(out.vector).toBe(VEC_NPF);
  });

  it('reports the faulting page of an NPF and checks VMPL permissions at the running VMPL', () => {
    const { t, tr, out } = setup();
    expect(tr(pt(4) + 0x10)).toBe(-1);
    expect(t.npfGpa).toBe(0x600000);

    t.vmpl = 2;
    expect(tr(pt(11), ACCESS_WRITE)).toBe(-1);
    expect(out.vector).toBe(VEC_NPF);
    expect(out.errorCode).toBe(1 + 2 + 2 ** 31 + 2 ** 32 + 2 ** 34 + 2 ** 36);
    expect(t.npfGpa).toBe(0x17000);
    // A read is allowed, and only R is cached (the mask has no W and no execute).
    expect(tr(pt(11), ACCESS_READ)).toBe(0x17);
    expect(out.perm).toBe(PERM_R);
    // VMPL0 is never restricted.
    t.vmpl = 0;
    expect(tr(pt(11), ACCESS_WRITE)).toBe(0x17);
  });

  it('runs a store and a load through mapped pages in the interpreter, and faults with CR2', () => {
    const { mem, rmp, r } = setup();
    // mov [rbx], rax; mov rcx, [rbx]; hlt
    mem.bytes.set([0x48, 0x89, 0x03, 0x48, 0x8b, 0x0b, 0xf4], 0x10000);
    // mov [rdx], eax; hlt
    mem.bytes.set([0x89, 0x02, 0xf4], 0x10010);
    const cpu = new Cpu(mem.bytes, new FlatTranslator(0, 0x1000));
    const t = new PagingTranslator(mem, rmp, cpu, C, 48, cpu.code);
    t.setControl(CR0_PE_WP_PG, CR3, CR4_PAE, EFER_LME_LMA_NXE);
    t.attach(() => cpu.flushTlb());
    cpu.translator = t;
    const interp = new Interpreter(cpu);
    cpu.rip = BigInt(pt(0));
    cpu.setReg64(RAX, 0x1122_3344_5566_7788n);
    cpu.setReg64(RBX, BigInt(BASE + 0x200000 + 0x100));
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(cpu.getReg64(RCX)).toBe(0x1122_3344_5566_7788n);
    expect(new DataView(mem.bytes.buffer).getBigUint64(0x200100, true)).toBe(
      0x1122_3344_5566_7788n,
    );
    expect(r(0x3008) & (A | D)).toBe(A | D);

    // mov [rdx], eax to the read-only page: #PF 3 with CR2, RIP at the store.
    cpu.rip = BigInt(pt(0) + 0x10);
    cpu.setReg64(RDX, BigInt(pt(1) + 8));
    expect(interp.run(10)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(14);
    expect(cpu.exErrorCode).toBe(3);
    expect(cpu.cr2Lo).toBe(pt(1) + 8 - BASE);
    expect(cpu.cr2Hi).toBe(0x80);
    expect(cpu.rip).toBe(BigInt(pt(0) + 0x10));

    // A store to a hypervisor page is reported as an NPF outcome.
    cpu.setReg64(RDX, BigInt(pt(4)));
    expect(interp.run(10)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(VEC_NPF);
    expect(t.npfGpa).toBe(0x600000);
  });

  it('lets the CPU cache W only after D is set, and never caches an AC-dependent SMAP access', () => {
    const { mem, rmp, r } = setup();
    // mov rcx, [rbx]; mov [rbx], rcx; mov rcx, [rbx]; hlt
    mem.bytes.set([0x48, 0x8b, 0x0b, 0x48, 0x89, 0x0b, 0x48, 0x8b, 0x0b, 0xf4], 0x10000);
    const cpu = new Cpu(mem.bytes, new FlatTranslator(0, 0x1000));
    const t = new PagingTranslator(mem, rmp, cpu, C, 48, cpu.code);
    t.setControl(CR0_PE_WP_PG, CR3, CR4_PAE | CR4_SMAP, EFER_LME_LMA_NXE);
    cpu.translator = t;
    const interp = new Interpreter(cpu);
    cpu.rip = BigInt(pt(0));
    cpu.setReg64(RBX, BigInt(pt(6) + 8)); // a user page
    cpu.rflags = 0x2 | (1 << 18); // AC
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(r(0x4000 + 6 * 8) & (A | D)).toBe(A | D);
    // The code page is cached now; the data accesses to the user page are not (the CPU's slow
    // path even asks once per byte of an uncached 8-byte load), so a second run walks again.
    const first = t.walks;
    cpu.rip = BigInt(pt(0));
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(t.walks - first).toBeGreaterThanOrEqual(3);
    // AC cleared without any TLB flush: the same load faults.
    cpu.rflags = 0x2;
    cpu.rip = BigInt(pt(0));
    expect(interp.run(10)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(14);
    expect(cpu.exErrorCode).toBe(1);

    // Without SMAP: a load caches R only (D clear), the store walks again to set D, then hits.
    cpu.setReg64(RBX, BigInt(BASE + 0x200000 + 0x40));
    t.setControl(CR0_PE_WP_PG, CR3, CR4_PAE, EFER_LME_LMA_NXE);
    cpu.flushTlb();
    const before = t.walks;
    cpu.rip = BigInt(pt(0));
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(t.walks - before).toBe(3); // fetch, load, store
    expect(r(0x3008) & D).toBe(D);
  });

  it('treats addresses as physical and private with paging off', () => {
    const { t, tr, out } = setup();
    t.setControl(1n, 0n, 0n, 0n);
    expect(tr(0x10123, ACCESS_WRITE)).toBe(0x10);
    expect(out.perm).toBe(PERM_R | PERM_W | PERM_X);
    expect(tr(0x500000)).toBe(-1);
    expect(out.errorCode).toBe(0x404);
    expect(() => t.setControl(CR0_PE_WP_PG, CR3, 0n, EFER_LME_LMA_NXE)).toThrow(RangeError);
  });
});

describe('PagingTranslator, legacy paging', () => {
  const CR0_PE_PG_WP = (1n << 31n) | (1n << 16n) | 1n;

  it('walks 32-bit paging: 4 KiB pages, 4 MiB pages with CR4.PSE, A/D, reserved bit 21', () => {
    const { t, tr, out, mem } = setup();
    const v = new DataView(mem.bytes.buffer, mem.bytes.byteOffset);
    const w32 = (gpa: number, x: number): void => v.setUint32(gpa, x >>> 0, true);
    w32(0x20000 + 1 * 4, 0x21000 | 0x7); // PDE 1 -> PT (P RW US)
    w32(0x20000 + 2 * 4, 0x00000000 | 0x83); // PDE 2: 4 MiB page at 0 (P RW PS)
    w32(0x20000 + 3 * 4, 0x00400000 | 0x200000 | 0x83); // bit 21 set: reserved
    w32(0x21000 + 5 * 4, 0x13000 | 0x3); // PTE 5: supervisor RW
    t.setControl(CR0_PE_PG_WP, 0x20000n, 0x10n, 0n);
    expect(tr(0x405000)).toBe(0x13);
    expect(out.perm).toBe(PERM_R | PERM_X); // W only once D is set
    expect(v.getUint32(0x20004, true) & 0x20).toBe(0x20); // A on the PDE
    expect(tr(0x405000, ACCESS_WRITE)).toBe(0x13);
    expect(v.getUint32(0x21014, true) & 0x60).toBe(0x60); // A and D on the PTE
    expect(tr(0x801000)).toBe(1);
    expect(tr(0xc01000)).toBe(-1);
    expect([out.vector, out.errorCode]).toEqual([14, 0x9]); // P | RSVD
    expect(tr(0x1000)).toBe(-1);
    expect([out.vector, out.errorCode]).toEqual([14, 0]); // PDE 0 not present
    expect(tr(0x405000, ACCESS_READ, true)).toBe(-1);
    expect([out.vector, out.errorCode]).toEqual([14, 0x5]); // user read of a supervisor page
    // Without CR4.PSE, PS in a PDE is ignored: PDE 2 then points at a page table at 0.
    t.setControl(CR0_PE_PG_WP, 0x20000n, 0n, 0n);
    expect(tr(0x801000)).not.toBe(1);
  });

  it('walks PAE paging: PDPT, 2 MiB pages, NX with EFER.NXE, reserved PDPTE bits', () => {
    const { t, tr, out, w, r } = setup();
    w(0x22000, makePte(0x23000, P, C)); // PDPTE 0
    w(0x22008, makePte(0x23000, P | RW, C)); // PDPTE 1: RW is reserved in a PDPTE
    w(0x23000 + 2 * 8, makePte(0x24000, P | RW, C));
    w(0x23000 + 3 * 8, makePte(0x200000, P | RW | PS, C));
    w(0x24000 + 5 * 8, makePte(0x13000, P | RW, C));
    w(0x24000 + 6 * 8, makePte(0x14000, P | RW | NX, C));
    t.setControl(CR0_PE_PG_WP, 0x22000n, CR4_PAE, 1n << 11n);
    expect(tr(0x405000, ACCESS_WRITE)).toBe(0x13);
    expect(r(0x24000 + 5 * 8) & (A | D)).toBe(A | D);
    expect(tr(0x601000)).toBe(0x201);
    expect(tr(0x406000, ACCESS_EXEC)).toBe(-1);
    expect([out.vector, out.errorCode]).toEqual([14, 0x11]); // P | I/D
    expect(tr(0x4000_1000)).toBe(-1);
    expect([out.vector, out.errorCode]).toEqual([14, 0x9]);
  });
});
