// The world switch of the x86 engine: VMRUN loads a `Cpu` from the running VMSA (the vCPU's
// VMSA-layout context), #VMEXIT stores it back. One pair of functions, so the state the CPU grows
// (descriptor tables, segment attributes, MSRs, x87/SSE) is added in one place.
//
// What exists today: GPRs, RIP, RFLAGS, CR0/CR2/CR4/EFER, CPL, the six segment bases. CR3 is the
// translator's (the CPU has no CR3 of its own yet), set by the engine from the VMSA. The
// interpreter only executes 64-bit mode; `vmsaModeProblem` says why a VMSA is not in it.

import { VMSA, VMSA_GPR_OFFSETS, VMSA_SEGMENT_OFFSETS } from '../../arch/index.js';
import type { Cpu } from '../cpu/cpu.js';

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
  csAttrib: VMSA.offset('cs.attrib'),
} as const;
/** Offsets inside a VMSA segment record {u16 selector, u16 attrib, u32 limit, u64 base}. */
const SEG_BASE = 8;

const CR0_PE = 1;
const CR0_PG = 0x8000_0000;
const EFER_LMA = 0x400;
/** VMSA segment attributes pack descriptor bits 8..15 and 20..23: L is bit 9 of attrib. */
const ATTRIB_L = 0x200;

/** Reads a u64 field as two int32 halves into `out[at]`, `out[at + 1]`. */
function load64(v: DataView, off: number, out: Int32Array, at: number): void {
  out[at] = v.getInt32(off, true);
  out[at + 1] = v.getInt32(off + 4, true);
}

function store64(v: DataView, off: number, from: Int32Array, at: number): void {
  v.setInt32(off, from[at]!, true);
  v.setInt32(off + 4, from[at + 1]!, true);
}

/** Why the VMSA's state is not 64-bit mode (the only mode the interpreter runs), or null. */
export function vmsaModeProblem(v: DataView): string | null {
  const cr0 = v.getUint32(AT.cr0, true);
  const efer = v.getUint32(AT.efer, true);
  if ((cr0 & CR0_PE) === 0) return 'real mode (CR0.PE clear)';
  if ((cr0 & CR0_PG) === 0 || (efer & EFER_LMA) === 0) return 'legacy protected mode (no EFER.LMA)';
  if ((v.getUint16(AT.csAttrib, true) & ATTRIB_L) === 0) return 'compatibility mode (CS.L clear)';
  return null;
}

/** VMRUN: the architectural state of the VMSA into `c` (see the file comment for what exists). */
export function loadFromVmsa(c: Cpu, v: DataView): void {
  const r = c.r;
  for (let n = 0; n < 16; n++) load64(v, VMSA_GPR_OFFSETS[n]!, r, 2 * n);
  load64(v, AT.rip, r, 32);
  // RFLAGS bits 63:32 are reserved zero; bit 1 always reads 1.
  c.rflags = v.getInt32(AT.rflags, true) | 2;
  c.cr0 = v.getInt32(AT.cr0, true);
  c.cr4 = v.getInt32(AT.cr4, true);
  c.efer = v.getInt32(AT.efer, true);
  c.cr2Lo = v.getInt32(AT.cr2, true);
  c.cr2Hi = v.getInt32(AT.cr2 + 4, true);
  c.cpl = v.getUint8(AT.cpl) & 3;
  c.vmpl = v.getUint8(AT.vmpl);
  // SNPActive implies SEV-ES state protection (and VMRUN refuses a VMSA without it).
  c.sevEs = (v.getUint8(AT.sevFeatures) & 1) !== 0;
  for (let s = 0; s < 6; s++) load64(v, VMSA_SEGMENT_OFFSETS[s]! + SEG_BASE, c.segBase, 2 * s);
}

/** #VMEXIT: the state `c` holds back into the VMSA (fields the CPU does not hold are kept). */
export function saveToVmsa(c: Cpu, v: DataView): void {
  const r = c.r;
  for (let n = 0; n < 16; n++) store64(v, VMSA_GPR_OFFSETS[n]!, r, 2 * n);
  store64(v, AT.rip, r, 32);
  v.setBigUint64(AT.rflags, BigInt(c.rflags >>> 0), true);
  // CR0/CR4/EFER: the low halves the CPU holds; the reserved high halves stay as they were.
  v.setInt32(AT.cr0, c.cr0, true);
  v.setInt32(AT.cr4, c.cr4, true);
  v.setInt32(AT.efer, c.efer, true);
  v.setInt32(AT.cr2, c.cr2Lo, true);
  v.setInt32(AT.cr2 + 4, c.cr2Hi, true);
  v.setUint8(AT.cpl, c.cpl);
  for (let s = 0; s < 6; s++) store64(v, VMSA_SEGMENT_OFFSETS[s]! + SEG_BASE, c.segBase, 2 * s);
}

/** CR3 of the VMSA (the translator's). */
export function vmsaCr3(v: DataView): bigint {
  return v.getBigUint64(AT.cr3, true);
}
