// x86 interpreter throughput in millions of guest instructions per second.
// cpu.loop_mips: the tightest loop (add, dec, jnz on registers), at CPL 0 on flat memory.
// cpu.mixed_mips: the C workload of the system tests (test/system/programs/workload.c: SHA-256,
// merge sort and quicksort, printf-style formatting; gcc -O2), built by the same builder and
// checked against the same expected output, run to HLT on flat memory. Best of several runs,
// each on a fresh machine (so decoding is part of the figure, as for a real guest).
// cpu.mixed_instructions: the instructions one run of that workload retires.

import { Cpu } from '../src/hw/cpu/cpu.js';
import { Interpreter, STOP_BUDGET } from '../src/hw/cpu/interpreter.js';
import { FlatTranslator } from '../src/hw/cpu/translator.js';
import { buildProgram } from '../test/system/build.js';
import { type RunResult, SystemMachine } from '../test/system/machine.js';
import { expectedWorkloadOutput } from '../test/system/workload-expected.js';
import type { Bench } from './harness.js';

const BASE = 0x40_0000;

/** Runs `code` for `instructions` guest instructions and returns MIPS (best of `rounds`). */
function loopMips(code: string, instructions: number, rounds = 3): number {
  let best = 0;
  for (let k = 0; k < rounds; k++) {
    const mem = new Uint8Array(0x10000);
    mem.set(Uint8Array.from(Buffer.from(code, 'hex')));
    const cpu = new Cpu(mem, new FlatTranslator(BASE, 0x10000));
    cpu.rip = BigInt(BASE);
    cpu.setReg64(4, BigInt(BASE + 0x8000));
    const interp = new Interpreter(cpu);
    interp.run(100_000); // warm-up
    const start = process.hrtime.bigint();
    const stop = interp.run(instructions);
    const ns = Number(process.hrtime.bigint() - start);
    if (stop !== STOP_BUDGET) throw new Error(`benchmark program stopped early (${stop})`);
    best = Math.max(best, (instructions / ns) * 1000);
  }
  return best;
}

// mov ecx, 0x7fffffff; xor eax, eax; l: add rax, rcx; dec rcx; jnz l
const LOOP = 'b9ffffff7f31c04801c848ffc975f8';

/** One run of the C workload on a fresh machine, checked; returns the result and nanoseconds. */
function workloadRun(elf: Uint8Array, expected: string): { result: RunResult; ns: number } {
  const m = SystemMachine.longMode(elf, 'flat');
  const start = process.hrtime.bigint();
  const result = m.run(1_000_000_000);
  const ns = Number(process.hrtime.bigint() - start);
  if (result.stop !== 'hlt' || result.output !== expected || result.exitCode !== 0) {
    throw new Error(`the C workload did not run correctly (${result.stop}):\n${result.output}`);
  }
  return { result, ns };
}

function workloadMips(rounds = 5): number {
  const elf = buildProgram('workload');
  const expected = expectedWorkloadOutput();
  workloadRun(elf, expected); // warm-up (V8 compiles the interpreter)
  let best = 0;
  for (let k = 0; k < rounds; k++) {
    const { result, ns } = workloadRun(elf, expected);
    best = Math.max(best, (result.instructions / ns) * 1000);
  }
  return best;
}

export const benches: Bench[] = [
  {
    name: 'cpu.loop_mips',
    run: () => loopMips(LOOP, 30_000_000),
  },
  {
    name: 'cpu.mixed_mips',
    run: () => workloadMips(),
  },
  {
    name: 'cpu.mixed_instructions',
    run: () => workloadRun(buildProgram('workload'), expectedWorkloadOutput()).result.instructions,
  },
];
