// The state of one x86-64 logical processor and its memory path.
//
// Registers are 32-bit halves in one Int32Array (BigInt costs 4-5x on the hot path, see
// reference/x86-emulation.md section 2): GPR n has its low half at r[2n] and high half at r[2n+1];
// RIP is at r[32], r[33]. Memory goes through a direct-mapped TLB of typed arrays; a miss asks the
// Translator. Faults are raised by throwing the one preallocated `X86Fault` (no allocation), with
// vector, error code and CR2 in fields of the CPU; the run loop catches it.

import { CodeCache } from './code-cache.js';
import { LazyFlags, RF, TF } from './flags.js';
import { Segment } from './segment.js';
import { SimdState } from './simd-state.js';
import {
  ACCESS_EXEC,
  ACCESS_READ,
  ACCESS_WRITE,
  PERM_R,
  PERM_W,
  PERM_X,
  type TranslateResult,
  type Translator,
} from './translator.js';

export const RAX = 0;
export const RCX = 1;
export const RDX = 2;
export const RBX = 3;
export const RSP = 4;
export const RBP = 5;
export const RSI = 6;
export const RDI = 7;
/** Index of RIP's low half in `r`. */
export const RIP_LO = 32;

/** Segment register numbers (Sreg encoding). */
export const SEG_ES = 0;
export const SEG_CS = 1;
export const SEG_SS = 2;
export const SEG_DS = 3;
export const SEG_FS = 4;
export const SEG_GS = 5;
/** The system segment registers, after the six Sregs in `Cpu.seg`. */
export const SEG_LDTR = 6;
export const SEG_TR = 7;

/** Execution modes (`Cpu.mode`), from CR0.PE, EFER.LMA and CS.L/D; recomputed on CS loads. */
export const MODE_64 = 0;
/** Compatibility mode (long mode, CS.L = 0) or legacy protected mode, 32-bit default (CS.D). */
export const MODE_PROT32 = 1;
export const MODE_PROT16 = 2;
export const MODE_REAL = 3;

/** Exception vectors raised by this core (APM vol. 2, 8.2). */
export const VEC_DE = 0;
export const VEC_DB = 1;
export const VEC_NMI = 2;
export const VEC_BP = 3;
export const VEC_OF = 4;
export const VEC_BR = 5;
export const VEC_UD = 6;
export const VEC_NM = 7;
export const VEC_DF = 8;
export const VEC_TS = 10;
export const VEC_NP = 11;
export const VEC_SS = 12;
export const VEC_GP = 13;
export const VEC_PF = 14;
export const VEC_MF = 16;
export const VEC_AC = 17;
export const VEC_MC = 18;
export const VEC_XF = 19;
/** #VC, the VMM communication exception of SEV-ES/SNP guests (error code = SVM exit code). */
export const VEC_VC = 29;

/** `Cpu.exKind`: a fault (RIP back at the instruction), or a trap of either kind. */
export const TRAP_NONE = 0;
/** INT n, INT3, INTO: a software interrupt (gate DPL checked, no error code). */
export const TRAP_SOFTWARE = 1;
/** INT1 (ICEBP) and other traps delivered as exceptions without a DPL check. */
export const TRAP_EXCEPTION = 2;

const TLB_BITS = 10;
const TLB_SIZE = 1 << TLB_BITS;
const TLB_MASK = TLB_SIZE - 1;
const PAGE_MASK = 0xfff;

/** Thrown (always the same instance) when an instruction raises an exception. */
export class X86Fault extends Error {
  override readonly name = 'X86Fault';
}
const FAULT = new X86Fault('x86 exception');

