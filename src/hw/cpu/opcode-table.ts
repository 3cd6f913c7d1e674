// The instruction table: one row per encoding of the one-byte map and the 0F map, in the
// operand notation of AMD64 APM vol. 3, Appendix A "Opcode and Operand Encodings" (E = ModRM.rm,
// G = ModRM.reg, I = immediate, J = relative target, Z = register in the opcode's low bits, O =
// absolute offset; b/w/d/q/v/z sizes). The decoder reads the operand shapes to know which bytes
// follow; the interpreter gets the handler; the disassembler prints the mnemonic and shapes.
// Rows left null are #UD (or not implemented yet, which the decoder reports the same way).

import * as H from './ops.js';
import { installSimd } from './sse-table.js';

/** Operand-size rule of a row. */
export const SZ_V = 0; // 16/32/64 by 66 and REX.W, default 32
export const SZ_B = 1; // byte operation
export const SZ_W = 2; // always 16
export const SZ_D64 = -1; // default 64 in 64-bit mode, 66 gives 16 (push, pop, near branches)
export const SZ_F64 = -2; // always 64 in 64-bit mode

export interface OpDef {
  readonly mn: string;
  /** Operand shapes, e.g. ['Ev', 'Gv']. */
  readonly ops: readonly string[];
  readonly h: number;
  readonly sub: number;
  readonly size: number;
  /** Sub-table by ModRM.reg (group opcodes); the row itself then only says a ModRM follows. */
  readonly group?: readonly (OpDef | null)[];
  /** The row when an F3 prefix selects another instruction (POPCNT, TZCNT, LZCNT, PAUSE). */
  readonly f3?: OpDef;
  /**
   * Only the register form (mod = 3) is valid; the memory form is #UD. Or 'mem' for the reverse.
   * 'modreg': ModRM.mod is ignored and rm always names a register (MOV CRn/DRn).
   */
  readonly form?: 'reg' | 'mem' | 'modreg';
  /** The row when an F2 prefix selects another instruction (PVALIDATE). */
  readonly f2?: OpDef;
  /** Rows chosen by the mandatory prefix (none, 66, F3, F2), which is then not a prefix (SSE). */
  readonly pfx?: readonly (OpDef | null)[];
  /** The row for the memory form (mod != 3) when it is another instruction (CLFLUSH vs SFENCE). */
  readonly memAlt?: OpDef;
}

function d(
  mn: string,
  ops: string,
  h: number,
  sub = 0,
  size = SZ_V,
  extra: Partial<OpDef> = {},
): OpDef {
  return { mn, ops: ops === '' ? [] : ops.split(','), h, sub, size, ...extra };
}

function group(rows: (OpDef | null)[], ops = 'Ev'): OpDef {
  return { mn: '', ops: ops.split(','), h: H.H_UD, sub: 0, size: SZ_V, group: rows };
}

/** The one-byte opcode map. */
export const ONE_BYTE: (OpDef | null)[] = new Array<OpDef | null>(256).fill(null);
/** The two-byte (0F) opcode map. */
export const TWO_BYTE: (OpDef | null)[] = new Array<OpDef | null>(256).fill(null);

const ALU_NAMES = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const CC_NAMES = [
  'o',
  'no',
  'b',
  'ae',
  'e',
  'ne',
  'be',
  'a',
  's',
  'ns',
  'p',
  'np',
  'l',
  'ge',
  'le',
  'g',
];
const SHIFT_NAMES = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];

