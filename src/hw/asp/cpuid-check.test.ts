import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  buildCpuidPage,
  bytesToHex,
  cpuidEntryOffset,
  type CpuidEntry,
  type ProductName,
  readCpuidEntries,
  SNP_CPUID_FN,
  SNP_CPUID_FN_SIZE,
  SNP_CPUID_TABLE,
} from '../../arch/index.js';
import { cpuidLeafIsIndexed, defaultSnpCpuidEntries, platformCpuid } from '../platform-cpuid.js';
import {
  checkCpuidEntry,
  checkCpuidPage,
  type CpuidMismatch,
  describeCpuidMismatch,
  fmsNotNewer,
} from './cpuid-check.js';
import { cpuidPolicy } from './cpuid-policy.js';

const PRODUCTS: readonly ProductName[] = ['Milan', 'Genoa'];

/** The default page with one entry changed by `edit`. */
function pageWith(
  product: ProductName,
  fn: number,
  subleaf: number,
  edit: (e: CpuidEntry) => Partial<CpuidEntry>,
): { page: Uint8Array; index: number } {
  const entries = defaultSnpCpuidEntries(product, 4);
  const index = entries.findIndex((e) => e.eaxIn === fn && e.ecxIn === subleaf);
  if (index < 0) throw new Error(`no default entry ${fn.toString(16)}.${subleaf}`);
  const e = { ...entries[index]!, ...edit(entries[index]!) };
  // Edits are written with JS bit operators, which give int32: store them as uint32.
  entries[index] = { ...e, eax: e.eax >>> 0, ebx: e.ebx >>> 0, ecx: e.ecx >>> 0, edx: e.edx >>> 0 };
  return { page: buildCpuidPage(entries), index };
}

function entry(fn: number, subleaf: number, regs: Partial<CpuidEntry> = {}): CpuidEntry {
  return {
    eaxIn: fn,
    ecxIn: subleaf,
    xcr0In: 0n,
    xssIn: 0n,
    eax: 0,
    ebx: 0,
    ecx: 0,
    edx: 0,
    ...regs,
  };
}

/** Linux's lookup (snp_cpuid_get_validated_func), enough to read what a guest would see. */
function linuxLookup(page: Uint8Array, fn: number, subleaf = 0): CpuidEntry | undefined {
  return readCpuidEntries(page).find((e) => {
    if (e.eaxIn !== fn) return false;
    if (cpuidLeafIsIndexed(fn) && e.ecxIn !== subleaf) return false;
    if (fn === 0xd && (e.ecxIn === 0 || e.ecxIn === 1)) {
      return (e.xcr0In === 1n || e.xcr0In === 3n) && e.xssIn === 0n;
    }
    return true;
  });
}

function expectSingleMismatch(
  result: { ok: boolean; mismatches: readonly CpuidMismatch[] },
  expected: Partial<CpuidMismatch>,
): void {
  expect(result.ok).toBe(false);
  expect(result.mismatches).toHaveLength(1);
  expect(result.mismatches[0]).toMatchObject(expected);
}

