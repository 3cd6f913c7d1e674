// The VMSA: a guest vCPU's encrypted register state, one 4 KiB page (AMD64 APM vol. 2, Table B-4
// "VMSA Layout, State Save Area for SEV-ES"; reference/sev-snp-abi.md section 5, which checks it
// against Linux `struct sev_es_save_area` and coconut `cpuarch/src/vmsa.rs`). Also the
// SEV_FEATURES word at 0x3B0, its guest view in MSR SEV_STATUS, the EVENTINJ and VINTR_CTRL
// formats, and GPR offsets for the CPU's hot path.
//
// Fields marked "APM only" are in APM rev 3.44 but reserved in Linux and coconut (performance
// counter virtualization, SPEC_CTRL, Secure AVIC, guest intercept control, AVX-512 state).

import { defineBits, field, flag } from './bits.js';
import { defineStruct, embed, FieldRangeError } from './struct.js';
import { GPR_NAMES, SEGMENT_REGISTER_NAMES } from './x86.js';

const u8 = (offset: number) => ({ offset, type: 'u8' }) as const;
const u16 = (offset: number) => ({ offset, type: 'u16' }) as const;
const u32 = (offset: number, doc?: string) => ({ offset, type: 'u32', doc }) as const;
const u64 = (offset: number, doc?: string) => ({ offset, type: 'u64', doc }) as const;
const bytes = (offset: number, size: number, doc?: string) =>
  ({ offset, type: 'bytes', size, doc }) as const;

/** A segment register as the VMSA (and VMCB) stores it. */
export const SEGMENT = defineStruct('SEGMENT', 0x10, {
  selector: u16(0x0),
  attrib: u16(0x2),
  limit: u32(0x4),
  base: u64(0x8),
});

export const VMSA_SIZE = 0x1000;

