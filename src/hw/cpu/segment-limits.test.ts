// Segment limit checks outside 64-bit mode (APM vol. 2, 4.8.1 "Data-Segment Limit Checks" and
// 4.8.2; Intel SDM vol. 3A, 5.3 "Limit Checking"): each test runs one access at the last offset
// the limit allows and one a byte further.

import { describe, expect, it } from 'vitest';
import {
  type Cpu,
  MODE_64,
  MODE_PROT16,
  MODE_PROT32,
  MODE_REAL,
  RAX,
  RBP,
  RCX,
  RDI,
  RSI,
  RSP,
  SEG_CS,
  SEG_DS,
  SEG_ES,
  SEG_FS,
  SEG_GS,
  SEG_SS,
  VEC_GP,
  VEC_SS,
} from './cpu.js';
import { STOP_EXCEPTION, STOP_HLT } from './interpreter.js';
import { CODE, hex, machine, SEL_CODE32_0, SEL_DATA0 } from './system.fixture.js';

const DATA = 0x20000;
/** Writable data, accessed, present; D/B (0x400) and G (0x800) added per test. */
const DATA_ATTR = 0x93;
/** The same, expand-down (type bit E). */
const DATA_DOWN_ATTR = 0x97;

/**
 * Puts the fixture's machine into legacy protected mode (no long mode) at `bits` with flat
 * 4 GiB code, data and stack, running `code` at CODE.
 */
function protMode(code: string, bits: 16 | 32): { c: Cpu; run: () => number; mem: Uint8Array } {
  const m = machine('');
  m.mem.set(hex(code), CODE);
  const c = m.cpu;
  c.cr0 = 0x11;
  c.cr4 = 0;
  c.efer = 0;
  const big = bits === 32 ? 0xc00 : 0;
  // 16-bit IP cannot reach CODE: the code segment starts there instead.
  const csBase = bits === 32 ? 0 : CODE;
  c.setSegment(SEG_CS, SEL_CODE32_0, BigInt(csBase), 0xffffffff, 0x9b | big);
  for (const s of [SEG_DS, SEG_ES, SEG_FS, SEG_GS, SEG_SS]) {
    c.setSegment(s, SEL_DATA0, 0n, 0xffffffff, DATA_ATTR | big);
  }
  c.controlChanged();
  expect(c.mode).toBe(bits === 32 ? MODE_PROT32 : MODE_PROT16);
  c.rip = BigInt(CODE - csBase);
  c.setReg64(RSP, bits === 32 ? 0x70000n : 0xfff0n);
  return { c, run: () => m.interp.run(20), mem: m.mem };
}

/** A 32-bit little-endian immediate or displacement as hex. */
function le32(v: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b.toString('hex');
}

function le16(v: number): string {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return b.toString('hex');
}

/** Runs `code` with DS = base DATA, `limit`, `attr`; returns the stop and the vector. */
function withDs(code: string, bits: 16 | 32, limit: number, attr: number): [number, number] {
  const { c, run } = protMode(code, bits);
  c.setSegment(SEG_DS, SEL_DATA0, BigInt(DATA), limit, attr);
  const stop = run();
  return [stop, stop === STOP_EXCEPTION ? c.exVector : -1];
}

const GP: [number, number] = [STOP_EXCEPTION, VEC_GP];
const OK: [number, number] = [STOP_HLT, -1];

describe('SSE and x87 memory operands in 32-bit protected mode', () => {
  /** Like withDs, with SSE enabled (CR4.OSFXSR). */
  function simd(code: string, limit: number): [number, number] {
    const { c, run } = protMode(`${code} f4`, 32);
    c.cr4 |= 0x200;
    c.setSegment(SEG_DS, SEL_DATA0, BigInt(DATA), limit, DATA_ATTR | 0x400);
    const stop = run();
    return [stop, stop === STOP_EXCEPTION ? c.exVector : -1];
  }

  it('are checked at their whole size: 16-byte MOVDQU, 8-byte FLD, 512-byte FXSAVE', () => {
    expect(simd(`f30f6f05${le32(0xff0)}`, 0xfff)).toEqual(OK); // movdqu xmm0, [0xff0]
    expect(simd(`f30f6f05${le32(0xff1)}`, 0xfff)).toEqual(GP);
    expect(simd(`dd05${le32(0xff8)}`, 0xfff)).toEqual(OK); // fld qword [0xff8]
    expect(simd(`dd05${le32(0xff9)}`, 0xfff)).toEqual(GP);
    expect(simd(`0fae05${le32(0xe00)}`, 0xfff)).toEqual(OK); // fxsave [0xe00]
    expect(simd(`0fae05${le32(0xe10)}`, 0xfff)).toEqual(GP);
  });
});

