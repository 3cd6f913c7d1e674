// The MSRs the host emulates for an SNP guest's RDMSR/WRMSR #VC exits: those Linux touches during
// boot (reference/linux-snp-guest.md sections 3.6, 3.7 and 4), with KVM's values and write rules.
// MSRs that live in the VMSA (EFER, STAR..., FS/GS base, SYSENTER, XSS) never exit and are not
// here; the x2APIC range (0x800-0x8FF) and TSC_DEADLINE belong to the local APIC. Any MSR not in
// this table is refused the way KVM refuses it: #GP injected through the GHCB.

import { MSR } from '../../arch/index.js';

/** How a write is taken: kept, dropped, or kept only if `valid` accepts it (else #GP). */
export type MsrWriteRule = 'store' | 'ignore' | { readonly valid: (value: bigint) => boolean };

export interface MsrSpec {
  readonly name: string;
  /** Value after reset for vCPU `index` (0 = the BSP). */
  readonly reset: (index: number) => bigint;
  readonly write: MsrWriteRule;
  /** Write-only MSRs (PRED_CMD) raise #GP on RDMSR. */
  readonly writeOnly?: boolean;
}

const zero = (): bigint => 0n;
const fixed = (v: bigint) => (): bigint => v;
const upTo = (bits: number) => ({ valid: (v: bigint): boolean => v >> BigInt(bits) === 0n });

/** xAPIC base 0xFEE00000, enabled (bit 11), BSP flag (bit 8) on vCPU 0; xAPIC mode. */
export const APIC_BASE_DEFAULT = 0xfee0_0800n;
const APIC_BSP = 0x100n;
/** PAT after reset (WB, WT, UC-, UC, repeated) as Linux expects to read it. */
export const PAT_DEFAULT = 0x0007_0406_0007_0406n;
/** PAT memory types a PAT entry may hold: UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7. */
function validPat(v: bigint): boolean {
  for (let i = 0n; i < 64n; i += 8n) {
    const t = Number((v >> i) & 0xffn);
    if (t !== 0 && t !== 1 && t !== 4 && t !== 5 && t !== 6 && t !== 7) return false;
  }
  return true;
}

/** The AMD family 19h MSRs Linux reads (`init_amd`, `early_detect_mem_encrypt`, OSVW...). */
const MSR_EXTRA = {
  MTRR_PHYS_BASE0: 0x200,
  MTRR_PHYS_MASK7: 0x20f,
  OSVW_ID_LENGTH: 0xc001_0140,
  OSVW_STATUS: 0xc001_0141,
  K7_EVNTSEL0: 0xc001_0000,
  K7_PERFCTR3: 0xc001_0007,
  DC_CFG: 0xc001_1022,
  BU_CFG2: 0xc001_102a,
  TW_CFG: 0xc001_1023,
} as const;

