// A virtual CPU as the silicon sees it under SEV-SNP: the hypervisor names a VMSA page and VMRUN
// loads the register state from it; on #VMEXIT the state goes back into that page. The VMSA page
// in guest memory is the truth for every VMPL that is not running; while one runs, its registers
// live in `context`, a VMSA-layout copy that the engine executing the code works on.

import {
  EFER,
  RMP_ASSIGNED,
  RMP_VALIDATED,
  RMP_VMSA,
  SEV_FEATURES,
  SVM_EXIT_ERROR,
  VMSA,
  VMSA_SIZE,
} from '../arch/index.js';
import { PAGE_SIZE, type PhysicalMemory } from './memory.js';
import type { Rmp } from './rmp.js';

/** Why VMRUN refused a VMSA (the hypervisor sees VMEXIT_INVALID). */
export class VmrunError extends Error {
  override readonly name = 'VmrunError';
  readonly exitCode = SVM_EXIT_ERROR.VMEXIT_INVALID;
}

export interface VmsaRunning {
  readonly gpa: number;
  readonly vmpl: number;
}

export class Vcpu {
  /** Register state of the running VMPL, in VMSA layout. Meaningless while nothing runs. */
  readonly context = new Uint8Array(VMSA_SIZE);
  readonly regs = VMSA.on(this.context);
  private current: VmsaRunning | null = null;
  /**
   * The GHCB MSR (0xC0010130) of each VMPL. Under SEV-ES the hardware keeps it outside the VMSA,
   * where the hypervisor reads the guest's request and writes its MSR-protocol response.
   */
  readonly ghcbMsr: bigint[] = [0n, 0n, 0n, 0n];

  constructor(
    readonly apicId: number,
    private readonly memory: PhysicalMemory,
    private readonly rmp: Rmp,
  ) {}

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
    this.context.set(this.memory.bytes.subarray(vmsaGpa, vmsaGpa + VMSA_SIZE));
    if (!EFER.has(this.regs.get('efer'), 'SVME')) {
      throw new VmrunError(`the VMSA at 0x${vmsaGpa.toString(16)} has EFER.SVME clear`);
    }
    if (!SEV_FEATURES.has(this.regs.get('sevFeatures'), 'snpActive')) {
      throw new VmrunError(`the VMSA at 0x${vmsaGpa.toString(16)} does not have SNPActive set`);
    }
    const vmpl = this.regs.get('vmpl');
    if (vmpl > 3) throw new VmrunError(`the VMSA at 0x${vmsaGpa.toString(16)} names VMPL${vmpl}`);
    this.current = { gpa: vmsaGpa, vmpl };
    return this.current;
  }

  /** #VMEXIT: records why in the context and writes the whole state back to the VMSA page. */
  vmexit(exitCode: bigint, exitInfo1 = 0n, exitInfo2 = 0n): void {
    const cur = this.current;
    if (cur === null) throw new Error(`vCPU ${this.apicId} is not running`);
    this.regs
      .set('guestExitCode', exitCode)
      .set('guestExitInfo1', exitInfo1)
      .set('guestExitInfo2', exitInfo2);
    this.memory.bytes.set(this.context, cur.gpa);
    this.current = null;
  }
}
