// Port I/O: IN, OUT, INS, OUTS (AMD64 APM vol. 3 "IN", "OUT", "INS/INSB/INSW/INSD",
// "OUTS/OUTSB/OUTSW/OUTSD"; vol. 2 13.2 "I/O privilege"). Ports go to `CpuPlatform.ioIn/ioOut`;
// in an SEV-ES/SNP guest every port access is intercepted (the hypervisor always intercepts IOIO)
// and raises #VC with the IOIO exit code, after the privilege check, which has priority.
//
// Privilege: in protected and long mode an access at CPL > IOPL is allowed only by the TSS I/O
// permission bitmap (APM vol. 2, 13.3.2; Intel SDM vol. 1, 19.5.2): the 16-bit offset at TSS
// offset 0x66 locates it, one bit per port, and every bit of the accessed ports must be clear.
// The processor reads the two bytes holding the first port's bit (an access can span a byte
// boundary), so both must lie within TR's limit, else #GP(0). A 16-bit TSS has no bitmap.
// Virtual-8086 mode is not modelled.

import {
  type Cpu,
  MODE_64,
  MODE_REAL,
  RAX,
  RCX,
  RDI,
  RDX,
  RSI,
  SEG_DS,
  SEG_ES,
  SEG_TR,
  VEC_GP,
  VEC_VC,
} from './cpu.js';
import { segmentAddress } from './effective-address.js';
import { DF } from './flags.js';
import { readLinear, SYS_TSS_AVAIL, SYS_TSS_BUSY } from './segments.js';
import { type Insn, REP_NONE } from './insn.js';
import { ACCESS_WRITE } from './translator.js';

/** SVM exit code of an intercepted IN/OUT/INS/OUTS (the #VC error code under SEV-ES). */
export const EXIT_IOIO = 0x7b;

const TWO32 = 4294967296;
const ONES = [0, 0xff, 0xffff, 0, -1];

/** The operand size of an I/O instruction: 1, 2 or 4 (REX.W does not make it 8). */
function ioSize(i: Insn): number {
  return i.osz === 8 ? 4 : i.osz;
}

/** IOPL, then the I/O permission bitmap for `size` bytes at `port`; then the SEV-ES intercept. */
function checkAccess(c: Cpu, port: number, size: number): void {
  const iopl = (c.flags.bits >> 12) & 3; // IOPL is never lazy
  if (c.cpl > iopl && c.mode !== MODE_REAL) checkBitmap(c, port, size);
  if (c.sevEs) c.fault(VEC_VC, EXIT_IOIO);
}

/** TSS offset of the I/O map base (the same in 32-bit and 64-bit TSSs). */
const TSS_IOMAP_BASE = 0x66;

function checkBitmap(c: Cpu, port: number, size: number): void {
  const tr = c.seg[SEG_TR]!;
  const type = tr.attr & 0x1f; // S = 0 and type: 32/64-bit TSS, available or busy
  if (type !== SYS_TSS_AVAIL && type !== SYS_TSS_BUSY) c.fault(VEC_GP, 0);
  if (TSS_IOMAP_BASE + 1 > tr.limit) c.fault(VEC_GP, 0);
  const off = readLinear(c, tr.base + BigInt(TSS_IOMAP_BASE), 2) + (port >>> 3);
  if (off + 1 > tr.limit) c.fault(VEC_GP, 0);
  const bits = readLinear(c, tr.base + BigInt(off), 2);
  if ((bits & (((1 << size) - 1) << (port & 7))) !== 0) c.fault(VEC_GP, 0);
}

function portIn(c: Cpu, port: number, size: number): number {
  const p = c.platform;
  if (p.ioIn === undefined) return ONES[size]!;
  const v = p.ioIn(port, size);
  return size === 4 ? v | 0 : v & ONES[size]!;
}

function portOut(c: Cpu, port: number, size: number, value: number): void {
  c.platform.ioOut?.(port, size, size === 4 ? value >>> 0 : value & ONES[size]!);
}

/** The port of IN/OUT: imm8 (sub 0) or DX (sub 1). */
function port(c: Cpu, i: Insn): number {
  return i.sub === 0 ? i.imm & 0xff : c.r[2 * RDX]! & 0xffff;
}

