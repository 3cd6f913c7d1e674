import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  FieldRangeError,
  bytesToHex,
  hexToBytes,
  type StructLayout,
  type FieldSpecs,
} from './struct.js';
import {
  ATTEST_SERVICES_OP,
  ATTEST_SINGLE_SERVICE_OP,
  CONFIGURE_VTOM_RCX,
  SERVICES_MANIFEST_ENTRY,
  SERVICES_MANIFEST_GUID,
  SERVICES_MANIFEST_HEADER,
  SVSM_CAA,
  PVALIDATE_HEADER,
  ServicesManifestError,
  SvsmApicCall,
  SvsmAttestCall,
  SvsmCoreCall,
  SvsmProtocol,
  SvsmResult,
  SvsmVtpmCall,
  TpmPlatformCommand,
  VTPM_MAX_COMMAND_SIZE,
  VTPM_MAX_RESPONSE_SIZE,
  VTPM_SEND_COMMAND_REQUEST,
  VTPM_SEND_COMMAND_RESPONSE,
  VTPM_SERVICE_GUID,
  buildVtpmSendCommandRequest,
  createVcpuApicId,
  decodePvalidateEntry,
  decodeQueryProtocolAnswer,
  decodeQueryProtocolRcx,
  decodeSvsmCallRax,
  encodePvalidateEntry,
  encodeServicesManifest,
  guidFromBytes,
  guidToBytes,
  maxPvalidateEntries,
  parseServicesManifest,
  pvalidateEntryReservedBits,
  queryProtocolAnswer,
  queryProtocolRcx,
  readVtpmSendCommandResponse,
  reservedFieldsClear,
  resultName,
  svsmCallRax,
  svsmProtocolResult,
  vtpmBitmapHasCommand,
  vtpmPlatformCommandBitmap,
  type ServiceManifestEntry,
} from './svsm-abi.js';

// Expected values below are transcribed from reference/coconut-svsm.md section 3,
// reference/sev-snp-abi.md section 7.5, reference/linux-snp-guest.md sections 2.4 and 3.2 and
// Linux include/linux/tpm_svsm.h, not derived from the layouts under test.

type Row = readonly [name: string, offset: number, size: number];

/** Checks size, every field's offset and size, and that the rows tile the struct exactly. */
function expectLayout<F extends FieldSpecs>(
  layout: StructLayout<F>,
  size: number,
  rows: readonly Row[],
): void {
  expect(layout.size).toBe(size);
  expect(layout.fields.map((f) => [f.name, f.offset, f.size])).toEqual(
    [...rows].sort((a, b) => a[1] - b[1]),
  );
  let at = 0;
  for (const [, offset, len] of [...rows].sort((a, b) => a[1] - b[1])) {
    expect(offset).toBe(at);
    at += len;
  }
  expect(at).toBe(size);
}

