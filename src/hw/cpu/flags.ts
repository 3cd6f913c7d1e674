// Lazy RFLAGS (the QEMU CC_OP / Bochs / v86 technique): an arithmetic instruction records what it
// computed (operation, size, operands, result) and the six arithmetic flags (CF PF AF ZF SF OF)
// are derived only when something reads them (Jcc, SETcc, CMOVcc, ADC/SBB, PUSHF, LAHF, ...).
//
// Representation. `bits` holds every RFLAGS bit that is not lazy: always DF, IF, TF and the rest
// of the control bits; all six arithmetic flags when `op === LF_NONE`; CF as well for INC/DEC
// (which leave CF alone). Operands and result are stored as 32-bit halves (`*0` low, `*1` high);
// for 8-, 16- and 32-bit operations the high half is 0 and the low half is the value masked to its
// size (8/16-bit zero-extended, 32-bit as an int32). That makes the unsigned compares below the
// same for every size. AMD64 APM vol. 1, 3.1.6 "Flags Register"; vol. 3 per-instruction flags.

/** RFLAGS bits (APM vol. 2, 3.1.6). */
export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const TF = 0x100;
export const IF = 0x200;
export const DF = 0x400;
export const OF = 0x800;
/** Resume flag: suppresses instruction breakpoints for one instruction (debug.ts). */
export const RF = 0x10000;
/** The six flags the lazy state can stand for. */
export const ARITH_FLAGS = CF | PF | AF | ZF | SF | OF;
/** Bit 1 of RFLAGS reads as one. */
export const FLAGS_FIXED1 = 0x2;

/** `bits` is the whole truth. */
export const LF_NONE = 0;
/** ADD, and ADC with CF clear. */
export const LF_ADD = 1;
/** ADC with CF set: CF out is res <= dst. */
export const LF_ADC1 = 2;
/** SUB, CMP, NEG (dst 0), SBB with CF clear. */
export const LF_SUB = 3;
/** SBB with CF set: CF out is dst <= src. */
export const LF_SBB1 = 4;
/** AND, OR, XOR, TEST: CF = OF = 0, AF = 0 (undefined in the APM; 0 on AMD parts). */
export const LF_LOGIC = 5;
/** INC (src 1): like ADD but CF kept in `bits`. */
export const LF_INC = 6;
/** DEC (src 1): like SUB but CF kept in `bits`. */
export const LF_DEC = 7;

/** Left shift that moves the sign bit of a value of `size` bytes to bit 31 (index = size). */
const TOP_SHIFT = new Int32Array([0, 24, 16, 0, 0, 0, 0, 0, 0]);

/** Even parity of each byte value: PF is set when the low result byte has an even number of 1s. */
export const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let n = i;
  n ^= n >> 4;
  n ^= n >> 2;
  n ^= n >> 1;
  PARITY[i] = (n & 1) === 0 ? PF : 0;
}

/** Unsigned a < b on (hi, lo) pairs. */
function ult(a0: number, a1: number, b0: number, b1: number): boolean {
  return a1 === b1 ? a0 >>> 0 < b0 >>> 0 : a1 >>> 0 < b1 >>> 0;
}

export class LazyFlags {
  /** Non-lazy RFLAGS bits (see the file comment). */
  bits = FLAGS_FIXED1;
  op = LF_NONE;
  /** Operand size in bytes: 1, 2, 4 or 8. */
  size = 4;
  d0 = 0;
  d1 = 0;
  s0 = 0;
  s1 = 0;
  r0 = 0;
  r1 = 0;

  /** Records an arithmetic result; values masked to `size` as the file comment says. */
  set(
    op: number,
    size: number,
    d0: number,
    d1: number,
    s0: number,
    s1: number,
    r0: number,
    r1: number,
  ): void {
    this.op = op;
    this.size = size;
    this.d0 = d0;
    this.d1 = d1;
    this.s0 = s0;
    this.s1 = s1;
    this.r0 = r0;
    this.r1 = r1;
  }

  /** Records a logical result (AND/OR/XOR/TEST). */
  setLogic(size: number, r0: number, r1: number): void {
    this.op = LF_LOGIC;
    this.size = size;
    this.r0 = r0;
    this.r1 = r1;
  }

  /** INC/DEC: keeps CF as it was, then records like ADD/SUB with a source of 1. */
  setIncDec(dec: boolean, size: number, d0: number, d1: number, r0: number, r1: number): void {
    this.bits = (this.bits & ~CF) | this.cf();
    this.set(dec ? LF_DEC : LF_INC, size, d0, d1, 1, 0, r0, r1);
  }

