// Table rows for SSE/SSE2 (0F map with the 66/F3/F2 mandatory prefixes), EMMS, FWAIT and the x87
// escapes D8..DF, in AMD64 APM vol. 3 Appendix A notation plus shapes for XMM operands:
//   Vx = XMM in ModRM.reg; Wx/Wss/Wsd/Wq = XMM in ModRM.rm or memory of 128/32/64/64 bits;
//   Ux = XMM in ModRM.rm (register only); Mq/Md/Mx/Mz = memory of 64/32/128 bits / no size;
//   Ey/Gy = 32- or 64-bit GPR by REX.W; Gd = 32-bit GPR; Ewr = r32 or m16 (PINSRW).
// opcode-table.ts installs them. The rows are plain objects shaped like OpDef (this file must not
// import opcode-table.ts, which imports it).

import * as H from './ops.js';

export interface SimdDef {
  readonly mn: string;
  readonly ops: readonly string[];
  readonly h: number;
  readonly sub: number;
  readonly size: number;
  readonly group?: readonly (SimdDef | null)[];
  readonly pfx?: readonly (SimdDef | null)[];
  readonly form?: 'reg' | 'mem' | 'modreg';
  readonly memAlt?: SimdDef;
}

// H_SSE_MOV kinds.
export const MOV_LOAD = 0; // Vx <- Wx
export const MOV_STORE = 1; // Wx <- Vx
export const MOV_LOADSS = 2; // reg: merge low dword; mem: zero-extend
export const MOV_STORESS = 3;
export const MOV_LOADSD = 4;
export const MOV_STORESD = 5;
export const MOV_LOADLO = 6; // MOVLPS/MOVLPD; mod 3 = MOVHLPS
export const MOV_STORELO = 7;
export const MOV_LOADHI = 8; // MOVHPS/MOVHPD; mod 3 = MOVLHPS
export const MOV_STOREHI = 9;
export const MOV_D_TO = 10; // MOVD/MOVQ xmm, r/m
export const MOV_D_FROM = 11; // MOVD/MOVQ r/m, xmm
export const MOV_Q_LOAD = 12; // F3 0F 7E
export const MOV_Q_STORE = 13; // 66 0F D6
export const MOV_NTI = 14;
export const MOV_MASKMOV = 15; // MASKMOVDQU: selected bytes to [rDI]
export const MOV_ALIGNED = 0x100;

// H_SSE_PINT operations.
export const PINT_NAMES = [
  'punpcklbw',
  'punpcklwd',
  'punpckldq',
  'packsswb',
  'pcmpgtb',
  'pcmpgtw',
  'pcmpgtd',
  'packuswb',
  'punpckhbw',
  'punpckhwd',
  'punpckhdq',
  'packssdw',
  'punpcklqdq',
  'punpckhqdq',
  'pcmpeqb',
  'pcmpeqw',
  'pcmpeqd',
  'psrlw',
  'psrld',
  'psrlq',
  'paddq',
  'pmullw',
  'psubusb',
  'psubusw',
  'pminub',
  'pand',
  'paddusb',
  'paddusw',
  'pmaxub',
  'pandn',
  'pavgb',
  'psraw',
  'psrad',
  'pavgw',
  'pmulhuw',
  'pmulhw',
  'psubsb',
  'psubsw',
  'pminsw',
  'por',
  'paddsb',
  'paddsw',
  'pmaxsw',
  'pxor',
  'psllw',
  'pslld',
  'psllq',
  'pmuludq',
  'pmaddwd',
  'psadbw',
  'psubb',
  'psubw',
  'psubd',
  'psubq',
  'paddb',
  'paddw',
  'paddd',
] as const;
/** 66 0F opcode of each PINT operation (same order as PINT_NAMES). */
const PINT_OPCODES = [
  0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x74, 0x75,
  0x76, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1,
  0xe2, 0xe3, 0xe4, 0xe5, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf1, 0xf2, 0xf3, 0xf4,
  0xf5, 0xf6, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe,
];
export const PINT = Object.fromEntries(PINT_NAMES.map((n, k) => [n, k])) as Record<
  (typeof PINT_NAMES)[number],
  number
