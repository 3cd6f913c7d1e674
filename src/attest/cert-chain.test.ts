import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { fixture } from '../../test/fixtures.js';
import {
  CertificateDecodeError,
  type ChainInput,
  checkCertChain,
  decodeCertificates,
  parseCertificate,
} from './cert-chain.js';
import {
  amdName,
  kdsExtensions,
  makeCert,
  makeChain,
  p384Key,
  rsaKey,
} from './kds-chain.fixture.js';

const [ASK, ARK] = decodeCertificates(fixture('amd-milan/milan.testcer')) as [
  Uint8Array,
  Uint8Array,
];
const VCEK = fixture('amd-milan/vcek.testcer');
const GENUINE: ChainInput = { ark: ARK, ask: ASK, vcek: VCEK, now: new Date('2026-01-01Z') };

function failed(input: ChainInput): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of checkCertChain(input).checks) if (!c.ok) out[c.name] = c.detail;
  return out;
}

describe('certificate decoding', () => {
  it("reads AMD's cert_chain PEM as the ASK, then the ARK", () => {
    expect(parseCertificate(ASK).commonName).toBe('SEV-Milan');
    expect(parseCertificate(ARK).commonName).toBe('ARK-Milan');
  });

  it('passes a DER certificate through and refuses what is neither DER nor PEM', () => {
    expect(decodeCertificates(VCEK)).toEqual([VCEK]);
    expect(() => decodeCertificates(new TextEncoder().encode('hello'))).toThrow(
      /neither a DER certificate nor a PEM file/,
    );
    expect(() => decodeCertificates(VCEK.subarray(0, 100))).toThrow(CertificateDecodeError);
    expect(() => parseCertificate(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00))).toThrow(
      /not an X.509 certificate/,
    );
  });
});

describe('the genuine Milan chain', () => {
  it('passes every check, pinned to its own ARK', () => {
    const r = checkCertChain({ ...GENUINE, trustedArk: ARK });
    expect(r.checks.filter((c) => !c.ok)).toEqual([]);
    expect(r.checks.map((c) => c.name)).toEqual([
      'certificates',
      'ark-self-signed',
      'ark-pinned',
      'ask-signed-by-ark',
      'vcek-signed-by-ask',
      'ca-constraints',
      'signature-algorithms',
      'vcek-public-key',
      'validity',
    ]);
  });

  it('is refused after the VCEK expires (2029-09-24) and before the ARK was made', () => {
    expect(failed({ ...GENUINE, now: new Date('2030-01-01Z') })).toEqual({
      validity: 'the VCEK expired at 2029-09-24T00:55:28Z (checked at 2030-01-01T00:00:00Z)',
    });
    const early = failed({ ...GENUINE, now: new Date('2020-01-01Z') });
    expect(early['validity']).toContain('the ARK is not valid before 2020-10-22T17:23:05Z');
    expect(early['validity']).toContain('the VCEK is not valid before 2022-09-24T00:55:28Z');
  });

  it('skips the validity periods only when asked to', () => {
    const r = checkCertChain({ ...GENUINE, now: new Date('2030-01-01Z'), checkTime: false });
    expect(r.checks.find((c) => c.name === 'validity')).toMatchObject({
      ok: true,
      detail: 'not checked (time check turned off)',
    });
  });

  it("has an ASVK in AMD's VLEK chain that the same ARK signs", () => {
    const [asvk, vlekArk] = decodeCertificates(fixture('amd-milan/milanvlek.testcer')) as [
      Uint8Array,
      Uint8Array,
    ];
    expect(parseCertificate(asvk).commonName).toBe('SEV-VLEK-Milan');
    const r = checkCertChain({ ...GENUINE, ark: vlekArk, ask: asvk, trustedArk: ARK });
    expect(r.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['vcek-signed-by-ask']);
  });

  it('is refused when the ASK is given as the ARK and the other way round', () => {
    const f = failed({ ...GENUINE, ark: ASK, ask: ARK });
    expect(f['ark-self-signed']).toContain("the ARK's issuer");
    expect(f['ask-signed-by-ark']).toBeDefined();
    expect(f['vcek-signed-by-ask']).toBeDefined();
  });
});