export const VMSA = defineStruct('VMSA', VMSA_SIZE, {
  ...embed('es', 0x000, SEGMENT),
  ...embed('cs', 0x010, SEGMENT),
  ...embed('ss', 0x020, SEGMENT),
  ...embed('ds', 0x030, SEGMENT),
  ...embed('fs', 0x040, SEGMENT),
  ...embed('gs', 0x050, SEGMENT),
  ...embed('gdtr', 0x060, SEGMENT),
  ...embed('ldtr', 0x070, SEGMENT),
  ...embed('idtr', 0x080, SEGMENT),
  ...embed('tr', 0x090, SEGMENT),
  pl0Ssp: u64(0x0a0),
  pl1Ssp: u64(0x0a8),
  pl2Ssp: u64(0x0b0),
  pl3Ssp: u64(0x0b8),
  uCet: u64(0x0c0),
  reserved0c8: u16(0x0c8),
  vmpl: u8(0x0ca),
  cpl: u8(0x0cb),
  reserved0cc: u32(0x0cc),
  efer: u64(0x0d0),
  reserved0d8: bytes(0x0d8, 0x8),
  perfCtl0: u64(0x0e0, 'APM only'),
  perfCtr0: u64(0x0e8, 'APM only'),
  perfCtl1: u64(0x0f0, 'APM only'),
  perfCtr1: u64(0x0f8, 'APM only'),
  perfCtl2: u64(0x100, 'APM only'),
  perfCtr2: u64(0x108, 'APM only'),
  perfCtl3: u64(0x110, 'APM only'),
  perfCtr3: u64(0x118, 'APM only'),
  perfCtl4: u64(0x120, 'APM only'),
  perfCtr4: u64(0x128, 'APM only'),
  perfCtl5: u64(0x130, 'APM only'),
  perfCtr5: u64(0x138, 'APM only'),
  xss: u64(0x140),
  cr4: u64(0x148),
  cr3: u64(0x150),
  cr0: u64(0x158),
  dr7: u64(0x160),
  dr6: u64(0x168),
  rflags: u64(0x170),
  rip: u64(0x178),
  dr0: u64(0x180),
  dr1: u64(0x188),
  dr2: u64(0x190),
  dr3: u64(0x198),
  dr0AddrMask: u64(0x1a0),
  dr1AddrMask: u64(0x1a8),
  dr2AddrMask: u64(0x1b0),
  dr3AddrMask: u64(0x1b8),
  instrRetiredCtr: u64(0x1c0, 'APM only'),
  perfCtrGlobalSts: u64(0x1c8, 'APM only'),
  perfCtrGlobalCtl: u32(0x1d0, 'APM only'),
  reserved1d4: u32(0x1d4),
  rsp: u64(0x1d8),
  sCet: u64(0x1e0),
  ssp: u64(0x1e8),
  isstAddr: u64(0x1f0),
  rax: u64(0x1f8),
  star: u64(0x200),
  lstar: u64(0x208),
  cstar: u64(0x210),
  sfmask: u64(0x218),
  kernelGsBase: u64(0x220),
  sysenterCs: u64(0x228),
  sysenterEsp: u64(0x230),
  sysenterEip: u64(0x238),
  cr2: u64(0x240),
  reserved248: bytes(0x248, 0x20),
  gPat: u64(0x268),
  dbgctl: u64(0x270),
  brFrom: u64(0x278),
  brTo: u64(0x280),
  lastExcpFrom: u64(0x288),
  lastExcpTo: u64(0x290),
  dbgExtnCfg: u64(0x298, 'APM only'),
  // APM prints "72 bytes" for 2A0h-2DFh; the range holds 64.
  reserved2a0: bytes(0x2a0, 0x40),
  specCtrl: u64(0x2e0, 'APM only'),
  pkru: u32(0x2e8),
  tscAux: u32(0x2ec),
  guestTscScale: u64(0x2f0),
  guestTscOffset: u64(0x2f8),
  regProtNonce: u64(0x300),
  rcx: u64(0x308),
  rdx: u64(0x310),
  rbx: u64(0x318),
  secureAvicCtl: u64(0x320, 'APM only'),
  rbp: u64(0x328),
  rsi: u64(0x330),
  rdi: u64(0x338),
  r8: u64(0x340),
  r9: u64(0x348),
  r10: u64(0x350),
  r11: u64(0x358),
  r12: u64(0x360),
  r13: u64(0x368),
  r14: u64(0x370),
  r15: u64(0x378),
  reserved380: bytes(0x380, 0x10),
  guestExitInfo1: u64(0x390),
  guestExitInfo2: u64(0x398),
  guestExitIntInfo: u64(0x3a0, 'EVENT_INJ format'),
  guestNrip: u64(0x3a8),
  sevFeatures: u64(0x3b0, 'SEV_FEATURES'),
  vintrCtrl: u64(0x3b8, 'VINTR_CTRL'),
  guestExitCode: u64(0x3c0),
  virtualTom: u64(0x3c8),
  tlbId: u64(0x3d0),
  pcpuId: u64(0x3d8),
  eventInj: u64(0x3e0, 'EVENT_INJ'),
  xcr0: u64(0x3e8),
  reserved3f0: bytes(0x3f0, 0x10),
  x87Dp: u64(0x400),
  mxcsr: u32(0x408),
  x87Ftw: u16(0x40c),
  x87Fsw: u16(0x40e),
  x87Fcw: u16(0x410),
  x87Fop: u16(0x412),
  x87Ds: u16(0x414),
  x87Cs: u16(0x416),
  x87Rip: u64(0x418),
  fpregX87: bytes(0x420, 80, 'ST0..ST7 in stack order, split: see VMSA_X87_SIGN_EXPONENT'),
  fpregXmm: bytes(0x470, 256, 'XMM0..XMM15'),
  fpregYmm: bytes(0x570, 256, 'upper halves of YMM0..YMM15'),
  lbrStack: bytes(0x670, 256, 'LBR_STACK_FROM/TO'),
  lbrSelect: u64(0x770),
  ibsFetchCtl: u64(0x778),
  ibsFetchLinaddr: u64(0x780),
  ibsOpCtl: u64(0x788),
  ibsOpRip: u64(0x790),
  ibsOpData: u64(0x798),
  ibsOpData2: u64(0x7a0),
  ibsOpData3: u64(0x7a8),
  ibsDcLinaddr: u64(0x7b0),
  bpIbstgtRip: u64(0x7b8),
  icIbsExtdCtl: u64(0x7c0),
  reserved7c8: bytes(0x7c8, 0x138),
  interceptVec0: u32(0x900, 'APM only'),
  interceptVec1: u32(0x904, 'APM only'),
  interceptVec2: u32(0x908, 'APM only'),
  interceptVec3: u32(0x90c, 'APM only'),
  interceptVec4: u32(0x910, 'APM only'),
  interceptVec5: u32(0x914, 'APM only'),
  interceptVec6: u32(0x918, 'APM only'),
  interceptVec7: u32(0x91c, 'APM only'),
  interceptMsrVec0: u64(0x920, 'APM only'),
  interceptMsrVec1: u64(0x928, 'APM only'),
  interceptMsrVec2: u64(0x930, 'APM only'),
  interceptMsrVec3: u64(0x938, 'APM only'),
  reserved940: bytes(0x940, 0x40),
  fpregK: bytes(0x980, 64, 'APM only: K0..K7'),
  fpregZmmHi: bytes(0x9c0, 512, 'APM only: upper halves of ZMM0..ZMM15'),
  fpregHiZmm: bytes(0xbc0, 1024, 'APM only: ZMM16..ZMM31'),
  reservedFc0: bytes(0xfc0, 0x40),
});

