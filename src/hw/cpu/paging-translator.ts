// The page walker behind the CPU's TLB: a `Translator` for long-mode 4-level paging (and legacy
// 32-bit and PAE paging, `translateLegacy`) over guest physical memory, as an SEV-SNP guest's
// processor walks it (APM vol. 2, 5.2-5.6; SNP checks per reference/sev-snp-abi.md 7.2).
//
// - Full 64-bit virtual addresses as int32 halves. A non-canonical address answers #GP(0). The
//   translator is not told which segment an access goes through, so it cannot raise #SS for a
//   stack access: the CPU checks canonicity before asking (cpu.ts) and is where #SS belongs.
// - P/RW/US/NX at every level, PS leaves at the PD (2 MiB) and PDPT (1 GiB), reserved bits
//   (PS in a PML4E, NX without EFER.NXE, address bits at or above MAXPHYADDR other than the
//   C-bit, non-zero low address bits of a large leaf) -> #PF with RSVD.
// - CR0.WP, CR4.SMEP, CR4.SMAP with RFLAGS.AC. The CPU's TLB caches the permissions a walk grants
//   for all three access kinds, but a supervisor data access to a user page under SMAP depends on
//   AC, which changes without a TLB flush (STAC/CLAC/POPF): such a translation is answered with
//   perm 0 (allowed this once, never cached), so every such access walks again and sees AC.
// - Accessed bits on every level and the dirty bit on the leaf are written back, only when the
//   access succeeds [choice: hardware may set A on upper levels of a walk that then faults].
//   PERM_W is granted only once D is set, so the first store to a clean page misses the CPU's
//   TLB and comes back here to set D.
// - Table reads and instruction fetches are always private (the C-bit of CR3 and of non-leaf
//   entries is ignored); the leaf's C-bit decides whether data accesses to the final page are
//   private or shared. Every table access and the final page are checked against the
//   RMP at the running VMPL (`Rmp.check`): an unvalidated private page answers #VC 0x404; an RMP
//   violation answers VEC_NPF (not an x86 vector) with the nested-page-fault error code
//   (EXITINFO1) and the faulting page in `npfGpa` (EXITINFO2) for the engine to turn into a
//   #VMEXIT(NPF). A table access carries PAGE (bit 33) instead of FINAL (bit 32) in that code.
//   The permissions cached for the final page are only those the RMP allows too.
// - The translator keeps no TLB of its own; the CPU's TLB is the cache. Whoever changes CR3,
//   CR0/CR4/EFER, the CPL, the VMPL or the RMP must flush the CPU's TLB (`attach` subscribes to
//   RMP changes).

import { CR0, CR4, EFER, NPF_ERROR_CODE, RFLAGS, VECTOR } from '../../arch/index.js';
import { type PhysicalMemory } from '../memory.js';
import { ACCESS, RMP_OK, RMP_VC_NOT_VALIDATED, type Rmp } from '../rmp.js';
import { TrackedMemory, writerBytes } from '../tracked-memory.js';
import { type CodeCache } from './code-cache.js';
import {
  ACCESS_EXEC,
  ACCESS_READ,
  ACCESS_WRITE,
  PERM_R,
  PERM_W,
  PERM_X,
  type TranslateResult,
  type Translator,
} from './translator.js';

/**
 * The outcome "nested page fault" in `TranslateResult.vector`: not an x86 vector but the SVM exit
 * code of #VMEXIT(NPF) (0x400). `errorCode` is EXITINFO1, `PagingTranslator.npfGpa` EXITINFO2.
 */
export const VEC_NPF = 0x400;
/** #VC error code for an access to an assigned page that is not validated. */
export const VC_NOT_VALIDATED = 0x404;

const PF_P = 1;
const PF_W = 2;
const PF_U = 4;
const PF_RSVD = 8;
const PF_ID = 16;

const NPF_FINAL = 2 ** NPF_ERROR_CODE.specs.guestFinal.lo;
const NPF_PAGE = 2 ** NPF_ERROR_CODE.specs.guestPage.lo;

