// The SVSM's guest-request client (SNP_GUEST_REQUEST and SNP_EXT_GUEST_REQUEST through the host,
// reference/sev-snp-abi.md section 3.1, Linux `snp_send_guest_request`, COCONUT `greq/driver.rs`):
// messages under VMPCK0 with the sequence numbers the firmware expects, a request and a response
// page shared with the host, and certificate pages for the extended request.
//
// Invariants:
// - A sequence number protects exactly one plaintext. Request = last + 1; after a good response the
//   counter moves to the response's number (+2). A request the host did not run (too few
//   certificate pages, BUSY) is resent byte for byte, so a retry never re-encrypts under the same
//   IV; one the host will not run with certificates is sent once more without them, as Linux does,
//   so its number is consumed.
// - Any failure of the firmware, the transport or the crypto wipes VMPCK0 (in the kernel and in
//   the secrets page, as Linux's `snp_disable_vmpck` does): after an unexplained failure the
//   firmware and we may disagree on the next number, and guessing would risk IV reuse. Every later
//   request fails without reaching the host.

import {
  GUEST_MSG_PAGE_SIZE,
  GUEST_REQUEST_VMM_ERR,
  GHCB,
  SNP_SECRETS_PAGE,
  SW_EXITCODE,
  decodeGuestRequestResult,
  type Vmpl0,
} from '../../arch/index.js';
import type { AddressSpace } from '../mm/address-space.js';
import type { BuddyAllocator } from '../mm/buddy-allocator.js';
import type { GhcbClient } from '../sev/ghcb-client.js';
import { type MessageIdentity, openResponse, sealMessage } from './message.js';
import {
  allocSharedPages,
  mapSharedPages,
  releaseSharedPages,
  type SharedPages,
  unmapSharedPages,
} from './shared-pages.js';

const PAGE = 0x1000;
/** Window slots of the guest-request pages (the GHCB has the first shared slot, 256). */
export const GREQ_REQUEST_SLOT = 257;
export const GREQ_RESPONSE_SLOT = 258;
export const GREQ_CERTS_FIRST_SLOT = 259;
/**
 * The most certificate pages the SVSM gives the host: 16 KiB, Linux's SEV_FW_BLOB_MAX_SIZE and
 * COCONUT's MAX_CERTIFICATE_SIZE. A host that wants more is not obliged.
 */
export const GREQ_MAX_CERT_PAGES = 4;
/** How often a request the host calls BUSY is resent before we give up. */
const BUSY_RETRIES = 8;
/** Linux refuses sequence numbers beyond u32 (`snp_get_msg_seqno`). */
const MAX_SEQNO = 0xffff_ffffn;

/** Where the kernel keeps VMPCK0 and its counter (the Kernel object has these fields). */
export interface Vmpck0State {
  /** Wiped (all zero) after a failure. */
  readonly vmpck0: Uint8Array;
  /** The last sequence number used on VMPCK0 (the response's). */
  vmpck0Seqno: bigint;
}

export type GuestRequestOutcome =
  | {
      readonly ok: true;
      /** The decrypted response payload. */
      readonly payload: Uint8Array;
      /** The host's certificate pages (extended requests), as it wrote them. */
      readonly certificates: Uint8Array | null;
    }
  | {
      readonly ok: false;
      /** The request was answered (the key is intact) but the host wants more certificate pages
       * than GREQ_MAX_CERT_PAGES; the payload is the answer without certificates. */
      readonly certPagesNeeded?: number;
      readonly payload?: Uint8Array;
      /** The SVSM had no memory for the shared pages; the key is intact (not a panic: the guest
       * gets a result code and may deposit memory or retry). */
      readonly outOfMemory?: boolean;
      readonly reason: string;
    };

/** Counters for tests and logs. */
export interface GuestRequestStats {
  requests: number;
  retries: number;
  failures: number;
}

export class GuestRequestClient {
  private pagesShared: { request: SharedPages; response: SharedPages } | null = null;
  private certs: SharedPages | null = null;
  readonly stats: GuestRequestStats = { requests: 0, retries: 0, failures: 0 };
  /** Bytes of the last certificate table the host gave (0 before any), for size answers. */
  lastCertificatesSize = 0;

  constructor(
    private readonly space: AddressSpace,
    private readonly allocator: BuddyAllocator,
    private readonly keys: Vmpck0State,
    /** Kernel VA of the SNP secrets page, whose VMPCK0 is wiped with ours. */
    private readonly secretsVa: number,
  ) {}

  /** True once VMPCK0 is gone; no request can be made any more. */
  get disabled(): boolean {
    return this.keys.vmpck0.every((b) => b === 0);
  }

