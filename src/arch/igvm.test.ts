import { describe, expect, it } from 'vitest';
import * as zlib from 'node:zlib';
import {
  crc32,
  IGVM_BODY_SIZE,
  IGVM_FIXED_HEADER,
  IGVM_FIXED_HEADER_V2,
  IGVM_MAGIC,
  IGVM_PAGE_DATA_FLAGS,
  IGVM_PARAMETER_TYPES,
  IGVM_VHS_ERROR_RANGE,
  IGVM_VHS_GUEST_POLICY,
  IGVM_VHS_MEMORY_MAP_ENTRY,
  IGVM_VHS_MMIO_RANGES,
  IGVM_VHS_PAGE_DATA,
  IGVM_VHS_PAGE_TABLE_RELOCATION,
  IGVM_VHS_PARAMETER,
  IGVM_VHS_PARAMETER_AREA,
  IGVM_VHS_PARAMETER_INSERT,
  IGVM_VHS_RELOCATABLE_REGION,
  IGVM_VHS_REQUIRED_MEMORY,
  IGVM_VHS_SNP_ID_BLOCK,
  IGVM_VHS_SUPPORTED_PLATFORM,
  IGVM_VHS_VARIABLE_HEADER,
  IGVM_VHS_VBS_MEASUREMENT,
  IGVM_VHS_VP_CONTEXT,
  IGVM_VHT,
  igvmAlign8,
  igvmChecksum,
  igvmFixedHeaderSize,
  igvmSectionOf,
  igvmVhtName,
} from './igvm.js';
import type { FieldSpecs, StructLayout } from './struct.js';

type SpecTable<F extends FieldSpecs> = {
  readonly [K in keyof F & string]: readonly [offset: number, size: number];
};

/**
 * Checks a layout against a table typed from igvm_defs: total size, every field's offset and size,
 * no gaps, and that each integer field reads little-endian bytes at the table's offset.
 */
function expectSpecLayout<F extends FieldSpecs>(
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
    expect([name, offset]).toEqual([name, next]);
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

// Tables typed from reference/igvm.md sections 1-3 and igvm_defs, independently of igvm.ts.
describe('IGVM fixed header', () => {
  it('version 1 is six u32 fields in 24 bytes', () => {
    expectSpecLayout(IGVM_FIXED_HEADER, 24, {
      magic: [0x00, 4],
      formatVersion: [0x04, 4],
      variableHeaderOffset: [0x08, 4],
      variableHeaderSize: [0x0c, 4],
      totalFileSize: [0x10, 4],
      checksum: [0x14, 4],
    });
  });

  it('version 2 appends architecture and page size, 32 bytes', () => {
    expectSpecLayout(IGVM_FIXED_HEADER_V2, 32, {
      magic: [0x00, 4],
      formatVersion: [0x04, 4],
      variableHeaderOffset: [0x08, 4],
      variableHeaderSize: [0x0c, 4],
      totalFileSize: [0x10, 4],
      checksum: [0x14, 4],
      architecture: [0x18, 4],
      pageSize: [0x1c, 4],
    });
    expect(igvmFixedHeaderSize(1)).toBe(24);
    expect(igvmFixedHeaderSize(2)).toBe(32);
  });

  it('the magic is the ASCII bytes "IGVM" read little-endian', () => {
    expect(IGVM_MAGIC).toBe(
      new DataView(new TextEncoder().encode('IGVM').buffer).getUint32(0, true),
    );
  });
});

describe('IGVM checksum', () => {
  it('is the zlib CRC-32 (check value of "123456789" is 0xCBF43926)', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('agrees with node:zlib on random data and chains across calls', () => {
    const zcrc = (zlib as { crc32?: (d: Uint8Array, v?: number) => number }).crc32;
    const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) & 0xff);
    const whole = crc32(data);
    expect(crc32(data.subarray(1234), crc32(data.subarray(0, 1234)))).toBe(whole);
    if (zcrc !== undefined) expect(whole).toBe(zcrc(data));
  });

  it('covers the fixed header with the checksum field zero, then the variable headers', () => {
    const fixed = new Uint8Array(24).fill(0x11);
    const vh = new Uint8Array(16).fill(0x22);
    const zeroed = Uint8Array.from(fixed);
    zeroed.fill(0, 0x14, 0x18);
    const expected = crc32(Uint8Array.from([...zeroed, ...vh]));
    expect(igvmChecksum(fixed, vh)).toBe(expected);
    // Whatever the checksum field holds, it is read as zero.
    fixed.fill(0x99, 0x14, 0x18);
    expect(igvmChecksum(fixed, vh)).toBe(expected);
  });
});

