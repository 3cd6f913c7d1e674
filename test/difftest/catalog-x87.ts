// x87 forms for the differential test. The simulator keeps x87 registers as float64 (see
// src/hw/cpu/x87.ts), so cases run with FCW.PC = double precision and all exceptions masked, with
// values whose results stay inside the float64 range, and no NaN inputs (payloads are not kept).
// Compared: FCW, FSW (TOP, C0, C2, C3, IE, ZE, SF), the abridged tag word, every valid ST(i)
// in 80-bit form, memory, registers and RFLAGS. FCW.RC varies only where the simulator honours
// it (FIST/FISTP/FRNDINT, FST m32).

import { Builder, type Case, emitModrm, finish, type Form, type Rng } from './forms.js';

const FSW_MASK = 0x1 | 0x4 | 0x40 | 0x100 | 0x400 | 0x4000 | 0x3800;
const PC_DOUBLE_MASKED = 0x27f;

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
  1e-30,
  Infinity,
  -Infinity,
  1 / 3,
  Math.PI,
];

function value(r: Rng): number {
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

/** A double as 80-bit: significand and sign/exponent (exact). */
function f80(v: number): [bigint, bigint] {
  if (v === 0) return [0n, Object.is(v, -0) ? 0x8000n : 0n];
  if (!Number.isFinite(v)) return [1n << 63n, v < 0 ? 0xffffn : 0x7fffn];
  const b = bits(v);
  const exp = Number((b >> 52n) & 0x7ffn);
  const sig = (b & ((1n << 52n) - 1n)) | (1n << 52n);
  return [sig << 11n, BigInt((v < 0 ? 0x8000 : 0) | (exp - 1023 + 16383))];
}

type MemKind = 'f32' | 'f64' | 'f80' | 'i16' | 'i32' | 'i64' | 'cw' | 'none';

const forms: Form[] = [];

function x87Form(
  name: string,
  o: {
    reg?: [number, number];
    mem?: [number, number, number, MemKind];
    rc?: boolean;
    min?: number;
  },
): void {
  forms.push({
    name,
    gen(r: Rng): Case {
      const b = new Builder(r);
      const n = Math.max(o.min ?? 0, r.int(9));
      const st: bigint[] = [];
      for (let k = 0; k < n; k++) st.push(bits(value(r)));
      b.x87 = {
        fcw: PC_DOUBLE_MASKED | (o.rc === true ? r.int(4) << 10 : 0),
        st,
        fswMask: FSW_MASK,
      };
      if (o.reg !== undefined) {
        const [esc, modrm] = o.reg;
        b.bytes.push(esc, modrm);
        finish(b);
      } else {
        const [esc, ext, size, kind] = o.mem!;
        emitModrm(b, { opcode: [esc], regField: ext, ext: true, e: { mem: true, size } });
        const v = value(r);
        const at = b.memOff;
        switch (kind) {
          case 'f32':
            b.mem.push([at, f32bits(v) | (BigInt(r.u32()) << 32n)]);
            break;
          case 'f64':
            b.mem.push([at, bits(v)]);
            break;
          case 'f80': {
            const [sig, se] = f80(v);
            // The second qword ends with the operand (a qword at at + 8 could leave the pages).
            b.mem.push([at, sig], [at + 2, (sig >> 16n) | (se << 48n)]);
            break;
          }
          case 'i16':
          case 'i32':
          case 'i64': {
            const lim = kind === 'i16' ? 32768 : kind === 'i32' ? 2 ** 31 : 2 ** 52;
            const x = r.chance(0.2) ? r.pick([lim - 1, -lim, 0, -1]) : r.int(2001) - 1000;
            b.mem.push([at, BigInt.asUintN(64, BigInt(x))]);
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
x87Form('frndint', { reg: [0xd9, 0xfc], rc: true });
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
x87Form('fst m32fp', { mem: [0xd9, 2, 4, 'none'], rc: true });
x87Form('fstp m32fp', { mem: [0xd9, 3, 4, 'none'], rc: true });
x87Form('fldcw m16', { mem: [0xd9, 5, 2, 'cw'] });
x87Form('fnstcw m16', { mem: [0xd9, 7, 2, 'none'] });
x87Form('fild m32int', { mem: [0xdb, 0, 4, 'i32'] });
x87Form('fist m32int', { mem: [0xdb, 2, 4, 'none'], rc: true });
x87Form('fistp m32int', { mem: [0xdb, 3, 4, 'none'], rc: true });
x87Form('fld m80fp', { mem: [0xdb, 5, 10, 'f80'] });
x87Form('fstp m80fp', { mem: [0xdb, 7, 10, 'none'] });
x87Form('fld m64fp', { mem: [0xdd, 0, 8, 'f64'] });
x87Form('fst m64fp', { mem: [0xdd, 2, 8, 'none'] });
x87Form('fstp m64fp', { mem: [0xdd, 3, 8, 'none'] });
x87Form('fild m16int', { mem: [0xdf, 0, 2, 'i16'] });
x87Form('fist m16int', { mem: [0xdf, 2, 2, 'none'], rc: true });
x87Form('fistp m16int', { mem: [0xdf, 3, 2, 'none'], rc: true });
x87Form('fild m64int', { mem: [0xdf, 5, 8, 'i64'] });
x87Form('fistp m64int', { mem: [0xdf, 7, 8, 'none'], rc: true });

export const X87_FORMS: readonly Form[] = forms;
