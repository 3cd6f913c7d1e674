// The SNP firmware's CPUID policy: for each leaf and register, which values a CPUID page may hold.
// The check that applies it is cpuid-check.ts.
//
// Source: AMD's published SEV firmware for Genoa (github.com/amd/AMD-ASPFW, "Genoa SEV FW 1.55.25",
// fw/psp_bl_uapps/sev_uapp/src/cpuid_lookup.{c,h}; the rule kinds follow "PPR 2.1.5.3 CPUID Policy
// Enforcement"). The Genoa table below restates that firmware's values and rules. No Milan
// firmware source is public: the Milan table keeps the same rules with Zen 3 feature sets
// [uncertain: every Milan-specific value, see the comments]. Entries the Genoa firmware derives
// from SEV_FEATURE_INFO (0x80000024) are left out, so such a leaf must be all zero here
// [uncertain].
//
// Rule kinds (per register, or per bit field of a register):
// - exact: the field must equal the value;
// - max: the field, unsigned, must not exceed the value ("LessThan" in the firmware);
// - mask: only bits of `allowed` may be set; a guest may hide features, never add one;
// - require: these bits must be set (0xD.0 EAX: x87 and SSE);
// - fms: leaf 1 / 0x80000001 EAX must not name a newer family, model or stepping than the part;
// - xsaveStandard / xsaveCompacted: 0xD.0 / 0xD.1 EBX must be the XSAVE size for XCR0_IN (and
//   XSS_IN), computed with this product's component sizes;
// - no check at all ("unchecked"): the hypervisor may choose (topology, caches, brand string).
// Besides its checks, every register has a reserved mask whose bits must be zero.

import { type ProductName, PRODUCT_CPUID } from '../../arch/index.js';

export type CpuidRegister = 'eax' | 'ebx' | 'ecx' | 'edx';
export const CPUID_REGISTERS: readonly CpuidRegister[] = ['eax', 'ebx', 'ecx', 'edx'];

export type FieldCheck =
  | { readonly kind: 'exact'; readonly lo: number; readonly width: number; readonly value: number }
  | { readonly kind: 'max'; readonly lo: number; readonly width: number; readonly value: number }
  | { readonly kind: 'mask'; readonly allowed: number }
  | { readonly kind: 'require'; readonly bits: number }
  | { readonly kind: 'fms'; readonly value: number }
  | { readonly kind: 'xsaveStandard' }
  | { readonly kind: 'xsaveCompacted' };

export interface RegisterPolicy {
  readonly checks: readonly FieldCheck[];
  /** Bits that must be zero whatever the checks say. */
  readonly reserved: number;
}

export interface LeafPolicy {
  readonly fn: number;
  readonly subleaf: number;
  readonly eax: RegisterPolicy;
  readonly ebx: RegisterPolicy;
  readonly ecx: RegisterPolicy;
  readonly edx: RegisterPolicy;
}

/** Sizes of the XSAVE state components the firmware's 0xD.0/0xD.1 size rules add up. */
export interface XsaveSizeRule {
  readonly index: number;
  readonly size: number;
  /** Offset in the standard format; undefined for supervisor (XSS) states. */
  readonly offset?: number;
}

export interface CpuidPolicy {
  readonly product: ProductName;
  /** CPUID_Fn0000_0001_EAX of the part (the firmware reads it from the CPU). */
  readonly fms: number;
  readonly leaves: readonly LeafPolicy[];
  readonly xsave: readonly XsaveSizeRule[];
}

// ---------------------------------------------------------------------------------------------
// Builders

const ALL = 0xffffffff;

