// The SNP secrets page (the 4 KiB SECRETS launch page the firmware fills) and Linux's layout of
// its guest-OS area.
// Facts: reference/sev-snp-abi.md section 3.5 (SNP ABI, Table "PAGE_TYPE_SECRETS"; Linux
// `struct snp_secrets_page` / `struct secrets_os_area`; coconut `sev/secrets_page.rs`) and
// reference/linux-snp-guest.md section 2.4.

import { defineStruct } from './struct.js';

export const SECRETS_PAGE_SIZE = 0x1000;
/** The VERSION our firmware writes (mushroom accepts only 3, Oak rejects < 2). */
export const SECRETS_PAGE_VERSION = 3;
export const VMPCK_SIZE = 32;
/** Where the 96-byte guest-OS area starts. */
export const SECRETS_OS_AREA_OFFSET = 0xa0;
export const SECRETS_OS_AREA_SIZE = 0x60;
/** IMI_EN: bit 0 of the u32 at 0x004. */
export const SECRETS_IMI_EN = 1;

// SNP ABI, Table "PAGE_TYPE_SECRETS" (with the SVSM fields the SVSM fills in, TSC_FACTOR and
// LAUNCH_MIT_VECTOR of newer firmware).
export const SNP_SECRETS_PAGE = defineStruct('SNP_SECRETS_PAGE', SECRETS_PAGE_SIZE, {
  version: { offset: 0x000, type: 'u32', doc: 'VERSION' },
  imiEn: { offset: 0x004, type: 'u32', doc: 'bit 0 IMI_EN' },
  fms: { offset: 0x008, type: 'u32', doc: 'FMS, CPUID(1).EAX' },
  reserved00C: { offset: 0x00c, type: 'u32' },
  gosvw: { offset: 0x010, type: 'bytes', size: 16, doc: 'GOSVW' },
  vmpck0: { offset: 0x020, type: 'bytes', size: VMPCK_SIZE },
  vmpck1: { offset: 0x040, type: 'bytes', size: VMPCK_SIZE },
  vmpck2: { offset: 0x060, type: 'bytes', size: VMPCK_SIZE },
  vmpck3: { offset: 0x080, type: 'bytes', size: VMPCK_SIZE },
  osArea: { offset: SECRETS_OS_AREA_OFFSET, type: 'bytes', size: SECRETS_OS_AREA_SIZE },
  vmsaTweakBitmap: { offset: 0x100, type: 'bytes', size: 64, doc: 'VMSA_TWEAK_BITMAP' },
  svsmBase: { offset: 0x140, type: 'u64', doc: 'SVSM_BASE' },
  svsmSize: { offset: 0x148, type: 'u64', doc: 'SVSM_SIZE' },
  svsmCaa: { offset: 0x150, type: 'u64', doc: 'SVSM_CAA, BSP calling area GPA' },
  svsmMaxVersion: { offset: 0x158, type: 'u32', doc: 'SVSM_MAX_VERSION' },
  svsmGuestVmpl: { offset: 0x15c, type: 'u8', doc: 'SVSM_GUEST_VMPL' },
  reserved15D: { offset: 0x15d, type: 'bytes', size: 3 },
  tscFactor: { offset: 0x160, type: 'u32', doc: 'TSC_FACTOR' },
  reserved164: { offset: 0x164, type: 'u32' },
  launchMitVector: { offset: 0x168, type: 'u64', doc: 'LAUNCH_MIT_VECTOR' },
  reserved170: { offset: 0x170, type: 'bytes', size: SECRETS_PAGE_SIZE - 0x170 },
});

/** The VMPCK field for VMPL n. */
export const VMPCK_FIELDS = ['vmpck0', 'vmpck1', 'vmpck2', 'vmpck3'] as const;

// Linux `struct secrets_os_area` (GHCB spec, "SEV-SNP Secrets Page"): apply it at base
// SECRETS_OS_AREA_OFFSET of the secrets page.
export const LINUX_SECRETS_OS_AREA = defineStruct('LINUX_SECRETS_OS_AREA', SECRETS_OS_AREA_SIZE, {
  msgSeqno0: { offset: 0x00, type: 'u32', doc: 'msg_seqno_0' },
  msgSeqno1: { offset: 0x04, type: 'u32', doc: 'msg_seqno_1' },
  msgSeqno2: { offset: 0x08, type: 'u32', doc: 'msg_seqno_2' },
  msgSeqno3: { offset: 0x0c, type: 'u32', doc: 'msg_seqno_3' },
  apJumpTablePa: { offset: 0x10, type: 'u64', doc: 'ap_jump_table_pa' },
  reserved18: { offset: 0x18, type: 'bytes', size: 40 },
  guestUsage: { offset: 0x40, type: 'bytes', size: 32, doc: 'guest_usage' },
});

/** Linux's message sequence counter for VMPCK n. */
export const LINUX_MSG_SEQNO_FIELDS = ['msgSeqno0', 'msgSeqno1', 'msgSeqno2', 'msgSeqno3'] as const;
