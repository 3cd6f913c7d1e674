// One SVSM call as a protocol handler sees it: the guest's registers (read from its VMSA, written
// back after the call), and the SVSM state it may use.

import type { Vmpl0 } from '../../arch/index.js';
import type { Kernel, PerCpu } from '../kernel.js';

export interface SvsmCall {
  readonly k: Kernel;
  readonly cpu: Vmpl0;
  readonly pc: PerCpu;
  readonly call: number;
  /** Inputs; handlers assign outputs to the same fields (all are written back). */
  rcx: bigint;
  rdx: bigint;
  r8: bigint;
}

/** A handler returns the SVSM result code for RAX. */
export type ProtocolHandler = (c: SvsmCall) => number;
