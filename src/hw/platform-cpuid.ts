// The simulated platform's CPUID: what a vCPU of an SEV-SNP guest on a Milan- or Genoa-based EPYC
// is told, deterministic and independent of the machine the simulator runs on.
//
// "Platform" here means silicon as a sane SNP hypervisor presents it to a guest: the processor's
// own values (AMD PPR for family 19h, cross-checked against AMD's Genoa SEV firmware tables, see
// asp/cpuid-policy.ts), with the hypervisor bit set and with what no VMM offers an SNP guest left
// out (SVM, MONITOR/MWAIT, RDT monitoring, IBS/performance-counter extensions, PKU and CET, LA57,
// power-management MSR interfaces). Every value here passes the firmware's CPUID-page check
// unchanged (asp/cpuid-check.ts); the tests hold that. Facts: reference/linux-snp-guest.md 2.2 and
// 3.6.
//
// Per-vCPU fields. The SNP CPUID page is one table for all vCPUs, so it carries vCPU 0's view with
// the fields a guest cannot take from it set to what a vCPU with CR4=0 reads. Linux
// (`snp_cpuid_postprocess`) fixes them up per vCPU at run time:
// - leaf 1: EBX[31:24] (initial APIC ID) and EDX[9] (APIC) come from the hypervisor (GHCB CPUID);
//   ECX[27] (OSXSAVE) is ORed in from CR4, so the table must hold 0 there;
// - leaf 7.0: ECX[4] (OSPKE) is replaced by CR4.PKE;
// - leaf 0xB: EDX (x2APIC ID) comes from the hypervisor;
// - leaf 0x8000001E: EAX, EBX[7:0] and ECX[7:0] come from the hypervisor;
// - leaf 0xD.0/0xD.1: EBX is recomputed from the 0xD.n (n >= 2) entries for the current XCR0/XSS.
// platformCpuid() takes the vCPU's APIC ID and CR4 bits, so the host can answer a GHCB CPUID
// request with the same function; defaultSnpCpuidEntries() uses vCPU 0 with CR4 = 0.

import { type CpuidEntry, type ProductName, SNP_CPUID_MAX_ENTRIES } from '../arch/index.js';

/** The four output registers of one CPUID query, each a uint32. */
export interface CpuidResult {
  readonly eax: number;
  readonly ebx: number;
  readonly ecx: number;
  readonly edx: number;
}

/** The per-vCPU state CPUID output depends on. */
export interface VcpuCpuidContext {
  /** vCPUs in the VM (1..255): one core each, no SMT, one socket, one node. */
  readonly vcpuCount: number;
  /** This vCPU's (x2)APIC ID. */
  readonly apicId: number;
  /** CR4.OSXSAVE, reflected in leaf 1 ECX[27]. */
  readonly osxsave: boolean;
  /** CR4.PKE, reflected in leaf 7.0 ECX[4] (never set here: PKU is not offered). */
  readonly ospke: boolean;
}

const DEFAULT_VCPU: VcpuCpuidContext = { vcpuCount: 1, apicId: 0, osxsave: false, ospke: false };

/** XCR0 value after reset (x87 only); the XCR0_IN that Linux and QEMU use for 0xD.0/0xD.1. */
export const XCR0_RESET = 1n;

/**
 * Leaves whose output depends on ECX (Linux `cpuid_function_is_indexed`, asm/cpuid/api.h). For
 * every other leaf the subleaf is ignored by the CPU, and a CPUID page entry has ECX_IN = 0.
 */
export function cpuidLeafIsIndexed(fn: number): boolean {
  switch (fn >>> 0) {
    case 0x4:
    case 0x7:
    case 0xb:
    case 0xd:
    case 0xf:
    case 0x10:
    case 0x12:
    case 0x14:
    case 0x17:
    case 0x18:
    case 0x1d:
    case 0x1e:
    case 0x1f:
    case 0x23:
    case 0x24:
    case 0x8000001d:
      return true;
    default:
      return false;
  }
}

/** One XSAVE state component as CPUID 0xD.n reports it. */
export interface XsaveComponent {
  /** State component number (the XCR0/XSS bit). */
  readonly index: number;
  /** Bytes (0xD.n EAX). */
  readonly size: number;
  /** Offset in the standard (non-compacted) format (0xD.n EBX); 0 for supervisor states. */
  readonly offset: number;
  /** Supervisor state, enabled through IA32_XSS (0xD.n ECX[0]). */
  readonly supervisor: boolean;
}

