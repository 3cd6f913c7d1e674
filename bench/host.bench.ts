import {
  GHCB,
  type GhcbValidatedField,
  type GuestCpu,
  IOIO_EXITINFO1,
  markValid,
  MSR,
  msrPscRequest,
  msrRegisterGpaRequest,
  PSC_OP,
  SW_EXITCODE,
} from '../src/arch/index.js';
import { createTestCvm } from '../test/support/cvm.js';
import type { Bench } from './harness.js';

// Host figures through a whole CVM: a scripted VMPL2 guest that talks to the host through its
// GHCB exactly as Linux's #VC handler does (clear the valid bitmap, write the input fields, set
// the exit code, VMGEXIT, read the outputs), so each round trip includes the world switch, the
// host's read of the shared page, the valid-bitmap checks, the answer and the write back.

const GHCB_GPA = 0x5_0000;
const BITMAP = GHCB.offset('validBitmap');
const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

/** One prepared exit: the bytes of each field Linux's setters write, and the valid bitmap. */
interface PreparedCall {
  readonly writes: readonly { readonly offset: number; readonly bytes: Uint8Array }[];
  readonly bitmap: Uint8Array;
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function prepare(
  code: number,
  info1: bigint,
  info2: bigint,
  inputs: readonly (readonly [GhcbValidatedField, bigint])[],
): PreparedCall {
  const fields: (readonly [GhcbValidatedField, bigint])[] = [
    ...inputs,
    ['swExitCode', BigInt(code)],
    ['swExitInfo1', info1],
    ['swExitInfo2', info2],
  ];
  const page = new Uint8Array(0x1000);
  for (const [name] of fields) markValid(page, name);
  return {
    writes: fields.map(([name, v]) => ({ offset: GHCB_GPA + GHCB.offset(name), bytes: u64(v) })),
    bitmap: page.slice(BITMAP, BITMAP + 16),
  };
}

/** Linux's `sev_es_ghcb_hv_call` for one exit: its field stores, the bitmap, VMGEXIT. */
function* hvCall(cpu: GuestCpu, call: PreparedCall): Generator<void, void, void> {
  for (const w of call.writes) cpu.write(w.offset, w.bytes, true);
  cpu.write(GHCB_GPA + BITMAP, call.bitmap, true);
  cpu.wrmsr(MSR.GHCB, BigInt(GHCB_GPA));
  yield* cpu.vmgexit();
}

function* setUp(cpu: GuestCpu): Generator<void, void, void> {
  cpu.wrmsr(MSR.GHCB, msrPscRequest(GHCB_GPA / 0x1000, PSC_OP.SHARED));
  yield* cpu.vmgexit();
  cpu.wrmsr(MSR.GHCB, msrRegisterGpaRequest(GHCB_GPA / 0x1000));
  yield* cpu.vmgexit();
  const page = new Uint8Array(0x1000);
  GHCB.set(page, 'protocolVersion', 2);
  cpu.write(GHCB_GPA, page, true);
}

/** Runs `loop(n)` once to warm up and once timed; returns operations per second. */
function perSecond(
  ops: number,
  loop: (cpu: GuestCpu, n: number) => Generator<void, void, void>,
): number {
  let elapsed = 0;
  const cvm = createTestCvm(function* (cpu) {
    yield* setUp(cpu);
    yield* loop(cpu, Math.ceil(ops / 10));
    const t0 = process.hrtime.bigint();
    yield* loop(cpu, ops);
    elapsed = seconds(t0);
  });
  cvm.vm.run();
  if (cvm.vm.termination !== null) throw new Error(cvm.vm.termination.reason);
  return Math.round(ops / elapsed);
}

const outInfo = (reg: number, dir: 'in' | 'out', string = false): bigint =>
  IOIO_EXITINFO1.encode({ port: 0x3f8 + reg, in: dir === 'in', size8: true, string });

export const benches: Bench[] = [
  {
    // CPUID leaf 1 (the one Linux asks the host for, for the APIC ID) through the GHCB.
    name: 'host.ghcb_roundtrips_per_s',
    run() {
      const call = prepare(SW_EXITCODE.CPUID, 0n, 0n, [
        ['rax', 1n],
        ['rcx', 0n],
      ]);
      return perSecond(200_000, function* (cpu, n) {
        for (let i = 0; i < n; i++) {
          yield* hvCall(cpu, call);
          const out = cpu.read(GHCB_GPA + GHCB.offset('rbx'), 8, true);
          if (out[3] !== 0) throw new Error('CPUID leaf 1 EBX[31:24] is not APIC ID 0');
        }
      });
    },
  },
  {
    // Linux's serial console: per byte, poll LSR for THRE, then write THR (two #VC exits).
    name: 'host.uart_bytes_per_s',
    run() {
      const lsr = prepare(SW_EXITCODE.IOIO, outInfo(5, 'in'), 0n, []);
      const thr = prepare(SW_EXITCODE.IOIO, outInfo(0, 'out'), 0n, [['rax', 0x2en]]);
      return perSecond(50_000, function* (cpu, n) {
        for (let i = 0; i < n; i++) {
          yield* hvCall(cpu, lsr);
          yield* hvCall(cpu, thr);
        }
      });
    },
  },
  {
    // OUTSB of a full shared buffer (0x7F0 bytes), as the SVSM's console writes.
    name: 'host.uart_string_bytes_per_s',
    run() {
      const chunk = 0x7f0;
      const rounds = 2_000;
      const outs = prepare(SW_EXITCODE.IOIO, outInfo(0, 'out', true), BigInt(chunk), [
        ['swScratch', BigInt(GHCB_GPA + 0x800)],
      ]);
      const bytesPerS = perSecond(rounds, function* (cpu, n) {
        for (let i = 0; i < n; i++) yield* hvCall(cpu, outs);
      });
      return bytesPerS * chunk;
    },
  },
];
