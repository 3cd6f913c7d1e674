import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PRODUCT_CPUID, type ProductName, SNP_CPUID_MAX_ENTRIES } from '../arch/index.js';
import {
  brandString,
  cpuidLeafIsIndexed,
  defaultSnpCpuidEntries,
  platformCpuid,
  xsaveAreaSize,
} from './platform-cpuid.js';

const PRODUCTS: readonly ProductName[] = ['Milan', 'Genoa'];

function bit(value: number, n: number): boolean {
  return ((value >>> n) & 1) === 1;
}

function ascii(...words: number[]): string {
  const bytes = new Uint8Array(words.length * 4);
  const view = new DataView(bytes.buffer);
  words.forEach((w, i) => view.setUint32(i * 4, w, true));
  return String.fromCharCode(...bytes);
}

describe('platform CPUID identity', () => {
  it.each(PRODUCTS)('%s leaf 1 and 0x80000001 EAX carry the FMS of the report identity', (p) => {
    expect(platformCpuid(p, 1).eax).toBe(PRODUCT_CPUID[p].fms);
    expect(platformCpuid(p, 0x80000001).eax).toBe(PRODUCT_CPUID[p].fms);
  });

  it('Milan is family 19h model 01h stepping 1 (0x00A00F11), Genoa model 11h (0x00A10F11)', () => {
    expect(platformCpuid('Milan', 1).eax).toBe(0x00a00f11);
    expect(platformCpuid('Genoa', 1).eax).toBe(0x00a10f11);
  });

  it.each(PRODUCTS)('%s leaves 0 and 0x80000000 name AuthenticAMD', (p) => {
    for (const fn of [0, 0x80000000]) {
      const r = platformCpuid(p, fn);
      expect(ascii(r.ebx, r.edx, r.ecx)).toBe('AuthenticAMD');
    }
  });

  it('the brand string is the part name padded with spaces to 47 bytes and NUL-terminated', () => {
    const parts = [0x80000002, 0x80000003, 0x80000004].map((fn) => platformCpuid('Milan', fn));
    const text = ascii(...parts.flatMap((r) => [r.eax, r.ebx, r.ecx, r.edx]));
    expect(text).toBe('AMD EPYC 7763 64-Core Processor'.padEnd(47, ' ') + '\0');
    expect(brandString('Genoa').length).toBe(48);
    expect(
      String.fromCharCode(...brandString('Genoa'))
        .replace('\0', '')
        .trimEnd(),
    ).toBe('AMD EPYC 9654 96-Core Processor');
  });
});

