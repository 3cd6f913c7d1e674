// End to end through the trust boundary: a guest launched by the simulated ASP asks for a report,
// and the relying party's verifier (src/attest, and `svsm verify`) accepts it - and rejects it
// when the chip or the chain is not this machine's.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MSG_REPORT_RSP,
  PAGE_TYPE,
  SNP_MSG_TYPE,
  SNP_SECRETS_PAGE,
  VMSA,
} from '../src/arch/index.js';
import { verifyReport } from '../src/attest/verify.js';
import { runCli } from '../src/cli/program.js';
import { type ChipIdentity, createChipIdentity } from '../src/hw/asp/chip-identity.js';
import { derToPem } from '../src/hw/asp/kds-certs.js';
import { SecureProcessor } from '../src/hw/asp/secure-processor.js';
import { loadTestIdentity } from '../src/hw/asp/test-identity.fixture.js';
import { vcekCertificate } from '../src/hw/asp/vcek.js';
import { MIN_MEMORY_BYTES, PhysicalMemory } from '../src/hw/memory.js';
import { seededRandom } from '../src/hw/random.js';
import { Rmp } from '../src/hw/rmp.js';
import { openResponse, reportRequest, sealRequest } from './support/guest-messages.js';

let identity: ChipIdentity;
let other: ChipIdentity;
beforeAll(() => {
  identity = loadTestIdentity();
  other = createChipIdentity(seededRandom('another machine'), {
    issuedAt: new Date('2025-06-01T00:00:00Z'),
  });
}, 60_000);

/** Launches a one-page guest on `id`'s chip and returns a report for `reportData`. */
function launchAndReport(
  id: ChipIdentity,
  reportData: Uint8Array,
): { report: Uint8Array; measurement: Uint8Array } {
  const memory = new PhysicalMemory(MIN_MEMORY_BYTES);
  const rmp = new Rmp(memory.pageCount);
  const asp = new SecureProcessor({ identity: id, memory, rmp, random: seededRandom('roundtrip') });
  asp.launchStart(0x30000n);
  memory.fill(0x100000, 4096, 0xc3);
  asp.launchUpdate(0x100000, PAGE_TYPE.NORMAL);
  asp.launchUpdate(0x101000, PAGE_TYPE.SECRETS);
  VMSA.on(memory.bytes, 0x102000).set('efer', 0x1000n).set('sevFeatures', 1n);
  asp.launchUpdate(0x102000, PAGE_TYPE.VMSA);
  asp.launchFinish();
  const vmpck0 = SNP_SECRETS_PAGE.get(memory.bytes, 'vmpck0', 0x101000);
  const r = asp.guestRequest(
    sealRequest(vmpck0, 1n, 0, SNP_MSG_TYPE.REPORT_REQ, reportRequest(reportData, 0)),
  );
  const payload = openResponse(vmpck0, r.response!).payload;
  return { report: MSG_REPORT_RSP.get(payload, 'report'), measurement: asp.measurement };
}

function chainOf(id: ChipIdentity): { ark: Uint8Array; ask: Uint8Array; vcek: Uint8Array } {
  return { ark: id.ark.certificate, ask: id.ask.certificate, vcek: vcekCertificate(id) };
}

describe('launch, guest request, verify', () => {
  it('the verifier accepts a report from the simulated ASP with its chain', () => {
    const reportData = new Uint8Array(64).fill(1);
    const { report, measurement } = launchAndReport(identity, reportData);
    const result = verifyReport({
      report,
      ...chainOf(identity),
      trustedArk: identity.ark.certificate,
      expected: { measurement, reportData, vmpl: 0 },
    });
    expect(result.reasons).toEqual([]);
    expect(result.ok).toBe(true);
  });

  it('rejects a report signed by another chip, and a chain of another machine', () => {
    const { report } = launchAndReport(other, new Uint8Array(64));
    const foreignReport = verifyReport({ report, ...chainOf(identity) });
    expect(foreignReport.ok).toBe(false);
    expect(foreignReport.reasons.join('\n')).toMatch(/signature/i);

    const mine = launchAndReport(identity, new Uint8Array(64)).report;
    const foreignChain = verifyReport({
      report: mine,
      ...chainOf(other),
      trustedArk: identity.ark.certificate,
    });
    expect(foreignChain.ok).toBe(false);
    expect(foreignChain.reasons.join('\n')).toMatch(/ARK|pinned|trusted/i);
  });

  it('svsm verify accepts the files and rejects a wrong expected measurement', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svsm-roundtrip-'));
    const { report, measurement } = launchAndReport(identity, new Uint8Array(64));
    writeFileSync(join(dir, 'report.bin'), report);
    const c = chainOf(identity);
    writeFileSync(join(dir, 'ark.pem'), derToPem(c.ark));
    writeFileSync(join(dir, 'ask.pem'), derToPem(c.ask));
    writeFileSync(join(dir, 'vcek.pem'), derToPem(c.vcek));
    let out = '';
    const io = {
      out: (t: string) => void (out += t + '\n'),
      err: (t: string) => void (out += t + '\n'),
    };
    const args = [
      'verify',
      '--report',
      join(dir, 'report.bin'),
      '--certs-dir',
      dir,
      '--trusted-ark',
      join(dir, 'ark.pem'),
    ];
    const hex = Buffer.from(measurement).toString('hex');
    expect(await runCli([...args, '--measurement', hex], io)).toBe(0);
    const wrong = (hex[0] === '0' ? '1' : '0') + hex.slice(1);
    out = '';
    expect(await runCli([...args, '--measurement', wrong], io)).toBe(1);
    expect(out).toMatch(/measurement/i);
  });
});
