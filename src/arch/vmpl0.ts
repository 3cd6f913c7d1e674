// The contract between the machine and the code it runs at VMPL0 (the SVSM): what VMPL0 code can
// do on AMD hardware, as a TypeScript interface. It lives in src/arch because both sides need it
// and the SVSM may import nothing else: the machine implements it (src/hw), the SVSM is written
// against it only (src/svsm). Types only; no behaviour.

/**
 * A fault the CPU raised while VMPL0 code touched memory or ran an instruction: #PF with its error
 * code and the faulting address, #VC (e.g. 0x404, page not validated), or #GP. The SVSM's exception
 * fixups catch these around guest-memory accesses; anywhere else they are a panic.
 */
export interface CpuFault {
  readonly vector: number;
  readonly errorCode: number;
  /** CR2 for #PF; the address being accessed otherwise. */
  readonly address: number;
}

/** The error a Vmpl0 method throws for a CPU fault; `instanceof` works across the boundary. */
export class CpuFaultError extends Error implements CpuFault {
  override readonly name = 'CpuFaultError';
  constructor(
    readonly vector: number,
    readonly errorCode: number,
    readonly address: number,
  ) {
    super(
      `CPU fault: vector ${vector}, error code 0x${errorCode.toString(16)}, address 0x${address.toString(16)}`,
    );
  }

  /**
   * The SVSM runs from its own bundle, with its own copy of this class, while the machine throws
   * the host's: recognise a fault of either copy by its shape, so the SVSM's fixups see it.
   */
  static override [Symbol.hasInstance](x: unknown): boolean {
    if (typeof x !== 'object' || x === null || !(x instanceof Error)) return false;
    const f = x as Partial<CpuFault>;
    return (
      x.name === 'CpuFaultError' &&
      typeof f.vector === 'number' &&
      typeof f.errorCode === 'number' &&
      typeof f.address === 'number'
    );
  }
}

/** Result of PVALIDATE or RMPADJUST: EAX, and rFLAGS.CF for PVALIDATE's "no change". */
export interface RmpInstructionOutcome {
  readonly rax: number;
  readonly carry: boolean;
}

/**
 * What VMPL0 code can do. Virtual addresses are numbers below 2^53 (the SVSM lives in the lower
 * canonical half so that addresses stay exact JavaScript numbers). Every memory access goes through
 * the vCPU's page tables (CR3) and the machine's RMP checks; a fault throws a `CpuFaultError`.
 */
export interface Vmpl0 {
  /** Index of the vCPU this code runs on, and its APIC ID. */
  readonly vcpuIndex: number;
  readonly apicId: number;
  /** Position of the C-bit in page-table entries (CPUID 0x8000001F EBX[5:0]). */
  readonly cBit: number;

  read(va: number, length: number): Uint8Array;
  write(va: number, data: Uint8Array): void;
  readU8(va: number): number;
  readU16(va: number): number;
  readU32(va: number): number;
  readU64(va: number): bigint;
  writeU8(va: number, value: number): void;
  writeU16(va: number, value: number): void;
  writeU32(va: number, value: number): void;
  writeU64(va: number, value: bigint): void;
  /** Fills [va, va+length) with a byte, as REP STOSB would. */
  fill(va: number, length: number, value: number): void;

  /** Control registers; writing CR3 (or CR0/CR4 paging bits) flushes the TLB. */
  readCr(n: 0 | 3 | 4): bigint;
  writeCr(n: 0 | 3 | 4, value: bigint): void;
  readEfer(): bigint;
  writeEfer(value: bigint): void;
  invlpg(va: number): void;
  /** Flushes every translation of this vCPU (MOV CR3 with the same value, or INVLPGA-all). */
  flushTlb(): void;

  /** PVALIDATE of the page at `va` (RAX), 4 KiB or 2 MiB (ECX), validate or rescind (EDX). */
  pvalidate(va: number, size2M: boolean, validate: boolean): RmpInstructionOutcome;
  /** RMPADJUST of the page at `va`: RDX = target VMPL | perms << 8 | vmsa << 16. */
  rmpadjust(va: number, size2M: boolean, attributes: number): RmpInstructionOutcome;

  rdmsr(msr: number): bigint;
  wrmsr(msr: number, value: bigint): void;
  /**
   * VMGEXIT. The hypervisor handles the exit described by the GHCB MSR (MSR protocol) or by the
   * registered GHCB page. Returns true when execution continues here; false when the exit
   * suspended this VMPL (SNP_RUN_VMPL to another VMPL, AP reset hold, termination): the code must
   * then return from its entry point, and is entered again when the vCPU next runs VMPL0.
   */
  vmgexit(): boolean;

  /** This vCPU's general-purpose registers and RIP at VMPL0 (boot parameters arrive in them). */
  readRegister(name: Vmpl0Register): bigint;
  writeRegister(name: Vmpl0Register, value: bigint): void;

  /** RDRAND: random bits from the platform. */
  rdrand(bytes: Uint8Array): void;
  /** RDTSC: the virtual time stamp counter. */
  rdtsc(): bigint;
}

export type Vmpl0Register =
  | 'rax'
  | 'rcx'
  | 'rdx'
  | 'rbx'
  | 'rsp'
  | 'rbp'
  | 'rsi'
  | 'rdi'
  | 'r8'
  | 'r9'
  | 'r10'
  | 'r11'
  | 'r12'
  | 'r13'
  | 'r14'
  | 'r15'
  | 'rip';

/** The entry point an SVSM image exports: called each time a vCPU enters VMPL0. */
export type SvsmEntryPoint = (cpu: Vmpl0) => void;

/** Name under which the SVSM bundle publishes its entry point. */
export const SVSM_ENTRY_SYMBOL = 'svsmEntry';
