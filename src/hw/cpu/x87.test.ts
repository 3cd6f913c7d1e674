import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Cpu } from './cpu.js';
import { Interpreter, STOP_EXCEPTION } from './interpreter.js';
import { FlatTranslator } from './translator.js';
import { DATA, type SimdMachine, simdMachine } from './simd.fixture.js';

/** The SIMD test machine with RAX pointing at its scratch data. */
function machine(): SimdMachine {
  const m = simdMachine();
  m.cpu.setReg64(0, BigInt(DATA));
  return m;
}

/** ST(i) as its 80 bits (sign-exponent << 64 | significand). */
function st(cpu: Cpu, i: number): bigint {
  return cpu.simd.getSt((cpu.simd.top + i) & 7);
}

const FSW_PE = 0x20;
const FSW_C1 = 0x200;

describe('x87 constants', () => {
  it('FLDPI, FLDL2E, FLDL2T, FLDLG2 and FLDLN2 load the 64-bit significand rounded by FCW.RC', () => {
    // [opcode, truncated value, rounds up to nearest]
    const table: [string, bigint, boolean][] = [
      ['d9e9', 0x4000_d49a_784b_cd1b_8afen, false],
      ['d9ea', 0x3fff_b8aa_3b29_5c17_f0bbn, true],
      ['d9eb', 0x4000_c90f_daa2_2168_c234n, true],
      ['d9ec', 0x3ffd_9a20_9a84_fbcf_f798n, true],
      ['d9ed', 0x3ffe_b172_17f7_d1cf_79abn, true],
    ];
    const { cpu, v, run } = machine();
    for (const [op, trunc, nearestUp] of table) {
      for (let rc = 0; rc < 4; rc++) {
        v.setUint16(DATA, 0x37f | (rc << 10), true);
        expect(run(`dbe3 d928 ${op}`)).toBe(-1); // fninit; fldcw [rax]; fldxx
        const up = rc === 2 || (rc === 0 && nearestUp);
        expect(st(cpu, 0)).toBe(trunc + (up ? 1n : 0n));
        expect(cpu.simd.fsw & (FSW_PE | FSW_C1)).toBe(0); // constants never raise PE
      }
    }
  });
});

describe('x87 integers', () => {
  it('FILD m64 and FISTP m64 are exact for integers near 2^63', () => {
    const { cpu, v, run } = machine();
    for (const x of [0x7fff_ffff_ffff_ffffn, -(1n << 63n), (1n << 62n) + 1n, -12345678901234567n]) {
      v.setBigInt64(DATA, x, true);
      expect(run('dbe3 df28 df7808')).toBe(-1); // fninit; fild m64 [rax]; fistp m64 [rax+8]
      expect(v.getBigInt64(DATA + 8, true)).toBe(x);
      expect(cpu.simd.fsw & 0x3f).toBe(0);
    }
    // 2^63 - 1: 63 one bits, exactly (float64 would round it to 2^63).
    v.setBigInt64(DATA, 0x7fff_ffff_ffff_ffffn, true);
    expect(run('dbe3 df28')).toBe(-1);
    expect(st(cpu, 0)).toBe(0x403d_ffff_ffff_ffff_fffen);
  });

  it('FISTP m64 of 2^63 stores the integer indefinite with IE; FISTTP truncates', () => {
    const { cpu, v, run } = machine();
    v.setBigUint64(DATA, 1n << 63n, true);
    v.setUint16(DATA + 8, 0x403e, true); // 2^63 as m80
    expect(run('dbe3 db28 df7810')).toBe(-1); // fninit; fld m80; fistp m64 [rax+16]
    expect(v.getBigUint64(DATA + 16, true)).toBe(1n << 63n);
    expect(cpu.simd.fsw & 1).toBe(1);
    v.setFloat64(DATA, -2.75, true);
    expect(run('dbe3 dd00 df4810')).toBe(-1); // fninit; fld m64; fisttp m16 [rax+16]
    expect(v.getInt16(DATA + 16, true)).toBe(-2);
    expect(cpu.simd.fsw & FSW_PE).toBe(FSW_PE);
  });
});

