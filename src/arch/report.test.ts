import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fixture } from '../../test/fixtures.js';
import {
  ATTESTATION_REPORT,
  checkReportBytes,
  GUEST_POLICY,
  PLATFORM_INFO,
  productFromCpuid,
  REPORT_SIZE,
  ReportFormatError,
  SIGNER_INFO,
  TCB_VERSION,
} from './report.js';
import { bytesToHex } from './struct.js';

// Offsets typed from reference/sev-snp-abi.md section 2, independently of report.ts.
const SPEC_OFFSETS: Record<string, [number, number]> = {
  version: [0x000, 4],
  guestSvn: [0x004, 4],
  policy: [0x008, 8],
  familyId: [0x010, 16],
  imageId: [0x020, 16],
  vmpl: [0x030, 4],
  signatureAlgo: [0x034, 4],
  currentTcb: [0x038, 8],
  platformInfo: [0x040, 8],
  signerInfo: [0x048, 4],
  reportData: [0x050, 64],
  measurement: [0x090, 48],
  hostData: [0x0c0, 32],
  idKeyDigest: [0x0e0, 48],
  authorKeyDigest: [0x110, 48],
  reportId: [0x140, 32],
  reportIdMa: [0x160, 32],
  reportedTcb: [0x180, 8],
  cpuidFamId: [0x188, 1],
  cpuidModId: [0x189, 1],
  cpuidStep: [0x18a, 1],
  chipId: [0x1a0, 64],
  committedTcb: [0x1e0, 8],
  currentBuild: [0x1e8, 1],
  currentMinor: [0x1e9, 1],
  currentMajor: [0x1ea, 1],
  committedBuild: [0x1ec, 1],
  committedMinor: [0x1ed, 1],
  committedMajor: [0x1ee, 1],
  launchTcb: [0x1f0, 8],
  launchMitVector: [0x1f8, 8],
  currentMitVector: [0x200, 8],
  signatureR: [0x2a0, 72],
  signatureS: [0x2e8, 72],
};

describe('ATTESTATION_REPORT layout', () => {
  it('is 0x4a0 bytes with every field at the offset of the spec table', () => {
    expect(ATTESTATION_REPORT.size).toBe(0x4a0);
    for (const [name, [offset, size]] of Object.entries(SPEC_OFFSETS)) {
      const f = ATTESTATION_REPORT.field(name as keyof typeof ATTESTATION_REPORT.specs & string);
      expect([name, f.offset, f.size]).toEqual([name, offset, size]);
    }
  });

  it('covers every byte of the report exactly once', () => {
    const total = ATTESTATION_REPORT.fields.reduce((n, f) => n + f.size, 0);
    expect(total).toBe(REPORT_SIZE);
  });
});

describe('the genuine Milan report (go-sev-guest testdata)', () => {
  const report = fixture('amd-milan/attestation.bin');
  const r = ATTESTATION_REPORT.on(report);

  it('parses as a version 2 report with its known fields', () => {
    expect(checkReportBytes(report)).toBe(2);
    expect(r.get('guestSvn')).toBe(0);
    expect(r.get('policy')).toBe(0xb0000n);
    expect(r.get('vmpl')).toBe(0);
    expect(r.get('signatureAlgo')).toBe(1);
    expect(r.get('platformInfo')).toBe(1n);
    expect(bytesToHex(r.get('reportData')).slice(0, 12)).toBe('010203040500');
    expect(bytesToHex(r.get('measurement'))).toBe(
      'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01',
    );
    expect(bytesToHex(r.get('reportId')).slice(0, 16)).toBe('8edc638e1857c555');
    expect(r.get('reportIdMa').every((b) => b === 0xff)).toBe(true);
    expect(bytesToHex(r.get('chipId')).slice(0, 16)).toBe('3ac3fe21e13fb099');
    expect([r.get('currentMajor'), r.get('currentMinor'), r.get('currentBuild')]).toEqual([
      1, 0x31, 3,
    ]);
  });

  it('decodes its TCB_VERSION fields (BL 2, TEE 0, SNP 5, microcode 0x44)', () => {
    const tcb = TCB_VERSION.decode(r.get('reportedTcb'));
    expect(tcb).toMatchObject({ bootLoader: 2n, tee: 0n, snp: 5n, microcode: 0x44n });
    expect(r.get('currentTcb')).toBe(r.get('reportedTcb'));
    expect(r.get('launchTcb')).toBe(r.get('committedTcb'));
  });

  it('decodes its policy, platform info and signer info', () => {
    const policy = r.get('policy');
    expect(GUEST_POLICY.get(policy, 'abiMinor')).toBe(0n);
    expect(GUEST_POLICY.get(policy, 'abiMajor')).toBe(0n);
    expect(GUEST_POLICY.has(policy, 'smt')).toBe(true);
    expect(GUEST_POLICY.has(policy, 'reserved1')).toBe(true);
    expect(GUEST_POLICY.has(policy, 'migrateMa')).toBe(false);
    expect(GUEST_POLICY.has(policy, 'debug')).toBe(true);
    expect(PLATFORM_INFO.describe(r.get('platformInfo'))).toBe('smtEn');
    expect(SIGNER_INFO.get(BigInt(r.get('signerInfo')), 'signingKey')).toBe(0n);
  });
});

describe('report format checks', () => {
  it('names the size of a truncated or padded input', () => {
    expect(() => checkReportBytes(new Uint8Array(100))).toThrow(/0x4a0.*100/);
    expect(() => checkReportBytes(new Uint8Array(REPORT_SIZE + 1))).toThrow(ReportFormatError);
  });

  it('refuses unknown versions and accepts 2, 3 and 4', () => {
    fc.assert(
      fc.property(fc.nat(0xffff_ffff), (version) => {
        const bytes = new Uint8Array(REPORT_SIZE);
        ATTESTATION_REPORT.set(bytes, 'version', version);
        if (version >= 2 && version <= 4) return checkReportBytes(bytes) === version;
        expect(() => checkReportBytes(bytes)).toThrow(ReportFormatError);
        return true;
      }),
    );
  });

  it('maps CPUID family/model bytes to product lines', () => {
    expect(productFromCpuid(0x19, 0x01)).toBe('Milan');
    expect(productFromCpuid(0x19, 0x11)).toBe('Genoa');
    expect(productFromCpuid(0x19, 0xa0)).toBe('Genoa');
    expect(productFromCpuid(0x1a, 0x02)).toBe('Turin');
    expect(productFromCpuid(0x17, 0x31)).toBeUndefined();
  });
});