/** The legacy region (x87 + SSE, 512 bytes) plus the XSAVE header (64 bytes). */
export const XSAVE_LEGACY_AND_HEADER = 0x240;

interface CacheLevel {
  /** 0x8000001D EBX: ways - 1 in [31:22], line size - 1 in [11:0]. */
  readonly ebx: number;
  /** 0x8000001D ECX: sets - 1. */
  readonly sets: number;
  /** 0x8000001D EDX. */
  readonly edx: number;
}

/** Everything that differs between the two parts. */
interface ProductProfile {
  readonly fms: number;
  readonly maxStdLeaf: number;
  readonly maxExtLeaf: number;
  readonly brand: string;
  readonly leaf1Ecx: number;
  readonly leaf1Edx: number;
  readonly leaf7: CpuidResult;
  readonly leaf7s1Eax: number;
  /** XCR0 bits the guest may enable (0xD.0 EDX:EAX). */
  readonly xcr0Supported: bigint;
  /** XSS bits the guest may enable (0xD.1 EDX:ECX). */
  readonly xssSupported: bigint;
  readonly xsaveComponents: readonly XsaveComponent[];
  readonly ext1Ecx: number;
  readonly ext1Edx: number;
  readonly ext6: CpuidResult;
  readonly ext8Eax: number;
  readonly ext8Ebx: number;
  readonly l2: CacheLevel;
  readonly l3: CacheLevel;
  readonly sev: CpuidResult;
  readonly ext21Eax: number;
}

const VENDOR_EBX = 0x68747541; // "Auth"
const VENDOR_EDX = 0x69746e65; // "enti"
const VENDOR_ECX = 0x444d4163; // "cAMD"

// Leaf 1 ECX, both parts: SSE3 0, PCLMULQDQ 1, SSSE3 9, FMA 12, CX16 13, PCID 17, SSE4.1 19,
// SSE4.2 20, x2APIC 21, MOVBE 22, POPCNT 23, AES 25, XSAVE 26, AVX 28, F16C 29, RDRAND 30 and the
// hypervisor bit 31. Left out: MONITOR (3; MWAIT is a #VC a guest should not spin on) and
// TSC-deadline (24), which the firmware reserves in leaf 1 (QEMU strips it for SNP guests too,
// `sev_snp_mask_cpuid_features`). OSXSAVE (27) is per vCPU.
const LEAF1_ECX = 0xf6fa3203;
// Leaf 1 EDX, both parts: FPU VME DE PSE TSC MSR PAE MCE CX8 APIC SEP MTRR PGE MCA CMOV PAT PSE36
// CLFSH MMX FXSR SSE SSE2 HTT. No SelfSnoop (27): reserved on AMD and in the firmware's table.
const LEAF1_EDX = 0x178bfbff;
// 0x80000001 ECX: LahfSahf 0, CmpLegacy 1, AltMovCr8 4, ABM 5, SSE4A 6, MisAlignSse 7,
// 3DNowPrefetch 8, OSVW 9, TopologyExtensions 22 (SVM, ExtApicSpace, IBS, SKINIT, WDT, TCE and the
// performance-counter extensions stay with the host).
const EXT1_ECX = 0x004003f3;
// 0x80000001 EDX: the leaf 1 set minus HTT plus SYSCALL, NX, MmxExt, FFXSR, Page1GB, RDTSCP, LM.
const EXT1_EDX = 0x2fd3fbff;
// 0x80000008 EBX: CLZERO 0, XSaveErPtr 2, WBNOINVD 9, IBPB 12, IBRS 14, STIBP 15, SSBD 24, PSFD 28.
const EXT8_EBX = 0x1100d205;
// 0x8000001F EBX: C-bit position 51 [5:0], physical address bit reduction 1 [11:6] (the QEMU
// `reduced-phys-bits=1` guests see), 4 VMPLs [15:12].
const SEV_EBX = 51 | (1 << 6) | (4 << 12);