describe('IGVM variable headers', () => {
  it('a record is a u32 type and u32 length, padded to 8 bytes', () => {
    expectSpecLayout(IGVM_VHS_VARIABLE_HEADER, 8, { type: [0, 4], length: [4, 4] });
    expect([0, 1, 8, 20, 24, 696].map(igvmAlign8)).toEqual([0, 8, 8, 24, 24, 696]);
  });

  it('type codes are those of igvm_defs and fall in their sections', () => {
    expect(IGVM_VHT).toMatchObject({
      SUPPORTED_PLATFORM: 0x1,
      GUEST_POLICY: 0x101,
      RELOCATABLE_REGION: 0x102,
      PAGE_TABLE_RELOCATION_REGION: 0x103,
      PARAMETER_AREA: 0x301,
      PAGE_DATA: 0x302,
      PARAMETER_INSERT: 0x303,
      VP_CONTEXT: 0x304,
      REQUIRED_MEMORY: 0x305,
      RESERVED_DO_NOT_USE: 0x306,
      VP_COUNT_PARAMETER: 0x307,
      SRAT: 0x308,
      MADT: 0x309,
      MMIO_RANGES: 0x30a,
      SNP_ID_BLOCK: 0x30b,
      MEMORY_MAP: 0x30c,
      ERROR_RANGE: 0x30d,
      COMMAND_LINE: 0x30e,
      SLIT: 0x30f,
      PPTT: 0x310,
      VBS_MEASUREMENT: 0x311,
      DEVICE_TREE: 0x312,
      ENVIRONMENT_INFO_PARAMETER: 0x313,
    });
    expect(igvmSectionOf(0x1)).toBe('PLATFORM');
    expect(igvmSectionOf(0x100)).toBe('PLATFORM');
    expect(igvmSectionOf(0x101)).toBe('INIT');
    expect(igvmSectionOf(0x200)).toBe('INIT');
    expect(igvmSectionOf(0x201)).toBeNull();
    expect(igvmSectionOf(0x300)).toBeNull();
    expect(igvmSectionOf(0x301)).toBe('DIRECTIVE');
    expect(igvmSectionOf(0x400)).toBe('DIRECTIVE');
    expect(igvmSectionOf(0x0)).toBeNull();
    expect(igvmSectionOf(0x8000_0302)).toBe('DIRECTIVE');
    expect(igvmVhtName(0x302)).toBe('PAGE_DATA');
    expect(igvmVhtName(0x399)).toBe('0x399');
  });

  it('body sizes match reference/igvm.md section 2', () => {
    const sizes: [number, number][] = [
      [0x001, 16],
      [0x101, 16],
      [0x102, 48],
      [0x103, 32],
      [0x301, 16],
      [0x302, 24],
      [0x303, 16],
      [0x304, 20],
      [0x305, 24],
      [0x307, 8],
      [0x308, 8],
      [0x309, 8],
      [0x30a, 8],
      [0x30b, 696],
      [0x30c, 8],
      [0x30d, 16],
      [0x30e, 8],
      [0x30f, 8],
      [0x310, 8],
      [0x311, 864],
      [0x312, 8],
      [0x313, 8],
    ];
    for (const [type, size] of sizes) expect([type, IGVM_BODY_SIZE[type]]).toEqual([type, size]);
    expect(IGVM_PARAMETER_TYPES).toHaveLength(10);
  });
});