/** What the processor asks its surroundings: CPUID values and the time-stamp counter. */
export interface CpuPlatform {
  /** Fills out[0..3] with EAX, EBX, ECX, EDX for leaf `eax`, subleaf `ecx`. */
  cpuid(eax: number, ecx: number, out: Int32Array): void;
  /** TSC value after `instructions` retired instructions, as a non-negative number < 2^53. */
  tsc(instructions: number): number;
  /** Port input (IN, INS) of `size` bytes (1, 2, 4). Absent: reads return all ones. */
  ioIn?(port: number, size: number): number;
  /** Port output (OUT, OUTS). Absent: writes are dropped. */
  ioOut?(port: number, size: number, value: number): void;
  /** An MSR the CPU does not hold itself; undefined raises #GP(0). */
  rdmsr?(msr: number): bigint | undefined;
  /** Writes an MSR the CPU does not hold itself; false raises #GP(0). */
  wrmsr?(msr: number, value: bigint): boolean;
  /**
   * PVALIDATE of the page at virtual hi:lo (RAX) for `cpu` at its CPL and VMPL, after the CPU's
   * own checks. Translates the address (the page itself need not be validated yet) and updates the
   * RMP; faults are raised with `cpu.fault` (VEC_NPF with the translator's npfGpa for an RMP
   * nested page fault). Absent: #UD.
   */
  pvalidate?(cpu: Cpu, lo: number, hi: number, size2M: boolean, validate: boolean): RmpOutcome;
  /** RMPADJUST of the page at virtual hi:lo with RDX = attrHi:attrLo; as `pvalidate`. */
  rmpadjust?(
    cpu: Cpu,
    lo: number,
    hi: number,
    size2M: boolean,
    attrLo: number,
    attrHi: number,
  ): RmpOutcome;
}

/** What PVALIDATE and RMPADJUST return: EAX and rFLAGS.CF. */
export interface RmpOutcome {
  readonly rax: number;
  readonly carry: boolean;
}

/** `Cpu.intercepts` bits: instructions the hypervisor intercepts beyond the fixed set (io.ts). */
export const INTERCEPT_RDTSC = 1;
export const INTERCEPT_RDTSCP = 2;

/** A deterministic default: vendor AuthenticAMD, nothing else advertised; TSC = instructions. */
export const MINIMAL_PLATFORM: CpuPlatform = {
  cpuid(eax: number, _ecx: number, out: Int32Array): void {
    out.fill(0);
    if (eax === 0) {
      out[0] = 1;
      out[1] = 0x68747541; // "Auth"
      out[3] = 0x69746e65; // "enti"
      out[2] = 0x444d4163; // "cAMD"
    }
  },
  tsc: (n) => n,
};