for (let op = 0; op < 8; op++) {
  const mn = ALU_NAMES[op]!;
  ONE_BYTE[op * 8 + 0] = d(mn, 'Eb,Gb', H.H_ALU_EG, op, SZ_B);
  ONE_BYTE[op * 8 + 1] = d(mn, 'Ev,Gv', H.H_ALU_EG, op);
  ONE_BYTE[op * 8 + 2] = d(mn, 'Gb,Eb', H.H_ALU_GE, op, SZ_B);
  ONE_BYTE[op * 8 + 3] = d(mn, 'Gv,Ev', H.H_ALU_GE, op);
  ONE_BYTE[op * 8 + 4] = d(mn, 'AL,Ib', H.H_ALU_EI, op, SZ_B);
  ONE_BYTE[op * 8 + 5] = d(mn, 'rAX,Iz', H.H_ALU_EI, op);
}
for (let r = 0; r < 8; r++) {
  ONE_BYTE[0x50 + r] = d('push', 'Zv', H.H_PUSH_R, 0, SZ_D64);
  ONE_BYTE[0x58 + r] = d('pop', 'Zv', H.H_POP_R, 0, SZ_D64);
  ONE_BYTE[0x90 + r] = d('xchg', 'Zv,rAX', H.H_XCHG_EG);
  ONE_BYTE[0xb0 + r] = d('mov', 'Zb,Ib', H.H_MOV_EI, 0, SZ_B);
  ONE_BYTE[0xb8 + r] = d('mov', 'Zv,Iv', H.H_MOV_EI);
}
ONE_BYTE[0x63] = d('movsxd', 'Gv,Ed', H.H_MOVSX, 4);
ONE_BYTE[0x68] = d('push', 'Iz', H.H_PUSH_I, 0, SZ_D64);
ONE_BYTE[0x69] = d('imul', 'Gv,Ev,Iz', H.H_IMUL_GEI);
ONE_BYTE[0x6a] = d('push', 'Ibs', H.H_PUSH_I, 0, SZ_D64);
ONE_BYTE[0x6b] = d('imul', 'Gv,Ev,Ibs', H.H_IMUL_GEI);
for (let cc = 0; cc < 16; cc++) {
  ONE_BYTE[0x70 + cc] = d('j' + CC_NAMES[cc], 'Jb', H.H_JCC, cc, SZ_D64);
  TWO_BYTE[0x80 + cc] = d('j' + CC_NAMES[cc], 'Jz', H.H_JCC, cc, SZ_D64);
  TWO_BYTE[0x90 + cc] = d('set' + CC_NAMES[cc], 'Eb', H.H_SETCC, cc, SZ_B);
  TWO_BYTE[0x40 + cc] = d('cmov' + CC_NAMES[cc], 'Gv,Ev', H.H_CMOVCC, cc);
}
ONE_BYTE[0x80] = group(
  ALU_NAMES.map((mn, op) => d(mn, 'Eb,Ib', H.H_ALU_EI, op, SZ_B)),
  'Eb',
);
ONE_BYTE[0x81] = group(ALU_NAMES.map((mn, op) => d(mn, 'Ev,Iz', H.H_ALU_EI, op)));
ONE_BYTE[0x83] = group(ALU_NAMES.map((mn, op) => d(mn, 'Ev,Ibs', H.H_ALU_EI, op)));
ONE_BYTE[0x84] = d('test', 'Eb,Gb', H.H_TEST_EG, 0, SZ_B);
ONE_BYTE[0x85] = d('test', 'Ev,Gv', H.H_TEST_EG);
ONE_BYTE[0x86] = d('xchg', 'Eb,Gb', H.H_XCHG_EG, 0, SZ_B);
ONE_BYTE[0x87] = d('xchg', 'Ev,Gv', H.H_XCHG_EG);
ONE_BYTE[0x88] = d('mov', 'Eb,Gb', H.H_MOV_EG, 0, SZ_B);
ONE_BYTE[0x89] = d('mov', 'Ev,Gv', H.H_MOV_EG);
ONE_BYTE[0x8a] = d('mov', 'Gb,Eb', H.H_MOV_GE, 0, SZ_B);
ONE_BYTE[0x8b] = d('mov', 'Gv,Ev', H.H_MOV_GE);
ONE_BYTE[0x8d] = d('lea', 'Gv,M', H.H_LEA, 0, SZ_V, { form: 'mem' });
ONE_BYTE[0x8f] = group([
  d('pop', 'Ev', H.H_POP_E, 0, SZ_D64),
  null,
  null,
  null,
  null,
  null,
  null,
  null,
]);
ONE_BYTE[0x90] = d('nop', '', H.H_NOP, 0, SZ_V, { f3: d('pause', '', H.H_NOP) });
ONE_BYTE[0x98] = d('cbw', '', H.H_CBW); // cwde/cdqe by size (disassembler)
ONE_BYTE[0x99] = d('cwd', '', H.H_CWD);
ONE_BYTE[0x9c] = d('pushf', '', H.H_PUSHF, 0, SZ_D64);
ONE_BYTE[0x9d] = d('popf', '', H.H_POPF, 0, SZ_D64);
ONE_BYTE[0x9e] = d('sahf', '', H.H_SAHF);
ONE_BYTE[0x9f] = d('lahf', '', H.H_LAHF);
ONE_BYTE[0xa0] = d('mov', 'AL,Ob', H.H_MOV_GE, 0, SZ_B);
ONE_BYTE[0xa1] = d('mov', 'rAX,Ov', H.H_MOV_GE);
ONE_BYTE[0xa2] = d('mov', 'Ob,AL', H.H_MOV_EG, 0, SZ_B);
ONE_BYTE[0xa3] = d('mov', 'Ov,rAX', H.H_MOV_EG);
ONE_BYTE[0xa4] = d('movs', 'Yb,Xb', H.H_MOVS, 0, SZ_B);
ONE_BYTE[0xa5] = d('movs', 'Yv,Xv', H.H_MOVS);
ONE_BYTE[0xa6] = d('cmps', 'Xb,Yb', H.H_CMPS, 0, SZ_B);
ONE_BYTE[0xa7] = d('cmps', 'Xv,Yv', H.H_CMPS);
ONE_BYTE[0xa8] = d('test', 'AL,Ib', H.H_TEST_EI, 0, SZ_B);
ONE_BYTE[0xa9] = d('test', 'rAX,Iz', H.H_TEST_EI);
ONE_BYTE[0xaa] = d('stos', 'Yb,AL', H.H_STOS, 0, SZ_B);
ONE_BYTE[0xab] = d('stos', 'Yv,rAX', H.H_STOS);
ONE_BYTE[0xac] = d('lods', 'AL,Xb', H.H_LODS, 0, SZ_B);
ONE_BYTE[0xad] = d('lods', 'rAX,Xv', H.H_LODS);
ONE_BYTE[0xae] = d('scas', 'AL,Yb', H.H_SCAS, 0, SZ_B);
ONE_BYTE[0xaf] = d('scas', 'rAX,Yv', H.H_SCAS);
ONE_BYTE[0xc0] = group(
  SHIFT_NAMES.map((mn, k) => d(mn, 'Eb,Ib', H.H_SHIFT_I, k, SZ_B)),
  'Eb',
);
ONE_BYTE[0xc1] = group(SHIFT_NAMES.map((mn, k) => d(mn, 'Ev,Ib', H.H_SHIFT_I, k)));
ONE_BYTE[0xc2] = d('ret', 'Iw', H.H_RET, 0, SZ_D64);
ONE_BYTE[0xc3] = d('ret', '', H.H_RET, 0, SZ_D64);
ONE_BYTE[0xc6] = group(
  [d('mov', 'Eb,Ib', H.H_MOV_EI, 0, SZ_B), null, null, null, null, null, null, null],
  'Eb',
);
ONE_BYTE[0xc7] = group([d('mov', 'Ev,Iz', H.H_MOV_EI), null, null, null, null, null, null, null]);
ONE_BYTE[0xc8] = d('enter', 'Iw,Ib', H.H_ENTER, 0, SZ_D64);
ONE_BYTE[0xc9] = d('leave', '', H.H_LEAVE, 0, SZ_D64);
ONE_BYTE[0xcc] = d('int3', '', H.H_INT3);
ONE_BYTE[0xd0] = group(
  SHIFT_NAMES.map((mn, k) => d(mn, 'Eb,1', H.H_SHIFT_I, k, SZ_B)),
  'Eb',
);
ONE_BYTE[0xd1] = group(SHIFT_NAMES.map((mn, k) => d(mn, 'Ev,1', H.H_SHIFT_I, k)));
ONE_BYTE[0xd2] = group(
  SHIFT_NAMES.map((mn, k) => d(mn, 'Eb,CL', H.H_SHIFT_CL, k, SZ_B)),
  'Eb',
);
ONE_BYTE[0xd3] = group(SHIFT_NAMES.map((mn, k) => d(mn, 'Ev,CL', H.H_SHIFT_CL, k)));
ONE_BYTE[0xd7] = d('xlat', '', H.H_XLAT, 0, SZ_B);
ONE_BYTE[0xe8] = d('call', 'Jz', H.H_CALL_J, 0, SZ_F64);
ONE_BYTE[0xe9] = d('jmp', 'Jz', H.H_JMP_J, 0, SZ_F64);
ONE_BYTE[0xeb] = d('jmp', 'Jb', H.H_JMP_J, 0, SZ_F64);
ONE_BYTE[0xf4] = d('hlt', '', H.H_HLT);
ONE_BYTE[0xf5] = d('cmc', '', H.H_FLAGOP, 2);
ONE_BYTE[0xf6] = group(
  [
    d('test', 'Eb,Ib', H.H_TEST_EI, 0, SZ_B),
    d('test', 'Eb,Ib', H.H_TEST_EI, 0, SZ_B),
    d('not', 'Eb', H.H_NOTNEG, 2, SZ_B),
    d('neg', 'Eb', H.H_NOTNEG, 3, SZ_B),
    d('mul', 'Eb', H.H_MULDIV, 4, SZ_B),
    d('imul', 'Eb', H.H_MULDIV, 5, SZ_B),
    d('div', 'Eb', H.H_MULDIV, 6, SZ_B),
    d('idiv', 'Eb', H.H_MULDIV, 7, SZ_B),
  ],
  'Eb',
);
ONE_BYTE[0xf7] = group([
  d('test', 'Ev,Iz', H.H_TEST_EI),
  d('test', 'Ev,Iz', H.H_TEST_EI),
  d('not', 'Ev', H.H_NOTNEG, 2),
  d('neg', 'Ev', H.H_NOTNEG, 3),
  d('mul', 'Ev', H.H_MULDIV, 4),
  d('imul', 'Ev', H.H_MULDIV, 5),
  d('div', 'Ev', H.H_MULDIV, 6),
  d('idiv', 'Ev', H.H_MULDIV, 7),
]);
ONE_BYTE[0xf8] = d('clc', '', H.H_FLAGOP, 0);
ONE_BYTE[0xf9] = d('stc', '', H.H_FLAGOP, 1);
ONE_BYTE[0xfc] = d('cld', '', H.H_FLAGOP, 3);
ONE_BYTE[0xfd] = d('std', '', H.H_FLAGOP, 4);
ONE_BYTE[0xfe] = group(
  [
    d('inc', 'Eb', H.H_INCDEC, 0, SZ_B),
    d('dec', 'Eb', H.H_INCDEC, 1, SZ_B),
    null,
    null,
    null,
    null,
    null,
    null,
  ],
  'Eb',
);
ONE_BYTE[0xff] = group([
  d('inc', 'Ev', H.H_INCDEC, 0),
  d('dec', 'Ev', H.H_INCDEC, 1),
  d('call', 'Ev', H.H_CALL_E, 0, SZ_F64),
  d('callf', 'M', H.H_CALL_FAR, 0, SZ_V, { form: 'mem' }),
  d('jmp', 'Ev', H.H_JMP_E, 0, SZ_F64),
  d('jmpf', 'M', H.H_JMP_FAR, 0, SZ_V, { form: 'mem' }),
  d('push', 'Ev', H.H_PUSH_E, 0, SZ_D64),
  null,
]);