describe('the firmware accepts the platform default CPUID page unchanged', () => {
  it.each(PRODUCTS)('%s, any vCPU count', (p) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 255 }), (n) => {
        const page = buildCpuidPage(defaultSnpCpuidEntries(p, n));
        const r = checkCpuidPage(page, p);
        expect(r.mismatches.map(describeCpuidMismatch)).toEqual([]);
        expect(r.ok).toBe(true);
        expect(r.rejected).toBeUndefined();
        expect(bytesToHex(r.corrected)).toBe(bytesToHex(page));
      }),
      { numRuns: 20 },
    );
  });

  it.each(PRODUCTS)('%s: every non-zero leaf the platform reports is allowed as it is', (p) => {
    const subleaves = (fn: number): number[] => {
      if (fn === 0x7) return [0, 1];
      if (fn === 0xb) return [0, 1, 2];
      if (fn === 0xd) return Array.from({ length: 13 }, (_, i) => i);
      if (fn === 0x8000001d) return [0, 1, 2, 3, 4];
      return [0];
    };
    const fns = [
      ...Array.from({ length: 0x11 }, (_, i) => i),
      ...Array.from({ length: 0x22 }, (_, i) => 0x80000000 + i),
    ];
    const xcr0s = p === 'Milan' ? [1n, 3n, 7n] : [1n, 3n, 7n, 0x27n, 0xe7n];
    for (const fn of fns) {
      for (const sub of subleaves(fn)) {
        for (const xcr0 of fn === 0xd && sub <= 1 ? xcr0s : [1n]) {
          for (const apicId of [0, 3]) {
            const r = platformCpuid(p, fn, sub, xcr0, 0n, { vcpuCount: 4, apicId });
            // A leaf the platform reports as all zero is left out of a page, not written as
            // zeros (an absent XSAVE state's 0xD.n entry, for one, must match the part exactly).
            if ((r.eax | r.ebx | r.ecx | r.edx) === 0) continue;
            const xcr0In = fn === 0xd && sub <= 1 ? xcr0 : 0n;
            const check = checkCpuidEntry(p, entry(fn, sub, { ...r, xcr0In }));
            expect([fn.toString(16), sub, check.mismatches]).toEqual([fn.toString(16), sub, []]);
          }
        }
      }
    }
  });

  it.each(PRODUCTS)('%s: the page gives Linux SEV, SNP and C-bit 51 (sev_enable)', (p) => {
    const r = checkCpuidPage(buildCpuidPage(defaultSnpCpuidEntries(p, 2)), p);
    const page = r.corrected;
    const count = SNP_CPUID_TABLE.get(page, 'count');
    expect(count).toBeGreaterThanOrEqual(1);
    expect(linuxLookup(page, 0x80000000)!.eax).toBeGreaterThanOrEqual(0x8000001f);
    const sev = linuxLookup(page, 0x8000001f)!;
    expect((sev.eax >>> 1) & 1).toBe(1); // SEV
    expect((sev.eax >>> 4) & 1).toBe(1); // SNP
    expect(sev.ebx & 0x3f).toBe(51);
    expect((linuxLookup(page, 1)!.ecx >>> 30) & 1).toBe(1); // RDRAND
    expect(linuxLookup(page, 0xd, 0)).toBeDefined();
    expect(linuxLookup(page, 0xd, 1)!.eax & 0b1010).not.toBe(0); // XSAVEC or XSAVES
  });
});

