// The engine that runs a VMPL's VMSA on the x86 interpreter (src/hw/cpu) as a real SEV-SNP guest
// vCPU: VMRUN loads a `Cpu` from the VMSA, the interpreter runs in budgets, and every #VMEXIT
// stores the state back and goes to the host through the ExitPort; on 'resume' the same VMSA runs
// on (reloaded, as the hardware reloads it at VMRUN).
//
// - Memory: the machine's tracked memory through a `PagingTranslator` at the VMSA's VMPL (C-bit,
//   RMP checks, #VC 0x404, NPF). One `CodeCache` per machine, shared by every vCPU; stores by the
//   host, the firmware or other engines reach it through `TrackedMemory.onStore`. The CPU's own
//   stores mark the pages they may write (see `StoreMarkingTranslator`).
// - Exits: VMGEXIT (0x403, RIP after it), HLT (0x78, an automatic exit under SEV-ES, RIP after
//   it), NPF (0x400 with EXITINFO1/2 from the translator, RIP at the faulting instruction, which
//   runs again on resume), SHUTDOWN (0x7F) when exception delivery triple-faults, and INTR (0x60)
//   after a time slice, as a host timer interrupt would, so the host can schedule other vCPUs.
// - Intercepted instructions raise #VC inside the guest (cpu/io.ts, cpu/snp.ts); exceptions are
//   delivered into the guest with `deliverEvent` (cpu/events.ts).
// - The GHCB MSR lives in the CPU while it runs and in `vcpu.ghcbMsr[vmpl]` while it does not.
// - Event injection: at VMRUN a valid `vcpu.eventInj` is delivered and its V bit cleared.
// - Virtual time: `machine.tsc` advances by one per retired instruction; RDTSC reads it.

import { SVM_EXIT, SVM_EXIT_ERROR, exceptionHasErrorCode } from '../../arch/index.js';
import { CodeCache } from '../cpu/code-cache.js';
import {
  Cpu,
  type CpuPlatform,
  INTERCEPT_RDTSC,
  INTERCEPT_RDTSCP,
  type RmpOutcome,
  TRAP_NONE,
  TRAP_SOFTWARE,
  VEC_PF,
  X86Fault,
} from '../cpu/cpu.js';
import {
  deliverEvent,
  EVENT_EXCEPTION,
  EVENT_EXTERNAL,
  EVENT_NMI,
  EVENT_SOFTWARE,
  NO_ERROR_CODE,
  ShutdownError,
} from '../cpu/events.js';
import {
  Interpreter,
  STOP_BUDGET,
  STOP_EXIT,
  STOP_HLT,
  STOP_SHUTDOWN,
} from '../cpu/interpreter.js';
import { PagingTranslator, VEC_NPF } from '../cpu/paging-translator.js';
import { ACCESS_WRITE, PERM_W, type TranslateResult, type Translator } from '../cpu/translator.js';
import type { Engine, ExitPort, VmExit } from '../engine.js';
import type { Machine } from '../machine.js';
import { PAGE_SIZE } from '../memory.js';
import { platformCpuid } from '../platform-cpuid.js';
import type { RmpInstructionResult } from '../rmp.js';
import type { TrackedMemory } from '../tracked-memory.js';
import { INT_STATE, SVM_EXIT_VINTR, type Vcpu, VMSA_AT } from '../vcpu.js';
import { loadFromVmsa, saveToVmsa, vmsaCr3 } from './x86-vmsa-state.js';

const RFLAGS_IF = 0x200;
/** Instructions between checks for an open interrupt window while the host waits (V_IRQ). */
const VINTR_STEP = 64;
const EXIT_VINTR: VmExit = { exitCode: SVM_EXIT_VINTR, exitInfo1: 0n, exitInfo2: 0n };

/** Whether an external interrupt could be taken now: IF set and no STI/MOV SS shadow. */
function interruptible(c: Cpu): boolean {
  return (c.rflags & RFLAGS_IF) !== 0 && c.shadowEnd !== c.instructions;
}

/** The VMSA holds state the interpreter cannot run yet (e.g. not 64-bit mode). */
export class X86StateError extends Error {
  override readonly name = 'X86StateError';
}

export interface X86EngineOptions {
  /** Instructions per interpreter call (how often the engine looks at time and slices). */
  readonly budget?: number;
  /** Instructions a vCPU runs before an INTR exit gives the host the CPU back; 0 = never. */
  readonly slice?: number;
  /**
   * Whether the hypervisor intercepts RDTSC/RDTSCP (#VC 0x6E/0x87 under SEV-ES). Off by default:
   * the TSC is virtual time already, and reference/linux-snp-guest.md 4 advises not to.
   */
  readonly interceptTsc?: boolean;
}

