// SIMD instruction semantics, part 1: the dispatcher called from execute's default case (so the
// integer switch pays nothing), moves, shuffles, MOVMSK, PINSRW/PEXTRW and the MXCSR/FXSAVE
// state instructions (APM vol. 4 per instruction; FXSAVE: vol. 2, 11.4.4).

import {
  FX_FCW,
  FX_FDP,
  FX_FIP,
  FX_FTW,
  FX_MXCSR,
  FX_ST0,
  FX_ST_STRIDE,
  FX_XMM0,
  FXSAVE_ALIGN,
} from '../../arch/fxsave.js';
import { type Cpu, VEC_GP, VEC_NM, VEC_UD } from './cpu.js';
import { ea } from './effective-address.js';
import { type Insn, NO_REG } from './insn.js';
import * as H from './ops.js';
import { MXCSR_MASK, XMM_TMP } from './simd-state.js';
import { executeCmp, executeComi, executeCvt, executeFp } from './sse-fp.js';
import { executePint, executeShiftImm } from './sse-int.js';
import { checkAligned, readMem, srcW, sseCheck, writeMem, x87Check } from './sse-operands.js';
import * as T from './sse-table.js';
import { executeX87, fcwValue, fwait, statusWithSummary } from './x87.js';

/** Executes a SIMD or x87 instruction (handlers H_SIMD_FIRST..H_SIMD_LAST). */
/**
 * Whether `i` is an SSE instruction in register form that reads and writes only XMM registers
 * and MXCSR (no GPR, RFLAGS or memory): the JIT runs those with `executeSimdReg`, keeping the
 * block's registers in locals across them.
 */
export function isSimdRegOnly(i: Insn): boolean {
  return i.rm !== NO_REG && isSimdXmmOnly(i);
}

/**
 * Whether `i` changes only XMM registers, MXCSR and (for a store) memory: no GPR or RFLAGS
 * write. The JIT runs the memory forms through `execute` without reloading its registers.
 */
export function isSimdXmmOnly(i: Insn): boolean {
  switch (i.op) {
    case H.H_SSE_MOV: {
      const kind = i.sub & 0xff;
      return kind <= T.MOV_STOREHI || kind === T.MOV_Q_LOAD || kind === T.MOV_Q_STORE;
    }
    case H.H_SSE_PINT:
    case H.H_SSE_PSHIFT_I:
    case H.H_SSE_FP:
    case H.H_SSE_CMP:
    case H.H_SSE_SHUF:
      return true;
    default:
      return false;
  }
}

/** Whether an `isSimdXmmOnly` instruction with a memory operand writes memory. */
export function isSimdStore(i: Insn): boolean {
  if (i.op !== H.H_SSE_MOV) return false;
  const kind = i.sub & 0xff;
  return (
    kind === T.MOV_STORE ||
    kind === T.MOV_STORESS ||
    kind === T.MOV_STORESD ||
    kind === T.MOV_STORELO ||
    kind === T.MOV_STOREHI ||
    kind === T.MOV_Q_STORE
  );
}

/**
 * Runs an instruction `isSimdRegOnly` accepted, unless SSE is unavailable (CR0.EM/TS,
 * CR4.OSFXSR): then it does nothing and answers false, and the caller runs it through `execute`
 * with its state written back, which raises the #UD or #NM.
 */
export function executeSimdReg(c: Cpu, i: Insn): boolean {
  if ((c.cr0 & 0xc) !== 0 || (c.cr4 & 0x200) === 0) return false;
  executeSimd(c, i);
  return true;
}