describe('feature bits: a guest may hide features, never claim unsupported ones', () => {
  it('AVX512F (leaf 7 EBX bit 16) on Milan is corrected; Genoa has it', () => {
    const { page, index } = pageWith('Milan', 7, 0, (e) => ({ ebx: e.ebx | (1 << 16) }));
    const given = SNP_CPUID_FN.get(page, 'ebx', cpuidEntryOffset(index));
    const r = checkCpuidPage(page, 'Milan');
    expectSingleMismatch(r, {
      index,
      fn: 7,
      subleaf: 0,
      register: 'ebx',
      given,
      allowed: given & ~(1 << 16),
    });
    expect(checkCpuidPage(r.corrected, 'Milan').ok).toBe(true);
    expect(
      checkCpuidPage(pageWith('Genoa', 7, 0, (e) => ({ ebx: e.ebx | (1 << 16) })).page, 'Genoa').ok,
    ).toBe(true);
  });

  it.each(PRODUCTS)('%s: bits no SNP guest may claim are corrected (QEMU masks them too)', (p) => {
    const cases: [number, number, 'eax' | 'ebx' | 'ecx' | 'edx', number][] = [
      [1, 0, 'ecx', 24], // TSC-deadline
      [1, 0, 'edx', 27], // SelfSnoop
      [7, 0, 'ebx', 1], // TSC_ADJUST
      [7, 0, 'edx', 26], // SPEC_CTRL (IBRS/IBPB, Intel enumeration)
      [0x80000008, 0, 'ebx', 25], // VIRT_SSBD
      [0x8000001f, 0, 'eax', 28], // the "SVSM present" bit Linux sets in its own copy
    ];
    for (const [fn, sub, r, n] of cases) {
      const { page } = pageWith(p, fn, sub, (e) => ({ [r]: (e[r] | (1 << n)) >>> 0 }));
      const result = checkCpuidPage(page, p);
      expect([fn.toString(16), r, n, result.ok]).toEqual([fn.toString(16), r, n, false]);
      expect(checkCpuidPage(result.corrected, p).ok).toBe(true);
    }
  });

  it('an SEV feature of Genoa only (VmsaRegProt, 0x8000001F EAX bit 24) is corrected on Milan', () => {
    const edit = (e: CpuidEntry) => ({ eax: e.eax | (1 << 24) });
    expectSingleMismatch(checkCpuidPage(pageWith('Milan', 0x8000001f, 0, edit).page, 'Milan'), {
      register: 'eax',
    });
    expect(checkCpuidPage(pageWith('Genoa', 0x8000001f, 0, edit).page, 'Genoa').ok).toBe(true);
  });

  it.each(PRODUCTS)('%s: clearing any bits of a pure feature-mask register passes', (p) => {
    const policy = cpuidPolicy(p);
    const maskRegs: [number, number, 'eax' | 'ebx' | 'ecx' | 'edx'][] = [];
    for (const e of defaultSnpCpuidEntries(p, 1)) {
      const lp = policy.leaves.find((l) => l.fn === e.eaxIn && l.subleaf === e.ecxIn)!;
      for (const r of ['eax', 'ebx', 'ecx', 'edx'] as const) {
        if (lp[r].checks.length === 1 && lp[r].checks[0]!.kind === 'mask')
          maskRegs.push([e.eaxIn, e.ecxIn, r]);
      }
    }
    expect(maskRegs.length).toBeGreaterThan(10);
    fc.assert(
      fc.property(
        fc.constantFrom(...maskRegs),
        fc.integer({ min: 0, max: 0xffffffff }),
        ([fn, sub, r], hide) => {
          const { page } = pageWith(p, fn, sub, (e) => ({ [r]: (e[r] & ~hide) >>> 0 }));
          expect(checkCpuidPage(page, p).ok).toBe(true);
        },
      ),
    );
  });

  it('OSXSAVE, OSPKE and the hypervisor bit are free for the hypervisor', () => {
    for (const ecx of [0, 1 << 27, 1 << 31, (1 << 27) | (1 << 31)]) {
      const { page } = pageWith('Milan', 1, 0, (e) => ({
        ecx: ((e.ecx & ~0x88000000) | ecx) >>> 0,
      }));
      expect(checkCpuidPage(page, 'Milan').ok).toBe(true);
    }
    expect(
      checkCpuidPage(pageWith('Genoa', 7, 0, (e) => ({ ecx: e.ecx | 0x10 })).page, 'Genoa').ok,
    ).toBe(true);
  });
});

describe('family, model and stepping', () => {
  it('a Genoa FMS on a Milan page is corrected to the part FMS, leaf 1 and 0x80000001', () => {
    for (const fn of [1, 0x80000001]) {
      const { page, index } = pageWith('Milan', fn, 0, () => ({ eax: 0x00a10f11 }));
      const r = checkCpuidPage(page, 'Milan');
      expectSingleMismatch(r, {
        index,
        fn,
        register: 'eax',
        given: 0x00a10f11,
        allowed: 0x00a00f11,
      });
      expect(checkCpuidPage(r.corrected, 'Milan').ok).toBe(true);
    }
  });

  it('a newer family or stepping is corrected; an older part may be named', () => {
    const fmsOf = (eax: number) =>
      checkCpuidPage(pageWith('Genoa', 1, 0, () => ({ eax })).page, 'Genoa');
    expect(fmsOf(0x00b00f11).ok).toBe(false); // family 1Ah
    expect(fmsOf(0x00a10f12).ok).toBe(false); // stepping 2
    expect(fmsOf(0x00a00f11).ok).toBe(true); // Milan on Genoa
    expect(fmsOf(0x00a10f10).ok).toBe(true); // stepping 0
    expect(fmsOf(0x00800f12).ok).toBe(true); // family 17h (QEMU's EPYC-v4 signature)
  });

  it('reserved FMS bits are cleared', () => {
    const r = checkCpuidPage(pageWith('Milan', 1, 0, () => ({ eax: 0x10a00f11 })).page, 'Milan');
    expectSingleMismatch(r, { register: 'eax', allowed: 0x00a00f11 });
  });

  it('models compare as extended + base nibble, as the firmware macro computes them', () => {
    // Genoa's model is 0x11, which the firmware counts as 1 + 1 = 2. Model 0x03 (0 + 3) is
    // architecturally older but counts as 3 there, so it is refused.
    expect(fmsNotNewer(0x00a10f11, 0x00a00f31)).toBe(false);
    expect(fmsNotNewer(0x00a10f11, 0x00a00f21)).toBe(true);
    expect(fmsNotNewer(0x00a10f11, 0x00a10f11)).toBe(true);
  });
});

