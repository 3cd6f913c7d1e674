import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hexToBytes } from '../arch/index.js';
import { DerError, integerValue, oidValue, readOnlyTlv, readTlv, stringValue } from './der.js';

const tlv = (hex: string): { b: Uint8Array; t: ReturnType<typeof readOnlyTlv> } => {
  const b = hexToBytes(hex);
  return { b, t: readOnlyTlv(b) };
};

describe('DER reader', () => {
  it('reads OIDs in dotted form (AMD KDS arc, secp384r1, RSASSA-PSS)', () => {
    const { b, t } = tlv('060a2b060104019c78010301');
    expect(oidValue(b, t)).toBe('1.3.6.1.4.1.3704.1.3.1');
    const p = tlv('06052b81040022');
    expect(oidValue(p.b, p.t)).toBe('1.3.132.0.34');
    const q = tlv('06092a864886f70d01010a');
    expect(oidValue(q.b, q.t)).toBe('1.2.840.113549.1.1.10');
  });

  it('reads every integer in two-complement minimal form and refuses padded ones', () => {
    fc.assert(
      fc.property(fc.bigInt(-(1n << 70n), 1n << 70n), (n) => {
        let h = (n < 0n ? (1n << 80n) + n : n).toString(16).padStart(20, '0');
        // Trim to the minimal two-complement encoding.
        while (
          h.length > 2 &&
          ((h.startsWith('00') && parseInt(h[2]!, 16) < 8) ||
            (h.startsWith('ff') && parseInt(h[2]!, 16) >= 8))
        ) {
          h = h.slice(2);
        }
        const b = hexToBytes('02' + (h.length / 2).toString(16).padStart(2, '0') + h);
        expect(integerValue(b, readOnlyTlv(b))).toBe(n);
      }),
    );
    const padded = tlv('02020001');
    expect(() => integerValue(padded.b, padded.t)).toThrow(/not minimally encoded/);
  });

  it('refuses truncated values, indefinite and non-minimal lengths, trailing bytes', () => {
    expect(() => readTlv(hexToBytes('0203'))).toThrow(DerError);
    expect(() => readTlv(hexToBytes('0405aabb'))).toThrow(/claims 5 bytes/);
    expect(() => readTlv(hexToBytes('3080'))).toThrow(/indefinite/);
    expect(() => readTlv(hexToBytes('04810101'))).toThrow(/non-minimal/);
    expect(() => readOnlyTlv(hexToBytes('020100ff'))).toThrow(/1 trailing bytes/);
    const long = new Uint8Array(3 + 200);
    long.set([0x04, 0x81, 200]);
    expect(readOnlyTlv(long)).toEqual({ tag: 4, start: 3, end: 203 });
  });

  it('reads IA5String and UTF8String and refuses 8-bit IA5', () => {
    const a = tlv('16084d696c616e2d4230');
    expect(stringValue(a.b, a.t)).toBe('Milan-B0');
    const u = tlv('0c02c3a9');
    expect(stringValue(u.b, u.t)).toBe('é');
    const bad = tlv('1601c3');
    expect(() => stringValue(bad.b, bad.t)).toThrow(/above 0x7f/);
  });
});
