// The TLB keeps one set of translations per privilege (user, supervisor): a CPL change swaps
// them, so neither privilege sees the other's permissions and neither loses its own.
import { describe, expect, it } from 'vitest';
import { PERM_R, PERM_W, PERM_X, type TranslateResult, type Translator } from './translator.js';
import { Cpu, VEC_PF } from './cpu.js';
import { debugChanged } from './debug.js';

/** Identity over 64 KiB; page 1 is supervisor-only. Counts walks. */
class CountingTranslator implements Translator {
  walks = 0;
  translate(lo: number, _hi: number, _access: number, user: boolean, out: TranslateResult): number {
    this.walks++;
    const page = lo >>> 12;
    if (page >= 16 || (page === 1 && user)) {
      out.vector = VEC_PF;
      out.errorCode = user ? 5 : 1;
      return -1;
    }
    out.perm = PERM_R | PERM_W | PERM_X;
    return page;
  }
}

function cpu(): { c: Cpu; t: CountingTranslator } {
  const t = new CountingTranslator();
  const c = new Cpu(new Uint8Array(0x10000), t);
  c.mem[0x1000] = 0x5a;
  return { c, t };
}

describe('TLB per privilege', () => {
  it('does not let CPL 3 use a translation cached at CPL 0', () => {
    const { c } = cpu();
    expect(c.read8(0x1000, 0)).toBe(0x5a); // supervisor: cached
    c.setCpl(3);
    expect(() => c.read8(0x1000, 0)).toThrow();
    expect(c.exVector).toBe(VEC_PF);
    expect(c.exErrorCode).toBe(5);
  });

  it("keeps each privilege's translations across CPL changes (no flush, no new walk)", () => {
    const { c, t } = cpu();
    c.read8(0x2000, 0); // supervisor
    c.setCpl(3);
    c.read8(0x3000, 0); // user
    expect(t.walks).toBe(2);
    for (let k = 0; k < 10; k++) {
      c.setCpl(0);
      c.read8(0x2000, 0);
      c.setCpl(3);
      c.read8(0x3000, 0);
    }
    expect(t.walks).toBe(2);
    // CPL 1 and 2 are supervisor too.
    c.setCpl(1);
    c.read8(0x2000, 0);
    expect(t.walks).toBe(2);
  });

  it('is flushed by debugChanged only when the watched data ranges change', () => {
    // The engine calls debugChanged on every VMSA load: without data breakpoints that must not
    // empty the TLB.
    const { c, t } = cpu();
    c.read8(0x2000, 0);
    debugChanged(c);
    c.dr7 = 0x3n; // an instruction breakpoint (R/W 00): no watched data
    debugChanged(c);
    c.read8(0x2000, 0);
    expect(t.walks).toBe(1);
    c.dr[1] = 0x3000n;
    c.dr7 = 0x3n | 0xcn | (0x3n << 20n); // DR1: read/write watch of 1 byte
    debugChanged(c);
    c.read8(0x2000, 0);
    expect(t.walks).toBe(2);
    debugChanged(c); // the same ranges again
    c.read8(0x2000, 0);
    expect(t.walks).toBe(2);
  });

  it('flushes and invalidates both privileges', () => {
    const { c, t } = cpu();
    c.read8(0x2000, 0);
    c.setCpl(3);
    c.read8(0x2000, 0);
    expect(t.walks).toBe(2);
    c.flushTlb();
    c.read8(0x2000, 0);
    c.setCpl(0);
    c.read8(0x2000, 0);
    expect(t.walks).toBe(4);
    c.invlpg(0x2000, 0);
    c.read8(0x2000, 0);
    c.setCpl(3);
    c.read8(0x2000, 0);
    expect(t.walks).toBe(6);
  });
});
