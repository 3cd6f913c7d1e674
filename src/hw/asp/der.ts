// The few DER encodings the KDS certificates need beyond what @peculiar/asn1-x509 builds
// (X.690 section 8 and 10): the contents of AMD's extensions, written byte for byte as AMD's
// certificates carry them.

function lengthBytes(length: number): number[] {
  if (length < 0x80) return [length];
  const out: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) out.unshift(n & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV: tag byte, definite length, contents. */
export function derTlv(tag: number, contents: Uint8Array): Uint8Array {
  const len = lengthBytes(contents.length);
  const out = new Uint8Array(1 + len.length + contents.length);
  out[0] = tag;
  out.set(len, 1);
  out.set(contents, 1 + len.length);
  return out;
}

/** INTEGER of a non-negative value, minimal two's complement (0x80.. gets a leading 0x00). */
export function derInteger(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) throw new RangeError('only non-negative INTEGERs are encoded here');
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return derTlv(0x02, Uint8Array.from(bytes));
}

/** IA5String of ASCII text. */
export function derIa5String(text: string): Uint8Array {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) throw new RangeError(`not IA5 text: ${JSON.stringify(text)}`);
  }
  return derTlv(0x16, new TextEncoder().encode(text));
}

export function derOctetString(bytes: Uint8Array): Uint8Array {
  return derTlv(0x04, bytes);
}
