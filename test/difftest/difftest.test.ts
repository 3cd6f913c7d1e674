import { describe, expect, it } from 'vitest';
import { buildHarness, unsupportedReason } from './build.js';
import { FORMS } from './catalog.js';
import { compare, generate, runDifftest, runNative, Simulated } from './run.js';

const why = unsupportedReason();

describe.skipIf(why !== null)('differential test against the host CPU', () => {
  it('covers at least 300 instruction forms', () => {
    expect(FORMS.length).toBeGreaterThanOrEqual(300);
  });

  it('agrees with the host CPU on 100,000 cases over every form', () => {
    const r = runDifftest(buildHarness(), 100_000, Number(process.env.DIFFTEST_SEED ?? 1));
    if (r.mismatches > 0) console.log(r.reports.join('\n'));
    expect(r.forms).toBe(FORMS.length);
    expect(r.mismatches).toBe(0);
  }, 120_000);

  it('agrees with the host CPU with every case compiled by the JIT (20,000 cases)', () => {
    const r = runDifftest(
      buildHarness(),
      20_000,
      Number(process.env.DIFFTEST_SEED ?? 2),
      undefined,
      20,
      true,
    );
    if (r.mismatches > 0) console.log(r.reports.join('\n'));
    expect(r.forms).toBe(FORMS.length);
    expect(r.mismatches).toBe(0);
    // All but the few forms the JIT leaves to the interpreter (CPUID, RDTSC, ...) are compiled;
    // SSE/SSE2 and x87 forms run inside blocks through execute.
    expect(r.compiled).toBeGreaterThan(19_000);
  }, 120_000);

  it('notices a wrong result (the comparison can fail)', () => {
    const cases = generate(50, 99, 'adc Ev,Gv 64 reg');
    const native = runNative(buildHarness(), cases);
    const sim = new Simulated();
    for (let k = 0; k < cases.length; k++) {
      const s = sim.run(cases[k]!);
      expect(compare(cases[k]!, native[k]!, s)).toBe('');
      s.flags ^= 1; // CF
      expect(compare(cases[k]!, native[k]!, s)).toMatch(/^flags native/);
      s.flags ^= 1;
      s.regs[3] = s.regs[3]! ^ 1n;
      expect(compare(cases[k]!, native[k]!, s)).toMatch(/rbx native/);
    }
  });
});
