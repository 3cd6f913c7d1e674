// SIMD instruction semantics, part 2: SSE2 packed integer operations on XMM registers (APM vol. 4
// per instruction), plus the bitwise and unpack operations the float forms share (ANDPS =
// PAND, UNPCKLPS = PUNPCKLDQ, ...). Results are built in the scratch slot and then copied, since
// the source may be the destination.

import type { Cpu } from './cpu.js';
import type { Insn } from './insn.js';
import { XMM_TMP } from './simd-state.js';
import { srcW } from './sse-operands.js';
import { PINT } from './sse-table.js';

const T = XMM_TMP;

function sat8(v: number): number {
  return v > 127 ? 127 : v < -128 ? -128 : v;
}
function satU8(v: number): number {
  return v > 255 ? 255 : v < 0 ? 0 : v;
}
function sat16(v: number): number {
  return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}
function satU16(v: number): number {
  return v > 65535 ? 65535 : v < 0 ? 0 : v;
}

/** Vx = Vx op Wx for the PINT_* operations. */
export function executePint(c: Cpu, i: Insn): void {
  const st = c.simd;
  const s = srcW(c, i, 16, true);
  const d = i.reg;
  const x = st.x32;
  const u8 = st.u8;
  const i8 = st.i8;
  const u16 = st.u16;
  const i16 = st.i16;
  const u32 = st.u32;
  const D8 = 16 * d;
  const S8 = 16 * s;
  const T8 = 16 * T;
  const D16 = 8 * d;
  const S16 = 8 * s;
  const T16 = 8 * T;
  const D32 = 4 * d;
  const S32 = 4 * s;
  const T32 = 4 * T;
  switch (i.sub) {
    case PINT.pand:
      for (let k = 0; k < 4; k++) x[T32 + k] = x[D32 + k]! & x[S32 + k]!;
      break;
    case PINT.pandn:
      for (let k = 0; k < 4; k++) x[T32 + k] = ~x[D32 + k]! & x[S32 + k]!;
      break;
    case PINT.por:
      for (let k = 0; k < 4; k++) x[T32 + k] = x[D32 + k]! | x[S32 + k]!;
      break;
    case PINT.pxor:
      for (let k = 0; k < 4; k++) x[T32 + k] = x[D32 + k]! ^ x[S32 + k]!;
      break;
    case PINT.punpcklbw:
    case PINT.punpckhbw: {
      const h = i.sub === PINT.punpckhbw ? 8 : 0;
      for (let k = 0; k < 8; k++) {
        u8[T8 + 2 * k] = u8[D8 + h + k]!;
        u8[T8 + 2 * k + 1] = u8[S8 + h + k]!;
      }
      break;
    }
    case PINT.punpcklwd:
    case PINT.punpckhwd: {
      const h = i.sub === PINT.punpckhwd ? 4 : 0;
      for (let k = 0; k < 4; k++) {
        u16[T16 + 2 * k] = u16[D16 + h + k]!;
        u16[T16 + 2 * k + 1] = u16[S16 + h + k]!;
      }
      break;
    }
    case PINT.punpckldq:
    case PINT.punpckhdq: {
      const h = i.sub === PINT.punpckhdq ? 2 : 0;
      x[T32] = x[D32 + h]!;
      x[T32 + 1] = x[S32 + h]!;
      x[T32 + 2] = x[D32 + h + 1]!;
      x[T32 + 3] = x[S32 + h + 1]!;
      break;
    }
    case PINT.punpcklqdq:
    case PINT.punpckhqdq: {
      const h = i.sub === PINT.punpckhqdq ? 2 : 0;
      x[T32] = x[D32 + h]!;
      x[T32 + 1] = x[D32 + h + 1]!;
      x[T32 + 2] = x[S32 + h]!;
      x[T32 + 3] = x[S32 + h + 1]!;
      break;
    }
    case PINT.packsswb:
      for (let k = 0; k < 8; k++) {
        i8[T8 + k] = sat8(i16[D16 + k]!);
        i8[T8 + 8 + k] = sat8(i16[S16 + k]!);
      }
      break;
    case PINT.packuswb:
      for (let k = 0; k < 8; k++) {
        u8[T8 + k] = satU8(i16[D16 + k]!);
        u8[T8 + 8 + k] = satU8(i16[S16 + k]!);
      }
      break;
    case PINT.packssdw:
      for (let k = 0; k < 4; k++) {
        i16[T16 + k] = sat16(x[D32 + k]!);
        i16[T16 + 4 + k] = sat16(x[S32 + k]!);
      }
      break;
    case PINT.pcmpeqb:
      for (let k = 0; k < 16; k++) u8[T8 + k] = u8[D8 + k] === u8[S8 + k] ? 0xff : 0;
      break;
    case PINT.pcmpeqw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = u16[D16 + k] === u16[S16 + k] ? 0xffff : 0;
      break;
    case PINT.pcmpeqd:
      for (let k = 0; k < 4; k++) x[T32 + k] = x[D32 + k] === x[S32 + k] ? -1 : 0;
      break;
    case PINT.pcmpgtb:
      for (let k = 0; k < 16; k++) u8[T8 + k] = i8[D8 + k]! > i8[S8 + k]! ? 0xff : 0;
      break;
    case PINT.pcmpgtw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = i16[D16 + k]! > i16[S16 + k]! ? 0xffff : 0;
      break;
    case PINT.pcmpgtd:
      for (let k = 0; k < 4; k++) x[T32 + k] = x[D32 + k]! > x[S32 + k]! ? -1 : 0;
      break;
    case PINT.paddb:
      for (let k = 0; k < 16; k++) u8[T8 + k] = u8[D8 + k]! + u8[S8 + k]!;
      break;
    case PINT.paddw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = u16[D16 + k]! + u16[S16 + k]!;
      break;
    case PINT.paddd:
      for (let k = 0; k < 4; k++) x[T32 + k] = (x[D32 + k]! + x[S32 + k]!) | 0;
      break;
    case PINT.paddq:
    case PINT.psubq:
      for (let k = 0; k < 4; k += 2) {
        const a = u32[D32 + k]!;
        const b = u32[S32 + k]!;
        if (i.sub === PINT.paddq) {
          const t = a + b;
          x[T32 + k] = t | 0;
          x[T32 + k + 1] = (x[D32 + k + 1]! + x[S32 + k + 1]! + (t > 0xffffffff ? 1 : 0)) | 0;
        } else {
          const t = a - b;
          x[T32 + k] = t | 0;
          x[T32 + k + 1] = (x[D32 + k + 1]! - x[S32 + k + 1]! - (t < 0 ? 1 : 0)) | 0;
        }
      }
      break;
    case PINT.psubb:
      for (let k = 0; k < 16; k++) u8[T8 + k] = u8[D8 + k]! - u8[S8 + k]!;
      break;
    case PINT.psubw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = u16[D16 + k]! - u16[S16 + k]!;
      break;
    case PINT.psubd:
      for (let k = 0; k < 4; k++) x[T32 + k] = (x[D32 + k]! - x[S32 + k]!) | 0;
      break;
    case PINT.paddsb:
      for (let k = 0; k < 16; k++) i8[T8 + k] = sat8(i8[D8 + k]! + i8[S8 + k]!);
      break;
    case PINT.paddsw:
      for (let k = 0; k < 8; k++) i16[T16 + k] = sat16(i16[D16 + k]! + i16[S16 + k]!);
      break;
    case PINT.psubsb:
      for (let k = 0; k < 16; k++) i8[T8 + k] = sat8(i8[D8 + k]! - i8[S8 + k]!);
      break;
    case PINT.psubsw:
      for (let k = 0; k < 8; k++) i16[T16 + k] = sat16(i16[D16 + k]! - i16[S16 + k]!);
      break;
    case PINT.paddusb:
      for (let k = 0; k < 16; k++) u8[T8 + k] = satU8(u8[D8 + k]! + u8[S8 + k]!);
      break;
    case PINT.paddusw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = satU16(u16[D16 + k]! + u16[S16 + k]!);
      break;
    case PINT.psubusb:
      for (let k = 0; k < 16; k++) u8[T8 + k] = satU8(u8[D8 + k]! - u8[S8 + k]!);
      break;
    case PINT.psubusw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = satU16(u16[D16 + k]! - u16[S16 + k]!);
      break;
    case PINT.pminub:
      for (let k = 0; k < 16; k++) u8[T8 + k] = Math.min(u8[D8 + k]!, u8[S8 + k]!);
      break;
    case PINT.pmaxub:
      for (let k = 0; k < 16; k++) u8[T8 + k] = Math.max(u8[D8 + k]!, u8[S8 + k]!);
      break;
    case PINT.pminsw:
      for (let k = 0; k < 8; k++) i16[T16 + k] = Math.min(i16[D16 + k]!, i16[S16 + k]!);
      break;
    case PINT.pmaxsw:
      for (let k = 0; k < 8; k++) i16[T16 + k] = Math.max(i16[D16 + k]!, i16[S16 + k]!);
      break;
    case PINT.pavgb:
      for (let k = 0; k < 16; k++) u8[T8 + k] = (u8[D8 + k]! + u8[S8 + k]! + 1) >> 1;
      break;
    case PINT.pavgw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = (u16[D16 + k]! + u16[S16 + k]! + 1) >> 1;
      break;
    case PINT.pmullw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = Math.imul(i16[D16 + k]!, i16[S16 + k]!);
      break;
    case PINT.pmulhw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = (i16[D16 + k]! * i16[S16 + k]!) >> 16;
      break;
    case PINT.pmulhuw:
      for (let k = 0; k < 8; k++) u16[T16 + k] = (u16[D16 + k]! * u16[S16 + k]!) >>> 16;
      break;
    case PINT.pmuludq:
      for (let k = 0; k < 4; k += 2) umul(x, T32 + k, u32[D32 + k]!, u32[S32 + k]!);
      break;
    case PINT.pmaddwd:
      for (let k = 0; k < 4; k++) {
        const p0 = i16[D16 + 2 * k]! * i16[S16 + 2 * k]!;
        const p1 = i16[D16 + 2 * k + 1]! * i16[S16 + 2 * k + 1]!;
        x[T32 + k] = (p0 + p1) | 0;
      }
      break;
    case PINT.psadbw:
      for (let h = 0; h < 2; h++) {
        let sum = 0;
        for (let k = 0; k < 8; k++) sum += Math.abs(u8[D8 + 8 * h + k]! - u8[S8 + 8 * h + k]!);
        x[T32 + 2 * h] = sum;
        x[T32 + 2 * h + 1] = 0;
      }
      break;
    case PINT.psrlw:
    case PINT.psraw:
    case PINT.psllw:
    case PINT.psrld:
    case PINT.psrad:
    case PINT.pslld:
    case PINT.psrlq:
    case PINT.psllq: {
      // The count is the source's whole low quadword (unsigned).
      const cnt = x[S32 + 1] !== 0 ? 256 : Math.min(u32[S32]!, 256);
      const kind = SHIFT_BY_PINT.indexOf(i.sub);
      shiftLanes(c, d, d, kind, cnt);
      return;
    }
    default:
      return;
  }
  x[D32] = x[T32]!;
  x[D32 + 1] = x[T32 + 1]!;
  x[D32 + 2] = x[T32 + 2]!;
  x[D32 + 3] = x[T32 + 3]!;
}

