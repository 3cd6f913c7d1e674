import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../program.js';
import type { CliIo } from '../io.js';

async function run(...args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const io: CliIo = { out: () => {}, err: (t) => void (err += t + '\n') };
  return { code: await runCli(args, io), err };
}

describe('svsm tpm serve', () => {
  it('refuses a bad port with one sentence and exit code 2', async () => {
    const r = await run('tpm', 'serve', '--port', 'abc');
    expect(r.code).toBe(2);
    expect(r.err).toBe('svsm: --port abc is not a port number between 1 and 65534\n');
  });

  it('refuses a state file that is not a TPM state with exit code 2', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'svsm-tpm-')), 'bad.state');
    writeFileSync(path, 'not a tpm');
    const r = await run('tpm', 'serve', '--port', '2399', '--state', path);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /^svsm: .*bad\.state: (not a TPM state file \(bad magic\)|TPM state file is truncated or corrupt)\n$/,
    );
  });
});
