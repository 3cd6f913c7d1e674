import { EVENT_INJ } from './vmsa.js';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FieldRangeError, LayoutError } from './struct.js';
import {
  AP_CREATION_EXITINFO1,
  AP_CREATION_OP,
  clearValid,
  CPUID_REGISTER,
  decodeMsrProtocol,
  describeTermination,
  encodeMsrProtocol,
  exceptionEvent,
  GHCB,
  GHCB_ERR,
  GHCB_HV_FEATURES,
  GHCB_MSR_INFO,
  GHCB_RESULT,
  GHCB_VALIDATED_FIELDS,
  ghcbMsrInfo,
  ghcbResultCode,
  ghcbValidBit,
  getValidField,
  IOIO_EXITINFO1,
  isValid,
  markValid,
  missingInputs,
  msrCpuidRequest,
  msrCpuidResponse,
  msrHvFeaturesResponse,
  msrPscRequest,
  msrRegisterGpaRequest,
  msrRunVmplRequest,
  msrSevInfoResponse,
  msrTerminateRequest,
  PSC_DESC,
  PSC_ENTRY,
  PSC_ERROR,
  PSC_HEADER,
  PSC_MAX_ENTRIES,
  PSC_OP,
  pscEntryOffset,
  readPscEntry,
  readValidBitmap,
  setValidField,
  SVSM_REQUIRED_HV_FEATURES,
  SW_EXITCODE,
  swExitCodeName,
  TERM_REQUEST_EXITINFO1,
  validFields,
  writePscEntry,
  type GhcbMsrMessage,
  type GhcbValidatedField,
} from './ghcb.js';

// Offsets and sizes copied from the GHCB layout table of sev-snp-abi.md §6.1 and
// linux-snp-guest.md §3.3, not from ghcb.ts.
const GHCB_OFFSETS: readonly [string, number, number][] = [
  ['cpl', 0x0cb, 1],
  ['xss', 0x140, 8],
  ['dr7', 0x160, 8],
  ['rip', 0x178, 8],
  ['rsp', 0x1d8, 8],
  ['rax', 0x1f8, 8],
  ['rcx', 0x308, 8],
  ['rdx', 0x310, 8],
  ['rbx', 0x318, 8],
  ['rbp', 0x328, 8],
  ['rsi', 0x330, 8],
  ['rdi', 0x338, 8],
  ['r8', 0x340, 8],
  ['r9', 0x348, 8],
  ['r10', 0x350, 8],
  ['r11', 0x358, 8],
  ['r12', 0x360, 8],
  ['r13', 0x368, 8],
  ['r14', 0x370, 8],
  ['r15', 0x378, 8],
  ['swExitCode', 0x390, 8],
  ['swExitInfo1', 0x398, 8],
  ['swExitInfo2', 0x3a0, 8],
  ['swScratch', 0x3a8, 8],
  ['xcr0', 0x3e8, 8],
  ['validBitmap', 0x3f0, 16],
  ['x87StateGpa', 0x400, 8],
  ['sharedBuffer', 0x800, 0x7f0],
  ['protocolVersion', 0xffa, 2],
  ['ghcbUsage', 0xffc, 4],
];

// Valid-bitmap bits from sev-snp-abi.md §6.1 and linux-snp-guest.md §3.3.
const VALID_BITS: readonly [GhcbValidatedField, number][] = [
  ['cpl', 25],
  ['xss', 40],
  ['dr7', 44],
  ['rip', 47],
  ['rsp', 59],
  ['rax', 63],
  ['rcx', 97],
  ['rdx', 98],
  ['rbx', 99],
  ['swExitCode', 114],
  ['swExitInfo1', 115],
  ['swExitInfo2', 116],
  ['swScratch', 117],
  ['xcr0', 125],
];