describe('SVSM protocol and call numbers', () => {
  it('match the spec tables', () => {
    expect(SvsmProtocol).toEqual({ CORE: 0, ATTEST: 1, VTPM: 2, APIC: 3, UEFI_MM: 4 });
    expect(SvsmCoreCall).toEqual({
      REMAP_CA: 0,
      PVALIDATE: 1,
      CREATE_VCPU: 2,
      DELETE_VCPU: 3,
      DEPOSIT_MEM: 4,
      WITHDRAW_MEM: 5,
      QUERY_PROTOCOL: 6,
      CONFIGURE_VTOM: 7,
    });
    expect(SvsmAttestCall).toEqual({ ATTEST_SERVICES: 0, ATTEST_SINGLE_SERVICE: 1 });
    expect(SvsmVtpmCall).toEqual({ QUERY: 0, CMD: 1 });
    expect(SvsmApicCall).toEqual({
      QUERY_FEATURES: 0,
      CONFIGURE: 1,
      READ_REGISTER: 2,
      WRITE_REGISTER: 3,
      CONFIGURE_VECTOR: 4,
    });
  });

  it('encodes RAX as protocol << 32 | call, as Linux issues the calls', () => {
    expect(svsmCallRax(0, 0)).toBe(0n); // CORE_REMAP_CA
    expect(svsmCallRax(0, 1)).toBe(1n); // CORE_PVALIDATE
    expect(svsmCallRax(1, 1)).toBe(0x1_0000_0001n); // ATTEST_SINGLE_SERVICE
    expect(svsmCallRax(2, 0)).toBe(0x2_0000_0000n); // VTPM_QUERY
    expect(svsmCallRax(2, 1)).toBe(0x2_0000_0001n); // VTPM_CMD
    expect(decodeSvsmCallRax(0x3_0000_0004n)).toEqual({ protocol: 3, call: 4 });
  });

  it('round-trips any u32 protocol and call through RAX', () => {
    fc.assert(
      fc.property(fc.nat(0xffff_ffff), fc.nat(0xffff_ffff), (protocol, call) => {
        const rax = svsmCallRax(protocol, call);
        expect(rax >= 0n && rax < 1n << 64n).toBe(true);
        expect(decodeSvsmCallRax(rax)).toEqual({ protocol, call });
      }),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (rax) => {
        const { protocol, call } = decodeSvsmCallRax(rax);
        return svsmCallRax(protocol, call) === rax;
      }),
    );
  });

  it('refuses protocol or call numbers that are not u32', () => {
    expect(() => svsmCallRax(2 ** 32, 0)).toThrow(FieldRangeError);
    expect(() => svsmCallRax(0, -1)).toThrow(FieldRangeError);
    expect(() => svsmCallRax(0, 1.5)).toThrow(FieldRangeError);
    expect(() => decodeSvsmCallRax(1n << 64n)).toThrow(FieldRangeError);
  });
});

describe('SVSM result codes', () => {
  const expected: readonly [string, number][] = [
    ['SUCCESS', 0x0],
    ['INCOMPLETE', 0x8000_0000],
    ['UNSUPPORTED_PROTOCOL', 0x8000_0001],
    ['UNSUPPORTED_CALL', 0x8000_0002],
    ['INVALID_ADDRESS', 0x8000_0003],
    ['INVALID_FORMAT', 0x8000_0004],
    ['INVALID_PARAMETER', 0x8000_0005],
    ['INVALID_REQUEST', 0x8000_0006],
    ['BUSY', 0x8000_0007],
    ['PROTOCOL_BASE', 0x8000_1000],
    ['PVALIDATE_FAIL_INPUT', 0x8000_1001],
    ['PVALIDATE_FAIL_PERMISSION', 0x8000_1002],
    ['FAIL_INUSE', 0x8000_1003],
    ['PVALIDATE_FAIL_SIZE_MISMATCH', 0x8000_1006],
    ['PVALIDATE_FAIL_UNCHANGED', 0x8000_1010],
  ];

  it('have the values of the spec and name back to themselves', () => {
    expect(Object.entries(SvsmResult)).toEqual(expected);
    for (const [name, code] of expected) {
      expect(resultName(code)).toBe(name);
      expect(resultName(BigInt(code))).toBe(name);
    }
  });

  it('map PVALIDATE/RMPADJUST return codes onto PROTOCOL_BASE', () => {
    expect(svsmProtocolResult(1)).toBe(SvsmResult.PVALIDATE_FAIL_INPUT);
    expect(svsmProtocolResult(2)).toBe(SvsmResult.PVALIDATE_FAIL_PERMISSION);
    expect(svsmProtocolResult(6)).toBe(SvsmResult.PVALIDATE_FAIL_SIZE_MISMATCH);
    expect(svsmProtocolResult(0x10)).toBe(SvsmResult.PVALIDATE_FAIL_UNCHANGED);
    expect(() => svsmProtocolResult(0x1000)).toThrow(FieldRangeError);
  });

  it('names unnamed protocol-specific and unknown codes without failing', () => {
    expect(resultName(0x8000_1020)).toBe('PROTOCOL_BASE+0x20');
    expect(resultName(0x8000_0008)).toBe('UNKNOWN(0x80000008)');
    expect(resultName(1n << 40n)).toBe('UNKNOWN(0x10000000000)');
    expect(resultName(-1)).toBe('UNKNOWN(-1)');
    expect(resultName(1.5)).toBe('UNKNOWN(1.5)');
  });
});

