import { describe, expect, it } from 'vitest';
import { MSR } from '../../arch/x86.js';
import {
  Cpu,
  type CpuPlatform,
  MINIMAL_PLATFORM,
  MODE_PROT32,
  RAX,
  RBX,
  RCX,
  RDX,
  RSP,
  SEG_CS,
  SEG_DS,
  SEG_FS,
  SEG_GS,
  SEG_SS,
  SEG_TR,
} from './cpu.js';
import { disassemble } from './disasm.js';
import { Interpreter, STOP_EXCEPTION, STOP_HLT } from './interpreter.js';
import {
  CODE,
  GDT,
  hex,
  machine,
  SEL_CODE32_0,
  SEL_CODE32_3,
  SEL_CODE64,
  SEL_CODE64_3,
  SEL_DATA0,
  SEL_DATA3,
  SEL_DATA_NP,
  SEL_TSS,
  STACK,
  toUser,
} from './system.fixture.js';
import { FlatTranslator, type TranslateResult, type Translator } from './translator.js';

/** Runs until HLT or a stop; returns the stop reason. */
function run(m: ReturnType<typeof machine>, n = 100): number {
  return m.interp.run(n);
}

describe('control registers', () => {
  it('reads and writes CR0, CR2, CR3, CR4, CR8 at CPL 0', () => {
    // mov rax,cr0; mov rbx,rax; mov cr2,rcx; mov rdx,cr2; mov cr8,rcx; mov rax,cr8 -> into rsi? keep simple
    const m = machine('0f20c0 4889c3 0f22d1 0f20d2 f4');
    m.cpu.setReg64(RCX, 0xffff_8000_1234_5000n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RBX)).toBe(0x80050033n);
    expect(m.cpu.getReg64(RDX)).toBe(0xffff_8000_1234_5000n);
  });

  it('hands CR3 and CR4 writes to the translator and flushes the TLB', () => {
    const seen: bigint[][] = [];
    const flat = new FlatTranslator(0, 0x100000);
    const spy: Translator = {
      translate: (lo: number, hi: number, a: number, u: boolean, out: TranslateResult) =>
        flat.translate(lo, hi, a, u, out),
      setControl: (cr0, cr3, cr4, efer) => seen.push([cr0, cr3, cr4, efer]),
    };
    const m = machine('0f22d8 0f20e0 480d80000000 0f22e0 f4'); // mov cr3,rax; mov rax,cr4; or rax,0x80; mov cr4,rax
    m.cpu.translator = spy;
    m.cpu.setReg64(RAX, 0x5000n);
    expect(run(m)).toBe(STOP_HLT);
    expect(seen.length).toBe(2);
    expect(seen[0]![1]).toBe(0x5000n);
    expect(seen[1]![2]).toBe(0x6a0n | 0x80n);
    expect(m.cpu.cr3).toBe(0x5000n);
  });

  it('rejects reserved and inconsistent values with #GP(0)', () => {
    const cases: [string, bigint][] = [
      ['0f22e0', 1n << 13n], // CR4 bit 13 (VMXE) is reserved on AMD
      ['0f22e0', 0x6a0n & ~0x20n], // clearing PAE in long mode
      ['0f22e0', 1n << 32n],
      ['0f22c0', 1n << 32n], // CR0 high half
      ['0f22c0', 0x80000000n], // PG without PE
      ['0f22c0', 0x20000033n], // NW without CD
      ['0f22c0', 0x00050033n], // clearing PG in 64-bit mode
      ['0f22d8', 1n << 52n], // CR3 bit 52
      ['440f22c0', 0x10n], // CR8 bits 63:4
    ];
    for (const [code, v] of cases) {
      const m = machine(code);
      m.cpu.setReg64(RAX, v);
      expect(run(m), code).toBe(STOP_EXCEPTION);
      expect([m.cpu.exVector, m.cpu.exErrorCode], `${code} ${v}`).toEqual([13, 0]);
      expect(m.cpu.rip).toBe(BigInt(CODE));
    }
  });

  it('ignores CR3 bit 63 (no-flush) with CR4.PCIDE, #GP without it', () => {
    const m = machine('0f22d8 f4');
    m.cpu.cr4 |= 0x20000;
    m.cpu.setReg64(RAX, (1n << 63n) | 0x7000n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.cr3).toBe(0x7000n);
    const g = machine('0f22d8');
    g.cpu.setReg64(RAX, (1n << 63n) | 0x7000n);
    expect(run(g)).toBe(STOP_EXCEPTION);
    expect(g.cpu.exVector).toBe(13);
  });

  it('makes CR1, CR5-7, CR9-15 and DR8+ #UD; DR4/5 alias DR6/7 unless CR4.DE', () => {
    for (const code of ['0f20c8', '0f20e8', '440f20c8', '440f21c0']) {
      const m = machine(code);
      expect(run(m)).toBe(STOP_EXCEPTION);
      expect(m.cpu.exVector, code).toBe(6);
    }
    const m = machine('0f23f8 0f21e0 f4'); // mov dr7,rax; mov rax,dr4 (= dr6)
    m.cpu.setReg64(RAX, 0x401n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.dr7).toBe(0x401n);
    expect(m.cpu.getReg64(RAX)).toBe(0xffff0ff0n);
    const de = machine('0f21e0');
    de.cpu.cr4 |= 8;
    expect(run(de)).toBe(STOP_EXCEPTION);
    expect(de.cpu.exVector).toBe(6);
  });

  it('SMSW, LMSW (cannot clear PE) and CLTS', () => {
    // lmsw ax (ax = 0x000e: MP EM TS, PE clear); smsw ebx; clts; smsw ecx
    const m = machine('0f01f0 0f01e3 0f06 0f01e1 f4');
    m.cpu.setReg64(RAX, 0xen);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RBX) & 0xfn).toBe(0xfn);
    expect(m.cpu.getReg64(RCX) & 0xfn).toBe(0x7n);
  });
});

