// SSE/SSE2 forms for the differential test: XMM registers and memory operands filled with edge
// floating-point values (zeros of both signs, infinities, quiet and signalling NaNs, denormals,
// the largest and smallest normals, integers near the conversion limits) and edge integer lanes;
// MXCSR with random DAZ/FZ (and a random rounding mode where the simulator honours it).

import {
  Builder,
  type Case,
  edge,
  emitModrm,
  finish,
  type Form,
  type Rng,
  type SimdCase,
} from './forms.js';
import { DATA } from './layout.js';

/** MXCSR bits compared: all of them. */
const MXCSR_CMP = 0xffff;

const F32_EDGES = [
  0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000,
  0x7f800001, 0xffa00005, 0x7fc12345, 0x00000001, 0x807fffff, 0x00400000, 0x00800000, 0x80800000,
  0x7f7fffff, 0xff7fffff, 0x4f000000, 0xcf000000, 0x4effffff, 0x5f000000, 0xdf000000, 0x3f000000,
  0x3fc00000, 0x40200000, 0xbfc00000, 0x4b400001, 0x34000000, 0x0c000000, 0x72000000,
];
const F64_EDGES = [
  0x0000000000000000n,
  0x8000000000000000n,
  0x3ff0000000000000n,
  0xbff0000000000000n,
  0x7ff0000000000000n,
  0xfff0000000000000n,
  0x7ff8000000000000n,
  0xfff8000000000000n,
  0x7ff0000000000001n,
  0xfff4000000000123n,
  0x7ff8123456789abcn,
  0x0000000000000001n,
  0x800fffffffffffffn,
  0x0008000000000000n,
  0x0010000000000000n,
  0x7fefffffffffffffn,
  0x41e0000000000000n,
  0xc1e0000000000000n,
  0x41dfffffffc00000n,
  0xc1e0000000200000n,
  0x43e0000000000000n,
  0xc3e0000000000000n,
  0x43dfffffffffffffn,
  0x3fe0000000000000n,
  0x3ff8000000000000n,
  0x4004000000000000n,
  0xc002000000000000n,
  0x3ca0000000000000n,
  0x36a0000000000000n,
  0x47efffffe0000000n,
  0x47efffff00000001n,
  0x3810000000000000n,
  0x380fffffe0000000n,
  0x4330000000000001n,
];

function f32(r: Rng): number {
  switch (r.int(6)) {
    case 0:
    case 1:
      return r.pick(F32_EDGES);
    case 2: {
      // A "reasonable" number: exponent near 1.
      const e = 110 + r.int(40);
      return ((r.u32() & 0x807fffff) | (e << 23)) >>> 0;
    }
    case 3:
      return f32bits(r.int(2001) - 1000 + r.int(4) / 4);
    default:
      return r.u32();
  }
}

function f32bits(v: number): number {
  return new Uint32Array(new Float32Array([v]).buffer)[0]!;
}

function f64(r: Rng): bigint {
  switch (r.int(6)) {
    case 0:
    case 1:
      return r.pick(F64_EDGES);
    case 2: {
      const e = BigInt(1000 + r.int(48));
      return (r.u64() & 0x800fffffffffffffn) | (e << 52n);
    }
    case 3:
      return new BigUint64Array(new Float64Array([r.int(2001) - 1000 + r.int(4) / 4]).buffer)[0]!;
    default:
      return r.u64();
  }
}

function byteEdge(r: Rng): bigint {
  return BigInt(r.pick([0, 1, 0x7f, 0x80, 0xff, 0xfe, r.int(256), r.int(256)]));
}

export type Lanes = 'f32' | 'f64' | 'int';

/** A random 64-bit lane pair for `lanes`. */
function qword(r: Rng, lanes: Lanes): bigint {
  if (lanes === 'f32') return (BigInt(f32(r)) << 32n) | BigInt(f32(r));
  if (lanes === 'f64') return f64(r);
  switch (r.int(4)) {
    case 0: {
      let v = 0n;
      for (let k = 0; k < 8; k++) v |= byteEdge(r) << BigInt(8 * k);
      return v;
    }
    case 1:
      return r.pick([0n, (1n << 64n) - 1n, 0x8000800080008000n, 0x7fff7fff7fff7fffn]);
    default:
      return edge(r);
  }
}

