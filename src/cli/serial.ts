// The outside end of the guest's COM1 for `svsm run --serial`: where the 8250's output goes and
// where its input comes from.
//   stdio       output to the terminal, line by line among the host's log lines (an SVSM panic's
//               backtrace mapped to TypeScript lines); input from standard input. The default.
//   file:PATH   output written to PATH (created or truncated), byte for byte; no input.
//   tcp:PORT    a server on 127.0.0.1:PORT; the VM starts once a client connects; output to the
//               client, input from it (as QEMU's `-serial tcp::PORT,server`).
//   none        output dropped, no input.
// Input waits in a queue and reaches the UART between scheduler slices, as much as its receive
// FIFO holds (`pump`); a socket is paused while the queue is full.

import { closeSync, openSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Uart8250 } from '../host/devices/uart8250.js';
import { UserError } from './io.js';

export type SerialSpec =
  | { readonly kind: 'stdio' }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'tcp'; readonly port: number }
  | { readonly kind: 'none' };

export const SERIAL_HELP =
  "where COM1 goes: 'stdio' (the terminal, with input from stdin), 'file:PATH' (output to PATH), " +
  "'tcp:PORT' (a server on 127.0.0.1:PORT; the VM starts when a client connects; both " +
  "directions), or 'none'";

export function parseSerialSpec(text: string): SerialSpec {
  if (text === 'stdio' || text === 'none') return { kind: text };
  if (text.startsWith('file:') && text.length > 'file:'.length)
    return { kind: 'file', path: text.slice('file:'.length) };
  if (text.startsWith('tcp:')) {
    const port = text.slice('tcp:'.length);
    const n = Number(port);
    if (/^[0-9]+$/.test(port) && n >= 1 && n <= 65535) return { kind: 'tcp', port: n };
    throw new UserError(`--serial tcp:PORT needs a port 1..65535, got "${port}"`);
  }
  throw new UserError(`--serial must be stdio, file:PATH, tcp:PORT or none, got "${text}"`);
}

/** Input held for the UART at most; beyond it a socket is paused (stdin data is dropped). */
export const SERIAL_INPUT_LIMIT = 64 * 1024;

export interface SerialOptions {
  /** A complete line of output for 'stdio' (without the newline). */
  readonly onLine: (line: string) => void;
  /** Standard input for 'stdio' (none: no input). */
  readonly stdin?: Readable;
  /** Told where a tcp server listens, before it waits for the client. */
  readonly onListening?: (port: number) => void;
}

export class SerialPort {
  private readonly queue: number[] = [];
  private readonly closers: (() => void)[] = [];
  private paused: (() => void) | null = null;
  private line: number[] = [];
  private flushLine: ((line: string) => void) | null = null;
  /** Bytes dropped because the input queue was full. */
  dropped = 0;

  /** A port whose output goes to `sink` (use `open` for the kinds above). */
  constructor(private readonly sink: (bytes: Uint8Array) => void) {}

  /** Opens the port; for tcp, resolves once a client has connected. */
  static async open(spec: SerialSpec, o: SerialOptions): Promise<SerialPort> {
    switch (spec.kind) {
      case 'none':
        return new SerialPort(() => undefined);
      case 'stdio': {
        const port: SerialPort = new SerialPort((bytes) => port.toLines(bytes));
        port.flushLine = o.onLine;
        const stdin = o.stdin;
        if (stdin !== undefined) {
          const onData = (chunk: Buffer | string): void => void port.enqueue(Buffer.from(chunk));
          stdin.on('data', onData);
          port.onClose(() => {
            stdin.off('data', onData);
            stdin.pause();
          });
        }
        return port;
      }
      case 'file': {
        let fd: number;
        try {
          fd = openSync(spec.path, 'w');
        } catch (e) {
          throw new UserError(`cannot open the serial file ${spec.path}: ${(e as Error).message}`);
        }
        const port = new SerialPort((bytes) => void writeSync(fd, bytes));
        port.onClose(() => closeSync(fd));
        return port;
      }
      case 'tcp':
        return openTcp(spec.port, o);
    }
  }

  /** Bytes the guest transmitted. */
  write(bytes: Uint8Array): void {
    this.sink(bytes);
  }

  /** Input waiting for the UART. */
  get pending(): number {
    return this.queue.length;
  }

  /** Queues bytes from outside; false once the queue is full (the rest is dropped). */
  enqueue(bytes: Uint8Array): boolean {
    for (const b of bytes) {
      if (this.queue.length >= SERIAL_INPUT_LIMIT) {
        this.dropped++;
        continue;
      }
      this.queue.push(b);
    }
    return this.queue.length < SERIAL_INPUT_LIMIT;
  }

  /** Moves queued input into the UART, as much as its receiver holds; returns the bytes moved. */
  pump(uart: Uart8250): number {
    const room = Math.min(uart.receiveRoom, this.queue.length);
    if (room <= 0) return 0;
    const taken = uart.receive(Uint8Array.from(this.queue.splice(0, room)));
    if (this.paused !== null && this.queue.length < SERIAL_INPUT_LIMIT / 2) {
      const resume = this.paused;
      this.paused = null;
      resume();
    }
    return taken;
  }

  onClose(release: () => void): void {
    this.closers.push(release);
  }

  /** Prints a partial last line (stdio) and releases the file, socket or stdin. */
  close(): void {
    if (this.flushLine !== null && this.line.length > 0) {
      this.flushLine(Buffer.from(this.line).toString('utf8'));
      this.line = [];
    }
    for (const c of this.closers.splice(0)) c();
  }

  private toLines(bytes: Uint8Array): void {
    for (const b of bytes) {
      if (b === 0x0a) {
        this.flushLine?.(Buffer.from(this.line).toString('utf8'));
        this.line = [];
      } else this.line.push(b);
    }
  }

  /** For tcp: stop reading the socket until `pump` has drained half the queue. */
  pauseUntilDrained(pause: () => void, resume: () => void): void {
    pause();
    this.paused = resume;
  }
}

async function openTcp(portNumber: number, o: SerialOptions): Promise<SerialPort> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new UserError(`cannot listen on 127.0.0.1:${portNumber}: ${e.code ?? e.message}`)),
    );
    server.listen(portNumber, '127.0.0.1', () => resolve());
  });
  o.onListening?.(portNumber);
  const socket = await new Promise<Socket>((resolve) => server.once('connection', resolve));
  // One client: later ones are refused.
  server.on('connection', (s: Socket) => s.destroy());
  socket.setNoDelay(true);
  const port = new SerialPort((bytes) => {
    if (!socket.destroyed) socket.write(bytes);
  });
  socket.on('data', (chunk: Buffer) => {
    if (!port.enqueue(chunk))
      port.pauseUntilDrained(
        () => socket.pause(),
        () => socket.resume(),
      );
  });
  socket.on('error', () => undefined); // a client that goes away only loses its output
  port.onClose(() => {
    socket.end();
    server.close();
  });
  return port;
}
