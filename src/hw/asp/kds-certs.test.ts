import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../../../test/fixtures.js';
import { AMD_KDS_OID } from '../../arch/index.js';
import { TCB_VERSION } from '../../arch/index.js';
import type { ChipIdentity } from './chip-identity.js';
import {
  buildArkCertificate,
  buildAskCertificate,
  buildVcekCertificate,
  checkKdsTcb,
  KdsCertificateError,
  kdsCertChainPem,
  derToPem,
  keyIdentifier,
  pemBlocks,
  vcekExtensions,
} from './kds-certs.js';
import { loadTestIdentity, TEST_IDENTITY_ISSUED_AT } from './test-identity.fixture.js';
import { vcekCertificate, vcekOf } from './vcek.js';

const hex = (b: ArrayBuffer | Uint8Array): string =>
  Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex');
const ser = (v: object): string => hex(AsnConvert.serialize(v));
const parse = (der: Uint8Array): Certificate => AsnConvert.parse(der, Certificate);

// AMD's genuine Milan certificates.
const amdVcekDer = fixture('amd-milan/vcek.testcer');
const [amdAskDer, amdArkDer] = pemBlocks(
  new TextDecoder().decode(fixture('amd-milan/milan.testcer')),
);
const amd = { ark: parse(amdArkDer!), ask: parse(amdAskDer!), vcek: parse(amdVcekDer) };

let id: ChipIdentity;
let ours: { ark: Certificate; ask: Certificate; vcek: Certificate };
let arkDer: Uint8Array;
let askDer: Uint8Array;
let vcekDer: Uint8Array;

beforeAll(() => {
  // The fixture's keys, with ARK and ASK certificates built afresh by the code under test (the
  // fixture's own certificates are checked against a fresh generation in chip-identity.test).
  id = loadTestIdentity();
  arkDer = buildArkCertificate({
    product: id.product,
    publicKey: id.ark.publicKey,
    privateKey: id.ark.privateKey,
    notBefore: TEST_IDENTITY_ISSUED_AT,
    salt: new Uint8Array(48).fill(1),
  });
  askDer = buildAskCertificate({
    product: id.product,
    publicKey: id.ask.publicKey,
    arkPublicKey: id.ark.publicKey,
    arkPrivateKey: id.ark.privateKey,
    notBefore: TEST_IDENTITY_ISSUED_AT,
    salt: new Uint8Array(48).fill(2),
  });
  vcekDer = vcekCertificate(id);
  ours = { ark: parse(arkDer), ask: parse(askDer), vcek: parse(vcekDer) };
});

describe('the simulated KDS chain', () => {
  it('verifies with node: ARK self-signed, ASK issued by ARK, VCEK issued by ASK', () => {
    const ark = new X509Certificate(arkDer);
    const ask = new X509Certificate(askDer);
    const vcek = new X509Certificate(vcekDer);
    expect(ark.verify(ark.publicKey)).toBe(true);
    expect(ask.verify(ark.publicKey)).toBe(true);
    expect(vcek.verify(ask.publicKey)).toBe(true);
    expect(ark.checkIssued(ark)).toBe(true);
    expect(ask.checkIssued(ark)).toBe(true);
    expect(vcek.checkIssued(ask)).toBe(true);
    expect(vcek.verify(ark.publicKey)).toBe(false);
    expect(ark.ca).toBe(true);
    expect(ask.ca).toBe(true);
    expect(vcek.ca).toBe(false);
  });

  const hasOpenssl = existsSync('/usr/bin/openssl');
  describe.skipIf(!hasOpenssl)('with OpenSSL', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'svsm-kds-'));
      writeFileSync(join(dir, 'ark.pem'), derToPem(arkDer));
      writeFileSync(join(dir, 'ask.pem'), derToPem(askDer));
      writeFileSync(join(dir, 'vcek.pem'), derToPem(vcekDer));
      writeFileSync(join(dir, 'cert_chain.pem'), kdsCertChainPem(askDer, arkDer));
      writeFileSync(join(dir, 'fixture-ark.pem'), derToPem(id.ark.certificate));
      writeFileSync(join(dir, 'fixture-ask.pem'), derToPem(id.ask.certificate));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const at = String(Math.floor(TEST_IDENTITY_ISSUED_AT.getTime() / 1000) + 86_400);

    it('openssl verify accepts VCEK <- ASK <- ARK', () => {
      const out = execFileSync('openssl', [
        'verify',
        '-attime',
        at,
        '-CAfile',
        join(dir, 'ark.pem'),
        '-untrusted',
        join(dir, 'ask.pem'),
        join(dir, 'vcek.pem'),
      ]).toString();
      expect(out.trim()).toBe(`${join(dir, 'vcek.pem')}: OK`);
    });

    it('openssl verify accepts the VCEK with the KDS cert_chain (ASK, ARK) as untrusted bundle, and with the fixture ARK/ASK', () => {
      for (const [ark, untrusted] of [
        ['ark.pem', 'cert_chain.pem'],
        ['fixture-ark.pem', 'fixture-ask.pem'],
      ] as const) {
        const out = execFileSync('openssl', [
          'verify',
          '-attime',
          at,
          '-CAfile',
          join(dir, ark),
          '-untrusted',
          join(dir, untrusted),
          join(dir, 'vcek.pem'),
        ]).toString();
        expect(out.trim()).toBe(`${join(dir, 'vcek.pem')}: OK`);
      }
    });

    it('openssl verify rejects the VCEK when the ASK is left out', () => {
      expect(() =>
        execFileSync(
          'openssl',
          ['verify', '-attime', at, '-CAfile', join(dir, 'ark.pem'), join(dir, 'vcek.pem')],
          { stdio: 'pipe' },
        ),
      ).toThrow();
    });

    it('the cert_chain document is ASK then ARK, as AMD serves it', () => {
      const blocks = pemBlocks(kdsCertChainPem(askDer, arkDer));
      expect(blocks).toEqual([askDer, arkDer]);
    });
  });
});

