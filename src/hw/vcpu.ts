// A virtual CPU as the silicon sees it under SEV-SNP: the hypervisor names a VMSA page and VMRUN
// loads the register state from it; on #VMEXIT the state goes back into that page. The VMSA page
// in guest memory is the truth for every VMPL that is not running; while one runs, its registers
// live in `context`, a VMSA-layout copy that the engine executing the code works on.

import {
  GPR_NAMES,
  EFER,
  RMP_ASSIGNED,
  RMP_VALIDATED,
  RMP_VMSA,
  SEV_FEATURES,
  SVM_EXIT_ERROR,
  VMSA,
  VMSA_SIZE,
  type Vmpl0Register,
} from '../arch/index.js';
import { PAGE_SIZE, type PhysicalMemory } from './memory.js';
import type { Rmp } from './rmp.js';
import { TrackedMemory, writerBytes } from './tracked-memory.js';

/** The single-bit mask of a 1-bit field of a register layout, for tests on the hot path. */
function flagMask(spec: { readonly lo: number }): bigint {
  return 1n << BigInt(spec.lo);
}

const EFER_SVME = flagMask(EFER.specs.SVME);
const SEV_FEATURES_SNP_ACTIVE = flagMask(SEV_FEATURES.specs.snpActive);

/**
 * Byte offsets of the VMSA fields a world switch and the engines touch on every entry, resolved
 * once from the declared layout (a name lookup per access costs more than the access).
 */
export const VMSA_AT = {
  efer: VMSA.offset('efer'),
  sevFeatures: VMSA.offset('sevFeatures'),
  vmpl: VMSA.offset('vmpl'),
  cr0: VMSA.offset('cr0'),
  cr3: VMSA.offset('cr3'),
  cr4: VMSA.offset('cr4'),
  guestExitCode: VMSA.offset('guestExitCode'),
  guestExitInfo1: VMSA.offset('guestExitInfo1'),
  guestExitInfo2: VMSA.offset('guestExitInfo2'),
} as const;
if (VMSA.field('vmpl').size !== 1) throw new Error('vcpu.ts: VMSA.vmpl is no longer one byte');

const REGISTER_NAMES: readonly Vmpl0Register[] = [...GPR_NAMES, 'rip'];
const REGISTER_AT: ReadonlyMap<string, number> = new Map(
  REGISTER_NAMES.map((n) => [n, VMSA.offset(n)]),
);

/** VMSA byte offset of a general-purpose register or RIP (all u64 fields). */
export function vmsaRegisterOffset(name: Vmpl0Register): number {
  const at = REGISTER_AT.get(name);
  if (at === undefined) throw new RangeError(`${name} is not a VMPL0 register`);
  return at;
}

/** Why VMRUN refused a VMSA (the hypervisor sees VMEXIT_INVALID). */
export class VmrunError extends Error {
  override readonly name = 'VmrunError';
  readonly exitCode = SVM_EXIT_ERROR.VMEXIT_INVALID;
}

/** `Vcpu.intState` bits (VMCB INT_STATE). */
export const INT_STATE = { SHADOW: 1, IF: 2 } as const;
/** `Vcpu.eventInj` bits (VMCB EVENTINJ; layout EVENT_INJ in arch/vmsa.ts). */
export const EVENTINJ_VALID = 0x8000_0000;
export const EVENTINJ_TYPE_SHIFT = 8;
/** SVM exit codes of an interrupt-window exit and of a physical interrupt (end of a time slice). */
export const SVM_EXIT_VINTR = 0x64n;
export const SVM_EXIT_INTR = 0x60n;

export interface VmsaRunning {
  readonly gpa: number;
  readonly vmpl: number;
}

export class Vcpu {
  /** Register state of the running VMPL, in VMSA layout. Meaningless while nothing runs. */
  readonly context = new Uint8Array(VMSA_SIZE);
  readonly regs = VMSA.on(this.context);
  /** The context as a DataView, for the engines' fixed-offset accesses (see VMSA_AT). */
  readonly view = new DataView(this.context.buffer);
  private current: VmsaRunning | null = null;
  /**
   * The GHCB MSR (0xC0010130) of each VMPL. Under SEV-ES the hardware keeps it outside the VMSA,
   * where the hypervisor reads the guest's request and writes its MSR-protocol response.
   */
  readonly ghcbMsr: bigint[] = [0n, 0n, 0n, 0n];
  /**
   * Event injection (the VMCB's EVENTINJ, APM vol. 2, 15.20), set by the host before VMRUN:
   * vector bits 7:0, type 10:8 (0 external interrupt, 2 NMI, 3 exception, 4 software interrupt),
   * EV (error code valid) bit 11, V (valid) bit 31. The engine delivers the event into the VMPL it
   * runs at the next instruction boundary and clears V.
   */
  eventInj = 0;
  /** Error code pushed with the injected event when EV is set. */
  eventInjErrorCode = 0;
  /**
   * The VMCB's INT_STATE as #VMEXIT leaves it (APM vol. 2, 15.35.x: for an SEV-ES guest, whose
   * RFLAGS the hypervisor cannot read, bit 1 GUEST_INTERRUPT_MASK mirrors RFLAGS.IF): bit 0
   * INTERRUPT_SHADOW (after STI / MOV SS), bit 1 RFLAGS.IF. The engine writes it at every exit;
   * the host injects an external interrupt only when IF is set and no shadow is active.
   */
  intState = 0;
  /**
   * V_IRQ with the VINTR intercept (VMCB V_INTR_CTRL bit 8): the host asks for an exit (VINTR,
   * 0x64) at the first instruction boundary where the guest can take an interrupt (IF set, no
   * shadow). The engine clears it when it takes that exit; the host clears it when nothing waits.
   */
  vIrq = false;

