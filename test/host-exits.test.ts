// The host's answers to the #VC exits Linux forwards through the GHCB page (CPUID, MSR, MMIO,
// IOIO, RDTSC(P), WBINVD, VMMCALL, NMI_COMPLETE, DR7), the 8250 UART behind COM1, and hostile
// GHCB contents: a scripted guest at VMPL2 makes a page shared, fills it as Linux does and
// VMGEXITs. Facts: reference/linux-snp-guest.md section 4, KVM `sev_es_validate_vmgexit`.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  exceptionEvent,
  type GuestCpu,
  IOIO_EXITINFO1,
  MSR,
  SW_EXITCODE,
} from '../src/arch/index.js';
import { CpuModel } from '../src/host/cpu-model.js';
import { platformOf } from '../src/host/devices/platform.js';
import {
  UART_FCR,
  UART_IER,
  UART_IIR,
  UART_LCR,
  UART_LSR,
  UART_MCR,
  Uart8250,
} from '../src/host/devices/uart8250.js';
import { PAT_DEFAULT } from '../src/host/exits/msr-table.js';
import { createTestCvm, type TestCvm } from './support/cvm.js';
import {
  type Answer as GhcbAnswer,
  GHCB_GPA,
  ghcbExit,
  type Inputs,
  OUTSIDE_GPA,
  setUpGhcb,
} from './support/ghcb-guest.js';

const BUFFER_GPA = GHCB_GPA + 0x800;
const GP = exceptionEvent(13);
const MISSING = [2n, 4n];
const BAD_SCRATCH = [2n, 3n];

/** ghcbExit's answer, with the shared buffer at 0x800 of the GHCB page. */
interface Answer extends GhcbAnswer {
  /** The shared buffer's first `n` bytes. */
  buffer(n: number): Uint8Array;
}

/** One GHCB exit: exit code, EXITINFO1/2 and the given fields marked valid, `buffer` at 0x800. */
function* exit(
  cpu: GuestCpu,
  code: number,
  info1: bigint,
  info2: bigint,
  inputs: Inputs = {},
  buffer?: Uint8Array,
): Generator<void, Answer, void> {
  const shared = buffer === undefined ? undefined : { at: 0x800, bytes: buffer };
  const a = yield* ghcbExit(cpu, code, info1, info2, inputs, shared);
  return { ...a, buffer: (n) => a.page.slice(0x800, 0x800 + n) };
}

/** Runs `body` as the VMPL2 guest of a fresh CVM and returns the CVM after the run. */
function runGuest(
  body: (cpu: GuestCpu) => Generator<void, void, void>,
  before?: (cvm: TestCvm) => void,
  vcpus = 1,
): TestCvm {
  const cvm = createTestCvm(
    function* (cpu) {
      yield* setUpGhcb(cpu);
      yield* body(cpu);
    },
    { vcpus },
  );
  before?.(cvm);
  cvm.vm.run();
  expect(cvm.vm.termination).toBeNull();
  return cvm;
}

const pair = (a: Answer): bigint[] => [a.info1, a.info2];

const ioInfo = (port: number, dir: 'in' | 'out', extra: Partial<{ string: boolean }> = {}) =>
  IOIO_EXITINFO1.encode({
    port,
    in: dir === 'in',
    size8: true,
    address64: true,
    string: extra.string ?? false,
  });

