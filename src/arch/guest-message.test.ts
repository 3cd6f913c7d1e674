import { describe, expect, it } from 'vitest';
import { expectSpecLayout } from '../../test/support/spec-layout.js';
import fc from 'fast-check';
import {
  AEAD_ALGO_AES_256_GCM,
  decodeGuestRequestResult,
  encodeGuestRequestResult,
  gcmIv,
  GUEST_FIELD_SELECT,
  GUEST_MSG_AAD_OFFSET,
  GUEST_MSG_AAD_SIZE,
  GUEST_MSG_HDR,
  GUEST_MSG_MAX_PAYLOAD,
  GUEST_MSG_PAYLOAD_OFFSET,
  GUEST_REQUEST_VMM_ERR,
  guestMsgAad,
  KEY_SEL,
  MSG_KEY_REQ_V1,
  MSG_KEY_REQ_V2,
  MSG_KEY_RSP,
  MSG_REPORT_REQ,
  MSG_REPORT_RSP,
  ROOT_KEY_SELECT,
  SEV_FW_STATUS,
  SNP_MSG_TYPE,
  snpMsgTypeName,
} from './guest-message.js';
import { bytesToHex, FieldRangeError } from './struct.js';

// Tables typed from reference/sev-snp-abi.md section 3, independently of guest-message.ts.
describe('guest message header', () => {
  it('is 0x60 bytes with every field at its spec offset', () => {
    expectSpecLayout(GUEST_MSG_HDR, 0x60, {
      authtag: [0x00, 32],
      msgSeqno: [0x20, 8],
      reserved28: [0x28, 8],
      algo: [0x30, 1],
      hdrVersion: [0x31, 1],
      hdrSize: [0x32, 2],
      msgType: [0x34, 1],
      msgVersion: [0x35, 1],
      msgSize: [0x36, 2],
      reserved38: [0x38, 4],
      msgVmpck: [0x3c, 1],
      reserved3D: [0x3d, 35],
    });
  });

  it('lays out a REPORT_REQ header byte for byte as Linux builds it', () => {
    const hdr = GUEST_MSG_HDR.alloc();
    GUEST_MSG_HDR.on(hdr)
      .set('msgSeqno', 1n)
      .set('algo', AEAD_ALGO_AES_256_GCM)
      .set('hdrVersion', 1)
      .set('hdrSize', 0x60)
      .set('msgType', SNP_MSG_TYPE.REPORT_REQ)
      .set('msgVersion', 1)
      .set('msgSize', 0x60)
      .set('msgVmpck', 2);
    expect(bytesToHex(hdr.subarray(0x20, 0x40))).toBe(
      '0100000000000000' + '0000000000000000' + '0101600005016000' + '0000000002000000',
    );
  });

  it('puts the payload after the header and caps it at 4000 bytes', () => {
    expect(GUEST_MSG_PAYLOAD_OFFSET).toBe(0x60);
    expect(GUEST_MSG_MAX_PAYLOAD).toBe(4096 - 0x60);
    expect(AEAD_ALGO_AES_256_GCM).toBe(1);
  });

  it('authenticates header bytes 0x30..0x5f as AAD', () => {
    expect([GUEST_MSG_AAD_OFFSET, GUEST_MSG_AAD_SIZE]).toEqual([0x30, 48]);
    const page = Uint8Array.from({ length: 0x100 }, (_, i) => i);
    const aad = guestMsgAad(page);
    expect(aad.length).toBe(48);
    expect([aad[0], aad[47]]).toEqual([0x30, 0x5f]);
    expect(guestMsgAad(page, 0x10)[0]).toBe(0x40);
    expect(() => guestMsgAad(new Uint8Array(0x5f))).toThrow(FieldRangeError);
  });
});

describe('AES-GCM IV', () => {
  it('is the sequence number as a little-endian u64 followed by four zero bytes', () => {
    expect(bytesToHex(gcmIv(1n))).toBe('010000000000000000000000');
    expect(bytesToHex(gcmIv(0x0102030405060708n))).toBe('080706050403020100000000');
    expect(bytesToHex(gcmIv(0xffff_ffff_ffff_ffffn))).toBe('ffffffffffffffff00000000');
  });

  it('holds for every u64 and refuses values outside it', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (seqno) => {
        const iv = gcmIv(seqno);
        const view = new DataView(iv.buffer);
        return iv.length === 12 && view.getBigUint64(0, true) === seqno && view.getUint32(8) === 0;
      }),
    );
    expect(() => gcmIv(-1n)).toThrow(FieldRangeError);
    expect(() => gcmIv(1n << 64n)).toThrow(FieldRangeError);
  });
});

describe('message types', () => {
  it('numbers the types as the SNP ABI does', () => {
    expect(SNP_MSG_TYPE).toEqual({
      INVALID: 0,
      CPUID_REQ: 1,
      CPUID_RSP: 2,
      KEY_REQ: 3,
      KEY_RSP: 4,
      REPORT_REQ: 5,
      REPORT_RSP: 6,
      EXPORT_REQ: 7,
      EXPORT_RSP: 8,
      IMPORT_REQ: 9,
      IMPORT_RSP: 10,
      ABSORB_REQ: 11,
      ABSORB_RSP: 12,
      VMRK_REQ: 13,
      VMRK_RSP: 14,
      ABSORB_NOMA_REQ: 15,
      ABSORB_NOMA_RSP: 16,
      TSC_INFO_REQ: 17,
      TSC_INFO_RSP: 18,
    });
  });

  it('answers each request type with the next type number', () => {
    for (const [name, value] of Object.entries(SNP_MSG_TYPE)) {
      if (!name.endsWith('_REQ')) continue;
      expect(snpMsgTypeName(value + 1)).toBe(name.replace(/_REQ$/, '_RSP'));
    }
    expect(snpMsgTypeName(5)).toBe('REPORT_REQ');
    expect(snpMsgTypeName(19)).toBeUndefined();
  });
});

