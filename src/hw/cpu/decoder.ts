// The 64-bit mode instruction decoder: legacy prefixes, REX, the opcode maps of opcode-table.ts,
// ModRM/SIB with RIP-relative addressing, displacements and immediates (AMD64 APM vol. 3, ch. 1
// "Instruction Encoding"). It fills an Insn and returns the length, or a negative DECODE_* code.
// The same decoder serves the interpreter (once per physical address, then cached) and the
// disassembler.

import { MODE_64, MODE_PROT32 } from './cpu.js';
import { Insn, NO_REG, REP_E, REP_NE, REP_NONE, RIP_BASE } from './insn.js';
import * as H from './ops.js';
import {
  ENDBR64,
  FSGSBASE,
  GROUP7_REG,
  hasModrm,
  LEGACY_ONE_BYTE,
  ONE_BYTE,
  type OpDef,
  SZ_B,
  SZ_D64,
  SZ_F64,
  SZ_W,
  TWO_BYTE,
} from './opcode-table.js';

/** Not a valid (or not an implemented) instruction: #UD. */
export const DECODE_UD = -1;
/** Longer than 15 bytes: #GP(0). */
export const DECODE_TOO_LONG = -2;
/** The bytes ran out at `limit` before the instruction ended (fetch the next page and retry). */
export const DECODE_MORE = -3;

const MAX_LEN = 15;

const XCHG_R_RAX: OpDef = ONE_BYTE[0x91]!;

/** 16-bit ModRM base and index registers by rm (BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP, BX). */
const MODRM16_BASE = [3, 3, 5, 5, 6, 7, 5, 3];
const MODRM16_INDEX = [6, 7, 6, 7, NO_REG, NO_REG, NO_REG, NO_REG];

/** Handlers that use RSP, RIP or flat RSI/RDI as 64-bit registers (see H_LEGACY_FLOW). */
const LEGACY_FLOW: ReadonlySet<number> = new Set([
  H.H_PUSH_R,
  H.H_POP_R,
  H.H_PUSH_I,
  H.H_PUSH_E,
  H.H_POP_E,
  H.H_PUSHF,
  H.H_POPF,
  H.H_CALL_J,
  H.H_CALL_E,
  H.H_RET,
  H.H_JMP_J,
  H.H_JMP_E,
  H.H_JCC,
  H.H_LEAVE,
  H.H_ENTER,
  H.H_MOVS,
  H.H_CMPS,
  H.H_STOS,
  H.H_LODS,
  H.H_SCAS,
]);

/** A byte-register number as Insn codes it: AH..BH (16..19) when n is 4..7 and there is no REX. */
function byteReg(n: number, rex: boolean): number {
  return !rex && n >= 4 && n < 8 ? n + 12 : n;
}

/**
 * Decodes the instruction at bytes[pos], reading no byte at or past `limit`, into `out`.
 * Returns its length or a DECODE_* code.
 */
