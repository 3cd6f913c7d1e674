// Stack and near-branch instructions outside 64-bit mode (real mode, 16/32-bit protected and
// compatibility mode): the stack is SS:SP or SS:ESP by SS.B with the SS base, IP wraps at the
// operand size (APM vol. 3 "PUSH", "CALL (Near)", "Jcc"...). The decoder maps these handlers to
// H_LEGACY_FLOW only for 16/32-bit code, so 64-bit code keeps its own fast handlers.

import { type Cpu, RBP, RSP, VEC_UD } from './cpu.js';
import { readE, storeE } from './execute.js';
import { stackAdjust, stackPush, stackRead, stackWidth } from './far.js';
import type { Insn } from './insn.js';
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
      let mask = 0x254dd5;
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
    default:
      c.fault(VEC_UD); // ENTER outside 64-bit mode is not modelled
  }
}
