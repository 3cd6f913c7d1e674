import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EVENT_INJ,
  EVENT_TYPE,
  SEGMENT,
  SEV_FEATURES,
  SEV_STATUS,
  sevFeaturesFromStatus,
  sevStatusFromFeatures,
  VINTR_CTRL,
  VMSA,
  VMSA_GPR_OFFSETS,
  VMSA_SEGMENT_OFFSETS,
  VMSA_SIZE,
  type VmsaField,
} from './vmsa.js';
import { FieldRangeError } from './struct.js';

// Typed from reference/sev-snp-abi.md section 5 (and APM rev 3.44 Table B-4 for the entries in
// APM_ONLY), independently of vmsa.ts: name -> [offset, size in bytes].
const SEGMENTS: [string, number][] = [
  ['es', 0x000],
  ['cs', 0x010],
  ['ss', 0x020],
  ['ds', 0x030],
  ['fs', 0x040],
  ['gs', 0x050],
  ['gdtr', 0x060],
  ['ldtr', 0x070],
  ['idtr', 0x080],
  ['tr', 0x090],
];

const REFERENCE: Record<string, [number, number]> = {
  ...Object.fromEntries(
    SEGMENTS.flatMap(([s, o]) => [
      [`${s}.selector`, [o, 2]],
      [`${s}.attrib`, [o + 2, 2]],
      [`${s}.limit`, [o + 4, 4]],
      [`${s}.base`, [o + 8, 8]],
    ]),
  ),
  pl0Ssp: [0x0a0, 8],
  pl1Ssp: [0x0a8, 8],
  pl2Ssp: [0x0b0, 8],
  pl3Ssp: [0x0b8, 8],
  uCet: [0x0c0, 8],
  vmpl: [0x0ca, 1],
  cpl: [0x0cb, 1],
  efer: [0x0d0, 8],
  xss: [0x140, 8],
  cr4: [0x148, 8],
  cr3: [0x150, 8],
  cr0: [0x158, 8],
  dr7: [0x160, 8],
  dr6: [0x168, 8],
  rflags: [0x170, 8],
  rip: [0x178, 8],
  dr0: [0x180, 8],
  dr1: [0x188, 8],
  dr2: [0x190, 8],
  dr3: [0x198, 8],
  dr0AddrMask: [0x1a0, 8],
  dr1AddrMask: [0x1a8, 8],
  dr2AddrMask: [0x1b0, 8],
  dr3AddrMask: [0x1b8, 8],
  rsp: [0x1d8, 8],
  sCet: [0x1e0, 8],
  ssp: [0x1e8, 8],
  isstAddr: [0x1f0, 8],
  rax: [0x1f8, 8],
  star: [0x200, 8],
  lstar: [0x208, 8],
  cstar: [0x210, 8],
  sfmask: [0x218, 8],
  kernelGsBase: [0x220, 8],
  sysenterCs: [0x228, 8],
  sysenterEsp: [0x230, 8],
  sysenterEip: [0x238, 8],
  cr2: [0x240, 8],
  gPat: [0x268, 8],
  dbgctl: [0x270, 8],
  brFrom: [0x278, 8],
  brTo: [0x280, 8],
  lastExcpFrom: [0x288, 8],
  lastExcpTo: [0x290, 8],
  pkru: [0x2e8, 4],
  tscAux: [0x2ec, 4],
  guestTscScale: [0x2f0, 8],
  guestTscOffset: [0x2f8, 8],
  regProtNonce: [0x300, 8],
  rcx: [0x308, 8],
  rdx: [0x310, 8],
  rbx: [0x318, 8],
  rbp: [0x328, 8],
  rsi: [0x330, 8],
  rdi: [0x338, 8],
  r8: [0x340, 8],
  r9: [0x348, 8],
  r10: [0x350, 8],
  r11: [0x358, 8],
  r12: [0x360, 8],
  r13: [0x368, 8],
  r14: [0x370, 8],
  r15: [0x378, 8],
  guestExitInfo1: [0x390, 8],
  guestExitInfo2: [0x398, 8],
  guestExitIntInfo: [0x3a0, 8],
  guestNrip: [0x3a8, 8],
  sevFeatures: [0x3b0, 8],
  vintrCtrl: [0x3b8, 8],
  guestExitCode: [0x3c0, 8],
  virtualTom: [0x3c8, 8],
  tlbId: [0x3d0, 8],
  pcpuId: [0x3d8, 8],
  eventInj: [0x3e0, 8],
  xcr0: [0x3e8, 8],
  x87Dp: [0x400, 8],
  mxcsr: [0x408, 4],
  x87Ftw: [0x40c, 2],
  x87Fsw: [0x40e, 2],
  x87Fcw: [0x410, 2],
  x87Fop: [0x412, 2],
  x87Ds: [0x414, 2],
  x87Cs: [0x416, 2],
  x87Rip: [0x418, 8],
  fpregX87: [0x420, 80],
  fpregXmm: [0x470, 256],
  fpregYmm: [0x570, 256],
  lbrStack: [0x670, 256],
  lbrSelect: [0x770, 8],
  ibsFetchCtl: [0x778, 8],
  ibsFetchLinaddr: [0x780, 8],
  ibsOpCtl: [0x788, 8],
  ibsOpRip: [0x790, 8],
  ibsOpData: [0x798, 8],
  ibsOpData2: [0x7a0, 8],
  ibsOpData3: [0x7a8, 8],
  ibsDcLinaddr: [0x7b0, 8],
  bpIbstgtRip: [0x7b8, 8],
  icIbsExtdCtl: [0x7c0, 8],
};