const CR0_PG = 1 << CR0.specs.PG.lo;
const CR0_WP = 1 << CR0.specs.WP.lo;
const CR4_PAE = 1 << CR4.specs.PAE.lo;
const CR4_PSE = 1 << CR4.specs.PSE.lo;
const CR4_SMEP = 1 << CR4.specs.SMEP.lo;
const CR4_SMAP = 1 << CR4.specs.SMAP.lo;
const CR4_LA57 = 1 << CR4.specs.LA57.lo;
const EFER_LMA = 1 << EFER.specs.LMA.lo;
const EFER_NXE = 1 << EFER.specs.NXE.lo;
const RFLAGS_AC = 1 << RFLAGS.specs.AC.lo;

const E_P = 1;
const E_RW = 2;
const E_US = 4;
const E_A = 0x20;
const E_D = 0x40;
const E_PS = 0x80;
/** NX is bit 63: bit 31 of the high half. */
const E_NX_HI = 0x8000_0000;

const TWO32 = 2 ** 32;

/** Where the translator reads RFLAGS.AC (the Cpu satisfies this). */
export interface FlagsSource {
  readonly rflags: number;
}

/** In `leafRights`: the data rights hold only because RFLAGS.AC is set (SMAP). */
const SMAP_AC = 0x100;

/**
 * The rights of `leafRights` a TLB may keep: write only once D is set (so the first store comes
 * back to set it), and no AC-dependent data rights.
 */
function cacheable(rights: number, leafLo: number): number {
  if ((rights & SMAP_AC) !== 0) return rights & PERM_X;
  return (leafLo & E_D) !== 0 ? rights & (PERM_R | PERM_W | PERM_X) : rights & (PERM_R | PERM_X);
}

export class PagingTranslator implements Translator {
  /** CR0, CR4 and EFER (their low 32 bits hold every bit paging uses). Set with `setControl`. */
  cr0 = 0;
  cr4 = 0;
  efer = 0;
  /** CR3, halves. */
  cr3Lo = 0;
  cr3Hi = 0;
  /** The VMPL the guest runs at: every RMP check is made for it. */
  vmpl = 0;
  /** EXITINFO2 of the last VEC_NPF outcome: the guest physical address of the faulting page. */
  npfGpa = 0;
  /** Page walks made (misses of the CPU's TLB that reached this translator). */
  walks = 0;

  /** Set while `translateTarget` walks: the final page is not RMP-checked. */
  private targetOnly = false;
  private pg = false;
  /** Long mode (4-level walk) or legacy 32-bit / PAE paging. */
  private lma = false;
  private pae = false;
  private pse = false;
  private wp = false;
  private nxe = false;
  private smep = false;
  private smap = false;
  private readonly view: DataView;
  private readonly tracked: TrackedMemory | null;
  private readonly cBitHi: number;
  /** Address bits 51:32 of an entry, without the C-bit. */
  private readonly addrMaskHi: number;
  /** Bits 51:MAXPHYADDR of an entry's high half that must be zero (the C-bit excluded). */
  private readonly rsvdHi: number;
  /** Scratch: entry addresses [0..3] and their tables' C-bits [4..7] of the walk in progress. */
  private readonly entries = new Float64Array(8);
  /** The leaf entry's low word after `setAccessed` (with the A and D it set). */
  private leafLo = 0;

  constructor(
    private readonly memory: PhysicalMemory,
    private readonly rmp: Rmp,
    /** RFLAGS, for AC under SMAP (the Cpu). */
    private readonly flags: FlagsSource,
    /** C-bit position (51 on Milan and Genoa). */
    readonly cBit = 51,
    /** MAXPHYADDR as the guest sees it (address bits above it are reserved in entries). */
    readonly physBits = 48,
    /** Decoded code to forget when an A/D write-back lands on a page holding some. */
    private readonly code: CodeCache | null = null,
  ) {
    if (cBit < 32 || cBit > 51 || physBits < 32 || physBits > 52) {
      throw new RangeError('C-bit must be in 32..51 and MAXPHYADDR in 32..52');
    }
    const bytes = writerBytes(memory);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.tracked = memory instanceof TrackedMemory ? memory : null;
    this.cBitHi = 1 << (cBit - 32);
    this.addrMaskHi = 0xfffff & ~this.cBitHi;
    // Bits physBits..51 of the entry: in the high half, physBits-32 .. 19.
    const rsvd = physBits >= 52 ? 0 : (0xfffff >>> (physBits - 32)) << (physBits - 32);
    this.rsvdHi = rsvd & ~this.cBitHi;
  }

