// The ACPI tables and the e820 map a direct-booted Linux needs (reference/linux-snp-guest.md 1.4,
// 1.5): RSDP 2.0 -> XSDT -> FADT (not hardware-reduced) -> FACS and DSDT, and a MADT with one
// x2APIC entry per vCPU, the IOAPIC and its ISA interrupt source overrides. Layouts are in
// `src/arch/acpi.ts`. The launch image carries them in its firmware area (firmware-tables.ts).
//
// What the FADT says (documented because Linux acts on it):
// - revision 6.5, SMI_CMD = 0 (no SMM: ACPI mode is always on), SCI on ISA IRQ 9;
// - PM1a event block at I/O port 0x600 (4 bytes) and PM1a control block at 0x604 (2 bytes), as on
//   QEMU's q35; ACPICA needs both on non-reduced hardware. No PM1b, PM2, GPE blocks, no PM timer
//   (unless `pmTimerPort` is given: the host's 24-bit one is at `ACPI_PM_TMR_PORT`, so no
//   TMR_VAL_EXT), no reset register, C2/C3 unsupported (latencies 0xFFF);
// - flags WBINVD, PROC_C1, PWR_BUTTON and SLP_BUTTON (both buttons, if any, are control-method
//   devices, so no fixed button events); never HW_REDUCED_ACPI;
// - IA-PC boot flags: VGA not present, no 8042, no legacy devices (the CMOS RTC is left
//   present; `bootArch` overrides);
// - FACS through X_FIRMWARE_CTRL only (the spec wants FIRMWARE_CTRL 0 then), DSDT through both
//   DSDT (when below 4 GiB) and X_DSDT with the same address.
// The DSDT's AML holds only \_S5 (soft-off with SLP_TYP `ACPI_SLP_TYP_S5`, which the host's
// PM1a control block acts on): with a legacy FADT, ISA IRQ n maps to IOAPIC pin n without AML.
// The host's devices (src/host/devices/acpi-pm.ts) sit at the ports exported here.

import {
  ACPI_SIG,
  DSDT_REVISION,
  E820_ENTRY,
  E820_MAX_ENTRIES_ZEROPAGE,
  E820_TYPE,
  FACS,
  FACS_ALIGN,
  FACS_VERSION,
  FADT,
  FADT_BOOT,
  FADT_F,
  FADT_MINOR_REVISION,
  FADT_REVISION,
  MADT_APIC_ENABLED,
  MADT_HEADER,
  MADT_INTERRUPT_OVERRIDE,
  MADT_IO_APIC,
  MADT_ISO_BUS_ISA,
  MADT_LOCAL_APIC_ADDRESS,
  MADT_LOCAL_X2APIC,
  MADT_LOCAL_X2APIC_NMI,
  MADT_NMI_ALL_PROCESSORS_U32,
  MADT_REVISION,
  MADT_TYPE,
  MPS_INTI,
  RSDP,
  RSDP_REVISION,
  RSDP_SIGNATURE,
  RSDP_V1_LENGTH,
  SDT_HEADER,
  XSDT_ENTRY_SIZE,
  XSDT_REVISION,
  acpiChecksumByte,
  acpiName,
  amlS5Object,
  type E820Type,
} from '../arch/index.js';

const PAGE = 0x1000;
const FOUR_GIB = 0x1_0000_0000;

/** A table set or memory map that cannot be built as asked. */
export class AcpiBuildError extends Error {
  override readonly name = 'AcpiBuildError';
}

export interface IoApicConfig {
  readonly id: number;
  /** MMIO base (QEMU: 0xFEC00000). */
  readonly address: number;
  readonly gsiBase: number;
}

/** An ISA interrupt source override: ISA IRQ `source` arrives on GSI `gsi` with MPS INTI `flags`. */
export interface InterruptOverride {
  readonly source: number;
  readonly gsi: number;
  readonly flags: number;
}

export const DEFAULT_IOAPIC: IoApicConfig = { id: 0, address: 0xfec0_0000, gsiBase: 0 };

/** The ISA IRQ the SCI uses, as on QEMU. */
export const ACPI_SCI_IRQ = 9;

/**
 * QEMU's overrides (`hw/i386/acpi-common.c` `build_madt`): the PIT's IRQ 0 on GSI 2 with the
 * bus's polarity and trigger, and IRQ 9 (the SCI) level-triggered active-high (MPS INTI 0xD).
 * QEMU also overrides IRQs 5, 10 and 11 the same way for PCI; with `pci=off` they are not needed.
 */
export const QEMU_ISA_OVERRIDES: readonly InterruptOverride[] = [
  { source: 0, gsi: 2, flags: MPS_INTI.POLARITY_CONFORMS | MPS_INTI.TRIGGER_CONFORMS },
  {
    source: ACPI_SCI_IRQ,
    gsi: ACPI_SCI_IRQ,
    flags: MPS_INTI.POLARITY_ACTIVE_HIGH | MPS_INTI.TRIGGER_LEVEL,
  },
];