const APM_ONLY: Record<string, [number, number]> = {
  perfCtl0: [0x0e0, 8],
  perfCtr0: [0x0e8, 8],
  perfCtl1: [0x0f0, 8],
  perfCtr1: [0x0f8, 8],
  perfCtl2: [0x100, 8],
  perfCtr2: [0x108, 8],
  perfCtl3: [0x110, 8],
  perfCtr3: [0x118, 8],
  perfCtl4: [0x120, 8],
  perfCtr4: [0x128, 8],
  perfCtl5: [0x130, 8],
  perfCtr5: [0x138, 8],
  instrRetiredCtr: [0x1c0, 8],
  perfCtrGlobalSts: [0x1c8, 8],
  perfCtrGlobalCtl: [0x1d0, 4],
  dbgExtnCfg: [0x298, 8],
  specCtrl: [0x2e0, 8],
  secureAvicCtl: [0x320, 8],
  interceptVec0: [0x900, 4],
  interceptVec1: [0x904, 4],
  interceptVec2: [0x908, 4],
  interceptVec3: [0x90c, 4],
  interceptVec4: [0x910, 4],
  interceptVec5: [0x914, 4],
  interceptVec6: [0x918, 4],
  interceptVec7: [0x91c, 4],
  interceptMsrVec0: [0x920, 8],
  interceptMsrVec1: [0x928, 8],
  interceptMsrVec2: [0x930, 8],
  interceptMsrVec3: [0x938, 8],
  fpregK: [0x980, 64],
  fpregZmmHi: [0x9c0, 512],
  fpregHiZmm: [0xbc0, 1024],
};

const EXPECTED = { ...REFERENCE, ...APM_ONLY };

