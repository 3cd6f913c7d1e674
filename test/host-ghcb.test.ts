// The host's answers to a guest that talks to it directly through the GHCB (as Linux does for its
// own exits): the MSR protocol, GHCB registration, and hostile GHCB contents, each of which gets
// the protocol's documented answer and changes nothing else.
import { describe, expect, it } from 'vitest';
import {
  clearValid,
  decodeMsrProtocol,
  GHCB,
  GHCB_HV_FEATURES,
  markValid,
  MSR,
  msrCpuidRequest,
  msrHvFeaturesRequest,
  msrPscRequest,
  msrRegisterGpaRequest,
  msrSevInfoRequest,
  PSC_OP,
  SW_EXITCODE,
  type GuestCpu,
} from '../src/arch/index.js';
import { createTestCvm } from './support/cvm.js';

const GHCB_GPA = 0x5_0000;

function* msr(
  cpu: GuestCpu,
  value: bigint,
): Generator<void, ReturnType<typeof decodeMsrProtocol>, void> {
  cpu.wrmsr(MSR.GHCB, value);
  yield* cpu.vmgexit();
  return decodeMsrProtocol(cpu.rdmsr(MSR.GHCB));
}

/** A GHCB exit: writes the page (shared), exits, returns EXITINFO1/2 and the page after. */
function* ghcbExit(
  cpu: GuestCpu,
  fill: (page: Uint8Array) => void,
): Generator<void, { info1: bigint; info2: bigint; page: Uint8Array }, void> {
  const page = new Uint8Array(0x1000);
  GHCB.on(page).set('protocolVersion', 2);
  clearValid(page);
  fill(page);
  cpu.write(GHCB_GPA, page, true);
  cpu.wrmsr(MSR.GHCB, BigInt(GHCB_GPA));
  yield* cpu.vmgexit();
  const after = cpu.read(GHCB_GPA, 0x1000, true);
  return {
    info1: GHCB.get(after, 'swExitInfo1'),
    info2: GHCB.get(after, 'swExitInfo2'),
    page: after,
  };
}

function exitWith(code: number, info1 = 0n, info2 = 0n): (p: Uint8Array) => void {
  return (p) => {
    GHCB.on(p).set('swExitCode', BigInt(code)).set('swExitInfo1', info1).set('swExitInfo2', info2);
    for (const f of ['swExitCode', 'swExitInfo1', 'swExitInfo2'] as const) markValid(p, f);
  };
}

