// The engine that runs the TypeScript SVSM at VMPL0. On the first entry it fetches the SVSM's code
// from guest memory at the VMSA's RIP - through the MMU and the RMP, with execute permission - so
// what runs is what the launch measured, and evaluates it without access to the host's modules.
// Each entry then calls the SVSM's entry point with a Vmpl0 for this vCPU; the SVSM returns when a
// VMGEXIT suspended it (e.g. SNP_RUN_VMPL to its guest).

import {
  CpuFaultError,
  CR0,
  EFER,
  MSR,
  SVSM_CODE_HEADER,
  SVSM_CODE_MAGIC,
  SVSM_ENTRY_SYMBOL,
  type SvsmEntryPoint,
  VECTOR,
  type RmpInstructionOutcome,
  type Vmpl0,
  type Vmpl0Register,
} from '../../arch/index.js';
import type { Engine, ExitPort } from '../engine.js';
import type { Machine } from '../machine.js';
import {
  derivePaging,
  FAULT_NONE,
  FAULT_NPF,
  FAULT_PF,
  type Mmu,
  type PagingRegisters,
  pagingRegisters,
} from '../mmu.js';
import { ACCESS, type Access } from '../rmp.js';
import { PAGE_SIZE } from '../memory.js';
import type { TrackedMemory } from '../tracked-memory.js';
import { type Vcpu, VMSA_AT, vmsaRegisterOffset } from '../vcpu.js';

const SVSM_CODE_HEADER_SIZE = SVSM_CODE_HEADER.size;
const MAX_CODE_BYTES = 64 * 1024 * 1024;

const SVM_EXIT_VMGEXIT = 0x403n;
const SVM_EXIT_NPF = 0x400n;
const SVM_EXIT_SHUTDOWN = 0x7fn;

/** Thrown through the SVSM's stack when the host suspended this VMPL mid-instruction. */
export class VmplSuspended extends Error {
  override readonly name = 'VmplSuspended';
}

/** The SVSM image at RIP cannot be fetched or evaluated. */
export class SvsmLoadError extends Error {
  override readonly name = 'SvsmLoadError';
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/** `va % PAGE_SIZE` without a floating-point modulo (SVSM addresses exceed 32 bits). */
function pageOffset(va: number): number {
  return va - Math.floor(va / PAGE_SIZE) * PAGE_SIZE;
}

/** True when bytes[at, at+n) are all zero (n at most a page). */
function isZero(bytes: Uint8Array, at: number, n: number): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset + at, n).equals(ZERO_PAGE.subarray(0, n));
}

/** Vmpl0 for one vCPU: the CPU's view from VMPL0, CPL0. */
class Vmpl0Cpu implements Vmpl0 {
  readonly vcpuIndex: number;
  readonly apicId: number;
  readonly cBit: number;
  suspended = false;
  private readonly paging: PagingRegisters = pagingRegisters(0n, 0n, 0n, 0n);
  private readonly mmu: Mmu;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  /** Every store below is recorded here (see TrackedMemory). */
  private readonly memory: TrackedMemory;

  constructor(
    private readonly machine: Machine,
    private readonly vcpu: Vcpu,
    private readonly exits: ExitPort,
  ) {
    this.vcpuIndex = machine.vcpus.indexOf(vcpu);
    this.apicId = vcpu.apicId;
    this.cBit = machine.cBit;
    this.mmu = machine.mmus[this.vcpuIndex]!;
    this.memory = machine.trackedMemory();
    this.bytes = this.memory.trackedBytes();
    this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    this.loadPaging();
  }

  /** Refreshes the cached paging registers from the running context. */
  loadPaging(): void {
    const v = this.vcpu.view;
    const p = this.paging;
    p.cr0 = v.getBigUint64(VMSA_AT.cr0, true);
    p.cr3 = v.getBigUint64(VMSA_AT.cr3, true);
    p.cr4 = v.getBigUint64(VMSA_AT.cr4, true);
    p.efer = v.getBigUint64(VMSA_AT.efer, true);
    derivePaging(p);
  }

  /** Translates one access or throws the CPU fault; NPFs go to the host first. */
  gpa(va: number, access: Access): number {
    const t = this.mmu.translate(this.paging, va, access, 0, 0);
    return t.fault === FAULT_NONE ? t.gpa : this.gpaAfterFault(va, access);
  }

