import { describe, expect, it } from 'vitest';
import { expectSpecLayout } from '../../test/support/spec-layout.js';
import {
  CC_BLOB_SEV_HDR_MAGIC,
  CC_BLOB_SEV_INFO,
  CC_SETUP_DATA,
  CC_SETUP_DATA_LEN,
  SETUP_CC_BLOB,
} from './cc-blob.js';

// Tables typed from reference/linux-snp-guest.md section 1.3, independently of cc-blob.ts.
describe('cc_blob_sev_info', () => {
  it('is 0x28 packed bytes with every field at its Linux offset', () => {
    expectSpecLayout(CC_BLOB_SEV_INFO, 0x28, {
      magic: [0x00, 4],
      version: [0x04, 2],
      reserved: [0x06, 2],
      secretsPhys: [0x08, 8],
      secretsLen: [0x10, 4],
      rsvd1: [0x14, 4],
      cpuidPhys: [0x18, 8],
      cpuidLen: [0x20, 4],
      rsvd2: [0x24, 4],
    });
  });

  it('starts with the ASCII bytes "AMDE"', () => {
    const blob = CC_BLOB_SEV_INFO.alloc();
    CC_BLOB_SEV_INFO.set(blob, 'magic', CC_BLOB_SEV_HDR_MAGIC);
    expect(new TextDecoder().decode(blob.subarray(0, 4))).toBe('AMDE');
  });
});

describe('SETUP_CC_BLOB node', () => {
  it('is setup_data type 7 carrying a 4-byte blob address', () => {
    expect(SETUP_CC_BLOB).toBe(7);
    expect(CC_SETUP_DATA_LEN).toBe(4);
    expectSpecLayout(CC_SETUP_DATA, 0x14, {
      next: [0x00, 8],
      type: [0x08, 4],
      len: [0x0c, 4],
      ccBlobAddress: [0x10, 4],
    });
  });
});
