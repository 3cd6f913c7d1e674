// What a scripted test guest can do (src/hw runs it, src/guest writes programs against it): its CPU
// at its VMPL, CPL0, with an identity map of guest memory. Types only, here because both sides
// need them and the guest may import nothing but src/arch.

import type { Vmpl0Register } from './vmpl0.js';

/** What a scripted guest can do: its CPU at its VMPL, CPL0, with an identity map. */
export interface GuestCpu {
  readonly vcpuIndex: number;
  readonly vmpl: number;
  readRegister(name: Vmpl0Register): bigint;
  writeRegister(name: Vmpl0Register, value: bigint): void;
  /** Reads guest physical memory through an identity map: private (C-bit set) unless `shared`. */
  read(gpa: number, length: number, shared?: boolean): Uint8Array;
  write(gpa: number, data: Uint8Array, shared?: boolean): void;
  rdmsr(msr: number): bigint;
  wrmsr(msr: number, value: bigint): void;
  /** PVALIDATE: faults below VMPL0, as on hardware. */
  pvalidate(gpa: number, size2M: boolean, validate: boolean): { rax: number; carry: boolean };
  /** VMGEXIT; use as `yield* cpu.vmgexit()`. */
  vmgexit(): Generator<void, void, void>;
  /** Appends a line to the run's log (a test's view of what the guest did). */
  log(text: string): void;
  /** RFLAGS.IF: set it for STI, clear it for CLI. Clear while an interrupt handler runs. */
  interruptsEnabled: boolean;
  /**
   * The guest's IDT in short: the handler of every event the host injects (EVENTINJ), run at the
   * next instruction boundary (between VMGEXITs) with IF clear, like an interrupt gate; IF comes
   * back when it returns (IRET). An injected event with no handler is a triple fault.
   */
  onInterrupt: InterruptHandler | null;
  /** HLT: an automatic exit; returns after the host has woken the vCPU (and the handler ran). */
  hlt(): Generator<void, void, void>;
}

/** An injected event's handler: `vector`, and `type` as EVENT_TYPE (0 interrupt, 2 NMI...). */
export type InterruptHandler = (vector: number, type: number) => Generator<void, void, void>;

export type GuestProgram = (cpu: GuestCpu) => Generator<void, void, void>;