export class Cpu {
  /** GPRs and RIP as 32-bit halves (see the file comment). */
  readonly r = new Int32Array(34);
  /** Segment bases, low/high halves, by Sreg number. Only FS and GS matter in 64-bit mode. */
  readonly segBase = new Int32Array(12);
  readonly flags = new LazyFlags();
  /** XMM, MXCSR and x87 state (simd-state.ts). */
  readonly simd = new SimdState();
  /** Current privilege level. */
  cpl = 0;
  /**
   * The guest runs with SEV-ES/SNP state protection: intercepted instructions raise #VC (vector
   * 29, error code = exit code) instead of exiting, and only VMGEXIT and automatic exits leave.
   */
  sevEs = false;
  /** The VMPL this CPU runs at (RMP checks, PVALIDATE/RMPADJUST permission). */
  vmpl = 0;
  /**
   * Control registers and EFER as the engine last set them (APM vol. 2, 3.1). The defaults
   * describe the 64-bit flat mode this interpreter assumed before modes existed: PE, MP, ET, NE,
   * WP, PG; PAE, PGE, OSFXSR, OSXMMEXCPT; SCE, LME, LMA, NXE.
   */
  cr0 = 0x80050033;
  cr4 = 0x6a0;
  efer = 0xd01;
  /** CR3 (written by MOV CR3; `controlChanged()` hands it to the translator). */
  cr3 = 0n;
  /** CR8, the task priority (bits 3:0). */
  cr8 = 0;
  /**
   * DR0-DR3, DR6, DR7. After changing DR0-3 or DR7 directly call `debugChanged` (debug.ts), which
   * decodes the enabled breakpoints into the `bp*` fields below.
   */
  readonly dr: bigint[] = [0n, 0n, 0n, 0n];
  dr6 = 0xffff0ff0n;
  dr7 = 0x400n;
  /**
   * ES, CS, SS, DS, FS, GS, LDTR, TR (SEG_*): selector and hidden part. The defaults are the flat
   * 64-bit ring-0 state the interpreter assumed before modes existed. Change them through
   * `setSegment` (it keeps `segBase` and `mode` in step).
   */
  readonly seg: Segment[] = [
    new Segment(0, 0n, 0xffffffff, 0xc93),
    new Segment(0, 0n, 0xffffffff, 0xa9b),
    new Segment(0, 0n, 0xffffffff, 0xc93),
    new Segment(0, 0n, 0xffffffff, 0xc93),
    new Segment(0, 0n, 0xffffffff, 0xc93),
    new Segment(0, 0n, 0xffffffff, 0xc93),
    new Segment(0, 0n, 0xffff, 0x82),
    new Segment(0, 0n, 0xffff, 0x8b),
  ];
  gdtrBase = 0n;
  gdtrLimit = 0xffff;
  idtrBase = 0n;
  idtrLimit = 0xffff;
  /** MSRs the CPU holds (APM vol. 2, appendix A); FS_BASE/GS_BASE live in `seg`. */
  star = 0n;
  lstar = 0n;
  cstar = 0n;
  sfmask = 0n;
  kernelGsBase = 0n;
  tscAux = 0n;
  pat = 0x0007040600070406n;
  sysenterCs = 0n;
  sysenterEsp = 0n;
  sysenterEip = 0n;
  /** MODE_* of the code segment; decoder defaults follow it. */
  mode = MODE_64;
  /**
   * Non-zero when the run loop must look at something between instructions (a pending
   * interrupt or NMI, a mode the decoder does not run). One load per instruction.
   */
  attention = 0;
  /** Faults and INT n go through the IDT and execution continues (else STOP_EXCEPTION). */
  deliverFaults = false;
  /** External interrupt vector waiting for IF (-1: none); NMI waiting; NMI blocked until IRET. */
  pendingIrq = -1;
  pendingNmi = false;
  nmiBlocked = false;
  /**
   * Called when a requested interrupt is taken (the INTA cycle: an APIC moves the vector from IRR
   * to ISR then). `pendingIrq` holds one vector: the interrupt controller decides which.
   */
  onInterruptTaken: ((vector: number) => void) | null = null;
  /**
   * Called after each event is delivered through the IDT (RIP at the handler): the final vector
   * (after any #DF escalation) and its error code, or -1 when it pushes none. For tracers.
   */
  onEvent: ((vector: number, errorCode: number) => void) | null = null;
  /** Interrupts are not taken at the boundary where `instructions` equals this (STI, MOV SS). */
  shadowEnd = -1;
  /** TRAP_* of the last event raised (`trap` sets it, `fault` clears it). */
  exKind = 0;
  /** The GHCB MSR (0xC0010130), held by the CPU for SEV-ES guests (synced with the Vcpu). */
  ghcbMsr = 0n;
  /**
   * Optional intercepts (INTERCEPT_*) the hypervisor set: under `sevEs` these instructions raise
   * #VC. The always-intercepted ones (CPUID, IOIO, VMMCALL, WBINVD, INVD, MONITOR, MWAIT) do not
   * need a bit.
   */
  intercepts = 0;
  /**
   * Set by HLT, or by an instruction that ends in a #VMEXIT once it completed (VMGEXIT, whose
   * exit code is then in `exitCode`); the run loop stops and the engine decides what happens.
   */
  halted = false;
  /** The #VMEXIT an instruction asked for after completing (-1: none; HLT leaves it -1). */
  exitCode = -1;
  /** Retired instructions. */
  instructions = 0;

  /** Exception raised by the last faulting instruction. */
  exVector = -1;
  exErrorCode = 0;
  /** CR2 (the #PF linear address), halves. */
  cr2Lo = 0;
  cr2Hi = 0;
  /** RIP of the instruction being executed (for faults), halves. */
  startLo = 0;
  startHi = 0;

  /** High half of the last 64-bit value a read returned (the low half is the return value). */
  v1 = 0;
  /** Effective address of the last memory operand, halves. */
  a0 = 0;
  a1 = 0;
  /** CPUID output scratch. */
  readonly cpuidOut = new Int32Array(4);