describe('data segment limits in 32-bit protected mode', () => {
  const movEax = (off: number): string => `8b05${le32(off)} f4`; // mov eax, [off]; hlt
  const movAl = (off: number): string => `8a05${le32(off)} f4`; // mov al, [off]; hlt
  const storeEax = (off: number): string => `8905${le32(off)} f4`; // mov [off], eax; hlt

  it('a dword read ending on the limit passes; one ending a byte beyond it is #GP(0)', () => {
    expect(withDs(movEax(0xffc), 32, 0xfff, DATA_ATTR | 0x400)).toEqual(OK);
    expect(withDs(movEax(0xffd), 32, 0xfff, DATA_ATTR | 0x400)).toEqual(GP);
  });

  it('byte reads and dword writes obey the limit at their own size', () => {
    expect(withDs(movAl(0xfff), 32, 0xfff, DATA_ATTR | 0x400)).toEqual(OK);
    expect(withDs(movAl(0x1000), 32, 0xfff, DATA_ATTR | 0x400)).toEqual(GP);
    expect(withDs(storeEax(0xffc), 32, 0xfff, DATA_ATTR | 0x400)).toEqual(OK);
    expect(withDs(storeEax(0xffd), 32, 0xfff, DATA_ATTR | 0x400)).toEqual(GP);
  });

  it('the faulting store leaves memory unchanged and RIP at the instruction, error code 0', () => {
    const { c, run, mem } = protMode(storeEax(0xffd), 32);
    c.setSegment(SEG_DS, SEL_DATA0, BigInt(DATA), 0xfff, DATA_ATTR | 0x400);
    c.setReg64(RAX, 0x11223344n);
    expect(run()).toBe(STOP_EXCEPTION);
    expect([c.exVector, c.exErrorCode, c.rip]).toEqual([VEC_GP, 0, BigInt(CODE)]);
    expect([...mem.subarray(DATA + 0xffd, DATA + 0x1001)]).toEqual([0, 0, 0, 0]);
  });

  it('MOV moffs and MOVZX from a byte are checked at their access size', () => {
    // mov eax, [moffs32]
    expect(withDs(`a1${le32(0xffc)} f4`, 32, 0xfff, DATA_ATTR | 0x400)).toEqual(OK);
    expect(withDs(`a1${le32(0xffd)} f4`, 32, 0xfff, DATA_ATTR | 0x400)).toEqual(GP);
    // movzx eax, byte [0xfff]: a one-byte access at the limit
    expect(withDs(`0fb605${le32(0xfff)} f4`, 32, 0xfff, DATA_ATTR | 0x400)).toEqual(OK);
  });

  it('expand-down: offsets above the limit up to 0xFFFFFFFF (D/B set) are valid', () => {
    const attr = DATA_DOWN_ATTR | 0x400;
    expect(withDs(movAl(0xfff), 32, 0xfff, attr)).toEqual(GP);
    expect(withDs(movEax(0xffe), 32, 0xfff, attr)).toEqual(GP); // starts below, ends above
    expect(withDs(movAl(0x1000), 32, 0xfff, attr)).toEqual(OK);
    // The top dword of the 4 GiB range, linear DATA - 4 after the wrap.
    expect(withDs(movEax(0xfffffffc), 32, 0xfff, attr)).toEqual(OK);
  });

  it('expand-down with D/B clear: the upper bound is 0xFFFF', () => {
    expect(withDs(movAl(0xffff), 32, 0xfff, DATA_DOWN_ATTR)).toEqual(OK);
    expect(withDs(movEax(0xfffc), 32, 0xfff, DATA_DOWN_ATTR)).toEqual(OK);
    expect(withDs(movEax(0xfffd), 32, 0xfff, DATA_DOWN_ATTR)).toEqual(GP);
    expect(withDs(movAl(0x10000), 32, 0xfff, DATA_DOWN_ATTR)).toEqual(GP);
  });

  it('a null selector loaded in protected mode makes every access through it #GP(0)', () => {
    // mov ax, 0; mov es, ax; mov al, es:[0]; hlt (offset 0 is within the null limit of 0)
    const { c, run } = protMode(`66b80000 8ec0 268a05${le32(0)} f4`, 32);
    expect(run()).toBe(STOP_EXCEPTION);
    expect([c.exVector, c.exErrorCode, c.rip]).toEqual([VEC_GP, 0, BigInt(CODE + 6)]);
  });

  it('REP MOVSB stops with #GP(0) at the first byte beyond ES, the earlier ones copied', () => {
    // rep movsb; hlt
    const { c, run, mem } = protMode('f3a4 f4', 32);
    c.setSegment(SEG_ES, SEL_DATA0, BigInt(DATA), 0xfff, DATA_ATTR | 0x400);
    mem.set([1, 2, 3, 4], 0x5000);
    c.setReg64(RSI, 0x5000n);
    c.setReg64(RDI, 0xffen);
    c.setReg64(RCX, 4n);
    expect(run()).toBe(STOP_EXCEPTION);
    expect(c.exVector).toBe(VEC_GP);
    expect([...mem.subarray(DATA + 0xffe, DATA + 0x1001)]).toEqual([1, 2, 0]);
    expect([c.getReg64(RCX), c.getReg64(RDI)]).toEqual([2n, 0x1000n]);
  });
});

