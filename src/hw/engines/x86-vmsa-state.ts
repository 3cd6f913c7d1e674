// The world switch of the x86 engine: VMRUN loads a `Cpu` from the running VMSA (the vCPU's
// VMSA-layout context), #VMEXIT stores it back. One pair of functions, so the state the CPU grows
// (descriptor tables, segment attributes, MSRs, x87/SSE) is added in one place.
//
// What it carries: GPRs, RIP, RFLAGS, segment registers with their hidden parts (ES..GS, LDTR,
// TR), GDTR/IDTR, CR0/CR2/CR3/CR4/EFER, DR0-3/6/7, the syscall/sysenter MSRs, PAT, TSC_AUX, CPL,
// VMPL, SEV-ES, and the x87/SSE state: XMM0-15, MXCSR, ST0-7, FCW, FSW, the tag word, FOP and the
// x87 instruction and data pointers.
//
// The VMSA's x87/SSE fields are the FXSAVE/XSAVE legacy area in another order (APM vol. 2, Table
// B-4 names them; Linux KVM `sev_es_sync_vmsa` fills them from the XSAVE legacy area field by
// field, `x87_ftw = i387.twd`): X87_FTW is FXSAVE's abridged tag (bit p = physical register p
// valid), X87_FSW carries TOP in bits 13:11, and FPREG_X87 holds ST(i) in stack order with the
// significands and the sign/exponent words split (VMSA_X87_SIGN_EXPONENT in src/arch/vmsa.ts).
// The 80-bit values are copied bit for bit, as FXSAVE/FXRSTOR do (the CPU holds them exactly,
// simd-state.ts). XMM words are copied as int32, never through a float view, so signalling NaNs
// keep their bits.
//
// Not carried: XCR0 and XSS (the Cpu has neither: no XSAVE, XSETBV or XSS MSR, so the VMSA's
// values stay as they were), the YMM upper halves (no AVX) and X87_CS/X87_DS (the CPU keeps FIP
// and FDP as 32-bit offsets, stored zero-extended as its FXSAVE64 stores them; saving leaves the
// selectors alone).

import {
  VMSA,
  VMSA_GPR_OFFSETS,
  VMSA_SEGMENT_OFFSETS,
  VMSA_X87_SIGN_EXPONENT,
  VMSA_X87_SIGNIFICAND,
} from '../../arch/index.js';
import type { Cpu } from '../cpu/cpu.js';
import { debugChanged } from '../cpu/debug.js';
import { MXCSR_MASK, type SimdState } from '../cpu/simd-state.js';
import { fcwValue } from '../cpu/x87.js';

const AT = {
  rip: VMSA.offset('rip'),
  rflags: VMSA.offset('rflags'),
  cr0: VMSA.offset('cr0'),
  cr2: VMSA.offset('cr2'),
  cr3: VMSA.offset('cr3'),
  cr4: VMSA.offset('cr4'),
  efer: VMSA.offset('efer'),
  cpl: VMSA.offset('cpl'),
  vmpl: VMSA.offset('vmpl'),
  sevFeatures: VMSA.offset('sevFeatures'),
} as const;
/** Offsets inside a VMSA segment record {u16 selector, u16 attrib, u32 limit, u64 base}. */
const SEG_BASE = 8;

/** Reads a u64 field as two int32 halves into `out[at]`, `out[at + 1]`. */
function load64(v: DataView, off: number, out: Int32Array, at: number): void {
  out[at] = v.getInt32(off, true);
  out[at + 1] = v.getInt32(off + 4, true);
}

function store64(v: DataView, off: number, from: Int32Array, at: number): void {
  v.setInt32(off, from[at]!, true);
  v.setInt32(off + 4, from[at + 1]!, true);
}

/** Segment-like VMSA records in Cpu segment order: ES CS SS DS FS GS, then LDTR and TR. */
const SEGMENT_AT = [
  ...VMSA_SEGMENT_OFFSETS,
  VMSA.offset('ldtr.selector'),
  VMSA.offset('tr.selector'),
];
const GDTR_AT = VMSA.offset('gdtr.selector');
const IDTR_AT = VMSA.offset('idtr.selector');
/** Offsets inside a VMSA segment record. */
const SEG_ATTRIB = 2;
const SEG_LIMIT = 4;

/** 64-bit registers the CPU holds as bigint fields, by VMSA field. */
const MSR_FIELDS = [
  ['star', 'star'],
  ['lstar', 'lstar'],
  ['cstar', 'cstar'],
  ['sfmask', 'sfmask'],
  ['kernelGsBase', 'kernelGsBase'],
  ['sysenterCs', 'sysenterCs'],
  ['sysenterEsp', 'sysenterEsp'],
  ['sysenterEip', 'sysenterEip'],
  ['gPat', 'pat'],
  ['dr7', 'dr7'],
  ['dr6', 'dr6'],
] as const;
const MSR_AT = MSR_FIELDS.map(([field]) => VMSA.offset(field));
const DR_AT = [VMSA.offset('dr0'), VMSA.offset('dr1'), VMSA.offset('dr2'), VMSA.offset('dr3')];
const TSC_AUX_AT = VMSA.offset('tscAux');

