// The SVSM image's entry point. The machine calls it each time a vCPU enters VMPL0: the first
// entry of the BSP boots the SVSM; every later entry serves the guest's pending call and hands the
// vCPU back to the guest. Any error escaping here is a panic.

import type { Vmpl0 } from '../arch/index.js';
import { bootBsp } from './boot/boot.js';
import { currentKernel } from './kernel.js';
import { panic } from './panic.js';
import { restoreGhcbMsr, runGuest, serviceGuest } from './requests/request-loop.js';

export function svsmEntry(cpu: Vmpl0): void {
  try {
    let k = currentKernel();
    if (k === null) {
      k = bootBsp(cpu);
      runGuest(k, cpu);
      return;
    }
    const pc = k.cpus[cpu.vcpuIndex];
    if (pc === undefined) throw new Error(`vCPU ${cpu.vcpuIndex} is not known to the SVSM`);
    restoreGhcbMsr(pc, cpu);
    serviceGuest(k, cpu, pc);
    runGuest(k, cpu);
  } catch (e) {
    panic(cpu, e);
  }
}
