import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  describeRmpEntry,
  NPF_ERROR_CODE,
  PAGE_INFO,
  PAGE_INFO_LENGTH,
  PAGE_INFO_VMSA_GPA,
  PAGE_TYPE,
  PVALIDATE_ECX,
  PVALIDATE_EDX,
  PVALIDATE_RESULT,
  RMP_ASSIGNED,
  RMP_ENTRY,
  RMP_IMMUTABLE,
  RMP_PAGE_SIZE_2M,
  RMP_VALIDATED,
  RMP_VMPL_PERMS,
  RMP_VMSA,
  RMPADJUST_ATTRS,
  RMPADJUST_RESULT,
  rmpPermsShift,
  rmpVmplPerms,
  rmpWithVmplPerms,
  VMPL_PERM,
  VMPL_PERM_ALL,
} from './rmp.js';

describe('PAGE_INFO', () => {
  // sev-snp-abi.md §1.1 table, in its order (reserved before VMPL1..3).
  const OFFSETS: readonly [string, number, number][] = [
    ['digestCur', 0x00, 48],
    ['contents', 0x30, 48],
    ['length', 0x60, 2],
    ['pageType', 0x62, 1],
    ['imiPage', 0x63, 1],
    ['reserved', 0x64, 1],
    ['vmpl1Perms', 0x65, 1],
    ['vmpl2Perms', 0x66, 1],
    ['vmpl3Perms', 0x67, 1],
    ['gpa', 0x68, 8],
  ];

  it('is 0x70 bytes with every field at its offset and size', () => {
    expect(PAGE_INFO.size).toBe(0x70);
    expect(PAGE_INFO_LENGTH).toBe(0x70);
    for (const [name, offset, size] of OFFSETS) {
      const f = PAGE_INFO.field(name as keyof typeof PAGE_INFO.specs & string);
      expect([name, f.offset, f.size]).toEqual([name, offset, size]);
    }
    expect(PAGE_INFO.fields.length).toBe(OFFSETS.length);
  });

  it('serialises the VMSA record of a launch bit for bit', () => {
    const rec = PAGE_INFO.alloc();
    PAGE_INFO.on(rec)
      .set('length', PAGE_INFO_LENGTH)
      .set('pageType', PAGE_TYPE.VMSA)
      .set('vmpl1Perms', 0x1)
      .set('vmpl3Perms', 0xf)
      .set('gpa', BigInt(PAGE_INFO_VMSA_GPA));
    expect([...rec.subarray(0x60, 0x70)]).toEqual([
      0x70, 0x00, 0x02, 0x00, 0x00, 0x01, 0x00, 0x0f, 0x00, 0xf0, 0xff, 0xff, 0xff, 0xff, 0x00,
      0x00,
    ]);
  });

  it('has the firmware page types and the VMSA GPA', () => {
    expect(PAGE_TYPE).toEqual({
      NORMAL: 1,
      VMSA: 2,
      ZERO: 3,
      UNMEASURED: 4,
      SECRETS: 5,
      CPUID: 6,
    });
    expect(PAGE_INFO_VMSA_GPA).toBe(0xfffffffff000);
  });
});