/** PM1a blocks at QEMU q35's ICH9 PM base (0x600). */
export const ACPI_PM1A_EVT_PORT = 0x600;
export const ACPI_PM1A_CNT_PORT = 0x604;
/** Where the host's PM timer is (ICH9: PM base + 8); the FADT names it only given `pmTimerPort`. */
export const ACPI_PM_TMR_PORT = 0x608;
/** PM1a_CNT.SLP_TYP for S5 in our chipset (any 3-bit value works; \_S5 tells OSPM). */
export const ACPI_SLP_TYP_S5 = 5;

export interface AcpiTablesOptions {
  readonly vcpuCount: number;
  readonly ioapic?: IoApicConfig;
  readonly overrides?: readonly InterruptOverride[];
  /** Where the tables go: page-aligned; the RSDP is at `baseGpa`. */
  readonly baseGpa: number;
  /** A PM timer at this I/O port (4 bytes, 24-bit); omitted by default (reference 1.5). */
  readonly pmTimerPort?: number;
  /** FADT IA-PC boot architecture flags; default VGA not present. */
  readonly bootArch?: number;
  readonly oemId?: string;
}

export interface AcpiTables {
  /** Every table, from `baseGpa`, zero-padded to whole pages (the e820 ACPI range). */
  readonly bytes: Uint8Array;
  readonly baseGpa: number;
  readonly rsdpGpa: number;
  readonly xsdtGpa: number;
  readonly fadtGpa: number;
  readonly facsGpa: number;
  readonly dsdtGpa: number;
  readonly madtGpa: number;
}

const OEM_TABLE_ID = 'SVSMTS';
const CREATOR_ID = 'SVTS';

function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function checkInt(what: string, n: number, min: number, max: number): void {
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new AcpiBuildError(`${what} ${n} is not an integer in [${min}, ${max}]`);
  }
}

