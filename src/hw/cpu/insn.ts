// One decoded instruction: what the interpreter needs to execute it without looking at its bytes
// again. Decoded once per physical address and kept in the code cache; every field is a small
// integer so the record has one fixed shape (monomorphic property loads in the interpreter).

import type { OpDef } from './opcode-table.js';

/** `base`/`index` value for "no register"; `base` value 16 means RIP-relative. */
export const NO_REG = -1;
export const RIP_BASE = 16;

/** Repeat prefixes (F3 = REP/REPE, F2 = REPNE). */
export const REP_NONE = 0;
export const REP_E = 1;
export const REP_NE = 2;

export class Insn {
  /** Handler (H_* in ops.ts). */
  op = 0;
  /** Sub-operation from the table: ALU op, condition code, shift kind, ... */
  sub = 0;
  /** Length in bytes (1..15). */
  len = 0;
  /** Operand size in bytes: 1, 2, 4 or 8. */
  osz = 4;
  /** Address size in bytes: 4 or 8. */
  asz = 8;
  /** ModRM.reg with REX.R (or the register in the opcode's low bits); byte-register coded. */
  reg = 0;
  /**
   * Register of the E operand when ModRM.mod = 3 (byte-register coded), else NO_REG: the
   * operand is in memory at base + index * 2^scale + disp (+ FS/GS base).
   */
  rm = NO_REG;
  base = NO_REG;
  index = NO_REG;
  scale = 0;
  /** Displacement, low half; `dispHi` its high half (sign extension, or moffs64's top). */
  disp = 0;
  dispHi = 0;
  /** 4 = FS, 5 = GS, else NO_REG (other segment prefixes have no effect in 64-bit mode). */
  seg = NO_REG;
  /** Immediate sign- or zero-extended to the operand size, low and high halves. */
  imm = 0;
  immHi = 0;
  /** Second immediate (ENTER's nesting level). */
  imm2 = 0;
  rep = REP_NONE;
  lock = false;
  /** REX present (for the disassembler: SPL..DIL instead of AH..BH). */
  rex = false;
  /** The table row (mnemonic and operand shapes for the disassembler). */
  def: OpDef | null = null;
  /** JIT (jit/jit.ts): entries counted here until hot, then the compiled block entered here. */
  heat = 0;
  block: object | null = null;
}
