// The interpreter: executes one decoded instruction in 64-bit mode. RIP already points at the
// next instruction when a handler runs (so RIP-relative operands and relative branches use it);
// a fault throws and the run loop puts RIP back. Semantics: AMD64 APM vol. 3 per instruction;
// flags the APM leaves undefined are set as documented in the README (and masked by difftest).

import { mul64, imul32, popcount32, sar64, shl64, shr64, toBig, umul32, w } from './arith.js';
import {
  type Cpu,
  RAX,
  RBP,
  RBX,
  RCX,
  RDI,
  RDX,
  RSI,
  RSP,
  TRAP_SOFTWARE,
  VEC_BP,
  VEC_DE,
  VEC_GP,
  VEC_UD,
  VEC_VC,
  INTERCEPT_RDTSC,
  INTERCEPT_RDTSCP,
} from './cpu.js';
import {
  AF,
  CF,
  DF,
  LazyFlags,
  LF_ADC1,
  LF_ADD,
  LF_SBB1,
  LF_SUB,
  OF,
  PF,
  SF,
  ZF,
} from './flags.js';
import { addSegBase, ea, eaOffset, segmentAddress } from './effective-address.js';
import { type Insn, REP_E, REP_NONE } from './insn.js';
import { execIn, execIns, execOut, execOuts } from './io.js';
import * as H from './ops.js';
import {
  execCache,
  execMonitor,
  execPvalidate,
  execRmpadjust,
  execVmgexit,
  execVmmcall,
} from './snp.js';
import { executeSimd } from './sse.js';

/** Value mask by operand size in bytes (4 and 8 keep the int32 halves as they are). */
const MASK = new Int32Array([0, 0xff, 0xffff, 0, -1, 0, 0, 0, -1]);
const TWO32 = 4294967296;

// ---- operands ---------------------------------------------------------------------------------

export { ea };

/** Reads the E operand (register or memory); the high half goes to c.v1. Sets c.a0/a1 for memory. */
export function readE(c: Cpu, i: Insn, size: number): number {
  if (i.rm >= 0) return c.getReg(i.rm, size);
  ea(c, i, size);
  return c.read(c.a0, c.a1, size);
}

/** Writes the E operand after readE (the address is already in c.a0/a1). */
function writeE(c: Cpu, i: Insn, size: number, lo: number, hi: number): void {
  if (i.rm >= 0) c.setReg(i.rm, size, lo, hi);
  else c.write(c.a0, c.a1, size, lo, hi);
}

/** Writes the E operand without a previous read. */
export function storeE(c: Cpu, i: Insn, size: number, lo: number, hi: number): void {
  if (i.rm >= 0) {
    c.setReg(i.rm, size, lo, hi);
  } else {
    ea(c, i, size);
    c.write(c.a0, c.a1, size, lo, hi);
  }
}

// ---- ALU --------------------------------------------------------------------------------------

/** The eight ALU operations with lazy flags; returns the low half, the high half in c.v1. */
function alu(
  c: Cpu,
  op: number,
  size: number,
  d0: number,
  d1: number,
  s0: number,
  s1: number,
): number {
  const f = c.flags;
  const m = MASK[size]!;
  let r0: number;
  let r1 = 0;
  switch (op) {
    case H.ALU_ADD:
      if (size === 8) {
        const t = (d0 >>> 0) + (s0 >>> 0);
        r0 = t | 0;
        r1 = (d1 + s1 + (t >= TWO32 ? 1 : 0)) | 0;
      } else {
        r0 = (d0 + s0) & m;
      }
      f.set(LF_ADD, size, d0, d1, s0, s1, r0, r1);
      break;
    case H.ALU_OR:
      r0 = d0 | s0;
      r1 = d1 | s1;
      f.setLogic(size, r0, r1);
      break;
    case H.ALU_ADC: {
      const cin = f.cf();
      if (size === 8) {
        const t = (d0 >>> 0) + (s0 >>> 0) + cin;
        r0 = t | 0;
        r1 = (d1 + s1 + (t >= TWO32 ? 1 : 0)) | 0;
      } else {
        r0 = (d0 + s0 + cin) & m;
      }
      f.set(cin !== 0 ? LF_ADC1 : LF_ADD, size, d0, d1, s0, s1, r0, r1);
      break;
    }
    case H.ALU_SBB: {
      const cin = f.cf();
      if (size === 8) {
        const t = (d0 >>> 0) - (s0 >>> 0) - cin;
        r0 = t | 0;
        r1 = (d1 - s1 - (t < 0 ? 1 : 0)) | 0;
      } else {
        r0 = (d0 - s0 - cin) & m;
      }
      f.set(cin !== 0 ? LF_SBB1 : LF_SUB, size, d0, d1, s0, s1, r0, r1);
      break;
    }
    case H.ALU_AND:
      r0 = d0 & s0;
      r1 = d1 & s1;
      f.setLogic(size, r0, r1);
      break;
    case H.ALU_XOR:
      r0 = d0 ^ s0;
      r1 = d1 ^ s1;
      f.setLogic(size, r0, r1);
      break;
    default: // SUB, CMP
      if (size === 8) {
        const t = (d0 >>> 0) - (s0 >>> 0);
        r0 = t | 0;
        r1 = (d1 - s1 - (t < 0 ? 1 : 0)) | 0;
      } else {
        r0 = (d0 - s0) & m;
      }
      f.set(LF_SUB, size, d0, d1, s0, s1, r0, r1);
  }
  c.v1 = r1;
  return r0;
}

// ---- shifts and rotates -----------------------------------------------------------------------

/**
 * Shift/rotate `kind` (0 ROL .. 7 SAR) of E by `count`. APM vol. 3 "ROL"... "SAR": the count is
 * masked to 5 bits (6 for 64-bit operands); a masked count of 0 changes nothing, flags included.
 * OF is defined for a count of 1 only; here it follows the count-1 formula for every count (what
 * AMD parts do for SHL/SHR/SAR; difftest masks it). AF is left unchanged (undefined).
 */
