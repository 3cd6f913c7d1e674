// The 64-bit system programs (programs/*.S) on the interpreter: IDT delivery of #PF with a handler
// that maps pages, software interrupts and faults through interrupt and trap gates, and
// SYSCALL/SYSRET to ring 3 and back. Each installs its own GDT, IDT and page tables (kernel64.S),
// prints what it observed, and the expected text follows from the architecture (APM vol. 2 and 3),
// as the comments say.
import { describe, expect, it } from 'vitest';
import { buildProgram } from './build.js';
import { BareMachine } from '../../src/hw/bare-machine.js';

const BUDGET = 1_000_000;

function runLong(name: 'pf' | 'interrupts' | 'syscall') {
  const m = BareMachine.longMode(buildProgram(name), 'paging', { deliverEvents: true });
  return { m, r: m.run(BUDGET) };
}

describe('system programs', () => {
  it('delivers #PF through the IDT; the handler maps the page and IRETQ restarts the access', () => {
    const { r } = runLong('pf');
    expect(r.stop).toBe('hlt');
    expect(r.output).toBe(
      '#PF test\n' +
        // A store to a not-present page: error code W (2); CR2 the address; RIP the store.
        '#PF cr2=0000000040001238 err=0000000000000002 rip ok\n' +
        // A load from another not-present page: error code 0 (read, supervisor, not present).
        '#PF cr2=0000000040003000 err=0000000000000000 rip ok\n' +
        // The restarted store landed; the second page is the fresh zeroed frame; the load from the
        // first page after it was mapped did not fault.
        'read back 1122334455667788 and 0000000000000000, faults 0002\n',
    );
  });

  it('takes INT n and INT3 as traps and #UD as a fault, with IF per gate type', () => {
    const { r } = runLong('interrupts');
    expect(r.stop).toBe('hlt');
    expect(r.output).toBe(
      'INT test\n' +
        // An interrupt gate clears IF in the handler; IRETQ restores it with RFLAGS.
        'int 0x80 rax=1234 if=0000\n' +
        'returned rax=2468 if=0001\n' +
        // INT3 through a trap gate: IF stays set; the saved RIP is the next instruction.
        '#BP rip ok if=0001\n' +
        // UD2 is a fault: the saved RIP is the UD2 itself (the handler skips it).
        '#UD rip ok\n' +
        'done\n',
    );
  });

  it('runs a ring-3 function with SYSRETQ and comes back with SYSCALL', () => {
    const { r } = runLong('syscall');
    expect(r.stop).toBe('hlt');
    expect(r.output).toBe(
      'SYSCALL test\n' +
        // Ring 3 runs with CS = STAR[63:48] + 16 | 3 = 0x23. FMASK (TF|IF|DF) leaves the kernel
        // with none of them; R11 holds the user's RFLAGS (IF and DF); RCX the return address.
        'syscall 0001 rax=0023 kernel flags=0000 r11 flags=0600 rcx ok\n' +
        // SYSRETQ restored IF and DF from R11 (the user saw 0x600), then the user cleared DF.
        'syscall 0002 rax=0600 kernel flags=0000 r11 flags=0200 rcx ok\n' +
        'done\n',
    );
  });

  it('stops with the fault when events are not delivered (no IDT use)', () => {
    const m = BareMachine.longMode(buildProgram('interrupts'), 'paging');
    const r = m.run(BUDGET);
    expect(r.stop).toBe('exception');
    expect(r.exception?.vector).toBe(0x80);
    expect(r.output).toBe('INT test\n');
  });
});
