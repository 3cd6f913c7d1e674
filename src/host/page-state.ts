// Page-state changes a guest requests (GHCB MSR protocol or the PSC NAE event): the hypervisor
// makes a page private (assigned to the guest, not validated) or shared (hypervisor-owned) with
// RMPUPDATE, or splits/joins a 2 MiB entry.

import { PSC_OP } from '../arch/index.js';
import { HUGE_PAGE_SIZE, PAGE_SIZE } from '../hw/memory.js';
import type { VmContext } from './vm-context.js';

/** 0 on success; otherwise a non-zero error (the RMPUPDATE/PSMASH return code, or 1 for bad input). */
export function changePageState(
  vm: VmContext,
  gpa: number,
  size2M: boolean,
  operation: number,
): number {
  const rmp = vm.machine.rmp;
  const size = size2M ? HUGE_PAGE_SIZE : PAGE_SIZE;
  if (!Number.isSafeInteger(gpa) || gpa % size !== 0 || gpa + size > vm.machine.memorySize)
    return 1;
  switch (operation) {
    case PSC_OP.PRIVATE:
      return rmp.rmpupdate(gpa, size2M, true);
    case PSC_OP.SHARED: {
      const r = rmp.rmpupdate(gpa, size2M, false);
      // A page leaving the guest is scrubbed, so nothing private ever becomes readable.
      if (r === 0) vm.machine.hypervisorMemory.fill(gpa, size, 0);
      return r;
    }
    case PSC_OP.PSMASH:
      return rmp.psmash(gpa);
    case PSC_OP.UNSMASH:
      // Joining 512 entries back into one 2 MiB entry is not implemented.
      return 1;
    default:
      return 1;
  }
}