// ---- 0F map
TWO_BYTE[0x0b] = d('ud2', '', H.H_UD);
TWO_BYTE[0x0d] = d('nop', 'Ev', H.H_NOP, 0, SZ_V, { form: 'mem' }); // PREFETCH/PREFETCHW
TWO_BYTE[0x18] = d('nop', 'Ev', H.H_NOP); // PREFETCHh hints
for (let b = 0x19; b <= 0x1f; b++) TWO_BYTE[b] = d('nop', 'Ev', H.H_NOP); // hint NOPs (incl. ENDBR64)
TWO_BYTE[0x31] = d('rdtsc', '', H.H_RDTSC);
TWO_BYTE[0xa2] = d('cpuid', '', H.H_CPUID);
TWO_BYTE[0xa3] = d('bt', 'Ev,Gv', H.H_BT_EG, 0);
TWO_BYTE[0xa4] = d('shld', 'Ev,Gv,Ib', H.H_SHXD_I, 0);
TWO_BYTE[0xa5] = d('shld', 'Ev,Gv,CL', H.H_SHXD_CL, 0);
TWO_BYTE[0xab] = d('bts', 'Ev,Gv', H.H_BT_EG, 1);
TWO_BYTE[0xac] = d('shrd', 'Ev,Gv,Ib', H.H_SHXD_I, 1);
TWO_BYTE[0xad] = d('shrd', 'Ev,Gv,CL', H.H_SHXD_CL, 1);
TWO_BYTE[0xae] = group([
  null,
  null,
  null,
  null,
  null,
  d('lfence', '', H.H_NOP),
  d('mfence', '', H.H_NOP),
  d('sfence', '', H.H_NOP),
]);
TWO_BYTE[0xaf] = d('imul', 'Gv,Ev', H.H_IMUL_GE);
TWO_BYTE[0xb0] = d('cmpxchg', 'Eb,Gb', H.H_CMPXCHG, 0, SZ_B);
TWO_BYTE[0xb1] = d('cmpxchg', 'Ev,Gv', H.H_CMPXCHG);
TWO_BYTE[0xb3] = d('btr', 'Ev,Gv', H.H_BT_EG, 2);
TWO_BYTE[0xb6] = d('movzx', 'Gv,Eb', H.H_MOVZX, 1);
TWO_BYTE[0xb7] = d('movzx', 'Gv,Ew', H.H_MOVZX, 2);
TWO_BYTE[0xb8] = d('(bad)', '', H.H_UD, 0, SZ_V, { f3: d('popcnt', 'Gv,Ev', H.H_POPCNT) });
TWO_BYTE[0xba] = group([
  null,
  null,
  null,
  null,
  d('bt', 'Ev,Ib', H.H_BT_EI, 0),
  d('bts', 'Ev,Ib', H.H_BT_EI, 1),
  d('btr', 'Ev,Ib', H.H_BT_EI, 2),
  d('btc', 'Ev,Ib', H.H_BT_EI, 3),
]);
TWO_BYTE[0xbb] = d('btc', 'Ev,Gv', H.H_BT_EG, 3);
TWO_BYTE[0xbc] = d('bsf', 'Gv,Ev', H.H_BSF, 0, SZ_V, { f3: d('tzcnt', 'Gv,Ev', H.H_TZCNT) });
TWO_BYTE[0xbd] = d('bsr', 'Gv,Ev', H.H_BSR, 0, SZ_V, { f3: d('lzcnt', 'Gv,Ev', H.H_LZCNT) });
TWO_BYTE[0xbe] = d('movsx', 'Gv,Eb', H.H_MOVSX, 1);
TWO_BYTE[0xbf] = d('movsx', 'Gv,Ew', H.H_MOVSX, 2);
TWO_BYTE[0xc0] = d('xadd', 'Eb,Gb', H.H_XADD, 0, SZ_B);
TWO_BYTE[0xc1] = d('xadd', 'Ev,Gv', H.H_XADD);
TWO_BYTE[0xc7] = group([
  null,
  d('cmpxchg8b', 'M', H.H_CMPXCHG8B, 0, SZ_V, { form: 'mem' }),
  null,
  null,
  null,
  null,
  null,
  // RDSEED is not advertised; F3 selects RDPID.
  d('(bad)', 'Ev', H.H_UD, 0, SZ_V, {
    f3: d('rdpid', 'Ev', H.H_RDPID, 0, SZ_F64, { form: 'reg' }),
  }),
]);
for (let r = 0; r < 8; r++) TWO_BYTE[0xc8 + r] = d('bswap', 'Zv', H.H_BSWAP);

