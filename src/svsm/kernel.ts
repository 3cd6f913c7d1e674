// The SVSM's global state once booted: its address space, allocators, keys and one record per vCPU.
// Small bookkeeping lives in these objects; everything hardware, host or guest could observe lives
// in simulated memory at its spec layout.

import type { Vmpl0 } from '../arch/index.js';
import type { AddressSpace } from './mm/address-space.js';
import type { GuestRequestClient } from './greq/index.js';
import type { BuddyAllocator } from './mm/buddy-allocator.js';
import type { DepositedMemory } from './mm/deposited-memory.js';
import type { GuestMemory } from './mm/guest-memory.js';
import type { GhcbClient } from './sev/ghcb-client.js';

export interface BootInfo {
  readonly svsmBase: number;
  readonly svsmSize: number;
  readonly memorySize: number;
  readonly secretsGpa: number;
  readonly cpuidGpa: number;
  readonly guestSecretsGpa: number;
  readonly guestRip: bigint;
  readonly guestRsi: bigint;
  readonly vcpuCount: number;
  readonly guestVmpl: number;
}

/** What the SVSM knows about one vCPU. */
export interface PerCpu {
  readonly index: number;
  /** APIC ID of the vCPU (the host numbers them 0..vcpuCount-1). */
  readonly apicId: number;
  ghcb: GhcbClient | null;
  /** This vCPU's own VMPL0 VMSA (SVSM memory); null on the BSP, whose VMSA the launch made. */
  svsmVmsa: number | null;
  /**
   * The guest VMSA this vCPU runs (a page of the SVSM region for the BSP's first one, a guest
   * page after CREATE_VCPU), or null while it has none.
   */
  guestVmsa: number | null;
  /** This vCPU's calling area (a guest page), or null. */
  caa: number | null;
  /** Whether this vCPU finished its own initialisation. */
  online: boolean;
}

/** A registered guest VMSA (COCONUT's PERCPU_VMSAS entry). */
export interface RegisteredVmsa {
  /** Index of the vCPU it belongs to. */
  readonly cpuIndex: number;
  /** A guest page given by CREATE_VCPU (true), or a page of the SVSM region (false). */
  readonly guestOwned: boolean;
}

export interface Kernel {
  readonly boot: BootInfo;
  readonly space: AddressSpace;
  readonly pages: BuddyAllocator;
  readonly guest: GuestMemory;
  /** Guest pages deposited with DEPOSIT_MEM (protocols/core.ts), the SVSM's second page pool. */
  readonly deposited: DepositedMemory;
  readonly cpus: PerCpu[];
  /** Every page that is a guest VMSA (RMP VMSA bit set for the guest's VMPL), by GPA. */
  readonly vmsas: Map<number, RegisteredVmsa>;
  /** SEV_FEATURES of the SVSM's own VMSA; guests must use the same. */
  readonly sevFeatures: bigint;
  /** VMPCK0, kept only by the SVSM; wiped on panic. */
  vmpck0: Uint8Array;
  /** Last sequence number used on VMPCK0. */
  vmpck0Seqno: bigint;
  /** The guest-request client over VMPCK0, made on first use (protocols/attest.ts). */
  greq?: GuestRequestClient;
  /** Lines logged so far (also sent to the serial port). */
  log(cpu: Vmpl0, text: string): void;
}

let kernel: Kernel | null = null;

export function currentKernel(): Kernel | null {
  return kernel;
}

export function setKernel(k: Kernel): void {
  kernel = k;
}