describe('Calling Area', () => {
  it('has call_pending @0, mem_available @1, no_eoi_required @2 and the buffer from 8', () => {
    expectLayout(SVSM_CAA, 0x1000, [
      ['callPending', 0x0, 1],
      ['memAvailable', 0x1, 1],
      ['noEoiRequired', 0x2, 1],
      ['reserved', 0x3, 5],
      ['buffer', 0x8, 4088],
    ]);
  });
});

describe('PVALIDATE list', () => {
  it('header is num_entries u16 @0, cur_index u16 @2, 4 reserved bytes', () => {
    expectLayout(PVALIDATE_HEADER, 8, [
      ['numEntries', 0x0, 2],
      ['curIndex', 0x2, 2],
      ['reserved', 0x4, 4],
    ]);
    const b = PVALIDATE_HEADER.alloc();
    PVALIDATE_HEADER.on(b).set('numEntries', 0x1fe).set('curIndex', 0x0102);
    expect(bytesToHex(b)).toBe('fe01020100000000');
  });

  it('entry bits: size 1:0, action 2, ignore_cf 3, GFN 63:12', () => {
    expect(encodePvalidateEntry({ pageSize: 1, validate: false, ignoreCf: false, gfn: 0 })).toBe(
      1n,
    );
    expect(encodePvalidateEntry({ pageSize: 0, validate: true, ignoreCf: false, gfn: 0 })).toBe(4n);
    expect(encodePvalidateEntry({ pageSize: 0, validate: false, ignoreCf: true, gfn: 0 })).toBe(8n);
    // Validate the 2M page at GPA 0x4020_0000 (GFN 0x40200).
    expect(
      encodePvalidateEntry({ pageSize: 1, validate: true, ignoreCf: false, gfn: 0x40200 }),
    ).toBe(0x4020_0005n);
    expect(
      decodePvalidateEntry(0xffff_ffff_ffff_f00fn), // every defined bit set
    ).toEqual({ pageSize: 3, validate: true, ignoreCf: true, gfn: 2 ** 52 - 1 });
  });

  it('round-trips any entry and reports no reserved bits for encoded entries', () => {
    fc.assert(
      fc.property(
        fc.record({
          pageSize: fc.integer({ min: 0, max: 3 }),
          validate: fc.boolean(),
          ignoreCf: fc.boolean(),
          gfn: fc.integer({ min: 0, max: 2 ** 52 - 1 }),
        }),
        (e) => {
          const w = encodePvalidateEntry(e);
          expect(decodePvalidateEntry(w)).toEqual(e);
          expect(pvalidateEntryReservedBits(w)).toBe(0n);
        },
      ),
    );
  });

  it('returns exactly the set bits of 11:4 as reserved', () => {
    expect(pvalidateEntryReservedBits(0xff0n)).toBe(0xff0n);
    expect(pvalidateEntryReservedBits(0x10n | 0x4020_0005n)).toBe(0x10n);
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (w) => {
        return pvalidateEntryReservedBits(w) === (w & 0xff0n);
      }),
    );
  });

  it('refuses fields that do not fit', () => {
    const ok = { pageSize: 0, validate: true, ignoreCf: false, gfn: 1 };
    expect(() => encodePvalidateEntry({ ...ok, gfn: 2 ** 52 })).toThrow(FieldRangeError);
    expect(() => encodePvalidateEntry({ ...ok, gfn: -1 })).toThrow(FieldRangeError);
    expect(() => encodePvalidateEntry({ ...ok, pageSize: 4 })).toThrow(FieldRangeError);
    expect(() => encodePvalidateEntry({ ...ok, pageSize: 0.5 })).toThrow(FieldRangeError);
  });

  it('bounds a list by its page: 511 at offset 0, 510 at CAA+8', () => {
    expect(maxPvalidateEntries(0)).toBe(511);
    expect(maxPvalidateEntries(8)).toBe(510);
    expect(maxPvalidateEntries(0x800)).toBe(255);
    expect(maxPvalidateEntries(4088)).toBe(0);
    expect(() => maxPvalidateEntries(4089)).toThrow(FieldRangeError);
    expect(() => maxPvalidateEntries(-8)).toThrow(FieldRangeError);
    // Linux: SVSM_PVALIDATE_MAX_COUNT = (sizeof svsm_buffer - 8) / 8 = (4088 - 8) / 8.
    expect(maxPvalidateEntries(8)).toBe((4088 - 8) / 8);
  });
});

