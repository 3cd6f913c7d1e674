import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURES } from '../../../test/fixtures.js';
import { chipIdentityFromJson } from '../../hw/asp/chip-identity.js';
import type { CliIo } from '../io.js';
import { runCli } from '../program.js';
import { parsePort, serveKds } from './kds.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'svsm-kds-'));
  dirs.push(d);
  return d;
}

/** A machine directory holding a copy of the TEST-ONLY identity. */
function testMachineDir(): string {
  const d = tempDir();
  copyFileSync(join(FIXTURES, 'machine/identity.json'), join(d, 'identity.json'));
  return d;
}

/** Output captured line by line, with a way to wait for a line. */
class CapturedIo implements CliIo {
  out_ = '';
  err_ = '';
  private waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  out(text: string): void {
    this.out_ += text.endsWith('\n') ? text : text + '\n';
    this.check();
  }
  err(text: string): void {
    this.err_ += text.endsWith('\n') ? text : text + '\n';
  }
  waitFor(re: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve) => {
      this.waiters.push({ re, resolve });
      this.check();
    });
  }
  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      const m = this.out_.match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }
}

const VCEK_URL = /^ {2}vcek +(http:\/\/\S+)$/m;
const CHAIN_URL = /^ {2}cert_chain +(http:\/\/\S+)$/m;

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = new CapturedIo();
  const code = await runCli(args, io);
  return { code, out: io.out_, err: io.err_ };
}

/** A TCP server holding a loopback port, so the KDS cannot have it. */
async function occupyPort(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('svsm kds serve, in process', () => {
  it('serves the machine in --machine-dir at the printed URLs until stopped', async () => {
    const io = new CapturedIo();
    const stop = new AbortController();
    const done = serveKds(
      { port: 0, host: '127.0.0.1', machineDir: testMachineDir() },
      io,
      stop.signal,
    );
    const [, vcekUrl] = (await io.waitFor(VCEK_URL)) as [string, string];
    const [, chainUrl] = (await io.waitFor(CHAIN_URL)) as [string, string];
    expect(io.out_).toMatch(
      /machine identity .*identity\.json \(loaded\): Milan-B0, chip a7190c5a5d48bdba/,
    );
    expect(vcekUrl).toMatch(
      /\/vcek\/v1\/Milan\/a7190c5a[0-9a-f]{120}\?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115$/,
    );

    const chain = await fetch(chainUrl);
    expect(chain.status).toBe(200);
    const vcek = await fetch(vcekUrl);
    expect(vcek.status).toBe(200);
    const cert = new X509Certificate(new Uint8Array(await vcek.arrayBuffer()));
    expect(cert.subject).toContain('CN=SEV-VCEK');
    expect(io.out_).toMatch(/ GET \/vcek\/v1\/Milan\/cert_chain 200 \d+ bytes$/m);

    stop.abort();
    await done;
    expect(io.out_.trimEnd().split('\n').at(-1)).toBe('svsm kds: stopped');
    expect(io.err_).toBe('');
    await expect(fetch(chainUrl)).rejects.toThrow();
  });

  it('creates the machine identity when --machine-dir has none, and says so', async () => {
    const dir = join(tempDir(), 'machine');
    const io = new CapturedIo();
    const stop = new AbortController();
    const done = serveKds({ port: 0, host: '127.0.0.1', machineDir: dir }, io, stop.signal);
    const [, vcekUrl] = (await io.waitFor(VCEK_URL)) as [string, string];
    stop.abort();
    await done;
    const path = join(dir, 'identity.json');
    expect(io.out_).toContain(`svsm kds: machine identity ${path} (created now)`);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const chipId = chipIdentityFromJson(readFileSync(path, 'utf8')).chipId;
    expect(vcekUrl).toContain(Buffer.from(chipId).toString('hex'));
  });

  it('warns when it listens on an address other machines may reach', async () => {
    const io = new CapturedIo();
    const stop = new AbortController();
    const done = serveKds(
      { port: 0, host: '0.0.0.0', machineDir: testMachineDir() },
      io,
      stop.signal,
    );
    await io.waitFor(VCEK_URL);
    stop.abort();
    await done;
    expect(io.err_).toMatch(
      /^svsm: warning: listening on 0\.0\.0\.0, which other machines may reach/,
    );
  });

  it('does not warn on loopback', async () => {
    const io = new CapturedIo();
    const stop = new AbortController();
    stop.abort(); // stops as soon as it has started
    await serveKds({ port: 0, host: 'localhost', machineDir: testMachineDir() }, io, stop.signal);
    expect(io.out_).toMatch(VCEK_URL);
    expect(io.err_).toBe('');
  });
});

describe('svsm kds serve, refusals with exit code 2', () => {
  it('explains a port already in use in one sentence', async () => {
    const { server, port } = await occupyPort();
    try {
      const r = await run(
        'kds',
        'serve',
        '--port',
        String(port),
        '--machine-dir',
        testMachineDir(),
      );
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toEqual([
        `svsm: port ${port} on 127.0.0.1 is already in use; choose another with --port, or --port 0 for a free one`,
      ]);
    } finally {
      server.close();
    }
  });

  it.each(['abc', '65536', '-1', '1.5', '', '0x50'])('refuses --port %j', async (port) => {
    const r = await run('kds', 'serve', '--port', port, '--machine-dir', testMachineDir());
    expect(r.code).toBe(2);
    expect(r.err).toContain('--port must be an integer 0..65535');
  });

  it('explains a machine identity file that is not valid', async () => {
    const dir = tempDir();
    copyFileSync(join(FIXTURES, 'amd-milan/attestation.bin'), join(dir, 'identity.json'));
    const r = await run('kds', 'serve', '--port', '0', '--machine-dir', dir);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^svsm: the machine identity file .*identity\.json is not valid/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('explains a host that is not an address of this machine', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a local interface.
    const r = await run(
      'kds',
      'serve',
      '--host',
      '192.0.2.1',
      '--port',
      '0',
      '--machine-dir',
      testMachineDir(),
    );
    expect(r.code).toBe(2);
    expect(r.err).toContain('cannot listen on 192.0.2.1: it is not an address of this machine');
  });
});

describe('parsePort', () => {
  it('reads 0..65535 in decimal', () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('8080')).toBe(8080);
    expect(parsePort('65535')).toBe(65535);
  });
});

describe('svsm kds serve, as a real process', () => {
  const tsx = join(FIXTURES, '../../node_modules/.bin/tsx');
  const main = join(FIXTURES, '../../src/cli/main.ts');

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'starts on a free port, serves the printed VCEK URL, and exits 0 on %s',
    async (signal) => {
      const dir = testMachineDir();
      const child = spawn(tsx, [main, 'kds', 'serve', '--port', '0', '--machine-dir', dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
      const exited = new Promise<number | null>((resolve) =>
        child.on('exit', (code) => resolve(code)),
      );
      try {
        const vcekUrl = await new Promise<string>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => {
            out += d.toString();
            const m = out.match(VCEK_URL);
            if (m) resolve(m[1]!);
          });
          child.on('exit', () => reject(new Error(`exited before serving: ${out}${err}`)));
        });
        const r = await fetch(vcekUrl);
        expect(r.status).toBe(200);
        expect((await r.arrayBuffer()).byteLength).toBeGreaterThan(1000);
        child.kill(signal);
        expect(await exited).toBe(0);
        expect(out).toContain('svsm kds: stopped');
        expect(err).toBe('');
        expect(existsSync(join(dir, 'identity.json'))).toBe(true);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  );
});
