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
  SW_EXITCODE,
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

/** The save area with the valid bitmap: everything but the shared buffer and the trailer. */
const SAVE_AREA_END = GHCB.offset('x87StateGpa') + 8;
const TRAILER = GHCB.offset('protocolVersion');
const SW_EXIT_CODE = GHCB.offset('swExitCode');

/** Exits whose inputs and outputs are registers only: their shared buffer is not copied. */
const REGISTER_EXITS: ReadonlySet<number> = new Set([
  SW_EXITCODE.CPUID,
  SW_EXITCODE.MSR,
  SW_EXITCODE.RDTSC,
  SW_EXITCODE.RDTSCP,
  SW_EXITCODE.WBINVD,
  SW_EXITCODE.VMMCALL,
  SW_EXITCODE.NMI_COMPLETE,
  SW_EXITCODE.READ_DR7,
  SW_EXITCODE.WRITE_DR7,
  SW_EXITCODE.HV_FEATURES,
  SW_EXITCODE.SNP_RUN_VMPL,
  SW_EXITCODE.AP_HLT_LOOP,
  SW_EXITCODE.AP_JUMP_TABLE,
  SW_EXITCODE.GET_APIC_IDS,
]);

/**
 * The host's copy of the GHCB during an exit. Exits are handled one at a time (the machine calls
 * the host synchronously and no handler re-enters it), so one buffer serves them all.
 */
const COPY = new Uint8Array(PAGE_SIZE);
const COPY_VIEW = new DataView(COPY.buffer);
const COPY_STRUCT = GHCB.on(COPY);
const BITMAP = GHCB.offset('validBitmap');
const INFO1 = GHCB.offset('swExitInfo1');
const INFO2 = GHCB.offset('swExitInfo2');

/** The resolved offset of each u64 save-area field, looked up once (the exit hot path). */
type U64Field = Exclude<GhcbValidatedField, 'cpl'>;
const OFFSET = new Map<GhcbValidatedField, number>(
  GHCB.fields.filter((f) => f.offset < BITMAP).map((f) => [f.name as GhcbValidatedField, f.offset]),
);
const offsetOf = (name: GhcbValidatedField): number => OFFSET.get(name)!;

export class GhcbExit {
  /** The GHCB as the host sees it (only the parts the exit uses are current). */
  readonly page = COPY;
  readonly g = COPY_STRUCT;
  /** Bytes [0, copied) of the page are current, besides the trailer. */
  private readonly copied: number;

  /** Throws HostAccessError if the page is not the host's to read. */
  constructor(
    readonly vm: VmContext,
    readonly hv: HostVcpu,
    readonly from: VmsaRunning,
    readonly gpa: number,
  ) {
    const hvm = vm.machine.hypervisorMemory;
    COPY.set(hvm.read(gpa, SAVE_AREA_END), 0);
    COPY.set(hvm.read(gpa + TRAILER, PAGE_SIZE - TRAILER), TRAILER);
    const code = COPY_VIEW.getBigUint64(SW_EXIT_CODE, true);
    const registersOnly = code <= 0xffff_ffffn && REGISTER_EXITS.has(Number(code));
    if (registersOnly) {
      this.copied = SAVE_AREA_END;
    } else {
      COPY.set(hvm.read(gpa + SAVE_AREA_END, TRAILER - SAVE_AREA_END), SAVE_AREA_END);
      this.copied = TRAILER;
    }
  }

  /** Success: SW_EXITINFO1 = 0 (and EXITINFO2 as given). */
  ok(info2?: bigint): void {
    COPY_VIEW.setBigUint64(INFO1, BigInt(GHCB_RESULT.OK), true);
    if (info2 !== undefined) COPY_VIEW.setBigUint64(INFO2, BigInt.asUintN(64, info2), true);
  }

  /** The protocol's error answer: EXITINFO1 = 2, EXITINFO2 = GHCB error code. */
  error(code: number): void {
    COPY_VIEW.setBigUint64(INFO1, BigInt(GHCB_RESULT.GHCB_ERROR), true);
    COPY_VIEW.setBigUint64(INFO2, BigInt(code), true);
  }

  /** A u64 save-area field as the guest wrote it. */
  get(name: U64Field): bigint {
    return COPY_VIEW.getBigUint64(offsetOf(name), true);
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
    COPY_VIEW.setBigUint64(at, BigInt.asUintN(64, value), true);
    const bit = at >> 3; // GHCB spec: the valid bit of the field at offset o is o / 8
    COPY[BITMAP + (bit >> 3)]! |= 1 << (bit & 7);
  }

  /** Publishes the answer: the part of the page the host read (the trailer is never written). */
  writeBack(): void {
    this.vm.machine.hypervisorMemory.write(this.gpa, COPY.subarray(0, this.copied));
  }

  /** Whether the guest marked `name` valid. */
  isValid(name: GhcbValidatedField): boolean {
    const bit = offsetOf(name) >> 3;
    return (COPY[BITMAP + (bit >> 3)]! & (1 << (bit & 7))) !== 0;
  }

  /**
   * True (and the MISSING_INPUT answer given) if any of `fields` is not marked valid. Bits no
   * required field maps to are ignored, as KVM ignores them (arch/ghcb.ts `missingInputs`).
   */
  missing(...fields: GhcbValidatedField[]): boolean {
    for (const f of fields) {
      if (!this.isValid(f)) {
        this.error(GHCB_ERR.MISSING_INPUT);
        return true;
      }
    }
    return false;
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
