// x86-64 architectural constants the simulated CPU, the host and the SVSM share: MSR numbers,
// control-register and RFLAGS bits, page-table entry bits, exception vectors, #PF error-code
// bits and the SVM exit codes that a SEV-ES/SNP guest sees as #VC error codes.
//
// Sources: AMD64 APM vol. 2 (CR0/CR4/EFER/RFLAGS, chapter 5 paging, chapter 8 exceptions,
// appendix C "SVM Intercept Codes"), Linux arch/x86/include/asm/msr-index.h and
// arch/x86/include/uapi/asm/svm.h, reference/linux-snp-guest.md section 4 (#VC exits).

import { defineBits, field, flag, type BitFieldSpecs, type BitLayout } from './bits.js';
import { LayoutError } from './struct.js';

/**
 * Number masks (bits 31..0, never negative) for a register whose fields all lie in the low 32
 * bits, for the CPU's hot paths where 64-bit values are held as 32-bit halves.
 */
function lowMasks<F extends BitFieldSpecs>(
  layout: BitLayout<F>,
): { readonly [K in keyof F & string]: number } {
  const out: Record<string, number> = {};
  for (const [k, f] of Object.entries(layout.specs)) {
    if (f.lo + f.width > 32) {
      throw new LayoutError(`${layout.name}.${k} does not lie in the low 32 bits`);
    }
    const ones = f.width === 32 ? 0xffff_ffff : 2 ** f.width - 1;
    out[k] = (ones * 2 ** f.lo) >>> 0;
  }
  return Object.freeze(out) as { readonly [K in keyof F & string]: number };
}

// ---------------------------------------------------------------------------------------------
// General-purpose and segment registers

/** The 16 GPRs in x86 encoding order (ModRM reg/rm plus REX.R/B/X): index 0 is RAX, 4 is RSP. */
export const GPR_NAMES = [
  'rax',
  'rcx',
  'rdx',
  'rbx',
  'rsp',
  'rbp',
  'rsi',
  'rdi',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
] as const;
export type GprName = (typeof GPR_NAMES)[number];

/** Segment registers in the encoding order of MOV Sreg (ModRM reg field 0..5). */
export const SEGMENT_REGISTER_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;
export type SegmentRegisterName = (typeof SEGMENT_REGISTER_NAMES)[number];

// ---------------------------------------------------------------------------------------------
// MSRs (Linux msr-index.h names without the MSR_/IA32_/AMD64_ prefixes)

export const MSR = {
  TSC: 0x0000_0010,
  APIC_BASE: 0x0000_001b,
  SPEC_CTRL: 0x0000_0048,
  PRED_CMD: 0x0000_0049,
  /** AMD PATCH_LEVEL (Intel UCODE_REV). */
  PATCH_LEVEL: 0x0000_008b,
  MTRR_CAP: 0x0000_00fe,
  ARCH_CAPABILITIES: 0x0000_010a,
  SYSENTER_CS: 0x0000_0174,
  SYSENTER_ESP: 0x0000_0175,
  SYSENTER_EIP: 0x0000_0176,
  MCG_CAP: 0x0000_0179,
  MCG_STATUS: 0x0000_017a,
  /** Intel only; Linux reads it with the _safe accessors on AMD. */
  MISC_ENABLE: 0x0000_01a0,
  DEBUGCTL: 0x0000_01d9,
  PAT: 0x0000_0277,
  MTRR_DEF_TYPE: 0x0000_02ff,
  U_CET: 0x0000_06a0,
  S_CET: 0x0000_06a2,
  PL0_SSP: 0x0000_06a4,
  PL1_SSP: 0x0000_06a5,
  PL2_SSP: 0x0000_06a6,
  PL3_SSP: 0x0000_06a7,
  INT_SSP_TAB: 0x0000_06a8,
  TSC_DEADLINE: 0x0000_06e0,
  XSS: 0x0000_0da0,
  EFER: 0xc000_0080,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  /** SYSCALL flag mask (Linux MSR_SYSCALL_MASK). */
  SFMASK: 0xc000_0084,
  FS_BASE: 0xc000_0100,
  GS_BASE: 0xc000_0101,
  KERNEL_GS_BASE: 0xc000_0102,
  TSC_AUX: 0xc000_0103,
  SYSCFG: 0xc001_0010,
  HWCR: 0xc001_0015,
  VM_CR: 0xc001_0114,
  VM_HSAVE_PA: 0xc001_0117,
  VIRT_SPEC_CTRL: 0xc001_011f,
  /** GHCB GPA, or an MSR-protocol request/response (SNP ABI / GHCB spec). */
  GHCB: 0xc001_0130,
  /** Read-only guest view of the active SEV features (see SEV_STATUS in vmsa.ts). */
  SEV_STATUS: 0xc001_0131,
  RMP_BASE: 0xc001_0132,
  RMP_END: 0xc001_0133,
  LS_CFG: 0xc001_1020,
  DE_CFG: 0xc001_1029,
  /** Calling area address; answered by the guest itself if intercepted (linux-snp-guest.md 4). */
  SVSM_CAA: 0xc001_f000,
  KVM_WALL_CLOCK_NEW: 0x4b56_4d00,
  KVM_SYSTEM_TIME_NEW: 0x4b56_4d01,
} as const;