describe('a self-made chain', () => {
  it('in AMD shapes is internally consistent but fails a pin to the genuine ARK', () => {
    const c = makeChain();
    const input = { ark: c.ark.der, ask: c.ask.der, vcek: c.vcek.der, now: GENUINE.now };
    expect(failed(input)).toEqual({});
    expect(failed({ ...input, trustedArk: ARK })).toEqual({
      'ark-pinned': "the ARK's public key is not the trusted ARK's (ARK-Milan)",
    });
  });

  it('with the same names as AMD but other keys does not verify under the genuine ASK', () => {
    const c = makeChain();
    expect(failed({ ...GENUINE, vcek: c.vcek.der })).toEqual({
      'vcek-signed-by-ask': "the VCEK's signature does not verify with the ASK's key",
    });
    expect(failed({ ...GENUINE, ask: c.ask.der })).toEqual({
      'ask-signed-by-ark': "the ASK's signature does not verify with the ARK's key",
      'vcek-signed-by-ask': "the VCEK's signature does not verify with the ASK's key",
    });
  });

  it('is refused when an issuer name does not match, even with a good signature', () => {
    const c = makeChain();
    const vcek = makeCert({
      subject: amdName('SEV-VCEK'),
      issuer: c.ask,
      issuerName: amdName('SEV-Genoa'),
      key: p384Key(),
      extensions: kdsExtensions({}),
    });
    const f = failed({ ark: c.ark.der, ask: c.ask.der, vcek: vcek.der, now: GENUINE.now });
    expect(Object.keys(f)).toEqual(['vcek-signed-by-ask']);
    expect(f['vcek-signed-by-ask']).toMatch(
      /VCEK's issuer \(.*SEV-Genoa\) is not the ASK's subject/,
    );
  });

  it('is refused when the ASK is not a CA', () => {
    const c = makeChain();
    const ask = makeCert({ subject: amdName('SEV-Milan'), issuer: c.ark, key: rsaKey(1) });
    const f = failed({ ark: c.ark.der, ask: ask.der, vcek: c.vcek.der, now: GENUINE.now });
    expect(f).toEqual({ 'ca-constraints': 'the ASK lacks basicConstraints CA:TRUE' });
  });

  it('is refused when a certificate is signed with PKCS#1 v1.5 or a 32-byte PSS salt', () => {
    const c = makeChain();
    const v15 = makeCert({
      subject: amdName('SEV-VCEK'),
      issuer: c.ask,
      key: p384Key(),
      extensions: kdsExtensions({}),
      signature: 'pkcs1-sha384',
    });
    const salt32 = makeCert({
      subject: amdName('SEV-VCEK'),
      issuer: c.ask,
      key: p384Key(),
      extensions: kdsExtensions({}),
      signature: 'pss-salt-32',
    });
    const base = { ark: c.ark.der, ask: c.ask.der, now: GENUINE.now };
    expect(failed({ ...base, vcek: v15.der })).toEqual({
      'signature-algorithms': 'the VCEK: signature algorithm 1.2.840.113549.1.1.12, not RSASSA-PSS',
    });
    expect(failed({ ...base, vcek: salt32.der })).toEqual({
      'signature-algorithms': 'the VCEK: PSS salt length 32, not 48',
    });
  });

  it('is refused when the VCEK key is not P-384', () => {
    const c = makeChain();
    const vcek = makeCert({
      subject: amdName('SEV-VCEK'),
      issuer: c.ask,
      key: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }),
      extensions: kdsExtensions({}),
    });
    expect(failed({ ark: c.ark.der, ask: c.ask.der, vcek: vcek.der, now: GENUINE.now })).toEqual({
      'vcek-public-key': "the VCEK's key is ec prime256v1, not ECDSA P-384",
    });
  });

  it('reports undecodable certificates and still checks the others', () => {
    const r = checkCertChain({ ...GENUINE, vcek: new Uint8Array([1, 2, 3]) });
    const bad = r.checks.filter((c) => !c.ok).map((c) => c.name);
    expect(bad).toEqual(['certificates']);
    expect(r.checks.find((c) => c.name === 'ask-signed-by-ark')?.ok).toBe(true);
    expect(r.vcek).toBeUndefined();
  });
});