function simdState(r: Rng, lanes: Lanes, rounding: boolean): SimdCase {
  const xmm: bigint[] = [];
  for (let k = 0; k < 32; k++) xmm.push(qword(r, lanes));
  let mxcsr = 0x1f80;
  if (r.chance(0.25)) mxcsr |= 0x40; // DAZ
  if (r.chance(0.25)) mxcsr |= 0x8000; // FZ
  if (rounding) mxcsr |= r.int(4) << 13;
  return { mxcsr, xmm, mxcsrMask: MXCSR_CMP };
}

const forms: Form[] = [];

interface SseOpts {
  /** Mandatory prefix (0x66, 0xf3, 0xf2) or none. */
  pfx?: number;
  /** Opcode bytes after 0F. */
  op: number;
  /** Memory operand size in bytes. */
  size: number;
  lanes: Lanes;
  imm?: boolean;
  /** ModRM.reg is an opcode extension. */
  ext?: number;
  /** Only the register form, or only the memory form, exists. */
  only?: 'reg' | 'mem';
  /** REX.W. */
  w?: boolean;
  /** Random MXCSR.RC (for instructions whose rounding the simulator honours). */
  rounding?: boolean;
  /** GPR operands keep their edge values; only RSP is avoided for the E register. */
  gpr?: boolean;
  setup?: (b: Builder, r: Rng) => void;
}

function sse(name: string, o: SseOpts): void {
  const kinds: ('reg' | 'mem')[] = o.only !== undefined ? [o.only] : ['reg', 'mem'];
  for (const kind of kinds) {
    const full = `${name} ${kind}`;
    forms.push({
      name: full,
      gen(r: Rng): Case {
        const b = new Builder(r);
        b.simd = simdState(r, o.lanes, o.rounding === true);
        const mem = kind === 'mem';
        emitModrm(b, {
          prefixes: o.pfx !== undefined ? [o.pfx] : [],
          w: o.w === true,
          opcode: [0x0f, o.op],
          regField: o.ext ?? r.int(16),
          ext: o.ext !== undefined,
          e: { mem, size: o.size, avoid: o.gpr === true ? [4] : [] },
        });
        if (mem && r.chance(0.7)) {
          // Put edge values at the operand (the data pattern alone is mostly random bits).
          for (let k = 0; k < o.size; k += 8) b.mem.push([b.memOff + k, qword(r, o.lanes)]);
        }
        o.setup?.(b, r);
        finish(b, o.imm === true ? [r.int(256)] : []);
        return b.build(full);
      },
    });
  }
}

