// The reverse map table: one packed entry per 4 KiB page of guest memory (layout in
// arch/rmp.ts), the guest instructions that change it (PVALIDATE, RMPADJUST), the hypervisor's
// (RMPUPDATE, PSMASH), the firmware's (launch), and the check every memory access goes through.
// Semantics from AMD APM vol. 2 "SEV-SNP" and vol. 3 (PVALIDATE, RMPADJUST), as restated in
// reference/sev-snp-abi.md section 7.

import {
  NPF_ERROR_CODE,
  PVALIDATE_RESULT,
  RMP_ASSIGNED,
  RMP_IMMUTABLE,
  RMP_PAGE_SIZE_2M,
  RMP_VALIDATED,
  RMP_VMPL_PERMS,
  RMP_VMSA,
  RMPADJUST_RESULT,
  VECTOR,
  VMPL_PERM,
  VMPL_PERM_ALL,
  describeRmpEntry,
  rmpPermsShift,
  rmpVmplPerms,
  rmpWithVmplPerms,
} from '../arch/index.js';
import { HUGE_PAGE_SIZE, PAGE_SHIFT, PAGE_SIZE } from './memory.js';

/** The kind of a memory access, as the checks distinguish it. */
export const ACCESS = { READ: 0, WRITE: 1, EXECUTE: 2 } as const;
export type Access = (typeof ACCESS)[keyof typeof ACCESS];

const PAGES_PER_2M = HUGE_PAGE_SIZE / PAGE_SIZE;

// NPF error-code bits as plain numbers (bit 31 and up exceed int32, so no bitwise ops on them).
const npfBit = (k: keyof typeof NPF_ERROR_CODE.specs): number => 2 ** NPF_ERROR_CODE.specs[k].lo;
const NPF_P = npfBit('present');
const NPF_W = npfBit('write');
const NPF_U = npfBit('user');
const NPF_ID = npfBit('fetch');
const NPF_RMP = npfBit('rmp');
const NPF_ENC = npfBit('enc');
const NPF_FINAL = npfBit('guestFinal');
const NPF_VMPL = npfBit('vmpl');

/**
 * Result of an access check, a number so the MMU's hot path allocates nothing:
 * RMP_OK, RMP_VC_NOT_VALIDATED (the guest gets #VC with error code 0x404), or a positive nested
 * page fault error code for the hypervisor (bit 31 RMP set for RMP violations).
 */
export type RmpCheck = number;
export const RMP_OK = 0;
export const RMP_VC_NOT_VALIDATED = -1;
/** #VC error code for an access to a page that is assigned but not validated. */
export const VC_PAGE_NOT_VALIDATED = 0x404;

/** The NPF error-code bits a violation carries besides RMP: access kind and privilege. */
function accessBits(cpl: number, access: Access): number {
  return (
    NPF_P +
    NPF_FINAL +
    (access === ACCESS.WRITE ? NPF_W : 0) +
    (cpl === 3 ? NPF_U : 0) +
    (access === ACCESS.EXECUTE ? NPF_ID : 0)
  );
}

/** Names the outcome of an access check, for logs and errors. */
export function describeCheck(result: RmpCheck): string {
  if (result === RMP_OK) return 'allowed';
  if (result === RMP_VC_NOT_VALIDATED) return '#VC 0x404 (page not validated)';
  const bits: string[] = [];
  for (const [name, f] of Object.entries(NPF_ERROR_CODE.specs)) {
    if (Math.floor(result / 2 ** f.lo) % 2 === 1) bits.push(name);
  }
  return `nested page fault 0x${result.toString(16)} (${bits.join('|')})`;
}

/** What PVALIDATE and RMPADJUST give back: a return code in EAX, or a fault. */
export type RmpInstructionResult =
  | { readonly kind: 'done'; readonly rax: number; readonly carry: boolean }
  | { readonly kind: 'exception'; readonly vector: number; readonly errorCode: number }
  | { readonly kind: 'npf'; readonly errorCode: number };

const done = (rax: number, carry = false): RmpInstructionResult => ({ kind: 'done', rax, carry });
const gp0: RmpInstructionResult = { kind: 'exception', vector: VECTOR.GP, errorCode: 0 };