describe('report and key payloads', () => {
  it('MSG_REPORT_REQ is 0x60 bytes', () => {
    expectSpecLayout(MSG_REPORT_REQ, 0x60, {
      reportData: [0x00, 64],
      vmpl: [0x40, 4],
      keySel: [0x44, 4],
      reserved48: [0x48, 24],
    });
    expect(KEY_SEL).toEqual({ DEFAULT: 0, VCEK: 1, VLEK: 2 });
  });

  it('MSG_REPORT_RSP carries the 0x4a0-byte report at 0x20, 0x4c0 bytes in all', () => {
    expectSpecLayout(MSG_REPORT_RSP, 0x4c0, {
      status: [0x00, 4],
      reportSize: [0x04, 4],
      reserved08: [0x08, 24],
      report: [0x20, 0x4a0],
    });
  });

  const keyReqV1 = {
    rootKeySelect: [0x00, 4],
    reserved04: [0x04, 4],
    guestFieldSelect: [0x08, 8],
    vmpl: [0x10, 4],
    guestSvn: [0x14, 4],
    tcbVersion: [0x18, 8],
  } as const;

  it('MSG_KEY_REQ is 0x20 bytes in version 1', () => {
    expectSpecLayout(MSG_KEY_REQ_V1, 0x20, keyReqV1);
  });

  it('MSG_KEY_REQ version 2 appends LAUNCH_MIT_VECTOR at 0x20', () => {
    expectSpecLayout(MSG_KEY_REQ_V2, 0x28, { ...keyReqV1, launchMitVector: [0x20, 8] });
  });

  it('GUEST_FIELD_SELECT and ROOT_KEY_SELECT have the spec bit positions', () => {
    const bits = {
      guestPolicy: 0,
      imageId: 1,
      familyId: 2,
      measurement: 3,
      guestSvn: 4,
      tcbVersion: 5,
      launchMitVector: 6,
    } as const;
    for (const [name, bit] of Object.entries(bits)) {
      expect([name, GUEST_FIELD_SELECT.encode({ [name]: true })]).toEqual([
        name,
        1n << BigInt(bit),
      ]);
    }
    expect(GUEST_FIELD_SELECT.reservedBits(0x7fn)).toBe(0n);
    expect(GUEST_FIELD_SELECT.reservedBits(0x80n)).toBe(0x80n);
    expect(ROOT_KEY_SELECT.encode({ rootKeySel: true })).toBe(1n);
    expect(ROOT_KEY_SELECT.encode({ keySel: KEY_SEL.VLEK })).toBe(4n);
  });

  it('MSG_KEY_RSP is 0x40 bytes with the derived key at 0x20', () => {
    expectSpecLayout(MSG_KEY_RSP, 0x40, {
      status: [0x00, 4],
      reserved04: [0x04, 28],
      derivedKey: [0x20, 32],
    });
  });
});

describe('firmware status and VMM errors', () => {
  it('uses the firmware status numbers of psp-sev.h', () => {
    expect(SEV_FW_STATUS).toMatchObject({
      SUCCESS: 0,
      INVALID_CONFIG: 0x03,
      INVALID_LEN: 0x04,
      INVALID_ADDRESS: 0x09,
      BAD_SIGNATURE: 0x0a,
      INVALID_GUEST: 0x10,
      UNSUPPORTED: 0x15,
      INVALID_PARAM: 0x16,
      INVALID_PAGE_STATE: 0x1a,
      AEAD_OFLOW: 0x1d,
      RB_MODE_EXITED: 0x1f,
      RMP_INIT_REQUIRED: 0x20,
      INVALID_KEY: 0x27,
    });
    const values = Object.values(SEV_FW_STATUS);
    expect(new Set(values).size).toBe(values.length);
    expect(values).not.toContain(0x1e);
  });

  it('puts the VMM error in SW_EXITINFO2[63:32] and the firmware error in [31:0]', () => {
    expect(GUEST_REQUEST_VMM_ERR).toEqual({ INVALID_LEN: 1, BUSY: 2 });
    expect(
      encodeGuestRequestResult({ fwError: 0, vmmError: GUEST_REQUEST_VMM_ERR.INVALID_LEN }),
    ).toBe(0x1_0000_0000n);
    expect(encodeGuestRequestResult({ fwError: SEV_FW_STATUS.INVALID_PARAM, vmmError: 0 })).toBe(
      0x16n,
    );
    expect(decodeGuestRequestResult(0x2_0000_0027n)).toEqual({ fwError: 0x27, vmmError: 2 });
  });

  it('round-trips every pair of u32 halves and refuses values that do not fit', () => {
    fc.assert(
      fc.property(fc.nat(0xffff_ffff), fc.nat(0xffff_ffff), (fwError, vmmError) => {
        const r = decodeGuestRequestResult(encodeGuestRequestResult({ fwError, vmmError }));
        return r.fwError === fwError && r.vmmError === vmmError;
      }),
    );
    expect(() => encodeGuestRequestResult({ fwError: -1, vmmError: 0 })).toThrow(FieldRangeError);
    expect(() => encodeGuestRequestResult({ fwError: 0, vmmError: 2 ** 32 })).toThrow(
      FieldRangeError,
    );
    expect(() => decodeGuestRequestResult(1n << 64n)).toThrow(FieldRangeError);
  });
});
