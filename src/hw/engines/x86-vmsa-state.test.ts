// The world switch's x87/SSE part: what saveToVmsa writes and loadFromVmsa reads back, bit for
// bit for XMM/MXCSR, in the VMSA's own x87 layout (stack order, split significands) and from a
// freshly built all-zero VMSA.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VMSA, VMSA_X87_SIGN_EXPONENT, VMSA_X87_SIGNIFICAND } from '../../arch/index.js';
import { Cpu } from '../cpu/cpu.js';
import { FlatTranslator } from '../cpu/translator.js';
import { fcwValue } from '../cpu/x87.js';
import { loadFromVmsa, saveToVmsa } from './x86-vmsa-state.js';

const X87 = VMSA.offset('fpregX87');
const XMM = VMSA.offset('fpregXmm');

function cpu(): Cpu {
  return new Cpu(new Uint8Array(0x1000), new FlatTranslator(0, 0x1000));
}

function view(page: Uint8Array): DataView {
  return new DataView(page.buffer, page.byteOffset, page.byteLength);
}

interface SimdFields {
  readonly xmm: number[];
  readonly mxcsr: number;
  readonly fcw: number;
  readonly fsw: number;
  readonly top: number;
  readonly empty: boolean[];
  readonly fop: number;
  readonly fip: number;
  readonly fdp: number;
  /** Physical registers as 80-bit values. */
  readonly st: bigint[];
}

/** Any state the CPU can hold: FCW as FLDCW leaves it, FSW without TOP, FOP 11 bits. */
const simdState = fc.record<SimdFields>({
  xmm: fc.array(fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }), {
    minLength: 64,
    maxLength: 64,
  }),
  mxcsr: fc.integer({ min: 0, max: 0xffff }),
  fcw: fc.integer({ min: 0, max: 0xffff }).map(fcwValue),
  fsw: fc.integer({ min: 0, max: 0xffff }).map((w) => w & ~0x3800),
  top: fc.integer({ min: 0, max: 7 }),
  empty: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  fop: fc.integer({ min: 0, max: 0x7ff }),
  fip: fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }),
  fdp: fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }),
  // Any 80 bits, NaN payloads and unsupported encodings included: the switch copies them exactly.
  st: fc.array(fc.bigInt({ min: 0n, max: (1n << 80n) - 1n }), { minLength: 8, maxLength: 8 }),
});

function setSimd(c: Cpu, f: SimdFields): void {
  const s = c.simd;
  s.x32.set(f.xmm);
  s.mxcsr = f.mxcsr;
  s.fcw = f.fcw;
  s.fsw = f.fsw;
  s.top = f.top;
  for (let p = 0; p < 8; p++) {
    s.empty[p] = f.empty[p]! ? 1 : 0;
    s.setSt(p, f.st[p]!);
  }
  s.fop = f.fop;
  s.fip = f.fip;
  s.fdp = f.fdp;
}

function simdOf(c: Cpu): SimdFields {
  const s = c.simd;
  return {
    xmm: Array.from(s.x32.subarray(0, 64)),
    mxcsr: s.mxcsr,
    fcw: s.fcw,
    fsw: s.fsw,
    top: s.top,
    empty: Array.from(s.empty, (e) => e !== 0),
    fop: s.fop,
    fip: s.fip,
    fdp: s.fdp,
    st: Array.from({ length: 8 }, (_, p) => s.getSt(p)),
  };
}