describe('x87 stores and state images', () => {
  const any80 = fc.tuple(
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.integer({ min: 0, max: 0xffff }),
  );

  it('FLD m80 then FSTP m80 give back any 10 bytes, NaN payloads and unsupported encodings included (property)', () => {
    const { cpu, v, run } = machine();
    fc.assert(
      fc.property(any80, ([sig, se]) => {
        v.setBigUint64(DATA, sig, true);
        v.setUint16(DATA + 8, se, true);
        expect(run('dbe3 db28 db7810')).toBe(-1); // fninit; fld m80; fstp m80 [rax+16]
        expect(v.getBigUint64(DATA + 16, true)).toBe(sig);
        expect(v.getUint16(DATA + 24, true)).toBe(se);
        expect(cpu.simd.fsw & 0x3f).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('FXSAVE/FXRSTOR and FNSAVE/FRSTOR copy the 80-bit registers bit for bit', () => {
    const { cpu, run } = machine();
    cpu.cr4 |= 0x200;
    const values = [
      0x7fff_8000_0000_0000_0005n, // SNaN with a payload
      0x4000_4000_0000_0000_0000n, // unnormal
      0x8000_8000_0000_0000_0001n, // negative pseudo-denormal
      0x3fff_ffff_ffff_ffff_ffffn, // 2 - 2^-63
    ];
    for (const [save, restore] of [
      ['480fae00', '480fae08'], // fxsave64 / fxrstor64 [rax]
      ['dd30', 'dd20'], // fnsave / frstor [rax]
    ]) {
      run('dbe3');
      const s = cpu.simd;
      for (const x of values) {
        s.top = (s.top - 1) & 7;
        s.setSt(s.top, x);
        s.empty[s.top] = 0;
      }
      expect(run(save!)).toBe(-1);
      run('dbe3');
      s.stSe.fill(0);
      s.stHi.fill(0);
      s.stLo.fill(0);
      expect(run(restore!)).toBe(-1);
      expect([3, 2, 1, 0].map((i) => st(cpu, i))).toEqual(values);
    }
  });

  it('FST m64 rounds by FCW.RC and reports PE and the round-up C1', () => {
    const { cpu, v, run } = machine();
    // 1 + 2^-63: rounds to 1 (nearest, down, zero) or 1 + 2^-52 (up), PE either way.
    v.setBigUint64(DATA, 0x8000_0000_0000_0001n, true);
    v.setUint16(DATA + 8, 0x3fff, true);
    for (let rc = 0; rc < 4; rc++) {
      v.setUint16(DATA + 16, 0x37f | (rc << 10), true);
      expect(run('dbe3 d96810 db28 dd5818')).toBe(-1); // fninit; fldcw; fld m80; fstp m64
      expect(v.getFloat64(DATA + 24, true)).toBe(rc === 2 ? 1 + 2 ** -52 : 1);
      expect(cpu.simd.fsw & (FSW_PE | FSW_C1)).toBe(rc === 2 ? FSW_PE | FSW_C1 : FSW_PE);
    }
  });

  it('FXAM tells unsupported encodings, denormals and pseudo-denormals apart', () => {
    const { cpu, run } = machine();
    const cases: [bigint, number][] = [
      [0x4000_4000_0000_0000_0000n, 0], // unnormal: unsupported
      [0x0000_0000_0000_0000_0001n, 0x4400], // denormal: C3 C2
      [0x8000_8000_0000_0000_0000n, 0x4600], // negative pseudo-denormal: C3 C2, C1 sign
      [0x7fff_c000_0000_0000_0000n, 0x0100], // QNaN: C0
    ];
    for (const [x, cc] of cases) {
      run('dbe3');
      const s = cpu.simd;
      s.top = 7;
      s.setSt(7, x);
      s.empty[7] = 0;
      expect(run('d9e5')).toBe(-1);
      expect(s.fsw & 0x4700).toBe(cc);
    }
  });
});

describe('x87 stores', () => {
  it('FSTP m80 that faults on either page writes no byte', () => {
    // Virtual 0x1000..0x3fff maps to physical 0..0x2fff; below and above is not present.
    for (const [at, watch, n] of [
      [0xffc, 0x0, 6], // first page absent, the last 6 bytes would land at physical 0
      [0x3ffc, 0x2ffc, 4], // last page absent, the first 4 bytes would land at physical 0x2ffc
    ] as const) {
      const mem = new Uint8Array(0x3000);
      const cpu = new Cpu(mem, new FlatTranslator(0x1000, 0x3000));
      mem.set(Buffer.from('d9e8db38f4', 'hex'), 0x1000); // fld1; fstp tbyte [rax]; hlt
      mem.fill(0xa5, watch, watch + n);
      cpu.rip = 0x2000n;
      cpu.setReg64(0, BigInt(at));
      expect(new Interpreter(cpu).run(10)).toBe(STOP_EXCEPTION);
      expect(cpu.exVector).toBe(14);
      expect([...mem.subarray(watch, watch + n)]).toEqual(Array<number>(n).fill(0xa5));
      expect(st(cpu, 0)).toBe(0x3fff_8000000000000000n); // not popped
    }
  });
});
