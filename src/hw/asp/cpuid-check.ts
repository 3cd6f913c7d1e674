// SNP_LAUNCH_UPDATE of a CPUID page (page type 6): the firmware's validation of the table the
// hypervisor proposes, and the corrected table it writes back when validation fails.
//
// The algorithm follows AMD's Genoa SEV firmware (github.com/amd/AMD-ASPFW 1.55.25:
// sev_mcmd.c `snp_mcmd_launch_update`, cpuid_lookup.c `sanitize_cpuid_list` and
// `sanitize_cpuid_entry`); the per-leaf rules are in cpuid-policy.ts. In order:
// 1. The header's reserved fields (u32 at 0x4, u64 at 0x8) must be zero and COUNT at most 64;
//    otherwise the command fails with INVALID_PARAM and nothing is written back. COUNT = 0 is
//    accepted (Linux refuses such a page later, in `setup_cpuid_table`).
// 2. Only entries whose EAX_IN lies in the standard range 0x0000_0000..0x0000_FFFF or the
//    extended range 0x8000_0000..0x8000_FFFF are checked. Others (hypervisor leaves 0x4000_00xx,
//    anything else) pass as they are.
// 3. A checked entry's reserved quadword (0x28) must be zero. The firmware fails the page but
//    leaves the quadword as it was, so its write-back would fail again; here the corrected page
//    has it zeroed, so that a retry with the corrected page passes [deviation, deliberate].
// 4. The entry is looked up by (EAX_IN, ECX_IN) exactly, for indexed and non-indexed leaves
//    alike: a non-indexed leaf with ECX_IN != 0 is an unknown leaf. XCR0_IN and XSS_IN are not
//    checked; they only feed the 0xD.0/0xD.1 EBX size rules.
// 5. An unknown leaf in the checked ranges must be all zero; if it is not, all four registers are
//    corrected to zero ("any architectural leaf not listed in the table must have all output
//    values equal to 0").
// 6. A known leaf: each register goes through its checks, then its reserved bits are cleared.
//    A register that changed is a mismatch; the corrected value is what the firmware allows.
// 7. If anything changed, the command fails (INVALID_PARAM): the corrected table is copied back to
//    the hypervisor's page, the page is neither encrypted nor measured, and the launch digest is
//    unchanged. Duplicate entries are not detected.
//
// Where this differs from the firmware's code, on purpose: its write-back for 0x8000001F EBX ORs
// the expected C-bit position into the given value instead of replacing the field, and for leaf
// 7.0 EDX it clears the allowed bits instead of the others; neither converges, so here both write
// the allowed value. Its model comparison adds the extended and base model nibbles (a quirk kept
// here, see fmsNotNewer).

import {
  cpuidEntryOffset,
  type CpuidEntry,
  type ProductName,
  SNP_CPUID_FN,
  SNP_CPUID_MAX_ENTRIES,
  SNP_CPUID_TABLE,
} from '../../arch/index.js';
import {
  CPUID_REGISTERS,
  type CpuidPolicy,
  type CpuidRegister,
  cpuidPolicy,
  type FieldCheck,
  findLeafPolicy,
  type RegisterPolicy,
} from './cpuid-policy.js';

/** A register, or one half of the entry's reserved quadword. */
export type CpuidMismatchField = CpuidRegister | 'reservedLo' | 'reservedHi';

/** One value the firmware refused, with the value it writes back. */
export interface CpuidMismatch {
  /** Entry index in the page. */
  readonly index: number;
  readonly fn: number;
  readonly subleaf: number;
  readonly register: CpuidMismatchField;
  readonly given: number;
  readonly allowed: number;
}

/** Why a page was refused before any entry was looked at (no write-back then). */
export type CpuidPageRejection = 'header-reserved' | 'count';

export interface CpuidCheckResult {
  /** True if the firmware accepts the page unchanged. */
  readonly ok: boolean;
  /** Set when the header was refused; `corrected` is then the input unchanged. */
  readonly rejected?: CpuidPageRejection;
  /** The page as the firmware leaves it in the hypervisor's buffer (a copy of the input). */
  readonly corrected: Uint8Array;
  readonly mismatches: readonly CpuidMismatch[];
}