describe('core register encodings', () => {
  it('QUERY_PROTOCOL: RCX = protocol << 32 | version, answer = max << 32 | min', () => {
    expect(queryProtocolRcx(2, 1)).toBe(0x2_0000_0001n);
    expect(decodeQueryProtocolRcx(0x1_0000_0001n)).toEqual({ protocol: 1, version: 1 });
    expect(queryProtocolAnswer(1, 3)).toBe(0x3_0000_0001n);
    expect(decodeQueryProtocolAnswer(0x3_0000_0001n)).toEqual({ minVersion: 1, maxVersion: 3 });
    expect(decodeQueryProtocolAnswer(0n)).toBeNull();
    fc.assert(
      fc.property(fc.nat(0xffff_ffff), fc.nat(0xffff_ffff), (a, b) => {
        expect(decodeQueryProtocolRcx(queryProtocolRcx(a, b))).toEqual({ protocol: a, version: b });
        if (a !== 0 || b !== 0) {
          expect(decodeQueryProtocolAnswer(queryProtocolAnswer(a, b))).toEqual({
            minVersion: a,
            maxVersion: b,
          });
        }
      }),
    );
  });

  it('CREATE_VCPU takes the APIC ID from R8[31:0]', () => {
    expect(createVcpuApicId(7n)).toBe(7);
    expect(createVcpuApicId(0xdead_0000_0000_0003n)).toBe(3);
    expect(createVcpuApicId(0xffff_ffffn)).toBe(0xffff_ffff);
  });

  it('CONFIGURE_VTOM query is RCX bit 0', () => {
    expect(CONFIGURE_VTOM_RCX.has(1n, 'query')).toBe(true);
    expect(CONFIGURE_VTOM_RCX.has(2n, 'query')).toBe(false);
  });
});

