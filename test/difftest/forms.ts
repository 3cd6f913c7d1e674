// Instruction forms for the differential test: each form builds random test cases (encoding,
// registers, flags, memory) for one instruction shape at one operand size, with register and
// memory operands placed so that memory accesses land in the harness's data pages. Random values
// lean towards edge values (0, 1, all-ones, sign boundaries), as SingleStepTests-style generators do.

import { CODE, DATA, DATA_SIZE, INSN_OFF, LANDINGS } from './layout.js';

export const CF = 0x1;
export const PF = 0x4;
export const AF = 0x10;
export const ZF = 0x40;
export const SF = 0x80;
export const DF = 0x400;
export const OF = 0x800;

export interface Case {
  readonly form: string;
  readonly code: Uint8Array;
  readonly seed: number;
  readonly flags: number;
  readonly regs: bigint[];
  readonly mem: [number, bigint][];
  /** Flags the architecture leaves undefined for this case (not compared). */
  readonly undef: number;
  /** SIMD state (MXCSR and XMM0-15 as 32 qwords, low first), when the form uses it. */
  readonly simd?: SimdCase;
  /** x87 state: FCW and the values loaded (ST0 first, 80 bits: significand | sign-exponent << 64). */
  readonly x87?: X87Case;
}

export interface X87Case {
  fcw: number;
  st: bigint[];
  /** FSW bits compared. */
  fswMask: number;
}

export interface SimdCase {
  mxcsr: number;
  xmm: bigint[];
  /** MXCSR bits compared (status flags the simulator does not track are left out). */
  mxcsrMask: number;
}

/** mulberry32: small, fast, deterministic. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
}

const M64 = (1n << 64n) - 1n;

/** A random 64-bit value biased to the edges of each operand size. */
export function edge(r: Rng): bigint {
  switch (r.int(12)) {
    case 0:
      return 0n;
    case 1:
      return 1n;
    case 2:
      return M64;
    case 3:
      return r.pick([
        0x7fn,
        0x80n,
        0xffn,
        0x7fffn,
        0x8000n,
        0xffffn,
        0x7fffffffn,
        0x80000000n,
        0xffffffffn,
      ]);
    case 4:
      return r.pick([0x7fffffffffffffffn, 0x8000000000000000n, 0xffffffff00000000n, 0x100000000n]);
    case 5:
      return BigInt(r.int(64));
    case 6:
      return (M64 - BigInt(r.int(64))) & M64;
    case 7:
      return BigInt(r.u32());
    case 8:
      return r.u64() ^ BigInt(r.int(256));
    default:
      return r.u64();
  }
}

/** One case under construction. */
export class Builder {
  readonly bytes: number[] = [];
  readonly regs: bigint[] = [];
  flags: number;
  readonly seed: number;
  readonly mem: [number, bigint][] = [];
  undef = 0;
  simd: SimdCase | undefined = undefined;
  x87: X87Case | undefined = undefined;
  /** Data offset of the memory operand, when there is one. */
  memOff = -1;
  /** A RIP-relative displacement to fill in once the instruction's length is known. */
  ripFix: { at: number; addr: number } | null = null;

  constructor(readonly r: Rng) {
    for (let i = 0; i < 16; i++) this.regs.push(edge(r));
    this.regs[4] = BigInt(DATA + 0x1000 - 8 * r.int(32)); // RSP inside the data pages
    this.flags = 0x202 | (r.u32() & (CF | PF | AF | ZF | SF | OF)) | (r.chance(0.1) ? DF : 0);
    this.seed = (r.u32() | 1) >>> 0;
  }

  build(form: string): Case {
    return {
      form,
      code: Uint8Array.from(this.bytes),
      seed: this.seed,
      flags: this.flags,
      regs: this.regs,
      mem: this.mem,
      undef: this.undef,
      ...(this.simd !== undefined ? { simd: this.simd } : {}),
      ...(this.x87 !== undefined ? { x87: this.x87 } : {}),
    };
  }

  /** Address of the instruction's end (for relative branches). */
  get end(): number {
    return CODE + INSN_OFF + this.bytes.length;
  }
}

export interface Operand {
  /** Register (mod = 3), or memory. */
  mem: boolean;
  /** Size in bytes of the memory operand (to keep it inside the data pages). */
  size: number;
  /** Registers that must keep their own values (implicit operands of the instruction). */
  avoid?: readonly number[];
}

/**
 * Emits [prefixes][REX][opcode][ModRM/SIB/disp] with reg field `regField` (a register number
 * 0..15 or an opcode extension 0..7 when `ext`), and a random E operand; returns the E register
 * (or -1 for memory) and the G register.
 */
