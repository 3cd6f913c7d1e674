// Checks a byte layout against a table typed from the reference, independently of the layout:
// shared by the src/arch tests.
import { expect } from 'vitest';
import type { FieldSpecs, StructLayout } from '../../src/arch/struct.js';

export type SpecTable<F extends FieldSpecs> = {
  readonly [K in keyof F & string]: readonly [offset: number, size: number];
};

/**
 * Checks a layout against a table typed from the reference: total size, every field's offset and
 * size, no gaps, and that each field reads the bytes at the table's offset (little-endian).
 */
export function expectSpecLayout<F extends FieldSpecs>(
  layout: StructLayout<F>,
  size: number,
  table: SpecTable<F>,
): void {
  expect(layout.size).toBe(size);
  const names = (Object.keys(table) as (keyof F & string)[]).sort(
    (a, b) => table[a][0] - table[b][0],
  );
  expect(layout.fields.map((f) => f.name).sort()).toEqual([...names].sort());
  let next = 0;
  for (const name of names) {
    const [offset, fieldSize] = table[name];
    expect([name, 'starts where the previous field ends', offset]).toEqual([
      name,
      'starts where the previous field ends',
      next,
    ]);
    next = offset + fieldSize;
    const f = layout.field(name);
    expect([name, f.offset, f.size]).toEqual([name, offset, fieldSize]);
    const buf = new Uint8Array(size);
    for (let j = 0; j < fieldSize; j++) buf[offset + j] = j + 1;
    const expected =
      f.type === 'bytes'
        ? Uint8Array.from({ length: fieldSize }, (_, j) => j + 1)
        : fieldSize === 8
          ? 0x0807060504030201n
          : [0, 0x01, 0x0201, 0, 0x04030201][fieldSize];
    expect([name, layout.get(buf, name)]).toEqual([name, expected]);
  }
  expect(next).toBe(size);
}
