// A guest's SVSM driver for scripted guests, making calls exactly as Linux does
// (arch/x86/coco/sev, svsm_perform_call_protocol): arguments in RAX/RCX/RDX/R8, CAA.call_pending
// = 1, then SNP_RUN_VMPL(0) through the GHCB MSR protocol and VMGEXIT; the result is RAX, and
// call_pending must have been cleared by the SVSM.

import {
  ATTEST_SINGLE_SERVICE_OP,
  type GuestCpu,
  MSR,
  PVALIDATE_HEADER,
  PVALIDATE_HEADER_SIZE,
  SNP_SECRETS_PAGE,
  SVSM_CAA_BUFFER_OFFSET,
  SvsmAttestCall,
  SvsmCoreCall,
  SvsmProtocol,
  CR0,
  EFER,
  VMSA,
  VMSA_INIT_FP,
  decodeMsrProtocol,
  decodeQueryProtocolAnswer,
  encodePvalidateEntry,
  guidToBytes,
  maxPvalidateEntries,
  msrRunVmplRequest,
  msrRunVmplResponse,
  queryProtocolRcx,
  svsmCallRax,
  type PvalidateEntry,
} from '../arch/index.js';

/** One buffer of an attestation call (Linux `struct svsm_loc_entry`). */
export interface SvsmLocation {
  readonly gpa: number;
  readonly size: number;
}

/** The buffers of an attestation call (Linux `struct svsm_attest_call`). */
export interface AttestCallArgs {
  readonly report: SvsmLocation;
  readonly nonce: SvsmLocation;
  readonly manifest: SvsmLocation;
  /** Size 0: no certificates wanted. */
  readonly certificates: SvsmLocation;
  /** ATTEST_SINGLE_SERVICE: the service's GUID and manifest version (0). */
  readonly serviceGuid?: string;
  readonly manifestVersion?: number;
}

export interface CallResult {
  readonly rax: bigint;
  readonly rcx: bigint;
  readonly rdx: bigint;
  readonly r8: bigint;
}

/** What Linux leaves in RDX and R8 of an attestation call. */
const ALL_ONES = 0xffff_ffff_ffff_ffffn;

/** The SVSM did not take a call (call_pending still set, or the VMPL switch was refused). */
export class SvsmCallError extends Error {
  override readonly name = 'SvsmCallError';
}

/** SNP_RUN_VMPL(0) and its success answer, encoded once (every call uses them). */
const RUN_VMPL0_REQUEST = msrRunVmplRequest(0);
const RUN_VMPL_OK = msrRunVmplResponse(0);

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
    cpu.wrmsr(MSR.GHCB, RUN_VMPL0_REQUEST);
    yield* cpu.vmgexit();
    const answer = cpu.rdmsr(MSR.GHCB);
    cpu.wrmsr(MSR.GHCB, saved);
    if (answer !== RUN_VMPL_OK) {
      const response = decodeMsrProtocol(answer);
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

  /**
   * ATTEST_SERVICES (or, with `callId`, ATTEST_SINGLE_SERVICE) as Linux's
   * `snp_issue_svsm_attest_req` makes it: the whole 0x58-byte `struct svsm_attest_call` copied into
   * the calling area's buffer, RCX = its GPA, RDX = R8 = all ones. Outputs: RCX = manifest size,
   * RDX = certificates size, R8 = report size.
   */
  *attestServices(
    args: AttestCallArgs,
    callId: number = SvsmAttestCall.ATTEST_SERVICES,
  ): Generator<void, CallResult, void> {
    const op = ATTEST_SINGLE_SERVICE_OP.alloc();
    ATTEST_SINGLE_SERVICE_OP.on(op)
      .set('reportGpa', BigInt(args.report.gpa))
      .set('reportSize', args.report.size)
      .set('nonceGpa', BigInt(args.nonce.gpa))
      // Linux writes the length as a u32; for a 64-byte nonce its upper half is zero.
      .set('nonceSize', args.nonce.size)
      .set('manifestGpa', BigInt(args.manifest.gpa))
      .set('manifestSize', args.manifest.size)
      .set('certificatesGpa', BigInt(args.certificates.gpa))
      .set('certificatesSize', args.certificates.size)
      .set('serviceGuid', guidToBytes(args.serviceGuid ?? '00000000-0000-0000-0000-000000000000'))
      .set('manifestVersion', args.manifestVersion ?? 0);
    const at = this.caa + SVSM_CAA_BUFFER_OFFSET;
    this.cpu.write(at, op);
    return yield* this.call(SvsmProtocol.ATTEST, callId, BigInt(at), ALL_ONES, ALL_ONES);
  }

  /** ATTEST_SINGLE_SERVICE for `args.serviceGuid`. */
  *attestSingleService(args: AttestCallArgs): Generator<void, CallResult, void> {
    return yield* this.attestServices(args, SvsmAttestCall.ATTEST_SINGLE_SERVICE);
  }

  /**
   * DEPOSIT_MEM: gives the SVSM the 4 KiB pages at `gpas` (validated by the guest beforehand), with
   * the list in the calling area's buffer in the PVALIDATE list's format ([uncertain] reading of
   * the SVSM specification, see src/svsm/protocols/core.ts). Returns RAX and the list's `next`.
   */
  *depositMem(gpas: readonly number[]): Generator<void, { rax: bigint; done: number }, void> {
    return yield* this.memoryList(SvsmCoreCall.DEPOSIT_MEM, gpas);
  }

  /** WITHDRAW_MEM: takes back deposited pages (zeroed, validated, the guest's again). */
  *withdrawMem(gpas: readonly number[]): Generator<void, { rax: bigint; done: number }, void> {
    return yield* this.memoryList(SvsmCoreCall.WITHDRAW_MEM, gpas);
  }

  private *memoryList(
    callId: number,
    gpas: readonly number[],
  ): Generator<void, { rax: bigint; done: number }, void> {
    const listGpa = this.caa + SVSM_CAA_BUFFER_OFFSET;
    if (gpas.length > maxPvalidateEntries(SVSM_CAA_BUFFER_OFFSET)) {
      throw new RangeError(
        `at most ${maxPvalidateEntries(SVSM_CAA_BUFFER_OFFSET)} entries fit the calling area`,
      );
    }
    const list = new Uint8Array(PVALIDATE_HEADER_SIZE + gpas.length * 8);
    PVALIDATE_HEADER.on(list).set('numEntries', gpas.length).set('curIndex', 0);
    const view = new DataView(list.buffer);
    // Page size 0 (4 KiB) and no flags: the entry is the page's address.
    gpas.forEach((gpa, i) => view.setBigUint64(PVALIDATE_HEADER_SIZE + i * 8, BigInt(gpa), true));
    this.cpu.write(listGpa, list);
    const r = yield* this.call(SvsmProtocol.CORE, callId, BigInt(listGpa));
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
    .set('mxcsr', VMSA_INIT_FP.mxcsr)
    .set('x87Ftw', VMSA_INIT_FP.x87Ftw)
    .set('x87Fcw', VMSA_INIT_FP.x87Fcw)
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