export function emitModrm(
  b: Builder,
  o: {
    prefixes?: number[];
    w?: boolean;
    opcode: number[];
    regField: number;
    ext?: boolean;
    e: Operand;
    byteRegs?: boolean;
    mustRex?: boolean;
  },
): { rm: number; reg: number } {
  const r = b.r;
  const avoid = o.e.avoid ?? [];
  let rex = o.w === true ? 8 : 0;
  const reg = o.regField;
  if (!o.ext && reg >= 8) rex |= 4;
  const modrmRegBits = reg & 7;
  const out: number[] = [];
  let rm = -1;
  let ripAt = -1;
  let ripAddr = 0;
  if (!o.e.mem) {
    do rm = r.int(16);
    while (avoid.includes(rm));
    if (rm >= 8) rex |= 1;
    out.push(0xc0 | (modrmRegBits << 3) | (rm & 7));
  } else {
    // Pick where the operand lies in the data pages; sometimes across the page boundary.
    const span = DATA_SIZE - o.e.size;
    const off = r.chance(0.1)
      ? 0x1000 - r.int(o.e.size)
      : r.chance(0.5)
        ? r.int(span) & ~(o.e.size - 1)
        : r.int(span);
    b.memOff = off;
    const addr = BigInt(DATA + off);
    const mode = r.int(6);
    const free = [...Array(16).keys()].filter((x) => !avoid.includes(x) && x !== 4);
    if (mode === 0) {
      // RIP-relative: disp32 from the end of the instruction, fixed up after the immediates.
      out.push((modrmRegBits << 3) | 5);
      out.push(0, 0, 0, 0);
      ripAt = out.length - 4;
      ripAddr = Number(addr);
    } else if (mode === 1) {
      // Absolute disp32 through SIB (no base, no index).
      out.push((modrmRegBits << 3) | 4, 0x25);
      pushLe(out, Number(addr), 4);
    } else {
      const base = r.pick(free.concat(avoid.includes(4) ? [] : [4]));
      const useIndex = mode >= 4;
      let index = -1;
      let scale = 0;
      let idxVal = 0n;
      if (useIndex) {
        const cands = free.filter((x) => x !== base);
        index = r.pick(cands);
        scale = r.int(4);
        idxVal = BigInt(r.int(64)) - 16n;
      }
      const dispKind = mode === 2 ? 0 : mode === 3 ? 1 : r.int(3);
      let disp = 0;
      if (dispKind === 1) disp = r.int(256) - 128;
      if (dispKind === 2) disp = r.int(0x20000) - 0x10000;
      const mod = dispKind === 0 && (base & 7) !== 5 ? 0 : dispKind === 2 ? 2 : 1;
      if (mod === 1 && dispKind === 0) disp = 0;
      b.regs[base] = (addr - BigInt(disp) - (idxVal << BigInt(scale))) & M64;
      if (base >= 8) rex |= 1;
      if (useIndex || (base & 7) === 4) {
        out.push((mod << 6) | (modrmRegBits << 3) | 4);
        const idxBits = useIndex ? index & 7 : 4;
        if (useIndex && index >= 8) rex |= 2;
        out.push((scale << 6) | (idxBits << 3) | (base & 7));
        if (useIndex) b.regs[index] = idxVal & M64;
      } else {
        out.push((mod << 6) | (modrmRegBits << 3) | (base & 7));
      }
      if (mod === 1) out.push(disp & 0xff);
      if (mod === 2) pushLe(out, disp, 4);
    }
  }
  if (o.prefixes) b.bytes.push(...o.prefixes);
  if (rex !== 0 || o.mustRex === true || (o.byteRegs === true && r.chance(0.3)))
    b.bytes.push(0x40 | rex);
  b.bytes.push(...o.opcode);
  const modrmAt = b.bytes.length;
  b.bytes.push(...out);
  if (ripAt >= 0) b.ripFix = { at: modrmAt + ripAt, addr: ripAddr };
  return { rm, reg };
}

/** Appends an immediate and resolves a pending RIP-relative displacement (it needs the length). */
export function finish(b: Builder, imm: number[] = []): void {
  b.bytes.push(...imm);
  const fix = b.ripFix;
  if (fix !== null) {
    b.ripFix = null;
    const disp = fix.addr - b.end;
    const d = [disp & 0xff, (disp >> 8) & 0xff, (disp >> 16) & 0xff, (disp >>> 24) & 0xff];
    for (let k = 0; k < 4; k++) b.bytes[fix.at + k] = d[k]!;
  }
}

export function pushLe(out: number[], v: number, n: number): void {
  for (let k = 0; k < n; k++) out.push(Math.floor(v / 2 ** (8 * k)) & 0xff);
}

export function immBytes(r: Rng, n: number): number[] {
  const v = edge(r);
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(Number((v >> BigInt(8 * k)) & 0xffn));
  return out;
}

/** A landing address (code-page offset) for branches, and its distance from `from`. */
export function landing(r: Rng, nearOnly: boolean): number {
  const ids = nearOnly ? [3, 4] : [1, 2, 3, 4, 5, 6, 7];
  return CODE + LANDINGS[r.pick(ids)]!;
}

export interface Form {
  readonly name: string;
  gen(r: Rng): Case;
}