function shift(c: Cpu, i: Insn, kind: number, count: number): void {
  const size = i.osz;
  const n = count & (size === 8 ? 63 : 31);
  const v0 = readE(c, i, size);
  const v1 = c.v1;
  if (n === 0) {
    // Nothing changes, flags included; but a 32-bit register destination is still written, so
    // its high half is cleared (as for every 32-bit register write).
    if (size === 4 && i.rm >= 0) c.setReg(i.rm, 4, v0, 0);
    return;
  }
  const r0 = shiftValue(c.flags, kind, size, v0, v1, n);
  writeE(c, i, size, r0, w[1]!);
}

/**
 * `shift`'s operation on a value: shift/rotate `kind` of v1:v0 (`size` bytes) by the masked count
 * `n` (1..63); assigns the flags in `f` and returns the result's low half, its high half in
 * `arith.w[1]`. The JIT calls it for shifts by CL.
 */
export function shiftValue(
  f: LazyFlags,
  kind: number,
  size: number,
  v0: number,
  v1: number,
  n: number,
): number {
  const bits = size * 8;
  let r0 = 0;
  let r1 = 0;
  let cf = 0;
  let of = 0;
  const m = MASK[size]!;
  switch (kind) {
    case 0: // ROL
    case 1: {
      // ROR
      const k = n % bits;
      if (size === 8) {
        if (kind === 0) {
          shl64(v0, v1, k);
          const a0 = w[0]!;
          const a1 = w[1]!;
          shr64(v0, v1, (64 - k) & 63);
          r0 = k === 0 ? v0 : a0 | w[0]!;
          r1 = k === 0 ? v1 : a1 | w[1]!;
        } else {
          shr64(v0, v1, k);
          const a0 = w[0]!;
          const a1 = w[1]!;
          shl64(v0, v1, (64 - k) & 63);
          r0 = k === 0 ? v0 : a0 | w[0]!;
          r1 = k === 0 ? v1 : a1 | w[1]!;
        }
      } else if (kind === 0) {
        r0 = k === 0 ? v0 : ((v0 << k) | (v0 >>> (bits - k))) & m;
      } else {
        r0 = k === 0 ? v0 : ((v0 >>> k) | (v0 << (bits - k))) & m;
      }
      const msb = topBit(size, r0, r1);
      if (kind === 0) {
        cf = r0 & 1;
        of = msb ^ cf;
      } else {
        cf = msb;
        of = msb ^ bitAt(size, r0, r1, bits - 2);
      }
      f.assign(CF | OF, cf | (of !== 0 ? OF : 0));
      break;
    }
    case 2: // RCL
    case 3: {
      // RCR: rotate through CF, one bit at a time (count <= 63).
      const k = size === 1 ? n % 9 : size === 2 ? n % 17 : n;
      cf = f.cf();
      r0 = v0;
      r1 = v1;
      if (kind === 3) of = topBit(size, v0, v1) ^ cf;
      for (let j = 0; j < k; j++) {
        if (kind === 2) {
          const out = topBit(size, r0, r1);
          if (size === 8) {
            r1 = (r1 << 1) | (r0 >>> 31);
            r0 = (r0 << 1) | cf;
          } else {
            r0 = ((r0 << 1) | cf) & m;
          }
          cf = out;
        } else {
          const out = r0 & 1;
          if (size === 8) {
            r0 = (r0 >>> 1) | (r1 << 31);
            r1 = (r1 >>> 1) | (cf << 31);
          } else {
            r0 = ((r0 >>> 1) | (cf << (bits - 1))) & m;
          }
          cf = out;
        }
      }
      if (kind === 2) of = topBit(size, r0, r1) ^ cf;
      if (k === 0) {
        // Count a multiple of 9/17: value and CF unchanged; OF as for the formula.
        f.assign(OF, of !== 0 ? OF : 0);
      } else {
        f.assign(CF | OF, cf | (of !== 0 ? OF : 0));
      }
      break;
    }
    case 5: // SHR
      if (size === 8) {
        shr64(v0, v1, n);
        r0 = w[0]!;
        r1 = w[1]!;
        cf = bitAt(size, v0, v1, n - 1);
      } else {
        r0 = n >= bits ? 0 : (v0 & m) >>> n;
        if (size === 4) r0 |= 0;
        cf = n > bits ? 0 : ((v0 & m) >>> (n - 1)) & 1;
      }
      of = topBit(size, v0, v1);
      shiftFlags(f, size, r0, r1, cf, of);
      break;
    case 7: // SAR
      if (size === 8) {
        sar64(v0, v1, n);
        r0 = w[0]!;
        r1 = w[1]!;
        cf = n === 0 ? 0 : bitAtSigned64(v0, v1, n - 1);
      } else {
        const sv = (v0 << (32 - bits)) >> (32 - bits);
        r0 = (sv >> Math.min(n, 31)) & m;
        cf = (sv >> Math.min(n - 1, 31)) & 1;
      }
      of = 0;
      shiftFlags(f, size, r0, r1, cf, of);
      break;
    default: // SHL, SAL
      if (size === 8) {
        shl64(v0, v1, n);
        r0 = w[0]!;
        r1 = w[1]!;
        cf = bitAt(size, v0, v1, 64 - n);
      } else {
        r0 = n >= 32 ? 0 : (v0 << n) & m;
        cf = n > bits ? 0 : bitAt(size, v0, 0, bits - n);
      }
      of = topBit(size, r0, r1) ^ cf;
      shiftFlags(f, size, r0, r1, cf, of);
  }
  w[1] = r1;
  return r0;
}

function shiftFlags(
  f: LazyFlags,
  size: number,
  r0: number,
  r1: number,
  cf: number,
  of: number,
): void {
  f.assign(CF | OF | SF | ZF | PF, cf | (of !== 0 ? OF : 0) | LazyFlags.szp(size, r0, r1));
}

/** The sign bit of a value of `size` bytes (0 or 1). */
function topBit(size: number, v0: number, v1: number): number {
  return size === 8 ? v1 >>> 31 : (v0 >>> (size * 8 - 1)) & 1;
}

/** Bit k (0..63) of hi:lo. */
function bitAt(_size: number, v0: number, v1: number, k: number): number {
  return k < 32 ? (v0 >>> k) & 1 : (v1 >>> (k - 32)) & 1;
}

function bitAtSigned64(v0: number, v1: number, k: number): number {
  return k < 32 ? (v0 >>> k) & 1 : (v1 >> Math.min(k - 32, 31)) & 1;
}