describe('platform CPUID gives a Linux SNP guest what it needs (linux-snp-guest.md 2.1, 3.6)', () => {
  it.each(PRODUCTS)('%s: 0x8000001F is in range and reports SEV, SNP, C-bit 51, 4 VMPLs', (p) => {
    expect(platformCpuid(p, 0x80000000).eax).toBeGreaterThanOrEqual(0x8000001f);
    const sev = platformCpuid(p, 0x8000001f);
    expect(bit(sev.eax, 1)).toBe(true); // SEV
    expect(bit(sev.eax, 3)).toBe(true); // SEV-ES
    expect(bit(sev.eax, 4)).toBe(true); // SNP
    expect(bit(sev.eax, 5)).toBe(true); // VMPL
    expect(sev.ebx & 0x3f).toBe(51);
    expect((sev.ebx >>> 6) & 0x3f).toBe(1);
    expect((sev.ebx >>> 12) & 0xf).toBe(4);
  });

  it.each(PRODUCTS)('%s: the required and useful feature bits are set', (p) => {
    const l1 = platformCpuid(p, 1);
    // FPU 0, TSC 4, MSR 5, PAE 6, CX8 8, APIC 9, PGE 13, CMOV 15, PAT 16, CLFSH 19, FXSR 24,
    // SSE 25, SSE2 26.
    for (const n of [0, 4, 5, 6, 8, 9, 13, 15, 16, 19, 24, 25, 26])
      expect([n, bit(l1.edx, n)]).toEqual([n, true]);
    // CX16 13, x2APIC 21, POPCNT 23, RDRAND 30, hypervisor 31.
    for (const n of [13, 21, 23, 30, 31]) expect([n, bit(l1.ecx, n)]).toEqual([n, true]);
    const e1 = platformCpuid(p, 0x80000001);
    for (const n of [11, 20, 26, 27, 29]) expect([n, bit(e1.edx, n)]).toEqual([n, true]); // SYSCALL NX 1G RDTSCP LM
    expect(bit(platformCpuid(p, 6).eax, 2)).toBe(true); // ARAT
    expect(bit(platformCpuid(p, 0x80000007).edx, 8)).toBe(true); // invariant TSC
    expect(bit(platformCpuid(p, 0xd, 1).eax, 1) || bit(platformCpuid(p, 0xd, 1).eax, 3)).toBe(true);
  });

  it.each(PRODUCTS)('%s: what the firmware or an SNP VMM never offers is absent', (p) => {
    const l1 = platformCpuid(p, 1);
    expect(bit(l1.ecx, 24)).toBe(false); // TSC-deadline: reserved in the firmware's leaf 1 mask
    expect(bit(l1.ecx, 3)).toBe(false); // MONITOR
    expect(bit(l1.edx, 27)).toBe(false); // SelfSnoop: reserved
    expect(bit(platformCpuid(p, 7).ebx, 1)).toBe(false); // TSC_ADJUST
    expect(bit(platformCpuid(p, 7).ecx, 16)).toBe(false); // LA57
    expect(bit(platformCpuid(p, 0x80000001).ecx, 2)).toBe(false); // SVM
  });

  it('Milan reports 48-bit physical and linear addresses, Genoa 52-bit physical', () => {
    expect(platformCpuid('Milan', 0x80000008).eax & 0xffff).toBe(0x3030);
    expect(platformCpuid('Genoa', 0x80000008).eax & 0xffff).toBe(0x3034);
  });

  it('only Genoa reports AVX-512 (leaf 7 EBX bit 16) and leaf 7 subleaf 1', () => {
    expect(bit(platformCpuid('Milan', 7).ebx, 16)).toBe(false);
    expect(bit(platformCpuid('Genoa', 7).ebx, 16)).toBe(true);
    expect(platformCpuid('Milan', 7, 1).eax).toBe(0);
    expect(platformCpuid('Genoa', 7, 1).eax).toBe(0x20);
  });
});