/** The result of the per-entry rules for one entry. */
export interface CpuidEntryCheck {
  /** The entry with every register at its allowed value. */
  readonly entry: CpuidEntry;
  readonly mismatches: readonly {
    readonly register: CpuidRegister;
    readonly given: number;
    readonly allowed: number;
  }[];
}

/** EAX_IN ranges the firmware checks (CPUID_STD_RANGE / CPUID_EXT_RANGE). */
export function cpuidLeafIsChecked(fn: number): boolean {
  const f = fn >>> 0;
  return f <= 0x0000ffff || (f >= 0x80000000 && f <= 0x8000ffff);
}

// ---------------------------------------------------------------------------------------------
// Bit fields of a uint32, with number arithmetic so that bit 31 stays positive.

function fieldMask(lo: number, width: number): number {
  return ((2 ** width - 1) * 2 ** lo) >>> 0;
}

function getField(value: number, lo: number, width: number): number {
  return Math.floor((value >>> 0) / 2 ** lo) % 2 ** width;
}

function setField(value: number, lo: number, width: number, field: number): number {
  const m = fieldMask(lo, width);
  return ((value & ~m) | ((field * 2 ** lo) & m)) >>> 0;
}

/**
 * The firmware's FMS rule: `given` must not name a newer part than `actual`, comparing family,
 * then model, then stepping. Family is base + extended family (architectural for family 0xF and
 * up). Model is extended model + base model, as the firmware's FMS_MODEL macro computes it; the
 * architectural model is (extended << 4) | base [uncertain: whether Milan's firmware shares the
 * quirk; it only matters for a model with a base nibble above the part's].
 */
export function fmsNotNewer(actual: number, given: number): boolean {
  const family = (v: number) => getField(v, 20, 8) + getField(v, 8, 4);
  const model = (v: number) => getField(v, 16, 4) + getField(v, 4, 4);
  const stepping = (v: number) => getField(v, 0, 4);
  const [af, gf] = [family(actual), family(given)];
  if (gf !== af) return gf < af;
  const [am, gm] = [model(actual), model(given)];
  if (gm !== am) return gm < am;
  return stepping(given) <= stepping(actual);
}

/** 0xD.0 EBX: the standard-format XSAVE size for the user states enabled in XCR0_IN. */
export function policyXsaveStandardSize(policy: CpuidPolicy, xcr0: bigint): number {
  let size = 0x240;
  for (const c of policy.xsave) {
    if (c.offset === undefined || (xcr0 & (1n << BigInt(c.index))) === 0n) continue;
    size = Math.max(size, c.offset + c.size);
  }
  return size;
}

/**
 * 0xD.1 EBX: the compacted-format size, 0x240 plus every enabled state's size, user states from
 * XCR0_IN and supervisor states (CET_U, CET_S) from XSS_IN. Bits of states the part does not have
 * add nothing [uncertain: the Genoa firmware adds AVX-512 sizes whatever the part].
 */
export function policyXsaveCompactedSize(policy: CpuidPolicy, xcr0: bigint, xss: bigint): number {
  let size = 0x240;
  for (const c of policy.xsave) {
    const source = c.offset === undefined ? xss : xcr0;
    if ((source & (1n << BigInt(c.index))) !== 0n) size += c.size;
  }
  return size;
}

interface EntryContext {
  readonly policy: CpuidPolicy;
  readonly xcr0In: bigint;
  readonly xssIn: bigint;
}

function applyCheck(value: number, check: FieldCheck, ctx: EntryContext): number {
  switch (check.kind) {
    case 'exact':
      return setField(value, check.lo, check.width, check.value);
    case 'max':
      return getField(value, check.lo, check.width) > check.value
        ? setField(value, check.lo, check.width, check.value)
        : value;
    case 'mask':
      return (value & check.allowed) >>> 0;
    case 'require':
      return (value | check.bits) >>> 0;
    case 'fms':
      return fmsNotNewer(check.value, value) ? value : check.value;
    case 'xsaveStandard':
      return policyXsaveStandardSize(ctx.policy, ctx.xcr0In);
    case 'xsaveCompacted':
      return policyXsaveCompactedSize(ctx.policy, ctx.xcr0In, ctx.xssIn);
  }
}