describe('data segment limits in 16-bit protected mode', () => {
  it('a word read at limit - 1 passes, at the limit it is #GP(0)', () => {
    // mov ax, [disp16]; hlt
    expect(withDs(`8b06${le16(0x1fe)} f4`, 16, 0x1ff, DATA_ATTR)).toEqual(OK);
    expect(withDs(`8b06${le16(0x1ff)} f4`, 16, 0x1ff, DATA_ATTR)).toEqual(GP);
  });

  it('LGDT reads six bytes: all must be within the limit', () => {
    // lgdt [disp16]; hlt
    expect(withDs(`0f0116${le16(0x1fa)} f4`, 16, 0x1ff, DATA_ATTR)).toEqual(OK);
    expect(withDs(`0f0116${le16(0x1fb)} f4`, 16, 0x1ff, DATA_ATTR)).toEqual(GP);
  });
});

describe('stack segment limits', () => {
  function withSs(code: string, esp: number, limit: number, attr: number): [number, number] {
    const { c, run } = protMode(code, 32);
    c.setSegment(SEG_SS, SEL_DATA0, BigInt(DATA), limit, attr);
    c.setReg64(RSP, BigInt(esp));
    c.setReg64(RBP, BigInt(esp));
    const stop = run();
    return [stop, stop === STOP_EXCEPTION ? c.exVector : -1];
  }
  const SS: [number, number] = [STOP_EXCEPTION, VEC_SS];

  it('PUSH writing the last dword below the limit passes; a byte beyond is #SS(0)', () => {
    expect(withSs('50 f4', 0x1000, 0xfff, DATA_ATTR | 0x400)).toEqual(OK);
    expect(withSs('50 f4', 0x1001, 0xfff, DATA_ATTR | 0x400)).toEqual(SS);
  });

  it('POP and [EBP] operands (SS by default) are checked against SS', () => {
    expect(withSs('58 f4', 0xffc, 0xfff, DATA_ATTR | 0x400)).toEqual(OK);
    expect(withSs('58 f4', 0xffd, 0xfff, DATA_ATTR | 0x400)).toEqual(SS);
    expect(withSs('8b4500 f4', 0xffd, 0xfff, DATA_ATTR | 0x400)).toEqual(SS); // mov eax, [ebp]
  });

  it('an expand-down stack: PUSH down to limit + 1 passes, one byte lower is #SS(0)', () => {
    expect(withSs('50 f4', 0x1004, 0xfff, DATA_DOWN_ATTR | 0x400)).toEqual(OK);
    expect(withSs('50 f4', 0x1003, 0xfff, DATA_DOWN_ATTR | 0x400)).toEqual(SS);
  });

  it('#SS(0) leaves ESP unchanged', () => {
    const { c, run } = protMode('50 f4', 32);
    c.setSegment(SEG_SS, SEL_DATA0, BigInt(DATA), 0xfff, DATA_ATTR | 0x400);
    c.setReg64(RSP, 0x1001n);
    expect(run()).toBe(STOP_EXCEPTION);
    expect([c.exVector, c.exErrorCode, c.getReg64(RSP)]).toEqual([VEC_SS, 0, 0x1001n]);
  });
});