export function decode(
  bytes: Uint8Array,
  pos: number,
  limit: number,
  out: Insn,
  /** MODE_* of the code segment: 64-bit, or 32/16-bit defaults (no REX, 16-bit ModRM). */
  mode = MODE_64,
): number {
  const legacy = mode !== MODE_64;
  let p = pos;
  const end = Math.min(limit, pos + MAX_LEN);
  let opsize16 = false;
  let addr32 = false;
  let rep = REP_NONE;
  let lock = false;
  let seg = NO_REG;
  let rex = 0;
  let b = 0;
  // Legacy prefixes, then an optional REX that must come last.
  for (;;) {
    if (p >= end) return p >= pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
    b = bytes[p++]!;
    if ((b & 0xf0) === 0x40 && !legacy) {
      rex = b;
      continue;
    }
    let prefix = true;
    switch (b) {
      case 0x66:
        opsize16 = true;
        break;
      case 0x67:
        addr32 = true;
        break;
      case 0xf3:
        rep = REP_E;
        break;
      case 0xf2:
        rep = REP_NE;
        break;
      case 0xf0:
        lock = true;
        break;
      case 0x64:
        seg = 4;
        break;
      case 0x65:
        seg = 5;
        break;
      case 0x26:
      case 0x2e:
      case 0x36:
      case 0x3e:
        // ES/CS/SS/DS overrides have no effect in 64-bit mode.
        if (legacy) seg = (b >> 3) & 3;
        break;
      default:
        prefix = false;
    }
    if (!prefix) break;
    rex = 0; // a REX followed by a legacy prefix is ignored
  }
  const rexW = (rex & 8) !== 0;
  const rexR = (rex & 4) << 1;
  const rexX = (rex & 2) << 2;
  const rexB = (rex & 1) << 3;
  const hasRex = rex !== 0;

  let def: OpDef | null;
  let twoByte = false;
  if (b === 0x0f) {
    if (p >= end) return p >= pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
    b = bytes[p++]!;
    twoByte = true;
    def = TWO_BYTE[b]!;
    if (b === 0x01) {
      // Group 7: register forms other than SMSW/LMSW are whole instructions by ModRM byte.
      if (p >= end) return p >= pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
      const m = bytes[p]!;
      if (m >= 0xc0) {
        const special = GROUP7_REG.get(m);
        if (special !== undefined) {
          p++;
          def = special;
        } else if (((m >> 3) & 7) !== 4 && ((m >> 3) & 7) !== 6) {
          return DECODE_UD;
        }
      }
    }
  } else {
    def = legacy && LEGACY_ONE_BYTE.has(b) ? LEGACY_ONE_BYTE.get(b)! : ONE_BYTE[b]!;
    if (b === 0x90 && rexB !== 0) def = XCHG_R_RAX;
  }
  if (def === null) return DECODE_UD;
  if (def.pfx !== undefined) {
    // SSE: 66/F3/F2 select the instruction (F3/F2 win over 66) and stop being prefixes.
    const k = rep === REP_NE ? 3 : rep === REP_E ? 2 : opsize16 ? 1 : 0;
    def = def.pfx[k] ?? null;
    if (def === null) return DECODE_UD;
    opsize16 = false;
    rep = REP_NONE;
  }
  if (def.f3 !== undefined && rep === REP_E) {
    def = def.f3;
    rep = REP_NONE;
  } else if (def.f2 !== undefined && rep === REP_NE) {
    def = def.f2;
    rep = REP_NONE;
  }

  out.rex = hasRex;
  out.rep = rep;
  out.lock = lock;
  out.seg = seg;
  // Address size: 64 (67: 32) in 64-bit mode; else the CS default (D) toggled by 67.
  const def16 = legacy && mode !== MODE_PROT32;
  const asz = !legacy ? (addr32 ? 4 : 8) : addr32 !== def16 ? 2 : 4;
  out.asz = asz;
  out.rm = NO_REG;
  out.base = NO_REG;
  out.index = NO_REG;
  out.scale = 0;
  out.disp = 0;
  out.dispHi = 0;
  out.imm = 0;
  out.immHi = 0;
  out.imm2 = 0;
  out.reg = 0;

  // ModRM, SIB and displacement.
  let mod = 3;
  if (hasModrm(def)) {
    if (p >= end) return p >= pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
    const modrm = bytes[p++]!;
    mod = modrm >> 6;
    const regField = (modrm >> 3) & 7;
    if (twoByte && b === 0xae && rep === REP_E && mod === 3 && regField < 4 && !legacy) {
      // F3 0F AE /0../3 with mod = 3: RDFSBASE, RDGSBASE, WRFSBASE, WRGSBASE.
      def = FSGSBASE[regField]!;
      rep = REP_NONE;
      out.rep = REP_NONE;
    } else if (def.group !== undefined) {
      const g = def.group[regField] ?? null;
      if (g === null) return DECODE_UD;
      def = g;
      if (def.f3 !== undefined && rep === REP_E) {
        def = def.f3;
        rep = REP_NONE;
        out.rep = REP_NONE;
      }
    }
    if (twoByte && b === 0x1e && rep === REP_E && modrm === 0xfa) {
      def = ENDBR64;
      out.rep = REP_NONE;
    }
    if (def.memAlt !== undefined && mod !== 3) def = def.memAlt;
    if (def.form === 'modreg') mod = 3;
    if (def.form === 'mem' && mod === 3) return DECODE_UD;
    if (def.form === 'reg' && mod !== 3) return DECODE_UD;
    out.reg = regField | rexR;
    const rm = modrm & 7;
    if (mod === 3) {
      out.rm = rm | rexB;
    } else if (asz === 2) {
      // 16-bit addressing (APM vol. 3, 1.4.1 Table 1-12): BX/BP + SI/DI, disp16 alone.
      if (rm === 6 && mod === 0) {
        mod = 2;
      } else {
        out.base = MODRM16_BASE[rm]!;
        out.index = MODRM16_INDEX[rm]!;
      }
      if (seg === NO_REG) seg = rm === 2 || rm === 3 || (rm === 6 && modrm >> 6 !== 0) ? 2 : 3;
      if (mod === 2) {
        if (p + 2 > end) return p + 2 > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
        out.disp = ((bytes[p]! | (bytes[p + 1]! << 8)) << 16) >> 16;
        out.dispHi = out.disp >> 31;
        p += 2;
        mod = 0; // displacement read
      }
    } else if (rm === 4) {
      if (p >= end) return p >= pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
      const sib = bytes[p++]!;
      const idx = ((sib >> 3) & 7) | rexX;
      if (idx !== 4) {
        out.index = idx;
        out.scale = sib >> 6;
      }
      const base = sib & 7;
      if (base === 5 && mod === 0) {
        mod = 2; // disp32, no base
      } else {
        out.base = base | rexB;
      }
    } else if (rm === 5 && mod === 0) {
      mod = 2;
      if (!legacy) {
        out.base = RIP_BASE;
        if (addr32) return DECODE_UD; // EIP-relative: not supported yet (rare)
      }
    } else {
      out.base = rm | rexB;
    }
    // Outside 64-bit mode every memory operand has a segment: DS, or SS for rSP/rBP bases.
    if (legacy && seg === NO_REG && asz === 4) seg = out.base === 4 || out.base === 5 ? 2 : 3;
    if (mod === 1) {
      if (p >= end) return p >= pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
      out.disp = (bytes[p++]! << 24) >> 24;
      out.dispHi = out.disp >> 31;
    } else if (mod === 2) {
      if (p + 4 > end) return p + 4 > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
      out.disp = bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
      out.dispHi = out.disp >> 31;
      p += 4;
    }
  }

  out.seg = seg;

  // Operand size.
  let osz: number;
  switch (def.size) {
    case SZ_B:
      osz = 1;
      break;
    case SZ_W:
      osz = 2;
      break;
    case SZ_D64:
      osz = legacy ? (opsize16 !== def16 ? 2 : 4) : opsize16 ? 2 : 8;
      break;
    case SZ_F64:
      osz = legacy ? (opsize16 !== def16 ? 2 : 4) : 8;
      break;
    default:
      osz = legacy ? (opsize16 !== def16 ? 2 : 4) : rexW ? 8 : opsize16 ? 2 : 4;
  }
  out.osz = osz;
  out.def = def;
  out.op = def.h;
  out.sub = def.sub;
  // Stack and near-branch handlers assume a 64-bit RSP/RIP: 16/32-bit code takes a variant
  // that honours SS.B, the SS base and IP wrap-around (system.ts), so the 64-bit path pays nothing.
  if (legacy && LEGACY_FLOW.has(def.h)) {
    out.op = H.H_LEGACY_FLOW;
    out.sub = (def.h << 4) | def.sub;
  }

  // Operand shapes: register fields, implicit registers and immediates.
  const ops = def.ops;
  for (let k = 0; k < ops.length; k++) {
    const o = ops[k]!;
    switch (o) {
      case 'Eb':
        if (out.rm !== NO_REG) out.rm = byteReg(out.rm, hasRex);
        break;
      case 'Gb':
        out.reg = byteReg(out.reg, hasRex);
        break;
      case 'Zb':
        out.rm = byteReg((b & 7) | rexB, hasRex);
        break;
      case 'Zv':
        out.rm = (b & 7) | rexB;
        break;
      case 'AL':
      case 'rAX':
        // The accumulator is the E operand (ALU/TEST/XCHG short forms) unless the other
        // operand is a moffs memory operand (MOV A0..A3), where it is the G operand.
        if (k === 0 && ops[1]?.charCodeAt(0) !== 0x4f /* O */) out.rm = 0;
        else out.reg = 0;
        break;
      case 'Ib':
      case 'Ibs':
      case 'Jb': {
        if (p >= end) return p >= pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
        const v = bytes[p++]!;
        if (k === 1 && def.ops[0] === 'Iw') {
          out.imm2 = v; // ENTER's level
        } else if (o === 'Ib' && (osz === 1 || k > 0)) {
          out.imm = v; // zero-extended: byte operands, shift counts, bit offsets
        } else {
          out.imm = (v << 24) >> 24;
          out.immHi = out.imm >> 31;
          if (osz === 2 && o !== 'Jb') out.imm &= 0xffff;
        }
        break;
      }
      case 'Iw': {
        if (p + 2 > end) return p + 2 > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
        out.imm = bytes[p]! | (bytes[p + 1]! << 8);
        p += 2;
        break;
      }
      case 'Iz':
      case 'Jz': {
        if (osz === 2 && (o === 'Iz' || legacy)) {
          if (p + 2 > end) return p + 2 > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
          out.imm = bytes[p]! | (bytes[p + 1]! << 8);
          if (o === 'Jz') out.imm = (out.imm << 16) >> 16; // rel16, wraps with IP
          p += 2;
        } else {
          if (p + 4 > end) return p + 4 > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
          out.imm =
            bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
          out.immHi = out.imm >> 31;
          p += 4;
        }
        break;
      }
      case 'Iv': {
        const n = osz;
        if (p + n > end) return p + n > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
        if (n === 2) out.imm = bytes[p]! | (bytes[p + 1]! << 8);
        else
          out.imm =
            bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
        if (n === 8) {
          out.immHi =
            bytes[p + 4]! | (bytes[p + 5]! << 8) | (bytes[p + 6]! << 16) | (bytes[p + 7]! << 24);
        }
        p += n;
        break;
      }
      case 'Ob':
      case 'Ov': {
        // moffs: an absolute address of address size, no ModRM.
        const n = out.asz;
        if (p + n > end) return p + n > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
        out.disp =
          n === 2
            ? bytes[p]! | (bytes[p + 1]! << 8)
            : bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
        if (legacy && seg === NO_REG) out.seg = 3;
        out.dispHi =
          n === 8
            ? bytes[p + 4]! | (bytes[p + 5]! << 8) | (bytes[p + 6]! << 16) | (bytes[p + 7]! << 24)
            : 0;
        p += n;
        break;
      }
      case '1':
        out.imm = 1; // shift count of D0/D1
        break;
      case 'Ap': {
        // ptr16:16/32: the offset (operand size) then the selector.
        const n = osz === 2 ? 2 : 4;
        if (p + n + 2 > end) return p + n + 2 > pos + MAX_LEN ? DECODE_TOO_LONG : DECODE_MORE;
        out.imm =
          n === 2
            ? bytes[p]! | (bytes[p + 1]! << 8)
            : bytes[p]! | (bytes[p + 1]! << 8) | (bytes[p + 2]! << 16) | (bytes[p + 3]! << 24);
        out.imm2 = bytes[p + n]! | (bytes[p + n + 1]! << 8);
        p += n + 2;
        break;
      }
      default:
        break; // Ev, Gv, M, CL, X*, Y*: nothing more to read
    }
  }
  if (p > pos + MAX_LEN) return DECODE_TOO_LONG;
  // Only 64-bit operations use the high half of an immediate (keeps lazy-flag operands clean).
  if (osz !== 8) out.immHi = 0;
  // LOCK is valid only on read-modify-write instructions with a memory destination.
  if (lock && !(out.rm === NO_REG && lockable(def.h, out.sub))) return DECODE_UD;
  out.len = p - pos;
  return out.len;
}

/** LOCK is allowed on these read-modify-write instructions with a memory destination. */
function lockable(h: number, sub: number): boolean {
  switch (h) {
    case H.H_ALU_EG:
    case H.H_ALU_EI:
      return sub !== 7;
    case H.H_INCDEC:
    case H.H_NOTNEG:
    case H.H_XCHG_EG:
    case H.H_CMPXCHG:
    case H.H_XADD:
    case H.H_CMPXCHG8B:
      return true;
    case H.H_BT_EG:
    case H.H_BT_EI:
      return sub !== 0;
    default:
      return false;
  }
}

/** Decodes into a fresh Insn (tools and tests). */
export function decodeOne(bytes: Uint8Array, pos = 0): Insn | number {
  const insn = new Insn();
  const n = decode(bytes, pos, bytes.length, insn);
  return n < 0 ? n : insn;
}
