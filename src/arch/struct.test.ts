import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  defineStruct,
  embed,
  FieldRangeError,
  hexToBytes,
  bytesToHex,
  LayoutError,
} from './struct.js';
import { defineBits, field, flag } from './bits.js';

const SEG = defineStruct('SEG', 0x10, {
  selector: { offset: 0x0, type: 'u16' },
  attrib: { offset: 0x2, type: 'u16' },
  limit: { offset: 0x4, type: 'u32' },
  base: { offset: 0x8, type: 'u64' },
});

const T = defineStruct('T', 0x40, {
  a: { offset: 0x00, type: 'u8' },
  b: { offset: 0x02, type: 'u16', endian: 'be' },
  c: { offset: 0x04, type: 'u32' },
  d: { offset: 0x08, type: 'u64' },
  ...embed('cs', 0x10, SEG),
  blob: { offset: 0x20, type: 'bytes', size: 0x20 },
});

describe('struct layouts', () => {
  it('reads and writes fields at their declared offsets and byte order', () => {
    const buf = T.alloc();
    T.set(buf, 'b', 0x1234);
    T.set(buf, 'c', 0xdeadbeef);
    T.set(buf, 'd', 0x0102030405060708n);
    T.set(buf, 'cs.base', 0xffff_ffff_ffff_fff0n);
    expect([...buf.subarray(2, 4)]).toEqual([0x12, 0x34]);
    expect([...buf.subarray(4, 8)]).toEqual([0xef, 0xbe, 0xad, 0xde]);
    expect(buf[8]).toBe(0x08);
    expect(buf[0x18]).toBe(0xf0);
    expect(T.get(buf, 'd')).toBe(0x0102030405060708n);
    expect(T.offset('cs.limit')).toBe(0x14);
  });

  it('honours a base offset so one layout reads an array element', () => {
    const buf = new Uint8Array(0x30);
    SEG.set(buf, 'selector', 0x8, 0x10);
    SEG.set(buf, 'selector', 0x10, 0x20);
    expect(SEG.get(buf, 'selector', 0x10)).toBe(0x8);
    expect(SEG.get(buf, 'selector', 0x20)).toBe(0x10);
    expect(() => SEG.get(buf, 'selector', 0x21)).toThrow(FieldRangeError);
  });

  it('returns byte fields as copies', () => {
    const buf = T.alloc();
    const blob = T.get(buf, 'blob');
    buf[0x20] = 7;
    expect(blob[0]).toBe(0);
  });

  it('refuses values that do not fit their field', () => {
    const buf = T.alloc();
    expect(() => T.set(buf, 'a', 256)).toThrow(FieldRangeError);
    expect(() => T.set(buf, 'c', -1)).toThrow(FieldRangeError);
    expect(() => T.set(buf, 'c', 1.5)).toThrow(FieldRangeError);
    expect(() => T.set(buf, 'd', 1n << 64n)).toThrow(FieldRangeError);
    expect(() => T.set(buf, 'blob', new Uint8Array(3))).toThrow(FieldRangeError);
  });

  it('rejects overlapping or out-of-bounds declarations', () => {
    expect(() =>
      defineStruct('X', 8, { a: { offset: 0, type: 'u32' }, b: { offset: 2, type: 'u16' } }),
    ).toThrow(LayoutError);
    expect(() => defineStruct('X', 8, { a: { offset: 6, type: 'u32' } })).toThrow(LayoutError);
    expect(() => defineStruct('X', 8, { a: { offset: 0, type: 'bytes' } })).toThrow(LayoutError);
  });

  it('describe() names every field with its offset', () => {
    const buf = T.alloc();
    T.set(buf, 'c', 0x2a);
    const text = T.describe(buf);
    expect(text).toContain('0x004 c');
    expect(text).toContain('0x0000002a');
    expect(text).toContain('cs.base');
  });

  it('round-trips any integer value through set and get', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat(0xffff_ffff), (d, c) => {
        const buf = T.alloc();
        T.set(buf, 'd', d);
        T.set(buf, 'c', c);
        return T.get(buf, 'd') === d && T.get(buf, 'c') === c;
      }),
    );
  });
});

describe('bit layouts', () => {
  const B = defineBits('B', 64, { lo: field(0, 8), en: flag(60), gfn: field(12, 40) });

  it('encodes and decodes fields', () => {
    const w = B.encode({ lo: 0x1f, en: true, gfn: 0x12345 });
    expect(w).toBe(0x1fn | (1n << 60n) | (0x12345n << 12n));
    expect(B.get(w, 'gfn')).toBe(0x12345n);
    expect(B.has(w, 'en')).toBe(true);
  });

  it('reports reserved bits and refuses values wider than a field', () => {
    expect(() => defineBits('X', 8, { a: field(0, 4), b: field(2, 2) })).toThrow(LayoutError);
    expect(B.reservedBits((1n << 63n) | 0xffn)).toBe(1n << 63n);
    expect(() => B.with(0n, 'lo', 0x100)).toThrow(FieldRangeError);
  });
});

describe('hex helpers', () => {
  it('round-trips and refuses malformed hex', () => {
    expect(bytesToHex(hexToBytes('0x00ff10'))).toBe('00ff10');
    expect(() => hexToBytes('abc')).toThrow(FieldRangeError);
    expect(() => hexToBytes('zz')).toThrow(FieldRangeError);
  });
});
