import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  APIC_BASE,
  CR0,
  CR0_MASK,
  CR4,
  CR4_MASK,
  EFER,
  EFER_MASK,
  exceptionHasErrorCode,
  GPR_NAMES,
  isX2apicMsr,
  MSR,
  PF_ERROR,
  PTE,
  PTE_ADDR_MASK,
  PTE_ADDR_MASK_1G,
  PTE_ADDR_MASK_2M,
  RFLAGS,
  RFLAGS_MASK,
  RFLAGS_RESET,
  SEGMENT_REGISTER_NAMES,
  SVM_EXIT,
  SVM_EXIT_ERROR,
  svmExitName,
  VECTOR,
  vectorDescription,
  vectorName,
  X2APIC_MSR,
  x2apicMsrForMmioOffset,
  XCR0,
} from './x86.js';

describe('MSR numbers', () => {
  it('match Linux msr-index.h', () => {
    expect(MSR.TSC).toBe(0x10);
    expect(MSR.APIC_BASE).toBe(0x1b);
    expect(MSR.SPEC_CTRL).toBe(0x48);
    expect(MSR.SYSENTER_CS).toBe(0x174);
    expect(MSR.MISC_ENABLE).toBe(0x1a0);
    expect(MSR.PAT).toBe(0x277);
    expect(MSR.TSC_DEADLINE).toBe(0x6e0);
    expect(MSR.XSS).toBe(0xda0);
    expect(MSR.EFER).toBe(0xc0000080);
    expect(MSR.STAR).toBe(0xc0000081);
    expect(MSR.LSTAR).toBe(0xc0000082);
    expect(MSR.CSTAR).toBe(0xc0000083);
    expect(MSR.SFMASK).toBe(0xc0000084);
    expect(MSR.FS_BASE).toBe(0xc0000100);
    expect(MSR.GS_BASE).toBe(0xc0000101);
    expect(MSR.KERNEL_GS_BASE).toBe(0xc0000102);
    expect(MSR.TSC_AUX).toBe(0xc0000103);
    expect(MSR.HWCR).toBe(0xc0010015);
    expect(MSR.GHCB).toBe(0xc0010130);
    expect(MSR.SEV_STATUS).toBe(0xc0010131);
    expect(MSR.SVSM_CAA).toBe(0xc001f000);
    expect(MSR.KVM_SYSTEM_TIME_NEW).toBe(0x4b564d01);
  });

  it('has no two names for one MSR', () => {
    const values = Object.values(MSR);
    expect(new Set(values).size).toBe(values.length);
  });

  it('places the x2APIC registers at 0x800 + MMIO offset / 16', () => {
    expect(X2APIC_MSR.ID).toBe(0x802);
    expect(X2APIC_MSR.VERSION).toBe(0x803);
    expect(X2APIC_MSR.TPR).toBe(0x808);
    expect(X2APIC_MSR.EOI).toBe(0x80b);
    expect(X2APIC_MSR.LDR).toBe(0x80d);
    expect(X2APIC_MSR.SVR).toBe(0x80f);
    expect(X2APIC_MSR.ESR).toBe(0x828);
    expect(X2APIC_MSR.ICR).toBe(0x830);
    expect(X2APIC_MSR.LVT_TIMER).toBe(0x832);
    expect(X2APIC_MSR.TIMER_INITIAL_COUNT).toBe(0x838);
    expect(X2APIC_MSR.TIMER_CURRENT_COUNT).toBe(0x839);
    expect(X2APIC_MSR.TIMER_DIVIDE_CONFIG).toBe(0x83e);
    expect(x2apicMsrForMmioOffset(0x300)).toBe(X2APIC_MSR.ICR);
    expect(x2apicMsrForMmioOffset(0x0b0)).toBe(X2APIC_MSR.EOI);
    expect(x2apicMsrForMmioOffset(0x3e0)).toBe(X2APIC_MSR.TIMER_DIVIDE_CONFIG);
    expect(() => x2apicMsrForMmioOffset(0x304)).toThrow(RangeError);
    expect(() => x2apicMsrForMmioOffset(0x1000)).toThrow(RangeError);
    expect([
      isX2apicMsr(0x7ff),
      isX2apicMsr(0x800),
      isX2apicMsr(0x8ff),
      isX2apicMsr(0x900),
    ]).toEqual([false, true, true, false]);
  });

  it('decodes APIC_BASE with x2APIC enabled at the default base', () => {
    const v = 0xfee0_0d00n; // EN | EXTD | BSP, base 0xFEE00000
    expect(APIC_BASE.decode(v)).toEqual({ BSP: 1n, EXTD: 1n, EN: 1n, BASE: 0xfee00n });
  });
});

