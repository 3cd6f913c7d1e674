import { describe, expect, it } from 'vitest';
import { DECODE_MORE, DECODE_TOO_LONG, DECODE_UD, decode, decodeOne } from './decoder.js';
import { disassemble } from './disasm.js';
import { Insn, NO_REG, RIP_BASE } from './insn.js';
import * as H from './ops.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/ /g, ''), 'hex'));

function text(s: string, at = 0n): string {
  const lines = disassemble(hex(s), at);
  expect(lines).toHaveLength(1);
  return lines[0]!.text;
}

describe('decoder and disassembler', () => {
  // Known answers from GNU objdump -M intel (binutils 2.40) on the same bytes.
  it.each([
    ['48c7c001000000', 'mov rax, 0x1'],
    ['4801c8', 'add rax, rcx'],
    ['486bc003', 'imul rax, rax, 0x3'],
    ['ffc9', 'dec ecx'],
    ['48894424f8', 'mov qword ptr [rsp-0x8], rax'],
    ['0fb65c24f8', 'movzx ebx, byte ptr [rsp-0x8]'],
    ['f3a4', 'rep movsb'],
    ['f04c0fb14cb710', 'lock cmpxchg qword ptr [rdi+rsi*4+0x10], r9'],
    ['49d3e2', 'shl r10, cl'],
    ['440fbdd8', 'bsr r11d, eax'],
    ['f34d0fbce5', 'tzcnt r12, r13'],
    ['66f30fb8c3', 'popcnt ax, bx'],
    ['f30f1efa', 'endbr64'],
    ['6a12', 'push 0x12'],
    ['c3', 'ret'],
    ['0f94c0', 'sete al'],
    ['4d0f45c1', 'cmovne r8, r9'],
    ['4990', 'xchg r8, rax'],
    ['88dc', 'mov ah, bl'],
    ['4088dc', 'mov spl, bl'],
    ['f4', 'hlt'],
    ['48b88877665544332211', 'mov rax, 0x1122334455667788'],
    ['64488b042528000000', 'mov rax, qword ptr fs:[0x28]'],
    ['0fa2', 'cpuid'],
    ['0f31', 'rdtsc'],
    ['0f01f9', 'rdtscp'],
    ['4898', 'cdqe'],
    ['4899', 'cqo'],
    ['f348ab', 'rep stosq'],
    ['f2ae', 'repne scasb'],
  ])('%s is %s', (bytes, expected) => {
    expect(text(bytes)).toBe(expected);
  });

  it('resolves RIP-relative operands and branch targets against the address', () => {
    expect(text('488d1500010000', 0x17n)).toBe('lea rdx, [rip+0x100]    # 0x11e');
    // The target goes after the whole instruction, also when the memory operand comes first.
    expect(text('48890daa1d0000', 0x10029fn)).toBe('mov qword ptr [rip+0x1daa], rcx    # 0x102050');
    expect(text('75f5', 0x15n)).toBe('jne 0xc');
    expect(text('e8bfffffff', 0x48n)).toBe('call 0xc');
    const i = decodeOne(hex('488b05f0ffffff'));
    expect(i).toBeInstanceOf(Insn);
    expect((i as Insn).base).toBe(RIP_BASE);
    expect((i as Insn).disp).toBe(-16);
  });

  it('decodes ModRM/SIB corner cases: no base with disp32, RBP/R13 bases need a displacement', () => {
    const noBase = decodeOne(hex('8b04250000ff00')) as Insn; // mov eax, [0xff0000]
    expect(noBase.base).toBe(NO_REG);
    expect(noBase.index).toBe(NO_REG);
    expect(noBase.disp).toBe(0xff0000);
    const r13 = decodeOne(hex('418b4500')) as Insn; // mov eax, [r13+0]
    expect(r13.base).toBe(13);
    expect(r13.len).toBe(4);
    const idx = decodeOne(hex('4a8b04a5f0ffffff')) as Insn; // mov rax, [r12*4-0x10]
    expect(idx.base).toBe(NO_REG);
    expect(idx.index).toBe(12);
    expect(idx.scale).toBe(2);
  });

  it('ignores a REX prefix that is followed by a legacy prefix', () => {
    const i = decodeOne(hex('486689c8')) as Insn; // REX.W then 66: mov ax, cx
    expect(i.osz).toBe(2);
  });

  it('decodes UD2 to the #UD handler and rejects unassigned opcodes', () => {
    expect((decodeOne(hex('0f0b')) as Insn).op).toBe(H.H_UD);
    expect(text('0f0b')).toBe('ud2');
    expect(decodeOne(hex('0f04'))).toBe(DECODE_UD);
    expect(decodeOne(hex('8f c8'.replace(' ', '')))).toBe(DECODE_UD); // 8F /1 is XOP, not POP
  });

  it('reports #UD for LOCK without a memory destination, and for LEA with a register operand', () => {
    expect(decodeOne(hex('f04801c0'))).toBe(DECODE_UD);
    expect(decodeOne(hex('488dc0'))).toBe(DECODE_UD);
    expect(decodeOne(hex('f0483b00'))).toBe(DECODE_UD); // lock cmp
  });

  it('asks for more bytes at the limit and refuses more than 15 bytes', () => {
    const insn = new Insn();
    expect(decode(hex('48b888776655'), 0, 6, insn)).toBe(DECODE_MORE);
    expect(decode(hex('66'.repeat(14) + '90'), 0, 15, insn)).toBe(15);
    expect(decode(hex('66'.repeat(15) + '90'), 0, 16, insn)).toBe(DECODE_TOO_LONG);
  });

  it('maps group opcodes through ModRM.reg', () => {
    const i = decodeOne(hex('48c1e804')) as Insn; // shr rax, 4
    expect(i.op).toBe(H.H_SHIFT_I);
    expect(i.sub).toBe(5);
    expect(i.imm).toBe(4);
  });
});
