import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { COM1_PORT, UART_FCR, UART_LSR, Uart8250 } from '../host/devices/uart8250.js';
import { UserError } from './io.js';
import { parseSerialSpec, SERIAL_INPUT_LIMIT, SerialPort } from './serial.js';

const LSR = COM1_PORT + 5;

/** Everything the guest can read from the UART now (RBR while LSR.DR). */
function drain(uart: Uart8250): number[] {
  const got: number[] = [];
  while (uart.in(LSR, 1) & UART_LSR.DR) got.push(uart.in(COM1_PORT, 1));
  return got;
}

function fifoUart(output: (b: Uint8Array) => void = () => undefined): Uart8250 {
  const uart = new Uart8250({ output });
  uart.out(COM1_PORT + 2, 1, UART_FCR.ENABLE);
  return uart;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 10));

describe('--serial values', () => {
  it('accepts stdio, none, file:PATH and tcp:PORT', () => {
    expect(parseSerialSpec('stdio')).toEqual({ kind: 'stdio' });
    expect(parseSerialSpec('none')).toEqual({ kind: 'none' });
    expect(parseSerialSpec('file:/tmp/x:y')).toEqual({ kind: 'file', path: '/tmp/x:y' });
    expect(parseSerialSpec('tcp:4555')).toEqual({ kind: 'tcp', port: 4555 });
  });

  it('refuses anything else with a one-line UserError', () => {
    for (const bad of [
      '',
      'tty',
      'file:',
      'tcp:',
      'tcp:0',
      'tcp:65536',
      'tcp:12ab',
      'tcp:-1',
      'STDIO',
    ]) {
      expect(() => parseSerialSpec(bad)).toThrow(UserError);
      try {
        parseSerialSpec(bad);
      } catch (e) {
        expect((e as Error).message).not.toContain('\n');
      }
    }
  });
});

describe('serial sinks', () => {
  it('stdio: prints whole lines, the partial last one at close, and feeds stdin to the UART', async () => {
    const lines: string[] = [];
    const stdin = new PassThrough();
    const port = await SerialPort.open({ kind: 'stdio' }, { onLine: (l) => lines.push(l), stdin });
    port.write(new TextEncoder().encode('boot\nlogin: '));
    expect(lines).toEqual(['boot']);
    stdin.write('root\n');
    await tick();
    expect(port.pending).toBe(5);
    const uart = fifoUart();
    expect(port.pump(uart)).toBe(5);
    expect(String.fromCharCode(...drain(uart))).toBe('root\n');
    port.close();
    expect(lines).toEqual(['boot', 'login: ']);
    // After close stdin no longer reaches the port.
    stdin.write('x');
    await tick();
    expect(port.pending).toBe(0);
  });

  it('never gives the UART more than its FIFO holds; the rest waits for the next pump', async () => {
    const port = await SerialPort.open({ kind: 'none' }, { onLine: () => undefined });
    port.enqueue(new Uint8Array(40).map((_, i) => i));
    const uart = fifoUart();
    expect(port.pump(uart)).toBe(16);
    expect(port.pump(uart)).toBe(0); // the FIFO is full: no overrun
    expect(uart.in(LSR, 1) & UART_LSR.OE).toBe(0);
    const first = drain(uart);
    expect(port.pump(uart)).toBe(16);
    const second = drain(uart);
    port.pump(uart);
    expect([...first, ...second, ...drain(uart)]).toEqual([...Array(40).keys()]);
  });

  it('drops input beyond the queue limit and counts it', async () => {
    const port = await SerialPort.open({ kind: 'none' }, { onLine: () => undefined });
    expect(port.enqueue(new Uint8Array(SERIAL_INPUT_LIMIT + 10))).toBe(false);
    expect(port.pending).toBe(SERIAL_INPUT_LIMIT);
    expect(port.dropped).toBe(10);
  });

  it('file: writes the bytes as sent, with no line handling', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'serial-')), 'com1.log');
    const port = await SerialPort.open({ kind: 'file', path }, { onLine: () => undefined });
    port.write(new Uint8Array([0x41, 0x0a, 0x00, 0xff]));
    port.write(new TextEncoder().encode('$ '));
    port.close();
    expect([...readFileSync(path)]).toEqual([0x41, 0x0a, 0x00, 0xff, 0x24, 0x20]);
  });

  it('file: an unwritable path is a UserError', async () => {
    await expect(
      SerialPort.open({ kind: 'file', path: '/nonexistent-dir/x' }, { onLine: () => undefined }),
    ).rejects.toThrow(/cannot open the serial file/);
  });

  it('tcp: waits for a client, sends it the output and takes its input', async () => {
    const portNumber = await freePort();
    let listening = 0;
    const opening = SerialPort.open(
      { kind: 'tcp', port: portNumber },
      { onLine: () => undefined, onListening: (p) => (listening = p) },
    );
    await tick();
    expect(listening).toBe(portNumber);
    const client = new Socket();
    const received: Buffer[] = [];
    client.on('data', (d: Buffer) => received.push(d));
    await new Promise<void>((r) => client.connect(portNumber, '127.0.0.1', r));
    const port = await opening;
    port.write(new TextEncoder().encode('hello\r\n'));
    client.write('ls\r');
    for (let i = 0; i < 50 && (port.pending < 3 || received.length === 0); i++) await tick();
    expect(Buffer.concat(received).toString()).toBe('hello\r\n');
    const uart = fifoUart();
    port.pump(uart);
    expect(String.fromCharCode(...drain(uart))).toBe('ls\r');
    // A second client is turned away; the first keeps the port.
    const other = new Socket();
    const closed = new Promise<void>((r) => other.on('close', () => r()));
    other.on('error', () => undefined);
    other.connect(portNumber, '127.0.0.1');
    await closed;
    const ended = new Promise<void>((r) => client.on('end', () => r()));
    port.close();
    await ended;
    client.destroy();
  });

  it('tcp: a port already in use is a UserError', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const portNumber = (busy.address() as { port: number }).port;
    await expect(
      SerialPort.open({ kind: 'tcp', port: portNumber }, { onLine: () => undefined }),
    ).rejects.toThrow(/cannot listen on 127.0.0.1:\d+: EADDRINUSE/);
    await new Promise<void>((r) => busy.close(() => r()));
  });
});
