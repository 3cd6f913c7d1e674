// The confidential-computing blob through which Linux finds the secrets and CPUID pages
// (`struct cc_blob_sev_info`), and the setup_data node that points to it (SETUP_CC_BLOB).
// Facts: reference/linux-snp-guest.md section 1.3 (Linux `asm/sev.h`, `uapi/asm/setup_data.h`,
// `struct cc_setup_data`).

import { defineStruct } from './struct.js';

/** setup_data type of the CC blob node (`uapi/asm/setup_data.h`). */
export const SETUP_CC_BLOB = 7;
/** "AMDE" read as a little-endian u32 (Linux `CC_BLOB_SEV_HDR_MAGIC`). */
export const CC_BLOB_SEV_HDR_MAGIC = 0x45444d41;
/** Linux requires secrets_len to be exactly one page. */
export const CC_BLOB_SECRETS_LEN = 0x1000;
/** Linux requires cpuid_len to be at least one page. */
export const CC_BLOB_MIN_CPUID_LEN = 0x1000;

// Linux `struct cc_blob_sev_info` (packed, 0x28 bytes).
export const CC_BLOB_SEV_INFO = defineStruct('CC_BLOB_SEV_INFO', 0x28, {
  magic: { offset: 0x00, type: 'u32', doc: 'CC_BLOB_SEV_HDR_MAGIC' },
  version: { offset: 0x04, type: 'u16', doc: 'not checked by Linux' },
  reserved: { offset: 0x06, type: 'u16' },
  secretsPhys: { offset: 0x08, type: 'u64', doc: 'secrets page GPA' },
  secretsLen: { offset: 0x10, type: 'u32', doc: 'must be 0x1000' },
  rsvd1: { offset: 0x14, type: 'u32' },
  cpuidPhys: { offset: 0x18, type: 'u64', doc: 'CPUID page GPA' },
  cpuidLen: { offset: 0x20, type: 'u32', doc: '>= 0x1000' },
  rsvd2: { offset: 0x24, type: 'u32' },
});

/** The data length of a SETUP_CC_BLOB node: one u32 address. */
export const CC_SETUP_DATA_LEN = 4;

// Linux `struct cc_setup_data`: a `struct setup_data` header {next, type, len} followed by the
// blob's 32-bit physical address, so the blob must sit below 4 GiB.
export const CC_SETUP_DATA = defineStruct('CC_SETUP_DATA', 0x14, {
  next: { offset: 0x00, type: 'u64', doc: 'next setup_data node, 0 ends the list' },
  type: { offset: 0x08, type: 'u32', doc: 'SETUP_CC_BLOB' },
  len: { offset: 0x0c, type: 'u32', doc: 'CC_SETUP_DATA_LEN' },
  ccBlobAddress: { offset: 0x10, type: 'u32', doc: 'GPA of CC_BLOB_SEV_INFO' },
});
