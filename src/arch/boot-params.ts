// The parts of Linux's `struct boot_params` (the "zero page", 4 KiB) that firmware fills for a
// direct 64-bit boot: where the ACPI tables are and the e820 memory map. The kernel header
// (0x1F1 onwards) and the command line belong to the kernel loader. Facts:
// reference/linux-snp-guest.md 1.1 (`arch/x86/include/uapi/asm/bootparam.h`,
// Documentation/arch/x86/zero-page.rst).

import { E820_MAX_ENTRIES_ZEROPAGE } from './acpi.js';
import { defineStruct } from './struct.js';

export const BOOT_PARAMS_SIZE = 0x1000;
/** Bytes of one `struct boot_e820_entry`. */
const E820_ENTRY_SIZE = 20;

export const BOOT_PARAMS = defineStruct('BOOT_PARAMS', BOOT_PARAMS_SIZE, {
  acpiRsdpAddr: { offset: 0x070, type: 'u64', doc: 'GPA of the RSDP (0: the kernel scans)' },
  ccBlobAddress: { offset: 0x13c, type: 'u32', doc: 'left 0: the decompressor sets it' },
  e820Entries: { offset: 0x1e8, type: 'u8', doc: 'entries used in e820_table' },
  sentinel: { offset: 0x1ef, type: 'u8', doc: 'must stay 0' },
  typeOfLoader: { offset: 0x210, type: 'u8', doc: 'hdr.type_of_loader (0xFF: undefined)' },
  cmdLinePtr: { offset: 0x228, type: 'u32', doc: 'hdr.cmd_line_ptr' },
  setupData: { offset: 0x250, type: 'u64', doc: 'hdr.setup_data: first setup_data node' },
  e820Table: {
    offset: 0x2d0,
    type: 'bytes',
    size: E820_MAX_ENTRIES_ZEROPAGE * E820_ENTRY_SIZE,
    doc: 'packed struct boot_e820_entry[128]',
  },
});