/**
 * x2APIC registers: MSR 0x800 + (xAPIC MMIO offset >> 4), range 0x800..0x8FF.
 * ISR, TMR and IRR are eight consecutive MSRs each, starting at the listed one.
 */
export const X2APIC_MSR = {
  FIRST: 0x800,
  LAST: 0x8ff,
  ID: 0x802,
  VERSION: 0x803,
  TPR: 0x808,
  PPR: 0x80a,
  EOI: 0x80b,
  LDR: 0x80d,
  SVR: 0x80f,
  ISR0: 0x810,
  TMR0: 0x818,
  IRR0: 0x820,
  ESR: 0x828,
  LVT_CMCI: 0x82f,
  ICR: 0x830,
  LVT_TIMER: 0x832,
  LVT_THERMAL: 0x833,
  LVT_PMC: 0x834,
  LVT_LINT0: 0x835,
  LVT_LINT1: 0x836,
  LVT_ERROR: 0x837,
  TIMER_INITIAL_COUNT: 0x838,
  TIMER_CURRENT_COUNT: 0x839,
  TIMER_DIVIDE_CONFIG: 0x83e,
  SELF_IPI: 0x83f,
} as const;

export function isX2apicMsr(msr: number): boolean {
  return msr >= X2APIC_MSR.FIRST && msr <= X2APIC_MSR.LAST;
}

/** The x2APIC MSR that mirrors an xAPIC MMIO register offset (0x000..0xFF0, 16-byte aligned). */
export function x2apicMsrForMmioOffset(offset: number): number {
  if (!Number.isInteger(offset) || offset < 0 || offset > 0xff0 || offset % 0x10 !== 0) {
    throw new RangeError(`0x${offset.toString(16)} is not an xAPIC register offset`);
  }
  return X2APIC_MSR.FIRST + (offset >> 4);
}

/** APIC_BASE MSR (0x1B). */
export const APIC_BASE = defineBits('APIC_BASE', 64, {
  BSP: flag(8, 'boot processor'),
  EXTD: flag(10, 'x2APIC mode'),
  EN: flag(11, 'APIC global enable'),
  BASE: field(12, 40, 'xAPIC MMIO base page'),
});

/** XCR0 state components. */
export const XCR0 = defineBits('XCR0', 64, {
  X87: flag(0),
  SSE: flag(1),
  YMM: flag(2),
  OPMASK: flag(5),
  ZMM_HI256: flag(6),
  HI16_ZMM: flag(7),
  PKRU: flag(9),
  CET_U: flag(11),
  CET_S: flag(12),
});

// ---------------------------------------------------------------------------------------------
// Control registers, EFER and RFLAGS (APM vol. 2, 3.1)

export const CR0 = defineBits('CR0', 64, {
  PE: flag(0, 'protection enable'),
  MP: flag(1, 'monitor coprocessor'),
  EM: flag(2, 'emulation'),
  TS: flag(3, 'task switched'),
  ET: flag(4, 'extension type, reads as 1'),
  NE: flag(5, 'numeric error'),
  WP: flag(16, 'write protect'),
  AM: flag(18, 'alignment mask'),
  NW: flag(29, 'not writethrough'),
  CD: flag(30, 'cache disable'),
  PG: flag(31, 'paging'),
});
export const CR0_MASK = lowMasks(CR0);

export const CR4 = defineBits('CR4', 64, {
  VME: flag(0),
  PVI: flag(1),
  TSD: flag(2),
  DE: flag(3),
  PSE: flag(4),
  PAE: flag(5),
  MCE: flag(6),
  PGE: flag(7),
  PCE: flag(8),
  OSFXSR: flag(9),
  OSXMMEXCPT: flag(10),
  UMIP: flag(11),
  LA57: flag(12),
  FSGSBASE: flag(16),
  PCIDE: flag(17),
  OSXSAVE: flag(18),
  SMEP: flag(20),
  SMAP: flag(21),
  PKE: flag(22),
  CET: flag(23),
});
export const CR4_MASK = lowMasks(CR4);

