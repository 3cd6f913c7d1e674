// Far transfers (APM vol. 3 "JMP (Far)", "CALL (Far)", "RET (Far)", "IRET") and the stack
// helpers they share with event delivery: the stack width follows the mode (64-bit RSP, else
// SS.B picks ESP or SP, with the SS base added). Call gates and task switches are not modelled
// (#GP with the selector); Linux uses neither.

import {
  type Cpu,
  MODE_64,
  MODE_REAL,
  RSP,
  SEG_CS,
  SEG_DS,
  SEG_ES,
  SEG_FS,
  SEG_GS,
  SEG_SS,
  VEC_GP,
} from './cpu.js';
import { checkLimit } from './effective-address.js';
import {
  ATTR_CE,
  ATTR_CODE,
  ATTR_DB,
  ATTR_L,
  ATTR_S,
  checkCodeSegment,
  Descriptor,
  dpl,
  loadCode,
  loadStackSegment,
  longMode,
} from './segments.js';

const d = new Descriptor();

/** Stack pointer width in bytes: 8 in 64-bit mode, else 4 (SS.B) or 2. */
export function stackWidth(c: Cpu): number {
  if (c.mode === MODE_64) return 8;
  return (c.seg[SEG_SS]!.attr & ATTR_DB) !== 0 && c.mode !== MODE_REAL ? 4 : 2;
}

/**
 * The linear address of stack offset `off` (bytes above the current SP) into c.a0/c.a1; outside
 * 64-bit mode the `size` bytes there must lie within SS's limit (#SS(0)).
 */
function stackAddr(c: Cpu, off: number, size: number): void {
  const r = c.r;
  const w = stackWidth(c);
  if (w === 8) {
    const lo = r[2 * RSP]!;
    const t = (lo + off) | 0;
    c.a0 = t;
    c.a1 =
      (r[2 * RSP + 1]! +
        (t >>> 0 < lo >>> 0 && off >= 0 ? 1 : t >>> 0 > lo >>> 0 && off < 0 ? -1 : 0)) |
      0;
    return;
  }
  const sp = w === 4 ? (r[2 * RSP]! + off) >>> 0 : (r[2 * RSP]! + off) & 0xffff;
  checkLimit(c, SEG_SS, sp, size);
  const base = c.segBase[2 * SEG_SS]! >>> 0;
  const a = base + sp;
  c.a0 = a | 0;
  c.a1 = 0;
}

/** Reads `size` bytes at stack offset `off` without moving SP (high half in c.v1). */
export function stackRead(c: Cpu, off: number, size: number): number {
  stackAddr(c, off, size);
  return c.read(c.a0, c.a1, size);
}

/** Moves SP by `delta` at the current stack width. */
export function stackAdjust(c: Cpu, delta: number): void {
  const r = c.r;
  const w = stackWidth(c);
  const lo = r[2 * RSP]!;
  const t = (lo >>> 0) + delta;
  if (w === 8) {
    r[2 * RSP] = t | 0;
    r[2 * RSP + 1] = (r[2 * RSP + 1]! + (t >= 4294967296 ? 1 : t < 0 ? -1 : 0)) | 0;
  } else if (w === 4) {
    r[2 * RSP] = t | 0;
  } else {
    r[2 * RSP] = (lo & ~0xffff) | (t & 0xffff);
  }
}

/** Pushes `size` bytes at the current stack width. */
export function stackPush(c: Cpu, size: number, v0: number, v1: number): void {
  stackAddr(c, -size, size);
  c.write(c.a0, c.a1, size, v0, v1);
  stackAdjust(c, -size);
}

/** Whether a code descriptor's attributes make a 64-bit code segment in the current EFER. */
function is64(c: Cpu, attr: number): boolean {
  return longMode(c) && (attr & ATTR_L) !== 0;
}

/** RIP for a target: 64-bit targets must be canonical, others within the limit (#GP(0)). */
function setTargetRip(
  c: Cpu,
  attr: number,
  limit: number,
  lo: number,
  hi: number,
  osz: number,
): void {
  const r = c.r;
  if (is64(c, attr)) {
    if (hi >> 15 !== hi >> 31) c.fault(VEC_GP, 0);
    r[32] = lo;
    r[33] = hi;
    return;
  }
  const off = osz === 2 ? lo & 0xffff : lo >>> 0;
  if (off > limit) c.fault(VEC_GP, 0);
  r[32] = off | 0;
  r[33] = 0;
}

