import { describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { FIXTURES, fixture } from '../../../test/fixtures.js';
import { runCli } from '../program.js';
import type { CliIo } from '../io.js';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t + '\n'), err: (t) => void (err += t + '\n') };
  const code = await runCli(args, io);
  return { code, out, err };
}

const DIR = join(FIXTURES, 'amd-milan');
const REPORT = join(DIR, 'attestation.bin');
const CHAIN = join(DIR, 'milan.testcer');
const VCEK = join(DIR, 'vcek.testcer');
const GENUINE = ['verify', '--report', REPORT, '--ask', CHAIN, '--vcek', VCEK];
const MEASUREMENT =
  'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'svsm-verify-'));
}

/** The genuine report with one byte changed, in a temporary file. */
function flippedReport(offset: number): string {
  const bytes = fixture('amd-milan/attestation.bin');
  bytes[offset]! ^= 0x01;
  const path = join(tempDir(), 'report.bin');
  writeFileSync(path, bytes);
  return path;
}

/** The ASK and ARK blocks of AMD's cert_chain PEM. */
function pemBlocks(): [string, string] {
  const text = fixture('amd-milan/milan.testcer');
  const blocks = new TextDecoder()
    .decode(text)
    .match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)!;
  return [blocks[0]!, blocks[1]!];
}

