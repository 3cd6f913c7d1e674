// Segment registers and descriptor tables (AMD64 APM vol. 2, chapter 4): the hidden part of a
// segment register, reading descriptors from the GDT/LDT, and the checks of segment loads
// (MOV Sreg, POP Sreg, LSS/LFS/LGS, far transfers, LLDT, LTR) with their #GP/#NP/#SS/#TS rules.
// Everything here is a rare path: it may use BigInt.

import { Segment } from './segment.js';
import { type Cpu, SEG_CS, SEG_LDTR, SEG_SS, SEG_TR, VEC_GP, VEC_NP, VEC_SS } from './cpu.js';

/** Attribute bits (VMSA format). */
export const ATTR_TYPE = 0xf;
/** Type bit 0: accessed. */
export const ATTR_ACCESSED = 0x1;
/** Code: readable; data: writable. */
export const ATTR_RW = 0x2;
/** Code: conforming; data: expand-down. */
export const ATTR_CE = 0x4;
/** Code (1) or data (0) for S = 1. */
export const ATTR_CODE = 0x8;
/** Code/data (1) or system (0). */
export const ATTR_S = 0x10;
export const ATTR_DPL_SHIFT = 5;
export const ATTR_P = 0x80;
export const ATTR_L = 0x200;
export const ATTR_DB = 0x400;
export const ATTR_G = 0x800;

/** System descriptor types (S = 0) in long mode. */
export const SYS_LDT = 0x2;
export const SYS_TSS_AVAIL = 0x9;
export const SYS_TSS_BUSY = 0xb;
export const SYS_CALL_GATE = 0xc;
export const SYS_INT_GATE = 0xe;
export const SYS_TRAP_GATE = 0xf;
/** Legacy 16-bit TSS types (available, busy); 32-bit ones share the long-mode numbers. */
export const SYS_TSS16_AVAIL = 0x1;
export const SYS_TSS16_BUSY = 0x3;

export { Segment };

export function dpl(attr: number): number {
  return (attr >> ATTR_DPL_SHIFT) & 3;
}

/** Whether the CPU runs in long mode (EFER.LMA). */
export function longMode(c: Cpu): boolean {
  return (c.efer & 0x400) !== 0;
}

/** A descriptor as read: the two dwords and, for 16-byte system descriptors, the base's top. */
export class Descriptor {
  lo = 0;
  hi = 0;
  /** Bits 63:32 of the base (16-byte system descriptors in long mode). */
  baseHi = 0;
  /** Linear address of the descriptor (to set the accessed/busy bits). */
  addr = 0n;

  get attr(): number {
    return ((this.hi >>> 8) & 0xff) | ((this.hi >>> 12) & 0xf00);
  }

  get base(): bigint {
    const b = ((this.lo >>> 16) | ((this.hi & 0xff) << 16) | (this.hi & 0xff000000)) >>> 0;
    return (BigInt(this.baseHi >>> 0) << 32n) | BigInt(b);
  }

  get limit(): number {
    const l = (this.lo & 0xffff) | (this.hi & 0xf0000);
    return (this.hi & 0x800000) !== 0 ? ((l << 12) | 0xfff) >>> 0 : l;
  }
}

/** Reads `size` bytes at linear address `addr` as a supervisor access. */
export function readLinear(c: Cpu, addr: bigint, size: number): number {
  const a = BigInt.asUintN(64, addr);
  return c.sysRead(Number(a & 0xffffffffn) | 0, Number(a >> 32n) | 0, size);
}

export function writeLinear(c: Cpu, addr: bigint, size: number, v: number): void {
  const a = BigInt.asUintN(64, addr);
  c.sysWrite(Number(a & 0xffffffffn) | 0, Number(a >> 32n) | 0, size, v, 0);
}

/**
 * Reads the descriptor of `selector` (not null) into `d`: #`vector`(selector) if it lies outside
 * its table (APM vol. 2, 4.5.1). `wide` reads a 16-byte system descriptor (long mode).
 */
export function readDescriptor(
  c: Cpu,
  selector: number,
  d: Descriptor,
  vector = VEC_GP,
  wide = false,
): void {
  const err = selector & 0xfffc;
  let base: bigint;
  let limit: number;
  if ((selector & 4) !== 0) {
    const ldt = c.seg[SEG_LDTR]!;
    // A null LDTR (or one never loaded) makes every LDT reference fail.
    if ((ldt.selector & 0xfffc) === 0 || (ldt.attr & ATTR_P) === 0) c.fault(vector, err);
    base = ldt.base;
    limit = ldt.limit;
  } else {
    base = c.gdtrBase;
    limit = c.gdtrLimit;
  }
  const off = selector & 0xfff8;
  if (off + (wide ? 15 : 7) > limit) c.fault(vector, err);
  d.addr = base + BigInt(off);
  d.lo = readLinear(c, d.addr, 4);
  d.hi = readLinear(c, d.addr + 4n, 4);
  d.baseHi = wide ? readLinear(c, d.addr + 8n, 4) : 0;
}

