import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MODE_PROT32, MODE_REAL, RSP, SEG_CS, SEG_SS } from './cpu.js';
import {
  deliverEvent,
  EVENT_EXTERNAL,
  EVENT_SOFTWARE,
  NO_ERROR_CODE,
  pushesErrorCode,
  ShutdownError,
} from './events.js';
import { STOP_BUDGET, STOP_HLT, STOP_SHUTDOWN } from './interpreter.js';
import {
  CODE,
  hex,
  IDT,
  IST1,
  machine,
  RSP0,
  SEL_CODE64,
  SEL_CODE64_3,
  SEL_DATA0,
  SEL_DATA3,
  setGate,
  STACK,
  STUBS,
  toUser,
} from './system.fixture.js';

/** The 64-bit slots of the frame at RSP: [error code,] RIP, CS, RFLAGS, RSP, SS. */
function frame(m: ReturnType<typeof machine>, n: number): bigint[] {
  const sp = Number(m.cpu.getReg64(RSP));
  return Array.from({ length: n }, (_, k) => m.view.getBigUint64(sp + 8 * k, true));
}

function delivering(code: string) {
  const m = machine(code);
  m.cpu.deliverFaults = true;
  return m;
}

describe('long-mode delivery through the IDT', () => {
  it('INT n at CPL 0: five-slot frame on the current stack, IF cleared by an interrupt gate', () => {
    const m = delivering('cd80');
    m.cpu.rflags = 0x202;
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 0x80 + 1));
    expect(m.cpu.getReg64(RSP)).toBe(BigInt(STACK - 40));
    expect(frame(m, 5)).toEqual([
      BigInt(CODE + 2),
      BigInt(SEL_CODE64),
      0x202n,
      BigInt(STACK),
      BigInt(SEL_DATA0),
    ]);
    expect(m.cpu.rflags & 0x200).toBe(0);
  });

  it('a trap gate leaves IF set; the frame is aligned down to 16 bytes', () => {
    const m = delivering('cd40');
    setGate(m.view, 0x40, STUBS + 16 * 0x40, { type: 0xf });
    m.cpu.rflags = 0x202;
    m.cpu.setReg64(RSP, BigInt(STACK - 8));
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RSP)).toBe(BigInt(STACK - 16 - 40));
    expect(frame(m, 5)[3]).toBe(BigInt(STACK - 8));
    expect(m.cpu.rflags & 0x200).toBe(0x200);
  });

  it('from CPL 3: RSP0 from the TSS, null SS with RPL 0, user SS:RSP in the frame', () => {
    const m = delivering('cd80');
    setGate(m.view, 0x80, STUBS + 16 * 0x80, { dpl: 3 });
    toUser(m.cpu);
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.cpl).toBe(0);
    expect(m.cpu.seg[SEG_SS]!.selector).toBe(0);
    expect(m.cpu.seg[SEG_CS]!.selector).toBe(SEL_CODE64);
    expect(m.cpu.getReg64(RSP)).toBe(BigInt(RSP0 - 40));
    expect(frame(m, 5)).toEqual([
      BigInt(CODE + 2),
      BigInt(SEL_CODE64_3 | 3),
      0x2n,
      BigInt(STACK),
      BigInt(SEL_DATA3 | 3),
    ]);
  });

  it('INT n from CPL 3 through a DPL 0 gate is #GP(vector*8+2), delivered on RSP0', () => {
    const m = delivering('cd80');
    toUser(m.cpu);
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 13 + 1));
    // #GP is a fault of the INT instruction: RIP in the frame points at it.
    expect(frame(m, 3)).toEqual([0x80n * 8n + 2n, BigInt(CODE), BigInt(SEL_CODE64_3 | 3)]);
  });

  it('IST: the stack comes from the TSS even without a privilege change', () => {
    const m = delivering('cd02');
    setGate(m.view, 2, STUBS + 32, { ist: 1 });
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.getReg64(RSP)).toBe(BigInt((IST1 & ~15) - 40));
    expect(frame(m, 5)[3]).toBe(BigInt(STACK));
  });

  it('#GP pushes its error code and returns to the faulting instruction', () => {
    const m = delivering('0f22e0'); // mov cr4, rax with a reserved bit
    m.cpu.setReg64(0, 1n << 13n);
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 13 + 1));
    // RFLAGS with RF (a fault's image: the instruction restarts past its breakpoint); the
    // handler itself runs with RF clear.
    expect(frame(m, 6)).toEqual([
      0n,
      BigInt(CODE),
      BigInt(SEL_CODE64),
      0x10002n,
      BigInt(STACK),
      BigInt(SEL_DATA0),
    ]);
    expect(m.cpu.rflags & 0x10000).toBe(0);
  });

  it('#PF sets CR2 and pushes the error code', () => {
    const m = delivering('8b042500002000'); // mov eax, [0x200000] (outside the flat window)
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 14 + 1));
    expect(m.cpu.cr2Lo).toBe(0x200000);
    expect(frame(m, 2)).toEqual([0n, BigInt(CODE)]);
  });

  it('IRETQ returns to the interrupted code (same CPL) and to CPL 3', () => {
    const m = delivering('cd80 f4');
    m.mem.set(hex('48cf'), STUBS + 16 * 0x80);
    m.cpu.rflags = 0x202;
    expect(m.interp.run(10)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(CODE + 3));
    expect(m.cpu.getReg64(RSP)).toBe(BigInt(STACK));
    expect(m.cpu.rflags).toBe(0x202);

    const u = delivering('cd80 cc');
    u.mem.set(hex('48cf'), STUBS + 16 * 0x80);
    setGate(u.view, 0x80, STUBS + 16 * 0x80, { dpl: 3 });
    toUser(u.cpu);
    expect(u.interp.run(10)).toBe(STOP_HLT); // int3 -> #BP handler (DPL 0 gate: #GP -> hlt)
    expect(u.cpu.rip).toBe(BigInt(STUBS + 16 * 13 + 1));
    // The #GP frame shows where IRETQ returned to: CPL 3 at the INT3, user RSP.
    expect(frame(u, 6)).toEqual([
      3n * 8n + 2n,
      BigInt(CODE + 2),
      BigInt(SEL_CODE64_3 | 3),
      0x2n,
      BigInt(STACK),
      BigInt(SEL_DATA3 | 3),
    ]);
  });
});

