import { describe, expect, it } from 'vitest';
import { expectSpecLayout } from '../../test/support/spec-layout.js';
import fc from 'fast-check';
import {
  AMD_KDS_OID,
  bigEndianToSevComponent,
  CERT_GUID,
  CERT_TABLE_ENTRY,
  CertTableError,
  certTableSize,
  encodeCertTable,
  guidFromBytesLe,
  guidFromBytesRfc4122,
  guidToBytesLe,
  guidToBytesRfc4122,
  ID_AUTH_INFO,
  ID_BLOCK,
  ID_BLOCK_VERSION,
  ID_KEY_ALGO_ECDSA_P384_SHA384,
  parseCertTable,
  readCertTableHeader,
  SEV_ECDSA_CURVE_P384,
  SEV_ECDSA_PUBKEY,
  SEV_ECDSA_SIGNATURE,
  sevComponentToBigEndian,
} from './certs.js';
import { bytesToHex, FieldRangeError, hexToBytes } from './struct.js';

// Facts typed from reference/sev-snp-abi.md sections 2 and 4, independently of certs.ts.
describe('GUID byte orders', () => {
  const OVMF_TABLE_FOOTER = '96b582de-1fb2-45f7-baea-a366c55a082d';

  it('writes RFC 4122 bytes in the order the hex digits are written', () => {
    expect(bytesToHex(guidToBytesRfc4122(CERT_GUID.VCEK))).toBe('63da758de6644564adc5f4b93be8accd');
    expect(guidFromBytesRfc4122(hexToBytes('c0b406a4a803495297433fb6014cd0ae'))).toBe(
      CERT_GUID.ARK,
    );
  });

  it('writes the bytes_le form with the first three groups byte-swapped, as OVMF does', () => {
    expect(bytesToHex(guidToBytesLe(OVMF_TABLE_FOOTER))).toBe('de82b596b21ff745baeaa366c55a082d');
    expect(guidFromBytesLe(hexToBytes('de82b596b21ff745baeaa366c55a082d'))).toBe(OVMF_TABLE_FOOTER);
  });

  it('accepts upper case and always returns lower case', () => {
    expect(guidFromBytesRfc4122(guidToBytesRfc4122(CERT_GUID.ASK.toUpperCase()))).toBe(
      CERT_GUID.ASK,
    );
  });

  it('round-trips any GUID through both orders, and the two orders differ in the first 8 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const s = guidFromBytesRfc4122(bytes);
        expect(guidToBytesRfc4122(s)).toEqual(bytes);
        expect(guidFromBytesLe(guidToBytesLe(s))).toBe(s);
        const le = guidToBytesLe(s);
        expect([...le.subarray(0, 4)]).toEqual([...bytes.subarray(0, 4)].reverse());
        expect([...le.subarray(8)]).toEqual([...bytes.subarray(8)]);
      }),
    );
  });

  it('refuses malformed GUID strings and wrong byte counts', () => {
    for (const bad of [
      '',
      'c0b406a4a80349529743-3fb6014cd0ae',
      `${CERT_GUID.ARK}0`,
      'g'.repeat(36),
    ]) {
      expect(() => guidToBytesRfc4122(bad)).toThrow(FieldRangeError);
    }
    expect(() => guidFromBytesRfc4122(new Uint8Array(15))).toThrow(FieldRangeError);
    expect(() => guidFromBytesLe(new Uint8Array(17))).toThrow(FieldRangeError);
  });

  it('names the AMD certificates with the GHCB spec GUIDs', () => {
    expect(CERT_GUID).toEqual({
      ARK: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
      ASK: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
      VCEK: '63da758d-e664-4564-adc5-f4b93be8accd',
      VLEK: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
    });
  });
});

const lowerGuid = fc.uuid().map((g) => g.toLowerCase());
const certEntry = fc.record({ guid: lowerGuid, data: fc.uint8Array({ maxLength: 48 }) });
const certList = fc.array(certEntry, { maxLength: 6 });

function parsesOrRefusesCleanly(bytes: Uint8Array): void {
  try {
    for (const e of parseCertTable(bytes)) expect(e.data.length).toBeLessThanOrEqual(bytes.length);
  } catch (err) {
    expect(err).toBeInstanceOf(CertTableError);
  }
}

