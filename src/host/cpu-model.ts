// The virtual CPU the host offers a guest, described once: the silicon's CPUID
// (src/hw/platform-cpuid.ts) minus the features this VM hides. Both the host's CPUID answers
// (GHCB CPUID exit) and the SNP CPUID page of the launch image come from it, so the two never
// disagree.
//
// Hidden by default, as issue 7 and reference/linux-snp-guest.md 3.6 ask:
// - XSAVE and everything that needs it (OSXSAVE, AVX, FMA, F16C, AVX2, AVX-512, VAES,
//   VPCLMULQDQ, BF16, the 0xD state components above SSE): XSETBV and XSS would need traps, and
//   Linux falls back to FXSAVE;
// - MONITOR/MWAIT (an idle guest would spin on #VC) and LA57 (the platform already leaves both
//   out; hiding them here keeps the rule visible).
// Leaf 0xD stays in the page with x87|SSE only: Linux reads 0xD.1 whatever leaf 1 says, and its
// CPUID-page lookup needs 0xD.1 EAX to advertise XSAVEC or XSAVES.

import type { CpuidEntry, ProductName } from '../arch/index.js';
import { SNP_CPUID_MAX_ENTRIES } from '../arch/index.js';
import {
  type CpuidResult,
  cpuidLeafIsIndexed,
  defaultSnpCpuidEntries,
  platformCpuid,
  XCR0_RESET,
  XSAVE_LEGACY_AND_HEADER,
} from '../hw/platform-cpuid.js';

type Register = keyof CpuidResult;

/** One CPUID feature bit: where it is reported. */
export interface CpuFeatureBit {
  readonly fn: number;
  readonly subleaf: number;
  readonly register: Register;
  readonly bit: number;
}

const bit = (fn: number, subleaf: number, register: Register, b: number): CpuFeatureBit => ({
  fn,
  subleaf,
  register,
  bit: b,
});

/** Features a VM can hide, each with every bit that reports it or something that needs it. */
export const CPU_FEATURES = {
  xsave: [
    bit(1, 0, 'ecx', 26), // XSAVE
    bit(1, 0, 'ecx', 27), // OSXSAVE
    bit(1, 0, 'ecx', 28), // AVX
    bit(1, 0, 'ecx', 12), // FMA
    bit(1, 0, 'ecx', 29), // F16C
    bit(7, 0, 'ebx', 5), // AVX2
    bit(7, 0, 'ebx', 16), // AVX512F
    bit(7, 0, 'ebx', 17), // AVX512DQ
    bit(7, 0, 'ebx', 21), // AVX512_IFMA
    bit(7, 0, 'ebx', 28), // AVX512CD
    bit(7, 0, 'ebx', 30), // AVX512BW
    bit(7, 0, 'ebx', 31), // AVX512VL
    bit(7, 0, 'ecx', 1), // AVX512_VBMI
    bit(7, 0, 'ecx', 6), // AVX512_VBMI2
    bit(7, 0, 'ecx', 9), // VAES
    bit(7, 0, 'ecx', 10), // VPCLMULQDQ
    bit(7, 0, 'ecx', 11), // AVX512_VNNI
    bit(7, 0, 'ecx', 12), // AVX512_BITALG
    bit(7, 0, 'ecx', 14), // AVX512_VPOPCNTDQ
    bit(7, 1, 'eax', 5), // AVX512_BF16
  ],
  monitor: [bit(1, 0, 'ecx', 3)],
  la57: [bit(7, 0, 'ecx', 16)],
  x2apic: [bit(1, 0, 'ecx', 21)],
} as const satisfies Record<string, readonly CpuFeatureBit[]>;

export type CpuFeatureName = keyof typeof CPU_FEATURES;

export const DEFAULT_HIDDEN_FEATURES: readonly CpuFeatureName[] = ['xsave', 'monitor', 'la57'];

/** XCR0 bits that stay when XSAVE is hidden: x87 and SSE. */
const XCR0_LEGACY = 0x3n;

/** The description of a VM's virtual CPU. */
export interface VirtualCpu {
  readonly product: ProductName;
  readonly vcpuCount: number;
  /** Features hidden from the guest (default: DEFAULT_HIDDEN_FEATURES). */
  readonly hidden?: readonly CpuFeatureName[];
}

/** Leaves kept per vCPU (the page holds at most 64; Linux asks for a few dozen). */
const CACHE_LIMIT = 256;

const key = (fn: number, subleaf: number): number => (fn >>> 0) * 0x1_0000 + (subleaf & 0xffff);

export class CpuModel {
  readonly product: ProductName;
  readonly vcpuCount: number;
  readonly hidden: readonly CpuFeatureName[];
  private readonly xsaveHidden: boolean;
  /** Per (leaf, subleaf): AND masks for EAX, EBX, ECX, EDX. */
  private readonly masks = new Map<number, Uint32Array>();
  /** Answers per vCPU (index = APIC ID) for every leaf but 0xD, computed once: the hot path. */
  private readonly cache: Map<number, CpuidResult>[];