describe('double fault and shutdown', () => {
  it('#NP while delivering #GP (both contributory) becomes #DF with error code 0', () => {
    const m = delivering('0f22e0');
    m.cpu.setReg64(0, 1n << 13n);
    setGate(m.view, 13, STUBS + 16 * 13, { present: false });
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 8 + 1));
    expect(frame(m, 2)).toEqual([0n, BigInt(CODE)]);
  });

  it('#PF while delivering #PF (the stack is unmapped) becomes #DF on its IST stack', () => {
    const m = delivering('8b042500002000');
    setGate(m.view, 8, STUBS + 16 * 8, { ist: 1 });
    m.cpu.setReg64(RSP, 0x200000n + 0x1000n);
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 8 + 1));
    expect(m.cpu.getReg64(RSP)).toBe(BigInt((IST1 & ~15) - 48));
    // The #DF frame holds the state before the first delivery.
    expect(frame(m, 5)).toEqual([0n, BigInt(CODE), BigInt(SEL_CODE64), 0x10002n, 0x201000n]);
  });

  it('a benign event (INT3) whose gate is missing is delivered as the #NP alone', () => {
    const m = delivering('cc');
    setGate(m.view, 3, STUBS + 48, { present: false });
    expect(m.interp.run(2)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 11 + 1));
    expect(frame(m, 2)).toEqual([3n * 8n + 2n, BigInt(CODE)]); // a fault of the INT3 itself
  });

  it('a fault while delivering #DF is a triple fault: STOP_SHUTDOWN', () => {
    const m = delivering('0f22e0');
    m.cpu.setReg64(0, 1n << 13n);
    setGate(m.view, 13, 0, { present: false });
    setGate(m.view, 8, 0, { present: false });
    expect(m.interp.run(2)).toBe(STOP_SHUTDOWN);
    expect(() => deliverEvent(m.cpu, 13, 0, 0)).toThrow(ShutdownError);
  });

  it('an IDT limit below the vector is #GP(vector*8+2+EXT)', () => {
    const m = machine('');
    m.cpu.idtrLimit = 0x20 * 16 - 1;
    deliverEvent(m.cpu, 0x30, NO_ERROR_CODE, EVENT_EXTERNAL);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 13));
    expect(frame(m, 1)).toEqual([0x30n * 8n + 3n]);
  });
});