describe('certificate table', () => {
  it('has 24-byte entries {GUID, offset, length}', () => {
    expectSpecLayout(CERT_TABLE_ENTRY, 24, {
      guid: [0x00, 16],
      offset: [0x10, 4],
      length: [0x14, 4],
    });
  });

  it('encodes entries, an all-zero terminator, then the blobs, offsets from the table start', () => {
    const table = encodeCertTable([{ guid: CERT_GUID.VCEK, data: Uint8Array.of(0xaa, 0xbb) }]);
    expect(bytesToHex(table)).toBe(
      '63da758de6644564adc5f4b93be8accd' + '30000000' + '02000000' + '00'.repeat(24) + 'aabb',
    );
    expect(certTableSize([{ guid: CERT_GUID.VCEK, data: new Uint8Array(2) }])).toBe(50);
    expect(bytesToHex(encodeCertTable([]))).toBe('00'.repeat(24));
  });

  it('reads a table written by hand, ignoring page padding after the blobs', () => {
    const page = new Uint8Array(4096);
    page.set(guidToBytesRfc4122(CERT_GUID.ARK), 0);
    new DataView(page.buffer).setUint32(0x10, 0x48, true);
    new DataView(page.buffer).setUint32(0x14, 3, true);
    page.set(guidToBytesRfc4122(CERT_GUID.ASK), 24);
    new DataView(page.buffer).setUint32(24 + 0x10, 0x4b, true);
    new DataView(page.buffer).setUint32(24 + 0x14, 1, true);
    page.set([1, 2, 3, 4], 0x48);
    expect(readCertTableHeader(page)).toEqual([
      { guid: CERT_GUID.ARK, offset: 0x48, length: 3 },
      { guid: CERT_GUID.ASK, offset: 0x4b, length: 1 },
    ]);
    expect(parseCertTable(page)).toEqual([
      { guid: CERT_GUID.ARK, data: Uint8Array.of(1, 2, 3) },
      { guid: CERT_GUID.ASK, data: Uint8Array.of(4) },
    ]);
  });

  it('parse(encode(x)) is x, with or without trailing padding', () => {
    fc.assert(
      fc.property(certList, fc.nat(64), (entries, pad) => {
        const table = encodeCertTable(entries);
        expect(table.length).toBe(certTableSize(entries));
        expect(parseCertTable(table)).toEqual(entries);
        const padded = new Uint8Array(table.length + pad);
        padded.set(table);
        expect(parseCertTable(padded)).toEqual(entries);
      }),
    );
  });

  it('refuses every truncation of an encoded table', () => {
    fc.assert(
      fc.property(certList, fc.nat(), (entries, cut) => {
        const table = encodeCertTable(entries);
        const short = table.subarray(0, cut % table.length);
        expect(() => parseCertTable(short)).toThrow(CertTableError);
      }),
    );
  });

  it('refuses a table with no terminator', () => {
    expect(() => parseCertTable(new Uint8Array(0))).toThrow(/no all-zero terminator/);
    expect(() => parseCertTable(new Uint8Array(23))).toThrow(/no all-zero terminator/);
    const noEnd = encodeCertTable([{ guid: CERT_GUID.VCEK, data: new Uint8Array(0) }]).subarray(
      0,
      24,
    );
    expect(() => parseCertTable(noEnd)).toThrow(/no all-zero terminator entry within its 24 bytes/);
  });

  it('refuses data ranges inside the entry list or outside the buffer', () => {
    const table = encodeCertTable([{ guid: CERT_GUID.VCEK, data: Uint8Array.of(1, 2, 3) }]);
    const view = new DataView(table.buffer);
    view.setUint32(0x10, 0x2f, true);
    expect(() => parseCertTable(table)).toThrow(
      /entry 0 .* inside the entry list, which ends at 0x30/,
    );
    view.setUint32(0x10, 0x31, true);
    expect(() => parseCertTable(table)).toThrow(/0x31\.\.0x34, outside the 0x33-byte buffer/);
    view.setUint32(0x10, 0xffff_ffff, true);
    view.setUint32(0x14, 0xffff_ffff, true);
    expect(() => parseCertTable(table)).toThrow(CertTableError);
  });

  it('never fails other than with CertTableError on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), parsesOrRefusesCleanly));
  });

  it('never fails other than with CertTableError on tables with hostile offsets and lengths', () => {
    const hostileEntry = fc.record({
      guid: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      offset: fc.oneof(fc.nat(200), fc.constant(0xffff_ffff)),
      length: fc.oneof(fc.nat(200), fc.constant(0xffff_ffff)),
    });
    fc.assert(
      fc.property(
        fc.array(hostileEntry, { maxLength: 5 }),
        fc.boolean(),
        fc.uint8Array({ maxLength: 128 }),
        (entries, terminate, tail) => {
          const head = new Uint8Array((entries.length + (terminate ? 1 : 0)) * 24);
          entries.forEach((e, i) =>
            CERT_TABLE_ENTRY.on(head, i * 24)
              .set('guid', e.guid)
              .set('offset', e.offset)
              .set('length', e.length),
          );
          const bytes = new Uint8Array(head.length + tail.length);
          bytes.set(head);
          bytes.set(tail, head.length);
          parsesOrRefusesCleanly(bytes);
        },
      ),
    );
  });
});

