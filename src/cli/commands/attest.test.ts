import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../../../test/fixtures.js';
import { runCli } from '../program.js';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    out: (t) => void (out += t + '\n'),
    err: (t) => void (err += t + '\n'),
  });
  return { code, out, err };
}

const MACHINE = join(FIXTURES, 'machine');
const NONCE = 'ab'.repeat(64);

describe('svsm attest', () => {
  it('writes evidence that svsm verify accepts, with the measurement svsm measure predicts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svsm-attest-'));
    const a = await run(
      'attest',
      '--out-dir',
      dir,
      '--nonce',
      NONCE,
      '--memory',
      '64M',
      '--machine-dir',
      MACHINE,
    );
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    const image = join(dir, 'cvm.igvm');
    const built = await run('build-image', '--out', image, '--memory', '64M');
    const digest = /launch digest ([0-9a-f]{96})/.exec(built.out)?.[1];
    expect(digest).toBeDefined();
    const manifest = readFileSync(join(dir, 'manifest.bin'));
    const reportData = createHash('sha512')
      .update(Buffer.from(NONCE, 'hex'))
      .update(manifest)
      .digest('hex');
    const v = await run(
      'verify',
      '--report',
      join(dir, 'report.bin'),
      '--certs-dir',
      dir,
      '--trusted-ark',
      join(dir, 'ark.pem'),
      '--measurement',
      digest!,
      '--report-data',
      reportData,
    );
    expect(v.out).toContain('VERIFIED');
    expect(v.code).toBe(0);
    expect(readFileSync(join(dir, 'nonce.bin')).toString('hex')).toBe(NONCE);
  });

  it('refuses a nonce that is not 64 bytes', async () => {
    const r = await run(
      'attest',
      '--out-dir',
      tmpdir(),
      '--nonce',
      '0011',
      '--machine-dir',
      MACHINE,
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/64 bytes/);
  });
});
