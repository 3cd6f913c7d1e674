// Delivery of exceptions and interrupts through the IDT (APM vol. 2, chapter 8): the contract the
// x86 engine uses to hand an exception (#VC included) or an injected interrupt to guest code.
//
// Contract (shared by the engine and the system-architecture work of issue 5):
// - `deliverEvent(c, vector, errorCode, kind)` performs the delivery on `c` as the CPU would at an
//   instruction boundary: IDT gate lookup, privilege/stack switch (IST, TSS), frame push, CS/RIP
//   load, RFLAGS changes; a fault during delivery escalates (#DF, then shutdown).
// - RIP in `c.r` is where the event returns to (the faulting instruction for faults, the next
//   one for traps and software interrupts), as the interpreter leaves it after STOP_EXCEPTION.
// - It throws `ShutdownError` when delivery ends in a triple fault.

import type { Cpu } from './cpu.js';

/** What kind of event is being delivered (changes error-code pushing and IF handling). */
export const EVENT_EXCEPTION = 0;
export const EVENT_EXTERNAL = 1;
export const EVENT_NMI = 2;
export const EVENT_SOFTWARE = 3;

/** errorCode value meaning "this event pushes no error code". */
export const NO_ERROR_CODE = -1;

/** A triple fault: the vCPU shuts down (the engine reports a SHUTDOWN exit). */
export class ShutdownError extends Error {
  override readonly name = 'ShutdownError';
}

/** Delivers one event to `c`. Placeholder until IDT delivery lands (issue 5, system work). */
export function deliverEvent(_c: Cpu, vector: number, _errorCode: number, _kind: number): void {
  throw new ShutdownError(`event delivery is not implemented yet (vector ${vector})`);
}
