import { SvsmProtocol } from '../src/arch/index.js';
import { SvsmClient } from '../src/guest/svsm-client.js';
import { createTestCvm } from '../test/support/cvm.js';
import type { Bench } from './harness.js';

// SVSM figures through a whole CVM: a scripted guest at VMPL2 making calls exactly as Linux does
// (CAA, registers, SNP_RUN_VMPL through the GHCB MSR), the host switching VMSAs, the SVSM serving.

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

export const benches: Bench[] = [
  {
    name: 'svsm.calls_per_s',
    run() {
      // Steady state: warm the JIT with 5000 calls, then the best of 4 rounds of 50,000 (as the
      // other figures take the best of several runs, to stay clear of GC pauses and other load).
      const calls = 50_000;
      let best = Infinity;
      const cvm = createTestCvm(function* (cpu) {
        const svsm = new SvsmClient(
          cpu,
          SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))),
        );
        for (let i = 0; i < 5000; i++) yield* svsm.queryProtocol(SvsmProtocol.CORE, 1);
        for (let round = 0; round < 4; round++) {
          const t0 = process.hrtime.bigint();
          for (let i = 0; i < calls; i++) yield* svsm.queryProtocol(SvsmProtocol.CORE, 1);
          best = Math.min(best, seconds(t0));
        }
      });
      cvm.vm.run();
      return Math.round(calls / best);
    },
  },
  {
    name: 'svsm.pvalidate_4k_pages_per_s',
    run() {
      let pages = 0;
      let elapsed = 0;
      const cvm = createTestCvm(function* (cpu) {
        const svsm = new SvsmClient(
          cpu,
          SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))),
        );
        // 4 KiB entries over [64 KiB, 2 MiB): that region's RMP entries are 4 KiB ones (the SVSM
        // split it to give the guest its calling area). Validate, rescind, and again.
        const list = (
          validate: boolean,
        ): { pageSize: number; validate: boolean; ignoreCf: boolean; gfn: number }[] =>
          Array.from({ length: 480 }, (_, i) => ({
            pageSize: 0,
            validate,
            ignoreCf: false,
            gfn: 0x10 + i,
          }));
        const t0 = process.hrtime.bigint();
        for (let round = 0; round < 10; round++) {
          for (const validate of [true, false]) {
            const r = yield* svsm.pvalidate(list(validate));
            if (r.rax !== 0n) throw new Error(`PVALIDATE failed: 0x${r.rax.toString(16)}`);
            pages += r.done;
          }
        }
        elapsed = seconds(t0);
      });
      cvm.vm.run();
      if (cvm.vm.termination !== null) throw new Error(cvm.vm.termination.reason);
      return Math.round(pages / elapsed);
    },
  },
  {
    name: 'svsm.validate_2gib_s',
    run() {
      let elapsed = 0;
      let done = 0;
      const cvm = createTestCvm(
        function* (cpu) {
          const svsm = new SvsmClient(
            cpu,
            SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))),
          );
          const first = 0x2000_0000; // 512 MiB .. 2.5 GiB
          const t0 = process.hrtime.bigint();
          for (let gpa = first; gpa < first + 2 ** 31; gpa += 500 * 0x20_0000) {
            const n = Math.min(500, (first + 2 ** 31 - gpa) / 0x20_0000);
            const entries = Array.from({ length: n }, (_, i) => ({
              pageSize: 1,
              validate: true,
              ignoreCf: false,
              gfn: (gpa + i * 0x20_0000) / 0x1000,
            }));
            done += (yield* svsm.pvalidate(entries)).done;
          }
          elapsed = seconds(t0);
        },
        { memoryBytes: 3 * 2 ** 30 },
      );
      cvm.vm.run();
      if (done !== 1024) throw new Error(`validated ${done} of 1024 2 MiB pages`);
      return elapsed;
    },
  },
  {
    name: 'svsm.idle_footprint_mib',
    run() {
      // What the SVSM reports on its console once booted and idle (image, page tables, what its
      // allocator handed out), against the 16 MiB region it is given.
      const cvm = createTestCvm(function* () {});
      cvm.vm.run();
      const line = cvm.serial.find((l) => l.includes('KiB in use'));
      const kib = line === undefined ? NaN : Number(/memory: (\d+) KiB/.exec(line)?.[1]);
      if (!Number.isFinite(kib)) throw new Error('the SVSM did not report its memory use');
      return Math.round((kib / 1024) * 100) / 100;
    },
  },
];
