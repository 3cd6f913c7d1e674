// The world switch of the x86 engine: VMRUN loads a `Cpu` from the running VMSA (the vCPU's
// VMSA-layout context), #VMEXIT stores it back. One pair of functions, so the state the CPU grows
// (descriptor tables, segment attributes, MSRs, x87/SSE) is added in one place.
//
// What it carries: GPRs, RIP, RFLAGS, segment registers with their hidden parts (ES..GS, LDTR,
// TR), GDTR/IDTR, CR0/CR2/CR3/CR4/EFER, DR0-3/6/7, the syscall/sysenter MSRs, PAT, TSC_AUX, CPL,
// VMPL and SEV-ES. Not yet: the x87/SSE save area and XCR0/XSS.

import { VMSA, VMSA_GPR_OFFSETS, VMSA_SEGMENT_OFFSETS } from '../../arch/index.js';
import type { Cpu } from '../cpu/cpu.js';
import { debugChanged } from '../cpu/debug.js';

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
}

/** CR3 of the VMSA (the translator's). */
export function vmsaCr3(v: DataView): bigint {
  return v.getBigUint64(AT.cr3, true);
}