/** Reads the target descriptor and rejects system descriptors (gates, TSS: not modelled). */
function targetCode(c: Cpu, sel: number, kind: number): number {
  return checkCodeSegment(c, sel, d, kind);
}

/** JMP FAR sel:offset. */
export function jumpFar(c: Cpu, sel: number, lo: number, hi: number, osz = 4): void {
  if (c.mode === MODE_REAL) {
    c.setSegment(SEG_CS, sel, BigInt(sel << 4), c.seg[SEG_CS]!.limit, c.seg[SEG_CS]!.attr);
    c.r[32] = lo & 0xffff;
    c.r[33] = 0;
    return;
  }
  const cpl = targetCode(c, sel, 0);
  setTargetRip(c, d.attr, d.limit, lo, hi, osz);
  loadCode(c, sel, d, cpl);
}

/** CALL FAR sel:offset: pushes CS and the return RIP at operand size `osz`. */
export function callFar(c: Cpu, sel: number, lo: number, hi: number, osz: number): void {
  const r = c.r;
  const retLo = r[32]!;
  const retHi = r[33]!;
  const cs = c.seg[SEG_CS]!.selector;
  if (c.mode === MODE_REAL) {
    stackPush(c, osz, cs, 0);
    stackPush(c, osz, retLo, 0);
    jumpFar(c, sel, lo, hi);
    return;
  }
  const cpl = targetCode(c, sel, 0);
  // Check the target RIP before touching the stack.
  setTargetRip(c, d.attr, d.limit, lo, hi, osz);
  const nlo = r[32]!;
  const nhi = r[33]!;
  r[32] = retLo;
  r[33] = retHi;
  const sp0 = r[2 * RSP]!;
  const sp1 = r[2 * RSP + 1]!;
  try {
    stackPush(c, osz, cs, 0);
    stackPush(c, osz, retLo, osz === 8 ? retHi : 0);
  } catch (e) {
    r[2 * RSP] = sp0;
    r[2 * RSP + 1] = sp1;
    throw e;
  }
  loadCode(c, sel, d, cpl);
  r[32] = nlo;
  r[33] = nhi;
}

/** Data segment registers not usable at the new (outer) CPL become null (APM "RET (Far)"). */
function nullInaccessible(c: Cpu, cpl: number): void {
  for (const n of [SEG_ES, SEG_DS, SEG_FS, SEG_GS]) {
    const s = c.seg[n]!;
    if ((s.selector & 0xfffc) === 0) continue;
    const a = s.attr;
    const conformingCode = (a & (ATTR_S | ATTR_CODE | ATTR_CE)) === (ATTR_S | ATTR_CODE | ATTR_CE);
    if (!conformingCode && dpl(a) < cpl) c.setSegment(n, 0, s.base, 0, 0);
  }
}

/** RETF [imm]: pops RIP and CS (and RSP, SS to an outer privilege). */
export function retFar(c: Cpu, osz: number, imm: number): void {
  const r = c.r;
  const ip0 = stackRead(c, 0, osz);
  const ip1 = osz === 8 ? c.v1 : 0;
  const sel = stackRead(c, osz, 2);
  if (c.mode === MODE_REAL) {
    stackAdjust(c, 2 * osz + imm);
    jumpFar(c, sel, ip0, 0);
    return;
  }
  const cpl = targetCode(c, sel, 1);
  const from = c.cpl;
  if (cpl === from) {
    const rip0 = r[32]!;
    const rip1 = r[33]!;
    setTargetRip(c, d.attr, d.limit, ip0, ip1, osz);
    const nlo = r[32]!;
    const nhi = r[33]!;
    r[32] = rip0;
    r[33] = rip1;
    // SP moves at the width of the stack it was popped from (before CS changes the mode).
    stackAdjust(c, 2 * osz + imm);
    loadCode(c, sel, d, cpl);
    r[32] = nlo;
    r[33] = nhi;
    return;
  }
  const sp0 = stackRead(c, 2 * osz + imm, osz);
  const sp1 = osz === 8 ? c.v1 : 0;
  const ss = stackRead(c, 3 * osz + imm, 2);
  const attr = d.attr;
  const rip0 = r[32]!;
  const rip1 = r[33]!;
  setTargetRip(c, attr, d.limit, ip0, ip1, osz);
  const nlo = r[32]!;
  const nhi = r[33]!;
  r[32] = rip0;
  r[33] = rip1;
  // The descriptor scratch is reused by the SS load: take CS's fields first.
  const csDesc = new Descriptor();
  csDesc.lo = d.lo;
  csDesc.hi = d.hi;
  loadStackSegment(c, ss, cpl, is64(c, attr));
  loadCode(c, sel, csDesc, cpl);
  r[32] = nlo;
  r[33] = nhi;
  r[2 * RSP] = sp0;
  r[2 * RSP + 1] = sp1;
  stackAdjust(c, imm);
  nullInaccessible(c, cpl);
}