describe('attestation operands', () => {
  const servicesRows: readonly Row[] = [
    ['reportGpa', 0x00, 8],
    ['reportSize', 0x08, 4],
    ['reserved1', 0x0c, 4],
    ['nonceGpa', 0x10, 8],
    ['nonceSize', 0x18, 2],
    ['reserved2', 0x1a, 6],
    ['manifestGpa', 0x20, 8],
    ['manifestSize', 0x28, 4],
    ['reserved3', 0x2c, 4],
    ['certificatesGpa', 0x30, 8],
    ['certificatesSize', 0x38, 4],
    ['reserved4', 0x3c, 4],
  ];

  it('ATTEST_SERVICES operand is 0x40 bytes at the spec offsets', () => {
    expectLayout(ATTEST_SERVICES_OP, 0x40, servicesRows);
  });

  it('ATTEST_SINGLE_SERVICE adds the service GUID @0x40 and manifest version @0x50', () => {
    expectLayout(ATTEST_SINGLE_SERVICE_OP, 0x58, [
      ...servicesRows,
      ['serviceGuid', 0x40, 16],
      ['manifestVersion', 0x50, 4],
      ['reserved5', 0x54, 4],
    ]);
  });

  it("reads Linux's u32 nonce length (svsm_loc_entry) as the u16 nonce_size", () => {
    const b = ATTEST_SERVICES_OP.alloc();
    new DataView(b.buffer).setUint32(0x18, 64, true);
    expect(ATTEST_SERVICES_OP.get(b, 'nonceSize')).toBe(64);
    expect(reservedFieldsClear(ATTEST_SERVICES_OP, b)).toBe(true);
  });

  it('detects a non-zero reserved byte', () => {
    for (const at of [0x0c, 0x1a, 0x1f, 0x2c, 0x3f]) {
      const b = ATTEST_SERVICES_OP.alloc();
      b[at] = 1;
      expect(reservedFieldsClear(ATTEST_SERVICES_OP, b)).toBe(false);
    }
    const s = ATTEST_SINGLE_SERVICE_OP.alloc();
    s[0x57] = 0x80;
    expect(reservedFieldsClear(ATTEST_SINGLE_SERVICE_OP, s)).toBe(false);
    expect(() => reservedFieldsClear(ATTEST_SINGLE_SERVICE_OP, new Uint8Array(0x40))).toThrow(
      FieldRangeError,
    );
  });
});

describe('GUIDs', () => {
  it('store the first three groups little-endian (EFI order)', () => {
    // COCONUT's comment on the vTPM GUID: bytes 0xebf176c4_2301a545_9641b4e7_dde5bfe3.
    expect(bytesToHex(guidToBytes(VTPM_SERVICE_GUID))).toBe('ebf176c42301a5459641b4e7dde5bfe3');
    expect(guidFromBytes(hexToBytes('ebf176c42301a5459641b4e7dde5bfe3'))).toBe(VTPM_SERVICE_GUID);
    expect(bytesToHex(guidToBytes(SERVICES_MANIFEST_GUID))).toBe(
      'bb9e8463923d7046a1ff58f9c94b87bb',
    );
  });

  it('round-trips any 16 bytes and refuses malformed text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) => {
        expect(guidToBytes(guidFromBytes(b))).toEqual(b);
      }),
    );
    expect(guidToBytes('C476F1EB-0123-45A5-9641-B4E7DDE5BFE3')).toEqual(
      guidToBytes(VTPM_SERVICE_GUID),
    );
    expect(() => guidToBytes('c476f1eb012345a59641b4e7dde5bfe3')).toThrow(FieldRangeError);
    expect(() => guidFromBytes(new Uint8Array(15))).toThrow(FieldRangeError);
  });
});

