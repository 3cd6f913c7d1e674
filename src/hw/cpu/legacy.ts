// Stack and near-branch instructions outside 64-bit mode (real mode, 16/32-bit protected and
// compatibility mode): the stack is SS:SP or SS:ESP by SS.B with the SS base, IP wraps at the
// operand size (APM vol. 3 "PUSH", "CALL (Near)", "Jcc"...). The decoder maps these handlers to
// H_LEGACY_FLOW only for 16/32-bit code, so 64-bit code keeps its own fast handlers.

import { type Cpu, RAX, RBP, RCX, RDI, RSI, RSP, SEG_DS, SEG_ES, VEC_UD } from './cpu.js';
import { checkLimit } from './effective-address.js';
import { readE, storeE } from './execute.js';
import { stackAdjust, stackPush, stackRead, stackWidth } from './far.js';
import { DF, LF_SUB } from './flags.js';
import { type Insn, REP_E, REP_NONE } from './insn.js';
import * as H from './ops.js';

/** IP after adding `delta`, wrapped to the operand size. */
function wrapIp(v: number, osz: number): number {
  return osz === 2 ? v & 0xffff : v | 0;
}

function pop(c: Cpu, size: number): number {
  const v = stackRead(c, 0, size);
  stackAdjust(c, size);
  return v;
}

export function legacyFlow(c: Cpu, i: Insn): void {
  const r = c.r;
  const op = i.sub >> 4;
  const sub = i.sub & 15;
  const osz = i.osz;
  switch (op) {
    case H.H_PUSH_R:
      stackPush(c, osz, c.getReg(i.rm, osz), 0);
      return;
    case H.H_POP_R: {
      const v = pop(c, osz);
      c.setReg(i.rm, osz, v, 0);
      return;
    }
    case H.H_PUSH_I:
      stackPush(c, osz, osz === 2 ? i.imm & 0xffff : i.imm, 0);
      return;
    case H.H_PUSH_E:
      stackPush(c, osz, readE(c, i, osz), 0);
      return;
    case H.H_POP_E: {
      const sp = r[2 * RSP]!;
      const v = pop(c, osz);
      try {
        storeE(c, i, osz, v, 0);
      } catch (e) {
        r[2 * RSP] = sp;
        throw e;
      }
      return;
    }
    case H.H_PUSHF:
      stackPush(c, osz, c.flags.get() & 0xfcffff, 0);
      return;
    case H.H_POPF: {
      const v = pop(c, osz);
      const old = c.flags.get();
      // Not RF: POPF does not load it (Intel SDM vol. 3B, 17.3.1.1).
      let mask = 0x244dd5;
      if (c.cpl <= ((old >> 12) & 3)) mask |= 0x200;
      if (c.cpl === 0) mask |= 0x3000;
      if (osz === 2) mask &= 0xffff;
      c.flags.put((old & ~mask) | (v & mask));
      return;
    }
    case H.H_CALL_J:
      stackPush(c, osz, r[32]!, 0);
      r[32] = wrapIp(r[32]! + i.imm, osz);
      return;
    case H.H_CALL_E: {
      const t = readE(c, i, osz);
      stackPush(c, osz, r[32]!, 0);
      r[32] = wrapIp(t, osz);
      return;
    }
    case H.H_RET: {
      const t = stackRead(c, 0, osz);
      stackAdjust(c, osz + (i.imm & 0xffff));
      r[32] = wrapIp(t, osz);
      return;
    }
    case H.H_JMP_J:
      r[32] = wrapIp(r[32]! + i.imm, osz);
      return;
    case H.H_JMP_E:
      r[32] = wrapIp(readE(c, i, osz), osz);
      return;
    case H.H_JCC:
      if (c.flags.cond(sub)) r[32] = wrapIp(r[32]! + i.imm, osz);
      return;
    case H.H_LEAVE: {
      // SP = BP at the stack width, then BP = pop.
      if (stackWidth(c) === 4) r[2 * RSP] = r[2 * RBP]!;
      else r[2 * RSP] = (r[2 * RSP]! & ~0xffff) | (r[2 * RBP]! & 0xffff);
      const v = pop(c, osz);
      c.setReg(RBP, osz, v, 0);
      return;
    }
    case H.H_MOVS:
    case H.H_CMPS:
    case H.H_STOS:
    case H.H_LODS:
    case H.H_SCAS:
      stringOp(c, i, op);
      return;
    default:
      c.fault(VEC_UD); // ENTER outside 64-bit mode is not modelled
  }
}

const MASK = [0, 0xff, 0xffff, 0, -1];

/** Adds `step` to register n at address size `asz` (2: the low word only). */
function stepIndex(c: Cpu, n: number, step: number, asz: number): void {
  const r = c.r;
  const v = r[2 * n]!;
  r[2 * n] = asz === 2 ? (v & ~0xffff) | ((v + step) & 0xffff) : (v + step) | 0;
}

/**
 * seg.base + (register n at address size `asz`), a linear address below 4 GiB, after the limit
 * check of `size` bytes there.
 */
function linear(c: Cpu, seg: number, n: number, asz: number, size: number): number {
  const off = asz === 2 ? c.r[2 * n]! & 0xffff : c.r[2 * n]!;
  checkLimit(c, seg, off, size);
  return (c.segBase[2 * seg]! + off) | 0;
}

/**
 * MOVS/CMPS/STOS/LODS/SCAS of 16/32-bit code: sources DS:rSI (or the override), destinations
 * ES:rDI (never overridden), counts and indexes at the address size.
 */
function stringOp(c: Cpu, i: Insn, op: number): void {
  const r = c.r;
  const size = i.osz;
  const asz = i.asz;
  const step = (c.flags.bits & DF) !== 0 ? -size : size;
  const rep = i.rep !== REP_NONE;
  const src = i.seg >= 0 ? i.seg : SEG_DS;
  const m = MASK[size]!;
  for (;;) {
    if (rep && (asz === 2 ? r[2 * RCX]! & 0xffff : r[2 * RCX]!) === 0) return;
    let again = true;
    switch (op) {
      case H.H_MOVS: {
        const v = c.read(linear(c, src, RSI, asz, size), 0, size);
        c.write(linear(c, SEG_ES, RDI, asz, size), 0, size, v, 0);
        stepIndex(c, RSI, step, asz);
        stepIndex(c, RDI, step, asz);
        break;
      }
      case H.H_STOS:
        c.write(linear(c, SEG_ES, RDI, asz, size), 0, size, r[2 * RAX]! & m, 0);
        stepIndex(c, RDI, step, asz);
        break;
      case H.H_LODS:
        c.setReg(RAX, size, c.read(linear(c, src, RSI, asz, size), 0, size), 0);
        stepIndex(c, RSI, step, asz);
        break;
      default: {
        // CMPS compares [rSI] with [rDI]; SCAS compares rAX with [rDI].
        const a =
          op === H.H_CMPS ? c.read(linear(c, src, RSI, asz, size), 0, size) : r[2 * RAX]! & m;
        const b = c.read(linear(c, SEG_ES, RDI, asz, size), 0, size);
        c.flags.set(LF_SUB, size, a, 0, b, 0, (a - b) & m, 0);
        if (op === H.H_CMPS) stepIndex(c, RSI, step, asz);
        stepIndex(c, RDI, step, asz);
        again = c.flags.zf() === (i.rep === REP_E);
      }
    }
    if (!rep) return;
    stepIndex(c, RCX, -1, asz);
    if (!again) return;
  }
}