describe('VMSA layout', () => {
  it('is one 4 KiB page', () => {
    expect(VMSA_SIZE).toBe(0x1000);
    expect(VMSA.size).toBe(0x1000);
    expect(SEGMENT.size).toBe(0x10);
  });

  it('puts every field of the reference table at its offset with its size', () => {
    for (const [name, [offset, size]] of Object.entries(EXPECTED)) {
      const f = VMSA.field(name as VmsaField);
      expect([name, f.offset, f.size]).toEqual([name, offset, size]);
    }
  });

  it('declares no field beyond the reference table except reserved ranges', () => {
    const extra = VMSA.fields.map((f) => f.name).filter((n) => !(n in EXPECTED));
    expect(extra.every((n) => /^reserved[0-9a-f]{3}$/i.test(n))).toBe(true);
    // The reserved ranges, as the tables leave them.
    expect(
      VMSA.fields.filter((f) => extra.includes(f.name)).map((f) => [f.offset, f.size]),
    ).toEqual([
      [0x0c8, 2],
      [0x0cc, 4],
      [0x0d8, 8],
      [0x1d4, 4],
      [0x248, 0x20],
      [0x2a0, 0x40],
      [0x380, 0x10],
      [0x3f0, 0x10],
      [0x7c8, 0x138],
      [0x940, 0x40],
      [0xfc0, 0x40],
    ]);
  });

  it('tiles the page with no gap and no overlap', () => {
    let end = 0;
    for (const f of VMSA.fields) {
      expect([f.name, f.offset]).toEqual([f.name, end]);
      end = f.offset + f.size;
    }
    expect(end).toBe(0x1000);
  });

  it('stores each integer field little-endian at its reference offset', () => {
    const page = VMSA.alloc();
    const view = new DataView(page.buffer);
    const intFields = Object.entries(EXPECTED).filter(([, [, size]]) => size <= 8);
    // A distinct value per field, all bytes non-zero so a misplaced write shows.
    const valueFor = (offset: number, size: number): bigint => {
      let v = 0n;
      for (let i = 0; i < size; i++) v |= BigInt(((offset + i * 7) % 0xfe) + 1) << BigInt(8 * i);
      return v;
    };
    for (const [name, [offset, size]] of intFields) {
      const v = valueFor(offset, size);
      if (size === 8) VMSA.set(page, name as VmsaField, v as never);
      else VMSA.set(page, name as VmsaField, Number(v) as never);
    }
    for (const [name, [offset, size]] of intFields) {
      const v = valueFor(offset, size);
      const raw =
        size === 8
          ? view.getBigUint64(offset, true)
          : BigInt(
              size === 4
                ? view.getUint32(offset, true)
                : size === 2
                  ? view.getUint16(offset, true)
                  : view.getUint8(offset),
            );
      expect([name, raw]).toEqual([name, v]);
      const read = VMSA.get(page, name as VmsaField);
      expect([name, BigInt(read as bigint | number)]).toEqual([name, v]);
    }
  });

  it('round-trips register values and leaves other bytes alone', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 0xffff }),
        (rip, sevFeatures, vmpl, csSel) => {
          const page = VMSA.alloc();
          const v = VMSA.on(page);
          v.set('rip', rip).set('sevFeatures', sevFeatures).set('vmpl', vmpl);
          v.set('cs.selector', csSel);
          const touched = new Set<number>();
          for (const [o, n] of [
            [0x178, 8],
            [0x3b0, 8],
            [0xca, 1],
            [0x10, 2],
          ] as const) {
            for (let i = 0; i < n; i++) touched.add(o + i);
          }
          const strayWrite = page.some((b, i) => b !== 0 && !touched.has(i));
          return (
            !strayWrite &&
            v.get('rip') === rip &&
            v.get('sevFeatures') === sevFeatures &&
            v.get('vmpl') === vmpl &&
            v.get('cs.selector') === csSel
          );
        },
      ),
    );
  });

  it('reproduces the QEMU reset VMSA bytes of reference section 1.3', () => {
    const page = VMSA.alloc();
    const v = VMSA.on(page);
    v.set('cs.selector', 0xf000).set('cs.attrib', 0x9b).set('cs.limit', 0xffff);
    v.set('cs.base', 0xffff0000n).set('rip', 0xfff0n);
    v.set('efer', 0x1000n).set('rflags', 0x2n).set('gPat', 0x0007040600070406n);
    v.set('mxcsr', 0x1f80).set('x87Fcw', 0x37f).set('sevFeatures', 0x21n);
    const at = (o: number, n: number) => [...page.subarray(o, o + n)];
    expect(at(0x10, 16)).toEqual([
      0x00, 0xf0, 0x9b, 0x00, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    expect(at(0x178, 8)).toEqual([0xf0, 0xff, 0, 0, 0, 0, 0, 0]);
    expect(at(0xd0, 2)).toEqual([0x00, 0x10]);
    expect(at(0x268, 8)).toEqual([0x06, 0x04, 0x07, 0x00, 0x06, 0x04, 0x07, 0x00]);
    expect(at(0x408, 4)).toEqual([0x80, 0x1f, 0, 0]);
    expect(at(0x410, 2)).toEqual([0x7f, 0x03]);
    expect(at(0x3b0, 1)).toEqual([0x21]);
    expect(VMSA.describe(page)).toContain('0x178 rip');
  });
});

