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
  /** The guest VMSA a HLT parked (next is null then); an interrupt for it wakes the vCPU. */
  halted: number | null;
}

/** 'stopped': every vCPU waits and nothing can wake one; 'powered-off': the guest entered S5. */
export type VmState = 'created' | 'launched' | 'running' | 'terminated' | 'stopped' | 'powered-off';

export interface VmContext {
  readonly machine: Machine;
  readonly state: VmState;
  readonly vcpus: readonly HostVcpu[];
  log(line: string): void;
  serial(bytes: Uint8Array): void;
  byApicId(apicId: number): HostVcpu | undefined;
  /** Makes `vmpl`'s VMSA the next one to run on `hv`; false when none is registered. */
  switchTo(hv: HostVcpu, vmpl: number): boolean;
  terminate(reason: string, byGuest: boolean): void;
  /** The guest turned the machine off (ACPI S5): every vCPU stops, which is not an error. */
  powerOff(reason: string): void;
  guestTerminated(reasonSet: number, reasonCode: number): void;
}
