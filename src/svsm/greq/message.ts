// One SNP guest message as the SVSM builds and checks it (reference/sev-snp-abi.md section 3.2;
// Linux `enc_payload` / `verify_and_dec_payload`, COCONUT `greq/msg.rs`): a 4 KiB page with the
// 0x60-byte header, AES-256-GCM under the VMPCK, AAD = header bytes 0x30..0x5F, IV = MSG_SEQNO
// (u64 LE) followed by four zero bytes, the 16-byte tag in AUTHTAG, the ciphertext at 0x60.

import { gcm } from '@noble/ciphers/aes.js';
import {
  AEAD_ALGO_AES_256_GCM,
  GUEST_MSG_AUTHTAG_SIZE,
  GUEST_MSG_HDR,
  GUEST_MSG_HDR_SIZE,
  GUEST_MSG_HDR_VERSION,
  GUEST_MSG_MAX_PAYLOAD,
  GUEST_MSG_PAGE_SIZE,
  GUEST_MSG_PAYLOAD_OFFSET,
  gcmIv,
  guestMsgAad,
} from '../../arch/index.js';

/** What a request was, so its response can be checked against it. */
export interface MessageIdentity {
  readonly type: number;
  readonly version: number;
  readonly vmpck: number;
  readonly seqno: bigint;
}

export type OpenedMessage =
  | { readonly ok: true; readonly payload: Uint8Array }
  | { readonly ok: false; readonly reason: string };

/** The request page: header, then the payload encrypted under `key`. */
export function sealMessage(key: Uint8Array, id: MessageIdentity, payload: Uint8Array): Uint8Array {
  if (payload.length > GUEST_MSG_MAX_PAYLOAD) {
    throw new RangeError(`a guest message payload is at most ${GUEST_MSG_MAX_PAYLOAD} bytes`);
  }
  const page = new Uint8Array(GUEST_MSG_PAGE_SIZE);
  GUEST_MSG_HDR.on(page)
    .set('msgSeqno', id.seqno)
    .set('algo', AEAD_ALGO_AES_256_GCM)
    .set('hdrVersion', GUEST_MSG_HDR_VERSION)
    .set('hdrSize', GUEST_MSG_HDR_SIZE)
    .set('msgType', id.type)
    .set('msgVersion', id.version)
    .set('msgSize', payload.length)
    .set('msgVmpck', id.vmpck);
  // noble returns ciphertext || 16-byte tag.
  const sealed = gcm(key, gcmIv(id.seqno), guestMsgAad(page)).encrypt(payload);
  page.set(sealed.subarray(0, payload.length), GUEST_MSG_PAYLOAD_OFFSET);
  page.set(sealed.subarray(payload.length), 0);
  return page;
}

/**
 * Checks a response page against its request - MSG_SEQNO = request + 1, MSG_TYPE = request + 1,
 * the same MSG_VERSION and MSG_VMPCK, the one header format, a size that fits - and decrypts it.
 * `page` must be a private copy: the shared page can change under us.
 */
export function openResponse(
  key: Uint8Array,
  request: MessageIdentity,
  page: Uint8Array,
): OpenedMessage {
  const refuse = (reason: string): OpenedMessage => ({ ok: false, reason });
  if (page.length !== GUEST_MSG_PAGE_SIZE) return refuse('a response is one 4 KiB page');
  const h = GUEST_MSG_HDR.on(page);
  if (
    h.get('algo') !== AEAD_ALGO_AES_256_GCM ||
    h.get('hdrVersion') !== GUEST_MSG_HDR_VERSION ||
    h.get('hdrSize') !== GUEST_MSG_HDR_SIZE
  ) {
    return refuse('the response header has an unknown format');
  }
  if (h.get('msgSeqno') !== request.seqno + 1n) {
    return refuse(`response MSG_SEQNO ${h.get('msgSeqno')}, expected ${request.seqno + 1n}`);
  }
  if (h.get('msgType') !== request.type + 1) {
    return refuse(`response MSG_TYPE ${h.get('msgType')}, expected ${request.type + 1}`);
  }
  if (h.get('msgVersion') !== request.version || h.get('msgVmpck') !== request.vmpck) {
    return refuse('response MSG_VERSION or MSG_VMPCK differs from the request');
  }
  const size = h.get('msgSize');
  if (size > GUEST_MSG_MAX_PAYLOAD) return refuse(`response MSG_SIZE ${size} exceeds the page`);
  const sealed = new Uint8Array(size + GUEST_MSG_AUTHTAG_SIZE);
  sealed.set(page.subarray(GUEST_MSG_PAYLOAD_OFFSET, GUEST_MSG_PAYLOAD_OFFSET + size));
  sealed.set(page.subarray(0, GUEST_MSG_AUTHTAG_SIZE), size);
  try {
    return {
      ok: true,
      payload: gcm(key, gcmIv(request.seqno + 1n), guestMsgAad(page)).decrypt(sealed),
    };
  } catch (e) {
    // noble reports a tag that does not authenticate only by throwing an Error.
    if (e instanceof Error) return refuse('the response does not authenticate under the VMPCK');
    throw e;
  }
}
