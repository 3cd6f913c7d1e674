// The attestation protocol (SVSM spec 58019 chapter 7, protocol 1; reference/coconut-svsm.md
// section 3 "Protocol 1"): ATTEST_SERVICES and ATTEST_SINGLE_SERVICE. The guest passes an operand
// at RCX naming a 64-byte nonce and its report, manifest and (optional) certificate buffers; the
// SVSM builds the services manifest, asks the firmware through the host for a report with
// REPORT_DATA = SHA-512(nonce || manifest), and writes report, manifest and certificates back.
// Outputs: RCX = manifest size, RDX = certificates size, R8 = report size - also when a buffer is
// too small, with INVALID_PARAMETER.
//
// The report is requested for VMPL0, the SVSM's own level, as COCONUT does (`SnpReportRequest`
// zeroed, "vmpl=0"): only VMPL0 can obtain a VMPL0 report, so a relying party that sees VMPL 0 and
// this REPORT_DATA knows the SVSM built the manifest. A VMPL2 report would prove nothing: the guest
// holds VMPCK2 and could ask for one with any REPORT_DATA itself.
//
// Services: this SVSM has no service with attestable data yet (no vTPM), so the manifest lists no
// service - its 24-byte header with a count of 0, as COCONUT's is without the vtpm feature - and
// ATTEST_SINGLE_SERVICE knows no GUID. ATTESTED_SERVICES is where one is added.
//
// Result codes, where COCONUT and the spec agree we follow both; where they differ we follow the
// spec and say so: an operand, nonce or buffer the SVSM cannot reach (not guest memory, SVSM
// memory, a guest VMSA, a page that faults) is INVALID_ADDRESS (COCONUT answers INVALID_PARAMETER
// for an unreadable operand or nonce); an unknown call is UNSUPPORTED_CALL (COCONUT:
// UNSUPPORTED_PROTOCOL). Reserved bytes, a nonce that is not 64 bytes or crosses a page, unaligned
// report/manifest/certificate buffers, a certificate buffer above 16 KiB and a manifest version
// other than 0 are INVALID_PARAMETER; an unknown service GUID is UNSUPPORTED_PROTOCOL (COCONUT); a
// failed guest request is INVALID_REQUEST (COCONUT's mapping of SNP guest-request errors).
// Every check that can fail runs before the guest request, so a refused call changes nothing.

import { sha512 } from '@noble/hashes/sha2.js';
import {
  ATTEST_NONCE_SIZE,
  ATTEST_SERVICES_OP,
  ATTEST_SINGLE_SERVICE_OP,
  CertTableError,
  MSG_REPORT_RSP_REPORT_SIZE,
  SvsmAttestCall,
  SvsmResult,
  encodeServicesManifest,
  guidFromBytes,
  readCertTableHeader,
  reservedFieldsClear,
  type ServiceManifestEntry,
} from '../../arch/index.js';
import { GREQ_MAX_CERT_PAGES, GuestRequestClient, requestReport } from '../greq/index.js';
import type { Kernel } from '../kernel.js';
import type { SvsmCall } from './call.js';

const PAGE = 0x1000;
/** The report is for VMPL0 (see above). */
const REPORT_VMPL = 0;
/** Largest certificate buffer (COCONUT MAX_CERTIFICATE_SIZE, Linux SEV_FW_BLOB_MAX_SIZE). */
export const ATTEST_MAX_CERTIFICATES_SIZE = GREQ_MAX_CERT_PAGES * PAGE;

/** A service the SVSM can attest: its GUID and its manifest (version 0) data. */
interface AttestedService {
  readonly guid: string;
  manifest(k: Kernel): Uint8Array;
}

/** The services this SVSM offers with attestable data: none yet. */
const ATTESTED_SERVICES: readonly AttestedService[] = [];

/** A guest buffer from the operand. */
interface GuestBuffer {
  readonly gpa: number;
  readonly size: number;
}

interface Operand {
  readonly report: GuestBuffer;
  readonly nonce: GuestBuffer;
  readonly manifest: GuestBuffer;
  /** Null when the guest wants no certificates (size 0). */
  readonly certificates: GuestBuffer | null;
}