describe('control registers, EFER, RFLAGS', () => {
  it('gives the values Linux and QEMU use (linux-snp-guest.md 1.2, sev-snp-abi.md 1.3)', () => {
    expect(CR0.encode({ PG: true, WP: true, NE: true, ET: true, MP: true, PE: true })).toBe(
      0x8001_0033n,
    );
    expect(CR0.encode({ ET: true })).toBe(0x10n);
    expect(CR0.encode({ CD: true, NW: true, ET: true })).toBe(0x6000_0010n);
    expect(CR4.encode({ MCE: true })).toBe(0x40n);
    expect(CR4.encode({ PAE: true, PGE: true })).toBe(0xa0n);
    expect(EFER.encode({ LME: true, LMA: true, SVME: true })).toBe(0x1500n);
    expect(EFER.encode({ SVME: true })).toBe(0x1000n);
    expect(XCR0.encode({ X87: true })).toBe(1n);
  });

  it('puts CR4 and EFER flags at the APM bit positions', () => {
    const cr4 = Object.fromEntries(Object.entries(CR4.specs).map(([k, f]) => [k, f.lo]));
    expect(cr4).toEqual({
      VME: 0,
      PVI: 1,
      TSD: 2,
      DE: 3,
      PSE: 4,
      PAE: 5,
      MCE: 6,
      PGE: 7,
      PCE: 8,
      OSFXSR: 9,
      OSXMMEXCPT: 10,
      UMIP: 11,
      LA57: 12,
      FSGSBASE: 16,
      PCIDE: 17,
      OSXSAVE: 18,
      SMEP: 20,
      SMAP: 21,
      PKE: 22,
      CET: 23,
    });
    const efer = Object.fromEntries(Object.entries(EFER.specs).map(([k, f]) => [k, f.lo]));
    expect(efer).toEqual({
      SCE: 0,
      LME: 8,
      LMA: 10,
      NXE: 11,
      SVME: 12,
      LMSLE: 13,
      FFXSR: 14,
      TCE: 15,
      AUTOIBRS: 21,
    });
  });

  it('lays out RFLAGS with IOPL in bits 13:12 and bit 1 always one', () => {
    expect(RFLAGS_RESET).toBe(0x2);
    expect(RFLAGS.encode({ FIXED1: true })).toBe(BigInt(RFLAGS_RESET));
    expect(RFLAGS.encode({ CF: 1, PF: 1, AF: 1, ZF: 1, SF: 1, TF: 1, IF: 1, DF: 1, OF: 1 })).toBe(
      0xfd5n,
    );
    expect(RFLAGS.get(0x3202n, 'IOPL')).toBe(3n);
    expect(RFLAGS.encode({ NT: 1, RF: 1, VM: 1, AC: 1, VIF: 1, VIP: 1, ID: 1 })).toBe(0x3f4000n);
    // Bits 3, 5, 15 and 22..63 are reserved.
    expect(RFLAGS.reservedBits(0xffff_ffff_ffff_ffffn)).toBe(0xffff_ffff_ffc0_8028n);
  });

  it('derives non-negative 32-bit masks equal to the bigint encodings', () => {
    expect(CR0_MASK.PG).toBe(0x8000_0000);
    expect(CR0_MASK.PE).toBe(1);
    expect(CR4_MASK.OSXSAVE).toBe(1 << 18);
    expect(EFER_MASK.LMA).toBe(0x400);
    expect(RFLAGS_MASK.IOPL).toBe(0x3000);
    expect(RFLAGS_MASK.IF).toBe(0x200);
    for (const [layout, masks] of [
      [CR0, CR0_MASK],
      [CR4, CR4_MASK],
      [EFER, EFER_MASK],
      [RFLAGS, RFLAGS_MASK],
    ] as const) {
      for (const [k, m] of Object.entries(masks)) {
        const f = layout.specs[k as keyof typeof layout.specs] as { lo: number; width: number };
        const expected = ((1n << BigInt(f.width)) - 1n) << BigInt(f.lo);
        expect([layout.name, k, BigInt(m)]).toEqual([layout.name, k, expected]);
      }
    }
  });
});

