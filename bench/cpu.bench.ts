// x86 interpreter throughput in millions of guest instructions per second.
// cpu.loop_mips: the tightest loop (add, dec, jnz on registers), at CPL 0 on flat memory.
// cpu.mixed_mips: the C workload of the system tests (test/system/programs/workload.c: SHA-256,
// merge sort and quicksort, printf-style formatting; gcc -O2, SSE2 as gcc emits it by default),
// built by the same builder and checked against the same expected output, at CPL 0 on flat
// memory, in steady state: one machine runs it back to back for WARM_UP_MS (the JIT compiles its
// blocks and V8 optimises them), then the figure is the best of ten further runs.
// cpu.mixed_warmup_mips: the same machine's average over those first WARM_UP_MS, decoding,
// compiling and V8's tiering included (what a short-lived guest sees).
// cpu.mixed_cold_mips: a fresh machine per run (V8 warm, the guest's code not yet decoded).
// cpu.mixed_instructions: the instructions one run retires.
// cpu.jit_vs_interp: the C workload's steady state with the block JIT (the default) over the
// pure interpreter, measured in the same run.
// cpu.sse_scan_mips / cpu.sse_fp_mips: an SSE2 string scan and a scalar-double loop.

import { Cpu } from '../src/hw/cpu/cpu.js';
import { Interpreter, STOP_BUDGET } from '../src/hw/cpu/interpreter.js';
import { FlatTranslator } from '../src/hw/cpu/translator.js';
import { buildProgram } from '../test/system/build.js';
import { type RunResult, BareMachine } from '../src/hw/bare-machine.js';
import { expectedWorkloadOutput } from '../test/system/workload-expected.js';
import type { Bench } from './harness.js';

const BASE = 0x40_0000;

/** Runs `code` for `instructions` guest instructions and returns MIPS (best of `rounds`). */
function mips(
  code: string,
  instructions: number,
  setup: (cpu: Cpu) => void = () => {},
  rounds = 3,
): number {
  let best = 0;
  for (let k = 0; k < rounds; k++) {
    const mem = new Uint8Array(0x10000);
    mem.set(Uint8Array.from(Buffer.from(code, 'hex')));
    const cpu = new Cpu(mem, new FlatTranslator(BASE, 0x10000));
    cpu.rip = BigInt(BASE);
    cpu.setReg64(4, BigInt(BASE + 0x8000));
    setup(cpu);
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

/** Runs the C workload to HLT and checks its output; returns the result and nanoseconds. */
function workloadRun(m: BareMachine, expected: string): { result: RunResult; ns: number } {
  const start = process.hrtime.bigint();
  const result = m.run(1_000_000_000);
  const ns = Number(process.hrtime.bigint() - start);
  if (result.stop !== 'hlt' || result.output !== expected || result.exitCode !== 0) {
    throw new Error(`the C workload did not run correctly (${result.stop}):\n${result.output}`);
  }
  return { result, ns };
}

const mipsOf = ({ result, ns }: { result: RunResult; ns: number }): number =>
  (result.instructions / ns) * 1000;

/**
 * Wall time the workload runs back to back in one machine before the steady-state rounds: the
 * block JIT compiles each hot block to JavaScript at once, but V8 optimises those functions in
 * the background over the next seconds (about 25 ms of TurboFan per block on this machine), and
 * until then they run in V8's baseline tiers.
 */
const WARM_UP_MS = 5000;

/** The workload back to back in `m` for `ms` of wall time: runs and instructions retired. */
function runFor(m: BareMachine, expected: string, ms: number): { runs: number; mips: number } {
  let runs = 0;
  let instructions = 0;
  let ns = 0;
  while (ns < ms * 1e6) {
    if (runs > 0) m.restart();
    const r = workloadRun(m, expected);
    instructions += r.result.instructions;
    ns += r.ns;
    runs++;
  }
  return { runs, mips: (instructions / ns) * 1000 };
}

/** Steady state: one machine, `WARM_UP_MS` of runs, then the best of `rounds` restarts. */
function workloadMips(rounds = 10, jit = true): number {
  const expected = expectedWorkloadOutput();
  const m = BareMachine.longMode(buildProgram('workload'), 'flat', { jit });
  runFor(m, expected, WARM_UP_MS);
  let best = 0;
  for (let k = 0; k < rounds; k++) {
    m.restart();
    best = Math.max(best, mipsOf(workloadRun(m, expected)));
  }
  return best;
}

/** Cold: a fresh machine per run (after one run that warms V8 up), best of `rounds`. */
function workloadColdMips(rounds = 3): number {
  const elf = buildProgram('workload');
  const expected = expectedWorkloadOutput();
  workloadRun(BareMachine.longMode(elf, 'flat'), expected);
  let best = 0;
  for (let k = 0; k < rounds; k++) {
    best = Math.max(best, mipsOf(workloadRun(BareMachine.longMode(elf, 'flat'), expected)));
  }
  return best;
}

// strlen-style SSE2 scan: l: movdqa xmm1,[rsi+rdx]; pcmpeqb xmm1,xmm0; pmovmskb eax,xmm1;
// add rdx,16; and edx,0xff0; test eax,eax; jz l (no match in a zero buffer: runs to the budget)
const SSE_SCAN = '660f6f0c16660f74c8660fd7c14883c21081e2f00f000085c074e5';
// scalar double arithmetic: l: addsd xmm2,xmm3; mulsd xmm2,xmm4; dec rcx; jnz l
const SSE_FP = 'f20f58d3f20f59d448ffc975f3';

export const benches: Bench[] = [
  {
    name: 'cpu.loop_mips',
    run: () => mips(LOOP, 30_000_000),
  },
  {
    name: 'cpu.mixed_mips',
    run: () => workloadMips(),
  },
  {
    name: 'cpu.jit_vs_interp',
    run: () => workloadMips(5) / workloadMips(5, false),
  },
  {
    name: 'cpu.mixed_warmup_mips',
    run: () =>
      runFor(
        BareMachine.longMode(buildProgram('workload'), 'flat'),
        expectedWorkloadOutput(),
        WARM_UP_MS,
      ).mips,
  },
  {
    name: 'cpu.mixed_cold_mips',
    run: () => workloadColdMips(),
  },
  {
    name: 'cpu.mixed_instructions',
    run: () =>
      workloadRun(BareMachine.longMode(buildProgram('workload'), 'flat'), expectedWorkloadOutput())
        .result.instructions,
  },
  {
    name: 'cpu.sse_scan_mips',
    run: () =>
      mips(SSE_SCAN, 10_000_000, (cpu) => {
        cpu.setReg64(6, BigInt(BASE + 0x1000));
        cpu.simd.setXmm(0, 0x01010101010101010101010101010101n);
      }),
  },
  {
    name: 'cpu.sse_fp_mips',
    run: () =>
      mips(SSE_FP, 10_000_000, (cpu) => {
        cpu.setReg64(1, 0x7fff_ffffn);
        cpu.simd.setXmm(3, 0x3ff0000000000000n); // 1.0
        cpu.simd.setXmm(4, 0x3fefffffffffffffn); // just below 1.0
      }),
  },
];
