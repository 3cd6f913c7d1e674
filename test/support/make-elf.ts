// Builds small ELF-64 executables in memory for the tests of the ELF loader, the bare machine and
// `svsm exec`.
import { ELF64_EHDR, ELF64_PHDR } from '../../src/arch/index.js';

export interface SegSpec {
  paddr: number;
  vaddr?: number;
  data: Uint8Array;
  memsz: number;
  flags: number;
  type?: number;
}

/** A minimal ELF-64 executable: header, program headers, then each segment's bytes. */
export function makeElf(entry: number, segs: SegSpec[]): Uint8Array {
  const phoff = 0x40;
  let offset = phoff + segs.length * 0x38;
  const offsets = segs.map((s) => {
    const at = offset;
    offset += s.data.length;
    return at;
  });
  const file = new Uint8Array(offset);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  ELF64_EHDR.set(file, 'type', 2);
  ELF64_EHDR.set(file, 'machine', 62);
  ELF64_EHDR.set(file, 'version', 1);
  ELF64_EHDR.set(file, 'entry', BigInt(entry));
  ELF64_EHDR.set(file, 'phoff', BigInt(phoff));
  ELF64_EHDR.set(file, 'ehsize', 0x40);
  ELF64_EHDR.set(file, 'phentsize', 0x38);
  ELF64_EHDR.set(file, 'phnum', segs.length);
  segs.forEach((s, i) => {
    const at = phoff + i * 0x38;
    ELF64_PHDR.set(file, 'type', s.type ?? 1, at);
    ELF64_PHDR.set(file, 'flags', s.flags, at);
    ELF64_PHDR.set(file, 'offset', BigInt(offsets[i]!), at);
    ELF64_PHDR.set(file, 'vaddr', BigInt(s.vaddr ?? s.paddr), at);
    ELF64_PHDR.set(file, 'paddr', BigInt(s.paddr), at);
    ELF64_PHDR.set(file, 'filesz', BigInt(s.data.length), at);
    ELF64_PHDR.set(file, 'memsz', BigInt(s.memsz), at);
    ELF64_PHDR.set(file, 'align', 0x1000n, at);
    file.set(s.data, offsets[i]!);
  });
  return file;
}
