import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DATA, simdMachine } from './simd.fixture.js';
import { F80, fromNumber, toNumber } from './f80.js';

const machine = simdMachine;

const view = (mem: Uint8Array) => new DataView(mem.buffer);

describe('SSE availability and faults', () => {
  it('raises #UD with CR0.EM or without CR4.OSFXSR, #NM with CR0.TS (ADDPS xmm0, xmm1)', () => {
    const { cpu, run } = machine();
    expect(run('0f58c1')).toBe(-1);
    cpu.cr0 |= 4;
    expect(run('0f58c1')).toBe(6);
    cpu.cr0 &= ~4;
    cpu.cr4 &= ~0x200;
    expect(run('0f58c1')).toBe(6);
    cpu.cr4 |= 0x200;
    cpu.cr0 |= 8;
    expect(run('0f58c1')).toBe(7);
    expect(run('d9e8')).toBe(7); // x87 FLD1 with TS
    expect(run('9b')).toBe(7); // FWAIT with MP and TS
    cpu.cr0 &= ~2;
    expect(run('9b')).toBe(-1); // FWAIT with TS only
    cpu.cr0 &= ~8;
    cpu.cr0 |= 4;
    expect(run('d9e8')).toBe(7); // x87 with EM: #NM
  });

  it('raises #GP(0) for a misaligned MOVAPS/MOVDQA/ADDPS memory operand but not MOVUPS/ADDSS', () => {
    const { cpu, run } = machine();
    cpu.setReg64(0, BigInt(DATA + 8));
    expect(run('0f2800')).toBe(13); // movaps xmm0, [rax]
    expect(run('660f6f00')).toBe(13); // movdqa
    expect(run('0f5800')).toBe(13); // addps
    expect(run('0f1000')).toBe(-1); // movups
    expect(run('f30f5800')).toBe(-1); // addss
    cpu.setReg64(0, BigInt(DATA));
    expect(run('0f2800')).toBe(-1);
  });

  it('leaves memory untouched when a 16-byte store crosses into an unmapped page', () => {
    const { cpu, mem, run } = machine();
    cpu.simd.setXmm(1, (1n << 128n) - 1n);
    cpu.setReg64(0, 0x4000n - 8n);
    expect(run('0f1108')).toBe(14); // movups [rax], xmm1
    expect(mem.subarray(0x3ff8, 0x4000).every((b) => b === 0)).toBe(true);
  });

  it('CLFLUSH faults like a byte read on an unmapped address and is otherwise a no-op', () => {
    const { cpu, run } = machine();
    cpu.setReg64(0, BigInt(DATA));
    expect(run('0fae38')).toBe(-1);
    cpu.setReg64(0, 0x5000n);
    expect(run('0fae38')).toBe(14);
    cpu.cr0 |= 0xc; // CLFLUSH does not depend on the FPU controls
    cpu.setReg64(0, BigInt(DATA));
    expect(run('0fae38')).toBe(-1);
  });

  it('LDMXCSR rejects reserved bits with #GP(0); STMXCSR stores MXCSR', () => {
    const { cpu, mem, run } = machine();
    cpu.setReg64(0, BigInt(DATA));
    view(mem).setUint32(DATA, 0x7fc0, true);
    expect(run('0fae10')).toBe(-1);
    expect(cpu.simd.mxcsr).toBe(0x7fc0);
    view(mem).setUint32(DATA, 0x11f80, true);
    expect(run('0fae10')).toBe(13);
    expect(cpu.simd.mxcsr).toBe(0x7fc0);
    expect(run('0fae5804')).toBe(-1); // stmxcsr [rax+4]
    expect(view(mem).getUint32(DATA + 4, true)).toBe(0x7fc0);
  });
});

describe('FXSAVE/FXRSTOR', () => {
  it('saves the 512-byte layout and restores it exactly', () => {
    const { cpu, mem, run } = machine();
    const v = view(mem);
    cpu.setReg64(0, BigInt(DATA));
    for (let k = 0; k < 16; k++) cpu.simd.setXmm(k, (BigInt(k + 1) << 100n) | BigInt(k * 77));
    cpu.simd.mxcsr = 0x9fc0;
    expect(run('d9e8 d9ee')).toBe(-1); // fld1, fldz: ST0 = 0, ST1 = 1
    expect(run('480fae00')).toBe(-1); // fxsave64 [rax]
    expect(v.getUint16(DATA + 0, true)).toBe(0x37f); // FCW
    expect((v.getUint16(DATA + 2, true) >> 11) & 7).toBe(6); // FSW.TOP
    expect(v.getUint8(DATA + 4)).toBe(0xc0); // abridged FTW: physical 6 and 7 valid
    expect(v.getUint32(DATA + 24, true)).toBe(0x9fc0);
    expect(v.getUint32(DATA + 28, true)).toBe(0xffff); // MXCSR_MASK
    expect(v.getBigUint64(DATA + 32, true)).toBe(0n); // ST0 = +0
    expect(v.getBigUint64(DATA + 48, true)).toBe(0x8000000000000000n); // ST1 = 1.0
    expect(v.getUint16(DATA + 56, true)).toBe(0x3fff);
    for (let k = 0; k < 16; k++) {
      expect(v.getBigUint64(DATA + 160 + 16 * k, true)).toBe(BigInt(k * 77));
      expect(v.getBigUint64(DATA + 168 + 16 * k, true)).toBe(BigInt(k + 1) << 36n);
    }
    const image = mem.slice(DATA, DATA + 512);
    // Clobber, restore, save again elsewhere: the same bytes.
    cpu.simd.reset();
    expect(run('0fae08')).toBe(-1); // fxrstor [rax]
    expect(cpu.simd.mxcsr).toBe(0x9fc0);
    expect(cpu.simd.getXmm(15)).toBe((16n << 100n) | BigInt(15 * 77));
    cpu.setReg64(0, BigInt(DATA + 0x400));
    expect(run('480fae00')).toBe(-1);
    expect(mem.slice(DATA + 0x400, DATA + 0x600)).toEqual(image);
  });

  it('raises #GP(0) for a misaligned area or reserved MXCSR bits in the image', () => {
    const { cpu, mem, run } = machine();
    cpu.setReg64(0, BigInt(DATA + 8));
    expect(run('0fae00')).toBe(13);
    expect(run('0fae08')).toBe(13);
    cpu.setReg64(0, BigInt(DATA));
    view(mem).setUint32(DATA + 24, 0x40000, true);
    cpu.simd.mxcsr = 0x1f80;
    expect(run('0fae08')).toBe(13);
    expect(cpu.simd.mxcsr).toBe(0x1f80);
  });
});

