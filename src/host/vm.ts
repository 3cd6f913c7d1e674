// The hypervisor's VM: launches a guest through the secure processor, keeps what a KVM keeps per
// vCPU (the VMSA of each VMPL, the registered GHCBs, what to run next), schedules vCPUs, and
// answers their exits. It never sees private memory: only `HypervisorMemory` and the VMSA pages'
// addresses.

import { GHCB_MSR_VALUE, PAGE_TYPE, describeTermination } from '../arch/index.js';
import type { ExitDecision, VmExit } from '../hw/engine.js';
import type { Machine } from '../hw/machine.js';
import { HUGE_PAGE_SIZE, PAGE_SIZE } from '../hw/memory.js';
import {
  INT_STATE,
  SVM_EXIT_INTR,
  SVM_EXIT_VINTR,
  type Vcpu,
  VmrunError,
  type VmsaRunning,
} from '../hw/vcpu.js';
import { platformOf } from './devices/platform.js';
import { handleGhcbExit } from './ghcb-exits.js';
import { canWake, injectBeforeVmrun, interruptVmpl } from './interrupt-injection.js';
import { handleMsrProtocol } from './ghcb-msr-protocol.js';
import { LaunchError, type LaunchPlan } from '../igvm/launch-plan.js';
import type { HostVcpu, VmContext, VmState } from './vm-context.js';

export type { HostVcpu, VmState } from './vm-context.js';

const SVM_EXIT_NPF = 0x400n;
const SVM_EXIT_VMGEXIT = 0x403n;
const SVM_EXIT_HLT = 0x78n;
const SVM_EXIT_SHUTDOWN = 0x7fn;
/** Timer events in a row that the scheduler skips to without waking a vCPU before it gives up. */
const MAX_IDLE_SKIPS = 10_000;
/** GHCBInfo of a GHCB MSR value: zero for a GHCB page's GPA, else an MSR-protocol request. */
const GHCB_MSR_INFO_MASK =
  ((1n << BigInt(GHCB_MSR_VALUE.specs.info.width)) - 1n) << BigInt(GHCB_MSR_VALUE.specs.info.lo);

export interface Termination {
  readonly reason: string;
  /** Whether the guest asked for it (GHCB termination) or the host ended the VM on an error. */
  readonly byGuest: boolean;
}

export interface VmOptions {
  /** Where the host logs what it does (one line each). */
  readonly log?: (line: string) => void;
  /** Bytes the guest writes to the serial port (COM1). */
  readonly serial?: (bytes: Uint8Array) => void;
  /**
   * Map the TSC (and so every timer deadline) to wall-clock time, for interactive use. Default
   * off: time is virtual and two runs with one seed are identical (hw/clock.ts).
   */
  readonly realtime?: boolean;
}

export class Vm implements VmContext {
  readonly vcpus: HostVcpu[];
  state: VmState = 'created';
  termination: Termination | null = null;
  private readonly logSink: (line: string) => void;
  private readonly serialSink: (bytes: Uint8Array) => void;
  /** Counts exits by kind, for the inspector and benchmarks. */
  readonly exitCounts = new Map<string, number>();

  constructor(
    readonly machine: Machine,
    opts: VmOptions = {},
  ) {
    this.logSink = opts.log ?? (() => undefined);
    this.serialSink = opts.serial ?? (() => undefined);
    if (opts.realtime === true) machine.clock.useWallClock();
    this.vcpus = machine.vcpus.map((vcpu) => ({
      vcpu,
      vmsas: [null, null, null, null],
      ghcbs: [null, null, null, null],
      next: null,
      halted: null,
    }));
    machine.setExitHandler((vcpu, exit, from) => this.handleExit(vcpu, exit, from));
  }

  log(line: string): void {
    this.logSink(line);
  }

  serial(bytes: Uint8Array): void {
    this.serialSink(bytes);
  }

  hostVcpu(vcpu: Vcpu): HostVcpu {
    return this.vcpus[this.machine.vcpus.indexOf(vcpu)]!;
  }

  /** Host vCPU by APIC ID (equal to the index here). */
  byApicId(apicId: number): HostVcpu | undefined {
    return this.vcpus.find((v) => v.vcpu.apicId === apicId);
  }

