import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { SEV_FW_STATUS } from '../../arch/index.js';
import { GuestMessageChannel } from './guest-channel.js';

const keys = [0, 1, 2, 3].map((i) => new Uint8Array(32).fill(0x10 + i));

// A guest's encoder written from the spec text (header offsets, IV = seqno LE + 4 zero bytes,
// AAD = header bytes 0x30..0x5F), independent of the channel's own helpers.
function guestRequest(
  key: Uint8Array,
  seqno: bigint,
  vmpck: number,
  type: number,
  payload: Uint8Array,
): Uint8Array {
  const page = Buffer.alloc(4096);
  page.writeBigUInt64LE(seqno, 0x20);
  page[0x30] = 1;
  page[0x31] = 1;
  page.writeUInt16LE(0x60, 0x32);
  page[0x34] = type;
  page[0x35] = 1;
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

function guestOpen(
  key: Uint8Array,
  page: Uint8Array,
): { seqno: bigint; type: number; payload: Buffer } {
  const p = Buffer.from(page);
  const seqno = p.readBigUInt64LE(0x20);
  const size = p.readUInt16LE(0x36);
  const iv = Buffer.alloc(12);
  iv.writeBigUInt64LE(seqno, 0);
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(p.subarray(0x30, 0x60));
  d.setAuthTag(p.subarray(0, 16));
  const payload = Buffer.concat([d.update(p.subarray(0x60, 0x60 + size)), d.final()]);
  return { seqno, type: p[0x34]!, payload };
}

describe('guest message channel', () => {
  it('opens a request and answers with type+1 and seqno+1 that the guest can decrypt', () => {
    const ch = new GuestMessageChannel(keys);
    const r = ch.open(guestRequest(keys[0]!, 1n, 0, 5, Uint8Array.of(1, 2, 3)));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.message).toMatchObject({ type: 5, version: 1, vmpck: 0, seqno: 1n });
    expect([...r.message.payload]).toEqual([1, 2, 3]);
    const resp = guestOpen(keys[0]!, ch.respond(r.message, Uint8Array.of(9, 9)));
    expect(resp).toMatchObject({ seqno: 2n, type: 6 });
    expect([...resp.payload]).toEqual([9, 9]);
    expect(ch.expectedSeqno(0)).toBe(3n);
    expect(ch.expectedSeqno(1)).toBe(1n);
  });

  it('refuses a replayed or skipped sequence number and keeps its counter', () => {
    const ch = new GuestMessageChannel(keys);
    const first = ch.open(guestRequest(keys[2]!, 1n, 2, 5, new Uint8Array(4)));
    if (!first.ok) throw new Error('first request refused');
    ch.respond(first.message, new Uint8Array(4));
    const replay = ch.open(guestRequest(keys[2]!, 1n, 2, 5, new Uint8Array(4)));
    expect(replay).toMatchObject({ ok: false, status: SEV_FW_STATUS.INVALID_PARAM });
    expect(!replay.ok && replay.reason).toContain('expected 3');
    expect(ch.open(guestRequest(keys[2]!, 5n, 2, 5, new Uint8Array(4))).ok).toBe(false);
    expect(ch.open(guestRequest(keys[2]!, 3n, 2, 5, new Uint8Array(4))).ok).toBe(true);
  });

  it('refuses a message under the wrong VMPCK, and does not advance on refusal', () => {
    const ch = new GuestMessageChannel(keys);
    const wrong = ch.open(guestRequest(keys[1]!, 1n, 0, 5, new Uint8Array(8)));
    expect(wrong.ok).toBe(false);
    expect(!wrong.ok && wrong.reason).toContain('does not authenticate');
    expect(ch.expectedSeqno(0)).toBe(1n);
  });

  it('refuses any flipped bit in the tag, the AAD or the ciphertext', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: 15 }),
          fc.integer({ min: 0x30, max: 0x5f }),
          fc.integer({ min: 0x60, max: 0x60 + 31 }),
        ),
        fc.integer({ min: 0, max: 7 }),
        (offset, bit) => {
          const ch = new GuestMessageChannel(keys);
          const page = guestRequest(keys[3]!, 1n, 3, 5, new Uint8Array(32).fill(0x5a));
          page[offset]! ^= 1 << bit;
          return !ch.open(page).ok;
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses malformed headers with a reason', () => {
    const ch = new GuestMessageChannel(keys);
    const cases: [number, number][] = [
      [0x30, 2], // algo
      [0x31, 2], // header version
      [0x3c, 4], // VMPCK 4
    ];
    for (const [off, value] of cases) {
      const page = guestRequest(keys[0]!, 1n, 0, 5, new Uint8Array(4));
      page[off] = value;
      const r = ch.open(page);
      expect(r.ok, `offset ${off}`).toBe(false);
    }
    const big = guestRequest(keys[0]!, 1n, 0, 5, new Uint8Array(4));
    Buffer.from(big.buffer).writeUInt16LE(4001, 0x36);
    expect(ch.open(big)).toMatchObject({ ok: false, status: SEV_FW_STATUS.INVALID_LEN });
    expect(ch.open(new Uint8Array(100))).toMatchObject({
      ok: false,
      status: SEV_FW_STATUS.INVALID_LEN,
    });
  });
});