/** IN AL/AX/EAX, imm8 or DX. A 32-bit read zero-extends into RAX; 8/16-bit reads merge. */
export function execIn(c: Cpu, i: Insn): void {
  const size = ioSize(i);
  const p = port(c, i);
  checkAccess(c, p, size);
  c.setReg(RAX, size, portIn(c, p, size), 0);
}

/** OUT imm8 or DX, AL/AX/EAX. */
export function execOut(c: Cpu, i: Insn): void {
  const size = ioSize(i);
  const p = port(c, i);
  checkAccess(c, p, size);
  portOut(c, p, size, c.getReg(RAX, size));
}

/** Adds a signed step to register n honouring the address size (as the string instructions do). */
function stepReg(c: Cpu, n: number, step: number, asz: number): void {
  const r = c.r;
  const t = (r[2 * n]! >>> 0) + step;
  if (asz === 2) {
    r[2 * n] = (r[2 * n]! & ~0xffff) | (t & 0xffff);
    return;
  }
  r[2 * n] = t | 0;
  if (asz === 4) r[2 * n + 1] = 0;
  else r[2 * n + 1] = (r[2 * n + 1]! + (t >= TWO32 ? 1 : t < 0 ? -1 : 0)) | 0;
}

function countZero(c: Cpu, asz: number): boolean {
  if (asz === 2) return (c.r[2 * RCX]! & 0xffff) === 0;
  return c.r[2 * RCX]! === 0 && (asz === 4 || c.r[2 * RCX + 1]! === 0);
}

/**
 * The linear address of seg:[register n] at the address size into c.a0/c.a1: outside 64-bit mode
 * with the base and the limit check of `size` bytes; in 64-bit mode only FS/GS add a base.
 */
function stringAddress(c: Cpu, seg: number, n: number, asz: number, size: number): void {
  const r = c.r;
  c.a0 = asz === 2 ? r[2 * n]! & 0xffff : r[2 * n]!;
  c.a1 = asz === 8 ? r[2 * n + 1]! : 0;
  if (seg >= 0) segmentAddress(c, seg, size);
}

/**
 * INS: port DX to [rDI] (ES, which no prefix overrides and whose base is 0 in 64-bit mode), with
 * REP. The destination is probed for write before the port is read, so a faulting store does not
 * lose an input; RCX/rDI count completed iterations, so a fault mid-REP resumes where it stopped.
 */
export function execIns(c: Cpu, i: Insn): void {
  const size = ioSize(i);
  const asz = i.asz;
  const step = (c.flags.bits & DF) !== 0 ? -size : size;
  const rep = i.rep !== REP_NONE;
  const r = c.r;
  const p = r[2 * RDX]! & 0xffff;
  checkAccess(c, p, size);
  for (;;) {
    if (rep && countZero(c, asz)) return;
    // ES cannot be overridden; its base counts outside 64-bit mode only.
    stringAddress(c, c.mode === MODE_64 ? -1 : SEG_ES, RDI, asz, size);
    const lo = c.a0;
    const hi = c.a1;
    c.translate(lo, hi, ACCESS_WRITE);
    const last = (lo + size - 1) | 0;
    if ((last & 0xfff) < (lo & 0xfff)) {
      c.translate(last, last >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, ACCESS_WRITE);
    }
    c.write(lo, hi, size, portIn(c, p, size), 0);
    stepReg(c, RDI, step, asz);
    if (!rep) return;
    stepReg(c, RCX, -1, asz);
  }
}

/** OUTS: [rSI] (DS, or the segment override) to port DX, with REP. */
export function execOuts(c: Cpu, i: Insn): void {
  const size = ioSize(i);
  const asz = i.asz;
  const step = (c.flags.bits & DF) !== 0 ? -size : size;
  const rep = i.rep !== REP_NONE;
  const r = c.r;
  const p = r[2 * RDX]! & 0xffff;
  checkAccess(c, p, size);
  for (;;) {
    if (rep && countZero(c, asz)) return;
    stringAddress(c, i.seg >= 0 ? i.seg : c.mode === MODE_64 ? -1 : SEG_DS, RSI, asz, size);
    portOut(c, p, size, c.read(c.a0, c.a1, size));
    stepReg(c, RSI, step, asz);
    if (!rep) return;
    stepReg(c, RCX, -1, asz);
  }
}