// XSAVE layouts (0xD.n): AVX at 0x240; on Genoa the AVX-512 states follow at 0x340/0x380/0x580;
// PKRU at 0x980 on both (AMD's Genoa firmware: 0xD.9 = {8, 0x980}; the Milan offset is assumed
// to be the same [uncertain]). CET_U/CET_S are supervisor states of 0x10 and 0x18 bytes.
const AVX: XsaveComponent = { index: 2, size: 0x100, offset: 0x240, supervisor: false };
const OPMASK: XsaveComponent = { index: 5, size: 0x40, offset: 0x340, supervisor: false };
const ZMM_HI256: XsaveComponent = { index: 6, size: 0x200, offset: 0x380, supervisor: false };
const HI16_ZMM: XsaveComponent = { index: 7, size: 0x400, offset: 0x580, supervisor: false };

const L1_8WAY_64B = (7 << 22) | 63;

const PROFILES: Readonly<Record<ProductName, ProductProfile>> = {
  Milan: {
    fms: 0x00a00f11,
    maxStdLeaf: 0x10,
    maxExtLeaf: 0x80000021,
    brand: 'AMD EPYC 7763 64-Core Processor',
    leaf1Ecx: LEAF1_ECX,
    leaf1Edx: LEAF1_EDX,
    // 7.0 EBX: FSGSBASE BMI1 AVX2 SMEP BMI2 ERMS INVPCID RDSEED ADX SMAP CLFLUSHOPT CLWB SHA.
    // ECX: UMIP 2, VAES 9, VPCLMULQDQ 10, RDPID 22. EDX: FSRM 4.
    leaf7: { eax: 0, ebx: 0x219c07a9, ecx: 0x00400604, edx: 0x00000010 },
    leaf7s1Eax: 0,
    xcr0Supported: 0x7n,
    xssSupported: 0n,
    xsaveComponents: [AVX],
    ext1Ecx: EXT1_ECX,
    ext1Edx: EXT1_EDX,
    // L1 TLBs/caches and L2/L3 as an EPYC 7763 reports them (L3: 256 MiB per socket).
    ext6: { eax: 0x48002200, ebx: 0x68004200, ecx: 0x02006140, edx: 0x08009140 },
    ext8Eax: 0x00003030, // 48-bit physical and linear addresses
    ext8Ebx: EXT8_EBX,
    l2: { ebx: L1_8WAY_64B, sets: 0x3ff, edx: 0x2 }, // 512 KiB, 8-way, inclusive
    l3: { ebx: (15 << 22) | 63, sets: 0x7fff, edx: 0x1 }, // 32 MiB per CCX, 16-way
    // 0x8000001F EAX: SME SEV PageFlushMsr SEV-ES SNP VMPL (0-5), HwEnfCacheCoh 10, 64BitHost 11,
    // RestrictedInjection 12, AlternateInjection 13, DebugSwap 14, PreventHostIbs 15, VTE 16
    // [uncertain: the Zen 3 set as recalled, no Milan dump or firmware table was available].
    // ECX/EDX (encrypted guests, minimum SEV-ES ASID) are BIOS settings the firmware leaves free.
    sev: { eax: 0x0001fc3f, ebx: SEV_EBX, ecx: 509, edx: 100 },
    ext21Eax: 0x00000204, // LFENCE always serializing 2, NoSmmCtlMsr 9
  },
  Genoa: {
    fms: 0x00a10f11,
    maxStdLeaf: 0x10,
    maxExtLeaf: 0x80000021,
    brand: 'AMD EPYC 9654 96-Core Processor',
    leaf1Ecx: LEAF1_ECX,
    leaf1Edx: LEAF1_EDX,
    // 7.0: the Milan set plus AVX512F/DQ/IFMA/CD/BW/VL (EBX) and AVX512VBMI/VBMI2/GFNI/VNNI/
    // BITALG/VPOPCNTDQ (ECX); subleaf 1 exists (EAX = 1) and reports AVX512_BF16.
    leaf7: { eax: 1, ebx: 0xf1bf07a9, ecx: 0x00405f46, edx: 0x00000010 },
    leaf7s1Eax: 0x00000020,
    xcr0Supported: 0xe7n,
    xssSupported: 0n,
    xsaveComponents: [AVX, OPMASK, ZMM_HI256, HI16_ZMM],
    ext1Ecx: EXT1_ECX,
    ext1Edx: EXT1_EDX,
    // L2 1 MiB per core; L3 384 MiB per socket (32 MiB per CCD).
    ext6: { eax: 0x48002200, ebx: 0x68004200, ecx: 0x04006140, edx: 0x0c009140 },
    ext8Eax: 0x00003034, // 52-bit physical, 48-bit linear (LA57 not offered)
    ext8Ebx: EXT8_EBX,
    l2: { ebx: L1_8WAY_64B, sets: 0x7ff, edx: 0x2 },
    l3: { ebx: (15 << 22) | 63, sets: 0x7fff, edx: 0x1 },
    // 0x8000001F EAX: every bit AMD's Genoa firmware accepts (0-19, VmsaRegProt 24, SMT
    // protection 25).
    sev: { eax: 0x030fffff, ebx: SEV_EBX, ecx: 1006, edx: 100 },
    ext21Eax: 0x00000244, // + NullSelectClearsBase 6
  },
};

