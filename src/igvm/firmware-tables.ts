// What firmware hands a direct-booted Linux under our SVSM, as measured pages of the launch image
// (reference/linux-snp-guest.md 1.1, 1.4, 1.5): a boot_params page whose acpi_rsdp_addr points at
// the RSDP and whose e820_table is the memory map, followed by the ACPI tables (RSDP 2.0, XSDT,
// FADT, FACS, DSDT, MADT with one x2APIC entry per vCPU and the IOAPIC).
//
// Where: the firmware area at 0xE0000, in the legacy BIOS range below 1 MiB that PC firmware
// keeps for such tables (Linux reserves 0xA0000-0xFFFFF itself, `trim_bios_range`), clear of
// the low RAM Linux needs (0-0x9FFFF, for the AP trampoline) and of the kernel at 16 MiB.
// boot_params is the first page; the tables start on the next page.
//
// Measured, not unmeasured: Linux trusts every byte of them (the MADT says which CPUs exist and
// their APIC IDs, the e820 map where RAM is and which ranges it must never use as RAM, such as the
// SVSM's) and nothing checks them later, so they are NORMAL launch pages that the launch digest
// covers and an attestation report vouches for. The host knows all of it at launch time (memory
// size, vCPU count, SVSM placement), so nothing is lost by measuring. (OVMF builds its tables
// inside the measured firmware for the same reason; host-provided unmeasured tables would let
// the host lie about the CPU topology or hide the SVSM region from the guest.)
//
// After launch the pages are VMPL0's, like every launched page (IGVM has no per-page VMPL
// permissions): whoever boots Linux at VMPL2 grants it access with RMPADJUST, as it must for all
// of RAM (reference 1.4).
//
// The e820 map: RAM from 0 to the end of guest memory except, as RESERVED, the guest's secrets
// page and calling area, the boot_params page, the SVSM region and the last page (the BSP's VMSA);
// the tables' pages as ACPI (type 3). Reserved and ACPI ranges are mapped encrypted by Linux.

import { BOOT_PARAMS, BOOT_PARAMS_SIZE, E820_TYPE, PAGE_TYPE } from '../arch/index.js';
import {
  type AcpiTables,
  buildAcpiTables,
  buildE820,
  type E820Entry,
  encodeE820,
  type ReservedRange,
} from './acpi-tables.js';
import type { LaunchPage } from './launch-plan.js';

const PAGE = 0x1000;

/** The firmware area: boot_params, then the ACPI tables. */
export const FIRMWARE_AREA_BASE = 0xe_0000;
/** Its end: the legacy BIOS range stops at 1 MiB. */
export const FIRMWARE_AREA_END = 0x10_0000;
export const BOOT_PARAMS_GPA = FIRMWARE_AREA_BASE;
export const ACPI_TABLES_GPA = FIRMWARE_AREA_BASE + BOOT_PARAMS_SIZE;

export interface FirmwareTablesOptions {
  readonly memorySize: number;
  readonly vcpuCount: number;
  readonly svsmBase: number;
  readonly svsmSize: number;
  /** Pages the SVSM gives the guest (its secrets-page copy and calling area): reserved. */
  readonly reservedPages: readonly number[];
}

export interface FirmwareTables {
  readonly pages: readonly LaunchPage[];
  readonly bootParamsGpa: number;
  readonly acpi: AcpiTables;
  readonly e820: readonly E820Entry[];
}

/** Throws a RangeError naming the overlap when the firmware area collides with the layout. */
export function buildFirmwareTables(o: FirmwareTablesOptions): FirmwareTables {
  const acpi = buildAcpiTables({ vcpuCount: o.vcpuCount, baseGpa: ACPI_TABLES_GPA });
  const acpiEnd = acpi.baseGpa + acpi.bytes.length;
  if (acpiEnd > FIRMWARE_AREA_END) {
    throw new RangeError(
      `the ACPI tables for ${o.vcpuCount} vCPUs end at 0x${acpiEnd.toString(16)}, past the firmware area`,
    );
  }
  const overlaps = (base: number, size: number): boolean =>
    base < FIRMWARE_AREA_END && FIRMWARE_AREA_BASE < base + size;
  if (overlaps(o.svsmBase, o.svsmSize))
    throw new RangeError('the SVSM region overlaps the firmware area 0xE0000-0xFFFFF');
  for (const p of o.reservedPages) {
    if (overlaps(p, PAGE))
      throw new RangeError(`page 0x${p.toString(16)} lies in the firmware area 0xE0000-0xFFFFF`);
  }
  const vmsaPage = o.memorySize - PAGE;
  const reserved: ReservedRange[] = [
    ...o.reservedPages.map((base) => ({ base, size: PAGE })),
    { base: BOOT_PARAMS_GPA, size: BOOT_PARAMS_SIZE },
    { base: acpi.baseGpa, size: acpi.bytes.length, type: E820_TYPE.ACPI },
    { base: o.svsmBase, size: o.svsmSize },
    { base: vmsaPage, size: PAGE },
  ];
  const e820 = buildE820([{ base: 0, size: o.memorySize }], reserved);

  const params = BOOT_PARAMS.alloc();
  const encoded = encodeE820(e820);
  BOOT_PARAMS.on(params).set('acpiRsdpAddr', BigInt(acpi.rsdpGpa)).set('e820Entries', e820.length);
  params.set(encoded, BOOT_PARAMS.offset('e820Table'));

  const pages: LaunchPage[] = [{ gpa: BOOT_PARAMS_GPA, type: PAGE_TYPE.NORMAL, data: params }];
  for (let off = 0; off < acpi.bytes.length; off += PAGE) {
    pages.push({
      gpa: acpi.baseGpa + off,
      type: PAGE_TYPE.NORMAL,
      data: acpi.bytes.subarray(off, off + PAGE),
    });
  }
  return { pages, bootParamsGpa: BOOT_PARAMS_GPA, acpi, e820 };
}
