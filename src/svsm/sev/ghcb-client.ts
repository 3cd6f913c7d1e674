// The SVSM's side of the GHCB protocol: MSR-protocol requests, and full VMGEXITs through the
// per-CPU GHCB page, which is shared with the host (mapped with the C-bit clear).

import {
  GHCB,
  GHCB_PROTOCOL_VERSION,
  GHCB_USAGE_STANDARD,
  type GhcbValidatedField,
  MSR,
  clearValid,
  markValid,
  type Vmpl0,
} from '../../arch/index.js';
import { SvsmPanic } from '../errors.js';

/** Sends one GHCB MSR-protocol request and returns the hypervisor's response. */
export function msrProtocol(cpu: Vmpl0, request: bigint): bigint {
  cpu.wrmsr(MSR.GHCB, request);
  if (!cpu.vmgexit()) throw new SvsmPanic('the host suspended an MSR-protocol request');
  return cpu.rdmsr(MSR.GHCB);
}

export type GhcbInputs = Partial<Record<GhcbValidatedField, bigint>>;

export interface GhcbAnswer {
  readonly exitInfo1: bigint;
  readonly exitInfo2: bigint;
  /** The whole GHCB page after the exit (registers the host returned, the shared buffer). */
  readonly page: Uint8Array;
}

export class GhcbClient {
  private readonly page = new Uint8Array(0x1000);

  constructor(
    private readonly cpu: Vmpl0,
    /** Virtual address of the shared GHCB page. */
    readonly va: number,
    /** Its guest physical address. */
    readonly gpa: number,
  ) {}

  /** GPA of the shared buffer inside the GHCB (the usual SW_SCRATCH). */
  get sharedBufferGpa(): number {
    return this.gpa + GHCB.offset('sharedBuffer');
  }

  /**
   * A VMGEXIT through the GHCB: SW_EXITCODE and the inputs are written and marked valid, then the
   * host answers in SW_EXITINFO1/2. Returns null when the host suspended this VMPL (the caller
   * must return from the entry point).
   */
  call(exitCode: number, inputs: GhcbInputs, sharedBuffer?: Uint8Array): GhcbAnswer | null {
    const p = this.page;
    p.fill(0);
    const g = GHCB.on(p);
    clearValid(p);
    g.set('swExitCode', BigInt(exitCode));
    markValid(p, 'swExitCode');
    for (const [name, value] of Object.entries(inputs) as [GhcbValidatedField, bigint][]) {
      g.set(name as 'rax', value);
      markValid(p, name);
    }
    for (const f of ['swExitInfo1', 'swExitInfo2'] as const) markValid(p, f);
    if (sharedBuffer !== undefined) p.set(sharedBuffer, GHCB.offset('sharedBuffer'));
    g.set('protocolVersion', GHCB_PROTOCOL_VERSION).set('ghcbUsage', GHCB_USAGE_STANDARD);
    this.cpu.write(this.va, p);
    this.cpu.wrmsr(MSR.GHCB, BigInt(this.gpa));
    if (!this.cpu.vmgexit()) return null;
    const after = this.cpu.read(this.va, 0x1000);
    const a = GHCB.on(after);
    return { exitInfo1: a.get('swExitInfo1'), exitInfo2: a.get('swExitInfo2'), page: after };
  }

  /** A call the host must not suspend. */
  callOrPanic(exitCode: number, inputs: GhcbInputs, sharedBuffer?: Uint8Array): GhcbAnswer {
    const r = this.call(exitCode, inputs, sharedBuffer);
    if (r === null) throw new SvsmPanic(`the host suspended VMGEXIT 0x${exitCode.toString(16)}`);
    return r;
  }
}