  /**
   * Sets the paging registers. Paging off means physical = virtual (private, RMP checked); paging
   * on is only implemented for long mode with 4 levels.
   */
  setControl(cr0: bigint, cr3: bigint, cr4: bigint, efer: bigint): void {
    const c0 = Number(cr0 & 0xffff_ffffn);
    const c4 = Number(cr4 & 0xffff_ffffn);
    const ef = Number(efer & 0xffff_ffffn);
    const pg = (c0 & CR0_PG) !== 0;
    if (pg && (ef & EFER_LMA) !== 0 && ((c4 & CR4_PAE) === 0 || (c4 & CR4_LA57) !== 0)) {
      throw new RangeError('only 4-level paging is implemented in long mode');
    }
    this.lma = (ef & EFER_LMA) !== 0;
    this.pae = (c4 & CR4_PAE) !== 0;
    this.pse = (c4 & CR4_PSE) !== 0;
    this.cr0 = c0;
    this.cr4 = c4;
    this.efer = ef;
    this.cr3Lo = Number(cr3 & 0xffff_ffffn) | 0;
    this.cr3Hi = Number((cr3 >> 32n) & 0xffff_ffffn) | 0;
    this.pg = pg;
    this.wp = (c0 & CR0_WP) !== 0;
    this.nxe = (ef & EFER_NXE) !== 0;
    this.smep = (c4 & CR4_SMEP) !== 0;
    this.smap = (c4 & CR4_SMAP) !== 0;
  }

  /** Subscribes `flush` (the CPU's `flushTlb`) to RMP changes: cached permissions include them. */
  attach(flush: () => void): void {
    this.rmp.onChange(() => flush());
  }

  /**
   * The frame of the page at hi:lo as PVALIDATE and RMPADJUST translate it: a read walk with every
   * check of the walk and of the tables, but no RMP check of the final page, whose RMP entry the
   * instruction is about to examine itself (it need not be validated yet). Returns the frame or -1
   * with `out` set, as `translate`.
   */
  translateTarget(lo: number, hi: number, user: boolean, out: TranslateResult): number {
    this.targetOnly = true;
    try {
      return this.translate(lo, hi, ACCESS_READ, user, out);
    } finally {
      this.targetOnly = false;
    }
  }

