// Address translation as an SEV-SNP guest's CPU does it: a 4-level page walk through tables in
// guest memory (their entries carry the C-bit), a TLB of completed walks, and on every access the
// RMP check of the final guest physical address. Faults come back as numbers so the hot path
// allocates nothing. Virtual addresses are numbers below 2^53 (ARCHITECTURE: the SVSM lives in the
// lower canonical half); the x86 engine will add its own 64-bit front end.

import { CR0, CR4, EFER, PTE, RMP_ASSIGNED, RMP_VALIDATED } from '../arch/index.js';
import { PAGE_SIZE, type PhysicalMemory } from './memory.js';
import { type Access, ACCESS, RMP_OK, RMP_VC_NOT_VALIDATED, type Rmp } from './rmp.js';
import { TrackedMemory, writerBytes } from './tracked-memory.js';

/** The registers that decide translation, and what the MMU derives from them once. */
export interface PagingRegisters {
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
  /** Derived by `derivePaging` whenever a register changes (bigint tests are slow per access). */
  pg: boolean;
  wp: boolean;
  longMode: boolean;
  nxe: boolean;
}

/** Paging registers with their derived flags. */
export function pagingRegisters(
  cr0: bigint,
  cr3: bigint,
  cr4: bigint,
  efer: bigint,
): PagingRegisters {
  const r: PagingRegisters = {
    cr0,
    cr3,
    cr4,
    efer,
    pg: false,
    wp: false,
    longMode: false,
    nxe: false,
  };
  derivePaging(r);
  return r;
}

const bit = (spec: { readonly lo: number }): bigint => 1n << BigInt(spec.lo);
const CR0_PG = bit(CR0.specs.PG);
const CR0_WP = bit(CR0.specs.WP);
const CR4_PAE = bit(CR4.specs.PAE);
const EFER_LMA = bit(EFER.specs.LMA);
const EFER_NXE = bit(EFER.specs.NXE);

/** Recomputes the derived flags after cr0/cr3/cr4/efer changed. */
export function derivePaging(r: PagingRegisters): void {
  r.pg = (r.cr0 & CR0_PG) !== 0n;
  r.wp = (r.cr0 & CR0_WP) !== 0n;
  r.longMode = (r.cr4 & CR4_PAE) !== 0n && (r.efer & EFER_LMA) !== 0n;
  r.nxe = (r.efer & EFER_NXE) !== 0n;
}

export const FAULT_NONE = 0;
export const FAULT_PF = 1;
export const FAULT_VC = 2;
export const FAULT_NPF = 3;

/** The outcome of a translation, reused between calls (one per MMU). */
export interface Translation {
  /** FAULT_NONE, or which fault. */
  fault: number;
  /** Guest physical address (without the C-bit) when no fault; the faulting page for an NPF. */
  gpa: number;
  /** Error code of the fault (#PF error code, #VC exit code, or NPF error code). */
  errorCode: number;
}

/** 2^n for the shifts a walk uses (a table: Math.pow per level shows in profiles). */
const POW2: readonly number[] = Array.from({ length: 53 }, (_, n) => 2 ** n);
const pow2 = (n: number): number => POW2[n]!;
const PF_P = 1;
const PF_W = 2;
const PF_U = 4;
const PF_RSVD = 8;
const PF_ID = 16;

// A cached walk's flags, packed in one byte of the TLB.
const TLB_C = 1;
const TLB_W = 2;
const TLB_U = 4;
const TLB_X = 8;
/** The VMPL the walk was made for sits above the flags: a walk checked for one VMPL serves only it. */
const TLB_VMPL_SHIFT = 4;
/** RMP entry bits that let VMPL0 make any private access to a page. */
const RMP_PRIVATE_OK = RMP_ASSIGNED | RMP_VALIDATED;
/** Entries of the direct-mapped TLB (a power of two). */
const TLB_SIZE = 512;
/** Entries of the direct-mapped TLB of 2 MiB translations (a power of two). */
const TLB_2M_SIZE = 32;
const PAGES_PER_2M = 512;
/** Page-table pages whose RMP state the cached walks depend on, tracked up to this many. */
const MAX_TABLE_DEPS = 64;

/** A TLB slot for a virtual page number: low bits mixed with the rest, as the areas of a VA space share low bits. */
function tlbIndex(vpn: number): number {
  const lo = vpn >>> 0;
  const hi = (vpn - lo) / 4294967296;
  return (lo ^ (lo >>> 9) ^ (lo >>> 18) ^ hi) & (TLB_SIZE - 1);
}

