// Handler numbers: what the interpreter does with a decoded instruction. The opcode table maps
// each encoding to one of these plus a sub-operation; the interpreter switches on them; a later
// JIT emits code per handler. Dense small integers, so the interpreter's switch is a jump table.

export const H_UD = 0;
/** E = E op G; sub = ALU op (0 add, 1 or, 2 adc, 3 sbb, 4 and, 5 sub, 6 xor, 7 cmp). */
export const H_ALU_EG = 1;
/** G = G op E. */
export const H_ALU_GE = 2;
/** E = E op imm. */
export const H_ALU_EI = 3;
export const H_TEST_EG = 4;
export const H_TEST_EI = 5;
export const H_MOV_EG = 6;
export const H_MOV_GE = 7;
export const H_MOV_EI = 8;
export const H_LEA = 9;
/** sub 0 INC, 1 DEC. */
export const H_INCDEC = 10;
/** sub 2 NOT, 3 NEG. */
export const H_NOTNEG = 11;
/** sub 4 MUL, 5 IMUL, 6 DIV, 7 IDIV (one-operand forms on rAX/rDX). */
export const H_MULDIV = 12;
export const H_IMUL_GE = 13;
export const H_IMUL_GEI = 14;
/** Shift/rotate by immediate (count in imm); sub 0 ROL 1 ROR 2 RCL 3 RCR 4 SHL 5 SHR 6 SAL 7 SAR. */
export const H_SHIFT_I = 15;
export const H_SHIFT_CL = 16;
/** sub 0 SHLD, 1 SHRD. */
export const H_SHXD_I = 17;
export const H_SHXD_CL = 18;
export const H_PUSH_R = 19;
export const H_POP_R = 20;
export const H_PUSH_I = 21;
export const H_PUSH_E = 22;
export const H_POP_E = 23;
export const H_PUSHF = 24;
export const H_POPF = 25;
export const H_CALL_J = 26;
export const H_CALL_E = 27;
/** imm = bytes to release after popping RIP. */
export const H_RET = 28;
export const H_JMP_J = 29;
export const H_JMP_E = 30;
/** sub = condition code. */
export const H_JCC = 31;
export const H_SETCC = 32;
export const H_CMOVCC = 33;
/** sub = source size in bytes. */
export const H_MOVZX = 34;
export const H_MOVSX = 35;
export const H_XCHG_EG = 36;
export const H_CMPXCHG = 37;
export const H_XADD = 38;
/** sub 0 BT, 1 BTS, 2 BTR, 3 BTC. */
export const H_BT_EG = 39;
export const H_BT_EI = 40;
export const H_BSF = 41;
export const H_BSR = 42;
export const H_TZCNT = 43;
export const H_LZCNT = 44;
export const H_POPCNT = 45;
export const H_MOVS = 46;
export const H_CMPS = 47;
export const H_STOS = 48;
export const H_LODS = 49;
export const H_SCAS = 50;
/** CBW/CWDE/CDQE. */
export const H_CBW = 51;
/** CWD/CDQ/CQO. */
export const H_CWD = 52;
/** sub 0 CLC, 1 STC, 2 CMC, 3 CLD, 4 STD. */
export const H_FLAGOP = 53;
export const H_SAHF = 54;
export const H_LAHF = 55;
export const H_NOP = 56;
export const H_CPUID = 57;
export const H_RDTSC = 58;
export const H_RDTSCP = 59;
export const H_HLT = 60;
export const H_INT3 = 61;
export const H_LEAVE = 62;
export const H_BSWAP = 63;
export const H_CMPXCHG8B = 64;
export const H_ENTER = 65;
export const H_XLAT = 66;
export const H_MOVBE_GE = 67;
export const H_MOVBE_EG = 68;
// System architecture (70-119; semantics in system.ts, far.ts).
/** MOV r64, CRn (reg = n). */
export const H_MOV_R_CR = 70;
export const H_MOV_CR_R = 71;
export const H_MOV_R_DR = 72;
export const H_MOV_DR_R = 73;
/** sub 0 SGDT, 1 SIDT. */
export const H_SDT = 74;
/** sub 0 LGDT, 1 LIDT. */
export const H_LDT_TABLE = 75;
export const H_SMSW = 76;
export const H_LMSW = 77;
export const H_INVLPG = 78;
export const H_CLTS = 79;
/** sub 0 SLDT, 1 STR. */
export const H_SLDT = 80;
export const H_LLDT = 81;
export const H_LTR = 82;
export const H_RDMSR = 83;
export const H_WRMSR = 84;
export const H_CLI = 85;
export const H_STI = 86;
/** sub 0 CLAC, 1 STAC. */
export const H_CLAC = 87;
/** MOV Sreg, Ew (8E). */
export const H_MOV_SREG_E = 88;
/** MOV Ev, Sreg (8C). */
export const H_MOV_E_SREG = 89;
/** sub = Sreg. */
export const H_PUSH_SREG = 90;
export const H_POP_SREG = 91;
/** LSS/LFS/LGS (and LDS/LES outside 64-bit mode): sub = Sreg. */
export const H_LFP = 92;
export const H_SWAPGS = 93;
export const H_SYSCALL = 94;
export const H_SYSRET = 95;
/** INT imm8. */
export const H_INT = 96;
export const H_INTO = 97;
export const H_INT1 = 98;
export const H_IRET = 99;
/** JMP FAR m16:16/32/64 (FF /5). */
export const H_JMP_FAR = 100;
export const H_CALL_FAR = 101;
/** RETF [imm16]. */
export const H_RETF = 102;
export const H_RDPID = 103;
/** JMP/CALL FAR ptr16:16/32 (EA, 9A; not in 64-bit mode): offset in imm, selector in imm2. */
export const H_JMP_FAR_PTR = 104;
export const H_CALL_FAR_PTR = 105;
/**
 * Outside 64-bit mode, the stack and near-branch handlers (PUSH/POP/CALL/RET/JMP/Jcc/LEAVE/...)
 * decode to this one: sub = (original handler << 4) | original sub.
 */