describe('IGVM structures', () => {
  it('SUPPORTED_PLATFORM', () => {
    expectSpecLayout(IGVM_VHS_SUPPORTED_PLATFORM, 16, {
      compatibilityMask: [0, 4],
      highestVtl: [4, 1],
      platformType: [5, 1],
      platformVersion: [6, 2],
      sharedGpaBoundary: [8, 8],
    });
  });

  it('GUEST_POLICY', () => {
    expectSpecLayout(IGVM_VHS_GUEST_POLICY, 16, {
      policy: [0, 8],
      compatibilityMask: [8, 4],
      reserved: [12, 4],
    });
  });

  it('RELOCATABLE_REGION and PAGE_TABLE_RELOCATION', () => {
    expectSpecLayout(IGVM_VHS_RELOCATABLE_REGION, 48, {
      compatibilityMask: [0, 4],
      vpIndex: [4, 2],
      vtl: [6, 1],
      flags: [7, 1],
      relocationAlignment: [8, 8],
      relocationRegionGpa: [16, 8],
      relocationRegionSize: [24, 8],
      minimumRelocationGpa: [32, 8],
      maximumRelocationGpa: [40, 8],
    });
    expectSpecLayout(IGVM_VHS_PAGE_TABLE_RELOCATION, 32, {
      compatibilityMask: [0, 4],
      vpIndex: [4, 2],
      vtl: [6, 1],
      reserved: [7, 1],
      gpa: [8, 8],
      size: [16, 8],
      usedSize: [24, 8],
    });
  });

  it('PAGE_DATA and its flags', () => {
    expectSpecLayout(IGVM_VHS_PAGE_DATA, 24, {
      gpa: [0, 8],
      compatibilityMask: [8, 4],
      fileOffset: [12, 4],
      flags: [16, 4],
      dataType: [20, 2],
      reserved: [22, 2],
    });
    expect(IGVM_PAGE_DATA_FLAGS.encode({ is2mbPage: true })).toBe(1n);
    expect(IGVM_PAGE_DATA_FLAGS.encode({ unmeasured: true })).toBe(2n);
    expect(IGVM_PAGE_DATA_FLAGS.encode({ shared: true })).toBe(4n);
  });

  it('PARAMETER_AREA, PARAMETER and PARAMETER_INSERT', () => {
    expectSpecLayout(IGVM_VHS_PARAMETER_AREA, 16, {
      numberOfBytes: [0, 8],
      parameterAreaIndex: [8, 4],
      fileOffset: [12, 4],
    });
    expectSpecLayout(IGVM_VHS_PARAMETER, 8, { parameterAreaIndex: [0, 4], byteOffset: [4, 4] });
    expectSpecLayout(IGVM_VHS_PARAMETER_INSERT, 16, {
      gpa: [0, 8],
      compatibilityMask: [8, 4],
      parameterAreaIndex: [12, 4],
    });
  });

  it('VP_CONTEXT is 20 packed bytes', () => {
    expectSpecLayout(IGVM_VHS_VP_CONTEXT, 20, {
      gpa: [0, 8],
      compatibilityMask: [8, 4],
      fileOffset: [12, 4],
      vpIndex: [16, 2],
      reserved: [18, 2],
    });
  });

  it('REQUIRED_MEMORY and ERROR_RANGE', () => {
    expectSpecLayout(IGVM_VHS_REQUIRED_MEMORY, 24, {
      gpa: [0, 8],
      compatibilityMask: [8, 4],
      numberOfBytes: [12, 4],
      flags: [16, 4],
      reserved: [20, 4],
    });
    expectSpecLayout(IGVM_VHS_ERROR_RANGE, 16, {
      gpa: [0, 8],
      compatibilityMask: [8, 4],
      sizeBytes: [12, 4],
    });
  });

  it('SNP_ID_BLOCK is 696 bytes at the offsets of reference/igvm.md', () => {
    const sig = (base: number, p: string) => ({
      [`${p}.rComp`]: [base, 72] as const,
      [`${p}.sComp`]: [base + 72, 72] as const,
    });
    const key = (base: number, p: string) => ({
      [`${p}.curve`]: [base, 4] as const,
      [`${p}.reserved`]: [base + 4, 4] as const,
      [`${p}.qx`]: [base + 8, 72] as const,
      [`${p}.qy`]: [base + 80, 72] as const,
    });
    expectSpecLayout(IGVM_VHS_SNP_ID_BLOCK, 696, {
      compatibilityMask: [0x000, 4],
      authorKeyEnabled: [0x004, 1],
      reserved: [0x005, 3],
      ld: [0x008, 48],
      familyId: [0x038, 16],
      imageId: [0x048, 16],
      version: [0x058, 4],
      guestSvn: [0x05c, 4],
      idKeyAlgorithm: [0x060, 4],
      authorKeyAlgorithm: [0x064, 4],
      ...sig(0x068, 'idKeySignature'),
      ...key(0x0f8, 'idPublicKey'),
      ...sig(0x190, 'authorKeySignature'),
      ...key(0x220, 'authorPublicKey'),
    } as unknown as SpecTable<typeof IGVM_VHS_SNP_ID_BLOCK.specs>);
  });

  it('VBS_MEASUREMENT is 864 bytes', () => {
    expect(IGVM_VHS_VBS_MEASUREMENT.size).toBe(864);
    expect(IGVM_VHS_VBS_MEASUREMENT.offset('publicKey') + 512).toBe(864);
  });

  it('loader-written parameter payloads', () => {
    expectSpecLayout(IGVM_VHS_MEMORY_MAP_ENTRY, 24, {
      startingGpaPageNumber: [0, 8],
      numberOfPages: [8, 8],
      entryType: [16, 2],
      flags: [18, 2],
      reserved: [20, 4],
    });
    expect(IGVM_VHS_MMIO_RANGES.size).toBe(32);
    expect(IGVM_VHS_MMIO_RANGES.offset('range1.numberOfPages')).toBe(0x18);
  });
});