>;

// H_SSE_FP operations (low 4 bits of sub) and types (sub >> 4).
export const FP_ADD = 0;
export const FP_MUL = 1;
export const FP_SUB = 2;
export const FP_MIN = 3;
export const FP_DIV = 4;
export const FP_MAX = 5;
export const FP_SQRT = 6;
export const FP_RSQRT = 7;
export const FP_RCP = 8;
export const T_PS = 0;
export const T_PD = 1;
export const T_SS = 2;
export const T_SD = 3;

// H_SSE_CVT kinds.
export const CVT_SI2SS = 0;
export const CVT_SI2SD = 1;
export const CVT_TSS2SI = 2;
export const CVT_TSD2SI = 3;
export const CVT_SS2SI = 4;
export const CVT_SD2SI = 5;
export const CVT_PS2PD = 6;
export const CVT_PD2PS = 7;
export const CVT_SS2SD = 8;
export const CVT_SD2SS = 9;
export const CVT_DQ2PS = 10;
export const CVT_PS2DQ = 11;
export const CVT_TPS2DQ = 12;
export const CVT_TPD2DQ = 13;
export const CVT_DQ2PD = 14;
export const CVT_PD2DQ = 15;

// H_SSE_SHUF kinds.
export const SHUF_PSHUFD = 0;
export const SHUF_PSHUFHW = 1;
export const SHUF_PSHUFLW = 2;
export const SHUF_SHUFPS = 3;
export const SHUF_SHUFPD = 4;

function d(mn: string, ops: string, h: number, sub = 0, extra: Partial<SimdDef> = {}): SimdDef {
  return { mn, ops: ops === '' ? [] : ops.split(','), h, sub, size: 0, ...extra };
}

/** A row chosen by mandatory prefix: none, 66, F3, F2. */
function p(
  none: SimdDef | null,
  p66: SimdDef | null = null,
  f3: SimdDef | null = null,
  f2: SimdDef | null = null,
): SimdDef {
  return { mn: '', ops: [], h: H.H_UD, sub: 0, size: 0, pfx: [none, p66, f3, f2] };
}

function grp(rows: (SimdDef | null)[], ops: string): SimdDef {
  return { mn: '', ops: ops.split(','), h: H.H_UD, sub: 0, size: 0, group: rows };
}

const MOV = H.H_SSE_MOV;
const A = MOV_ALIGNED;
const FP = H.H_SSE_FP;
const CVT = H.H_SSE_CVT;

