// Effective addresses of memory operands (APM vol. 1, 2.5), shared by the integer, system and
// SIMD/x87 handlers: base + index * scale + displacement in the address size of the instruction
// (64-bit, zero-extended 32-bit, or 16-bit wrapping at 64 KiB), then the segment base.

import type { Cpu } from './cpu.js';
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

/** Effective address of the memory operand, with the FS/GS base, into c.a0/c.a1. */
export function ea(c: Cpu, i: Insn): void {
  eaOffset(c, i);
  if (i.seg >= 0) addSegBase(c, i.seg);
}

/** Adds segment `seg`'s base to the address in c.a0/c.a1. */
export function addSegBase(c: Cpu, seg: number): void {
  const lo = c.a0;
  const t = (lo + c.segBase[2 * seg]!) | 0;
  c.a1 = (c.a1 + c.segBase[2 * seg + 1]! + (t >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
  c.a0 = t;
}