describe('CPUID through the GHCB', () => {
  it('answers from the CPU model that also wrote the CPUID page, per vCPU, with XSAVE hidden', () => {
    const got: Record<string, Answer> = {};
    const cvm = runGuest(function* (cpu) {
      got.vendor = yield* exit(cpu, SW_EXITCODE.CPUID, 0n, 0n, { rax: 0, rcx: 0 });
      got.leaf1 = yield* exit(cpu, SW_EXITCODE.CPUID, 0n, 0n, { rax: 1, rcx: 0 });
      got.leaf7 = yield* exit(cpu, SW_EXITCODE.CPUID, 0n, 0n, { rax: 7, rcx: 0 });
      got.xsave = yield* exit(cpu, SW_EXITCODE.CPUID, 0n, 0n, { rax: 0xd, rcx: 1, xcr0: 1 });
      got.sev = yield* exit(cpu, SW_EXITCODE.CPUID, 0n, 0n, { rax: 0x8000_001f, rcx: 0 });
      // Missing inputs: RCX; XCR0 for leaf 0xD.
      got.noRcx = yield* exit(cpu, SW_EXITCODE.CPUID, 0n, 0n, { rax: 1 });
      got.noXcr0 = yield* exit(cpu, SW_EXITCODE.CPUID, 0n, 0n, { rax: 0xd, rcx: 0 });
    });
    const vendor = got.vendor!;
    expect(pair(vendor)).toEqual([0n, 0n]);
    const text = Buffer.alloc(12);
    text.writeUInt32LE(Number(vendor.reg('rbx')), 0);
    text.writeUInt32LE(Number(vendor.reg('rdx')), 4);
    text.writeUInt32LE(Number(vendor.reg('rcx')), 8);
    expect(text.toString('latin1')).toBe('AuthenticAMD');
    const ecx1 = Number(got.leaf1!.reg('rcx'));
    expect(ecx1 & (1 << 26)).toBe(0); // XSAVE hidden
    expect(ecx1 & (1 << 28)).toBe(0); // AVX hidden
    expect(ecx1 & (1 << 3)).toBe(0); // MONITOR hidden
    expect(ecx1 & (1 << 31)).not.toBe(0); // hypervisor
    expect(Number(got.leaf7!.reg('rbx')) & (1 << 5)).toBe(0); // AVX2 hidden
    expect(got.xsave!.reg('rbx')).toBe(0x240n);
    expect(Number(got.sev!.reg('rbx')) & 0x3f).toBe(51);
    expect(pair(got.noRcx!)).toEqual(MISSING);
    expect(pair(got.noXcr0!)).toEqual(MISSING);

    // The page the firmware measured says the same as the host, leaf for leaf.
    const model = platformOf(cvm.vm).cpu;
    const page = new CpuModel({ product: 'Milan', vcpuCount: 1 }).snpCpuidEntries();
    for (const e of page) {
      const r = model.cpuid(e.eaxIn, e.ecxIn, e.xcr0In === 0n ? 1n : e.xcr0In, 0n, 0);
      expect({ eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx }).toEqual(r);
    }
  });

  it('tells each vCPU its own APIC ID in leaf 1 and 0xB', () => {
    const model = new CpuModel({ product: 'Genoa', vcpuCount: 4 });
    expect(model.cpuid(1, 0, 1n, 0n, 3).ebx >>> 24).toBe(3);
    expect(model.cpuid(0xb, 0, 1n, 0n, 2).edx).toBe(2);
    expect(model.cpuid(0x8000_001e, 0, 1n, 0n, 1).eax).toBe(1);
    // AVX-512 hidden on Genoa too.
    expect(model.cpuid(7, 0, 1n, 0n, 0).ebx & (1 << 16)).toBe(0);
    expect(model.cpuid(0xd, 2, 7n, 0n, 0)).toEqual({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
  });
});

describe('MSR access through the GHCB', () => {
  it('reads and writes the MSRs Linux touches and injects #GP for the rest, as KVM does', () => {
    const got: Record<string, Answer> = {};
    runGuest(function* (cpu) {
      const rd = (msr: number) => exit(cpu, SW_EXITCODE.MSR, 0n, 0n, { rcx: msr });
      const wr = (msr: number, v: bigint) =>
        exit(cpu, SW_EXITCODE.MSR, 1n, 0n, { rcx: msr, rax: v & 0xffff_ffffn, rdx: v >> 32n });
      got.pat = yield* rd(MSR.PAT);
      got.apicBase = yield* rd(MSR.APIC_BASE);
      got.patWrite = yield* wr(MSR.PAT, 0x0006_0606_0006_0606n);
      got.patAfter = yield* rd(MSR.PAT);
      got.patBad = yield* wr(MSR.PAT, 0x0000_0000_0000_0002n); // type 2 is reserved
      got.unknownRead = yield* rd(0x1234_5678);
      got.unknownWrite = yield* wr(0xc001_0999, 1n);
      got.predCmdRead = yield* rd(MSR.PRED_CMD);
      got.tscWrite = yield* wr(MSR.TSC, 1n << 40n);
      got.tsc = yield* rd(MSR.TSC);
      got.noRcx = yield* exit(cpu, SW_EXITCODE.MSR, 0n, 0n, {});
      got.noRdx = yield* exit(cpu, SW_EXITCODE.MSR, 1n, 0n, { rcx: MSR.PAT, rax: 6 });
    });
    const value = (a: Answer): bigint => (a.reg('rdx')! << 32n) | a.reg('rax')!;
    expect(pair(got.pat!)).toEqual([0n, 0n]);
    expect(value(got.pat!)).toBe(PAT_DEFAULT);
    expect(value(got.apicBase!)).toBe(0xfee0_0900n);
    expect(pair(got.patWrite!)).toEqual([0n, 0n]);
    expect(value(got.patAfter!)).toBe(0x0006_0606_0006_0606n);
    for (const k of ['patBad', 'unknownRead', 'unknownWrite', 'predCmdRead'])
      expect(pair(got[k]!), k).toEqual([1n, GP]);
    expect(pair(got.tscWrite!)).toEqual([0n, 0n]);
    const tsc = value(got.tsc!);
    expect(tsc >= 1n << 40n && tsc < (1n << 40n) + 1_000_000n).toBe(true);
    expect(pair(got.noRcx!)).toEqual(MISSING);
    expect(pair(got.noRdx!)).toEqual(MISSING);
  });
});

describe('the small exits', () => {
  it('answers RDTSC/RDTSCP from the virtual TSC, and WBINVD, NMI_COMPLETE, VMMCALL, DR7', () => {
    const got: Record<string, Answer> = {};
    runGuest(function* (cpu) {
      got.t1 = yield* exit(cpu, SW_EXITCODE.RDTSC, 0n, 0n);
      got.t2 = yield* exit(cpu, SW_EXITCODE.RDTSC, 0n, 0n);
      got.aux = yield* exit(cpu, SW_EXITCODE.MSR, 1n, 0n, { rcx: MSR.TSC_AUX, rax: 7, rdx: 0 });
      got.tscp = yield* exit(cpu, SW_EXITCODE.RDTSCP, 0n, 0n);
      got.wbinvd = yield* exit(cpu, SW_EXITCODE.WBINVD, 0n, 0n);
      got.nmi = yield* exit(cpu, SW_EXITCODE.NMI_COMPLETE, 0n, 0n);
      got.vmmcall = yield* exit(cpu, SW_EXITCODE.VMMCALL, 0n, 0n, { rax: 9, cpl: 0 });
      got.vmmcall3 = yield* exit(cpu, SW_EXITCODE.VMMCALL, 0n, 0n, { rax: 9, cpl: 3 });
      got.vmmcallNoCpl = yield* exit(cpu, SW_EXITCODE.VMMCALL, 0n, 0n, { rax: 9 });
      got.dr7w = yield* exit(cpu, SW_EXITCODE.WRITE_DR7, 0n, 0n, { rax: 0x401 });
      got.dr7r = yield* exit(cpu, SW_EXITCODE.READ_DR7, 0n, 0n);
      got.dr7NoRax = yield* exit(cpu, SW_EXITCODE.WRITE_DR7, 0n, 0n);
    });
    const tsc = (a: Answer): bigint => (a.reg('rdx')! << 32n) | a.reg('rax')!;
    expect(tsc(got.t2!)).toBeGreaterThan(tsc(got.t1!));
    expect(tsc(got.tscp!)).toBeGreaterThan(tsc(got.t2!));
    expect(got.tscp!.reg('rcx')).toBe(7n);
    expect(got.t1!.reg('rcx')).toBeUndefined();
    for (const k of ['wbinvd', 'nmi', 'vmmcall', 'dr7w']) expect(pair(got[k]!)[0], k).toBe(0n);
    expect(got.vmmcall!.reg('rax')).toBe(BigInt.asUintN(64, -1000n));
    expect(got.vmmcall3!.reg('rax')).toBe(BigInt.asUintN(64, -1n));
    expect(pair(got.vmmcallNoCpl!)).toEqual(MISSING);
    expect(got.dr7r!.reg('rax')).toBe(0x401n);
    expect(pair(got.dr7NoRax!)).toEqual(MISSING);
  });
});

describe('MMIO through the shared buffer', () => {
  it('routes reads and writes to the device bus; unclaimed reads are all ones', () => {
    const got: Record<string, Answer> = {};
    const written: number[][] = [];
    runGuest(
      function* (cpu) {
        const s = { swScratch: BUFFER_GPA };
        got.unclaimed = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0xfed0_0000n, 4n, s);
        got.read = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0xfeb0_0010n, 4n, s);
        got.write = yield* exit(
          cpu,
          SW_EXITCODE.MMIO_WRITE,
          0xfeb0_0000n,
          2n,
          s,
          Uint8Array.of(0xab, 0xcd),
        );
        got.outside = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0xfec0_0000n, 8n, {
          swScratch: OUTSIDE_GPA,
        });
        got.noScratch = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0xfec0_0000n, 4n);
        // Scratch inside the GHCB but before the shared buffer, or running past its end.
        got.inSaveArea = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0n, 4n, {
          swScratch: GHCB_GPA + 0x100,
        });
        got.pastEnd = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0n, 0x7f1n, s);
        got.tooBig = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0n, 0x10001n, {
          swScratch: OUTSIDE_GPA,
        });
        got.private = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0n, 4n, { swScratch: 0x6_0000 });
        got.hugeGpa = yield* exit(cpu, SW_EXITCODE.MMIO_READ, 0xffff_ffff_ffff_fff0n, 4n, s);
      },
      (cvm) =>
        platformOf(cvm.vm).mmio.register(0xfeb0_0000, 0x20, {
          name: 'probe',
          read: (off, data) => data.fill(off + 1),
          write: (off, data) => void written.push([off, ...data]),
        }),
    );
    expect(pair(got.unclaimed!)).toEqual([0n, 0n]);
    expect([...got.unclaimed!.buffer(4)]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect([...got.read!.buffer(4)]).toEqual([0x11, 0x11, 0x11, 0x11]);
    expect(pair(got.write!)).toEqual([0n, 0n]);
    expect(written).toEqual([[0, 0xab, 0xcd]]);
    expect(pair(got.outside!)).toEqual([0n, 0n]);
    expect(pair(got.noScratch!)).toEqual(MISSING);
    for (const k of ['inSaveArea', 'pastEnd', 'tooBig', 'private'])
      expect(pair(got[k]!), k).toEqual(BAD_SCRATCH);
    expect([...got.hugeGpa!.buffer(4)]).toEqual([0xff, 0xff, 0xff, 0xff]);
  });
});

