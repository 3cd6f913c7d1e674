import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { FIXTURES } from '../../test/fixtures.js';
import { runCli } from './program.js';
import type { CliIo } from './io.js';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t + '\n'), err: (t) => void (err += t + '\n') };
  const code = await runCli(args, io);
  return { code, out, err };
}

const REPORT = join(FIXTURES, 'amd-milan/attestation.bin');

describe('svsm report show', () => {
  it('prints the genuine Milan report as text', async () => {
    const r = await run('report', 'show', REPORT);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Version:\s+2/);
    expect(r.out).toContain(
      'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01',
    );
    expect(r.out).toMatch(/Reported TCB:\s+0x4405000000000002 \(boot loader 2, TEE 0, SNP 5/);
  });

  it('prints JSON that a tool can read back', async () => {
    const r = await run('report', 'show', '--json', REPORT);
    expect(r.code).toBe(0);
    const v = JSON.parse(r.out) as { version: number; policy: { raw: string }; chipId: string };
    expect(v.version).toBe(2);
    expect(v.policy.raw).toBe('0xb0000');
    expect(v.chipId.startsWith('3ac3fe21')).toBe(true);
  });

  it('explains a file of the wrong size in one line with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svsm-cli-'));
    const bad = join(dir, 'short.bin');
    writeFileSync(bad, new Uint8Array(1000));
    const r = await run('report', 'show', bad);
    expect(r.code).toBe(2);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toContain('1184');
    expect(r.err).not.toMatch(/at .*\.ts:\d+/);
  });

  it('explains an unknown report version', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svsm-cli-'));
    const bad = join(dir, 'v9.bin');
    const bytes = new Uint8Array(0x4a0);
    bytes[0] = 9;
    writeFileSync(bad, bytes);
    const r = await run('report', 'show', bad);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unsupported attestation report version 9');
  });

  it('explains a missing file and a directory', async () => {
    expect((await run('report', 'show', '/nonexistent/r.bin')).err).toContain('does not exist');
    expect((await run('report', 'show', tmpdir())).err).toContain('is a directory');
  });
});

describe('svsm', () => {
  it('answers --help and --version', async () => {
    const help = await run('--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('report');
    const version = await run('--version');
    expect(version.out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('rejects an unknown command with exit code 2', async () => {
    const r = await run('frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown command');
  });

  it('runs as a real process with the exit codes of the edge', () => {
    const tsx = join(FIXTURES, '../../node_modules/.bin/tsx');
    const main = join(FIXTURES, '../../src/cli/main.ts');
    const ok = execFileSync(tsx, [main, 'report', 'show', REPORT], { encoding: 'utf8' });
    expect(ok).toContain('Measurement:');
    const bad = spawnSync(tsx, [main, 'report', 'show', '/nonexistent'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim()).toBe('svsm: report file /nonexistent does not exist');
  });
});