  readonly mem: Uint8Array;
  private readonly view: DataView;
  // The TLB: tag = virtual page number bits 12..43 (tag0) and 44..63 (tag1, -1 = invalid).
  // Translations and their permissions depend on the privilege (U/S, SMEP, SMAP), so user (CPL 3)
  // and supervisor (CPL 0-2) each have their own set: a change of privilege (SYSCALL/SYSRET, an
  // interrupt from user mode, IRET back) swaps the sets instead of flushing.
  private tlbTag0 = new Int32Array(TLB_SIZE);
  private tlbTag1 = new Int32Array(TLB_SIZE).fill(-1);
  private tlbBase = new Float64Array(TLB_SIZE);
  private tlbPerm = new Int32Array(TLB_SIZE);
  private otherTag0 = new Int32Array(TLB_SIZE);
  private otherTag1 = new Int32Array(TLB_SIZE).fill(-1);
  private otherBase = new Float64Array(TLB_SIZE);
  private otherPerm = new Int32Array(TLB_SIZE);
  private readonly tr: TranslateResult = { perm: 0, vector: 0, errorCode: 0 };

  // Debug state (debug.ts), declared last so the hot fields above keep their object layout.
  /** Enabled breakpoints by number (bit n): instruction (R/W 00), data (01, 11), writes only. */
  bpExec = 0;
  bpWatch = 0;
  bpWriteOnly = 0;
  /** Breakpoint n's linear address (aligned to its length), halves, and length in bytes. */
  readonly bpLo = new Int32Array(4);
  readonly bpHi = new Int32Array(4);
  readonly bpLen = new Int32Array(4);
  /**
   * The #DB trap of the instruction that started when `instructions` was `dbArmedAt` (-1: none):
   * the DR6 bits it raised (BS, B0-B3). See debug.ts.
   */
  dbArmedAt = -1;
  dbHits = 0;
  /** Debug traps wait at the boundary where `instructions` equals this (MOV SS, POP SS). */
  ssShadowEnd = -1;

  constructor(
    /** Physical memory (guest physical address = index). */
    mem: Uint8Array,
    public translator: Translator,
    readonly code: CodeCache = new CodeCache(Math.ceil(mem.length / 4096)),
    readonly platform: CpuPlatform = MINIMAL_PLATFORM,
  ) {
    this.mem = mem;
    this.view = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    code.onProtect((pfn) => this.dropWrite(pfn));
  }

  // --- registers --------------------------------------------------------------------------

  /** A GPR as a bigint (for tests, tools and module boundaries; not for the hot path). */
  getReg64(n: number): bigint {
    return (BigInt(this.r[2 * n + 1]! >>> 0) << 32n) | BigInt(this.r[2 * n]! >>> 0);
  }

  setReg64(n: number, v: bigint): void {
    this.r[2 * n] = Number(v & 0xffffffffn) | 0;
    this.r[2 * n + 1] = Number((v >> 32n) & 0xffffffffn) | 0;
  }

  get rip(): bigint {
    return this.getReg64(16);
  }

  set rip(v: bigint) {
    this.setReg64(16, v);
  }

  /** RFLAGS (low 32 bits; the high half is reserved zero). */
  get rflags(): number {
    return this.flags.get();
  }

  set rflags(v: number) {
    this.flags.put(v);
    this.updateAttention(); // TF or RF may have been set
  }

  /**
   * Reads register `n` at `size` bytes; the high half goes to `v1`. For size 1, n is byte-register
   * coded: 0..15 are the low bytes, 16..19 are AH, CH, DH, BH.
   */
  getReg(n: number, size: number): number {
    const r = this.r;
    switch (size) {
      case 8:
        this.v1 = r[2 * n + 1]!;
        return r[2 * n]!;
      case 4:
        this.v1 = 0;
        return r[2 * n]!;
      case 2:
        this.v1 = 0;
        return r[2 * n]! & 0xffff;
      default:
        this.v1 = 0;
        return n < 16 ? r[2 * n]! & 0xff : (r[2 * (n - 16)]! >> 8) & 0xff;
    }
  }

  /** Writes register `n` at `size` bytes: 32-bit writes zero the high half, 8/16 merge. */
  setReg(n: number, size: number, lo: number, hi: number): void {
    const r = this.r;
    switch (size) {
      case 8:
        r[2 * n] = lo;
        r[2 * n + 1] = hi;
        return;
      case 4:
        r[2 * n] = lo;
        r[2 * n + 1] = 0;
        return;
      case 2:
        r[2 * n] = (r[2 * n]! & ~0xffff) | (lo & 0xffff);
        return;
      default:
        if (n < 16) r[2 * n] = (r[2 * n]! & ~0xff) | (lo & 0xff);
        else r[2 * (n - 16)] = (r[2 * (n - 16)]! & ~0xff00) | ((lo & 0xff) << 8);
    }
  }

