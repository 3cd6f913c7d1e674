// Port I/O, the SEV-ES intercepts (#VC with the SVM exit code), VMMCALL/VMGEXIT and the CPU side
// of PVALIDATE/RMPADJUST (checks, operands, results) over flat memory and a fake platform. The RMP
// side is tested through the x86 engine (engines/x86-engine.test.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Cpu,
  type CpuPlatform,
  INTERCEPT_RDTSC,
  INTERCEPT_RDTSCP,
  MINIMAL_PLATFORM,
  RAX,
  RCX,
  RDI,
  RDX,
  RSI,
  RSP,
} from './cpu.js';
import { disassemble } from './disasm.js';
import { Interpreter, STOP_EXCEPTION, STOP_EXIT, STOP_HLT } from './interpreter.js';
import { FlatTranslator } from './translator.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const BASE = 0x40_0000;
const DATA = BASE + 0x2000;
const CF = 1;
const ZF = 0x40;
const DF = 0x400;

interface Io {
  readonly dir: 'in' | 'out';
  readonly port: number;
  readonly size: number;
  readonly value?: number;
}

function rig(code: string, extra: Partial<CpuPlatform> = {}) {
  const mem = new Uint8Array(0x10000);
  mem.set(hex(code), 0);
  const log: Io[] = [];
  let next = 0x11;
  const platform: CpuPlatform = {
    ...MINIMAL_PLATFORM,
    ioIn: (port, size) => {
      log.push({ dir: 'in', port, size });
      // Returns more bits than asked for: the CPU must cut the value to the operand size.
      return 0x5a5a_5a00 | next++;
    },
    ioOut: (port, size, value) => log.push({ dir: 'out', port, size, value }),
    ...extra,
  };
  const cpu = new Cpu(mem, new FlatTranslator(BASE, 0x10000), undefined, platform);
  cpu.rip = BigInt(BASE);
  cpu.setReg64(RSP, BigInt(BASE + 0x8000));
  return { mem, cpu, log, interp: new Interpreter(cpu) };
}

describe('IN and OUT', () => {
  it('OUT writes AL/AX/EAX to an imm8 or DX port; REX.W still means 32 bits', () => {
    // mov eax,0x87654321; out 0x80,al; mov dx,0x3f8; out dx,ax; rex.w out dx,eax; out 0xe9,eax; hlt
    const { cpu, log, interp } = rig('b821436587 e680 66baf803 66ef 48ef e7e9 f4');
    expect(interp.run(100)).toBe(STOP_HLT);
    expect(log).toEqual([
      { dir: 'out', port: 0x80, size: 1, value: 0x21 },
      { dir: 'out', port: 0x3f8, size: 2, value: 0x4321 },
      { dir: 'out', port: 0x3f8, size: 4, value: 0x87654321 },
      // imm8 0xE9 is a port number, not a sign-extended immediate.
      { dir: 'out', port: 0xe9, size: 4, value: 0x87654321 },
    ]);
    expect(cpu.getReg64(RAX)).toBe(0x87654321n);
  });

  it('IN merges 8/16-bit input into RAX and zero-extends 32-bit input', () => {
    // mov rax,-1; in al,0x60; mov rbx,rax; mov rax,-1; in ax,dx; mov rcx,rax; mov rax,-1; in eax,dx
    const { cpu, log, interp } = rig(
      '48c7c0ffffffff e460 4889c3 48c7c0ffffffff 66baf803 66ed 4889c1 48c7c0ffffffff ed f4',
    );
    expect(interp.run(100)).toBe(STOP_HLT);
    expect(cpu.getReg64(3)).toBe(0xffff_ffff_ffff_ff11n);
    expect(cpu.getReg64(RCX)).toBe(0xffff_ffff_ffff_5a12n);
    expect(cpu.getReg64(RAX)).toBe(0x5a5a_5a13n);
    expect(log.map((e) => [e.port, e.size])).toEqual([
      [0x60, 1],
      [0x3f8, 2],
      [0x3f8, 4],
    ]);
  });

  it('reads all ones from a platform without ports', () => {
    const { cpu, interp } = rig('31c0 e460 66ed f4', { ioIn: undefined, ioOut: undefined });
    expect(interp.run(100)).toBe(STOP_HLT);
    expect(cpu.getReg64(RAX)).toBe(0xffffn);
  });

  it('at CPL > IOPL raises #GP(0) before touching the port; IOPL 3 allows CPL 3', () => {
    const { cpu, mem, log, interp } = rig('e680 f4');
    tss(cpu, mem, 0x68, []); // no bitmap within the limit
    cpu.cpl = 3;
    expect(interp.run(10)).toBe(STOP_EXCEPTION);
    expect([cpu.exVector, cpu.exErrorCode]).toEqual([13, 0]);
    expect(cpu.rip).toBe(BigInt(BASE));
    expect(log).toEqual([]);
    cpu.rflags = 0x3002; // IOPL 3
    expect(interp.run(1)).toBe(0);
    expect(log).toHaveLength(1);
  });
});