  /**
   * Builds the guest: copies each page's contents in, has the firmware measure it, makes every
   * other page of RAM private (assigned, not validated, as guest_memfd memory starts), and
   * finishes the launch. The BSP will start at the plan's VMSA.
   */
  launch(plan: LaunchPlan): Uint8Array {
    if (this.state !== 'created') throw new LaunchError('the VM was already launched');
    const asp = this.machine.asp;
    const hv = this.machine.hypervisorMemory;
    const start = asp.launchStart(plan.policy);
    if (start.status !== 0)
      throw new LaunchError(`SNP_LAUNCH_START failed: ${start.reason ?? start.status}`);
    for (const page of plan.pages) {
      if (page.data !== undefined) {
        if (page.data.length > PAGE_SIZE)
          throw new LaunchError(`page data at 0x${page.gpa.toString(16)} exceeds 4 KiB`);
        hv.fill(page.gpa, PAGE_SIZE, 0);
        hv.write(page.gpa, page.data);
      }
      const r = asp.launchUpdate(
        page.gpa,
        page.type,
        page.vmplPerms === undefined ? {} : { vmplPerms: page.vmplPerms },
      );
      if (r.status !== 0) {
        throw new LaunchError(
          `SNP_LAUNCH_UPDATE of page 0x${page.gpa.toString(16)} (type ${page.type}) failed: ${r.reason ?? r.status}`,
        );
      }
    }
    if (!plan.pages.some((p) => p.gpa === plan.bspVmsaGpa && p.type === PAGE_TYPE.VMSA)) {
      throw new LaunchError(
        `the BSP VMSA 0x${plan.bspVmsaGpa.toString(16)} is not a launched VMSA page`,
      );
    }
    this.makeRestPrivate();
    const fin = asp.launchFinish(plan.hostData === undefined ? {} : { hostData: plan.hostData });
    if (fin.status !== 0)
      throw new LaunchError(`SNP_LAUNCH_FINISH failed: ${fin.reason ?? fin.status}`);
    const bsp = this.vcpus[0]!;
    bsp.vmsas[0] = plan.bspVmsaGpa;
    bsp.next = plan.bspVmsaGpa;
    this.state = 'launched';
    this.log(`launched: measurement ${Buffer.from(asp.measurement).toString('hex')}`);
    return asp.measurement;
  }

  private makeRestPrivate(): void {
    const rmp = this.machine.rmp;
    const size = this.machine.memorySize;
    for (let region = 0; region < size; region += HUGE_PAGE_SIZE) {
      const first = region / PAGE_SIZE;
      let untouched = true;
      for (let p = first; p < first + HUGE_PAGE_SIZE / PAGE_SIZE; p++) {
        if (rmp.isAssigned(p)) {
          untouched = false;
          break;
        }
      }
      if (untouched) {
        rmp.rmpupdate(region, true, true);
        continue;
      }
      for (let p = first; p < first + HUGE_PAGE_SIZE / PAGE_SIZE; p++) {
        if (!rmp.isAssigned(p)) rmp.rmpupdate(p * PAGE_SIZE, false, true);
      }
    }
  }

  /** The guest powered the machine off; every vCPU stops at its next exit. */
  powerOff(reason: string): void {
    if (this.state === 'terminated' || this.state === 'powered-off') return;
    this.state = 'powered-off';
    for (const v of this.vcpus) {
      v.next = null;
      v.halted = null;
    }
    this.log(`powered off: ${reason}`);
  }

  /** Ends the VM; every vCPU stops at its next exit. */
  terminate(reason: string, byGuest: boolean): void {
    if (this.termination === null) this.termination = { reason, byGuest };
    this.state = 'terminated';
    for (const v of this.vcpus) v.next = null;
    this.log(`terminated: ${reason}`);
  }

  /**
   * Runs vCPUs round robin until every vCPU waits or the VM ends. `maxEntries` bounds the number
   * of VMRUNs (a guard against a guest that never waits).
   */
  run(maxEntries = 10_000_000): VmState {
    this.runSlice(maxEntries);
    if (this.state === 'running') this.terminate(`stopped after ${maxEntries} VMRUNs`, false);
    return this.state;
  }

  /**
   * Runs at most `entries` VMRUNs and returns, 'running' if vCPUs still have work: a caller that
   * must serve other things between slices (a terminal, a socket) calls it in a loop.
   */
  runSlice(entries: number): VmState {
    if (this.state === 'launched') this.state = 'running';
    let done = 0;
    let idleSkips = 0;
    while (this.state === 'running' && done < entries) {
      const runnable = this.wakeHalted();
      if (runnable.length === 0) {
        // Every vCPU waits: skip virtual time to the next timer interrupt a halted vCPU could
        // take; a vCPU halted with interrupts off, or nothing armed, waits for ever.
        const next = this.vcpus.some(
          (v) => v.halted !== null && (v.vcpu.intState & INT_STATE.IF) !== 0,
        )
          ? platformOf(this).pc.nextEvent()
          : null;
        // Timers that fire without waking anyone (an APIC whose TPR blocks them) stop the VM too.
        if (next === null || ++idleSkips > MAX_IDLE_SKIPS) {
          if (idleSkips > MAX_IDLE_SKIPS)
            this.log(`every vCPU waits; ${MAX_IDLE_SKIPS} timer events woke none`);
          this.state = 'stopped';
          break;
        }
        done++;
        if (next > this.machine.tsc) this.machine.tsc = next;
        continue;
      }
      idleSkips = 0;
      for (const v of runnable) {
        if (v.next === null || this.state !== 'running' || done >= entries) continue;
        const gpa = v.next;
        v.halted = null;
        const vmpl = v.vmsas.indexOf(gpa);
        if (vmpl >= 0) injectBeforeVmrun(this, v, vmpl);
        done++;
        try {
          this.machine.run(v.vcpu, gpa);
        } catch (e) {
          if (e instanceof VmrunError) {
            this.terminate(`VMRUN of vCPU ${v.vcpu.apicId} failed: ${e.message}`, false);
            break;
          }
          throw e;
        }
      }
    }
    return this.state;
  }