export function executeSimd(c: Cpu, i: Insn): void {
  switch (i.op) {
    case H.H_X87:
      executeX87(c, i);
      return;
    case H.H_FWAIT:
      fwait(c);
      return;
    case H.H_EMMS:
      if ((c.cr0 & 4) !== 0) c.fault(VEC_UD);
      x87Check(c);
      c.simd.empty.fill(1);
      return;
    case H.H_SSE_STATE:
      state(c, i);
      return;
    case H.H_CLFLUSH:
      ea(c, i);
      c.read8(c.a0, c.a1);
      return;
    default:
  }
  sseCheck(c);
  switch (i.op) {
    case H.H_SSE_MOV:
      move(c, i);
      return;
    case H.H_SSE_PINT:
      executePint(c, i);
      return;
    case H.H_SSE_PSHIFT_I:
      executeShiftImm(c, i);
      return;
    case H.H_SSE_FP:
      executeFp(c, i);
      return;
    case H.H_SSE_CMP:
      executeCmp(c, i);
      return;
    case H.H_SSE_COMI:
      executeComi(c, i);
      return;
    case H.H_SSE_CVT:
      executeCvt(c, i);
      return;
    case H.H_SSE_SHUF:
      shuffle(c, i);
      return;
    case H.H_SSE_MOVMSK:
      movmsk(c, i);
      return;
    case H.H_SSE_WORD:
      word(c, i);
      return;
    default:
      c.fault(VEC_UD);
  }
}

function copy(x: Int32Array, to: number, from: number): void {
  x[4 * to] = x[4 * from]!;
  x[4 * to + 1] = x[4 * from + 1]!;
  x[4 * to + 2] = x[4 * from + 2]!;
  x[4 * to + 3] = x[4 * from + 3]!;
}

function move(c: Cpu, i: Insn): void {
  const x = c.simd.x32;
  const aligned = (i.sub & T.MOV_ALIGNED) !== 0;
  const v = 4 * i.reg;
  switch (i.sub & 0xff) {
    case T.MOV_LOAD:
      copy(x, i.reg, srcW(c, i, 16, aligned));
      return;
    case T.MOV_STORE:
      if (i.rm >= 0) {
        copy(x, i.rm, i.reg);
        return;
      }
      ea(c, i, 16);
      if (aligned) checkAligned(c);
      writeMem(c, i.reg, 16);
      return;
    case T.MOV_LOADSS:
      if (i.rm >= 0) {
        x[v] = x[4 * i.rm]!;
      } else {
        ea(c, i, 4);
        readMem(c, i.reg, 4);
      }
      return;
    case T.MOV_LOADSD:
      if (i.rm >= 0) {
        x[v] = x[4 * i.rm]!;
        x[v + 1] = x[4 * i.rm + 1]!;
      } else {
        ea(c, i, 8);
        readMem(c, i.reg, 8);
      }
      return;
    case T.MOV_STORESS:
      if (i.rm >= 0) {
        x[4 * i.rm] = x[v]!;
      } else {
        ea(c, i, 4);
        writeMem(c, i.reg, 4);
      }
      return;
    case T.MOV_STORESD:
      if (i.rm >= 0) {
        x[4 * i.rm] = x[v]!;
        x[4 * i.rm + 1] = x[v + 1]!;
      } else {
        ea(c, i, 8);
        writeMem(c, i.reg, 8);
      }
      return;
    case T.MOV_LOADLO:
      if (i.rm >= 0) {
        // MOVHLPS
        x[v] = x[4 * i.rm + 2]!;
        x[v + 1] = x[4 * i.rm + 3]!;
      } else {
        ea(c, i, 8);
        x[v] = c.read64(c.a0, c.a1);
        x[v + 1] = c.v1;
      }
      return;
    case T.MOV_LOADHI:
      if (i.rm >= 0) {
        // MOVLHPS
        x[v + 2] = x[4 * i.rm]!;
        x[v + 3] = x[4 * i.rm + 1]!;
      } else {
        ea(c, i, 8);
        x[v + 2] = c.read64(c.a0, c.a1);
        x[v + 3] = c.v1;
      }
      return;
    case T.MOV_STORELO:
    case T.MOV_STOREHI:
      ea(c, i, 8);
      writeMem(c, i.reg, 8, (i.sub & 0xff) === T.MOV_STOREHI ? 1 : 0);
      return;
    case T.MOV_D_TO: {
      let lo: number;
      let hi = 0;
      if (i.rm >= 0) {
        lo = c.r[2 * i.rm]!;
        if (i.osz === 8) hi = c.r[2 * i.rm + 1]!;
      } else {
        ea(c, i, i.osz === 8 ? 8 : 4);
        if (i.osz === 8) {
          lo = c.read64(c.a0, c.a1);
          hi = c.v1;
        } else {
          lo = c.read32(c.a0, c.a1);
        }
      }
      x[v] = lo;
      x[v + 1] = hi;
      x[v + 2] = 0;
      x[v + 3] = 0;
      return;
    }
    case T.MOV_D_FROM:
      if (i.rm >= 0) {
        c.r[2 * i.rm] = x[v]!;
        c.r[2 * i.rm + 1] = i.osz === 8 ? x[v + 1]! : 0;
      } else {
        ea(c, i, i.osz === 8 ? 8 : 4);
        writeMem(c, i.reg, i.osz === 8 ? 8 : 4);
      }
      return;
    case T.MOV_Q_LOAD: {
      const s = srcW(c, i, 8, false);
      x[v] = x[4 * s]!;
      x[v + 1] = x[4 * s + 1]!;
      x[v + 2] = 0;
      x[v + 3] = 0;
      return;
    }
    case T.MOV_Q_STORE:
      if (i.rm >= 0) {
        const d = 4 * i.rm;
        x[d] = x[v]!;
        x[d + 1] = x[v + 1]!;
        x[d + 2] = 0;
        x[d + 3] = 0;
      } else {
        ea(c, i, 8);
        writeMem(c, i.reg, 8);
      }
      return;
    case T.MOV_MASKMOV:
      maskmov(c, i);
      return;
    case T.MOV_NTI:
      ea(c, i, i.osz === 8 ? 8 : 4);
      if (i.osz === 8) c.write64(c.a0, c.a1, c.r[2 * i.reg]!, c.r[2 * i.reg + 1]!);
      else c.write32(c.a0, c.a1, c.r[2 * i.reg]!);
      return;
    default:
      c.fault(VEC_UD);
  }
}