describe('fixed fields', () => {
  it.each(PRODUCTS)('%s: the C-bit position must be 51; the reduction field is free', (p) => {
    const { page } = pageWith(p, 0x8000001f, 0, (e) => ({ ebx: (e.ebx & ~0x3f) | 47 }));
    const r = checkCpuidPage(page, p);
    expectSingleMismatch(r, {
      register: 'ebx',
      given: (4 << 12) | (1 << 6) | 47,
      allowed: (4 << 12) | (1 << 6) | 51,
    });
    expect(checkCpuidPage(r.corrected, p).ok).toBe(true);
    for (const reduction of [0, 5, 6, 63]) {
      const free = pageWith(p, 0x8000001f, 0, (e) => ({
        ebx: (e.ebx & ~0xfc0) | (reduction << 6),
      }));
      expect(checkCpuidPage(free.page, p).ok).toBe(true);
    }
  });

  it('at most 4 VMPLs may be reported; fewer is fine', () => {
    const vmpls = (n: number) =>
      checkCpuidPage(
        pageWith('Milan', 0x8000001f, 0, (e) => ({ ebx: (e.ebx & ~0xf000) | (n << 12) })).page,
        'Milan',
      );
    expect(vmpls(3).ok).toBe(true);
    expectSingleMismatch(vmpls(5), { register: 'ebx', allowed: 0x4073 });
  });

  it('the CLFLUSH size must be 8 qwords; brand ID bits are reserved; the APIC ID is free', () => {
    const l1 = (ebx: number) =>
      checkCpuidPage(pageWith('Milan', 1, 0, () => ({ ebx })).page, 'Milan');
    expectSingleMismatch(l1(0x00041000), { register: 'ebx', allowed: 0x00040800 });
    expectSingleMismatch(l1(0x00040801), { register: 'ebx', allowed: 0x00040800 });
    expect(l1(0x7f040800).ok).toBe(true);
  });

  it('address sizes may not exceed the part; the guest physical size is free', () => {
    const ext8 = (p: ProductName, eax: number) =>
      checkCpuidPage(pageWith(p, 0x80000008, 0, () => ({ eax })).page, p);
    expectSingleMismatch(ext8('Milan', 0x3034), { register: 'eax', allowed: 0x3030 });
    expect(ext8('Genoa', 0x3034).ok).toBe(true);
    expect(ext8('Milan', 0x303030).ok).toBe(true);
    expect(ext8('Milan', 0x2828).ok).toBe(true);
  });

  it('maximum leaves may be lower than the part, not higher', () => {
    const max0 = (eax: number) =>
      checkCpuidPage(pageWith('Genoa', 0, 0, () => ({ eax })).page, 'Genoa');
    expect(max0(0xd).ok).toBe(true);
    expectSingleMismatch(max0(0x11), { register: 'eax', allowed: 0x10 });
    const maxExt = (eax: number) =>
      checkCpuidPage(pageWith('Genoa', 0x80000000, 0, () => ({ eax })).page, 'Genoa');
    expect(maxExt(0x80000028).ok).toBe(true);
    expectSingleMismatch(maxExt(0x80000029), { allowed: 0x80000028 });
  });

  it('the brand string, caches and topology are the hypervisor choice', () => {
    for (const fn of [0x80000002, 0x80000003, 0x80000004, 0x80000005]) {
      const { page } = pageWith('Milan', fn, 0, () => ({
        eax: 0x41414141,
        ebx: 0xffffffff,
        ecx: 1,
        edx: 2,
      }));
      expect(checkCpuidPage(page, 'Milan').ok).toBe(true);
    }
    const topo = pageWith('Milan', 0xb, 1, () => ({
      eax: 7,
      ebx: 0x1234,
      ecx: 0x201,
      edx: 0xffffffff,
    }));
    expect(checkCpuidPage(topo.page, 'Milan').ok).toBe(true);
  });
});

