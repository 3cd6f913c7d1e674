// The SNP CPUID page: the table of CPUID results the firmware checks at launch and the guest
// reads instead of trusting the hypervisor.
// Facts: reference/linux-snp-guest.md section 2.2 (Linux `struct snp_cpuid_table` and
// `struct snp_cpuid_fn`; SNP ABI, Table "CPUID_FUNCTION"; coconut `cpuarch/src/snp_cpuid.rs`).

import { defineStruct, FieldRangeError } from './struct.js';

export const SNP_CPUID_PAGE_SIZE = 0x1000;
export const SNP_CPUID_MAX_ENTRIES = 64;
export const SNP_CPUID_FN_SIZE = 0x30;
/** The entries start after the 16-byte header. */
export const SNP_CPUID_FN_OFFSET = 0x10;

// One entry: SNP ABI "CPUID_FUNCTION"; Linux `struct snp_cpuid_fn`.
export const SNP_CPUID_FN = defineStruct('SNP_CPUID_FN', SNP_CPUID_FN_SIZE, {
  eaxIn: { offset: 0x00, type: 'u32', doc: 'leaf' },
  ecxIn: { offset: 0x04, type: 'u32', doc: 'subleaf' },
  xcr0In: { offset: 0x08, type: 'u64' },
  xssIn: { offset: 0x10, type: 'u64' },
  eax: { offset: 0x18, type: 'u32' },
  ebx: { offset: 0x1c, type: 'u32' },
  ecx: { offset: 0x20, type: 'u32' },
  edx: { offset: 0x24, type: 'u32' },
  reserved: { offset: 0x28, type: 'u64' },
});

// The table: Linux `struct snp_cpuid_table`, 0xC10 bytes at the start of the 4 KiB page.
export const SNP_CPUID_TABLE = defineStruct(
  'SNP_CPUID_TABLE',
  SNP_CPUID_FN_OFFSET + SNP_CPUID_MAX_ENTRIES * SNP_CPUID_FN_SIZE,
  {
    count: { offset: 0x00, type: 'u32', doc: 'entries in use, 1..64 for Linux' },
    reserved04: { offset: 0x04, type: 'u32' },
    reserved08: { offset: 0x08, type: 'u64' },
    fn: {
      offset: SNP_CPUID_FN_OFFSET,
      type: 'bytes',
      size: SNP_CPUID_MAX_ENTRIES * SNP_CPUID_FN_SIZE,
      doc: '64 SNP_CPUID_FN entries',
    },
  },
);

/** One CPUID page entry, decoded. */
export interface CpuidEntry {
  readonly eaxIn: number;
  readonly ecxIn: number;
  readonly xcr0In: bigint;
  readonly xssIn: bigint;
  readonly eax: number;
  readonly ebx: number;
  readonly ecx: number;
  readonly edx: number;
}

/** Byte offset of entry `index` from the start of the table. */
export function cpuidEntryOffset(index: number): number {
  if (!Number.isInteger(index) || index < 0 || index >= SNP_CPUID_MAX_ENTRIES) {
    throw new FieldRangeError(`CPUID page entry ${index} is outside 0..63`);
  }
  return SNP_CPUID_FN_OFFSET + index * SNP_CPUID_FN_SIZE;
}

/** Reads entry `index` of the table at `base` in `bytes` (whatever COUNT says). */
export function readCpuidEntry(bytes: Uint8Array, index: number, base = 0): CpuidEntry {
  const e = SNP_CPUID_FN.on(bytes, base + cpuidEntryOffset(index));
  return {
    eaxIn: e.get('eaxIn'),
    ecxIn: e.get('ecxIn'),
    xcr0In: e.get('xcr0In'),
    xssIn: e.get('xssIn'),
    eax: e.get('eax'),
    ebx: e.get('ebx'),
    ecx: e.get('ecx'),
    edx: e.get('edx'),
  };
}

/** Writes entry `index` (reserved field zeroed); COUNT is left alone. */
export function writeCpuidEntry(
  bytes: Uint8Array,
  index: number,
  entry: CpuidEntry,
  base = 0,
): void {
  SNP_CPUID_FN.on(bytes, base + cpuidEntryOffset(index))
    .set('eaxIn', entry.eaxIn)
    .set('ecxIn', entry.ecxIn)
    .set('xcr0In', entry.xcr0In)
    .set('xssIn', entry.xssIn)
    .set('eax', entry.eax)
    .set('ebx', entry.ebx)
    .set('ecx', entry.ecx)
    .set('edx', entry.edx)
    .set('reserved', 0n);
}

/** The first COUNT entries; a COUNT above 64 is refused rather than clamped. */
export function readCpuidEntries(bytes: Uint8Array, base = 0): CpuidEntry[] {
  const count = SNP_CPUID_TABLE.get(bytes, 'count', base);
  if (count > SNP_CPUID_MAX_ENTRIES) {
    throw new FieldRangeError(`CPUID page count ${count} exceeds ${SNP_CPUID_MAX_ENTRIES}`);
  }
  const out: CpuidEntry[] = [];
  for (let i = 0; i < count; i++) out.push(readCpuidEntry(bytes, i, base));
  return out;
}

/** A fresh 4 KiB CPUID page holding `entries` (at most 64) and their count. */
export function buildCpuidPage(entries: readonly CpuidEntry[]): Uint8Array {
  if (entries.length > SNP_CPUID_MAX_ENTRIES) {
    throw new FieldRangeError(
      `a CPUID page holds at most ${SNP_CPUID_MAX_ENTRIES} entries, got ${entries.length}`,
    );
  }
  const page = new Uint8Array(SNP_CPUID_PAGE_SIZE);
  SNP_CPUID_TABLE.set(page, 'count', entries.length);
  entries.forEach((e, i) => writeCpuidEntry(page, i, e));
  return page;
}