  cf(): number {
    switch (this.op) {
      case LF_ADD:
        return ult(this.r0, this.r1, this.d0, this.d1) ? 1 : 0;
      case LF_ADC1:
        return ult(this.d0, this.d1, this.r0, this.r1) ? 0 : 1;
      case LF_SUB:
        return ult(this.d0, this.d1, this.s0, this.s1) ? 1 : 0;
      case LF_SBB1:
        return ult(this.s0, this.s1, this.d0, this.d1) ? 0 : 1;
      case LF_LOGIC:
        return 0;
      default:
        return this.bits & CF;
    }
  }

  zf(): boolean {
    if (this.op === LF_NONE) return (this.bits & ZF) !== 0;
    return (this.r0 | this.r1) === 0;
  }

  sf(): boolean {
    if (this.op === LF_NONE) return (this.bits & SF) !== 0;
    return (this.size === 8 ? this.r1 : this.r0 << TOP_SHIFT[this.size]!) < 0;
  }

  of(): boolean {
    let t: number;
    switch (this.op) {
      case LF_NONE:
        return (this.bits & OF) !== 0;
      case LF_LOGIC:
        return false;
      case LF_ADD:
      case LF_ADC1:
      case LF_INC:
        t =
          this.size === 8
            ? (this.d1 ^ this.r1) & (this.s1 ^ this.r1)
            : (this.d0 ^ this.r0) & (this.s0 ^ this.r0);
        break;
      default:
        t =
          this.size === 8
            ? (this.d1 ^ this.s1) & (this.d1 ^ this.r1)
            : (this.d0 ^ this.s0) & (this.d0 ^ this.r0);
    }
    return (this.size === 8 ? t : t << TOP_SHIFT[this.size]!) < 0;
  }

  pf(): boolean {
    if (this.op === LF_NONE) return (this.bits & PF) !== 0;
    return PARITY[this.r0 & 0xff] !== 0;
  }

  af(): boolean {
    if (this.op === LF_NONE) return (this.bits & AF) !== 0;
    if (this.op === LF_LOGIC) return false;
    return ((this.d0 ^ this.s0 ^ this.r0) & AF) !== 0;
  }

  /** Condition code cc (the low nibble of Jcc/SETcc/CMOVcc) is true. APM vol. 3, "Jcc". */
  cond(cc: number): boolean {
    let t: boolean;
    switch (cc >> 1) {
      case 0:
        t = this.of();
        break;
      case 1:
        t = this.cf() !== 0;
        break;
      case 2:
        t = this.zf();
        break;
      case 3:
        t = this.cf() !== 0 || this.zf();
        break;
      case 4:
        t = this.sf();
        break;
      case 5:
        t = this.pf();
        break;
      case 6:
        t = this.sf() !== this.of();
        break;
      default:
        t = this.zf() || this.sf() !== this.of();
    }
    return (cc & 1) === 0 ? t : !t;
  }

  /** The low 32 bits of RFLAGS, materialised (the lazy state is folded into `bits`). */
  get(): number {
    if (this.op !== LF_NONE) {
      let f = (this.bits & ~ARITH_FLAGS) | this.cf();
      if (this.pf()) f |= PF;
      if (this.af()) f |= AF;
      if (this.zf()) f |= ZF;
      if (this.sf()) f |= SF;
      if (this.of()) f |= OF;
      this.bits = f;
      this.op = LF_NONE;
    }
    return this.bits;
  }

  /** Sets RFLAGS (low 32 bits); bit 1 always reads as one. */
  put(value: number): void {
    this.bits = value | FLAGS_FIXED1;
    this.op = LF_NONE;
  }

  /** Sets the arithmetic flags in `mask` to `values` (materialising first). */
  assign(mask: number, values: number): void {
    if (this.op !== LF_NONE && (ARITH_FLAGS & ~mask & ~AF) === 0) {
      // Every arithmetic flag but perhaps AF is replaced (shifts keep AF): of the pending state
      // only AF is needed, not all six.
      const keep = (mask & AF) === 0 && this.af() ? AF : 0;
      this.bits = (this.bits & ~(ARITH_FLAGS | mask)) | keep | (values & mask);
      this.op = LF_NONE;
      return;
    }
    this.bits = (this.get() & ~mask) | (values & mask);
  }

  /** Flag bits from a result for SF, ZF and PF, as shift and logic-style instructions set them. */
  static szp(size: number, r0: number, r1: number): number {
    let f = PARITY[r0 & 0xff]!;
    if ((r0 | r1) === 0) f |= ZF;
    if ((size === 8 ? r1 : r0 << TOP_SHIFT[size]!) < 0) f |= SF;
    return f;
  }
}
