// Operand access for SIMD instructions: the availability checks of CR0/CR4, effective addresses,
// and 32/64/128-bit memory operands moved through XMM slots.

import { type Cpu, VEC_GP, VEC_NM, VEC_UD } from './cpu.js';
import { ea } from './effective-address.js';
import type { Insn } from './insn.js';
import { ACCESS_WRITE } from './translator.js';

const CR0_EM = 0x4;
const CR0_TS = 0x8;
const CR4_OSFXSR = 0x200;

/** SSE availability (APM vol. 3, "Exceptions" of each SSE instruction): #UD, then #NM. */
export function sseCheck(c: Cpu): void {
  if ((c.cr0 & CR0_EM) !== 0 || (c.cr4 & CR4_OSFXSR) === 0) c.fault(VEC_UD);
  if ((c.cr0 & CR0_TS) !== 0) c.fault(VEC_NM);
}

/** x87 availability: EM or TS raise #NM (APM vol. 2, 11.3 "CR0 controls"). */
export function x87Check(c: Cpu): void {
  if ((c.cr0 & (CR0_EM | CR0_TS)) !== 0) c.fault(VEC_NM);
}

/** FWAIT: #NM only when both MP and TS are set. */
export function fwaitCheck(c: Cpu): void {
  if ((c.cr0 & 0xa) === 0xa) c.fault(VEC_NM);
}

/** #GP(0) unless c.a0 is 16-byte aligned (legacy SSE 128-bit operands). */
export function checkAligned(c: Cpu): void {
  if ((c.a0 & 15) !== 0) c.fault(VEC_GP, 0);
}

/** Reads `n` (4, 8, 16) bytes at c.a0/a1 into XMM slot `slot`, zeroing the lanes above. */
export function readMem(c: Cpu, slot: number, n: number): void {
  const x = c.simd.x32;
  const b = slot * 4;
  const a0 = c.a0;
  const a1 = c.a1;
  if (n === 4) {
    x[b] = c.read32(a0, a1);
    x[b + 1] = 0;
    x[b + 2] = 0;
    x[b + 3] = 0;
    return;
  }
  const lo = c.read64(a0, a1);
  const hi = c.v1;
  if (n === 16) {
    const n0 = (a0 + 8) | 0;
    x[b + 2] = c.read64(n0, n0 >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1);
    x[b + 3] = c.v1;
  } else {
    x[b + 2] = 0;
    x[b + 3] = 0;
  }
  x[b] = lo;
  x[b + 1] = hi;
}

/** Writes `n` (4, 8, 16) bytes of XMM slot `slot` at c.a0/a1; nothing is written on a fault. */
export function writeMem(c: Cpu, slot: number, n: number, half = 0): void {
  const x = c.simd.x32;
  const b = slot * 4 + half * 2;
  const a0 = c.a0;
  const a1 = c.a1;
  if (n === 4) {
    c.write32(a0, a1, x[b]!);
    return;
  }
  if (n === 8) {
    c.write64(a0, a1, x[b]!, x[b + 1]!);
    return;
  }
  const n0 = (a0 + 8) | 0;
  const n1 = n0 >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1;
  if ((a0 & 0xfff) > 0xff0) {
    // Crosses a page: make sure the second page is writable before storing anything.
    const last = (a0 + 15) | 0;
    c.translate(last, last >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1, ACCESS_WRITE);
  }
  c.write64(a0, a1, x[b]!, x[b + 1]!);
  c.write64(n0, n1, x[b + 2]!, x[b + 3]!);
}

/**
 * The W operand as an XMM slot: the register itself, or memory of `n` bytes read into the source
 * scratch slot (16-byte operands aligned when `aligned`).
 */
export function srcW(c: Cpu, i: Insn, n: number, aligned: boolean): number {
  if (i.rm >= 0) return i.rm;
  ea(c, i, n);
  if (aligned) checkAligned(c);
  readMem(c, 16, n);
  return 16;
}