/** MASKMOVDQU: the bytes of XMM(reg) whose mask byte in XMM(rm) has bit 7 set, to [rDI]. */
function maskmov(c: Cpu, i: Insn): void {
  const b = c.simd.i8;
  let first = -1;
  let last = -1;
  for (let k = 0; k < 16; k++) {
    if (b[16 * i.rm + k]! < 0) {
      if (first < 0) first = k;
      last = k;
    }
  }
  if (first < 0) return;
  let lo = c.r[2 * 7]!; // rDI (EDI with a 67 prefix)
  let hi = i.asz === 4 ? 0 : c.r[2 * 7 + 1]!;
  if (i.seg >= 0) {
    const t = (lo + c.segBase[2 * i.seg]!) | 0;
    hi = (hi + c.segBase[2 * i.seg + 1]! + (t >>> 0 < lo >>> 0 ? 1 : 0)) | 0;
    lo = t;
  }
  // Probe the first and last bytes written, so a fault stores nothing.
  for (const k of [first, last]) {
    const a = (lo + k) | 0;
    c.translate(a, a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, 1);
  }
  for (let k = first; k <= last; k++) {
    if (b[16 * i.rm + k]! >= 0) continue;
    const a = (lo + k) | 0;
    c.write8(a, a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, c.simd.u8[16 * i.reg + k]!);
  }
}