describe('XSAVE sizes against XCR0_IN and XSS_IN', () => {
  const xsave = (p: ProductName, sub: number, regs: Partial<CpuidEntry>) =>
    checkCpuidPage(pageWith(p, 0xd, sub, () => regs).page, p);

  it('0xD.0 EBX must be 0x240 for XCR0_IN = 1 and 0x340 for XCR0_IN = x87|SSE|AVX', () => {
    expect(xsave('Milan', 0, { xcr0In: 7n, ebx: 0x340 }).ok).toBe(true);
    expectSingleMismatch(xsave('Milan', 0, { xcr0In: 7n, ebx: 0x240 }), {
      register: 'ebx',
      allowed: 0x340,
    });
    expectSingleMismatch(xsave('Milan', 0, { xcr0In: 1n, ebx: 0x340 }), {
      register: 'ebx',
      allowed: 0x240,
    });
  });

  it('with AVX-512 and PKRU the standard size is 0x988 on Genoa', () => {
    expect(xsave('Genoa', 0, { xcr0In: 0x2e7n, ebx: 0x988 }).ok).toBe(true);
    expect(xsave('Genoa', 0, { xcr0In: 0xe7n, ebx: 0x980 }).ok).toBe(true);
    expect(xsave('Genoa', 0, { xcr0In: 0x27n, ebx: 0x380 }).ok).toBe(true);
  });

  it('0xD.1 EBX is the compacted size including CET states from XSS_IN', () => {
    expect(xsave('Milan', 1, { xcr0In: 7n, ebx: 0x340 }).ok).toBe(true);
    expect(xsave('Milan', 1, { xcr0In: 1n, xssIn: 1n << 11n, ebx: 0x250 }).ok).toBe(true);
    expect(xsave('Milan', 1, { xcr0In: 1n, xssIn: 3n << 11n, ebx: 0x268 }).ok).toBe(true);
    expectSingleMismatch(xsave('Milan', 1, { xcr0In: 1n, xssIn: 1n << 11n, ebx: 0x240 }), {
      allowed: 0x250,
    });
  });

  it('CET bits count only from XSS_IN and never in the standard size', () => {
    const cet = (1n << 11n) | (1n << 12n);
    expect(xsave('Milan', 0, { xcr0In: 1n | cet, ebx: 0x240 }).ok).toBe(true);
    expect(xsave('Milan', 0, { xcr0In: 1n, xssIn: cet, ebx: 0x240 }).ok).toBe(true);
    expect(xsave('Milan', 1, { xcr0In: 1n | cet, ebx: 0x240 }).ok).toBe(true);
    expect(
      xsave('Genoa', 1, { xcr0In: 0x207n, xssIn: cet, ebx: 0x240 + 0x100 + 0x8 + 0x28 }).ok,
    ).toBe(true);
  });

  it('0xD.0 EAX must keep x87 and SSE and may not add states the part lacks', () => {
    expectSingleMismatch(xsave('Milan', 0, { eax: 0x5 }), { register: 'eax', allowed: 0x7 });
    expectSingleMismatch(xsave('Milan', 0, { eax: 0xe7 }), { register: 'eax', allowed: 0x7 });
    expect(xsave('Milan', 0, { eax: 0x3 }).ok).toBe(true);
    expectSingleMismatch(xsave('Milan', 0, { edx: 1 }), { register: 'edx', allowed: 0 });
  });

  it('component entries must match the part exactly', () => {
    expectSingleMismatch(xsave('Milan', 2, { ebx: 0x200 }), { register: 'ebx', allowed: 0x240 });
  });
});