/** The product's XSAVE state components offered to a guest (0xD.n, n >= 2). */
export function xsaveComponents(product: ProductName): readonly XsaveComponent[] {
  return PROFILES[product].xsaveComponents;
}

/**
 * XSAVE area size for the enabled states: standard format (0xD.0 EBX, user states of XCR0) or
 * compacted (0xD.1 EBX, XCR0 | XSS, no component needs 64-byte alignment here).
 */
export function xsaveAreaSize(
  product: ProductName,
  xcr0: bigint,
  xss: bigint,
  format: 'standard' | 'compacted',
): number {
  const p = PROFILES[product];
  const enabled = (xcr0 & p.xcr0Supported) | (format === 'compacted' ? xss & p.xssSupported : 0n);
  let size = XSAVE_LEGACY_AND_HEADER;
  for (const c of p.xsaveComponents) {
    if ((enabled & (1n << BigInt(c.index))) === 0n) continue;
    if (format === 'compacted') size += c.size;
    else if (!c.supervisor) size = Math.max(size, c.offset + c.size);
  }
  return size;
}

/** Bits needed to number `n` things (0 for 1). */
function ceilLog2(n: number): number {
  let bits = 0;
  while (1 << bits < n) bits++;
  return bits;
}

/** The 48-byte brand string: the name padded with spaces to 47 bytes, then NUL. */
export function brandString(product: ProductName): Uint8Array {
  const name = PROFILES[product].brand;
  const out = new Uint8Array(48).fill(0x20);
  for (let i = 0; i < name.length; i++) out[i] = name.charCodeAt(i);
  out[47] = 0;
  return out;
}

function brandLeaf(product: ProductName, part: number): CpuidResult {
  const bytes = brandString(product);
  const view = new DataView(bytes.buffer, part * 16, 16);
  return {
    eax: view.getUint32(0, true),
    ebx: view.getUint32(4, true),
    ecx: view.getUint32(8, true),
    edx: view.getUint32(12, true),
  };
}

const ZERO: CpuidResult = { eax: 0, ebx: 0, ecx: 0, edx: 0 };

function checkVcpu(vcpu: VcpuCpuidContext): void {
  if (!Number.isInteger(vcpu.vcpuCount) || vcpu.vcpuCount < 1 || vcpu.vcpuCount > 255) {
    throw new RangeError(`vcpuCount ${vcpu.vcpuCount} is outside 1..255`);
  }
  if (!Number.isInteger(vcpu.apicId) || vcpu.apicId < 0 || vcpu.apicId > 0xffffffff) {
    throw new RangeError(`APIC ID ${vcpu.apicId} is not a uint32`);
  }
}

/**
 * CPUID(fn, subleaf) as the platform reports it to an SNP guest's vCPU with the given XCR0, XSS,
 * APIC ID and CR4 bits. The subleaf is ignored for leaves that are not indexed; unknown leaves and
 * leaves above the maximum give zeros (hypervisor leaves 0x4000_00xx are the host's business).
 */