describe('AMD KDS certificate extensions', () => {
  it('uses the OIDs of the arc 1.3.6.1.4.1.3704.1', () => {
    expect(AMD_KDS_OID).toEqual({
      structVersion: '1.3.6.1.4.1.3704.1.1',
      productName: '1.3.6.1.4.1.3704.1.2',
      blSPL: '1.3.6.1.4.1.3704.1.3.1',
      teeSPL: '1.3.6.1.4.1.3704.1.3.2',
      snpSPL: '1.3.6.1.4.1.3704.1.3.3',
      spl4: '1.3.6.1.4.1.3704.1.3.4',
      spl5: '1.3.6.1.4.1.3704.1.3.5',
      spl6: '1.3.6.1.4.1.3704.1.3.6',
      spl7: '1.3.6.1.4.1.3704.1.3.7',
      ucodeSPL: '1.3.6.1.4.1.3704.1.3.8',
      fmcSPL: '1.3.6.1.4.1.3704.1.3.9',
      hwID: '1.3.6.1.4.1.3704.1.4',
      cspID: '1.3.6.1.4.1.3704.1.5',
    });
  });
});

describe('ID block and ID auth info', () => {
  it('ID block is 0x60 bytes', () => {
    expectSpecLayout(ID_BLOCK, 0x60, {
      ld: [0x00, 48],
      familyId: [0x30, 16],
      imageId: [0x40, 16],
      version: [0x50, 4],
      guestSvn: [0x54, 4],
      policy: [0x58, 8],
    });
    expect(ID_BLOCK_VERSION).toBe(1);
  });

  it('ID auth info is 0x1000 bytes with signatures and keys at the spec offsets', () => {
    expectSpecLayout(ID_AUTH_INFO, 0x1000, {
      idKeyAlgo: [0x000, 4],
      authKeyAlgo: [0x004, 4],
      reserved008: [0x008, 0x38],
      idBlockSig: [0x040, 0x200],
      idKey: [0x240, 0x404],
      reserved644: [0x644, 0x3c],
      idKeySig: [0x680, 0x200],
      authorKey: [0x880, 0x404],
      reservedC84: [0xc84, 0x37c],
    });
    expect(ID_KEY_ALGO_ECDSA_P384_SHA384).toBe(1);
  });
});

describe('AMD ECDSA key and signature formats', () => {
  it('public key is 0x404 bytes: curve, Qx, Qy, zero padding', () => {
    expectSpecLayout(SEV_ECDSA_PUBKEY, 0x404, {
      curve: [0x000, 4],
      qx: [0x004, 72],
      qy: [0x04c, 72],
      reserved094: [0x094, 0x404 - 0x94],
    });
    expect(SEV_ECDSA_CURVE_P384).toBe(2);
  });

  it('signature is 0x200 bytes: R, S, 368 zero bytes', () => {
    expectSpecLayout(SEV_ECDSA_SIGNATURE, 0x200, {
      r: [0x000, 72],
      s: [0x048, 72],
      reserved090: [0x090, 368],
    });
  });

  it('turns a 72-byte little-endian component into a 48-byte big-endian integer and back', () => {
    const le = new Uint8Array(72);
    le.set([0x01, 0x02, 0x03]);
    const be = sevComponentToBigEndian(le);
    expect(bytesToHex(be)).toBe('00'.repeat(45) + '030201');
    expect(bigEndianToSevComponent(be)).toEqual(le);
    expect(bytesToHex(sevComponentToBigEndian(le, 3))).toBe('030201');
  });

  it('accepts a DER-style leading zero and round-trips every 48-byte integer', () => {
    const der = Uint8Array.of(0x00, 0x80, ...new Uint8Array(47));
    const le = bigEndianToSevComponent(der);
    expect([le[46], le[47], le[48]]).toEqual([0, 0x80, 0]);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 48, maxLength: 48 }), (be) => {
        const stored = bigEndianToSevComponent(be);
        expect(stored.length).toBe(72);
        expect(stored.subarray(48).every((b) => b === 0)).toBe(true);
        expect(sevComponentToBigEndian(stored)).toEqual(be);
      }),
    );
  });

  it('refuses components that do not fit', () => {
    const le = new Uint8Array(72);
    le[48] = 1;
    expect(() => sevComponentToBigEndian(le)).toThrow(FieldRangeError);
    expect(sevComponentToBigEndian(le, 49)[0]).toBe(1);
    expect(() => sevComponentToBigEndian(new Uint8Array(48))).toThrow(FieldRangeError);
    expect(() => sevComponentToBigEndian(new Uint8Array(72), 73)).toThrow(FieldRangeError);
    expect(() => bigEndianToSevComponent(new Uint8Array(73).fill(1))).toThrow(FieldRangeError);
    expect(bigEndianToSevComponent(new Uint8Array(80))).toEqual(new Uint8Array(72));
  });
});
