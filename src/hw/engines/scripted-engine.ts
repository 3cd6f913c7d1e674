// The engine that runs a TypeScript test program as the guest of a VMPL (normally VMPL2), for
// protocol tests, fuzzing and the demo before the x86 engine runs real guests. The program is a
// generator: `yield* cpu.vmgexit()` is the VMGEXIT instruction, and the program resumes after it
// when the host (or the SVSM, through the host) runs this VMSA again. Its registers live in the
// vCPU's VMSA-layout context, its memory accesses go through the RMP at its VMPL.
// Interrupts: at each VMRUN (and resume) the engine delivers the host's EVENTINJ to the program's
// `onInterrupt` handler, run as a nested generator before the interrupted code goes on; at every
// exit it reports RFLAGS.IF in `vcpu.intState`. `yield* cpu.hlt()` is HLT (an automatic exit).

import {
  CpuFaultError,
  type GuestCpu,
  type GuestProgram,
  type InterruptHandler,
  MSR,
  VECTOR,
  type Vmpl0Register,
} from '../../arch/index.js';
import type { Engine, ExitPort } from '../engine.js';
import type { Machine } from '../machine.js';
import { PAGE_SIZE } from '../memory.js';
import { ACCESS, type Access, RMP_OK, RMP_VC_NOT_VALIDATED } from '../rmp.js';
import type { TrackedMemory } from '../tracked-memory.js';
import {
  SVM_EXIT_VINTR,
  EVENTINJ_TYPE_SHIFT,
  EVENTINJ_VALID,
  INT_STATE,
  type Vcpu,
  VMSA_AT,
  vmsaRegisterOffset,
} from '../vcpu.js';

const SVM_EXIT_VMGEXIT = 0x403n;
const SVM_EXIT_HLT = 0x78n;
const SVM_EXIT_SHUTDOWN = 0x7fn;

class ScriptedCpu implements GuestCpu {
  readonly vcpuIndex: number;
  readonly vmpl: number;
  interruptsEnabled = false;
  onInterrupt: InterruptHandler | null = null;
  /** The last yield was HLT rather than VMGEXIT. */
  halting = false;
  private readonly bytes: Uint8Array;
  private readonly memory: TrackedMemory;

  constructor(
    private readonly machine: Machine,
    private readonly vcpu: Vcpu,
    private readonly onLog: (line: string) => void,
  ) {
    this.vcpuIndex = machine.vcpus.indexOf(vcpu);
    this.vmpl = vcpu.running?.vmpl ?? 0;
    this.memory = machine.trackedMemory();
    this.bytes = this.memory.trackedBytes();
  }

  readRegister(name: Vmpl0Register): bigint {
    return this.vcpu.view.getBigUint64(vmsaRegisterOffset(name), true);
  }

  writeRegister(name: Vmpl0Register, value: bigint): void {
    this.vcpu.view.setBigUint64(vmsaRegisterOffset(name), BigInt.asUintN(64, value), true);
  }

  private check(gpa: number, length: number, shared: boolean, access: Access): void {
    for (
      let p = Math.floor(gpa / PAGE_SIZE);
      p <= Math.floor((gpa + length - 1) / PAGE_SIZE);
      p++
    ) {
      const r = this.machine.rmp.check(p * PAGE_SIZE, !shared, this.vmpl, 0, access);
      if (r === RMP_OK) continue;
      if (r === RMP_VC_NOT_VALIDATED) throw new CpuFaultError(VECTOR.VC, 0x404, p * PAGE_SIZE);
      // An RMP nested page fault the host cannot fix for the guest: the access does not complete.
      throw new CpuFaultError(VECTOR.MC, r, p * PAGE_SIZE);
    }
  }

  read(gpa: number, length: number, shared = false): Uint8Array {
    this.check(gpa, length, shared, ACCESS.READ);
    return this.bytes.slice(gpa, gpa + length);
  }

  write(gpa: number, data: Uint8Array, shared = false): void {
    this.check(gpa, data.length, shared, ACCESS.WRITE);
    this.bytes.set(data, gpa);
    this.memory.markWritten(gpa, data.length);
  }

  rdmsr(msr: number): bigint {
    if (msr === MSR.GHCB) return this.vcpu.ghcbMsr[this.vmpl]!;
    if (msr === MSR.SEV_STATUS) {
      return (this.vcpu.view.getBigUint64(VMSA_AT.sevFeatures, true) << 2n) | 0b111n;
    }
    throw new CpuFaultError(VECTOR.VC, 0x7c, msr);
  }

  wrmsr(msr: number, value: bigint): void {
    if (msr === MSR.GHCB) {
      this.vcpu.ghcbMsr[this.vmpl] = BigInt.asUintN(64, value);
      return;
    }
    throw new CpuFaultError(VECTOR.VC, 0x7c, msr);
  }

  pvalidate(gpa: number, size2M: boolean, validate: boolean): { rax: number; carry: boolean } {
    const r = this.machine.rmp.pvalidate(this.vmpl, 0, gpa, size2M, validate);
    if (r.kind === 'done') return { rax: r.rax, carry: r.carry };
    if (r.kind === 'exception') throw new CpuFaultError(r.vector, r.errorCode, gpa);
    throw new CpuFaultError(VECTOR.MC, r.errorCode, gpa);
  }