describe('x87', () => {
  it('loads, adds and stores doubles; FNSTSW reports the compare; FCOMI sets ZF/PF/CF', () => {
    const { cpu, mem, run } = machine();
    const v = view(mem);
    cpu.setReg64(0, BigInt(DATA));
    v.setFloat64(DATA, 1.5, true);
    v.setFloat64(DATA + 8, 2.25, true);
    expect(run('dd00 dc4008 dd5810')).toBe(-1); // fld [rax]; fadd [rax+8]; fstp [rax+16]
    expect(v.getFloat64(DATA + 16, true)).toBe(3.75);
    expect(cpu.simd.top).toBe(0);
    // fld [rax+8]; fld [rax] -> ST0 = 1.5, ST1 = 2.25; fcom st(1); fnstsw ax
    expect(run('dd4008 dd00 d8d1 dfe0')).toBe(-1);
    expect(Number(cpu.getReg64(0)) & 0x4500).toBe(0x100); // C0: ST0 < ST1
    expect(run('dbf1')).toBe(-1); // fcomi st, st(1)
    expect(cpu.rflags & 0x45).toBe(1); // CF
    expect(run('def9')).toBe(-1); // fdivp st(1), st: ST1 = 2.25 / 1.5, pop
    expect(cpu.simd.stNumber(cpu.simd.top)).toBe(1.5);
  });

  it('FISTP rounds by FCW.RC and stores the integer indefinite on overflow', () => {
    const { cpu, mem, run } = machine();
    const v = view(mem);
    cpu.setReg64(0, BigInt(DATA));
    const cases: [number, number, number][] = [
      [2.5, 0, 2],
      [3.5, 0, 4],
      [-2.5, 1, -3],
      [2.1, 2, 3],
      [-2.9, 3, -2],
      [3e9, 0, -2147483648],
    ];
    for (const [x, rc, want] of cases) {
      v.setFloat64(DATA, x, true);
      v.setUint16(DATA + 8, 0x37f | (rc << 10), true);
      expect(run('d96808 dd00 db5810')).toBe(-1); // fldcw [rax+8]; fld [rax]; fistp [rax+16]
      expect(v.getInt32(DATA + 16, true)).toBe(want);
    }
  });

  it('FNSAVE then FRSTOR restores the stack; FNINIT empties it', () => {
    const { cpu, run } = machine();
    cpu.setReg64(0, BigInt(DATA));
    expect(run('d9eb d9e8')).toBe(-1); // fldpi; fld1
    expect(run('dd30')).toBe(-1); // fnsave [rax]
    expect(cpu.simd.empty.every((e) => e === 1)).toBe(true);
    expect(run('dd20')).toBe(-1); // frstor [rax]
    expect(cpu.simd.getSt(cpu.simd.top)).toBe(0x3fff_8000_0000_0000_0000n);
    // FLDPI's 64-bit significand (rounded to nearest), not the float64 pi.
    expect(cpu.simd.getSt((cpu.simd.top + 1) & 7)).toBe(0x4000_c90f_daa2_2168_c235n);
    expect(run('dbe3')).toBe(-1);
    expect(cpu.simd.fswFull).toBe(0);
    expect(cpu.simd.fcw).toBe(0x37f);
  });

  it('converts float64 to 80-bit and back exactly (property)', () => {
    const x80 = new F80();
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (x) => {
        fromNumber(x, x80);
        expect(Object.is(toNumber(x80), x)).toBe(true);
      }),
      { numRuns: 2000 },
    );
    fromNumber(1, x80);
    expect([x80.se, x80.hi, x80.lo]).toEqual([0x3fff, 0x80000000, 0]);
    fromNumber(-Infinity, x80);
    expect([x80.se, x80.hi, x80.lo]).toEqual([0xffff, 0x80000000, 0]);
  });

  it('rounds an 80-bit significand once to nearest-even when read as a number', () => {
    // 1 + 2^-53 (a tie) rounds to 1; 1 + 2^-53 + 2^-63 rounds up.
    const x80 = new F80();
    x80.se = 0x3fff;
    x80.hi = 0x80000000;
    x80.lo = 0x400;
    expect(toNumber(x80)).toBe(1);
    x80.lo = 0x401;
    expect(toNumber(x80)).toBe(1 + 2 ** -52);
  });
});
