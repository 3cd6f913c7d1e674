// The SSE instructions the JavaScript backend generates inline: the moves, logic, 32/64-bit adds,
// compares, unpacks and immediate shifts that compiled C code runs in its hot loops (gcc's
// vectorised loops, memcpy, SHA-256's message schedule). Everything else XMM-only still runs
// through the interpreter inside the block (TIER_SIMD / TIER_SIMD_MEM).
//
// The generated statements work on `x`, the XMM file as int32 lanes (SimdState.x32: register n,
// lane k at 4n + k; slot 16 is the scratch slot a memory source is read into), exactly as
// sse.ts / sse-int.ts do, so the interpreter and a block leave the same lanes.

import type { Insn } from '../insn.js';
import * as H from '../ops.js';
import { XMM_SRC } from '../simd-state.js';
import * as T from '../sse-table.js';

/** What the backend must do with memory before (load, source) or after (store) the lanes. */
export const SIMD_REG = 0;
/** Reads `bytes` at the operand into the destination register, zeroing the lanes above. */
export const SIMD_LOAD = 1;
/** Writes the low `bytes` of the register to the operand. */
export const SIMD_STORE = 2;
/** Reads the 16-byte source operand into the scratch slot, then runs the lanes with it. */
export const SIMD_SRC = 3;

export interface SimdInline {
  readonly mem: number;
  readonly bytes: number;
  /** 16-byte operand that must be aligned (#GP(0) otherwise). */
  readonly aligned: boolean;
  /** The XMM register the memory form loads or stores. */
  readonly reg: number;
  /** Statements on `x` (register forms and SIMD_SRC); `tmp` names fresh locals. */
  readonly lanes: (tmp: () => string) => string;
}

const NONE = (): string => '';

function lane(n: number, k: number): string {
  return `x[${4 * n + k}]`;
}

function copy(to: number, from: number): string {
  if (to === from) return '';
  let s = '';
  for (let k = 0; k < 4; k++) s += `${lane(to, k)} = ${lane(from, k)}; `;
  return s;
}

/** d = f(d, s) lane by lane (each lane reads only its own lanes, so d === s is fine). */
function perLane(d: number, s: number, f: (a: string, b: string) => string): string {
  let out = '';
  for (let k = 0; k < 4; k++) out += `${lane(d, k)} = ${f(lane(d, k), lane(s, k))}; `;
  return out;
}

/** The 64-bit lanes of d = d +/- s (with the carry or borrow between the halves). */
function addQ(d: number, s: number, sub: boolean, tmp: () => string): string {
  let out = '';
  for (let k = 0; k < 4; k += 2) {
    const t = tmp();
    const [dl, dh, sl, sh] = [lane(d, k), lane(d, k + 1), lane(s, k), lane(s, k + 1)];
    out += sub
      ? `const ${t} = (${dl} >>> 0) - (${sl} >>> 0); ${dh} = (${dh} - ${sh} - (${t} < 0 ? 1 : 0)) | 0; `
      : `const ${t} = (${dl} >>> 0) + (${sl} >>> 0); ${dh} = (${dh} + ${sh} + (${t} > 4294967295 ? 1 : 0)) | 0; `;
    out += `${dl} = ${t} | 0; `;
  }
  return out;
}

/** d = the four lanes `from` (pairs [slot, lane]) read before any is written. */
function gather(
  d: number,
  from: readonly (readonly [number, number])[],
  tmp: () => string,
): string {
  const names = from.map(() => tmp());
  let out = `const ${names.map((n, k) => `${n} = ${lane(from[k]![0], from[k]![1])}`).join(', ')}; `;
  for (let k = 0; k < 4; k++) out += `${lane(d, k)} = ${names[k]}; `;
  return out;
}

/** Vx = Vx op W for the PINT operations generated inline, or null. */
function pint(op: number, d: number, s: number): ((tmp: () => string) => string) | null {
  switch (op) {
    case T.PINT.pand:
      return () => perLane(d, s, (a, b) => `${a} & ${b}`);
    case T.PINT.pandn:
      return () => perLane(d, s, (a, b) => `~${a} & ${b}`);
    case T.PINT.por:
      return () => perLane(d, s, (a, b) => `${a} | ${b}`);
    case T.PINT.pxor:
      // pxor x, x: the idiom for zero (no read of the old value).
      return d === s
        ? () => perLane(d, s, () => '0')
        : () => perLane(d, s, (a, b) => `${a} ^ ${b}`);
    case T.PINT.paddd:
      return () => perLane(d, s, (a, b) => `(${a} + ${b}) | 0`);
    case T.PINT.psubd:
      return () => perLane(d, s, (a, b) => `(${a} - ${b}) | 0`);
    case T.PINT.pcmpeqd:
      return () => perLane(d, s, (a, b) => `${a} === ${b} ? -1 : 0`);
    case T.PINT.pcmpgtd:
      return () => perLane(d, s, (a, b) => `${a} > ${b} ? -1 : 0`);
    case T.PINT.paddq:
      return (tmp) => addQ(d, s, false, tmp);
    case T.PINT.psubq:
      return (tmp) => addQ(d, s, true, tmp);
    case T.PINT.punpckldq:
      return (tmp) =>
        gather(
          d,
          [
            [d, 0],
            [s, 0],
            [d, 1],
            [s, 1],
          ],
          tmp,
        );
    case T.PINT.punpckhdq:
      return (tmp) =>
        gather(
          d,
          [
            [d, 2],
            [s, 2],
            [d, 3],
            [s, 3],
          ],
          tmp,
        );
    case T.PINT.punpcklqdq:
      return (tmp) =>
        gather(
          d,
          [
            [d, 0],
            [d, 1],
            [s, 0],
            [s, 1],
          ],
          tmp,
        );
    case T.PINT.punpckhqdq:
      return (tmp) =>
        gather(
          d,
          [
            [d, 2],
            [d, 3],
            [s, 2],
            [s, 3],
          ],
          tmp,
        );
    default:
      return null;
  }
}

