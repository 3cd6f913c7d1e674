// The gcc-built C workload run by the pure interpreter and by the block JIT side by side, compared
// after every slice of uneven length (so blocks are entered at many points and cut by budgets).
import { describe, expect, it } from 'vitest';
import { STOP_BUDGET, STOP_HLT } from '../../src/hw/cpu/interpreter.js';
import { buildProgram } from './build.js';
import { BareMachine } from '../../src/hw/bare-machine.js';
import { expectedWorkloadOutput } from './workload-expected.js';

describe('the C workload under the JIT', () => {
  it('stays in step with the interpreter: registers, RIP, flags, count, memory, output', () => {
    const elf = buildProgram('workload');
    const a = BareMachine.longMode(elf, 'flat', { jit: false });
    const b = BareMachine.longMode(elf, 'flat', { jit: true });
    let stop = STOP_BUDGET;
    for (let slice = 1; stop === STOP_BUDGET; slice++) {
      const budget = 1 + ((slice * 7919) % 50_000);
      stop = a.interp.run(budget);
      expect(b.interp.run(budget)).toBe(stop);
      expect(b.cpu.instructions).toBe(a.cpu.instructions);
      expect(b.cpu.rip).toBe(a.cpu.rip);
      expect(b.cpu.rflags).toBe(a.cpu.rflags);
      for (let k = 0; k < 16; k++) expect(b.cpu.getReg64(k)).toBe(a.cpu.getReg64(k));
    }
    expect(stop).toBe(STOP_HLT);
    expect(Buffer.from(b.memory.bytes).equals(Buffer.from(a.memory.bytes))).toBe(true);
    expect(Buffer.from(b.portOutput).toString('latin1')).toBe(expectedWorkloadOutput());
    expect(Buffer.from(a.portOutput).toString('latin1')).toBe(expectedWorkloadOutput());
    expect(b.interp.jit!.executed).toBeGreaterThan(0.9 * b.cpu.instructions);
  }, 120_000);
});