describe('unknown leaves and ranges', () => {
  it.each(PRODUCTS)('%s: an unknown leaf in the checked ranges must be all zero', (p) => {
    for (const fn of [0x3, 0x8, 0xffff, 0x80000025, 0x8000ffff]) {
      const page = buildCpuidPage([entry(fn, 0, { eax: 1, edx: 0x80000000 })]);
      const r = checkCpuidPage(page, p);
      expect(r.mismatches.map((m) => [m.register, m.allowed])).toEqual([
        ['eax', 0],
        ['edx', 0],
      ]);
      expect(checkCpuidPage(r.corrected, p).ok).toBe(true);
      expect(checkCpuidPage(buildCpuidPage([entry(fn, 0)]), p).ok).toBe(true);
    }
  });

  it('ECX_IN is matched exactly even for leaves that are not indexed', () => {
    const { page } = pageWith('Milan', 1, 0, () => ({ ecxIn: 1 }));
    const r = checkCpuidPage(page, 'Milan');
    expect(r.mismatches.map((m) => m.register)).toEqual(['eax', 'ebx', 'ecx', 'edx']);
    expect(r.mismatches.every((m) => m.fn === 1 && m.subleaf === 1 && m.allowed === 0)).toBe(true);
  });

  it('leaves outside the standard and extended ranges pass unchecked (kvmclock leaves)', () => {
    const kvm = entry(0x40000000, 0, {
      eax: 0x40000001,
      ebx: 0x4b4d564b,
      ecx: 0x564b4d56,
      edx: 0x4d,
    });
    const kvmFeatures = entry(0x40000001, 0, { eax: (1 << 3) | (1 << 24) });
    const odd = entry(0xc0000000, 7, { eax: 0xffffffff });
    const page = buildCpuidPage([...defaultSnpCpuidEntries('Milan', 1), kvm, kvmFeatures, odd]);
    expect(checkCpuidPage(page, 'Milan').ok).toBe(true);
  });

  it('a non-zero reserved quadword in a checked entry fails and is zeroed', () => {
    const page = buildCpuidPage(defaultSnpCpuidEntries('Milan', 1));
    SNP_CPUID_FN.set(page, 'reserved', 0x0000000500000001n, cpuidEntryOffset(2));
    const r = checkCpuidPage(page, 'Milan');
    expect(r.mismatches.map((m) => [m.index, m.register, m.given])).toEqual([
      [2, 'reservedLo', 1],
      [2, 'reservedHi', 5],
    ]);
    expect(checkCpuidPage(r.corrected, 'Milan').ok).toBe(true);
    // ...but not in an entry the firmware does not check.
    const hv = buildCpuidPage([entry(0x40000000, 0)]);
    SNP_CPUID_FN.set(hv, 'reserved', 1n, cpuidEntryOffset(0));
    expect(checkCpuidPage(hv, 'Milan').ok).toBe(true);
  });
});

describe('the page header', () => {
  it('COUNT 65 is rejected without write-back; 64 and 0 are accepted', () => {
    const page = buildCpuidPage(defaultSnpCpuidEntries('Milan', 1));
    SNP_CPUID_TABLE.set(page, 'count', 65);
    const r = checkCpuidPage(page, 'Milan');
    expect(r).toMatchObject({ ok: false, rejected: 'count', mismatches: [] });
    expect(bytesToHex(r.corrected)).toBe(bytesToHex(page));
    expect(checkCpuidPage(buildCpuidPage(Array(64).fill(entry(0x80000005, 0))), 'Milan').ok).toBe(
      true,
    );
    expect(checkCpuidPage(buildCpuidPage([]), 'Milan').ok).toBe(true);
    SNP_CPUID_TABLE.set(page, 'count', 0xffffffff);
    expect(checkCpuidPage(page, 'Milan').rejected).toBe('count');
  });

  it('non-zero header reserved fields are rejected', () => {
    for (const key of ['reserved04', 'reserved08'] as const) {
      const page = buildCpuidPage(defaultSnpCpuidEntries('Genoa', 1));
      if (key === 'reserved04') SNP_CPUID_TABLE.set(page, key, 1);
      else SNP_CPUID_TABLE.set(page, key, 1n << 63n);
      expect(checkCpuidPage(page, 'Genoa')).toMatchObject({
        ok: false,
        rejected: 'header-reserved',
      });
    }
  });

  it('entries past COUNT are not looked at', () => {
    const page = buildCpuidPage([entry(0x3, 0, { eax: 1 })]);
    SNP_CPUID_TABLE.set(page, 'count', 0);
    expect(checkCpuidPage(page, 'Milan').ok).toBe(true);
  });
});

