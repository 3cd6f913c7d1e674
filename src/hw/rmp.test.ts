import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VECTOR } from '../arch/index.js';
import {
  ACCESS,
  type Access,
  describeCheck,
  Rmp,
  RMP_OK,
  RMP_VC_NOT_VALIDATED,
  RMPUPDATE_RESULT,
} from './rmp.js';

const PAGES = 2048; // 8 MiB: four 2 MiB regions
const MB2 = 0x20_0000;
const RMP_BIT = 2 ** 31;
const ENC_BIT = 2 ** 34;
const VMPL_BIT = 2 ** 36;

function validatedPage(rmp: Rmp, gpa: number): void {
  expect(rmp.rmpupdate(gpa, false, true)).toBe(RMPUPDATE_RESULT.SUCCESS);
  expect(rmp.pvalidate(0, 0, gpa, false, true)).toEqual({ kind: 'done', rax: 0, carry: false });
}

describe('RMP access checks', () => {
  // The rule, restated independently of rmp.ts (reference/sev-snp-abi.md 7.2): VMPL0 may do
  // anything to a validated private page; VMPLn needs R for reads, W for writes, Xu at CPL3 and
  // Xs at CPL0-2 for fetches, and never writes a VMSA page.
  function expected(vmpl: number, perms: number, vmsa: boolean, cpl: number, a: Access): boolean {
    if (vmpl === 0) return true;
    if (a === ACCESS.WRITE && vmsa) return false;
    const need = a === ACCESS.READ ? 1 : a === ACCESS.WRITE ? 2 : cpl === 3 ? 4 : 8;
    return (perms & need) !== 0;
  }

  it('decide every VMPL x permission mask x access x CPL x VMSA combination as the spec says', () => {
    const rmp = new Rmp(PAGES);
    let cases = 0;
    for (let perms = 0; perms <= 0xf; perms++) {
      for (const vmsa of [false, true]) {
        const pfn = 16 + perms * 2 + (vmsa ? 1 : 0);
        rmp.firmwareAssign(pfn, { validated: true, vmsa, vmplPerms: [perms, perms, perms] });
        for (let vmpl = 0; vmpl <= 3; vmpl++) {
          for (const cpl of [0, 3]) {
            for (const a of [ACCESS.READ, ACCESS.WRITE, ACCESS.EXECUTE] as const) {
              const r = rmp.check(pfn * 4096 + 8, true, vmpl, cpl, a);
              if (expected(vmpl, perms, vmsa, cpl, a)) {
                expect(r, `vmpl ${vmpl} perms ${perms} vmsa ${vmsa} cpl ${cpl} access ${a}`).toBe(
                  RMP_OK,
                );
              } else {
                expect(r).toBeGreaterThan(0);
                expect(Math.floor(r / VMPL_BIT) % 2).toBe(1);
                expect(Math.floor(r / RMP_BIT) % 2).toBe(1);
                expect(r % 2).toBe(1); // P
                expect(Math.floor(r / 2) % 2).toBe(a === ACCESS.WRITE ? 1 : 0);
                expect(Math.floor(r / 4) % 2).toBe(cpl === 3 ? 1 : 0);
                expect(Math.floor(r / 16) % 2).toBe(a === ACCESS.EXECUTE ? 1 : 0);
              }
              cases++;
            }
          }
        }
      }
    }
    expect(cases).toBe(16 * 2 * 4 * 2 * 3);
  });

  it('give #VC 0x404 for a private access to an assigned page that is not validated', () => {
    const rmp = new Rmp(PAGES);
    rmp.rmpupdate(0x5000, false, true);
    for (let vmpl = 0; vmpl <= 3; vmpl++) {
      expect(rmp.check(0x5000, true, vmpl, 0, ACCESS.READ)).toBe(RMP_VC_NOT_VALIDATED);
    }
    expect(describeCheck(RMP_VC_NOT_VALIDATED)).toContain('0x404');
  });

  it('give an RMP nested page fault for private access to a hypervisor page', () => {
    const rmp = new Rmp(PAGES);
    const r = rmp.check(0x7000, true, 0, 0, ACCESS.READ);
    expect(Math.floor(r / RMP_BIT) % 2).toBe(1);
    expect(Math.floor(r / ENC_BIT) % 2).toBe(1);
  });

  it('allow shared access only to pages the guest does not own', () => {
    const rmp = new Rmp(PAGES);
    expect(rmp.check(0x9000, false, 2, 0, ACCESS.WRITE)).toBe(RMP_OK);
    validatedPage(rmp, 0x9000);
    const r = rmp.check(0x9000, false, 0, 0, ACCESS.READ);
    expect(Math.floor(r / RMP_BIT) % 2).toBe(1);
    expect(Math.floor(r / ENC_BIT) % 2).toBe(0);
  });

  it('give a non-RMP fault beyond the end of memory', () => {
    const rmp = new Rmp(PAGES);
    const r = rmp.check(PAGES * 4096, true, 0, 0, ACCESS.READ);
    expect(r).toBeGreaterThanOrEqual(0);
    expect(r % 2).toBe(0);
    expect(Math.floor(r / RMP_BIT) % 2).toBe(0);
    expect(describeCheck(r)).toContain('nested page fault');
  });
});