/** SHLD (sub 0) / SHRD (sub 1): E shifted, filled from G. Count masked like shifts. */
function shxd(c: Cpu, i: Insn, count: number): void {
  const size = i.osz;
  const bits = size * 8;
  const n = count & (size === 8 ? 63 : 31);
  const d0 = readE(c, i, size);
  const d1 = c.v1;
  if (n === 0) {
    if (size === 4 && i.rm >= 0) c.setReg(i.rm, 4, d0, 0); // as for shifts by 0
    return;
  }
  const s0 = c.getReg(i.reg, size);
  const s1 = c.v1;
  // A funnel shift in BigInt (SHLD/SHRD are rare). 16-bit counts above 16 are undefined; AMD
  // continues the funnel with the destination again (dst:src:dst), which is what this does.
  const mask = (1n << BigInt(bits)) - 1n;
  const dst = toBig(d0, d1) & mask;
  const src = toBig(s0, s1) & mask;
  const bn = BigInt(n);
  const bb = BigInt(bits);
  let res: bigint;
  let cf: bigint;
  if (size === 2) {
    const f = (dst << 32n) | (src << 16n) | dst;
    res = i.sub === 0 ? f >> (32n - bn) : f >> bn;
    cf = i.sub === 0 ? f >> (48n - bn) : f >> (bn - 1n);
  } else if (i.sub === 0) {
    const f = (dst << bb) | src;
    res = f >> (bb - bn);
    cf = f >> (2n * bb - bn);
  } else {
    const f = (src << bb) | dst;
    res = f >> bn;
    cf = f >> (bn - 1n);
  }
  res &= mask;
  const r0 = Number(res & 0xffffffffn) | 0;
  const r1 = size === 8 ? Number(res >> 32n) | 0 : 0;
  const r0m = size < 4 ? r0 & MASK[size]! : r0;
  const of = topBit(size, r0m, r1) ^ topBit(size, d0, d1);
  shiftFlags(c.flags, size, r0m, r1, Number(cf & 1n), of);
  writeE(c, i, size, r0m, r1);
}
// ---- multiply and divide ---------------------------------------------------------------------

/** Sign-extends a value of `size` bytes (1, 2) to int32. */
function sext(v: number, size: number): number {
  return size === 1 ? (v << 24) >> 24 : size === 2 ? (v << 16) >> 16 : v;
}

function mulDiv(c: Cpu, i: Insn): void {
  const size = i.osz;
  const s0 = readE(c, i, size);
  const s1 = c.v1;
  const r = c.r;
  const f = c.flags;
  switch (i.sub) {
    case 4: // MUL
    case 5: {
      // IMUL
      const signed = i.sub === 5;
      let overflow: boolean;
      if (size === 1) {
        const a = r[0]! & 0xff;
        const p = signed ? sext(a, 1) * sext(s0, 1) : a * s0;
        c.setReg(RAX, 2, p & 0xffff, 0);
        overflow = signed ? p !== sext(p & 0xff, 1) : (p & 0xff00) !== 0;
        f.assign(SF | ZF | PF, LazyFlags.szp(1, p & 0xff, 0));
      } else if (size === 2) {
        const a = r[0]! & 0xffff;
        const p = signed ? sext(a, 2) * sext(s0, 2) : a * s0;
        c.setReg(RAX, 2, p & 0xffff, 0);
        c.setReg(RDX, 2, (p >> 16) & 0xffff, 0);
        overflow = signed ? p !== sext(p & 0xffff, 2) : p >>> 16 !== 0;
        f.assign(SF | ZF | PF, LazyFlags.szp(2, p & 0xffff, 0));
      } else if (size === 4) {
        if (signed) imul32(r[0]!, s0);
        else umul32(r[0]!, s0);
        const lo = w[0]!;
        const hi = w[1]!;
        c.setReg(RAX, 4, lo, 0);
        c.setReg(RDX, 4, hi, 0);
        overflow = signed ? hi !== lo >> 31 : hi !== 0;
        f.assign(SF | ZF | PF, LazyFlags.szp(4, lo, 0));
      } else {
        mul64(r[0]!, r[1]!, s0, s1, signed);
        const w0 = w[0]!;
        const w1 = w[1]!;
        const w2 = w[2]!;
        const w3 = w[3]!;
        c.setReg(RAX, 8, w0, w1);
        c.setReg(RDX, 8, w2, w3);
        overflow = signed ? w2 !== w1 >> 31 || w3 !== w1 >> 31 : (w2 | w3) !== 0;
        f.assign(SF | ZF | PF, LazyFlags.szp(8, w0, w1));
      }
      f.assign(CF | OF | AF, overflow ? CF | OF : 0);
      return;
    }
    default:
      divide(c, size, i.sub === 7, s0, s1);
  }
}