export type VmsaField = keyof typeof VMSA.specs & string;

/**
 * VMSA byte offset of GPR n, n in x86 encoding order (0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP,
 * 6 RSI, 7 RDI, 8..15 R8..R15). Taken from the layout, so it cannot drift from it.
 */
export const VMSA_GPR_OFFSETS: readonly number[] = Object.freeze(
  GPR_NAMES.map((name) => VMSA.offset(name)),
);

/** VMSA offset of segment register n's record, n in Sreg encoding order (ES CS SS DS FS GS). */
export const VMSA_SEGMENT_OFFSETS: readonly number[] = Object.freeze(
  SEGMENT_REGISTER_NAMES.map((name) => VMSA.offset(`${name}.selector`)),
);

/**
 * Inside `fpregX87`: ST(i)'s 64-bit significand at VMSA_X87_SIGNIFICAND + 8i and its 16-bit sign
 * and exponent at VMSA_X87_SIGN_EXPONENT + 2i, ST(0) first. APM Table B-4 names only the 80-byte
 * field; the split (not FXSAVE's ten-byte records) is the layout the processor uses, as Linux KVM
 * found on hardware (arch/x86/kvm/svm/sev.c `sev_es_sync_vmsa`: "an 8*8 bytes area with bytes 0-7,
 * and an 8*2 bytes area with bytes 8-9 of each register").
 */
export const VMSA_X87_SIGNIFICAND = 0x00;
export const VMSA_X87_SIGN_EXPONENT = 0x40;

/**
 * The x87/SSE fields of a VMSA built from scratch for a vCPU to start in: the processor's INIT
 * state (APM vol. 2, "Processor Initialization State"), as Linux (`AP_INIT_MXCSR_DEFAULT`,
 * `AP_INIT_X87_FCW_DEFAULT`, `AP_INIT_X87_FTW_DEFAULT` in `wakeup_cpu_via_vmgexit`) and COCONUT
 * (`init_guest_vmsa`, `init_svsm_vmsa`) write them. Left zero, MXCSR would unmask every SIMD
 * exception. [uncertain] 0x5555 is the full tag word of the INIT table ("zero" for every
 * register); read as the abridged tag X87_FTW holds, it marks registers 0, 2, 4 and 6 valid
 * (holding +0.0). Software executes FNINIT before it uses the x87, so neither reading reaches it.
 */
export const VMSA_INIT_FP = { mxcsr: 0x1f80, x87Fcw: 0x0040, x87Ftw: 0x5555 } as const;

/**
 * SEV_FEATURES (VMSA 0x3B0; APM Table B-4). Bits 11, 13 and 16 may only be used if the
 * hypervisor's allowed-SEV-features mask permits them; bits 17..20 and 22..63 are reserved.
 */