/** The value the firmware lets a register keep (equal to `value` if it passes). */
function allowedValue(value: number, policy: RegisterPolicy, ctx: EntryContext): number {
  let v = value >>> 0;
  for (const check of policy.checks) v = applyCheck(v, check, ctx);
  return (v & ~policy.reserved) >>> 0;
}

/**
 * Applies the per-leaf rules to one entry in the checked ranges (steps 4 to 6 above). Entries
 * outside those ranges are returned unchanged.
 */
export function checkCpuidEntry(product: ProductName, entry: CpuidEntry): CpuidEntryCheck {
  if (!cpuidLeafIsChecked(entry.eaxIn)) return { entry, mismatches: [] };
  const policy = cpuidPolicy(product);
  const leaf = findLeafPolicy(policy, entry.eaxIn, entry.ecxIn);
  const ctx: EntryContext = { policy, xcr0In: entry.xcr0In, xssIn: entry.xssIn };
  const out = { ...entry };
  const mismatches: { register: CpuidRegister; given: number; allowed: number }[] = [];
  for (const r of CPUID_REGISTERS) {
    const given = entry[r] >>> 0;
    const allowed = leaf === undefined ? 0 : allowedValue(given, leaf[r], ctx);
    if (allowed !== given) {
      mismatches.push({ register: r, given, allowed });
      out[r] = allowed;
    }
  }
  return { entry: out, mismatches };
}

/**
 * Validates a CPUID page as SNP_LAUNCH_UPDATE does for `product`. Never throws for any content of
 * a buffer at least as long as the table (0xC10 bytes); a shorter buffer is a FieldRangeError.
 */
export function checkCpuidPage(pageBytes: Uint8Array, product: ProductName): CpuidCheckResult {
  const corrected = pageBytes.slice();
  const header = SNP_CPUID_TABLE.on(corrected);
  if (header.get('reserved04') !== 0 || header.get('reserved08') !== 0n) {
    return { ok: false, rejected: 'header-reserved', corrected, mismatches: [] };
  }
  const count = header.get('count');
  if (count > SNP_CPUID_MAX_ENTRIES) {
    return { ok: false, rejected: 'count', corrected, mismatches: [] };
  }

  const mismatches: CpuidMismatch[] = [];
  for (let index = 0; index < count; index++) {
    const fnView = SNP_CPUID_FN.on(corrected, cpuidEntryOffset(index));
    const entry: CpuidEntry = {
      eaxIn: fnView.get('eaxIn'),
      ecxIn: fnView.get('ecxIn'),
      xcr0In: fnView.get('xcr0In'),
      xssIn: fnView.get('xssIn'),
      eax: fnView.get('eax'),
      ebx: fnView.get('ebx'),
      ecx: fnView.get('ecx'),
      edx: fnView.get('edx'),
    };
    if (!cpuidLeafIsChecked(entry.eaxIn)) continue;
    const where = { index, fn: entry.eaxIn, subleaf: entry.ecxIn };

    const reserved = fnView.get('reserved');
    if (reserved !== 0n) {
      const lo = Number(reserved & 0xffffffffn);
      const hi = Number(reserved >> 32n);
      if (lo !== 0) mismatches.push({ ...where, register: 'reservedLo', given: lo, allowed: 0 });
      if (hi !== 0) mismatches.push({ ...where, register: 'reservedHi', given: hi, allowed: 0 });
      fnView.set('reserved', 0n);
    }

    const result = checkCpuidEntry(product, entry);
    for (const m of result.mismatches) {
      mismatches.push({ ...where, ...m });
      fnView.set(m.register, m.allowed);
    }
  }
  return { ok: mismatches.length === 0, corrected, mismatches };
}

function hex32(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

/** One line for a log, in the spirit of QEMU's "SEV-SNP: CPUID validation failed" report. */
export function describeCpuidMismatch(m: CpuidMismatch): string {
  return (
    `CPUID entry ${m.index} (fn ${hex32(m.fn)}, index ${hex32(m.subleaf)}) ${m.register}: ` +
    `provided ${hex32(m.given)}, expected ${hex32(m.allowed)}`
  );
}
