import { describe, it } from 'vitest';
import { expectSpecLayout } from '../../test/support/spec-layout.js';
import { ELF64_EHDR, ELF64_PHDR } from './elf.js';

describe('ELF-64 headers', () => {
  it('Elf64_Ehdr is 64 bytes with every field at its gABI offset', () => {
    expectSpecLayout(ELF64_EHDR, 64, {
      ident: [0, 16],
      type: [16, 2],
      machine: [18, 2],
      version: [20, 4],
      entry: [24, 8],
      phoff: [32, 8],
      shoff: [40, 8],
      flags: [48, 4],
      ehsize: [52, 2],
      phentsize: [54, 2],
      phnum: [56, 2],
      shentsize: [58, 2],
      shnum: [60, 2],
      shstrndx: [62, 2],
    });
  });

  it('Elf64_Phdr is 56 bytes with every field at its gABI offset', () => {
    expectSpecLayout(ELF64_PHDR, 56, {
      type: [0, 4],
      flags: [4, 4],
      offset: [8, 8],
      vaddr: [16, 8],
      paddr: [24, 8],
      filesz: [32, 8],
      memsz: [40, 8],
      align: [48, 8],
    });
  });
});
