// Interrupts into an x86-64 guest at VMPL2 on the x86 engine, end to end: vCPU 0's scripted guest
// validates pages through the SVSM, writes page tables, a GDT, an IDT and the code, and starts
// vCPU 1 with CREATE_VCPU (as test/x86-guest.test.ts does). vCPU 1 runs hand-assembled machine
// code that loads the GDT and IDT (LGDT, LIDT), makes its GHCB page shared and registers it (GHCB
// MSR protocol), and programs its own x2APIC with WRMSR. Under SEV-ES a WRMSR of an x2APIC MSR
// raises #VC 0x7C; the guest's #VC handler forwards it to the host through the GHCB page (the MSR
// NAE event), as Linux's does. The x2APIC timer then fires on the host side (virtual time), the host
// injects its vector through EVENTINJ when vCPU 1 can take it (INT_STATE), or asks for a VINTR exit
// when it cannot, and the engine delivers it through the guest's 64-bit IDT to a handler that
// records RDTSC and the interrupted RIP, counts, EOIs (WRMSR -> #VC -> GHCB) and IRETQs.
// Facts: SDM vol. 3A 6.14 (64-bit IDT gates), 11.5.4 (APIC timer); APM vol. 2 15.20-15.21
// (EVENTINJ, V_IRQ/VINTR); GHCB spec 4.1.1 (MSR NAE event); src/host/README.md "Engines and
// interrupts".
import { describe, expect, it } from 'vitest';
import {
  type GuestCpu,
  MSR,
  PSC_OP,
  VMSA,
  X2APIC_MSR as A,
  msrPscRequest,
  msrRegisterGpaRequest,
  msrTerminateRequest,
} from '../src/arch/index.js';
import type { Machine } from '../src/hw/machine.js';
import { platformOf } from '../src/host/devices/platform.js';
import { createTestCvm } from './support/cvm.js';
import {
  AP_VMSA,
  CODE,
  DATA,
  hex,
  imm32,
  le,
  mov,
  PAGE,
  RecordingX86Engine,
  startX86Ap,
} from './support/x86-ap.js';

// Main code at CODE, the #VC handler at +0x800, the timer handler at +0xC00.
const VC_ENTRY = CODE + 0x800;
const TICK_ENTRY = CODE + 0xc00;
const GDT = DATA; // null, 0x08 = 64-bit code, 0x10 = data
const GDTR = DATA + 0x40; // LGDT operand: limit, base
const IDTR = DATA + 0x50; // LIDT operand
const COUNT = DATA + 0x100; // u32: interrupts the handler took
const TSCS = DATA + 0x400; // u64[64]: RDTSC at each handler entry
const RIPS = DATA + 0x600; // u64[64]: the RIP each interrupt returned to
/** The GHCB: never validated, made shared by the guest, mapped with the C-bit clear. */
const GHCB = 0x28000;
const IDT = 0x29000;
const VECTOR = 0x30;
const VC = 29;
const X2APIC_ON = 0xfee0_0c00n; // base, EN, EXTD (vCPU 1 is not the BSP)
const LVT_PERIODIC = 1 << 17;
const LVT_MASKED = 1 << 16;

const rel8 = (v: number) => le(v & 0xff, 1);
/** ECX = msr, EDX:EAX = value; wrmsr. For any MSR but the GHCB's this raises #VC 0x7C. */
const wrmsr = (msr: number, value: number | bigint) =>
  mov(1, msr) + mov(0, BigInt(value) & 0xffff_ffffn) + mov(2, BigInt(value) >> 32n) + '0f30';
/** A GHCB MSR protocol request: the GHCB MSR is the CPU's own (no #VC); then VMGEXIT. */
const msrProtocol = (value: bigint) => wrmsr(MSR.GHCB, value) + 'f30f01d9';
/** `body` then a jcc (`cc`: 72 jb, 74 je, 75 jne) back to the start of body. */
const loop = (body: string, cc: string) => {
  const n = hex(body).length + 2;
  if (n > 128) throw new Error('loop body too long for rel8');
  return body + cc + rel8(-n);
};
/** mov ecx, n; 1: dec ecx; jnz 1b -- 2n instructions with nothing leaving the guest. */
const spin = (n: number) => mov(1, n) + loop('ffc9', '75');
const STI = 'fb';
const CLI = 'fa';
const HLT = 'f4';
/** cmp dword [COUNT], imm8 */
const cmpCount = (n: number) => '833c25' + imm32(COUNT) + rel8(n);
/** rdtsc; shl rdx,32; or rax,rdx; mov r15,rax */
const TSC_TO_R15 = '0f31 48c1e220 4809d0 4989c7';

/**
 * What every guest program starts with: GDT and IDT loaded, the GHCB page shared and registered,
 * the x2APIC on and software-enabled, the timer divider at 1 (one timer tick per TSC tick).
 */
