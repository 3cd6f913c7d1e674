// `svsm tpm serve`: the TPM 2.0 engine on the TCG simulator (mssim) socket protocol, so that
// tpm2-tools work against it with TPM2TOOLS_TCTI=mssim:host=127.0.0.1,port=2321.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  parseState,
  serializeState,
  startTpmServer,
  StateFormatError,
  Tpm,
} from '../../tpm/index.js';
import { type CliIo, UserError } from '../io.js';

interface ServeOptions {
  port: string;
  host: string;
  state?: string;
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65534) {
    throw new UserError(`--port ${text} is not a port number between 1 and 65534`);
  }
  return port;
}

/** The TPM from its state file, or a freshly manufactured one (then written to the file). */
function loadTpm(path: string | undefined): Tpm {
  if (path === undefined || !existsSync(path)) return new Tpm();
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UserError(
      `cannot read TPM state file ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  try {
    return new Tpm({ state: parseState(bytes) });
  } catch (e) {
    if (e instanceof StateFormatError) throw new UserError(`${path}: ${e.message}`);
    throw e;
  }
}

function saveState(tpm: Tpm, path: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, serializeState(tpm.state));
  renameSync(tmp, path);
}

export function addTpmCommands(program: Command, io: CliIo): void {
  const tpm = program
    .command('tpm')
    .description('a TPM 2.0 in software (the engine the vTPM uses)');
  tpm
    .command('serve')
    .description(
      'serve a TPM 2.0 on the TCG simulator socket protocol (command port, platform port = port + 1); ' +
        'stops on SIGINT/SIGTERM or a platform STOP',
    )
    .option('--port <port>', 'command port (the platform port is the next one)', '2321')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--state <file>',
      'persistent TPM state: read at start (manufactured if absent), kept up to date',
    )
    .action(async (opts: ServeOptions) => {
      const port = parsePort(opts.port);
      const engine = loadTpm(opts.state);
      // Powered on from the start, so raw-mode clients (swtpm's TCTI) need no platform port.
      engine.powerOn();
      const path = opts.state;
      const persist = path === undefined ? undefined : () => saveState(engine, path);
      persist?.();
      engine.takeDirty();
      engine.onInternalError = (e) =>
        io.err(
          `svsm tpm: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
        );
      let server;
      try {
        server = await startTpmServer({
          tpm: engine,
          port,
          host: opts.host,
          ...(persist ? { persist } : {}),
        });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? String(e);
        throw new UserError(`cannot listen on ${opts.host}:${port} and ${port + 1} (${code})`);
      }
      io.out(
        `svsm tpm: listening on ${server.host}:${server.commandPort} (platform port ${server.platformPort})` +
          (path === undefined ? ', state in memory only' : `, state in ${path}`),
      );
      const onSignal = (): void => void server.close();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      await server.stopped;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await server.close();
      persist?.();
    });
}