  translate(lo: number, hi: number, access: number, user: boolean, out: TranslateResult): number {
    this.walks++;
    if (hi >> 15 !== hi >> 31) {
      out.vector = VECTOR.GP;
      out.errorCode = 0;
      return -1;
    }
    const cpl = user ? 3 : 0;
    if (!this.pg) {
      // Physical = virtual; an SNP guest's accesses without paging are private.
      const gpa = (lo >>> 0) + (hi >>> 0) * TWO32;
      if (this.targetOnly) return Math.floor(gpa / 4096);
      if (!this.rmpOk(gpa, true, cpl, access, NPF_FINAL, out)) return -1;
      out.perm = this.finalPerms(gpa, true, cpl, PERM_R | PERM_W | PERM_X);
      return Math.floor(gpa / 4096);
    }
    const errBits =
      (access === ACCESS_WRITE ? PF_W : 0) |
      (user ? PF_U : 0) |
      (access === ACCESS_EXEC && (this.nxe || this.smep) ? PF_ID : 0);
    if (!this.lma) return this.translateLegacy(lo, access, user, errBits, out);
    const view = this.view;
    let tableLo = this.cr3Lo & 0xffff_f000;
    let tableHi = this.cr3Hi;
    // Page-table walks are always private, whatever the C-bit of CR3 or of an entry says
    // (APM vol. 2, 15.34.5; reference/linux-snp-guest.md 1.2).
    const tableC = true;
    let rw = true;
    let us = true;
    let nx = false;
    // Entry addresses walked, for the A/D write-back once the access is known to succeed.
    const entries = this.entries;
    let frame = 0;
    let leafLo = 0;
    let leafHi = 0;
    let level = 4;
    for (; level >= 1; level--) {
      const index =
        level === 4
          ? (hi >>> 7) & 511
          : level === 3
            ? ((hi & 0x7f) << 2) | (lo >>> 30)
            : level === 2
              ? (lo >>> 21) & 511
              : (lo >>> 12) & 511;
      const entryGpa = (tableLo >>> 0) + (tableHi & this.addrMaskHi) * TWO32 + index * 8;
      if (!this.rmpOk(entryGpa, tableC, cpl, ACCESS_READ, NPF_PAGE, out)) return -1;
      if (!this.memory.contains(entryGpa, 8)) {
        // rmp.check answers an NPF for frames beyond the RMP; memory smaller than it is a bug.
        throw new RangeError(`page table entry at 0x${entryGpa.toString(16)} outside memory`);
      }
      entries[4 - level] = entryGpa;
      entries[8 - level] = tableC ? 1 : 0;
      const eLo = view.getInt32(entryGpa, true);
      const eHi = view.getInt32(entryGpa + 4, true);
      if ((eLo & E_P) === 0) return this.pf(errBits, out);
      const large = (eLo & E_PS) !== 0 && level <= 3;
      if (
        (eHi & this.rsvdHi) !== 0 ||
        (!this.nxe && (eHi & E_NX_HI) !== 0) ||
        (level === 4 && (eLo & E_PS) !== 0) ||
        (large && level === 2 && (eLo & 0x1f_e000) !== 0) ||
        (large && level === 3 && (eLo & 0x3fff_e000) !== 0)
      ) {
        return this.pf(errBits | PF_P | PF_RSVD, out);
      }
      rw &&= (eLo & E_RW) !== 0;
      us &&= (eLo & E_US) !== 0;
      if ((eHi & E_NX_HI) !== 0) nx = true;
      const addrLo = eLo & 0xffff_f000;
      if (level === 1 || large) {
        leafLo = eLo;
        leafHi = eHi;
        const base = (addrLo >>> 0) / 4096 + (eHi & this.addrMaskHi) * (TWO32 / 4096);
        frame =
          level === 1
            ? base
            : level === 2
              ? base - (base % 512) + ((lo >>> 12) & 511)
              : base - (base % 0x40000) + ((lo >>> 12) & 0x3ffff);
        break;
      }
      tableLo = addrLo;
      tableHi = eHi;
    }
    const rights = this.leafRights(user, us, rw, nx);
    if ((rights & (1 << access)) === 0) return this.pf(errBits | PF_P, out);
    // The final page against the RMP, for the access made.
    // Instruction fetches are always private; data follows the leaf's C-bit.
    const pageC = access === ACCESS_EXEC || (leafHi & this.cBitHi) !== 0;
    const dataC = (leafHi & this.cBitHi) !== 0;
    const gpa = frame * 4096;
    if (!this.targetOnly && !this.rmpOk(gpa, pageC, cpl, access, NPF_FINAL, out)) return -1;
    if (!this.setAccessed(4, level, leafLo, access, cpl, out)) return -1;
    out.perm = this.finalPerms(gpa, dataC, cpl, cacheable(rights, this.leafLo));
    return frame;
  }

