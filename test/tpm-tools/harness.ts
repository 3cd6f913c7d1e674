// Starts `svsm tpm serve` as a child process and runs tpm2-tools against it over the mssim TCTI.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** True when Debian's tpm2-tools are installed (scripts/install-test-tools.sh installs them). */
export const HAVE_TPM2_TOOLS =
  spawnSync('tpm2_startup', ['--version'], { encoding: 'utf8' }).status === 0;

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TpmUnderTest {
  readonly port: number;
  readonly dir: string;
  /** Runs one tpm2-tools program in the scratch directory. */
  tool(name: string, ...args: string[]): Promise<ToolResult>;
  /** Like tool() but fails the test with the tool's stderr unless it exits 0. */
  ok(name: string, ...args: string[]): Promise<string>;
  /**
   * tpm2_create of `<name>.pub`/`<name>.priv` under the `parent` context (with `createArgs`), a
   * flush of the transient objects, and tpm2_load of the pair as `<name>.ctx`.
   */
  createAndLoad(parent: string, name: string, ...createArgs: string[]): Promise<void>;
  /** POWER_OFF then POWER_ON on the platform port: a _TPM_Init, as a reboot does. */
  powerCycle(): Promise<void>;
  stop(): Promise<void>;
}

/** Sends mssim platform signals and waits for each u32 0 reply. */
function platformSignals(port: number, signals: number[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let replies = 0;
    socket.on('data', (d: Buffer) => {
      replies += d.length / 4;
      if (replies === signals.length) {
        socket.end(Buffer.from([0, 0, 0, 20]));
        resolve();
      }
    });
    socket.on('error', reject);
    socket.write(Buffer.concat(signals.map((s) => Buffer.from([0, 0, 0, s]))));
  });
}

/** Servers still running when the test process exits (a failed test skips its stop()). */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

function randomPort(): number {
  return 20000 + 2 * Math.floor(Math.random() * 10000);
}

/** Starts the server (retrying another port if one is taken) and waits until it listens. */
export async function startServer(stateFile?: string): Promise<TpmUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'svsm-tpm-tools-'));
  for (let attempt = 0; ; attempt++) {
    const port = randomPort();
    const args = [
      '--import',
      'tsx',
      join(ROOT, 'src/cli/main.ts'),
      'tpm',
      'serve',
      '--port',
      String(port),
    ];
    if (stateFile !== undefined) args.push('--state', stateFile);
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = await new Promise<boolean>((resolve) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening')) resolve(true);
      });
      child.once('exit', () => resolve(false));
    });
    if (started) {
      running.add(child);
      child.once('exit', () => running.delete(child));
      return handle(child, port, dir);
    }
    if (attempt >= 5) throw new Error('svsm tpm serve did not start');
  }
}

function handle(child: ChildProcess, port: number, dir: string): TpmUnderTest {
  let serverErrors = '';
  child.stderr!.on('data', (d: Buffer) => (serverErrors += d.toString()));
  const env = { ...process.env, TPM2TOOLS_TCTI: `mssim:host=127.0.0.1,port=${port}` };
  const tool = (name: string, ...args: string[]): Promise<ToolResult> =>
    new Promise((resolve) => {
      execFile(
        name,
        args,
        { cwd: dir, env, encoding: 'utf8', timeout: 60_000 },
        (err, stdout, stderr) => {
          const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
          resolve({ code, stdout, stderr });
        },
      );
    });
  const ok = async (name: string, ...args: string[]): Promise<string> => {
    const r = await tool(name, ...args);
    if (r.code !== 0 || serverErrors !== '') {
      throw new Error(`${name} ${args.join(' ')} exited ${r.code}: ${r.stderr}${serverErrors}`);
    }
    return r.stdout;
  };
  return {
    port,
    dir,
    tool,
    ok,
    async createAndLoad(parent, name, ...createArgs) {
      const pub = join(dir, `${name}.pub`);
      const priv = join(dir, `${name}.priv`);
      await ok('tpm2_create', '-C', parent, ...createArgs, '-u', pub, '-r', priv);
      await ok('tpm2_flushcontext', '-t');
      await ok('tpm2_load', '-C', parent, '-u', pub, '-r', priv, '-c', join(dir, `${name}.ctx`));
    },
    powerCycle: () => platformSignals(port + 1, [2, 1]),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
