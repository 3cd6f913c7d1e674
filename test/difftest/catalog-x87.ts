// x87 forms for the differential test. The simulator holds x87 registers as exact 80-bit values
// (src/hw/cpu/x87.ts), so cases run with the default FCW 0x037F (extended precision, nearest) or
// any precision control (single, double, extended) and rounding mode, all exceptions masked, with
// operands from the whole double-extended range: denormals and pseudo-denormals, the largest and
// smallest normals, significands that round at the 24/53/64-bit boundaries, integers near 2^63,
// infinities, QNaNs and SNaNs with payloads, and a few unsupported encodings (unnormals, pseudo-
// NaNs, pseudo-infinities). Memory operands of every format are drawn the same way, raw bit
// patterns included; FLDENV, FRSTOR and FXRSTOR load images of random bytes. Compared: FCW, the whole FSW (TOP, C0-C3, SF, IE, DE, ZE, OE, UE, PE), the
// abridged tag word, every valid ST(i) as 80 bits, memory, registers and RFLAGS.

import { Builder, type Case, emitModrm, finish, type Form, type Rng } from './forms.js';

const FSW_MASK = 0xffff;

/** FCW with all exceptions masked: the default 0x037F half the time, else any PC (the reserved 1 too) and RC. */
function fcw(r: Rng): number {
  if (r.chance(0.5)) return 0x37f;
  return 0x7f | (r.int(4) << 8) | (r.int(4) << 10);
}

const NICE = [
  0,
  -0,
  1,
  -1,
  0.5,
  2,
  3,
  -3,
  10,
  0.1,
  1e10,
  -7.25,
  2.5,
  -2.5,
  1.5,
  65535.5,
  2 ** 31,
  -(2 ** 31),
  2 ** 31 - 0.5,
  2 ** 63,
  -(2 ** 63),
  2 ** 64,
  1e-30,
  Infinity,
  -Infinity,
  1 / 3,
  Math.PI,
  Number.MIN_VALUE,
  Number.MAX_VALUE,
  2 ** -1022,
  2 ** -126,
  3.4028234663852886e38,
];

function number(r: Rng): number {
  switch (r.int(4)) {
    case 0:
      return r.pick(NICE);
    case 1:
      return (r.int(200001) - 100000) / 4;
    default: {
      // A random double with a moderate exponent.
      const m = 1 + r.u32() / 2 ** 32 + r.u32() / 2 ** 64;
      return (r.chance(0.5) ? -1 : 1) * m * 2 ** (r.int(121) - 60);
    }
  }
}

function bits(v: number): bigint {
  return new BigUint64Array(new Float64Array([v]).buffer)[0]!;
}

function f32bits(v: number): bigint {
  return BigInt(new Uint32Array(new Float32Array([v]).buffer)[0]!);
}

const J = 1n << 63n;

/** A double as 80 bits (exact): significand | sign-exponent << 64. */
function fromDouble(v: number): bigint {
  if (v === 0) return Object.is(v, -0) ? 0x8000n << 64n : 0n;
  if (!Number.isFinite(v)) return J | ((v < 0 ? 0xffffn : 0x7fffn) << 64n);
  const b = bits(v);
  let exp = Number((b >> 52n) & 0x7ffn);
  let sig = b & ((1n << 52n) - 1n);
  if (exp === 0) {
    // A float64 denormal: normalise into the wider exponent.
    exp = 1;
    while ((sig & (1n << 52n)) === 0n) {
      sig <<= 1n;
      exp--;
    }
  }
  sig |= 1n << 52n;
  return (sig << 11n) | (BigInt((v < 0 ? 0x8000 : 0) | (exp - 1023 + 16383)) << 64n);
}

/** Significand low bits that sit on or next to the rounding points of 24, 53 and 64 bits. */
const LOW_PATTERNS = [
  0n,
  1n,
  0x400n,
  0x3ffn,
  0x401n,
  0x7ffn,
  0x80_0000_0000n,
  0x7f_ffff_ffffn,
  0x80_0000_0001n,
  0xff_ffff_ffffn,
];

/** A random 64-bit significand with J set, its low bits often on a rounding boundary. */
function significand(r: Rng): bigint {
  let m = r.u64() | J;
  if (r.chance(0.5)) {
    const low = r.pick(LOW_PATTERNS);
    const width = low > 0x7ffn || low === 0n ? 40n : 11n;
    m = (m & ~((1n << width) - 1n)) | low;
  }
  return m;
}