  /**
   * Legacy paging (APM vol. 2, 5.2-5.3): 32-bit (4-byte entries, PD and PT, 4 MiB pages with
   * CR4.PSE and PSE-36 address bits) or PAE (a 4-entry PDPT at CR3, then PD and PT with 8-byte
   * entries, 2 MiB pages, NX with EFER.NXE). Addresses are 32 bits. [choice] CR3 and 32-bit
   * entries have no C-bit: those tables and pages are accessed private, as with paging off.
   */
  private translateLegacy(
    lo: number,
    access: number,
    user: boolean,
    errBits: number,
    out: TranslateResult,
  ): number {
    const cpl = user ? 3 : 0;
    const view = this.view;
    const pae = this.pae;
    const size = pae ? 8 : 4;
    let tableGpa: number;
    // Table walks are always private, as in long mode.
    const tableC = true;
    if (pae) {
      // The PDPTE: P and address only (bits 1-2 and 5-8 reserved, no NX, no A).
      const at = ((this.cr3Lo >>> 0) & 0xffff_ffe0) + (lo >>> 30) * 8;
      if (!this.rmpOk(at, true, cpl, ACCESS_READ, NPF_PAGE, out)) return -1;
      const eLo = view.getInt32(at, true);
      const eHi = view.getInt32(at + 4, true);
      if ((eLo & E_P) === 0) return this.pf(errBits, out);
      if ((eLo & 0x1e6) !== 0 || (eHi & (this.rsvdHi | E_NX_HI)) !== 0) {
        return this.pf(errBits | PF_P | PF_RSVD, out);
      }
      tableGpa = (eLo & 0xffff_f000) + (eHi & this.addrMaskHi) * TWO32;
    } else {
      tableGpa = (this.cr3Lo >>> 0) & 0xffff_f000;
    }
    const entries = this.entries;
    let rw = true;
    let us = true;
    let nx = false;
    let frame = 0;
    let leafLo = 0;
    let leafHi = 0;
    let level = 2;
    for (; level >= 1; level--) {
      const index = pae
        ? level === 2
          ? (lo >>> 21) & 511
          : (lo >>> 12) & 511
        : level === 2
          ? lo >>> 22
          : (lo >>> 12) & 1023;
      const at = tableGpa + index * size;
      if (!this.rmpOk(at, tableC, cpl, ACCESS_READ, NPF_PAGE, out)) return -1;
      entries[2 - level] = at;
      entries[6 - level] = tableC ? 1 : 0;
      const eLo = view.getInt32(at, true);
      const eHi = pae ? view.getInt32(at + 4, true) : 0;
      if ((eLo & E_P) === 0) return this.pf(errBits, out);
      const large = level === 2 && (eLo & E_PS) !== 0 && (pae || this.pse);
      if (
        (pae && ((eHi & this.rsvdHi) !== 0 || (!this.nxe && (eHi & E_NX_HI) !== 0))) ||
        (large && pae && (eLo & 0x1f_e000) !== 0) ||
        (large && !pae && (eLo & 0x20_0000) !== 0)
      ) {
        return this.pf(errBits | PF_P | PF_RSVD, out);
      }
      rw &&= (eLo & E_RW) !== 0;
      us &&= (eLo & E_US) !== 0;
      if ((eHi & E_NX_HI) !== 0) nx = true;
      if (level === 1 || large) {
        leafLo = eLo;
        leafHi = eHi;
        if (!large) {
          frame = (eLo >>> 12) + (eHi & this.addrMaskHi) * (TWO32 / 4096);
        } else if (pae) {
          frame =
            ((eLo >>> 21) << 9) + (eHi & this.addrMaskHi) * (TWO32 / 4096) + ((lo >>> 12) & 511);
        } else {
          // 4 MiB: address bits 31:22 from 31:22, bits 39:32 from 20:13 (PSE-36).
          frame =
            (eLo >>> 22) * 1024 + ((eLo >>> 13) & 0xff) * (TWO32 / 4096) + ((lo >>> 12) & 1023);
        }
        break;
      }
      tableGpa = (eLo & 0xffff_f000) + (eHi & this.addrMaskHi) * TWO32;
    }
    const rights = this.leafRights(user, us, rw, nx);
    if ((rights & (1 << access)) === 0) return this.pf(errBits | PF_P, out);
    const dataC = pae ? (leafHi & this.cBitHi) !== 0 : true;
    const pageC = access === ACCESS_EXEC || dataC;
    const gpa = frame * 4096;
    if (!this.rmpOk(gpa, pageC, cpl, access, NPF_FINAL, out)) return -1;
    if (!this.setAccessed(2, level, leafLo, access, cpl, out)) return -1;
    out.perm = this.finalPerms(gpa, dataC, cpl, cacheable(rights, this.leafLo));
    return frame;
  }