export const EFER = defineBits('EFER', 64, {
  SCE: flag(0, 'SYSCALL enable'),
  LME: flag(8, 'long mode enable'),
  LMA: flag(10, 'long mode active'),
  NXE: flag(11, 'no-execute enable'),
  SVME: flag(12, 'SVM enable; must be set in a runnable SEV-ES VMSA'),
  LMSLE: flag(13, 'long mode segment limit enable'),
  FFXSR: flag(14, 'fast FXSAVE/FXRSTOR'),
  TCE: flag(15, 'translation cache extension'),
  AUTOIBRS: flag(21, 'automatic IBRS'),
});
export const EFER_MASK = lowMasks(EFER);

export const RFLAGS = defineBits('RFLAGS', 64, {
  CF: flag(0),
  FIXED1: flag(1, 'reserved, always reads as 1'),
  PF: flag(2),
  AF: flag(4),
  ZF: flag(6),
  SF: flag(7),
  TF: flag(8),
  IF: flag(9),
  DF: flag(10),
  OF: flag(11),
  IOPL: field(12, 2),
  NT: flag(14),
  RF: flag(16),
  VM: flag(17),
  AC: flag(18),
  VIF: flag(19),
  VIP: flag(20),
  ID: flag(21),
});
export const RFLAGS_MASK = lowMasks(RFLAGS);
/** RFLAGS after reset and in a fresh VMSA: only the always-one bit 1. */
export const RFLAGS_RESET = 0x2;

// ---------------------------------------------------------------------------------------------
// Paging (APM vol. 2, 5.3/5.4: 4- and 5-level long-mode entries)

/**
 * A long-mode paging-structure entry. PS is PAT in a 4 KiB PTE; in a 2 MiB/1 GiB leaf the PAT
 * bit is bit 12 instead and the address starts at bit 21/30. Under SEV the C-bit (CPUID
 * Fn8000_001F EBX[5:0], 51 on Milan/Genoa) lies inside ADDR and must be masked out by the walker.
 */
export const PTE = defineBits('PTE', 64, {
  P: flag(0, 'present'),
  RW: flag(1, 'writable'),
  US: flag(2, 'user'),
  PWT: flag(3, 'page writethrough'),
  PCD: flag(4, 'page cache disable'),
  A: flag(5, 'accessed'),
  D: flag(6, 'dirty (leaf only)'),
  PS: flag(7, 'page size (PAT in a 4 KiB PTE)'),
  G: flag(8, 'global (leaf only)'),
  AVL: field(9, 3, 'available to software'),
  ADDR: field(12, 40, 'physical frame number'),
  AVL_HI: field(52, 7, 'available to software'),
  PK: field(59, 4, 'protection key'),
  NX: flag(63, 'no execute'),
});
/** Physical address bits 51:12 of an entry pointing at a table or a 4 KiB page. */
export const PTE_ADDR_MASK = 0x000f_ffff_ffff_f000n;
export const PTE_ADDR_MASK_2M = 0x000f_ffff_ffe0_0000n;
export const PTE_ADDR_MASK_1G = 0x000f_ffff_c000_0000n;

// ---------------------------------------------------------------------------------------------
// Exceptions (APM vol. 2, 8.2; AMD names, so vector 19 is #XF)

export const VECTOR = {
  DE: 0,
  DB: 1,
  NMI: 2,
  BP: 3,
  OF: 4,
  BR: 5,
  UD: 6,
  NM: 7,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
  MF: 16,
  AC: 17,
  MC: 18,
  XF: 19,
  CP: 21,
  HV: 28,
  VC: 29,
  SX: 30,
} as const;
export type VectorMnemonic = keyof typeof VECTOR;

const VECTOR_DESCRIPTIONS: Readonly<Record<VectorMnemonic, string>> = {
  DE: 'divide error',
  DB: 'debug',
  NMI: 'non-maskable interrupt',
  BP: 'breakpoint',
  OF: 'overflow',
  BR: 'bound range',
  UD: 'invalid opcode',
  NM: 'device not available',
  DF: 'double fault',
  TS: 'invalid TSS',
  NP: 'segment not present',
  SS: 'stack fault',
  GP: 'general protection',
  PF: 'page fault',
  MF: 'x87 floating-point',
  AC: 'alignment check',
  MC: 'machine check',
  XF: 'SIMD floating-point',
  CP: 'control protection',
  HV: 'hypervisor injection',
  VC: 'VMM communication',
  SX: 'security',
};

