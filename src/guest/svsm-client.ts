// A guest's SVSM driver for scripted guests, making calls exactly as Linux does
// (arch/x86/coco/sev, svsm_perform_call_protocol): arguments in RAX/RCX/RDX/R8, CAA.call_pending
// = 1, then SNP_RUN_VMPL(0) through the GHCB MSR protocol and VMGEXIT; the result is RAX, and
// call_pending must have been cleared by the SVSM.

import {
  type GuestCpu,
  MSR,
  PVALIDATE_HEADER,
  PVALIDATE_HEADER_SIZE,
  SNP_SECRETS_PAGE,
  SVSM_CAA_BUFFER_OFFSET,
  SvsmCoreCall,
  SvsmProtocol,
  decodeMsrProtocol,
  decodeQueryProtocolAnswer,
  encodePvalidateEntry,
  maxPvalidateEntries,
  msrRunVmplRequest,
  queryProtocolRcx,
  svsmCallRax,
  type PvalidateEntry,
} from '../arch/index.js';

export interface CallResult {
  readonly rax: bigint;
  readonly rcx: bigint;
  readonly rdx: bigint;
  readonly r8: bigint;
}

/** The SVSM did not take a call (call_pending still set, or the VMPL switch was refused). */
export class SvsmCallError extends Error {
  override readonly name = 'SvsmCallError';
}

export class SvsmClient {
  constructor(
    private readonly cpu: GuestCpu,
    /** This vCPU's calling area. */
    readonly caa: number,
  ) {}

  /** The calling area of the BSP, read from the guest's secrets page as Linux does. */
  static caaFromSecrets(cpu: GuestCpu, secretsGpa: number): number {
    const page = cpu.read(secretsGpa, 0x1000);
    return Number(SNP_SECRETS_PAGE.get(page, 'svsmCaa'));
  }

  *call(
    protocol: number,
    callId: number,
    rcx = 0n,
    rdx = 0n,
    r8 = 0n,
  ): Generator<void, CallResult, void> {
    const cpu = this.cpu;
    cpu.writeRegister('rax', svsmCallRax(protocol, callId));
    cpu.writeRegister('rcx', rcx);
    cpu.writeRegister('rdx', rdx);
    cpu.writeRegister('r8', r8);
    cpu.write(this.caa, Uint8Array.of(1));
    const saved = cpu.rdmsr(MSR.GHCB);
    cpu.wrmsr(MSR.GHCB, msrRunVmplRequest(0));
    yield* cpu.vmgexit();
    const response = decodeMsrProtocol(cpu.rdmsr(MSR.GHCB));
    cpu.wrmsr(MSR.GHCB, saved);
    if (response.kind !== 'runVmplResponse' || response.error !== 0) {
      throw new SvsmCallError(`the host refused to run VMPL0 (${response.kind})`);
    }
    if (cpu.read(this.caa, 1)[0] !== 0) throw new SvsmCallError('the SVSM left call_pending set');
    return {
      rax: cpu.readRegister('rax'),
      rcx: cpu.readRegister('rcx'),
      rdx: cpu.readRegister('rdx'),
      r8: cpu.readRegister('r8'),
    };
  }

  /** QUERY_PROTOCOL: the supported [min, max] versions, or null. */
  *queryProtocol(
    protocol: number,
    version: number,
  ): Generator<void, { minVersion: number; maxVersion: number } | null, void> {
    const r = yield* this.call(
      SvsmProtocol.CORE,
      SvsmCoreCall.QUERY_PROTOCOL,
      queryProtocolRcx(protocol, version),
    );
    if (r.rax !== 0n) throw new SvsmCallError(`QUERY_PROTOCOL failed: 0x${r.rax.toString(16)}`);
    return decodeQueryProtocolAnswer(r.rcx);
  }

  /**
   * PVALIDATE through the SVSM with the list in the calling area's buffer, as Linux does.
   * Returns RAX and how many entries were done (the list's `next`).
   */
  *pvalidate(
    entries: readonly PvalidateEntry[],
  ): Generator<void, { rax: bigint; done: number }, void> {
    const listGpa = this.caa + SVSM_CAA_BUFFER_OFFSET;
    if (entries.length > maxPvalidateEntries(SVSM_CAA_BUFFER_OFFSET)) {
      throw new RangeError(
        `at most ${maxPvalidateEntries(SVSM_CAA_BUFFER_OFFSET)} entries fit the calling area`,
      );
    }
    const list = new Uint8Array(PVALIDATE_HEADER_SIZE + entries.length * 8);
    PVALIDATE_HEADER.on(list).set('numEntries', entries.length).set('curIndex', 0);
    const view = new DataView(list.buffer);
    entries.forEach((e, i) =>
      view.setBigUint64(PVALIDATE_HEADER_SIZE + i * 8, encodePvalidateEntry(e), true),
    );
    this.cpu.write(listGpa, list);
    const r = yield* this.call(SvsmProtocol.CORE, SvsmCoreCall.PVALIDATE, BigInt(listGpa));
    const done = PVALIDATE_HEADER.get(this.cpu.read(listGpa, PVALIDATE_HEADER_SIZE), 'curIndex');
    return { rax: r.rax, done };
  }
}
