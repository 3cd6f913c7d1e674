import { describe, expect, it } from 'vitest';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, Extension, Extensions } from '@peculiar/asn1-x509';
import { fixture } from '../../test/fixtures.js';
import { AMD_KDS_OID } from '../arch/index.js';
import { ATTESTATION_REPORT, bytesToHex } from '../arch/index.js';
import { ext, kdsExtensions } from './kds-chain.fixture.js';
import { KdsExtensionError, parseKdsExtensions } from './vcek-extensions.js';

const VCEK = fixture('amd-milan/vcek.testcer');
const REPORT = fixture('amd-milan/attestation.bin');

/** The genuine VCEK with its extension list replaced. */
function withExtensions(list: Extension[]): Certificate {
  const cert = AsnConvert.parse(VCEK, Certificate);
  cert.tbsCertificate.extensions = new Extensions(list);
  return cert;
}

function problemsOf(list: Extension[]): readonly string[] {
  try {
    parseKdsExtensions(withExtensions(list));
  } catch (e) {
    if (e instanceof KdsExtensionError) return e.problems;
    throw e;
  }
  throw new Error('expected KdsExtensionError');
}

describe('KDS extensions', () => {
  it("decode the genuine Milan VCEK's product, TCB and hwID, which equal the report's", () => {
    const k = parseKdsExtensions(VCEK);
    expect(k.kind).toBe('VCEK');
    expect(k.structVersion).toBe(0);
    expect(k.productName).toBe('Milan-B0');
    expect(k.productLine).toBe('Milan');
    expect(k.tcb).toEqual({
      bootLoader: 2,
      tee: 0,
      snp: 5,
      microcode: 0x44,
      spl4: 0,
      spl5: 0,
      spl6: 0,
      spl7: 0,
      fmc: undefined,
    });
    expect(bytesToHex(k.hwId!)).toBe(bytesToHex(ATTESTATION_REPORT.get(REPORT, 'chipId')));
    expect(k.cspId).toBeUndefined();
  });

  it('accept a hwID wrapped in a DER OCTET STRING as well as the raw 64 bytes', () => {
    const chip = new Uint8Array(64).map((_, i) => i + 1);
    const raw = parseKdsExtensions(withExtensions(kdsExtensions({ hwId: chip })));
    const wrapped = parseKdsExtensions(
      withExtensions(kdsExtensions({ hwId: Uint8Array.of(0x04, 0x40, ...chip) })),
    );
    expect(raw.hwId).toEqual(chip);
    expect(wrapped.hwId).toEqual(chip);
  });

  it('decode an SPL of 0x80 and above, which needs its leading zero byte', () => {
    expect(
      parseKdsExtensions(withExtensions(kdsExtensions({ microcode: 0xd1 }))).tcb.microcode,
    ).toBe(0xd1);
  });

  it('name a VLEK by its cspID', () => {
    const k = parseKdsExtensions(withExtensions(kdsExtensions({ cspId: 'example-cloud' })));
    expect(k.kind).toBe('VLEK');
    expect(k.cspId).toBe('example-cloud');
    expect(k.hwId).toBeUndefined();
  });

  it('list every missing extension, not just the first', () => {
    const list = kdsExtensions({}).filter(
      (e) => e.extnID !== AMD_KDS_OID.ucodeSPL && e.extnID !== AMD_KDS_OID.hwID,
    );
    const problems = problemsOf(list);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain('missing extension ucodeSPL (1.3.6.1.4.1.3704.1.3.8)');
    expect(problems[1]).toContain('hwID');
    expect(problems[1]).toContain('cspID');
  });

  it('refuse malformed SPLs: negative, above 255, non-minimal, not an INTEGER', () => {
    const replace = (oid: string, value: Uint8Array): Extension[] =>
      kdsExtensions({}).map((e) => (e.extnID === oid ? ext(oid, value) : e));
    expect(problemsOf(replace(AMD_KDS_OID.ucodeSPL, Uint8Array.of(2, 1, 0x80)))[0]).toMatch(
      /ucodeSPL .* malformed: the value -128 is outside 0\.\.255/,
    );
    expect(problemsOf(replace(AMD_KDS_OID.blSPL, Uint8Array.of(2, 2, 1, 0)))[0]).toMatch(
      /blSPL .* outside 0\.\.255/,
    );
    expect(problemsOf(replace(AMD_KDS_OID.teeSPL, Uint8Array.of(2, 2, 0, 5)))[0]).toMatch(
      /teeSPL .* not minimally encoded/,
    );
    expect(problemsOf(replace(AMD_KDS_OID.snpSPL, Uint8Array.of(4, 1, 5)))[0]).toMatch(
      /snpSPL .* expected an INTEGER/,
    );
    expect(problemsOf(replace(AMD_KDS_OID.snpSPL, Uint8Array.of(2, 1, 5, 0)))[0]).toMatch(
      /snpSPL .* 1 trailing bytes/,
    );
  });

  it('refuse a hwID of the wrong size and a product name that is not an IA5String', () => {
    const list = kdsExtensions({ hwId: new Uint8Array(63) }).map((e) =>
      e.extnID === AMD_KDS_OID.productName
        ? ext(AMD_KDS_OID.productName, Uint8Array.of(0x0c, 1, 0x4d))
        : e,
    );
    const problems = problemsOf(list);
    expect(problems.join('\n')).toMatch(/productName .* expected an IA5String/);
    expect(problems.join('\n')).toMatch(/hwID .* 63 bytes/);
  });

  it('refuse both hwID and cspID, duplicates, and extensions outside the KDS arc', () => {
    const list = [
      ...kdsExtensions({}),
      ext(AMD_KDS_OID.cspID, Uint8Array.of(0x16, 1, 0x41)),
      ext(AMD_KDS_OID.blSPL, Uint8Array.of(2, 1, 2)),
      ext('2.5.29.19', Uint8Array.of(0x30, 0)),
    ];
    const problems = problemsOf(list).join('\n');
    expect(problems).toContain('both hwID (VCEK) and cspID (VLEK)');
    expect(problems).toContain('1.3.6.1.4.1.3704.1.3.1 appears more than once');
    expect(problems).toContain('unexpected extension 2.5.29.19');
  });

  it('allow authorityKeyIdentifier, the one standard extension a KDS certificate may carry', () => {
    const list = [...kdsExtensions({}), ext('2.5.29.35', Uint8Array.of(0x30, 0))];
    expect(parseKdsExtensions(withExtensions(list)).kind).toBe('VCEK');
  });
});
