// VMGEXITs with a GHCB page (GHCB spec v2 "NAE events"): the host reads the shared page, checks
// the valid bitmap as KVM does (missing inputs refused, stray bits ignored), carries out the
// request and writes its answer back into SW_EXITINFO1/2 and the registers it returns.

import {
  AP_CREATION_EXITINFO1,
  AP_CREATION_OP,
  CERT_GUID,
  encodeCertTable,
  GHCB,
  GHCB_ERR,
  GHCB_USAGE_STANDARD,
  PSC_ENTRY,
  PSC_HEADER,
  PSC_MAX_ENTRIES,
  SW_EXITCODE,
  TERM_REQUEST_EXITINFO1,
} from '../arch/index.js';
import type { ExitDecision } from '../hw/engine.js';
import { HostAccessError } from '../hw/hypervisor-memory.js';
import { PAGE_SIZE } from '../hw/memory.js';
import type { VmsaRunning } from '../hw/vcpu.js';
import { apHltLoopExit, apJumpTableExit, getApicIdsExit } from './exits/ap.js';
import { cpuidExit } from './exits/cpuid.js';
import { GhcbExit } from './exits/ghcb-exit.js';
import { ioioExit } from './exits/ioio.js';
import { dr7Exit, rdtscExit, vmmcallExit } from './exits/misc.js';
import { mmioExit } from './exits/mmio.js';
import { msrExit } from './exits/msr.js';
import { HOST_HV_FEATURES } from './ghcb-msr-protocol.js';
import { nmiComplete } from './interrupt-injection.js';
import { changePageState } from './page-state.js';
import type { HostVcpu, VmContext } from './vm-context.js';

export function handleGhcbExit(
  vm: VmContext,
  hv: HostVcpu,
  from: VmsaRunning,
  gpa: number,
): ExitDecision {
  const registered = hv.ghcbs[from.vmpl];
  if (registered !== null && registered !== undefined && registered !== gpa) {
    vm.terminate(
      `vCPU ${hv.vcpu.apicId} used GHCB 0x${gpa.toString(16)}, registered 0x${registered.toString(16)}`,
      false,
    );
    return 'suspend';
  }
  let x: GhcbExit;
  try {
    x = new GhcbExit(vm, hv, from, gpa);
  } catch (e) {
    if (e instanceof HostAccessError) {
      vm.terminate(
        `vCPU ${hv.vcpu.apicId}: the GHCB at 0x${gpa.toString(16)} is not a shared page`,
        false,
      );
      return 'suspend';
    }
    throw e;
  }
  if (x.usage() !== GHCB_USAGE_STANDARD) {
    x.error(GHCB_ERR.INVALID_USAGE);
    return 'resume';
  }
  if (x.missing('swExitCode', 'swExitInfo1', 'swExitInfo2')) return 'resume';
  return dispatch(x, x.exitCode());
}

