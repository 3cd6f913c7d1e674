// The JIT's front end: from a hot entry point (a physical address with a cached Insn) to a block
// plan, the straight-line run of already-decoded instructions that one compiled function will
// execute. It knows nothing about the target (JavaScript today, WebAssembly later): it only
// decides which instructions a block holds and how each one is to be treated.
//
// A block never leaves its 4 KiB page (so one TLB check at entry covers every fetch and one
// code-page flag covers invalidation), stops before anything that is not whitelisted, and ends
// with at most one control transfer. Instructions not yet decoded are decoded here into the same
// CodeCache the interpreter uses (same page, so no new page gets protected).

import type { CodeCache } from '../code-cache.js';
import { decode } from '../decoder.js';
import { Insn } from '../insn.js';
import * as H from '../ops.js';
import { isSimdRegOnly, isSimdXmmOnly } from '../sse.js';

/** Generated inline by the backend. */
export const TIER_INLINE = 1;
/** Executed by calling the interpreter's `execute` for this one record (same semantics). */
export const TIER_CALL = 2;
/**
 * A register-form SSE instruction touching only XMM state and MXCSR: generated inline when
 * simd-inline.ts knows it (moves, logic, adds, unpacks, immediate shifts), else run by `executeSimdReg`
 * without writing the block's registers back (they are written only if SSE is unavailable and
 * the instruction must fault).
 */
export const TIER_SIMD = 3;
/**
 * The memory form of such an instruction: generated inline like the register forms when it can
 * be, else run through `execute` after the block's state is
 * made fault-ready, but the registers cached in locals stay valid after it (it writes none).
 */
export const TIER_SIMD_MEM = 4;

/** Longest block, in instructions. */
export const MAX_BLOCK = 48;

export interface PlannedInsn {
  readonly insn: Insn;
  /** Offset of the instruction from the block entry, and of the next instruction. */
  readonly off: number;
  readonly next: number;
  readonly tier: number;
}

export interface BlockPlan {
  /** Physical address of the entry and its offset within the page. */
  readonly pa: number;
  readonly pageOff: number;
  readonly insns: readonly PlannedInsn[];
  /** The last instruction transfers control (Jcc, JMP, CALL, RET). */
  readonly endsInBranch: boolean;
  /**
   * The last instruction is a relative jump back to the block's entry (a loop the backend can
   * run without returning to the run loop).
   */
  readonly loops: boolean;
}

/**
 * Handlers the JIT may execute, and how. Unlisted handlers (everything that touches modes,
 * control registers, descriptor tables, I/O, MSRs, HLT, interrupts, CPUID, the TSC, POPF's IF/TF,
 * and any handler added later) end the block before them, so the interpreter runs them.
 */
const TIER = new Uint8Array(256);
for (const h of [
  H.H_ALU_EG,
  H.H_ALU_GE,
  H.H_ALU_EI,
  H.H_TEST_EG,
  H.H_TEST_EI,
  H.H_MOV_EG,
  H.H_MOV_GE,
  H.H_MOV_EI,
  H.H_LEA,
  H.H_INCDEC,
  H.H_PUSH_R,
  H.H_POP_R,
  H.H_SETCC,
  H.H_CMOVCC,
  H.H_MOVZX,
  H.H_MOVSX,
  H.H_NOP,
  H.H_NOTNEG,
  H.H_IMUL_GE,
  H.H_IMUL_GEI,
  H.H_JCC,
  H.H_JMP_J,
  H.H_CALL_J,
  H.H_RET,
]) {
  TIER[h] = TIER_INLINE;
}
for (const h of [
  H.H_MULDIV,
  H.H_SHIFT_I,
  H.H_SHIFT_CL,
  H.H_SHXD_I,
  H.H_SHXD_CL,
  H.H_PUSH_I,
  H.H_PUSH_E,
  H.H_POP_E,
  H.H_PUSHF,
  H.H_CALL_E,
  H.H_JMP_E,
  H.H_XCHG_EG,
  H.H_CMPXCHG,
  H.H_XADD,
  H.H_BT_EG,
  H.H_BT_EI,
  H.H_BSF,
  H.H_BSR,
  H.H_TZCNT,
  H.H_LZCNT,
  H.H_POPCNT,
  H.H_MOVS,
  H.H_CMPS,
  H.H_STOS,
  H.H_LODS,
  H.H_SCAS,
  H.H_CBW,
  H.H_CWD,
  H.H_FLAGOP,
  H.H_SAHF,
  H.H_LAHF,
  H.H_LEAVE,
  H.H_BSWAP,
  H.H_CMPXCHG8B,
  H.H_ENTER,
  H.H_XLAT,
  H.H_MOVBE_GE,
  H.H_MOVBE_EG,
]) {
  TIER[h] = TIER_CALL;
}
// SSE/SSE2 and x87 (sse.ts, x87.ts) change only XMM, MXCSR, x87 state, flags, GPRs and memory:
// they run through execute inside a block rather than ending it.
for (let h = H.H_SSE_MOV; h <= H.H_CLFLUSH; h++) TIER[h] = TIER_CALL;