describe('GHCB page layout', () => {
  it('is one 4 KiB page with every spec field at its offset and size', () => {
    expect(GHCB.size).toBe(0x1000);
    for (const [name, offset, size] of GHCB_OFFSETS) {
      const f = GHCB.field(name as keyof typeof GHCB.specs & string);
      expect([name, f.offset, f.size]).toEqual([name, offset, size]);
    }
    expect(GHCB.fields.length).toBe(GHCB_OFFSETS.length);
  });

  it('stores registers little-endian at their offsets', () => {
    const page = GHCB.alloc();
    GHCB.set(page, 'rax', 0x1122334455667788n);
    GHCB.set(page, 'protocolVersion', 2);
    expect(page[0x1f8]).toBe(0x88);
    expect(page[0x1ff]).toBe(0x11);
    expect([...page.subarray(0xffa, 0xffc)]).toEqual([2, 0]);
  });
});

describe('GHCB valid bitmap', () => {
  it('gives each save-area field the bit offset / 8', () => {
    for (const [name, bit] of VALID_BITS) expect([name, ghcbValidBit(name)]).toEqual([name, bit]);
  });

  it('has no bit for fields outside the bitmap range, even if a caller casts', () => {
    expect(() => ghcbValidBit('x87StateGpa' as GhcbValidatedField)).toThrow(LayoutError);
    expect(() => ghcbValidBit('ghcbUsage' as GhcbValidatedField)).toThrow(LayoutError);
    expect(GHCB_VALIDATED_FIELDS).not.toContain('validBitmap');
  });

  it('marks RAX as bit 7 of bitmap byte 7 and RCX as bit 1 of byte 12', () => {
    const page = GHCB.alloc();
    markValid(page, 'rax');
    expect(page[0x3f7]).toBe(0x80);
    markValid(page, 'rcx');
    expect(page[0x3fc]).toBe(0x02);
    expect(readValidBitmap(page)).toBe((1n << 63n) | (1n << 97n));
  });

  it('reports exactly the marked fields as valid', () => {
    fc.assert(
      fc.property(fc.subarray([...GHCB_VALIDATED_FIELDS]), (marked) => {
        const page = GHCB.alloc();
        for (const name of marked) markValid(page, name);
        const set = new Set(marked);
        expect(validFields(page)).toEqual(GHCB_VALIDATED_FIELDS.filter((n) => set.has(n)));
        expect(missingInputs(page, GHCB_VALIDATED_FIELDS)).toEqual(
          GHCB_VALIDATED_FIELDS.filter((n) => !set.has(n)),
        );
      }),
    );
  });

  it('ignores stray bits such as the bit 127 coconut sets for PROTOCOL_VERSION', () => {
    const page = GHCB.alloc();
    page[0x3ff] = 0x80; // bit 127
    page[0x3f0] = 0x01; // bit 0: no field
    markValid(page, 'rcx');
    expect(missingInputs(page, ['rax', 'rcx'])).toEqual(['rax']);
    markValid(page, 'rax');
    expect(missingInputs(page, ['rax', 'rcx'])).toEqual([]);
  });

  it('clearValid zeroes all 128 bits and nothing else', () => {
    const page = GHCB.alloc().fill(0xff);
    clearValid(page);
    expect(readValidBitmap(page)).toBe(0n);
    expect(page[0x3ef]).toBe(0xff);
    expect(page[0x400]).toBe(0xff);
  });

  it('setValidField writes and marks; getValidField hides unmarked fields', () => {
    const page = GHCB.alloc();
    GHCB.set(page, 'rbx', 5n);
    expect(getValidField(page, 'rbx')).toBeUndefined();
    setValidField(page, 'rbx', 7n);
    expect(getValidField(page, 'rbx')).toBe(7n);
    expect(isValid(page, 'rbx')).toBe(true);
  });

  it('works on a GHCB inside a larger buffer and refuses one that does not fit', () => {
    const mem = new Uint8Array(0x3000);
    markValid(mem, 'swExitCode', 0x1000);
    expect(isValid(mem, 'swExitCode', 0x1000)).toBe(true);
    expect(isValid(mem, 'swExitCode', 0)).toBe(false);
    expect(() => markValid(mem, 'rax', 0x2001)).toThrow(FieldRangeError);
  });
});