const EXIT_HLT = exit(SVM_EXIT.HLT);
const EXIT_SHUTDOWN = exit(SVM_EXIT.SHUTDOWN);
const EXIT_INTR = exit(SVM_EXIT.INTR);
const EVENTINJ_V = 0x8000_0000;
const EVENTINJ_EV = 0x800;
/** EVENTINJ.TYPE -> deliverEvent kind (APM vol. 2 15.20); other types are reserved. */
const EVENT_KIND: readonly (number | undefined)[] = [
  EVENT_EXTERNAL,
  undefined,
  EVENT_NMI,
  EVENT_EXCEPTION,
  EVENT_SOFTWARE,
];

function exit(code: number, info1 = 0n, info2 = 0n): VmExit {
  return { exitCode: BigInt(code), exitInfo1: info1, exitInfo2: info2 };
}

/** Stands in until the CPU's real translator exists (never asked). */
const NO_TRANSLATOR: Translator = {
  translate: () => {
    throw new Error('x86 engine: translator not set');
  },
};

const codeCaches = new WeakMap<Machine, CodeCache>();

/**
 * The machine's decoded-code cache: one per machine (all vCPUs and x86 engines share it), told of
 * every store that does not come from a CPU.
 */
export function machineCodeCache(machine: Machine): CodeCache {
  let code = codeCaches.get(machine);
  if (code === undefined) {
    const memory = machine.trackedMemory();
    const cache = new CodeCache(memory.pageCount);
    memory.onStore((gpa, length) => cache.invalidate(gpa, length));
    codeCaches.set(machine, cache);
    code = cache;
  }
  return code;
}

/**
 * Marks in TrackedMemory every page the CPU may store to: a translation granting write
 * permission (which the TLB then caches) or made for a write. The CPU's stores bypass
 * TrackedMemory, so without this a page the guest wrote could still be "known zero".
 */
export class StoreMarkingTranslator implements Translator {
  constructor(
    readonly inner: PagingTranslator,
    private readonly memory: TrackedMemory,
  ) {}

  /** MOV CRn / WRMSR EFER by the guest reach the page walker. */
  setControl(cr0: bigint, cr3: bigint, cr4: bigint, efer: bigint): void {
    this.inner.setControl(cr0, cr3, cr4, efer);
  }

  translate(lo: number, hi: number, access: number, user: boolean, out: TranslateResult): number {
    const pfn = this.inner.translate(lo, hi, access, user, out);
    if (pfn >= 0 && (access === ACCESS_WRITE || (out.perm & PERM_W) !== 0)) {
      const gpa = pfn * PAGE_SIZE;
      if (this.memory.knownZero(gpa, PAGE_SIZE)) this.memory.markWritten(gpa, PAGE_SIZE);
    }
    return pfn;
  }
}

/** One vCPU's processor as this engine runs it. */
interface X86Vcpu {
  readonly cpu: Cpu;
  readonly paging: PagingTranslator;
  readonly interp: Interpreter;
  readonly tr: TranslateResult;
  /** `cpu.instructions` when the current interpreter call started (for the TSC). */
  runBase: number;
  /** Instructions left in the current time slice. */
  sliceLeft: number;
  /** The paging state the TLB was filled under (flushed when an entry brings another). */
  control: string;
}

export class X86Engine implements Engine {
  private readonly code: CodeCache;
  private readonly vcpus = new Map<Vcpu, X86Vcpu>();
  private readonly budget: number;
  private readonly slice: number;

  constructor(
    private readonly machine: Machine,
    private readonly opts: X86EngineOptions = {},
  ) {
    this.code = machineCodeCache(machine);
    this.budget = opts.budget ?? 100_000;
    this.slice = opts.slice ?? 10_000_000;
    if (!Number.isSafeInteger(this.budget) || this.budget < 1) {
      throw new RangeError('the instruction budget must be a positive integer');
    }
  }

  /** The processor of `vcpu` (after its first run), for tests and inspection. */
  cpuOf(vcpu: Vcpu): Cpu | undefined {
    return this.vcpus.get(vcpu)?.cpu;
  }

  run(vcpu: Vcpu, exits: ExitPort): void {
    const running = vcpu.running;
    if (running === null) throw new Error(`vCPU ${vcpu.apicId} is not running`);
    const st = this.vcpuState(vcpu);
    let next = this.enter(st, vcpu);
    for (;;) {
      next ??= this.execute(st, vcpu);
      saveToVmsa(st.cpu, vcpu.view);
      // INT_STATE for the host's injection decisions (an SEV-ES guest's RFLAGS are hidden).
      vcpu.intState =
        ((st.cpu.rflags & RFLAGS_IF) !== 0 ? INT_STATE.IF : 0) |
        (st.cpu.shadowEnd === st.cpu.instructions ? INT_STATE.SHADOW : 0);
      vcpu.ghcbMsr[running.vmpl] = st.cpu.ghcbMsr;
      if (exits.exit(vcpu, next) === 'suspend') return;
      if (next === EXIT_SHUTDOWN)
        throw new Error(`the host resumed vCPU ${vcpu.apicId} after a shutdown`);
      next = this.enter(st, vcpu);
    }
  }