// ---- system architecture (APM vol. 3, chapter 4; Appendix A group 6/7)
ONE_BYTE[0x8c] = d('mov', 'Ev,Sw', H.H_MOV_E_SREG);
ONE_BYTE[0x8e] = d('mov', 'Sw,Ew', H.H_MOV_SREG_E, 0, SZ_W);
ONE_BYTE[0x9a] = d('callf', 'Ap', H.H_CALL_FAR_PTR);
ONE_BYTE[0xea] = d('jmpf', 'Ap', H.H_JMP_FAR_PTR);
ONE_BYTE[0xca] = d('retf', 'Iw', H.H_RETF);
ONE_BYTE[0xcb] = d('retf', '', H.H_RETF);
ONE_BYTE[0xcd] = d('int', 'Ib', H.H_INT, 0, SZ_B);
ONE_BYTE[0xce] = d('into', '', H.H_INTO);
ONE_BYTE[0xcf] = d('iret', '', H.H_IRET);
ONE_BYTE[0xf1] = d('int1', '', H.H_INT1);
ONE_BYTE[0xfa] = d('cli', '', H.H_CLI);
ONE_BYTE[0xfb] = d('sti', '', H.H_STI);
TWO_BYTE[0x00] = group(
  [
    d('sldt', 'Ev', H.H_SLDT, 0),
    d('str', 'Ev', H.H_SLDT, 1),
    d('lldt', 'Ew', H.H_LLDT, 0, SZ_W),
    d('ltr', 'Ew', H.H_LTR, 0, SZ_W),
    d('verr', 'Ew', H.H_VERRW, 0, SZ_W),
    d('verw', 'Ew', H.H_VERRW, 1, SZ_W),
    null,
    null,
  ],
  'Ew',
);
TWO_BYTE[0x01] = group([
  d('sgdt', 'M', H.H_SDT, 0, SZ_V, { form: 'mem' }),
  d('sidt', 'M', H.H_SDT, 1, SZ_V, { form: 'mem' }),
  d('lgdt', 'M', H.H_LDT_TABLE, 0, SZ_V, { form: 'mem' }),
  d('lidt', 'M', H.H_LDT_TABLE, 1, SZ_V, { form: 'mem' }),
  d('smsw', 'Ev', H.H_SMSW),
  null,
  d('lmsw', 'Ew', H.H_LMSW, 0, SZ_W),
  d('invlpg', 'M', H.H_INVLPG, 0, SZ_B, { form: 'mem' }),
]);
TWO_BYTE[0x02] = d('lar', 'Gv,Ew', H.H_LARLSL, 0);
TWO_BYTE[0x03] = d('lsl', 'Gv,Ew', H.H_LARLSL, 1);
TWO_BYTE[0x05] = d('syscall', '', H.H_SYSCALL);
TWO_BYTE[0x06] = d('clts', '', H.H_CLTS);
TWO_BYTE[0x07] = d('sysret', '', H.H_SYSRET);
TWO_BYTE[0x20] = d('mov', 'Ev,Cd', H.H_MOV_R_CR, 0, SZ_F64, { form: 'modreg' });
TWO_BYTE[0x21] = d('mov', 'Ev,Dd', H.H_MOV_R_DR, 0, SZ_F64, { form: 'modreg' });
TWO_BYTE[0x22] = d('mov', 'Cd,Ev', H.H_MOV_CR_R, 0, SZ_F64, { form: 'modreg' });
TWO_BYTE[0x23] = d('mov', 'Dd,Ev', H.H_MOV_DR_R, 0, SZ_F64, { form: 'modreg' });
TWO_BYTE[0x30] = d('wrmsr', '', H.H_WRMSR);
TWO_BYTE[0x32] = d('rdmsr', '', H.H_RDMSR);
TWO_BYTE[0x34] = d('sysenter', '', H.H_SYSENTER);
TWO_BYTE[0x35] = d('sysexit', '', H.H_SYSEXIT);
TWO_BYTE[0xa0] = d('push', 'fs', H.H_PUSH_SREG, 4, SZ_D64);
TWO_BYTE[0xa1] = d('pop', 'fs', H.H_POP_SREG, 4, SZ_D64);
TWO_BYTE[0xa8] = d('push', 'gs', H.H_PUSH_SREG, 5, SZ_D64);
TWO_BYTE[0xa9] = d('pop', 'gs', H.H_POP_SREG, 5, SZ_D64);
TWO_BYTE[0xb2] = d('lss', 'Gv,M', H.H_LFP, 2, SZ_V, { form: 'mem' });
TWO_BYTE[0xb4] = d('lfs', 'Gv,M', H.H_LFP, 4, SZ_V, { form: 'mem' });
TWO_BYTE[0xb5] = d('lgs', 'Gv,M', H.H_LFP, 5, SZ_V, { form: 'mem' });