const PROLOGUE =
  '0f011425' +
  imm32(GDTR) + // lgdt [GDTR]
  '0f011c25' +
  imm32(IDTR) + // lidt [IDTR]
  msrProtocol(msrPscRequest(GHCB / PAGE, PSC_OP.SHARED)) +
  msrProtocol(msrRegisterGpaRequest(GHCB / PAGE)) +
  wrmsr(MSR.APIC_BASE, X2APIC_ON) + // #VC -> GHCB MSR exit, as are all below
  wrmsr(A.SVR, 0x1ff) +
  wrmsr(A.TIMER_DIVIDE_CONFIG, 0xb);
/** The guest's last words: a GHCB MSR protocol termination request (general reason set, 0). */
const TERMINATE = msrProtocol(msrTerminateRequest(0, 0)) + HLT;

/**
 * #VC handler (vector 29, error code on the stack): forwards a WRMSR (#VC 0x7C) to the host
 * through the GHCB page and returns past it; anything else is fatal (UD2 with no #UD gate: a
 * triple fault, the VM ends).
 */
const VC_HANDLER = [
  '50 51 52 53', //                    push rax; push rcx; push rdx; push rbx
  '48837c24207c', //                   cmp qword [rsp+0x20], 0x7c  ; the error code: MSR
  '0f859b000000', //                   jne fatal
  '488b442428', //                     mov rax, [rsp+0x28]         ; the faulting RIP
  '6681380f30', //                     cmp word [rax], 0x300f      ; wrmsr?
  '0f858b000000', //                   jne fatal
  'bb' + imm32(GHCB), //               mov ebx, GHCB
  '48898b08030000', //                 mov [rbx+0x308], rcx        ; GHCB.RCX
  '488b442418', //                     mov rax, [rsp+0x18]         ; the guest's RAX
  '488983f8010000', //                 mov [rbx+0x1f8], rax        ; GHCB.RAX
  '48899310030000', //                 mov [rbx+0x310], rdx        ; GHCB.RDX
  '48c783900300007c000000', //         mov qword [rbx+0x390], 0x7c ; SW_EXITCODE: MSR
  '48c7839803000001000000', //         mov qword [rbx+0x398], 1    ; SW_EXITINFO1: WRMSR
  '48c783a003000000000000', //         mov qword [rbx+0x3a0], 0    ; SW_EXITINFO2
  '48b80000000000000080', //           mov rax, 1 << 63            ; valid: RAX
  '488983f0030000', //                 mov [rbx+0x3f0], rax
  '48b80000000006001c00', //           mov rax, 0x001c000600000000 ; valid: RCX RDX SW_EXIT*
  '488983f8030000', //                 mov [rbx+0x3f8], rax
  mov(1, MSR.GHCB), //                 mov ecx, MSR_GHCB
  '89d8 31d2 0f30', //                 mov eax, ebx; xor edx, edx; wrmsr  ; GHCB MSR = its GPA
  'f30f01d9', //                       vmgexit
  '4883bb9803000000', //               cmp qword [rbx+0x398], 0    ; the host's answer
  '7510', //                           jne fatal
  '4883442428 02', //                  add qword [rsp+0x28], 2     ; past the wrmsr
  '5b 5a 59 58', //                    pop rbx; pop rdx; pop rcx; pop rax
  '4883c408', //                       add rsp, 8                  ; the error code
  '48cf', //                           iretq
  '0f0b', //                   fatal:  ud2
].join('');

/**
 * The timer's handler (vector 0x30, interrupt gate: IF clear): records RDTSC and the interrupted
 * RIP, counts, EOIs its x2APIC and returns.
 */
const TICK_HANDLER = [
  '50 51 52', //                       push rax; push rcx; push rdx
  '0f31', //                           rdtsc
  '8b0c25' + imm32(COUNT), //          mov ecx, [COUNT]
  '83e13f', //                         and ecx, 63
  '8904cd' + imm32(TSCS), //           mov [TSCS + rcx*8], eax
  '8914cd' + imm32(TSCS + 4), //       mov [TSCS + 4 + rcx*8], edx
  '488b442418', //                     mov rax, [rsp+0x18]         ; the interrupted RIP
  '488904cd' + imm32(RIPS), //         mov [RIPS + rcx*8], rax
  'ff0425' + imm32(COUNT), //          inc dword [COUNT]
  wrmsr(A.EOI, 0), //                  mov ecx, 0x80b; mov eax, 0; mov edx, 0; wrmsr  ; #VC
  '5a 59 58', //                       pop rdx; pop rcx; pop rax
  '48cf', //                           iretq
].join('');