describe('external interrupts and NMI', () => {
  it('waits for IF and the STI shadow: delivered after the instruction following STI', () => {
    const m = machine('90 fb 90 90 f4');
    m.cpu.requestInterrupt(0x41);
    expect(m.interp.run(1)).toBe(STOP_BUDGET); // nop with IF = 0
    expect(m.interp.run(2)).toBe(STOP_BUDGET); // sti; nop (the shadow)
    expect(m.cpu.rip).toBe(BigInt(CODE + 3));
    expect(m.interp.run(1)).toBe(STOP_HLT); // delivered, then the stub's HLT
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 0x41 + 1));
    expect(frame(m, 1)).toEqual([BigInt(CODE + 3)]);
  });

  it('HLT stops, and an interrupt wakes it (the frame returns past the HLT)', () => {
    const m = machine('fb f4 90');
    const taken: number[] = [];
    m.cpu.onInterruptTaken = (v) => taken.push(v);
    expect(m.interp.run(10)).toBe(STOP_HLT);
    expect(taken).toEqual([]);
    m.cpu.requestInterrupt(0x50);
    expect(m.interp.run(10)).toBe(STOP_HLT);
    expect(m.cpu.rip).toBe(BigInt(STUBS + 16 * 0x50 + 1));
    expect(frame(m, 1)).toEqual([BigInt(CODE + 2)]);
    expect(taken).toEqual([0x50]);
    expect(m.cpu.pendingIrq).toBe(-1);
  });

  it('NMI ignores IF and is blocked until IRET', () => {
    // The NMI handler: nop; iretq. The main code: four NOPs.
    const m = machine('90 90 90 90 f4');
    m.mem.set(hex('90 48cf'), STUBS + 32);
    m.cpu.requestNmi();
    expect(m.interp.run(1)).toBe(STOP_BUDGET); // NMI delivered, then the handler's NOP
    expect(m.cpu.rip).toBe(BigInt(STUBS + 33));
    expect(m.cpu.nmiBlocked).toBe(true);
    m.cpu.requestNmi();
    expect(m.interp.run(1)).toBe(STOP_BUDGET); // IRETQ; the second NMI waited
    expect(m.cpu.rip).toBe(BigInt(CODE));
    expect(m.interp.run(1)).toBe(STOP_BUDGET); // second NMI now, then NOP in the handler
    expect(m.cpu.rip).toBe(BigInt(STUBS + 33));
  });
});

