import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { w } from '../arith.js';
import { Cpu, RAX, RBX, RCX, RSP, VEC_PF } from '../cpu.js';
import { Interpreter, STOP_BUDGET, STOP_EXCEPTION, STOP_HLT } from '../interpreter.js';
import { FlatTranslator } from '../translator.js';
import { imul64 } from './js-backend.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const BASE = 0x40_0000;
/** Code at window offset 0 (page 0 and 1), data at 0x4000, stack top at 0x8000. */
const DATA = BASE + 0x4000;
const STACK = BASE + 0x8000;

function machine(code: Uint8Array, jit: boolean, at = 0) {
  const mem = new Uint8Array(0x10000);
  mem.set(code, at);
  const cpu = new Cpu(mem, new FlatTranslator(BASE, 0x10000));
  cpu.rip = BigInt(BASE + at);
  cpu.setReg64(RSP, BigInt(STACK));
  cpu.setReg64(RBX, BigInt(DATA));
  const interp = new Interpreter(cpu, { jit: jit ? { threshold: 2 } : false });
  return { mem, cpu, interp };
}

/** Everything architectural the two engines must agree on. */
function snapshot(cpu: Cpu, stop: number) {
  const regs: bigint[] = [];
  for (let k = 0; k < 16; k++) regs.push(cpu.getReg64(k));
  return {
    stop,
    regs,
    rip: cpu.rip,
    rflags: cpu.rflags,
    instructions: cpu.instructions,
    vector: stop === STOP_EXCEPTION ? cpu.exVector : -1,
    error: stop === STOP_EXCEPTION ? cpu.exErrorCode : 0,
    cr2: stop === STOP_EXCEPTION ? cpu.cr2Lo : 0,
    mem: Buffer.from(cpu.mem.subarray(0x4000, 0x8000)).toString('hex'),
  };
}

// ---- a small assembler for the whitelisted forms --------------------------------------------

/** Registers the generated body may write (not RCX = loop counter, RBX = data base, RSP). */
const FREE = [0, 2, 6, 7, 8, 9, 10, 11];

interface Gen {
  int(lo: number, hi: number): number;
  pick<T>(a: readonly T[]): T;
}

function rex(w: boolean, reg: number, rm: number): number[] {
  const b = (w ? 8 : 0) | ((reg & 8) >> 1) | ((rm & 8) >> 3);
  return b === 0 ? [] : [0x40 | b];
}

/** ModRM for a register E operand. */
function regRm(reg: number, rm: number): number[] {
  return [0xc0 | ((reg & 7) << 3) | (rm & 7)];
}

/** A memory E operand: [rbx + disp8] (in the data page) or, rarely, [rax + disp8] (may fault). */
function memRm(g: Gen, reg: number): { bytes: number[]; base: number } {
  const wild = g.int(0, 19) === 0;
  const base = wild ? 0 : 3;
  return { bytes: [0x40 | ((reg & 7) << 3) | base, g.int(0, 0x78)], base };
}

