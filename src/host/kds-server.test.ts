import { X509Certificate } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToHex, TCB_VERSION } from '../arch/index.js';
import type { ChipIdentity } from '../hw/asp/chip-identity.js';
import { kdsCertChainPem, pemBlocks } from '../hw/asp/kds-certs.js';
import { loadTestIdentity } from '../hw/asp/test-identity.fixture.js';
import { vcekCertificate, vcekOf } from '../hw/asp/vcek.js';
import {
  createKdsServer,
  KDS_CONTENT_TYPE,
  kdsCertChainPath,
  KdsResponder,
  kdsVcekPath,
} from './kds-server.js';

let id: ChipIdentity;
let server: Server;
let base: string;
const logLines: string[] = [];

beforeAll(async () => {
  id = loadTestIdentity();
  server = createKdsServer(id, { log: (line) => logLines.push(line) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
});

const tcbOf = (bootLoader: number, tee: number, snp: number, microcode: number): bigint =>
  TCB_VERSION.encode({ bootLoader, tee, snp, microcode });

const hwid = (): string => bytesToHex(id.chipId);

async function get(path: string, init?: RequestInit): Promise<Response> {
  return fetch(base + path, init);
}

describe('KDS server, over HTTP', () => {
  it('serves the ASK then the ARK as PEM at cert_chain', async () => {
    const r = await get(kdsCertChainPath('Milan'));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(KDS_CONTENT_TYPE.certChain);
    const body = await r.text();
    expect(body).toBe(kdsCertChainPem(id.ask.certificate, id.ark.certificate));
    const [ask, ark] = pemBlocks(body);
    expect(ask).toEqual(id.ask.certificate);
    expect(ark).toEqual(id.ark.certificate);
  });

  it('serves, for a TCB other than the installed one, the VCEK of that TCB as DER signed by the ASK', async () => {
    const tcb = tcbOf(2, 1, 9, 200);
    const r = await get(kdsVcekPath('Milan', id.chipId, tcb));
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(KDS_CONTENT_TYPE.vcek);
    const der = new Uint8Array(await r.arrayBuffer());
    expect(der).toEqual(vcekCertificate(id, tcb));
    const cert = new X509Certificate(der);
    expect(cert.verify(id.ask.publicKey)).toBe(true);
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    expect(spki).toEqual(vcekOf(id, tcb).publicKey.export({ type: 'spki', format: 'der' }));
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
  });

  it('dates VCEKs from the identity issue date, so one identity serves the same bytes every time', async () => {
    const path = kdsVcekPath('Milan', id.chipId, id.tcb);
    const a = new Uint8Array(await (await get(path)).arrayBuffer());
    const again = createKdsServer(id);
    await new Promise<void>((resolve) => again.listen(0, '127.0.0.1', resolve));
    try {
      const port = (again.address() as AddressInfo).port;
      const b = new Uint8Array(
        await (await fetch(`http://127.0.0.1:${port}${path}`)).arrayBuffer(),
      );
      expect(b).toEqual(a);
    } finally {
      again.close();
    }
    expect(new Date(new X509Certificate(a).validFrom)).toEqual(id.issuedAt);
  });

  it('accepts the hwid in upper case and SPLs with leading zeros, as snpguest writes them', async () => {
    const r = await get(
      `/vcek/v1/Milan/${hwid().toUpperCase()}?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115`,
    );
    expect(r.status).toBe(200);
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(vcekCertificate(id, id.tcb));
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const path = kdsVcekPath('Milan', id.chipId, id.tcb);
    const r = await get(path, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(vcekCertificate(id, id.tcb).length));
    expect((await r.arrayBuffer()).byteLength).toBe(0);
  });

  it('refuses other methods with 405 and an Allow header', async () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await get(kdsCertChainPath('Milan'), { method });
      expect(r.status).toBe(405);
      expect(r.headers.get('allow')).toBe('GET, HEAD');
      expect(await r.text()).toContain(`method ${method} is not allowed`);
    }
  });

  it('logs one line per request with method, path and status', async () => {
    const before = logLines.length;
    await (await get('/nowhere')).text();
    expect(logLines.slice(before)).toHaveLength(1);
    expect(logLines[before]).toMatch(/^GET \/nowhere 404 \d+ bytes \(not found/);
  });
});

describe('KDS requests that are refused', () => {
  const ok = (): string => `/vcek/v1/Milan/${hwid()}`;
  const cases: [string, () => string, number, RegExp][] = [
    [
      'an unknown hwid',
      () => `/vcek/v1/Milan/${'ab'.repeat(64)}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      404,
      /unknown hwid/,
    ],
    [
      'a hwid one digit short',
      () => `${ok().slice(0, -1)}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      400,
      /128 hex digits/,
    ],
    [
      'a hwid that is not hex',
      () => `/vcek/v1/Milan/${'zz'.repeat(64)}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      400,
      /128 hex digits/,
    ],
    [
      'a missing SPL',
      () => `${ok()}?blSPL=3&teeSPL=0&snpSPL=8`,
      400,
      /missing query parameter ucodeSPL/,
    ],
    ['no query at all', () => ok(), 400, /missing query parameter blSPL/],
    [
      'a boot loader SPL of 128',
      () => `${ok()}?blSPL=128&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      400,
      /blSPL must be a decimal integer 0\.\.127, got "128"/,
    ],
    [
      'a microcode SPL of 256',
      () => `${ok()}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=256`,
      400,
      /ucodeSPL must be a decimal integer 0\.\.255/,
    ],
    [
      'a negative SPL',
      () => `${ok()}?blSPL=-1&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      400,
      /blSPL must be/,
    ],
    ['a hex SPL', () => `${ok()}?blSPL=0x3&teeSPL=0&snpSPL=8&ucodeSPL=115`, 400, /blSPL must be/],
    ['an empty SPL', () => `${ok()}?blSPL=&teeSPL=0&snpSPL=8&ucodeSPL=115`, 400, /blSPL must be/],
    [
      'an SPL given twice',
      () => `${ok()}?blSPL=3&blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      400,
      /blSPL is given 2 times/,
    ],
    [
      'a Turin fmcSPL',
      () => `${ok()}?fmcSPL=1&blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      400,
      /unexpected query parameter "fmcSPL"/,
    ],
    [
      'another product line',
      () => `/vcek/v1/Genoa/${hwid()}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
      404,
      /unknown product "Genoa": this KDS serves Milan only/,
    ],
    ['a product in lower case', () => '/vcek/v1/milan/cert_chain', 404, /unknown product "milan"/],
    ['the CRL', () => '/vcek/v1/Milan/crl', 404, /no CRL/],
    ['a VLEK chain', () => '/vlek/v1/Milan/cert_chain', 404, /not found/],
    ['a trailing slash', () => '/vcek/v1/Milan/cert_chain/', 404, /not found/],
    ['the root', () => '/', 404, /not found/],
  ];

  it.each(cases)('refuses %s', async (_name, path, status, reason) => {
    const r = await get(path());
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe(KDS_CONTENT_TYPE.text);
    expect(await r.text()).toMatch(reason);
  });
});

describe('KdsResponder', () => {
  it('serves the VCEK of any TCB KDS can express, and refuses SPLs beyond it', () => {
    const responder = new KdsResponder(id, 0);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 140 }),
        fc.integer({ min: 0, max: 140 }),
        fc.integer({ min: 0, max: 140 }),
        fc.integer({ min: 0, max: 270 }),
        (bl, tee, snp, ucode) => {
          const r = responder.respond(
            'GET',
            `/vcek/v1/Milan/${hwid()}?blSPL=${bl}&teeSPL=${tee}&snpSPL=${snp}&ucodeSPL=${ucode}`,
          );
          const valid = bl <= 127 && tee <= 127 && snp <= 127 && ucode <= 255;
          expect(r.status).toBe(valid ? 200 : 400);
          if (valid) {
            const cert = new X509Certificate(r.body);
            expect(cert.publicKey.equals(vcekOf(id, tcbOf(bl, tee, snp, ucode)).publicKey)).toBe(
              true,
            );
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('derives each TCB once, and evicts the least recently used beyond its size', () => {
    const responder = new KdsResponder(id, 2);
    const at = (tcb: bigint): string | undefined =>
      responder.respond('GET', kdsVcekPath('Milan', id.chipId, tcb)).note;
    const [a, b, c] = [tcbOf(1, 0, 1, 1), tcbOf(2, 0, 2, 2), tcbOf(3, 0, 3, 3)];
    expect(at(a)).toBeUndefined();
    expect(at(a)).toBe('cached');
    expect(at(b)).toBeUndefined();
    expect(at(a)).toBe('cached'); // a is now the most recently used
    expect(at(c)).toBeUndefined(); // evicts b
    expect(at(a)).toBe('cached');
    expect(at(b)).toBeUndefined();
  });

  it("serves a Genoa chip under /vcek/v1/Genoa and refuses Milan's URLs", () => {
    const genoa: ChipIdentity = { ...id, product: 'Genoa', productName: 'Genoa-B0' };
    const responder = new KdsResponder(genoa);
    expect(responder.respond('GET', kdsCertChainPath('Genoa')).status).toBe(200);
    expect(responder.respond('GET', kdsCertChainPath('Milan')).status).toBe(404);
    const r = responder.respond('GET', kdsVcekPath('Genoa', id.chipId, id.tcb));
    expect(r.status).toBe(200);
    expect(new X509Certificate(r.body).issuer).toContain('CN=SEV-Genoa');
  });

  it('builds the VCEK path with the SPLs in decimal in the order AMD documents', () => {
    expect(kdsVcekPath('Milan', id.chipId, id.tcb)).toBe(
      `/vcek/v1/Milan/${hwid()}?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115`,
    );
  });
});