function table(): Map<number, MsrSpec> {
  const t = new Map<number, MsrSpec>();
  const add = (msr: number, spec: MsrSpec): void => void t.set(msr, spec);
  add(MSR.APIC_BASE, {
    name: 'APIC_BASE',
    reset: (i) => APIC_BASE_DEFAULT | (i === 0 ? APIC_BSP : 0n),
    // Base (52-bit physical), enable (11), x2APIC (10) and BSP (8); the rest is reserved.
    write: { valid: (v) => (v & ~0x000f_ffff_ffff_fd00n) === 0n },
  });
  add(MSR.SPEC_CTRL, { name: 'SPEC_CTRL', reset: zero, write: upTo(32) });
  add(MSR.PRED_CMD, { name: 'PRED_CMD', reset: zero, write: upTo(1), writeOnly: true });
  // MSR_IA32_UCODE_REV / PATCH_LEVEL: KVM's default microcode revision 0x1_0000_0000.
  add(MSR.PATCH_LEVEL, { name: 'PATCH_LEVEL', reset: fixed(0x1_0000_0000n), write: 'ignore' });
  // No MTRRs beyond the default type: VCNT 0, no fixed ranges, no WC.
  add(MSR.MTRR_CAP, { name: 'MTRR_CAP', reset: zero, write: { valid: () => false } });
  add(MSR.MTRR_DEF_TYPE, { name: 'MTRR_DEF_TYPE', reset: zero, write: upTo(12) });
  for (let m = MSR_EXTRA.MTRR_PHYS_BASE0; m <= MSR_EXTRA.MTRR_PHYS_MASK7; m++)
    add(m, {
      name: `MTRR_PHYS_${m & 1 ? 'MASK' : 'BASE'}${(m - 0x200) >> 1}`,
      reset: zero,
      write: 'store',
    });
  add(MSR.MCG_CAP, { name: 'MCG_CAP', reset: zero, write: { valid: () => false } });
  add(MSR.MCG_STATUS, { name: 'MCG_STATUS', reset: zero, write: 'store' });
  // KVM: PEBS and BTS unavailable.
  add(MSR.MISC_ENABLE, { name: 'MISC_ENABLE', reset: fixed(0x1800n), write: 'store' });
  add(MSR.DEBUGCTL, { name: 'DEBUGCTL', reset: zero, write: 'store' });
  add(MSR.PAT, { name: 'PAT', reset: fixed(PAT_DEFAULT), write: { valid: validPat } });
  add(MSR.TSC_AUX, { name: 'TSC_AUX', reset: zero, write: upTo(32) });
  add(MSR.SYSCFG, { name: 'SYSCFG', reset: zero, write: 'ignore' });
  add(MSR.HWCR, { name: 'HWCR', reset: zero, write: 'store' });
  add(MSR.VM_CR, { name: 'VM_CR', reset: zero, write: 'ignore' });
  add(MSR.VIRT_SPEC_CTRL, { name: 'VIRT_SPEC_CTRL', reset: zero, write: upTo(32) });
  add(MSR.LS_CFG, { name: 'LS_CFG', reset: zero, write: 'ignore' });
  // DE_CFG bit 1: LFENCE is dispatch serializing (KVM reports the host's bit; Zen 3/4 set it).
  add(MSR.DE_CFG, { name: 'DE_CFG', reset: fixed(0x2n), write: 'store' });
  add(MSR_EXTRA.DC_CFG, { name: 'DC_CFG', reset: zero, write: 'ignore' });
  add(MSR_EXTRA.TW_CFG, { name: 'TW_CFG', reset: zero, write: 'ignore' });
  add(MSR_EXTRA.BU_CFG2, { name: 'BU_CFG2', reset: zero, write: 'ignore' });
  add(MSR_EXTRA.OSVW_ID_LENGTH, { name: 'OSVW_ID_LENGTH', reset: zero, write: 'store' });
  add(MSR_EXTRA.OSVW_STATUS, { name: 'OSVW_STATUS', reset: zero, write: 'store' });
  // Legacy performance counters without a vPMU: read 0, writes dropped (KVM without enable_pmu).
  for (let m = MSR_EXTRA.K7_EVNTSEL0; m <= MSR_EXTRA.K7_PERFCTR3; m++)
    add(m, { name: `K7_PERF${m & 4 ? 'CTR' : 'EVNTSEL'}${m & 3}`, reset: zero, write: 'ignore' });
  return t;
}

export const MSR_TABLE: ReadonlyMap<number, MsrSpec> = table();

/** One vCPU's emulated MSRs, plus the TSC offset a write to IA32_TSC sets. */
export class VcpuMsrs {
  private readonly values = new Map<number, bigint>();
  /** Guest TSC = virtual TSC + offset (KVM's tsc_offset). */
  tscOffset = 0n;
  /** DR7 as the host keeps it for DR7 read/write exits (reset value 0x400). */
  dr7 = 0x400n;

  constructor(readonly index: number) {
    for (const [msr, spec] of MSR_TABLE) this.values.set(msr, spec.reset(index));
  }

  /** The value, or undefined if the MSR is not readable here (the caller injects #GP). */
  read(msr: number): bigint | undefined {
    const spec = MSR_TABLE.get(msr);
    if (spec === undefined || spec.writeOnly === true) return undefined;
    return this.values.get(msr);
  }

  /** False if the write is refused (the caller injects #GP). */
  write(msr: number, value: bigint): boolean {
    const spec = MSR_TABLE.get(msr);
    if (spec === undefined) return false;
    const rule = spec.write;
    if (rule === 'ignore') return true;
    if (rule !== 'store' && !rule.valid(value)) return false;
    if (spec.writeOnly !== true) this.values.set(msr, value);
    return true;
  }
}