/** DIV/IDIV: #DE on a zero divisor or a quotient that does not fit. Flags unchanged. */
function divide(c: Cpu, size: number, signed: boolean, s0: number, s1: number): void {
  const r = c.r;
  if (size === 1) {
    const n = signed ? sext(r[0]! & 0xffff, 2) : r[0]! & 0xffff;
    const dv = signed ? sext(s0, 1) : s0;
    if (dv === 0) c.fault(VEC_DE);
    const q = Math.trunc(n / dv);
    const rem = n - q * dv;
    if (signed ? q < -128 || q > 127 : q > 0xff) c.fault(VEC_DE);
    c.setReg(RAX, 2, (q & 0xff) | ((rem & 0xff) << 8), 0);
    return;
  }
  if (size === 2) {
    const u = ((r[4]! & 0xffff) << 16) | (r[0]! & 0xffff);
    const n = signed ? u : u >>> 0;
    const dv = signed ? sext(s0, 2) : s0;
    if (dv === 0) c.fault(VEC_DE);
    const q = Math.trunc(n / dv);
    const rem = n - q * dv;
    if (signed ? q < -32768 || q > 32767 : q > 0xffff) c.fault(VEC_DE);
    c.setReg(RAX, 2, q & 0xffff, 0);
    c.setReg(RDX, 2, rem & 0xffff, 0);
    return;
  }
  if (size === 4) {
    const lo = r[0]!;
    const hi = r[4]!;
    if (s0 === 0) c.fault(VEC_DE);
    let q: number;
    let rem: number;
    if (!signed && hi === 0) {
      q = Math.floor((lo >>> 0) / (s0 >>> 0));
      rem = (lo >>> 0) - q * (s0 >>> 0);
    } else if (signed && hi === lo >> 31) {
      q = Math.trunc(lo / s0);
      rem = lo - q * s0;
      if (q > 0x7fffffff) c.fault(VEC_DE);
    } else {
      const n = signed ? BigInt.asIntN(64, toBig(lo, hi)) : toBig(lo, hi);
      const dv = signed ? BigInt(s0) : BigInt(s0 >>> 0);
      const bq = n / dv;
      if (signed ? bq < -0x80000000n || bq > 0x7fffffffn : bq > 0xffffffffn) c.fault(VEC_DE);
      q = Number(bq);
      rem = Number(n - bq * dv);
    }
    c.setReg(RAX, 4, q | 0, 0);
    c.setReg(RDX, 4, rem | 0, 0);
    return;
  }
  if ((s0 | s1) === 0) c.fault(VEC_DE);
  const n = (toBig(r[4]!, r[5]!) << 64n) | toBig(r[0]!, r[1]!);
  let q: bigint;
  let rem: bigint;
  if (signed) {
    const sn = BigInt.asIntN(128, n);
    const dv = BigInt.asIntN(64, toBig(s0, s1));
    q = sn / dv;
    rem = sn - q * dv;
    if (q < -(1n << 63n) || q >= 1n << 63n) c.fault(VEC_DE);
  } else {
    const dv = toBig(s0, s1);
    q = n / dv;
    rem = n - q * dv;
    if (q >= 1n << 64n) c.fault(VEC_DE);
  }
  c.setReg64(RAX, BigInt.asUintN(64, q));
  c.setReg64(RDX, BigInt.asUintN(64, rem));
}

/** IMUL with a truncated result (two- and three-operand forms): CF = OF = result did not fit. */
function imulTrunc(c: Cpu, i: Insn, a0: number, a1: number, b0: number, b1: number): void {
  const size = i.osz;
  let r0: number;
  let r1 = 0;
  let overflow: boolean;
  if (size === 2) {
    const p = sext(a0, 2) * sext(b0, 2);
    r0 = p & 0xffff;
    overflow = p !== sext(r0, 2);
  } else if (size === 4) {
    imul32(a0, b0);
    r0 = w[0]!;
    overflow = w[1] !== r0 >> 31;
  } else {
    mul64(a0, a1, b0, b1, true);
    r0 = w[0]!;
    r1 = w[1]!;
    overflow = w[2] !== r1 >> 31 || w[3] !== r1 >> 31;
  }
  c.flags.assign(
    CF | OF | SF | ZF | PF | AF,
    (overflow ? CF | OF : 0) | LazyFlags.szp(size, r0, r1),
  );
  c.setReg(i.reg, size, r0, r1);
}

// ---- stack and control flow ------------------------------------------------------------------

export function push(c: Cpu, size: number, v0: number, v1: number): void {
  const r = c.r;
  const lo = (r[8]! - size) | 0;
  const hi = lo >>> 0 > r[8]! >>> 0 ? (r[9]! - 1) | 0 : r[9]!;
  c.write(lo, hi, size, v0, v1);
  r[8] = lo;
  r[9] = hi;
}

/** Pops `size` bytes; the high half to c.v1. */
export function pop(c: Cpu, size: number): number {
  const r = c.r;
  const lo = r[8]!;
  const hi = r[9]!;
  const v = c.read(lo, hi, size);
  const v1 = c.v1;
  const n = (lo + size) | 0;
  r[8] = n;
  if (n >>> 0 < lo >>> 0) r[9] = (hi + 1) | 0;
  c.v1 = v1;
  return v;
}

/** RIP += sign-extended displacement (in imm/immHi). */
function jumpRel(c: Cpu, i: Insn): void {
  const r = c.r;
  const lo = r[32]!;
  const t = (lo >>> 0) + (i.imm >>> 0);
  r[32] = t | 0;
  r[33] = (r[33]! + i.immHi + (t >= TWO32 ? 1 : 0)) | 0;
}

// ---- bit instructions --------------------------------------------------------------------------

/** BT/BTS/BTR/BTC (sub 0..3) with the bit offset from G (signed, may leave the operand in memory). */
function bitTest(c: Cpu, i: Insn, fromReg: boolean): void {
  const size = i.osz;
  const bits = size * 8;
  let off0: number;
  let off1 = 0;
  if (fromReg) {
    off0 = c.getReg(i.reg, size);
    off1 = c.v1;
  } else {
    off0 = i.imm & 0xff;
  }
  let v0: number;
  let v1: number;
  let bit: number;
  if (i.rm >= 0) {
    bit = off0 & (bits - 1);
    v0 = c.getReg(i.rm, size);
    v1 = c.v1;
  } else {
    if (fromReg) {
      // Register offsets address a bit string: EA += size * (offset SAR log2(bits)), and the
      // limit check applies to the operand actually read.
      eaOffset(c, i);
      const sh = size === 2 ? 4 : size === 4 ? 5 : 6;
      if (size === 8) {
        sar64(off0, off1, sh);
      } else {
        const so = size === 2 ? (off0 << 16) >> 16 : off0;
        w[0] = so >> sh;
        w[1] = so >> 31;
      }
      shl64(w[0]!, w[1]!, size === 2 ? 1 : size === 4 ? 2 : 3);
      const lo = c.a0;
      const t = (lo >>> 0) + (w[0]! >>> 0);
      c.a0 = t | 0;
      c.a1 = (c.a1 + w[1]! + (t >= TWO32 ? 1 : 0)) | 0;
      if (i.seg >= 0) segmentAddress(c, i.seg, size);
    } else {
      ea(c, i, size);
    }
    bit = off0 & (bits - 1);
    v0 = c.read(c.a0, c.a1, size);
    v1 = c.v1;
  }
  const cf = bit < 32 ? (v0 >>> bit) & 1 : (v1 >>> (bit - 32)) & 1;
  c.flags.assign(CF, cf);
  if (i.sub === 0) return;
  const m0 = bit < 32 ? 1 << bit : 0;
  const m1 = bit < 32 ? 0 : 1 << (bit - 32);
  let r0: number;
  let r1: number;
  if (i.sub === 1) {
    r0 = v0 | m0;
    r1 = v1 | m1;
  } else if (i.sub === 2) {
    r0 = v0 & ~m0;
    r1 = v1 & ~m1;
  } else {
    r0 = v0 ^ m0;
    r1 = v1 ^ m1;
  }
  if (size === 2) r0 &= 0xffff;
  writeE(c, i, size, r0, size === 8 ? r1 : 0);
}