function shuffle(c: Cpu, i: Insn): void {
  const st = c.simd;
  const x = st.x32;
  const s = srcW(c, i, 16, true);
  const imm = i.imm & 0xff;
  const d = i.reg;
  const t = XMM_TMP;
  switch (i.sub) {
    case T.SHUF_PSHUFD:
      for (let k = 0; k < 4; k++) x[4 * t + k] = x[4 * s + ((imm >> (2 * k)) & 3)]!;
      break;
    case T.SHUF_PSHUFHW:
    case T.SHUF_PSHUFLW: {
      const u = st.u16;
      const base = i.sub === T.SHUF_PSHUFHW ? 4 : 0;
      copy(x, t, s);
      for (let k = 0; k < 4; k++) u[8 * t + base + k] = u[8 * s + base + ((imm >> (2 * k)) & 3)]!;
      break;
    }
    case T.SHUF_SHUFPS:
      x[4 * t] = x[4 * d + (imm & 3)]!;
      x[4 * t + 1] = x[4 * d + ((imm >> 2) & 3)]!;
      x[4 * t + 2] = x[4 * s + ((imm >> 4) & 3)]!;
      x[4 * t + 3] = x[4 * s + ((imm >> 6) & 3)]!;
      break;
    default: {
      // SHUFPD
      const a = (imm & 1) * 2;
      const b = (imm & 2) !== 0 ? 2 : 0;
      x[4 * t] = x[4 * d + a]!;
      x[4 * t + 1] = x[4 * d + a + 1]!;
      x[4 * t + 2] = x[4 * s + b]!;
      x[4 * t + 3] = x[4 * s + b + 1]!;
    }
  }
  copy(x, d, t);
}

function movmsk(c: Cpu, i: Insn): void {
  const x = c.simd.x32;
  const s = 4 * i.rm;
  let m = 0;
  if (i.sub === 0) {
    for (let k = 0; k < 4; k++) m |= (x[s + k]! >>> 31) << k;
  } else if (i.sub === 1) {
    m = (x[s + 1]! >>> 31) | ((x[s + 3]! >>> 31) << 1);
  } else {
    const b = c.simd.i8;
    for (let k = 0; k < 16; k++) m |= (b[16 * i.rm + k]! < 0 ? 1 : 0) << k;
  }
  c.r[2 * i.reg] = m;
  c.r[2 * i.reg + 1] = 0;
}

function word(c: Cpu, i: Insn): void {
  const u = c.simd.u16;
  if (i.sub === 0) {
    // PINSRW xmm, r32/m16, imm8
    let v: number;
    if (i.rm >= 0) {
      v = c.r[2 * i.rm]! & 0xffff;
    } else {
      ea(c, i, 2);
      v = c.read16(c.a0, c.a1);
    }
    u[8 * i.reg + (i.imm & 7)] = v;
  } else {
    c.r[2 * i.reg] = u[8 * i.rm + (i.imm & 7)]!;
    c.r[2 * i.reg + 1] = 0;
  }
}

// ---- MXCSR and FXSAVE ------------------------------------------------------------------------

function state(c: Cpu, i: Insn): void {
  const st = c.simd;
  if (i.sub >= 2) {
    sseCheck(c);
    ea(c, i, 4);
    if (i.sub === 2) {
      const v = c.read32(c.a0, c.a1);
      if ((v & ~MXCSR_MASK) !== 0) c.fault(VEC_GP, 0);
      st.mxcsr = v;
    } else {
      c.write32(c.a0, c.a1, st.mxcsr);
    }
    return;
  }
  if ((c.cr0 & 0xc) !== 0) c.fault(VEC_NM);
  ea(c, i, 512);
  if ((c.a0 & (FXSAVE_ALIGN - 1)) !== 0) c.fault(VEC_GP, 0);
  if (i.sub === 0) fxsave(c, i.osz === 8);
  else fxrstor(c, i.osz === 8);
}

/** Address a0/a1 + off, into out[0..1]. */
function at(c: Cpu, off: number, out: Int32Array): void {
  const lo = (c.a0 + off) | 0;
  out[0] = lo;
  out[1] = lo >>> 0 < c.a0 >>> 0 ? (c.a1 + 1) | 0 : c.a1;
}

const ADDR = new Int32Array(2);
// FXRSTOR reads the whole image before changing state (kernels do this on every context switch,
// so the staging buffers are allocated once).
const FX_SE = new Uint16Array(8);
const FX_HI = new Int32Array(8);
const FX_LO = new Int32Array(8);
const FX_XMM = new Int32Array(64);

