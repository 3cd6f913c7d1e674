import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES } from '../../../test/fixtures.js';
import { runCli } from '../program.js';
import { readIgvm } from '../../igvm/index.js';
import { readFileSync } from 'node:fs';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(args, {
    out: (t) => void (out += t + '\n'),
    err: (t) => void (err += t + '\n'),
  });
  return { code, out, err };
}

const MACHINE = join(FIXTURES, 'machine');

describe('svsm run', () => {
  it('launches the CVM and logs each step of the demo guest', async () => {
    const r = await run('run', '--seed', 'cli test', '--machine-dir', MACHINE, '--memory', '64M');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/host: launched: measurement [0-9a-f]{96}/);
    expect(r.out).toContain('[svsm cpu0] booted at 0x2000000');
    expect(r.out).toContain('guest: QUERY_PROTOCOL core: versions 1-1');
    expect(r.out).toContain('guest: PVALIDATE 4 x 2 MiB at 0x200000: success (4 done)');
    expect(r.out).toContain('guest: validated memory reads as zero');
    expect(r.out).toContain('guest: CREATE_VCPU for vCPU 1 (VMSA 0x11000, CAA 0x12000): success');
    expect(r.out).toContain('guest vCPU 1: running at VMPL2');
    expect(r.out).toMatch(
      /guest: ATTEST_SERVICES: report version 3, VMPL 0, measurement [0-9a-f]{32}/,
    );
    expect(r.out).toMatch(/host: VM stopped/);
  });

  it('gives the same measurement with the same seed, and the measurement does not depend on it', async () => {
    const a = await run('run', '--seed', 'x', '--machine-dir', MACHINE, '--memory', '64M');
    const b = await run('run', '--seed', 'y', '--machine-dir', MACHINE, '--memory', '64M');
    const m = (s: string): string | undefined => /measurement ([0-9a-f]{96})/.exec(s)?.[1];
    expect(m(a.out)).toBeDefined();
    expect(m(a.out)).toBe(m(b.out));
  });

  it('explains bad options in one sentence with exit code 2', async () => {
    expect((await run('run', '--machine-dir', MACHINE, '--memory', '17M')).err).toMatch(
      /multiple of 2 MiB/,
    );
    const base = await run('run', '--machine-dir', MACHINE, '--svsm-base', '0x1000');
    expect(base.code).toBe(2);
    expect(base.err).toMatch(/not 2 MiB aligned/);
    expect((await run('run', '--machine-dir', MACHINE, '--vcpus', '0')).code).toBe(2);
    const image = await run(
      'run',
      '--machine-dir',
      MACHINE,
      '--image',
      join(FIXTURES, 'amd-milan/attestation.bin'),
    );
    expect(image.code).toBe(2);
  });
});

describe('svsm build-image', () => {
  it('writes an IGVM file that svsm run launches with the same measurement', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svsm-image-'));
    const file = join(dir, 'cvm.igvm');
    const built = await run('build-image', '--out', file, '--memory', '64M');
    expect(built.code).toBe(0);
    const digest = /launch digest ([0-9a-f]{96})/.exec(built.out)?.[1];
    expect(readIgvm(new Uint8Array(readFileSync(file))).platforms.length).toBe(1);
    const ran = await run(
      'run',
      '--image',
      file,
      '--memory',
      '64M',
      '--machine-dir',
      MACHINE,
      '--seed',
      's',
    );
    expect(ran.code).toBe(0);
    expect(ran.out).toContain(`measurement ${digest}`);
    const measured = await run('measure', file);
    expect(measured.out).toContain(digest!);
  });
});
