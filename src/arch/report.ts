// ATTESTATION_REPORT (SNP ABI, Table "ATTESTATION_REPORT Structure"; offsets as in
// reference/sev-snp-abi.md section 2), TCB_VERSION, guest policy, PLATFORM_INFO and signer info.
// Versions 2, 3 and 4 are read; version 3 is what our ASP writes.

import { defineBits, field, flag } from './bits.js';
import { defineStruct } from './struct.js';

export const REPORT_SIZE = 0x4a0;
/** The signature covers bytes [0, SIGNED_LENGTH). */
export const REPORT_SIGNED_LENGTH = 0x2a0;
/** ECDSA R and S are stored little-endian, zero-padded to 72 bytes each. */
export const REPORT_SIG_COMPONENT_SIZE = 72;
export const SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;
export const REPORT_VERSIONS_READ = [2, 3, 4] as const;
export const REPORT_VERSION_WRITTEN = 3;

export const ATTESTATION_REPORT = defineStruct('ATTESTATION_REPORT', REPORT_SIZE, {
  version: { offset: 0x000, type: 'u32' },
  guestSvn: { offset: 0x004, type: 'u32' },
  policy: { offset: 0x008, type: 'u64', doc: 'guest policy' },
  familyId: { offset: 0x010, type: 'bytes', size: 16 },
  imageId: { offset: 0x020, type: 'bytes', size: 16 },
  vmpl: { offset: 0x030, type: 'u32' },
  signatureAlgo: { offset: 0x034, type: 'u32' },
  currentTcb: { offset: 0x038, type: 'u64', doc: 'TCB_VERSION' },
  platformInfo: { offset: 0x040, type: 'u64' },
  signerInfo: { offset: 0x048, type: 'u32', doc: 'AUTHOR_KEY_EN, MASK_CHIP_KEY, SIGNING_KEY' },
  reserved0: { offset: 0x04c, type: 'u32' },
  reportData: { offset: 0x050, type: 'bytes', size: 64 },
  measurement: { offset: 0x090, type: 'bytes', size: 48 },
  hostData: { offset: 0x0c0, type: 'bytes', size: 32 },
  idKeyDigest: { offset: 0x0e0, type: 'bytes', size: 48 },
  authorKeyDigest: { offset: 0x110, type: 'bytes', size: 48 },
  reportId: { offset: 0x140, type: 'bytes', size: 32 },
  reportIdMa: { offset: 0x160, type: 'bytes', size: 32 },
  reportedTcb: { offset: 0x180, type: 'u64', doc: 'TCB_VERSION' },
  cpuidFamId: { offset: 0x188, type: 'u8', doc: 'v3+' },
  cpuidModId: { offset: 0x189, type: 'u8', doc: 'v3+' },
  cpuidStep: { offset: 0x18a, type: 'u8', doc: 'v3+' },
  reserved1: { offset: 0x18b, type: 'bytes', size: 0x1a0 - 0x18b },
  chipId: { offset: 0x1a0, type: 'bytes', size: 64 },
  committedTcb: { offset: 0x1e0, type: 'u64', doc: 'TCB_VERSION' },
  currentBuild: { offset: 0x1e8, type: 'u8' },
  currentMinor: { offset: 0x1e9, type: 'u8' },
  currentMajor: { offset: 0x1ea, type: 'u8' },
  reserved2: { offset: 0x1eb, type: 'u8' },
  committedBuild: { offset: 0x1ec, type: 'u8' },
  committedMinor: { offset: 0x1ed, type: 'u8' },
  committedMajor: { offset: 0x1ee, type: 'u8' },
  reserved3: { offset: 0x1ef, type: 'u8' },
  launchTcb: { offset: 0x1f0, type: 'u64', doc: 'TCB_VERSION' },
  launchMitVector: { offset: 0x1f8, type: 'u64', doc: 'v5 only' },
  currentMitVector: { offset: 0x200, type: 'u64', doc: 'v5 only' },
  reserved4: { offset: 0x208, type: 'bytes', size: REPORT_SIGNED_LENGTH - 0x208 },
  signatureR: { offset: 0x2a0, type: 'bytes', size: REPORT_SIG_COMPONENT_SIZE, doc: 'LE' },
  signatureS: { offset: 0x2e8, type: 'bytes', size: REPORT_SIG_COMPONENT_SIZE, doc: 'LE' },
  reserved5: { offset: 0x330, type: 'bytes', size: REPORT_SIZE - 0x330 },
});

