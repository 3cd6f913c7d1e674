import { describe, expect, it } from 'vitest';
import { Cpu, RSP } from './cpu.js';
import { Interpreter, STOP_BUDGET, STOP_HLT } from './interpreter.js';
import { InstructionTracer } from './trace.js';
import { FlatTranslator } from './translator.js';

const BASE = 0x40_0000;

function machine(code: string) {
  const mem = new Uint8Array(0x10000);
  mem.set(Buffer.from(code.replace(/\s+/g, ''), 'hex'));
  const cpu = new Cpu(mem, new FlatTranslator(BASE, 0x10000));
  cpu.rip = BigInt(BASE);
  cpu.setReg64(RSP, BigInt(BASE + 0x8000));
  return { cpu, interp: new Interpreter(cpu, { jit: { threshold: 1 } }) };
}

describe('instruction trace', () => {
  it('prints count, address, bytes and text of each instruction, and what it changed', () => {
    // mov eax, 5; add rax, rax; push rax; nop; hlt
    const { cpu, interp } = machine('b805000000 4801c0 50 90 f4');
    const lines: string[] = [];
    interp.setTracer(new InstructionTracer((l) => lines.push(l), { registers: true }));
    expect(interp.run(100)).toBe(STOP_HLT);
    interp.setTracer(null);
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/^ +0 0000000000400000 b8 05 00 00 00 +mov eax, 0x5 ; rax=5$/);
    expect(lines[1]).toMatch(/^ +1 0000000000400005 48 01 c0 +add rax, rax ; rax=a rflags=6$/);
    expect(lines[2]).toMatch(/^ +2 0000000000400008 50 +push rax ; rsp=407ff8$/);
    expect(lines[3]).toMatch(/^ +3 0000000000400009 90 +nop$/);
    expect(lines[4]).toMatch(/^ +4 000000000040000a f4 +hlt$/);
    expect(cpu.getReg64(0)).toBe(10n);
  });

  it('shows every instruction of a hot loop: compiled blocks are not used while tracing', () => {
    // mov ecx, 50; l: dec ecx; jnz l; hlt
    const { cpu, interp } = machine('b932000000 ffc9 75fc f4');
    expect(interp.run(40)).toBe(STOP_BUDGET); // the JIT compiles the loop (threshold 1)
    expect(interp.jit!.executed).toBeGreaterThan(0);
    const executed = interp.jit!.executed;
    const lines: string[] = [];
    interp.setTracer(new InstructionTracer((l) => lines.push(l)));
    expect(interp.run(1000)).toBe(STOP_HLT);
    expect(lines).toHaveLength(cpu.instructions - 40);
    expect(interp.jit!.executed).toBe(executed);
    expect(lines.at(-1)).toMatch(/hlt$/);
    // Detached, the JIT runs again.
    interp.setTracer(null);
    cpu.rip = BigInt(BASE);
    expect(interp.run(1000)).toBe(STOP_HLT);
    expect(interp.jit!.executed).toBeGreaterThan(executed);
  });

  it('writes the last instruction of a run when the tracer is detached', () => {
    const { interp } = machine('b801000000 b802000000');
    const lines: string[] = [];
    interp.setTracer(new InstructionTracer((l) => lines.push(l), { registers: true }));
    expect(interp.run(2)).toBe(STOP_BUDGET);
    expect(lines).toHaveLength(1); // the second waits for its register changes
    interp.setTracer(null);
    expect(lines[1]).toMatch(/mov eax, 0x2 ; rax=2$/);
  });
});