/** TSS at physical TSS_AT (virtual BASE + TSS_AT), 64-bit busy type, I/O map base 0x68. */
const TSS_AT = 0x3000;

/**
 * A TSS whose I/O permission bitmap is `bitmap` (bytes from offset 0x68) and whose limit is
 * `limit`; `attr` 0x8b is a 64-bit (or 32-bit) busy TSS, 0x83 a 16-bit one.
 */
function tss(cpu: Cpu, mem: Uint8Array, limit: number, bitmap: number[], attr = 0x8b): void {
  mem.fill(0, TSS_AT, TSS_AT + 0x200);
  mem[TSS_AT + 0x66] = 0x68;
  mem.set(bitmap, TSS_AT + 0x68);
  cpu.setSegment(7 /* TR */, 0x30, BigInt(BASE + TSS_AT), limit, attr);
}

describe('the TSS I/O permission bitmap (CPL > IOPL)', () => {
  /** 32 bitmap bytes (ports 0-0xFF) all denying but the ports in `allowed`; a 0xFF terminator. */
  function bitmap(allowed: number[]): number[] {
    const b = new Array<number>(33).fill(0xff);
    for (const p of allowed) b[p >> 3]! &= ~(1 << (p & 7));
    return b;
  }

  function user(code: string, allowed: number[], limit = 0x68 + 32) {
    const r = rig(code);
    tss(r.cpu, r.mem, limit, bitmap(allowed));
    r.cpu.cpl = 3;
    return r;
  }

  it('a clear bit allows the port, a set bit is #GP(0) with the port untouched', () => {
    const ok = user('e680 f4', [0x80]); // out 0x80, al
    expect(ok.interp.run(1)).toBe(0);
    expect(ok.log).toHaveLength(1);
    const denied = user('e681 f4', [0x80]); // out 0x81, al
    expect(denied.interp.run(1)).toBe(STOP_EXCEPTION);
    expect([denied.cpu.exVector, denied.cpu.exErrorCode, denied.log]).toEqual([13, 0, []]);
  });

  it('every byte of a multi-byte access needs its bit, across a bitmap byte boundary', () => {
    // in ax, dx with DX = 0x87: ports 0x87 (byte 0x10 bit 7) and 0x88 (byte 0x11 bit 0)
    const code = '66ba8700 66ed f4';
    const both = user(code, [0x87, 0x88]);
    expect(both.interp.run(2)).toBe(0);
    const one = user(code, [0x87]);
    expect(one.interp.run(2)).toBe(STOP_EXCEPTION);
    expect(one.cpu.exVector).toBe(13);
  });

  it('ports whose bitmap bytes lie beyond TR.limit are #GP(0); both bytes read must be inside', () => {
    const far = user('66baf803 ee f4', []); // out dx, al with DX = 0x3F8: beyond the bitmap
    expect(far.interp.run(2)).toBe(STOP_EXCEPTION);
    expect(far.cpu.exVector).toBe(13);
    // Port 0xF8's bits are in byte 0x1F; the second byte read is 0x20, the terminator.
    expect(user('e6f8 f4', [0xf8], 0x68 + 0x20).interp.run(1)).toBe(0);
    const cut = user('e6f8 f4', [0xf8], 0x68 + 0x1f);
    expect(cut.interp.run(1)).toBe(STOP_EXCEPTION);
    expect(cut.cpu.exVector).toBe(13);
  });

  it('REP OUTSB and INSB are checked once, before the first iteration', () => {
    const r = user('66ba8100 f36e f4', [0x80]); // rep outsb to port 0x81
    r.cpu.setReg64(RCX, 4n);
    r.cpu.setReg64(RSI, BigInt(DATA));
    expect(r.interp.run(2)).toBe(STOP_EXCEPTION);
    expect([r.cpu.exVector, r.cpu.getReg64(RCX), r.log]).toEqual([13, 4n, []]);
    const ins = user('66ba8000 f36c f4', [0x80]); // rep insb from port 0x80
    ins.cpu.setReg64(RCX, 2n);
    ins.cpu.setReg64(RDI, BigInt(DATA));
    expect(ins.interp.run(2)).toBe(0);
    expect(ins.log).toHaveLength(2);
  });

  it('a 16-bit TSS has no bitmap: #GP(0)', () => {
    const r = rig('e680 f4');
    tss(r.cpu, r.mem, 0x68 + 32, bitmap([0x80]), 0x83);
    r.cpu.cpl = 3;
    expect(r.interp.run(1)).toBe(STOP_EXCEPTION);
    expect(r.cpu.exVector).toBe(13);
  });

  it('is not consulted at CPL <= IOPL', () => {
    const r = user('e681 f4', []);
    r.cpu.rflags = 0x3002;
    expect(r.interp.run(1)).toBe(0);
  });

  it('under SEV-ES an allowed port raises #VC, a denied one #GP(0) first', () => {
    const ok = user('e680 f4', [0x80]);
    ok.cpu.sevEs = true;
    expect(ok.interp.run(1)).toBe(STOP_EXCEPTION);
    expect([ok.cpu.exVector, ok.cpu.exErrorCode]).toEqual([29, 0x7b]);
    const denied = user('e681 f4', [0x80]);
    denied.cpu.sevEs = true;
    expect(denied.interp.run(1)).toBe(STOP_EXCEPTION);
    expect(denied.cpu.exVector).toBe(13);
  });
});