/**
 * One-byte rows that differ outside 64-bit mode: INC/DEC r (40-4F, REX in 64-bit mode), PUSH/POP
 * of ES/CS/SS/DS, LES/LDS (VEX in 64-bit mode); ARPL (63, MOVSXD in 64-bit mode) is not modelled.
 */
export const LEGACY_ONE_BYTE: ReadonlyMap<number, OpDef | null> = new Map<number, OpDef | null>([
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((r): [number, OpDef] => [
    0x40 + r,
    d('inc', 'Zv', H.H_INCDEC, 0),
  ]),
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((r): [number, OpDef] => [
    0x48 + r,
    d('dec', 'Zv', H.H_INCDEC, 1),
  ]),
  [0x06, d('push', 'es', H.H_PUSH_SREG, 0)],
  [0x07, d('pop', 'es', H.H_POP_SREG, 0)],
  [0x0e, d('push', 'cs', H.H_PUSH_SREG, 1)],
  [0x16, d('push', 'ss', H.H_PUSH_SREG, 2)],
  [0x17, d('pop', 'ss', H.H_POP_SREG, 2)],
  [0x1e, d('push', 'ds', H.H_PUSH_SREG, 3)],
  [0x1f, d('pop', 'ds', H.H_POP_SREG, 3)],
  [0x63, null],
  [0xc4, d('les', 'Gv,M', H.H_LFP, 0, SZ_V, { form: 'mem' })],
  [0xc5, d('lds', 'Gv,M', H.H_LFP, 3, SZ_V, { form: 'mem' })],
]);

