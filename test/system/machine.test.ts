import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MAILBOX, RUNNER_STACK_TOP, BareMachine } from '../../src/hw/bare-machine.js';
import { makeElf } from '../support/make-elf.js';

const ENTRY = 0x100000;
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const program = (code: string): Uint8Array =>
  makeElf(ENTRY, [{ paddr: ENTRY, data: hex(code), memsz: 0x1000, flags: 5 }]);

describe('bare machine', () => {
  it('uses the mailbox layout programs/sys.h declares', () => {
    const sysH = readFileSync(new URL('./programs/sys.h', import.meta.url), 'utf8');
    const define = (name: string): string => new RegExp(`#define ${name} (.*)`).exec(sysH)![1]!;
    expect(Number(define('MAILBOX_ADDR'))).toBe(MAILBOX.len);
    expect(define('MAILBOX_EXIT')).toBe('(MAILBOX_ADDR + 4)');
    expect(define('MAILBOX_BUF')).toBe('(MAILBOX_ADDR + 0x10)');
    expect(MAILBOX.exit).toBe(MAILBOX.len + 4);
    expect(MAILBOX.buf).toBe(MAILBOX.len + 0x10);
    expect(Number(define('MAILBOX_CAP'))).toBe(MAILBOX.cap);
    expect(MAILBOX.buf + MAILBOX.cap).toBe(0x10000);
  });

  it('collects the mailbox bytes the program stored, and its exit code', () => {
    // mov dword [0x8010], 'ok!\n'; mov dword [0x8000], 4; mov dword [0x8004], 7; hlt
    const m = BareMachine.longMode(
      program('c7042510800000 6f6b210a c7042500800000 04000000 c7042504800000 07000000 f4'),
      'flat',
    );
    expect(m.run(100)).toMatchObject({
      stop: 'hlt',
      instructions: 4,
      output: 'ok!\n',
      exitCode: 7,
    });
  });

  it('collects bytes written to port 0xE9, after the mailbox, and ignores other ports', () => {
    // mov dword [0x8010], 'mb'; mov dword [0x8000], 2; mov al, 'p'; out 0xe9, al; out 0x80, al;
    // mov dx, 0xe9; mov al, '!'; out dx, al; mov ax, 0x4141; out dx, ax; hlt
    const m = BareMachine.longMode(
      program(
        'c7042510800000 6d620000 c7042500800000 02000000 b070 e6e9 e680 66bae900 b021 ee 66b84141 66ef f4',
      ),
      'flat',
    );
    const r = m.run(100);
    expect(r.stop).toBe('hlt');
    // A 16-bit write to the debug port is not a character.
    expect(r.output).toBe('mbp!');
  });

  it('never reads past the mailbox, whatever length the program claims', () => {
    // mov dword [0x8000], 0xffffffff; hlt
    const m = BareMachine.longMode(program('c7042500800000 ffffffff f4'), 'paging');
    const r = m.run(100);
    expect(r.stop).toBe('hlt');
    expect(r.output.length).toBe(MAILBOX.cap);
    expect(r.exitCode).toBeNull();
  });

  it('stops a program that never halts at the budget', () => {
    const m = BareMachine.longMode(program('ebfe'), 'flat'); // jmp $
    expect(m.run(1000)).toMatchObject({ stop: 'budget', instructions: 1000, exception: null });
  });

  it('reports an exception with its vector, error code and RIP', () => {
    // push rax; ud2 (the push shows RSP starts at RUNNER_STACK_TOP)
    const m = BareMachine.longMode(program('50 0f0b'), 'paging');
    const r = m.run(100);
    expect(r).toMatchObject({
      stop: 'exception',
      exception: { vector: 6, rip: BigInt(ENTRY + 1) },
    });
    expect(m.cpu.getReg64(4)).toBe(BigInt(RUNNER_STACK_TOP - 8));
  });

  it('reports a triple fault as a shutdown when events are delivered', () => {
    // The IDT (base 0) holds zeros: #UD finds no present gate (#NP), nor does #NP, nor #DF.
    const m = BareMachine.longMode(program('0f0b'), 'flat', { deliverEvents: true });
    expect(m.run(100)).toMatchObject({ stop: 'shutdown', exception: null });
  });
});