describe('descriptor-table registers', () => {
  it('LGDT/LIDT load 2+8 bytes, SGDT/SIDT store them', () => {
    // lgdt [rax]; lidt [rbx]; sgdt [rcx]; sidt [rdx]; hlt
    const m = machine('0f0110 0f011b 0f0101 0f010a f4');
    m.view.setUint16(0x5000, 0x1234, true);
    m.view.setBigUint64(0x5002, 0xffff_8000_0000_1000n, true);
    m.view.setUint16(0x5100, 0x0fff, true);
    m.view.setBigUint64(0x5102, 0x2000n, true);
    m.cpu.setReg64(RAX, 0x5000n);
    m.cpu.setReg64(RBX, 0x5100n);
    m.cpu.setReg64(RCX, 0x5200n);
    m.cpu.setReg64(RDX, 0x5300n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.gdtrBase).toBe(0xffff_8000_0000_1000n);
    expect(m.cpu.gdtrLimit).toBe(0x1234);
    expect(m.cpu.idtrBase).toBe(0x2000n);
    expect([...m.mem.subarray(0x5200, 0x520a)]).toEqual([...m.mem.subarray(0x5000, 0x500a)]);
    expect([...m.mem.subarray(0x5300, 0x530a)]).toEqual([...m.mem.subarray(0x5100, 0x510a)]);
  });

  it('LGDT with a non-canonical base is #GP(0)', () => {
    const m = machine('0f0110');
    m.view.setBigUint64(0x5002, 0x0000_8000_0000_0000n, true);
    m.cpu.setReg64(RAX, 0x5000n);
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect(m.cpu.exVector).toBe(13);
  });

  it('LTR loads the TSS and marks it busy; a busy TSS cannot be loaded again', () => {
    const m = machine('0f00d8 0f00c9 0f00d8'); // ltr ax; str ecx; ltr ax
    m.cpu.setReg64(RAX, BigInt(SEL_TSS));
    m.cpu.setSegment(SEG_TR, 0, 0n, 0, 0);
    expect(run(m, 2)).toBe(0);
    expect(m.cpu.seg[SEG_TR]!.base).toBe(0x3000n);
    expect(m.cpu.seg[SEG_TR]!.limit).toBe(0x67);
    expect(m.cpu.getReg64(RCX)).toBe(BigInt(SEL_TSS));
    expect(m.mem[GDT + SEL_TSS + 5]! & 0xf).toBe(0xb);
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect([m.cpu.exVector, m.cpu.exErrorCode]).toEqual([13, SEL_TSS]);
  });

  it('LLDT of a non-LDT descriptor is #GP(selector); null disables the LDT', () => {
    const m = machine('0f00d0');
    m.cpu.setReg64(RAX, BigInt(SEL_DATA0));
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect([m.cpu.exVector, m.cpu.exErrorCode]).toEqual([13, SEL_DATA0]);
    const n = machine('0f00d0 f4');
    expect(run(n)).toBe(STOP_HLT);
    expect(n.cpu.seg[6]!.selector).toBe(0);
  });
});