/** RMPUPDATE / PSMASH return codes (APM vol. 3; Microsoft's __rmpupdate documents the same). */
export const RMPUPDATE_RESULT = {
  SUCCESS: 0,
  FAIL_INPUT: 1,
  FAIL_PERMISSION: 2,
  FAIL_INUSE: 3,
  FAIL_OVERLAP: 4,
} as const;

/** Options of a firmware-made entry (launch pages, VMSA pages, the secrets and CPUID pages). */
export interface FirmwareEntry {
  readonly validated: boolean;
  readonly vmsa?: boolean;
  readonly immutable?: boolean;
  /** VMPL1-3 permission masks. */
  readonly vmplPerms?: readonly [number, number, number];
}

export type RmpListener = (firstPfn: number, count: number) => void;

export class Rmp {
  /** The packed entries, indexed by page frame number. Read-only for everyone but this class. */
  readonly entries: Uint32Array;
  private readonly listeners: RmpListener[] = [];

  constructor(readonly pageCount: number) {
    this.entries = new Uint32Array(pageCount);
  }

  /** Called after every change with the affected frames, so TLBs can drop stale translations. */
  onChange(listener: RmpListener): void {
    this.listeners.push(listener);
  }

  private changed(firstPfn: number, count: number): void {
    for (const l of this.listeners) l(firstPfn, count);
  }

  entry(pfn: number): number {
    this.checkPfn(pfn);
    return this.entries[pfn]!;
  }

  describe(pfn: number): string {
    return `page 0x${(pfn * PAGE_SIZE).toString(16)}: ${describeRmpEntry(this.entry(pfn))}`;
  }

  isAssigned(pfn: number): boolean {
    return (this.entry(pfn) & RMP_ASSIGNED) !== 0;
  }