describe('fidelity to AMD genuine Milan certificates', () => {
  it('signature AlgorithmIdentifier (RSASSA-PSS SHA-384, MGF1-SHA-384, salt 48, trailer 1) is byte-identical', () => {
    for (const role of ['ark', 'ask', 'vcek'] as const) {
      expect(ser(ours[role].signatureAlgorithm)).toBe(ser(amd[role].signatureAlgorithm));
      expect(ser(ours[role].tbsCertificate.signature)).toBe(
        ser(amd[role].tbsCertificate.signature),
      );
    }
  });

  it('issuer and subject DNs are byte-identical (OU, C PrintableString, L, ST, O, CN)', () => {
    for (const role of ['ark', 'ask', 'vcek'] as const) {
      expect(ser(ours[role].tbsCertificate.issuer)).toBe(ser(amd[role].tbsCertificate.issuer));
      expect(ser(ours[role].tbsCertificate.subject)).toBe(ser(amd[role].tbsCertificate.subject));
    }
  });

  it('serial numbers and version match: ARK 0x10000, ASK 0x10001, VCEK 0, all v3', () => {
    for (const role of ['ark', 'ask', 'vcek'] as const) {
      expect(hex(ours[role].tbsCertificate.serialNumber)).toBe(
        hex(amd[role].tbsCertificate.serialNumber),
      );
      expect(ours[role].tbsCertificate.version).toBe(amd[role].tbsCertificate.version);
    }
    expect(hex(ours.ark.tbsCertificate.serialNumber)).toBe('010000');
    expect(hex(ours.ask.tbsCertificate.serialNumber)).toBe('010001');
    expect(hex(ours.vcek.tbsCertificate.serialNumber)).toBe('00');
  });

  it('validity spans match: 25 years for ARK and ASK, 7 for the VCEK', () => {
    const years = (c: Certificate): number => {
      const v = c.tbsCertificate.validity;
      const a = v.notBefore.getTime();
      const b = v.notAfter.getTime();
      expect(b.getUTCMonth()).toBe(a.getUTCMonth());
      expect(b.getUTCDate()).toBe(a.getUTCDate());
      expect(b.getUTCHours() * 3600 + b.getUTCMinutes() * 60 + b.getUTCSeconds()).toBe(
        a.getUTCHours() * 3600 + a.getUTCMinutes() * 60 + a.getUTCSeconds(),
      );
      return b.getUTCFullYear() - a.getUTCFullYear();
    };
    for (const role of ['ark', 'ask', 'vcek'] as const) {
      expect(years(ours[role])).toBe(years(amd[role]));
    }
    expect(ours.vcek.tbsCertificate.validity.notBefore.getTime()).toEqual(TEST_IDENTITY_ISSUED_AT);
  });

  it('ARK and ASK carry AMD extensions in AMD order with AMD criticality', () => {
    for (const role of ['ark', 'ask'] as const) {
      const shape = (c: Certificate): string[] =>
        (c.tbsCertificate.extensions ?? []).map((e) => `${e.extnID}:${e.critical}`);
      expect(shape(ours[role])).toEqual(shape(amd[role]));
    }
  });

  it('key-independent extension values (KeyUsage, BasicConstraints, CRL DP) are byte-identical', () => {
    const keyIndependent = ['2.5.29.15', '2.5.29.19', '2.5.29.31'];
    for (const role of ['ark', 'ask'] as const) {
      const values = (c: Certificate): Record<string, string> =>
        Object.fromEntries(
          (c.tbsCertificate.extensions ?? [])
            .filter((e) => keyIndependent.includes(e.extnID))
            .map((e) => [e.extnID, hex(e.extnValue.buffer)]),
        );
      expect(values(ours[role])).toEqual(values(amd[role]));
    }
  });

  it('key identifiers use AMD method (SHA-1 of the RSAPublicKey), proven on AMD certs too', () => {
    const skiOf = (c: Certificate): string =>
      hex(c.tbsCertificate.extensions!.find((e) => e.extnID === '2.5.29.14')!.extnValue.buffer);
    const akiOf = (c: Certificate): string =>
      hex(c.tbsCertificate.extensions!.find((e) => e.extnID === '2.5.29.35')!.extnValue.buffer);
    const sha1Key = (c: Certificate): string => {
      const spki: SubjectPublicKeyInfo = c.tbsCertificate.subjectPublicKeyInfo;
      return createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest('hex');
    };
    for (const set of [amd, ours]) {
      expect(skiOf(set.ark)).toBe('0414' + sha1Key(set.ark));
      expect(skiOf(set.ask)).toBe('0414' + sha1Key(set.ask));
      expect(akiOf(set.ask)).toBe('30168014' + sha1Key(set.ark));
    }
    expect(hex(keyIdentifier(id.ark.publicKey))).toBe(sha1Key(ours.ark));
  });

  it('the VCEK has exactly the AMD KDS extensions, in AMD order, none critical', () => {
    const shape = (c: Certificate): string[] =>
      (c.tbsCertificate.extensions ?? []).map((e) => `${e.extnID}:${e.critical}`);
    expect(shape(ours.vcek)).toEqual(shape(amd.vcek));
    for (const e of ours.vcek.tbsCertificate.extensions!) {
      expect(e.extnID.startsWith('1.3.6.1.4.1.3704.1.')).toBe(true);
    }
  });

  it('VCEK extension values encode the identity like AMD: INTEGERs, IA5String, raw hwID', () => {
    const values = Object.fromEntries(
      ours.vcek.tbsCertificate.extensions!.map((e) => [e.extnID, hex(e.extnValue.buffer)]),
    );
    const amdValues = Object.fromEntries(
      amd.vcek.tbsCertificate.extensions!.map((e) => [e.extnID, hex(e.extnValue.buffer)]),
    );
    // Same product name and structure version as AMD's Milan VCEK.
    expect(values[AMD_KDS_OID.structVersion]).toBe(amdValues[AMD_KDS_OID.structVersion]);
    expect(values[AMD_KDS_OID.productName]).toBe(amdValues[AMD_KDS_OID.productName]);
    expect(values[AMD_KDS_OID.productName]).toBe('16' + '08' + hex(Buffer.from('Milan-B0')));
    const tcb = TCB_VERSION.decode(id.tcb);
    const int = (v: bigint): string => '0201' + v.toString(16).padStart(2, '0');
    expect(values[AMD_KDS_OID.blSPL]).toBe(int(tcb.bootLoader));
    expect(values[AMD_KDS_OID.teeSPL]).toBe(int(tcb.tee));
    expect(values[AMD_KDS_OID.snpSPL]).toBe(int(tcb.snp));
    expect(values[AMD_KDS_OID.ucodeSPL]).toBe(int(tcb.microcode));
    for (const k of ['spl4', 'spl5', 'spl6', 'spl7'] as const) {
      expect(values[AMD_KDS_OID[k]]).toBe('020100');
    }
    // hwID: the 64 raw CHIP_ID bytes, as AMD's (64 bytes, no OCTET STRING wrapper).
    expect(values[AMD_KDS_OID.hwID]).toBe(hex(id.chipId));
    expect(amdValues[AMD_KDS_OID.hwID]!.length).toBe(128);
  });

  it('the VCEK key is ECDSA P-384, the one derived for the identity', () => {
    const spki = ours.vcek.tbsCertificate.subjectPublicKeyInfo;
    expect(ser(spki.algorithm)).toBe(ser(amd.vcek.tbsCertificate.subjectPublicKeyInfo.algorithm));
    const x = new X509Certificate(vcekDer);
    expect(x.publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      vcekOf(id).publicKey.export({ type: 'spki', format: 'der' }),
    );
  });
});