/**
 * Group 7 encodings with ModRM.mod = 3 that are whole instructions, by ModRM byte (the /4 SMSW
 * and /6 LMSW register forms go through the group row instead).
 */
export const GROUP7_REG: ReadonlyMap<number, OpDef> = new Map([
  [0xca, d('clac', '', H.H_CLAC, 0)],
  [0xcb, d('stac', '', H.H_CLAC, 1)],
  [0xf8, d('swapgs', '', H.H_SWAPGS)],
  [0xf9, d('rdtscp', '', H.H_RDTSCP)],
  [0xc8, d('monitor', '', H.H_MONITOR)],
  [0xc9, d('mwait', '', H.H_MWAIT)],
  [0xd9, d('vmmcall', '', H.H_VMMCALL, 0, SZ_V, { f3: d('vmgexit', '', H.H_VMGEXIT) })],
  [0xfe, d('(bad)', '', H.H_UD, 0, SZ_V, { f3: d('rmpadjust', '', H.H_RMPADJUST) })],
  [0xff, d('(bad)', '', H.H_UD, 0, SZ_V, { f2: d('pvalidate', '', H.H_PVALIDATE) })],
]);

// ---- I/O (ports in imm8 or DX; the handlers mask an imm8 port to 8 bits)
ONE_BYTE[0x6c] = d('ins', 'Yb,DX', H.H_INS, 0, SZ_B);
ONE_BYTE[0x6d] = d('ins', 'Yz,DX', H.H_INS);
ONE_BYTE[0x6e] = d('outs', 'DX,Xb', H.H_OUTS, 0, SZ_B);
ONE_BYTE[0x6f] = d('outs', 'DX,Xz', H.H_OUTS);
ONE_BYTE[0xe4] = d('in', 'AL,Ib', H.H_IN, 0, SZ_B);
ONE_BYTE[0xe5] = d('in', 'eAX,Ib', H.H_IN);
ONE_BYTE[0xe6] = d('out', 'Ib,AL', H.H_OUT, 0, SZ_B);
ONE_BYTE[0xe7] = d('out', 'Ib,eAX', H.H_OUT);
ONE_BYTE[0xec] = d('in', 'AL,DX', H.H_IN, 1, SZ_B);
ONE_BYTE[0xed] = d('in', 'eAX,DX', H.H_IN, 1);
ONE_BYTE[0xee] = d('out', 'DX,AL', H.H_OUT, 1, SZ_B);
ONE_BYTE[0xef] = d('out', 'DX,eAX', H.H_OUT, 1);
TWO_BYTE[0x08] = d('invd', '', H.H_CACHE, 1);
TWO_BYTE[0x09] = d('wbinvd', '', H.H_CACHE, 0);