describe('PVALIDATE', () => {
  it('validates and rescinds a 4 KiB page, reporting no change with CF', () => {
    const rmp = new Rmp(PAGES);
    rmp.rmpupdate(0x3000, false, true);
    expect(rmp.pvalidate(0, 0, 0x3000, false, true)).toEqual({
      kind: 'done',
      rax: 0,
      carry: false,
    });
    expect(rmp.pvalidate(0, 0, 0x3000, false, true)).toEqual({ kind: 'done', rax: 0, carry: true });
    expect(rmp.pvalidate(0, 0, 0x3000, false, false)).toEqual({
      kind: 'done',
      rax: 0,
      carry: false,
    });
    expect(rmp.pvalidate(0, 0, 0x3000, false, false)).toEqual({
      kind: 'done',
      rax: 0,
      carry: true,
    });
  });

  it('returns FAIL_INPUT for a misaligned address and FAIL_SIZEMISMATCH for the wrong size', () => {
    const rmp = new Rmp(PAGES);
    rmp.rmpupdate(MB2, true, true);
    expect(rmp.pvalidate(0, 0, MB2 + 0x1000, true, true)).toMatchObject({ rax: 1 });
    expect(rmp.pvalidate(0, 0, MB2 + 0x1000, false, true)).toMatchObject({ rax: 6 });
    rmp.rmpupdate(0x1000, false, true);
    expect(rmp.pvalidate(0, 0, 0x1000, true, true)).toMatchObject({ rax: 1 });
    expect(rmp.pvalidate(0, 0, 0x1000, false, true)).toMatchObject({ rax: 0 });
    rmp.rmpupdate(2 * MB2, false, true);
    expect(rmp.pvalidate(0, 0, 2 * MB2, true, true)).toMatchObject({ rax: 6 });
  });

  it('validates all 512 pages of a 2 MiB entry at once', () => {
    const rmp = new Rmp(PAGES);
    rmp.rmpupdate(MB2, true, true);
    expect(rmp.pvalidate(0, 0, MB2, true, true)).toMatchObject({ rax: 0, carry: false });
    for (let p = 0; p < 512; p++) {
      expect(rmp.check(MB2 + p * 4096, true, 0, 0, ACCESS.WRITE)).toBe(RMP_OK);
    }
    expect(rmp.check(2 * MB2, true, 0, 0, ACCESS.WRITE)).not.toBe(RMP_OK);
  });

  it('faults outside VMPL0 or CPL0, and takes the NPF path for an unassigned page', () => {
    const rmp = new Rmp(PAGES);
    rmp.rmpupdate(0x3000, false, true);
    expect(rmp.pvalidate(2, 0, 0x3000, false, true)).toEqual({
      kind: 'exception',
      vector: VECTOR.GP,
      errorCode: 0,
    });
    expect(rmp.pvalidate(0, 3, 0x3000, false, true)).toMatchObject({ kind: 'exception' });
    expect(rmp.pvalidate(0, 0, 0x4000, false, true)).toMatchObject({ kind: 'npf' });
    expect(rmp.isAssigned(0x4)).toBe(false);
  });
});