  // --- system state -----------------------------------------------------------------------

  /**
   * Loads segment register `n` (SEG_*) without checks, as from a VMSA: `attr` is the 12-bit
   * VMSA attribute (descriptor bits 40-47 in 0-7, 52-55 in 8-11: type, S, DPL, P, AVL, L, D/B, G).
   */
  setSegment(n: number, selector: number, base: bigint, limit: number, attr: number): void {
    const s = this.seg[n]!;
    s.selector = selector & 0xffff;
    s.base = BigInt.asUintN(64, base);
    s.limit = limit >>> 0;
    s.attr = attr & 0xfff;
    if (n < 6) {
      this.segBase[2 * n] = Number(s.base & 0xffffffffn) | 0;
      this.segBase[2 * n + 1] = Number(s.base >> 32n) | 0;
    }
    if (n === 1 || n === 2) this.updateMode();
  }

  /** Sets a segment base only (FS_BASE/GS_BASE MSRs, SWAPGS). */
  setSegmentBase(n: number, base: bigint): void {
    const s = this.seg[n]!;
    s.base = BigInt.asUintN(64, base);
    this.segBase[2 * n] = Number(s.base & 0xffffffffn) | 0;
    this.segBase[2 * n + 1] = Number(s.base >> 32n) | 0;
  }

  /**
   * Recomputes `mode` and CPL-independent decoder defaults from CR0.PE, EFER.LMA and CS; call
   * after changing them directly. CPL is CS.RPL in protected mode (SS.DPL is kept equal).
   */
  updateMode(): void {
    const cs = this.seg[1]!.attr;
    let m: number;
    if ((this.cr0 & 1) === 0) m = MODE_REAL;
    else if ((this.efer & 0x400) !== 0 && (cs & 0x200) !== 0) m = MODE_64;
    else m = (cs & 0x400) !== 0 ? MODE_PROT32 : MODE_PROT16;
    this.mode = m;
    this.updateAttention();
  }

  /** Recomputes `attention` from what is pending. */
  updateAttention(): void {
    this.attention =
      this.mode !== MODE_64 ||
      this.pendingNmi ||
      this.pendingIrq >= 0 ||
      (this.flags.bits & (TF | RF)) !== 0 ||
      (this.bpExec | this.bpWatch) !== 0 ||
      this.dbArmedAt >= 0
        ? 1
        : 0;
  }

  /** Requests external interrupt `vector` (taken when RFLAGS.IF allows, outside a shadow). */
  requestInterrupt(vector: number): void {
    this.pendingIrq = vector & 0xff;
    this.attention = 1;
  }

  /** Requests an NMI (taken unless an NMI handler runs, until its IRET). */
  requestNmi(): void {
    this.pendingNmi = true;
    this.attention = 1;
  }

  /**
   * CR0, CR3, CR4 or EFER changed (MOV CRn, WRMSR EFER, the engine loading a VMSA): EFER.LMA
   * follows LME and PG, the translator gets the new registers, the TLB is flushed, the mode is
   * recomputed.
   */
  controlChanged(): void {
    if ((this.cr0 & 0x80000000) !== 0 && (this.efer & 0x100) !== 0) this.efer |= 0x400;
    else this.efer &= ~0x400;
    this.translator.setControl?.(
      BigInt(this.cr0 >>> 0),
      this.cr3,
      BigInt(this.cr4 >>> 0),
      BigInt(this.efer >>> 0),
    );
    this.flushTlb();
    this.updateMode();
  }

  /** Changes CPL; between user and supervisor the TLB sets are swapped. */
  setCpl(cpl: number): void {
    if ((cpl === 3) !== (this.cpl === 3)) {
      // Plain swaps (no destructuring arrays: this runs on every SYSCALL and SYSRET).
      const tag0 = this.tlbTag0;
      this.tlbTag0 = this.otherTag0;
      this.otherTag0 = tag0;
      const tag1 = this.tlbTag1;
      this.tlbTag1 = this.otherTag1;
      this.otherTag1 = tag1;
      const base = this.tlbBase;
      this.tlbBase = this.otherBase;
      this.otherBase = base;
      const perm = this.tlbPerm;
      this.tlbPerm = this.otherPerm;
      this.otherPerm = perm;
    }
    this.cpl = cpl;
  }

