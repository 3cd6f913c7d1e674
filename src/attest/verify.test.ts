import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fixture } from '../../test/fixtures.js';
import {
  ATTESTATION_REPORT,
  hexToBytes,
  REPORT_SIGNED_LENGTH,
  REPORT_SIZE,
  SIGNER_INFO,
} from '../arch/index.js';
import { decodeCertificates } from './cert-chain.js';
import { makeChain, resignReport } from './kds-chain.fixture.js';
import { type VerifyInput, verifyReport, type VerifyResult } from './verify.js';

const REPORT = fixture('amd-milan/attestation.bin');
const VCEK = fixture('amd-milan/vcek.testcer');
const [ASK, ARK] = decodeCertificates(fixture('amd-milan/milan.testcer')) as [
  Uint8Array,
  Uint8Array,
];
const NOW = new Date('2026-06-01Z');
const GENUINE: VerifyInput = { report: REPORT, ark: ARK, ask: ASK, vcek: VCEK, now: NOW };
const MEASUREMENT = hexToBytes(
  'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01',
);
const CHIP_ID = ATTESTATION_REPORT.get(REPORT, 'chipId');

/** The names of the checks that fail. */
function failing(r: VerifyResult): string[] {
  return r.checks.filter((c) => !c.ok).map((c) => c.name);
}

function flipped(report: Uint8Array, offset: number, mask: number): Uint8Array {
  const out = report.slice();
  out[offset]! ^= mask;
  return out;
}

/** A copy of the genuine report changed by `edit`. */
function edited(edit: (r: ReturnType<typeof ATTESTATION_REPORT.on>) => void): Uint8Array {
  const out = REPORT.slice();
  edit(ATTESTATION_REPORT.on(out));
  return out;
}

describe('the genuine Milan report', () => {
  it('verifies with its VCEK under the Milan ASK and ARK, with the values it holds', () => {
    const r = verifyReport({
      ...GENUINE,
      trustedArk: ARK,
      expected: {
        measurement: MEASUREMENT,
        reportData: hexToBytes('0102030405'.padEnd(128, '0')),
        hostData: new Uint8Array(32),
        vmpl: 0,
        guestSvn: 0,
        policy: 0xb0000n,
      },
    });
    expect(r.reasons).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.checks.map((c) => c.name)).toEqual([
      'report-format',
      'signature-algorithm',
      'signing-key',
      'report-signature',
      'reserved-zero',
      'certificates',
      'ark-self-signed',
      'ark-pinned',
      'ask-signed-by-ark',
      'vcek-signed-by-ask',
      'ca-constraints',
      'signature-algorithms',
      'vcek-public-key',
      'validity',
      'vcek-extensions',
      'product',
      'reported-tcb',
      'chip-id',
      'expected-measurement',
      'expected-reportData',
      'expected-hostData',
      'expected-vmpl',
      'expected-guestSvn',
      'expected-policy',
    ]);
  });

  it('is rejected with a signature reason when any signed byte changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: REPORT_SIGNED_LENGTH - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (offset, mask) => {
          const r = verifyReport({ ...GENUINE, report: flipped(REPORT, offset, mask) });
          expect(r.ok).toBe(false);
          expect(r.reasons).toContain(
            "report-signature: the ECDSA P-384 signature over bytes 0x000..0x29f does not verify with the VCEK's key",
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is rejected with a signature reason when any byte of R or S changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x2a0, max: 0x32f }),
        fc.integer({ min: 1, max: 255 }),
        (offset, mask) => {
          const r = verifyReport({ ...GENUINE, report: flipped(REPORT, offset, mask) });
          expect(failing(r)).toEqual(['report-signature']);
          const inPadding = (offset - 0x2a0) % 72 >= 48;
          expect(r.reasons.join('\n')).toMatch(
            inPadding ? /non-zero bytes beyond its 48/ : /does not verify/,
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  it('is rejected as reserved-nonzero when a byte after the signature changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x330, max: REPORT_SIZE - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (offset, mask) => {
          const r = verifyReport({ ...GENUINE, report: flipped(REPORT, offset, mask) });
          expect(failing(r)).toEqual(['reserved-zero']);
          expect(r.reasons[0]).toContain('reserved area after the signature (0x330..0x49f)');
        },
      ),
      { numRuns: 100 },
    );
  });

  it('is rejected for a wrong expected measurement, and nothing else', () => {
    const wrong = MEASUREMENT.slice();
    wrong[47]! ^= 1;
    const r = verifyReport({ ...GENUINE, expected: { measurement: wrong } });
    expect(r.ok).toBe(false);
    expect(r.reasons).toEqual([
      `expected-measurement: MEASUREMENT is b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01, expected b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b00`,
    ]);
  });

  it('lists every reason at once: measurement, VMPL, report data and a reserved byte', () => {
    const r = verifyReport({
      ...GENUINE,
      report: flipped(REPORT, 0x400, 0xff),
      expected: { measurement: new Uint8Array(48), vmpl: 2, reportData: new Uint8Array(64) },
    });
    expect(failing(r)).toEqual([
      'reserved-zero',
      'expected-measurement',
      'expected-reportData',
      'expected-vmpl',
    ]);
    expect(r.reasons).toHaveLength(4);
  });

  it('is rejected after its VCEK expires unless the time check is off', () => {
    const late = verifyReport({ ...GENUINE, now: new Date('2030-01-01Z') });
    expect(failing(late)).toEqual(['validity']);
    expect(verifyReport({ ...GENUINE, now: new Date('2030-01-01Z'), checkTime: false }).ok).toBe(
      true,
    );
  });

  it('refuses an expected value of the wrong length as a caller error', () => {
    expect(() =>
      verifyReport({ ...GENUINE, expected: { measurement: new Uint8Array(32) } }),
    ).toThrow('expected MEASUREMENT must be 48 bytes, got 32');
  });
});