describe('svsm verify', () => {
  it('accepts the genuine report with exit code 0 and a PASS line per check', async () => {
    const r = await run(
      ...GENUINE,
      '--measurement',
      MEASUREMENT,
      '--vmpl',
      '0',
      '--at',
      '2026-01-01',
    );
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^PASS {2}report-signature +bytes 0x000\.\.0x29f are signed/m);
    expect(r.out).toMatch(/^PASS {2}expected-measurement /m);
    expect(r.out).not.toContain('FAIL');
    expect(r.out).toMatch(/VERIFIED: all 20 checks hold/);
  });

  it('finds cert_chain.pem and vcek.der in --certs-dir', async () => {
    const dir = tempDir();
    copyFileSync(CHAIN, join(dir, 'cert_chain.pem'));
    copyFileSync(VCEK, join(dir, 'vcek.der'));
    const r = await run('verify', '--report', REPORT, '--certs-dir', dir);
    expect(r.code).toBe(0);
    expect(r.out).toContain('ARK "ARK-Milan", ASK "SEV-Milan", VCEK "SEV-VCEK"');
  });

  it('finds ark.pem, ask.pem and vcek.crt in --certs-dir, and a flag overrides the directory', async () => {
    const dir = tempDir();
    const [ask, ark] = pemBlocks();
    writeFileSync(join(dir, 'ark.pem'), ark);
    writeFileSync(join(dir, 'ask.pem'), ask);
    copyFileSync(VCEK, join(dir, 'vcek.crt'));
    expect((await run('verify', '--report', REPORT, '--certs-dir', dir)).code).toBe(0);
    // The ASK given as the ARK: the chain breaks, so the flag was used.
    const r = await run(
      'verify',
      '--report',
      REPORT,
      '--certs-dir',
      dir,
      '--ark',
      join(dir, 'ask.pem'),
    );
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL {2}ark-self-signed/m);
  });

  it('refuses a directory with two VCEKs and one with no VCEK, with exit code 2', async () => {
    const dir = tempDir();
    copyFileSync(CHAIN, join(dir, 'cert_chain.pem'));
    const none = await run('verify', '--report', REPORT, '--certs-dir', dir);
    expect(none.code).toBe(2);
    expect(none.err).toContain(`no VCEK: give --vcek FILE or put vcek.pem (or .der) in ${dir}`);
    copyFileSync(VCEK, join(dir, 'vcek.der'));
    copyFileSync(VCEK, join(dir, 'vcek.cer'));
    const two = await run('verify', '--report', REPORT, '--certs-dir', dir);
    expect(two.code).toBe(2);
    expect(two.err).toContain('holds more than one VCEK (vcek.der, vcek.cer)');
  });

  it('rejects a changed signed byte with exit code 1 and the signature reason', async () => {
    const r = await run('verify', '--report', flippedReport(0x90), '--ask', CHAIN, '--vcek', VCEK);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL {2}report-signature/m);
    expect(r.out).toMatch(/REJECTED: 1 reason\n {2}- report-signature: the ECDSA P-384 signature/);
  });

  it('rejects a wrong expected measurement and VMPL, listing both reasons', async () => {
    const wrong = MEASUREMENT.slice(0, -1) + '0';
    const r = await run(...GENUINE, '--measurement', wrong, '--vmpl', '2');
    expect(r.code).toBe(1);
    expect(r.out).toContain('REJECTED: 2 reasons');
    expect(r.out).toContain(
      `- expected-measurement: MEASUREMENT is ${MEASUREMENT}, expected ${wrong}`,
    );
    expect(r.out).toContain('- expected-vmpl: VMPL is 0, expected 2');
  });

  it('prints JSON that a tool can read, with the same verdict', async () => {
    const r = await run(...GENUINE, '--json', '--report-data', '0x' + '00'.repeat(64));
    expect(r.code).toBe(1);
    const v = JSON.parse(r.out) as {
      ok: boolean;
      reasons: string[];
      checks: { name: string; ok: boolean; detail: string }[];
    };
    expect(v.ok).toBe(false);
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0]).toMatch(/^expected-reportData: REPORT_DATA is 0102030405/);
    expect(v.checks.find((c) => c.name === 'chip-id')).toMatchObject({ ok: true });
  });

  it('rejects expired certificates at --at, and accepts them with --no-time-check', async () => {
    const late = await run(...GENUINE, '--at', '2030-01-01');
    expect(late.code).toBe(1);
    expect(late.out).toContain('validity: the VCEK expired at 2029-09-24T00:55:28Z');
    const skipped = await run(...GENUINE, '--no-time-check');
    expect(skipped.code).toBe(0);
    expect(skipped.out).toMatch(/^PASS {2}validity +not checked/m);
  });

  it('pins the ARK with --trusted-ark and rejects a chain under another ARK', async () => {
    expect((await run(...GENUINE, '--trusted-ark', CHAIN)).code).toBe(0);
    const dir = tempDir();
    const [ask] = pemBlocks();
    writeFileSync(join(dir, 'not-ark.pem'), ask);
    const r = await run(...GENUINE, '--trusted-ark', join(dir, 'not-ark.pem'));
    expect(r.code).toBe(1);
    expect(r.out).toContain(
      "ark-pinned: the ARK's public key is not the trusted ARK's (SEV-Milan)",
    );
  });

  it.each([
    [['--measurement', 'abcd'], '--measurement must be 48 bytes (96 hex digits), this is 2'],
    [['--measurement', 'xyz'], '--measurement is not 48 bytes of hex'],
    [
      ['--report-data', '00'.repeat(32)],
      '--report-data must be 64 bytes (128 hex digits), this is 32',
    ],
    [['--host-data', '00'], '--host-data must be 32 bytes (64 hex digits), this is 1'],
    [['--vmpl', '4'], '--vmpl must be 0, 1, 2 or 3, not 4'],
    [['--at', 'yesterday'], '--at yesterday is not an ISO 8601 date'],
    [['--at', '2026-01-01', '--no-time-check'], 'give --at DATE or --no-time-check, not both'],
  ])('refuses %j in one line with exit code 2', async (extra, message) => {
    const r = await run(...GENUINE, ...extra);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain(message);
  });

  it('refuses missing files, a report of the wrong size and a file that is no certificate', async () => {
    const missing = await run(
      'verify',
      '--report',
      '/nonexistent/r.bin',
      '--ask',
      CHAIN,
      '--vcek',
      VCEK,
    );
    expect(missing.code).toBe(2);
    expect(missing.err.trim()).toBe('svsm: report file /nonexistent/r.bin does not exist');
    const noVcek = await run(
      'verify',
      '--report',
      REPORT,
      '--ask',
      CHAIN,
      '--vcek',
      '/nonexistent/v',
    );
    expect(noVcek.err.trim()).toBe('svsm: VCEK file /nonexistent/v does not exist');
    const short = await run('verify', '--report', VCEK, '--ask', CHAIN, '--vcek', VCEK);
    expect(short.code).toBe(2);
    expect(short.err).toContain('an attestation report is 1184 (0x4a0) bytes, this input is 1360');
    const notCert = await run('verify', '--report', REPORT, '--ask', CHAIN, '--vcek', REPORT);
    expect(notCert.code).toBe(2);
    expect(notCert.err.trim()).toBe(
      `svsm: VCEK file ${REPORT}: it is neither a DER certificate nor a PEM file with a CERTIFICATE block`,
    );
    const noArk = await run('verify', '--report', REPORT, '--ask', VCEK, '--vcek', VCEK);
    expect(noArk.code).toBe(2);
    expect(noArk.err).toContain('no ARK: give --ark FILE');
    const noReport = await run('verify', '--ask', CHAIN, '--vcek', VCEK);
    expect(noReport.code).toBe(2);
    expect(noReport.err).toContain("required option '--report <file>' not specified");
  });

  it('documents the --certs-dir file names and exit codes in --help', async () => {
    const r = await run('verify', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('ark.pem, ark.der, ark.crt or ark.cer');
    expect(r.out).toContain('cert_chain.pem');
    expect(r.out).toContain('--no-time-check');
    expect(r.out).toMatch(/Exit codes: 0 every check holds; 1 the report is rejected/);
  });

  it('exits 1 as a real process when a report is rejected', () => {
    const tsx = join(FIXTURES, '../../node_modules/.bin/tsx');
    const main = join(FIXTURES, '../../src/cli/main.ts');
    const args = [main, 'verify', '--report', flippedReport(0x1a0), '--ask', CHAIN, '--vcek', VCEK];
    const p = spawnSync(tsx, args, { encoding: 'utf8' });
    expect(p.status).toBe(1);
    expect(p.stdout).toContain('- chip-id: CHIP_ID');
    expect(p.stderr).toBe('');
  });
});
