// Loads a static x86-64 ELF executable into guest physical memory from its program headers (gABI
// ELF-64; layouts in src/arch/elf.ts). Every PT_LOAD segment is copied to its physical address
// (p_paddr) and the rest of its memory image up to p_memsz is zeroed. The file is untrusted input:
// every offset, size and address is checked before a byte is copied, and nothing is copied unless
// the whole file checks out.

import {
  ELF64_EHDR,
  ELF64_PHDR,
  ELF_EM_X86_64,
  ELF_IDENT,
  ELF_MAGIC,
  ELF_PF,
  ELF_PT_LOAD,
  ELF_TYPE,
} from '../arch/index.js';

export class ElfError extends Error {
  override readonly name = 'ElfError';
}

export interface ElfSegment {
  readonly paddr: number;
  readonly vaddr: number;
  readonly filesz: number;
  readonly memsz: number;
  readonly offset: number;
  readonly flags: number;
}

export interface ElfImage {
  readonly entry: number;
  readonly segments: readonly ElfSegment[];
}

/** A u64 field as a number, refusing values an address in this machine cannot have. */
function small(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ElfError(`${what} 0x${v.toString(16)} is too large`);
  return Number(v);
}

/** Checks the headers of `file` against a memory of `memSize` bytes and lists its segments. */
export function parseElf(file: Uint8Array, memSize: number): ElfImage {
  if (file.length < ELF64_EHDR.size) throw new ElfError('file is shorter than an ELF-64 header');
  const h = ELF64_EHDR;
  const ident = h.get(file, 'ident');
  if (ELF_MAGIC.some((b, i) => ident[i] !== b)) throw new ElfError('not an ELF file (magic)');
  if (ident[ELF_IDENT.CLASS] !== ELF_IDENT.CLASS64) throw new ElfError('not ELF-64');
  if (ident[ELF_IDENT.DATA] !== ELF_IDENT.DATA2LSB) throw new ElfError('not little-endian');
  if (ident[ELF_IDENT.VERSION] !== ELF_IDENT.EV_CURRENT) throw new ElfError('unknown ELF version');
  if (h.get(file, 'type') !== ELF_TYPE.EXEC) {
    throw new ElfError('not a static executable (ET_EXEC): relocation is not supported');
  }
  if (h.get(file, 'machine') !== ELF_EM_X86_64) throw new ElfError('not an x86-64 executable');
  const phnum = h.get(file, 'phnum');
  const phentsize = h.get(file, 'phentsize');
  if (phnum === 0) throw new ElfError('no program headers');
  if (phentsize < ELF64_PHDR.size) throw new ElfError(`program header size ${phentsize} < 56`);
  const phoff = small(h.get(file, 'phoff'), 'e_phoff');
  if (phoff + phnum * phentsize > file.length) {
    throw new ElfError('program header table lies outside the file');
  }

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (ELF64_PHDR.get(file, 'type', at) !== ELF_PT_LOAD) continue;
    const seg: ElfSegment = {
      paddr: small(ELF64_PHDR.get(file, 'paddr', at), 'p_paddr'),
      vaddr: small(ELF64_PHDR.get(file, 'vaddr', at), 'p_vaddr'),
      filesz: small(ELF64_PHDR.get(file, 'filesz', at), 'p_filesz'),
      memsz: small(ELF64_PHDR.get(file, 'memsz', at), 'p_memsz'),
      offset: small(ELF64_PHDR.get(file, 'offset', at), 'p_offset'),
      flags: ELF64_PHDR.get(file, 'flags', at),
    };
    const name = `segment ${i} (0x${seg.paddr.toString(16)})`;
    if (seg.filesz > seg.memsz) throw new ElfError(`${name}: p_filesz > p_memsz`);
    if (seg.offset + seg.filesz > file.length) throw new ElfError(`${name}: lies outside the file`);
    if (seg.paddr + seg.memsz > memSize) throw new ElfError(`${name}: lies outside memory`);
    for (const other of segments) {
      if (seg.paddr < other.paddr + other.memsz && other.paddr < seg.paddr + seg.memsz) {
        throw new ElfError(`${name}: overlaps segment at 0x${other.paddr.toString(16)}`);
      }
    }
    segments.push(seg);
  }
  if (segments.length === 0) throw new ElfError('no PT_LOAD segment');
  const entry = small(h.get(file, 'entry'), 'e_entry');
  const inCode = segments.some(
    (s) => (s.flags & ELF_PF.X) !== 0 && entry >= s.vaddr && entry < s.vaddr + s.memsz,
  );
  if (!inCode) throw new ElfError(`entry 0x${entry.toString(16)} is not in an executable segment`);
  return { entry, segments };
}

/**
 * Loads `file` into `mem` at the segments' physical addresses and returns its image; the entry
 * point is virtual (the programs here are linked with physical = virtual).
 */
export function loadElf(file: Uint8Array, mem: Uint8Array): ElfImage {
  const image = parseElf(file, mem.length);
  for (const s of image.segments) {
    mem.set(file.subarray(s.offset, s.offset + s.filesz), s.paddr);
    mem.fill(0, s.paddr + s.filesz, s.paddr + s.memsz);
  }
  return image;
}
