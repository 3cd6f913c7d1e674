// Address translation as an SEV-SNP guest's CPU does it: a 4-level page walk through tables in
// guest memory (their entries carry the C-bit), a TLB of completed walks, and on every access the
// RMP check of the final guest physical address. Faults come back as numbers so the hot path
// allocates nothing. Virtual addresses are numbers below 2^53 (ARCHITECTURE: the SVSM lives in the
// lower canonical half); the x86 engine will add its own 64-bit front end.

import { CR0, CR4, EFER, PTE } from '../arch/index.js';
import { PAGE_SIZE, type PhysicalMemory } from './memory.js';
import { type Access, ACCESS, RMP_OK, RMP_VC_NOT_VALIDATED, type Rmp } from './rmp.js';

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

/** Recomputes the derived flags after cr0/cr3/cr4/efer changed. */
export function derivePaging(r: PagingRegisters): void {
  r.pg = CR0.has(r.cr0, 'PG');
  r.wp = CR0.has(r.cr0, 'WP');
  r.longMode = CR4.has(r.cr4, 'PAE') && EFER.has(r.efer, 'LMA');
  r.nxe = EFER.has(r.efer, 'NXE');
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

const pow2 = (n: number): number => 2 ** n;
const PF_P = 1;
const PF_W = 2;
const PF_U = 4;
const PF_RSVD = 8;
const PF_ID = 16;

interface TlbEntry {
  /** Guest physical page address. */
  page: number;
  cBit: boolean;
  writable: boolean;
  user: boolean;
  executable: boolean;
}

export class Mmu {
  private readonly view: DataView;
  private readonly tlb = new Map<number, TlbEntry>();
  readonly result: Translation = { fault: FAULT_NONE, gpa: 0, errorCode: 0 };
  private readonly cBitHi: number;
  private readonly addrMaskHi: number;

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly rmp: Rmp,
    /** C-bit position (51 on Milan and Genoa). */
    readonly cBit: number,
  ) {
    this.view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset, memory.bytes.byteLength);
    this.cBitHi = 1 << (cBit - 32);
    // Physical address bits 51:32 of an entry, without the C-bit.
    this.addrMaskHi = 0xfffff & ~this.cBitHi;
    // Any RMP change may invalidate a cached walk (its tables may no longer be validated).
    rmp.onChange(() => this.flush());
  }

  flush(): void {
    this.tlb.clear();
  }

  invlpg(va: number): void {
    this.tlb.delete(Math.floor(va / PAGE_SIZE));
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
    let e = this.tlb.get(vpn);
    if (e === undefined) {
      const walked = this.walk(regs, va, access, cpl, vmpl);
      if (walked === null) return r;
      e = walked;
      this.tlb.set(vpn, e);
    }
    const user = cpl === 3;
    const wp = regs.wp;
    const denied =
      (access === ACCESS.WRITE && !e.writable && (user || wp)) ||
      (user && !e.user) ||
      (access === ACCESS.EXECUTE && !e.executable);
    if (denied) {
      return this.fault(
        FAULT_PF,
        PF_P |
          (access === ACCESS.WRITE ? PF_W : 0) |
          (user ? PF_U : 0) |
          (access === ACCESS.EXECUTE ? PF_ID : 0),
      );
    }
    const gpa = e.page + (va % PAGE_SIZE);
    const f = this.rmpCheck(gpa, e.cBit, vmpl, cpl, access);
    if (f !== null) return f;
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
    const e = this.walk(regs, va, ACCESS.READ, 0, 0);
    return e === null ? -1 : e.page + (va % PAGE_SIZE);
  }

  /** The 4-level walk; null after recording a fault in `result`. */
  private walk(
    regs: PagingRegisters,
    va: number,
    access: Access,
    cpl: number,
    vmpl: number,
  ): TlbEntry | null {
    if (!regs.longMode) {
      // Only long-mode 4-level paging is implemented for VMPL0 code; anything else is a #GP-worthy
      // configuration that the engine reports as a page fault on the access.
      this.fault(FAULT_PF, PF_RSVD);
      return null;
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
      const index = Math.floor(va / pow2(shift)) % 512;
      const entryGpa = table + index * 8;
      const f = this.rmpCheck(entryGpa, tableC, vmpl, 0, ACCESS.READ);
      if (f !== null) return null;
      if (!this.memory.contains(entryGpa, 8)) {
        this.fault(FAULT_PF, errBits | PF_RSVD);
        return null;
      }
      let lo = this.view.getUint32(entryGpa, true);
      const hi = this.view.getUint32(entryGpa + 4, true);
      if ((lo & 1) === 0) {
        this.fault(FAULT_PF, errBits);
        return null;
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
        lo = newLo;
      }
      const addrLo = lo & 0xffff_f000;
      const addrHi = hi & this.addrMaskHi;
      const cBit = (hi & this.cBitHi) !== 0;
      if (leaf) {
        const size = pow2(shift);
        const base = (addrLo >>> 0) + addrHi * pow2(32) - ((addrLo >>> 0) % size);
        const page = base + (Math.floor(va / PAGE_SIZE) % (size / PAGE_SIZE)) * PAGE_SIZE;
        return { page, cBit, writable, user, executable };
      }
      table = (addrLo >>> 0) + addrHi * pow2(32);
      tableC = cBit;
      tableHi = hi;
    }
    return null;
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
