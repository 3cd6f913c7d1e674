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
  CR0,
  EFER,
  VMSA,
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

  /** REMAP_CA: this vCPU's calling area moves to `gpa`; on success, call on a new client there. */
  *remapCa(gpa: number): Generator<void, bigint, void> {
    const r = yield* this.call(SvsmProtocol.CORE, SvsmCoreCall.REMAP_CA, BigInt(gpa));
    return r.rax;
  }

  /**
   * CREATE_VCPU as Linux's `snp_set_vmsa` makes it under an SVSM: RCX = the VMSA page the guest
   * prepared (see `writeApVmsa`), RDX = the new vCPU's calling area, R8 = its APIC ID.
   */
  *createVcpu(vmsaGpa: number, caaGpa: number, apicId: number): Generator<void, bigint, void> {
    const r = yield* this.call(
      SvsmProtocol.CORE,
      SvsmCoreCall.CREATE_VCPU,
      BigInt(vmsaGpa),
      BigInt(caaGpa),
      BigInt(apicId),
    );
    return r.rax;
  }

  /** DELETE_VCPU: RCX = a VMSA that CREATE_VCPU took. */
  *deleteVcpu(vmsaGpa: number): Generator<void, bigint, void> {
    const r = yield* this.call(SvsmProtocol.CORE, SvsmCoreCall.DELETE_VCPU, BigInt(vmsaGpa));
    return r.rax;
  }
}

/** What an AP's first state holds besides Linux's fixed values. */
export interface ApVmsaOptions {
  /** Physical address where the AP starts (Linux: the real-mode trampoline, below 1 MiB). */
  readonly startIp: number;
  /** SEV_FEATURES: the guest's own, SEV_STATUS >> 2, as Linux does. */
  readonly sevFeatures: bigint;
  /** The guest's VMPL (2 under an SVSM). */
  readonly vmpl?: number;
  /** CR4 (Linux: the BSP's CR4 & MCE). */
  readonly cr4?: bigint;
  /** Initial general-purpose registers (Linux leaves them zero; tests pass data in RSI). */
  readonly rsi?: bigint;
}

/**
 * An AP's VMSA as Linux's `wakeup_cpu_via_vmgexit` fills it (reference/linux-snp-guest.md 3.4):
 * real mode at the trampoline (CS base = start & ~0xFFF, IP = start & 0xFFF), CR0 0x60000010,
 * EFER.SVME, VMPL and SEV_FEATURES for the SVSM's checks.
 */
export function buildApVmsa(o: ApVmsaOptions): Uint8Array {
  const page = VMSA.alloc();
  const v = Math.floor(o.startIp / 0x1000);
  VMSA.set(page, 'cs.selector', (v << 8) & 0xffff);
  VMSA.set(page, 'cs.base', BigInt(v) << 12n);
  VMSA.set(page, 'cs.limit', 0xffff);
  VMSA.set(page, 'cs.attrib', 0x9a);
  for (const s of ['ds', 'es', 'fs', 'gs', 'ss'] as const) {
    VMSA.set(page, `${s}.limit`, 0xffff);
    VMSA.set(page, `${s}.attrib`, 0x92);
  }
  VMSA.set(page, 'gdtr.limit', 0xffff);
  VMSA.set(page, 'idtr.limit', 0xffff);
  VMSA.set(page, 'ldtr.attrib', 0x82);
  VMSA.set(page, 'tr.attrib', 0x83);
  VMSA.on(page)
    .set('rip', BigInt(o.startIp & 0xfff))
    .set('cr0', CR0.encode({ PE: false, ET: true, NW: true, CD: true }))
    .set('cr4', o.cr4 ?? 0n)
    .set('dr7', 0x400n)
    .set('dr6', 0xffff0ff0n)
    .set('rflags', 2n)
    .set('gPat', 0x0007040600070406n)
    .set('xcr0', 1n)
    .set('mxcsr', 0x1f80)
    .set('x87Ftw', 0x5555)
    .set('x87Fcw', 0x40)
    .set('efer', EFER.encode({ SVME: true }))
    .set('vmpl', o.vmpl ?? 2)
    .set('sevFeatures', o.sevFeatures)
    .set('rsi', o.rsi ?? 0n);
  return page;
}

/** Writes an AP's VMSA (`buildApVmsa`) into the guest page at `gpa`, taking SEV_FEATURES from SEV_STATUS. */
export function writeApVmsa(
  cpu: GuestCpu,
  gpa: number,
  o: Omit<ApVmsaOptions, 'sevFeatures'> & { readonly sevFeatures?: bigint },
): void {
  const sevFeatures = o.sevFeatures ?? cpu.rdmsr(MSR.SEV_STATUS) >> 2n;
  cpu.write(gpa, buildApVmsa({ ...o, sevFeatures, vmpl: o.vmpl ?? cpu.vmpl }));
}