describe('reports and chains that must be rejected', () => {
  it('a self-made chain under the genuine ARK pin: chain and signature reasons', () => {
    const c = makeChain({ hwId: CHIP_ID });
    const r = verifyReport({
      ...GENUINE,
      ark: c.ark.der,
      ask: c.ask.der,
      vcek: c.vcek.der,
      trustedArk: ARK,
    });
    expect(failing(r)).toEqual(['report-signature', 'ark-pinned']);
  });

  it('a self-made chain with a re-signed report passes only without a pin', () => {
    const c = makeChain({ hwId: CHIP_ID });
    const input = {
      ...GENUINE,
      report: resignReport(REPORT, c.vcek.privateKey),
      ark: c.ark.der,
      ask: c.ask.der,
      vcek: c.vcek.der,
    };
    expect(verifyReport(input).ok).toBe(true);
    expect(failing(verifyReport({ ...input, trustedArk: ARK }))).toEqual(['ark-pinned']);
  });

  it('a VCEK whose TCB disagrees with REPORTED_TCB, signed by a self-made ASK: chain and TCB reasons', () => {
    const c = makeChain({ hwId: CHIP_ID, snp: 8, microcode: 0xd1 });
    const r = verifyReport({
      ...GENUINE,
      report: resignReport(REPORT, c.vcek.privateKey),
      vcek: c.vcek.der,
    });
    expect(failing(r)).toEqual(['vcek-signed-by-ask', 'reported-tcb']);
    expect(r.reasons).toEqual([
      "vcek-signed-by-ask: the VCEK's signature does not verify with the ASK's key",
      "reported-tcb: REPORTED_TCB snp is 5, the VCEK's snpSPL is 8",
      "reported-tcb: REPORTED_TCB microcode is 68, the VCEK's ucodeSPL is 209",
    ]);
  });

  it('a VCEK for another chip: CHIP_ID reason', () => {
    const c = makeChain({ hwId: new Uint8Array(64).fill(7) });
    const r = verifyReport({
      report: resignReport(REPORT, c.vcek.privateKey),
      ark: c.ark.der,
      ask: c.ask.der,
      vcek: c.vcek.der,
      now: NOW,
    });
    expect(failing(r)).toEqual(['chip-id']);
  });

  it('a report with CHIP_ID masked to zero is not compared with hwID', () => {
    const c = makeChain();
    const report = edited((v) => v.set('chipId', new Uint8Array(64)));
    const r = verifyReport({
      report: resignReport(report, c.vcek.privateKey),
      ark: c.ark.der,
      ask: c.ask.der,
      vcek: c.vcek.der,
      now: NOW,
    });
    expect(r.ok).toBe(true);
    expect(r.checks.find((x) => x.name === 'chip-id')?.detail).toContain('CHIP_ID is zero');
  });

  it('a VLEK-signed report verifies under an ASVK chain, and is refused if it claims a VCEK', () => {
    const c = makeChain({ cspId: 'example-cloud' }, true);
    const signer = (key: number): Uint8Array =>
      edited((v) => v.set('signerInfo', Number(SIGNER_INFO.with(0n, 'signingKey', key))));
    const base = { ark: c.ark.der, ask: c.ask.der, vcek: c.vcek.der, now: NOW };
    const ok = verifyReport({ ...base, report: resignReport(signer(1), c.vcek.privateKey) });
    expect(ok.reasons).toEqual([]);
    const bad = verifyReport({ ...base, report: resignReport(signer(0), c.vcek.privateKey) });
    expect(bad.reasons).toEqual([
      'signing-key: the report says it is signed by a VCEK, the certificate is a VLEK',
    ]);
  });

  it('a version 3 report whose CPUID names Genoa, under a Milan VCEK: product reason', () => {
    const c = makeChain({ hwId: CHIP_ID });
    const v3 = (model: number): Uint8Array =>
      resignReport(
        edited((v) => v.set('version', 3).set('cpuidFamId', 0x19).set('cpuidModId', model)),
        c.vcek.privateKey,
      );
    const base = { ark: c.ark.der, ask: c.ask.der, vcek: c.vcek.der, now: NOW };
    expect(verifyReport({ ...base, report: v3(0x01) }).ok).toBe(true);
    const r = verifyReport({ ...base, report: v3(0x11) });
    expect(r.reasons).toEqual([
      "product: the report's CPUID (family 0x19, model 0x11) names Genoa, the VCEK is for Milan-B0",
    ]);
  });

  it('a version 2 report with CPUID bytes, re-signed: reserved reason', () => {
    const c = makeChain({ hwId: CHIP_ID });
    const report = resignReport(
      edited((v) => v.set('cpuidFamId', 0x19)),
      c.vcek.privateKey,
    );
    const r = verifyReport({ report, ark: c.ark.der, ask: c.ask.der, vcek: c.vcek.der, now: NOW });
    expect(r.reasons).toEqual([
      'reserved-zero: reserved field (0x188..0x19f) is not zero at 0x188',
    ]);
  });

  it('a report with POLICY bit 17 clear, a signature algorithm of 2 and an unsigned key', () => {
    const c = makeChain({ hwId: CHIP_ID });
    const report = resignReport(
      edited((v) =>
        v
          .set('policy', 0x90000n)
          .set('signatureAlgo', 2)
          .set('signerInfo', Number(SIGNER_INFO.with(0n, 'signingKey', 7))),
      ),
      c.vcek.privateKey,
    );
    const r = verifyReport({ report, ark: c.ark.der, ask: c.ask.der, vcek: c.vcek.der, now: NOW });
    expect(r.reasons).toEqual([
      'signature-algorithm: SIGNATURE_ALGO is 2, not 1 (ECDSA P-384 with SHA-384)',
      'signing-key: SIGNING_KEY is 7: the report is not signed',
      'reserved-zero: POLICY bit 17 (reserved, must be one) is clear',
    ]);
  });

  it('a report of the wrong size: a format reason, and the chain is still checked', () => {
    const r = verifyReport({ ...GENUINE, report: REPORT.subarray(0, 1000) });
    expect(failing(r)).toEqual(['report-format']);
    expect(r.checks.map((c) => c.name)).toContain('vcek-signed-by-ask');
    expect(r.reasons[0]).toContain('this input is 1000');
  });

  it('a report of an unknown version: its signature is still checked', () => {
    const r = verifyReport({ ...GENUINE, report: edited((v) => v.set('version', 9)) });
    expect(failing(r)).toEqual(['report-format', 'report-signature']);
  });

  it('an undecodable VCEK: the signature cannot be checked', () => {
    const r = verifyReport({ ...GENUINE, vcek: Uint8Array.of(0x30, 0) });
    expect(failing(r)).toEqual(['report-signature', 'certificates']);
    expect(r.reasons).toContain(
      'report-signature: the signature cannot be checked without a decodable VCEK',
    );
  });
});
