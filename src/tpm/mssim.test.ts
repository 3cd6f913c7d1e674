import { describe, expect, it } from 'vitest';
import { CommandConnection, PlatformConnection, SimulatorPlatform, TPM_SIGNAL } from './mssim.js';
import { Tpm } from './tpm.js';

const u32 = (...vs: number[]): Uint8Array => {
  const b = new Uint8Array(4 * vs.length);
  const view = new DataView(b.buffer);
  vs.forEach((v, i) => view.setUint32(4 * i, v));
  return b;
};
const join = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** TPM2_Startup(CLEAR) and TPM2_GetRandom(4) as bare commands. */
const STARTUP = Uint8Array.from(Buffer.from('80010000000c000001440000', 'hex'));
const GET_RANDOM = Uint8Array.from(Buffer.from('80010000000c0000017b0004', 'hex'));

function platform(powered = true): SimulatorPlatform {
  const tpm = new Tpm({ random: (n) => new Uint8Array(n).fill(7), now: () => 0 });
  if (powered) tpm.powerOn();
  return new SimulatorPlatform(tpm);
}

/** SEND_COMMAND: u32 8 | u8 locality | u32 length | command. */
const send = (command: Uint8Array, locality = 0): Uint8Array =>
  join(u32(TPM_SIGNAL.SEND_COMMAND), Uint8Array.of(locality), u32(command.length), command);

describe('mssim command port framing', () => {
  it('SEND_COMMAND replies u32 length | response | u32 0, however the request is split', () => {
    const request = join(send(STARTUP), send(GET_RANDOM));
    const whole = new CommandConnection(platform());
    const replies = whole.feed(request).reply;
    expect(replies.length).toBe(6);
    expect(hex(join(...replies.slice(0, 3)))).toBe(
      '0000000a' + '80010000000a00000000' + '00000000',
    );
    // The same bytes one at a time (tpm2-tss writes the 9-byte prefix and the command apart).
    const split = new CommandConnection(platform());
    const bytewise: Uint8Array[] = [];
    for (const b of request) bytewise.push(...split.feed(Uint8Array.of(b)).reply);
    expect(bytewise.map(hex)).toEqual(replies.map(hex));
    // GetRandom(4): a 16-byte response.
    expect(hex(replies[3]!)).toBe('00000010');
    expect(hex(replies[5]!)).toBe('00000000');
  });

  it('a connection that starts with a TPM tag is raw: bare commands and bare responses', () => {
    const conn = new CommandConnection(platform());
    const out = conn.feed(join(STARTUP, GET_RANDOM.subarray(0, 5)));
    expect(out.reply.map(hex)).toEqual(['80010000000a00000000']);
    const rest = conn.feed(GET_RANDOM.subarray(5));
    expect(rest.reply.length).toBe(1);
    expect(hex(rest.reply[0]!).slice(0, 20)).toBe('80010000001000000000');
  });

  it('REMOTE_HANDSHAKE answers version 1 and flags 0x0d; version 0 closes', () => {
    const out = new CommandConnection(platform()).feed(u32(TPM_SIGNAL.REMOTE_HANDSHAKE, 1));
    expect(hex(join(...out.reply))).toBe('00000001' + '0000000d' + '00000000');
    const bad = new CommandConnection(platform()).feed(u32(TPM_SIGNAL.REMOTE_HANDSHAKE, 0));
    expect(bad.close).toBe(true);
    expect(bad.reply.length).toBe(0);
  });

  it('SESSION_END closes without a reply, STOP also stops, an unknown code closes', () => {
    const end = new CommandConnection(platform()).feed(u32(TPM_SIGNAL.SESSION_END));
    expect([end.reply.length, end.close, end.stop]).toEqual([0, true, false]);
    const stop = new CommandConnection(platform()).feed(u32(TPM_SIGNAL.STOP));
    expect([stop.close, stop.stop]).toEqual([true, true]);
    const unknown = new CommandConnection(platform()).feed(u32(99));
    expect(unknown.close).toBe(true);
  });

  it('a command while powered off gets a zero-length response', () => {
    const out = new CommandConnection(platform(false)).feed(send(STARTUP));
    expect(hex(join(...out.reply))).toBe('00000000' + '00000000');
  });

  it('a length over 64 KiB closes the connection instead of buffering it', () => {
    const out = new CommandConnection(platform()).feed(
      join(u32(TPM_SIGNAL.SEND_COMMAND), Uint8Array.of(0), u32(0x20000)),
    );
    expect(out.close).toBe(true);
  });
});

describe('mssim platform port', () => {
  it('POWER_ON powers the TPM once and answers u32 0; POWER_OFF then POWER_ON needs Startup again', () => {
    const p = platform(false);
    const conn = new PlatformConnection(p);
    expect(hex(join(...conn.feed(u32(TPM_SIGNAL.POWER_ON, TPM_SIGNAL.NV_ON)).reply))).toBe(
      '0000000000000000',
    );
    expect(p.tpm.machine.powered).toBe(true);
    expect(p.nvOn).toBe(true);
    const cmd = new CommandConnection(p);
    cmd.feed(STARTUP);
    // A second POWER_ON must not reset a running TPM.
    conn.feed(u32(TPM_SIGNAL.POWER_ON));
    expect(p.tpm.machine.started).toBe(true);
    conn.feed(u32(TPM_SIGNAL.POWER_OFF, TPM_SIGNAL.POWER_ON));
    expect(p.tpm.machine.started).toBe(false);
  });

  it('GET_COMMAND_RESPONSE_SIZES gives 4096/4096; an unknown code answers 1 and closes', () => {
    const sizes = new PlatformConnection(platform()).feed(
      u32(TPM_SIGNAL.GET_COMMAND_RESPONSE_SIZES),
    );
    expect(hex(join(...sizes.reply))).toBe('00000008' + '00001000' + '00001000' + '00000000');
    const unknown = new PlatformConnection(platform()).feed(u32(77));
    expect(hex(join(...unknown.reply))).toBe('00000001');
    expect(unknown.close).toBe(true);
  });
});