function make(sign: number, exp: number, sig: bigint): bigint {
  return sig | (BigInt((sign << 15) | exp) << 64n);
}

/** An 80-bit operand; `near` is an exponent to cluster around (cancellation, equal exponents). */
function value80(r: Rng, near: number): bigint {
  const sign = r.int(2);
  switch (r.int(16)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return fromDouble(number(r));
    case 4:
    case 5:
    case 6:
      // Close to the case's exponent.
      return make(sign, Math.min(0x7ffe, Math.max(1, near + r.int(5) - 2)), significand(r));
    case 7:
      // Anywhere in the range.
      return make(sign, 1 + r.int(0x7ffe), significand(r));
    case 8:
      // The ends of the range: largest and smallest normals.
      return make(sign, r.pick([1, 2, 3, 0x7ffe, 0x7ffd, 64, 0x7ffe - 64]), significand(r));
    case 9:
      // Denormals (J clear) and now and then a pseudo-denormal (J set, exponent 0).
      return make(sign, 0, r.chance(0.15) ? significand(r) : r.u64() >> BigInt(r.int(64)));
    case 10: {
      // Integers near 2^63 and 2^64 and their halves (FIST/FISTP/FISTTP/FRNDINT bounds).
      const e = r.pick([62, 63, 64, 15, 16, 31, 32]);
      const sig = r.pick([
        J,
        ~0n & ((1n << 64n) - 1n),
        J | 1n,
        (J | (J >> 1n)) >> 0n,
        significand(r),
      ]);
      return make(sign, 16383 + e, sig);
    }
    case 11: {
      // Infinities and NaNs: quiet or signalling, with payloads, and the indefinite.
      const kind = r.int(4);
      if (kind === 0) return make(sign, 0x7fff, J);
      if (kind === 1) return make(sign, 0x7fff, J | (J >> 1n)); // the indefinite, or its positive twin
      const payload = r.u64() & ((1n << 62n) - 1n);
      return make(sign, 0x7fff, J | (kind === 2 ? J >> 1n : 0n) | (payload === 0n ? 1n : payload));
    }
    case 12:
      if (r.chance(0.4)) {
        // Unsupported: an unnormal, a pseudo-infinity or a pseudo-NaN (J clear).
        const exp = r.chance(0.5) ? 1 + r.int(0x7ffe) : 0x7fff;
        return make(sign, exp, r.u64() & (J - 1n));
      }
      return make(sign, near, significand(r));
    case 13:
      // Small integers and simple fractions at full precision.
      return fromDouble((r.int(2001) - 1000) / r.pick([1, 2, 4, 3]));
    default:
      return make(sign, Math.min(0x7ffe, Math.max(1, near + r.int(130) - 65)), significand(r));
  }
}

/** An exponent to cluster a case's operands around. */
function nearExponent(r: Rng): number {
  switch (r.int(4)) {
    case 0:
      return 16383 + r.int(128) - 64;
    case 1:
      return r.pick([
        1,
        2,
        40,
        0x7ffe,
        0x7ffe - 40,
        16383 - 126,
        16383 - 1022,
        16383 + 127,
        16383 + 1023,
      ]);
    default:
      return 1 + r.int(0x7ffe);
  }
}

/** A float32 operand: from a double, or any 32 bits (denormals and NaNs included). */
function f32operand(r: Rng): bigint {
  if (r.chance(0.3)) return BigInt(r.u32());
  if (r.chance(0.1)) return BigInt(r.u32() & 0x807fffff); // a float32 denormal
  return f32bits(number(r));
}

function f64operand(r: Rng): bigint {
  if (r.chance(0.3)) return r.u64();
  if (r.chance(0.1)) return r.u64() & 0x800f_ffff_ffff_ffffn; // a float64 denormal
  return bits(number(r));
}

type MemKind = 'f32' | 'f64' | 'f80' | 'i16' | 'i32' | 'i64' | 'cw' | 'env' | 'fx' | 'none';

const forms: Form[] = [];