function reg(checks: readonly FieldCheck[], reserved = 0): RegisterPolicy {
  return { checks, reserved: reserved >>> 0 };
}
/** The whole register must equal `value`. */
function exact(value: number): RegisterPolicy {
  return reg([{ kind: 'exact', lo: 0, width: 32, value: value >>> 0 }]);
}
/** Only bits of `allowed` may be set. */
function mask(allowed: number, reserved = 0): RegisterPolicy {
  return reg([{ kind: 'mask', allowed: allowed >>> 0 }], reserved);
}
/** The register, unsigned, must not exceed `value`. */
function max(value: number): RegisterPolicy {
  return reg([{ kind: 'max', lo: 0, width: 32, value: value >>> 0 }]);
}
/** Free for the hypervisor, except the reserved bits. */
function free(reserved = 0): RegisterPolicy {
  return reg([], reserved);
}
function leaf(
  fn: number,
  subleaf: number,
  eax: RegisterPolicy,
  ebx: RegisterPolicy,
  ecx: RegisterPolicy,
  edx: RegisterPolicy,
): LeafPolicy {
  return { fn: fn >>> 0, subleaf: subleaf >>> 0, eax, ebx, ecx, edx };
}
/** A leaf whose four registers must all be these values. */
function exactLeaf(fn: number, subleaf: number, a: number, b: number, c: number, d: number) {
  return leaf(fn, subleaf, exact(a), exact(b), exact(c), exact(d));
}

// ---------------------------------------------------------------------------------------------
// Rules common to both parts (same in AMD's Genoa table; assumed for Milan)

/** Fn0000_0001: FMS no newer than the part; CLFLUSH size exactly 8; feature masks. */
function leaf1(fms: number): LeafPolicy {
  return leaf(
    0x1,
    0,
    reg([{ kind: 'fms', value: fms }], 0xf000f000),
    // [7:0] brand ID reserved, [15:8] CLFLUSH line size = 8 qwords, [31:16] (logical processor
    // count, initial APIC ID) free.
    reg([{ kind: 'exact', lo: 8, width: 8, value: 8 }], 0x000000ff),
    // SSE3 PCLMULQDQ MONITOR SSSE3 FMA CX16 PCID SSE4.1 SSE4.2 x2APIC MOVBE POPCNT AES XSAVE AVX
    // F16C RDRAND; OSXSAVE (27) and the hypervisor bit (31) are free. TSC-deadline (24) is
    // reserved.
    mask(0xfefa320b, 0x0105cdf4),
    // FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36 CLFSH MMX FXSR SSE
    // SSE2 HTT. SelfSnoop (27) is reserved.
    mask(0x178bfbff, 0xe8740400),
  );
}

/** Fn8000_0001: same FMS rule; PkgType free; feature masks. */
function ext1(fms: number): LeafPolicy {
  return leaf(
    0x80000001,
    0,
    reg([{ kind: 'fms', value: fms }], 0xf000f000),
    free(0x0fffffff),
    // LahfSahf CmpLegacy SVM ExtApicSpace AltMovCr8 ABM SSE4A MisAlignSse 3DNowPrefetch OSVW IBS
    // SKINIT WDT TCE TopologyExtensions PerfCtrExtCore PerfCtrExtDF DataBreakpointExtension
    // PerfCtrExtLLC MwaitExtended AdMskExtn.
    mask(0x75c237ff),
    // FPU..SYSCALL, NX, MmxExt, MMX, FXSR, FFXSR, Page1GB, RDTSCP, LM.
    mask(0x2fd3fbff),
  );
}

const STRING_LEAF = (fn: number) => leaf(fn, 0, free(), free(), free(), free());

/** Fn8000_001D: cache topology, free for the hypervisor except reserved bits. */
function cacheLeaves(): LeafPolicy[] {
  const out: LeafPolicy[] = [];
  for (let sub = 0; sub < 4; sub++) {
    out.push(leaf(0x8000001d, sub, free(0xfc003c00), free(), free(), free(0xfffffffc)));
  }
  // Subleaf 4 is the null cache type.
  out.push(leaf(0x8000001d, 4, free(0xfffffff0), exact(0), free(), exact(0)));
  return out;
}

/** Fn0000_000B: extended topology, free except reserved bits. */
function topologyLeaves(): LeafPolicy[] {
  return [0, 1, 2].map((sub) =>
    leaf(0xb, sub, free(0xffffffe0), free(0xffff0000), free(0xffff0000), free()),
  );
}

/** Fn0000_000F / Fn0000_0010: RDT monitoring and allocation [uncertain for Milan]. */
function rdtLeaves(): LeafPolicy[] {
  return [
    leaf(0xf, 0, exact(0), free(), exact(0), free(0xfffffffd)),
    leaf(0xf, 1, free(0xfffffe00), free(), free(), free(0xfffffff8)),
    leaf(0x10, 0, exact(0), free(0xfffffff9), exact(0), exact(0)),
    leaf(0x10, 1, free(0xffffffe0), free(), free(0xfffffffb), free(0xffff0000)),
  ];
}