// ---- moves
const moves: [string, number | undefined, number, number, Lanes][] = [
  ['movups Vx,Wx', undefined, 0x10, 16, 'int'],
  ['movupd Vx,Wx', 0x66, 0x10, 16, 'int'],
  ['movss Vx,Wss', 0xf3, 0x10, 4, 'f32'],
  ['movsd Vx,Wsd', 0xf2, 0x10, 8, 'f64'],
  ['movups Wx,Vx', undefined, 0x11, 16, 'int'],
  ['movupd Wx,Vx', 0x66, 0x11, 16, 'int'],
  ['movss Wss,Vx', 0xf3, 0x11, 4, 'f32'],
  ['movsd Wsd,Vx', 0xf2, 0x11, 8, 'f64'],
  ['movaps Vx,Wx', undefined, 0x28, 16, 'f32'],
  ['movapd Vx,Wx', 0x66, 0x28, 16, 'f64'],
  ['movaps Wx,Vx', undefined, 0x29, 16, 'f32'],
  ['movapd Wx,Vx', 0x66, 0x29, 16, 'f64'],
  ['movdqa Vx,Wx', 0x66, 0x6f, 16, 'int'],
  ['movdqu Vx,Wx', 0xf3, 0x6f, 16, 'int'],
  ['movdqa Wx,Vx', 0x66, 0x7f, 16, 'int'],
  ['movdqu Wx,Vx', 0xf3, 0x7f, 16, 'int'],
  ['movq Vx,Wq', 0xf3, 0x7e, 8, 'int'],
  ['movq Wq,Vx', 0x66, 0xd6, 8, 'int'],
  ['movlps/movhlps', undefined, 0x12, 8, 'int'],
  ['movhps/movlhps', undefined, 0x16, 8, 'int'],
];
for (const [name, pfx, op, size, lanes] of moves) {
  sse(name, { ...(pfx !== undefined ? { pfx } : {}), op, size, lanes });
}
for (const [name, pfx, op] of [
  ['movlpd Vx,Mq', 0x66, 0x12],
  ['movlps Mq,Vx', undefined, 0x13],
  ['movlpd Mq,Vx', 0x66, 0x13],
  ['movhpd Vx,Mq', 0x66, 0x16],
  ['movhps Mq,Vx', undefined, 0x17],
  ['movhpd Mq,Vx', 0x66, 0x17],
] as const) {
  sse(name, { ...(pfx !== undefined ? { pfx } : {}), op, size: 8, lanes: 'int', only: 'mem' });
}
sse('movntps Mx,Vx', { op: 0x2b, size: 16, lanes: 'int', only: 'mem' });
sse('movntdq Mx,Vx', { pfx: 0x66, op: 0xe7, size: 16, lanes: 'int', only: 'mem' });
for (const w of [false, true]) {
  const s = w ? '64' : '32';
  sse(`movd Vx,Ey ${s}`, { pfx: 0x66, op: 0x6e, size: w ? 8 : 4, lanes: 'int', w, gpr: true });
  sse(`movd Ey,Vx ${s}`, { pfx: 0x66, op: 0x7e, size: w ? 8 : 4, lanes: 'int', w, gpr: true });
  sse(`movnti My,Gy ${s}`, { op: 0xc3, size: w ? 8 : 4, lanes: 'int', w, only: 'mem' });
}
sse('movmskps Gd,Ux', { op: 0x50, size: 16, lanes: 'f32', only: 'reg' });
sse('movmskpd Gd,Ux', { pfx: 0x66, op: 0x50, size: 16, lanes: 'f64', only: 'reg' });
sse('pmovmskb Gd,Ux', { pfx: 0x66, op: 0xd7, size: 16, lanes: 'int', only: 'reg' });
sse('maskmovdqu Vx,Ux', {
  pfx: 0x66,
  op: 0xf7,
  size: 16,
  lanes: 'int',
  only: 'reg',
  // [rdi] in the data pages (sometimes across their inner page boundary).
  setup: (b, r) => {
    b.regs[7] = BigInt(DATA + (r.chance(0.2) ? 0xff8 + r.int(8) : r.int(0x1ff0)));
  },
});
sse('pinsrw Vx,Ewr,Ib', { pfx: 0x66, op: 0xc4, size: 2, lanes: 'int', imm: true, gpr: true });
sse('pextrw Gd,Ux,Ib', { pfx: 0x66, op: 0xc5, size: 16, lanes: 'int', imm: true, only: 'reg' });