describe('paging', () => {
  it('decodes a present, writable, user, no-execute 4 KiB PTE', () => {
    const pte = 0x8000_0001_2345_6067n; // NX | frame 0x123456 | D A US RW P
    expect(PTE.decode(pte)).toMatchObject({
      P: 1n,
      RW: 1n,
      US: 1n,
      A: 1n,
      D: 1n,
      PS: 0n,
      ADDR: 0x1_23456n,
      NX: 1n,
    });
    expect(pte & PTE_ADDR_MASK).toBe(0x1_2345_6000n);
    expect(PTE.reservedBits(0xffff_ffff_ffff_ffffn)).toBe(0n);
  });

  it('masks large-page addresses at 2 MiB and 1 GiB', () => {
    expect(PTE_ADDR_MASK_2M).toBe(PTE_ADDR_MASK & ~0x1f_ffffn);
    expect(PTE_ADDR_MASK_1G).toBe(PTE_ADDR_MASK & ~0x3fff_ffffn);
    expect(PTE_ADDR_MASK >> 12n).toBe((1n << 40n) - 1n);
  });

  it('has the #PF error-code bits of the APM and Linux (X86_PF_*, PFERR_GUEST_*)', () => {
    const bits = Object.fromEntries(Object.entries(PF_ERROR.specs).map(([k, f]) => [k, f.lo]));
    expect(bits).toEqual({
      P: 0,
      W: 1,
      U: 2,
      RSVD: 3,
      ID: 4,
      PK: 5,
      SS: 6,
      RMP: 31,
      FINAL: 32,
      PAGE: 33,
      ENC: 34,
      SIZEM: 35,
      VMPL: 36,
    });
    expect(PF_ERROR.encode({ P: 1, W: 1, U: 1 })).toBe(7n);
  });
});

