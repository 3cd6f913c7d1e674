// The x86 engine on a bare machine (no SVSM, a test exit handler as the host): VMRUN from a
// 64-bit VMSA at VMPL0 or VMPL2 with private identity-mapped page tables, exits with the state
// saved to the VMSA, resume, the GHCB MSR, PVALIDATE/RMPADJUST against the machine's RMP, NPF
// exits, TLB flushes on RMP changes, time slices and virtual time. Exceptions the guest raises are
// recorded by a subclass (delivery through the IDT is tested with the descriptor-table work).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NPF_ERROR_CODE, RMP_VALIDATED, VMSA } from '../../arch/index.js';
import { loadTestIdentity } from '../asp/test-identity.fixture.js';
import type { Cpu } from '../cpu/cpu.js';
import type { ExitDecision, VmExit } from '../engine.js';
import { Machine } from '../machine.js';
import { seededRandom } from '../random.js';
import type { Vcpu, VmsaRunning } from '../vcpu.js';
import { X86Engine, X86StateError, type X86EngineOptions } from './x86-engine.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const PAGE = 0x1000;
const C_BIT = 1n << 51n;
const PML4 = 0x1000;
const CODE = 0x10000;
const DATA = 0x11000;
const STACK_TOP = 0x19000;
const VMSA_GPA = 0x20000;
/** A page mapped shared (C-bit clear) in the guest's tables. */
const SHARED = 0x30000;
const npfBit = (k: keyof typeof NPF_ERROR_CODE.specs) => 1n << BigInt(NPF_ERROR_CODE.specs[k].lo);

/** Records exceptions instead of delivering them; the vCPU then leaves with exit 0xFFF. */
class RecordingEngine extends X86Engine {
  readonly faults: [number, number, bigint][] = [];
  protected override guestException(c: Cpu): VmExit | null {
    this.faults.push([c.exVector, c.exErrorCode, c.rip]);
    return { exitCode: 0xfffn, exitInfo1: 0n, exitInfo2: 0n };
  }
}

interface Seen {
  readonly exit: VmExit;
  readonly rip: bigint;
  readonly vmsa: ReturnType<typeof VMSA.on>;
}

function rig(
  code: string,
  o: {
    vmpl?: number;
    opts?: X86EngineOptions;
    vmsa?: (v: ReturnType<typeof VMSA.on>) => void;
  } = {},
) {
  const machine = new Machine({
    identity: loadTestIdentity(),
    random: seededRandom('x86 engine'),
    memoryBytes: 16 << 20,
  });
  const mem = machine.trackedMemory();
  const vmpl = o.vmpl ?? 0;
  const guestPerms: [number, number, number] = [0, 0, 0];
  if (vmpl > 0) guestPerms[vmpl - 1] = 0xf;
  const own = (gpa: number) =>
    machine.rmp.firmwareAssign(gpa / PAGE, { validated: true, vmplPerms: guestPerms });
  // Identity map of the first 2 MiB through 4 KiB pages, private except SHARED.
  const q = (v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return b;
  };
  for (const [at, next] of [
    [PML4, PML4 + PAGE],
    [PML4 + PAGE, PML4 + 2 * PAGE],
    [PML4 + 2 * PAGE, PML4 + 3 * PAGE],
  ] as const) {
    mem.write(at, q(BigInt(next) | C_BIT | 3n));
    own(at);
  }
  const pt = new Uint8Array(PAGE);
  const ptv = new DataView(pt.buffer);
  for (let i = 0; i < 512; i++) {
    ptv.setBigUint64(i * 8, BigInt(i * PAGE) | (i * PAGE === SHARED ? 0n : C_BIT) | 3n, true);
  }
  mem.write(PML4 + 3 * PAGE, pt);
  own(PML4 + 3 * PAGE);
  for (let p = CODE; p < STACK_TOP; p += PAGE) own(p);
  mem.write(CODE, hex(code));
  const page = VMSA.alloc();
  VMSA.set(page, 'cs.attrib', 0x29b); // present code segment, L = 1
  const v = VMSA.on(page)
    .set('vmpl', vmpl)
    .set('efer', 0x1d00n) // SVME, LME, LMA, NXE
    .set('cr0', 0x8001_0033n)
    .set('cr4', 0x20n)
    .set('cr3', BigInt(PML4) | C_BIT)
    .set('rflags', 2n)
    .set('rip', BigInt(CODE))
    .set('rsp', BigInt(STACK_TOP))
    .set('sevFeatures', 1n);
  o.vmsa?.(v);
  mem.write(VMSA_GPA, page);
  machine.rmp.firmwareAssign(VMSA_GPA / PAGE, { validated: true, vmsa: true });
  const engine = new RecordingEngine(machine, o.opts);
  machine.engines[vmpl] = engine;
  const vcpu = machine.vcpus[0]!;
  const seen: Seen[] = [];
  let decide: (s: Seen, vcpu: Vcpu, from: VmsaRunning) => ExitDecision = () => 'suspend';
  machine.setExitHandler((vc, exit, from) => {
    const state = VMSA.on(mem.read(from.gpa, PAGE));
    const s = { exit, rip: state.get('rip'), vmsa: state };
    seen.push(s);
    return decide(s, vc, from);
  });
  return {
    machine,
    engine,
    vcpu,
    seen,
    run: () => machine.run(vcpu, VMSA_GPA),
    onExit: (f: typeof decide) => (decide = f),
  };
}

