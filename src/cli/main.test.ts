import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

describe('svsm (the executable)', () => {
  it('stops quietly with status 0 when its reader closes the pipe (svsm ... | head)', async () => {
    // Enough output to outlast the pipe buffer, so writes happen after the reader has gone.
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, 'disasm', '--hex', '90'.repeat(20_000)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  }, 60_000);
});
