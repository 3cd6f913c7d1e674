// Filling and signing ATTESTATION_REPORTs as the ASP firmware does (SNP ABI, Table
// "ATTESTATION_REPORT Structure"; reference/sev-snp-abi.md section 2). buildReport writes a
// version-3 report from the guest's launch context and the chip's identity; signReport signs
// bytes [0, 0x2A0) with ECDSA P-384/SHA-384 under the VCEK and stores R and S little-endian,
// zero-padded to 72 bytes, at 0x2A0 and 0x2E8.

import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { bigEndianToSevComponent, sevComponentToBigEndian } from '../../arch/index.js';
import {
  ATTESTATION_REPORT,
  PRODUCT_CPUID,
  REPORT_SIGNED_LENGTH,
  REPORT_SIZE,
  REPORT_VERSION_WRITTEN,
  SIGNATURE_ALGO_ECDSA_P384_SHA384,
  SIGNER_INFO,
  SIGNING_KEY,
  type ProductName,
} from '../../arch/index.js';
import { FieldRangeError } from '../../arch/index.js';
import type { FirmwareVersion } from './chip-identity.js';
import { p384PrivateScalarOf, P384_BYTES, signP384Sha384 } from './ecdsa-p384.js';

/** Everything a report says; optional fields default to what firmware writes when absent. */
export interface ReportFields {
  readonly product: ProductName;
  /** GUEST_SVN from the ID block; 0 without one. */
  readonly guestSvn?: number;
  readonly policy: bigint;
  /** FAMILY_ID and IMAGE_ID from the ID block; zero without one. */
  readonly familyId?: Uint8Array;
  readonly imageId?: Uint8Array;
  /** The VMPL the report was requested for. */
  readonly vmpl: number;
  readonly currentTcb: bigint;
  readonly platformInfo?: bigint;
  /** SIGNER_INFO AUTHOR_KEY_EN. */
  readonly authorKeyEn?: boolean;
  /**
   * The platform's MASK_CHIP_ID setting: CHIP_ID is written as zeros. (Not SIGNER_INFO's
   * MASK_CHIP_KEY, which means the firmware does not sign at all; our firmware always signs.)
   */
  readonly maskChipId?: boolean;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData?: Uint8Array;
  readonly idKeyDigest?: Uint8Array;
  readonly authorKeyDigest?: Uint8Array;
  readonly reportId: Uint8Array;
  /** REPORT_ID_MA; all 0xFF (no migration agent) by default, as on real reports. */
  readonly reportIdMa?: Uint8Array;
  /** The TCB the signing VCEK was derived for. */
  readonly reportedTcb: bigint;
  readonly chipId: Uint8Array;
  readonly committedTcb: bigint;
  readonly currentVersion: FirmwareVersion;
  /** Committed firmware version; the current one by default. */
  readonly committedVersion?: FirmwareVersion;
  readonly launchTcb: bigint;
}

const zeros = (n: number): Uint8Array => new Uint8Array(n);

/**
 * A version-3 report, unsigned: SIGNATURE_ALGO 1, signer VCEK, the product's CPUID
 * family/model/stepping bytes, and every other field from `fields`. Reserved bytes are zero.
 */