/** How the JIT treats handler `h`: TIER_INLINE, TIER_CALL or 0 (ends the block before it). */
export function tierOf(h: number): number {
  return h < TIER.length ? TIER[h]! : 0;
}

/** How the JIT treats this instruction (tierOf, refined by operand size and sub-operation). */
export function tierFor(i: Insn): number {
  const t = tierOf(i.op);
  if (t === TIER_CALL && isSimdXmmOnly(i)) return isSimdRegOnly(i) ? TIER_SIMD : TIER_SIMD_MEM;
  // Shifts by an immediate are generated for SHL/SHR/SAR/ROL/ROR of 32 and 64 bits; RCL/RCR and
  // narrow operands go through execute.
  if (i.op === H.H_SHIFT_I && i.osz >= 4 && i.sub !== 2 && i.sub !== 3) return TIER_INLINE;
  // Shifts and rotates by CL of a register (the backend calls execute.ts's shiftValue).
  if (i.op === H.H_SHIFT_CL && i.rm >= 0) return TIER_INLINE;
  return t;
}

/** The instruction transfers control: it ends a block after it (Jcc only when taken). */
export function isBranch(h: number): boolean {
  switch (h) {
    case H.H_JCC:
    case H.H_JMP_J:
    case H.H_CALL_J:
    case H.H_RET:
    case H.H_JMP_E:
    case H.H_CALL_E:
      return true;
    default:
      return false;
  }
}

/**
 * Plans the block entered at physical `pa`, whose first instruction is the cached `first`.
 * Returns null when not even the first instruction can be compiled.
 */
export function planBlock(
  mem: Uint8Array,
  code: CodeCache,
  pa: number,
  first: Insn,
  maxLen = MAX_BLOCK,
): BlockPlan | null {
  const pageOff = pa & 0xfff;
  const pageEnd = (pa | 0xfff) + 1;
  const insns: PlannedInsn[] = [];
  let p = pa;
  let insn: Insn | undefined = first;
  let endsInBranch = false;
  while (insns.length < maxLen && p < pageEnd) {
    if (insn === undefined) {
      insn = code.lookup(p);
      if (insn === undefined) {
        const d = new Insn();
        // A failed decode (invalid, or continuing on the next page) ends the block; the
        // interpreter raises whatever that instruction raises when it gets there.
        if (decode(mem, p, pageEnd, d) <= 0) break;
        code.insert(p, d);
        insn = d;
      }
    }
    const tier = tierFor(insn);
    if (tier === 0) break;
    insns.push({ insn, off: p - pa, next: p - pa + insn.len, tier });
    p += insn.len;
    if (isBranch(insn.op)) {
      // A conditional branch that does not loop back to the entry is a side exit: taken, it
      // leaves the block; the block goes on along the fall-through path (a superblock).
      const loopsBack = insn.immHi === -1 && insn.imm === -(p - pa);
      if (insn.op !== H.H_JCC || loopsBack) {
        endsInBranch = true;
        break;
      }
    }
    insn = undefined;
  }
  if (insns.length === 0) return null;
  const last = insns[insns.length - 1]!;
  const loops =
    endsInBranch &&
    (last.insn.op === H.H_JCC || last.insn.op === H.H_JMP_J) &&
    last.insn.immHi === -1 &&
    last.insn.imm === -last.next;
  return { pa, pageOff, insns, endsInBranch, loops };
}