  private vcpuState(vcpu: Vcpu): X86Vcpu {
    let st = this.vcpus.get(vcpu);
    if (st !== undefined) return st;
    const machine = this.machine;
    const memory = machine.trackedMemory();
    const rmpInstruction = this.rmpInstruction.bind(this);
    // `st` is assigned below; the platform's closures run only once it is.
    const platform: CpuPlatform = {
      cpuid(eax: number, ecx: number, out: Int32Array): void {
        const r = platformCpuid('Milan', eax >>> 0, ecx >>> 0, 1n, 0n, {
          vcpuCount: machine.vcpus.length,
          apicId: vcpu.apicId,
        });
        out[0] = r.eax | 0;
        out[1] = r.ebx | 0;
        out[2] = r.ecx | 0;
        out[3] = r.edx | 0;
      },
      tsc: (n) => Number(machine.tsc) + (n - st!.runBase),
      pvalidate: (c, lo, hi, size2M, validate) =>
        rmpInstruction(st!, c, lo, hi, (gpa) =>
          machine.rmp.pvalidate(c.vmpl, c.cpl, gpa, size2M, validate),
        ),
      // [uncertain] RDX bits 63:32 are reserved; the RMP ignores every bit above 16 (rmp.ts).
      rmpadjust: (c, lo, hi, size2M, attrLo) =>
        rmpInstruction(st!, c, lo, hi, (gpa) =>
          machine.rmp.rmpadjustRdx(c.vmpl, c.cpl, gpa, size2M, attrLo),
        ),
    };
    // The CPU comes first (the walker reads RFLAGS.AC from it for SMAP), its translator second.
    const cpu = new Cpu(memory.trackedBytes(), NO_TRANSLATOR, this.code, platform);
    const paging = new PagingTranslator(memory, machine.rmp, cpu, machine.cBit, 48, this.code);
    cpu.translator = new StoreMarkingTranslator(paging, memory);
    paging.attach(() => cpu.flushTlb());
    cpu.intercepts = this.opts.interceptTsc === true ? INTERCEPT_RDTSC | INTERCEPT_RDTSCP : 0;
    st = {
      cpu,
      paging,
      interp: new Interpreter(cpu),
      tr: { perm: 0, vector: 0, errorCode: 0 },
      runBase: 0,
      sliceLeft: this.slice,
      control: '',
    };
    this.vcpus.set(vcpu, st);
    return st;
  }

  /**
   * VMRUN: loads the CPU from the running VMSA and delivers a pending injected event. Returns an
   * exit when the entry itself ends in one (a shutdown during injection), else null.
   */
  private enter(st: X86Vcpu, vcpu: Vcpu): VmExit | null {
    const v = vcpu.view;
    const c = st.cpu;
    loadFromVmsa(c, v);
    const vmpl = vcpu.running!.vmpl;
    c.vmpl = vmpl;
    c.ghcbMsr = vcpu.ghcbMsr[vmpl]!;
    const cr0 = v.getBigUint64(VMSA_AT.cr0, true);
    const cr3 = vmsaCr3(v);
    const cr4 = v.getBigUint64(VMSA_AT.cr4, true);
    const efer = v.getBigUint64(VMSA_AT.efer, true);
    // The TLB is not tagged by paging state, VMPL or CPL: flush when any of them changed.
    const control = `${cr0}:${cr3}:${cr4}:${efer}:${vmpl}:${c.cpl}`;
    if (control !== st.control) {
      try {
        st.paging.setControl(cr0, cr3, cr4, efer);
      } catch (e) {
        vcpu.vmexit(SVM_EXIT_ERROR.VMEXIT_INVALID);
        throw new X86StateError(`vCPU ${vcpu.apicId}: ${(e as Error).message}`);
      }
      st.paging.vmpl = vmpl;
      c.flushTlb();
      st.control = control;
    }
    const inj = vcpu.eventInj;
    if ((inj & EVENTINJ_V) === 0) return null;
    vcpu.eventInj = inj & ~EVENTINJ_V;
    const kind = EVENT_KIND[(inj >>> 8) & 7];
    if (kind === undefined) {
      vcpu.vmexit(SVM_EXIT_ERROR.VMEXIT_INVALID);
      throw new X86StateError(
        `vCPU ${vcpu.apicId}: EVENTINJ 0x${inj.toString(16)} has a reserved type`,
      );
    }
    const errorCode = (inj & EVENTINJ_EV) !== 0 ? vcpu.eventInjErrorCode : NO_ERROR_CODE;
    const e = this.deliver(st, c, inj & 0xff, errorCode, kind);
    // An NPF while delivering leaves the event pending, as EXITINTINFO would have it re-injected.
    if (e !== null && e.exitCode === BigInt(SVM_EXIT.NPF)) vcpu.eventInj = inj;
    return e;
  }