  *vmgexit(): Generator<void, void, void> {
    yield;
  }

  *hlt(): Generator<void, void, void> {
    this.halting = true;
    yield;
  }

  log(text: string): void {
    this.onLog(text);
  }
}

/** A vCPU's program: the code it runs and the handlers interrupting it, innermost last. */
interface Running {
  readonly cpu: ScriptedCpu;
  /** The program, then each handler running on top of it with the IF it interrupted. */
  readonly frames: { readonly code: Generator<void, void, void>; readonly savedIf: boolean }[];
}

export class ScriptedEngine implements Engine {
  private readonly running = new Map<Vcpu, Running>();
  /** The VMSA each vCPU's program ended in; running that VMSA again halts at once. */
  private readonly finished = new Map<Vcpu, number>();
  readonly logLines: string[] = [];

  constructor(
    private readonly machine: Machine,
    /** The program each vCPU runs, by vCPU index. */
    private readonly programFor: (vcpuIndex: number) => GuestProgram,
    /** Also told each log line as it is written. */
    private readonly onLog: (line: string) => void = () => undefined,
  ) {}

  private log(line: string): void {
    this.logLines.push(line);
    this.onLog(line);
  }

  /** Delivers a pending EVENTINJ: pushes the handler frame; false if there is no handler. */
  private deliver(vcpu: Vcpu, r: Running): boolean {
    const inj = vcpu.eventInj;
    if ((inj & EVENTINJ_VALID) === 0) return true;
    vcpu.eventInj = 0;
    const vector = inj & 0xff;
    const type = (inj >>> EVENTINJ_TYPE_SHIFT) & 7;
    const handler = r.cpu.onInterrupt;
    if (handler === null) {
      this.log(`guest vCPU ${vcpu.apicId}: no handler for injected vector ${vector}`);
      return false;
    }
    r.frames.push({ code: handler(vector, type), savedIf: r.cpu.interruptsEnabled });
    r.cpu.interruptsEnabled = false;
    r.cpu.halting = false; // an interrupt ends HLT
    return true;
  }

  /** An exit with RFLAGS.IF reported (VMCB INT_STATE), as #VMEXIT leaves it. */
  private exit(vcpu: Vcpu, exits: ExitPort, code: bigint, ifFlag: boolean) {
    vcpu.intState = ifFlag ? INT_STATE.IF : 0;
    return exits.exit(vcpu, { exitCode: code, exitInfo1: 0n, exitInfo2: 0n });
  }

  run(vcpu: Vcpu, exits: ExitPort): void {
    let r = this.running.get(vcpu);
    if (r === undefined && this.finished.get(vcpu) === vcpu.running?.gpa) {
      // A program that ended stays halted (an NMI may wake the VMSA; there is no code to run).
      vcpu.eventInj = 0;
      this.exit(vcpu, exits, SVM_EXIT_HLT, false);
      return;
    }
    if (r === undefined) {
      this.finished.delete(vcpu);
      const cpu = new ScriptedCpu(this.machine, vcpu, (l) => this.log(l));
      r = { cpu, frames: [{ code: this.programFor(cpu.vcpuIndex)(cpu), savedIf: false }] };
      this.running.set(vcpu, r);
    }
    for (;;) {
      if (!this.deliver(vcpu, r)) {
        this.running.delete(vcpu);
        this.exit(vcpu, exits, SVM_EXIT_SHUTDOWN, false);
        return;
      }
      const frame = r.frames[r.frames.length - 1]!;
      let step: IteratorResult<void, void>;
      try {
        step = frame.code.next();
      } catch (e) {
        this.running.delete(vcpu);
        // An exception the guest program did not handle (a CPU fault or its own error): the guest
        // crashed, which on a CPU is a triple fault, i.e. shutdown.
        const what = e instanceof Error ? e.message : String(e);
        this.log(`guest vCPU ${vcpu.apicId}: unhandled ${what}`);
        this.exit(vcpu, exits, SVM_EXIT_SHUTDOWN, false);
        return;
      }
      if (step.done === true) {
        if (r.frames.length > 1) {
          // IRET: back to the interrupted code with its IF.
          r.frames.pop();
          r.cpu.interruptsEnabled = frame.savedIf;
          if (vcpu.vIrq && r.cpu.interruptsEnabled) {
            // The interrupt window the host asked for opens here: a VINTR exit lets it inject.
            vcpu.vIrq = false;
            if (this.exit(vcpu, exits, SVM_EXIT_VINTR, true) === 'suspend') return;
          }
          continue;
        }
        this.running.delete(vcpu);
        this.finished.set(vcpu, vcpu.running?.gpa ?? -1);
        this.exit(vcpu, exits, SVM_EXIT_HLT, false);
        return;
      }
      const halting = r.cpu.halting;
      r.cpu.halting = false;
      if (!halting) this.machine.tsc += 1000n;
      const d = this.exit(
        vcpu,
        exits,
        halting ? SVM_EXIT_HLT : SVM_EXIT_VMGEXIT,
        r.cpu.interruptsEnabled,
      );
      if (d === 'suspend') return;
    }
  }
}