  private checkPfn(pfn: number): void {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= this.pageCount) {
      throw new RangeError(`page frame 0x${pfn.toString(16)} is outside the RMP`);
    }
  }

  /**
   * The check of every guest access (APM "RMP checks"), given the guest physical address the
   * page walk produced, its C-bit, and who accesses how.
   */
  check(gpa: number, cBit: boolean, vmpl: number, cpl: number, access: Access): RmpCheck {
    const pfn = Math.floor(gpa / PAGE_SIZE);
    if (pfn >= this.pageCount || pfn < 0) {
      // Nothing is mapped there: an ordinary (non-RMP) nested page fault, P clear.
      return accessBits(cpl, access) - NPF_P;
    }
    const e = this.entries[pfn]!;
    if (!cBit) {
      // A shared (hypervisor-owned) access to a page assigned to the guest.
      return (e & RMP_ASSIGNED) !== 0 ? accessBits(cpl, access) + NPF_RMP : RMP_OK;
    }
    if ((e & RMP_ASSIGNED) === 0) return accessBits(cpl, access) + NPF_RMP + NPF_ENC;
    if ((e & RMP_VALIDATED) === 0) return RMP_VC_NOT_VALIDATED;
    if (vmpl === 0) return RMP_OK;
    const perms = (e >>> (4 + 4 * vmpl)) & VMPL_PERM_ALL;
    const need =
      access === ACCESS.READ
        ? VMPL_PERM.READ
        : access === ACCESS.WRITE
          ? VMPL_PERM.WRITE
          : cpl === 3
            ? VMPL_PERM.EXEC_USER
            : VMPL_PERM.EXEC_SUPERVISOR;
    // A VMSA page is never writable from a VMPL other than 0, whatever its mask says.
    const vmsaWrite = access === ACCESS.WRITE && (e & RMP_VMSA) !== 0;
    if ((perms & need) === 0 || vmsaWrite) {
      return accessBits(cpl, access) + NPF_RMP + NPF_ENC + NPF_VMPL;
    }
    return RMP_OK;
  }

  /** Entries of the 4 KiB page or the whole 2 MiB region `gpa` names; null if misaligned. */
  private span(gpa: number, size2M: boolean): { pfn: number; count: number } | null {
    const align = size2M ? HUGE_PAGE_SIZE : PAGE_SIZE;
    if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % align !== 0) return null;
    const pfn = gpa >>> PAGE_SHIFT;
    const count = size2M ? PAGES_PER_2M : 1;
    if (pfn + count > this.pageCount) return null;
    return { pfn, count };
  }

  /** RMP size of the entry at `pfn` compared with the requested size: true when they differ. */
  private sizeMismatch(pfn: number, size2M: boolean): boolean {
    const e = this.entries[pfn]!;
    return ((e & RMP_PAGE_SIZE_2M) !== 0) !== size2M;
  }

  /**
   * PVALIDATE (APM vol. 3): only at VMPL0 and CPL0. `gpa` is the translation of RAX.
   * [uncertain] a VMPL other than 0 gets #GP(0), as for CPL > 0.
   */
  pvalidate(
    vmpl: number,
    cpl: number,
    gpa: number,
    size2M: boolean,
    validate: boolean,
  ): RmpInstructionResult {
    if (cpl !== 0 || vmpl !== 0) return gp0;
    const s = this.span(gpa, size2M);
    if (s === null) return done(PVALIDATE_RESULT.FAIL_INPUT);
    const e = this.entries[s.pfn]!;
    if ((e & RMP_ASSIGNED) === 0) {
      return { kind: 'npf', errorCode: NPF_P + NPF_FINAL + NPF_RMP + NPF_ENC };
    }
    if (this.sizeMismatch(s.pfn, size2M)) return done(PVALIDATE_RESULT.FAIL_SIZEMISMATCH);
    if (((e & RMP_VALIDATED) !== 0) === validate) return done(PVALIDATE_RESULT.SUCCESS, true);
    for (let i = s.pfn; i < s.pfn + s.count; i++) {
      this.entries[i] = validate
        ? this.entries[i]! | RMP_VALIDATED
        : this.entries[i]! & ~RMP_VALIDATED;
    }
    this.changed(s.pfn, s.count);
    return done(PVALIDATE_RESULT.SUCCESS);
  }

  /**
   * RMPADJUST (APM vol. 3): the caller at `callerVmpl` sets `targetVmpl`'s permission mask on a
   * page, and from VMPL0 also the VMSA bit. [uncertain] an unvalidated page gives FAIL_INPUT.
   */
  rmpadjust(
    callerVmpl: number,
    cpl: number,
    gpa: number,
    size2M: boolean,
    targetVmpl: number,
    perms: number,
    vmsa: boolean,
  ): RmpInstructionResult {
    if (cpl !== 0) return gp0;
    if (!Number.isInteger(targetVmpl) || targetVmpl < 0 || targetVmpl > 3) {
      return done(RMPADJUST_RESULT.FAIL_INPUT);
    }
    if (!Number.isInteger(perms) || perms < 0 || perms > VMPL_PERM_ALL) {
      return done(RMPADJUST_RESULT.FAIL_INPUT);
    }
    const s = this.span(gpa, size2M);
    if (s === null) return done(RMPADJUST_RESULT.FAIL_INPUT);
    const e = this.entries[s.pfn]!;
    if ((e & RMP_ASSIGNED) === 0) {
      return { kind: 'npf', errorCode: NPF_P + NPF_FINAL + NPF_RMP + NPF_ENC };
    }
    if (targetVmpl <= callerVmpl) return done(RMPADJUST_RESULT.FAIL_PERMISSION);
    if (this.sizeMismatch(s.pfn, size2M)) return done(RMPADJUST_RESULT.FAIL_SIZEMISMATCH);
    if ((e & RMP_VALIDATED) === 0) return done(RMPADJUST_RESULT.FAIL_INPUT);
    if ((perms & ~rmpVmplPerms(e, callerVmpl)) !== 0) {
      return done(RMPADJUST_RESULT.FAIL_PERMISSION);
    }
    for (let i = s.pfn; i < s.pfn + s.count; i++) {
      let v = rmpWithVmplPerms(this.entries[i]!, targetVmpl, perms);
      // The VMSA attribute is ignored below VMPL0 (Microsoft's __rmpadjust documents this).
      if (callerVmpl === 0) v = vmsa ? v | RMP_VMSA : v & ~RMP_VMSA;
      this.entries[i] = v >>> 0;
    }
    this.changed(s.pfn, s.count);
    return done(RMPADJUST_RESULT.SUCCESS);
  }

  /**
   * RMPADJUST with its RDX operand as the instruction takes it: [7:0] target VMPL, [15:8]
   * permission mask, [16] VMSA (reference/sev-snp-abi.md 7.4). [uncertain] higher bits are ignored.
   */
  rmpadjustRdx(
    callerVmpl: number,
    cpl: number,
    gpa: number,
    size2M: boolean,
    attributes: number,
  ): RmpInstructionResult {
    return this.rmpadjust(
      callerVmpl,
      cpl,
      gpa,
      size2M,
      attributes & 0xff,
      (attributes >>> 8) & 0xff,
      (attributes & 0x10000) !== 0,
    );
  }

  /**
   * RMPUPDATE as the hypervisor uses it for page-state changes: assign a page (or a 2 MiB region)
   * to the guest, or give it back to the hypervisor (shared). Assigning clears Validated, VMSA and
   * every VMPL permission, as the hardware does. Immutable entries are refused.
   */
  rmpupdate(gpa: number, size2M: boolean, assign: boolean): number {
    const s = this.span(gpa, size2M);
    if (s === null) return RMPUPDATE_RESULT.FAIL_INPUT;
    for (let i = s.pfn; i < s.pfn + s.count; i++) {
      const e = this.entries[i]!;
      if ((e & RMP_IMMUTABLE) !== 0) return RMPUPDATE_RESULT.FAIL_PERMISSION;
      // A 4 KiB update inside an assigned 2 MiB entry needs PSMASH first.
      if (!size2M && (e & RMP_PAGE_SIZE_2M) !== 0) return RMPUPDATE_RESULT.FAIL_OVERLAP;
    }
    if (size2M) {
      // A 2 MiB entry may not overlap individually assigned 4 KiB entries.
      for (let i = s.pfn; i < s.pfn + s.count; i++) {
        const e = this.entries[i]!;
        if ((e & RMP_ASSIGNED) !== 0 && (e & RMP_PAGE_SIZE_2M) === 0) {
          return RMPUPDATE_RESULT.FAIL_OVERLAP;
        }
      }
    }
    const value = assign ? RMP_ASSIGNED | (size2M ? RMP_PAGE_SIZE_2M : 0) : 0;
    this.entries.fill(value, s.pfn, s.pfn + s.count);
    this.changed(s.pfn, s.count);
    return RMPUPDATE_RESULT.SUCCESS;
  }

  /** PSMASH: split a 2 MiB entry into 512 4 KiB entries with the same state. */
  psmash(gpa: number): number {
    const s = this.span(gpa, true);
    if (s === null) return RMPUPDATE_RESULT.FAIL_INPUT;
    if ((this.entries[s.pfn]! & RMP_PAGE_SIZE_2M) === 0) return RMPUPDATE_RESULT.FAIL_INPUT;
    for (let i = s.pfn; i < s.pfn + s.count; i++)
      this.entries[i] = this.entries[i]! & ~RMP_PAGE_SIZE_2M;
    this.changed(s.pfn, s.count);
    return RMPUPDATE_RESULT.SUCCESS;
  }

  /** The firmware's own update (SNP_LAUNCH_UPDATE and friends): assigned, and as `opts` say. */
  firmwareAssign(pfn: number, opts: FirmwareEntry): void {
    this.checkPfn(pfn);
    let v = RMP_ASSIGNED;
    if (opts.validated) v |= RMP_VALIDATED;
    if (opts.vmsa === true) v |= RMP_VMSA;
    if (opts.immutable === true) v |= RMP_IMMUTABLE;
    const perms = opts.vmplPerms ?? [0, 0, 0];
    for (let vmpl = 1; vmpl <= 3; vmpl++) v = rmpWithVmplPerms(v, vmpl, perms[vmpl - 1]!);
    this.entries[pfn] = v >>> 0;
    this.changed(pfn, 1);
  }

  /** VMPL1-3 masks of a page, for tests and the inspector. */
  vmplPerms(pfn: number): [number, number, number] {
    const e = this.entry(pfn);
    return [rmpVmplPerms(e, 1), rmpVmplPerms(e, 2), rmpVmplPerms(e, 3)];
  }
}

// The shift rmpPermsShift computes is what check() inlines as 4 + 4 * vmpl.
if (rmpPermsShift(1) !== 8 || rmpPermsShift(3) !== 16 || RMP_VMPL_PERMS !== 0xfff00) {
  throw new Error('rmp.ts: the packed RMP entry layout changed; update check()');
}