describe('segment loads', () => {
  it('MOV DS loads the hidden part and sets the accessed bit; MOV r32, DS reads it', () => {
    const m = machine('8ed8 8cd9 f4'); // mov ds,ax; mov ecx,ds
    m.mem[GDT + SEL_DATA3 + 5] = 0xf2; // accessed clear
    m.cpu.setReg64(RAX, BigInt(SEL_DATA3 | 3));
    m.cpu.setReg64(RCX, -1n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.seg[SEG_DS]!.selector).toBe(SEL_DATA3 | 3);
    expect(m.cpu.seg[SEG_DS]!.attr).toBe(0xcf3);
    expect(m.cpu.seg[SEG_DS]!.limit).toBe(0xffffffff);
    expect(m.mem[GDT + SEL_DATA3 + 5]).toBe(0xf3);
    expect(m.cpu.getReg64(RCX)).toBe(BigInt(SEL_DATA3 | 3));
  });

  it('applies the #GP/#NP/#SS rules of segment loads', () => {
    const cases: [string, number, number, number][] = [
      // code, selector, vector, error code
      ['8ed0', SEL_DATA3 | 3, 13, SEL_DATA3], // SS: RPL != CPL
      ['8ed0', SEL_DATA3, 13, SEL_DATA3], // SS: DPL != CPL
      ['8ed0', SEL_CODE64, 13, SEL_CODE64], // SS: code
      ['8ed0', SEL_DATA_NP, 12, SEL_DATA_NP], // SS not present: #SS
      ['8ed8', SEL_DATA_NP, 11, SEL_DATA_NP], // DS not present: #NP
      ['8ed8', SEL_TSS, 13, SEL_TSS], // DS: a system descriptor
      ['8ed8', 0x1f8, 13, 0x1f8], // beyond the GDT limit
      ['8ed8', 0x0c, 13, 0x0c], // LDT reference without an LDT
      ['8ec8', SEL_DATA0, 6, 0], // MOV CS is #UD
    ];
    for (const [code, sel, vec, err] of cases) {
      const m = machine(code);
      m.cpu.setReg64(RAX, BigInt(sel));
      expect(run(m), `${code} ${sel}`).toBe(STOP_EXCEPTION);
      expect([m.cpu.exVector, m.cpu.exErrorCode], `${code} ${sel}`).toEqual([vec, err]);
    }
  });

  it('allows a null SS at CPL 0 in 64-bit mode but not at CPL 3', () => {
    const m = machine('8ed0 f4');
    expect(run(m)).toBe(STOP_HLT);
    const u = machine('8ed0');
    toUser(u.cpu);
    u.cpu.setReg64(RAX, 3n);
    expect(run(u)).toBe(STOP_EXCEPTION);
    expect([u.cpu.exVector, u.cpu.exErrorCode]).toEqual([13, 0]);
  });

  it('PUSH/POP FS and GS; LFS loads offset and selector', () => {
    // push fs; pop gs; lfs ebx,[rax]; hlt
    const m = machine('0fa0 0fa9 0fb418 f4');
    m.cpu.setSegment(SEG_FS, SEL_DATA0, 0n, 0xffffffff, 0xc93);
    m.view.setUint32(0x5000, 0xdeadbeef, true);
    m.view.setUint16(0x5004, SEL_DATA0, true);
    m.cpu.setReg64(RAX, 0x5000n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.seg[SEG_GS]!.selector).toBe(SEL_DATA0);
    expect(m.cpu.getReg64(RBX)).toBe(0xdeadbeefn);
    expect(m.cpu.getReg64(RSP)).toBe(BigInt(STACK));
  });

  it('SWAPGS exchanges GS.base and KERNEL_GS_BASE; FS/GS bases reach memory operands', () => {
    // swapgs; mov rax, gs:[0x10]; hlt
    const m = machine('0f01f8 65488b042510000000 f4');
    m.cpu.kernelGsBase = 0x6000n;
    m.view.setBigUint64(0x6010, 0x1122334455667788n, true);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RAX)).toBe(0x1122334455667788n);
    expect(m.cpu.kernelGsBase).toBe(0n);
    expect(m.cpu.seg[SEG_GS]!.base).toBe(0x6000n);
  });
});