/**
 * Fn8000_001F: EAX a feature mask; EBX C-bit position exactly 51, physical address reduction
 * [11:6] free, VMPL count [15:12] at most 4, [31:16] reserved; ECX and EDX (guest counts and ASID
 * ranges) free.
 */
function sevLeaf(eaxAllowed: number): LeafPolicy {
  return leaf(
    0x8000001f,
    0,
    mask(eaxAllowed),
    reg(
      [
        { kind: 'exact', lo: 0, width: 6, value: 51 },
        { kind: 'max', lo: 12, width: 4, value: 4 },
      ],
      0xffff0000,
    ),
    free(),
    free(),
  );
}

/**
 * Fn8000_0008: address sizes each at most the part's ([7:0] physical, [15:8] linear, [23:16]
 * guest physical); EBX a feature mask; ECX (core count, APIC ID size) free; EDX INVLPGB count at
 * most 7 and RDPRU maximum at most 1.
 */
function ext8(physBits: number, linBits: number, ebxAllowed: number): LeafPolicy {
  return leaf(
    0x80000008,
    0,
    reg(
      [
        { kind: 'max', lo: 0, width: 8, value: physBits },
        { kind: 'max', lo: 8, width: 8, value: linBits },
        { kind: 'max', lo: 16, width: 8, value: 0xff },
      ],
      0xff000000,
    ),
    mask(ebxAllowed),
    free(0xfffc0f00),
    reg(
      [
        { kind: 'max', lo: 0, width: 16, value: 7 },
        { kind: 'max', lo: 16, width: 8, value: 1 },
      ],
      0xff000000,
    ),
  );
}

/** Fn0000_000D subleaves 0 and 1: supported-state masks and the XCR0_IN/XSS_IN-dependent sizes. */
function xsaveHeadLeaves(xcr0Allowed: number, xssAllowed: number): LeafPolicy[] {
  return [
    leaf(
      0xd,
      0,
      reg([
        { kind: 'require', bits: 0x3 },
        { kind: 'mask', allowed: xcr0Allowed },
      ]),
      reg([{ kind: 'xsaveStandard' }]),
      free(),
      exact(0),
    ),
    leaf(
      0xd,
      1,
      mask(0xf), // XSAVEOPT XSAVEC XGETBV1 XSAVES
      reg([{ kind: 'xsaveCompacted' }]),
      mask(xssAllowed),
      mask(0),
    ),
  ];
}

/** Fn8000_0002..4 (brand string), 0x80000005/6 (L1/L2/L3 and TLBs) and Fn2/Fn4: free. */
function freeLeaves(): LeafPolicy[] {
  return [
    // Intel's cache-descriptor leaves, absent from AMD's PPR: the firmware does not check them.
    leaf(0x2, 0, free(), free(), free(), free()),
    leaf(0x4, 0, free(), free(), free(), free()),
    STRING_LEAF(0x80000002),
    STRING_LEAF(0x80000003),
    STRING_LEAF(0x80000004),
    leaf(0x80000005, 0, free(), free(), free(), free()),
    leaf(0x80000006, 0, free(), free(), free(), free(0x00030000)),
  ];
}

const XSAVE_AVX = { index: 2, size: 0x100, offset: 0x240 };
const XSAVE_PKRU = { index: 9, size: 0x8, offset: 0x980 };
const XSAVE_CET_U = { index: 11, size: 0x10 };
const XSAVE_CET_S = { index: 12, size: 0x18 };

// ---------------------------------------------------------------------------------------------
// Genoa (AMD SEV firmware 1.55.25)