describe('x86 engine: VMRUN, exits, resume', () => {
  it('HLT is an exit with every register and RIP after the HLT saved in the VMSA', () => {
    // mov rax,0x1122334455667788; mov ecx,2; add rcx,rax; push rcx; mov r15,rsp; hlt
    const r = rig('48b88877665544332211 b902000000 4801c1 51 4989e7 f4');
    r.run();
    expect(r.seen).toHaveLength(1);
    const { exit, vmsa, rip } = r.seen[0]!;
    expect(exit.exitCode).toBe(0x78n);
    expect(rip).toBe(BigInt(CODE + 10 + 5 + 3 + 1 + 3 + 1));
    expect(vmsa.get('guestExitCode')).toBe(0x78n);
    expect(vmsa.get('rax')).toBe(0x1122334455667788n);
    expect(vmsa.get('rcx')).toBe(0x112233445566778an);
    expect(vmsa.get('rsp')).toBe(BigInt(STACK_TOP - 8));
    expect(vmsa.get('r15')).toBe(BigInt(STACK_TOP - 8));
    expect(r.vcpu.running).toBeNull();
    // The CPU's store marked the stack page: it is no longer known to be zero.
    expect(r.machine.trackedMemory().knownZero(STACK_TOP - PAGE, PAGE)).toBe(false);
  });

  it('VMGEXIT exits with the GHCB MSR in the vCPU and resumes after it with the host answer', () => {
    // vmgexit; mov eax,7; hlt
    const r = rig('f30f01d9 b807000000 f4');
    r.vcpu.ghcbMsr[0] = 0x1234n;
    r.onExit((s, vcpu) => {
      if (s.exit.exitCode !== 0x403n) return 'suspend';
      expect(vcpu.ghcbMsr[0]).toBe(0x1234n);
      vcpu.ghcbMsr[0] = 0x5005n;
      return 'resume';
    });
    r.run();
    expect(r.seen.map((s) => [s.exit.exitCode, s.rip])).toEqual([
      [0x403n, BigInt(CODE + 4)],
      [0x78n, BigInt(CODE + 10)],
    ]);
    expect(r.seen[1]!.vmsa.get('rax')).toBe(7n);
    expect(r.engine.cpuOf(r.vcpu)!.ghcbMsr).toBe(0x5005n);
    expect(r.vcpu.ghcbMsr[0]).toBe(0x5005n);
  });

  it('an exception the guest raises goes to delivery, RIP at the faulting instruction', () => {
    // cpuid under SEV-ES: #VC 0x72
    const r = rig('90 0fa2 f4');
    r.run();
    expect(r.engine.faults).toEqual([[29, 0x72, BigInt(CODE + 1)]]);
  });

  it('a shared access to a private page is an NPF exit at the instruction (RMP, not ENC)', () => {
    // mov ebx,SHARED; mov eax,[rbx]; hlt
    const r = rig('bb00000300 8b03 f4');
    r.machine.rmp.rmpupdate(SHARED, false, true);
    r.run();
    const { exit, rip } = r.seen[0]!;
    expect(exit.exitCode).toBe(0x400n);
    expect(exit.exitInfo2).toBe(BigInt(SHARED));
    expect(exit.exitInfo1 & npfBit('rmp')).not.toBe(0n);
    expect(exit.exitInfo1 & npfBit('enc')).toBe(0n);
    expect(rip).toBe(BigInt(CODE + 5));
  });

  it('code the host rewrites between entries runs as rewritten (the code cache hears of it)', () => {
    const r = rig('b801000000 f4');
    let round = 0;
    r.onExit((_s, _v, from) => {
      if (round++ > 0) return 'suspend';
      const mem = r.machine.trackedMemory();
      mem.write(CODE, hex('b802000000 f4'));
      const state = mem.read(from.gpa, PAGE);
      VMSA.on(state).set('rip', BigInt(CODE));
      mem.write(from.gpa, state);
      return 'resume';
    });
    r.run();
    expect(r.seen.map((s) => s.vmsa.get('rax'))).toEqual([1n, 2n]);
  });

  it('gives the CPU back with an INTR exit each time slice; the TSC counts instructions', () => {
    // rdtsc; mov rbx,rax; l: jmp l
    const r = rig('0f31 4889c3 ebfe', { opts: { budget: 100, slice: 1000 } });
    r.machine.tsc = 5000n;
    let n = 0;
    r.onExit(() => (++n < 3 ? 'resume' : 'suspend'));
    r.run();
    expect(r.seen.map((s) => s.exit.exitCode)).toEqual([0x60n, 0x60n, 0x60n]);
    expect(r.seen[0]!.vmsa.get('rax')).toBe(5000n);
    expect(r.machine.tsc).toBe(5000n + 3000n);
    expect(r.seen[2]!.rip).toBe(BigInt(CODE + 5));
  });

  it('delivers an injected event at VMRUN and clears EVENTINJ.V (no IDT: shutdown)', () => {
    const r = rig('f4');
    r.vcpu.eventInj = 0x8000_0b0d; // #GP, exception, error code valid
    r.vcpu.eventInjErrorCode = 0;
    r.run();
    expect(r.seen[0]!.exit.exitCode).toBe(0x7fn);
    expect(r.vcpu.eventInj & 0x8000_0000).toBe(0);
  });

  it('runs a VMSA in 32-bit protected mode without paging (as an AP starts)', () => {
    // mov eax, 0x12345678; add eax, eax; hlt - in 32-bit code (no REX, 32-bit operands).
    const r = rig('b878563412' + '01c0' + 'f4', {
      vmsa: (v) => {
        v.set('cr0', 0x11n).set('efer', 0x1000n).set('cr3', 0n);
        v.set('cs.attrib', 0xc9b); // G, D (32-bit), P, S, code
        v.set('cs.limit', 0xffff_ffff);
        v.set('ss.attrib', 0xc93);
        v.set('ss.limit', 0xffff_ffff);
      },
    });
    r.run();
    expect(r.seen[0]!.exit.exitCode).toBe(0x78n);
    expect(r.seen[0]!.vmsa.get('rax')).toBe(0x2468acf0n);
    expect(r.seen[0]!.rip).toBe(BigInt(CODE + 8));
  });

  it('XMM0-15 and the x87 stack a guest set survive an exit and re-entry (saved, then reloaded)', () => {
    // movdqu xmmN, [DATA + 16N] for N = 0..15 (REX.R for 8..15; absolute disp32 through a SIB).
    const disp = (a: number) => Buffer.from(new Uint32Array([a]).buffer).toString('hex');
    const xmm = (op: string, n: number, at: number) =>
      'f3' +
      (n >= 8 ? '44' : '') +
      '0f' +
      op +
      (0x04 | ((n & 7) << 3)).toString(16).padStart(2, '0') +
      '25' +
      disp(at);
    let code = '';
    for (let n = 0; n < 16; n++) code += xmm('6f', n, DATA + 16 * n);
    code += 'dbe3 d9e8 d9eb'; // fninit; fld1; fldpi
    code += 'f30f01d9'; // vmgexit
    for (let n = 0; n < 16; n++) code += xmm('7f', n, DATA + 0x100 + 16 * n); // movdqu [..], xmmN
    code += 'dd1c25' + disp(DATA + 0x200) + 'dd1c25' + disp(DATA + 0x208); // fstp m64 twice
    code += 'f4';
    const r = rig(code, { vmsa: (v) => v.set('cr4', 0x220n) }); // PAE, OSFXSR
    // Distinct words, with float32 and float64 signalling NaNs among them.
    const data = new Uint8Array(256);
    const dv = new DataView(data.buffer);
    for (let k = 0; k < 64; k++) dv.setUint32(4 * k, (0x01234567 * (k + 1)) >>> 0, true);
    dv.setUint32(0, 0x7f80_0001, true);
    dv.setBigUint64(8, 0x7ff0_0000_0000_0001n, true);
    dv.setBigUint64(0xf8, 0xfff0_0000_dead_beefn, true);
    const mem = r.machine.trackedMemory();
    mem.write(DATA, data);
    r.onExit((s, vcpu) => {
      if (s.exit.exitCode !== 0x403n) return 'suspend';
      expect(s.vmsa.get('fpregXmm')).toEqual(data);
      expect(s.vmsa.get('x87Fsw') >> 11).toBe(6); // two pushes from TOP = 0
      // Between #VMEXIT and VMRUN the processor runs other contexts: only the VMSA keeps the
      // guest's registers.
      const simd = r.engine.cpuOf(vcpu)!.simd;
      simd.x32.fill(0);
      simd.stSe.fill(0);
      simd.stHi.fill(0);
      simd.stLo.fill(0);
      simd.fninit();
      return 'resume';
    });
    r.run();
    expect(r.seen.map((s) => s.exit.exitCode)).toEqual([0x403n, 0x78n]);
    expect(mem.read(DATA + 0x100, 256)).toEqual(data);
    const st = new DataView(mem.read(DATA + 0x200, 16).buffer);
    expect(st.getFloat64(0, true)).toBe(Math.PI);
    expect(st.getFloat64(8, true)).toBe(1);
  });

  it('refuses a VMSA whose paging state is inconsistent (long mode without PAE)', () => {
    const r = rig('f4', { vmsa: (v) => v.set('cr4', 0n) });
    expect(() => r.run()).toThrow(X86StateError);
    expect(r.vcpu.running).toBeNull();
  });
});

