// Drives scripted guests step by step across one CVM: each vCPU's program takes steps from its
// queue and, with none left, waits in AP reset hold (GHCB MSR protocol), so the VM stops and a
// test can look at the machine between steps. Running a step wakes the vCPU's guest VMSA the way
// an INIT-SIPI would and runs the VM until every vCPU waits again.
import {
  type GuestCpu,
  type GuestProgram,
  MSR,
  msrApResetHoldRequest,
} from '../../src/arch/index.js';
import type { TestCvm } from './cvm.js';

export type GuestStep = (cpu: GuestCpu) => Generator<void, void, void>;

const GUEST_VMPL = 2;

export class GuestDriver {
  private readonly queues: GuestStep[][];

  constructor(vcpus: number) {
    this.queues = Array.from({ length: vcpus }, () => []);
  }

  /** The program to give createTestCvm. */
  readonly program: GuestProgram = (cpu) => this.loop(cpu);

  private *loop(cpu: GuestCpu): Generator<void, void, void> {
    for (;;) {
      const step = this.queues[cpu.vcpuIndex]!.shift();
      if (step === undefined) {
        const saved = cpu.rdmsr(MSR.GHCB);
        cpu.wrmsr(MSR.GHCB, msrApResetHoldRequest());
        yield* cpu.vmgexit();
        cpu.wrmsr(MSR.GHCB, saved);
        continue;
      }
      yield* step(cpu);
    }
  }

  /** Runs the VM until every vCPU waits (the first call boots the SVSM). */
  settle(cvm: TestCvm): void {
    if (cvm.vm.state === 'terminated') return;
    if (cvm.vm.state === 'stopped') cvm.vm.state = 'running';
    cvm.vm.run(100_000);
  }

  /** Runs `step` on vCPU `index` (if it has a guest VMSA to run), then settles the VM. */
  step(cvm: TestCvm, index: number, step: GuestStep): void {
    this.queues[index]!.push(step);
    const hv = cvm.vm.vcpus[index]!;
    const vmsa = hv.vmsas[GUEST_VMPL] ?? null;
    if (hv.next === null && vmsa !== null) hv.next = vmsa;
    this.settle(cvm);
  }
}

/**
 * Runs `body` as a step on vCPU `index` and returns what it returned; throws when the step did not
 * finish (the vCPU was parked or the VM ended).
 */
export function runOn<T>(
  cvm: TestCvm,
  driver: GuestDriver,
  index: number,
  body: (cpu: GuestCpu) => Generator<void, T, void>,
): T {
  const out: T[] = [];
  driver.step(cvm, index, function* (cpu) {
    out.push(yield* body(cpu));
  });
  if (out.length === 0) {
    throw new Error(
      `the step on vCPU ${index} did not finish (${cvm.vm.termination?.reason ?? cvm.vm.state})`,
    );
  }
  return out[0]!;
}