  /** `gpa` once the first translation faulted: the NPF goes to the host, and the access retries. */
  private gpaAfterFault(va: number, access: Access): number {
    for (let attempt = 0; ; attempt++) {
      const t = this.mmu.translate(this.paging, va, access, 0, 0);
      if (t.fault === FAULT_NONE) return t.gpa;
      if (t.fault === FAULT_NPF && attempt < 2) {
        const d = this.exits.exit(this.vcpu, {
          exitCode: SVM_EXIT_NPF,
          exitInfo1: BigInt(t.errorCode),
          exitInfo2: BigInt(t.gpa),
        });
        if (d === 'suspend') this.suspend();
        continue;
      }
      if (t.fault === FAULT_PF) throw new CpuFaultError(VECTOR.PF, t.errorCode, va);
      if (t.fault === FAULT_NPF) {
        // The host could not resolve it: the access cannot complete, as a machine check would.
        throw new CpuFaultError(VECTOR.MC, t.errorCode, va);
      }
      throw new CpuFaultError(VECTOR.VC, t.errorCode, va);
    }
  }

  private suspend(): never {
    this.suspended = true;
    throw new VmplSuspended('the host suspended VMPL0 during an instruction');
  }

  read(va: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const at = va + done;
      const n = Math.min(length - done, PAGE_SIZE - pageOffset(at));
      const pa = this.gpa(at, ACCESS.READ);
      out.set(this.bytes.subarray(pa, pa + n), done);
      done += n;
    }
    return out;
  }

  write(va: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) {
      const at = va + done;
      const n = Math.min(data.length - done, PAGE_SIZE - pageOffset(at));
      const pa = this.gpa(at, ACCESS.WRITE);
      this.bytes.set(data.subarray(done, done + n), pa);
      this.memory.markWritten(pa, n);
      done += n;
    }
  }

  fill(va: number, length: number, value: number): void {
    let done = 0;
    while (done < length) {
      const at = va + done;
      const n = Math.min(length - done, PAGE_SIZE - pageOffset(at));
      const pa = this.gpa(at, ACCESS.WRITE);
      // Storing zeros over zeros changes nothing; skipping them spares the host from committing
      // untouched memory (a 2 GiB validation would otherwise fault in every page). A page no one
      // wrote since the machine started is zero without looking.
      if (value !== 0 || (!this.memory.knownZero(pa, n) && !isZero(this.bytes, pa, n))) {
        this.bytes.fill(value, pa, pa + n);
        // Zeros over non-zero bytes are a store too (readers such as decoded-code caches must
        // hear of it); the page was marked before, so marking again loses nothing.
        this.memory.markWritten(pa, n);
      }
      done += n;
    }
  }

  /** Physical address for an aligned-or-not scalar access that may straddle pages. */
  private scalar(va: number, size: number, access: Access): number {
    if (pageOffset(va) <= PAGE_SIZE - size) return this.gpa(va, access);
    return -1;
  }

  readU8(va: number): number {
    return this.bytes[this.gpa(va, ACCESS.READ)]!;
  }
  readU16(va: number): number {
    const pa = this.scalar(va, 2, ACCESS.READ);
    return pa >= 0
      ? this.view.getUint16(pa, true)
      : new DataView(this.read(va, 2).buffer).getUint16(0, true);
  }
  readU32(va: number): number {
    const pa = this.scalar(va, 4, ACCESS.READ);
    return pa >= 0
      ? this.view.getUint32(pa, true)
      : new DataView(this.read(va, 4).buffer).getUint32(0, true);
  }
  readU64(va: number): bigint {
    const pa = this.scalar(va, 8, ACCESS.READ);
    return pa >= 0
      ? this.view.getBigUint64(pa, true)
      : new DataView(this.read(va, 8).buffer).getBigUint64(0, true);
  }
  writeU8(va: number, value: number): void {
    const pa = this.gpa(va, ACCESS.WRITE);
    this.bytes[pa] = value;
    this.memory.markWritten(pa, 1);
  }
  writeU16(va: number, value: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    this.write(va, b);
  }
  writeU32(va: number, value: number): void {
    const pa = this.scalar(va, 4, ACCESS.WRITE);
    if (pa >= 0) {
      this.view.setUint32(pa, value >>> 0, true);
      this.memory.markWritten(pa, 4);
    } else {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, value >>> 0, true);
      this.write(va, b);
    }
  }
  writeU64(va: number, value: bigint): void {
    const pa = this.scalar(va, 8, ACCESS.WRITE);
    if (pa >= 0) {
      this.view.setBigUint64(pa, BigInt.asUintN(64, value), true);
      this.memory.markWritten(pa, 8);
    } else {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
      this.write(va, b);
    }
  }

  readCr(n: 0 | 3 | 4): bigint {
    return n === 0 ? this.paging.cr0 : n === 3 ? this.paging.cr3 : this.paging.cr4;
  }
  writeCr(n: 0 | 3 | 4, value: bigint): void {
    const r = this.vcpu.regs;
    if (n === 0) {
      r.set('cr0', value);
      // Enabling paging with EFER.LME set activates long mode (EFER.LMA), as the CPU does.
      const efer = r.get('efer');
      const lme = EFER.has(efer, 'LME');
      const pg = CR0.has(value, 'PG');
      r.set('efer', EFER.with(efer, 'LMA', lme && pg));
    } else if (n === 3) r.set('cr3', value);
    else r.set('cr4', value);
    this.loadPaging();
    this.mmu.flush();
  }
  readEfer(): bigint {
    return this.paging.efer;
  }
  writeEfer(value: bigint): void {
    // EFER.LMA follows LME once paging is enabled, as the CPU does.
    this.vcpu.regs.set('efer', value);
    this.loadPaging();
    this.mmu.flush();
  }
  invlpg(va: number): void {
    this.mmu.invlpg(va);
  }
  flushTlb(): void {
    this.mmu.flush();
  }

  /** Translation for PVALIDATE/RMPADJUST: the target page itself need not be validated yet. */
  private targetGpa(va: number): number {
    const t = this.mmu.translate(this.paging, va, ACCESS.READ, 0, 0);
    if (t.fault === FAULT_NONE) return t.gpa;
    if (t.fault === FAULT_PF) throw new CpuFaultError(VECTOR.PF, t.errorCode, va);
    // The walk itself succeeded if only the final RMP check failed: recover the address.
    const pa = this.mmu.translateWalkOnly(this.paging, va);
    if (pa >= 0) return pa;
    throw new CpuFaultError(VECTOR.VC, t.errorCode, va);
  }

  /** Runs an RMP instruction; an NPF goes to the host, and the instruction retries once. */
  private rmpInstruction(
    op: () => ReturnType<Machine['rmp']['pvalidate']>,
    va: number,
    gpa: number,
  ): RmpInstructionOutcome {
    for (let attempt = 0; ; attempt++) {
      const r = op();
      if (r.kind === 'done') return { rax: r.rax, carry: r.carry };
      if (r.kind === 'exception') throw new CpuFaultError(r.vector, r.errorCode, va);
      if (attempt >= 1) throw new CpuFaultError(VECTOR.MC, r.errorCode, va);
      const d = this.exits.exit(this.vcpu, {
        exitCode: SVM_EXIT_NPF,
        exitInfo1: BigInt(r.errorCode),
        exitInfo2: BigInt(gpa - (gpa % PAGE_SIZE)),
      });
      if (d === 'suspend') this.suspend();
    }
  }

  pvalidate(va: number, size2M: boolean, validate: boolean): RmpInstructionOutcome {
    const pa = this.targetGpa(va);
    return this.rmpInstruction(
      () => this.machine.rmp.pvalidate(0, 0, pa, size2M, validate),
      va,
      pa,
    );
  }

  rmpadjust(va: number, size2M: boolean, attributes: number): RmpInstructionOutcome {
    const pa = this.targetGpa(va);
    return this.rmpInstruction(
      () => this.machine.rmp.rmpadjustRdx(0, 0, pa, size2M, attributes),
      va,
      pa,
    );
  }

  rdmsr(msr: number): bigint {
    if (msr === MSR.GHCB) return this.vcpu.ghcbMsr[0]!;
    if (msr === MSR.SEV_STATUS) {
      return (this.vcpu.view.getBigUint64(VMSA_AT.sevFeatures, true) << 2n) | 0b111n;
    }
    if (msr === MSR.EFER) return this.paging.efer;
    if (msr === MSR.TSC) return this.rdtsc();
    // Every other MSR is intercepted under SEV-ES: #VC with the MSR exit code.
    throw new CpuFaultError(VECTOR.VC, 0x7c, msr);
  }

  wrmsr(msr: number, value: bigint): void {
    if (msr === MSR.GHCB) {
      this.vcpu.ghcbMsr[0] = BigInt.asUintN(64, value);
      return;
    }
    if (msr === MSR.EFER) {
      this.writeEfer(value);
      return;
    }
    throw new CpuFaultError(VECTOR.VC, 0x7c, msr);
  }

  vmgexit(): boolean {
    this.machine.tsc += 1000n;
    const d = this.exits.exit(this.vcpu, {
      exitCode: SVM_EXIT_VMGEXIT,
      exitInfo1: 0n,
      exitInfo2: 0n,
    });
    if (d === 'suspend') {
      this.suspended = true;
      return false;
    }
    this.loadPaging();
    return true;
  }

  rdrand(bytes: Uint8Array): void {
    this.machine.random.fill(bytes);
  }

  rdtsc(): bigint {
    this.machine.tsc += 100n;
    return this.machine.tsc;
  }

  readRegister(name: Vmpl0Register): bigint {
    return this.vcpu.view.getBigUint64(vmsaRegisterOffset(name), true);
  }

  writeRegister(name: Vmpl0Register, value: bigint): void {
    this.vcpu.view.setBigUint64(vmsaRegisterOffset(name), BigInt.asUintN(64, value), true);
  }
}