describe('MSRs', () => {
  it('holds STAR/LSTAR/CSTAR/SFMASK/FS/GS/KERNEL_GS/TSC_AUX/PAT/SYSENTER and EFER', () => {
    const held = [
      MSR.STAR,
      MSR.LSTAR,
      MSR.CSTAR,
      MSR.FS_BASE,
      MSR.GS_BASE,
      MSR.KERNEL_GS_BASE,
      MSR.SYSENTER_ESP,
      MSR.SYSENTER_EIP,
    ];
    for (const msr of held) {
      const m = machine('0f30 31c0 31d2 0f32 f4'); // wrmsr; xor eax,eax; xor edx,edx; rdmsr
      m.cpu.setReg64(RCX, BigInt(msr));
      m.cpu.setReg64(RAX, 0x12345678n);
      m.cpu.setReg64(RDX, 0xffff8000n);
      expect(run(m), msr.toString(16)).toBe(STOP_HLT);
      expect(m.cpu.getReg64(RAX)).toBe(0x12345678n);
      expect(m.cpu.getReg64(RDX)).toBe(0xffff8000n);
    }
    const m = machine('0f30 f4');
    m.cpu.setReg64(RCX, BigInt(MSR.FS_BASE));
    m.cpu.setReg64(RAX, 0x7000n);
    run(m);
    expect(m.cpu.seg[SEG_FS]!.base).toBe(0x7000n);
    expect(m.cpu.segBase[2 * SEG_FS]).toBe(0x7000);
  });

  it('rejects non-canonical bases, reserved EFER bits and bad PAT types with #GP(0)', () => {
    const cases: [number, bigint][] = [
      [MSR.LSTAR, 0x0000_8000_0000_0000n],
      [MSR.GS_BASE, 0x0001_0000_0000_0000n],
      [MSR.EFER, 0x2n],
      [MSR.EFER, 0xc01n], // clearing LME with paging on
      [MSR.PAT, 0x0007040600070402n],
      [MSR.TSC_AUX, 1n << 32n],
    ];
    for (const [msr, v] of cases) {
      const m = machine('0f30');
      m.cpu.setReg64(RCX, BigInt(msr));
      m.cpu.setReg64(RAX, v & 0xffffffffn);
      m.cpu.setReg64(RDX, v >> 32n);
      expect(run(m), msr.toString(16)).toBe(STOP_EXCEPTION);
      expect([m.cpu.exVector, m.cpu.exErrorCode]).toEqual([13, 0]);
    }
  });

  it('asks the platform for other MSRs; unknown ones are #GP(0)', () => {
    const written: [number, bigint][] = [];
    const platform: CpuPlatform = {
      ...MINIMAL_PLATFORM,
      rdmsr: (msr) => (msr === 0x1b ? 0xfee00900n : undefined),
      wrmsr: (msr, v) => {
        written.push([msr, v]);
        return msr === 0x1b;
      },
    };
    const mem = new Uint8Array(0x2000);
    mem.set(hex('0f32 0f30 f4'));
    const cpu = new Cpu(mem, new FlatTranslator(0, 0x2000), undefined, platform);
    cpu.setReg64(RCX, 0x1bn);
    const it = new Interpreter(cpu);
    expect(it.run(10)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(0xfee00900n);
    expect(written).toEqual([[0x1b, 0xfee00900n]]);
    cpu.rip = 0n;
    cpu.setReg64(RCX, 0x99n);
    expect(it.run(10)).toBe(STOP_EXCEPTION);
    expect([cpu.exVector, cpu.exErrorCode]).toEqual([13, 0]);
  });

  it('under SEV-ES: the GHCB MSR is held, others raise #VC(0x7C) before the platform is asked', () => {
    let asked = 0;
    const m = machine('0f30 0f32 f4');
    const platform: CpuPlatform = { ...MINIMAL_PLATFORM, rdmsr: () => (asked++, 1n) };
    const cpu = new Cpu(m.mem, new FlatTranslator(0, 0x100000), undefined, platform);
    cpu.sevEs = true;
    cpu.rip = BigInt(CODE);
    cpu.setReg64(RCX, BigInt(MSR.GHCB));
    cpu.setReg64(RAX, 0x5001n);
    const it = new Interpreter(cpu);
    expect(it.run(3)).toBe(STOP_HLT);
    expect(cpu.ghcbMsr).toBe(0x5001n);
    cpu.rip = BigInt(CODE + 2);
    cpu.setReg64(RCX, 0x1bn);
    expect(it.run(3)).toBe(STOP_EXCEPTION);
    expect([cpu.exVector, cpu.exErrorCode]).toEqual([29, 0x7c]);
    expect(asked).toBe(0);
    // STAR is still the CPU's own.
    cpu.rip = BigInt(CODE + 2);
    cpu.star = 0x42n;
    cpu.setReg64(RCX, BigInt(MSR.STAR));
    expect(it.run(3)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(0x42n);
  });
});

describe('privileged instructions at CPL 3', () => {
  const gp: [string, string][] = [
    ['mov rax,cr0', '0f20c0'],
    ['mov cr3,rax', '0f22d8'],
    ['mov rax,dr7', '0f21f8'],
    ['mov dr7,rax', '0f23f8'],
    ['lgdt', '0f0110'],
    ['lidt', '0f0118'],
    ['lldt', '0f00d0'],
    ['ltr', '0f00d8'],
    ['lmsw', '0f01f0'],
    ['clts', '0f06'],
    ['invlpg', '0f0138'],
    ['rdmsr', '0f32'],
    ['wrmsr', '0f30'],
    ['cli', 'fa'],
    ['sti', 'fb'],
    ['swapgs', '0f01f8'],
    ['hlt', 'f4'],
    ['sysret', '480f07'],
  ];
  for (const [name, code] of gp) {
    it(`${name} is #GP(0)`, () => {
      const m = machine(code);
      toUser(m.cpu);
      m.cpu.setReg64(RAX, 0x5000n);
      expect(run(m)).toBe(STOP_EXCEPTION);
      expect([m.cpu.exVector, m.cpu.exErrorCode]).toEqual([13, 0]);
      expect(m.cpu.rip).toBe(BigInt(CODE));
    });
  }
  it('CLAC/STAC are #UD', () => {
    for (const code of ['0f01ca', '0f01cb']) {
      const m = machine(code);
      toUser(m.cpu);
      expect(run(m)).toBe(STOP_EXCEPTION);
      expect(m.cpu.exVector).toBe(6);
    }
  });
  it('SGDT/SIDT/SMSW/STR/SLDT work at CPL 3 unless CR4.UMIP', () => {
    for (const code of ['0f0100', '0f0108', '0f01e0', '0f00c8', '0f00c0']) {
      const m = machine(code + 'cc');
      toUser(m.cpu);
      m.cpu.setReg64(RAX, 0x5000n);
      expect(run(m)).toBe(STOP_EXCEPTION);
      expect(m.cpu.exVector, code).toBe(3);
      const u = machine(code);
      toUser(u.cpu);
      u.cpu.cr4 |= 0x800;
      u.cpu.setReg64(RAX, 0x5000n);
      expect(run(u)).toBe(STOP_EXCEPTION);
      expect(u.cpu.exVector, code).toBe(13);
    }
  });
  it('CLI/STI succeed at CPL 3 when IOPL is 3', () => {
    const m = machine('fa cc');
    toUser(m.cpu);
    m.cpu.rflags = 0x3202;
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect(m.cpu.exVector).toBe(3);
    expect(m.cpu.rflags & 0x200).toBe(0);
  });
});

describe('SYSCALL / SYSRET', () => {
  it('round-trips user -> kernel -> user with the STAR selectors, RCX/R11 and SFMASK', () => {
    const m = machine('0f05 f4'); // user: syscall; (returns here) hlt at CPL3 -> #GP
    m.mem.set(hex('480f07'), 0x20000); // kernel: sysretq
    toUser(m.cpu);
    m.cpu.star = (BigInt(SEL_CODE32_0 - 16 + 0x10) << 48n) | (BigInt(SEL_CODE64) << 32n);
    // STAR[63:48] + 16 = user 64-bit CS, + 8 = user SS: base 0x18 -> CS 0x28, SS 0x20.
    m.cpu.star = (0x18n << 48n) | (BigInt(SEL_CODE64) << 32n);
    m.cpu.lstar = 0x20000n;
    m.cpu.sfmask = 0x200n;
    m.cpu.rflags = 0x246;
    expect(m.interp.run(1)).toBe(0);
    expect(m.cpu.cpl).toBe(0);
    expect(m.cpu.rip).toBe(0x20000n);
    expect(m.cpu.getReg64(RCX)).toBe(BigInt(CODE + 2));
    expect(m.cpu.getReg64(11)).toBe(0x246n);
    expect(m.cpu.rflags & 0x200).toBe(0);
    expect(m.cpu.seg[SEG_CS]!.selector).toBe(SEL_CODE64);
    expect(m.cpu.seg[SEG_SS]!.selector).toBe(SEL_CODE64 + 8);
    expect(m.interp.run(1)).toBe(0);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.rip).toBe(BigInt(CODE + 2));
    expect(m.cpu.seg[SEG_CS]!.selector).toBe(SEL_CODE64_3 | 3);
    expect(m.cpu.seg[SEG_SS]!.selector).toBe(SEL_DATA3 | 3);
    expect(m.cpu.rflags).toBe(0x246);
  });

  it('SYSCALL without EFER.SCE is #UD', () => {
    const m = machine('0f05');
    m.cpu.efer &= ~1;
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect(m.cpu.exVector).toBe(6);
  });

  it('32-bit SYSRET enters compatibility mode', () => {
    const m = machine('0f07');
    m.cpu.star = 0x18n << 48n;
    m.cpu.setReg64(RCX, 0x1234n);
    expect(run(m, 1)).toBe(0);
    expect(m.cpu.mode).toBe(MODE_PROT32);
    expect(m.cpu.seg[SEG_CS]!.selector).toBe(0x1b);
    expect(m.cpu.rip).toBe(0x1234n);
  });
});

describe('SYSENTER / SYSEXIT (legacy protected mode only, as on AMD)', () => {
  /** The fixture in legacy protected mode (EFER.LMA clear) at CPL 3, 32-bit code at CODE. */
  function legacyUser(code: string): ReturnType<typeof machine> {
    const m = machine(code);
    const c = m.cpu;
    c.cr0 = 0x11;
    c.cr4 = 0;
    c.efer = 0;
    c.controlChanged();
    c.setCpl(3);
    c.setSegment(SEG_CS, SEL_CODE32_3 | 3, 0n, 0xffffffff, 0xcfb);
    c.setSegment(SEG_SS, SEL_DATA3 | 3, 0n, 0xffffffff, 0xcf3);
    c.sysenterCs = BigInt(SEL_CODE32_0);
    c.sysenterEip = 0x20000n;
    c.sysenterEsp = 0x7000n;
    c.rflags = 0x202;
    expect(c.mode).toBe(MODE_PROT32);
    return m;
  }

  it('SYSENTER enters CPL 0 at SYSENTER_EIP/ESP with flat CS/SS; SYSEXIT returns to EDX/ECX', () => {
    const m = legacyUser('0f34');
    m.mem.set(hex('0f35'), 0x20000);
    const c = m.cpu;
    c.setReg64(RDX, 0x11000n);
    c.setReg64(RCX, 0x6000n);
    expect(run(m, 1)).toBe(0);
    expect([c.cpl, c.rip, c.getReg64(RSP), c.rflags & 0x200]).toEqual([0, 0x20000n, 0x7000n, 0]);
    expect([c.seg[SEG_CS]!.selector, c.seg[SEG_CS]!.attr]).toEqual([SEL_CODE32_0, 0xc9b]);
    expect([c.seg[SEG_SS]!.selector, c.seg[SEG_SS]!.attr]).toEqual([SEL_CODE32_0 + 8, 0xc93]);
    expect(run(m, 1)).toBe(0);
    expect([c.cpl, c.rip, c.getReg64(RSP), c.mode]).toEqual([3, 0x11000n, 0x6000n, MODE_PROT32]);
    expect(c.seg[SEG_CS]!.selector).toBe((SEL_CODE32_0 + 16) | 3);
    expect(c.seg[SEG_SS]!.selector).toBe((SEL_CODE32_0 + 24) | 3);
    expect(c.seg[SEG_CS]!.attr & 0x60).toBe(0x60); // DPL 3
  });

  it('a null SYSENTER_CS is #GP(0); SYSEXIT at CPL 3 is #GP(0)', () => {
    const m = legacyUser('0f34');
    m.cpu.sysenterCs = 3n; // RPL bits only: the selector is null
    expect(run(m, 1)).toBe(STOP_EXCEPTION);
    expect([m.cpu.exVector, m.cpu.exErrorCode]).toEqual([13, 0]);
    const x = legacyUser('0f35');
    expect(run(x, 1)).toBe(STOP_EXCEPTION);
    expect([x.cpu.exVector, x.cpu.cpl]).toEqual([13, 3]);
  });

  it('both are #UD in long mode, 64-bit and compatibility', () => {
    for (const code of ['0f34', '0f35']) {
      const m = machine(code);
      m.cpu.sysenterCs = BigInt(SEL_CODE32_0);
      expect(run(m, 1)).toBe(STOP_EXCEPTION);
      expect(m.cpu.exVector).toBe(6);
      const compat = machine(code);
      compat.cpu.sysenterCs = BigInt(SEL_CODE32_0);
      compat.cpu.setSegment(SEG_CS, SEL_CODE32_0, 0n, 0xffffffff, 0xc9b);
      expect(compat.cpu.mode).toBe(MODE_PROT32);
      expect(run(compat, 1)).toBe(STOP_EXCEPTION);
      expect(compat.cpu.exVector).toBe(6);
    }
  });

  it('SYSENTER keeps TF: the single-step trap comes at CPL 0 before the first kernel instruction', () => {
    const m = legacyUser('0f34');
    m.cpu.rflags = 0x302;
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect([m.cpu.exVector, m.cpu.cpl, m.cpu.rip]).toEqual([1, 0, 0x20000n]);
  });
});

describe('far transfers', () => {
  it('JMP FAR m16:32 to 64-bit code at the same CPL; RETF and LRETQ', () => {
    // jmp far [rax] -> 0x11000; there: push 0x08; push 0x12000; lretq -> 0x12000: hlt
    const m = machine('ff28');
    m.view.setUint32(0x5000, 0x11000, true);
    m.view.setUint16(0x5004, SEL_CODE64, true);
    m.mem.set(hex('6a08 6800200100 48cb'), 0x11000);
    m.mem[0x12000] = 0xf4;
    m.cpu.setReg64(RAX, 0x5000n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(0x12001n);
    expect(m.cpu.getReg64(RSP)).toBe(BigInt(STACK));
  });

  it('CALL FAR pushes CS and RIP; a non-code target is #GP(selector) with nothing pushed', () => {
    const m = machine('48ff18 f4'); // call far [rax] (m16:64) -> 0x11000: hlt
    m.view.setBigUint64(0x5000, 0x11000n, true);
    m.view.setUint16(0x5008, SEL_CODE64, true);
    m.mem[0x11000] = 0xf4;
    m.cpu.setReg64(RAX, 0x5000n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.view.getBigUint64(STACK - 8, true)).toBe(BigInt(SEL_CODE64));
    expect(m.view.getBigUint64(STACK - 16, true)).toBe(BigInt(CODE + 3));
    const bad = machine('ff18');
    bad.view.setUint16(0x5004, SEL_DATA0, true);
    bad.cpu.setReg64(RAX, 0x5000n);
    expect(run(bad)).toBe(STOP_EXCEPTION);
    expect([bad.cpu.exVector, bad.cpu.exErrorCode]).toEqual([13, SEL_DATA0]);
    expect(bad.cpu.getReg64(RSP)).toBe(BigInt(STACK));
  });

  it('JMP FAR to a ring-3 code segment from ring 0 is #GP(selector)', () => {
    const m = machine('ff28');
    m.view.setUint16(0x5004, SEL_CODE64_3 | 3, true);
    m.cpu.setReg64(RAX, 0x5000n);
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect([m.cpu.exVector, m.cpu.exErrorCode]).toEqual([13, SEL_CODE64_3]);
  });

  it('LRETQ to ring 3 pops RSP and SS; data segments above the new CPL become null', () => {
    const m = machine('48cb');
    const frame = [0x30000n, BigInt(SEL_CODE64_3 | 3), 0x40000n, BigInt(SEL_DATA3 | 3)];
    frame.forEach((v, k) => m.view.setBigUint64(STACK + 8 * k, v, true));
    m.mem[0x30000] = 0xcc;
    expect(run(m, 1)).toBe(0);
    expect(m.cpu.cpl).toBe(3);
    expect(m.cpu.rip).toBe(0x30000n);
    expect(m.cpu.getReg64(RSP)).toBe(0x40000n);
    expect(m.cpu.seg[SEG_SS]!.selector).toBe(SEL_DATA3 | 3);
    expect(m.cpu.seg[SEG_DS]!.selector).toBe(0); // DPL 0 data is not usable at CPL 3
  });

  it('JMP ptr16:32 (EA) is #UD in 64-bit mode', () => {
    const m = machine('ea000000000800');
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect(m.cpu.exVector).toBe(6);
  });

  it('RDPID reads TSC_AUX', () => {
    const m = machine('f30fc7f8 f4');
    m.cpu.tscAux = 7n;
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RAX)).toBe(7n);
  });
});