// ---- packed integer (66 0F xx)
const PINT: [string, number][] = [
  ['punpcklbw', 0x60],
  ['punpcklwd', 0x61],
  ['punpckldq', 0x62],
  ['packsswb', 0x63],
  ['pcmpgtb', 0x64],
  ['pcmpgtw', 0x65],
  ['pcmpgtd', 0x66],
  ['packuswb', 0x67],
  ['punpckhbw', 0x68],
  ['punpckhwd', 0x69],
  ['punpckhdq', 0x6a],
  ['packssdw', 0x6b],
  ['punpcklqdq', 0x6c],
  ['punpckhqdq', 0x6d],
  ['pcmpeqb', 0x74],
  ['pcmpeqw', 0x75],
  ['pcmpeqd', 0x76],
  ['psrlw', 0xd1],
  ['psrld', 0xd2],
  ['psrlq', 0xd3],
  ['paddq', 0xd4],
  ['pmullw', 0xd5],
  ['psubusb', 0xd8],
  ['psubusw', 0xd9],
  ['pminub', 0xda],
  ['pand', 0xdb],
  ['paddusb', 0xdc],
  ['paddusw', 0xdd],
  ['pmaxub', 0xde],
  ['pandn', 0xdf],
  ['pavgb', 0xe0],
  ['psraw', 0xe1],
  ['psrad', 0xe2],
  ['pavgw', 0xe3],
  ['pmulhuw', 0xe4],
  ['pmulhw', 0xe5],
  ['psubsb', 0xe8],
  ['psubsw', 0xe9],
  ['pminsw', 0xea],
  ['por', 0xeb],
  ['paddsb', 0xec],
  ['paddsw', 0xed],
  ['pmaxsw', 0xee],
  ['pxor', 0xef],
  ['psllw', 0xf1],
  ['pslld', 0xf2],
  ['psllq', 0xf3],
  ['pmuludq', 0xf4],
  ['pmaddwd', 0xf5],
  ['psadbw', 0xf6],
  ['psubb', 0xf8],
  ['psubw', 0xf9],
  ['psubd', 0xfa],
  ['psubq', 0xfb],
  ['paddb', 0xfc],
  ['paddw', 0xfd],
  ['paddd', 0xfe],
];
const SHIFT_BY_REG = new Set([0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3]);
for (const [mn, op] of PINT) {
  sse(`${mn} Vx,Wx`, {
    pfx: 0x66,
    op,
    size: 16,
    lanes: 'int',
    ...(SHIFT_BY_REG.has(op)
      ? {
          // Counts: mostly small, sometimes at and past the lane width, sometimes huge.
          setup: (b: Builder, r: Rng) => {
            const cnt = r.chance(0.8) ? BigInt(r.int(70)) : edge(r);
            const src = b.bytes[b.bytes.length - 1]!;
            void src;
            for (let k = 0; k < 16; k++) b.simd!.xmm[2 * k] = cnt;
            if (b.memOff >= 0) b.mem.push([b.memOff, cnt]);
          },
        }
      : {}),
  });
}
for (const [mn, op, ext] of [
  ['psrlw', 0x71, 2],
  ['psraw', 0x71, 4],
  ['psllw', 0x71, 6],
  ['psrld', 0x72, 2],
  ['psrad', 0x72, 4],
  ['pslld', 0x72, 6],
  ['psrlq', 0x73, 2],
  ['psrldq', 0x73, 3],
  ['psllq', 0x73, 6],
  ['pslldq', 0x73, 7],
] as const) {
  sse(`${mn} Ux,Ib`, { pfx: 0x66, op, ext, size: 16, lanes: 'int', imm: true, only: 'reg' });
}
sse('pshufd', { pfx: 0x66, op: 0x70, size: 16, lanes: 'int', imm: true });
sse('pshufhw', { pfx: 0xf3, op: 0x70, size: 16, lanes: 'int', imm: true });
sse('pshuflw', { pfx: 0xf2, op: 0x70, size: 16, lanes: 'int', imm: true });
sse('shufps', { op: 0xc6, size: 16, lanes: 'f32', imm: true });
sse('shufpd', { pfx: 0x66, op: 0xc6, size: 16, lanes: 'f64', imm: true });
for (const [mn, op] of [
  ['unpcklp', 0x14],
  ['unpckhp', 0x15],
  ['andp', 0x54],
  ['andnp', 0x55],
  ['orp', 0x56],
  ['xorp', 0x57],
] as const) {
  sse(`${mn}s`, { op, size: 16, lanes: 'f32' });
  sse(`${mn}d`, { pfx: 0x66, op, size: 16, lanes: 'f64' });
}

