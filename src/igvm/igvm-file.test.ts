import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as zlib from 'node:zlib';
import { crc32 } from '../arch/igvm.js';
import { readIgvm, writeIgvm } from './igvm-file.js';
import { measure, IgvmMeasureError } from './measure.js';
import { IgvmFormatError, type IgvmModel } from './model.js';
import {
  filledPage,
  flags,
  igvmModelArb,
  page,
  PAGE,
  smallSnpModel,
  SNP_MASK,
} from './model.fixture.js';

const zcrc: (d: Uint8Array) => number =
  (zlib as { crc32?: (d: Uint8Array) => number }).crc32 ?? ((d) => crc32(d));

/** Little-endian byte assembly, independent of src/arch's layouts. */
class Bytes {
  readonly parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    return this.u16(v & 0xffff).u16(v >>> 16);
  }
  u64(v: bigint): this {
    return this.u32(Number(v & 0xffff_ffffn)).u32(Number(v >> 32n));
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.u8(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/**
 * A version 1 file assembled by hand from reference/igvm.md sections 1-4: an SNP platform,
 * policy 0x30000, a zero page at 0x1000, the same 4 KiB of data at 0x2000 and 0x3000 (stored
 * once), and a VMSA at 0xFFFFFFFFF000.
 */
function handMadeFile(): { bytes: Uint8Array; model: IgvmModel } {
  const data = filledPage(0xab);
  const vmsa = filledPage(0xcd);
  const vhSize = 24 + 24 + 32 + 32 + 32 + 32;
  const dataStart = 24 + vhSize;
  const vh = new Bytes();
  vh.u32(0x001).u32(16).u32(1).u8(0).u8(2).u16(1).u64(0n);
  vh.u32(0x101).u32(16).u64(0x30000n).u32(1).u32(0);
  vh.u32(0x302).u32(24).u64(0x1000n).u32(1).u32(0).u32(0).u16(0).u16(0);
  vh.u32(0x302).u32(24).u64(0x2000n).u32(1).u32(dataStart).u32(0).u16(0).u16(0);
  vh.u32(0x302).u32(24).u64(0x3000n).u32(1).u32(dataStart).u32(0).u16(0).u16(0);
  vh.u32(0x304)
    .u32(20)
    .u64(0xffff_ffff_f000n)
    .u32(1)
    .u32(dataStart + PAGE)
    .u16(0)
    .u16(0);
  vh.zeros(4);
  expect(vh.length).toBe(vhSize);
  const total = dataStart + 2 * PAGE;
  const fixed = new Bytes().u32(0x4d564749).u32(1).u32(24).u32(vhSize).u32(total).u32(0);
  const checksum = zcrc(Uint8Array.from([...fixed.parts, ...vh.parts]));
  const bytes = new Uint8Array(total);
  bytes.set(fixed.bytes());
  new DataView(bytes.buffer).setUint32(0x14, checksum, true);
  bytes.set(vh.bytes(), 24);
  bytes.set(data, dataStart);
  bytes.set(vmsa, dataStart + PAGE);
  const model: IgvmModel = {
    formatVersion: 1,
    architecture: 0,
    platforms: [
      {
        kind: 'supportedPlatform',
        compatibilityMask: 1,
        highestVtl: 0,
        platformType: 2,
        platformVersion: 1,
        sharedGpaBoundary: 0,
      },
    ],
    initialization: [{ kind: 'guestPolicy', policy: 0x30000n, compatibilityMask: 1 }],
    directives: [
      page(0x1000, null),
      page(0x2000, data),
      page(0x3000, data),
      { kind: 'vpContext', gpa: 0xffff_ffff_f000, compatibilityMask: 1, vpIndex: 0, context: vmsa },
    ],
  };
  return { bytes, model };
}

/** Replaces the checksum so that a change to the headers reaches the later checks. */
function fixChecksum(bytes: Uint8Array): Uint8Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 24) return bytes;
  const version = dv.getUint32(4, true);
  const fixedSize = version === 2 ? 32 : 24;
  const off = dv.getUint32(8, true);
  const size = dv.getUint32(12, true);
  if (bytes.length < fixedSize || off + size > bytes.length) return bytes;
  const fixed = bytes.slice(0, fixedSize);
  fixed.fill(0, 0x14, 0x18);
  dv.setUint32(0x14, crc32(bytes.subarray(off, off + size), crc32(fixed)), true);
  return bytes;
}