/** Builds the RSDP, XSDT, FADT, FACS, DSDT and MADT at `baseGpa`, every checksum valid. */
export function buildAcpiTables(options: AcpiTablesOptions): AcpiTables {
  const { vcpuCount, baseGpa } = options;
  const ioapic = options.ioapic ?? DEFAULT_IOAPIC;
  const overrides = options.overrides ?? QEMU_ISA_OVERRIDES;
  const oemId = acpiName(options.oemId ?? 'SVSMTS', 6);
  checkInt('vcpuCount', vcpuCount, 1, 0xfff);
  checkInt('baseGpa', baseGpa, 0, Number.MAX_SAFE_INTEGER);
  if (baseGpa % PAGE !== 0) throw new AcpiBuildError(`baseGpa ${baseGpa} is not page-aligned`);
  checkInt('ioapic.id', ioapic.id, 0, 0xff);
  checkInt('ioapic.address', ioapic.address, 0, FOUR_GIB - 1);
  checkInt('ioapic.gsiBase', ioapic.gsiBase, 0, 0xffff_ffff);
  for (const o of overrides) {
    checkInt('override source', o.source, 0, 15);
    checkInt('override gsi', o.gsi, 0, 0xffff_ffff);
    checkInt('override flags', o.flags, 0, 0xffff);
  }
  if (options.pmTimerPort !== undefined) checkInt('pmTimerPort', options.pmTimerPort, 1, 0xfffc);

  // Placement: RSDP first (16-aligned at the base), each table after it 64-aligned (the FACS
  // must be), so offsets are fixed by the vCPU count alone.
  const madtLength =
    MADT_HEADER.size +
    vcpuCount * MADT_LOCAL_X2APIC.size +
    MADT_IO_APIC.size +
    overrides.length * MADT_INTERRUPT_OVERRIDE.size +
    MADT_LOCAL_X2APIC_NMI.size;
  const xsdtEntries = 2; // FADT, MADT
  const xsdtLength = SDT_HEADER.size + xsdtEntries * XSDT_ENTRY_SIZE;
  const dsdtAml = amlS5Object(ACPI_SLP_TYP_S5);
  const dsdtLength = SDT_HEADER.size + dsdtAml.length;
  const rsdpOff = 0;
  const facsOff = align(rsdpOff + RSDP.size, FACS_ALIGN);
  const dsdtOff = align(facsOff + FACS.size, FACS_ALIGN);
  const fadtOff = align(dsdtOff + dsdtLength, FACS_ALIGN);
  const xsdtOff = align(fadtOff + FADT.size, FACS_ALIGN);
  const madtOff = align(xsdtOff + xsdtLength, FACS_ALIGN);
  const bytes = new Uint8Array(align(madtOff + madtLength, PAGE));
  const gpa = (off: number): number => baseGpa + off;
  if (gpa(bytes.length) > Number.MAX_SAFE_INTEGER) {
    throw new AcpiBuildError(`tables at ${baseGpa} end beyond 2^53`);
  }

  const header = (off: number, signature: string, length: number, revision: number): void => {
    SDT_HEADER.on(bytes, off)
      .set('signature', acpiName(signature, 4))
      .set('length', length)
      .set('revision', revision)
      .set('oemId', oemId)
      .set('oemTableId', acpiName(OEM_TABLE_ID, 8))
      .set('oemRevision', 1)
      .set('creatorId', acpiName(CREATOR_ID, 4))
      .set('creatorRevision', 1);
  };
  const seal = (off: number, length: number): void => {
    SDT_HEADER.set(bytes, 'checksum', acpiChecksumByte(bytes, off, off + length), off);
  };

  // FACS: no checksum.
  FACS.on(bytes, facsOff)
    .set('signature', acpiName(ACPI_SIG.FACS, 4))
    .set('length', FACS.size)
    .set('version', FACS_VERSION);

  // DSDT: the header and \_S5.
  header(dsdtOff, ACPI_SIG.DSDT, dsdtLength, DSDT_REVISION);
  bytes.set(dsdtAml, dsdtOff + SDT_HEADER.size);
  seal(dsdtOff, dsdtLength);

  // FADT.
  header(fadtOff, ACPI_SIG.FADT, FADT.size, FADT_REVISION);
  const fadt = FADT.on(bytes, fadtOff)
    .set('minorVersion', FADT_MINOR_REVISION)
    .set('xFirmwareCtrl', BigInt(gpa(facsOff)))
    .set('dsdt', gpa(dsdtOff) < FOUR_GIB ? gpa(dsdtOff) : 0)
    .set('xDsdt', BigInt(gpa(dsdtOff)))
    .set('sciInt', ACPI_SCI_IRQ)
    .set('smiCmd', 0)
    .set('pm1aEvtBlk', ACPI_PM1A_EVT_PORT)
    .set('pm1EvtLen', 4)
    .set('pm1aCntBlk', ACPI_PM1A_CNT_PORT)
    .set('pm1CntLen', 2)
    .set('pLvl2Lat', 0xfff)
    .set('pLvl3Lat', 0xfff)
    .set('iapcBootArch', options.bootArch ?? FADT_BOOT.VGA_NOT_PRESENT)
    .set('flags', FADT_F.WBINVD | FADT_F.PROC_C1 | FADT_F.PWR_BUTTON | FADT_F.SLP_BUTTON);
  if (options.pmTimerPort !== undefined) {
    fadt.set('pmTmrBlk', options.pmTimerPort).set('pmTmrLen', 4);
  }
  seal(fadtOff, FADT.size);

  // MADT.
  header(madtOff, ACPI_SIG.MADT, madtLength, MADT_REVISION);
  MADT_HEADER.on(bytes, madtOff).set('localApicAddress', MADT_LOCAL_APIC_ADDRESS).set('flags', 0);
  let at = madtOff + MADT_HEADER.size;
  for (let i = 0; i < vcpuCount; i++) {
    MADT_LOCAL_X2APIC.on(bytes, at)
      .set('type', MADT_TYPE.LOCAL_X2APIC)
      .set('length', MADT_LOCAL_X2APIC.size)
      .set('x2apicId', i)
      .set('flags', MADT_APIC_ENABLED)
      .set('processorUid', i);
    at += MADT_LOCAL_X2APIC.size;
  }
  MADT_IO_APIC.on(bytes, at)
    .set('type', MADT_TYPE.IO_APIC)
    .set('length', MADT_IO_APIC.size)
    .set('ioApicId', ioapic.id)
    .set('address', ioapic.address)
    .set('gsiBase', ioapic.gsiBase);
  at += MADT_IO_APIC.size;
  for (const o of overrides) {
    MADT_INTERRUPT_OVERRIDE.on(bytes, at)
      .set('type', MADT_TYPE.INTERRUPT_SOURCE_OVERRIDE)
      .set('length', MADT_INTERRUPT_OVERRIDE.size)
      .set('bus', MADT_ISO_BUS_ISA)
      .set('source', o.source)
      .set('gsi', o.gsi)
      .set('flags', o.flags);
    at += MADT_INTERRUPT_OVERRIDE.size;
  }
  // NMI on LINT1 of every processor, as QEMU writes in x2APIC mode.
  MADT_LOCAL_X2APIC_NMI.on(bytes, at)
    .set('type', MADT_TYPE.LOCAL_X2APIC_NMI)
    .set('length', MADT_LOCAL_X2APIC_NMI.size)
    .set('flags', 0)
    .set('processorUid', MADT_NMI_ALL_PROCESSORS_U32)
    .set('lint', 1);
  seal(madtOff, madtLength);

  // XSDT: FADT, MADT.
  header(xsdtOff, ACPI_SIG.XSDT, xsdtLength, XSDT_REVISION);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  [fadtOff, madtOff].forEach((off, i) => {
    view.setBigUint64(xsdtOff + SDT_HEADER.size + i * XSDT_ENTRY_SIZE, BigInt(gpa(off)), true);
  });
  seal(xsdtOff, xsdtLength);

  // RSDP 2.0: no RSDT; the 20-byte checksum first, then the extended one over all 36 bytes.
  const rsdp = RSDP.on(bytes, rsdpOff)
    .set('signature', acpiName(RSDP_SIGNATURE, 8))
    .set('oemId', oemId)
    .set('revision', RSDP_REVISION)
    .set('rsdtAddress', 0)
    .set('length', RSDP.size)
    .set('xsdtAddress', BigInt(gpa(xsdtOff)));
  rsdp.set('checksum', acpiChecksumByte(bytes, rsdpOff, rsdpOff + RSDP_V1_LENGTH));
  rsdp.set('extendedChecksum', acpiChecksumByte(bytes, rsdpOff, rsdpOff + RSDP.size));

  return {
    bytes,
    baseGpa,
    rsdpGpa: gpa(rsdpOff),
    xsdtGpa: gpa(xsdtOff),
    fadtGpa: gpa(fadtOff),
    facsGpa: gpa(facsOff),
    dsdtGpa: gpa(dsdtOff),
    madtGpa: gpa(madtOff),
  };
}

