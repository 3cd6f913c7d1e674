// The reverse map (RMP) and the instructions and records around it: our packed per-page RMP
// entry, VMPL permission bits, PVALIDATE and RMPADJUST operands and results, nested-page-fault
// error-code bits, and the PAGE_INFO record the launch digest is chained over.
//
// Spec: AMD APM vol. 2 and vol. 3 (RMP, PVALIDATE, RMPADJUST) and the SEV-SNP firmware ABI
// (PAGE_INFO), restated in /work/shared/reference/sev-snp-abi.md §1.1 and §7; NPF bits from
// Linux arch/x86/include/asm/kvm_host.h PFERR_*.

import { defineStruct } from './struct.js';
import { defineBits, field, flag } from './bits.js';

// ---------------------------------------------------------------------------------------------
// VMPL permissions

/**
 * Per-VMPL permission mask bits (APM "VMPL permission masks"). The same 4-bit encoding appears in
 * RMPADJUST's RDX[15:8], in PAGE_INFO's VMPLn_PERMS bytes and in our packed RMP entry.
 */
export const VMPL_PERM = {
  READ: 0x1,
  WRITE: 0x2,
  /** Execute at CPL3. */
  EXEC_USER: 0x4,
  /** Execute at CPL0-2. */
  EXEC_SUPERVISOR: 0x8,
} as const;

export const VMPL_PERM_ALL = 0xf;
export const VMPL_PERM_NONE = 0x0;

/** Number of VMPLs (0 most privileged ... 3 least). */
export const VMPL_COUNT = 4;

// ---------------------------------------------------------------------------------------------
// Packed RMP entry

/**
 * Our own packed RMP entry: one uint32 per 4 KiB page, meant for a Uint32Array indexed by page
 * frame. The hardware's 16-byte entry format is not architectural; this keeps what the checks of
 * APM "RMP checks" read:
 *
 *   bit  0      assigned    page belongs to the guest (hardware: Assigned with the guest's ASID)
 *   bit  1      pageSize2M  part of a 2 MiB RMP entry (every 4 KiB slot of it carries the bit)
 *   bit  2      immutable   only firmware may change the entry (firmware / launch pages)
 *   bit  3      validated   set and cleared by PVALIDATE (and by launch for measured pages)
 *   bit  4      vmsa        page is a VMSA (RMPADJUST with VMSA=1, or launch VMSA pages)
 *   bits 8-11   vmpl1Perms  VMPL_PERM mask for VMPL1
 *   bits 12-15  vmpl2Perms  VMPL_PERM mask for VMPL2
 *   bits 16-19  vmpl3Perms  VMPL_PERM mask for VMPL3
 *
 * VMPL0 always has full access, so it has no mask. The ASID and GPA an architectural entry holds
 * are the business of the array's owner (which guest the array belongs to, how it is indexed).
 * 0 is a hypervisor-owned (unassigned) page.
 */
export const RMP_ENTRY = defineBits('RMP_ENTRY', 32, {
  assigned: flag(0),
  pageSize2M: flag(1),
  immutable: flag(2),
  validated: flag(3),
  vmsa: flag(4),
  vmpl1Perms: field(8, 4, 'VMPL_PERM'),
  vmpl2Perms: field(12, 4, 'VMPL_PERM'),
  vmpl3Perms: field(16, 4, 'VMPL_PERM'),
});

// Number masks for hot paths, derived from the declaration above so there is one source.
const maskOf = (key: keyof typeof RMP_ENTRY.specs): number => {
  const f = RMP_ENTRY.specs[key];
  return ((1 << f.width) - 1) << f.lo;
};

export const RMP_ASSIGNED = maskOf('assigned');
export const RMP_PAGE_SIZE_2M = maskOf('pageSize2M');
export const RMP_IMMUTABLE = maskOf('immutable');
export const RMP_VALIDATED = maskOf('validated');
export const RMP_VMSA = maskOf('vmsa');
/** Mask of all VMPL1-3 permission bits. */
export const RMP_VMPL_PERMS = maskOf('vmpl1Perms') | maskOf('vmpl2Perms') | maskOf('vmpl3Perms');

const PERM_FIELDS = ['vmpl1Perms', 'vmpl2Perms', 'vmpl3Perms'] as const;

/** Bit position of VMPL `vmpl`'s permission mask (1, 2 or 3) in a packed entry. */
export function rmpPermsShift(vmpl: number): number {
  if (vmpl !== 1 && vmpl !== 2 && vmpl !== 3) {
    throw new RangeError(`VMPL${vmpl} has no RMP permission mask`);
  }
  return RMP_ENTRY.specs[PERM_FIELDS[vmpl - 1]!].lo;
}

/** The permission mask VMPL `vmpl` has on the page (VMPL0: always all). */
export function rmpVmplPerms(entry: number, vmpl: number): number {
  if (vmpl === 0) return VMPL_PERM_ALL;
  return (entry >>> rmpPermsShift(vmpl)) & VMPL_PERM_ALL;
}

/** The entry with VMPL `vmpl`'s (1-3) permission mask replaced. */
export function rmpWithVmplPerms(entry: number, vmpl: number, perms: number): number {
  if (!Number.isInteger(perms) || perms < 0 || perms > VMPL_PERM_ALL) {
    throw new RangeError(`permission mask ${perms} is not 4 bits`);
  }
  const shift = rmpPermsShift(vmpl);
  return ((entry & ~(VMPL_PERM_ALL << shift)) | (perms << shift)) >>> 0;
}

