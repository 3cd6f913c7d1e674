import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ELF64_EHDR, ELF64_PHDR } from '../../src/arch/index.js';
import { buildProgram } from './build.js';
import { ElfError, loadElf, parseElf } from '../../src/hw/elf-loader.js';
import { makeElf } from '../support/make-elf.js';

const MEM = 0x10000;
const code = Uint8Array.from([0x90, 0x90, 0xf4]);
const data = Uint8Array.from([1, 2, 3, 4, 5]);
const good = (): Uint8Array =>
  makeElf(0x1000, [
    { paddr: 0x1000, data: code, memsz: 3, flags: 5 },
    { paddr: 0x3000, data, memsz: 0x20, flags: 6 },
  ]);

/** Loads into memory filled with 0xAA and returns the memory. */
function loadInto(file: Uint8Array): Uint8Array {
  const mem = new Uint8Array(MEM).fill(0xaa);
  loadElf(file, mem);
  return mem;
}

/** Expects ElfError matching `msg`, with memory untouched. */
function rejects(file: Uint8Array, msg: RegExp): void {
  const mem = new Uint8Array(MEM).fill(0xaa);
  expect(() => loadElf(file, mem)).toThrow(ElfError);
  expect(() => loadElf(file, mem)).toThrow(msg);
  expect(mem.every((b) => b === 0xaa)).toBe(true);
}

describe('ELF loader', () => {
  it('copies each PT_LOAD to its physical address and zeroes the rest of its memory image', () => {
    const mem = loadInto(good());
    expect([...mem.subarray(0x1000, 0x1003)]).toEqual([...code]);
    expect(mem[0x1003]).toBe(0xaa);
    expect([...mem.subarray(0x3000, 0x3005)]).toEqual([...data]);
    expect(mem.subarray(0x3005, 0x3020).every((b) => b === 0)).toBe(true);
    expect(mem[0x3020]).toBe(0xaa);
    expect(mem[0x2fff]).toBe(0xaa);
  });

  it('ignores program headers that are not PT_LOAD and reports the entry point', () => {
    const file = makeElf(0x1001, [
      { paddr: 0x5000, data: Uint8Array.of(9), memsz: 1, flags: 4, type: 0x6474e551 },
      { paddr: 0x1000, data: code, memsz: 3, flags: 5 },
    ]);
    const mem = new Uint8Array(MEM);
    expect(loadElf(file, mem)).toMatchObject({ entry: 0x1001, segments: [{ paddr: 0x1000 }] });
    expect(mem[0x5000]).toBe(0);
  });

  it('loads the gcc-built workload: its code at 1 MiB starts at the entry point', () => {
    const elf = buildProgram('workload');
    const mem = new Uint8Array(0x200000);
    const image = loadElf(elf, mem);
    expect(image.entry).toBe(0x100000);
    // crt0: lea __stack_top(%rip), %rsp = 48 8d 25 <rel32>.
    expect([...mem.subarray(0x100000, 0x100003)]).toEqual([0x48, 0x8d, 0x25]);
  });

  it('loads any set of disjoint segments exactly (property)', () => {
    const seg = fc.record({
      page: fc.integer({ min: 0, max: 15 }),
      data: fc.uint8Array({ maxLength: 64 }),
      extra: fc.integer({ min: 0, max: 64 }),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(seg, { selector: (s) => s.page, minLength: 1, maxLength: 6 }),
        (segs) => {
          const specs = segs.map((s) => ({
            paddr: s.page * 0x1000,
            data: s.data,
            memsz: s.data.length + s.extra,
            flags: 7,
          }));
          // An entry inside a non-empty segment.
          const first = specs.find((s) => s.memsz > 0);
          fc.pre(first !== undefined);
          const mem = loadInto(makeElf(first!.paddr, specs));
          for (const s of specs) {
            expect([...mem.subarray(s.paddr, s.paddr + s.data.length)]).toEqual([...s.data]);
            const tail = mem.subarray(s.paddr + s.data.length, s.paddr + s.memsz);
            expect(tail.every((b) => b === 0)).toBe(true);
            expect(mem[s.paddr + s.memsz]).toBe(0xaa);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  describe('rejects hostile or unsupported files without writing memory', () => {
    const cases: [string, (f: Uint8Array) => Uint8Array, RegExp][] = [
      ['a truncated header', (f) => f.subarray(0, 0x3f), /shorter than an ELF-64 header/],
      ['a wrong magic', (f) => ((f[1] = 0x46), f), /magic/],
      ['ELF-32', (f) => ((f[4] = 1), f), /not ELF-64/],
      ['big-endian data', (f) => ((f[5] = 2), f), /little-endian/],
      ['an unknown version', (f) => ((f[6] = 0), f), /version/],
      ['a shared object (ET_DYN)', (f) => (ELF64_EHDR.set(f, 'type', 3), f), /ET_EXEC/],
      ['another machine (AArch64)', (f) => (ELF64_EHDR.set(f, 'machine', 183), f), /x86-64/],
      ['no program headers', (f) => (ELF64_EHDR.set(f, 'phnum', 0), f), /no program headers/],
      ['short program headers', (f) => (ELF64_EHDR.set(f, 'phentsize', 0x20), f), /header size/],
      [
        'a header table past the end',
        (f) => (ELF64_EHDR.set(f, 'phoff', BigInt(f.length - 0x38)), f),
        /outside the file/,
      ],
      [
        'a huge e_phoff',
        (f) => (ELF64_EHDR.set(f, 'phoff', 0xffff_ffff_ffff_ff00n), f),
        /too large/,
      ],
      [
        'p_filesz > p_memsz',
        (f) => (ELF64_PHDR.set(f, 'memsz', 2n, 0x40), f),
        /p_filesz > p_memsz/,
      ],
      [
        'segment bytes past the end of the file',
        (f) => (ELF64_PHDR.set(f, 'offset', BigInt(f.length - 2), 0x40), f),
        /outside the file/,
      ],
      [
        'a segment past the end of memory',
        (f) => (ELF64_PHDR.set(f, 'paddr', BigInt(MEM - 0x10), 0x78), f),
        /outside memory/,
      ],
      [
        'an address beyond 2^53',
        (f) => (ELF64_PHDR.set(f, 'paddr', 1n << 60n, 0x78), f),
        /too large/,
      ],
      ['overlapping segments', (f) => (ELF64_PHDR.set(f, 'paddr', 0x1002n, 0x78), f), /overlaps/],
      [
        'an entry outside executable segments',
        (f) => (ELF64_EHDR.set(f, 'entry', 0x3000n), f),
        /entry 0x3000/,
      ],
      [
        'no PT_LOAD',
        (f) => (ELF64_PHDR.set(f, 'type', 4, 0x40), ELF64_PHDR.set(f, 'type', 4, 0x78), f),
        /no PT_LOAD/,
      ],
    ];
    it.each(cases)('%s', (_name, mutate, msg) => rejects(mutate(good()), msg));
  });

  it("answers any corruption of a real ELF's headers with success or ElfError, never another error", () => {
    const elf = buildProgram('workload');
    const mem = new Uint8Array(0x200000);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 0x100 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (edits) => {
          const f = elf.slice();
          for (const [at, v] of edits) f[at] = v;
          try {
            parseElf(f, mem.length);
          } catch (e) {
            expect(e).toBeInstanceOf(ElfError);
            return;
          }
          loadElf(f, mem);
        },
      ),
      { numRuns: 500 },
    );
  });
});