/** out[at], out[at + 1] = a * b as unsigned 32 x 32 -> 64 bits. */
function umul(out: Int32Array, at: number, a: number, b: number): void {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const mid = a0 * b1 + a1 * b0; // < 2^33
  const low = a0 * b0 + (mid % 65536) * 65536; // < 2^33
  out[at] = low | 0;
  out[at + 1] = (a1 * b1 + Math.floor(mid / 65536) + Math.floor(low / 4294967296)) | 0;
}

/** Shift kinds as H_SSE_PSHIFT_I numbers them, in PINT order for the register-count forms. */
const SHIFT_BY_PINT = [
  PINT.psrlw,
  PINT.psraw,
  PINT.psllw,
  PINT.psrld,
  PINT.psrad,
  PINT.pslld,
  PINT.psrlq,
  -1,
  PINT.psllq,
];

/** Shifts the lanes of slot `s` into slot `d` by `cnt` (0..256): kinds of H_SSE_PSHIFT_I. */
function shiftLanes(c: Cpu, d: number, s: number, kind: number, cnt: number): void {
  const st = c.simd;
  const x = st.x32;
  switch (kind) {
    case 0:
    case 1:
    case 2: {
      const u = st.u16;
      const v = st.i16;
      for (let k = 0; k < 8; k++) {
        const a = 8 * d + k;
        const b = 8 * s + k;
        if (kind === 0) u[a] = cnt > 15 ? 0 : u[b]! >>> cnt;
        else if (kind === 1) v[a] = v[b]! >> Math.min(cnt, 15);
        else u[a] = cnt > 15 ? 0 : u[b]! << cnt;
      }
      return;
    }
    case 3:
    case 4:
    case 5:
      for (let k = 0; k < 4; k++) {
        const a = 4 * d + k;
        const b = x[4 * s + k]!;
        if (kind === 3) x[a] = cnt > 31 ? 0 : b >>> cnt;
        else if (kind === 4) x[a] = b >> Math.min(cnt, 31);
        else x[a] = cnt > 31 ? 0 : b << cnt;
      }
      return;
    case 6:
    case 8:
      for (let k = 0; k < 4; k += 2) {
        const lo = x[4 * s + k]!;
        const hi = x[4 * s + k + 1]!;
        let rl = 0;
        let rh = 0;
        if (cnt === 0) {
          rl = lo;
          rh = hi;
        } else if (cnt < 32) {
          if (kind === 6) {
            rl = (lo >>> cnt) | (hi << (32 - cnt));
            rh = hi >>> cnt;
          } else {
            rh = (hi << cnt) | (lo >>> (32 - cnt));
            rl = lo << cnt;
          }
        } else if (cnt < 64) {
          if (kind === 6) rl = hi >>> (cnt - 32);
          else rh = lo << (cnt - 32);
        }
        x[4 * d + k] = rl;
        x[4 * d + k + 1] = rh;
      }
      return;
    default: {
      // 7 PSRLDQ, 9 PSLLDQ: bytes.
      const u = st.u8;
      const n = Math.min(cnt, 16);
      for (let k = 0; k < 16; k++) {
        const from = kind === 7 ? k + n : k - n;
        u[16 * XMM_TMP + k] = from >= 0 && from < 16 ? u[16 * s + from]! : 0;
      }
      for (let k = 0; k < 4; k++) x[4 * d + k] = x[4 * XMM_TMP + k]!;
    }
  }
}

/** PSRLW/PSRAW/PSLLW/PSRLD/PSRAD/PSLLD/PSRLQ/PSRLDQ/PSLLQ/PSLLDQ xmm, imm8. */
export function executeShiftImm(c: Cpu, i: Insn): void {
  shiftLanes(c, i.rm, i.rm, i.sub, i.imm & 0xff);
}