const MNEMONIC_BY_VECTOR: ReadonlyMap<number, VectorMnemonic> = new Map(
  (Object.entries(VECTOR) as [VectorMnemonic, number][]).map(([k, v]) => [v, k]),
);

/** Vectors whose delivery pushes an error code (#DF's is always 0). */
const ERROR_CODE_VECTORS: ReadonlySet<number> = new Set([
  VECTOR.DF,
  VECTOR.TS,
  VECTOR.NP,
  VECTOR.SS,
  VECTOR.GP,
  VECTOR.PF,
  VECTOR.AC,
  VECTOR.CP,
  VECTOR.VC,
  VECTOR.SX,
]);

function checkVector(n: number): void {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new RangeError(`${n} is not a vector`);
}

/** "#PF", "NMI", "reserved vector 0x9" or, from 32 up, "vector 0x20". */
export function vectorName(n: number): string {
  checkVector(n);
  const m = MNEMONIC_BY_VECTOR.get(n);
  if (m !== undefined) return m === 'NMI' ? m : `#${m}`;
  return `${n < 32 ? 'reserved vector' : 'vector'} 0x${n.toString(16)}`;
}

/** "page fault" etc.; "external interrupt or INTn" from 32 up. */
export function vectorDescription(n: number): string {
  checkVector(n);
  const m = MNEMONIC_BY_VECTOR.get(n);
  if (m !== undefined) return VECTOR_DESCRIPTIONS[m];
  return n < 32 ? 'reserved' : 'external interrupt or INTn';
}

/** Whether exception delivery pushes an error code (only for exceptions, not INTn). */
export function exceptionHasErrorCode(n: number): boolean {
  checkVector(n);
  return ERROR_CODE_VECTORS.has(n);
}

/**
 * #PF error code (APM vol. 2, 8.4.2). Bits 32..36 appear only in the nested-page-fault
 * EXITINFO1 (as Linux KVM's PFERR_GUEST_*), which has the same low bits.
 */
export const PF_ERROR = defineBits('PF_ERROR', 64, {
  P: flag(0, 'protection violation (0: not present)'),
  W: flag(1, 'write'),
  U: flag(2, 'user-mode access'),
  RSVD: flag(3, 'reserved bit set in an entry'),
  ID: flag(4, 'instruction fetch'),
  PK: flag(5, 'protection key'),
  SS: flag(6, 'shadow stack'),
  RMP: flag(31, 'RMP check failed'),
  FINAL: flag(32, 'NPF: on the final guest physical address'),
  PAGE: flag(33, 'NPF: during the guest page-table walk'),
  ENC: flag(34, 'NPF: encrypted (C-bit) access'),
  SIZEM: flag(35, 'NPF: page size mismatch with the RMP'),
  VMPL: flag(36, 'NPF: VMPL permission check failed'),
});

// ---------------------------------------------------------------------------------------------
// SVM exit codes (APM vol. 2, appendix C; Linux uapi/asm/svm.h). Under SEV-ES/SNP a
// non-automatic exit becomes #VC with the exit code as error code (linux-snp-guest.md 4).