  constructor(desc: VirtualCpu) {
    this.product = desc.product;
    this.vcpuCount = desc.vcpuCount;
    this.hidden = desc.hidden ?? DEFAULT_HIDDEN_FEATURES;
    this.xsaveHidden = this.hidden.includes('xsave');
    this.cache = Array.from({ length: desc.vcpuCount }, () => new Map<number, CpuidResult>());
    for (const name of this.hidden) {
      for (const b of CPU_FEATURES[name]) {
        const k = key(b.fn, b.subleaf);
        let m = this.masks.get(k);
        if (m === undefined) {
          m = new Uint32Array(4).fill(0xffff_ffff);
          this.masks.set(k, m);
        }
        const r = REGISTERS.indexOf(b.register);
        m[r] = m[r]! & ~(1 << b.bit);
      }
    }
  }

  /**
   * CPUID(fn, subleaf) as this VM's vCPU `apicId` reads it, with the XCR0 and XSS it reports
   * (GHCB XCR0/XSS). Indexed leaves take the subleaf; others ignore it.
   */
  cpuid(fn: number, subleaf: number, xcr0: bigint, xss: bigint, apicId: number): CpuidResult {
    const leaf = fn >>> 0;
    const sub = cpuidLeafIsIndexed(leaf) ? subleaf >>> 0 : 0;
    // 0xD depends on XCR0/XSS; huge subleaves and unknown APIC IDs are not worth keeping.
    const cache = leaf === 0xd || sub > 0xffff ? undefined : this.cache[apicId];
    if (cache === undefined) return this.compute(leaf, sub, xcr0, xss, apicId);
    const k = key(leaf, sub);
    let r = cache.get(k);
    if (r === undefined) {
      r = this.compute(leaf, sub, XCR0_RESET, 0n, apicId);
      // Bounded, so a guest sweeping leaves cannot grow the host's memory.
      if (cache.size < CACHE_LIMIT) cache.set(k, r);
    }
    return r;
  }

  private compute(
    leaf: number,
    sub: number,
    xcr0: bigint,
    xss: bigint,
    apicId: number,
  ): CpuidResult {
    if (leaf === 0xd && this.xsaveHidden) return this.legacyXsaveLeaf(sub);
    const r = platformCpuid(this.product, leaf, sub, xcr0, xss, {
      vcpuCount: this.vcpuCount,
      apicId,
    });
    const m = this.masks.get(key(leaf, sub));
    if (m === undefined) return r;
    return {
      eax: (r.eax & m[0]!) >>> 0,
      ebx: (r.ebx & m[1]!) >>> 0,
      ecx: (r.ecx & m[2]!) >>> 0,
      edx: (r.edx & m[3]!) >>> 0,
    };
  }

  /** Leaf 0xD with only x87 and SSE: the legacy area and header, nothing more. */
  private legacyXsaveLeaf(sub: number): CpuidResult {
    if (sub === 0) {
      return {
        eax: Number(XCR0_LEGACY),
        ebx: XSAVE_LEGACY_AND_HEADER,
        ecx: XSAVE_LEGACY_AND_HEADER,
        edx: 0,
      };
    }
    if (sub === 1) {
      const r = platformCpuid(this.product, 0xd, 1, XCR0_RESET, 0n, { vcpuCount: this.vcpuCount });
      return { eax: r.eax, ebx: XSAVE_LEGACY_AND_HEADER, ecx: 0, edx: 0 };
    }
    return { eax: 0, ebx: 0, ecx: 0, edx: 0 };
  }

  /**
   * The SNP CPUID page entries: the platform's page leaves as this model answers them for vCPU 0
   * with CR4 = 0 (platform-cpuid.ts explains the per-vCPU fields Linux fixes up), leaving out the
   * 0xD state components the model hides.
   */
  snpCpuidEntries(): CpuidEntry[] {
    const entries: CpuidEntry[] = [];
    for (const e of defaultSnpCpuidEntries(this.product, this.vcpuCount)) {
      if (e.eaxIn === 0xd && e.ecxIn >= 2 && this.xsaveHidden) continue;
      const r = this.compute(e.eaxIn, e.ecxIn, e.xcr0In === 0n ? XCR0_RESET : e.xcr0In, 0n, 0);
      entries.push({ ...e, ...r });
    }
    if (entries.length > SNP_CPUID_MAX_ENTRIES) {
      throw new RangeError(`${entries.length} CPUID entries do not fit one page`);
    }
    return entries;
  }
}

const REGISTERS: readonly Register[] = ['eax', 'ebx', 'ecx', 'edx'];
