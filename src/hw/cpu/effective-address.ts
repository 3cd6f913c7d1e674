// Effective addresses of memory operands (APM vol. 1, 2.5), shared by the integer, system and
// SIMD/x87 handlers: base + index * scale + displacement in the address size of the instruction
// (64-bit, zero-extended 32-bit, or 16-bit wrapping at 64 KiB), then the segment base.
//
// Outside 64-bit mode the offset is checked against the segment's cached limit first (APM vol. 2,
// 4.8.1 and 4.8.2 "Limit Checks"); 64-bit mode checks no limits, so 64-bit code pays nothing
// here unless it uses FS/GS, and then one compare.

import { type Cpu, MODE_64, MODE_REAL, SEG_SS, VEC_GP, VEC_SS } from './cpu.js';
import type { Insn } from './insn.js';

/** Effective address without a segment base (LEA), into c.a0/c.a1. */
export function eaOffset(c: Cpu, i: Insn): void {
  const r = c.r;
  let lo = i.disp;
  let hi = i.dispHi;
  const b = i.base;
  if (b >= 0) {
    const t = (lo + r[2 * b]!) | 0;
    hi = (hi + r[2 * b + 1]! + (t >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
    lo = t;
  }
  const x = i.index;
  if (x >= 0) {
    let x0 = r[2 * x]!;
    let x1 = r[2 * x + 1]!;
    const s = i.scale;
    if (s !== 0) {
      x1 = (x1 << s) | (x0 >>> (32 - s));
      x0 = x0 << s;
    }
    const t = (lo + x0) | 0;
    hi = (hi + x1 + (t >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
    lo = t;
  }
  if (i.asz === 8) {
    c.a0 = lo;
    c.a1 = hi;
  } else {
    // 32-bit addresses are zero-extended; 16-bit ones wrap at 64 KiB (before the segment base).
    c.a0 = i.asz === 4 ? lo : lo & 0xffff;
    c.a1 = 0;
  }
}

/**
 * Effective address of the memory operand, with the segment base (FS/GS only in 64-bit mode),
 * into c.a0/c.a1. Outside 64-bit mode the `size` bytes from the offset must lie within the
 * segment's limit (0: an address that is not accessed, as INVLPG's). The default of 1 is for
 * byte accesses (CLFLUSH's line is checked as its first byte).
 */
export function ea(c: Cpu, i: Insn, size = 1): void {
  eaOffset(c, i);
  if (i.seg >= 0) segmentAddress(c, i.seg, size);
}

/**
 * Offset c.a0/c.a1 in segment `seg` -> linear address: the limit check of `size` bytes (none for
 * 0) and 4 GiB wrap-around outside 64-bit mode, the base only in 64-bit mode.
 */
export function segmentAddress(c: Cpu, seg: number, size: number): void {
  if (c.mode !== MODE_64) {
    if (size !== 0) checkLimit(c, seg, c.a0, size);
    c.a0 = (c.a0 + c.segBase[2 * seg]!) | 0;
    c.a1 = 0;
    return;
  }
  addSegBase(c, seg);
}

/** Type bits S, code and E (expand-down) as a data segment with E has them. */
const EXPAND_DOWN_MASK = 0x1c;
const EXPAND_DOWN_DATA = 0x14;

/**
 * The limit check of a 16/32-bit mode access of `size` bytes at offset `off` of segment `seg`
 * (APM vol. 2, 4.8.1 and 4.8.2): #GP(0), or #SS(0) for SS, when a byte lies beyond the limit
 * (at or below it for an expand-down data segment, whose upper bound is 0xFFFF or, with D/B,
 * 0xFFFFFFFF), or when the segment register is unusable (a null selector loaded in protected
 * mode). Real mode uses the cached limit too, so "unreal mode" keeps its 4 GiB segments.
 */
export function checkLimit(c: Cpu, seg: number, off: number, size: number): void {
  const s = c.seg[seg]!;
  const a = s.attr;
  const first = off >>> 0;
  const last = first + size - 1;
  if ((a & 0x80) === 0 && c.mode !== MODE_REAL) {
    // Not present: only a null selector gets here (loads of not-present descriptors fault).
  } else if ((a & EXPAND_DOWN_MASK) === EXPAND_DOWN_DATA) {
    if (first > s.limit && last <= ((a & 0x400) !== 0 ? 0xffffffff : 0xffff)) return;
  } else if (last <= s.limit) {
    return;
  }
  c.fault(seg === SEG_SS ? VEC_SS : VEC_GP, 0);
}

/** Adds segment `seg`'s base to the address in c.a0/c.a1. */
export function addSegBase(c: Cpu, seg: number): void {
  const lo = c.a0;
  const t = (lo + c.segBase[2 * seg]!) | 0;
  c.a1 = (c.a1 + c.segBase[2 * seg + 1]! + (t >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
  c.a0 = t;
}