  /** Guest memory, written only by #VMEXIT (which marks the VMSA page it stores to). */
  private readonly bytes: Uint8Array;
  private readonly tracked: TrackedMemory | null;
  /** Views of the VMSA pages this vCPU ran, so VMRUN's copy allocates nothing (a few per vCPU). */
  private readonly vmsaPages = new Map<number, Uint8Array>();

  constructor(
    readonly apicId: number,
    private readonly memory: PhysicalMemory,
    private readonly rmp: Rmp,
  ) {
    this.bytes = writerBytes(memory);
    this.tracked = memory instanceof TrackedMemory ? memory : null;
  }

  get running(): VmsaRunning | null {
    return this.current;
  }

  /**
   * VMRUN with an SEV-SNP VMSA: the page must be a validated VMSA page of the guest, with
   * EFER.SVME set and SNP active in SEV_FEATURES; its VMPL field says at which VMPL the state runs.
   */
  vmrun(vmsaGpa: number): VmsaRunning {
    if (this.current !== null) {
      throw new VmrunError(
        `vCPU ${this.apicId} already runs the VMSA at 0x${this.current.gpa.toString(16)}`,
      );
    }
    if (
      !Number.isSafeInteger(vmsaGpa) ||
      vmsaGpa % PAGE_SIZE !== 0 ||
      !this.memory.contains(vmsaGpa, PAGE_SIZE)
    ) {
      throw new VmrunError(`VMSA address 0x${vmsaGpa.toString(16)} is not a page of guest memory`);
    }
    const e = this.rmp.entries[vmsaGpa / PAGE_SIZE]!;
    const need = RMP_ASSIGNED | RMP_VALIDATED | RMP_VMSA;
    if ((e & need) !== need) {
      throw new VmrunError(
        `page 0x${vmsaGpa.toString(16)} is not a validated VMSA page in the RMP`,
      );
    }
    let page = this.vmsaPages.get(vmsaGpa);
    if (page === undefined) {
      if (this.vmsaPages.size >= 16) this.vmsaPages.clear();
      page = this.bytes.subarray(vmsaGpa, vmsaGpa + VMSA_SIZE);
      this.vmsaPages.set(vmsaGpa, page);
    }
    this.context.set(page);
    const view = this.view;
    if ((view.getBigUint64(VMSA_AT.efer, true) & EFER_SVME) === 0n) {
      throw new VmrunError(`the VMSA at 0x${vmsaGpa.toString(16)} has EFER.SVME clear`);
    }
    if ((view.getBigUint64(VMSA_AT.sevFeatures, true) & SEV_FEATURES_SNP_ACTIVE) === 0n) {
      throw new VmrunError(`the VMSA at 0x${vmsaGpa.toString(16)} does not have SNPActive set`);
    }
    const vmpl = view.getUint8(VMSA_AT.vmpl);
    if (vmpl > 3) throw new VmrunError(`the VMSA at 0x${vmsaGpa.toString(16)} names VMPL${vmpl}`);
    this.current = { gpa: vmsaGpa, vmpl };
    return this.current;
  }

  /** #VMEXIT: records why in the context and writes the whole state back to the VMSA page. */
  vmexit(exitCode: bigint, exitInfo1 = 0n, exitInfo2 = 0n): void {
    const cur = this.current;
    if (cur === null) throw new Error(`vCPU ${this.apicId} is not running`);
    const view = this.view;
    view.setBigUint64(VMSA_AT.guestExitCode, exitCode, true);
    view.setBigUint64(VMSA_AT.guestExitInfo1, exitInfo1, true);
    view.setBigUint64(VMSA_AT.guestExitInfo2, exitInfo2, true);
    this.bytes.set(this.context, cur.gpa);
    this.tracked?.markWritten(cur.gpa, VMSA_SIZE);
    this.current = null;
  }
}