function x87Form(
  name: string,
  o: {
    reg?: [number, number];
    mem?: [number | number[], number, number, MemKind];
    min?: number;
  },
): void {
  forms.push({
    name,
    gen(r: Rng): Case {
      const b = new Builder(r);
      const n = Math.max(o.min ?? 0, r.int(9));
      const near = nearExponent(r);
      const st: bigint[] = [];
      for (let k = 0; k < n; k++) st.push(value80(r, near));
      b.x87 = { fcw: fcw(r), st, fswMask: FSW_MASK };
      if (o.reg !== undefined) {
        const [esc, modrm] = o.reg;
        b.bytes.push(esc, modrm);
        finish(b);
      } else {
        const [esc, ext, size, kind] = o.mem!;
        const opcode = typeof esc === 'number' ? [esc] : esc;
        emitModrm(b, { opcode, regField: ext, ext: true, e: { mem: true, size } });
        const at = b.memOff;
        switch (kind) {
          case 'f32':
            b.mem.push([at, f32operand(r) | (BigInt(r.u32()) << 32n)]);
            break;
          case 'f64':
            b.mem.push([at, f64operand(r)]);
            break;
          case 'f80': {
            const v = value80(r, near);
            const sig = v & ((1n << 64n) - 1n);
            const se = v >> 64n;
            // The second qword ends with the operand (a qword at at + 8 could leave the pages).
            b.mem.push([at, sig], [at + 2, (sig >> 16n) | (se << 48n)]);
            break;
          }
          case 'i16':
          case 'i32':
          case 'i64': {
            const bitsN = kind === 'i16' ? 16 : kind === 'i32' ? 32 : 64;
            const lim = 1n << BigInt(bitsN - 1);
            let x: bigint;
            if (r.chance(0.2)) x = r.pick([lim - 1n, -lim, 0n, -1n, lim - 2n, -lim + 1n]);
            else if (r.chance(0.4)) x = BigInt.asIntN(bitsN, r.u64() >> BigInt(r.int(bitsN)));
            else x = BigInt(r.int(2001) - 1000);
            b.mem.push([at, BigInt.asUintN(64, x)]);
            break;
          }
          case 'cw': {
            // FLDCW: other precisions and rounding modes, exceptions still masked.
            const cw =
              0x3f |
              (r.int(4) << 8) |
              (r.int(4) << 10) |
              (r.chance(0.2) ? 0x1000 : 0) |
              (r.chance(0.2) ? r.u32() & 0xe0c0 : 0); // reserved bits
            b.mem.push([at, BigInt(cw) | (BigInt(r.u32()) << 16n)]);
            break;
          }
          case 'env': {
            // FLDENV's tag word marks only the registers this case loaded (physical 8 - n .. 7)
            // as in use: the others hold what earlier cases left, which the host's context
            // switches may have reset.
            let tags = 0;
            for (let p = 0; p < 8; p++) tags |= (p < 8 - n ? 3 : r.int(3)) << (2 * p);
            b.mem.push([at, r.u64()], [at + 8, BigInt(tags) | (r.u64() & ~0xffffn)]);
            break;
          }
          case 'fx':
            // An FXRSTOR image: a valid MXCSR, any FCW/FSW/FTW/FOP; the registers are the
            // case's random data.
            b.mem.push([at, r.u64()], [at + 24, 0x1f80n | (BigInt(r.u32()) << 32n)]);
            break;
          default:
        }
        finish(b);
      }
      return b.build(name);
    },
  });
}