/** Random whitelisted instruction bytes, with operand size 1, 2, 4 or 8. */
function randomInsn(g: Gen, cases?: readonly number[]): number[] {
  const size = g.pick([1, 2, 4, 8, 8, 4]);
  const w = size === 8;
  const pre = size === 2 ? [0x66] : [];
  const reg = g.pick(FREE);
  const rm = g.pick(FREE);
  const useMem = cases === undefined && g.int(0, 3) === 0;
  const e = (regField: number): number[] => {
    if (!useMem) return [...rex(w, regField, rm), ...regRm(regField, rm)];
    const m = memRm(g, regField);
    return [...rex(w, regField, m.base), ...m.bytes];
  };
  // Split "prefix, REX" from "opcode, ModRM" for forms whose E/G bytes come from e().
  const withOp = (op: number[], regField: number): number[] => {
    const eb = e(regField);
    const hasRex = eb.length > (useMem ? 2 : 1);
    return [...pre, ...(hasRex ? [eb[0]!] : []), ...op, ...eb.slice(hasRex ? 1 : 0)];
  };
  const v = size === 1 ? 0 : 1;
  const imm32 = (): number[] => {
    const x = g.pick([
      0,
      1,
      -1,
      0x7fffffff,
      -0x80000000,
      g.int(-1000, 1000),
      g.int(0, 2 ** 31 - 1),
    ]);
    return [x & 0xff, (x >> 8) & 0xff, (x >> 16) & 0xff, (x >>> 24) & 0xff];
  };
  const immv = (): number[] =>
    size === 1 ? [g.int(0, 255)] : size === 2 ? imm32().slice(0, 2) : imm32();
  switch (cases === undefined ? g.int(0, 17) : g.pick(cases)) {
    case 0: // ALU E,G
      return withOp([(g.int(0, 7) << 3) | v], reg);
    case 1: // ALU G,E
      return withOp([(g.int(0, 7) << 3) | 2 | v], reg);
    case 2: // ALU E,imm
      return size === 1
        ? withOp([0x80], g.int(0, 7)).concat([g.int(0, 255)])
        : g.int(0, 1) === 0
          ? withOp([0x83], g.int(0, 7)).concat([g.int(0, 255)])
          : withOp([0x81], g.int(0, 7)).concat(immv());
    case 3: // TEST E,G / TEST E,imm
      return g.int(0, 1) === 0 ? withOp([0x84 | v], reg) : withOp([0xf6 | v], 0).concat(immv());
    case 4: // MOV E,G / G,E / E,imm
      return [
        withOp([0x88 | v], reg),
        withOp([0x8a | v], reg),
        withOp([0xc6 | v], 0).concat(immv()),
      ][g.int(0, 2)]!;
    case 5: {
      // LEA G,M (memory form only; base rbx, index rdx*scale)
      const sib = (g.int(0, 3) << 6) | (2 << 3) | 3;
      return [...pre, 0x48 | ((reg & 8) >> 1), 0x8d, 0x44 | ((reg & 7) << 3), sib, g.int(0, 255)];
    }
    case 6: // INC/DEC
      return withOp([0xfe | v], g.int(0, 1));
    case 7: // SETcc Eb
      return withOpB([0x0f, 0x90 | g.int(0, 15)]);
    case 8: // CMOVcc G,E (16/32/64)
      return size === 1 ? [0x90] : withOp([0x0f, 0x40 | g.int(0, 15)], reg);
    case 9: // MOVZX/MOVSX G, Eb/Ew
      return size === 1 ? [0x90] : withOp([0x0f, g.pick([0xb6, 0xb7, 0xbe, 0xbf])], reg);
    case 10: // MOVSXD
      return size === 8 ? withOp([0x63], reg) : [0x90];
    case 11: // IMUL G,E / G,E,imm8
      return size === 1
        ? [0x90]
        : g.int(0, 1) === 0
          ? withOp([0x0f, 0xaf], reg)
          : withOp([0x6b], reg).concat([g.int(0, 255)]);
    case 12: // shifts and rotates by imm / CL
      return g.int(0, 1) === 0
        ? withOp([0xc0 | v], g.int(0, 7)).concat([g.int(0, 70)])
        : withOp([0xd2 | v], g.int(0, 7));
    case 13: // NOT/NEG, MUL/IMUL/DIV/IDIV one operand (#DE included)
      return withOp([0xf6 | v], g.pick([2, 3, 4, 5, 6, 7]));
    case 14: // PUSH r; POP r (balanced, maybe of another register)
      return [...rex(false, 0, reg), 0x50 | (reg & 7), ...rex(false, 0, rm), 0x58 | (rm & 7)];
    case 15: // flags: CLC/STC/CMC, LAHF/SAHF (call tier)
      return [g.pick([0xf8, 0xf9, 0xf5, 0x9f, 0x9e])];
    case 16: // XCHG, BT (call tier)
      return g.int(0, 1) === 0
        ? withOp([0x86 | v], reg)
        : size === 1
          ? [0x90]
          : withOp([0x0f, 0xa3], reg);
    default: // ADC/SBB E,G after a flag-setting CMP
      return withOp([(2 << 3) | v], reg).concat(withOp([(3 << 3) | 2 | v], reg));
  }

  function withOpB(op: number[]): number[] {
    if (!useMem) {
      const r8 = rm;
      return [...(r8 >= 4 ? [0x40 | ((r8 & 8) >> 3)] : []), ...op, ...regRm(0, r8)];
    }
    const m = memRm(g, 0);
    return [...op, ...m.bytes];
  }
}

