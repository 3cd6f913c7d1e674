// What runs the code of one VMPL on a vCPU. The host (via the machine) gets every exit
// synchronously and answers whether this VMPL goes on running (the exit was handled and the same
// VMSA is resumed) or is suspended (the host will run another VMSA, hold the vCPU, or stop).

import type { Vcpu, VmsaRunning } from './vcpu.js';

export interface VmExit {
  readonly exitCode: bigint;
  readonly exitInfo1: bigint;
  readonly exitInfo2: bigint;
}

/** The host's decision after an exit. */
export type ExitDecision = 'resume' | 'suspend';

/**
 * Installed by the host: handles an exit of `vcpu` from the VMSA `from` (whose state is already
 * saved in its page).
 */
export type ExitHandler = (vcpu: Vcpu, exit: VmExit, from: VmsaRunning) => ExitDecision;

export interface Engine {
  /**
   * Runs the VMPL that `vcpu` has just VMRUN until it is suspended; every exit goes through
   * `exits.handle`. On return the vCPU is not running.
   */
  run(vcpu: Vcpu, exits: ExitPort): void;
}

/**
 * How an engine reports an exit: saves the running state to the VMSA page (#VMEXIT), lets the
 * host decide, and on 'resume' VMRUNs the same VMSA again.
 */
export interface ExitPort {
  exit(vcpu: Vcpu, exit: VmExit): ExitDecision;
}