export class Mmu {
  private readonly view: DataView;
  /** Where the walk's accessed/dirty bit stores are recorded, when the memory tracks them. */
  private readonly tracked: TrackedMemory | null;
  /** The TLB, direct mapped: virtual page number (-1 = empty), guest physical page, flags. */
  private readonly tlbVpn = new Float64Array(TLB_SIZE).fill(-1);
  private readonly tlbPage = new Float64Array(TLB_SIZE);
  private readonly tlbFlags = new Uint8Array(TLB_SIZE);
  /** The flush generation each entry was filled in: a flush only advances `generation`. */
  private readonly tlbGeneration = new Uint32Array(TLB_SIZE);
  private readonly tlb2mGeneration = new Uint32Array(TLB_2M_SIZE);
  private generation = 1;
  /** 2 MiB translations, as the CPU caches them: 2 MiB virtual page number, physical base, flags. */
  private readonly tlb2mVpn = new Float64Array(TLB_2M_SIZE).fill(-1);
  private readonly tlb2mBase = new Float64Array(TLB_2M_SIZE);
  private readonly tlb2mFlags = new Uint8Array(TLB_2M_SIZE);
  /**
   * Frames of the page tables the cached walks went through. A walk checks those tables' RMP
   * entries (the final page's entry is checked on every access, cached or not), so an RMP change
   * invalidates cached walks only when it touches one of them.
   */
  private readonly tableDeps = new Float64Array(MAX_TABLE_DEPS);
  private tableDepCount = 0;
  /** More table pages than tracked: any RMP change flushes. */
  private tableDepsOverflow = false;
  /** What the last successful walk produced. */
  private walkPage = 0;
  private walkFlags = 0;
  /** Whether the last walk ended at a 2 MiB leaf. */
  private walk2m = false;
  readonly result: Translation = { fault: FAULT_NONE, gpa: 0, errorCode: 0 };
  private readonly cBitHi: number;
  private readonly addrMaskHi: number;
  private readonly rmpEntries: Uint32Array;

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly rmp: Rmp,
    /** C-bit position (51 on Milan and Genoa). */
    readonly cBit: number,
  ) {
    const bytes = writerBytes(memory);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.tracked = memory instanceof TrackedMemory ? memory : null;
    this.rmpEntries = rmp.entries;
    this.cBitHi = 1 << (cBit - 32);
    // Physical address bits 51:32 of an entry, without the C-bit.
    this.addrMaskHi = 0xfffff & ~this.cBitHi;
    rmp.onChange((firstPfn, count) => this.rmpChanged(firstPfn, count));
  }

  flush(): void {
    this.generation = (this.generation + 1) >>> 0;
    if (this.generation === 0) {
      // After 2^32 flushes, old generations could match again: empty the TLB for real.
      this.tlbVpn.fill(-1);
      this.tlb2mVpn.fill(-1);
      this.generation = 1;
    }
    this.tableDepCount = 0;
    this.tableDepsOverflow = false;
  }

  invlpg(va: number): void {
    const vpn = Math.floor(va / PAGE_SIZE);
    const i = tlbIndex(vpn);
    if (this.tlbVpn[i] === vpn) this.tlbVpn[i] = -1;
    // INVLPG drops the translation of the page holding `va` whatever its size.
    const vpn2m = Math.floor(vpn / PAGES_PER_2M);
    const j = tlbIndex(vpn2m) & (TLB_2M_SIZE - 1);
    if (this.tlb2mVpn[j] === vpn2m) this.tlb2mVpn[j] = -1;
  }

  /** An RMP change: drop the cached walks if a page table they went through is in the range. */
  private rmpChanged(firstPfn: number, count: number): void {
    if (this.tableDepsOverflow) {
      this.flush();
      return;
    }
    const deps = this.tableDeps;
    const end = firstPfn + count;
    for (let i = 0; i < this.tableDepCount; i++) {
      const pfn = deps[i]!;
      if (pfn >= firstPfn && pfn < end) {
        this.flush();
        return;
      }
    }
  }

  private addTableDep(gpa: number): void {
    const pfn = Math.floor(gpa / PAGE_SIZE);
    const deps = this.tableDeps;
    const n = this.tableDepCount;
    for (let i = 0; i < n; i++) if (deps[i] === pfn) return;
    if (n === MAX_TABLE_DEPS) {
      this.tableDepsOverflow = true;
      return;
    }
    deps[n] = pfn;
    this.tableDepCount = n + 1;
  }

  private fault(kind: number, errorCode: number): Translation {
    const r = this.result;
    r.fault = kind;
    r.errorCode = errorCode;
    r.gpa = 0;
    return r;
  }

  /** Checks a private/shared access to a guest physical address against the RMP. */
  private rmpCheck(
    gpa: number,
    cBit: boolean,
    vmpl: number,
    cpl: number,
    access: Access,
  ): Translation | null {
    const c = this.rmp.check(gpa, cBit, vmpl, cpl, access);
    if (c === RMP_OK) return null;
    const f = this.fault(
      c === RMP_VC_NOT_VALIDATED ? FAULT_VC : FAULT_NPF,
      c === RMP_VC_NOT_VALIDATED ? 0x404 : c,
    );
    // The host needs the faulting guest physical address of a nested page fault.
    f.gpa = gpa - (gpa % PAGE_SIZE);
    return f;
  }

  /**
   * Translates `va` for an access at `cpl` from `vmpl`. With paging off, the address is physical and
   * private (an SNP guest's accesses without paging are encrypted).
   */
  translate(
    regs: PagingRegisters,
    va: number,
    access: Access,
    cpl: number,
    vmpl: number,
  ): Translation {
    const r = this.result;
    if (!regs.pg) {
      const f = this.rmpCheck(va, true, vmpl, cpl, access);
      if (f !== null) return f;
      r.fault = FAULT_NONE;
      r.gpa = va;
      return r;
    }
    const vpn = Math.floor(va / PAGE_SIZE);
    const i = tlbIndex(vpn);
    let page: number;
    let flags: number;
    const gen = this.generation;
    if (
      this.tlbVpn[i] === vpn &&
      this.tlbGeneration[i] === gen &&
      this.tlbFlags[i]! >>> TLB_VMPL_SHIFT === vmpl
    ) {
      page = this.tlbPage[i]!;
      flags = this.tlbFlags[i]!;
    } else {
      const vpn2m = Math.floor(vpn / PAGES_PER_2M);
      const j = tlbIndex(vpn2m) & (TLB_2M_SIZE - 1);
      if (
        this.tlb2mVpn[j] === vpn2m &&
        this.tlb2mGeneration[j] === gen &&
        this.tlb2mFlags[j]! >>> TLB_VMPL_SHIFT === vmpl
      ) {
        page = this.tlb2mBase[j]! + (vpn - vpn2m * PAGES_PER_2M) * PAGE_SIZE;
        flags = this.tlb2mFlags[j]!;
      } else {
        if (!this.walk(regs, va, access, cpl, vmpl)) return r;
        page = this.walkPage;
        flags = this.walkFlags;
        if (this.walk2m) {
          this.tlb2mVpn[j] = vpn2m;
          this.tlb2mBase[j] = page - (vpn - vpn2m * PAGES_PER_2M) * PAGE_SIZE;
          this.tlb2mFlags[j] = flags;
          this.tlb2mGeneration[j] = gen;
        } else {
          this.tlbVpn[i] = vpn;
          this.tlbPage[i] = page;
          this.tlbFlags[i] = flags;
          this.tlbGeneration[i] = gen;
        }
      }
    }
    const user = cpl === 3;
    const wp = regs.wp;
    const denied =
      (access === ACCESS.WRITE && (flags & TLB_W) === 0 && (user || wp)) ||
      (user && (flags & TLB_U) === 0) ||
      (access === ACCESS.EXECUTE && (flags & TLB_X) === 0);
    if (denied) {
      return this.fault(
        FAULT_PF,
        PF_P |
          (access === ACCESS.WRITE ? PF_W : 0) |
          (user ? PF_U : 0) |
          (access === ACCESS.EXECUTE ? PF_ID : 0),
      );
    }
    // va - vpn * PAGE_SIZE is va % PAGE_SIZE without a floating-point modulo (va exceeds 32 bits).
    const gpa = page + (va - vpn * PAGE_SIZE);
    // The RMP check's commonest outcome inline (what Rmp.check answers for a private access from
    // VMPL0 to a validated page); every other case takes the full check.
    const e = vmpl === 0 && (flags & TLB_C) !== 0 ? this.rmpEntries[page / PAGE_SIZE] : undefined;
    if (e === undefined || (e & RMP_PRIVATE_OK) !== RMP_PRIVATE_OK) {
      const f = this.rmpCheck(gpa, (flags & TLB_C) !== 0, vmpl, cpl, access);
      if (f !== null) return f;
    }
    r.fault = FAULT_NONE;
    r.gpa = gpa;
    return r;
  }

  /**
   * The guest physical address `va` maps to, ignoring the RMP state of the final page (PVALIDATE
   * and RMPADJUST operate on pages that are not validated yet); -1 when the walk itself fails.
   */
  translateWalkOnly(regs: PagingRegisters, va: number): number {
    if (!regs.pg) return va;
    return this.walk(regs, va, ACCESS.READ, 0, 0) ? this.walkPage + (va % PAGE_SIZE) : -1;
  }

  /**
   * The 4-level walk; on success its page and flags are in walkPage/walkFlags, else false after
   * recording a fault in `result`.
   */
  private walk(
    regs: PagingRegisters,
    va: number,
    access: Access,
    cpl: number,
    vmpl: number,
  ): boolean {
    if (!regs.longMode) {
      // Only long-mode 4-level paging is implemented for VMPL0 code; anything else is a #GP-worthy
      // configuration that the engine reports as a page fault on the access.
      this.fault(FAULT_PF, PF_RSVD);
      return false;
    }
    const nxe = regs.nxe;
    const cr3 = regs.cr3;
    let tableHi = Number((cr3 >> 32n) & 0xfffffn);
    let table = Number(cr3 & 0xffff_f000n) + (tableHi & this.addrMaskHi) * pow2(32);
    let tableC = (tableHi & this.cBitHi) !== 0;
    let writable = true;
    let user = true;
    let executable = true;
    const errBits =
      (access === ACCESS.WRITE ? PF_W : 0) |
      (cpl === 3 ? PF_U : 0) |
      (access === ACCESS.EXECUTE ? PF_ID : 0);
    for (let level = 4; level >= 1; level--) {
      const shift = 12 + 9 * (level - 1);
      const index = Math.floor(va / pow2(shift)) & 511;
      const entryGpa = table + index * 8;
      const f = this.rmpCheck(entryGpa, tableC, vmpl, 0, ACCESS.READ);
      if (f !== null) return false;
      if (!this.memory.contains(entryGpa, 8)) {
        this.fault(FAULT_PF, errBits | PF_RSVD);
        return false;
      }
      // The walk read this table: its RMP state now backs whatever the TLB caches.
      this.addTableDep(entryGpa);
      let lo = this.view.getUint32(entryGpa, true);
      const hi = this.view.getUint32(entryGpa + 4, true);
      if ((lo & 1) === 0) {
        this.fault(FAULT_PF, errBits);
        return false;
      }
      writable &&= (lo & 2) !== 0;
      user &&= (lo & 4) !== 0;
      if (nxe) executable &&= (hi & 0x8000_0000) === 0;
      const large = level <= 3 && level >= 2 && (lo & 0x80) !== 0;
      // Accessed bit on every level; dirty on the leaf for writes.
      const leaf = level === 1 || large;
      const newLo =
        lo | 0x20 | (leaf && access === ACCESS.WRITE && (writable || cpl !== 3) ? 0x40 : 0);
      if (newLo !== lo) {
        this.view.setUint32(entryGpa, newLo >>> 0, true);
        this.tracked?.markWritten(entryGpa, 4);
        lo = newLo;
      }
      const addrLo = lo & 0xffff_f000;
      const addrHi = hi & this.addrMaskHi;
      const cBit = (hi & this.cBitHi) !== 0;
      if (leaf) {
        const size = pow2(shift);
        const base = (addrLo >>> 0) + addrHi * pow2(32) - ((addrLo >>> 0) % size);
        this.walkPage = base + (Math.floor(va / PAGE_SIZE) % (size / PAGE_SIZE)) * PAGE_SIZE;
        this.walk2m = level === 2;
        this.walkFlags =
          (cBit ? TLB_C : 0) |
          (writable ? TLB_W : 0) |
          (user ? TLB_U : 0) |
          (executable ? TLB_X : 0) |
          (vmpl << TLB_VMPL_SHIFT);
        return true;
      }
      table = (addrLo >>> 0) + addrHi * pow2(32);
      tableC = cBit;
      tableHi = hi;
    }
    return false;
  }
}

/** Builds a page-table entry value: physical address with C-bit and flags. */
export function makePte(gpa: number, flags: bigint, cBit: number | null): bigint {
  let v = BigInt(gpa) | flags;
  if (cBit !== null) v |= 1n << BigInt(cBit);
  return v;
}

/** The PTE flag bits, from the declared layout. */
export const PTE_FLAGS = {
  P: 1n << BigInt(PTE.specs.P.lo),
  RW: 1n << BigInt(PTE.specs.RW.lo),
  US: 1n << BigInt(PTE.specs.US.lo),
  PS: 1n << BigInt(PTE.specs.PS.lo),
  NX: 1n << BigInt(PTE.specs.NX.lo),
} as const;