describe('write-back converges (a retry with the corrected page passes)', () => {
  it.each(PRODUCTS)('%s: random bit flips of default entries', (p) => {
    const base = buildCpuidPage(defaultSnpCpuidEntries(p, 4));
    const count = SNP_CPUID_TABLE.get(base, 'count');
    const flip = fc.record({
      index: fc.integer({ min: 0, max: count - 1 }),
      // Any bit of the 0x30-byte entry: inputs, outputs and the reserved quadword.
      bit: fc.integer({ min: 0, max: SNP_CPUID_FN_SIZE * 8 - 1 }),
    });
    fc.assert(
      fc.property(fc.array(flip, { minLength: 1, maxLength: 12 }), (flips) => {
        const page = base.slice();
        for (const { index, bit } of flips) {
          page[cpuidEntryOffset(index) + (bit >> 3)]! ^= 1 << (bit & 7);
        }
        const r = checkCpuidPage(page, p);
        expect(r.ok).toBe(r.mismatches.length === 0);
        expect(r.ok).toBe(bytesToHex(r.corrected) === bytesToHex(page));
        const again = checkCpuidPage(r.corrected, p);
        expect(again.mismatches.map(describeCpuidMismatch)).toEqual([]);
        // The inputs of every entry and the header stay as given.
        const before = readCpuidEntries(page);
        const after = readCpuidEntries(r.corrected);
        after.forEach((e, i) => {
          const b = before[i]!;
          expect([e.eaxIn, e.ecxIn, e.xcr0In, e.xssIn]).toEqual([
            b.eaxIn,
            b.ecxIn,
            b.xcr0In,
            b.xssIn,
          ]);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('random whole entries never make the check throw, and corrections converge', () => {
    const anyEntry = fc.record({
      eaxIn: fc.oneof(
        fc.integer({ min: 0, max: 0x20 }),
        fc.integer({ min: 0x80000000, max: 0x80000030 }),
        fc.integer({ min: 0, max: 0xffffffff }),
      ),
      ecxIn: fc.oneof(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 0xffffffff })),
      xcr0In: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      xssIn: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      eax: fc.integer({ min: 0, max: 0xffffffff }),
      ebx: fc.integer({ min: 0, max: 0xffffffff }),
      ecx: fc.integer({ min: 0, max: 0xffffffff }),
      edx: fc.integer({ min: 0, max: 0xffffffff }),
    });
    fc.assert(
      fc.property(
        fc.constantFrom(...PRODUCTS),
        fc.array(anyEntry, { maxLength: 64 }),
        (p, entries) => {
          const r = checkCpuidPage(buildCpuidPage(entries), p);
          expect(checkCpuidPage(r.corrected, p).ok).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('mismatch reports', () => {
  it('read like QEMU "CPUID validation failed" lines', () => {
    const m: CpuidMismatch = {
      index: 3,
      fn: 0x8000001d,
      subleaf: 3,
      register: 'edx',
      given: 6,
      allowed: 2,
    };
    expect(describeCpuidMismatch(m)).toBe(
      'CPUID entry 3 (fn 0x8000001d, index 0x00000003) edx: provided 0x00000006, expected 0x00000002',
    );
  });

  it('reproduce the Milan failure reported in NVIDIA/nvtrust#91 (L3 EDX bit 2 reserved)', () => {
    // QEMU's EPYC model put EDX = 6 in 0x8000001D.3; the firmware expected 2.
    const e = entry(0x8000001d, 3, { eax: 0x000bc163, ebx: 0x03c0003f, ecx: 0x00007fff, edx: 6 });
    const r = checkCpuidPage(buildCpuidPage([e]), 'Milan');
    expectSingleMismatch(r, { register: 'edx', given: 6, allowed: 2 });
  });
});
