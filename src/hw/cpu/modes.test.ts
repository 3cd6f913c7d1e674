import { describe, expect, it } from 'vitest';
import {
  MODE_64,
  MODE_PROT16,
  MODE_PROT32,
  MODE_REAL,
  RAX,
  RBX,
  RSP,
  SEG_CS,
  SEG_DS,
  SEG_ES,
  SEG_FS,
  SEG_GS,
  SEG_SS,
} from './cpu.js';
import { decode } from './decoder.js';
import { Insn, NO_REG } from './insn.js';
import { STOP_HLT } from './interpreter.js';
import {
  CODE,
  hex,
  machine,
  SEL_CODE32_0,
  SEL_CODE64,
  SEL_DATA0,
  STACK,
} from './system.fixture.js';

/** Puts the fixture's CPU into real mode as an SEV-ES AP VMSA does (linux-snp-guest.md 3.4). */
function realMode(m: ReturnType<typeof machine>, cs: number, ip: number): void {
  const c = m.cpu;
  c.cr0 = 0x60000010;
  c.cr4 = 0;
  c.efer = 0x1000;
  c.setSegment(SEG_CS, cs, BigInt(cs << 4), 0xffff, 0x9a);
  for (const s of [SEG_DS, SEG_ES, SEG_FS, SEG_GS, SEG_SS]) c.setSegment(s, 0, 0n, 0xffff, 0x92);
  c.gdtrBase = 0n;
  c.gdtrLimit = 0xffff;
  c.idtrBase = 0n;
  c.idtrLimit = 0xffff;
  c.controlChanged();
  c.rip = BigInt(ip);
}

describe('decoding 16/32-bit code', () => {
  function dec(bytes: string, mode: number): Insn {
    const i = new Insn();
    const n = decode(hex(bytes), 0, 15, i, mode);
    expect(n).toBeGreaterThan(0);
    return i;
  }

  it('16-bit ModRM: [bx+si+disp8], [bp+di] defaults to SS, [disp16]', () => {
    const a = dec('894004', MODE_REAL); // mov [bx+si+4], ax
    expect([a.base, a.index, a.disp, a.asz, a.osz, a.seg]).toEqual([3, 6, 4, 2, 2, 3]);
    const b = dec('8b03', MODE_REAL); // mov ax, [bp+di]
    expect([b.base, b.index, b.seg]).toEqual([5, 7, 2]);
    const d = dec('8b1e3412', MODE_REAL); // mov bx, [0x1234]
    expect([d.base, d.index, d.disp, d.len]).toEqual([NO_REG, NO_REG, 0x1234, 4]);
    const e = dec('268b4602', MODE_PROT16); // mov ax, es:[bp+2]
    expect([e.base, e.seg, e.disp]).toEqual([5, 0, 2]);
  });

  it('operand and address-size prefixes toggle both ways', () => {
    expect(dec('66b878563412', MODE_REAL).osz).toBe(4);
    expect(dec('66b83412', MODE_PROT32).osz).toBe(2);
    const a = dec('67668b4302', MODE_REAL); // mov eax, [ebx+2]
    expect([a.asz, a.osz, a.base, a.disp]).toEqual([4, 4, 3, 2]);
    const b = dec('678b4702', MODE_PROT32); // mov eax, [bx+2]
    expect([b.asz, b.base]).toEqual([2, 3]);
  });

  it('40-4F are INC/DEC, not REX; rm=5 mod=0 is disp32, not RIP-relative', () => {
    const a = dec('41', MODE_PROT32);
    expect([a.def!.mn, a.rm, a.len]).toEqual(['inc', 1, 1]);
    const b = dec('4f', MODE_PROT32);
    expect([b.def!.mn, b.rm]).toEqual(['dec', 7]);
    const c = dec('8b0578563412', MODE_PROT32);
    expect([c.base, c.disp, c.seg]).toEqual([NO_REG, 0x12345678, 3]);
    const s = dec('8b4424fc', MODE_PROT32); // mov eax, [esp-4]: SS
    expect(s.seg).toBe(2);
  });

  it('near branches read rel16 in 16-bit code', () => {
    const j = dec('e9fdff', MODE_REAL);
    expect([j.len, j.imm]).toEqual([3, -3]);
  });
});

