import { describe, expect, it } from 'vitest';
import { derIa5String, derInteger, derOctetString, derTlv } from './der.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('DER encodings (X.690)', () => {
  it("INTEGER is minimal two's complement, with a 0x00 before a high bit", () => {
    expect(hex(derInteger(0))).toBe('020100');
    expect(hex(derInteger(0x73))).toBe('020173');
    expect(hex(derInteger(0x80))).toBe('02020080');
    expect(hex(derInteger(0x10000n))).toBe('0203010000');
    expect(() => derInteger(-1)).toThrow(RangeError);
  });

  it('lengths of 128 and more use the long form', () => {
    expect(hex(derOctetString(new Uint8Array(127))).slice(0, 4)).toBe('047f');
    expect(hex(derTlv(0x04, new Uint8Array(128))).slice(0, 6)).toBe('048180');
    expect(hex(derTlv(0x04, new Uint8Array(300))).slice(0, 8)).toBe('0482012c');
  });

  it('IA5String takes ASCII only', () => {
    expect(hex(derIa5String('Milan-B0'))).toBe('16084d696c616e2d4230');
    expect(() => derIa5String('Mílan')).toThrow(RangeError);
  });
});