  /**
   * What the leaf's combined U/S, R/W and NX bits grant at this privilege (APM vol. 2, 5.6): the
   * PERM_* bits of the access kinds allowed, D not considered; SMAP_AC when supervisor data
   * rights on a user page come from RFLAGS.AC alone (allowed this once, never cached: see the file
   * comment).
   */
  private leafRights(user: boolean, us: boolean, rw: boolean, nx: boolean): number {
    const smapBlocks = this.smap && !user && us;
    const ac = smapBlocks && (this.flags.rflags & RFLAGS_AC) !== 0;
    const dataOk = user ? us : !smapBlocks || ac;
    let rights = 0;
    if (dataOk) rights |= PERM_R;
    if (dataOk && (user ? rw : rw || !this.wp)) rights |= PERM_W;
    if (!nx && (user ? us : !(this.smep && us))) rights |= PERM_X;
    return smapBlocks ? rights | SMAP_AC : rights;
  }

  /**
   * Sets A in every entry walked (`entries` from level `top` down to `leafLevel`) and D in the
   * leaf for a write, each store RMP-checked as a write; the leaf's low word ends in `leafLo`.
   * False (with `out` set) when the RMP refuses a store.
   */
  private setAccessed(
    top: number,
    leafLevel: number,
    leaf: number,
    access: number,
    cpl: number,
    out: TranslateResult,
  ): boolean {
    const view = this.view;
    const entries = this.entries;
    this.leafLo = leaf;
    for (let l = top; l >= leafLevel; l--) {
      const at = entries[top - l]!;
      const v = view.getInt32(at, true);
      const want = v | E_A | (l === leafLevel && access === ACCESS_WRITE ? E_D : 0);
      if (want !== v) {
        if (!this.rmpOk(at, entries[top + 4 - l] === 1, cpl, ACCESS_WRITE, NPF_PAGE, out)) {
          return false;
        }
        view.setInt32(at, want, true);
        this.tracked?.markWritten(at, 4);
        this.code?.invalidate(at, 4);
        if (l === leafLevel) this.leafLo = want;
      }
    }
    return true;
  }

  /**
   * Narrows `perm` to the kinds of access the RMP allows on the final page: data as private or
   * shared by `c`, fetches always as private.
   */
  private finalPerms(gpa: number, c: boolean, cpl: number, perm: number): number {
    const rmp = this.rmp;
    const v = this.vmpl;
    if ((perm & PERM_R) !== 0 && rmp.check(gpa, c, v, cpl, ACCESS.READ) !== RMP_OK) perm &= ~PERM_R;
    if ((perm & PERM_W) !== 0 && rmp.check(gpa, c, v, cpl, ACCESS.WRITE) !== RMP_OK) {
      perm &= ~PERM_W;
    }
    if ((perm & PERM_X) !== 0 && rmp.check(gpa, true, v, cpl, ACCESS.EXECUTE) !== RMP_OK) {
      perm &= ~PERM_X;
    }
    return perm;
  }

  /**
   * The RMP check of one access; on a violation fills `out` (#VC 0x404 or VEC_NPF with `where`,
   * FINAL or PAGE, in the error code) and returns false.
   */
  private rmpOk(
    gpa: number,
    c: boolean,
    cpl: number,
    access: number,
    where: number,
    out: TranslateResult,
  ): boolean {
    const kind =
      access === ACCESS_READ
        ? ACCESS.READ
        : access === ACCESS_WRITE
          ? ACCESS.WRITE
          : ACCESS.EXECUTE;
    const r = this.rmp.check(gpa, c, this.vmpl, cpl, kind);
    if (r === RMP_OK) return true;
    if (r === RMP_VC_NOT_VALIDATED) {
      out.vector = VECTOR.VC;
      out.errorCode = VC_NOT_VALIDATED;
      return false;
    }
    out.vector = VEC_NPF;
    // Rmp.check marks every violation FINAL; a page-table access is PAGE instead.
    out.errorCode = where === NPF_PAGE ? r - NPF_FINAL + NPF_PAGE : r;
    this.npfGpa = gpa - (gpa % 4096);
    return false;
  }

  private pf(errorCode: number, out: TranslateResult): number {
    out.vector = VECTOR.PF;
    out.errorCode = errorCode;
    return -1;
  }
}