describe('port I/O and the 8250 UART on COM1', () => {
  it('has the 16550A registers Linux probes: LSR, scratch, divisor latch, FIFO, loopback', () => {
    const got: Record<string, bigint | undefined> = {};
    const answers: Answer[] = [];
    const cvm = runGuest(function* (cpu) {
      const inb = function* (port: number) {
        const a = yield* exit(cpu, SW_EXITCODE.IOIO, ioInfo(port, 'in'), 0n);
        answers.push(a);
        return a.reg('rax');
      };
      const outb = function* (port: number, v: number) {
        answers.push(yield* exit(cpu, SW_EXITCODE.IOIO, ioInfo(port, 'out'), 0n, { rax: v }));
      };
      got.lsr = yield* inb(0x3fd);
      yield* outb(0x3ff, 0x5a);
      got.scratch = yield* inb(0x3ff);
      yield* outb(0x3fb, UART_LCR.DLAB | 0x03);
      yield* outb(0x3f8, 0x01); // 115200 baud
      yield* outb(0x3f9, 0x00);
      got.dll = yield* inb(0x3f8);
      yield* outb(0x3fb, 0x03);
      got.lcr = yield* inb(0x3fb);
      yield* outb(0x3fa, UART_FCR.ENABLE | UART_FCR.CLEAR_RCVR | UART_FCR.CLEAR_XMIT);
      got.iir = yield* inb(0x3fa);
      // Loopback: what goes out comes back in through the FIFO, in order.
      yield* outb(0x3fc, UART_MCR.LOOP | UART_MCR.RTS | UART_MCR.OUT2);
      got.msrLoop = yield* inb(0x3fe);
      for (const b of [0x41, 0x42, 0x43]) yield* outb(0x3f8, b);
      got.lsrData = yield* inb(0x3fd);
      got.rx1 = yield* inb(0x3f8);
      got.rx2 = yield* inb(0x3f8);
      got.rx3 = yield* inb(0x3f8);
      got.lsrEmpty = yield* inb(0x3fd);
      yield* outb(0x3fc, UART_MCR.DTR | UART_MCR.RTS | UART_MCR.OUT2);
      yield* outb(0x3f8, 0x68); // 'h' goes to the serial sink
      yield* outb(0x3f8, 0x0a);
      // A port nobody claims reads all ones and keeps RAX's upper bits (KVM).
      const a = yield* exit(cpu, SW_EXITCODE.IOIO, ioInfo(0x2f8, 'in'), 0n, {
        rax: 0x1234_5600n,
      });
      got.com2 = a.reg('rax');
      answers.push(yield* exit(cpu, SW_EXITCODE.IOIO, ioInfo(0x80, 'out'), 0n, { rax: 0 }));
    });
    expect(answers.every((a) => a.info1 === 0n)).toBe(true);
    expect(got.lsr).toBe(BigInt(UART_LSR.THRE | UART_LSR.TEMT));
    expect(got.scratch).toBe(0x5an);
    expect(got.dll).toBe(1n);
    expect(got.lcr).toBe(3n);
    expect(got.iir).toBe(BigInt(UART_IIR.FIFO_ENABLED | UART_IIR.NO_INT));
    expect(got.msrLoop! & 0xf0n).toBe(0x90n); // CTS (from RTS) | DCD (from OUT2), Linux's loopback test
    expect(got.lsrData! & BigInt(UART_LSR.DR)).toBe(1n);
    expect([got.rx1, got.rx2, got.rx3]).toEqual([0x41n, 0x42n, 0x43n]);
    expect(got.lsrEmpty! & BigInt(UART_LSR.DR)).toBe(0n);
    expect(got.com2).toBe(0x1234_56ffn);
    expect(cvm.serial).toContain('h');
    expect(platformOf(cvm.vm).com1.divisor).toBe(1);
  });

  it('moves string I/O through the scratch area and refuses bad ones', () => {
    const got: Record<string, Answer> = {};
    const cvm = runGuest(function* (cpu) {
      const text = new TextEncoder().encode('hello from outsb\n');
      got.outs = yield* exit(
        cpu,
        SW_EXITCODE.IOIO,
        ioInfo(0x3f8, 'out', { string: true }),
        BigInt(text.length),
        { swScratch: BUFFER_GPA },
        text,
      );
      got.ins = yield* exit(cpu, SW_EXITCODE.IOIO, ioInfo(0x2e8, 'in', { string: true }), 3n, {
        swScratch: BUFFER_GPA,
      });
      got.tooLong = yield* exit(
        cpu,
        SW_EXITCODE.IOIO,
        ioInfo(0x3f8, 'out', { string: true }),
        0x7f1n,
        { swScratch: BUFFER_GPA },
      );
      got.overflow = yield* exit(
        cpu,
        SW_EXITCODE.IOIO,
        ioInfo(0x3f8, 'out', { string: true }),
        0xffff_ffff_ffff_ffffn,
        { swScratch: BUFFER_GPA },
      );
      got.noScratch = yield* exit(
        cpu,
        SW_EXITCODE.IOIO,
        ioInfo(0x3f8, 'out', { string: true }),
        1n,
      );
      got.outNoRax = yield* exit(cpu, SW_EXITCODE.IOIO, ioInfo(0x3f8, 'out'), 0n);
    });
    expect(pair(got.outs!)).toEqual([0n, 0n]);
    expect(cvm.serial).toContain('hello from outsb');
    expect(pair(got.ins!)).toEqual([0n, 0n]);
    expect([...got.ins!.buffer(4)]).toEqual([0xff, 0xff, 0xff, 0]);
    expect(pair(got.tooLong!)).toEqual(BAD_SCRATCH);
    expect(pair(got.overflow!)).toEqual(BAD_SCRATCH);
    expect(pair(got.noScratch!)).toEqual(MISSING);
    expect(pair(got.outNoRax!)).toEqual(MISSING);
  });

  it('raises and acknowledges its interrupts as a 16550A does', () => {
    const out: number[] = [];
    const irq: boolean[] = [];
    const u = new Uart8250({ output: (b) => out.push(...b), onIrq: (l) => irq.push(l) });
    const reg = (r: number): number => u.in(0x3f8 + r, 1);
    const set = (r: number, v: number): void => u.out(0x3f8 + r, 1, v);
    set(4, UART_MCR.OUT2);
    set(1, UART_IER.THRI);
    expect(reg(2) & 0x0f).toBe(UART_IIR.THRI); // THR empty, reported once
    expect(reg(2) & 0x0f).toBe(UART_IIR.NO_INT);
    set(0, 0x41);
    expect(out).toEqual([0x41]);
    expect(u.irq).toBe(true);
    set(1, UART_IER.RDI);
    expect(u.irq).toBe(false);
    // FIFO mode with trigger level 4: below it a character timeout, at it received data.
    set(2, UART_FCR.ENABLE | (1 << 6));
    u.receive(Uint8Array.of(1, 2));
    expect(reg(2) & 0x0f).toBe(UART_IIR.TIMEOUT);
    u.receive(Uint8Array.of(3, 4));
    expect(reg(2) & 0x0f).toBe(UART_IIR.RDI);
    // 16 bytes fit; the 17th overruns, which LSR reports once.
    expect(u.receive(new Uint8Array(20))).toBe(12);
    set(1, UART_IER.RLSI);
    expect(reg(2) & 0x0f).toBe(UART_IIR.RLSI);
    expect(reg(5) & UART_LSR.OE).toBe(UART_LSR.OE);
    expect(reg(5) & UART_LSR.OE).toBe(0);
    expect([reg(0), reg(0)]).toEqual([1, 2]);
    // Without OUT2 the line stays low whatever is pending.
    set(1, UART_IER.RDI);
    set(4, 0);
    expect(u.irq).toBe(false);
    expect(irq[0]).toBe(true);
  });
});