  /**
   * Delivers an event into the guest; a triple fault is the SHUTDOWN exit, and a nested page
   * fault on the way (IDT, GDT or stack page not accessible at this VMPL) the NPF exit.
   */
  private deliver(
    st: X86Vcpu,
    c: Cpu,
    vector: number,
    errorCode: number,
    kind: number,
  ): VmExit | null {
    try {
      deliverEvent(c, vector, errorCode, kind);
      return null;
    } catch (e) {
      if (e instanceof ShutdownError) return EXIT_SHUTDOWN;
      if (e instanceof X86Fault && c.exVector === VEC_NPF) {
        return exit(SVM_EXIT.NPF, BigInt(c.exErrorCode), BigInt(st.paging.npfGpa));
      }
      throw e;
    }
  }

  /** The interrupt window the host waited for is open: V_IRQ is consumed by the exit. */
  private vintr(vcpu: Vcpu): VmExit {
    vcpu.vIrq = false;
    return EXIT_VINTR;
  }

  /** Runs the guest until something exits to the host. */
  private execute(st: X86Vcpu, vcpu: Vcpu): VmExit {
    const c = st.cpu;
    for (;;) {
      // V_IRQ: the host waits for the guest's interrupt window; look for it in short steps.
      const waiting = vcpu.vIrq;
      if (waiting && interruptible(c)) return this.vintr(vcpu);
      st.runBase = c.instructions;
      const stop = st.interp.run(waiting ? Math.min(this.budget, VINTR_STEP) : this.budget);
      const ran = c.instructions - st.runBase;
      this.machine.tsc += BigInt(ran);
      st.sliceLeft -= ran;
      switch (stop) {
        case STOP_BUDGET:
          if (waiting && interruptible(c)) return this.vintr(vcpu);
          if (this.slice > 0 && st.sliceLeft <= 0) {
            st.sliceLeft = this.slice;
            return EXIT_INTR;
          }
          continue;
        case STOP_HLT:
          return EXIT_HLT;
        case STOP_EXIT:
          return exit(c.exitCode);
        case STOP_SHUTDOWN:
          return EXIT_SHUTDOWN;
        default: {
          if (c.exVector === VEC_NPF) {
            return exit(SVM_EXIT.NPF, BigInt(c.exErrorCode), BigInt(st.paging.npfGpa));
          }
          const e = this.guestException(c, vcpu);
          if (e !== null) return e;
        }
      }
    }
  }

  /**
   * An exception the guest raised (#VC, #PF, #GP, ...): delivered through its IDT. Returns the exit
   * it ends in (SHUTDOWN on a triple fault) or null to go on running. Tests may override it.
   */
  protected guestException(c: Cpu, vcpu: Vcpu): VmExit | null {
    const st = this.vcpuState(vcpu);
    const v = c.exVector;
    // INT n/INT3/INTO are software interrupts (gate DPL checked, no error code); INT1 and other
    // traps are exceptions without one.
    const kind = c.exKind;
    c.exKind = TRAP_NONE;
    if (kind === TRAP_SOFTWARE) return this.deliver(st, c, v, NO_ERROR_CODE, EVENT_SOFTWARE);
    const err = kind === TRAP_NONE && exceptionHasErrorCode(v) ? c.exErrorCode : NO_ERROR_CODE;
    return this.deliver(st, c, v, err, EVENT_EXCEPTION);
  }

  /**
   * PVALIDATE/RMPADJUST for the CPU: the target's translation (the page need not be validated),
   * then the RMP operation of rmp.ts at the CPU's VMPL and CPL. An RMP nested page fault exits to
   * the host with the page in EXITINFO2; the instruction runs again on resume.
   */
  private rmpInstruction(
    st: X86Vcpu,
    c: Cpu,
    lo: number,
    hi: number,
    op: (gpa: number) => RmpInstructionResult,
  ): RmpOutcome {
    const pfn = st.paging.translateTarget(lo, hi, c.cpl === 3, st.tr);
    if (pfn < 0) {
      if (st.tr.vector === VEC_PF) {
        c.cr2Lo = lo;
        c.cr2Hi = hi;
      }
      c.fault(st.tr.vector, st.tr.errorCode);
    }
    const r = op(pfn * PAGE_SIZE + (lo & 0xfff));
    if (r.kind === 'done') return r;
    if (r.kind === 'exception') c.fault(r.vector, r.errorCode);
    st.paging.npfGpa = pfn * PAGE_SIZE;
    return c.fault(VEC_NPF, r.errorCode);
  }
}