describe('services manifest', () => {
  it('header and entry are 24 bytes: {GUID, size u32 @0x10, count u32 @0x14}', () => {
    expectLayout(SERVICES_MANIFEST_HEADER, 0x18, [
      ['guid', 0x00, 16],
      ['size', 0x10, 4],
      ['numServices', 0x14, 4],
    ]);
    expectLayout(SERVICES_MANIFEST_ENTRY, 0x18, [
      ['guid', 0x00, 16],
      ['offset', 0x10, 4],
      ['size', 0x14, 4],
    ]);
  });

  it('encodes the header, the entry table and the data byte for byte', () => {
    const m = encodeServicesManifest([
      { guid: VTPM_SERVICE_GUID, data: Uint8Array.of(0xaa, 0xbb, 0xcc) },
    ]);
    expect(bytesToHex(m)).toBe(
      'bb9e8463923d7046a1ff58f9c94b87bb' + // manifest GUID
        '33000000' + // size 24 + 24 + 3 = 0x33
        '01000000' + // one service
        'ebf176c42301a5459641b4e7dde5bfe3' + // vTPM GUID
        '30000000' + // data at 0x30
        '03000000' + // three bytes
        'aabbcc',
    );
    expect(bytesToHex(encodeServicesManifest([]))).toBe(
      'bb9e8463923d7046a1ff58f9c94b87bb' + '18000000' + '00000000',
    );
  });

  const guidArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => guidFromBytes(b));
  const entriesArb = fc.uniqueArray(
    fc.record({ guid: guidArb, data: fc.uint8Array({ maxLength: 64 }) }),
    { selector: (e) => e.guid, maxLength: 6 },
  );

  it('round-trips any set of services, also inside a larger buffer', () => {
    fc.assert(
      fc.property(entriesArb, fc.nat(32), (entries, slack) => {
        const m = encodeServicesManifest(entries);
        expect(parseServicesManifest(m)).toEqual(entries);
        const bigger = new Uint8Array(m.length + slack).fill(0x5a);
        bigger.set(m);
        expect(parseServicesManifest(bigger)).toEqual(entries);
      }),
    );
  });

  function rejects(bytes: Uint8Array, message: RegExp): void {
    expect(() => parseServicesManifest(bytes)).toThrow(ServicesManifestError);
    expect(() => parseServicesManifest(bytes)).toThrow(message);
  }

  const one: ServiceManifestEntry[] = [{ guid: VTPM_SERVICE_GUID, data: Uint8Array.of(1, 2, 3) }];

  it('rejects truncated manifests', () => {
    const m = encodeServicesManifest(one);
    rejects(m.subarray(0, 0), /truncated/);
    rejects(m.subarray(0, 23), /truncated/);
    rejects(m.subarray(0, m.length - 1), /truncated/);
  });

  it('rejects a wrong manifest GUID', () => {
    const m = encodeServicesManifest(one);
    m[0] = (m[0] ?? 0) ^ 1;
    rejects(m, /manifest GUID/);
  });

  it('rejects a service count whose table does not fit', () => {
    const m = encodeServicesManifest(one);
    const view = new DataView(m.buffer);
    view.setUint32(0x14, 2, true); // one entry too many: its table would end past 0x33
    rejects(m, /count 2 out of range/);
    view.setUint32(0x14, 3, true);
    rejects(m, /count 3 out of range/);
    view.setUint32(0x14, 0xffff_ffff, true);
    rejects(m, /out of range/);
  });

  it('rejects a declared size smaller than the header', () => {
    const m = encodeServicesManifest([]);
    new DataView(m.buffer).setUint32(0x10, 0x17, true);
    rejects(m, /smaller than the header/);
  });

  it('rejects data outside the manifest or over the entry table', () => {
    const m = encodeServicesManifest(one);
    const view = new DataView(m.buffer);
    view.setUint32(0x28, 0x31, true); // offset 0x31 + 3 > size 0x33
    rejects(m, /outside/);
    view.setUint32(0x28, 0x2f, true); // inside the entry table
    rejects(m, /outside/);
    view.setUint32(0x28, 0x30, true);
    view.setUint32(0x2c, 0xffff_ffff, true); // huge size, no overflow
    rejects(m, /outside/);
  });

  it('rejects a service listed twice, when parsing and when building', () => {
    const twice = [...one, { guid: VTPM_SERVICE_GUID.toUpperCase(), data: new Uint8Array() }];
    expect(() => encodeServicesManifest(twice)).toThrow(/twice/);
    const m = encodeServicesManifest([
      ...one,
      { guid: SERVICES_MANIFEST_GUID, data: Uint8Array.of(9) },
    ]);
    m.copyWithin(0x30, 0x18, 0x28); // second entry gets the first one's GUID
    rejects(m, /twice/);
    expect(() => encodeServicesManifest([{ guid: 'nope', data: new Uint8Array() }])).toThrow(
      ServicesManifestError,
    );
  });

  it('never fails with anything but ServicesManifestError on hostile bytes', () => {
    const valid = encodeServicesManifest([
      { guid: VTPM_SERVICE_GUID, data: Uint8Array.of(1, 2, 3, 4) },
      { guid: SERVICES_MANIFEST_GUID, data: Uint8Array.of(5) },
    ]);
    const mutated = fc
      .array(fc.tuple(fc.nat(valid.length - 1), fc.nat(255)), { maxLength: 6 })
      .chain((edits) =>
        fc.nat(valid.length).map((cut) => {
          const b = Uint8Array.from(valid);
          for (const [at, v] of edits) b[at] = v;
          return b.subarray(0, cut);
        }),
      );
    const check = (b: Uint8Array): void => {
      try {
        parseServicesManifest(b);
      } catch (e) {
        expect(e).toBeInstanceOf(ServicesManifestError);
      }
    };
    fc.assert(fc.property(mutated, check), { numRuns: 2000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), check));
  });
});