describe('code segment limit', () => {
  it('an instruction ending on the limit runs; the next fetch beyond it is #GP(0)', () => {
    // At CS offset 0xfb: mov eax, imm32 (5 bytes, ends at 0xff); then nothing within the limit.
    const { c, run, mem } = protMode('', 32);
    c.setSegment(SEG_CS, SEL_CODE32_0, BigInt(CODE), 0xff, 0xc9b);
    mem.set(hex('b82a000000 f4'), CODE + 0xfb);
    c.rip = 0xfbn;
    expect(run()).toBe(STOP_EXCEPTION);
    expect([c.exVector, c.exErrorCode, c.rip, c.getReg64(RAX)]).toEqual([VEC_GP, 0, 0x100n, 42n]);
  });

  it('an instruction that starts within the limit and ends beyond it is #GP(0)', () => {
    const { c, run, mem } = protMode('', 32);
    c.setSegment(SEG_CS, SEL_CODE32_0, BigInt(CODE), 0xff, 0xc9b);
    mem.set(hex('b82a000000 f4'), CODE + 0xfc);
    c.rip = 0xfcn;
    expect(run()).toBe(STOP_EXCEPTION);
    expect([c.exVector, c.rip, c.getReg64(RAX)]).toEqual([VEC_GP, 0xfcn, 0n]);
  });
});

describe('real mode and 64-bit mode', () => {
  function realMode(code: string): { c: Cpu; run: () => number } {
    const m = machine('');
    m.mem.set(hex(code), 0x9000);
    const c = m.cpu;
    c.cr0 = 0x60000010;
    c.cr4 = 0;
    c.efer = 0;
    c.setSegment(SEG_CS, 0x900, 0x9000n, 0xffff, 0x9b);
    for (const s of [SEG_DS, SEG_ES, SEG_FS, SEG_GS, SEG_SS]) {
      c.setSegment(s, 0x2000, 0x20000n, 0xffff, DATA_ATTR);
    }
    c.controlChanged();
    expect(c.mode).toBe(MODE_REAL);
    c.rip = 0n;
    c.setReg64(RSP, 0x8000n);
    return { c, run: () => m.interp.run(20) };
  }

  it('real mode: a word at offset 0xFFFF crosses the 64 KiB limit, #GP(0)', () => {
    const ok = realMode(`8b06${le16(0xfffe)} f4`);
    expect(ok.run()).toBe(STOP_HLT);
    const bad = realMode(`8b06${le16(0xffff)} f4`);
    expect(bad.run()).toBe(STOP_EXCEPTION);
    expect(bad.c.exVector).toBe(VEC_GP);
  });

  it('"unreal mode": a 4 GiB limit cached from protected mode stays in effect', () => {
    // mov eax, [esi] with a 32-bit offset beyond 64 KiB; hlt
    const { c, run } = realMode('67668b06 f4');
    c.setSegment(SEG_DS, 0x2000, 0x20000n, 0xffffffff, DATA_ATTR | 0x800);
    c.setReg64(RSI, 0x10000n);
    expect(run()).toBe(STOP_HLT);
    c.setSegment(SEG_DS, 0x2000, 0x20000n, 0xffff, DATA_ATTR);
    c.rip = 0n;
    expect(run()).toBe(STOP_EXCEPTION);
  });

  it('64-bit mode checks no limits, not even of FS and GS', () => {
    // mov eax, [rsi]; mov eax, fs:[rsi]; hlt
    const m = machine('8b06 648b06 f4');
    const c = m.cpu;
    expect(c.mode).toBe(MODE_64);
    c.setSegment(SEG_DS, SEL_DATA0, 0n, 0, DATA_ATTR);
    c.setSegment(SEG_FS, SEL_DATA0, 0x100n, 0, DATA_ATTR);
    c.setReg64(RSI, 0x5000n);
    expect(m.interp.run(20)).toBe(STOP_HLT);
  });
});
