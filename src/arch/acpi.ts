// ACPI tables a direct-boot Linux reads (RSDP 2.0, SDT header, XSDT, FADT rev 6, FACS, DSDT,
// MADT and its entries) and the e820 memory map of boot_params. Facts: ACPI 6.5 chapter 5
// (5.2.5 RSDP, 5.2.6 SDT header, 5.2.8 XSDT, 5.2.9 FADT, 5.2.10 FACS, 5.2.12 MADT), Linux
// `include/acpi/actbl*.h` and `arch/x86/include/uapi/asm/bootparam.h` (`struct boot_e820_entry`);
// reference/linux-snp-guest.md sections 1.1, 1.4, 1.5.

import { defineStruct, embed } from './struct.js';

/** Every ACPI table, the RSDP's first 20 bytes and the whole RSDP 2.0 sum to 0 mod 256. */
export function acpiChecksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i < end; i++) sum = (sum + bytes[i]!) & 0xff;
  return sum;
}

/** The byte that makes `bytes[start, end)` sum to 0 when stored in a checksum field within it. */
export function acpiChecksumByte(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return (0x100 - acpiChecksum(bytes, start, end)) & 0xff;
}

/** ASCII bytes of a fixed-width, space- or zero-padded ACPI name (signature, OEM ID). */
export function acpiName(text: string, width: number, pad = 0x20): Uint8Array {
  if (text.length > width || !/^[\x20-\x7e]*$/.test(text)) {
    throw new RangeError(`ACPI name ${JSON.stringify(text)} is not printable ASCII of <= ${width}`);
  }
  const out = new Uint8Array(width).fill(pad);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

// --- RSDP (ACPI 5.2.5.3) ---------------------------------------------------------------------

export const RSDP_SIGNATURE = 'RSD PTR ';
/** RSDP revision 2 (ACPI 2.0+): has the XSDT address and the extended checksum. */
export const RSDP_REVISION = 2;
/** The ACPI 1.0 checksum covers the first 20 bytes. */
export const RSDP_V1_LENGTH = 20;
/** Linux's decompressor looks for the RSDP on a 16-byte boundary when it scans; we align too. */
export const RSDP_ALIGN = 16;

export const RSDP = defineStruct('RSDP', 36, {
  signature: { offset: 0, type: 'bytes', size: 8, doc: '"RSD PTR "' },
  checksum: { offset: 8, type: 'u8', doc: 'bytes 0..19 sum to 0' },
  oemId: { offset: 9, type: 'bytes', size: 6 },
  revision: { offset: 15, type: 'u8', doc: '2 for ACPI 2.0+' },
  rsdtAddress: { offset: 16, type: 'u32', doc: '0: no RSDT, the XSDT is used' },
  length: { offset: 20, type: 'u32', doc: '36' },
  xsdtAddress: { offset: 24, type: 'u64' },
  extendedChecksum: { offset: 32, type: 'u8', doc: 'all 36 bytes sum to 0' },
  reserved: { offset: 33, type: 'bytes', size: 3 },
});

// --- System description table header (ACPI 5.2.6) --------------------------------------------

export const SDT_HEADER = defineStruct('SDT_HEADER', 36, {
  signature: { offset: 0, type: 'bytes', size: 4 },
  length: { offset: 4, type: 'u32', doc: 'whole table, header included' },
  revision: { offset: 8, type: 'u8' },
  checksum: { offset: 9, type: 'u8', doc: 'whole table sums to 0' },
  oemId: { offset: 10, type: 'bytes', size: 6 },
  oemTableId: { offset: 16, type: 'bytes', size: 8 },
  oemRevision: { offset: 24, type: 'u32' },
  creatorId: { offset: 28, type: 'bytes', size: 4 },
  creatorRevision: { offset: 32, type: 'u32' },
});

export const ACPI_SIG = {
  XSDT: 'XSDT',
  FADT: 'FACP',
  FACS: 'FACS',
  DSDT: 'DSDT',
  MADT: 'APIC',
} as const;

/** XSDT: the header followed by 64-bit table addresses (unaligned, at 36 + 8 i). */
export const XSDT_REVISION = 1;
export const XSDT_ENTRY_SIZE = 8;

// --- Generic Address Structure (ACPI 5.2.3.2) -------------------------------------------------

export const GAS = defineStruct('GAS', 12, {
  spaceId: { offset: 0, type: 'u8', doc: '0 memory, 1 system I/O' },
  bitWidth: { offset: 1, type: 'u8' },
  bitOffset: { offset: 2, type: 'u8' },
  accessSize: { offset: 3, type: 'u8', doc: '0 undefined, 1 byte, 2 word, 3 dword, 4 qword' },
  address: { offset: 4, type: 'u64' },
});

export const GAS_SPACE_MEMORY = 0;
export const GAS_SPACE_IO = 1;

// --- FADT (ACPI 5.2.9, revision 6: 276 bytes) -------------------------------------------------

export const FADT_REVISION = 6;
/** ACPI 6.5: FADT major 6, minor 5. */
export const FADT_MINOR_REVISION = 5;

export const FADT = defineStruct('FADT', 276, {
  ...embed('header', 0, SDT_HEADER),
  firmwareCtrl: { offset: 36, type: 'u32', doc: 'FACS, 32-bit' },
  dsdt: { offset: 40, type: 'u32', doc: 'DSDT, 32-bit' },
  reserved0: { offset: 44, type: 'u8', doc: 'INT_MODEL in ACPI 1.0' },
  preferredPmProfile: { offset: 45, type: 'u8' },
  sciInt: { offset: 46, type: 'u16', doc: 'ISA IRQ of the SCI' },
  smiCmd: { offset: 48, type: 'u32', doc: '0: no SMM, ACPI mode is always on' },
  acpiEnable: { offset: 52, type: 'u8' },
  acpiDisable: { offset: 53, type: 'u8' },
  s4biosReq: { offset: 54, type: 'u8' },
  pstateCnt: { offset: 55, type: 'u8' },
  pm1aEvtBlk: { offset: 56, type: 'u32', doc: 'I/O port' },
  pm1bEvtBlk: { offset: 60, type: 'u32' },
  pm1aCntBlk: { offset: 64, type: 'u32', doc: 'I/O port' },
  pm1bCntBlk: { offset: 68, type: 'u32' },
  pm2CntBlk: { offset: 72, type: 'u32' },
  pmTmrBlk: { offset: 76, type: 'u32', doc: '0: no PM timer' },
  gpe0Blk: { offset: 80, type: 'u32' },
  gpe1Blk: { offset: 84, type: 'u32' },
  pm1EvtLen: { offset: 88, type: 'u8' },
  pm1CntLen: { offset: 89, type: 'u8' },
  pm2CntLen: { offset: 90, type: 'u8' },
  pmTmrLen: { offset: 91, type: 'u8' },
  gpe0BlkLen: { offset: 92, type: 'u8' },
  gpe1BlkLen: { offset: 93, type: 'u8' },
  gpe1Base: { offset: 94, type: 'u8' },
  cstCnt: { offset: 95, type: 'u8' },
  pLvl2Lat: { offset: 96, type: 'u16', doc: '> 100: C2 not supported' },
  pLvl3Lat: { offset: 98, type: 'u16', doc: '> 1000: C3 not supported' },
  flushSize: { offset: 100, type: 'u16' },
  flushStride: { offset: 102, type: 'u16' },
  dutyOffset: { offset: 104, type: 'u8' },
  dutyWidth: { offset: 105, type: 'u8' },
  dayAlrm: { offset: 106, type: 'u8' },
  monAlrm: { offset: 107, type: 'u8' },
  century: { offset: 108, type: 'u8' },
  iapcBootArch: { offset: 109, type: 'u16', doc: 'FADT_BOOT_*' },
  reserved1: { offset: 111, type: 'u8' },
  flags: { offset: 112, type: 'u32', doc: 'FADT_F_*' },
  ...embed('resetReg', 116, GAS),
  resetValue: { offset: 128, type: 'u8' },
  armBootArch: { offset: 129, type: 'u16' },
  minorVersion: { offset: 131, type: 'u8' },
  xFirmwareCtrl: { offset: 132, type: 'u64', doc: 'FACS, 64-bit' },
  xDsdt: { offset: 140, type: 'u64', doc: 'DSDT, 64-bit; preferred by ACPICA' },
  ...embed('xPm1aEvtBlk', 148, GAS),
  ...embed('xPm1bEvtBlk', 160, GAS),
  ...embed('xPm1aCntBlk', 172, GAS),
  ...embed('xPm1bCntBlk', 184, GAS),
  ...embed('xPm2CntBlk', 196, GAS),
  ...embed('xPmTmrBlk', 208, GAS),
  ...embed('xGpe0Blk', 220, GAS),
  ...embed('xGpe1Blk', 232, GAS),
  ...embed('sleepControlReg', 244, GAS),
  ...embed('sleepStatusReg', 256, GAS),
  hypervisorVendorId: { offset: 268, type: 'u64' },
});

/** FADT fixed feature flags (ACPI table 5.10). */
export const FADT_F = {
  WBINVD: 1 << 0,
  WBINVD_FLUSH: 1 << 1,
  PROC_C1: 1 << 2,
  P_LVL2_UP: 1 << 3,
  PWR_BUTTON: 1 << 4,
  SLP_BUTTON: 1 << 5,
  FIX_RTC: 1 << 6,
  RTC_S4: 1 << 7,
  TMR_VAL_EXT: 1 << 8,
  RESET_REG_SUP: 1 << 10,
  USE_PLATFORM_CLOCK: 1 << 15,
  FORCE_APIC_PHYSICAL_DESTINATION_MODE: 1 << 19,
  /** Never set here: Linux then drops the legacy PIC domain (reference 1.5). */
  HW_REDUCED_ACPI: 1 << 20,
} as const;

/** FADT IA-PC boot architecture flags (ACPI table 5.11). */
export const FADT_BOOT = {
  LEGACY_DEVICES: 1 << 0,
  /** 8042 keyboard controller present; clear: Linux's i8042 does not probe. */
  I8042: 1 << 1,
  VGA_NOT_PRESENT: 1 << 2,
  MSI_NOT_SUPPORTED: 1 << 3,
  PCIE_ASPM_CONTROLS: 1 << 4,
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;

// --- FACS (ACPI 5.2.10): no checksum, 64-byte aligned ------------------------------------------

export const FACS_ALIGN = 64;
export const FACS = defineStruct('FACS', 64, {
  signature: { offset: 0, type: 'bytes', size: 4, doc: '"FACS"' },
  length: { offset: 4, type: 'u32', doc: '64' },
  hardwareSignature: { offset: 8, type: 'u32' },
  firmwareWakingVector: { offset: 12, type: 'u32' },
  globalLock: { offset: 16, type: 'u32' },
  flags: { offset: 20, type: 'u32' },
  xFirmwareWakingVector: { offset: 24, type: 'u64' },
  version: { offset: 32, type: 'u8', doc: '2' },
  reserved0: { offset: 33, type: 'bytes', size: 3 },
  ospmFlags: { offset: 36, type: 'u32' },
  reserved1: { offset: 40, type: 'bytes', size: 24 },
});
export const FACS_VERSION = 2;

// --- DSDT (ACPI 5.2.11.1): a header and an AML definition block --------------------------------

/** Revision 2: AML integers are 64-bit. */
export const DSDT_REVISION = 2;

/**
 * AML for `Name (\_S5, Package () { slpTyp, slpTyp, 0, 0 })` (ACPI 6.5, 7.4.2 "\_Sx System
 * States"; AML encoding 20.2.5.2 DefName: NameOp 0x08, NameSeg; 20.2.5.4 DefPackage: PackageOp
 * 0x12, one-byte PkgLength (itself and what follows), NumElements; BytePrefix 0x0A, ZeroOp 0x00).
 * OSPM writes element 0 to PM1a_CNT.SLP_TYP (element 1 to PM1b) to enter soft-off.
 */
export function amlS5Object(slpTyp: number): Uint8Array {
  if (!Number.isInteger(slpTyp) || slpTyp < 0 || slpTyp > 7)
    throw new RangeError(`SLP_TYP ${slpTyp} is not 0..7`);
  const name = [0x5f, 0x53, 0x35, 0x5f]; // "_S5_"
  const elements = [0x0a, slpTyp, 0x0a, slpTyp, 0x00, 0x00];
  const pkgLength = 1 + 1 + elements.length;
  return Uint8Array.from([0x08, ...name, 0x12, pkgLength, 4, ...elements]);
}

// --- MADT (ACPI 5.2.12) -------------------------------------------------------------------------

/** MADT revision as QEMU writes it. */
export const MADT_REVISION = 3;
export const MADT_LOCAL_APIC_ADDRESS = 0xfee0_0000;
/** MADT flags: PCAT_COMPAT (dual 8259s present); clear here (reference 1.5). */
export const MADT_PCAT_COMPAT = 1 << 0;

export const MADT_HEADER = defineStruct('MADT_HEADER', 44, {
  ...embed('header', 0, SDT_HEADER),
  localApicAddress: { offset: 36, type: 'u32', doc: '0xFEE00000' },
  flags: { offset: 40, type: 'u32', doc: 'MADT_PCAT_COMPAT' },
});

export const MADT_TYPE = {
  LOCAL_APIC: 0,
  IO_APIC: 1,
  INTERRUPT_SOURCE_OVERRIDE: 2,
  LOCAL_APIC_NMI: 4,
  LOCAL_X2APIC: 9,
  LOCAL_X2APIC_NMI: 0xa,
} as const;

/** Local APIC / x2APIC flags: Enabled, Online Capable. */
export const MADT_APIC_ENABLED = 1 << 0;
export const MADT_APIC_ONLINE_CAPABLE = 1 << 1;

/** MPS INTI flags of overrides and NMI entries: polarity bits 1:0, trigger mode bits 3:2. */
export const MPS_INTI = {
  POLARITY_CONFORMS: 0,
  POLARITY_ACTIVE_HIGH: 1,
  POLARITY_ACTIVE_LOW: 3,
  TRIGGER_CONFORMS: 0 << 2,
  TRIGGER_EDGE: 1 << 2,
  TRIGGER_LEVEL: 3 << 2,
} as const;

/** Bus 0 of an interrupt source override is ISA. */
export const MADT_ISO_BUS_ISA = 0;
/** ACPI processor UID meaning "all processors" in NMI entries. */
export const MADT_NMI_ALL_PROCESSORS_U8 = 0xff;
export const MADT_NMI_ALL_PROCESSORS_U32 = 0xffff_ffff;

export const MADT_LOCAL_APIC = defineStruct('MADT_LOCAL_APIC', 8, {
  type: { offset: 0, type: 'u8', doc: '0' },
  length: { offset: 1, type: 'u8', doc: '8' },
  processorUid: { offset: 2, type: 'u8' },
  apicId: { offset: 3, type: 'u8' },
  flags: { offset: 4, type: 'u32' },
});

export const MADT_IO_APIC = defineStruct('MADT_IO_APIC', 12, {
  type: { offset: 0, type: 'u8', doc: '1' },
  length: { offset: 1, type: 'u8', doc: '12' },
  ioApicId: { offset: 2, type: 'u8' },
  reserved: { offset: 3, type: 'u8' },
  address: { offset: 4, type: 'u32', doc: 'MMIO base, 0xFEC00000' },
  gsiBase: { offset: 8, type: 'u32' },
});

export const MADT_INTERRUPT_OVERRIDE = defineStruct('MADT_INTERRUPT_OVERRIDE', 10, {
  type: { offset: 0, type: 'u8', doc: '2' },
  length: { offset: 1, type: 'u8', doc: '10' },
  bus: { offset: 2, type: 'u8', doc: '0 = ISA' },
  source: { offset: 3, type: 'u8', doc: 'ISA IRQ' },
  gsi: { offset: 4, type: 'u32' },
  flags: { offset: 8, type: 'u16', doc: 'MPS_INTI' },
});

export const MADT_LOCAL_APIC_NMI = defineStruct('MADT_LOCAL_APIC_NMI', 6, {
  type: { offset: 0, type: 'u8', doc: '4' },
  length: { offset: 1, type: 'u8', doc: '6' },
  processorUid: { offset: 2, type: 'u8', doc: '0xFF = all' },
  flags: { offset: 3, type: 'u16', doc: 'MPS_INTI' },
  lint: { offset: 5, type: 'u8', doc: 'LINT# (1)' },
});

export const MADT_LOCAL_X2APIC = defineStruct('MADT_LOCAL_X2APIC', 16, {
  type: { offset: 0, type: 'u8', doc: '9' },
  length: { offset: 1, type: 'u8', doc: '16' },
  reserved: { offset: 2, type: 'u16' },
  x2apicId: { offset: 4, type: 'u32' },
  flags: { offset: 8, type: 'u32', doc: 'MADT_APIC_ENABLED' },
  processorUid: { offset: 12, type: 'u32' },
});

export const MADT_LOCAL_X2APIC_NMI = defineStruct('MADT_LOCAL_X2APIC_NMI', 12, {
  type: { offset: 0, type: 'u8', doc: '0xA' },
  length: { offset: 1, type: 'u8', doc: '12' },
  flags: { offset: 2, type: 'u16', doc: 'MPS_INTI' },
  processorUid: { offset: 4, type: 'u32', doc: '0xFFFFFFFF = all' },
  lint: { offset: 8, type: 'u8', doc: 'LINT# (1)' },
  reserved: { offset: 9, type: 'bytes', size: 3 },
});

/** Every MADT entry starts with {u8 type, u8 length}. */
export const MADT_ENTRY_HEADER = defineStruct('MADT_ENTRY_HEADER', 2, {
  type: { offset: 0, type: 'u8' },
  length: { offset: 1, type: 'u8' },
});

// --- e820 (boot_params.e820_table, `struct boot_e820_entry`) ------------------------------------

export const E820_ENTRY = defineStruct('E820_ENTRY', 20, {
  addr: { offset: 0, type: 'u64' },
  size: { offset: 8, type: 'u64' },
  type: { offset: 16, type: 'u32', doc: 'E820_TYPE' },
});

/** boot_params holds at most 128 entries (E820_MAX_ENTRIES_ZEROPAGE). */
export const E820_MAX_ENTRIES_ZEROPAGE = 128;

/** Linux `enum e820_type`. */
export const E820_TYPE = {
  RAM: 1,
  RESERVED: 2,
  ACPI: 3,
  NVS: 4,
  UNUSABLE: 5,
  PMEM: 7,
  PRAM: 12,
  SOFT_RESERVED: 0xefffffff,
} as const;
export type E820Type = (typeof E820_TYPE)[keyof typeof E820_TYPE];