const ARITH = ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'];
for (let reg = 0; reg < 8; reg++) {
  for (const k of [1, 3])
    x87Form(`${ARITH[reg]} st, st(${k})`, { reg: [0xd8, 0xc0 | (reg << 3) | k] });
  x87Form(`${ARITH[reg]} m32fp`, { mem: [0xd8, reg, 4, 'f32'] });
  x87Form(`${ARITH[reg]} m64fp`, { mem: [0xdc, reg, 8, 'f64'] });
  x87Form(`fi${ARITH[reg]!.slice(1)} m32int`, { mem: [0xda, reg, 4, 'i32'] });
  x87Form(`fi${ARITH[reg]!.slice(1)} m16int`, { mem: [0xde, reg, 2, 'i16'] });
  if (reg !== 2 && reg !== 3) {
    x87Form(`dc /${reg} st(2), st`, { reg: [0xdc, 0xc0 | (reg << 3) | 2] });
    x87Form(`de /${reg} st(1), st (pop)`, { reg: [0xde, 0xc0 | (reg << 3) | 1] });
  }
}
x87Form('fcompp', { reg: [0xde, 0xd9] });
x87Form('fucompp', { reg: [0xda, 0xe9] });
for (const [name, esc, modrm] of [
  ['fld st(2)', 0xd9, 0xc2],
  ['fxch st(3)', 0xd9, 0xcb],
  ['fnop', 0xd9, 0xd0],
  ['fchs', 0xd9, 0xe0],
  ['fabs', 0xd9, 0xe1],
  ['ftst', 0xd9, 0xe4],
  ['fxam', 0xd9, 0xe5],
  ['fld1', 0xd9, 0xe8],
  ['fldz', 0xd9, 0xee],
  ['fdecstp', 0xd9, 0xf6],
  ['fincstp', 0xd9, 0xf7],
  ['fsqrt', 0xd9, 0xfa],
  ['fldl2t', 0xd9, 0xe9],
  ['fldl2e', 0xd9, 0xea],
  ['fldpi', 0xd9, 0xeb],
  ['fldlg2', 0xd9, 0xec],
  ['fldln2', 0xd9, 0xed],
  ['fxtract', 0xd9, 0xf4],
  ['fprem1', 0xd9, 0xf5],
  ['fprem', 0xd9, 0xf8],
  ['fscale', 0xd9, 0xfd],
  ['ffree st(1)', 0xdd, 0xc1],
  ['fst st(2)', 0xdd, 0xd2],
  ['fstp st(1)', 0xdd, 0xd9],
  ['fucom st(1)', 0xdd, 0xe1],
  ['fucomp st(2)', 0xdd, 0xea],
  ['fnclex', 0xdb, 0xe2],
  ['fninit', 0xdb, 0xe3],
  ['fucomi st, st(1)', 0xdb, 0xe9],
  ['fcomi st, st(2)', 0xdb, 0xf2],
  ['fucomip st, st(1)', 0xdf, 0xe9],
  ['fcomip st, st(3)', 0xdf, 0xf3],
] as const) {
  x87Form(name, { reg: [esc, modrm] });
}
x87Form('frndint', { reg: [0xd9, 0xfc] });
for (const [cc, k] of [
  ['b', 0],
  ['e', 1],
  ['be', 2],
  ['u', 3],
] as const) {
  x87Form(`fcmov${cc} st, st(2)`, { reg: [0xda, 0xc0 | (k << 3) | 2] });
  x87Form(`fcmovn${cc} st, st(1)`, { reg: [0xdb, 0xc0 | (k << 3) | 1] });
}
x87Form('fld m32fp', { mem: [0xd9, 0, 4, 'f32'] });
x87Form('fst m32fp', { mem: [0xd9, 2, 4, 'none'] });
x87Form('fstp m32fp', { mem: [0xd9, 3, 4, 'none'] });
x87Form('fldcw m16', { mem: [0xd9, 5, 2, 'cw'] });
x87Form('fnstcw m16', { mem: [0xd9, 7, 2, 'none'] });
x87Form('fild m32int', { mem: [0xdb, 0, 4, 'i32'] });
x87Form('fist m32int', { mem: [0xdb, 2, 4, 'none'] });
x87Form('fistp m32int', { mem: [0xdb, 3, 4, 'none'] });
x87Form('fld m80fp', { mem: [0xdb, 5, 10, 'f80'] });
x87Form('fstp m80fp', { mem: [0xdb, 7, 10, 'none'] });
x87Form('fld m64fp', { mem: [0xdd, 0, 8, 'f64'] });
x87Form('fst m64fp', { mem: [0xdd, 2, 8, 'none'] });
x87Form('fstp m64fp', { mem: [0xdd, 3, 8, 'none'] });
x87Form('fild m16int', { mem: [0xdf, 0, 2, 'i16'] });
x87Form('fist m16int', { mem: [0xdf, 2, 2, 'none'] });
x87Form('fistp m16int', { mem: [0xdf, 3, 2, 'none'] });
x87Form('fild m64int', { mem: [0xdf, 5, 8, 'i64'] });
x87Form('fistp m64int', { mem: [0xdf, 7, 8, 'none'] });
x87Form('fisttp m16int', { mem: [0xdf, 1, 2, 'none'] });
// The 28-byte environment and the 108-byte state from the case's random data: the registers'
// 80 bits must arrive unchanged, whatever they encode.
x87Form('fldenv m28', { mem: [0xd9, 4, 28, 'env'] });
x87Form('frstor m108', { mem: [0xdd, 4, 108, 'none'] });
x87Form('fxrstor m512 (x87 state)', { mem: [[0x0f, 0xae], 1, 512, 'fx'] });
x87Form('fisttp m32int', { mem: [0xdb, 1, 4, 'none'] });
x87Form('fisttp m64int', { mem: [0xdd, 1, 8, 'none'] });

export const X87_FORMS: readonly Form[] = forms;
