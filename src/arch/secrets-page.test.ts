import { describe, expect, it } from 'vitest';
import { expectSpecLayout } from '../../test/support/spec-layout.js';
import {
  LINUX_MSG_SEQNO_FIELDS,
  LINUX_SECRETS_OS_AREA,
  SECRETS_OS_AREA_OFFSET,
  SECRETS_PAGE_VERSION,
  SNP_SECRETS_PAGE,
  VMPCK_FIELDS,
} from './secrets-page.js';

// Tables typed from reference/sev-snp-abi.md section 3.5 and linux-snp-guest.md section 2.4,
// independently of secrets-page.ts.
describe('secrets page', () => {
  it('is 4 KiB with every field at its spec offset', () => {
    expectSpecLayout(SNP_SECRETS_PAGE, 0x1000, {
      version: [0x000, 4],
      imiEn: [0x004, 4],
      fms: [0x008, 4],
      reserved00C: [0x00c, 4],
      gosvw: [0x010, 16],
      vmpck0: [0x020, 32],
      vmpck1: [0x040, 32],
      vmpck2: [0x060, 32],
      vmpck3: [0x080, 32],
      osArea: [0x0a0, 96],
      vmsaTweakBitmap: [0x100, 64],
      svsmBase: [0x140, 8],
      svsmSize: [0x148, 8],
      svsmCaa: [0x150, 8],
      svsmMaxVersion: [0x158, 4],
      svsmGuestVmpl: [0x15c, 1],
      reserved15D: [0x15d, 3],
      tscFactor: [0x160, 4],
      reserved164: [0x164, 4],
      launchMitVector: [0x168, 8],
      reserved170: [0x170, 0x1000 - 0x170],
    });
  });

  it('is written with version 3', () => {
    expect(SECRETS_PAGE_VERSION).toBe(3);
  });

  it('keeps the VMPCK of VMPL n at 0x20 + 0x20 * n', () => {
    expect(VMPCK_FIELDS.map((f) => SNP_SECRETS_PAGE.offset(f))).toEqual([0x20, 0x40, 0x60, 0x80]);
  });

  it('stores the SVSM fields where Linux reads them', () => {
    const page = SNP_SECRETS_PAGE.alloc();
    SNP_SECRETS_PAGE.on(page)
      .set('svsmSize', 0x40_0000n)
      .set('svsmCaa', 0x8000_1000n)
      .set('svsmGuestVmpl', 2);
    const view = new DataView(page.buffer);
    expect(view.getBigUint64(0x148, true)).toBe(0x40_0000n);
    expect(view.getBigUint64(0x150, true)).toBe(0x8000_1000n);
    expect(page[0x15c]).toBe(2);
  });
});

describe('Linux secrets OS area', () => {
  it('is 96 bytes with the sequence counters, AP jump table and guest_usage', () => {
    expectSpecLayout(LINUX_SECRETS_OS_AREA, 0x60, {
      msgSeqno0: [0x00, 4],
      msgSeqno1: [0x04, 4],
      msgSeqno2: [0x08, 4],
      msgSeqno3: [0x0c, 4],
      apJumpTablePa: [0x10, 8],
      reserved18: [0x18, 40],
      guestUsage: [0x40, 32],
    });
  });

  it('lands at the page offsets of struct snp_secrets_page when placed at 0xa0', () => {
    expect(SECRETS_OS_AREA_OFFSET).toBe(0xa0);
    const absolute = LINUX_MSG_SEQNO_FIELDS.map(
      (f) => SECRETS_OS_AREA_OFFSET + LINUX_SECRETS_OS_AREA.offset(f),
    );
    expect(absolute).toEqual([0xa0, 0xa4, 0xa8, 0xac]);
    const page = SNP_SECRETS_PAGE.alloc();
    LINUX_SECRETS_OS_AREA.set(page, 'msgSeqno2', 0x11223344, SECRETS_OS_AREA_OFFSET);
    LINUX_SECRETS_OS_AREA.set(page, 'apJumpTablePa', 0x9000n, SECRETS_OS_AREA_OFFSET);
    expect([...page.subarray(0xa8, 0xac)]).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect([page[0xb0], page[0xb1]]).toEqual([0x00, 0x90]);
    expect(SECRETS_OS_AREA_OFFSET + LINUX_SECRETS_OS_AREA.offset('guestUsage')).toBe(0xe0);
  });
});