function dispatch(x: GhcbExit, code: number): ExitDecision {
  const { vm, hv, g } = x;
  switch (code) {
    case SW_EXITCODE.SNP_RUN_VMPL: {
      const target = Number(g.get('swExitInfo1') & 0xffn);
      if (!vm.switchTo(hv, target)) {
        x.error(GHCB_ERR.INVALID_INPUT);
        return 'resume';
      }
      x.ok(0n);
      return 'suspend';
    }
    case SW_EXITCODE.GUEST_REQUEST:
    case SW_EXITCODE.EXT_GUEST_REQUEST:
      guestRequest(x, code === SW_EXITCODE.EXT_GUEST_REQUEST);
      return 'resume';
    case SW_EXITCODE.AP_CREATION:
      return apCreation(x);
    case SW_EXITCODE.AP_HLT_LOOP:
      return apHltLoopExit(x);
    case SW_EXITCODE.AP_JUMP_TABLE:
      apJumpTableExit(x);
      return 'resume';
    case SW_EXITCODE.GET_APIC_IDS:
      getApicIdsExit(x);
      return 'resume';
    case SW_EXITCODE.PSC:
      pageStateChange(x);
      return 'resume';
    case SW_EXITCODE.IOIO:
      ioioExit(x);
      return 'resume';
    case SW_EXITCODE.CPUID:
      cpuidExit(x);
      return 'resume';
    case SW_EXITCODE.MSR:
      msrExit(x);
      return 'resume';
    case SW_EXITCODE.MMIO_READ:
    case SW_EXITCODE.MMIO_WRITE:
      mmioExit(x, code === SW_EXITCODE.MMIO_WRITE);
      return 'resume';
    case SW_EXITCODE.RDTSC:
    case SW_EXITCODE.RDTSCP:
      rdtscExit(x, code === SW_EXITCODE.RDTSCP);
      return 'resume';
    case SW_EXITCODE.READ_DR7:
    case SW_EXITCODE.WRITE_DR7:
      dr7Exit(x, code === SW_EXITCODE.WRITE_DR7);
      return 'resume';
    case SW_EXITCODE.VMMCALL:
      vmmcallExit(x);
      return 'resume';
    case SW_EXITCODE.WBINVD:
      x.ok(0n);
      return 'resume';
    case SW_EXITCODE.NMI_COMPLETE:
      nmiComplete(vm, hv);
      x.ok(0n);
      return 'resume';
    case SW_EXITCODE.HV_FEATURES:
      x.ok(HOST_HV_FEATURES);
      return 'resume';
    case SW_EXITCODE.TERM_REQUEST: {
      const info = g.get('swExitInfo1');
      vm.guestTerminated(
        Number(TERM_REQUEST_EXITINFO1.get(info, 'reasonSet')),
        Number(TERM_REQUEST_EXITINFO1.get(info, 'reasonCode')),
      );
      return 'suspend';
    }
    case SW_EXITCODE.UNSUPPORTED:
      // The guest met a #VC it cannot handle and says so; KVM ends the run (-EINVAL) as well.
      vm.terminate(
        `vCPU ${hv.vcpu.apicId} reported an unsupported event: EXITINFO1 0x${g.get('swExitInfo1').toString(16)}, EXITINFO2 0x${g.get('swExitInfo2').toString(16)}`,
        false,
      );
      return 'suspend';
    default:
      // KVM `sev_es_validate_vmgexit`: an exit code it does not know is GHCB_ERR_INVALID_EVENT.
      x.error(GHCB_ERR.INVALID_EVENT);
      return 'resume';
  }
}

/** SNP_GUEST_REQUEST and its extended form with the certificate table. */
function guestRequest(x: GhcbExit, extended: boolean): void {
  const { vm, g } = x;
  const reqGpa = Number(g.get('swExitInfo1'));
  const rspGpa = Number(g.get('swExitInfo2'));
  const request = x.shared(reqGpa, PAGE_SIZE);
  if (request === null || !vm.machine.hypervisorMemory.isShared(rspGpa)) {
    x.error(GHCB_ERR.INVALID_INPUT);
    return;
  }
  if (extended) {
    if (x.missing('rax', 'rbx')) return;
    const dataGpa = Number(g.get('rax'));
    const pages = Number(g.get('rbx'));
    const table = certificateTable(vm);
    const needed = Math.ceil(table.length / PAGE_SIZE);
    if (pages < needed) {
      // Too small: say how many pages are needed, without running the request.
      g.set('rbx', BigInt(needed));
      x.ok(1n << 32n);
      return;
    }
    if (!vm.machine.hypervisorMemory.isShared(dataGpa, pages * PAGE_SIZE)) {
      x.error(GHCB_ERR.INVALID_INPUT);
      return;
    }
    vm.machine.hypervisorMemory.fill(dataGpa, pages * PAGE_SIZE, 0);
    vm.machine.hypervisorMemory.write(dataGpa, table);
  }
  const r = vm.machine.asp.guestRequest(request);
  if (r.response !== undefined) vm.machine.hypervisorMemory.write(rspGpa, r.response);
  if (r.status !== 0) vm.log(`guest request refused by the firmware: ${r.reason ?? r.status}`);
  x.ok(BigInt(r.status));
}

