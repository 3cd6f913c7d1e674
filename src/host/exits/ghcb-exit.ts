// The working state of one GHCB-page exit: a copy of the shared page, typed access to its fields,
// the protocol's answers (success, exception to inject, GHCB error), the valid-bitmap check and
// the scratch area. Every exit handler takes one of these and writes its answer into it; the
// dispatcher (ghcb-exits.ts) writes the page back.

import {
  exceptionEvent,
  GHCB,
  GHCB_ERR,
  GHCB_RESULT,
  type GhcbValidatedField,
  isValid,
  markValid,
  missingInputs,
} from '../../arch/index.js';
import { HostAccessError } from '../../hw/hypervisor-memory.js';
import { PAGE_SIZE } from '../../hw/memory.js';
import type { VmsaRunning } from '../../hw/vcpu.js';
import type { HostVcpu, VmContext } from '../vm-context.js';

const SHARED_BUFFER = GHCB.field('sharedBuffer');
/** KVM's GHCB_SCRATCH_AREA_LIMIT: a scratch area outside the GHCB is copied, so it is bounded. */
export const SCRATCH_AREA_LIMIT = 16 * PAGE_SIZE;

/** A scratch area: its bytes, and how to publish what the host wrote into them. */
export interface Scratch {
  readonly bytes: Uint8Array;
  /** Copies host output back to guest memory (a no-op inside the GHCB, written back with it). */
  commit(): void;
}

export class GhcbExit {
  readonly page: Uint8Array;
  readonly g: ReturnType<typeof GHCB.on>;
  constructor(
    readonly vm: VmContext,
    readonly hv: HostVcpu,
    readonly from: VmsaRunning,
    readonly gpa: number,
  ) {
    this.page = vm.machine.hypervisorMemory.read(gpa, PAGE_SIZE);
    this.g = GHCB.on(this.page);
  }

  /** Success: SW_EXITINFO1 = 0 (and EXITINFO2 as given). */
  ok(info2?: bigint): void {
    this.g.set('swExitInfo1', BigInt(GHCB_RESULT.OK));
    if (info2 !== undefined) this.g.set('swExitInfo2', info2);
  }

  /** The protocol's error answer: EXITINFO1 = 2, EXITINFO2 = GHCB error code. */
  error(code: number): void {
    this.g.set('swExitInfo1', BigInt(GHCB_RESULT.GHCB_ERROR));
    this.g.set('swExitInfo2', BigInt(code));
  }

  /**
   * An exception for the guest to raise (EXITINFO1 = 1, EXITINFO2 = the event), as KVM answers an
   * MSR it refuses: `svm_vmgexit_inject_exception` sets vector, type and valid, no error code.
   */
  exception(vector: number): void {
    this.g.set('swExitInfo1', BigInt(GHCB_RESULT.EXCEPTION));
    this.g.set('swExitInfo2', exceptionEvent(vector));
  }

  /** Writes a register the guest reads back and marks it valid (GHCB spec: outputs are valid). */
  output(name: GhcbValidatedField & ('rax' | 'rbx' | 'rcx' | 'rdx'), value: bigint): void {
    this.g.set(name, BigInt.asUintN(64, value));
    markValid(this.page, name);
  }

  writeBack(): void {
    this.vm.machine.hypervisorMemory.write(this.gpa, this.page);
  }

  /** Whether the guest marked `name` valid. */
  isValid(name: GhcbValidatedField): boolean {
    return isValid(this.page, name);
  }

  /** True (and the MISSING_INPUT answer given) if any of `fields` is not marked valid. */
  missing(...fields: GhcbValidatedField[]): boolean {
    if (missingInputs(this.page, fields).length === 0) return false;
    this.error(GHCB_ERR.MISSING_INPUT);
    return true;
  }

  shared(gpa: number, length: number): Uint8Array | null {
    try {
      return this.vm.machine.hypervisorMemory.read(gpa, length);
    } catch (e) {
      if (e instanceof HostAccessError) return null;
      throw e;
    }
  }

  /**
   * The scratch area of `length` bytes at SW_SCRATCH, with KVM's rules (`setup_vmgexit_scratch`):
   * inside the GHCB page it must lie within the shared buffer; elsewhere it must be shared memory
   * of at most 16 pages. Null (with the INVALID_SCRATCH_AREA answer given) otherwise. SW_SCRATCH
   * must already have been checked valid.
   */
  scratch(length: number): Scratch | null {
    const begin = this.g.get('swScratch');
    const fail = (): null => {
      this.error(GHCB_ERR.INVALID_SCRATCH_AREA);
      return null;
    };
    if (begin === 0n || !Number.isSafeInteger(length) || length < 0) return fail();
    if (begin + BigInt(length) > 1n << 52n) return fail();
    const at = Number(begin);
    if (Math.floor(at / PAGE_SIZE) * PAGE_SIZE === this.gpa) {
      const first = this.gpa + SHARED_BUFFER.offset;
      if (at < first || at + length > first + SHARED_BUFFER.size) return fail();
      const off = at - this.gpa;
      return { bytes: this.page.subarray(off, off + length), commit: () => undefined };
    }
    if (length > SCRATCH_AREA_LIMIT) return fail();
    const bytes = this.shared(at, length);
    if (bytes === null) return fail();
    const hvm = this.vm.machine.hypervisorMemory;
    return { bytes, commit: () => hvm.write(at, bytes) };
  }
}