  /**
   * Sends one message of `type`/`version` under VMPCK0 and returns the response payload. With
   * `withCertificates` it is an extended request and the host's certificate table comes back too.
   */
  send(
    cpu: Vmpl0,
    ghcb: GhcbClient,
    type: number,
    version: number,
    payload: Uint8Array,
    withCertificates: boolean,
  ): GuestRequestOutcome {
    if (this.disabled) return { ok: false, reason: 'VMPCK0 is wiped' };
    const seqno = this.keys.vmpck0Seqno + 1n;
    if (seqno + 1n > MAX_SEQNO)
      return { ok: false, reason: 'the VMPCK0 sequence numbers are used up' };
    const shared = this.sharedPages(cpu, ghcb);
    if (shared === null)
      return { ok: false, outOfMemory: true, reason: 'no memory for the shared pages' };
    this.stats.requests++;
    const id: MessageIdentity = { type, version, vmpck: 0, seqno };
    const page = sealMessage(this.keys.vmpck0, id, payload);
    const reqVa = mapSharedPages(cpu, this.space, GREQ_REQUEST_SLOT, shared.request);
    const rspVa = mapSharedPages(cpu, this.space, GREQ_RESPONSE_SLOT, shared.response);
    try {
      cpu.write(reqVa, page);
      cpu.fill(rspVa, PAGE, 0);
      const sent = withCertificates
        ? this.sendExtended(cpu, ghcb, shared)
        : this.sendPlain(ghcb, shared);
      if (sent.kind === 'failed') return this.fail(cpu, sent.reason);
      // Nothing went to the host: the sequence number and the key are untouched.
      if (sent.kind === 'outOfMemory')
        return { ok: false, outOfMemory: true, reason: 'no memory for certificate pages' };
      // One private copy; the host may change the shared page at any time.
      const response = cpu.read(rspVa, GUEST_MSG_PAGE_SIZE);
      const opened = openResponse(this.keys.vmpck0, id, response);
      if (!opened.ok) return this.fail(cpu, opened.reason);
      this.keys.vmpck0Seqno = seqno + 1n;
      if (sent.kind === 'answeredWithoutMemory') {
        return { ok: false, outOfMemory: true, reason: 'no memory for more certificate pages' };
      }
      if (sent.kind === 'tooManyCertPages') {
        return {
          ok: false,
          certPagesNeeded: sent.pages,
          payload: opened.payload,
          reason: `the host wants ${sent.pages} certificate pages`,
        };
      }
      return { ok: true, payload: opened.payload, certificates: sent.certificates };
    } finally {
      unmapSharedPages(cpu, this.space, GREQ_REQUEST_SLOT, shared.request);
      unmapSharedPages(cpu, this.space, GREQ_RESPONSE_SLOT, shared.response);
    }
  }

  private sharedPages(
    cpu: Vmpl0,
    ghcb: GhcbClient,
  ): { request: SharedPages; response: SharedPages } | null {
    if (this.pagesShared === null) {
      // Out of memory is the guest's result code, not a panic; a half-made pair is undone.
      const request = allocSharedPages(cpu, ghcb, this.space, this.allocator, 1);
      if (request === null) return null;
      const response = allocSharedPages(cpu, ghcb, this.space, this.allocator, 1);
      if (response === null) {
        releaseSharedPages(cpu, ghcb, this.space, this.allocator, request);
        return null;
      }
      this.pagesShared = { request, response };
    }
    return this.pagesShared;
  }

  /** GUEST_REQUEST, resent while the host says BUSY. */
  private sendPlain(
    ghcb: GhcbClient,
    shared: { request: SharedPages; response: SharedPages },
  ): Sent {
    for (let attempt = 0; ; attempt++) {
      const r = ghcb.callOrPanic(SW_EXITCODE.GUEST_REQUEST, {
        swExitInfo1: BigInt(shared.request.gpa),
        swExitInfo2: BigInt(shared.response.gpa),
      });
      const verdict = judge(r.exitInfo1, r.exitInfo2);
      if (verdict.kind === 'busy' && attempt < BUSY_RETRIES) {
        this.stats.retries++;
        continue;
      }
      if (verdict.kind !== 'ok')
        return { kind: 'failed', reason: `GUEST_REQUEST: ${verdict.reason}` };
      return { kind: 'answered', certificates: null };
    }
  }

