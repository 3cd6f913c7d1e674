// The AP-management NAE events besides AP creation (GHCB spec v2, KVM `sev_handle_vmgexit`):
// - AP_HLT_LOOP (0x8000_0004): an AP parks itself (CPU offline). The vCPU waits, as with the MSR
//   protocol's AP reset hold, until an AP creation gives it a VMSA to run; KVM answers the event
//   with EXITINFO2 = 1 when it wakes the vCPU, and since nothing runs on it in between, the answer
//   is written now.
// - AP_JUMP_TABLE (0x8000_0005): EXITINFO1 0 stores EXITINFO2 as the VM's AP jump table address,
//   1 returns it in EXITINFO2, anything else is INVALID_INPUT. The host never dereferences it,
//   so any value is kept as given, as KVM keeps it.
// - GET_APIC_IDS (0x8000_0017): RAX (required) = the number of guest pages at EXITINFO1. The
//   list is {u32 count; u32 apic_ids[count]}. Too few pages: RAX = the pages needed (marked
//   valid) and success, without writing anything, so the guest retries with a bigger buffer.
//   Otherwise the GPA must be page aligned and the list's bytes shared (the host cannot write
//   private memory), else INVALID_INPUT.

import { GHCB_ERR } from '../../arch/index.js';
import type { ExitDecision } from '../../hw/engine.js';
import { PAGE_SIZE } from '../../hw/memory.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

export const AP_JUMP_TABLE_OP = { SET: 0n, GET: 1n } as const;

export function apHltLoopExit(x: GhcbExit): ExitDecision {
  x.ok(1n);
  x.hv.next = null;
  x.vm.log(`vCPU ${x.hv.vcpu.apicId} VMPL${x.from.vmpl} parked (AP_HLT_LOOP)`);
  return 'suspend';
}

export function apJumpTableExit(x: GhcbExit): void {
  const op = x.get('swExitInfo1');
  const platform = platformOf(x.vm);
  if (op === AP_JUMP_TABLE_OP.SET) {
    platform.apJumpTable = x.get('swExitInfo2');
    x.ok(0n);
  } else if (op === AP_JUMP_TABLE_OP.GET) {
    x.ok(platform.apJumpTable);
  } else {
    x.error(GHCB_ERR.INVALID_INPUT);
  }
}

/** Bytes of the APIC ID list for `count` vCPUs. */
export function apicIdListSize(count: number): number {
  return 4 + 4 * count;
}

export function getApicIdsExit(x: GhcbExit): void {
  if (x.missing('rax')) return;
  const pages = x.get('rax');
  const ids = x.vm.machine.vcpus.map((v) => v.apicId);
  const size = apicIdListSize(ids.length);
  if (pages * BigInt(PAGE_SIZE) < BigInt(size)) {
    x.output('rax', BigInt(Math.ceil(size / PAGE_SIZE)));
    x.ok(0n);
    return;
  }
  const gpa = x.get('swExitInfo1');
  const hvm = x.vm.machine.hypervisorMemory;
  if (
    gpa % BigInt(PAGE_SIZE) !== 0n ||
    gpa + BigInt(size) > BigInt(hvm.size) ||
    !hvm.isShared(Number(gpa), size)
  ) {
    x.error(GHCB_ERR.INVALID_INPUT);
    return;
  }
  const list = new Uint8Array(size);
  const view = new DataView(list.buffer);
  view.setUint32(0, ids.length, true);
  ids.forEach((id, i) => view.setUint32(4 + 4 * i, id, true));
  hvm.write(Number(gpa), list);
  x.ok(0n);
}
