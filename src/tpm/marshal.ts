// Big-endian TPM marshalling (Part 2, section 4 and Part 3, section 4): a Reader that fails with
// TPM_RC_INSUFFICIENT instead of reading past its end, and a growable Writer.

import { RC } from './constants.js';
import { fail, rcParam, TpmError } from './errors.js';

export class Reader {
  private pos = 0;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private take(n: number): number {
    if (n > this.end - this.pos) fail(RC.INSUFFICIENT);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.buf[this.take(1)]!;
  }

  u16(): number {
    const at = this.take(2);
    return (this.buf[at]! << 8) | this.buf[at + 1]!;
  }

  u32(): number {
    const at = this.take(4);
    const b = this.buf;
    return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  /** A copy of the next n bytes. */
  bytes(n: number): Uint8Array {
    const at = this.take(n);
    return this.buf.slice(at, at + n);
  }

  /** A TPM2B: u16 size and that many bytes; `max` bounds the size (else TPM_RC_SIZE). */
  b2(max = 0xffff): Uint8Array {
    const n = this.u16();
    if (n > max) fail(RC.SIZE);
    return this.bytes(n);
  }

  /** A reader over a TPM2B-wrapped structure; the structure must fill the size exactly. */
  sized<T>(read: (r: Reader) => T, allowEmpty = false): T | undefined {
    const n = this.u16();
    if (n === 0 && allowEmpty) return undefined;
    const at = this.take(n);
    const inner = new Reader(this.buf, at, at + n);
    const v = read(inner);
    if (inner.remaining !== 0) fail(RC.SIZE);
    return v;
  }

  /** Fails with TPM_RC_SIZE unless every byte was consumed. */
  done(): void {
    if (this.remaining !== 0) fail(RC.SIZE);
  }
}

export class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private len = 0;

  get length(): number {
    return this.len;
  }

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1);
    this.view.setUint8(at, v);
    return this;
  }

  u16(v: number): this {
    const at = this.room(2);
    this.view.setUint16(at, v);
    return this;
  }

  u32(v: number): this {
    const at = this.room(4);
    this.view.setUint32(at, v >>> 0);
    return this;
  }

  u64(v: bigint): this {
    const at = this.room(8);
    this.view.setBigUint64(at, v);
    return this;
  }

  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }

  /** A TPM2B of raw bytes. */
  b2(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  /** A TPM2B around a structure written by `write`. */
  sized(write: (w: Writer) => void): this {
    const at = this.room(2);
    const start = this.len;
    write(this);
    this.view.setUint16(at, this.len - start);
    return this;
  }

  /** Overwrites a u32 already written at `at`. */
  patchU32(at: number, v: number): void {
    this.view.setUint32(at, v >>> 0);
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** Empties the writer, keeping its buffer (the dispatcher reuses one per TPM). */
  reset(): this {
    this.len = 0;
    return this;
  }
}

/** Marshals one structure to fresh bytes. */
export function marshal(write: (w: Writer) => void): Uint8Array {
  const w = new Writer();
  write(w);
  return w.finish();
}

export type Unmarshal<T> = (r: Reader) => T;

/**
 * Reads a command's parameters in order. An unnumbered format-1 error inside parameter n (e.g.
 * TPM_RC_INSUFFICIENT when it is cut short) becomes that error for parameter n, and bytes left
 * after the last parameter are TPM_RC_SIZE (Part 3, section 5.3).
 */
export function params<T extends unknown[]>(
  r: Reader,
  ...fns: { [K in keyof T]: Unmarshal<T[K]> }
): T {
  const out: unknown[] = [];
  // A plain loop with one try block: this runs for every command.
  let i = 0;
  try {
    for (; i < fns.length; i++) out.push(fns[i]!(r));
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(rcParam(e.rc, i + 1));
    throw e;
  }
  r.done();
  return out as T;
}

export const u8: Unmarshal<number> = (r) => r.u8();
export const u16: Unmarshal<number> = (r) => r.u16();
export const u32: Unmarshal<number> = (r) => r.u32();
export const u64: Unmarshal<bigint> = (r) => r.u64();
/** TPM2B with a bound on the size (TPM2B_DIGEST 64, TPM2B_MAX_BUFFER 1024, ...). */
export const b2 =
  (max: number): Unmarshal<Uint8Array> =>
  (r) =>
    r.b2(max);
/** TPMI_YES_NO: only 0 and 1. */
export const yesNo: Unmarshal<boolean> = (r) => {
  const v = r.u8();
  if (v > 1) fail(RC.VALUE);
  return v === 1;
};
