// What the exit handlers may use of the VM (vm.ts implements it), so that handlers and the VM do
// not import each other.

import type { Machine } from '../hw/machine.js';
import type { Vcpu } from '../hw/vcpu.js';

/** What the host keeps per vCPU. */
export interface HostVcpu {
  readonly vcpu: Vcpu;
  /** VMSA GPA registered for each VMPL, or null. */
  readonly vmsas: (number | null)[];
  /** GHCB GPA registered by each VMPL through the MSR protocol, or null. */
  readonly ghcbs: (number | null)[];
  /** The VMSA to run next; null while the vCPU waits (reset hold, halt, not started). */
  next: number | null;
}

export type VmState = 'created' | 'launched' | 'running' | 'terminated' | 'stopped';

export interface VmContext {
  readonly machine: Machine;
  readonly state: VmState;
  log(line: string): void;
  serial(bytes: Uint8Array): void;
  byApicId(apicId: number): HostVcpu | undefined;
  /** Makes `vmpl`'s VMSA the next one to run on `hv`; false when none is registered. */
  switchTo(hv: HostVcpu, vmpl: number): boolean;
  terminate(reason: string, byGuest: boolean): void;
  guestTerminated(reasonSet: number, reasonCode: number): void;
}