  /**
   * EXT_GUEST_REQUEST with our certificate pages. When the host answers INVALID_LEN it did not run
   * the request and says in RBX how many pages it needs: we grow (up to GREQ_MAX_CERT_PAGES) and
   * resend the same bytes; beyond that the same bytes go once more as a plain GUEST_REQUEST.
   */
  private sendExtended(
    cpu: Vmpl0,
    ghcb: GhcbClient,
    shared: { request: SharedPages; response: SharedPages },
  ): Sent {
    let busy = 0;
    for (;;) {
      const certs = this.certPages(cpu, ghcb, 1);
      if (certs === null) return { kind: 'outOfMemory' };
      const r = ghcb.callOrPanic(SW_EXITCODE.EXT_GUEST_REQUEST, {
        swExitInfo1: BigInt(shared.request.gpa),
        swExitInfo2: BigInt(shared.response.gpa),
        rax: BigInt(certs.gpa),
        rbx: BigInt(certs.pages),
      });
      const verdict = judge(r.exitInfo1, r.exitInfo2);
      if (verdict.kind === 'busy' && busy++ < BUSY_RETRIES) {
        this.stats.retries++;
        continue;
      }
      if (verdict.kind === 'tooSmall') {
        const needed = Number(GHCB.on(r.page).get('rbx'));
        if (!(needed > certs.pages)) {
          return { kind: 'failed', reason: `the host asked for ${needed} certificate pages` };
        }
        this.stats.retries++;
        if (needed <= GREQ_MAX_CERT_PAGES) {
          if (this.certPages(cpu, ghcb, needed) !== null) continue;
          // The host has seen these bytes under this sequence number: they go once more as a
          // plain request (never reuse the IV with other bytes), then the guest hears of the lack.
          const plain = this.sendPlain(ghcb, shared);
          return plain.kind === 'answered' ? { kind: 'answeredWithoutMemory' } : plain;
        }
        const plain = this.sendPlain(ghcb, shared);
        return plain.kind === 'answered' ? { kind: 'tooManyCertPages', pages: needed } : plain;
      }
      if (verdict.kind !== 'ok') {
        return { kind: 'failed', reason: `EXT_GUEST_REQUEST: ${verdict.reason}` };
      }
      const va = mapSharedPages(cpu, this.space, GREQ_CERTS_FIRST_SLOT, certs);
      try {
        return { kind: 'answered', certificates: cpu.read(va, certs.pages * PAGE) };
      } finally {
        unmapSharedPages(cpu, this.space, GREQ_CERTS_FIRST_SLOT, certs);
      }
    }
  }

  /**
   * Our certificate pages, at least `pages` of them (growing replaces the old run); null when the
   * allocator has no such block (the old run is kept).
   */
  private certPages(cpu: Vmpl0, ghcb: GhcbClient, pages: number): SharedPages | null {
    if (this.certs !== null && this.certs.pages >= pages) return this.certs;
    const grown = allocSharedPages(cpu, ghcb, this.space, this.allocator, pages);
    if (grown === null) return null;
    if (this.certs !== null) releaseSharedPages(cpu, ghcb, this.space, this.allocator, this.certs);
    this.certs = grown;
    return grown;
  }

  /** Wipes VMPCK0 everywhere we hold it and reports the failure. */
  private fail(cpu: Vmpl0, reason: string): GuestRequestOutcome {
    this.stats.failures++;
    this.keys.vmpck0.fill(0);
    cpu.write(this.secretsVa + SNP_SECRETS_PAGE.offset('vmpck0'), new Uint8Array(32));
    return { ok: false, reason: `${reason}; VMPCK0 wiped` };
  }
}

type Sent =
  | { readonly kind: 'answered'; readonly certificates: Uint8Array | null }
  | { readonly kind: 'tooManyCertPages'; readonly pages: number }
  /** No memory for certificate pages before anything was sent. */
  | { readonly kind: 'outOfMemory' }
  /** Answered as a plain request because more certificate pages could not be had. */
  | { readonly kind: 'answeredWithoutMemory' }
  | { readonly kind: 'failed'; readonly reason: string };

interface Verdict {
  readonly kind: 'ok' | 'busy' | 'tooSmall' | 'error';
  readonly reason: string;
}

/** The host's answer to a guest request (SW_EXITINFO1/2, GHCB spec and Linux). */
function judge(exitInfo1: bigint, exitInfo2: bigint): Verdict {
  const error = (reason: string): Verdict => ({ kind: 'error', reason });
  if (exitInfo1 !== 0n)
    return error(`the host refused it (SW_EXITINFO1 ${exitInfo1}, ${exitInfo2})`);
  const { fwError, vmmError } = decodeGuestRequestResult(exitInfo2);
  if (vmmError === GUEST_REQUEST_VMM_ERR.BUSY) return { kind: 'busy', reason: 'the host is busy' };
  if (vmmError === GUEST_REQUEST_VMM_ERR.INVALID_LEN && fwError === 0) {
    return { kind: 'tooSmall', reason: 'too few certificate pages' };
  }
  if (vmmError !== 0) return error(`VMM error ${vmmError}`);
  if (fwError !== 0) return error(`firmware error 0x${fwError.toString(16)}`);
  return { kind: 'ok', reason: '' };
}
