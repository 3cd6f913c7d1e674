import { verify, X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../../../test/fixtures.js';
import {
  ATTESTATION_REPORT,
  checkReportBytes,
  PRODUCT_CPUID,
  REPORT_SIGNED_LENGTH,
  REPORT_SIZE,
  SIGNER_INFO,
} from '../../arch/index.js';
import type { ChipIdentity } from './chip-identity.js';
import {
  buildReport,
  signReport,
  verifyReportSignature,
  type ReportFields,
} from './report-signer.js';
import { loadTestIdentity } from './test-identity.fixture.js';
import { vcekCertificate, vcekOf, type Vcek } from './vcek.js';

let id: ChipIdentity;
let vcek: Vcek;
beforeAll(() => {
  id = loadTestIdentity();
  vcek = vcekOf(id);
});

const filled = (n: number, b: number): Uint8Array => new Uint8Array(n).fill(b);

function fields(overrides: Partial<ReportFields> = {}): ReportFields {
  return {
    product: id.product,
    guestSvn: 7,
    policy: 0x30000n,
    familyId: filled(16, 0x11),
    imageId: filled(16, 0x22),
    vmpl: 2,
    currentTcb: id.tcb,
    platformInfo: 0x25n,
    reportData: filled(64, 0x33),
    measurement: filled(48, 0x44),
    hostData: filled(32, 0x55),
    idKeyDigest: filled(48, 0x66),
    authorKeyDigest: filled(48, 0x77),
    reportId: filled(32, 0x88),
    reportedTcb: id.tcb,
    chipId: id.chipId,
    committedTcb: id.tcb,
    currentVersion: id.firmware,
    launchTcb: id.tcb,
    ...overrides,
  };
}

/** r || s big-endian, as WebCrypto / ieee-p1363 wants it, from the report's LE fields. */
function p1363(report: Uint8Array): Buffer {
  const r = ATTESTATION_REPORT.get(report, 'signatureR').slice(0, 48).reverse();
  const s = ATTESTATION_REPORT.get(report, 'signatureS').slice(0, 48).reverse();
  return Buffer.concat([r, s]);
}

describe('buildReport', () => {
  it('writes a version-3 report with every field at its spec offset', () => {
    const report = buildReport(fields());
    expect(report.length).toBe(REPORT_SIZE);
    expect(checkReportBytes(report)).toBe(3);
    const v = ATTESTATION_REPORT.on(report);
    expect(v.get('version')).toBe(3);
    expect(v.get('guestSvn')).toBe(7);
    expect(v.get('policy')).toBe(0x30000n);
    expect(v.get('vmpl')).toBe(2);
    expect(v.get('signatureAlgo')).toBe(1);
    expect(v.get('currentTcb')).toBe(id.tcb);
    expect(v.get('platformInfo')).toBe(0x25n);
    expect(SIGNER_INFO.decode(BigInt(v.get('signerInfo')))).toEqual({
      authorKeyEn: 0n,
      maskChipKey: 0n,
      signingKey: 0n,
    });
    expect(v.get('reportData')).toEqual(filled(64, 0x33));
    expect(v.get('measurement')).toEqual(filled(48, 0x44));
    expect(v.get('reportIdMa')).toEqual(filled(32, 0xff));
    expect(v.get('chipId')).toEqual(id.chipId);
    expect(report[0x188]).toBe(PRODUCT_CPUID.Milan.family);
    expect(report[0x189]).toBe(PRODUCT_CPUID.Milan.model);
    expect(report[0x18a]).toBe(PRODUCT_CPUID.Milan.stepping);
    expect([report[0x1e8], report[0x1e9], report[0x1ea]]).toEqual([21, 55, 1]);
    expect([report[0x1ec], report[0x1ed], report[0x1ee]]).toEqual([21, 55, 1]);
    // Raw offsets from the spec table, independent of the layout declaration.
    const dv = new DataView(report.buffer);
    expect(dv.getBigUint64(0x180, true)).toBe(id.tcb);
    expect(dv.getBigUint64(0x1e0, true)).toBe(id.tcb);
    expect(dv.getBigUint64(0x1f0, true)).toBe(id.tcb);
    // Reserved ranges, the v5 mitigation vectors and the signature area are zero.
    for (const [from, to] of [
      [0x04c, 0x050],
      [0x18b, 0x1a0],
      [0x1f8, REPORT_SIZE],
    ] as const) {
      expect(report.subarray(from, to).every((b) => b === 0)).toBe(true);
    }
  });

  it('uses the Genoa CPUID bytes for a Genoa chip', () => {
    const report = buildReport(fields({ product: 'Genoa' }));
    expect([report[0x188], report[0x189], report[0x18a]]).toEqual([0x19, 0x11, 0x01]);
  });

  it('zeroes CHIP_ID under MASK_CHIP_ID without claiming an unsigned report; honours AUTHOR_KEY_EN', () => {
    const report = buildReport(fields({ maskChipId: true, authorKeyEn: true }));
    expect(ATTESTATION_REPORT.get(report, 'chipId').every((b) => b === 0)).toBe(true);
    expect(ATTESTATION_REPORT.get(report, 'signerInfo')).toBe(0b01);
  });

  it('defaults absent ID-block fields to zero and the committed version to the current', () => {
    const report = buildReport({
      ...fields(),
      guestSvn: undefined,
      familyId: undefined,
      imageId: undefined,
      hostData: undefined,
      idKeyDigest: undefined,
      authorKeyDigest: undefined,
    });
    expect(report.subarray(0x004, 0x008).every((b) => b === 0)).toBe(true);
    expect(report.subarray(0x010, 0x030).every((b) => b === 0)).toBe(true);
    expect(report.subarray(0x0c0, 0x140).every((b) => b === 0)).toBe(true);
  });

  it('refuses byte fields of the wrong size', () => {
    expect(() => buildReport(fields({ reportData: new Uint8Array(63) }))).toThrow(/reportData/);
    expect(() => buildReport(fields({ chipId: new Uint8Array(8) }))).toThrow(/chipId/);
  });
});

describe('signReport', () => {
  it('signs so that node verifies r||s over SHA-384 of bytes 0..0x29F with the VCEK', () => {
    const report = signReport(buildReport(fields()), vcek.privateKey);
    const signed = report.subarray(0, REPORT_SIGNED_LENGTH);
    expect(
      verify('sha384', signed, { key: vcek.publicKey, dsaEncoding: 'ieee-p1363' }, p1363(report)),
    ).toBe(true);
    // ... and with the key in the VCEK certificate.
    const certKey = new X509Certificate(vcekCertificate(id)).publicKey;
    expect(verifyReportSignature(report, certKey)).toBe(true);
    // R and S are zero-padded to 72 bytes; the rest of the signature area is zero.
    expect(report.subarray(0x2a0 + 48, 0x2e8).every((b) => b === 0)).toBe(true);
    expect(report.subarray(0x2e8 + 48, REPORT_SIZE).every((b) => b === 0)).toBe(true);
  });

  it('is deterministic: the same report signs to the same bytes', () => {
    const a = signReport(buildReport(fields()), vcek.privateKey);
    const b = signReport(buildReport(fields()), vcek.scalar);
    expect(b).toEqual(a);
  });

  it('fails verification after any change to the signed bytes (property)', () => {
    const report = signReport(buildReport(fields()), vcek.privateKey);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: REPORT_SIGNED_LENGTH - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, flip) => {
          const tampered = report.slice();
          tampered[at] = tampered[at]! ^ flip;
          expect(verifyReportSignature(tampered, vcek.publicKey)).toBe(false);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('fails verification under another TCB VCEK or with a garbled signature', () => {
    const report = signReport(buildReport(fields()), vcek.privateKey);
    const other = vcekOf(id, id.tcb + 1n);
    expect(verifyReportSignature(report, other.publicKey)).toBe(false);
    const wide = report.slice();
    wide[0x2a0 + 60] = 1; // R wider than 48 bytes
    expect(verifyReportSignature(wide, vcek.publicKey)).toBe(false);
  });

  it('refuses a buffer that is not a report', () => {
    expect(() => signReport(new Uint8Array(100), vcek.privateKey)).toThrow(RangeError);
  });
});

describe('verifyReportSignature on AMD genuine material', () => {
  it('accepts the real Milan report under its real VCEK (so our R/S byte order is AMD order)', () => {
    const report = fixture('amd-milan/attestation.bin');
    const amdVcek = new X509Certificate(fixture('amd-milan/vcek.testcer')).publicKey;
    expect(verifyReportSignature(report, amdVcek)).toBe(true);
    const tampered = report.slice();
    tampered[0x50] = tampered[0x50]! ^ 1;
    expect(verifyReportSignature(tampered, amdVcek)).toBe(false);
  });
});
