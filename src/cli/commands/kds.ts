// `svsm kds serve`: this machine's AMD Key Distribution Service on a local port (see
// src/host/kds-server.ts), so verifiers that fetch certificates from KDS can check reports the
// simulated machine signs. Runs until SIGINT or SIGTERM, then closes and exits 0.

import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { bytesToHex, TCB_VERSION } from '../../arch/index.js';
import { createKdsServer, kdsCertChainPath, kdsVcekPath } from '../../host/kds-server.js';
import { MACHINE_DIR_NAME, MACHINE_IDENTITY_FILE_NAME } from '../../host/machine-identity-file.js';
import { loadOrCreateIdentity } from '../machine-identity.js';
import { type CliIo, UserError } from '../io.js';

export const KDS_DEFAULT_PORT = 8080;
export const KDS_DEFAULT_HOST = '127.0.0.1';
/** How long open connections may take to finish after a stop signal before they are cut. */
const CLOSE_GRACE_MS = 2000;

const HELP_AFTER = `
Serves, with AMD KDS's URL layout, the certificates of the simulated machine whose identity is
in --machine-dir (created there, with a new chip secret, ARK and ASK, if there is none):
  GET /vcek/v1/<product>/cert_chain    the ASK then the ARK (PEM)
  GET /vcek/v1/<product>/<hwid>?blSPL=<n>&teeSPL=<n>&snpSPL=<n>&ucodeSPL=<n>
                                       the VCEK for that TCB (DER)
The exact VCEK URL of this machine's installed TCB is printed at start. Point a verifier's KDS
base URL (https://kdsintf.amd.com) at the printed http://host:port instead.

Only 127.0.0.1 listens by default; another --host prints a warning. --port 0 picks a free
port (printed). Stop with Ctrl-C (SIGINT) or SIGTERM: the server closes and exits 0.
Exit code 2: a bad --port, a port in use, an address that cannot be bound, or an unreadable
machine identity.`;

export interface ServeKdsOptions {
  readonly port: number;
  readonly host: string;
  /** The directory holding identity.json. */
  readonly machineDir: string;
}

/** A TCP port from the command line: an integer 0..65535 (0: any free port). */
export function parsePort(text: string): number {
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n <= 0xffff)) throw new UserError(`--port must be an integer 0..65535, got "${text}"`);
  return n;
}

function errnoCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

function listenError(e: unknown, host: string, port: number): Error {
  switch (errnoCode(e)) {
    case 'EADDRINUSE':
      return new UserError(
        `port ${port} on ${host} is already in use; choose another with --port, or --port 0 for a free one`,
      );
    case 'EACCES':
      return new UserError(
        `no permission to listen on port ${port} of ${host} (ports below 1024 need privileges)`,
      );
    case 'EADDRNOTAVAIL':
      return new UserError(`cannot listen on ${host}: it is not an address of this machine`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(`cannot listen on ${host}: the host name does not resolve`);
    default:
      return e instanceof Error ? e : new Error(String(e));
  }
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}

function urlHost(address: string, family: string): string {
  return family === 'IPv6' ? `[${address}]` : address;
}

function describeTcb(tcb: bigint): string {
  const s = TCB_VERSION.decode(tcb);
  return `boot loader ${s.bootLoader}, TEE ${s.tee}, SNP ${s.snp}, microcode ${s.microcode}`;
}

/**
 * Serves the machine's KDS until `stop` aborts, then closes the server. Throws UserError if it
 * cannot start (identity, port, address).
 */
export async function serveKds(opts: ServeKdsOptions, io: CliIo, stop: AbortSignal): Promise<void> {
  const { identity, path, created } = loadOrCreateIdentity(opts.machineDir, io, 'svsm kds');
  io.out(
    `svsm kds: machine identity ${path} (${created ? 'created now' : 'loaded'}): ` +
      `${identity.productName}, chip ${bytesToHex(identity.chipId).slice(0, 16)}..., ` +
      `installed TCB ${describeTcb(identity.tcb)}`,
  );

  const server = createKdsServer(identity, {
    log: (line) => io.out(`${new Date().toISOString()} ${line}`),
  });
  await new Promise<void>((resolveListen, rejectListen) => {
    const onError = (e: unknown): void => {
      server.off('listening', onListening);
      rejectListen(listenError(e, opts.host, opts.port));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolveListen();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port: opts.port, host: opts.host });
  });
  // A listening server can still fail (e.g. out of file descriptors on accept): report, go on.
  server.on('error', (e) => io.err(`svsm kds: server error: ${e.message}`));

  const address = server.address() as AddressInfo;
  const base = `http://${urlHost(address.address, address.family)}:${address.port}`;
  if (!isLoopback(address.address)) {
    io.err(
      `svsm: warning: listening on ${address.address}, which other machines may reach; ` +
        'this KDS has no TLS and serves a simulated chip to anyone who asks',
    );
  }
  io.out(`svsm kds: listening on ${base} (port ${address.port}); stop with Ctrl-C`);
  io.out(`  cert_chain  ${base}${kdsCertChainPath(identity.product)}`);
  io.out(`  vcek        ${base}${kdsVcekPath(identity.product, identity.chipId, identity.tcb)}`);
  io.out('  (the VCEK of another TCB: the same URL with other SPLs)');

  await new Promise<void>((resolveStop) => {
    if (stop.aborted) resolveStop();
    else stop.addEventListener('abort', () => resolveStop(), { once: true });
  });
  await new Promise<void>((resolveClose, rejectClose) => {
    const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    server.close((e) => {
      clearTimeout(cut);
      if (e) rejectClose(e);
      else resolveClose();
    });
    server.closeIdleConnections();
  });
  io.out('svsm kds: stopped');
}

interface ServeFlags {
  port: string;
  host: string;
  machineDir?: string;
}

export function addKdsCommands(program: Command, io: CliIo): void {
  const kds = program
    .command('kds')
    .description("this machine's AMD Key Distribution Service (VCEK, ASK and ARK certificates)");

  kds
    .command('serve')
    .description("serve this machine's certificates at AMD KDS URLs on a local HTTP port")
    .option('--port <port>', 'TCP port; 0 picks a free one', String(KDS_DEFAULT_PORT))
    .option('--host <host>', 'address to listen on', KDS_DEFAULT_HOST)
    .option(
      '--machine-dir <dir>',
      `the machine's directory, holding ${MACHINE_IDENTITY_FILE_NAME} (default: ./${MACHINE_DIR_NAME})`,
    )
    .addHelpText('after', HELP_AFTER)
    .action(async (flags: ServeFlags) => {
      const opts: ServeKdsOptions = {
        port: parsePort(flags.port),
        host: flags.host,
        machineDir: resolve(flags.machineDir ?? MACHINE_DIR_NAME),
      };
      const controller = new AbortController();
      const onSignal = (): void => controller.abort();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await serveKds(opts, io, controller.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