describe('real mode', () => {
  it('addresses memory through DS and the stack through SS, CALL/RET with 16-bit IP', () => {
    // mov ax,0x1234; mov bx,0x100; mov si,2; mov [bx+si+4],ax; call +1; hlt; ret
    const m = machine('');
    m.mem.set(hex('b83412 bb0001 be0200 894004 e80100 f4 c3'), 0x9000);
    realMode(m, 0x900, 0);
    const c = m.cpu;
    expect(c.mode).toBe(MODE_REAL);
    c.setSegment(SEG_DS, 0x300, 0x3000n, 0xffff, 0x92);
    c.setSegment(SEG_SS, 0x200, 0x2000n, 0xffff, 0x92);
    c.setReg64(RSP, 0x100n);
    expect(m.interp.run(20)).toBe(STOP_HLT);
    expect(m.view.getUint16(0x3106, true)).toBe(0x1234);
    expect(m.view.getUint16(0x20fe, true)).toBe(0xf); // return IP pushed at SS:0xFE
    expect(c.getReg64(RSP)).toBe(0x100n);
    expect(c.rip).toBe(0x10n);
  });
});

describe('IRET in real mode', () => {
  it('IRETD takes the flags of 257FD5H from the stack and keeps VIF, VIP and VM', () => {
    // iretd (66 cf) at 0900:0000; the frame: EIP 0x10, CS 0x900, EFLAGS with every bit set
    const m = machine('');
    m.mem.set(hex('66cf'), 0x9000);
    m.mem.set(hex('f4'), 0x9010);
    realMode(m, 0x900, 0);
    const c = m.cpu;
    c.setSegment(SEG_SS, 0x200, 0x2000n, 0xffff, 0x92);
    c.setReg64(RSP, 0x100n);
    m.view.setUint32(0x2100, 0x10, true);
    m.view.setUint32(0x2104, 0x900, true);
    m.view.setUint32(0x2108, 0xffff_fefe, true); // all set but TF (no trap) and CF
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(c.rip).toBe(0x11n);
    expect(c.rflags & 0x1a0000).toBe(0); // VIF, VIP, VM as before
    // (RF, loaded too, is cleared again once the HLT after it completes.)
    expect(c.rflags & 0x247fd5).toBe(0x247fd5 & 0xffff_fefe);
  });
});

describe('string instructions in 16-bit code', () => {
  it('REP MOVSB copies DS:SI to ES:DI with 16-bit indexes; REPNE SCASB finds a byte in ES', () => {
    // rep movsb; mov al, 0x33; mov di, 0xfffe; mov cx, 8; repne scasb; hlt
    const m = machine('');
    m.mem.set(hex('f3a4 b033 bffeff b90800 f2ae f4'), 0x9000);
    realMode(m, 0x900, 0);
    const c = m.cpu;
    c.setSegment(SEG_DS, 0x300, 0x3000n, 0xffff, 0x92);
    c.setSegment(SEG_ES, 0x400, 0x4000n, 0xffff, 0x92);
    m.mem.set([0x11, 0x22, 0x33, 0x44], 0x3010);
    m.mem[0x4002] = 0x33; // the byte REPNE SCASB finds after DI wraps from FFFE
    c.setReg64(6, 0xffff_0010n); // SI: only the low word counts
    c.setReg64(7, 0x20n); // DI
    c.setReg64(1, 4n); // CX
    expect(m.interp.run(20)).toBe(STOP_HLT);
    expect([...m.mem.subarray(0x4020, 0x4024)]).toEqual([0x11, 0x22, 0x33, 0x44]);
    expect(c.getReg64(6)).toBe(0xffff_0014n);
    // DI wrapped: FFFE, FFFF, 0000, 0001, 0002 -> stops after 0002.
    expect(c.getReg64(7) & 0xffffn).toBe(3n);
    expect(c.getReg64(1) & 0xffffn).toBe(8n - 5n);
  });
});