  /**
   * An implicit supervisor read (descriptor tables, TSS, IDT) of `size` bytes (1, 2, 4, 8; the
   * high half of 8 in `v1`). It bypasses the TLB so no supervisor permission is cached for user
   * accesses.
   */
  sysRead(lo: number, hi: number, size: number): number {
    let v0 = 0;
    let v1 = 0;
    for (let k = size - 1; k >= 0; k--) {
      const b = this.mem[this.sysTranslate(lo, hi, k, ACCESS_READ)]!;
      if (k >= 4) v1 = (v1 << 8) | b;
      else v0 = (v0 << 8) | b;
    }
    this.v1 = v1;
    return size === 4 || size === 8 ? v0 | 0 : v0;
  }

  /** An implicit supervisor write (descriptor accessed/busy bits). */
  sysWrite(lo: number, hi: number, size: number, v0: number, v1: number): void {
    const pas: number[] = [];
    for (let k = 0; k < size; k++) pas.push(this.sysTranslate(lo, hi, k, ACCESS_WRITE));
    for (let k = 0; k < size; k++) {
      const pa = pas[k]!;
      if (this.code.hasCode[pa >>> 12] !== 0) this.code.invalidatePage(Math.floor(pa / 4096));
      this.mem[pa] = (k < 4 ? v0 >>> (8 * k) : v1 >>> (8 * (k - 4))) & 0xff;
    }
  }

  private sysTranslate(lo: number, hi: number, k: number, access: number): number {
    const a = (lo + k) | 0;
    const h = a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
    if (h >> 15 !== h >> 31) this.fault(VEC_GP, 0);
    const tr = this.tr;
    const pfn = this.translator.translate(a, h, access, false, tr);
    if (pfn < 0) {
      if (tr.vector === VEC_PF) {
        this.cr2Lo = a;
        this.cr2Hi = h;
      }
      this.fault(tr.vector, tr.errorCode);
    }
    return pfn * 4096 + (a & PAGE_MASK);
  }

  // --- exceptions -------------------------------------------------------------------------

  /** Raises exception `vector` with `errorCode`: never returns. */
  fault(vector: number, errorCode = 0): never {
    this.exVector = vector;
    this.exErrorCode = errorCode;
    this.exKind = TRAP_NONE;
    throw FAULT;
  }

  /**
   * Raises a trap-like event after the instruction completed (RIP stays past it): INT n, INT3,
   * INTO (`TRAP_SOFTWARE`, gate DPL checked) or INT1 (`TRAP_EXCEPTION`).
   */
  trap(vector: number, kind: number): never {
    this.exVector = vector;
    this.exErrorCode = 0;
    this.exKind = kind;
    throw FAULT;
  }

  // --- TLB --------------------------------------------------------------------------------

  /** Forgets every translation, of both privileges (CR3 write, paging mode change...). */
  flushTlb(): void {
    this.tlbTag1.fill(-1);
    this.otherTag1.fill(-1);
  }

  /** INVLPG: forgets the translations of one virtual page. */
  invlpg(lo: number, hi: number): void {
    const i = ((lo >>> 12) | (hi << 20)) & TLB_MASK;
    this.tlbTag1[i] = -1;
    this.otherTag1[i] = -1;
  }

  /** Takes write permission away from cached translations to physical page `pfn`. */
  private dropWrite(pfn: number): void {
    const base = pfn * 4096;
    for (let i = 0; i < TLB_SIZE; i++) {
      if (this.tlbBase[i] === base) this.tlbPerm[i]! &= ~PERM_W;
      if (this.otherBase[i] === base) this.otherPerm[i]! &= ~PERM_W;
    }
  }

