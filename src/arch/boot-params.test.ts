import { describe, expect, it } from 'vitest';
import { BOOT_PARAMS, BOOT_PARAMS_SIZE } from './boot-params.js';

describe('boot_params', () => {
  it('has the firmware fields at the offsets of bootparam.h (reference 1.1)', () => {
    const at = Object.fromEntries(BOOT_PARAMS.fields.map((f) => [f.name, [f.offset, f.size]]));
    expect(at).toEqual({
      acpiRsdpAddr: [0x070, 8],
      ccBlobAddress: [0x13c, 4],
      e820Entries: [0x1e8, 1],
      sentinel: [0x1ef, 1],
      typeOfLoader: [0x210, 1],
      cmdLinePtr: [0x228, 4],
      setupData: [0x250, 8],
      // 128 packed {u64 addr, u64 size, u32 type}, ending at 0xCD0.
      e820Table: [0x2d0, 128 * 20],
    });
    expect(BOOT_PARAMS_SIZE).toBe(4096);
  });
});