// --- e820 ---------------------------------------------------------------------------------------

export interface MemoryRange {
  readonly base: number;
  readonly size: number;
}

export interface ReservedRange extends MemoryRange {
  /** RESERVED (default) or ACPI, NVS, ... */
  readonly type?: E820Type;
}

export interface E820Entry {
  readonly addr: number;
  readonly size: number;
  readonly type: E820Type;
}

function checkRange(what: string, r: MemoryRange): void {
  checkInt(`${what} base`, r.base, 0, Number.MAX_SAFE_INTEGER);
  checkInt(`${what} size`, r.size, 1, Number.MAX_SAFE_INTEGER - r.base);
}

/**
 * The e820 map of `memory` (RAM) with `reserved` ranges cut out and listed with their type:
 * sorted, non-overlapping, adjacent entries of one type merged. Reserved ranges outside RAM are
 * listed too. Overlapping reserved ranges of different types, or more entries than boot_params
 * holds, are refused.
 */
export function buildE820(
  memory: readonly MemoryRange[],
  reserved: readonly ReservedRange[] = [],
): E820Entry[] {
  memory.forEach((r) => checkRange('memory', r));
  reserved.forEach((r) => checkRange('reserved', r));
  const cuts = new Set<number>();
  for (const r of [...memory, ...reserved]) {
    cuts.add(r.base);
    cuts.add(r.base + r.size);
  }
  const points = [...cuts].sort((a, b) => a - b);
  const out: { addr: number; size: number; type: E820Type }[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const lo = points[i]!;
    const hi = points[i + 1]!;
    const covers = (r: MemoryRange): boolean => r.base <= lo && hi <= r.base + r.size;
    const types = new Set(reserved.filter(covers).map((r) => r.type ?? E820_TYPE.RESERVED));
    if (types.size > 1) {
      throw new AcpiBuildError(
        `reserved ranges of types ${[...types].join(', ')} overlap at ${lo}`,
      );
    }
    const type: E820Type | undefined =
      types.size === 1 ? [...types][0]! : memory.some(covers) ? E820_TYPE.RAM : undefined;
    if (type === undefined) continue;
    const last = out[out.length - 1];
    if (last !== undefined && last.type === type && last.addr + last.size === lo) {
      last.size += hi - lo;
    } else {
      out.push({ addr: lo, size: hi - lo, type });
    }
  }
  if (out.length > E820_MAX_ENTRIES_ZEROPAGE) {
    throw new AcpiBuildError(
      `${out.length} e820 entries exceed the ${E820_MAX_ENTRIES_ZEROPAGE} boot_params holds`,
    );
  }
  return out;
}

/** The packed `boot_e820_entry` array for boot_params.e820_table (count goes in e820_entries). */
export function encodeE820(entries: readonly E820Entry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * E820_ENTRY.size);
  entries.forEach((e, i) => {
    E820_ENTRY.on(bytes, i * E820_ENTRY.size)
      .set('addr', BigInt(e.addr))
      .set('size', BigInt(e.size))
      .set('type', e.type);
  });
  return bytes;
}