describe('FSGSBASE', () => {
  it('WRGSBASE/RDFSBASE with CR4.FSGSBASE; #UD without it; non-canonical is #GP(0)', () => {
    // wrgsbase rax; rdgsbase rbx; rdfsbase ecx; hlt
    const m = machine('f3480faed8 f3480faecb f30faec1 f4');
    m.cpu.cr4 |= 0x10000;
    m.cpu.setReg64(RAX, 0xffff_8000_0000_5000n);
    m.cpu.setSegmentBase(SEG_FS, 0x1_2345_6789n);
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.seg[SEG_GS]!.base).toBe(0xffff_8000_0000_5000n);
    expect(m.cpu.getReg64(RBX)).toBe(0xffff_8000_0000_5000n);
    expect(m.cpu.getReg64(RCX)).toBe(0x2345_6789n);
    const u = machine('f3480faed8');
    expect(run(u)).toBe(STOP_EXCEPTION);
    expect(u.cpu.exVector).toBe(6);
    const g = machine('f3480faed8');
    g.cpu.cr4 |= 0x10000;
    g.cpu.setReg64(RAX, 0x0000_8000_0000_0000n);
    expect(run(g)).toBe(STOP_EXCEPTION);
    expect([g.cpu.exVector, g.cpu.exErrorCode]).toEqual([13, 0]);
  });

  it('RDTSCP returns TSC_AUX in ECX', () => {
    const m = machine('0f01f9 f4');
    m.cpu.tscAux = 5n;
    expect(run(m)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RCX)).toBe(5n);
  });

  it('without deliverFaults, INT n stops after the instruction with exKind TRAP_SOFTWARE', () => {
    const m = machine('cd21');
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect([m.cpu.exVector, m.cpu.exKind]).toEqual([0x21, 1]);
    expect(m.cpu.rip).toBe(BigInt(CODE + 2));
  });
});