/** Sets the accessed bit of a code/data descriptor in memory (loads do, APM vol. 2, 4.7.2). */
function markAccessed(c: Cpu, d: Descriptor): void {
  if ((d.hi & 0x100) === 0) {
    d.hi |= 0x100;
    writeLinear(c, d.addr + 5n, 1, (d.hi >>> 8) & 0xff);
  }
}

const scratch = new Descriptor();

/** Loads register `n` from descriptor `d` (after the checks). */
export function loadFromDescriptor(c: Cpu, n: number, selector: number, d: Descriptor): void {
  c.setSegment(n, selector, d.base, d.limit, d.attr);
}

/**
 * MOV/POP to DS, ES, FS, GS and the data part of LDS..LGS (APM vol. 3 "MOV (Segment)"): null
 * loads an unusable segment; otherwise data or readable code, DPL >= max(CPL, RPL) unless
 * conforming code, present (#NP).
 */
export function loadDataSegment(c: Cpu, n: number, selector: number): void {
  if (c.mode === 3 /* MODE_REAL */) {
    c.setSegment(n, selector, BigInt(selector << 4), c.seg[n]!.limit, c.seg[n]!.attr | 0x93);
    return;
  }
  if ((selector & 0xfffc) === 0) {
    // Null: the register becomes unusable (a use outside 64-bit mode raises #GP). The base is
    // cleared too, as parts with NullSelectorClearsBase (CPUID 8000_0021h EAX[6], Zen 3 on) do.
    c.setSegment(n, selector, 0n, 0, 0);
    return;
  }
  const d = scratch;
  readDescriptor(c, selector, d);
  const a = d.attr;
  const err = selector & 0xfffc;
  if ((a & ATTR_S) === 0) c.fault(VEC_GP, err);
  if ((a & ATTR_CODE) !== 0 && (a & ATTR_RW) === 0) c.fault(VEC_GP, err);
  const conformingCode = (a & (ATTR_CODE | ATTR_CE)) === (ATTR_CODE | ATTR_CE);
  if (!conformingCode && dpl(a) < Math.max(c.cpl, selector & 3)) c.fault(VEC_GP, err);
  if ((a & ATTR_P) === 0) c.fault(VEC_NP, err);
  markAccessed(c, d);
  loadFromDescriptor(c, n, selector, d);
}

/**
 * Loads SS for CPL `cpl` (MOV/POP SS, LSS, and stack switches of far returns and IRET): null only
 * in 64-bit mode at CPL < 3 (then a null SS with RPL = CPL); otherwise RPL = DPL = CPL, writable
 * data, present (#SS). #GP(selector) for the others.
 */
export function loadStackSegment(c: Cpu, selector: number, cpl: number, in64 = c.mode === 0): void {
  if (c.mode === 3 /* MODE_REAL */) {
    c.setSegment(
      SEG_SS,
      selector,
      BigInt(selector << 4),
      c.seg[SEG_SS]!.limit,
      c.seg[SEG_SS]!.attr,
    );
    return;
  }
  const err = selector & 0xfffc;
  if (err === 0) {
    if (!in64 || cpl === 3 || (selector & 3) !== cpl) c.fault(VEC_GP, 0);
    // The hidden part of a null SS in 64-bit mode: DPL = CPL, writable, present enough for
    // IRET/RETF checks to pass later.
    c.setSegment(SEG_SS, selector, 0n, 0xffffffff, 0x493 | (cpl << ATTR_DPL_SHIFT));
    return;
  }
  if ((selector & 3) !== cpl) c.fault(VEC_GP, err);
  const d = scratch;
  readDescriptor(c, selector, d);
  const a = d.attr;
  if ((a & (ATTR_S | ATTR_CODE | ATTR_RW)) !== (ATTR_S | ATTR_RW)) c.fault(VEC_GP, err);
  if (dpl(a) !== cpl) c.fault(VEC_GP, err);
  if ((a & ATTR_P) === 0) c.fault(VEC_SS, err);
  markAccessed(c, d);
  loadFromDescriptor(c, SEG_SS, selector, d);
}

/**
 * Reads and checks a code-segment descriptor as the target of a far transfer to privilege
 * `targetCpl` rules: returns the new CPL. `kind` 0 = JMP/CALL (same privilege: conforming
 * DPL <= CPL, non-conforming RPL <= CPL and DPL = CPL), 1 = RET/IRET (RPL = new CPL >= CPL; a
 * conforming DPL <= RPL, non-conforming DPL = RPL).
 */
