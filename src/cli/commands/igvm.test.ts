import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measure, writeIgvm } from '../../igvm/index.js';
import { smallSnpModel } from '../../igvm/model.fixture.js';
import { runCli } from '../program.js';
import type { CliIo } from '../io.js';

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t + '\n'), err: (t) => void (err += t + '\n') };
  const code = await runCli(args, io);
  return { code, out, err };
}

function tempFile(name: string, bytes: Uint8Array): string {
  const path = join(mkdtempSync(join(tmpdir(), 'svsm-igvm-')), name);
  writeFileSync(path, bytes);
  return path;
}

const FILE_BYTES = writeIgvm(smallSnpModel());
const DIGEST = Buffer.from(measure(FILE_BYTES).digest).toString('hex');

describe('svsm measure', () => {
  it('prints the launch digest and the pages by type', async () => {
    const r = await run('measure', tempFile('small.igvm', FILE_BYTES));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Measurement:  ${DIGEST}`);
    expect(r.out).toMatch(
      /Pages:\s+7 \(normal 2, zero 0, unmeasured 2, secrets 1, cpuid 1, vmsa 1\)/,
    );
    expect(r.out).toMatch(/Policy:\s+0x30000/);
  });

  it('prints JSON with the same digest', async () => {
    const r = await run('measure', '--json', tempFile('small.igvm', FILE_BYTES));
    expect(r.code).toBe(0);
    const v = JSON.parse(r.out) as { measurement: string; pageCounts: Record<string, number> };
    expect(v.measurement).toBe(DIGEST);
    expect(v.pageCounts).toEqual({
      normal: 2,
      vmsa: 1,
      zero: 0,
      unmeasured: 2,
      secrets: 1,
      cpuid: 1,
    });
  });

  it('--native-zero and --no-check-kvm change what igvmmeasure would', async () => {
    const m = smallSnpModel();
    const moved = writeIgvm({
      ...m,
      directives: m.directives.map((d) => (d.kind === 'vpContext' ? { ...d, gpa: 0x20000 } : d)),
    });
    const path = tempFile('moved.igvm', moved);
    const refused = await run('measure', path);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(
      /^svsm: cannot measure .*QEMU\/KVM would measure this file differently/,
    );
    const loose = await run('measure', '--no-check-kvm', '--native-zero', path);
    expect(loose.code).toBe(0);
    expect(loose.out).toMatch(/zero 1/);
  });

  it('refuses a file that is not IGVM in one sentence with exit code 2', async () => {
    const r = await run(
      'measure',
      tempFile('x.bin', new TextEncoder().encode('hello world, this is not an IGVM image')),
    );
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(
      /^svsm: .*x\.bin is not a valid IGVM file: the file.s magic is 0x6c6c6568, not "IGVM"\n$/,
    );
  });

  it('refuses a corrupt file (one flipped header byte) and a missing one', async () => {
    const bad = FILE_BYTES.slice();
    bad[40]! ^= 0x04;
    const r = await run('measure', tempFile('bad.igvm', bad));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/checksum/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    const missing = await run('measure', '/nonexistent/image.igvm');
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/does not exist/);
  });
});

describe('svsm igvm show', () => {
  it('lists platforms, policy and directives', async () => {
    const r = await run('igvm', 'show', tempFile('small.igvm', FILE_BYTES));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toMatch(/^IGVM format version 1 \(x64\), \d+ bytes, 12 headers$/);
    expect(r.out).toContain('SUPPORTED_PLATFORM SEV_SNP mask=0x1 highest_vtl=0 version=1');
    expect(r.out).toMatch(/GUEST_POLICY policy=0x30000 \(smt\|reserved1\) mask=0x1/);
    expect(r.out).toContain('VP_COUNT_PARAMETER area=0 offset=0x0');
    expect(r.out).toContain('PARAMETER_INSERT gpa=0x8000 area=0 mask=0x1');
    expect(r.out).toContain('PAGE_DATA gpa=0x13000 SECRETS zero mask=0x1');
    expect(r.out).toMatch(
      /VP_CONTEXT SEV_SNP vp=0 gpa=0xfffffffff000 mask=0x1 VMSA rip=0x10000 cr0=0x31/,
    );
  });

  it('folds runs of similar pages unless asked for every page', async () => {
    const m = smallSnpModel();
    const run3 = writeIgvm({
      ...m,
      directives: [0x1000, 0x2000, 0x3000].map((gpa) => ({
        kind: 'pageData' as const,
        gpa,
        compatibilityMask: 1,
        flags: { is2mbPage: false, unmeasured: false, shared: false },
        dataType: 0 as const,
        data: null,
      })),
    });
    const path = tempFile('run.igvm', run3);
    expect((await run('igvm', 'show', path)).out).toContain(
      'PAGE_DATA x3 gpa=0x1000-0x3fff NORMAL zero mask=0x1',
    );
    expect((await run('igvm', 'show', '--pages', path)).out.match(/PAGE_DATA gpa=/g)).toHaveLength(
      3,
    );
  });

  it('refuses a truncated file with exit code 2', async () => {
    const r = await run('igvm', 'show', tempFile('cut.igvm', FILE_BYTES.slice(0, 100)));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /is not a valid IGVM file: the header says the file is \d+ bytes but it is 100/,
    );
  });
});