describe('VMSA hot-path offset tables', () => {
  it('maps GPR encodings 0..15 to the VMSA offsets of RAX..R15', () => {
    expect(VMSA_GPR_OFFSETS).toEqual([
      0x1f8, 0x308, 0x310, 0x318, 0x1d8, 0x328, 0x330, 0x338, 0x340, 0x348, 0x350, 0x358, 0x360,
      0x368, 0x370, 0x378,
    ]);
    expect(Object.isFrozen(VMSA_GPR_OFFSETS)).toBe(true);
  });

  it('maps Sreg encodings 0..5 to the ES, CS, SS, DS, FS, GS records', () => {
    expect(VMSA_SEGMENT_OFFSETS).toEqual([0x00, 0x10, 0x20, 0x30, 0x40, 0x50]);
  });

  it('reads through a GPR offset what the named field holds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 15 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (n, value) => {
          const page = VMSA.alloc();
          new DataView(page.buffer).setBigUint64(VMSA_GPR_OFFSETS[n]!, value, true);
          const names = [
            ...['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi'],
            ...['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'],
          ] as const;
          return VMSA.get(page, names[n]!) === value;
        },
      ),
    );
  });
});

describe('SEV_FEATURES and SEV_STATUS', () => {
  it('puts each feature at the bit the APM assigns', () => {
    const expected: Record<string, number> = {
      snpActive: 0,
      vTom: 1,
      reflectVc: 2,
      restrictedInjection: 3,
      alternateInjection: 4,
      debugSwap: 5,
      preventHostIbs: 6,
      btbIsolation: 7,
      vmplSss: 8,
      secureTsc: 9,
      vmgexitParameter: 10,
      pmcVirtualization: 11,
      ibsVirtualization: 12,
      guestInterceptCtl: 13,
      vmsaRegProt: 14,
      smtProtection: 15,
      secureAvic: 16,
      ibpbOnEntry: 21,
    };
    const actual = Object.fromEntries(
      Object.entries(SEV_FEATURES.specs).map(([k, f]) => [k, f.width === 1 ? f.lo : -1]),
    );
    expect(actual).toEqual(expected);
  });

  it('shows feature n at SEV_STATUS bit n + 2, as Linux msr-index.h numbers them', () => {
    // MSR_AMD64_SEV_*_BIT / MSR_AMD64_SNP_*_BIT values.
    const linux: Record<string, number> = {
      sevEnabled: 0,
      sevEsEnabled: 1,
      snpEnabled: 2,
      vTom: 3,
      reflectVc: 4,
      restrictedInjection: 5,
      alternateInjection: 6,
      debugSwap: 7,
      preventHostIbs: 8,
      btbIsolation: 9,
      vmplSss: 10,
      secureTsc: 11,
      vmgexitParameter: 12,
      ibsVirtualization: 14,
      vmsaRegProt: 16,
      smtProtection: 17,
      secureAvic: 18,
      ibpbOnEntry: 23,
    };
    for (const [k, bit] of Object.entries(linux)) {
      expect([k, SEV_STATUS.specs[k as keyof typeof SEV_STATUS.specs].lo]).toEqual([k, bit]);
    }
    for (const [k, f] of Object.entries(SEV_FEATURES.specs)) {
      const statusKey = k === 'snpActive' ? 'snpEnabled' : k;
      const s = SEV_STATUS.specs[statusKey as keyof typeof SEV_STATUS.specs];
      expect([k, s.lo]).toEqual([k, f.lo + 2]);
    }
  });

  it('converts known SEV_FEATURES words to SEV_STATUS', () => {
    expect(sevStatusFromFeatures(0x1n)).toBe(0x7n); // SNPActive
    expect(sevStatusFromFeatures(0x21n)).toBe(0x87n); // SNPActive + DebugSwap
    expect(sevStatusFromFeatures(0x4001n)).toBe(0x10007n); // + VmsaRegProt -> bit 16
    expect(sevStatusFromFeatures(0x200001n)).toBe(0x800007n); // + IbpbOnEntry -> bit 23
    expect(sevStatusFromFeatures(0n)).toBe(0x3n); // SEV-ES without SNP
    expect(SEV_STATUS.describe(0x87n)).toBe('sevEnabled|sevEsEnabled|snpEnabled|debugSwap');
  });

  it('refuses reserved feature bits instead of shifting them into the status', () => {
    expect(() => sevStatusFromFeatures(1n << 17n)).toThrow(FieldRangeError);
    expect(() => sevStatusFromFeatures(1n << 63n)).toThrow(FieldRangeError);
    expect(() => sevStatusFromFeatures(1n << 64n)).toThrow(FieldRangeError);
    expect(() => sevFeaturesFromStatus(1n << 19n)).toThrow(FieldRangeError);
  });

  it('inverts: SEV_STATUS >> 2 gives back the features (what Linux puts in an AP VMSA)', () => {
    const defined = Object.keys(SEV_FEATURES.specs) as (keyof typeof SEV_FEATURES.specs)[];
    fc.assert(
      fc.property(fc.subarray(defined), (keys) => {
        const features = SEV_FEATURES.encode(Object.fromEntries(keys.map((k) => [k, true])));
        const status = sevStatusFromFeatures(features);
        return (
          sevFeaturesFromStatus(status) === features &&
          SEV_STATUS.has(status, 'sevEnabled') &&
          SEV_STATUS.has(status, 'sevEsEnabled') &&
          SEV_STATUS.has(status, 'snpEnabled') === SEV_FEATURES.has(features, 'snpActive')
        );
      }),
    );
  });
});

