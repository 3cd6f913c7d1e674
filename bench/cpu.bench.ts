// x86 interpreter throughput in millions of guest instructions per second.
// cpu.loop_mips: the tightest loop (add, dec, jnz on registers).
// cpu.mixed_mips: a C-like inner loop (byte loads and stores, 64-bit multiply, compare and
// branch) with a call/push/pop/ret per outer iteration. Both at CPL 0 on flat memory, with the
// block JIT on (the default). cpu.jit_vs_interp: cpu.mixed's workload with the JIT over without it,
// measured in the same run. cpu.sse_scan_mips / cpu.sse_fp_mips: an SSE2 string scan and a
// scalar-double loop.

import { Cpu } from '../src/hw/cpu/cpu.js';
import { Interpreter, STOP_BUDGET } from '../src/hw/cpu/interpreter.js';
import { FlatTranslator } from '../src/hw/cpu/translator.js';
import type { Bench } from './harness.js';

const BASE = 0x40_0000;

/** Runs `code` for `instructions` guest instructions and returns MIPS (best of `rounds`). */
function mips(
  code: string,
  instructions: number,
  setup: (cpu: Cpu) => void,
  rounds = 3,
  jit = true,
): number {
  let best = 0;
  for (let k = 0; k < rounds; k++) {
    const mem = new Uint8Array(0x10000);
    mem.set(Uint8Array.from(Buffer.from(code, 'hex')));
    const cpu = new Cpu(mem, new FlatTranslator(BASE, 0x10000));
    cpu.rip = BigInt(BASE);
    cpu.setReg64(4, BigInt(BASE + 0x8000));
    setup(cpu);
    const interp = new Interpreter(cpu, { jit });
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

// outer: xor edx,edx; inner: movzx eax,byte [rsi+rdx]; xor r8,rax; imul r8,r9;
// mov [rsi+rdx+0x100],r8b; add edx,1; cmp edx,0x100; jb inner; call fn; dec rcx; jnz outer; hlt
// fn: push rbx; mov rbx,r8; shr rbx,7; add r10,rbx; pop rbx; ret
const MIXED =
  '31d20fb604164931c04d0fafc1448884160001000083c20181fa0001000072e2e80600000048ffc975d6f4534c89c348c1eb074901da5bc3';

// strlen-style SSE2 scan: l: movdqa xmm1,[rsi+rdx]; pcmpeqb xmm1,xmm0; pmovmskb eax,xmm1;
// add rdx,16; and edx,0xff0; test eax,eax; jz l (no match in a zero buffer: runs to the budget)
const SSE_SCAN = '660f6f0c16660f74c8660fd7c14883c21081e2f00f000085c074e5';
// scalar double arithmetic: l: addsd xmm2,xmm3; mulsd xmm2,xmm4; dec rcx; jnz l
const SSE_FP = 'f20f58d3f20f59d448ffc975f3';

function mixedSetup(cpu: Cpu): void {
  cpu.setReg64(1, 0x7fff_ffffn); // outer iterations
  cpu.setReg64(6, BigInt(BASE + 0x1000)); // buffer
  cpu.setReg64(9, 0x100_0000_01b3n); // FNV prime
}

export const benches: Bench[] = [
  {
    name: 'cpu.loop_mips',
    run: () => mips(LOOP, 30_000_000, () => {}),
  },
  {
    name: 'cpu.mixed_mips',
    run: () => mips(MIXED, 20_000_000, mixedSetup),
  },
  {
    name: 'cpu.jit_vs_interp',
    run: () => mips(MIXED, 20_000_000, mixedSetup) / mips(MIXED, 5_000_000, mixedSetup, 3, false),
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