export function attestProtocol(c: SvsmCall): number {
  switch (c.call) {
    case SvsmAttestCall.ATTEST_SERVICES:
      return attestServices(c);
    case SvsmAttestCall.ATTEST_SINGLE_SERVICE:
      return attestSingleService(c);
    default:
      return SvsmResult.UNSUPPORTED_CALL;
  }
}

/** A u64 guest address as a number, or null when it cannot be one (beyond 2^53). */
function gpaOf(v: bigint): number | null {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : null;
}

function attestServices(c: SvsmCall): number {
  const at = gpaOf(c.rcx);
  if (at === null) return SvsmResult.INVALID_ADDRESS;
  // A fault here reaches the request loop's fixup: INVALID_ADDRESS.
  const bytes = c.k.guest.read(c.cpu, at, ATTEST_SERVICES_OP.size);
  if (!reservedFieldsClear(ATTEST_SERVICES_OP, bytes)) return SvsmResult.INVALID_PARAMETER;
  const op = parseOperand(bytes);
  if (typeof op === 'number') return op;
  const entries: ServiceManifestEntry[] = ATTESTED_SERVICES.map((s) => ({
    guid: s.guid,
    data: s.manifest(c.k),
  }));
  return attest(c, op, encodeServicesManifest(entries));
}

function attestSingleService(c: SvsmCall): number {
  const at = gpaOf(c.rcx);
  if (at === null) return SvsmResult.INVALID_ADDRESS;
  const bytes = c.k.guest.read(c.cpu, at, ATTEST_SINGLE_SERVICE_OP.size);
  if (!reservedFieldsClear(ATTEST_SINGLE_SERVICE_OP, bytes)) return SvsmResult.INVALID_PARAMETER;
  const view = ATTEST_SINGLE_SERVICE_OP.on(bytes);
  // Only manifest version 0 exists.
  if (view.get('manifestVersion') !== 0) return SvsmResult.INVALID_PARAMETER;
  const guid = guidFromBytes(view.get('serviceGuid'));
  const service = ATTESTED_SERVICES.find((s) => s.guid === guid);
  if (service === undefined) return SvsmResult.UNSUPPORTED_PROTOCOL;
  const op = parseOperand(bytes);
  if (typeof op === 'number') return op;
  // A single service's manifest is its own data, not a GUID table (COCONUT attest_single_service).
  return attest(c, op, service.manifest(c.k));
}

/**
 * The buffers of an operand (both operands start with the 0x40 bytes of ATTEST_SERVICES_OP) with
 * the format rules applied; a result code when one fails.
 */
function parseOperand(bytes: Uint8Array): Operand | number {
  const v = ATTEST_SERVICES_OP.on(bytes);
  const report = gpaOf(v.get('reportGpa'));
  const nonce = gpaOf(v.get('nonceGpa'));
  const manifest = gpaOf(v.get('manifestGpa'));
  const certsSize = v.get('certificatesSize');
  // Without certificates (size 0) their address is not looked at.
  const certs = certsSize === 0 ? 0 : gpaOf(v.get('certificatesGpa'));
  if (report === null || nonce === null || manifest === null || certs === null) {
    return SvsmResult.INVALID_ADDRESS;
  }
  const nonceSize = v.get('nonceSize');
  const nonceEnd = nonce + nonceSize - 1;
  if (nonceSize !== ATTEST_NONCE_SIZE || Math.floor(nonce / PAGE) !== Math.floor(nonceEnd / PAGE)) {
    return SvsmResult.INVALID_PARAMETER;
  }
  if (report % PAGE !== 0 || manifest % PAGE !== 0) return SvsmResult.INVALID_PARAMETER;
  if (certsSize !== 0 && (certs % PAGE !== 0 || certsSize > ATTEST_MAX_CERTIFICATES_SIZE)) {
    return SvsmResult.INVALID_PARAMETER;
  }
  return {
    report: { gpa: report, size: v.get('reportSize') },
    nonce: { gpa: nonce, size: nonceSize },
    manifest: { gpa: manifest, size: v.get('manifestSize') },
    certificates: certsSize === 0 ? null : { gpa: certs, size: certsSize },
  };
}

/** A buffer the SVSM may write: guest memory, and no registered guest VMSA in it. */
function reachable(k: Kernel, b: GuestBuffer): boolean {
  if (!k.guest.isGuestRange(b.gpa, b.size)) return false;
  for (const v of k.vmsas.keys()) if (v + PAGE > b.gpa && v < b.gpa + b.size) return false;
  return true;
}