export function checkCodeSegment(c: Cpu, selector: number, d: Descriptor, kind: number): number {
  const err = selector & 0xfffc;
  if (err === 0) c.fault(VEC_GP, 0);
  readDescriptor(c, selector, d);
  const a = d.attr;
  if ((a & (ATTR_S | ATTR_CODE)) !== (ATTR_S | ATTR_CODE)) c.fault(VEC_GP, err);
  const conforming = (a & ATTR_CE) !== 0;
  const rpl = selector & 3;
  let cpl: number;
  if (kind === 0) {
    if (conforming ? dpl(a) > c.cpl : rpl > c.cpl || dpl(a) !== c.cpl) c.fault(VEC_GP, err);
    cpl = c.cpl;
  } else {
    if (rpl < c.cpl) c.fault(VEC_GP, err);
    if (conforming ? dpl(a) > rpl : dpl(a) !== rpl) c.fault(VEC_GP, err);
    cpl = rpl;
  }
  if ((a & ATTR_P) === 0) c.fault(VEC_NP, err);
  // Long mode: L and D both set is reserved.
  if (longMode(c) && (a & ATTR_L) !== 0 && (a & ATTR_DB) !== 0) c.fault(VEC_GP, err);
  markAccessed(c, d);
  return cpl;
}

/** Loads CS from a checked descriptor at CPL `cpl` (RPL of the selector forced to it). */
export function loadCode(c: Cpu, selector: number, d: Descriptor, cpl: number): void {
  c.setCpl(cpl);
  c.setSegment(SEG_CS, (selector & 0xfffc) | cpl, d.base, d.limit, d.attr);
}

/** LLDT (APM vol. 3 "LLDT"): null disables the LDT; else an LDT descriptor, present. */
export function loadLdt(c: Cpu, selector: number): void {
  const err = selector & 0xfffc;
  if (err === 0) {
    c.setSegment(SEG_LDTR, selector, 0n, 0, 0);
    return;
  }
  if ((selector & 4) !== 0) c.fault(VEC_GP, err);
  const d = scratch;
  readDescriptor(c, selector, d, VEC_GP, longMode(c));
  const a = d.attr;
  if ((a & (ATTR_S | ATTR_TYPE)) !== SYS_LDT) c.fault(VEC_GP, err);
  if ((a & ATTR_P) === 0) c.fault(VEC_NP, err);
  loadFromDescriptor(c, SEG_LDTR, selector, d);
}

/** LTR (APM vol. 3 "LTR"): an available TSS in the GDT, present; marks it busy. */
export function loadTr(c: Cpu, selector: number): void {
  const err = selector & 0xfffc;
  if (err === 0) c.fault(VEC_GP, 0);
  if ((selector & 4) !== 0) c.fault(VEC_GP, err);
  const d = scratch;
  readDescriptor(c, selector, d, VEC_GP, longMode(c));
  const t = d.attr & (ATTR_S | ATTR_TYPE);
  if (t !== SYS_TSS_AVAIL && (longMode(c) || t !== SYS_TSS16_AVAIL)) c.fault(VEC_GP, err);
  if ((d.attr & ATTR_P) === 0) c.fault(VEC_NP, err);
  d.hi |= 0x200; // busy
  writeLinear(c, d.addr + 5n, 1, (d.hi >>> 8) & 0xff);
  loadFromDescriptor(c, SEG_TR, selector, d);
}

const probe = new Descriptor();

/**
 * The descriptor `selector` names if the current privilege may see it (VERR/VERW/LAR/LSL): null,
 * outside the table, or (for data and non-conforming code) DPL < max(CPL, RPL) give null.
 * Memory faults reading the table still fault.
 */
export function visibleDescriptor(c: Cpu, selector: number): Descriptor | null {
  if ((selector & 0xfffc) === 0) return null;
  let limit: number;
  if ((selector & 4) !== 0) {
    const ldt = c.seg[SEG_LDTR]!;
    if ((ldt.selector & 0xfffc) === 0) return null;
    limit = ldt.limit;
  } else {
    limit = c.gdtrLimit;
  }
  if ((selector | 7) > limit) return null;
  readDescriptor(c, selector, probe);
  const a = probe.attr;
  const conformingCode = (a & (ATTR_S | ATTR_CODE | ATTR_CE)) === (ATTR_S | ATTR_CODE | ATTR_CE);
  if (!conformingCode && dpl(a) < Math.max(c.cpl, selector & 3)) return null;
  return probe;
}
