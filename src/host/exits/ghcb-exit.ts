// The working state of one GHCB-page exit: the shared page (read and written in place), typed
// access to its fields, the protocol's answers (success, exception to inject, GHCB error), the
// valid-bitmap check and the scratch area. Every exit handler takes one of these and writes its
// answer into it.

import {
  exceptionEvent,
  GHCB,
  GHCB_ERR,
  GHCB_RESULT,
  type GhcbValidatedField,
  type StructView,
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
  /** Copies host output back to guest memory (a no-op inside the GHCB, written in place). */
  commit(): void;
}

const BITMAP = GHCB.offset('validBitmap');
const INFO1 = GHCB.offset('swExitInfo1');
const INFO2 = GHCB.offset('swExitInfo2');
const USAGE = GHCB.offset('ghcbUsage');

/** The resolved offset of each u64 save-area field, looked up once (the exit hot path). */
type U64Field = Exclude<GhcbValidatedField, 'cpl'>;
const OFFSET = new Map<GhcbValidatedField, number>(
  GHCB.fields.filter((f) => f.offset < BITMAP).map((f) => [f.name as GhcbValidatedField, f.offset]),
);
const offsetOf = (name: GhcbValidatedField): number => OFFSET.get(name)!;

/** The views of one GHCB page, kept per GPA: a vCPU uses the same GHCB for every exit. */
interface PageViews {
  readonly page: Uint8Array;
  readonly view: DataView;
  readonly g: StructView<typeof GHCB.specs>;
}
const VIEWS = new Map<number, PageViews>();

function viewsOf(page: Uint8Array, gpa: number): PageViews {
  const cached = VIEWS.get(gpa);
  if (cached !== undefined && cached.page === page) return cached;
  const v = {
    page,
    view: new DataView(page.buffer, page.byteOffset, page.byteLength),
    g: GHCB.on(page),
  };
  if (VIEWS.size >= 1024) VIEWS.clear();
  VIEWS.set(gpa, v);
  return v;
}

export class GhcbExit {
  /**
   * The GHCB page itself, read and written in place: exits are handled one at a time (the machine
   * calls the host synchronously, nothing else runs meanwhile), so unlike KVM, which copies the
   * page against a guest changing it under its feet, the host needs no copy.
   */
  readonly page: Uint8Array;
  readonly g: StructView<typeof GHCB.specs>;
  private readonly view: DataView;

  /** Throws HostAccessError if the page is not the host's to touch. */
  constructor(
    readonly vm: VmContext,
    readonly hv: HostVcpu,
    readonly from: VmsaRunning,
    readonly gpa: number,
  ) {
    const v = viewsOf(vm.machine.hypervisorMemory.sharedPage(gpa), gpa);
    this.page = v.page;
    this.view = v.view;
    this.g = v.g;
  }

  /** Success: SW_EXITINFO1 = 0 (and EXITINFO2 as given). */
  ok(info2?: bigint): void {
    this.view.setUint32(INFO1, GHCB_RESULT.OK, true);
    this.view.setUint32(INFO1 + 4, 0, true);
    if (info2 === 0n) {
      this.view.setUint32(INFO2, 0, true);
      this.view.setUint32(INFO2 + 4, 0, true);
    } else if (info2 !== undefined) this.view.setBigUint64(INFO2, BigInt.asUintN(64, info2), true);
  }

  /** The protocol's error answer: EXITINFO1 = 2, EXITINFO2 = GHCB error code. */
  error(code: number): void {
    this.view.setBigUint64(INFO1, BigInt(GHCB_RESULT.GHCB_ERROR), true);
    this.view.setBigUint64(INFO2, BigInt(code), true);
  }

  /** A u64 save-area field as the guest wrote it. */
  get(name: U64Field): bigint {
    return this.view.getBigUint64(offsetOf(name), true);
  }

  /** The low 32 bits of a save-area field, without a BigInt (the exit hot path). */
  get32(name: U64Field): number {
    return this.view.getUint32(offsetOf(name), true);
  }

  /** GHCB_USAGE (the trailer's u32; 0 is the standard format). */
  usage(): number {
    return this.view.getUint32(USAGE, true);
  }

  /** SW_EXITCODE, or -1 when it does not fit in 32 bits (no exit code does). */
  exitCode(): number {
    const at = offsetOf('swExitCode');
    return this.view.getUint32(at + 4, true) === 0 ? this.view.getUint32(at, true) : -1;
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
  output(name: 'rax' | 'rbx' | 'rcx' | 'rdx', value: bigint): void {
    const at = offsetOf(name);
    this.view.setBigUint64(at, BigInt.asUintN(64, value), true);
    this.markOutput(at);
  }

  /** `output` of a 32-bit value (upper half zero), without a BigInt. */
  output32(name: 'rax' | 'rbx' | 'rcx' | 'rdx', value: number): void {
    const at = offsetOf(name);
    this.view.setUint32(at, value >>> 0, true);
    this.view.setUint32(at + 4, 0, true);
    this.markOutput(at);
  }

  private markOutput(at: number): void {
    const bit = at >> 3; // GHCB spec: the valid bit of the field at offset o is o / 8
    this.page[BITMAP + (bit >> 3)]! |= 1 << (bit & 7);
  }

  /** Whether the guest marked `name` valid. */
  isValid(name: GhcbValidatedField): boolean {
    const bit = offsetOf(name) >> 3;
    return (this.page[BITMAP + (bit >> 3)]! & (1 << (bit & 7))) !== 0;
  }

  /**
   * True (and the MISSING_INPUT answer given) if any of `fields` is not marked valid. Bits no
   * required field maps to are ignored, as KVM ignores them (arch/ghcb.ts `missingInputs`).
   */
  missing(a: GhcbValidatedField, b?: GhcbValidatedField, c?: GhcbValidatedField): boolean {
    if (
      this.isValid(a) &&
      (b === undefined || this.isValid(b)) &&
      (c === undefined || this.isValid(c))
    )
      return false;
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
    const begin = this.get('swScratch');
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
