// Debug exceptions: single-step (TF), instruction and data breakpoints (DR0-3, DR7), #DB with
// DR6.BS/Bn (AMD64 APM vol. 2, 13.1; Intel SDM vol. 3B, 17.3).

import { describe, expect, it } from 'vitest';
import { RAX, RSP, TRAP_EXCEPTION, TRAP_NONE, VEC_DB } from './cpu.js';
import { debugChanged, DR6_BS } from './debug.js';
import { RF, TF } from './flags.js';
import { STOP_EXCEPTION, STOP_HLT } from './interpreter.js';
import { CODE, hex, machine, STUBS } from './system.fixture.js';

type M = ReturnType<typeof machine>;

const INC_EAX = 'ffc0';

/** Sets breakpoint n at `addr` with R/W `rw` and DR7 LEN encoding `len` (local enable). */
function breakpoint(m: M, n: number, addr: number, rw: number, len = 0): void {
  m.cpu.dr[n] = BigInt(addr);
  m.cpu.dr7 |= BigInt((1 << (2 * n)) | (rw << (16 + 4 * n)) | (len << (18 + 4 * n)));
  debugChanged(m.cpu);
}

/** Runs and expects a #DB; returns [kind, RIP offset from CODE, DR6 & 0x400f]. */
function expectDb(m: M): [number, number, number] {
  expect(m.interp.run(50)).toBe(STOP_EXCEPTION);
  expect(m.cpu.exVector).toBe(VEC_DB);
  const dr6 = Number(m.cpu.dr6 & 0x400fn);
  m.cpu.dr6 = 0xffff0ff0n; // the handler's job: DR6 bits are sticky
  return [m.cpu.exKind, Number(m.cpu.rip) - CODE, dr6];
}