/** Index of the lowest set bit of hi:lo (not zero). */
function lowestBit(v0: number, v1: number): number {
  return v0 !== 0 ? 31 - Math.clz32(v0 & -v0) : 63 - Math.clz32(v1 & -v1);
}

/** Index of the highest set bit of hi:lo (not zero). */
function highestBit(v0: number, v1: number): number {
  return v1 !== 0 ? 63 - Math.clz32(v1) : 31 - Math.clz32(v0);
}

function bitScan(c: Cpu, i: Insn): void {
  const size = i.osz;
  const v0 = readE(c, i, size);
  const v1 = c.v1;
  const f = c.flags;
  const zero = (v0 | v1) === 0;
  switch (i.op) {
    case H.H_BSF:
    case H.H_BSR:
      // Source zero: ZF set, destination unchanged (AMD documents this; Intel leaves it
      // undefined). The other flags are undefined; AMD leaves them as computed by the table
      // below (difftest masks them).
      if (zero) {
        f.assign(ZF, ZF);
        return;
      }
      f.assign(ZF, 0);
      c.setReg(i.reg, size, i.op === H.H_BSF ? lowestBit(v0, v1) : highestBit(v0, v1), 0);
      return;
    case H.H_TZCNT: {
      const n = zero ? size * 8 : lowestBit(v0, v1);
      f.assign(CF | ZF, (zero ? CF : 0) | (n === 0 ? ZF : 0));
      c.setReg(i.reg, size, n, 0);
      return;
    }
    case H.H_LZCNT: {
      const n = zero ? size * 8 : size * 8 - 1 - highestBit(v0, v1);
      f.assign(CF | ZF, (zero ? CF : 0) | (n === 0 ? ZF : 0));
      c.setReg(i.reg, size, n, 0);
      return;
    }
    default: {
      // POPCNT: ZF = source zero; CF, PF, AF, SF, OF cleared.
      const n = popcount32(v0) + (size === 8 ? popcount32(v1) : 0);
      f.assign(CF | PF | AF | ZF | SF | OF, zero ? ZF : 0);
      c.setReg(i.reg, size, n, 0);
    }
  }
}

// ---- string instructions ----------------------------------------------------------------------

/** Adds a signed step to register n honouring the address size. */
function stepReg(c: Cpu, n: number, step: number, asz: number): void {
  const r = c.r;
  const lo = r[2 * n]!;
  const t = (lo >>> 0) + step;
  r[2 * n] = t | 0;
  if (asz === 4) r[2 * n + 1] = 0;
  else r[2 * n + 1] = (r[2 * n + 1]! + (t >= TWO32 ? 1 : t < 0 ? -1 : 0)) | 0;
}

/** Source address [rSI] (DS, or the FS/GS override) into c.a0/a1. */
function srcAddr(c: Cpu, i: Insn): void {
  c.a0 = c.r[2 * RSI]!;
  c.a1 = i.asz === 4 ? 0 : c.r[2 * RSI + 1]!;
  if (i.seg >= 0) addSegBase(c, i.seg);
}

function stringOp(c: Cpu, i: Insn): void {
  const size = i.osz;
  const asz = i.asz;
  const step = (c.flags.bits & DF) !== 0 ? -size : size;
  const r = c.r;
  const rep = i.rep !== REP_NONE;
  const op = i.op;
  for (;;) {
    if (rep && r[2 * RCX]! === 0 && (asz === 4 || r[2 * RCX + 1]! === 0)) return;
    let again = true;
    switch (op) {
      case H.H_MOVS: {
        srcAddr(c, i);
        const v0 = c.read(c.a0, c.a1, size);
        const v1 = c.v1;
        c.write(r[2 * RDI]!, asz === 4 ? 0 : r[2 * RDI + 1]!, size, v0, v1);
        stepReg(c, RSI, step, asz);
        stepReg(c, RDI, step, asz);
        break;
      }
      case H.H_STOS:
        c.write(r[2 * RDI]!, asz === 4 ? 0 : r[2 * RDI + 1]!, size, r[0]! & MASK[size]!, r[1]!);
        stepReg(c, RDI, step, asz);
        break;
      case H.H_LODS: {
        srcAddr(c, i);
        const v0 = c.read(c.a0, c.a1, size);
        c.setReg(RAX, size, v0, c.v1);
        stepReg(c, RSI, step, asz);
        break;
      }
      case H.H_CMPS: {
        srcAddr(c, i);
        const a0 = c.read(c.a0, c.a1, size);
        const a1 = c.v1;
        const b0 = c.read(r[2 * RDI]!, asz === 4 ? 0 : r[2 * RDI + 1]!, size);
        const b1 = c.v1;
        alu(c, H.ALU_CMP, size, a0, a1, b0, b1);
        stepReg(c, RSI, step, asz);
        stepReg(c, RDI, step, asz);
        again = c.flags.zf() === (i.rep === REP_E);
        break;
      }
      default: {
        // SCAS
        const b0 = c.read(r[2 * RDI]!, asz === 4 ? 0 : r[2 * RDI + 1]!, size);
        const b1 = c.v1;
        const a0 = c.getReg(RAX, size);
        alu(c, H.ALU_CMP, size, a0, c.v1, b0, b1);
        stepReg(c, RDI, step, asz);
        again = c.flags.zf() === (i.rep === REP_E);
      }
    }
    if (!rep) return;
    stepReg(c, RCX, -1, asz);
    if (!again) return;
  }
}

// ---- the dispatcher ---------------------------------------------------------------------------