describe('x86 world switch: x87/SSE state', () => {
  it('any XMM/MXCSR/x87 state survives #VMEXIT and VMRUN unchanged', () => {
    fc.assert(
      fc.property(simdState, (f) => {
        const a = cpu();
        setSimd(a, f);
        const page = VMSA.alloc();
        saveToVmsa(a, view(page));
        const b = cpu();
        loadFromVmsa(b, view(page));
        // toEqual compares numbers with Object.is: -0 stays -0, NaN (the indefinite) stays NaN.
        expect(simdOf(b)).toEqual(simdOf(a));
      }),
    );
  });

  it('XMM0-15 and MXCSR go from VMSA to CPU and back bit for bit, signalling NaNs included', () => {
    const snan = [
      [0x7f80_0001, 0x7fbf_ffff, 0xff80_0001, 0x0000_0001], // float32 sNaNs, a denormal
      [0x0000_0001, 0x7ff0_0000, 0xffff_ffff, 0xfff7_ffff], // float64 sNaNs (low, high words)
    ].flat();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 256, maxLength: 256 }),
        fc.integer({ min: 0, max: 0xffff }),
        (xmm, mxcsr) => {
          const page = VMSA.alloc();
          page.set(xmm, XMM);
          const v = view(page);
          for (let k = 0; k < snan.length; k++) v.setUint32(XMM + 4 * (k + 8), snan[k]!, true);
          v.setUint32(VMSA.offset('mxcsr'), mxcsr, true);
          const before = page.slice(XMM, XMM + 256);
          const c = cpu();
          loadFromVmsa(c, v);
          const out = VMSA.alloc();
          saveToVmsa(c, view(out));
          expect(out.subarray(XMM, XMM + 256)).toEqual(before);
          expect(VMSA.get(out, 'mxcsr')).toBe(mxcsr);
        },
      ),
    );
  });

  it('ST(i) is physical register TOP + i: with TOP = 3, ST0 is register 3 in both directions', () => {
    const c = cpu();
    const s = c.simd;
    s.top = 3;
    [10, 20, 30, 1, 2, 40, 50, 60].forEach((x, p) => s.setStNumber(p, x));
    s.empty.set([1, 1, 1, 0, 0, 1, 1, 1]);
    s.fsw = 0x4100; // C3, C0
    const page = VMSA.alloc();
    const v = view(page);
    saveToVmsa(c, v);
    // ST0 = 1.0: significand 0x8000000000000000, sign/exponent 0x3FFF; ST1 = 2.0: exponent 0x4000.
    expect(v.getBigUint64(X87 + VMSA_X87_SIGNIFICAND, true)).toBe(0x8000_0000_0000_0000n);
    expect(v.getUint16(X87 + VMSA_X87_SIGN_EXPONENT, true)).toBe(0x3fff);
    expect(v.getBigUint64(X87 + VMSA_X87_SIGNIFICAND + 8, true)).toBe(0x8000_0000_0000_0000n);
    expect(v.getUint16(X87 + VMSA_X87_SIGN_EXPONENT + 2, true)).toBe(0x4000);
    // ST7 is physical register 2 (30.0 = 1.875 * 2^4).
    expect(v.getUint16(X87 + VMSA_X87_SIGN_EXPONENT + 14, true)).toBe(0x3fff + 4);
    // FSW carries TOP in bits 13:11; the tag is abridged, by physical register.
    expect(VMSA.get(page, 'x87Fsw')).toBe(0x4100 | (3 << 11));
    expect(VMSA.get(page, 'x87Ftw')).toBe(0b0001_1000);

    const d = cpu();
    loadFromVmsa(d, v);
    expect(d.simd.top).toBe(3);
    expect(d.simd.fsw).toBe(0x4100);
    expect(Array.from({ length: 8 }, (_, p) => d.simd.stNumber(p))).toEqual([
      10, 20, 30, 1, 2, 40, 50, 60,
    ]);
    expect(Array.from(d.simd.empty)).toEqual([1, 1, 1, 0, 0, 1, 1, 1]);
  });

  it('reads FPREG_X87 as eight significands, then eight sign/exponent words', () => {
    // ST0 = -3.0 written as the processor lays it out: 0xC000000000000000 at 0x420, 0xC000 at
    // 0x460. Read as FXSAVE's ten-byte records this would be a different number.
    const page = VMSA.alloc();
    const v = view(page);
    v.setBigUint64(X87, 0xc000_0000_0000_0000n, true);
    v.setUint16(X87 + 0x40, 0xc000, true);
    VMSA.set(page, 'x87Ftw', 0x01);
    const c = cpu();
    loadFromVmsa(c, v);
    expect(c.simd.stNumber(0)).toBe(-3);
    expect(c.simd.empty[0]).toBe(0);
  });

  it('a freshly built VMSA (all zero) loads as FCW 0x0040, MXCSR 0, every register empty', () => {
    const c = cpu();
    c.simd.x32.fill(-1);
    c.simd.empty.fill(0);
    loadFromVmsa(c, view(VMSA.alloc()));
    const s = c.simd;
    // FCW bit 6 always reads one; a zero MXCSR unmasks every SIMD exception, as it says.
    expect(s.fcw).toBe(0x40);
    expect(s.mxcsr).toBe(0);
    expect(s.top).toBe(0);
    expect(s.fswFull).toBe(0);
    expect(Array.from(s.empty)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(s.x32.subarray(0, 64)).every((w) => w === 0)).toBe(true);
  });

  it('#VMEXIT keeps the VMSA fields the CPU does not hold (XCR0, XSS, X87_CS/DS, YMM)', () => {
    const page = VMSA.alloc();
    VMSA.on(page).set('xcr0', 1n).set('xss', 0x800n).set('x87Cs', 0x33).set('x87Ds', 0x2b);
    page.fill(0xa5, VMSA.offset('fpregYmm'), VMSA.offset('fpregYmm') + 256);
    const before = page.slice();
    const c = cpu();
    loadFromVmsa(c, view(page));
    saveToVmsa(c, view(page));
    for (const f of ['xcr0', 'xss', 'x87Cs', 'x87Ds', 'fpregYmm'] as const) {
      expect(VMSA.get(page, f)).toEqual(VMSA.get(before, f));
    }
  });
});