/**
 * A program: `mov ecx, n; top: body (with forward Jcc skips); dec ecx; jnz top; tail; hlt`.
 */
function program(g: Gen, cases?: readonly number[]): Uint8Array {
  const loops = g.int(1, 40);
  const body: number[][] = [];
  const n = g.int(1, 14);
  for (let k = 0; k < n; k++) {
    body.push(randomInsn(g, cases));
    // Observe every flag now and then: PUSHFQ; POP r (RFLAGS into a register).
    if (g.int(0, 3) === 0) {
      const reg = g.pick(FREE);
      body.push([0x9c, ...rex(false, 0, reg), 0x58 | (reg & 7)]);
    }
  }
  // Forward conditional jumps over single instructions.
  const withJumps: number[] = [];
  for (const insn of body) {
    if (g.int(0, 5) === 0) withJumps.push(0x70 | g.int(0, 15), insn.length);
    withJumps.push(...insn);
  }
  const tail: number[] = [];
  for (let k = g.int(0, 4); k > 0; k--) tail.push(...randomInsn(g, cases));
  const out = [0xb9, loops, 0, 0, 0, ...withJumps, 0xff, 0xc9];
  const back = -(withJumps.length + 2 + 2);
  out.push(0x75, back & 0xff);
  if (back < -128) {
    out.splice(
      out.length - 2,
      2,
      0x0f,
      0x85,
      ...[0, 8, 16, 24].map((s) => ((back - 4) >> s) & 0xff),
    );
  }
  return Uint8Array.from([...out, ...tail, 0xf4]);
}

function runBoth(code: Uint8Array, regs: bigint[], budgets: number[], at = 0) {
  const a = machine(code, false, at);
  const b = machine(code, true, at);
  for (const m of [a, b]) {
    for (const k of FREE) m.cpu.setReg64(k, regs[k]!);
    for (let k = 0; k < 0x4000; k++) m.mem[0x4000 + k] = (k * 151 + 7) & 0xff;
  }
  for (const budget of budgets) {
    const sa = snapshot(a.cpu, a.interp.run(budget));
    const sb = snapshot(b.cpu, b.interp.run(budget));
    expect(sb).toEqual(sa);
    if (sa.stop !== STOP_BUDGET) break;
  }
  return b.interp.jit!;
}

const arbReg = fc.oneof(
  fc.constantFrom(
    0n,
    1n,
    0xffn,
    0x7fffffffn,
    0x80000000n,
    0xffffffffn,
    (1n << 64n) - 1n,
    1n << 63n,
  ),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
);

function checkRandomPrograms(runs: number, cases?: readonly number[]): void {
  let compiled = 0;
  let executed = 0;
  fc.assert(
    fc.property(
      fc.integer(),
      fc.array(arbReg, { minLength: 16, maxLength: 16 }),
      fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 12 }),
      (seed, regs, budgets) => {
        let s = seed >>> 0 || 1;
        const next = (): number => {
          s ^= s << 13;
          s ^= s >>> 17;
          s ^= s << 5;
          return s >>> 0;
        };
        const g: Gen = {
          int: (lo, hi) => lo + (next() % (hi - lo + 1)),
          pick: (a) => a[next() % a.length]!,
        };
        const jit = runBoth(program(g, cases), regs, [...budgets, 100_000]);
        compiled += jit.compiled;
        executed += jit.executed;
      },
    ),
    { numRuns: runs },
  );
  // The property is about the JIT: make sure blocks were really compiled and run.
  expect(compiled).toBeGreaterThan(runs / 2);
  expect(executed).toBeGreaterThan(runs * 25);
}