export function platformCpuid(
  product: ProductName,
  fn: number,
  subleaf = 0,
  xcr0: bigint = XCR0_RESET,
  xss = 0n,
  vcpu: Partial<VcpuCpuidContext> = {},
): CpuidResult {
  const p = PROFILES[product];
  const v: VcpuCpuidContext = { ...DEFAULT_VCPU, ...vcpu };
  checkVcpu(v);
  const leaf = fn >>> 0;
  const sub = subleaf >>> 0;
  const count = v.vcpuCount;
  const apicId = v.apicId >>> 0;
  const isStd = leaf <= p.maxStdLeaf;
  const isExt = leaf >= 0x80000000 && leaf <= p.maxExtLeaf;
  if (!isStd && !isExt) return ZERO;

  switch (leaf) {
    case 0x0:
      return { eax: p.maxStdLeaf, ebx: VENDOR_EBX, ecx: VENDOR_ECX, edx: VENDOR_EDX };
    case 0x1:
      return {
        eax: p.fms,
        // [31:24] initial APIC ID, [23:16] logical processors, [15:8] CLFLUSH size in qwords.
        ebx: (((apicId & 0xff) << 24) | (count << 16) | (8 << 8)) >>> 0,
        ecx: (p.leaf1Ecx | (v.osxsave ? 1 << 27 : 0)) >>> 0,
        edx: p.leaf1Edx,
      };
    case 0x6:
      return { eax: 0x4, ebx: 0, ecx: 0, edx: 0 }; // ARAT
    case 0x7:
      if (sub === 0) {
        return { ...p.leaf7, ecx: (p.leaf7.ecx | (v.ospke ? 1 << 4 : 0)) >>> 0 };
      }
      if (sub === 1 && p.leaf7.eax >= 1) return { eax: p.leaf7s1Eax, ebx: 0, ecx: 0, edx: 0 };
      return ZERO;
    case 0xb: {
      // Extended topology: level 0 SMT (1 thread per core), level 1 core (all vCPUs), then the
      // invalid level that ends the enumeration. EDX is the x2APIC ID at every level.
      if (sub === 0) return { eax: 0, ebx: 1, ecx: 0x100, edx: apicId };
      if (sub === 1) return { eax: ceilLog2(count), ebx: count, ecx: 0x201, edx: apicId };
      return { eax: 0, ebx: 0, ecx: sub & 0xff, edx: apicId };
    }
    case 0xd:
      return xsaveLeaf(product, sub, xcr0, xss);
    case 0x80000000:
      return { eax: p.maxExtLeaf, ebx: VENDOR_EBX, ecx: VENDOR_ECX, edx: VENDOR_EDX };
    case 0x80000001:
      // EBX[31:28] PkgType 4 (SP3/SP5 server package).
      return { eax: p.fms, ebx: 0x40000000, ecx: p.ext1Ecx, edx: p.ext1Edx };
    case 0x80000002:
    case 0x80000003:
    case 0x80000004:
      return brandLeaf(product, leaf - 0x80000002);
    case 0x80000005:
      // L1 TLBs: 64 entries fully associative; L1D and L1I: 32 KiB, 8-way, 64-byte lines.
      return { eax: 0xff40ff40, ebx: 0xff40ff40, ecx: 0x20080140, edx: 0x20080140 };
    case 0x80000006:
      return p.ext6;
    case 0x80000007:
      return { eax: 0, ebx: 0, ecx: 0, edx: 1 << 8 }; // invariant TSC
    case 0x80000008:
      return {
        eax: p.ext8Eax,
        ebx: p.ext8Ebx,
        // [15:12] ApicIdSize, [7:0] NC = cores - 1.
        ecx: (ceilLog2(count) << 12) | (count - 1),
        edx: 0,
      };
    case 0x8000001d:
      return cacheLeaf(p, sub, count);
    case 0x8000001e:
      // Extended APIC ID; EBX ComputeUnit/core ID [7:0] with 1 thread per core; ECX node 0 of 1.
      return { eax: apicId, ebx: apicId & 0xff, ecx: 0, edx: 0 };
    case 0x8000001f:
      return p.sev;
    case 0x80000021:
      return { eax: p.ext21Eax, ebx: 0, ecx: 0, edx: 0 };
    default:
      return ZERO;
  }
}

function xsaveLeaf(product: ProductName, sub: number, xcr0: bigint, xss: bigint): CpuidResult {
  const p = PROFILES[product];
  if (sub === 0) {
    return {
      eax: Number(p.xcr0Supported & 0xffffffffn),
      ebx: xsaveAreaSize(product, xcr0, xss, 'standard'),
      ecx: xsaveAreaSize(product, p.xcr0Supported, 0n, 'standard'),
      edx: Number(p.xcr0Supported >> 32n),
    };
  }
  if (sub === 1) {
    return {
      eax: 0xf, // XSAVEOPT, XSAVEC, XGETBV with ECX=1, XSAVES/XRSTORS
      ebx: xsaveAreaSize(product, xcr0, xss, 'compacted'),
      ecx: Number(p.xssSupported & 0xffffffffn),
      edx: Number(p.xssSupported >> 32n),
    };
  }
  const c = p.xsaveComponents.find((x) => x.index === sub);
  if (c === undefined) return ZERO;
  return { eax: c.size, ebx: c.offset, ecx: c.supervisor ? 1 : 0, edx: 0 };
}

