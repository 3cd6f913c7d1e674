import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { captureIo } from '../../../test/support/cli-io.js';
import { runCli } from '../program.js';

describe('svsm disasm', () => {
  it('prints address, bytes and Intel syntax for --hex input', async () => {
    const io = captureIo();
    expect(
      await runCli(['disasm', '--hex', '48 01 c8 0f 94 c0 75 f8', '--address', '0x1000'], io),
    ).toBe(0);
    expect(io.lines.join('\n')).toMatch(/00001000: {2}48 01 c8 +add rax, rcx/);
    expect(io.lines[1]).toMatch(/sete al$/);
    expect(io.lines[2]).toMatch(/00001006: {2}75 f8 +jne 0x1000$/);
  });

  it('reads a file with --offset and --length', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svsm-disasm-'));
    try {
      const f = join(dir, 'code.bin');
      writeFileSync(f, Buffer.from('90909031c0f4', 'hex'));
      const io = captureIo();
      expect(await runCli(['disasm', f, '--offset', '3', '--length', '2'], io)).toBe(0);
      expect(io.lines).toHaveLength(1);
      expect(io.lines[0]).toMatch(/xor eax, eax$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad input with one sentence and exit code 2', async () => {
    const io = captureIo();
    expect(await runCli(['disasm', '--hex', 'zz'], io)).toBe(2);
    expect(io.errors.join('')).toMatch(/--hex must be pairs of hex digits/);
  });
});