describe('JIT against the interpreter', () => {
  it('agrees on random loops of whitelisted forms: registers, flags, memory, count, faults', () => {
    checkRandomPrograms(400);
  });

  it('agrees on flag producers and consumers in every order (registers only)', () => {
    // ALU, INC/DEC, SETcc, CMOVcc, IMUL, shifts and rotates, NOT/NEG, flag ops: what is left of
    // each lazy state when the next instruction reads or partly replaces it.
    checkRandomPrograms(400, [0, 1, 2, 3, 6, 7, 8, 11, 12, 12, 12, 13, 15, 17]);
  });

  it('agrees on every flag producer followed by every flag consumer (matrix)', () => {
    // Producers on EAX/RAX with ESI/RSI (and AL, AX), consumers on EDI/RDI; PUSHFQ; POP RDX
    // observes all flags after each pair. Looped three times so the blocks run compiled.
    const producers = [
      '01f0',
      '4801f0',
      '29f0',
      '4829f0',
      '11f0',
      '4819f0',
      '21f0',
      '4809f0',
      '31f0',
      '39f0',
      '4839f0',
      '85f0',
      'ffc0',
      '48ffc8',
      'f7d8',
      '48f7d8',
      '0fafc6',
      '480fafc6',
      'c1e005',
      '48c1e83f',
      'c1f805',
      'c1c005',
      '48c1c821',
      '047f',
      '6601f0',
      'f9',
      '',
    ];
    const consumers = [
      'c1c803',
      '48c1c007',
      'd1e0',
      '48c1e821',
      'c1f81f',
      'ffc7',
      '48ffcf',
      '11f7',
      '4819f7',
      '0faffe',
      '9f',
      '',
      '0f4cfe',
      '0f47fe',
      '480f42fe',
      '0f4afe',
    ];
    for (let cc = 0; cc < 16; cc++)
      consumers.push(`400f9${cc.toString(16)}c7`, `7${cc.toString(16)}00`);
    const values: [bigint, bigint][] = [
      [0x0fn, 1n],
      [0x7fffffffn, 1n],
      [0xffffffffffffffffn, 1n],
      [0x8000000080000000n, 0x8000000080000000n],
    ];
    let executed = 0;
    for (const p of producers) {
      for (const q of consumers) {
        const body = hex(p + q + '9c5a');
        const code = Uint8Array.from([
          0xb9,
          3,
          0,
          0,
          0,
          ...body,
          0xff,
          0xc9,
          0x75,
          -(body.length + 4) & 0xff,
          0xf4,
        ]);
        for (const [a, b] of values) {
          const regs = Array.from({ length: 16 }, (_, k) => BigInt(k) * 0x1111n);
          regs[0] = a;
          regs[6] = b;
          executed += runBoth(code, regs, [1000]).executed;
        }
      }
    }
    expect(executed).toBeGreaterThan(10_000);
  });

  it('runs the tight loop inside one block and honours the budget exactly', () => {
    // mov ecx,1000; xor eax,eax; l: add rax,rcx; dec ecx; jnz l; hlt
    const code = hex('b9e8030000 31c0 4801c8 ffc9 75f9 f4');
    const { cpu, interp } = machine(code, true);
    expect(interp.run(100)).toBe(STOP_BUDGET);
    expect(cpu.instructions).toBe(100);
    expect(interp.run(10_000)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(500500n);
    expect(cpu.instructions).toBe(2 + 3 * 1000 + 1);
    expect(interp.jit!.executed).toBeGreaterThan(2900);
  });

  it('leaves a fault inside a block precise: RIP, count, earlier effects done, later not', () => {
    // l: inc rdx; mov [rbx+8], rdx; mov rsi, [rax]; mov rdi, 5; dec ecx; jnz l; hlt
    // RAX points at valid data until the 40th pass, then is moved out of the window.
    const code = hex('48ffc2 48895308 488b30 48c7c705000000 ffc9 75eb f4');
    for (const jit of [false, true]) {
      const { cpu, interp } = machine(code, jit);
      cpu.setReg64(RCX, 100n);
      cpu.setReg64(RAX, BigInt(DATA + 0x100));
      expect(interp.run(39 * 6)).toBe(STOP_BUDGET);
      cpu.setReg64(RAX, 0x1000n); // not mapped
      expect(interp.run(1000)).toBe(STOP_EXCEPTION);
      expect(cpu.exVector).toBe(VEC_PF);
      expect(cpu.rip).toBe(BigInt(BASE + 7)); // the load
      expect(cpu.instructions).toBe(39 * 6 + 2); // inc and the store of pass 40 retired
      expect(cpu.getReg64(2)).toBe(40n);
      expect(cpu.mem[0x4008]).toBe(40);
      expect(cpu.getReg64(7)).toBe(5n); // written in pass 39, untouched since
      expect(cpu.getReg64(RCX)).toBe(100n - 39n);
      if (jit) expect(interp.jit!.executed).toBeGreaterThan(100);
    }
  });

  it('runs SSE inside blocks and raises #NM precisely when CR0.TS makes SSE unavailable', () => {
    // l: inc rdx; paddd xmm0, xmm1; movdqu [rbx+16], xmm0; add rsi, rdx; dec ecx; jnz l; hlt
    // (paddd is register-only, movdqu a store: both stay in the block without reloading RDX.)
    const code = hex('48ffc2 660ffec1 f30f7f4310 4801d6 ffc9 75ed f4');
    for (const jit of [false, true]) {
      const { cpu, interp } = machine(code, jit);
      cpu.setReg64(RCX, 100n);
      cpu.simd.setXmm(1, 0x00000001_00000001_00000001_00000001n);
      expect(interp.run(30 * 6)).toBe(STOP_BUDGET);
      expect(cpu.simd.getXmm(0)).toBe(0x0000001e_0000001e_0000001e_0000001en);
      expect(cpu.mem[0x4010]).toBe(30);
      expect(cpu.getReg64(6)).toBe(465n); // 1 + 2 + ... + 30
      cpu.cr0 |= 8; // TS: the next SSE instruction raises #NM
      expect(interp.run(1000)).toBe(STOP_EXCEPTION);
      expect(cpu.exVector).toBe(7);
      expect(cpu.rip).toBe(BigInt(BASE + 3)); // the paddd of pass 31
      expect(cpu.instructions).toBe(30 * 6 + 1); // its inc retired
      expect(cpu.getReg64(2)).toBe(31n); // and is visible in RDX
      expect(cpu.simd.getXmm(0)).toBe(0x0000001e_0000001e_0000001e_0000001en);
      if (jit) expect(interp.jit!.executed).toBeGreaterThan(100);
    }
  });

  it('raises #GP(0) precisely for a misaligned MOVDQA load generated inside a block', () => {
    // l: add rdx, 2; movdqa xmm2, [rbx+rdx*8]; paddd xmm0, xmm2; dec ecx; jnz l; hlt
    // RBX = 0x4000: an even RDX reads an aligned operand, an odd one a misaligned one.
    const code = hex('4883c202 660f6f14d3 660ffec2 ffc9 75ef f4');
    for (const jit of [false, true]) {
      const { cpu, interp } = machine(code, jit);
      cpu.setReg64(RCX, 100n);
      for (let k = 0; k < 0x400; k++) cpu.mem[0x4000 + k] = 1;
      expect(interp.run(40 * 5)).toBe(STOP_BUDGET); // 40 aligned passes (compiled after 32)
      expect(cpu.simd.getXmm(0)).toBe(0x28282828_28282828_28282828_28282828n);
      cpu.setReg64(2, 5n);
      expect(interp.run(1000)).toBe(STOP_EXCEPTION);
      expect(cpu.exVector).toBe(13);
      expect(cpu.exErrorCode).toBe(0);
      expect(cpu.rip).toBe(BigInt(BASE + 4)); // the movdqa, after RDX became 7
      expect(cpu.getReg64(2)).toBe(7n);
      expect(cpu.instructions).toBe(40 * 5 + 1);
      expect(cpu.simd.getXmm(0)).toBe(0x28282828_28282828_28282828_28282828n);
      if (jit) expect(interp.jit!.executed).toBeGreaterThan(20);
    }
  });

  it('sees self-modifying code inside a compiled loop on the next pass', () => {
    // l: add eax, 1 (83 c0 01); mov rsi, [rbx + rcx*8]; inc byte [rsi]; dec ecx; jnz l; hlt
    // The table sends the increment to scratch data, except on pass RCX = 30 where it patches the
    // add's immediate: by then the loop runs compiled, and the block must notice at once.
    const code = hex('83c001 488b34cb fe06 ffc9 75f3 f4');
    const a = machine(code, false);
    const b = machine(code, true);
    for (const m of [a, b]) {
      const view = new DataView(m.mem.buffer);
      for (let k = 0; k <= 50; k++) view.setBigUint64(0x4000 + 8 * k, BigInt(DATA + 0x800), true);
      view.setBigUint64(0x4000 + 8 * 30, BigInt(BASE + 2), true);
      m.cpu.setReg64(RCX, 50n);
      expect(m.interp.run(10_000)).toBe(STOP_HLT);
    }
    expect(a.cpu.getReg64(RAX)).toBe(21n + 2n * 29n);
    expect(b.cpu.getReg64(RAX)).toBe(21n + 2n * 29n);
    expect(b.cpu.instructions).toBe(a.cpu.instructions);
    expect(b.cpu.code.invalidations).toBe(1);
    expect(b.interp.jit!.executed).toBeGreaterThan(100);
  });

  it('drops compiled code when another writer invalidates the page', () => {
    // l: add eax, 1; dec ecx; jnz l; hlt
    const code = hex('83c001 ffc9 75f9 f4');
    const { cpu, interp, mem } = machine(code, true);
    cpu.setReg64(RCX, 1000n);
    expect(interp.run(1500)).toBe(STOP_BUDGET);
    expect(interp.jit!.executed).toBeGreaterThan(1000);
    mem[2] = 3; // add eax, 3 from now on
    cpu.code.invalidate(2, 1);
    expect(interp.run(10_000)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(500n + 3n * 500n);
  });

  it('agrees with the interpreter when the block ends exactly at the page end', () => {
    // at 0xff9: l: add rax, rcx (3); dec ecx (2); jnz l (2, ends at 0x1000); hlt on the next page
    const code = hex('4801c8 ffc9 75f9 f4');
    const a = machine(code, false, 0xff9);
    const b = machine(code, true, 0xff9);
    for (const m of [a, b]) m.cpu.setReg64(RCX, 20n);
    expect(snapshot(b.cpu, b.interp.run(1000))).toEqual(snapshot(a.cpu, a.interp.run(1000)));
    expect(b.interp.jit!.executed).toBeGreaterThan(30);
  });

  it('changes nothing when the JIT is off', () => {
    const { interp } = machine(hex('b90a000000 31c0 4801c8 ffc9 75f9 f4'), false);
    expect(interp.jit).toBeNull();
    expect(interp.run(1000)).toBe(STOP_HLT);
  });
});

describe('imul64 (the JIT fast path for 64-bit IMUL)', () => {
  it('gives the low 64 bits and the overflow of the exact signed product', () => {
    const edge = fc.constantFrom(
      0n,
      1n,
      -1n,
      1n << 31n,
      -(1n << 31n),
      3037000499n,
      -3037000500n,
      (1n << 62n) - 1n,
      1n << 62n,
      -(1n << 63n),
      (1n << 63n) - 1n,
      0x100000001b3n,
    );
    const v = fc.oneof(
      edge,
      fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
      fc.bigInt({ min: -(1n << 33n), max: 1n << 33n }),
    );
    fc.assert(
      fc.property(v, v, (a, b) => {
        const half = (x: bigint, k: number) => Number(BigInt.asIntN(32, x >> BigInt(32 * k)));
        const ov = imul64(half(a, 0), half(a, 1), half(b, 0), half(b, 1));
        const p = a * b;
        expect(ov).toBe(p !== BigInt.asIntN(64, p));
        expect(w[0]).toBe(half(p, 0));
        expect(w[1]).toBe(half(p, 1));
      }),
      { numRuns: 3000 },
    );
  });
});