/** RFLAGS bits IRET may change: CF PF AF ZF SF TF DF OF NT RF AC ID (RF: IRETD/IRETQ only). */
const IRET_FLAGS = 0x254dd5;

/** IRET/IRETD/IRETQ (`osz` 2, 4, 8). */
export function iret(c: Cpu, osz: number): void {
  const r = c.r;
  const oldFlags = c.flags.get();
  const ip0 = stackRead(c, 0, osz);
  const ip1 = osz === 8 ? c.v1 : 0;
  const sel = stackRead(c, osz, 2);
  const fl = stackRead(c, 2 * osz, osz === 8 ? 4 : osz);
  if (c.mode === MODE_REAL) {
    stackAdjust(c, 3 * osz);
    jumpFar(c, sel, ip0, 0);
    // SDM "IRET", real mode: EFLAGS <- (temp AND 257FD5H) OR (EFLAGS AND 1A0000H): VIF, VIP and
    // VM are kept.
    const m = osz === 2 ? 0xffff & (IRET_FLAGS | 0x3200) : IRET_FLAGS | 0x3200;
    c.flags.put((oldFlags & ~m) | (fl & m));
    c.nmiBlocked = false;
    c.updateAttention();
    return;
  }
  // Task returns (NT) and virtual-8086 returns are not modelled.
  if ((oldFlags & 0x4000) !== 0) c.fault(VEC_GP, 0);
  const from = c.cpl;
  const cpl = targetCode(c, sel, 1);
  const attr = d.attr;
  const csDesc = new Descriptor();
  csDesc.lo = d.lo;
  csDesc.hi = d.hi;
  const popSs = c.mode === MODE_64 || cpl !== from;
  let sp0 = 0;
  let sp1 = 0;
  let ss = 0;
  if (popSs) {
    sp0 = stackRead(c, 3 * osz, osz);
    sp1 = osz === 8 ? c.v1 : 0;
    ss = stackRead(c, 4 * osz, 2);
  }
  const rip0 = r[32]!;
  const rip1 = r[33]!;
  setTargetRip(c, attr, csDesc.limit, ip0, ip1, osz);
  const nlo = r[32]!;
  const nhi = r[33]!;
  r[32] = rip0;
  r[33] = rip1;
  if (popSs) loadStackSegment(c, ss, cpl, is64(c, attr));
  // RFLAGS with the privileges of the old CPL.
  let m = IRET_FLAGS;
  const iopl = (oldFlags >> 12) & 3;
  if (from <= iopl) m |= 0x200;
  if (from === 0) m |= 0x3000 | 0x180000;
  if (osz === 2) m &= 0xffff;
  c.flags.put((oldFlags & ~m) | (fl & m));
  if (!popSs) stackAdjust(c, 3 * osz);
  loadCode(c, sel, csDesc, cpl);
  r[32] = nlo;
  r[33] = nhi;
  if (popSs) {
    r[2 * RSP] = sp0;
    r[2 * RSP + 1] = osz === 8 ? sp1 : 0;
  }
  if (cpl > from) nullInaccessible(c, cpl);
  c.nmiBlocked = false;
  c.updateAttention();
}
