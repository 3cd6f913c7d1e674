// `svsm run --serial` and `--realtime` end to end: where the SVSM's console goes, bad values, and
// that default runs are reproducible.
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
const BASE = ['run', '--machine-dir', MACHINE, '--memory', '64M', '--seed', 'serial'];
const BOOTED = '[svsm cpu0] booted at 0x2000000';

describe('svsm run --serial', () => {
  it('stdio (the default) prints the SVSM console among the log lines', async () => {
    const r = await run(...BASE);
    expect(r.code).toBe(0);
    expect(r.out).toContain(BOOTED);
  });

  it('file:PATH writes the console to the file and not to the terminal', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'svsm-serial-')), 'com1.txt');
    const r = await run(...BASE, '--serial', `file:${path}`);
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('[svsm cpu0]');
    expect(r.out).toContain('guest: QUERY_PROTOCOL core');
    expect(readFileSync(path, 'utf8')).toMatch(/^\[svsm cpu0\] booted at 0x2000000 .*\n/m);
  });

  it('none drops the console', async () => {
    const r = await run(...BASE, '--serial', 'none');
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('[svsm');
    expect(r.out).toMatch(/host: VM stopped/);
  });

  it('tcp:PORT waits for a client and sends it the console', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as { port: number }).port;
    await new Promise<void>((r) => s.close(() => r()));
    const running = run(...BASE, '--serial', `tcp:${port}`);
    const client = new Socket();
    const got: Buffer[] = [];
    client.on('data', (d: Buffer) => got.push(d));
    for (let i = 0; ; i++) {
      try {
        await new Promise<void>((resolve, reject) => {
          client.once('error', reject);
          client.connect(port, '127.0.0.1', resolve);
        });
        break;
      } catch (e) {
        if (i > 200) throw e;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const ended = new Promise<void>((r) => client.on('end', () => r()));
    const r = await running;
    await ended;
    client.destroy();
    expect(r.code).toBe(0);
    expect(r.out).toContain(`host: COM1 waits for a client on 127.0.0.1:${port}`);
    expect(r.out).not.toContain('[svsm cpu0]');
    expect(Buffer.concat(got).toString()).toContain(BOOTED);
  });

  it('refuses a bad value in one line with exit code 2, before anything runs', async () => {
    for (const bad of ['serial0', 'tcp:99999', 'file:']) {
      const r = await run(...BASE, '--serial', bad);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/^svsm: --serial/);
      expect(r.out).toBe('');
    }
  });

  it('explains --serial and --realtime in --help', async () => {
    const r = await run('run', '--help');
    expect(r.out).toMatch(/--serial <where>[\s\S]*stdio[\s\S]*file:PATH[\s\S]*tcp:PORT[\s\S]*none/);
    expect(r.out).toMatch(/--realtime[\s\S]*wall-clock[\s\S]*virtual/);
  });
});

describe('svsm run time', () => {
  it('two default runs with one seed print the same log, but for the elapsed time', async () => {
    const strip = (s: string): string => s.replace(/after \d+ ms/, 'after N ms');
    const a = await run(...BASE);
    const b = await run(...BASE);
    expect(a.code).toBe(0);
    expect(strip(a.out)).toBe(strip(b.out));
  });

  it('--realtime runs the same demo to completion', async () => {
    const r = await run(...BASE, '--realtime');
    expect(r.code).toBe(0);
    expect(r.out).toContain(BOOTED);
  });
});