/**
 * Handlers 70-119 (system.ts registers itself when loaded; importing it here would make a
 * cycle, since it uses this file's operand helpers).
 */
let systemExecute: (c: Cpu, i: Insn) => void = (c) => c.fault(VEC_UD);

export function registerSystemHandlers(fn: (c: Cpu, i: Insn) => void): void {
  systemExecute = fn;
}

/** Executes one decoded instruction (RIP already advanced past it). */
export function execute(c: Cpu, i: Insn): void {
  const r = c.r;
  switch (i.op) {
    case H.H_ALU_EG: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      const d1 = c.v1;
      const s0 = c.getReg(i.reg, size);
      const res = alu(c, i.sub, size, d0, d1, s0, c.v1);
      if (i.sub !== H.ALU_CMP) writeE(c, i, size, res, c.v1);
      return;
    }
    case H.H_ALU_GE: {
      const size = i.osz;
      const s0 = readE(c, i, size);
      const s1 = c.v1;
      const d0 = c.getReg(i.reg, size);
      const res = alu(c, i.sub, size, d0, c.v1, s0, s1);
      if (i.sub !== H.ALU_CMP) c.setReg(i.reg, size, res, c.v1);
      return;
    }
    case H.H_ALU_EI: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      const res = alu(c, i.sub, size, d0, c.v1, i.imm, i.immHi);
      if (i.sub !== H.ALU_CMP) writeE(c, i, size, res, c.v1);
      return;
    }
    case H.H_TEST_EG: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      const d1 = c.v1;
      const s0 = c.getReg(i.reg, size);
      c.flags.setLogic(size, d0 & s0, d1 & c.v1);
      return;
    }
    case H.H_TEST_EI: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      c.flags.setLogic(size, d0 & i.imm, c.v1 & i.immHi);
      return;
    }
    case H.H_MOV_EG: {
      const size = i.osz;
      const v0 = c.getReg(i.reg, size);
      storeE(c, i, size, v0, c.v1);
      return;
    }
    case H.H_MOV_GE: {
      const size = i.osz;
      const v0 = readE(c, i, size);
      c.setReg(i.reg, size, v0, c.v1);
      return;
    }
    case H.H_MOV_EI:
      storeE(c, i, i.osz, i.imm, i.immHi);
      return;
    case H.H_LEA: {
      eaOffset(c, i);
      c.setReg(i.reg, i.osz, i.osz === 2 ? c.a0 & 0xffff : c.a0, c.a1);
      return;
    }
    case H.H_INCDEC: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      const d1 = c.v1;
      let r0: number;
      let r1 = 0;
      if (size === 8) {
        const t = (d0 >>> 0) + (i.sub === 0 ? 1 : -1);
        r0 = t | 0;
        r1 = (d1 + (t >= TWO32 ? 1 : t < 0 ? -1 : 0)) | 0;
      } else {
        r0 = (d0 + (i.sub === 0 ? 1 : -1)) & MASK[size]!;
      }
      c.flags.setIncDec(i.sub === 1, size, d0, d1, r0, r1);
      writeE(c, i, size, r0, r1);
      return;
    }
    case H.H_NOTNEG: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      const d1 = c.v1;
      if (i.sub === 2) {
        writeE(c, i, size, ~d0 & MASK[size]!, ~d1);
      } else {
        const res = alu(c, H.ALU_SUB, size, 0, 0, d0, d1);
        writeE(c, i, size, res, c.v1);
      }
      return;
    }
    case H.H_MULDIV:
      mulDiv(c, i);
      return;
    case H.H_IMUL_GE: {
      const b0 = readE(c, i, i.osz);
      const b1 = c.v1;
      const a0 = c.getReg(i.reg, i.osz);
      imulTrunc(c, i, a0, c.v1, b0, b1);
      return;
    }
    case H.H_IMUL_GEI: {
      const a0 = readE(c, i, i.osz);
      imulTrunc(c, i, a0, c.v1, i.imm, i.immHi);
      return;
    }
    case H.H_SHIFT_I:
      shift(c, i, i.sub, i.imm);
      return;
    case H.H_SHIFT_CL:
      shift(c, i, i.sub, r[2 * RCX]! & 0xff);
      return;
    case H.H_SHXD_I:
      shxd(c, i, i.imm);
      return;
    case H.H_SHXD_CL:
      shxd(c, i, r[2 * RCX]! & 0xff);
      return;
    case H.H_PUSH_R: {
      const v0 = c.getReg(i.rm, i.osz);
      push(c, i.osz, v0, c.v1);
      return;
    }
    case H.H_POP_R: {
      const v0 = pop(c, i.osz);
      c.setReg(i.rm, i.osz, v0, c.v1);
      return;
    }
    case H.H_PUSH_I:
      push(c, i.osz, i.osz === 2 ? i.imm & 0xffff : i.imm, i.immHi);
      return;
    case H.H_PUSH_E: {
      const v0 = readE(c, i, i.osz);
      push(c, i.osz, v0, c.v1);
      return;
    }
    case H.H_POP_E: {
      // The address is computed after RSP is incremented (APM "POP"), and RSP is only
      // committed once the store succeeded.
      const lo = r[8]!;
      const hi = r[9]!;
      const v0 = pop(c, i.osz);
      const v1 = c.v1;
      if (i.rm >= 0) {
        c.setReg(i.rm, i.osz, v0, v1);
        return;
      }
      ea(c, i, i.osz);
      const nlo = r[8]!;
      const nhi = r[9]!;
      r[8] = lo;
      r[9] = hi;
      c.write(c.a0, c.a1, i.osz, v0, v1);
      r[8] = nlo;
      r[9] = nhi;
      return;
    }
    case H.H_PUSHF:
      // RF and VM are pushed as 0.
      push(c, i.osz, c.flags.get() & 0xfcffff & MASK[i.osz]!, 0);
      return;
    case H.H_POPF: {
      const v = pop(c, i.osz);
      // Changeable here: CF PF AF ZF SF TF DF OF NT AC ID; IF if CPL <= IOPL; IOPL at CPL 0.
      // Not RF: POPF does not load it (Intel SDM vol. 3B, 17.3.1.1).
      const old = c.flags.get();
      let mask = 0x244dd5;
      const iopl = (old >> 12) & 3;
      if (c.cpl <= iopl) mask |= 0x200;
      if (c.cpl === 0) mask |= 0x3000;
      if (i.osz === 2) mask &= 0xffff;
      c.flags.put((old & ~mask) | (v & mask));
      c.updateAttention(); // TF newly set: the first trap follows the next instruction (debug.ts)
      return;
    }
    case H.H_CALL_J:
      push(c, 8, r[32]!, r[33]!);
      jumpRel(c, i);
      return;
    case H.H_CALL_E: {
      const t0 = readE(c, i, 8);
      const t1 = c.v1;
      push(c, 8, r[32]!, r[33]!);
      r[32] = t0;
      r[33] = t1;
      return;
    }
    case H.H_RET: {
      const t0 = pop(c, i.osz);
      const t1 = i.osz === 8 ? c.v1 : 0;
      r[32] = t0;
      r[33] = t1;
      if (i.imm !== 0) stepReg(c, RSP, i.imm, 8);
      return;
    }
    case H.H_JMP_J:
      jumpRel(c, i);
      return;
    case H.H_JMP_E: {
      const t0 = readE(c, i, 8);
      r[32] = t0;
      r[33] = c.v1;
      return;
    }
    case H.H_JCC:
      if (c.flags.cond(i.sub)) jumpRel(c, i);
      return;
    case H.H_SETCC:
      storeE(c, i, 1, c.flags.cond(i.sub) ? 1 : 0, 0);
      return;
    case H.H_CMOVCC: {
      const v0 = readE(c, i, i.osz);
      const v1 = c.v1;
      if (c.flags.cond(i.sub)) c.setReg(i.reg, i.osz, v0, v1);
      else if (i.osz === 4) c.setReg(i.reg, 4, r[2 * i.reg]!, 0); // 32-bit: upper half cleared
      return;
    }
    case H.H_MOVZX: {
      const v = readE(c, i, i.sub);
      c.setReg(i.reg, i.osz, v, 0);
      return;
    }
    case H.H_MOVSX: {
      const v = sext(readE(c, i, i.sub), i.sub);
      c.setReg(i.reg, i.osz, i.osz === 2 ? v & 0xffff : v, v >> 31);
      return;
    }
    case H.H_XCHG_EG: {
      const size = i.osz;
      const a0 = readE(c, i, size);
      const a1 = c.v1;
      const b0 = c.getReg(i.reg, size);
      const b1 = c.v1;
      writeE(c, i, size, b0, b1);
      c.setReg(i.reg, size, a0, a1);
      return;
    }
    case H.H_CMPXCHG: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      const d1 = c.v1;
      const a0 = c.getReg(RAX, size);
      alu(c, H.ALU_CMP, size, a0, c.v1, d0, d1);
      if (c.flags.zf()) {
        const s0 = c.getReg(i.reg, size);
        writeE(c, i, size, s0, c.v1);
      } else {
        if (i.rm < 0) c.write(c.a0, c.a1, size, d0, d1); // the locked cycle writes back
        c.setReg(RAX, size, d0, d1);
      }
      return;
    }
    case H.H_XADD: {
      const size = i.osz;
      const d0 = readE(c, i, size);
      const d1 = c.v1;
      const s0 = c.getReg(i.reg, size);
      const sum = alu(c, H.ALU_ADD, size, d0, d1, s0, c.v1);
      const sum1 = c.v1;
      c.setReg(i.reg, size, d0, d1);
      writeE(c, i, size, sum, sum1);
      return;
    }
    case H.H_BT_EG:
      bitTest(c, i, true);
      return;
    case H.H_BT_EI:
      bitTest(c, i, false);
      return;
    case H.H_BSF:
    case H.H_BSR:
    case H.H_TZCNT:
    case H.H_LZCNT:
    case H.H_POPCNT:
      bitScan(c, i);
      return;
    case H.H_MOVS:
    case H.H_CMPS:
    case H.H_STOS:
    case H.H_LODS:
    case H.H_SCAS:
      stringOp(c, i);
      return;
    case H.H_CBW: {
      if (i.osz === 2) c.setReg(RAX, 2, sext(r[0]! & 0xff, 1) & 0xffff, 0);
      else if (i.osz === 4) c.setReg(RAX, 4, sext(r[0]! & 0xffff, 2), 0);
      else c.setReg(RAX, 8, r[0]!, r[0]! >> 31);
      return;
    }
    case H.H_CWD: {
      if (i.osz === 2) c.setReg(RDX, 2, (r[0]! << 16) >> 31, 0);
      else if (i.osz === 4) c.setReg(RDX, 4, r[0]! >> 31, 0);
      else c.setReg(RDX, 8, r[1]! >> 31, r[1]! >> 31);
      return;
    }
    case H.H_FLAGOP: {
      const f = c.flags;
      switch (i.sub) {
        case 0:
          f.assign(CF, 0);
          return;
        case 1:
          f.assign(CF, CF);
          return;
        case 2:
          f.assign(CF, f.cf() ^ 1);
          return;
        case 3:
          f.bits &= ~DF;
          return;
        default:
          f.bits |= DF;
          return;
      }
    }
    case H.H_SAHF:
      c.flags.assign(SF | ZF | AF | PF | CF, (r[0]! >> 8) & 0xff);
      return;
    case H.H_LAHF:
      c.setReg(16, 1, (c.flags.get() & 0xd7) | 2, 0);
      return;
    case H.H_NOP:
      return;
    case H.H_CPUID: {
      if (c.sevEs) c.fault(VEC_VC, 0x72); // always intercepted: the SVM exit code CPUID
      const out = c.cpuidOut;
      c.platform.cpuid(r[0]!, r[2]!, out);
      c.setReg(RAX, 4, out[0]!, 0);
      c.setReg(RBX, 4, out[1]!, 0);
      c.setReg(RCX, 4, out[2]!, 0);
      c.setReg(RDX, 4, out[3]!, 0);
      return;
    }
    case H.H_RDTSC:
    case H.H_RDTSCP: {
      // Intercepted only if the hypervisor asked (exit codes RDTSC 0x6E, RDTSCP 0x87).
      const bit = i.op === H.H_RDTSC ? INTERCEPT_RDTSC : INTERCEPT_RDTSCP;
      if (c.sevEs && (c.intercepts & bit) !== 0) c.fault(VEC_VC, i.op === H.H_RDTSC ? 0x6e : 0x87);
      const t = c.platform.tsc(c.instructions);
      c.setReg(RAX, 4, (t % TWO32) | 0, 0);
      c.setReg(RDX, 4, Math.floor(t / TWO32) | 0, 0);
      if (i.op === H.H_RDTSCP) c.setReg(RCX, 4, Number(c.tscAux & 0xffffffffn) | 0, 0);
      return;
    }
    case H.H_HLT:
      if (c.cpl !== 0) c.fault(VEC_GP, 0);
      c.halted = true;
      return;
    case H.H_INT3:
      c.trap(VEC_BP, TRAP_SOFTWARE);
      return;
    case H.H_LEAVE: {
      const size = i.osz;
      r[8] = r[10]!;
      r[9] = r[11]!;
      const v0 = pop(c, size);
      c.setReg(RBP, size, v0, c.v1);
      return;
    }
    case H.H_ENTER:
      enter(c, i);
      return;
    case H.H_BSWAP: {
      const n = i.rm;
      if (i.osz === 8) {
        const lo = r[2 * n]!;
        r[2 * n] = bswap32(r[2 * n + 1]!);
        r[2 * n + 1] = bswap32(lo);
      } else if (i.osz === 4) {
        c.setReg(n, 4, bswap32(r[2 * n]!), 0);
      } else {
        c.setReg(n, 2, 0, 0); // 16-bit BSWAP: undefined; AMD parts clear the register's low word
      }
      return;
    }
    case H.H_CMPXCHG8B:
      cmpxchg8b(c, i);
      return;
    case H.H_XLAT: {
      c.a0 = (r[2 * RBX]! + (r[0]! & 0xff)) | 0;
      c.a1 = (r[2 * RBX + 1]! + (c.a0 >>> 0 < r[2 * RBX]! >>> 0 ? 1 : 0)) | 0;
      if (i.asz !== 8) c.a1 = 0;
      if (i.asz === 2) c.a0 &= 0xffff;
      if (i.seg >= 0) segmentAddress(c, i.seg, 1);
      c.setReg(RAX, 1, c.read8(c.a0, c.a1), 0);
      return;
    }
    case H.H_IN:
      execIn(c, i);
      return;
    case H.H_OUT:
      execOut(c, i);
      return;
    case H.H_INS:
      execIns(c, i);
      return;
    case H.H_OUTS:
      execOuts(c, i);
      return;
    case H.H_VMMCALL:
      execVmmcall(c);
      return;
    case H.H_VMGEXIT:
      execVmgexit(c);
      return;
    case H.H_PVALIDATE:
      execPvalidate(c);
      return;
    case H.H_RMPADJUST:
      execRmpadjust(c);
      return;
    case H.H_CACHE:
      execCache(c, i);
      return;
    case H.H_MONITOR:
    case H.H_MWAIT:
      execMonitor(c, i.op === H.H_MWAIT);
      return;
    default:
      // The system-architecture handlers (70-119) live in system.ts.
      if (i.op >= H.H_MOV_R_CR && i.op < 120) systemExecute(c, i);
      // SIMD and x87 (sse.ts): only instructions outside the integer set get here.
      else if (i.op >= H.H_SIMD_FIRST && i.op <= H.H_SIMD_LAST) executeSimd(c, i);
      else c.fault(VEC_UD);
  }
}