export const SVM_EXIT = {
  READ_CR0: 0x000,
  WRITE_CR0: 0x010,
  READ_DR0: 0x020,
  READ_DR7: 0x027,
  WRITE_DR0: 0x030,
  WRITE_DR7: 0x037,
  /** Exception intercepts: EXCP_BASE + vector. */
  EXCP_BASE: 0x040,
  /** #AC intercepted (EXCP_BASE + 17), a #VC error code under SEV-ES. */
  EXCP_AC: 0x051,
  EXCP_LAST: 0x05f,
  INTR: 0x060,
  NMI: 0x061,
  SMI: 0x062,
  INIT: 0x063,
  VINTR: 0x064,
  CR0_SEL_WRITE: 0x065,
  IDTR_READ: 0x066,
  GDTR_READ: 0x067,
  LDTR_READ: 0x068,
  TR_READ: 0x069,
  IDTR_WRITE: 0x06a,
  GDTR_WRITE: 0x06b,
  LDTR_WRITE: 0x06c,
  TR_WRITE: 0x06d,
  RDTSC: 0x06e,
  RDPMC: 0x06f,
  PUSHF: 0x070,
  POPF: 0x071,
  CPUID: 0x072,
  RSM: 0x073,
  IRET: 0x074,
  SWINT: 0x075,
  INVD: 0x076,
  PAUSE: 0x077,
  HLT: 0x078,
  INVLPG: 0x079,
  INVLPGA: 0x07a,
  IOIO: 0x07b,
  MSR: 0x07c,
  TASK_SWITCH: 0x07d,
  FERR_FREEZE: 0x07e,
  SHUTDOWN: 0x07f,
  VMRUN: 0x080,
  VMMCALL: 0x081,
  VMLOAD: 0x082,
  VMSAVE: 0x083,
  STGI: 0x084,
  CLGI: 0x085,
  SKINIT: 0x086,
  RDTSCP: 0x087,
  ICEBP: 0x088,
  WBINVD: 0x089,
  MONITOR: 0x08a,
  MWAIT: 0x08b,
  MWAIT_CONDITIONAL: 0x08c,
  XSETBV: 0x08d,
  RDPRU: 0x08e,
  EFER_WRITE_TRAP: 0x08f,
  /** CRn write traps are CR0_WRITE_TRAP + n (SEV-ES automatic exits). */
  CR0_WRITE_TRAP: 0x090,
  CR4_WRITE_TRAP: 0x094,
  CR8_WRITE_TRAP: 0x098,
  INVPCID: 0x0a2,
  BUSLOCK: 0x0a5,
  IDLE_HLT: 0x0a6,
  /** Nested page fault; as a #VC error code, an MMIO access (reserved-bit NPT entry). */
  NPF: 0x400,
  AVIC_INCOMPLETE_IPI: 0x401,
  AVIC_NOACCEL: 0x402,
  VMGEXIT: 0x403,
  /**
   * Access to a private (C=1) page whose RMP entry is not validated: #VC only, fatal to Linux.
   * The name is ours; AMD publishes the code but Linux and coconut have no constant for it.
   */
  PAGE_NOT_VALIDATED: 0x404,
} as const;
export type SvmExitName = keyof typeof SVM_EXIT;

/** EXITCODE values of a failed VMRUN: -1..-4 as unsigned 64-bit (APM table C-1). */
export const SVM_EXIT_ERROR = {
  VMEXIT_INVALID: 0xffff_ffff_ffff_ffffn,
  /** The BUSY bit (VINTR_CTRL bit 63) was set in the VMSA. */
  VMEXIT_BUSY: 0xffff_ffff_ffff_fffen,
  VMEXIT_IDLE_REQUIRED: 0xffff_ffff_ffff_fffdn,
  VMEXIT_INVALID_PMC: 0xffff_ffff_ffff_fffcn,
} as const;

const SVM_EXIT_NAME_BY_CODE: ReadonlyMap<number, SvmExitName> = new Map(
  (Object.entries(SVM_EXIT) as [SvmExitName, number][]).map(([k, v]) => [v, k]),
);

/** "CPUID", "EXCP_PF", "WRITE_CR3", or the hex code when unnamed; for logs. */
export function svmExitName(code: number): string {
  const named = SVM_EXIT_NAME_BY_CODE.get(code);
  if (named !== undefined && named !== 'EXCP_BASE' && named !== 'EXCP_LAST') return named;
  if (code >= SVM_EXIT.EXCP_BASE && code <= SVM_EXIT.EXCP_LAST) {
    const m = MNEMONIC_BY_VECTOR.get(code - SVM_EXIT.EXCP_BASE);
    return m === undefined ? `EXCP_${code - SVM_EXIT.EXCP_BASE}` : `EXCP_${m}`;
  }
  if (code >= SVM_EXIT.READ_CR0 && code < SVM_EXIT.WRITE_CR0) return `READ_CR${code}`;
  if (code >= SVM_EXIT.WRITE_CR0 && code < SVM_EXIT.READ_DR0) return `WRITE_CR${code - 0x10}`;
  if (code >= SVM_EXIT.READ_DR0 && code < SVM_EXIT.READ_DR0 + 0x10) return `READ_DR${code - 0x20}`;
  if (code >= SVM_EXIT.WRITE_DR0 && code < SVM_EXIT.WRITE_DR0 + 0x10) {
    return `WRITE_DR${code - 0x30}`;
  }
  if (code >= SVM_EXIT.CR0_WRITE_TRAP && code < SVM_EXIT.CR0_WRITE_TRAP + 0x10) {
    return `CR${code - SVM_EXIT.CR0_WRITE_TRAP}_WRITE_TRAP`;
  }
  return `0x${code.toString(16)}`;
}