  /** Wakes halted vCPUs that have an interrupt to take; returns the runnable vCPUs. */
  private wakeHalted(): HostVcpu[] {
    for (const v of this.vcpus) {
      if (v.halted === null || v.next !== null) continue;
      if (canWake(this, v)) {
        v.next = v.halted;
        v.halted = null;
      }
    }
    return this.vcpus.filter((v) => v.next !== null);
  }

  private count(kind: string): void {
    this.exitCounts.set(kind, (this.exitCounts.get(kind) ?? 0) + 1);
  }

  /** The exit handler the machine calls synchronously; the same VMSA runs again on 'resume'. */
  private handleExit(vcpu: Vcpu, exit: VmExit, from: VmsaRunning): ExitDecision {
    const decision = this.dispatchExit(vcpu, exit, from);
    // A device access can end the machine (ACPI S5) in the middle of an exit that succeeded.
    if (this.state === 'terminated' || this.state === 'powered-off') return 'suspend';
    if (decision === 'resume') injectBeforeVmrun(this, this.hostVcpu(vcpu), from.vmpl);
    return decision;
  }

  private dispatchExit(vcpu: Vcpu, exit: VmExit, from: VmsaRunning): ExitDecision {
    const hv = this.hostVcpu(vcpu);
    if (this.state === 'terminated' || this.state === 'powered-off') return 'suspend';
    switch (exit.exitCode) {
      case SVM_EXIT_VMGEXIT: {
        const msr = vcpu.ghcbMsr[from.vmpl]!;
        if ((msr & GHCB_MSR_INFO_MASK) !== 0n) {
          this.count('msr-protocol');
          return handleMsrProtocol(this, hv, from, msr);
        }
        this.count('ghcb');
        return handleGhcbExit(this, hv, from, Number(msr));
      }
      case SVM_EXIT_NPF:
        this.count('npf');
        return this.handleNpf(hv, exit);
      case SVM_EXIT_INTR:
        // A host timer tick (the x86 engine's time slice): the vCPU stays runnable at the same
        // VMSA and the other vCPUs get their turn.
        this.count('intr');
        return 'suspend';
      case SVM_EXIT_HLT:
        this.count('hlt');
        this.log(`vCPU ${vcpu.apicId} VMPL${from.vmpl} halted`);
        hv.next = null;
        // Only the VMPL that takes interrupts can be woken by one; any other waits for ever.
        if (from.vmpl === interruptVmpl(this)) hv.halted = from.gpa;
        return 'suspend';
      case SVM_EXIT_VINTR:
        // The guest opened its interrupt window: injection follows on resume.
        this.count('vintr');
        return 'resume';
      case SVM_EXIT_SHUTDOWN:
        this.terminate(`vCPU ${vcpu.apicId} VMPL${from.vmpl} shut down (triple fault)`, false);
        return 'suspend';
      default:
        this.terminate(
          `unexpected exit 0x${exit.exitCode.toString(16)} from vCPU ${vcpu.apicId}`,
          false,
        );
        return 'suspend';
    }
  }

  /**
   * A nested page fault. A private access to a page the hypervisor owns is an implicit page-state
   * change (KVM converts the page, the guest then sees it unvalidated); any other RMP fault is a
   * guest error the hypervisor cannot repair, and ends the VM.
   */
  private handleNpf(hv: HostVcpu, exit: VmExit): ExitDecision {
    const gpa = Number(exit.exitInfo2);
    const rmpBit = (exit.exitInfo1 >> 31n) & 1n;
    const encBit = (exit.exitInfo1 >> 34n) & 1n;
    const vmplBit = (exit.exitInfo1 >> 36n) & 1n;
    const rmp = this.machine.rmp;
    const pfn = Math.floor(gpa / PAGE_SIZE);
    if (
      rmpBit === 1n &&
      encBit === 1n &&
      vmplBit === 0n &&
      pfn < rmp.pageCount &&
      !rmp.isAssigned(pfn)
    ) {
      rmp.rmpupdate(pfn * PAGE_SIZE, false, true);
      return 'resume';
    }
    this.terminate(
      `vCPU ${hv.vcpu.apicId}: nested page fault at 0x${gpa.toString(16)}, error code 0x${exit.exitInfo1.toString(16)}`,
      false,
    );
    return 'suspend';
  }

  /** Makes `vmpl`'s VMSA the next one to run on `hv`; false when none is registered. */
  switchTo(hv: HostVcpu, vmpl: number): boolean {
    const gpa = hv.vmsas[vmpl];
    if (gpa === null || gpa === undefined) return false;
    hv.next = gpa;
    return true;
  }

  /** For GHCB termination requests. */
  guestTerminated(reasonSet: number, reasonCode: number): void {
    this.terminate(
      `the guest asked to terminate: ${describeTermination(reasonSet, reasonCode)}`,
      true,
    );
  }
}