function genoaPolicy(): CpuidPolicy {
  const fms = PRODUCT_CPUID.Genoa.fms;
  return {
    product: 'Genoa',
    fms,
    xsave: [
      XSAVE_AVX,
      { index: 5, size: 0x40, offset: 0x340 },
      { index: 6, size: 0x200, offset: 0x380 },
      { index: 7, size: 0x400, offset: 0x580 },
      XSAVE_PKRU,
      XSAVE_CET_U,
      XSAVE_CET_S,
    ],
    leaves: [
      leaf(0x0, 0, max(0x10), free(), free(), free()),
      leaf1(fms),
      ...freeLeaves(),
      leaf(0x5, 0, free(0xffff0000), free(0xffff0000), free(0xfffffffc), free(0xffffff00)),
      leaf(0x6, 0, mask(0x4), exact(0), mask(0x1), exact(0)),
      leaf(
        0x7,
        0,
        max(1),
        // FSGSBASE BMI1 AVX2 SMEP BMI2 ERMS INVPCID PQM PQE AVX512F AVX512DQ RDSEED ADX SMAP
        // AVX512_IFMA CLFLUSHOPT CLWB AVX512CD SHA AVX512BW AVX512VL.
        mask(0xf1bf97a9),
        // AVX512_VBMI UMIP PKU OSPKE(free) AVX512_VBMI2 CET_SS GFNI VAES VPCLMULQDQ AVX512_VNNI
        // AVX512_BITALG AVX512_VPOPCNTDQ LA57 RDPID.
        mask(0x00415fde),
        // FSRM (4) and bit 28. The firmware's write-back for this register clears the allowed
        // bits instead of the others; here it clears the others.
        mask(0x10000010),
      ),
      leaf(0x7, 1, mask(0x20), exact(0), exact(0), exact(0)), // AVX512_BF16
      ...topologyLeaves(),
      ...xsaveHeadLeaves(0x2e7, 0x1800),
      exactLeaf(0xd, 2, 0x100, 0x240, 0, 0),
      leaf(0xd, 5, exact(0x40), exact(0x340), mask(0x3), exact(0)),
      leaf(0xd, 6, exact(0x200), exact(0x380), mask(0x3), exact(0)),
      leaf(0xd, 7, exact(0x400), exact(0x580), mask(0x3), exact(0)),
      exactLeaf(0xd, 9, 0x8, 0x980, 0, 0),
      exactLeaf(0xd, 11, 0x10, 0, 1, 0),
      exactLeaf(0xd, 12, 0x18, 0, 1, 0),
      ...rdtLeaves(),
      leaf(0x80000000, 0, max(0x80000028), free(), free(), free()),
      ext1(fms),
      // EBX: McaOverflowRecov SUCCOR ScalableMca PFEH LWSMI. EDX: TS TTP TM HwPstate
      // TscInvariant CPB EffFreqRO ConnectedStandby RAPL.
      leaf(0x80000007, 0, exact(0), mask(0x3b), free(), mask(0x6799)),
      ext8(52, 57, 0x79bef35f),
      leaf(0x8000000a, 0, free(0xffffff00), free(), exact(0), mask(0x1fbfbcff)),
      leaf(0x80000019, 0, free(), free(), exact(0), exact(0)),
      leaf(0x8000001a, 0, free(0xfffffff8), exact(0), exact(0), exact(0)),
      leaf(0x8000001b, 0, mask(0xbff), exact(0), exact(0), exact(0)),
      ...cacheLeaves(),
      // EDX does not exist in 0x8000001E: reserved as a whole.
      leaf(0x8000001e, 0, free(), free(0xffff0000), free(0xfffff800), free(ALL)),
      // SME SEV PageFlush SEV-ES SNP VMPL RMPQUERY VmplSSS SecureTsc TscAuxVirt HwEnfCacheCoh
      // 64BitHost RestrictedInj AlternateInj DebugSwap PreventHostIbs VTE VmgexitParameter
      // VirtualTomMsr IbsVirtGuestCtl VmsaRegProt SmtProtection.
      sevLeaf(0x030fffff),
      leaf(0x80000020, 0, exact(0), free(0xffffffe1), exact(0), exact(0)),
      leaf(0x80000020, 1, free(), exact(0), exact(0), free()),
      leaf(0x80000020, 2, free(), exact(0), exact(0), free()),
      leaf(0x80000020, 3, exact(0), free(), mask(0x7f), exact(0)),
      leaf(0x80000021, 0, mask(0x18062fcf), free(0xfffff000), exact(0), exact(0)),
      leaf(
        0x80000022,
        0,
        mask(0x7),
        // NumPerfCtrCore [3:0] at most 6, LbrV2StackSize [9:4] at most 0x10, the rest free.
        reg([
          { kind: 'max', lo: 0, width: 4, value: 6 },
          { kind: 'max', lo: 4, width: 6, value: 0x10 },
        ]),
        free(),
        exact(0),
      ),
      leaf(0x80000023, 0, mask(0x1), free(), exact(0), exact(0)),
      ...[0, 1, 2, 3].map((sub) => leaf(0x80000026, sub, free(), free(), free(), free())),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Milan: Genoa's rules with Zen 3 values [uncertain throughout]

function milanPolicy(): CpuidPolicy {
  const fms = PRODUCT_CPUID.Milan.fms;
  return {
    product: 'Milan',
    fms,
    // No AVX-512 states; PKRU at 0x980 as on Genoa [uncertain].
    xsave: [XSAVE_AVX, XSAVE_PKRU, XSAVE_CET_U, XSAVE_CET_S],
    leaves: [
      leaf(0x0, 0, max(0x10), free(), free(), free()),
      leaf1(fms),
      ...freeLeaves(),
      leaf(0x5, 0, free(0xffff0000), free(0xffff0000), free(0xfffffffc), free(0xffffff00)),
      leaf(0x6, 0, mask(0x4), exact(0), mask(0x1), exact(0)),
      leaf(
        0x7,
        0,
        max(0), // no subleaf 1 on Zen 3
        // Genoa's set without the AVX-512 bits.
        mask(0x219c97a9),
        // UMIP PKU OSPKE(free) CET_SS VAES VPCLMULQDQ RDPID.
        mask(0x0040069c),
        mask(0x00000010), // FSRM
      ),
      exactLeaf(0x7, 1, 0, 0, 0, 0),
      ...topologyLeaves(),
      ...xsaveHeadLeaves(0x207, 0x1800),
      exactLeaf(0xd, 2, 0x100, 0x240, 0, 0),
      exactLeaf(0xd, 9, 0x8, 0x980, 0, 0),
      exactLeaf(0xd, 11, 0x10, 0, 1, 0),
      exactLeaf(0xd, 12, 0x18, 0, 1, 0),
      ...rdtLeaves(),
      leaf(0x80000000, 0, max(0x80000023), free(), free(), free()),
      ext1(fms),
      leaf(0x80000007, 0, exact(0), mask(0x1b), free(), mask(0x6799)),
      // Genoa's EBX set without BTC_NO (29) and IBPB_RET (30), Zen 4 additions.
      ext8(48, 48, 0x19bef35f),
      leaf(0x8000000a, 0, free(0xffffff00), free(), exact(0), mask(0x0133bcff)),
      leaf(0x80000019, 0, free(), free(), exact(0), exact(0)),
      leaf(0x8000001a, 0, free(0xfffffff8), exact(0), exact(0), exact(0)),
      leaf(0x8000001b, 0, mask(0x3ff), exact(0), exact(0), exact(0)),
      ...cacheLeaves(),
      leaf(0x8000001e, 0, free(), free(0xffff0000), free(0xfffff800), free(ALL)),
      // SME SEV PageFlush SEV-ES SNP VMPL HwEnfCacheCoh 64BitHost RestrictedInj AlternateInj
      // DebugSwap PreventHostIbs VTE.
      sevLeaf(0x0001fc3f),
      // NoNestedDataBp LFenceAlwaysSerializing SmmPgCfgLock NullSelectClearsBase NoSmmCtlMsr.
      leaf(0x80000021, 0, mask(0x0000024d), free(0xfffff000), exact(0), exact(0)),
    ],
  };
}

const POLICIES: Readonly<Record<ProductName, CpuidPolicy>> = {
  Milan: milanPolicy(),
  Genoa: genoaPolicy(),
};

/** The firmware's CPUID policy for a product. */
export function cpuidPolicy(product: ProductName): CpuidPolicy {
  return POLICIES[product];
}

/** The policy for (fn, subleaf), matched exactly as the firmware does, or undefined. */
export function findLeafPolicy(
  policy: CpuidPolicy,
  fn: number,
  subleaf: number,
): LeafPolicy | undefined {
  const f = fn >>> 0;
  const s = subleaf >>> 0;
  return policy.leaves.find((l) => l.fn === f && l.subleaf === s);
}