function cacheLeaf(p: ProductProfile, sub: number, count: number): CpuidResult {
  // EAX: [25:14] logical processors sharing - 1, [8] self-initializing, [7:5] level, [4:0] type
  // (1 data, 2 instruction, 3 unified). L1 and L2 are per core; L3 is shared by every vCPU.
  switch (sub) {
    case 0:
      return { eax: 0x121, ebx: L1_8WAY_64B, ecx: 63, edx: 0 };
    case 1:
      return { eax: 0x122, ebx: L1_8WAY_64B, ecx: 63, edx: 0 };
    case 2:
      return { eax: 0x143, ebx: p.l2.ebx, ecx: p.l2.sets, edx: p.l2.edx };
    case 3:
      return {
        eax: (((count - 1) << 14) | 0x163) >>> 0,
        ebx: p.l3.ebx,
        ecx: p.l3.sets,
        edx: p.l3.edx,
      };
    default:
      return ZERO;
  }
}

/** A leaf and subleaf of the default CPUID page. */
interface PageLeaf {
  readonly fn: number;
  readonly subleaf: number;
}

function pageLeaves(product: ProductName): PageLeaf[] {
  const p = PROFILES[product];
  const leaves: PageLeaf[] = [
    { fn: 0x0, subleaf: 0 },
    { fn: 0x1, subleaf: 0 },
    { fn: 0x6, subleaf: 0 },
    { fn: 0x7, subleaf: 0 },
  ];
  if (p.leaf7.eax >= 1) leaves.push({ fn: 0x7, subleaf: 1 });
  leaves.push({ fn: 0xb, subleaf: 0 }, { fn: 0xb, subleaf: 1 });
  leaves.push({ fn: 0xd, subleaf: 0 }, { fn: 0xd, subleaf: 1 });
  for (const c of p.xsaveComponents) leaves.push({ fn: 0xd, subleaf: c.index });
  for (let fn = 0x80000000; fn <= 0x80000008; fn++) leaves.push({ fn, subleaf: 0 });
  for (let sub = 0; sub < 4; sub++) leaves.push({ fn: 0x8000001d, subleaf: sub });
  leaves.push({ fn: 0x8000001e, subleaf: 0 }, { fn: 0x8000001f, subleaf: 0 });
  leaves.push({ fn: 0x80000021, subleaf: 0 });
  return leaves;
}

/**
 * The entries a launch puts in the CPUID page for a VM of `vcpuCount` vCPUs: vCPU 0's view with
 * CR4 = 0 (see the header of this file for the per-vCPU fields Linux fixes up). 0xD.0 and 0xD.1
 * are recorded for XCR0_IN = 1, XSS_IN = 0 with the legacy size 0x240: Linux uses those two only
 * when XCR0_IN is 1 or 3 and XSS_IN is 0 and computes the real size from the 0xD.n entries, and
 * QEMU writes them the same way (`sev_snp_cpuid_info_fill`). Non-indexed leaves have ECX_IN = 0,
 * which the firmware requires (it matches ECX_IN exactly). Hypervisor leaves (0x4000_00xx, e.g.
 * kvmclock) are not included: the host adds them, and the firmware does not check that range.
 */
export function defaultSnpCpuidEntries(product: ProductName, vcpuCount: number): CpuidEntry[] {
  const entries = pageLeaves(product).map(({ fn, subleaf }): CpuidEntry => {
    const r = platformCpuid(product, fn, subleaf, XCR0_RESET, 0n, { vcpuCount, apicId: 0 });
    const xcr0In = fn === 0xd && subleaf <= 1 ? XCR0_RESET : 0n;
    return { eaxIn: fn, ecxIn: subleaf, xcr0In, xssIn: 0n, ...r };
  });
  if (entries.length > SNP_CPUID_MAX_ENTRIES) {
    throw new RangeError(`${entries.length} CPUID entries do not fit one page`);
  }
  return entries;
}