/** Touches each page of [gpa, gpa+length) once, so a fault comes before any work is done. */
function probe(c: SvsmCall, gpa: number, length: number): void {
  for (let p = gpa - (gpa % PAGE); p < gpa + length; p += PAGE) c.k.guest.readU8(c.cpu, p);
}

/** The size of the certificate table the host wrote: up to the end of its last blob; 0 if empty. */
function certTableLength(pages: Uint8Array): number {
  try {
    const entries = readCertTableHeader(pages);
    return entries.reduce((end, e) => Math.max(end, e.offset + e.length), 0);
  } catch (e) {
    // The host's table is not ours to vouch for; the relying party checks the certificates.
    if (e instanceof CertTableError) return pages.length;
    throw e;
  }
}

/** The guest-request client of the kernel, made on first use. */
function greqOf(k: Kernel): GuestRequestClient {
  k.greq ??= new GuestRequestClient(k.space, k.pages, k, k.space.va(k.boot.secretsGpa));
  return k.greq;
}

/** Known sizes, which also answer a guest whose buffers are too small. */
function setSizes(c: SvsmCall, manifest: number, certificates: number): void {
  c.rcx = BigInt(manifest);
  c.rdx = BigInt(certificates);
  c.r8 = BigInt(MSG_REPORT_RSP_REPORT_SIZE);
}

/** The common part of both calls, from checked operand to written results. */
function attest(c: SvsmCall, op: Operand, manifest: Uint8Array): number {
  const { k, cpu } = c;
  for (const b of [op.nonce, op.report, op.manifest, op.certificates]) {
    if (b !== null && !reachable(k, b)) return SvsmResult.INVALID_ADDRESS;
  }
  const client = greqOf(k);
  if (op.report.size < MSG_REPORT_RSP_REPORT_SIZE || op.manifest.size < manifest.length) {
    // The certificates' size is known once a request brought them; until then 0.
    setSizes(c, manifest.length, op.certificates === null ? 0 : client.lastCertificatesSize);
    return SvsmResult.INVALID_PARAMETER;
  }
  const nonce = k.guest.read(cpu, op.nonce.gpa, op.nonce.size);
  probe(c, op.report.gpa, MSG_REPORT_RSP_REPORT_SIZE);
  probe(c, op.manifest.gpa, manifest.length);
  if (op.certificates !== null) probe(c, op.certificates.gpa, op.certificates.size);

  const input = new Uint8Array(nonce.length + manifest.length);
  input.set(nonce);
  input.set(manifest, nonce.length);
  const ghcb = c.pc.ghcb;
  if (ghcb === null) return SvsmResult.INVALID_REQUEST;
  const r = requestReport(client, cpu, ghcb, sha512(input), REPORT_VMPL, op.certificates !== null);
  if (!r.ok) {
    // [uncertain] Out of SVSM memory: neither the SVSM specification (as far as found) nor
    // COCONUT (which panics on SvsmError::Mem) defines a code; BUSY says "try again later", which
    // is what the guest can do, after DEPOSIT_MEM or once memory is freed.
    if (r.outOfMemory === true) {
      k.log(cpu, `attestation: no report (${r.reason})`);
      return SvsmResult.BUSY;
    }
    if (r.certPagesNeeded === undefined) {
      k.log(cpu, `attestation: no report (${r.reason})`);
      return SvsmResult.INVALID_REQUEST;
    }
    setSizes(c, manifest.length, r.certPagesNeeded * PAGE);
    return SvsmResult.INVALID_PARAMETER;
  }
  let certificates: Uint8Array = new Uint8Array(0);
  if (op.certificates !== null && r.certificates !== null) {
    certificates = r.certificates.subarray(0, certTableLength(r.certificates));
    client.lastCertificatesSize = certificates.length;
    if (certificates.length > op.certificates.size) {
      setSizes(c, manifest.length, certificates.length);
      return SvsmResult.INVALID_PARAMETER;
    }
  }
  k.guest.write(cpu, op.report.gpa, r.report);
  k.guest.write(cpu, op.manifest.gpa, manifest);
  if (op.certificates !== null) k.guest.write(cpu, op.certificates.gpa, certificates);
  setSizes(c, manifest.length, certificates.length);
  return SvsmResult.SUCCESS;
}