export const H_LEGACY_FLOW = 106;
/** sub 0 VERR, 1 VERW. */
export const H_VERRW = 107;
/** sub 0 LAR, 1 LSL. */
export const H_LARLSL = 108;
/** sub 0 RDFSBASE, 1 RDGSBASE, 2 WRFSBASE, 3 WRGSBASE. */
export const H_FSGSBASE = 109;
export const H_SYSENTER = 110;
export const H_SYSEXIT = 111;
// Engine, I/O and SNP instructions (range 170-189; io.ts, snp.ts).
/** IN: sub 0 port in imm8, 1 port in DX. */
export const H_IN = 170;
/** OUT: sub 0 port in imm8, 1 port in DX. */
export const H_OUT = 171;
export const H_INS = 172;
export const H_OUTS = 173;
export const H_VMMCALL = 174;
/** VMGEXIT (F3 0F 01 D9). */
export const H_VMGEXIT = 175;
/** PVALIDATE (F2 0F 01 FF). */
export const H_PVALIDATE = 176;
/** RMPADJUST (F3 0F 01 FE). */
export const H_RMPADJUST = 177;
/** Cache control: sub 0 WBINVD, 1 INVD. */
export const H_CACHE = 178;
export const H_MONITOR = 179;
export const H_MWAIT = 180;
// SIMD and x87 (range 120-169; semantics in sse*.ts and x87.ts, dispatched from execute's default).
/** SSE moves; sub = MOV_* kind in sse-table.ts, | MOV_ALIGNED when 16-byte alignment is required. */
export const H_SSE_MOV = 120;
/** Packed integer (and bitwise/unpack) Vx = Vx op Wx; sub = PINT_* in sse-table.ts. */
export const H_SSE_PINT = 121;
/** PSRL/PSRA/PSLL by immediate and PSRLDQ/PSLLDQ; sub = shift kind. */
export const H_SSE_PSHIFT_I = 122;
/** Float arithmetic; sub = FP_* op | type << 4 (0 ps, 1 pd, 2 ss, 3 sd). */
export const H_SSE_FP = 123;
/** CMPPS/PD/SS/SD; sub = type, predicate in imm. */
export const H_SSE_CMP = 124;
/** COMISS/SD (sub bit 1 = double), UCOMISS/SD (sub bit 0 = unordered-quiet). */
export const H_SSE_COMI = 125;
/** Conversions; sub = CVT_* kind. */
export const H_SSE_CVT = 126;
/** PSHUFD/PSHUFHW/PSHUFLW/SHUFPS/SHUFPD; sub = kind. */
export const H_SSE_SHUF = 127;
/** MOVMSKPS/MOVMSKPD/PMOVMSKB; sub = kind. */
export const H_SSE_MOVMSK = 128;
/** FXSAVE/FXRSTOR/LDMXCSR/STMXCSR; sub = 0..3. */
export const H_SSE_STATE = 129;
/** PINSRW (sub 0) / PEXTRW (sub 1). */
export const H_SSE_WORD = 130;
export const H_EMMS = 131;
/** x87 escape D8..DF; sub = (opcode - 0xD8) * 8 + ModRM.reg. */
export const H_X87 = 132;
export const H_FWAIT = 133;
/** CLFLUSH m8: no caches to flush, but the address must translate as for a byte read. */
export const H_CLFLUSH = 134;
export const H_SIMD_FIRST = 120;
export const H_SIMD_LAST = 169;
export const HANDLER_COUNT = 181;

/** ALU operation numbers (the reg field of group 1 and bits 5:3 of opcodes 00..3F). */
export const ALU_ADD = 0;
export const ALU_OR = 1;
export const ALU_ADC = 2;
export const ALU_SBB = 3;
export const ALU_AND = 4;
export const ALU_SUB = 5;
export const ALU_XOR = 6;
export const ALU_CMP = 7;
