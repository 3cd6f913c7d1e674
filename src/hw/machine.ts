// One confidential VM's silicon: memory, RMP, the secure processor, vCPUs with their MMUs, and the
// engine that executes each VMPL. The host drives it through VMRUN and sees exits; it touches
// memory only through `hypervisorMemory`.

import { SecureProcessor } from './asp/secure-processor.js';
import { TscClock } from './clock.js';
import type { ChipIdentity } from './asp/chip-identity.js';
import type { Engine, ExitDecision, ExitHandler, ExitPort, VmExit } from './engine.js';
import { HypervisorMemory } from './hypervisor-memory.js';
import { DEFAULT_MEMORY_BYTES, type PhysicalMemory } from './memory.js';
import { Mmu } from './mmu.js';
import type { RandomSource } from './random.js';
import { Rmp } from './rmp.js';
import { TrackedMemory } from './tracked-memory.js';
import { Vcpu } from './vcpu.js';

export const C_BIT_POSITION = 51;

export interface MachineOptions {
  readonly identity: ChipIdentity;
  readonly random: RandomSource;
  readonly memoryBytes?: number;
  readonly vcpuCount?: number;
}

export class Machine implements ExitPort {
  readonly rmp: Rmp;
  readonly asp: SecureProcessor;
  readonly hypervisorMemory: HypervisorMemory;
  readonly vcpus: readonly Vcpu[];
  readonly mmus: readonly Mmu[];
  readonly random: RandomSource;
  readonly cBit = C_BIT_POSITION;
  /** The TSC: virtual (advanced by engines as they execute) unless `clock.useWallClock()`. */
  readonly clock = new TscClock();
  /** The engine per VMPL (index 0..3); set by whoever assembles the VM. */
  readonly engines: (Engine | undefined)[] = [undefined, undefined, undefined, undefined];
  private handler: ExitHandler | null = null;
  private readonly memory: TrackedMemory;

  constructor(opts: MachineOptions) {
    this.memory = new TrackedMemory(opts.memoryBytes ?? DEFAULT_MEMORY_BYTES);
    this.rmp = new Rmp(this.memory.pageCount);
    this.random = opts.random;
    this.asp = new SecureProcessor({
      identity: opts.identity,
      memory: this.memory,
      rmp: this.rmp,
      random: opts.random,
    });
    this.hypervisorMemory = new HypervisorMemory(this.memory, this.rmp);
    const n = opts.vcpuCount ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64)
      throw new RangeError(`vCPU count ${n} is not in 1..64`);
    this.vcpus = Array.from({ length: n }, (_, i) => new Vcpu(i, this.memory, this.rmp));
    this.mmus = this.vcpus.map(() => new Mmu(this.memory, this.rmp, this.cBit));
  }

  get tsc(): bigint {
    return this.clock.read();
  }

  set tsc(value: bigint) {
    this.clock.set(value);
  }

  get memorySize(): number {
    return this.memory.size;
  }

  /**
   * Guest physical memory. Its `bytes` are for code that does not mark its stores: taking them
   * stops the machine from knowing which pages are still zero (see TrackedMemory).
   */
  physicalMemory(): PhysicalMemory {
    return this.memory;
  }

  /** Guest physical memory for the engines of src/hw, which mark every store they make. */
  trackedMemory(): TrackedMemory {
    return this.memory;
  }

  /** The host installs its exit handler once. */
  setExitHandler(handler: ExitHandler): void {
    this.handler = handler;
  }

  /** VMRUN `vmsaGpa` on `vcpu` and execute it until the host suspends it. */
  run(vcpu: Vcpu, vmsaGpa: number): void {
    const { vmpl } = vcpu.vmrun(vmsaGpa);
    const engine = this.engines[vmpl];
    if (engine === undefined) {
      vcpu.vmexit(0xffff_ffff_ffff_ffffn);
      throw new Error(`no engine executes VMPL${vmpl}`);
    }
    engine.run(vcpu, this);
  }

  /** ExitPort: #VMEXIT, the host's decision, and VMRUN of the same VMSA on 'resume'. */
  exit(vcpu: Vcpu, exit: VmExit): ExitDecision {
    const running = vcpu.running;
    if (running === null) throw new Error(`vCPU ${vcpu.apicId} exits while not running`);
    vcpu.vmexit(exit.exitCode, exit.exitInfo1, exit.exitInfo2);
    if (this.handler === null) throw new Error('no host exit handler is installed');
    const decision = this.handler(vcpu, exit, running);
    if (decision === 'resume') vcpu.vmrun(running.gpa);
    return decision;
  }
}