export function buildReport(fields: ReportFields): Uint8Array {
  const cpuid = PRODUCT_CPUID[fields.product];
  if (cpuid === undefined) throw new RangeError(`unknown product ${String(fields.product)}`);
  const committed = fields.committedVersion ?? fields.currentVersion;
  const bytes = ATTESTATION_REPORT.alloc();
  ATTESTATION_REPORT.on(bytes)
    .set('version', REPORT_VERSION_WRITTEN)
    .set('guestSvn', fields.guestSvn ?? 0)
    .set('policy', fields.policy)
    .set('familyId', fields.familyId ?? zeros(16))
    .set('imageId', fields.imageId ?? zeros(16))
    .set('vmpl', fields.vmpl)
    .set('signatureAlgo', SIGNATURE_ALGO_ECDSA_P384_SHA384)
    .set('currentTcb', fields.currentTcb)
    .set('platformInfo', fields.platformInfo ?? 0n)
    .set(
      'signerInfo',
      Number(
        SIGNER_INFO.encode({
          authorKeyEn: fields.authorKeyEn ?? false,
          maskChipKey: false,
          signingKey: SIGNING_KEY.VCEK,
        }),
      ),
    )
    .set('reportData', fields.reportData)
    .set('measurement', fields.measurement)
    .set('hostData', fields.hostData ?? zeros(32))
    .set('idKeyDigest', fields.idKeyDigest ?? zeros(48))
    .set('authorKeyDigest', fields.authorKeyDigest ?? zeros(48))
    .set('reportId', fields.reportId)
    .set('reportIdMa', fields.reportIdMa ?? new Uint8Array(32).fill(0xff))
    .set('reportedTcb', fields.reportedTcb)
    .set('cpuidFamId', cpuid.family)
    .set('cpuidModId', cpuid.model)
    .set('cpuidStep', cpuid.stepping)
    .set('chipId', fields.maskChipId === true ? zeros(64) : fields.chipId)
    .set('committedTcb', fields.committedTcb)
    .set('currentBuild', fields.currentVersion.build)
    .set('currentMinor', fields.currentVersion.minor)
    .set('currentMajor', fields.currentVersion.major)
    .set('committedBuild', committed.build)
    .set('committedMinor', committed.minor)
    .set('committedMajor', committed.major)
    .set('launchTcb', fields.launchTcb);
  return bytes;
}

function checkReportLength(report: Uint8Array): void {
  if (report.length !== REPORT_SIZE) {
    throw new RangeError(`an attestation report is ${REPORT_SIZE} bytes, got ${report.length}`);
  }
}

/**
 * Signs `report` in place with the VCEK (a P-384 private KeyObject or its 48-byte scalar) and
 * returns it: R and S over SHA-384 of bytes [0, 0x2A0), each little-endian in 72 bytes, the
 * rest of the signature area zero. The signature is deterministic (RFC 6979).
 */
export function signReport(report: Uint8Array, vcekPrivateKey: KeyObject | Uint8Array): Uint8Array {
  checkReportLength(report);
  const scalar =
    vcekPrivateKey instanceof Uint8Array ? vcekPrivateKey : p384PrivateScalarOf(vcekPrivateKey);
  const { r, s } = signP384Sha384(scalar, report.subarray(0, REPORT_SIGNED_LENGTH));
  report.fill(0, ATTESTATION_REPORT.offset('signatureR'), REPORT_SIZE);
  ATTESTATION_REPORT.on(report)
    .set('signatureR', bigEndianToSevComponent(r))
    .set('signatureS', bigEndianToSevComponent(s));
  return report;
}

/** Whether the report's signature verifies under `vcekPublicKey` (a P-384 key). */
export function verifyReportSignature(report: Uint8Array, vcekPublicKey: KeyObject): boolean {
  checkReportLength(report);
  const view = ATTESTATION_REPORT.on(report);
  let signature: Uint8Array;
  try {
    signature = new Uint8Array(2 * P384_BYTES);
    signature.set(sevComponentToBigEndian(view.get('signatureR')), 0);
    signature.set(sevComponentToBigEndian(view.get('signatureS')), P384_BYTES);
  } catch (e) {
    if (e instanceof FieldRangeError) return false; // wider than 48 bytes: no P-384 signature
    throw e;
  }
  const key = vcekPublicKey.type === 'private' ? createPublicKey(vcekPublicKey) : vcekPublicKey;
  return verify(
    'sha384',
    report.subarray(0, REPORT_SIGNED_LENGTH),
    { key, dsaEncoding: 'ieee-p1363' },
    signature,
  );
}