describe('single-step (RFLAGS.TF)', () => {
  it('traps after each instruction with DR6.BS, RIP after the instruction', () => {
    const m = machine(`${INC_EAX} ${INC_EAX} f4`);
    m.cpu.rflags = 0x2 | TF;
    const [k1, at1, bs1] = expectDb(m);
    expect([k1, at1, bs1, m.cpu.getReg64(RAX)]).toEqual([TRAP_EXCEPTION, 2, DR6_BS, 1n]);
    const [k2, at2, bs2] = expectDb(m);
    expect([k2, at2, bs2, m.cpu.getReg64(RAX)]).toEqual([TRAP_EXCEPTION, 4, DR6_BS, 2n]);
  });

  it('no trap after the POPF that sets TF: the first one follows the next instruction', () => {
    // push 0x102; popfq; inc eax; inc eax; hlt
    const m = machine(`6802010000 9d ${INC_EAX} ${INC_EAX} f4`);
    const [kind, at, dr6] = expectDb(m);
    expect([kind, at, dr6, m.cpu.getReg64(RAX)]).toEqual([TRAP_EXCEPTION, 8, DR6_BS, 1n]);
  });

  it('the POPF that clears TF still traps; nothing after it', () => {
    // push 2; popfq; inc eax; hlt
    const m = machine(`6a02 9d ${INC_EAX} f4`);
    m.cpu.rflags = 0x2 | TF;
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 2, DR6_BS]); // after PUSH
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 3, DR6_BS]); // after POPF
    expect(m.interp.run(50)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RAX)).toBe(1n);
  });

  it('an instruction breakpoint pushes RF clear; a fault (#UD) pushes RF set', () => {
    const b = machine(`${INC_EAX} f4`);
    b.cpu.deliverFaults = true;
    breakpoint(b, 0, CODE, 0);
    expect(b.interp.run(50)).toBe(STOP_HLT);
    expect(b.cpu.rip).toBe(BigInt(STUBS + 16 * VEC_DB + 1));
    const bsp = Number(b.cpu.getReg64(RSP));
    expect(b.view.getBigUint64(bsp, true)).toBe(BigInt(CODE)); // a fault: the instruction
    expect(Number(b.view.getBigUint64(bsp + 16, true)) & RF).toBe(0);
    const u = machine('0f0b'); // ud2
    u.cpu.deliverFaults = true;
    expect(u.interp.run(50)).toBe(STOP_HLT);
    const usp = Number(u.cpu.getReg64(RSP));
    expect(Number(u.view.getBigUint64(usp + 16, true)) & RF).toBe(RF);
    expect(u.cpu.rflags & RF).toBe(0);
  });

  it('is delivered through the IDT: handler entered with TF clear, TF in the pushed RFLAGS', () => {
    const m = machine(`${INC_EAX} f4`);
    m.cpu.deliverFaults = true;
    m.cpu.rflags = 0x2 | TF;
    expect(m.interp.run(50)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * VEC_DB + 1)); // the #DB stub's HLT
    const sp = Number(m.cpu.getReg64(RSP));
    expect(m.view.getBigUint64(sp, true)).toBe(BigInt(CODE + 2)); // RIP after INC
    expect(Number(m.view.getBigUint64(sp + 16, true)) & TF).toBe(TF);
    expect(m.cpu.rflags & TF).toBe(0);
    expect(m.cpu.dr6 & BigInt(DR6_BS)).toBe(BigInt(DR6_BS));
  });

  it('INT n clears TF when delivering and raises no single-step trap', () => {
    const m = machine('cd80 f4');
    m.cpu.deliverFaults = true;
    m.cpu.rflags = 0x2 | TF;
    expect(m.interp.run(50)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 0x80 + 1));
    expect(m.cpu.dr6 & BigInt(DR6_BS)).toBe(0n);
  });

  it('a faulting instruction raises its fault, not a single-step trap', () => {
    const m = machine('0f0b'); // ud2
    m.cpu.rflags = 0x2 | TF;
    expect(m.interp.run(50)).toBe(STOP_EXCEPTION);
    expect([m.cpu.exVector, m.cpu.exKind]).toEqual([6, TRAP_NONE]);
  });

  it('MOV SS holds the trap until after the next instruction; STI does not', () => {
    // mov eax, 0x10; mov ss, eax; inc eax; inc eax; hlt
    const m = machine(`b810000000 8ed0 ${INC_EAX} ${INC_EAX} f4`);
    m.cpu.rflags = 0x2 | TF;
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 5, DR6_BS]);
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 9, DR6_BS]); // one trap for MOV SS + INC
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 11, DR6_BS]);
    const s = machine(`fb ${INC_EAX} f4`); // sti; inc eax
    s.cpu.rflags = 0x2 | TF;
    expect(expectDb(s)).toEqual([TRAP_EXCEPTION, 1, DR6_BS]);
  });

  it('LSS has no MOV SS shadow: the trap follows the LSS itself', () => {
    // lss esp, [0x10100]; inc eax; hlt  (the far pointer: offset 0x7000, selector 0x10)
    const m = machine(`0fb2242500010100 ${INC_EAX} f4`);
    m.mem.set(hex('00700000 1000'), CODE + 0x100);
    m.cpu.rflags = 0x2 | TF;
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 8, DR6_BS]);
    expect(m.cpu.getReg64(RSP)).toBe(0x7000n);
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 10, DR6_BS]);
  });

  it('SYSCALL follows TF as it leaves it: FMASK clearing TF means no trap in the kernel', () => {
    for (const [sfmask, traps] of [
      [BigInt(TF), false],
      [0n, true],
    ] as const) {
      const m = machine('0f05');
      m.mem.set(hex(`${INC_EAX} f4`), 0x20000);
      m.cpu.lstar = 0x20000n;
      m.cpu.sfmask = sfmask;
      m.cpu.rflags = 0x2 | TF;
      const stop = m.interp.run(50);
      if (traps) {
        expect([stop, m.cpu.exVector, m.cpu.rip]).toEqual([STOP_EXCEPTION, VEC_DB, 0x20000n]);
      } else {
        expect([stop, m.cpu.getReg64(RAX)]).toEqual([STOP_HLT, 1n]);
      }
    }
  });

  it('runs one instruction at a time even where the JIT has compiled a block', () => {
    // mov ecx, 200; l: inc eax; dec ecx; jnz l; hlt -- the loop is hot before TF is set.
    const m = machine(`b9c8000000 ${INC_EAX} ffc9 75fa f4`);
    expect(m.interp.run(10_000)).toBe(STOP_HLT);
    m.cpu.rip = BigInt(CODE);
    m.cpu.setReg64(RAX, 0n);
    m.cpu.rflags = 0x2 | TF;
    for (let k = 1; k <= 7; k++) expectDb(m);
    expect(m.cpu.getReg64(RAX)).toBe(2n); // mov, then inc/dec/jnz twice
  });
});