/** F3 0F AE /0../3 with mod = 3 (the decoder picks these before the 0F AE group). */
export const FSGSBASE: readonly OpDef[] = [
  d('rdfsbase', 'Ev', H.H_FSGSBASE, 0, SZ_V, { form: 'reg' }),
  d('rdgsbase', 'Ev', H.H_FSGSBASE, 1, SZ_V, { form: 'reg' }),
  d('wrfsbase', 'Ev', H.H_FSGSBASE, 2, SZ_V, { form: 'reg' }),
  d('wrgsbase', 'Ev', H.H_FSGSBASE, 3, SZ_V, { form: 'reg' }),
];

/** ENDBR64 (F3 0F 1E FA), named for the disassembler; it executes as the hint NOP it is. */
export const ENDBR64 = d('endbr64', '', H.H_NOP);

installSimd(ONE_BYTE, TWO_BYTE);

/** Whether a row's operands include a ModRM byte. */
export function hasModrm(def: OpDef): boolean {
  if (def.group !== undefined) return true;
  for (const o of def.ops) {
    const c = o.charCodeAt(0);
    // E, G, M, and the XMM/x87 shapes of sse-table.ts: V, W, U, F.
    if (
      c === 0x45 ||
      c === 0x47 ||
      c === 0x4d ||
      c === 0x56 ||
      c === 0x57 ||
      c === 0x55 ||
      c === 0x46
    )
      return true;
  }
  return false;
}