const FP = {
  x87Dp: VMSA.offset('x87Dp'),
  mxcsr: VMSA.offset('mxcsr'),
  x87Ftw: VMSA.offset('x87Ftw'),
  x87Fsw: VMSA.offset('x87Fsw'),
  x87Fcw: VMSA.offset('x87Fcw'),
  x87Fop: VMSA.offset('x87Fop'),
  x87Rip: VMSA.offset('x87Rip'),
  fpregX87: VMSA.offset('fpregX87'),
  fpregXmm: VMSA.offset('fpregXmm'),
} as const;
/** FSW.TOP, bits 13:11. */
const FSW_TOP = 0x3800;

/** The x87/SSE fields of the VMSA into `s`. */
function loadSimd(s: SimdState, v: DataView): void {
  const x = s.x32;
  for (let k = 0; k < 64; k++) x[k] = v.getInt32(FP.fpregXmm + 4 * k, true);
  // [uncertain] What VMRUN does with MXCSR bits outside MXCSR_MASK is not documented (FXRSTOR
  // raises #GP); the CPU holds only the bits LDMXCSR accepts. A zero MXCSR is taken as it is: all
  // SIMD exceptions unmasked, which is what it says (the SVSM's VMSAs carry 0x1F80).
  s.mxcsr = v.getUint32(FP.mxcsr, true) & MXCSR_MASK;
  // FCW as FLDCW/FXRSTOR store it: a zero FCW reads 0x0040 (bit 6 is always one).
  s.fcw = fcwValue(v.getUint16(FP.x87Fcw, true));
  const fsw = v.getUint16(FP.x87Fsw, true);
  s.fsw = fsw & ~FSW_TOP;
  s.top = (fsw & FSW_TOP) >> 11;
  s.setAbridgedTag(v.getUint16(FP.x87Ftw, true) & 0xff);
  s.fop = v.getUint16(FP.x87Fop, true) & 0x7ff;
  // FIP/FDP: the low halves, as FXRSTOR64 loads them into this CPU (x87.ts keeps 32-bit offsets).
  s.fip = v.getInt32(FP.x87Rip, true);
  s.fdp = v.getInt32(FP.x87Dp, true);
  for (let i = 0; i < 8; i++) {
    // ST(i) is physical register (TOP + i) mod 8; the 80 bits are copied exactly.
    const p = (s.top + i) & 7;
    s.stLo[p] = v.getUint32(FP.fpregX87 + VMSA_X87_SIGNIFICAND + 8 * i, true);
    s.stHi[p] = v.getUint32(FP.fpregX87 + VMSA_X87_SIGNIFICAND + 8 * i + 4, true);
    s.stSe[p] = v.getUint16(FP.fpregX87 + VMSA_X87_SIGN_EXPONENT + 2 * i, true);
  }
}

/** `s` into the x87/SSE fields of the VMSA (X87_CS/X87_DS and the YMM halves are kept). */
function saveSimd(s: SimdState, v: DataView): void {
  const x = s.x32;
  for (let k = 0; k < 64; k++) v.setInt32(FP.fpregXmm + 4 * k, x[k]!, true);
  v.setUint32(FP.mxcsr, s.mxcsr, true);
  v.setUint16(FP.x87Fcw, s.fcw, true);
  v.setUint16(FP.x87Fsw, s.fswFull, true);
  v.setUint16(FP.x87Ftw, s.abridgedTag, true);
  v.setUint16(FP.x87Fop, s.fop, true);
  v.setBigUint64(FP.x87Rip, BigInt(s.fip >>> 0), true);
  v.setBigUint64(FP.x87Dp, BigInt(s.fdp >>> 0), true);
  for (let i = 0; i < 8; i++) {
    const p = (s.top + i) & 7;
    v.setUint32(FP.fpregX87 + VMSA_X87_SIGNIFICAND + 8 * i, s.stLo[p]!, true);
    v.setUint32(FP.fpregX87 + VMSA_X87_SIGNIFICAND + 8 * i + 4, s.stHi[p]!, true);
    v.setUint16(FP.fpregX87 + VMSA_X87_SIGN_EXPONENT + 2 * i, s.stSe[p]!, true);
  }
}

