// Intel-syntax text of the x87 escapes D8..DF (as `objdump -M intel` prints them), for disasm.ts.
// The table row only says "x87" with sub = (opcode - 0xD8) * 8 + ModRM.reg; the rest comes from
// the ModRM fields here.

const ARITH = ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'];
/** Memory forms: mnemonic and operand size (0 = no size shown) per escape and reg. */
const MEM: [string, number][][] = [
  ARITH.map((m) => [m, 4]),
  [
    ['fld', 4],
    ['(bad)', 0],
    ['fst', 4],
    ['fstp', 4],
    ['fldenv', 0],
    ['fldcw', 2],
    ['fnstenv', 0],
    ['fnstcw', 2],
  ],
  ARITH.map((m) => ['fi' + m.slice(1), 4]),
  [
    ['fild', 4],
    ['fisttp', 4],
    ['fist', 4],
    ['fistp', 4],
    ['(bad)', 0],
    ['fld', 10],
    ['(bad)', 0],
    ['fstp', 10],
  ],
  ARITH.map((m) => [m, 8]),
  [
    ['fld', 8],
    ['fisttp', 8],
    ['fst', 8],
    ['fstp', 8],
    ['frstor', 0],
    ['(bad)', 0],
    ['fnsave', 0],
    ['fnstsw', 2],
  ],
  ARITH.map((m) => ['fi' + m.slice(1), 2]),
  [
    ['fild', 2],
    ['fisttp', 2],
    ['fist', 2],
    ['fistp', 2],
    ['fbld', 10],
    ['fild', 8],
    ['fbstp', 10],
    ['fistp', 8],
  ],
];

const PTR: Record<number, string> = { 2: 'word', 4: 'dword', 8: 'qword', 10: 'tbyte' };

const D9_E0 = ['fchs', 'fabs', '', '', 'ftst', 'fxam', '', ''];
const D9_E8 = ['fld1', 'fldl2t', 'fldl2e', 'fldpi', 'fldlg2', 'fldln2', 'fldz', ''];
const D9_F0 = ['f2xm1', 'fyl2x', 'fptan', 'fpatan', 'fxtract', 'fprem1', 'fdecstp', 'fincstp'];
const D9_F8 = ['fprem', 'fyl2xp1', 'fsqrt', 'fsincos', 'frndint', 'fscale', 'fsin', 'fcos'];

/**
 * The text of an x87 instruction: `sub` from its row, `rm` the ModRM.rm register (mod = 3) or
 * -1 for memory, whose operand text (without size) `mem` gives.
 */
export function x87Text(sub: number, rm: number, mem: (size: number) => string): string {
  const esc = sub >> 3;
  const reg = sub & 7;
  if (rm < 0) {
    const [mn, size] = MEM[esc]![reg]!;
    const sized = size > 0 ? `${PTR[size]} ptr ` : '';
    return `${mn} ${sized}${mem(0)}`;
  }
  const i = rm & 7;
  const st = `st(${i})`;
  switch (esc) {
    case 0:
      return reg === 2 || reg === 3 ? `${ARITH[reg]} ${st}` : `${ARITH[reg]} st, ${st}`;
    case 1:
      if (reg === 0) return `fld ${st}`;
      if (reg === 1) return `fxch ${st}`;
      if (reg === 2 && i === 0) return 'fnop';
      if (reg === 4) return D9_E0[i] || '(bad)';
      if (reg === 5) return D9_E8[i] || '(bad)';
      if (reg === 6) return D9_F0[i]!;
      if (reg === 7) return D9_F8[i]!;
      return '(bad)';
    case 2:
      if (reg === 5 && i === 1) return 'fucompp';
      return `${['fcmovb', 'fcmove', 'fcmovbe', 'fcmovu'][reg] ?? '(bad)'} st, ${st}`;
    case 3:
      if (reg === 4) return ['(bad)', '(bad)', 'fnclex', 'fninit'][i] ?? '(bad)';
      if (reg === 5) return `fucomi st, ${st}`;
      if (reg === 6) return `fcomi st, ${st}`;
      return `${['fcmovnb', 'fcmovne', 'fcmovnbe', 'fcmovnu'][reg] ?? '(bad)'} st, ${st}`;
    case 4:
      // ST(i) = ST(i) op ST(0): E0+i is FSUBR, E8+i FSUB (the reverse of D8's numbering).
      if (reg === 2 || reg === 3) return '(bad)';
      return `${ARITH[reg >= 4 ? reg ^ 1 : reg]} ${st}, st`;
    case 5:
      return (
        [`ffree ${st}`, '(bad)', `fst ${st}`, `fstp ${st}`, `fucom ${st}`, `fucomp ${st}`][reg] ??
        '(bad)'
      );
    case 6:
      if (reg === 3) return i === 1 ? 'fcompp' : '(bad)';
      if (reg === 2) return '(bad)';
      return `${ARITH[reg >= 4 ? reg ^ 1 : reg]}p ${st}, st`;
    default:
      if (reg === 4) return i === 0 ? 'fnstsw ax' : '(bad)';
      if (reg === 5) return `fucomip st, ${st}`;
      if (reg === 6) return `fcomip st, ${st}`;
      return '(bad)';
  }
}