export const SEV_FEATURES = defineBits('SEV_FEATURES', 64, {
  snpActive: flag(0),
  vTom: flag(1),
  reflectVc: flag(2),
  restrictedInjection: flag(3),
  alternateInjection: flag(4),
  debugSwap: flag(5, 'APM: DebugVirtualization'),
  preventHostIbs: flag(6),
  btbIsolation: flag(7),
  vmplSss: flag(8),
  secureTsc: flag(9),
  vmgexitParameter: flag(10),
  pmcVirtualization: flag(11),
  ibsVirtualization: flag(12),
  guestInterceptCtl: flag(13),
  vmsaRegProt: flag(14),
  smtProtection: flag(15),
  secureAvic: flag(16),
  ibpbOnEntry: flag(21),
});

/**
 * MSR SEV_STATUS (0xC0010131): SEV, SEV-ES and SNP enabled in bits 0..2, then SEV_FEATURES bit
 * n at bit n + 2 (Linux msr-index.h MSR_AMD64_SNP_*, coconut cpuarch/src/sev_status.rs).
 */
export const SEV_STATUS = defineBits('SEV_STATUS', 64, {
  sevEnabled: flag(0),
  sevEsEnabled: flag(1),
  snpEnabled: flag(2, 'SEV_FEATURES.snpActive'),
  vTom: flag(3),
  reflectVc: flag(4),
  restrictedInjection: flag(5),
  alternateInjection: flag(6),
  debugSwap: flag(7),
  preventHostIbs: flag(8),
  btbIsolation: flag(9),
  vmplSss: flag(10),
  secureTsc: flag(11),
  vmgexitParameter: flag(12),
  pmcVirtualization: flag(13),
  ibsVirtualization: flag(14),
  guestInterceptCtl: flag(15),
  vmsaRegProt: flag(16),
  smtProtection: flag(17),
  secureAvic: flag(18),
  ibpbOnEntry: flag(23),
});

/** The bits shared by every SEV-ES guest's SEV_STATUS: SEV and SEV-ES enabled. */
const SEV_STATUS_SEV_ES = 0b11n;

/**
 * The SEV_STATUS a guest reads for a VMSA's SEV_FEATURES. Reserved feature bits are refused:
 * VMRUN rejects such a VMSA, so reaching here with one is a simulator bug.
 */
export function sevStatusFromFeatures(sevFeatures: bigint): bigint {
  const reserved = SEV_FEATURES.reservedBits(sevFeatures);
  if (reserved !== 0n) {
    throw new FieldRangeError(`SEV_FEATURES sets reserved bits 0x${reserved.toString(16)}`);
  }
  return (sevFeatures << 2n) | SEV_STATUS_SEV_ES;
}

/** SEV_FEATURES from SEV_STATUS (what Linux writes into an AP's VMSA: SEV_STATUS >> 2). */
export function sevFeaturesFromStatus(sevStatus: bigint): bigint {
  const reserved = SEV_STATUS.reservedBits(sevStatus);
  if (reserved !== 0n) {
    throw new FieldRangeError(`SEV_STATUS sets reserved bits 0x${reserved.toString(16)}`);
  }
  return sevStatus >> 2n;
}

/** EVENTINJ (VMSA 0x3E0, same as VMCB 0xA8) and GUEST_EXITINTINFO (0x3A0). */
export const EVENT_INJ = defineBits('EVENT_INJ', 64, {
  vector: field(0, 8),
  type: field(8, 3, 'EVENT_TYPE'),
  errorCodeValid: flag(11),
  valid: flag(31),
  errorCode: field(32, 32),
});

/** EVENT_INJ.type values (APM "Guest Exception or Interrupt Types"). */
export const EVENT_TYPE = {
  INTR: 0,
  NMI: 2,
  EXCEPTION: 3,
  SOFTWARE_INT: 4,
} as const;

/** VINTR_CTRL (VMSA 0x3B8; APM Table B-4). BUSY set makes VMRUN fail with VMEXIT_BUSY. */
export const VINTR_CTRL = defineBits('VINTR_CTRL', 64, {
  vTpr: field(0, 8),
  vIrq: flag(8),
  vgif: flag(9),
  intShadow: flag(10),
  vNmi: flag(11),
  vNmiMask: flag(12),
  vIntrPrio: field(16, 4),
  vIgnTpr: flag(20),
  vNmiEnable: flag(26),
  vIntrVector: field(32, 8),
  busy: flag(63),
});
