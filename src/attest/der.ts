// A minimal strict DER reader (ITU-T X.690) for the few values the verifier decodes itself: the
// contents of AMD's KDS extensions and the RSASSA-PSS parameters of AMD's certificates. Whole
// certificates are parsed with @peculiar/asn1-x509; this covers what that library leaves as bytes.

/** Bytes that are not the DER value they should be; the message says what is wrong. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

export const DER_TAG = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  IA5_STRING: 0x16,
} as const;

/** One tag-length-value: `tag` is the identifier octet, contents are bytes[start, end). */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** The TLV at `at`, within bytes[at, limit). Only short tags and definite, minimal lengths. */
export function readTlv(bytes: Uint8Array, at = 0, limit = bytes.length): Tlv {
  if (at + 2 > limit) throw new DerError(`truncated DER value at offset ${at}`);
  const tag = bytes[at]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte DER tag at offset ${at}`);
  let len = bytes[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError(`indefinite length at offset ${at} is not DER`);
    if (n > 4) throw new DerError(`length of ${n} bytes at offset ${at} is too large`);
    if (start + n > limit) throw new DerError(`truncated DER length at offset ${at}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + bytes[start + i]!;
    if (bytes[start] === 0 || len < 0x80) {
      throw new DerError(`non-minimal DER length at offset ${at}`);
    }
    start += n;
  }
  if (start + len > limit) {
    throw new DerError(`DER value at offset ${at} claims ${len} bytes, only ${limit - start} left`);
  }
  return { tag, start, end: start + len };
}

/** The single TLV that makes up all of `bytes` (no trailing bytes allowed). */
export function readOnlyTlv(bytes: Uint8Array): Tlv {
  const tlv = readTlv(bytes);
  if (tlv.end !== bytes.length) {
    throw new DerError(`${bytes.length - tlv.end} trailing bytes after the DER value`);
  }
  return tlv;
}

/** The TLVs inside a constructed value. */
export function children(bytes: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const tlv = readTlv(bytes, at, parent.end);
    out.push(tlv);
    at = tlv.end;
  }
  return out;
}

function expectTag(tlv: Tlv, tag: number, what: string): void {
  if (tlv.tag !== tag) {
    throw new DerError(
      `expected ${what} (tag 0x${tag.toString(16).padStart(2, '0')}), found tag 0x${tlv.tag.toString(16).padStart(2, '0')}`,
    );
  }
}

/** A DER INTEGER's value; refuses non-minimal encodings (two's complement, big-endian). */
export function integerValue(bytes: Uint8Array, tlv: Tlv): bigint {
  expectTag(tlv, DER_TAG.INTEGER, 'an INTEGER');
  const c = bytes.subarray(tlv.start, tlv.end);
  if (c.length === 0) throw new DerError('an INTEGER has no content bytes');
  if (c.length > 1 && ((c[0] === 0 && c[1]! < 0x80) || (c[0] === 0xff && c[1]! >= 0x80))) {
    throw new DerError('an INTEGER is not minimally encoded');
  }
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0]! >= 0x80) v -= 1n << BigInt(8 * c.length);
  return v;
}

/** The characters of an IA5String (7-bit ASCII) or UTF8String. */
export function stringValue(bytes: Uint8Array, tlv: Tlv): string {
  const c = bytes.subarray(tlv.start, tlv.end);
  if (tlv.tag === DER_TAG.IA5_STRING) {
    if (c.some((b) => b > 0x7f)) throw new DerError('an IA5String holds a byte above 0x7f');
    return String.fromCharCode(...c);
  }
  if (tlv.tag === DER_TAG.UTF8_STRING) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(c);
    } catch {
      throw new DerError('a UTF8String is not valid UTF-8');
    }
  }
  throw new DerError(`expected an IA5String or UTF8String, found tag 0x${tlv.tag.toString(16)}`);
}

/** An OBJECT IDENTIFIER in dotted form. */
export function oidValue(bytes: Uint8Array, tlv: Tlv): string {
  expectTag(tlv, DER_TAG.OID, 'an OBJECT IDENTIFIER');
  const c = bytes.subarray(tlv.start, tlv.end);
  if (c.length === 0) throw new DerError('an OBJECT IDENTIFIER has no content bytes');
  const arcs: bigint[] = [];
  let v = 0n;
  let fresh = true;
  for (const b of c) {
    if (fresh && b === 0x80) throw new DerError('an OBJECT IDENTIFIER arc is not minimal');
    v = (v << 7n) | BigInt(b & 0x7f);
    fresh = (b & 0x80) === 0;
    if (fresh) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (!fresh) throw new DerError('an OBJECT IDENTIFIER ends inside an arc');
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}