function expectFormatError(bytes: Uint8Array, reason: RegExp): void {
  let error: unknown;
  try {
    readIgvm(bytes);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(IgvmFormatError);
  expect((error as Error).message).toMatch(reason);
  // One sentence, no line breaks.
  expect((error as Error).message).not.toMatch(/\n/);
}

describe('IGVM known answer', () => {
  it('reads a file assembled by hand from the spec', () => {
    const { bytes, model } = handMadeFile();
    expect(readIgvm(bytes)).toEqual(model);
  });

  it('writes that model to exactly those bytes (identical data stored once)', () => {
    const { bytes, model } = handMadeFile();
    expect(Buffer.from(writeIgvm(model)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('reads a Node Buffer and returns data that does not alias it', () => {
    const { bytes } = handMadeFile();
    const buf = Buffer.from(bytes);
    const m = readIgvm(buf);
    buf.fill(0);
    const first = m.directives[1];
    expect(first?.kind === 'pageData' && first.data?.[0]).toBe(0xab);
  });

  it('writes version 2 with architecture and 4 KiB page size in a 32-byte header', () => {
    const v2 = writeIgvm({ ...smallSnpModel(), formatVersion: 2 });
    const dv = new DataView(v2.buffer);
    expect([dv.getUint32(4, true), dv.getUint32(8, true)]).toEqual([2, 32]);
    expect([dv.getUint32(0x18, true), dv.getUint32(0x1c, true)]).toEqual([0, 0x1000]);
    expect(readIgvm(v2)).toEqual({ ...smallSnpModel(), formatVersion: 2 });
  });
});

describe('IGVM round trip', () => {
  it('write -> read gives the model back and write -> read -> write gives the same bytes', () => {
    fc.assert(
      fc.property(igvmModelArb, (model) => {
        const bytes = writeIgvm(model);
        const back = readIgvm(bytes);
        expect(back).toEqual(model);
        expect(Buffer.from(writeIgvm(back)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('pads short page and parameter data with zeros', () => {
    const m = smallSnpModel();
    const short: IgvmModel = {
      ...m,
      directives: [
        {
          kind: 'parameterArea',
          numberOfBytes: 2 * PAGE,
          parameterAreaIndex: 9,
          initialData: Uint8Array.of(1, 2),
        },
        page(0x20000, Uint8Array.of(7, 7, 7)),
      ],
    };
    const back = readIgvm(writeIgvm(short));
    const [area, p] = back.directives;
    expect(area?.kind === 'parameterArea' && area.initialData?.length).toBe(2 * PAGE);
    expect(p?.kind === 'pageData' && [p.data?.length, p.data?.[2], p.data?.[3]]).toEqual([
      PAGE,
      7,
      0,
    ]);
  });
});

describe('IGVM reader on hostile input', () => {
  const seeds = fc.sample(igvmModelArb, { numRuns: 12, seed: 42 }).map(writeIgvm);
  seeds.push(handMadeFile().bytes, writeIgvm(smallSnpModel()));

  /** Reading either fails with IgvmFormatError or gives a model that writes and measures. */
  function survives(bytes: Uint8Array): void {
    let model: IgvmModel;
    try {
      model = readIgvm(bytes);
    } catch (e) {
      if (!(e instanceof IgvmFormatError)) throw e;
      return;
    }
    const again = writeIgvm(model);
    expect(Buffer.from(writeIgvm(readIgvm(again))).equals(Buffer.from(again))).toBe(true);
    try {
      measure(model);
    } catch (e) {
      if (!(e instanceof IgvmMeasureError)) throw e;
    }
  }

  it('every truncation is refused with IgvmFormatError', () => {
    for (const file of seeds) {
      for (let n = 0; n < file.length; n += n < 512 ? 1 : 509) {
        expectFormatError(file.slice(0, n), /./);
      }
    }
  });

  it('random bit flips give IgvmFormatError or a valid model, never another exception', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (file, flips, fix) => {
          const bytes = file.slice();
          const headerEnd = Math.min(
            bytes.length,
            24 + new DataView(bytes.buffer).getUint32(12, true) + 8,
          );
          for (const f of flips) {
            // Most flips land in the headers, where the checks are.
            const at = f % 4 === 0 ? f % bytes.length : f % headerEnd;
            bytes[at]! ^= 1 << (f % 8);
          }
          survives(fix ? fixChecksum(bytes) : bytes);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('random u32 overwrites of header fields with the checksum fixed', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.nat(),
        fc.constantFrom(0, 1, 0xffffffff, 0x80000000, 0x1000, 0x7fffffff, 0x302, 0x304),
        (file, where, value) => {
          const bytes = file.slice();
          const vhEnd = 24 + new DataView(bytes.buffer).getUint32(12, true) + 8;
          const at = (where % Math.floor(Math.min(vhEnd, bytes.length) / 4)) * 4;
          new DataView(bytes.buffer).setUint32(at, value, true);
          survives(fixChecksum(bytes));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('IGVM reader rules', () => {
  const good = (): Uint8Array => writeIgvm(smallSnpModel());
  const set32 = (b: Uint8Array, at: number, v: number): Uint8Array => {
    new DataView(b.buffer).setUint32(at, v, true);
    return b;
  };
  // Offsets in smallSnpModel's file: platform record at 24, policy at 48, REQUIRED_MEMORY at 72.
  const PLATFORM = 24;
  const POLICY = 48;
  const REQUIRED = 72;

  it('refuses what is not an IGVM file', () => {
    expectFormatError(
      new TextEncoder().encode('#!/bin/sh\necho not an image at all\n'),
      /magic is 0x[0-9a-f]+, not "IGVM"/,
    );
    expectFormatError(new Uint8Array(10), /too short/);
  });

  it('checks version, total size, variable-header placement and checksum', () => {
    expectFormatError(set32(good(), 4, 3), /version 3/);
    const longer = new Uint8Array(good().length + 1);
    longer.set(good());
    expectFormatError(longer, /says the file is/);
    expectFormatError(fixChecksum(set32(good(), 8, 28)), /8-aligned/);
    expectFormatError(fixChecksum(set32(good(), 8, 16)), /8-aligned/);
    const b = good();
    expectFormatError(set32(b, 12, b.length), /past the end/);
    const c = good();
    c[30]! ^= 1;
    expectFormatError(c, /checksum/);
  });

  it('checks record framing: lengths, padding and sections', () => {
    expectFormatError(fixChecksum(set32(good(), PLATFORM + 4, 15)), /is 15 bytes, not 16/);
    expectFormatError(fixChecksum(set32(good(), PLATFORM + 4, 0x10000)), /runs past/);
    // VP_CONTEXT is the last record; its 4 padding bytes must be zero.
    const b = good();
    const vhEnd = 24 + new DataView(b.buffer).getUint32(12, true);
    b[vhEnd - 1] = 1;
    expectFormatError(fixChecksum(b), /non-zero padding/);
    // A platform header after the policy returns to an earlier section.
    expectFormatError(fixChecksum(set32(good(), REQUIRED, 0x001)), /returns to the PLATFORM/);
    expectFormatError(fixChecksum(set32(good(), POLICY, 0x250)), /belongs to no section/);
  });

  it('refuses unknown types unless marked optional, and keeps optional ones', () => {
    expectFormatError(
      fixChecksum(set32(good(), POLICY, 0x1ff)),
      /not supported and not marked optional/,
    );
    expectFormatError(fixChecksum(set32(good(), REQUIRED, 0x306)), /reserved/);
    const m = readIgvm(fixChecksum(set32(good(), POLICY, 0x8000_01ff)));
    expect(m.initialization[0]).toMatchObject({ kind: 'ignored', type: 0x8000_01ff });
    expect(m.initialization[0]?.kind === 'ignored' && m.initialization[0].body.length).toBe(16);
  });

  it('refuses file data outside the data section', () => {
    const m = smallSnpModel();
    const b = writeIgvm({ ...m, directives: [page(0x1000, filledPage(1))] });
    const at = 24 + 24 + 24 + 8 + 12; // PAGE_DATA file_offset
    expectFormatError(fixChecksum(set32(b.slice(), at, 24)), /outside the file data section/);
    expectFormatError(fixChecksum(set32(b.slice(), at, b.length - 100)), /outside the file data/);
  });

  it('checks the platform rules', () => {
    expectFormatError(fixChecksum(set32(good(), PLATFORM + 8, 3)), /not one bit/);
    const vtl = good();
    vtl[PLATFORM + 12] = 1;
    expectFormatError(fixChecksum(vtl), /highest VTL 1/);
    const ty = good();
    ty[PLATFORM + 13] = 9;
    expectFormatError(fixChecksum(ty), /type 9 is not defined/);
  });

  const cases: [string, (m: IgvmModel) => IgvmModel, RegExp][] = [
    [
      'no platform',
      (m) => ({ ...m, platforms: [], initialization: [], directives: [] }),
      /no supported platform/,
    ],
    [
      'a mask naming no declared platform',
      (m) => ({ ...m, directives: [page(0x1000, null, 0, 0x2)] }),
      /undeclared platform/,
    ],
    ['an unaligned page', (m) => ({ ...m, directives: [page(0x1800, null)] }), /not aligned/],
    [
      'a 2 MiB page at a 4 KiB boundary',
      (m) => ({ ...m, directives: [{ ...page(0x1000, null), flags: flags({ is2mbPage: true }) }] }),
      /not aligned to 0x200000/,
    ],
    [
      'a 2 MiB page with data',
      (m) => ({
        ...m,
        directives: [{ ...page(0x200000, filledPage(1)), flags: flags({ is2mbPage: true }) }],
      }),
      /2 MiB page with file data/,
    ],
    [
      'a parameter without its area',
      (m) => ({
        ...m,
        directives: [
          { kind: 'parameter', parameterType: 0x307, parameterAreaIndex: 3, byteOffset: 0 },
        ],
      }),
      /not declared or already inserted/,
    ],
    [
      'an area inserted twice',
      (m) => ({
        ...m,
        directives: [
          { kind: 'parameterArea', numberOfBytes: PAGE, parameterAreaIndex: 1, initialData: null },
          { kind: 'parameterInsert', gpa: 0x1000, compatibilityMask: 1, parameterAreaIndex: 1 },
          { kind: 'parameterInsert', gpa: 0x2000, compatibilityMask: 1, parameterAreaIndex: 1 },
        ],
      }),
      /already inserted/,
    ],
    [
      'a VP context whose mask is not one platform',
      (m) => ({
        ...m,
        directives: [
          { kind: 'vpContext', gpa: 0, compatibilityMask: 3, vpIndex: 0, context: filledPage(0) },
        ],
      }),
      /not the mask of one platform/,
    ],
    [
      'a VMSA that is not a page',
      (m) => ({
        ...m,
        directives: [
          {
            kind: 'vpContext',
            gpa: 0,
            compatibilityMask: SNP_MASK,
            vpIndex: 0,
            context: new Uint8Array(100),
          },
        ],
      }),
      /must be 4096 bytes/,
    ],
    [
      'an ignored header without bit 31',
      (m) => ({ ...m, directives: [{ kind: 'ignored', type: 0x3ff, body: new Uint8Array(0) }] }),
      /not marked optional/,
    ],
  ];
  for (const [what, change, reason] of cases) {
    it(`the writer refuses ${what}`, () => {
      let error: unknown;
      try {
        writeIgvm(change(smallSnpModel()));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(IgvmFormatError);
      expect((error as Error).message).toMatch(reason);
    });
  }
});