describe('platform CPUID XSAVE enumeration', () => {
  it('0xD.0 EBX follows XCR0: 0x240 for x87|SSE, 0x340 with AVX', () => {
    expect(platformCpuid('Milan', 0xd, 0, 1n).ebx).toBe(0x240);
    expect(platformCpuid('Milan', 0xd, 0, 3n).ebx).toBe(0x240);
    expect(platformCpuid('Milan', 0xd, 0, 7n).ebx).toBe(0x340);
    expect(platformCpuid('Milan', 0xd, 0).ecx).toBe(0x340); // all supported states
    expect(platformCpuid('Milan', 0xd, 0).eax).toBe(0x7);
  });

  it('Genoa adds the AVX-512 states at 0x340, 0x380 and 0x580', () => {
    expect(platformCpuid('Genoa', 0xd, 0).eax).toBe(0xe7);
    expect(platformCpuid('Genoa', 0xd, 0, 0xe7n).ebx).toBe(0x980);
    expect(platformCpuid('Genoa', 0xd, 5)).toEqual({ eax: 0x40, ebx: 0x340, ecx: 0, edx: 0 });
    expect(platformCpuid('Genoa', 0xd, 6)).toEqual({ eax: 0x200, ebx: 0x380, ecx: 0, edx: 0 });
    expect(platformCpuid('Genoa', 0xd, 7)).toEqual({ eax: 0x400, ebx: 0x580, ecx: 0, edx: 0 });
  });

  it('0xD.1 EBX is the compacted size: 0x240 plus each enabled state', () => {
    expect(platformCpuid('Milan', 0xd, 1, 7n).ebx).toBe(0x340);
    expect(platformCpuid('Genoa', 0xd, 1, 0x27n).ebx).toBe(0x240 + 0x100 + 0x40);
    expect(xsaveAreaSize('Genoa', 0xe7n, 0n, 'compacted')).toBe(
      0x240 + 0x100 + 0x40 + 0x200 + 0x400,
    );
  });

  it('XCR0 bits the part does not offer do not change the size', () => {
    expect(platformCpuid('Milan', 0xd, 0, 0xe7n).ebx).toBe(0x340);
    expect(platformCpuid('Milan', 0xd, 5)).toEqual({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
  });
});

describe('platform CPUID per-vCPU and topology fields', () => {
  it('the APIC ID appears in leaf 1 EBX[31:24], 0xB EDX and 0x8000001E EAX/EBX', () => {
    const v = { vcpuCount: 8, apicId: 5 };
    expect(platformCpuid('Milan', 1, 0, 1n, 0n, v).ebx >>> 24).toBe(5);
    expect(platformCpuid('Milan', 0xb, 0, 1n, 0n, v).edx).toBe(5);
    expect(platformCpuid('Milan', 0xb, 1, 1n, 0n, v).edx).toBe(5);
    expect(platformCpuid('Milan', 0x8000001e, 0, 1n, 0n, v).eax).toBe(5);
    expect(platformCpuid('Milan', 0x8000001e, 0, 1n, 0n, v).ebx & 0xff).toBe(5);
  });

  it('OSXSAVE and OSPKE follow the vCPU CR4 bits', () => {
    expect(bit(platformCpuid('Milan', 1).ecx, 27)).toBe(false);
    expect(bit(platformCpuid('Milan', 1, 0, 1n, 0n, { osxsave: true }).ecx, 27)).toBe(true);
    expect(bit(platformCpuid('Milan', 7, 0, 1n, 0n, { ospke: true }).ecx, 4)).toBe(true);
  });

  it('the vCPU count appears in leaf 1, 0xB.1, 0x80000008 and the L3 sharing count', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 255 }), (n) => {
        const v = { vcpuCount: n };
        expect((platformCpuid('Genoa', 1, 0, 1n, 0n, v).ebx >>> 16) & 0xff).toBe(n);
        const core = platformCpuid('Genoa', 0xb, 1, 1n, 0n, v);
        expect(core.ebx).toBe(n);
        expect(1 << core.eax).toBeGreaterThanOrEqual(n);
        expect(platformCpuid('Genoa', 0x80000008, 0, 1n, 0n, v).ecx & 0xff).toBe(n - 1);
        expect((platformCpuid('Genoa', 0x8000001d, 3, 1n, 0n, v).eax >>> 14) & 0xfff).toBe(n - 1);
      }),
    );
  });

  it('0xB enumeration ends with an invalid level at subleaf 2', () => {
    expect((platformCpuid('Milan', 0xb, 2).ecx >>> 8) & 0xff).toBe(0);
    expect(platformCpuid('Milan', 0xb, 2).ebx).toBe(0);
  });

  it('a vCPU count outside 1..255 is refused', () => {
    expect(() => platformCpuid('Milan', 1, 0, 1n, 0n, { vcpuCount: 0 })).toThrow(RangeError);
    expect(() => defaultSnpCpuidEntries('Milan', 256)).toThrow(RangeError);
  });
});

