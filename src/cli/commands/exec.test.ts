import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { captureIo } from '../../../test/support/cli-io.js';
import { makeElf } from '../../../test/support/make-elf.js';
import { runCli } from '../program.js';

const dir = mkdtempSync(join(tmpdir(), 'svsm-exec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/** Writes `bytes` to a file in the test folder and returns its path. */
function file(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A 64-bit program of `code` at 1 MiB, as `svsm exec` takes it. */
function elf(name: string, code: string): string {
  const entry = 0x100000;
  return file(name, makeElf(entry, [{ paddr: entry, data: hex(code), memsz: 0x1000, flags: 5 }]));
}

// mov al, 'h'; out 0xe9, al; mov al, 'i'; out 0xe9, al; mov al, 10; out 0xe9, al; hlt; (nop pad)
const ROM = hex('b068 e6e9 b069 e6e9 b00a e6e9 f4 909090');

describe('svsm exec', () => {
  it('runs a real-mode ROM from the reset vector and prints its port 0xE9 output', async () => {
    const io = captureIo();
    expect(await runCli(['exec', file('hi.rom', ROM), '--rom'], io)).toBe(0);
    expect(io.lines).toEqual(['hi']);
    expect(io.errors.at(-1)).toMatch(/^svsm exec: halted after 7 instructions in /);
  });

  it('traces every instruction, with the registers it changed', async () => {
    const io = captureIo();
    const args = ['exec', file('hi.rom', ROM), '--rom', '--trace', '--trace-registers'];
    expect(await runCli(args, io)).toBe(0);
    const trace = io.errors.filter((l) => /^ +[0-9]+ /.test(l));
    expect(trace).toHaveLength(7);
    expect(trace[0]).toMatch(/^ +0 000000000000fff0 b0 68 +mov al, 0x68 ; rax=68$/);
    expect(trace[1]).toMatch(/^ +1 000000000000fff2 e6 e9 +out 0xe9, al$/);
    expect(trace[6]).toMatch(/hlt$/);
  });

  it('starts the trace at --trace-from, running the instructions before it untraced', async () => {
    const io = captureIo();
    const args = ['exec', file('from.rom', ROM), '--rom', '--trace', '--trace-from', '5'];
    expect(await runCli(args, io)).toBe(0);
    const trace = io.errors.filter((l) => /^ +[0-9]+ /.test(l));
    expect(trace.map((l) => l.trim().split(' ')[0])).toEqual(['5', '6']);
    expect(trace[1]).toMatch(/hlt$/);
  });

  it('traces a compiled loop in full from the middle, with the JIT before it', async () => {
    // mov ecx, 1000; l: dec ecx; jnz l; hlt
    const io = captureIo();
    const code = elf('loop.elf', 'b9e8030000 ffc9 75fc f4');
    expect(await runCli(['exec', code, '--trace', '--trace-from', '1900'], io)).toBe(0);
    const trace = io.errors.filter((l) => /^ +[0-9]+ /.test(l));
    // 2,002 instructions: mov, 1,000 x (dec, jne), hlt; the trace shows the last 102.
    expect(trace).toHaveLength(102);
    expect(trace[0]).toMatch(/^ +1900 0000000000100007 75 fc +jne 0x100005$/);
    expect(trace[1]).toMatch(/^ +1901 0000000000100005 ff c9 +dec ecx$/);
    expect(trace.at(-1)).toMatch(/^ +2001 0000000000100009 f4 +hlt$/);
  });

  it('writes the trace to --trace-file', async () => {
    const io = captureIo();
    const out = join(dir, 'hi.trace');
    expect(
      await runCli(['exec', file('t.rom', ROM), '--rom', '--trace', '--trace-file', out], io),
    ).toBe(0);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n')).toHaveLength(7);
    expect(io.errors.some((l) => /out 0xe9/.test(l))).toBe(false);
  });

  it("exits with the program's exit code from the mailbox", async () => {
    // mov dword [0x8004], 3; hlt
    const io = captureIo();
    expect(await runCli(['exec', elf('exit3.elf', 'c7042504800000 03000000 f4')], io)).toBe(3);
    expect(io.errors).toContain("svsm exec: the program's exit code is 3");
  });

  it('reports an exception with the faulting instruction and the registers, exit 1', async () => {
    // mov eax, 0x1234; ud2
    const io = captureIo();
    expect(await runCli(['exec', elf('ud.elf', 'b834120000 0f0b')], io)).toBe(1);
    expect(io.errors[0]).toBe('exception #UD (vector 6, error code 0x0) at rip 0x100005: ud2');
    expect(io.errors[1]).toMatch(/^ +rax=0000000000001234 +rcx=0+ /);
    expect(io.errors.join('\n')).toMatch(/ rip=0000000000100005 /);
  });

  it('reports a page fault with CR2 under --paging (page 0 unmapped)', async () => {
    // mov rax, [0x10]
    const io = captureIo();
    expect(await runCli(['exec', elf('null.elf', '488b042510000000'), '--paging'], io)).toBe(1);
    expect(io.errors[0]).toMatch(
      /^exception #PF \(vector 14, error code 0x0\) at rip 0x100000: .*, cr2 0x10$/,
    );
  });

  it('stops at --max-instructions with exit 1 and says how to go on', async () => {
    // l: jmp l
    const io = captureIo();
    expect(await runCli(['exec', elf('loop.elf', 'ebfe'), '--max-instructions', '1000'], io)).toBe(
      1,
    );
    expect(io.errors[0]).toBe(
      'stopped at the instruction limit (1000) at rip 0x100000; raise --max-instructions to run longer',
    );
    expect(io.errors.at(-1)).toMatch(/stopped after 1000 instructions/);
  });

  it('refuses bad input with one sentence and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [['exec', join(dir, 'missing.elf')], /cannot read .*missing\.elf/],
      [['exec', file('raw.bin', ROM)], /is not an ELF file \(give --rom for a flat ROM image\)$/],
      [
        ['exec', file('big.rom', new Uint8Array(0x10001)), '--rom'],
        /a --rom image is at most 64 KiB$/,
      ],
      [
        ['exec', file('bad.elf', hex('7f454c46 0201'))],
        /bad\.elf: file is shorter than an ELF-64 header$/,
      ],
      [
        ['exec', file('x.rom', ROM), '--rom', '--max-instructions', 'lots'],
        /--max-instructions must be a positive whole number/,
      ],
      [['exec', file('y.rom', ROM), '--rom', '--trace-registers'], /need --trace$/],
      [['exec', file('u.rom', ROM), '--rom', '--trace-from', '3'], /need --trace$/],
      [
        ['exec', file('v.rom', ROM), '--rom', '--trace', '--trace-from', '-1'],
        /--trace-from must be a whole number/,
      ],
      [['exec', file('z.rom', ROM), '--rom', '--paging'], /--paging is for ELF programs/],
      [
        [
          'exec',
          file('w.rom', ROM),
          '--rom',
          '--trace',
          '--trace-file',
          join(dir, 'no/such/dir/t'),
        ],
        /cannot write /,
      ],
    ];
    for (const [args, message] of cases) {
      const io = captureIo();
      expect(await runCli(args, io), args.join(' ')).toBe(2);
      expect(io.errors.join('\n')).toMatch(message);
    }
  });
});