describe('INS and OUTS', () => {
  it('REP OUTSB sends bytes from [RSI] upward and counts RCX down to zero', () => {
    const { cpu, mem, log, interp } = rig('f36e f4');
    mem.set([1, 2, 3, 4], 0x2000);
    cpu.setReg64(RSI, BigInt(DATA));
    cpu.setReg64(RCX, 4n);
    cpu.setReg64(RDX, 0x3f8n);
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(log.map((e) => e.value)).toEqual([1, 2, 3, 4]);
    expect(cpu.getReg64(RCX)).toBe(0n);
    expect(cpu.getReg64(RSI)).toBe(BigInt(DATA + 4));
  });

  it('REP INSW with DF=1 stores downward at [RDI]', () => {
    const { cpu, mem, interp } = rig('f3666d f4');
    cpu.rflags = 2 | DF;
    cpu.setReg64(RDI, BigInt(DATA + 4));
    cpu.setReg64(RCX, 3n);
    expect(interp.run(10)).toBe(STOP_HLT);
    expect([...mem.subarray(0x2000, 0x2006)]).toEqual([0x13, 0x5a, 0x12, 0x5a, 0x11, 0x5a]);
    expect(cpu.getReg64(RDI)).toBe(BigInt(DATA - 2));
  });

  it('REP with RCX = 0 does nothing; a 67 prefix counts ECX and uses EDI', () => {
    const { cpu, mem, log, interp } = rig('f36c f367 6c f4');
    cpu.setReg64(RCX, 0n);
    expect(interp.run(1)).toBe(0);
    expect(log).toEqual([]);
    cpu.setReg64(RCX, 0x1_0000_0002n); // ECX = 2
    cpu.setReg64(RDI, 0xdead_0000_0000_0000n + BigInt(DATA)); // EDI = DATA
    expect(interp.run(10)).toBe(STOP_HLT);
    expect([...mem.subarray(0x2000, 0x2002)]).toEqual([0x11, 0x12]);
    expect(cpu.getReg64(RCX)).toBe(0n);
    expect(cpu.getReg64(RDI)).toBe(BigInt(DATA + 2));
  });

  it('a destination fault mid-REP reads no input for it and leaves RCX/RDI at the progress', () => {
    const { cpu, log, interp } = rig('f36c f4');
    const end = BASE + 0x10000; // end of the mapped window
    cpu.setReg64(RDI, BigInt(end - 2));
    cpu.setReg64(RCX, 5n);
    expect(interp.run(10)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(14);
    expect(log).toHaveLength(2);
    expect(cpu.getReg64(RCX)).toBe(3n);
    expect(cpu.getReg64(RDI)).toBe(BigInt(end));
    expect(cpu.rip).toBe(BigInt(BASE));
  });

  it('REP INS/OUTS match a model for any count, size, direction and address size', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.constantFrom(1, 2, 4),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0x100, max: 0xf00 }),
        (ins, size, down, addr32, count, offset) => {
          const op = (ins ? 0x6c : 0x6e) + (size === 1 ? 0 : 1);
          const code =
            (addr32 ? '67' : '') + 'f3' + (size === 2 ? '66' : '') + op.toString(16) + 'f4';
          const { cpu, mem, log, interp } = rig(code);
          for (let k = 0; k < 0x1000; k++) mem[0x2000 + k] = (k * 7 + 3) & 0xff;
          const before = mem.slice(0x2000, 0x3000);
          const start = DATA + offset;
          const high = addr32 ? 0xffff_0000_0000_0000n : 0n; // ignored with a 32-bit address size
          cpu.setReg64(ins ? RDI : RSI, high + BigInt(start));
          cpu.setReg64(RCX, BigInt(count));
          cpu.setReg64(RDX, 0x1f0n);
          if (down) cpu.rflags = 2 | DF;
          expect(interp.run(10)).toBe(STOP_HLT);
          const step = down ? -size : size;
          expect(log).toHaveLength(count);
          const expected = mem.slice(0x2000, 0x3000);
          expected.set(before);
          for (let k = 0; k < count; k++) {
            const at = offset + k * step;
            if (ins) {
              const v = 0x5a5a_5a00 | (0x11 + k);
              for (let b = 0; b < size; b++) expected[at + b] = (v >>> (8 * b)) & 0xff;
            } else {
              let v = 0;
              for (let b = size - 1; b >= 0; b--) v = v * 256 + before[at + b]!;
              expect(log[k]).toEqual({ dir: 'out', port: 0x1f0, size, value: v });
            }
          }
          expect(mem.slice(0x2000, 0x3000)).toEqual(expected);
          // A 32-bit address size writes the 32-bit register (upper half cleared) once it steps.
          expect(cpu.getReg64(ins ? RDI : RSI)).toBe(
            (addr32 && count > 0 ? 0n : high) + BigInt(start + count * step),
          );
          expect(cpu.getReg64(RCX)).toBe(0n);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('disassembles the I/O forms', () => {
    const text = disassemble(hex('e680 ed 66ef f3666d 6e')).map((l) => l.text);
    expect(text).toEqual(['out 0x80, al', 'in eax, dx', 'out dx, ax', 'rep insw', 'outsb']);
  });
});

describe('SEV-ES: intercepted instructions raise #VC with the SVM exit code', () => {
  const cases: [string, string, number][] = [
    ['cpuid', '0fa2', 0x72],
    ['in al,0x60', 'e460', 0x7b],
    ['out dx,eax', 'ef', 0x7b],
    ['rep insb', 'f36c', 0x7b],
    ['outsw', '666f', 0x7b],
    ['vmmcall', '0f01d9', 0x81],
    ['wbinvd', '0f09', 0x89],
    ['invd', '0f08', 0x76],
    ['monitor', '0f01c8', 0x8a],
    ['mwait', '0f01c9', 0x8b],
  ];
  for (const [name, code, exit] of cases) {
    it(`${name}: #VC 0x${exit.toString(16)}, RIP at the instruction, nothing done`, () => {
      const { cpu, log, interp } = rig(code + 'f4');
      cpu.sevEs = true;
      cpu.setReg64(RCX, 1n);
      cpu.setReg64(RAX, 0x1234n);
      expect(interp.run(10)).toBe(STOP_EXCEPTION);
      expect([cpu.exVector, cpu.exErrorCode]).toEqual([29, exit]);
      expect(cpu.rip).toBe(BigInt(BASE));
      expect(cpu.getReg64(RAX)).toBe(0x1234n);
      expect(log).toEqual([]);
    });
  }

  it('privilege checks come first: #GP for I/O at CPL 3 and WBINVD, #UD for MWAIT', () => {
    for (const [code, vector] of [
      ['e460', 13],
      ['0f09', 13],
      ['0f01c9', 6],
    ] as const) {
      const { cpu, mem, interp } = rig(code);
      tss(cpu, mem, 0x68, []); // no I/O bitmap
      cpu.sevEs = true;
      cpu.cpl = 3;
      expect(interp.run(1)).toBe(STOP_EXCEPTION);
      expect(cpu.exVector).toBe(vector);
    }
  });

  it('RDTSC/RDTSCP run unless the hypervisor intercepts them (0x6E, 0x87)', () => {
    const { cpu, interp } = rig('0f31 0f01f9 f4', { tsc: (n) => 0x1_0000_0000 * 3 + 7 + n });
    cpu.sevEs = true;
    expect(interp.run(10)).toBe(STOP_HLT);
    expect([cpu.getReg64(RAX), cpu.getReg64(RDX)]).toEqual([8n, 3n]);
    for (const [bit, exit, at] of [
      [INTERCEPT_RDTSC, 0x6e, 0],
      [INTERCEPT_RDTSCP, 0x87, 2],
    ] as const) {
      cpu.rip = BigInt(BASE);
      cpu.intercepts = bit;
      expect(interp.run(10)).toBe(STOP_EXCEPTION);
      expect([cpu.exVector, cpu.exErrorCode]).toEqual([29, exit]);
      expect(cpu.rip).toBe(BigInt(BASE + at));
    }
  });

  it('HLT is not intercepted: it halts (an automatic exit for the engine)', () => {
    const { cpu, interp } = rig('f4');
    cpu.sevEs = true;
    expect(interp.run(10)).toBe(STOP_HLT);
  });
});

describe('VMMCALL and VMGEXIT', () => {
  it('VMGEXIT under SEV-ES stops with exit 0x403 after the instruction', () => {
    const { cpu, interp } = rig('90 f30f01d9 f4');
    cpu.sevEs = true;
    expect(interp.run(10)).toBe(STOP_EXIT);
    expect(cpu.exitCode).toBe(0x403);
    expect(cpu.rip).toBe(BigInt(BASE + 5));
    expect(cpu.instructions).toBe(2);
    // The next run goes on after it and ends in an ordinary HLT.
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(cpu.exitCode).toBe(-1);
  });

  it('without SEV-ES both are #UD (no hypervisor intercepts VMMCALL)', () => {
    for (const code of ['0f01d9', 'f30f01d9']) {
      const { cpu, interp } = rig(code);
      expect(interp.run(1)).toBe(STOP_EXCEPTION);
      expect(cpu.exVector).toBe(6);
    }
  });

  it('disassembles the group 7 forms by prefix', () => {
    const text = disassemble(hex('0f01d9 f30f01d9 f20f01ff f30f01fe 0f01f9')).map((l) => l.text);
    expect(text).toEqual(['vmmcall', 'vmgexit', 'pvalidate', 'rmpadjust', 'rdtscp']);
    // Without their prefixes 0F 01 FF and 0F 01 FE are not these instructions.
    expect(disassemble(hex('0f01ff'))[0]!.text).toBe('(bad)');
  });
});

describe('PVALIDATE and RMPADJUST (CPU side)', () => {
  function rmpRig(code: string) {
    const calls: unknown[][] = [];
    let outcome = { rax: 0, carry: false };
    const r = rig(code + 'f4', {
      pvalidate: (_c, lo, hi, size2M, validate) => {
        calls.push(['pvalidate', lo >>> 0, hi >>> 0, size2M, validate]);
        return outcome;
      },
      rmpadjust: (_c, lo, hi, size2M, attrLo, attrHi) => {
        calls.push(['rmpadjust', lo >>> 0, hi >>> 0, size2M, attrLo >>> 0, attrHi >>> 0]);
        return outcome;
      },
    });
    r.cpu.sevEs = true;
    return { ...r, calls, set: (o: typeof outcome) => (outcome = o) };
  }

  it('passes RAX, ECX[0], EDX[0] and returns EAX and CF (ZF cleared)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 47n) - 1n }),
        fc.integer(),
        fc.integer(),
        fc.integer({ min: 0, max: 6 }),
        fc.boolean(),
        (va, ecx, edx, rax, carry) => {
          const { cpu, interp, calls, set } = rmpRig('f20f01ff');
          set({ rax, carry });
          cpu.setReg64(RAX, va);
          cpu.setReg64(RCX, BigInt(ecx >>> 0));
          cpu.setReg64(RDX, BigInt(edx >>> 0));
          cpu.rflags = 2 | ZF | (carry ? 0 : CF);
          expect(interp.run(10)).toBe(STOP_HLT);
          expect(calls).toEqual([
            [
              'pvalidate',
              Number(va & 0xffff_ffffn),
              Number(va >> 32n),
              (ecx & 1) !== 0,
              (edx & 1) !== 0,
            ],
          ]);
          expect(cpu.getReg64(RAX)).toBe(BigInt(rax));
          expect(cpu.rflags & (CF | ZF)).toBe(carry ? CF : 0);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('RMPADJUST passes the whole RDX', () => {
    const { cpu, interp, calls, set } = rmpRig('f30f01fe');
    set({ rax: 2, carry: false });
    cpu.setReg64(RAX, 0x7000n);
    cpu.setReg64(RCX, 1n);
    cpu.setReg64(RDX, 0x8000_0001_0001_0f03n);
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(calls).toEqual([['rmpadjust', 0x7000, 0, true, 0x1_0f03, 0x8000_0001]]);
    expect(cpu.getReg64(RAX)).toBe(2n);
  });

  it('faults before asking the platform: #GP(0) at CPL 3 or for a non-canonical RAX, #UD outside SNP', () => {
    for (const [setup, vector] of [
      [(c: Cpu) => (c.cpl = 3), 13],
      [(c: Cpu) => c.setReg64(RAX, 0x0000_8000_0000_0000n), 13],
      [(c: Cpu) => (c.sevEs = false), 6],
    ] as const) {
      for (const code of ['f20f01ff', 'f30f01fe']) {
        const { cpu, interp, calls } = rmpRig(code);
        setup(cpu);
        expect(interp.run(10)).toBe(STOP_EXCEPTION);
        expect([cpu.exVector, cpu.exErrorCode]).toEqual([vector, 0]);
        expect(calls).toEqual([]);
      }
    }
  });

  it('is #UD when the platform has no RMP', () => {
    const { cpu, interp } = rig('f20f01ff');
    cpu.sevEs = true;
    expect(interp.run(1)).toBe(STOP_EXCEPTION);
    expect(cpu.exVector).toBe(6);
  });
});

describe('no SEV-ES: the instructions run without a hypervisor', () => {
  it('CPUID asks the platform; WBINVD, INVD, MONITOR, MWAIT do nothing at CPL 0', () => {
    const { cpu, interp } = rig('31c0 0fa2 0f09 0f08 0f01c8 0f01c9 f4');
    expect(interp.run(10)).toBe(STOP_HLT);
    expect(cpu.getReg64(3)).toBe(0x68747541n); // "Auth"
    expect(cpu.instructions).toBe(7);
  });
});
