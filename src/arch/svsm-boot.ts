// The boot contract between the image builder (src/igvm), the host and our SVSM: the measured
// boot-parameter page the builder writes at the start of the SVSM region (its GPA arrives in RSI
// on the first entry), and the SVSM's virtual-address layout. Our own format, so it is declared
// here like every layout the SVSM and the builder must agree on.

import { defineStruct } from './struct.js';

/** "SVBP" little-endian. */
export const SVSM_BOOT_PARAMS_MAGIC = 0x50425653;
export const SVSM_BOOT_PARAMS_VERSION = 1;

export const SVSM_BOOT_PARAMS = defineStruct('SVSM_BOOT_PARAMS', 0x1000, {
  magic: { offset: 0x00, type: 'u32', doc: '"SVBP"' },
  version: { offset: 0x04, type: 'u32' },
  svsmBase: { offset: 0x08, type: 'u64', doc: 'GPA of the SVSM region (2 MiB aligned)' },
  svsmSize: { offset: 0x10, type: 'u64', doc: 'bytes (multiple of 2 MiB)' },
  launchedSize: { offset: 0x18, type: 'u64', doc: 'bytes from svsmBase the launch validated' },
  secretsGpa: { offset: 0x20, type: 'u64', doc: 'the firmware secrets page' },
  cpuidGpa: { offset: 0x28, type: 'u64', doc: 'the SNP CPUID page' },
  memorySize: {
    offset: 0x30,
    type: 'u64',
    doc: 'guest RAM is [0, memorySize) minus the SVSM region',
  },
  guestSecretsGpa: {
    offset: 0x38,
    type: 'u64',
    doc: 'where the guest copy of the secrets page goes',
  },
  guestCaaGpa: { offset: 0x40, type: 'u64', doc: 'the BSP calling area' },
  guestRip: { offset: 0x48, type: 'u64', doc: 'entry point of the guest BSP' },
  guestRsi: { offset: 0x50, type: 'u64', doc: 'RSI of the guest BSP at entry' },
  vcpuCount: { offset: 0x58, type: 'u32' },
  guestVmpl: { offset: 0x5c, type: 'u32', doc: 'VMPL the guest runs at (2)' },
  reserved: { offset: 0x60, type: 'bytes', size: 0x1000 - 0x60 },
});

/**
 * The SVSM's virtual layout, all in the lower canonical half so that addresses are exact
 * JavaScript numbers. Every vCPU has its own PML4: the kernel region at KERNEL_BASE (2 MiB pages,
 * C-bit set) is one PDPT shared by all of them; the windows area at WINDOWS_BASE is each vCPU's own
 * (its own PDPT), so its window and huge window sit at the same VAs on every vCPU and map only
 * for that vCPU.
 */
export const SVSM_VA = {
  /** PML4 slot 128: the SVSM region, the same in every vCPU's tables. */
  KERNEL_BASE: 0x4000_0000_0000,
  /** PML4 slot 129: the vCPU's own windows area; first its window, 2 MiB (one page table). */
  WINDOWS_BASE: 0x4080_0000_0000,
  WINDOW_SIZE: 0x20_0000,
  /** Inside the window: slots 0..255 temporary mappings, 256..511 shared pages. */
  TEMP_SLOTS: 256,
  SHARED_FIRST_SLOT: 256,
  /** Right after the window: the vCPU's one 2 MiB temporary mapping, for huge guest pages. */
  HUGE_WINDOW: 0x4080_0020_0000,
} as const;

/** "SVSMJS\0\1": the header of an SVSM code image at the BSP's entry RIP. */
export const SVSM_CODE_MAGIC: readonly number[] = [0x53, 0x56, 0x53, 0x4d, 0x4a, 0x53, 0x00, 0x01];
/** Header: magic (8 bytes), u32 code length, u32 reserved; then the UTF-8 JavaScript. */
export const SVSM_CODE_HEADER = defineStruct('SVSM_CODE_HEADER', 0x10, {
  magic: { offset: 0x0, type: 'bytes', size: 8 },
  length: { offset: 0x8, type: 'u32', doc: 'bytes of code after the header' },
  reserved: { offset: 0xc, type: 'u32' },
});

/** Builds an SVSM code image: header and code. */
export function svsmCodeImage(code: string): Uint8Array {
  const text = new TextEncoder().encode(code);
  const out = new Uint8Array(SVSM_CODE_HEADER.size + text.length);
  SVSM_CODE_HEADER.on(out)
    .set('magic', Uint8Array.from(SVSM_CODE_MAGIC))
    .set('length', text.length);
  out.set(text, SVSM_CODE_HEADER.size);
  return out;
}