describe('exception vectors', () => {
  it('numbers the exceptions as the APM does', () => {
    expect(VECTOR).toEqual({
      DE: 0,
      DB: 1,
      NMI: 2,
      BP: 3,
      OF: 4,
      BR: 5,
      UD: 6,
      NM: 7,
      DF: 8,
      TS: 10,
      NP: 11,
      SS: 12,
      GP: 13,
      PF: 14,
      MF: 16,
      AC: 17,
      MC: 18,
      XF: 19,
      CP: 21,
      HV: 28,
      VC: 29,
      SX: 30,
    });
  });

  it('names vectors for logs', () => {
    expect(vectorName(14)).toBe('#PF');
    expect(vectorName(29)).toBe('#VC');
    expect(vectorName(30)).toBe('#SX');
    expect(vectorName(2)).toBe('NMI');
    expect(vectorName(9)).toBe('reserved vector 0x9');
    expect(vectorName(0x20)).toBe('vector 0x20');
    expect(vectorDescription(13)).toBe('general protection');
    expect(vectorDescription(29)).toBe('VMM communication');
    expect(vectorDescription(0xef)).toBe('external interrupt or INTn');
    expect(() => vectorName(256)).toThrow(RangeError);
    expect(() => vectorName(-1)).toThrow(RangeError);
    expect(() => vectorName(1.5)).toThrow(RangeError);
  });

  it('knows which exceptions push an error code', () => {
    const pushing = [...Array(32).keys()].filter((n) => exceptionHasErrorCode(n));
    expect(pushing).toEqual([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    expect(exceptionHasErrorCode(0x80)).toBe(false);
  });
});

describe('SVM exit codes (#VC error codes)', () => {
  it('match Linux uapi/asm/svm.h and the SNP references', () => {
    expect(SVM_EXIT.READ_DR7).toBe(0x27);
    expect(SVM_EXIT.WRITE_DR7).toBe(0x37);
    expect(SVM_EXIT.EXCP_AC).toBe(SVM_EXIT.EXCP_BASE + VECTOR.AC);
    expect(SVM_EXIT.EXCP_AC).toBe(0x51);
    expect(SVM_EXIT.RDTSC).toBe(0x6e);
    expect(SVM_EXIT.RDPMC).toBe(0x6f);
    expect(SVM_EXIT.CPUID).toBe(0x72);
    expect(SVM_EXIT.INVD).toBe(0x76);
    expect(SVM_EXIT.HLT).toBe(0x78);
    expect(SVM_EXIT.IOIO).toBe(0x7b);
    expect(SVM_EXIT.MSR).toBe(0x7c);
    expect(SVM_EXIT.VMMCALL).toBe(0x81);
    expect(SVM_EXIT.RDTSCP).toBe(0x87);
    expect(SVM_EXIT.WBINVD).toBe(0x89);
    expect(SVM_EXIT.MONITOR).toBe(0x8a);
    expect(SVM_EXIT.MWAIT).toBe(0x8b);
    expect(SVM_EXIT.XSETBV).toBe(0x8d);
    expect(SVM_EXIT.EFER_WRITE_TRAP).toBe(0x8f);
    expect(SVM_EXIT.CR4_WRITE_TRAP).toBe(SVM_EXIT.CR0_WRITE_TRAP + 4);
    expect(SVM_EXIT.NPF).toBe(0x400);
    expect(SVM_EXIT.VMGEXIT).toBe(0x403);
    expect(SVM_EXIT.PAGE_NOT_VALIDATED).toBe(0x404);
    expect(SVM_EXIT_ERROR.VMEXIT_INVALID).toBe((1n << 64n) - 1n);
    expect(SVM_EXIT_ERROR.VMEXIT_BUSY).toBe((1n << 64n) - 2n);
  });

  it('has no two names for one code', () => {
    const values = Object.values(SVM_EXIT);
    expect(new Set(values).size).toBe(values.length);
  });

  it('names exit codes for logs, including the ranged ones', () => {
    expect(svmExitName(0x72)).toBe('CPUID');
    expect(svmExitName(0x404)).toBe('PAGE_NOT_VALIDATED');
    expect(svmExitName(0x40 + 14)).toBe('EXCP_PF');
    expect(svmExitName(0x40)).toBe('EXCP_DE');
    expect(svmExitName(0x5f)).toBe('EXCP_31');
    expect(svmExitName(0x13)).toBe('WRITE_CR3');
    expect(svmExitName(0x03)).toBe('READ_CR3');
    expect(svmExitName(0x27)).toBe('READ_DR7');
    expect(svmExitName(0x32)).toBe('WRITE_DR2');
    expect(svmExitName(0x93)).toBe('CR3_WRITE_TRAP');
    expect(svmExitName(0x12345)).toBe('0x12345');
  });

  it('gives every code a name that maps back to it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...Object.entries(SVM_EXIT)), ([name, code]) => {
        const shown = svmExitName(code);
        return name === 'EXCP_BASE' || name === 'EXCP_LAST'
          ? shown.startsWith('EXCP_')
          : shown === name;
      }),
    );
  });
});

describe('register name tables', () => {
  it('lists GPRs and segment registers in encoding order', () => {
    expect(GPR_NAMES.indexOf('rsp')).toBe(4);
    expect(GPR_NAMES.indexOf('rdi')).toBe(7);
    expect(GPR_NAMES.indexOf('r15')).toBe(15);
    expect(GPR_NAMES).toHaveLength(16);
    expect(SEGMENT_REGISTER_NAMES).toEqual(['es', 'cs', 'ss', 'ds', 'fs', 'gs']);
  });
});
