// The 512-byte FXSAVE/FXRSTOR area (AMD64 APM vol. 2, 11.4.4 "Saving Media and x87 Execution
// Unit State", figure 11-8; the 64-bit form saved by FXSAVE64 / REX.W). Offsets in bytes.

export const FXSAVE_SIZE = 512;
/** FXSAVE's operand must be 16-byte aligned (#GP(0) otherwise). */
export const FXSAVE_ALIGN = 16;
export const FX_FCW = 0; // u16
export const FX_FSW = 2; // u16
export const FX_FTW = 4; // u8, abridged: bit i = 1 when physical register i is valid
export const FX_FOP = 6; // u16, 11 bits
/** 64-bit form: FIP (u64); 32-bit form: FIP offset (u32), FCS (u16). */
export const FX_FIP = 8;
/** 64-bit form: FDP (u64); 32-bit form: FDP offset (u32), FDS (u16). */
export const FX_FDP = 16;
export const FX_MXCSR = 24; // u32
export const FX_MXCSR_MASK = 28; // u32
/** ST0..ST7 (in stack order, ST(0) first), 80-bit values in 16-byte slots. */
export const FX_ST0 = 32;
export const FX_ST_STRIDE = 16;
/** XMM0..XMM15, 16 bytes each. */
export const FX_XMM0 = 160;