export class SvsmEngine implements Engine {
  private entry: SvsmEntryPoint | null = null;
  private readonly cpus = new Map<Vcpu, Vmpl0Cpu>();

  constructor(private readonly machine: Machine) {}

  run(vcpu: Vcpu, exits: ExitPort): void {
    let cpu = this.cpus.get(vcpu);
    if (cpu === undefined) {
      cpu = new Vmpl0Cpu(this.machine, vcpu, exits);
      this.cpus.set(vcpu, cpu);
    }
    cpu.suspended = false;
    cpu.loadPaging();
    const entry = this.entry ?? (this.entry = this.load(cpu, vcpu));
    try {
      entry(cpu);
    } catch (e) {
      if (e instanceof VmplSuspended) return;
      throw e;
    }
    if (!cpu.suspended) {
      // Returning without a suspending VMGEXIT is like running off the end of the code: shutdown.
      if (
        exits.exit(vcpu, { exitCode: SVM_EXIT_SHUTDOWN, exitInfo1: 0n, exitInfo2: 0n }) === 'resume'
      ) {
        throw new Error('the host resumed VMPL0 after a shutdown');
      }
    }
  }

  /** Fetches the code image at RIP (execute accesses through MMU and RMP) and evaluates it. */
  private load(cpu: Vmpl0Cpu, vcpu: Vcpu): SvsmEntryPoint {
    const rip = Number(vcpu.regs.get('rip'));
    const fetch = (va: number, n: number): Uint8Array => {
      const out = new Uint8Array(n);
      for (let done = 0; done < n;) {
        const at = va + done;
        const k = Math.min(n - done, PAGE_SIZE - pageOffset(at));
        const pa = cpu.gpa(at, ACCESS.EXECUTE);
        out.set(
          this.machine
            .trackedMemory()
            .trackedBytes()
            .subarray(pa, pa + k),
          done,
        );
        done += k;
      }
      return out;
    };
    const header = fetch(rip, SVSM_CODE_HEADER_SIZE);
    if (!SVSM_CODE_MAGIC.every((b, i) => header[i] === b)) {
      throw new SvsmLoadError(`no SVSM code image at RIP 0x${rip.toString(16)}`);
    }
    const length = new DataView(header.buffer).getUint32(8, true);
    if (length === 0 || length > MAX_CODE_BYTES) {
      throw new SvsmLoadError(`SVSM code image length ${length} is not plausible`);
    }
    const code = new TextDecoder('utf-8', { fatal: true }).decode(
      fetch(rip + SVSM_CODE_HEADER_SIZE, length),
    );
    // The bundle is an IIFE that defines `svsm`; a Function body sees no module system, so the
    // SVSM can reach nothing of the host process but what the Vmpl0 interface hands it.
    let mod: unknown;
    try {
      mod = new Function(`${code}\n;return typeof svsm === 'undefined' ? undefined : svsm;`)();
    } catch (e) {
      throw new SvsmLoadError(`the SVSM code image does not evaluate: ${(e as Error).message}`);
    }
    const entry = (mod as Record<string, unknown> | undefined)?.[SVSM_ENTRY_SYMBOL];
    if (typeof entry !== 'function') {
      throw new SvsmLoadError(`the SVSM code image does not export ${SVSM_ENTRY_SYMBOL}`);
    }
    return entry as SvsmEntryPoint;
  }
}