/** TCB_VERSION as Milan and Genoa lay it out (Turin differs; we emit Milan/Genoa only). */
export const TCB_VERSION = defineBits('TCB_VERSION', 64, {
  bootLoader: field(0, 8),
  tee: field(8, 8),
  spl4: field(16, 8),
  spl5: field(24, 8),
  spl6: field(32, 8),
  spl7: field(40, 8),
  snp: field(48, 8),
  microcode: field(56, 8),
});

/** Guest policy (SNP ABI, Table "Guest Policy Structure"). */
export const GUEST_POLICY = defineBits('GUEST_POLICY', 64, {
  abiMinor: field(0, 8),
  abiMajor: field(8, 8),
  smt: flag(16, 'SMT allowed'),
  reserved1: flag(17, 'must be 1'),
  migrateMa: flag(18),
  debug: flag(19),
  singleSocket: flag(20),
  cxlAllow: flag(21),
  memAes256Xts: flag(22),
  raplDis: flag(23),
  ciphertextHiding: flag(24),
  pageSwapDisable: flag(25),
});

export const PLATFORM_INFO = defineBits('PLATFORM_INFO', 64, {
  smtEn: flag(0),
  tsmeEn: flag(1),
  eccEn: flag(2),
  raplDis: flag(3),
  ciphertextHidingEn: flag(4),
  aliasCheckComplete: flag(5),
  sevTioEn: flag(7),
});

export const SIGNER_INFO = defineBits('SIGNER_INFO', 32, {
  authorKeyEn: flag(0),
  maskChipKey: flag(1),
  signingKey: field(2, 3, '0 VCEK, 1 VLEK, 7 none'),
});

export const SIGNING_KEY = { VCEK: 0, VLEK: 1, NONE: 7 } as const;

/** CPUID family/model of the parts whose identity our reports carry. */
export const PRODUCT_CPUID = {
  Milan: { family: 0x19, model: 0x01, stepping: 0x01, fms: 0x00a00f11 },
  Genoa: { family: 0x19, model: 0x11, stepping: 0x01, fms: 0x00a10f11 },
} as const;

export type ProductName = keyof typeof PRODUCT_CPUID;

/** A report that cannot be read: wrong size or an unknown version. */
export class ReportFormatError extends Error {
  override readonly name = 'ReportFormatError';
}

/**
 * Checks that `bytes` is a report this project can read and returns its version. The message of
 * the error says what is wrong in one sentence, for a CLI.
 */
export function checkReportBytes(bytes: Uint8Array): 2 | 3 | 4 {
  if (bytes.length !== REPORT_SIZE) {
    throw new ReportFormatError(
      `an attestation report is ${REPORT_SIZE} (0x4a0) bytes, this input is ${bytes.length}`,
    );
  }
  const version = ATTESTATION_REPORT.get(bytes, 'version');
  if (version !== 2 && version !== 3 && version !== 4) {
    throw new ReportFormatError(
      `unsupported attestation report version ${version} (versions 2, 3 and 4 are read)`,
    );
  }
  return version;
}

/** The product line a v3+ report names through its CPUID bytes (virtee's rules), if any. */
export function productFromCpuid(family: number, model: number): string | undefined {
  if (family === 0x19 && model <= 0x0f) return 'Milan';
  if (family === 0x19 && ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))) {
    return 'Genoa';
  }
  if (family === 0x1a && model <= 0x11) return 'Turin';
  return undefined;
}