describe('RMPADJUST', () => {
  it('lets VMPL0 grant VMPL1-3 and refuses a target at or above the caller', () => {
    const rmp = new Rmp(PAGES);
    validatedPage(rmp, 0x8000);
    expect(rmp.rmpadjust(0, 0, 0x8000, false, 2, 0xf, false)).toMatchObject({ rax: 0 });
    expect(rmp.vmplPerms(8)).toEqual([0, 0xf, 0]);
    expect(rmp.rmpadjust(0, 0, 0x8000, false, 0, 0xf, false)).toMatchObject({ rax: 2 });
    expect(rmp.rmpadjust(2, 0, 0x8000, false, 2, 0x1, false)).toMatchObject({ rax: 2 });
    expect(rmp.rmpadjust(2, 0, 0x8000, false, 1, 0x1, false)).toMatchObject({ rax: 2 });
  });

  it('never lets a caller grant more than it has', () => {
    const rmp = new Rmp(PAGES);
    validatedPage(rmp, 0x8000);
    rmp.rmpadjust(0, 0, 0x8000, false, 1, 0x3, false);
    expect(rmp.rmpadjust(1, 0, 0x8000, false, 2, 0x1, false)).toMatchObject({ rax: 0 });
    expect(rmp.rmpadjust(1, 0, 0x8000, false, 3, 0x4, false)).toMatchObject({ rax: 2 });
    expect(rmp.vmplPerms(8)).toEqual([0x3, 0x1, 0]);
  });

  it('sets the VMSA bit only from VMPL0', () => {
    const rmp = new Rmp(PAGES);
    validatedPage(rmp, 0x8000);
    rmp.rmpadjust(0, 0, 0x8000, false, 1, 0xf, false);
    rmp.rmpadjust(1, 0, 0x8000, false, 2, 0x1, true);
    expect(rmp.describe(8)).not.toContain('vmsa');
    rmp.rmpadjust(0, 0, 0x8000, false, 1, 0x1, true);
    expect(rmp.describe(8)).toContain('vmsa');
    expect(rmp.check(0x8000, true, 2, 0, ACCESS.WRITE)).not.toBe(RMP_OK);
    rmp.rmpadjust(0, 0, 0x8000, false, 1, 0x1, false);
    expect(rmp.describe(8)).not.toContain('vmsa');
  });

  it('returns FAIL_INPUT for bad operands and FAIL_SIZEMISMATCH for the wrong size', () => {
    const rmp = new Rmp(PAGES);
    validatedPage(rmp, 0x8000);
    expect(rmp.rmpadjust(0, 0, 0x8000, false, 4, 0x1, false)).toMatchObject({ rax: 1 });
    expect(rmp.rmpadjust(0, 0, 0x8000, false, 1, 0x10, false)).toMatchObject({ rax: 1 });
    expect(rmp.rmpadjust(0, 0, 0x8001, false, 1, 0x1, false)).toMatchObject({ rax: 1 });
    rmp.rmpupdate(MB2, true, true);
    rmp.pvalidate(0, 0, MB2, true, true);
    expect(rmp.rmpadjust(0, 0, MB2, false, 1, 0x1, false)).toMatchObject({ rax: 6 });
    expect(rmp.rmpadjust(0, 0, MB2, true, 1, 0x1, false)).toMatchObject({ rax: 0 });
    expect(rmp.vmplPerms(MB2 / 4096 + 511)).toEqual([1, 0, 0]);
  });
});