/** Puts the SIMD rows into the one-byte and 0F maps. */
export function installSimd(one: (SimdDef | null)[], two: (SimdDef | null)[]): void {
  two[0x10] = p(
    d('movups', 'Vx,Wx', MOV, MOV_LOAD),
    d('movupd', 'Vx,Wx', MOV, MOV_LOAD),
    d('movss', 'Vx,Wss', MOV, MOV_LOADSS),
    d('movsd', 'Vx,Wsd', MOV, MOV_LOADSD),
  );
  two[0x11] = p(
    d('movups', 'Wx,Vx', MOV, MOV_STORE),
    d('movupd', 'Wx,Vx', MOV, MOV_STORE),
    d('movss', 'Wss,Vx', MOV, MOV_STORESS),
    d('movsd', 'Wsd,Vx', MOV, MOV_STORESD),
  );
  two[0x12] = p(
    d('movlps', 'Vx,Wq', MOV, MOV_LOADLO),
    d('movlpd', 'Vx,Mq', MOV, MOV_LOADLO, { form: 'mem' }),
  );
  two[0x13] = p(
    d('movlps', 'Mq,Vx', MOV, MOV_STORELO, { form: 'mem' }),
    d('movlpd', 'Mq,Vx', MOV, MOV_STORELO, { form: 'mem' }),
  );
  two[0x14] = p(
    d('unpcklps', 'Vx,Wx', H.H_SSE_PINT, PINT.punpckldq),
    d('unpcklpd', 'Vx,Wx', H.H_SSE_PINT, PINT.punpcklqdq),
  );
  two[0x15] = p(
    d('unpckhps', 'Vx,Wx', H.H_SSE_PINT, PINT.punpckhdq),
    d('unpckhpd', 'Vx,Wx', H.H_SSE_PINT, PINT.punpckhqdq),
  );
  two[0x16] = p(
    d('movhps', 'Vx,Wq', MOV, MOV_LOADHI),
    d('movhpd', 'Vx,Mq', MOV, MOV_LOADHI, { form: 'mem' }),
  );
  two[0x17] = p(
    d('movhps', 'Mq,Vx', MOV, MOV_STOREHI, { form: 'mem' }),
    d('movhpd', 'Mq,Vx', MOV, MOV_STOREHI, { form: 'mem' }),
  );
  two[0x28] = p(d('movaps', 'Vx,Wx', MOV, MOV_LOAD | A), d('movapd', 'Vx,Wx', MOV, MOV_LOAD | A));
  two[0x29] = p(d('movaps', 'Wx,Vx', MOV, MOV_STORE | A), d('movapd', 'Wx,Vx', MOV, MOV_STORE | A));
  two[0x2a] = p(
    null,
    null,
    d('cvtsi2ss', 'Vx,Ey', CVT, CVT_SI2SS),
    d('cvtsi2sd', 'Vx,Ey', CVT, CVT_SI2SD),
  );
  two[0x2b] = p(
    d('movntps', 'Mx,Vx', MOV, MOV_STORE | A, { form: 'mem' }),
    d('movntpd', 'Mx,Vx', MOV, MOV_STORE | A, { form: 'mem' }),
  );
  two[0x2c] = p(
    null,
    null,
    d('cvttss2si', 'Gy,Wss', CVT, CVT_TSS2SI),
    d('cvttsd2si', 'Gy,Wsd', CVT, CVT_TSD2SI),
  );
  two[0x2d] = p(
    null,
    null,
    d('cvtss2si', 'Gy,Wss', CVT, CVT_SS2SI),
    d('cvtsd2si', 'Gy,Wsd', CVT, CVT_SD2SI),
  );
  two[0x2e] = p(d('ucomiss', 'Vx,Wss', H.H_SSE_COMI, 1), d('ucomisd', 'Vx,Wsd', H.H_SSE_COMI, 3));
  two[0x2f] = p(d('comiss', 'Vx,Wss', H.H_SSE_COMI, 0), d('comisd', 'Vx,Wsd', H.H_SSE_COMI, 2));
  two[0x50] = p(
    d('movmskps', 'Gd,Ux', H.H_SSE_MOVMSK, 0, { form: 'reg' }),
    d('movmskpd', 'Gd,Ux', H.H_SSE_MOVMSK, 1, { form: 'reg' }),
  );
  const arith: [number, string, number][] = [
    [0x51, 'sqrt', FP_SQRT],
    [0x58, 'add', FP_ADD],
    [0x59, 'mul', FP_MUL],
    [0x5c, 'sub', FP_SUB],
    [0x5d, 'min', FP_MIN],
    [0x5e, 'div', FP_DIV],
    [0x5f, 'max', FP_MAX],
  ];
  for (const [op, mn, k] of arith) {
    two[op] = p(
      d(mn + 'ps', 'Vx,Wx', FP, k | (T_PS << 4)),
      d(mn + 'pd', 'Vx,Wx', FP, k | (T_PD << 4)),
      d(mn + 'ss', 'Vx,Wss', FP, k | (T_SS << 4)),
      d(mn + 'sd', 'Vx,Wsd', FP, k | (T_SD << 4)),
    );
  }
  two[0x52] = p(
    d('rsqrtps', 'Vx,Wx', FP, FP_RSQRT),
    null,
    d('rsqrtss', 'Vx,Wss', FP, FP_RSQRT | (T_SS << 4)),
  );
  two[0x53] = p(
    d('rcpps', 'Vx,Wx', FP, FP_RCP),
    null,
    d('rcpss', 'Vx,Wss', FP, FP_RCP | (T_SS << 4)),
  );
  const logic: [number, string, number][] = [
    [0x54, 'and', PINT.pand],
    [0x55, 'andn', PINT.pandn],
    [0x56, 'or', PINT.por],
    [0x57, 'xor', PINT.pxor],
  ];
  for (const [op, mn, k] of logic) {
    two[op] = p(d(mn + 'ps', 'Vx,Wx', H.H_SSE_PINT, k), d(mn + 'pd', 'Vx,Wx', H.H_SSE_PINT, k));
  }
  two[0x5a] = p(
    d('cvtps2pd', 'Vx,Wq', CVT, CVT_PS2PD),
    d('cvtpd2ps', 'Vx,Wx', CVT, CVT_PD2PS),
    d('cvtss2sd', 'Vx,Wss', CVT, CVT_SS2SD),
    d('cvtsd2ss', 'Vx,Wsd', CVT, CVT_SD2SS),
  );
  two[0x5b] = p(
    d('cvtdq2ps', 'Vx,Wx', CVT, CVT_DQ2PS),
    d('cvtps2dq', 'Vx,Wx', CVT, CVT_PS2DQ),
    d('cvttps2dq', 'Vx,Wx', CVT, CVT_TPS2DQ),
  );
  two[0xe6] = p(
    null,
    d('cvttpd2dq', 'Vx,Wx', CVT, CVT_TPD2DQ),
    d('cvtdq2pd', 'Vx,Wq', CVT, CVT_DQ2PD),
    d('cvtpd2dq', 'Vx,Wx', CVT, CVT_PD2DQ),
  );
  for (let k = 0; k < PINT_NAMES.length; k++) {
    two[PINT_OPCODES[k]!] = p(null, d(PINT_NAMES[k]!, 'Vx,Wx', H.H_SSE_PINT, k));
  }
  two[0x6e] = p(null, d('movd', 'Vx,Ey', MOV, MOV_D_TO));
  two[0x7e] = p(null, d('movd', 'Ey,Vx', MOV, MOV_D_FROM), d('movq', 'Vx,Wq', MOV, MOV_Q_LOAD));
  two[0x6f] = p(null, d('movdqa', 'Vx,Wx', MOV, MOV_LOAD | A), d('movdqu', 'Vx,Wx', MOV, MOV_LOAD));
  two[0x7f] = p(
    null,
    d('movdqa', 'Wx,Vx', MOV, MOV_STORE | A),
    d('movdqu', 'Wx,Vx', MOV, MOV_STORE),
  );
  two[0xd6] = p(null, d('movq', 'Wq,Vx', MOV, MOV_Q_STORE));
  two[0xe7] = p(null, d('movntdq', 'Mx,Vx', MOV, MOV_STORE | A, { form: 'mem' }));
  two[0xc3] = p(d('movnti', 'Ey,Gy', MOV, MOV_NTI, { form: 'mem' }));
  two[0xf7] = p(null, d('maskmovdqu', 'Vx,Ux', MOV, MOV_MASKMOV, { form: 'reg' }));
  two[0x70] = p(
    null,
    d('pshufd', 'Vx,Wx,Ib', H.H_SSE_SHUF, SHUF_PSHUFD),
    d('pshufhw', 'Vx,Wx,Ib', H.H_SSE_SHUF, SHUF_PSHUFHW),
    d('pshuflw', 'Vx,Wx,Ib', H.H_SSE_SHUF, SHUF_PSHUFLW),
  );
  two[0xc6] = p(
    d('shufps', 'Vx,Wx,Ib', H.H_SSE_SHUF, SHUF_SHUFPS),
    d('shufpd', 'Vx,Wx,Ib', H.H_SSE_SHUF, SHUF_SHUFPD),
  );
  // Shift by immediate: sub = 0 psrlw 1 psraw 2 psllw 3 psrld 4 psrad 5 pslld 6 psrlq 7 psrldq
  // 8 psllq 9 pslldq.
  const sh = (mn: string, k: number) => d(mn, 'Ux,Ib', H.H_SSE_PSHIFT_I, k, { form: 'reg' });
  two[0x71] = p(
    null,
    grp([null, null, sh('psrlw', 0), null, sh('psraw', 1), null, sh('psllw', 2), null], 'Ux,Ib'),
  );
  two[0x72] = p(
    null,
    grp([null, null, sh('psrld', 3), null, sh('psrad', 4), null, sh('pslld', 5), null], 'Ux,Ib'),
  );
  two[0x73] = p(
    null,
    grp(
      [null, null, sh('psrlq', 6), sh('psrldq', 7), null, null, sh('psllq', 8), sh('pslldq', 9)],
      'Ux,Ib',
    ),
  );
  two[0x77] = p(d('emms', '', H.H_EMMS));
  two[0xc2] = p(
    d('cmpps', 'Vx,Wx,Ib', H.H_SSE_CMP, T_PS),
    d('cmppd', 'Vx,Wx,Ib', H.H_SSE_CMP, T_PD),
    d('cmpss', 'Vx,Wss,Ib', H.H_SSE_CMP, T_SS),
    d('cmpsd', 'Vx,Wsd,Ib', H.H_SSE_CMP, T_SD),
  );
  two[0xc4] = p(null, d('pinsrw', 'Vx,Ewr,Ib', H.H_SSE_WORD, 0));
  two[0xc5] = p(null, d('pextrw', 'Gd,Ux,Ib', H.H_SSE_WORD, 1, { form: 'reg' }));
  two[0xd7] = p(null, d('pmovmskb', 'Gd,Ux', H.H_SSE_MOVMSK, 2, { form: 'reg' }));
  // FXSAVE/FXRSTOR/LDMXCSR/STMXCSR join the fences of group 15 (0F AE).
  const g15 = two[0xae]!.group!.slice();
  g15[0] = d('fxsave', 'Mz', H.H_SSE_STATE, 0, { form: 'mem' });
  g15[1] = d('fxrstor', 'Mz', H.H_SSE_STATE, 1, { form: 'mem' });
  g15[2] = d('ldmxcsr', 'Md', H.H_SSE_STATE, 2, { form: 'mem' });
  g15[3] = d('stmxcsr', 'Md', H.H_SSE_STATE, 3, { form: 'mem' });
  // The fences are register forms only; the memory forms of /5 and /6 (XRSTOR, XSAVEOPT) are #UD
  // and /7 with memory is CLFLUSH (SSE2).
  const fence = (k: number) => g15[k] && { ...g15[k], form: 'reg' as const };
  g15[5] = fence(5)!;
  g15[6] = fence(6)!;
  g15[7] = { ...fence(7)!, memAlt: d('clflush', 'Mb', H.H_CLFLUSH, 0, { form: 'mem' }) };
  two[0xae] = { ...two[0xae]!, group: g15 };

  one[0x9b] = d('fwait', '', H.H_FWAIT);
  for (let k = 0; k < 8; k++) {
    const rows: SimdDef[] = [];
    for (let reg = 0; reg < 8; reg++) rows.push(d('x87', 'Fx', H.H_X87, k * 8 + reg));
    one[0xd8 + k] = grp(rows, 'Fx');
  }
}
