// A scripted VMPL2 guest that talks to the host through a GHCB page, as Linux does for its own
// exits: it makes the GHCB page (and the page after it) shared, registers it, and makes exits with
// chosen fields marked valid.
import { expect } from 'vitest';
import {
  clearValid,
  GHCB,
  type GhcbValidatedField,
  type GuestCpu,
  isValid,
  markValid,
  MSR,
  msrPscRequest,
  msrRegisterGpaRequest,
  PSC_OP,
} from '../../src/arch/index.js';
import { createTestCvm, type TestCvm, type TestCvmOptions } from './cvm.js';

export const GHCB_GPA = 0x5_0000;
/** A shared page after the GHCB, for exits that take a buffer outside it. */
export const OUTSIDE_GPA = 0x5_1000;

export type Inputs = Partial<Record<GhcbValidatedField, bigint | number>>;

export interface Answer {
  readonly info1: bigint;
  readonly info2: bigint;
  readonly page: Uint8Array;
  /** A returned register, or undefined if the host did not mark it valid. */
  reg(name: GhcbValidatedField): bigint | undefined;
}

/** One GHCB exit: exit code, EXITINFO1/2 and the given fields marked valid. */
export function* ghcbExit(
  cpu: GuestCpu,
  code: number,
  info1: bigint,
  info2: bigint,
  inputs: Inputs = {},
  /** Bytes for the shared buffer at offset `at` of the GHCB page. */
  buffer?: { readonly at: number; readonly bytes: Uint8Array },
): Generator<void, Answer, void> {
  const page = new Uint8Array(0x1000);
  const g = GHCB.on(page);
  g.set('protocolVersion', 2);
  clearValid(page);
  g.set('swExitCode', BigInt(code)).set('swExitInfo1', info1).set('swExitInfo2', info2);
  for (const f of ['swExitCode', 'swExitInfo1', 'swExitInfo2'] as const) markValid(page, f);
  for (const [name, value] of Object.entries(inputs) as [GhcbValidatedField, bigint | number][]) {
    if (name === 'cpl') GHCB.set(page, 'cpl', Number(value));
    else GHCB.set(page, name, BigInt(value) as never);
    markValid(page, name);
  }
  if (buffer !== undefined) page.set(buffer.bytes, buffer.at);
  cpu.write(GHCB_GPA, page, true);
  cpu.wrmsr(MSR.GHCB, BigInt(GHCB_GPA));
  yield* cpu.vmgexit();
  const after = cpu.read(GHCB_GPA, 0x1000, true);
  return {
    info1: GHCB.get(after, 'swExitInfo1'),
    info2: GHCB.get(after, 'swExitInfo2'),
    page: after,
    reg: (name) => (isValid(after, name) ? BigInt(GHCB.get(after, name)) : undefined),
  };
}

/** Makes the GHCB page and OUTSIDE_GPA shared and registers the GHCB. */
export function* setUpGhcb(cpu: GuestCpu): Generator<void, void, void> {
  for (const gpa of [GHCB_GPA, OUTSIDE_GPA]) {
    cpu.wrmsr(MSR.GHCB, msrPscRequest(gpa / 0x1000, PSC_OP.SHARED));
    yield* cpu.vmgexit();
  }
  cpu.wrmsr(MSR.GHCB, msrRegisterGpaRequest(GHCB_GPA / 0x1000));
  yield* cpu.vmgexit();
}

/** Runs `body` as the VMPL2 guest of a fresh CVM (GHCB set up) and returns the CVM after it. */
export function runGhcbGuest(
  body: (cpu: GuestCpu, cvm: TestCvm) => Generator<void, void, void>,
  o: TestCvmOptions = {},
  expectClean = true,
): TestCvm {
  const cvm: TestCvm = createTestCvm(function* (cpu) {
    yield* setUpGhcb(cpu);
    yield* body(cpu, cvm);
  }, o);
  cvm.vm.run();
  if (expectClean) expect(cvm.vm.termination).toBeNull();
  return cvm;
}