describe('platform CPUID ranges and subleaves', () => {
  it('leaves above the maximum and hypervisor leaves read as zero', () => {
    const zero = { eax: 0, ebx: 0, ecx: 0, edx: 0 };
    expect(platformCpuid('Milan', 0x11)).toEqual(zero);
    expect(platformCpuid('Milan', 0x40000000)).toEqual(zero);
    expect(platformCpuid('Milan', 0x80000022)).toEqual(zero);
    expect(platformCpuid('Milan', 0xc0000000)).toEqual(zero);
  });

  it('non-indexed leaves ignore the subleaf, indexed ones do not', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 6, 0x80000001, 0x80000008, 0x8000001f),
        fc.nat(),
        (fn, s) => {
          expect(cpuidLeafIsIndexed(fn)).toBe(false);
          expect(platformCpuid('Genoa', fn, s)).toEqual(platformCpuid('Genoa', fn, 0));
        },
      ),
    );
    expect(platformCpuid('Genoa', 0xd, 2)).not.toEqual(platformCpuid('Genoa', 0xd, 0));
    expect(cpuidLeafIsIndexed(0x8000001d)).toBe(true);
  });
});

describe('default SNP CPUID page entries', () => {
  it.each(PRODUCTS)(
    '%s: fit a page, one entry per (leaf, subleaf), ECX_IN 0 unless indexed',
    (p) => {
      const entries = defaultSnpCpuidEntries(p, 4);
      expect(entries.length).toBeGreaterThan(0);
      expect(entries.length).toBeLessThanOrEqual(SNP_CPUID_MAX_ENTRIES);
      const keys = entries.map((e) => `${e.eaxIn}.${e.ecxIn}`);
      expect(new Set(keys).size).toBe(keys.length);
      for (const e of entries) if (!cpuidLeafIsIndexed(e.eaxIn)) expect(e.ecxIn).toBe(0);
    },
  );

  it.each(PRODUCTS)('%s: every entry lies within the maximum leaves the page reports', (p) => {
    const entries = defaultSnpCpuidEntries(p, 2);
    const maxStd = entries.find((e) => e.eaxIn === 0)!.eax;
    const maxExt = entries.find((e) => e.eaxIn === 0x80000000)!.eax;
    for (const e of entries) {
      if (e.eaxIn < 0x80000000) expect(e.eaxIn).toBeLessThanOrEqual(maxStd);
      else expect(e.eaxIn).toBeLessThanOrEqual(maxExt);
    }
  });

  it.each(PRODUCTS)('%s: 0xD.0/0xD.1 are recorded the way Linux accepts them', (p) => {
    const entries = defaultSnpCpuidEntries(p, 1);
    for (const sub of [0, 1]) {
      const e = entries.find((x) => x.eaxIn === 0xd && x.ecxIn === sub)!;
      expect(e.xcr0In === 1n || e.xcr0In === 3n).toBe(true);
      expect(e.xssIn).toBe(0n);
      expect(e.ebx).toBe(0x240);
    }
    // Every XSAVE state that 0xD.0 offers has its 0xD.n entry, so Linux can compute sizes.
    const offered = entries.find((x) => x.eaxIn === 0xd && x.ecxIn === 0)!.eax;
    for (let n = 2; n < 32; n++) {
      if (bit(offered, n)) expect(entries.some((x) => x.eaxIn === 0xd && x.ecxIn === n)).toBe(true);
    }
  });

  it.each(PRODUCTS)(
    '%s: entries are vCPU 0 with CR4 = 0 (the fields Linux fixes up are 0)',
    (p) => {
      const entries = defaultSnpCpuidEntries(p, 16);
      const get = (fn: number, sub = 0) => entries.find((e) => e.eaxIn === fn && e.ecxIn === sub)!;
      expect(get(1).ebx >>> 24).toBe(0);
      expect(bit(get(1).ecx, 27)).toBe(false);
      expect(bit(get(7).ecx, 4)).toBe(false);
      expect(get(0xb, 0).edx).toBe(0);
      expect(get(0x8000001e).eax).toBe(0);
      for (const e of entries) {
        const xcr0 = e.xcr0In === 0n ? 1n : e.xcr0In;
        expect(e).toMatchObject(
          platformCpuid(p, e.eaxIn, e.ecxIn, xcr0, e.xssIn, { vcpuCount: 16 }),
        );
      }
    },
  );
});