describe('x86 engine: PVALIDATE and RMPADJUST against the RMP', () => {
  it('PVALIDATE at VMPL0: success, then "no change" (CF), then FAIL_INPUT for a misaligned 2 MiB', () => {
    const target = 0x40000;
    // mov eax,target; xor ecx,ecx; mov edx,1; pvalidate; setc r8b; mov r9d,eax; mov eax,target;
    // pvalidate; setc r10b; mov r11d,eax; mov eax,target; mov ecx,1; pvalidate; hlt
    const r = rig(
      'b800000400 31c9 ba01000000 f20f01ff 410f92c0 4189c1 b800000400 f20f01ff 410f92c2 4189c3' +
        'b800000400 b901000000 f20f01ff f4',
    );
    r.machine.rmp.rmpupdate(target, false, true);
    r.run();
    const v = r.seen[0]!.vmsa;
    expect([v.get('r8'), v.get('r9'), v.get('r10'), v.get('r11'), v.get('rax')]).toEqual([
      0n,
      0n,
      1n,
      0n,
      1n,
    ]);
    expect(r.machine.rmp.entries[target / PAGE]! & RMP_VALIDATED).not.toBe(0);
  });

  it('PVALIDATE of a page the hypervisor owns: NPF exit, and the retry after the host assigned it succeeds', () => {
    const target = 0x50000;
    const r = rig('b800000500 31c9 ba01000000 f20f01ff f4');
    r.onExit((s) => {
      if (s.exit.exitCode !== 0x400n) return 'suspend';
      r.machine.rmp.rmpupdate(target, false, true);
      return 'resume';
    });
    r.run();
    const [npf, hlt] = r.seen;
    expect(npf!.exit.exitCode).toBe(0x400n);
    expect(npf!.exit.exitInfo2).toBe(BigInt(target));
    expect(npf!.exit.exitInfo1 & (npfBit('rmp') | npfBit('enc'))).toBe(
      npfBit('rmp') | npfBit('enc'),
    );
    expect(npf!.rip).toBe(BigInt(CODE + 12));
    expect(hlt!.exit.exitCode).toBe(0x78n);
    expect(hlt!.vmsa.get('rax')).toBe(0n);
    expect(r.machine.rmp.entries[target / PAGE]! & RMP_VALIDATED).not.toBe(0);
  });

  it('rescinding a page the CPU has cached makes the next access #VC 0x404 (TLB flushed)', () => {
    // mov ebx,DATA; mov eax,[rbx]; mov eax,DATA; xor ecx,ecx; xor edx,edx; pvalidate; mov eax,[rbx]
    const r = rig('bb00100100 8b03 b800100100 31c9 31d2 f20f01ff 8b03 f4');
    r.run();
    expect(r.engine.faults).toEqual([[29, 0x404, BigInt(CODE + 5 + 2 + 5 + 2 + 2 + 4)]]);
  });

  it('at VMPL2: PVALIDATE is #GP(0); RMPADJUST grants VMPL3 but not VMPL1', () => {
    // mov eax,DATA; xor ecx,ecx; mov edx,0x103; rmpadjust; mov r8d,eax; mov eax,DATA;
    // mov edx,0x101; rmpadjust; mov r9d,eax; pvalidate
    const r = rig(
      'b800100100 31c9 ba03010000 f30f01fe 4189c0 b800100100 ba01010000 f30f01fe 4189c1 f20f01ff f4',
      { vmpl: 2 },
    );
    r.run();
    const v = r.seen[0]!.vmsa;
    expect([v.get('r8'), v.get('r9')]).toEqual([0n, 2n]);
    expect(r.machine.rmp.vmplPerms(DATA / PAGE)).toEqual([0, 0xf, 1]);
    expect(r.engine.faults).toEqual([[13, 0, BigInt(CODE + 5 + 2 + 5 + 4 + 3 + 5 + 5 + 4 + 3)]]);
  });
});