describe('legacy modes', () => {
  it('real mode: FLAGS, CS, IP on the stack, CS:IP from the IVT, IF/TF cleared', () => {
    const m = machine('');
    const c = m.cpu;
    c.cr0 = 0x10;
    c.efer = 0;
    c.setSegment(SEG_CS, 0x1000, 0x10000n, 0xffff, 0x93);
    c.setSegment(SEG_SS, 0x2000, 0x20000n, 0xffff, 0x93);
    c.updateMode();
    expect(c.mode).toBe(MODE_REAL);
    c.idtrBase = 0n;
    c.idtrLimit = 0x3ff;
    m.view.setUint32(0x21 * 4, 0x3000_0040, true); // 3000:0040
    c.setReg64(RSP, 0x100n);
    c.rip = 0x1234n;
    c.rflags = 0x302;
    deliverEvent(c, 0x21, NO_ERROR_CODE, EVENT_SOFTWARE);
    expect(c.seg[SEG_CS]!.selector).toBe(0x3000);
    expect(c.seg[SEG_CS]!.base).toBe(0x30000n);
    expect(c.rip).toBe(0x40n);
    expect(c.getReg64(RSP)).toBe(0xfan);
    expect([0, 2, 4].map((k) => m.view.getUint16(0x200fa + k, true))).toEqual([
      0x1234, 0x1000, 0x302,
    ]);
    expect(c.rflags & 0x300).toBe(0);
  });

  it('32-bit protected mode: 8-byte gate, EFLAGS/CS/EIP/error code as dwords', () => {
    const m = machine('');
    const c = m.cpu;
    c.cr0 = 0x11;
    c.efer = 0;
    c.setSegment(SEG_CS, 0x40, 0n, 0xffffffff, 0xc9b);
    c.setSegment(SEG_SS, SEL_DATA0, 0n, 0xffffffff, 0xc93);
    c.updateMode();
    expect(c.mode).toBe(MODE_PROT32);
    // 32-bit interrupt gate for #GP at IDT + 13*8 -> 0x40:0x9000
    const g = IDT + 13 * 8;
    m.view.setUint32(g, (0x40 << 16) | 0x9000, true);
    m.view.setUint32(g + 4, 0x8e00, true);
    c.setReg64(RSP, 0x5000n);
    c.rip = 0x1234n;
    deliverEvent(c, 13, 0x18, 0);
    expect(c.rip).toBe(0x9000n);
    expect(c.getReg64(RSP)).toBe(0x5000n - 16n);
    expect([0, 4, 8, 12].map((k) => m.view.getUint32(0x5000 - 16 + k, true))).toEqual([
      0x18, 0x1234, 0x40, 0x2,
    ]);
  });
});

describe('error codes', () => {
  it('exactly #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX push one', () => {
    const pushing = [...Array(32).keys()].filter(pushesErrorCode);
    expect(pushing).toEqual([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
  });
});

describe('delivery and IRETQ round trip (property)', () => {
  it('INT n then IRETQ restores RIP, RSP, RFLAGS, CS, SS and CPL for any vector, CPL, IST and RSP', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0x20, max: 0xff }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom(0x2, 0x202, 0x246, 0x8d7, 0x40202),
        (vector, user, ist, spOff, flags) => {
          const m = delivering(`cd${vector.toString(16).padStart(2, '0')} f4`);
          setGate(m.view, vector, STUBS + 16 * vector, { dpl: 3, ist });
          m.mem.set(hex('48cf'), STUBS + 16 * vector);
          const sp = BigInt(STACK - 0x100 - spOff * 8);
          if (user) toUser(m.cpu);
          m.cpu.setReg64(RSP, sp);
          m.cpu.rflags = flags;
          const cs = m.cpu.seg[SEG_CS]!.selector;
          const ss = m.cpu.seg[SEG_SS]!.selector;
          expect(m.interp.run(2)).toBe(STOP_BUDGET); // INT (with its delivery), IRETQ
          expect(m.cpu.rip).toBe(BigInt(CODE + 2));
          expect(m.cpu.getReg64(RSP)).toBe(sp);
          expect(m.cpu.rflags).toBe(flags);
          expect(m.cpu.cpl).toBe(user ? 3 : 0);
          expect(m.cpu.seg[SEG_CS]!.selector).toBe(cs);
          expect(m.cpu.seg[SEG_SS]!.selector).toBe(ss);
        },
      ),
      { numRuns: 200 },
    );
  });
});
