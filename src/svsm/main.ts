// The SVSM image's entry point. The machine calls it each time a vCPU enters VMPL0: the first
// entry of the BSP boots the SVSM and starts the APs; the first entry of an AP sets up its own
// state; every later entry serves the guest's pending call and hands the vCPU back to the guest
// (or parks it while it has no guest VMSA). Any error escaping here is a panic.

import type { Vmpl0 } from '../arch/index.js';
import { apFirstEntry, startAps } from './boot/ap.js';
import { bootBsp } from './boot/boot.js';
import { currentKernel } from './kernel.js';
import { panic } from './panic.js';
import { restoreGhcbMsr, runGuest, serviceGuest } from './requests/request-loop.js';

export function svsmEntry(cpu: Vmpl0): void {
  try {
    let k = currentKernel();
    if (k === null) {
      k = bootBsp(cpu);
      startAps(k, cpu);
      runGuest(k, cpu);
      return;
    }
    const pc = k.cpus[cpu.vcpuIndex];
    if (pc === undefined) throw new Error(`vCPU ${cpu.vcpuIndex} is not known to the SVSM`);
    if (!pc.online) {
      apFirstEntry(k, cpu, pc);
    } else {
      restoreGhcbMsr(pc, cpu);
      serviceGuest(k, cpu, pc);
    }
    runGuest(k, cpu);
  } catch (e) {
    panic(cpu, e);
  }
}