describe('VERR/VERW/LAR/LSL', () => {
  /** Runs `insn` with AX = selector, then SETZ CL; returns [ZF, RBX]. */
  function probe(insn: string, sel: number, user = false): [number, bigint] {
    const m = machine(insn + '0f94c1 cc');
    if (user) toUser(m.cpu);
    m.cpu.setReg64(RAX, BigInt(sel));
    m.cpu.setReg64(RBX, 0x77n);
    expect(run(m)).toBe(STOP_EXCEPTION);
    expect(m.cpu.exVector).toBe(3);
    return [Number(m.cpu.getReg64(RCX) & 1n), m.cpu.getReg64(RBX)];
  }

  it('VERR/VERW by type and privilege', () => {
    expect(probe('0f00e8', SEL_DATA0)[0]).toBe(1); // verw: writable data
    expect(probe('0f00e0', SEL_CODE64)[0]).toBe(1); // verr: readable code
    expect(probe('0f00e8', SEL_CODE64)[0]).toBe(0); // verw: code
    expect(probe('0f00e0', SEL_DATA0, true)[0]).toBe(0); // DPL 0 data from CPL 3
    expect(probe('0f00e0', SEL_DATA3 | 3, true)[0]).toBe(1);
    expect(probe('0f00e0', 0)[0]).toBe(0);
    expect(probe('0f00e0', 0x1f8)[0]).toBe(0); // beyond the GDT limit: ZF = 0, no fault
  });

  it('LSL gives the byte limit, LAR the access rights; invalid selectors leave the register', () => {
    expect(probe('0f03d8', SEL_DATA0)).toEqual([1, 0xffffffffn]);
    expect(probe('0f02d8', SEL_DATA0)).toEqual([1, 0x00c09300n]);
    expect(probe('0f03d8', SEL_TSS)).toEqual([1, 0x67n]);
    expect(probe('0f03d8', 0)).toEqual([0, 0x77n]);
  });
});

describe('disassembly of system instructions', () => {
  it('names them', () => {
    const text = disassemble(
      hex(
        '0f20d8 0f22e0 0f01f8 0f05 480f07 8ed8 8cc8 cd80 48cf 0f0110 0f00d8 0f01ca f30fc7f8 ff28',
      ),
    ).map((l) => l.text);
    expect(text).toEqual([
      'mov rax, cr3',
      'mov cr4, rax',
      'swapgs',
      'syscall',
      'sysret',
      'mov ds, ax',
      'mov eax, cs',
      'int 0x80',
      'iret',
      'lgdt [rax]',
      'ltr ax',
      'clac',
      'rdpid rax',
      'jmpf [rax]',
    ]);
  });
});

void SEL_DATA_NP;
void MODE_PROT32;