describe('EVENT_INJ and VINTR_CTRL', () => {
  it('encodes the #GP(0) and #UD injections a VMM returns (Linux verify_exception_info)', () => {
    const gp = EVENT_INJ.encode({
      vector: 13,
      type: EVENT_TYPE.EXCEPTION,
      errorCodeValid: true,
      valid: true,
    });
    expect(gp).toBe(0x8000_0b0dn);
    const ud = EVENT_INJ.encode({ vector: 6, type: EVENT_TYPE.EXCEPTION, valid: true });
    expect(ud).toBe(0x8000_0306n);
    const pf = EVENT_INJ.with(gp, 'errorCode', 0xdeadbeefn);
    expect(pf >> 32n).toBe(0xdeadbeefn);
    expect(EVENT_INJ.get(pf, 'vector')).toBe(13n);
  });

  it('has the APM interrupt types and the BUSY bit at 63', () => {
    expect(EVENT_TYPE).toEqual({ INTR: 0, NMI: 2, EXCEPTION: 3, SOFTWARE_INT: 4 });
    expect(VINTR_CTRL.encode({ busy: true })).toBe(1n << 63n);
    expect(VINTR_CTRL.encode({ vTpr: 0xff, vIrq: true, vIntrVector: 0x20 })).toBe(0x20_0000_01ffn);
  });
});