describe('packed RMP entry', () => {
  it('assigns the documented bits', () => {
    expect([RMP_ASSIGNED, RMP_PAGE_SIZE_2M, RMP_IMMUTABLE, RMP_VALIDATED, RMP_VMSA]).toEqual([
      0x1, 0x2, 0x4, 0x8, 0x10,
    ]);
    expect(RMP_VMPL_PERMS).toBe(0xf_ff00);
    expect([rmpPermsShift(1), rmpPermsShift(2), rmpPermsShift(3)]).toEqual([8, 12, 16]);
    expect(() => rmpPermsShift(0)).toThrow(RangeError);
    expect(() => rmpPermsShift(4)).toThrow(RangeError);
  });

  it('agrees with its bit layout', () => {
    const e = Number(
      RMP_ENTRY.encode({ assigned: true, validated: true, vmpl2Perms: VMPL_PERM.READ }),
    );
    expect(e).toBe(RMP_ASSIGNED | RMP_VALIDATED | (VMPL_PERM.READ << 12));
    expect(describeRmpEntry(e)).toBe('assigned|validated|vmpl2Perms=0x1');
  });

  it('gives VMPL0 full access whatever the entry says', () => {
    expect(rmpVmplPerms(0, 0)).toBe(VMPL_PERM_ALL);
    expect(rmpVmplPerms(RMP_ASSIGNED, 1)).toBe(0);
  });

  it('replaces one VMPL mask without touching the rest', () => {
    fc.assert(
      fc.property(fc.nat(0xf_ffff), fc.constantFrom(1, 2, 3), fc.nat(0xf), (entry, vmpl, perms) => {
        const out = rmpWithVmplPerms(entry, vmpl, perms);
        expect(rmpVmplPerms(out, vmpl)).toBe(perms);
        const mask = 0xf << rmpPermsShift(vmpl);
        expect(out & ~mask).toBe(entry & ~mask);
      }),
    );
    expect(() => rmpWithVmplPerms(0, 1, 0x10)).toThrow(RangeError);
  });

  it('uses the APM permission bits R=1 W=2 Xu=4 Xs=8', () => {
    expect(VMPL_PERM).toEqual({ READ: 1, WRITE: 2, EXEC_USER: 4, EXEC_SUPERVISOR: 8 });
    expect(VMPL_PERM_ALL).toBe(0xf);
  });
});

describe('PVALIDATE and RMPADJUST operands', () => {
  it('reads PVALIDATE size from ECX bit 0 and validate from EDX bit 0', () => {
    expect(PVALIDATE_ECX.has(1n, 'pageSize')).toBe(true);
    expect(PVALIDATE_EDX.has(1n, 'validate')).toBe(true);
    expect(PVALIDATE_ECX.reservedBits(0xfffe_0001n)).toBe(0xfffe_0000n);
    expect(PVALIDATE_RESULT).toEqual({ SUCCESS: 0, FAIL_INPUT: 1, FAIL_SIZEMISMATCH: 6 });
  });

  it("decodes Linux's VMPL probe (RDX = 1) as target VMPL1 with no permissions", () => {
    expect(RMPADJUST_ATTRS.decode(1n)).toEqual({ targetVmpl: 1n, perms: 0n, vmsa: 0n });
  });

  it('puts perms at 15:8 and VMSA at bit 16', () => {
    expect(RMPADJUST_ATTRS.encode({ targetVmpl: 1, perms: VMPL_PERM_ALL, vmsa: true })).toBe(
      0x1_0f01n,
    );
    expect(
      RMPADJUST_ATTRS.encode({ targetVmpl: 3, perms: VMPL_PERM.READ | VMPL_PERM.EXEC_SUPERVISOR }),
    ).toBe(0x0903n);
    expect(RMPADJUST_ATTRS.reservedBits(1n << 17n)).toBe(1n << 17n);
    expect(RMPADJUST_RESULT).toEqual({
      SUCCESS: 0,
      FAIL_INPUT: 1,
      FAIL_PERMISSION: 2,
      FAIL_SIZEMISMATCH: 6,
    });
  });
});

describe('nested page fault error code', () => {
  it('has the standard and SNP bits', () => {
    const bits = Object.fromEntries(
      Object.entries(NPF_ERROR_CODE.specs).map(([k, f]) => [k, f.lo]),
    );
    expect(bits).toEqual({
      present: 0,
      write: 1,
      user: 2,
      reservedBit: 3,
      fetch: 4,
      rmp: 31,
      guestFinal: 32,
      guestPage: 33,
      enc: 34,
      sizeMismatch: 35,
      vmpl: 36,
    });
    expect(NPF_ERROR_CODE.encode({ rmp: true, enc: true, vmpl: true, write: true })).toBe(
      0x14_8000_0002n,
    );
  });
});
