// The local KDS (src/host/kds-server.ts) as a relying party uses AMD's: fetch the cert_chain and
// the VCEK named by a report's CHIP_ID and REPORTED_TCB, then verify with src/attest. What the
// host serves must be what the verifier accepts, at any TCB, not only the installed one.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TCB_VERSION } from '../src/arch/index.js';
import { decodeCertificates } from '../src/attest/cert-chain.js';
import { parseKdsExtensions } from '../src/attest/vcek-extensions.js';
import { verifyReport } from '../src/attest/verify.js';
import { createKdsServer, kdsCertChainPath, kdsVcekPath } from '../src/host/kds-server.js';
import type { ChipIdentity } from '../src/hw/asp/chip-identity.js';
import { buildReport, signReport } from '../src/hw/asp/report-signer.js';
import { loadTestIdentity } from '../src/hw/asp/test-identity.fixture.js';
import { vcekOf } from '../src/hw/asp/vcek.js';

let id: ChipIdentity;
let server: Server;
let base: string;

beforeAll(async () => {
  id = loadTestIdentity();
  server = createKdsServer(id);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
});

async function fetchBytes(path: string): Promise<Uint8Array> {
  const r = await fetch(base + path);
  expect(r.status).toBe(200);
  return new Uint8Array(await r.arrayBuffer());
}

/** The ASK and ARK (DER) of the served cert_chain. */
async function fetchChain(): Promise<{ ask: Uint8Array; ark: Uint8Array }> {
  const certs = decodeCertificates(await fetchBytes(kdsCertChainPath(id.product)));
  expect(certs).toHaveLength(2);
  return { ask: certs[0]!, ark: certs[1]! };
}

const OLDER_TCB = TCB_VERSION.encode({ bootLoader: 2, tee: 0, snp: 5, microcode: 68 });
const TCBS: [string, (chip: ChipIdentity) => bigint][] = [
  ['the installed TCB', (chip) => chip.tcb],
  ['an older TCB', () => OLDER_TCB],
  [
    'the largest TCB KDS expresses',
    () => TCB_VERSION.encode({ bootLoader: 127, tee: 127, snp: 127, microcode: 255 }),
  ],
];

/** A report of this chip at `reportedTcb`, signed by the VCEK of that TCB. */
function signedReport(reportedTcb: bigint): Uint8Array {
  return signReport(
    buildReport({
      product: id.product,
      policy: 0x30000n,
      vmpl: 0,
      currentTcb: id.tcb,
      reportData: new Uint8Array(64).fill(0x5a),
      measurement: new Uint8Array(48).fill(0x11),
      reportId: new Uint8Array(32).fill(0x22),
      reportedTcb,
      chipId: id.chipId,
      committedTcb: id.tcb,
      currentVersion: id.firmware,
      launchTcb: id.tcb,
    }),
    vcekOf(id, reportedTcb).privateKey,
  );
}

const AT = new Date('2026-01-01T00:00:00Z');

describe('the local KDS, as a relying party uses it', () => {
  it.each(TCBS)(
    'serves, at %s, a VCEK whose extensions carry the queried SPLs and this chip',
    async (_name, tcbOf) => {
      const tcb = tcbOf(id);
      const ext = parseKdsExtensions(await fetchBytes(kdsVcekPath(id.product, id.chipId, tcb)));
      const spl = TCB_VERSION.decode(tcb);
      expect(ext.kind).toBe('VCEK');
      expect(ext.productName).toBe(id.productName);
      expect(ext.tcb).toMatchObject({
        bootLoader: Number(spl.bootLoader),
        tee: Number(spl.tee),
        snp: Number(spl.snp),
        microcode: Number(spl.microcode),
        spl4: 0,
        spl5: 0,
        spl6: 0,
        spl7: 0,
      });
      expect(ext.hwId).toEqual(id.chipId);
    },
  );

  it.each(TCBS)(
    'serves certificates under which a report signed at %s verifies',
    async (_name, tcbOf) => {
      const tcb = tcbOf(id);
      const { ask, ark } = await fetchChain();
      const vcek = await fetchBytes(kdsVcekPath(id.product, id.chipId, tcb));
      const report = signedReport(tcb);
      const result = verifyReport({
        report,
        ark,
        ask,
        vcek,
        trustedArk: id.ark.certificate,
        now: AT,
      });
      expect(result.reasons).toEqual([]);
      expect(result.ok).toBe(true);
    },
  );

  it("serves a VCEK that does not verify a report of another TCB (a verifier must fetch the report's)", async () => {
    const { ask, ark } = await fetchChain();
    const vcek = await fetchBytes(kdsVcekPath(id.product, id.chipId, OLDER_TCB));
    const result = verifyReport({ report: signedReport(id.tcb), ark, ask, vcek, now: AT });
    expect(result.ok).toBe(false);
    expect(result.reasons.some((r) => r.startsWith('report-signature:'))).toBe(true);
  });
});