/** VMRUN: the architectural state of the VMSA into `c`. */
export function loadFromVmsa(c: Cpu, v: DataView): void {
  const r = c.r;
  for (let n = 0; n < 16; n++) load64(v, VMSA_GPR_OFFSETS[n]!, r, 2 * n);
  load64(v, AT.rip, r, 32);
  // RFLAGS bits 63:32 are reserved zero; bit 1 always reads 1.
  c.rflags = v.getInt32(AT.rflags, true) | 2;
  for (let s = 0; s < 8; s++) {
    const at = SEGMENT_AT[s]!;
    c.setSegment(
      s,
      v.getUint16(at, true),
      v.getBigUint64(at + SEG_BASE, true),
      v.getUint32(at + SEG_LIMIT, true),
      v.getUint16(at + SEG_ATTRIB, true),
    );
  }
  c.gdtrBase = v.getBigUint64(GDTR_AT + SEG_BASE, true);
  c.gdtrLimit = v.getUint32(GDTR_AT + SEG_LIMIT, true) & 0xffff;
  c.idtrBase = v.getBigUint64(IDTR_AT + SEG_BASE, true);
  c.idtrLimit = v.getUint32(IDTR_AT + SEG_LIMIT, true) & 0xffff;
  for (let i = 0; i < MSR_FIELDS.length; i++)
    c[MSR_FIELDS[i]![1]] = v.getBigUint64(MSR_AT[i]!, true);
  for (let i = 0; i < 4; i++) c.dr[i] = v.getBigUint64(DR_AT[i]!, true);
  c.tscAux = BigInt(v.getUint32(TSC_AUX_AT, true));
  c.cr0 = v.getInt32(AT.cr0, true);
  c.cr4 = v.getInt32(AT.cr4, true);
  c.efer = v.getInt32(AT.efer, true);
  c.cr3 = v.getBigUint64(AT.cr3, true);
  c.cr2Lo = v.getInt32(AT.cr2, true);
  c.cr2Hi = v.getInt32(AT.cr2 + 4, true);
  c.setCpl(v.getUint8(AT.cpl) & 3);
  c.vmpl = v.getUint8(AT.vmpl);
  // SNPActive implies SEV-ES state protection (and VMRUN refuses a VMSA without it).
  c.sevEs = (v.getUint8(AT.sevFeatures) & 1) !== 0;
  loadSimd(c.simd, v);
  c.updateMode();
  debugChanged(c); // DR7 and DR0-3 as loaded: breakpoints armed, TLB flushed
}

/** #VMEXIT: the state `c` holds back into the VMSA (fields the CPU does not hold are kept). */
export function saveToVmsa(c: Cpu, v: DataView): void {
  const r = c.r;
  for (let n = 0; n < 16; n++) store64(v, VMSA_GPR_OFFSETS[n]!, r, 2 * n);
  store64(v, AT.rip, r, 32);
  v.setBigUint64(AT.rflags, BigInt(c.rflags >>> 0), true);
  for (let s = 0; s < 8; s++) {
    const at = SEGMENT_AT[s]!;
    const seg = c.seg[s]!;
    v.setUint16(at, seg.selector, true);
    v.setUint16(at + SEG_ATTRIB, seg.attr, true);
    v.setUint32(at + SEG_LIMIT, seg.limit, true);
    v.setBigUint64(at + SEG_BASE, seg.base, true);
  }
  v.setBigUint64(GDTR_AT + SEG_BASE, c.gdtrBase, true);
  v.setUint32(GDTR_AT + SEG_LIMIT, c.gdtrLimit, true);
  v.setBigUint64(IDTR_AT + SEG_BASE, c.idtrBase, true);
  v.setUint32(IDTR_AT + SEG_LIMIT, c.idtrLimit, true);
  for (let i = 0; i < MSR_FIELDS.length; i++)
    v.setBigUint64(MSR_AT[i]!, c[MSR_FIELDS[i]![1]], true);
  for (let i = 0; i < 4; i++) v.setBigUint64(DR_AT[i]!, c.dr[i]!, true);
  v.setUint32(TSC_AUX_AT, Number(c.tscAux & 0xffffffffn), true);
  // CR0/CR4/EFER: the low halves the CPU holds; the reserved high halves stay as they were.
  v.setInt32(AT.cr0, c.cr0, true);
  v.setInt32(AT.cr4, c.cr4, true);
  v.setInt32(AT.efer, c.efer, true);
  v.setBigUint64(AT.cr3, c.cr3, true);
  v.setInt32(AT.cr2, c.cr2Lo, true);
  v.setInt32(AT.cr2 + 4, c.cr2Hi, true);
  v.setUint8(AT.cpl, c.cpl);
  saveSimd(c.simd, v);
}

/** CR3 of the VMSA (the translator's). */
export function vmsaCr3(v: DataView): bigint {
  return v.getBigUint64(AT.cr3, true);
}