/** "assigned|validated|vmpl1Perms=0xf", for logs. */
export function describeRmpEntry(entry: number): string {
  return RMP_ENTRY.describe(BigInt(entry >>> 0));
}

/** Page-size operand of PVALIDATE, RMPADJUST and PSC entries. */
export const RMP_PAGE_SIZE = { SIZE_4K: 0, SIZE_2M: 1 } as const;

// ---------------------------------------------------------------------------------------------
// PVALIDATE (F2 0F 01 FF)

export const PVALIDATE_OPCODE: readonly number[] = [0xf2, 0x0f, 0x01, 0xff];

// APM vol. 3 "PVALIDATE": RAX = guest virtual address of the page.
export const PVALIDATE_ECX = defineBits('PVALIDATE_ECX', 32, {
  pageSize: flag(0, 'RMP_PAGE_SIZE: 0 = 4 KiB, 1 = 2 MiB'),
});

export const PVALIDATE_EDX = defineBits('PVALIDATE_EDX', 32, {
  validate: flag(0, '1 = validate, 0 = rescind'),
});

/**
 * EAX after PVALIDATE. SUCCESS with rFLAGS.CF = 1 means "no change": the Validated bit already
 * had the requested value (Linux's software code 255 NOUPDATE, coconut's FAIL_UNCHANGED 0x10).
 */
export const PVALIDATE_RESULT = {
  SUCCESS: 0,
  FAIL_INPUT: 1,
  FAIL_SIZEMISMATCH: 6,
} as const;

// ---------------------------------------------------------------------------------------------
// RMPADJUST (F3 0F 01 FE)

export const RMPADJUST_OPCODE: readonly number[] = [0xf3, 0x0f, 0x01, 0xfe];

// APM vol. 3 "RMPADJUST": RAX = guest virtual address, RCX = page size, RDX = attributes.
export const RMPADJUST_RCX = defineBits('RMPADJUST_RCX', 64, {
  pageSize: flag(0, 'RMP_PAGE_SIZE: 0 = 4 KiB, 1 = 2 MiB'),
});

export const RMPADJUST_ATTRS = defineBits('RMPADJUST_RDX', 64, {
  targetVmpl: field(0, 8, 'must be numerically greater than the current VMPL'),
  perms: field(8, 8, 'VMPL_PERM mask: bit 8 R, 9 W, 10 Xu, 11 Xs'),
  vmsa: flag(16, 'make the page a VMSA'),
});

/** EAX after RMPADJUST. */
export const RMPADJUST_RESULT = {
  SUCCESS: 0,
  FAIL_INPUT: 1,
  FAIL_PERMISSION: 2,
  FAIL_SIZEMISMATCH: 6,
} as const;

// ---------------------------------------------------------------------------------------------
// Nested page fault error code (EXITINFO1 of #NPF; also the host #PF with the RMP bit)

export const NPF_ERROR_CODE = defineBits('NPF_ERROR_CODE', 64, {
  present: flag(0, 'P'),
  write: flag(1, 'W'),
  user: flag(2, 'U'),
  reservedBit: flag(3, 'RSV'),
  fetch: flag(4, 'ID: instruction fetch'),
  rmp: flag(31, 'RMP check failed'),
  guestFinal: flag(32, 'fault on the final guest physical address'),
  guestPage: flag(33, 'fault on a guest page-table access'),
  enc: flag(34, 'ENC: the access was private (C-bit 1)'),
  sizeMismatch: flag(35, 'SIZEM: NPT mapping larger than the RMP entry'),
  vmpl: flag(36, 'VMPL permission violation'),
});

// ---------------------------------------------------------------------------------------------
// PAGE_INFO (launch digest record)

// SNP ABI, table "PAGE_INFO"; bytes 0x64..0x67 in the order of coconut igvmmeasure and the
// SNP_LAUNCH_UPDATE command buffer (reserved, VMPL1, VMPL2, VMPL3). virtee/sev and
// sev-snp-measure write them reversed; the orders agree while all perms are 0.
export const PAGE_INFO = defineStruct('PAGE_INFO', 0x70, {
  digestCur: { offset: 0x00, type: 'bytes', size: 48, doc: 'DIGEST_CUR' },
  contents: { offset: 0x30, type: 'bytes', size: 48, doc: 'CONTENTS' },
  length: { offset: 0x60, type: 'u16', doc: 'LENGTH = 0x70' },
  pageType: { offset: 0x62, type: 'u8', doc: 'PAGE_TYPE' },
  imiPage: { offset: 0x63, type: 'u8', doc: 'IMI_PAGE (bit 0)' },
  reserved: { offset: 0x64, type: 'u8' },
  vmpl1Perms: { offset: 0x65, type: 'u8', doc: 'VMPL1_PERMS' },
  vmpl2Perms: { offset: 0x66, type: 'u8', doc: 'VMPL2_PERMS' },
  vmpl3Perms: { offset: 0x67, type: 'u8', doc: 'VMPL3_PERMS' },
  gpa: { offset: 0x68, type: 'u64', doc: 'GPA' },
});

export const PAGE_INFO_LENGTH = 0x70;

/** SNP_LAUNCH_UPDATE page types. */
export const PAGE_TYPE = {
  NORMAL: 1,
  VMSA: 2,
  ZERO: 3,
  UNMEASURED: 4,
  SECRETS: 5,
  CPUID: 6,
} as const;
export type PageType = (typeof PAGE_TYPE)[keyof typeof PAGE_TYPE];

/** The GPA measured for VMSA pages: -1 page-aligned with bits above 51 cleared. */
export const PAGE_INFO_VMSA_GPA = 0xffff_ffff_f000;