/** A 64-bit interrupt gate (type 0xE, present, DPL 0) to `handler` in the code segment 0x08. */
function gate(handler: number): Uint8Array {
  const g = new Uint8Array(16);
  const v = new DataView(g.buffer);
  v.setUint16(0, handler & 0xffff, true);
  v.setUint16(2, 0x08, true);
  g[5] = 0x8e;
  v.setUint16(6, handler >>> 16, true);
  return g;
}

/** vCPU 0: the tables, handlers and code vCPU 1 needs, then vCPU 1 started at CODE. */
function bsp(cpu: GuestCpu, code: string): Generator<void, void, void> {
  return startX86Ap(cpu, {
    extraPages: [IDT],
    shared: GHCB,
    writes: [
      [CODE, hex(code)],
      [VC_ENTRY, hex(VC_HANDLER)],
      [TICK_ENTRY, hex(TICK_HANDLER)],
      [GDT + 8, hex(le(0x00af_9b00_0000_ffffn, 8))], // 64-bit code, DPL 0
      [GDT + 16, hex(le(0x00cf_9300_0000_ffffn, 8))], // data
      [GDTR, hex(le(23, 2) + le(GDT, 8))],
      [IDTR, hex(le(256 * 16 - 1, 2) + le(IDT, 8))],
      [IDT + VC * 16, gate(VC_ENTRY)],
      [IDT + VECTOR * 16, gate(TICK_ENTRY)],
    ],
  });
}

function runGuest(code: string) {
  let engine: RecordingX86Engine | null = null;
  const cvm = createTestCvm((cpu) => bsp(cpu, code), {
    vcpus: 2,
    x86Vcpus: [1],
    // Time slices of 100k instructions and at most 500 VMRUNs: a guest that spins where it
    // should have been interrupted ends in a termination, not a hang.
    x86Engine: (m: Machine) => (engine = new RecordingX86Engine(m, { slice: 100_000 })),
  });
  const state = cvm.vm.run(500);
  const memory = cvm.machine.trackedMemory();
  const vmsa = VMSA.on(memory.read(AP_VMSA, PAGE));
  const data = Buffer.from(memory.read(DATA, PAGE));
  const vcpu = cvm.machine.vcpus[1]!;
  return {
    cvm,
    state,
    vmsa,
    vcpu,
    engine: engine!,
    apic: platformOf(cvm.vm).apics.apics[1]!,
    count: data.readUInt32LE(COUNT - DATA),
    tscs: (n: number) => [...Array(n).keys()].map((i) => data.readBigUInt64LE(TSCS - DATA + 8 * i)),
    rips: (n: number) => [...Array(n).keys()].map((i) => data.readBigUInt64LE(RIPS - DATA + 8 * i)),
    halts: cvm.hostLog.filter((l) => l === 'vCPU 1 VMPL2 halted').length,
    instructions: engine!.cpuOf(vcpu)!.instructions,
  };
}

/** Every exception the guest raised was #VC for an MSR access (the handler forwarded it). */
function onlyMsrVc(faults: [number, number][], n: number) {
  expect(faults).toEqual(Array.from({ length: n }, () => [VC, 0x7c]));
}