// ---- floating point
for (const [mn, op] of [
  ['sqrt', 0x51],
  ['add', 0x58],
  ['mul', 0x59],
  ['sub', 0x5c],
  ['min', 0x5d],
  ['div', 0x5e],
  ['max', 0x5f],
] as const) {
  const rounding = true;
  sse(`${mn}ps`, { op, size: 16, lanes: 'f32', rounding });
  sse(`${mn}pd`, { pfx: 0x66, op, size: 16, lanes: 'f64', rounding });
  sse(`${mn}ss`, { pfx: 0xf3, op, size: 4, lanes: 'f32', rounding });
  sse(`${mn}sd`, { pfx: 0xf2, op, size: 8, lanes: 'f64', rounding });
}
sse('cmpps', { op: 0xc2, size: 16, lanes: 'f32', imm: true });
sse('cmppd', { pfx: 0x66, op: 0xc2, size: 16, lanes: 'f64', imm: true });
sse('cmpss', { pfx: 0xf3, op: 0xc2, size: 4, lanes: 'f32', imm: true });
sse('cmpsd', { pfx: 0xf2, op: 0xc2, size: 8, lanes: 'f64', imm: true });
sse('ucomiss', { op: 0x2e, size: 4, lanes: 'f32' });
sse('ucomisd', { pfx: 0x66, op: 0x2e, size: 8, lanes: 'f64' });
sse('comiss', { op: 0x2f, size: 4, lanes: 'f32' });
sse('comisd', { pfx: 0x66, op: 0x2f, size: 8, lanes: 'f64' });

// ---- conversions (MXCSR.RC random: the simulator honours it here)
for (const w of [false, true]) {
  const s = w ? '64' : '32';
  const g = { w, gpr: true, rounding: true, size: w ? 8 : 4 } as const;
  sse(`cvtsi2ss ${s}`, { pfx: 0xf3, op: 0x2a, lanes: 'f32', ...g });
  sse(`cvtsi2sd ${s}`, { pfx: 0xf2, op: 0x2a, lanes: 'f64', ...g });
  sse(`cvttss2si ${s}`, { pfx: 0xf3, op: 0x2c, lanes: 'f32', ...g, size: 4 });
  sse(`cvttsd2si ${s}`, { pfx: 0xf2, op: 0x2c, lanes: 'f64', ...g, size: 8 });
  sse(`cvtss2si ${s}`, { pfx: 0xf3, op: 0x2d, lanes: 'f32', ...g, size: 4 });
  sse(`cvtsd2si ${s}`, { pfx: 0xf2, op: 0x2d, lanes: 'f64', ...g, size: 8 });
}
for (const [name, pfx, op, size, lanes] of [
  ['cvtps2pd', undefined, 0x5a, 8, 'f32'],
  ['cvtpd2ps', 0x66, 0x5a, 16, 'f64'],
  ['cvtss2sd', 0xf3, 0x5a, 4, 'f32'],
  ['cvtsd2ss', 0xf2, 0x5a, 8, 'f64'],
  ['cvtdq2ps', undefined, 0x5b, 16, 'int'],
  ['cvtps2dq', 0x66, 0x5b, 16, 'f32'],
  ['cvttps2dq', 0xf3, 0x5b, 16, 'f32'],
  ['cvttpd2dq', 0x66, 0xe6, 16, 'f64'],
  ['cvtdq2pd', 0xf3, 0xe6, 8, 'int'],
  ['cvtpd2dq', 0xf2, 0xe6, 16, 'f64'],
] as const) {
  sse(name, { ...(pfx !== undefined ? { pfx } : {}), op, size, lanes, rounding: true });
}

// ---- MXCSR
sse('ldmxcsr Md', {
  op: 0xae,
  ext: 2,
  size: 4,
  lanes: 'int',
  only: 'mem',
  setup: (b, r) => {
    // Valid values mostly; sometimes a reserved bit (#GP). Not bit 17: MXCSR.MM, which this host
    // supports (misaligned SSE mode) and the simulated CPU does not advertise.
    const bit = r.pick([16, ...Array.from({ length: 14 }, (_, k) => 18 + k)]);
    const v = (r.u32() & 0xffff) | (r.chance(0.2) ? 1 << bit : 0);
    b.mem.push([b.memOff, BigInt(v) | (BigInt(r.u32()) << 32n)]);
  },
});
sse('stmxcsr Md', { op: 0xae, ext: 3, size: 4, lanes: 'int', only: 'mem' });

export const SSE_FORMS: readonly Form[] = forms;
