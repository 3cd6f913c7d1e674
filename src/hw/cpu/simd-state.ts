// The floating-point and SIMD register state of one processor (APM vol. 1, ch. 4 "Streaming SIMD
// Extensions Media and Scientific Programming" and ch. 6 "x87 Floating-Point Programming").
//
// XMM0-15 live in one buffer seen through typed views of every lane width, so packed integer and
// float operations index lanes directly; slots 16 and 17 are scratch (a memory source operand and
// a result being built). Moves copy int32 words only: reading a float view can change NaN bits
// (V8 may quiet a signalling NaN), so float views are read only by arithmetic, which handles NaNs
// from their bit patterns first.
//
// x87 registers hold the exact 80-bit double-extended value as three typed arrays indexed by
// physical register number 0..7 (ST(i) is register (top + i) & 7): `stSe` the sign and exponent,
// `stHi`/`stLo` the significand's high and low 32 bits (bit 31 of stHi is the integer bit J).

import { F80, fromNumber, toNumber } from './f80.js';

const SCRATCH = new F80();

/** MXCSR bits (APM vol. 1, 4.2.2). */
export const MXCSR_IE = 0x1;
export const MXCSR_DE = 0x2;
export const MXCSR_ZE = 0x4;
export const MXCSR_OE = 0x8;
export const MXCSR_UE = 0x10;
export const MXCSR_PE = 0x20;
export const MXCSR_DAZ = 0x40;
export const MXCSR_RC_SHIFT = 13;
export const MXCSR_FZ = 0x8000;
/** Bits LDMXCSR/FXRSTOR accept (MXCSR_MASK as FXSAVE reports it: DAZ supported, no MM). */
export const MXCSR_MASK = 0xffff;
export const MXCSR_DEFAULT = 0x1f80;

/** Rounding control values (MXCSR.RC, FCW.RC). */
export const RC_NEAREST = 0;
export const RC_DOWN = 1;
export const RC_UP = 2;
export const RC_ZERO = 3;

/** x87 status word bits. */
export const FSW_IE = 0x1;
export const FSW_SF = 0x40;
export const FSW_ES = 0x80;
export const FSW_C0 = 0x100;
export const FSW_C1 = 0x200;
export const FSW_C2 = 0x400;
export const FSW_C3 = 0x4000;
export const FSW_B = 0x8000;
export const FCW_DEFAULT = 0x37f;

export const XMM_SRC = 16;
export const XMM_TMP = 17;

export class SimdState {
  private readonly buf = new ArrayBuffer(18 * 16);
  /** XMM registers as 4 int32 lanes each: register n, lane k at [4n + k]. */
  readonly x32 = new Int32Array(this.buf);
  readonly u8 = new Uint8Array(this.buf);
  readonly i8 = new Int8Array(this.buf);
  readonly u16 = new Uint16Array(this.buf);
  readonly i16 = new Int16Array(this.buf);
  readonly u32 = new Uint32Array(this.buf);
  readonly f32 = new Float32Array(this.buf);
  readonly f64 = new Float64Array(this.buf);
  mxcsr = MXCSR_DEFAULT;

  /** x87 physical registers 0..7 (see the file comment). */
  readonly stSe = new Uint16Array(8);
  readonly stHi = new Uint32Array(8);
  readonly stLo = new Uint32Array(8);
  /** Tag per physical register: true = empty. */
  readonly empty = new Uint8Array(8).fill(1);
  top = 0;
  fcw = FCW_DEFAULT;
  /** FSW without TOP (bits 13:11 come from `top`). */
  fsw = 0;
  /** Last x87 opcode (11 bits), instruction and data pointers, for FXSAVE/FNSTENV. */
  fop = 0;
  fip = 0;
  fdp = 0;

  /** Resets to the power-on state (FNINIT for x87, MXCSR default, XMM zero). */
  reset(): void {
    this.x32.fill(0);
    this.mxcsr = MXCSR_DEFAULT;
    this.fninit();
  }

  fninit(): void {
    this.fcw = FCW_DEFAULT;
    this.fsw = 0;
    this.top = 0;
    this.empty.fill(1);
    this.fop = 0;
    this.fip = 0;
    this.fdp = 0;
  }

  /** The full status word including TOP. */
  get fswFull(): number {
    return (this.fsw & ~0x3800) | (this.top << 11);
  }

  /**
   * The abridged tag word of FXSAVE (and of the VMSA's X87_FTW): bit p set when physical
   * register p is valid (APM vol. 2, 11.4.4, "Saving Media and x87 Execution Unit State").
   */
  get abridgedTag(): number {
    let ftw = 0;
    for (let p = 0; p < 8; p++) if (this.empty[p] === 0) ftw |= 1 << p;
    return ftw;
  }

  /** Sets every register's tag from an abridged tag word (bits 15:8 are ignored). */
  setAbridgedTag(ftw: number): void {
    for (let p = 0; p < 8; p++) this.empty[p] = (ftw >> p) & 1 ? 0 : 1;
  }

  /** Physical x87 register p as its 80 bits: significand | sign-and-exponent << 64. */
  getSt(p: number): bigint {
    return (BigInt(this.stSe[p]!) << 64n) | (BigInt(this.stHi[p]!) << 32n) | BigInt(this.stLo[p]!);
  }

  /** Physical x87 register p as the nearest float64 (tests and tools). */
  stNumber(p: number): number {
    SCRATCH.se = this.stSe[p]!;
    SCRATCH.hi = this.stHi[p]!;
    SCRATCH.lo = this.stLo[p]!;
    return toNumber(SCRATCH);
  }

  /** Physical x87 register p = v, exactly (tests and tools; the tag is not changed). */
  setStNumber(p: number, v: number): void {
    fromNumber(v, SCRATCH);
    this.stSe[p] = SCRATCH.se;
    this.stHi[p] = SCRATCH.hi;
    this.stLo[p] = SCRATCH.lo;
  }

  setSt(p: number, v: bigint): void {
    this.stLo[p] = Number(v & 0xffffffffn);
    this.stHi[p] = Number((v >> 32n) & 0xffffffffn);
    this.stSe[p] = Number((v >> 64n) & 0xffffn);
  }

  /** XMM register n as a 128-bit bigint (tests and tools, not the hot path). */
  getXmm(n: number): bigint {
    let v = 0n;
    for (let k = 3; k >= 0; k--) v = (v << 32n) | BigInt(this.x32[4 * n + k]! >>> 0);
    return v;
  }

  setXmm(n: number, v: bigint): void {
    for (let k = 0; k < 4; k++)
      this.x32[4 * n + k] = Number((v >> BigInt(32 * k)) & 0xffffffffn) | 0;
  }
}