describe('the host answers a guest that talks to it directly', () => {
  it('speaks the MSR protocol and registers a shared GHCB', () => {
    const seen: unknown[] = [];
    const cvm = createTestCvm(function* (cpu) {
      seen.push(yield* msr(cpu, msrSevInfoRequest()));
      const features = yield* msr(cpu, msrHvFeaturesRequest());
      seen.push(
        features.kind === 'hvFeaturesResponse' && GHCB_HV_FEATURES.describe(features.features),
      );
      seen.push(yield* msr(cpu, msrCpuidRequest(0x8000_001f, 1)));
      seen.push(yield* msr(cpu, msrCpuidRequest(1, 2)));
      // A private page cannot be a GHCB; once shared it can.
      seen.push(yield* msr(cpu, msrRegisterGpaRequest(GHCB_GPA / 0x1000)));
      seen.push(yield* msr(cpu, msrPscRequest(GHCB_GPA / 0x1000, PSC_OP.SHARED)));
      seen.push(yield* msr(cpu, msrRegisterGpaRequest(GHCB_GPA / 0x1000)));
    });
    cvm.vm.run();
    expect(cvm.vm.termination).toBeNull();
    expect(seen[0]).toEqual({
      kind: 'sevInfoResponse',
      maxProtocol: 2,
      minProtocol: 2,
      cBitPosition: 51,
    });
    expect(seen[1]).toBe('snp|apCreation|apicIdList|multiVmpl');
    const cpuid = seen[2] as { kind: string; value: number };
    expect(cpuid.kind).toBe('cpuidResponse');
    expect(cpuid.value & 0x3f).toBe(51);
    // The virtual CPU hides XSAVE (leaf 1 ECX bit 26), through the MSR protocol as everywhere.
    const leaf1 = seen[3] as { kind: string; value: number };
    expect(leaf1.kind).toBe('cpuidResponse');
    expect((leaf1.value >>> 26) & 1).toBe(0);
    expect(seen[4]).toMatchObject({ kind: 'registerGpaResponse', gfn: 0xf_ffff_ffff_ffff });
    expect(seen[5]).toEqual({ kind: 'pscResponse', error: 0 });
    expect(seen[6]).toEqual({ kind: 'registerGpaResponse', gfn: GHCB_GPA / 0x1000 });
  });

  it('answers hostile GHCB contents with the protocol errors and changes nothing', () => {
    const answers: { info1: bigint; info2: bigint }[] = [];
    let rmpBefore: Uint32Array | null = null;
    let rmpAfter: Uint32Array | null = null;
    const cvm = createTestCvm(function* (cpu) {
      yield* msr(cpu, msrPscRequest(GHCB_GPA / 0x1000, PSC_OP.SHARED));
      yield* msr(cpu, msrRegisterGpaRequest(GHCB_GPA / 0x1000));
      rmpBefore = Uint32Array.from(snapshot!());
      // SW_EXITINFO1/2 not marked valid: MISSING_INPUT.
      answers.push(
        yield* ghcbExit(cpu, (p) => {
          GHCB.set(p, 'swExitCode', BigInt(SW_EXITCODE.HV_FEATURES));
          markValid(p, 'swExitCode');
        }),
      );
      // A GHCB usage other than 0: INVALID_USAGE.
      answers.push(
        yield* ghcbExit(cpu, (p) => {
          exitWith(SW_EXITCODE.HV_FEATURES)(p);
          GHCB.set(p, 'ghcbUsage', 7);
        }),
      );
      // An exit code nobody defined: INVALID_EVENT, as KVM answers it.
      answers.push(yield* ghcbExit(cpu, exitWith(0x8000_0099)));
      // A page-state change beyond RAM: the entry is refused, cur_entry stays at it.
      answers.push(
        yield* ghcbExit(cpu, (p) => {
          exitWith(SW_EXITCODE.PSC)(p);
          GHCB.set(p, 'swScratch', BigInt(GHCB_GPA + 0x800));
          markValid(p, 'swScratch');
          const v = new DataView(p.buffer, 0x800);
          v.setUint16(0, 0, true);
          v.setUint16(2, 0, true);
          v.setBigUint64(8, (0x1_0000_0n << 12n) | (2n << 52n), true);
        }),
      );
      // A guest request whose request page is private: INVALID_INPUT.
      answers.push(
        yield* ghcbExit(cpu, exitWith(SW_EXITCODE.GUEST_REQUEST, 0x6_0000n, BigInt(GHCB_GPA))),
      );
      rmpAfter = Uint32Array.from(snapshot!());
    });
    const snapshot = (): Uint32Array => cvm.machine.rmp.entries;
    cvm.vm.run();
    expect(cvm.vm.termination).toBeNull();
    expect(answers.map((a) => [a.info1, a.info2])).toEqual([
      [2n, 4n],
      [2n, 2n],
      [2n, 6n],
      [0n, (1n << 32n) | 2n],
      [2n, 5n],
    ]);
    expect(rmpAfter).toEqual(rmpBefore);
  });

  it('ends the VM when the GHCB it is given is a private page', () => {
    const cvm = createTestCvm(function* (cpu) {
      cpu.wrmsr(MSR.GHCB, 0x7_0000n);
      yield* cpu.vmgexit();
    });
    cvm.vm.run();
    expect(cvm.vm.termination?.reason).toMatch(/not a shared page/);
  });
});