describe('GHCB return convention', () => {
  it('has the spec codes', () => {
    expect(GHCB_RESULT).toEqual({ OK: 0, EXCEPTION: 1, GHCB_ERROR: 2 });
    expect(GHCB_ERR).toEqual({
      NOT_REGISTERED: 1,
      INVALID_USAGE: 2,
      INVALID_SCRATCH_AREA: 3,
      MISSING_INPUT: 4,
      INVALID_INPUT: 5,
      INVALID_EVENT: 6,
    });
    expect(ghcbResultCode(0xdead_0000_0002n)).toBe(2);
  });

  it('encodes #GP(0) as a valid exception event with an error code', () => {
    expect(exceptionEvent(13, 0)).toBe(0x8000_0b0dn);
    expect(exceptionEvent(6)).toBe(0x8000_0306n);
    expect(EVENT_INJ.get(exceptionEvent(14, 0x1234), 'errorCode')).toBe(0x1234n);
  });
});

describe('GHCB MSR protocol', () => {
  it('has the function codes of the spec', () => {
    expect(GHCB_MSR_INFO).toEqual({
      SEV_INFO_RESP: 0x001,
      SEV_INFO_REQ: 0x002,
      CPUID_REQ: 0x004,
      CPUID_RESP: 0x005,
      AP_RESET_HOLD_REQ: 0x006,
      AP_RESET_HOLD_RESP: 0x007,
      PREFERRED_GPA_REQ: 0x010,
      PREFERRED_GPA_RESP: 0x011,
      REGISTER_GPA_REQ: 0x012,
      REGISTER_GPA_RESP: 0x013,
      PSC_REQ: 0x014,
      PSC_RESP: 0x015,
      RUN_VMPL_REQ: 0x016,
      RUN_VMPL_RESP: 0x017,
      HV_FEATURES_REQ: 0x080,
      HV_FEATURES_RESP: 0x081,
      TERM_REQ: 0x100,
    });
  });

  it('encodes known values bit for bit', () => {
    // CPUID 0x8000001F, EBX: register 1 in [31:30], leaf in [63:32].
    expect(msrCpuidRequest(0x8000_001f, CPUID_REGISTER.EBX)).toBe(0x8000_001f_4000_0004n);
    expect(msrCpuidResponse(CPUID_REGISTER.EDX, 0xcafe)).toBe(0x0000_cafe_c000_0005n);
    // max 2, min 1, C-bit 51.
    expect(msrSevInfoResponse(2, 1, 51)).toBe(0x0002_0001_3300_0001n);
    // The value the Linux GHCB_MSR_VMPL_REQ_LEVEL fix quotes for VMPL1.
    expect(msrRunVmplRequest(1)).toBe(0x1_0000_0016n);
    expect(msrPscRequest(0x12345, PSC_OP.SHARED)).toBe(0x0020_0000_1234_5014n);
    expect(msrRegisterGpaRequest(0x1234)).toBe(0x123_4012n);
    expect(msrHvFeaturesResponse(SVSM_REQUIRED_HV_FEATURES)).toBe(0x2_3081n);
    expect(msrTerminateRequest(1, 3)).toBe(0x3_1100n);
  });

  it('decodes known values', () => {
    expect(decodeMsrProtocol(0x7000n)).toEqual({ kind: 'ghcbGpa', gfn: 7 });
    expect(decodeMsrProtocol(0x0002_0001_3300_0001n)).toEqual({
      kind: 'sevInfoResponse',
      maxProtocol: 2,
      minProtocol: 1,
      cBitPosition: 51,
    });
    expect(decodeMsrProtocol(0x8000_001f_4000_0004n)).toEqual({
      kind: 'cpuidRequest',
      fn: 0x8000_001f,
      register: 1,
    });
    expect(decodeMsrProtocol(0x0020_0000_1234_5014n)).toEqual({
      kind: 'pscRequest',
      gfn: 0x12345,
      operation: 2,
    });
    expect(decodeMsrProtocol(0xffff_ffff_ffff_f011n)).toEqual({
      kind: 'preferredGpaResponse',
      gfn: 0xf_ffff_ffff_ffff,
    });
    expect(decodeMsrProtocol(0x1_0000_0017n)).toEqual({ kind: 'runVmplResponse', error: 1 });
    expect(decodeMsrProtocol(0x3_1100n)).toEqual({
      kind: 'terminate',
      reasonSet: 1,
      reasonCode: 3,
    });
    expect(decodeMsrProtocol(0xabc_fffn)).toEqual({ kind: 'unknown', info: 0xfff, data: 0xabcn });
  });

  it('drops reserved bits when decoding', () => {
    // PSC request with bits 63:56 set: not part of the GFN or the operation.
    expect(decodeMsrProtocol(0xff20_0000_1234_5014n)).toEqual({
      kind: 'pscRequest',
      gfn: 0x12345,
      operation: 2,
    });
  });

  it('refuses fields wider than their bit range', () => {
    expect(() => msrRunVmplRequest(256)).toThrow(FieldRangeError);
    expect(() => msrPscRequest(2 ** 40, PSC_OP.PRIVATE)).toThrow(FieldRangeError);
    expect(() => decodeMsrProtocol(1n << 64n)).toThrow(FieldRangeError);
  });

  const u = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
  const big = (bits: number) => fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
  const reg = fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<0 | 1 | 2 | 3>;
  const message: fc.Arbitrary<GhcbMsrMessage> = fc.oneof(
    u(52).map((gfn) => ({ kind: 'ghcbGpa', gfn }) as const),
    fc.constant({ kind: 'sevInfoRequest' } as const),
    fc
      .tuple(u(16), u(16), u(8))
      .map(
        ([maxProtocol, minProtocol, cBitPosition]) =>
          ({ kind: 'sevInfoResponse', maxProtocol, minProtocol, cBitPosition }) as const,
      ),
    fc.tuple(u(32), reg).map(([fn, register]) => ({ kind: 'cpuidRequest', fn, register }) as const),
    fc
      .tuple(reg, u(32))
      .map(([register, value]) => ({ kind: 'cpuidResponse', register, value }) as const),
    fc.constant({ kind: 'apResetHoldRequest' } as const),
    big(52).map((result) => ({ kind: 'apResetHoldResponse', result }) as const),
    fc.constant({ kind: 'preferredGpaRequest' } as const),
    u(52).map((gfn) => ({ kind: 'preferredGpaResponse', gfn }) as const),
    u(52).map((gfn) => ({ kind: 'registerGpaRequest', gfn }) as const),
    u(52).map((gfn) => ({ kind: 'registerGpaResponse', gfn }) as const),
    fc
      .tuple(u(40), u(4))
      .map(([gfn, operation]) => ({ kind: 'pscRequest', gfn, operation }) as const),
    u(32).map((error) => ({ kind: 'pscResponse', error }) as const),
    u(8).map((vmpl) => ({ kind: 'runVmplRequest', vmpl }) as const),
    u(32).map((error) => ({ kind: 'runVmplResponse', error }) as const),
    fc.constant({ kind: 'hvFeaturesRequest' } as const),
    big(52).map((features) => ({ kind: 'hvFeaturesResponse', features }) as const),
    fc
      .tuple(u(4), u(8))
      .map(([reasonSet, reasonCode]) => ({ kind: 'terminate', reasonSet, reasonCode }) as const),
  );

  it('decodes every encoded message back to itself', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeMsrProtocol(encodeMsrProtocol(m))).toEqual(m);
      }),
    );
  });

  it('normalises any 64-bit value: re-encoding keeps the function code and is stable', () => {
    fc.assert(
      fc.property(big(64), (v) => {
        const m = decodeMsrProtocol(v);
        const again = encodeMsrProtocol(m);
        expect(ghcbMsrInfo(again)).toBe(ghcbMsrInfo(v));
        expect(decodeMsrProtocol(again)).toEqual(m);
        // Re-encoding only ever clears bits.
        expect(again & ~v).toBe(0n);
      }),
    );
  });

  it('has the spec hypervisor feature bits and the SVSM set 0, 1 and 5', () => {
    const bits = Object.fromEntries(
      Object.entries(GHCB_HV_FEATURES.specs).map(([k, f]) => [k, f.lo]),
    );
    expect(bits).toEqual({
      snp: 0,
      apCreation: 1,
      restrictedInjection: 2,
      restrictedInjectionTimer: 3,
      apicIdList: 4,
      multiVmpl: 5,
      pageStateChange: 6,
      extendedInterrupts: 9,
    });
    expect(SVSM_REQUIRED_HV_FEATURES).toBe(0x23n);
  });

  it('names termination reasons', () => {
    expect(describeTermination(0, 2)).toBe('general/SNP_UNSUPPORTED');
    expect(describeTermination(1, 3)).toBe('linux/NOT_VMPL0');
    expect(describeTermination(1, 12)).toBe('linux/SAVIC_FAIL');
    expect(describeTermination(5, 7)).toBe('set 5/code 7');
  });
});

