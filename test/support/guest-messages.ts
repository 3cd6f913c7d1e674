// A guest's side of SNP guest messages for tests, written from the spec text (header offsets,
// IV = MSG_SEQNO little-endian + 4 zero bytes, AAD = header bytes 0x30..0x5F) and independent of
// the firmware's implementation in src/hw/asp, so that the two check each other.
import { createCipheriv, createDecipheriv } from 'node:crypto';

export function sealRequest(
  key: Uint8Array,
  seqno: bigint,
  vmpck: number,
  type: number,
  payload: Uint8Array,
  version = 1,
): Uint8Array {
  const page = Buffer.alloc(4096);
  page.writeBigUInt64LE(seqno, 0x20);
  page[0x30] = 1; // AES-256-GCM
  page[0x31] = 1; // header version
  page.writeUInt16LE(0x60, 0x32);
  page[0x34] = type;
  page[0x35] = version;
  page.writeUInt16LE(payload.length, 0x36);
  page[0x3c] = vmpck;
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64LE(seqno, 0);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(page.subarray(0x30, 0x60));
  Buffer.concat([c.update(payload), c.final()]).copy(page, 0x60);
  c.getAuthTag().copy(page, 0);
  return new Uint8Array(page);
}

export interface OpenedResponse {
  seqno: bigint;
  type: number;
  version: number;
  vmpck: number;
  payload: Uint8Array;
}

export function openResponse(key: Uint8Array, page: Uint8Array): OpenedResponse {
  const p = Buffer.from(page);
  const seqno = p.readBigUInt64LE(0x20);
  const size = p.readUInt16LE(0x36);
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64LE(seqno, 0);
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(p.subarray(0x30, 0x60));
  d.setAuthTag(p.subarray(0, 16));
  const payload = Buffer.concat([d.update(p.subarray(0x60, 0x60 + size)), d.final()]);
  return {
    seqno,
    type: p[0x34]!,
    version: p[0x35]!,
    vmpck: p[0x3c]!,
    payload: new Uint8Array(payload),
  };
}

/** MSG_REPORT_REQ: REPORT_DATA[64], VMPL u32 at 0x40, KEY_SEL u32 at 0x44, 0x60 bytes. */
export function reportRequest(reportData: Uint8Array, vmpl: number, keySel = 0): Uint8Array {
  const b = Buffer.alloc(0x60);
  Buffer.from(reportData).copy(b, 0);
  b.writeUInt32LE(vmpl, 0x40);
  b.writeUInt32LE(keySel, 0x44);
  return new Uint8Array(b);
}
