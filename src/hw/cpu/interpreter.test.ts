import { describe, expect, it } from 'vitest';
import { Cpu, type CpuPlatform, RAX, RCX, RDX, RSP } from './cpu.js';
import { Interpreter, STOP_BUDGET, STOP_EXCEPTION, STOP_HLT } from './interpreter.js';
import { FlatTranslator } from './translator.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const BASE = 0x40_0000;

function machine(code: string, at = 0, windowSize = 0x10000) {
  const mem = new Uint8Array(0x10000);
  mem.set(hex(code), at);
  const cpu = new Cpu(mem, new FlatTranslator(BASE, windowSize));
  cpu.rip = BigInt(BASE + at);
  cpu.setReg64(RSP, BigInt(BASE + 0x8000));
  return { mem, cpu, interp: new Interpreter(cpu) };
}

describe('interpreter', () => {
  it('runs a counted loop to HLT: sum of 10..1 is 55', () => {
    // mov ecx,10; xor eax,eax; l: add rax,rcx; dec ecx; jnz l; hlt
    const { cpu, interp } = machine('b90a000000 31c0 4801c8 ffc9 75f9 f4');
    expect(interp.run(1000)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(55n);
    expect(cpu.instructions).toBe(2 + 3 * 10 + 1);
  });

  it('stops after the instruction budget and resumes where it stopped', () => {
    const { cpu, interp } = machine('b90a000000 31c0 4801c8 ffc9 75f9 f4');
    expect(interp.run(5)).toBe(STOP_BUDGET);
    expect(interp.run(1000)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(55n);
  });

  it('sees its own stores into code it has already run (decoded code is invalidated)', () => {
    // 0: mov eax,1; 5: hlt; 6: mov byte [rip-12],7 (the immediate at 1); 13: jmp 0
    const { cpu, interp } = machine('b801000000 f4 c605f4ffffff07 e9eeffffff');
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(1n);
    cpu.rip = BigInt(BASE + 6);
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(7n);
    expect(cpu.code.invalidations).toBe(1);
  });

  it('executes an instruction that crosses a page boundary', () => {
    const { cpu, interp } = machine('48b88877665544332211 f4', 0xffc);
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(0x1122334455667788n);
  });

  it('raises #PF with CR2 at the next page when an instruction runs off mapped memory', () => {
    const { cpu, interp } = machine('48b88877665544332211', 0xffc, 0x1000);
    expect(interp.run(10)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(14);
    expect(cpu.exErrorCode).toBe(0x10); // instruction fetch, not present, supervisor
    expect(cpu.cr2Lo >>> 0).toBe(BASE + 0x1000);
    expect(cpu.rip).toBe(BigInt(BASE + 0xffc));
  });

  it('raises #DE on division by zero with RIP at the DIV and registers untouched', () => {
    const { cpu, interp } = machine('48f7f1'); // div rcx
    cpu.setReg64(RAX, 5n);
    cpu.setReg64(RDX, 0n);
    cpu.setReg64(RCX, 0n);
    expect(interp.run(1)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(0);
    expect(cpu.rip).toBe(BigInt(BASE));
    expect(cpu.getReg64(RAX)).toBe(5n);
  });

  it('divides 128 by 64 bits', () => {
    const { cpu, interp } = machine('48f7f1 f4'); // div rcx
    cpu.setReg64(RDX, 3n);
    cpu.setReg64(RAX, 7n);
    cpu.setReg64(RCX, 10n);
    interp.run(2);
    const n = (3n << 64n) | 7n;
    expect(cpu.getReg64(RAX)).toBe(n / 10n);
    expect(cpu.getReg64(RDX)).toBe(n % 10n);
  });

  it('makes HLT at CPL 3 a #GP(0)', () => {
    const { cpu, interp } = machine('f4');
    cpu.cpl = 3;
    expect(interp.run(1)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(13);
  });

  it('asks the platform for CPUID and the TSC', () => {
    const platform: CpuPlatform = {
      cpuid(eax, ecx, out) {
        out[0] = eax + 1;
        out[1] = ecx + 2;
        out[2] = 3;
        out[3] = -1;
      },
      tsc: (n) => 0x1_0000_0000 * 5 + n * 10,
    };
    const mem = new Uint8Array(0x1000);
    mem.set(hex('0fa2 f4 0f31 f4'));
    const cpu = new Cpu(mem, new FlatTranslator(0, 0x1000), undefined, platform);
    const interp = new Interpreter(cpu);
    cpu.setReg64(RAX, 0xffff_ffff_0000_0007n);
    cpu.setReg64(RCX, 4n);
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(8n);
    expect(cpu.getReg64(3)).toBe(6n);
    expect(cpu.getReg64(RDX)).toBe(0xffff_ffffn);
    expect(interp.run(10)).toBe(STOP_HLT);
    // Two instructions retired before RDTSC.
    expect(cpu.getReg64(RAX)).toBe(20n);
    expect(cpu.getReg64(RDX)).toBe(5n);
  });

  it('reports #UD at an undefined opcode', () => {
    const { cpu, interp } = machine('90 0f04');
    expect(interp.run(5)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(6);
    expect(cpu.rip).toBe(BigInt(BASE + 1));
  });

  it('rejects non-canonical addresses with #GP(0)', () => {
    const { cpu, interp } = machine('488b00'); // mov rax, [rax]
    cpu.setReg64(RAX, 0x0000_8000_0000_0000n);
    expect(interp.run(1)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(13);
  });
});