describe('RMPUPDATE and PSMASH', () => {
  it('assigning clears validation and permissions; sharing clears everything', () => {
    const rmp = new Rmp(PAGES);
    validatedPage(rmp, 0x8000);
    rmp.rmpadjust(0, 0, 0x8000, false, 2, 0xf, false);
    expect(rmp.rmpupdate(0x8000, false, true)).toBe(0);
    expect(rmp.entry(8)).toBe(1);
    expect(rmp.rmpupdate(0x8000, false, false)).toBe(0);
    expect(rmp.entry(8)).toBe(0);
  });

  it('refuses immutable pages, overlapping sizes and misaligned 2 MiB regions', () => {
    const rmp = new Rmp(PAGES);
    rmp.firmwareAssign(3, { validated: true, immutable: true });
    expect(rmp.rmpupdate(0x3000, false, false)).toBe(RMPUPDATE_RESULT.FAIL_PERMISSION);
    rmp.rmpupdate(MB2, true, true);
    expect(rmp.rmpupdate(MB2 + 0x3000, false, false)).toBe(RMPUPDATE_RESULT.FAIL_OVERLAP);
    rmp.rmpupdate(2 * MB2 + 0x5000, false, true);
    expect(rmp.rmpupdate(2 * MB2, true, true)).toBe(RMPUPDATE_RESULT.FAIL_OVERLAP);
    expect(rmp.rmpupdate(0x1000, true, true)).toBe(RMPUPDATE_RESULT.FAIL_INPUT);
  });

  it('PSMASH splits a 2 MiB entry keeping its state', () => {
    const rmp = new Rmp(PAGES);
    rmp.rmpupdate(MB2, true, true);
    rmp.pvalidate(0, 0, MB2, true, true);
    expect(rmp.psmash(MB2)).toBe(0);
    expect(rmp.pvalidate(0, 0, MB2 + 0x1000, false, false)).toMatchObject({ rax: 0, carry: false });
    expect(rmp.check(MB2 + 0x2000, true, 0, 0, ACCESS.READ)).toBe(RMP_OK);
    expect(rmp.check(MB2 + 0x1000, true, 0, 0, ACCESS.READ)).toBe(RMP_VC_NOT_VALIDATED);
  });

  it('tells listeners which frames changed', () => {
    const rmp = new Rmp(PAGES);
    const seen: [number, number][] = [];
    rmp.onChange((pfn, n) => seen.push([pfn, n]));
    rmp.rmpupdate(MB2, true, true);
    rmp.pvalidate(0, 0, MB2, true, true);
    rmp.pvalidate(0, 0, MB2, true, true); // no change, no notification
    expect(seen).toEqual([
      [512, 512],
      [512, 512],
    ]);
  });
});

describe('RMP invariants under random operation sequences', () => {
  const op = fc.oneof(
    fc.record({
      k: fc.constant('update' as const),
      pfn: fc.nat(PAGES - 1),
      big: fc.boolean(),
      assign: fc.boolean(),
    }),
    fc.record({
      k: fc.constant('pvalidate' as const),
      pfn: fc.nat(PAGES - 1),
      big: fc.boolean(),
      v: fc.boolean(),
      vmpl: fc.nat(3),
    }),
    fc.record({
      k: fc.constant('adjust' as const),
      pfn: fc.nat(PAGES - 1),
      big: fc.boolean(),
      caller: fc.nat(3),
      target: fc.nat(4),
      perms: fc.nat(0x1f),
      vmsa: fc.boolean(),
    }),
    fc.record({ k: fc.constant('psmash' as const), pfn: fc.nat(PAGES - 1) }),
  );

  it('never leave state on an unassigned page and keep every 2 MiB entry uniform', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const rmp = new Rmp(PAGES);
        for (const o of ops) {
          const gpa = o.pfn * 4096;
          const aligned = o.k !== 'psmash' && o.big ? gpa - (gpa % MB2) : gpa;
          if (o.k === 'update') rmp.rmpupdate(aligned, o.big, o.assign);
          else if (o.k === 'pvalidate') rmp.pvalidate(o.vmpl, 0, aligned, o.big, o.v);
          else if (o.k === 'adjust')
            rmp.rmpadjust(o.caller, 0, aligned, o.big, o.target, o.perms, o.vmsa);
          else rmp.psmash(gpa - (gpa % MB2));
        }
        for (let pfn = 0; pfn < PAGES; pfn++) {
          const e = rmp.entry(pfn);
          if ((e & 1) === 0 && e !== 0) return false; // unassigned entries are all zero
          if ((e & 2) !== 0) {
            const head = rmp.entry(pfn - (pfn % 512));
            if (e !== head) return false;
          }
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});