describe('SW_EXITCODE', () => {
  // uapi/asm/svm.h values as listed in sev-snp-abi.md §6.3 and linux-snp-guest.md §3.3.
  const KNOWN: readonly [string, number][] = [
    ['READ_DR7', 0x27],
    ['WRITE_DR7', 0x37],
    ['RDTSC', 0x6e],
    ['CPUID', 0x72],
    ['IOIO', 0x7b],
    ['MSR', 0x7c],
    ['VMMCALL', 0x81],
    ['RDTSCP', 0x87],
    ['WBINVD', 0x89],
    ['NPF', 0x400],
    ['VMGEXIT', 0x403],
    ['PAGE_NOT_VALIDATED', 0x404],
    ['MMIO_READ', 0x8000_0001],
    ['MMIO_WRITE', 0x8000_0002],
    ['NMI_COMPLETE', 0x8000_0003],
    ['AP_HLT_LOOP', 0x8000_0004],
    ['AP_JUMP_TABLE', 0x8000_0005],
    ['PSC', 0x8000_0010],
    ['GUEST_REQUEST', 0x8000_0011],
    ['EXT_GUEST_REQUEST', 0x8000_0012],
    ['AP_CREATION', 0x8000_0013],
    ['HV_DOORBELL_PAGE', 0x8000_0014],
    ['HV_IPI', 0x8000_0015],
    ['GET_APIC_IDS', 0x8000_0017],
    ['SNP_RUN_VMPL', 0x8000_0018],
    ['SAVIC', 0x8000_001a],
    ['SEV_TIO_GUEST_REQUEST', 0x8000_0020],
    ['HV_FEATURES', 0x8000_fffd],
    ['TERM_REQUEST', 0x8000_fffe],
    ['UNSUPPORTED', 0x8000_ffff],
  ];

  it('has the spec values and names them back', () => {
    for (const [name, code] of KNOWN) {
      expect([name, (SW_EXITCODE as Record<string, number>)[name]]).toEqual([name, code]);
      expect(swExitCodeName(code)).toBe(name);
      expect(swExitCodeName(BigInt(code))).toBe(name);
    }
    expect(swExitCodeName(0x8000_0099)).toBeUndefined();
    expect(swExitCodeName(1n << 40n)).toBeUndefined();
  });

  it('has no two names for one code', () => {
    const codes = Object.values(SW_EXITCODE);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe('NAE EXITINFO1 layouts', () => {
  it('decodes IOIO EXITINFO1 (OUT byte to 0x3F8, IN dword from 0xCFC)', () => {
    const out = 0x03f8_0010n;
    expect(IOIO_EXITINFO1.get(out, 'port')).toBe(0x3f8n);
    expect(IOIO_EXITINFO1.has(out, 'in')).toBe(false);
    expect(IOIO_EXITINFO1.has(out, 'size8')).toBe(true);
    expect(IOIO_EXITINFO1.encode({ in: true, size32: true, port: 0xcfc })).toBe(0x0cfc_0041n);
    expect(IOIO_EXITINFO1.encode({ string: true, rep: true, address64: true, segment: 3 })).toBe(
      0xe0cn,
    );
  });

  it('lays out AP_CREATION EXITINFO1 as Linux builds it', () => {
    // APIC ID 3 << 32 | VMPL 2 << 16 | CREATE.
    const v = AP_CREATION_EXITINFO1.encode({
      apicId: 3,
      vmpl: 2,
      request: AP_CREATION_OP.CREATE,
    });
    expect(v).toBe(0x3_0002_0001n);
    expect(AP_CREATION_OP).toEqual({ CREATE_ON_INIT: 0, CREATE: 1, DESTROY: 2 });
  });

  it('lays out the NAE termination request as set [3:0], code [11:4]', () => {
    expect(TERM_REQUEST_EXITINFO1.encode({ reasonSet: 1, reasonCode: 7 })).toBe(0x71n);
  });
});

describe('page state change buffer', () => {
  it('has an 8-byte header and 253 entries filling the shared buffer', () => {
    expect(PSC_HEADER.size).toBe(8);
    expect([PSC_HEADER.offset('curEntry'), PSC_HEADER.offset('endEntry')]).toEqual([0, 2]);
    expect(PSC_HEADER.field('reserved').offset).toBe(4);
    expect(PSC_MAX_ENTRIES).toBe(253);
    expect(PSC_DESC.size).toBe(0x7f0);
    expect(pscEntryOffset(0)).toBe(8);
    expect(pscEntryOffset(252)).toBe(0x7e8);
    expect(() => pscEntryOffset(253)).toThrow(FieldRangeError);
  });

  it('encodes entries as cur_page 11:0, gfn 51:12, op 55:52, size 56', () => {
    const e = PSC_ENTRY.encode({ gfn: 0x12345, operation: PSC_OP.PRIVATE, pageSize: true });
    expect(e).toBe(0x0110_0000_1234_5000n);
    expect(PSC_ENTRY.encode({ curPage: 0x1ff, gfn: 1, operation: PSC_OP.UNSMASH })).toBe(
      0x0040_0000_0000_11ffn,
    );
    expect(PSC_OP).toEqual({ PRIVATE: 1, SHARED: 2, PSMASH: 3, UNSMASH: 4 });
    expect(PSC_ENTRY.reservedBits(1n << 57n)).toBe(1n << 57n);
  });

  it('round-trips entries through decode', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xfff }),
        fc.integer({ min: 0, max: 2 ** 40 - 1 }),
        fc.integer({ min: 0, max: 15 }),
        fc.boolean(),
        (curPage, gfn, operation, pageSize) => {
          const e = PSC_ENTRY.encode({ curPage, gfn, operation, pageSize });
          expect(PSC_ENTRY.decode(e)).toEqual({
            curPage: BigInt(curPage),
            gfn: BigInt(gfn),
            operation: BigInt(operation),
            pageSize: pageSize ? 1n : 0n,
          });
        },
      ),
    );
  });

  it('reads and writes entries in the shared buffer of a GHCB', () => {
    const page = GHCB.alloc();
    const buf = GHCB.offset('sharedBuffer');
    PSC_DESC.set(page, 'hdr.endEntry', 252, buf);
    writePscEntry(page, 252, 0x0110_0000_1234_5000n, buf);
    expect(page[0x800 + 2]).toBe(252);
    expect(page[0x800 + 0x7e8 + 7]).toBe(0x01);
    expect(readPscEntry(page, 252, buf)).toBe(0x0110_0000_1234_5000n);
  });

  it('has the spec error codes', () => {
    expect(PSC_ERROR.INVALID_HEADER).toBe(0x1_0000_0001n);
    expect(PSC_ERROR.INVALID_ENTRY).toBe(0x1_0000_0002n);
    expect(PSC_ERROR.GENERIC).toBe(0x100_0000_0000n);
  });
});