  /**
   * The physical address of virtual hi:lo for `access`, filling the TLB on a miss; faults if the
   * translation does. The access must not cross a page (callers split).
   */
  translate(lo: number, hi: number, access: number): number {
    const need = access === ACCESS_READ ? PERM_R : access === ACCESS_WRITE ? PERM_W : PERM_X;
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & need) !== 0
    ) {
      return this.tlbBase[i]! + (lo & PAGE_MASK);
    }
    // Canonical: bits 63..47 equal (APM vol. 2, 5.3.1). #GP(0) (#SS for stack accesses, which
    // callers do not distinguish yet).
    if (hi >> 15 !== hi >> 31) this.fault(VEC_GP, 0);
    const tr = this.tr;
    const pfn = this.translator.translate(lo, hi, access, this.cpl === 3, tr);
    if (pfn < 0) {
      if (tr.vector === VEC_PF) {
        this.cr2Lo = lo;
        this.cr2Hi = hi;
      }
      this.fault(tr.vector, tr.errorCode);
    }
    let perm = tr.perm;
    // A page with a data breakpoint is cached without data permissions, so that every data
    // access to it comes back here (debug.ts).
    if (this.bpWatch !== 0 && this.watch(lo, hi, access)) perm &= ~(PERM_R | PERM_W);
    if (this.code.hasCode[pfn] !== 0) {
      // A store into decoded code: forget the page's decodings first.
      if (access === ACCESS_WRITE) this.code.invalidatePage(pfn);
      else perm &= ~PERM_W;
    }
    this.tlbTag0[i] = t0;
    this.tlbTag1[i] = hi >>> 12;
    this.tlbBase[i] = pfn * 4096;
    this.tlbPerm[i] = perm;
    return pfn * 4096 + (lo & PAGE_MASK);
  }

  /**
   * Data breakpoints: records in `dbHits` the enabled ones byte hi:lo hits with `access`;
   * returns whether its page holds a watched byte.
   */
  private watch(lo: number, hi: number, access: number): boolean {
    let page = false;
    const a = lo >>> 0;
    for (let n = 0; n < 4; n++) {
      const bit = 1 << n;
      if ((this.bpWatch & bit) === 0 || this.bpHi[n] !== hi) continue;
      const start = this.bpLo[n]! >>> 0;
      if (a >>> 12 !== start >>> 12) continue;
      page = true;
      if (access === ACCESS_EXEC || (access === ACCESS_READ && (this.bpWriteOnly & bit) !== 0)) {
        continue;
      }
      if ((a - start) >>> 0 < this.bpLen[n]!) this.dbHits |= bit;
    }
    return page;
  }

  // --- memory -----------------------------------------------------------------------------
  // Fast path: TLB hit with the permission and the access inside one page. The slow path
  // translates and splits page-crossing accesses into bytes.

  read8(lo: number, hi: number): number {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_R) !== 0
    ) {
      return this.mem[this.tlbBase[i]! + (lo & PAGE_MASK)]!;
    }
    return this.mem[this.translate(lo, hi, ACCESS_READ)]!;
  }

  read16(lo: number, hi: number): number {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    const off = lo & PAGE_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_R) !== 0 &&
      off <= 0xffe
    ) {
      return this.view.getUint16(this.tlbBase[i]! + off, true);
    }
    return this.readSlow(lo, hi, 2);
  }

  /** 32-bit read as an int32. */
  read32(lo: number, hi: number): number {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    const off = lo & PAGE_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_R) !== 0 &&
      off <= 0xffc
    ) {
      return this.view.getInt32(this.tlbBase[i]! + off, true);
    }
    return this.readSlow(lo, hi, 4);
  }

  /** 64-bit read: returns the low half, the high half goes to `v1`. */
  read64(lo: number, hi: number): number {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    const off = lo & PAGE_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_R) !== 0 &&
      off <= 0xff8
    ) {
      const pa = this.tlbBase[i]! + off;
      this.v1 = this.view.getInt32(pa + 4, true);
      return this.view.getInt32(pa, true);
    }
    const v0 = this.readSlow(lo, hi, 4);
    const n0 = (lo + 4) | 0;
    this.v1 = this.readSlow(n0, n0 >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, 4);
    return v0;
  }

  /** Reads `size` bytes (1, 2, 4, 8); the high half of a 64-bit value goes to `v1`. */
  read(lo: number, hi: number, size: number): number {
    switch (size) {
      case 1:
        this.v1 = 0;
        return this.read8(lo, hi);
      case 2:
        this.v1 = 0;
        return this.read16(lo, hi);
      case 4:
        this.v1 = 0;
        return this.read32(lo, hi);
      default:
        return this.read64(lo, hi);
    }
  }

  private readSlow(lo: number, hi: number, size: number): number {
    // All bytes are translated before any is used, so a fault on the second page leaves nothing
    // half done (reads have no side effects anyway).
    // In address order, so a fault reports the first byte that is not accessible (CR2).
    let v = 0;
    for (let k = 0; k < size; k++) {
      const a = (lo + k) | 0;
      const h = a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
      v |= this.mem[this.translate(a, h, ACCESS_READ)]! << (8 * k);
    }
    return size === 4 ? v | 0 : v;
  }

  write8(lo: number, hi: number, v: number): void {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_W) !== 0
    ) {
      this.mem[this.tlbBase[i]! + (lo & PAGE_MASK)] = v;
      return;
    }
    this.mem[this.translate(lo, hi, ACCESS_WRITE)] = v;
  }

  write16(lo: number, hi: number, v: number): void {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    const off = lo & PAGE_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_W) !== 0 &&
      off <= 0xffe
    ) {
      this.view.setUint16(this.tlbBase[i]! + off, v, true);
      return;
    }
    this.writeSlow(lo, hi, 2, v, 0);
  }

  write32(lo: number, hi: number, v: number): void {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    const off = lo & PAGE_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_W) !== 0 &&
      off <= 0xffc
    ) {
      this.view.setInt32(this.tlbBase[i]! + off, v, true);
      return;
    }
    this.writeSlow(lo, hi, 4, v, 0);
  }

  write64(lo: number, hi: number, v0: number, v1: number): void {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    const off = lo & PAGE_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_W) !== 0 &&
      off <= 0xff8
    ) {
      const pa = this.tlbBase[i]! + off;
      this.view.setInt32(pa, v0, true);
      this.view.setInt32(pa + 4, v1, true);
      return;
    }
    this.writeSlow(lo, hi, 8, v0, v1);
  }

  /** Writes `size` bytes (1, 2, 4, 8) of v1:v0. */
  write(lo: number, hi: number, size: number, v0: number, v1: number): void {
    switch (size) {
      case 1:
        this.write8(lo, hi, v0);
        return;
      case 2:
        this.write16(lo, hi, v0);
        return;
      case 4:
        this.write32(lo, hi, v0);
        return;
      default:
        this.write64(lo, hi, v0, v1);
    }
  }

  private writeSlow(lo: number, hi: number, size: number, v0: number, v1: number): void {
    // Translate both ends first: a fault on the second page must leave memory untouched.
    const last = (lo + size - 1) | 0;
    const lastHi = last >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi;
    const p0 = this.translate(lo, hi, ACCESS_WRITE);
    const p1 = this.translate(last, lastHi, ACCESS_WRITE);
    if (this.bpWatch !== 0) {
      // The middle bytes too, for data breakpoints (the ends are translated above).
      for (let k = 1; k < size - 1; k++) {
        const a = (lo + k) | 0;
        this.translate(a, a >>> 0 < lo >>> 0 ? (hi + 1) | 0 : hi, ACCESS_WRITE);
      }
    }
    for (let k = 0; k < size; k++) {
      const b = (k < 4 ? v0 >>> (8 * k) : v1 >>> (8 * (k - 4))) & 0xff;
      const off = (lo & PAGE_MASK) + k;
      this.mem[off < 4096 ? p0 + k : p1 - (size - 1 - k)] = b;
    }
  }

  /** Physical address of an instruction byte at virtual hi:lo (execute permission). */
  fetchAddress(lo: number, hi: number): number {
    const t0 = (lo >>> 12) | (hi << 20);
    const i = t0 & TLB_MASK;
    if (
      this.tlbTag0[i] === t0 &&
      this.tlbTag1[i] === hi >>> 12 &&
      (this.tlbPerm[i]! & PERM_X) !== 0
    ) {
      return this.tlbBase[i]! + (lo & PAGE_MASK);
    }
    return this.translate(lo, hi, ACCESS_EXEC);
  }
}
