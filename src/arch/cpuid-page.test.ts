import { describe, expect, it } from 'vitest';
import { expectSpecLayout } from '../../test/support/spec-layout.js';
import fc from 'fast-check';
import {
  buildCpuidPage,
  cpuidEntryOffset,
  type CpuidEntry,
  readCpuidEntries,
  readCpuidEntry,
  SNP_CPUID_FN,
  SNP_CPUID_MAX_ENTRIES,
  SNP_CPUID_PAGE_SIZE,
  SNP_CPUID_TABLE,
  writeCpuidEntry,
} from './cpuid-page.js';
import { bytesToHex, FieldRangeError } from './struct.js';

// Tables typed from reference/linux-snp-guest.md section 2.2, independently of cpuid-page.ts.
describe('CPUID page layout', () => {
  it('has 0x30-byte entries with every field at its spec offset', () => {
    expectSpecLayout(SNP_CPUID_FN, 0x30, {
      eaxIn: [0x00, 4],
      ecxIn: [0x04, 4],
      xcr0In: [0x08, 8],
      xssIn: [0x10, 8],
      eax: [0x18, 4],
      ebx: [0x1c, 4],
      ecx: [0x20, 4],
      edx: [0x24, 4],
      reserved: [0x28, 8],
    });
  });

  it('is a 0xc10-byte table of a count and 64 entries from offset 16, in a 4 KiB page', () => {
    expectSpecLayout(SNP_CPUID_TABLE, 0xc10, {
      count: [0x00, 4],
      reserved04: [0x04, 4],
      reserved08: [0x08, 8],
      fn: [0x10, 64 * 0x30],
    });
    expect(SNP_CPUID_MAX_ENTRIES).toBe(64);
    expect(SNP_CPUID_PAGE_SIZE).toBe(4096);
  });

  it('places entry i at 16 + 0x30 * i and refuses indices outside 0..63', () => {
    expect([0, 1, 2, 63].map(cpuidEntryOffset)).toEqual([0x10, 0x40, 0x70, 0xbe0]);
    for (const bad of [-1, 64, 1.5, Number.NaN]) {
      expect(() => cpuidEntryOffset(bad)).toThrow(FieldRangeError);
    }
  });
});

const LEAF_8000001F: CpuidEntry = {
  eaxIn: 0x8000_001f,
  ecxIn: 0,
  xcr0In: 0n,
  xssIn: 0n,
  eax: 0x0001_b09f,
  ebx: 0x0000_4173,
  ecx: 0x0000_01fd,
  edx: 0x0000_0001,
};

describe('CPUID page entries', () => {
  it('writes an entry as little-endian words at its offset', () => {
    const page = buildCpuidPage([{ ...LEAF_8000001F, eaxIn: 0 }, LEAF_8000001F]);
    expect([...page.subarray(0, 4)]).toEqual([2, 0, 0, 0]);
    expect(bytesToHex(page.subarray(0x40, 0x70))).toBe(
      '1f000080' +
        '00000000' +
        '0000000000000000' +
        '0000000000000000' +
        '9fb00100' +
        '73410000' +
        'fd010000' +
        '01000000' +
        '0000000000000000',
    );
    expect(readCpuidEntry(page, 1)).toEqual(LEAF_8000001F);
  });

  it('honours a base offset, so the table can sit inside a larger buffer', () => {
    const mem = new Uint8Array(0x3000);
    writeCpuidEntry(mem, 0, LEAF_8000001F, 0x1000);
    expect(mem[0x1010]).toBe(0x1f);
    expect(readCpuidEntry(mem, 0, 0x1000)).toEqual(LEAF_8000001F);
  });

  it('round-trips any list of up to 64 entries through a page', () => {
    const u32 = fc.nat(0xffff_ffff);
    const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    const entry = fc.record({
      eaxIn: u32,
      ecxIn: u32,
      xcr0In: u64,
      xssIn: u64,
      eax: u32,
      ebx: u32,
      ecx: u32,
      edx: u32,
    });
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 64 }), (entries) => {
        expect(readCpuidEntries(buildCpuidPage(entries))).toEqual(entries);
      }),
      { numRuns: 50 },
    );
  });

  it('refuses more than 64 entries, in a page or in its count', () => {
    expect(() => buildCpuidPage(new Array<CpuidEntry>(65).fill(LEAF_8000001F))).toThrow(
      FieldRangeError,
    );
    const page = buildCpuidPage([]);
    SNP_CPUID_TABLE.set(page, 'count', 65);
    expect(() => readCpuidEntries(page)).toThrow(/65/);
  });
});
