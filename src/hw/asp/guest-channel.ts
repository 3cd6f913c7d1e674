// The firmware's end of the guest message channel (SNP_GUEST_REQUEST): AES-256-GCM under one of
// the four VMPCKs, the header bytes 0x30..0x5F as AAD, the IV from the sequence number, and one
// sequence counter per VMPCK that only moves when a request succeeds (reference/sev-snp-abi.md
// section 3.2).

import { createCipheriv, createDecipheriv } from 'node:crypto';
import {
  AEAD_ALGO_AES_256_GCM,
  GUEST_MSG_AUTHTAG_SIZE,
  GUEST_MSG_HDR,
  GUEST_MSG_HDR_SIZE,
  GUEST_MSG_HDR_VERSION,
  GUEST_MSG_MAX_PAYLOAD,
  GUEST_MSG_MAX_VMPCK,
  GUEST_MSG_PAGE_SIZE,
  GUEST_MSG_PAYLOAD_OFFSET,
  SEV_FW_STATUS,
  gcmIv,
  guestMsgAad,
} from '../../arch/index.js';

/** A request the firmware has authenticated and decrypted. */
export interface GuestMessage {
  readonly type: number;
  readonly version: number;
  /** Which VMPCK protected it, which is also the requester's VMPL. */
  readonly vmpck: number;
  readonly seqno: bigint;
  readonly payload: Uint8Array;
}

export type OpenResult =
  | { readonly ok: true; readonly message: GuestMessage }
  | { readonly ok: false; readonly status: number; readonly reason: string };

const refuse = (status: number, reason: string): OpenResult => ({ ok: false, status, reason });

/** AES-256-GCM over a message page: fills the tag and ciphertext of `page` in place. */
export function sealMessagePage(
  key: Uint8Array,
  page: Uint8Array,
  seqno: bigint,
  payload: Uint8Array,
): void {
  const cipher = createCipheriv('aes-256-gcm', key, gcmIv(seqno));
  cipher.setAAD(guestMsgAad(page));
  const ct = Buffer.concat([cipher.update(payload), cipher.final()]);
  page.set(ct, GUEST_MSG_PAYLOAD_OFFSET);
  const tag = new Uint8Array(32);
  tag.set(cipher.getAuthTag());
  GUEST_MSG_HDR.set(page, 'authtag', tag);
}

/** Decrypts a message page; null when the tag does not authenticate. */
export function openMessagePage(
  key: Uint8Array,
  page: Uint8Array,
  seqno: bigint,
  size: number,
): Uint8Array | null {
  const decipher = createDecipheriv('aes-256-gcm', key, gcmIv(seqno));
  decipher.setAAD(guestMsgAad(page));
  decipher.setAuthTag(page.subarray(0, GUEST_MSG_AUTHTAG_SIZE));
  const ct = page.subarray(GUEST_MSG_PAYLOAD_OFFSET, GUEST_MSG_PAYLOAD_OFFSET + size);
  try {
    return new Uint8Array(Buffer.concat([decipher.update(ct), decipher.final()]));
  } catch {
    // node:crypto reports a bad tag only by throwing.
    return null;
  }
}

export class GuestMessageChannel {
  /** The sequence number the firmware expects next on each VMPCK. */
  private readonly expected: bigint[] = [1n, 1n, 1n, 1n];

  constructor(private readonly vmpcks: readonly Uint8Array[]) {
    if (vmpcks.length !== 4 || vmpcks.some((k) => k.length !== 32)) {
      throw new RangeError('a guest needs four 32-byte VMPCKs');
    }
  }

  /** The next sequence number on a VMPCK, for inspection and tests. */
  expectedSeqno(vmpck: number): bigint {
    return this.expected[vmpck]!;
  }

  /**
   * Checks and decrypts a request page. Refusals carry the firmware status and, for people
   * reading logs, the reason; the channel state does not change.
   * [uncertain] which status the firmware returns for a bad tag or sequence number: we answer
   * INVALID_PARAM, as for other malformed requests.
   */
  open(page: Uint8Array): OpenResult {
    if (page.length !== GUEST_MSG_PAGE_SIZE) {
      return refuse(SEV_FW_STATUS.INVALID_LEN, `a request is one 4 KiB page`);
    }
    const h = GUEST_MSG_HDR.on(page);
    if (h.get('algo') !== AEAD_ALGO_AES_256_GCM) {
      return refuse(SEV_FW_STATUS.INVALID_PARAM, `unsupported AEAD algorithm ${h.get('algo')}`);
    }
    if (h.get('hdrVersion') !== GUEST_MSG_HDR_VERSION || h.get('hdrSize') !== GUEST_MSG_HDR_SIZE) {
      return refuse(SEV_FW_STATUS.INVALID_PARAM, 'unsupported message header version or size');
    }
    const vmpck = h.get('msgVmpck');
    if (vmpck > GUEST_MSG_MAX_VMPCK) {
      return refuse(SEV_FW_STATUS.INVALID_PARAM, `MSG_VMPCK ${vmpck} does not exist`);
    }
    const size = h.get('msgSize');
    if (size > GUEST_MSG_MAX_PAYLOAD) {
      return refuse(SEV_FW_STATUS.INVALID_LEN, `MSG_SIZE ${size} exceeds the page`);
    }
    const seqno = h.get('msgSeqno');
    if (seqno !== this.expected[vmpck]) {
      return refuse(
        SEV_FW_STATUS.INVALID_PARAM,
        `sequence number ${seqno} on VMPCK${vmpck}, expected ${this.expected[vmpck]}`,
      );
    }
    const payload = openMessagePage(this.vmpcks[vmpck]!, page, seqno, size);
    if (payload === null) {
      return refuse(
        SEV_FW_STATUS.INVALID_PARAM,
        `message does not authenticate under VMPCK${vmpck}`,
      );
    }
    return {
      ok: true,
      message: { type: h.get('msgType'), version: h.get('msgVersion'), vmpck, seqno, payload },
    };
  }

  /**
   * Builds the response page to an opened request (type + 1, seqno + 1, same version and VMPCK)
   * and advances that VMPCK's counter past both messages.
   */
  respond(request: GuestMessage, payload: Uint8Array): Uint8Array {
    if (payload.length > GUEST_MSG_MAX_PAYLOAD) throw new RangeError('response payload too large');
    const page = new Uint8Array(GUEST_MSG_PAGE_SIZE);
    const seqno = request.seqno + 1n;
    GUEST_MSG_HDR.on(page)
      .set('msgSeqno', seqno)
      .set('algo', AEAD_ALGO_AES_256_GCM)
      .set('hdrVersion', GUEST_MSG_HDR_VERSION)
      .set('hdrSize', GUEST_MSG_HDR_SIZE)
      .set('msgType', request.type + 1)
      .set('msgVersion', request.version)
      .set('msgSize', payload.length)
      .set('msgVmpck', request.vmpck);
    sealMessagePage(this.vmpcks[request.vmpck]!, page, seqno, payload);
    this.expected[request.vmpck] = request.seqno + 2n;
    return page;
  }
}
