// The TCG simulator ("mssim") socket protocol, as a byte-stream state machine per connection so
// that it is testable without sockets. Command port: SEND_COMMAND (8) and friends; platform port:
// power, NV, cancel and reset signals. A command-port connection whose first two bytes are a TPM
// tag (0x8001/0x8002) is in raw mode, as swtpm's TCTI speaks: bare commands and responses.
// Reference: the TCG TPM 2.0 simulator's TcpServer.c and tpm2-tss tcti-mssim.

import type { Tpm } from './tpm.js';

export const TPM_SIGNAL = {
  POWER_ON: 1,
  POWER_OFF: 2,
  PHYS_PRES_ON: 3,
  PHYS_PRES_OFF: 4,
  HASH_START: 5,
  HASH_DATA: 6,
  HASH_END: 7,
  SEND_COMMAND: 8,
  CANCEL_ON: 9,
  CANCEL_OFF: 10,
  NV_ON: 11,
  NV_OFF: 12,
  KEY_CACHE_ON: 13,
  KEY_CACHE_OFF: 14,
  REMOTE_HANDSHAKE: 15,
  SET_ALTERNATIVE_RESULT: 16,
  SESSION_END: 20,
  STOP: 21,
  GET_COMMAND_RESPONSE_SIZES: 25,
  RESET: 17,
  RESTART: 18,
} as const;

/** What the server should do with a connection after feeding it bytes. */
export interface ConnectionOutput {
  reply: Uint8Array[];
  close: boolean;
  stop: boolean;
}

const u32 = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
};

/** The simulator's state shared by both ports: power, NV availability, cancel flag. */
export class SimulatorPlatform {
  nvOn = false;
  cancel = false;
  constructor(readonly tpm: Tpm) {}
}

abstract class Connection {
  protected buf: Uint8Array = new Uint8Array(0);

  constructor(protected readonly platform: SimulatorPlatform) {}

  /** Appends received bytes and handles every complete request in the buffer. */
  feed(data: Uint8Array): ConnectionOutput {
    if (this.buf.length === 0) {
      // The common case (a whole request in one read): no copy.
      this.buf = data;
    } else {
      const merged = new Uint8Array(this.buf.length + data.length);
      merged.set(this.buf);
      merged.set(data, this.buf.length);
      this.buf = merged;
    }
    const out: ConnectionOutput = { reply: [], close: false, stop: false };
    for (;;) {
      const used = this.step(out);
      if (used === 0) break;
      this.buf = this.buf.subarray(used);
      if (out.close) break;
    }
    return out;
  }

  protected u32At(at: number): number | undefined {
    if (this.buf.length < at + 4) return undefined;
    const b = this.buf;
    return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  }

  /** Handles one request if complete; returns the bytes it consumed (0: need more). */
  protected abstract step(out: ConnectionOutput): number;
}

export class CommandConnection extends Connection {
  private raw: boolean | undefined;

  protected step(out: ConnectionOutput): number {
    if (this.raw === undefined) {
      if (this.buf.length < 2) return 0;
      const tag = (this.buf[0]! << 8) | this.buf[1]!;
      this.raw = tag === 0x8001 || tag === 0x8002;
    }
    return this.raw ? this.rawStep(out) : this.mssimStep(out);
  }

  private run(command: Uint8Array, locality: number): Uint8Array {
    const tpm = this.platform.tpm;
    if (!tpm.machine.powered) return new Uint8Array(0);
    return tpm.execute(command.slice(), locality);
  }

  private rawStep(out: ConnectionOutput): number {
    const size = this.u32At(2);
    if (size === undefined || this.buf.length < size) return 0;
    if (size < 10) {
      out.close = true;
      return this.buf.length;
    }
    out.reply.push(this.run(this.buf.subarray(0, size), 0));
    return size;
  }

  private mssimStep(out: ConnectionOutput): number {
    const code = this.u32At(0);
    if (code === undefined) return 0;
    switch (code) {
      case TPM_SIGNAL.SEND_COMMAND: {
        if (this.buf.length < 9) return 0;
        const locality = this.buf[4]!;
        const len = this.u32At(5)!;
        if (len > 1 << 16) {
          out.close = true;
          return this.buf.length;
        }
        if (this.buf.length < 9 + len) return 0;
        const rsp = this.run(this.buf.subarray(9, 9 + len), locality);
        out.reply.push(u32(rsp.length), rsp, u32(0));
        return 9 + len;
      }
      case TPM_SIGNAL.REMOTE_HANDSHAKE: {
        if (this.buf.length < 8) return 0;
        const clientVersion = this.u32At(4)!;
        if (clientVersion === 0) {
          out.close = true;
          return 8;
        }
        // Server version 1; flags: platform available (1), raw mode (4), physical presence (8).
        out.reply.push(u32(1), u32(0x0d), u32(0));
        return 8;
      }
      case TPM_SIGNAL.SET_ALTERNATIVE_RESULT: {
        if (this.buf.length < 8) return 0;
        out.reply.push(u32(0));
        return 8;
      }
      case TPM_SIGNAL.HASH_DATA: {
        const len = this.u32At(4);
        if (len === undefined || this.buf.length < 8 + len) return 0;
        out.reply.push(u32(0));
        return 8 + len;
      }
      case TPM_SIGNAL.HASH_START:
      case TPM_SIGNAL.HASH_END:
        out.reply.push(u32(0));
        return 4;
      case TPM_SIGNAL.SESSION_END:
        out.close = true;
        return 4;
      case TPM_SIGNAL.STOP:
        out.close = true;
        out.stop = true;
        return 4;
      default:
        out.close = true;
        return this.buf.length;
    }
  }
}

export class PlatformConnection extends Connection {
  protected step(out: ConnectionOutput): number {
    const code = this.u32At(0);
    if (code === undefined) return 0;
    const tpm = this.platform.tpm;
    switch (code) {
      case TPM_SIGNAL.POWER_ON:
        tpm.powerOn();
        break;
      case TPM_SIGNAL.POWER_OFF:
        tpm.powerOff();
        break;
      case TPM_SIGNAL.RESET:
        tpm.reset();
        break;
      case TPM_SIGNAL.NV_ON:
        this.platform.nvOn = true;
        break;
      case TPM_SIGNAL.NV_OFF:
        this.platform.nvOn = false;
        break;
      case TPM_SIGNAL.CANCEL_ON:
        this.platform.cancel = true;
        break;
      case TPM_SIGNAL.CANCEL_OFF:
        this.platform.cancel = false;
        break;
      case TPM_SIGNAL.PHYS_PRES_ON:
      case TPM_SIGNAL.PHYS_PRES_OFF:
      case TPM_SIGNAL.KEY_CACHE_ON:
      case TPM_SIGNAL.KEY_CACHE_OFF:
      case TPM_SIGNAL.RESTART:
        break;
      case TPM_SIGNAL.GET_COMMAND_RESPONSE_SIZES:
        out.reply.push(u32(8), u32(4096), u32(4096), u32(0));
        return 4;
      case TPM_SIGNAL.SESSION_END:
        out.close = true;
        return 4;
      case TPM_SIGNAL.STOP:
        out.close = true;
        out.stop = true;
        return 4;
      default:
        out.reply.push(u32(1));
        out.close = true;
        return this.buf.length;
    }
    out.reply.push(u32(0));
    return 4;
  }
}