/** ARK, ASK and VCEK of this machine, as the extended guest request returns them. */
export function certificateTable(vm: VmContext): Uint8Array {
  const id = vm.machine.asp.identity;
  return encodeCertTable([
    { guid: CERT_GUID.ARK, data: id.ark.certificate },
    { guid: CERT_GUID.ASK, data: id.ask.certificate },
    { guid: CERT_GUID.VCEK, data: vm.machine.asp.vcekCertificate() },
  ]);
}

/** AP creation: registers (or forgets) the VMSA of a VMPL of a vCPU, and starts it if idle. */
function apCreation(x: GhcbExit): ExitDecision {
  const { vm, g } = x;
  if (x.missing('rax')) return 'resume';
  const info = g.get('swExitInfo1');
  const op = Number(AP_CREATION_EXITINFO1.get(info, 'request'));
  const vmpl = Number(AP_CREATION_EXITINFO1.get(info, 'vmpl'));
  const apicId = Number(AP_CREATION_EXITINFO1.get(info, 'apicId'));
  const vmsaGpa = Number(g.get('swExitInfo2'));
  const target = vm.byApicId(apicId);
  if (target === undefined || vmpl > 3) {
    x.error(GHCB_ERR.INVALID_INPUT);
    return 'resume';
  }
  if (op === AP_CREATION_OP.DESTROY) {
    if (target.next === target.vmsas[vmpl]) target.next = null;
    target.vmsas[vmpl] = null;
    x.ok(0n);
    return 'resume';
  }
  if (op !== AP_CREATION_OP.CREATE && op !== AP_CREATION_OP.CREATE_ON_INIT) {
    x.error(GHCB_ERR.INVALID_INPUT);
    return 'resume';
  }
  if (vmsaGpa % PAGE_SIZE !== 0 || vmsaGpa + PAGE_SIZE > vm.machine.memorySize) {
    x.error(GHCB_ERR.INVALID_INPUT);
    return 'resume';
  }
  target.vmsas[vmpl] = vmsaGpa;
  // A vCPU that runs nothing starts at the new VMSA; one that runs keeps its current VMPL.
  if (op === AP_CREATION_OP.CREATE && target.next === null && target !== x.hv)
    target.next = vmsaGpa;
  vm.log(`AP creation: vCPU ${apicId} VMPL${vmpl} VMSA 0x${vmsaGpa.toString(16)}`);
  x.ok(0n);
  return 'resume';
}

/** PSC NAE: the descriptor in the scratch area, processed from cur_entry to end_entry. */
function pageStateChange(x: GhcbExit): void {
  const { vm, g } = x;
  if (x.missing('swScratch')) return;
  const scratch = Number(g.get('swScratch'));
  const bufferGpa = x.gpa + GHCB.offset('sharedBuffer');
  if (scratch !== bufferGpa) {
    x.error(GHCB_ERR.INVALID_SCRATCH_AREA);
    return;
  }
  const buf = x.page.subarray(GHCB.offset('sharedBuffer'));
  const hdr = PSC_HEADER.on(buf);
  const end = hdr.get('endEntry');
  let cur = hdr.get('curEntry');
  if (end >= PSC_MAX_ENTRIES || cur > end) {
    x.ok((1n << 32n) | 1n);
    return;
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (; cur <= end; cur++) {
    const entry = view.getBigUint64(8 + cur * 8, true);
    const gfn = Number(PSC_ENTRY.get(entry, 'gfn'));
    const op = Number(PSC_ENTRY.get(entry, 'operation'));
    const big = PSC_ENTRY.has(entry, 'pageSize');
    if (changePageState(vm, gfn * PAGE_SIZE, big, op) !== 0) {
      hdr.set('curEntry', cur);
      x.ok((1n << 32n) | 2n);
      return;
    }
  }
  hdr.set('curEntry', cur);
  x.ok(0n);
}