describe('vTPM protocol', () => {
  it('TPM_SEND_COMMAND is MSSIM platform command 8; QUERY reports it as bit 8', () => {
    expect(TpmPlatformCommand.TPM_SEND_COMMAND).toBe(8);
    expect(vtpmPlatformCommandBitmap([TpmPlatformCommand.TPM_SEND_COMMAND])).toBe(0x100n);
    expect(vtpmBitmapHasCommand(0x100n, 8)).toBe(true);
    expect(vtpmBitmapHasCommand(0x100n, 9)).toBe(false);
    expect(vtpmBitmapHasCommand(0x100n, 64)).toBe(false);
    expect(() => vtpmPlatformCommandBitmap([64])).toThrow(FieldRangeError);
  });

  it('request is packed: cmd u32 @0, locality u8 @4, size u32 @5, command @9', () => {
    expectLayout(VTPM_SEND_COMMAND_REQUEST, 4096, [
      ['cmd', 0x0, 4],
      ['locality', 0x4, 1],
      ['bufSize', 0x5, 4],
      ['buf', 0x9, 4087],
    ]);
    expect(VTPM_MAX_COMMAND_SIZE).toBe(4087);
  });

  it('response is size u32 @0, response @4', () => {
    expectLayout(VTPM_SEND_COMMAND_RESPONSE, 4096, [
      ['bufSize', 0x0, 4],
      ['buf', 0x4, 4092],
    ]);
    expect(VTPM_MAX_RESPONSE_SIZE).toBe(4092);
  });

  it('builds a request little-endian, unlike the big-endian MSSIM socket', () => {
    // TPM2_Startup(SU_CLEAR): 80 01 | 00 00 00 0c | 00 00 01 44 | 00 00
    const startup = hexToBytes('8001 0000000c 00000144 0000'.replace(/ /g, ''));
    const req = buildVtpmSendCommandRequest(startup);
    expect(req.length).toBe(4096);
    expect(bytesToHex(req.subarray(0, 9 + 12))).toBe(
      '08000000' + '00' + '0c000000' + '80010000000c000001440000',
    );
    expect(req.subarray(21).every((b) => b === 0)).toBe(true);
    expect(() => buildVtpmSendCommandRequest(new Uint8Array(4088))).toThrow(FieldRangeError);
    expect(buildVtpmSendCommandRequest(new Uint8Array(4087)).length).toBe(4096);
  });

  it('reads a response and refuses a size beyond the buffer', () => {
    const page = new Uint8Array(0x1100);
    const base = 0x100;
    page.set(hexToBytes('0a000000' + '80010000000a00000000'), base);
    expect(bytesToHex(readVtpmSendCommandResponse(page, base))).toBe('80010000000a00000000');
    new DataView(page.buffer).setUint32(base, 4093, true);
    expect(() => readVtpmSendCommandResponse(page, base)).toThrow(FieldRangeError);
    expect(() => readVtpmSendCommandResponse(new Uint8Array(100))).toThrow(FieldRangeError);
  });
});
