// MSG_REPORT_REQ through the guest-request client: the SVSM asks the firmware for an attestation
// report (reference/sev-snp-abi.md section 3.3; COCONUT `greq/services.rs` get_regular_report /
// get_extended_report).

import {
  MSG_REPORT_REQ,
  MSG_REPORT_RSP,
  MSG_REPORT_RSP_REPORT_SIZE,
  KEY_SEL,
  SNP_MSG_TYPE,
  type Vmpl0,
} from '../../arch/index.js';
import type { GhcbClient } from '../sev/ghcb-client.js';
import type { GuestRequestClient } from './client.js';

/** MSG_VERSION of MSG_REPORT_REQ. */
const REPORT_REQ_VERSION = 1;

export type ReportOutcome =
  | {
      readonly ok: true;
      /** The 0x4A0-byte ATTESTATION_REPORT. */
      readonly report: Uint8Array;
      /** The host's certificate pages, for an extended request. */
      readonly certificates: Uint8Array | null;
    }
  | {
      readonly ok: false;
      readonly reason: string;
      /** Set when the host wants more certificate pages than the SVSM gives. */
      readonly certPagesNeeded?: number;
      /** Set when the SVSM had no memory for the request (the key is intact). */
      readonly outOfMemory?: boolean;
    };

/**
 * A report with `reportData` for `vmpl` (VMPCK0 may ask for any VMPL), signed with the key the
 * firmware prefers (KEY_SEL 0: the VLEK if installed, else the VCEK).
 */
export function requestReport(
  client: GuestRequestClient,
  cpu: Vmpl0,
  ghcb: GhcbClient,
  reportData: Uint8Array,
  vmpl: number,
  withCertificates: boolean,
): ReportOutcome {
  const req = MSG_REPORT_REQ.alloc();
  MSG_REPORT_REQ.on(req)
    .set('reportData', reportData)
    .set('vmpl', vmpl)
    .set('keySel', KEY_SEL.DEFAULT);
  const r = client.send(
    cpu,
    ghcb,
    SNP_MSG_TYPE.REPORT_REQ,
    REPORT_REQ_VERSION,
    req,
    withCertificates,
  );
  if (!r.ok) {
    if (r.outOfMemory === true) return { ok: false, reason: r.reason, outOfMemory: true };
    return r.certPagesNeeded === undefined
      ? { ok: false, reason: r.reason }
      : { ok: false, reason: r.reason, certPagesNeeded: r.certPagesNeeded };
  }
  if (r.payload.length < MSG_REPORT_RSP.size) {
    return { ok: false, reason: `MSG_REPORT_RSP of ${r.payload.length} bytes` };
  }
  const rsp = MSG_REPORT_RSP.on(r.payload);
  if (rsp.get('status') !== 0) {
    return { ok: false, reason: `MSG_REPORT_RSP status 0x${rsp.get('status').toString(16)}` };
  }
  if (rsp.get('reportSize') !== MSG_REPORT_RSP_REPORT_SIZE) {
    return { ok: false, reason: `MSG_REPORT_RSP REPORT_SIZE ${rsp.get('reportSize')}` };
  }
  return { ok: true, report: rsp.get('report'), certificates: r.certificates };
}