describe('hostile GHCB contents', () => {
  it('answers any mix of the new exits with garbage inputs without crashing or ending the VM', () => {
    const codes = [
      SW_EXITCODE.CPUID,
      SW_EXITCODE.MSR,
      SW_EXITCODE.IOIO,
      SW_EXITCODE.MMIO_READ,
      SW_EXITCODE.MMIO_WRITE,
      SW_EXITCODE.RDTSC,
      SW_EXITCODE.RDTSCP,
      SW_EXITCODE.WBINVD,
      SW_EXITCODE.VMMCALL,
      SW_EXITCODE.NMI_COMPLETE,
      SW_EXITCODE.READ_DR7,
      SW_EXITCODE.WRITE_DR7,
      SW_EXITCODE.AP_JUMP_TABLE,
      SW_EXITCODE.GET_APIC_IDS,
    ];
    const u64 = fc.oneof(
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.constantFrom(0n, 1n, 0xdn, BigInt(BUFFER_GPA), BigInt(OUTSIDE_GPA), 0x3f8n << 16n),
    );
    const cases = fc.sample(
      fc.record({
        code: fc.constantFrom(...codes),
        info1: u64,
        info2: u64,
        rax: fc.option(u64, { nil: undefined }),
        rcx: fc.option(u64, { nil: undefined }),
        rdx: fc.option(u64, { nil: undefined }),
        xcr0: fc.option(u64, { nil: undefined }),
        swScratch: fc.option(u64, { nil: undefined }),
        cpl: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
      }),
      { numRuns: 400, seed: 7 },
    );
    const answers: Answer[] = [];
    runGuest(function* (cpu) {
      for (const c of cases) {
        const inputs: Inputs = {};
        for (const k of ['rax', 'rcx', 'rdx', 'xcr0', 'swScratch', 'cpl'] as const) {
          const v = c[k];
          if (v !== undefined) inputs[k] = v;
        }
        answers.push(yield* exit(cpu, c.code, c.info1, c.info2, inputs));
      }
    });
    expect(answers).toHaveLength(cases.length);
    for (const a of answers) {
      expect([0n, 1n, 2n]).toContain(a.info1);
      if (a.info1 === 1n) expect(a.info2).toBe(GP);
      if (a.info1 === 2n) expect([3n, 4n, 5n]).toContain(a.info2);
    }
  });
});
