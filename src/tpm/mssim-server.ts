// The mssim protocol over TCP: a command port and, at port + 1, the platform port. Commands from
// all connections run one at a time on one TPM (each runs to completion synchronously).

import { createServer, type Server, type Socket } from 'node:net';
import {
  CommandConnection,
  PlatformConnection,
  SimulatorPlatform,
  type ConnectionOutput,
} from './mssim.js';
import type { Tpm } from './tpm.js';

export interface TpmServerOptions {
  readonly tpm: Tpm;
  /** Command port; 0 picks a free one (the platform port is always command + 1 when given). */
  readonly port: number;
  readonly host: string;
  /** Called after every request that changed the TPM's persistent state. */
  readonly persist?: () => void;
}

export interface TpmServer {
  readonly host: string;
  readonly commandPort: number;
  readonly platformPort: number;
  /** Resolves when a client sent STOP or close() was called. */
  readonly stopped: Promise<void>;
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
    });
  });
}

export async function startTpmServer(options: TpmServerOptions): Promise<TpmServer> {
  const platform = new SimulatorPlatform(options.tpm);
  const sockets = new Set<Socket>();
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));

  const serve = (make: () => CommandConnection | PlatformConnection) => (socket: Socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const conn = make();
    socket.on('data', (data: Buffer) => {
      const out: ConnectionOutput = conn.feed(
        new Uint8Array(data.buffer, data.byteOffset, data.length),
      );
      if (options.tpm.takeDirty()) options.persist?.();
      // One write per batch of requests (one segment with setNoDelay), without a copy when the
      // batch has a single reply.
      if (out.reply.length === 1) {
        const r = out.reply[0]!;
        socket.write(Buffer.from(r.buffer, r.byteOffset, r.length));
      } else if (out.reply.length > 1) {
        socket.write(Buffer.concat(out.reply));
      }
      if (out.close) socket.end();
      if (out.stop) stop();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => sockets.delete(socket));
  };

  const commandServer = createServer(serve(() => new CommandConnection(platform)));
  const platformServer = createServer(serve(() => new PlatformConnection(platform)));
  const commandPort = await listen(commandServer, options.port, options.host);
  let platformPort: number;
  try {
    platformPort = await listen(
      platformServer,
      options.port === 0 ? 0 : commandPort + 1,
      options.host,
    );
  } catch (e) {
    commandServer.close();
    throw e;
  }

  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await Promise.all(
      [commandServer, platformServer].map(
        (s) => new Promise<void>((resolve) => s.close(() => resolve())),
      ),
    );
    stop();
  };
  return { host: options.host, commandPort, platformPort, stopped, close };
}