function fxsave(c: Cpu, wide: boolean): void {
  const st = c.simd;
  const a = ADDR;
  // The area is 16-byte aligned, so it spans at most two pages; probe both ends first so a fault
  // leaves memory untouched.
  at(c, 511, a);
  c.translate(a[0]!, a[1]!, 1);
  at(c, FX_FCW, a);
  c.write32(a[0]!, a[1]!, st.fcw | (st.fswFull << 16)); // FCW, FSW (FX_FSW)
  at(c, FX_FTW, a);
  c.write32(a[0]!, a[1]!, st.abridgedTag | (st.fop << 16)); // FTW, FOP (FX_FOP)
  at(c, FX_FIP, a);
  c.write64(a[0]!, a[1]!, st.fip, 0);
  at(c, FX_FDP, a);
  c.write64(a[0]!, a[1]!, st.fdp, 0);
  at(c, FX_MXCSR, a);
  c.write64(a[0]!, a[1]!, st.mxcsr, MXCSR_MASK);
  for (let k = 0; k < 8; k++) {
    // The 80-bit register exactly: significand, then sign and exponent (bytes 10-15 zero).
    const p = (st.top + k) & 7;
    at(c, FX_ST0 + FX_ST_STRIDE * k, a);
    c.write64(a[0]!, a[1]!, st.stLo[p]! | 0, st.stHi[p]! | 0);
    at(c, FX_ST0 + FX_ST_STRIDE * k + 8, a);
    c.write64(a[0]!, a[1]!, st.stSe[p]!, 0);
  }
  if ((c.cr4 & 0x200) !== 0) {
    const x = st.x32;
    for (let k = 0; k < 16; k++) {
      at(c, FX_XMM0 + 16 * k, a);
      c.write64(a[0]!, a[1]!, x[4 * k]!, x[4 * k + 1]!);
      at(c, FX_XMM0 + 16 * k + 8, a);
      c.write64(a[0]!, a[1]!, x[4 * k + 2]!, x[4 * k + 3]!);
    }
  }
  void wide; // FIP/FDP are kept as 64-bit offsets; the 32-bit form's selectors are zero
}

function fxrstor(c: Cpu, wide: boolean): void {
  const st = c.simd;
  const a = ADDR;
  at(c, FX_MXCSR, a);
  const mxcsr = c.read32(a[0]!, a[1]!);
  if ((mxcsr & ~MXCSR_MASK) !== 0) c.fault(VEC_GP, 0);
  // Read everything before changing any state (a fault part-way leaves the state as it was).
  at(c, FX_FCW, a);
  const w0 = c.read32(a[0]!, a[1]!);
  at(c, FX_FTW, a);
  const w1 = c.read32(a[0]!, a[1]!);
  at(c, FX_FIP, a);
  const fip = c.read64(a[0]!, a[1]!);
  at(c, FX_FDP, a);
  const fdp = c.read64(a[0]!, a[1]!);
  for (let k = 0; k < 8; k++) {
    at(c, FX_ST0 + FX_ST_STRIDE * k, a);
    FX_LO[k] = c.read64(a[0]!, a[1]!);
    FX_HI[k] = c.v1;
    at(c, FX_ST0 + FX_ST_STRIDE * k + 8, a);
    FX_SE[k] = c.read16(a[0]!, a[1]!);
  }
  const xmm = FX_XMM;
  const withXmm = (c.cr4 & 0x200) !== 0;
  if (withXmm) {
    for (let k = 0; k < 32; k++) {
      at(c, FX_XMM0 + 8 * k, a);
      xmm[2 * k] = c.read64(a[0]!, a[1]!);
      xmm[2 * k + 1] = c.v1;
    }
  }
  st.fcw = fcwValue(w0);
  st.fsw = statusWithSummary(w0 >>> 16, st.fcw); // ES and B follow the unmasked flags
  st.top = (w0 >>> 27) & 7;
  st.setAbridgedTag(w1 & 0xff);
  st.fop = (w1 >>> 16) & 0x7ff;
  st.fip = fip;
  st.fdp = fdp;
  for (let k = 0; k < 8; k++) {
    const p = (st.top + k) & 7;
    st.stSe[p] = FX_SE[k]!;
    st.stHi[p] = FX_HI[k]!;
    st.stLo[p] = FX_LO[k]!;
  }
  st.mxcsr = mxcsr;
  if (withXmm) st.x32.set(xmm, 0);
  void wide;
}