describe('the SEV-ES AP trampoline path: real -> protected -> long mode', () => {
  it('runs the mode switches of realmode/rm/trampoline_64.S', () => {
    const m = machine('');
    // Real mode at 0900:0000 (linear 0x9000).
    m.mem.set(
      hex(
        [
          'fa', // cli
          'ea06000009', // ljmpw 0x0900:0x0006
          '8cc8', // mov ax, cs
          '8ed8', // mov ds, ax
          '8ec0', // mov es, ax
          '8ed0', // mov ss, ax
          '66bc000f0000', // mov esp, 0xf00
          '660f011e0008', // lidtl [0x800]
          '660f01161008', // lgdtl [0x810]
          'ba1000', // mov dx, 0x10
          '66b811000000', // mov eax, 0x11
          '0f22c0', // mov cr0, eax
          '66ea00a000004000', // ljmpl 0x40:0xa000
        ].join(''),
      ),
      0x9000,
    );
    m.view.setUint16(0x9800, 0, true); // IDT: limit 0, base 0
    m.view.setUint32(0x9802, 0, true);
    m.view.setUint16(0x9810, 0x4f, true); // GDT at 0x1000
    m.view.setUint32(0x9812, 0x1000, true);
    // 32-bit protected mode at 0xa000.
    m.mem.set(
      hex(
        [
          '8ed2', // mov ss, edx
          '8eda', // mov ds, edx
          '8ec2', // mov es, edx
          'b820000000', // mov eax, 0x20 (PAE)
          '0f22e0', // mov cr4, eax
          'b800000000', // mov eax, 0
          '0f22d8', // mov cr3, eax
          'b9800000c0', // mov ecx, 0xc0000080 (EFER)
          '0f32', // rdmsr
          '0d00010000', // or eax, 0x100 (LME)
          '0f30', // wrmsr
          'b811000080', // mov eax, 0x80000011
          '0f22c0', // mov cr0, eax
          'ea00b000000800', // ljmp 0x08:0xb000
        ].join(''),
      ),
      0xa000,
    );
    m.mem.set(hex('48c7c02a000000 f4'), 0xb000); // mov rax, 42; hlt
    realMode(m, 0x900, 0);
    const c = m.cpu;
    expect(m.interp.run(12)).toBe(0);
    expect(c.mode).toBe(MODE_PROT16); // PE set, CS still the real-mode one
    expect(c.gdtrBase).toBe(0x1000n);
    expect(c.gdtrLimit).toBe(0x4f);
    expect(m.interp.run(1)).toBe(0);
    expect(c.mode).toBe(MODE_PROT32);
    expect(c.seg[SEG_CS]!.selector).toBe(SEL_CODE32_0);
    expect(c.rip).toBe(0xa000n);
    expect(m.interp.run(13)).toBe(0);
    expect(c.efer & 0x500).toBe(0x500); // LME and LMA
    expect(c.mode).toBe(MODE_PROT32); // compatibility mode
    expect(c.seg[SEG_SS]!.selector).toBe(SEL_DATA0);
    expect(m.interp.run(10)).toBe(STOP_HLT);
    expect(c.mode).toBe(MODE_64);
    expect(c.getReg64(RAX)).toBe(42n);
    expect(c.seg[SEG_CS]!.selector).toBe(SEL_CODE64);
    expect(c.attention).toBe(0); // back on the fast path
  });
});

describe('compatibility mode', () => {
  it('INT n in compat code goes to a 64-bit handler; IRETQ returns to compat mode', () => {
    // 64-bit: jmp far [rip+0] -> 0x40:0x11000 (32-bit code)
    const m = machine('ff2d00000000 0010010040 00');
    m.cpu.deliverFaults = true;
    m.mem.set(hex('cd80 43 f4'), 0x11000); // int 0x80; inc ebx; hlt
    m.mem.set(hex('48cf'), 0x8000 + 16 * 0x80); // the handler: iretq
    m.cpu.setReg64(RSP, 0x7ff0n);
    expect(m.interp.run(1)).toBe(0);
    expect(m.cpu.mode).toBe(MODE_PROT32);
    expect(m.interp.run(1)).toBe(0); // INT delivered
    expect(m.cpu.mode).toBe(MODE_64);
    expect(m.cpu.rip).toBe(BigInt(0x8000 + 16 * 0x80));
    const sp = Number(m.cpu.getReg64(RSP));
    expect(m.view.getBigUint64(sp, true)).toBe(0x11002n); // RIP
    expect(m.view.getBigUint64(sp + 8, true)).toBe(BigInt(SEL_CODE32_0)); // CS
    expect(m.interp.run(10)).toBe(STOP_HLT);
    expect(m.cpu.mode).toBe(MODE_PROT32);
    expect(m.cpu.getReg64(RBX)).toBe(1n);
    expect(m.cpu.getReg64(RSP)).toBe(0x7ff0n);
  });

  it('far-jumps from 64-bit to 32-bit code and back; INC r32, PUSH/POP on ESP', () => {
    // 64-bit: jmp far [rip+0] -> m16:32 = 0x40:0x11000
    const m = machine('ff2d00000000 0010010040 00');
    // compat: inc eax; push eax; pop ebx; ljmp 0x08:0x12000
    m.mem.set(hex('40 50 5b ea00200100 0800'), 0x11000);
    m.mem[0x12000] = 0xf4;
    m.cpu.setReg64(RAX, 0xffff_ffff_0000_0009n);
    expect(m.interp.run(1)).toBe(0);
    expect(m.cpu.mode).toBe(MODE_PROT32);
    expect(m.cpu.rip).toBe(0x11000n);
    expect(m.interp.run(10)).toBe(STOP_HLT);
    expect(m.cpu.mode).toBe(MODE_64);
    expect(m.cpu.getReg64(RBX)).toBe(10n);
    expect(m.cpu.getReg64(RSP)).toBe(BigInt(STACK));
    expect(m.view.getUint32(STACK - 4, true)).toBe(10);
    void CODE;
  });
});
