// ELF-64 file and program headers, as far as a loader of static executables needs them. Facts:
// System V gABI "ELF-64 Object File Format" (version 1.5), section 3 (ELF header, e_ident) and
// section 6 (program header); the x86-64 machine number from the System V AMD64 psABI, 4.1.1.

import { defineStruct } from './struct.js';

/** e_ident[EI_MAG0..3]. */
export const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const;
/** e_ident indexes and the values a little-endian ELF-64 file holds there. */
export const ELF_IDENT = {
  CLASS: 4,
  DATA: 5,
  VERSION: 6,
  CLASS64: 2,
  DATA2LSB: 1,
  EV_CURRENT: 1,
} as const;
export const ELF_TYPE = { EXEC: 2, DYN: 3 } as const;
export const ELF_EM_X86_64 = 62;
export const ELF_PT_LOAD = 1;
/** p_flags bits. */
export const ELF_PF = { X: 1, W: 2, R: 4 } as const;

/** Elf64_Ehdr (gABI ELF-64, Figure 2). */
export const ELF64_EHDR = defineStruct('Elf64_Ehdr', 0x40, {
  ident: { offset: 0x00, type: 'bytes', size: 16, doc: 'e_ident' },
  type: { offset: 0x10, type: 'u16', doc: 'e_type' },
  machine: { offset: 0x12, type: 'u16', doc: 'e_machine' },
  version: { offset: 0x14, type: 'u32', doc: 'e_version' },
  entry: { offset: 0x18, type: 'u64', doc: 'e_entry' },
  phoff: { offset: 0x20, type: 'u64', doc: 'e_phoff' },
  shoff: { offset: 0x28, type: 'u64', doc: 'e_shoff' },
  flags: { offset: 0x30, type: 'u32', doc: 'e_flags' },
  ehsize: { offset: 0x34, type: 'u16', doc: 'e_ehsize' },
  phentsize: { offset: 0x36, type: 'u16', doc: 'e_phentsize' },
  phnum: { offset: 0x38, type: 'u16', doc: 'e_phnum' },
  shentsize: { offset: 0x3a, type: 'u16', doc: 'e_shentsize' },
  shnum: { offset: 0x3c, type: 'u16', doc: 'e_shnum' },
  shstrndx: { offset: 0x3e, type: 'u16', doc: 'e_shstrndx' },
});

/** Elf64_Phdr (gABI ELF-64, Figure 6). */
export const ELF64_PHDR = defineStruct('Elf64_Phdr', 0x38, {
  type: { offset: 0x00, type: 'u32', doc: 'p_type' },
  flags: { offset: 0x04, type: 'u32', doc: 'p_flags' },
  offset: { offset: 0x08, type: 'u64', doc: 'p_offset' },
  vaddr: { offset: 0x10, type: 'u64', doc: 'p_vaddr' },
  paddr: { offset: 0x18, type: 'u64', doc: 'p_paddr' },
  filesz: { offset: 0x20, type: 'u64', doc: 'p_filesz' },
  memsz: { offset: 0x28, type: 'u64', doc: 'p_memsz' },
  align: { offset: 0x30, type: 'u64', doc: 'p_align' },
});