describe('buildVcekCertificate', () => {
  const base = (): Parameters<typeof buildVcekCertificate>[0] => ({
    product: 'Milan',
    productName: 'Milan-B0',
    publicKey: vcekOf(id).publicKey,
    askPrivateKey: id.ask.privateKey,
    chipId: id.chipId,
    tcb: id.tcb,
    notBefore: TEST_IDENTITY_ISSUED_AT,
    salt: new Uint8Array(48),
  });

  it('writes a microcode SPL >= 0x80 with the leading zero byte DER needs', () => {
    const tcb = TCB_VERSION.encode({ bootLoader: 1, snp: 2, microcode: 0xc8 });
    const ext = vcekExtensions('Milan-B0', tcb, id.chipId).find(
      (e) => e.extnID === AMD_KDS_OID.ucodeSPL,
    )!;
    expect(hex(ext.extnValue.buffer)).toBe('020200c8');
  });

  it('names the Genoa issuer and product for a Genoa chip', () => {
    const der = buildVcekCertificate({ ...base(), product: 'Genoa', productName: 'Genoa-B0' });
    const x = new X509Certificate(der);
    expect(x.issuer.split('\n')).toContain('CN=SEV-Genoa');
    expect(x.subject.split('\n')).toContain('CN=SEV-VCEK');
  });

  it('refuses SPLs over 127 (except microcode), which verifiers reject', () => {
    expect(() => checkKdsTcb(TCB_VERSION.encode({ snp: 128 }))).toThrow(KdsCertificateError);
    expect(() => checkKdsTcb(TCB_VERSION.encode({ microcode: 255 }))).not.toThrow();
    expect(() =>
      buildVcekCertificate({ ...base(), tcb: TCB_VERSION.encode({ tee: 200 }) }),
    ).toThrow(/tee SPL 200 exceeds 127/);
  });

  it('refuses a CHIP_ID starting with a DER tag byte (0x02, 0x04) or of the wrong size', () => {
    for (const first of [0x02, 0x04]) {
      const chipId = id.chipId.slice();
      chipId[0] = first;
      expect(() => buildVcekCertificate({ ...base(), chipId })).toThrow(KdsCertificateError);
    }
    expect(() => buildVcekCertificate({ ...base(), chipId: new Uint8Array(8) })).toThrow(
      /CHIP_ID is 64 bytes/,
    );
  });

  it('refuses a non-P-384 subject key, an RSA public key as signer, a short salt', () => {
    expect(() => buildVcekCertificate({ ...base(), publicKey: id.ark.publicKey })).toThrow(/P-384/);
    expect(() => buildVcekCertificate({ ...base(), askPrivateKey: id.ask.publicKey })).toThrow(
      KdsCertificateError,
    );
    expect(() => buildVcekCertificate({ ...base(), salt: new Uint8Array(20) })).toThrow(/salt/);
    expect(() => buildVcekCertificate({ ...base(), notBefore: new Date(NaN) })).toThrow(/date/);
  });
});

describe('buildArkCertificate / buildAskCertificate', () => {
  it('are deterministic given keys, date and salt', () => {
    const input = {
      product: 'Milan' as const,
      publicKey: id.ark.publicKey,
      privateKey: id.ark.privateKey,
      notBefore: TEST_IDENTITY_ISSUED_AT,
      salt: new Uint8Array(48).fill(3),
    };
    expect(buildArkCertificate(input)).toEqual(buildArkCertificate(input));
    const ask = buildAskCertificate({
      product: 'Genoa',
      publicKey: id.ask.publicKey,
      arkPublicKey: id.ark.publicKey,
      arkPrivateKey: id.ark.privateKey,
      notBefore: TEST_IDENTITY_ISSUED_AT,
      salt: new Uint8Array(48),
    });
    const x = new X509Certificate(ask);
    expect(x.subject.split('\n')).toContain('CN=SEV-Genoa');
    expect(x.issuer.split('\n')).toContain('CN=ARK-Genoa');
    expect(x.verify(id.ark.publicKey)).toBe(true);
  });
});