/** PSRLD/PSRAD/PSLLD/PSRLQ/PSLLQ xmm, imm8 (H_SSE_PSHIFT_I kinds 3, 4, 5, 6, 8), or null. */
function shiftImm(kind: number, r: number, cnt: number): ((tmp: () => string) => string) | null {
  switch (kind) {
    case 3:
      return () => perLane(r, r, (a) => (cnt > 31 ? '0' : `${a} >>> ${cnt}`) + ' | 0');
    case 4:
      return () => perLane(r, r, (a) => `${a} >> ${Math.min(cnt, 31)}`);
    case 5:
      return () => perLane(r, r, (a) => (cnt > 31 ? '0' : `${a} << ${cnt}`));
    case 6:
    case 8: {
      const left = kind === 8;
      return (tmp) => {
        let out = '';
        for (let k = 0; k < 4; k += 2) {
          const [lo, hi] = [lane(r, k), lane(r, k + 1)];
          if (cnt === 0) continue;
          if (cnt > 63) {
            out += `${lo} = 0; ${hi} = 0; `;
          } else if (cnt >= 32) {
            out += left
              ? `${hi} = ${lo} << ${cnt - 32}; ${lo} = 0; `
              : `${lo} = ${hi} >>> ${cnt - 32} | 0; ${hi} = 0; `;
          } else {
            const t = tmp();
            out += left
              ? `const ${t} = ${lo}; ${lo} = ${t} << ${cnt}; ${hi} = (${hi} << ${cnt}) | (${t} >>> ${32 - cnt}); `
              : `const ${t} = ${hi}; ${hi} = ${t} >>> ${cnt} | 0; ${lo} = (${lo} >>> ${cnt}) | (${t} << ${32 - cnt}); `;
          }
        }
        return out;
      };
    }
    default:
      return null;
  }
}

/** Moves (H_SSE_MOV) generated inline: full-register and low-quadword/dword moves. */
function move(i: Insn): SimdInline | null {
  const kind = i.sub & 0xff;
  const aligned = (i.sub & T.MOV_ALIGNED) !== 0;
  const reg = i.reg;
  const rm = i.rm;
  const memory = rm < 0;
  const mem = (m: number, bytes: number): SimdInline => ({
    mem: m,
    bytes,
    aligned: aligned && bytes === 16,
    reg,
    lanes: NONE,
  });
  const regForm = (f: () => string): SimdInline => ({
    mem: SIMD_REG,
    bytes: 0,
    aligned: false,
    reg,
    lanes: f,
  });
  switch (kind) {
    case T.MOV_LOAD:
      return memory ? mem(SIMD_LOAD, 16) : regForm(() => copy(reg, rm));
    case T.MOV_STORE:
      return memory ? mem(SIMD_STORE, 16) : regForm(() => copy(rm, reg));
    case T.MOV_LOADSD:
      return memory ? mem(SIMD_LOAD, 8) : null;
    case T.MOV_STORESD:
      return memory ? mem(SIMD_STORE, 8) : null;
    case T.MOV_LOADSS:
      return memory ? mem(SIMD_LOAD, 4) : null;
    case T.MOV_STORESS:
      return memory ? mem(SIMD_STORE, 4) : null;
    case T.MOV_Q_LOAD:
      return memory
        ? mem(SIMD_LOAD, 8)
        : regForm(
            () =>
              `${lane(reg, 0)} = ${lane(rm, 0)}; ${lane(reg, 1)} = ${lane(rm, 1)}; ${lane(reg, 2)} = 0; ${lane(reg, 3)} = 0; `,
          );
    case T.MOV_Q_STORE:
      return memory
        ? mem(SIMD_STORE, 8)
        : regForm(
            () =>
              `${lane(rm, 0)} = ${lane(reg, 0)}; ${lane(rm, 1)} = ${lane(reg, 1)}; ${lane(rm, 2)} = 0; ${lane(rm, 3)} = 0; `,
          );
    default:
      return null;
  }
}

/**
 * How the backend generates the XMM-only instruction `i` inline, or null when it keeps running
 * it through the interpreter. Faults are the backend's: the SSE availability check before the
 * first one in a pass, then the memory operand's (alignment, then the access).
 */
export function simdInline(i: Insn): SimdInline | null {
  switch (i.op) {
    case H.H_SSE_MOV:
      return move(i);
    case H.H_SSE_PINT: {
      const memory = i.rm < 0;
      const lanes = pint(i.sub, i.reg, memory ? XMM_SRC : i.rm);
      if (lanes === null) return null;
      return { mem: memory ? SIMD_SRC : SIMD_REG, bytes: 16, aligned: true, reg: i.reg, lanes };
    }
    case H.H_SSE_PSHIFT_I: {
      const lanes = shiftImm(i.sub, i.rm, i.imm & 0xff);
      return lanes === null ? null : { mem: SIMD_REG, bytes: 0, aligned: false, reg: i.rm, lanes };
    }
    default:
      return null;
  }
}