function bswap32(v: number): number {
  return ((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24);
}

/** CMPXCHG8B (CMPXCHG16B with REX.W): EDX:EAX vs m64, ZF, ECX:EBX stored on a match. */
function cmpxchg8b(c: Cpu, i: Insn): void {
  const r = c.r;
  ea(c, i, 2 * i.osz);
  if (i.osz === 8) {
    // CMPXCHG16B: the operand must be 16-byte aligned (#GP(0)).
    if ((c.a0 & 15) !== 0) c.fault(VEC_GP, 0);
    const a0 = c.a0;
    const a1 = c.a1;
    const b0 = (a0 + 8) | 0;
    const b1 = b0 >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1;
    const m0 = c.read64(a0, a1);
    const m1 = c.v1;
    const m2 = c.read64(b0, b1);
    const m3 = c.v1;
    if (m0 === r[0] && m1 === r[1] && m2 === r[4] && m3 === r[5]) {
      c.write64(a0, a1, r[6]!, r[7]!);
      c.write64(b0, b1, r[2]!, r[3]!);
      c.flags.assign(ZF, ZF);
    } else {
      c.write64(a0, a1, m0, m1);
      c.write64(b0, b1, m2, m3);
      r[0] = m0;
      r[1] = m1;
      r[4] = m2;
      r[5] = m3;
      c.flags.assign(ZF, 0);
    }
    return;
  }
  const m0 = c.read64(c.a0, c.a1);
  const m1 = c.v1;
  if (m0 === r[0] && m1 === r[4]) {
    c.write64(c.a0, c.a1, r[6]!, r[2]!);
    c.flags.assign(ZF, ZF);
  } else {
    c.write64(c.a0, c.a1, m0, m1);
    c.setReg(RAX, 4, m0, 0);
    c.setReg(RDX, 4, m1, 0);
    c.flags.assign(ZF, 0);
  }
}

/** ENTER size, level (APM vol. 3 "ENTER"), 64-bit stack. */
function enter(c: Cpu, i: Insn): void {
  const r = c.r;
  const size = i.osz;
  const level = i.imm2 & 31;
  const b0 = c.getReg(RBP, size);
  push(c, size, b0, c.v1);
  const f0 = r[8]!;
  const f1 = r[9]!;
  if (level > 0) {
    let p0 = r[10]!;
    let p1 = r[11]!;
    for (let k = 1; k < level; k++) {
      const t = (p0 >>> 0) - size;
      p1 = (p1 - (t < 0 ? 1 : 0)) | 0;
      p0 = t | 0;
      const v0 = c.read(p0, p1, size);
      push(c, size, v0, c.v1);
    }
    push(c, size, f0, f1);
  }
  c.setReg(RBP, size, f0, f1);
  stepReg(c, RSP, -i.imm, 8);
}
