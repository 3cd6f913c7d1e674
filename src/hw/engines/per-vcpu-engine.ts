// An engine that hands each vCPU to the engine chosen for it: e.g. VMPL2 of vCPU 1 on the x86
// interpreter while vCPU 0's VMPL2 is a scripted program (the machine keeps one engine per VMPL).

import type { Engine, ExitPort } from '../engine.js';
import type { Machine } from '../machine.js';
import type { Vcpu } from '../vcpu.js';

export class PerVcpuEngine implements Engine {
  constructor(
    private readonly machine: Machine,
    /** The engine for the vCPU with this index. */
    private readonly engineFor: (vcpuIndex: number) => Engine,
  ) {}

  run(vcpu: Vcpu, exits: ExitPort): void {
    this.engineFor(this.machine.vcpus.indexOf(vcpu)).run(vcpu, exits);
  }
}