describe('x86 engine: hostile PVALIDATE/RMPADJUST operands', () => {
  it('any RAX/RCX/RDX ends in a result, a fault or an NPF, and changes at most the target', () => {
    // mov rax,[DATA]; mov rcx,[DATA+8]; mov rdx,[DATA+16]; (pvalidate|rmpadjust); hlt
    const load = '488b042500100100 488b0c2508100100 488b142510100100';
    const va = fc.oneof(
      fc.integer({ min: 0, max: 0x20_0000 - 1 }).map(BigInt),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    );
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.constantFrom(0, 2),
        va,
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (pvalidate, vmpl, rax, rcx, rdx) => {
          const r = rig(load + (pvalidate ? 'f20f01ff' : 'f30f01fe') + 'f4', { vmpl });
          const operands = new Uint8Array(24);
          const dv = new DataView(operands.buffer);
          [rax, rcx, rdx].forEach((v, k) => dv.setBigUint64(8 * k, v, true));
          r.machine.trackedMemory().write(DATA, operands);
          // Make the first 2 MiB's unused pages assigned-but-unvalidated, as a guest's RAM is.
          for (let p = 0; p < 0x20_0000; p += PAGE) {
            if (!r.machine.rmp.isAssigned(p / PAGE)) r.machine.rmp.rmpupdate(p, false, true);
          }
          const before = r.machine.rmp.entries.slice();
          r.run();
          const exit = r.seen[0]!.exit.exitCode;
          if (exit === 0x78n) {
            expect([0n, 1n, 2n, 6n]).toContain(r.seen[0]!.vmsa.get('rax'));
          } else if (exit === 0xfffn) {
            expect([6, 13, 14, 29]).toContain(r.engine.faults[0]![0]);
          } else {
            expect(exit).toBe(0x400n);
          }
          // Only the target page (or its 2 MiB region) may have changed.
          const changed: number[] = [];
          const now = r.machine.rmp.entries;
          for (let i = 0; i < now.length; i++) if (now[i] !== before[i]) changed.push(i);
          if (changed.length > 0) {
            const first = changed[0]!;
            expect(changed[changed.length - 1]! - first).toBeLessThan(512);
            expect(exit).toBe(0x78n);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