describe('instruction breakpoints (R/W = 00)', () => {
  it('fault before the instruction with DR6.Bn; RF lets it run once', () => {
    const m = machine(`${INC_EAX} ${INC_EAX} ${INC_EAX} f4`);
    breakpoint(m, 2, CODE + 2, 0);
    expect(expectDb(m)).toEqual([TRAP_NONE, 2, 0b100]);
    expect(m.cpu.getReg64(RAX)).toBe(1n);
    // Without RF it faults again; with RF the instruction runs and RF is cleared.
    expect(expectDb(m)).toEqual([TRAP_NONE, 2, 0b100]);
    m.cpu.rflags |= RF;
    expect(m.interp.run(50)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RAX)).toBe(3n);
    expect(m.cpu.rflags & RF).toBe(0);
  });

  it('are enabled by MOV DR7 (local or global bit) and disabled by clearing it', () => {
    // mov rax, dr7 <- 0x2 (G0); inc eax (the breakpoint); ...
    const m = machine(`b802000000 0f23f8 ${INC_EAX} f4`);
    m.cpu.dr[0] = BigInt(CODE + 8);
    expect(expectDb(m)).toEqual([TRAP_NONE, 8, 0b1]);
    m.cpu.dr7 = 0x400n;
    debugChanged(m.cpu);
    expect(m.interp.run(50)).toBe(STOP_HLT);
  });

  it('through the IDT: IRETQ with RF set in the image resumes past the breakpoint', () => {
    const m = machine(`${INC_EAX} ${INC_EAX} f4`);
    m.cpu.deliverFaults = true;
    // The #DB handler: or qword [rsp+16], 0x10000 (RF in the saved RFLAGS); iretq
    m.mem.set(hex('48814c24100000010048cf'), STUBS + 16 * VEC_DB);
    breakpoint(m, 0, CODE + 2, 0);
    expect(m.interp.run(50)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(CODE + 5));
    expect(m.cpu.getReg64(RAX)).toBe(2n);
    expect(m.cpu.dr6 & 0xfn).toBe(1n);
  });
});

describe('data breakpoints', () => {
  const store = (addr: number): string => `890425${hex32(addr)}`; // mov [addr], eax
  const load = (addr: number): string => `8b0425${hex32(addr)}`; // mov eax, [addr]
  function hex32(v: number): string {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b.toString('hex');
  }

  it('R/W = 01: a store overlapping the range traps after it; loads and other stores do not', () => {
    const m = machine(`${store(0x5000)} ${load(0x5004)} ${store(0x5002)} f4`);
    m.cpu.setReg64(RAX, 0x11223344n);
    m.view.setUint32(0x5004, 0xaabbccdd, true);
    breakpoint(m, 1, 0x5004, 1, 3); // 4 bytes at 0x5004
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 21, 0b10]);
    expect(m.view.getUint32(0x5002, true)).toBe(0xaabbccdd); // the trapping store completed
    expect(m.interp.run(50)).toBe(STOP_HLT);
  });

  it('R/W = 11: loads trap too; the range is aligned to its length', () => {
    const m = machine(`${load(0x6008)} ${load(0x6010)} f4`);
    breakpoint(m, 3, 0x600d, 3, 2); // 8 bytes: 0x6008..0x600f
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 7, 0b1000]);
    expect(m.interp.run(50)).toBe(STOP_HLT);
  });

  it('an 8-byte store hits a one-byte breakpoint on its middle byte', () => {
    const m = machine(`48${store(0x7000)} f4`); // mov [0x7000], rax
    breakpoint(m, 0, 0x7005, 1, 0);
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 8, 0b1]);
  });

  it('a PUSH onto a watched stack slot traps after the PUSH', () => {
    const m = machine(`50 f4`);
    const sp = Number(m.cpu.getReg64(RSP));
    breakpoint(m, 2, sp - 8, 1, 2);
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 1, 0b100]);
  });

  it('single-step and a data breakpoint in one instruction are one #DB with both bits', () => {
    const m = machine(`${store(0x5000)} f4`);
    breakpoint(m, 0, 0x5000, 1, 0);
    m.cpu.rflags = 0x2 | TF;
    expect(expectDb(m)).toEqual([TRAP_EXCEPTION, 7, DR6_BS | 1]);
  });
});