describe('an x86-64 guest at VMPL2 takes the interrupts its x2APIC timer raises', () => {
  it('sleeps in HLT and wakes for each periodic tick, at the tick', () => {
    const N = 5;
    const P = 1_000_000; // timer ticks = TSC ticks: 1 ms of virtual time
    const main =
      PROLOGUE +
      TSC_TO_R15 +
      wrmsr(A.LVT_TIMER, LVT_PERIODIC | VECTOR) +
      wrmsr(A.TIMER_INITIAL_COUNT, P) +
      STI;
    const code =
      main +
      loop(
        HLT + //                        1: hlt
          '49ffc4' + //                    inc r12        ; wake-ups
          cmpCount(N), //                  cmp dword [COUNT], N
        '72', //                           jb 1b
      ) +
      CLI +
      wrmsr(A.LVT_TIMER, LVT_MASKED | LVT_PERIODIC | VECTOR) +
      TERMINATE;
    const hltRip = BigInt(CODE + hex(main).length + 1);
    const g = runGuest(code);
    expect(g.state).toBe('terminated');
    expect(g.cvm.vm.termination?.byGuest).toBe(true);
    expect(g.vmsa.get('guestExitCode')).toBe(0x403n);
    // The handler ran N times, each time returning to the instruction after the HLT.
    expect(g.count).toBe(N);
    expect(g.rips(N)).toEqual(Array(N).fill(hltRip));
    // Each entry came one period after the last, the first one period after the timer was armed
    // (plus the few instructions from the RDTSC to the WRMSR's exit and into the handler).
    const tscs = g.tscs(N);
    const armed = g.vmsa.get('r15');
    expect(tscs[0]! - armed).toBeGreaterThanOrEqual(BigInt(P));
    expect(tscs[0]! - armed).toBeLessThan(BigInt(P) + 100n);
    for (let i = 1; i < N; i++) expect(tscs[i]! - tscs[i - 1]!).toBe(BigInt(P));
    // It slept: one HLT exit and one pass of the loop per interrupt, and a few hundred
    // instructions for 5 ms of virtual time (the host skipped time to each tick).
    expect(g.vmsa.get('r12')).toBe(BigInt(N));
    expect(g.halts).toBe(N);
    expect(g.instructions).toBeLessThan(1000);
    expect(g.cvm.machine.tsc).toBeGreaterThan(BigInt(N * P));
    expect(platformOf(g.cvm.vm).injected.get(VECTOR)).toBe(N);
    // Every EOI reached the APIC: nothing is left in service.
    expect(g.apic.isr.highest()).toBe(-1);
    // APIC_BASE, SVR, TDCR, LVT, TMICT, N EOIs and the LVT mask: all through the #VC handler.
    onlyMsrVc(g.engine.faults, 5 + N + 1);
  });

  it('with IF clear, a HLT gets nothing: the vector stays pending and the VM stops', () => {
    const code =
      PROLOGUE +
      wrmsr(A.LVT_TIMER, VECTOR) + // one-shot
      wrmsr(A.TIMER_INITIAL_COUNT, 1000) +
      spin(5000) + // the timer expires meanwhile
      wrmsr(A.TPR, 0) + // an exit: the host sees the vector pending and IF clear
      HLT;
    const g = runGuest(code);
    expect(g.cvm.vm.termination).toBeNull();
    expect(g.state).toBe('stopped');
    expect(g.count).toBe(0);
    expect(platformOf(g.cvm.vm).injected.get(VECTOR)).toBeUndefined();
    expect(g.apic.irr.has(VECTOR)).toBe(true);
    expect(g.apic.isr.highest()).toBe(-1);
    expect(g.vcpu.vIrq).toBe(true); // the host waits for a window that never opens
    expect(g.vcpu.intState).toBe(0);
    expect(g.vmsa.get('guestExitCode')).toBe(0x78n);
    expect(g.vmsa.get('rip')).toBe(BigInt(CODE + hex(code).length));
    expect(g.halts).toBe(1);
    onlyMsrVc(g.engine.faults, 6);
    // Nothing changes by running it again: the vCPU stays parked.
    g.cvm.vm.state = 'running';
    expect(g.cvm.vm.run(1000)).toBe('stopped');
    expect(platformOf(g.cvm.vm).injected.get(VECTOR)).toBeUndefined();
    expect(g.cvm.hostLog.filter((l) => l === 'vCPU 1 VMPL2 halted').length).toBe(1);
  });

  it('a pending interrupt waits for STI and arrives through the VINTR exit right after it', () => {
    const before =
      PROLOGUE +
      TSC_TO_R15 +
      wrmsr(A.LVT_TIMER, VECTOR) + // one-shot
      wrmsr(A.TIMER_INITIAL_COUNT, 1000) +
      spin(5000) + // expired with IF clear
      wrmsr(A.TPR, 0) + // an exit: the host sees it pending, cannot inject, sets V_IRQ
      spin(5000) + // still closed: the engine watches for the window, nothing comes in
      '448b2c25' +
      imm32(COUNT) + // mov r13d, [COUNT]  ; taken before STI (0)
      STI;
    const spinLoop = loop(
      '49ffc6' + //                     1: inc r14
        cmpCount(0), //                    cmp dword [COUNT], 0
      '74', //                             je 1b
    );
    const code = before + spinLoop + CLI + TERMINATE;
    const g = runGuest(code);
    expect(g.state).toBe('terminated');
    expect(g.cvm.vm.termination?.byGuest).toBe(true);
    expect(g.count).toBe(1);
    expect(g.vmsa.get('r13')).toBe(0n);
    // Taken inside the loop after STI, within the engine's window-polling step (64
    // instructions), not at the next time slice (10 million) or the next exit.
    const loopStart = BigInt(CODE + hex(before).length);
    const rip = g.rips(1)[0]!;
    expect(rip).toBeGreaterThanOrEqual(loopStart);
    expect(rip).toBeLessThan(loopStart + BigInt(hex(spinLoop).length));
    const spins = g.vmsa.get('r14');
    expect(spins).toBeGreaterThanOrEqual(1n);
    expect(spins).toBeLessThan(64n);
    expect(g.cvm.vm.exitCounts.get('vintr')).toBe(1);
    expect(g.halts).toBe(0);
    // Late: the timer expired 1000 ticks after arming, the interrupt came after both spins.
    expect(g.tscs(1)[0]! - g.vmsa.get('r15')).toBeGreaterThan(20_000n);
    expect(platformOf(g.cvm.vm).injected.get(VECTOR)).toBe(1);
    expect(g.apic.isr.highest()).toBe(-1);
    onlyMsrVc(g.engine.faults, 7);
  });
});
