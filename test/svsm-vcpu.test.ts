// Multi-vCPU SVSM: APs start at VMPL0 from the VMSAs the BSP makes at boot, wait in AP reset hold,
// and run the guest's VMSA once CREATE_VCPU (reference/coconut-svsm.md section 3; Linux's AP
// bring-up, reference/linux-snp-guest.md 3.4) hands it over; DELETE_VCPU gives it back. Hostile
// inputs get the reference's result code and change nothing; a property test runs random call
// sequences and checks after each call that no SVSM or VMSA page is open to the guest and that
// pages the guest newly validated read as zero.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CpuFaultError,
  EFER,
  type GuestCpu,
  PvalidatePageSize,
  RMP_VALIDATED,
  RMP_VMSA,
  SvsmProtocol,
  SvsmResult,
  VMSA,
  encodePvalidateEntry,
} from '../src/arch/index.js';
import { SvsmClient, writeApVmsa, type ApVmsaOptions } from '../src/guest/svsm-client.js';
import { ACCESS, RMP_OK } from '../src/hw/rmp.js';
import { type TestCvm, createTestCvm } from './support/cvm.js';
import { GuestDriver, runOn } from './support/guest-driver.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
const RAM = 64 << 20;
/** Guest RAM ends below the launch VMSA (the last page). */
const GUEST_RAM_END = RAM - PAGE;
const SVSM_BASE = 0x200_0000;
const SVSM_END = 0x300_0000;
const AP_VMSA = 0x11000;
const AP_CAA = 0x12000;
const K4 = PvalidatePageSize.SIZE_4K;
const M2 = PvalidatePageSize.SIZE_2M;

const vmsaBit = (cvm: TestCvm, gpa: number): boolean =>
  (cvm.machine.rmp.entries[gpa / PAGE]! & RMP_VMSA) !== 0;
const validated = (cvm: TestCvm, gpa: number): boolean =>
  (cvm.machine.rmp.entries[gpa / PAGE]! & RMP_VALIDATED) !== 0;
const guestCan = (cvm: TestCvm, gpa: number, access: 0 | 1, vmpl = 2): boolean =>
  cvm.machine.rmp.check(gpa, true, vmpl, 0, access) === RMP_OK;
const physical = (cvm: TestCvm, gpa: number, length: number): Uint8Array =>
  cvm.machine.physicalMemory().bytes.subarray(gpa, gpa + length);

function rmpChanges(cvm: TestCvm, before: Uint32Array): string[] {
  const now = cvm.machine.rmp.entries;
  const out: string[] = [];
  for (let i = 0; i < now.length; i++)
    if (now[i] !== before[i]) out.push(cvm.machine.rmp.describe(i));
  return out;
}

describe('bringing up an AP', () => {
  it('the BSP validates memory, builds a VMSA, and vCPU 1 runs it and calls the SVSM', () => {
    const bspResults: unknown[] = [];
    const apResults: unknown[] = [];
    const cvm = createTestCvm(
      function* (cpu) {
        if (cpu.vcpuIndex === 1) {
          // The AP finds its calling area where the BSP put it (RSI of its first state).
          const svsm = new SvsmClient(cpu, Number(cpu.readRegister('rsi')));
          apResults.push(cpu.vmpl, yield* svsm.queryProtocol(SvsmProtocol.CORE, 1));
          return;
        }
        const svsm = new SvsmClient(
          cpu,
          SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))),
        );
        const e = (gpa: number, pageSize: number, ignoreCf = false) => ({
          gfn: gpa / PAGE,
          pageSize,
          validate: true,
          ignoreCf,
        });
        // 4 KiB pages for the AP's VMSA and calling area, and a 2 MiB page.
        bspResults.push(yield* svsm.pvalidate([e(AP_VMSA, K4), e(AP_CAA, K4), e(0x40_0000, M2)]));
        // Again with ignore_cf: success; without it, FAIL_NOT_CHANGED at the first entry.
        bspResults.push(yield* svsm.pvalidate([e(AP_VMSA, K4, true), e(0x40_0000, M2, true)]));
        bspResults.push(yield* svsm.pvalidate([e(AP_CAA, K4)]));
        // A 4 KiB entry inside an untouched 2 MiB RMP entry: size mismatch.
        bspResults.push(yield* svsm.pvalidate([e(0x60_0000, K4)]));
        writeApVmsa(cpu, AP_VMSA, { startIp: 0x9_f000, rsi: BigInt(AP_CAA) });
        bspResults.push(yield* svsm.createVcpu(AP_VMSA, AP_CAA, 1));
      },
      { vcpus: 2 },
    );
    const state = cvm.vm.run();
    expect(cvm.vm.termination).toBeNull();
    expect(state).toBe('stopped');
    expect(bspResults).toEqual([
      { rax: 0n, done: 3 },
      { rax: 0n, done: 2 },
      { rax: BigInt(0x8000_1010), done: 0 },
      { rax: BigInt(SvsmResult.PVALIDATE_FAIL_SIZE_MISMATCH), done: 0 },
      0n,
    ]);
    expect(apResults).toEqual([2, { minVersion: 1, maxVersion: 1 }]);
    const log = cvm.serial.join('\n');
    expect(log).toContain('vCPU 1 (APIC ID 1) online');
    expect(log).toContain('CREATE_VCPU: vCPU 1 VMSA 0x11000 CAA 0x12000');
    // The AP's own VMPL0 VMSA is SVSM memory, a VMSA, and not 2 MiB aligned.
    const apVmpl0 = cvm.vm.vcpus[1]!.vmsas[0]!;
    expect(apVmpl0).toBeGreaterThanOrEqual(SVSM_BASE);
    expect(apVmpl0).toBeLessThan(SVSM_END);
    expect(apVmpl0 % HUGE).not.toBe(0);
    expect(vmsaBit(cvm, apVmpl0)).toBe(true);
    // The guest's VMSA page is now a VMSA the guest can neither read nor write.
    expect(cvm.vm.vcpus[1]!.vmsas[2]).toBe(AP_VMSA);
    expect(vmsaBit(cvm, AP_VMSA)).toBe(true);
    expect(guestCan(cvm, AP_VMSA, ACCESS.READ)).toBe(false);
    expect(guestCan(cvm, AP_VMSA, ACCESS.WRITE)).toBe(false);
    // The AP's VMPL0 state carries the SVSM's paging registers; CR3 is its own PML4
    // (svsm-percpu.test.ts).
    const apState = VMSA.on(physical(cvm, apVmpl0, PAGE));
    const bspState = VMSA.on(physical(cvm, cvm.vm.vcpus[0]!.vmsas[0]!, PAGE));
    for (const r of ['cr0', 'cr4', 'efer'] as const) expect(apState.get(r)).toBe(bspState.get(r));
    expect(apState.get('cr3')).not.toBe(bspState.get('cr3'));
  });
});

interface Env {
  readonly cvm: TestCvm;
  readonly driver: GuestDriver;
}

function on<T>(
  env: Env,
  index: number,
  caa: number,
  body: (svsm: SvsmClient, cpu: GuestCpu) => Generator<void, T, void>,
): T {
  return runOn(env.cvm, env.driver, index, (cpu) => body(new SvsmClient(cpu, caa), cpu));
}

const bsp = <T>(env: Env, body: (svsm: SvsmClient, cpu: GuestCpu) => Generator<void, T, void>): T =>
  on(env, 0, 0xa000, body);

function validate(env: Env, pages: readonly number[]): void {
  const r = bsp(env, (svsm) =>
    svsm.pvalidate(
      pages.map((gpa) => ({ gfn: gpa / PAGE, pageSize: K4, validate: true, ignoreCf: true })),
    ),
  );
  expect(r.rax).toBe(0n);
}

/** Writes a VMSA (Linux's fields, with `change` applied) and asks for CREATE_VCPU. */
function create(
  env: Env,
  vmsa: number,
  caa: number,
  apicId: number | bigint,
  change?: (page: Uint8Array) => void,
  opts: Partial<ApVmsaOptions> = {},
): number {
  return bsp(env, function* (svsm, cpu) {
    try {
      writeApVmsa(cpu, vmsa, { startIp: 0x9_f000, rsi: BigInt(caa), ...opts });
      if (change !== undefined) {
        const page = cpu.read(vmsa, PAGE);
        change(page);
        cpu.write(vmsa, page);
      }
    } catch (e) {
      if (!(e instanceof CpuFaultError)) throw e;
    }
    const r = yield* svsm.call(
      SvsmProtocol.CORE,
      2,
      BigInt(vmsa),
      BigInt(caa),
      typeof apicId === 'bigint' ? apicId : BigInt(apicId),
    );
    return Number(r.rax);
  });
}

function setupEnv(): Env {
  const driver = new GuestDriver(2);
  const cvm = createTestCvm(driver.program, { vcpus: 2 });
  driver.settle(cvm);
  return { cvm, driver };
}

describe('CREATE_VCPU refuses hostile input and changes nothing', () => {
  let env: Env;
  const VMSA_PAGE = 0x20000;
  const CAA_PAGE = 0x21000;
  const OTHER = 0x22000;
  beforeAll(() => {
    env = setupEnv();
    validate(env, [VMSA_PAGE, CAA_PAGE, OTHER, AP_VMSA, AP_CAA]);
    expect(create(env, AP_VMSA, AP_CAA, 1)).toBe(0);
  });

  const setField =
    (name: 'vmpl', value: number) =>
    (page: Uint8Array): void => {
      VMSA.on(page).set(name, value);
    };
  const cases: {
    name: string;
    vmsa?: number;
    caa?: number;
    apic?: number | bigint;
    change?: (p: Uint8Array) => void;
    opts?: Partial<ApVmsaOptions>;
    rax: number;
  }[] = [
    { name: 'a VMSA not page aligned', vmsa: VMSA_PAGE + 8, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'a CAA not page aligned', caa: CAA_PAGE + 8, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'a VMSA in SVSM memory', vmsa: SVSM_BASE + 0x4000, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'a CAA in SVSM memory', caa: SVSM_END - PAGE, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'a VMSA beyond RAM', vmsa: RAM, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'the launch VMSA page', vmsa: GUEST_RAM_END, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'a CAA at 2^52', caa: 2 ** 52, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'the VMSA equal to the CAA', caa: VMSA_PAGE, rax: SvsmResult.INVALID_ADDRESS },
    { name: "the VMSA equal to the BSP's CAA", vmsa: 0xa000, rax: SvsmResult.INVALID_ADDRESS },
    { name: "the VMSA equal to vCPU 1's CAA", vmsa: AP_CAA, rax: SvsmResult.INVALID_ADDRESS },
    { name: "the CAA equal to the BSP's CAA", caa: 0xa000, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'the CAA on a registered VMSA', caa: AP_VMSA, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'a VMSA already registered', vmsa: AP_VMSA, rax: SvsmResult.INVALID_ADDRESS },
    { name: 'an unknown APIC ID', apic: 2, rax: SvsmResult.INVALID_PARAMETER },
    { name: 'APIC ID 0xffffffff', apic: 0xffff_ffff, rax: SvsmResult.INVALID_PARAMETER },
    { name: 'a VMSA for VMPL0', change: setField('vmpl', 0), rax: 0x8000_0005 },
    { name: 'a VMSA for VMPL1', change: setField('vmpl', 1), rax: 0x8000_0005 },
    { name: 'a VMSA for VMPL3', change: setField('vmpl', 3), rax: 0x8000_0005 },
    {
      name: 'a VMSA with EFER.SVME clear',
      change: (p) => {
        VMSA.on(p).set('efer', EFER.with(VMSA.get(p, 'efer'), 'SVME', false));
      },
      rax: SvsmResult.INVALID_PARAMETER,
    },
    {
      name: 'a VMSA with other SEV features',
      opts: { sevFeatures: 0b101n },
      rax: SvsmResult.INVALID_PARAMETER,
    },
    {
      name: 'a VMSA page the guest never validated',
      vmsa: 0x30000,
      rax: SvsmResult.PVALIDATE_FAIL_INPUT,
    },
    {
      name: 'a VMSA page inside a 2 MiB RMP entry',
      vmsa: 0x60_0000 + PAGE,
      rax: SvsmResult.PVALIDATE_FAIL_SIZE_MISMATCH,
    },
  ];

  it.each(cases)('$name', (c) => {
    const vmsa = c.vmsa ?? VMSA_PAGE;
    const hostBefore = env.cvm.vm.vcpus.map((v) => [...v.vmsas]);
    // The page's contents are written first (where the guest can), then compared after the call.
    let before: Uint32Array | null = null;
    let contents: Uint8Array | null = null;
    const rax = bsp(env, function* (svsm, cpu) {
      try {
        writeApVmsa(cpu, vmsa, { startIp: 0x9_f000, ...c.opts });
        if (c.change !== undefined) {
          const page = cpu.read(vmsa, PAGE);
          c.change(page);
          cpu.write(vmsa, page);
        }
      } catch (e) {
        if (!(e instanceof CpuFaultError)) throw e;
      }
      before = Uint32Array.from(env.cvm.machine.rmp.entries);
      contents = vmsa + PAGE <= RAM ? Uint8Array.from(physical(env.cvm, vmsa, PAGE)) : null;
      const r = yield* svsm.call(
        SvsmProtocol.CORE,
        2,
        BigInt(vmsa),
        BigInt(c.caa ?? CAA_PAGE),
        typeof c.apic === 'bigint' ? c.apic : BigInt(c.apic ?? 1),
      );
      return Number(r.rax);
    });
    expect(rax).toBe(c.rax);
    expect(rmpChanges(env.cvm, before!)).toEqual([]);
    if (contents !== null) expect(physical(env.cvm, vmsa, PAGE)).toEqual(contents);
    expect(env.cvm.vm.vcpus.map((v) => [...v.vmsas])).toEqual(hostBefore);
    // A refused VMSA is an ordinary guest page again.
    if (vmsa === VMSA_PAGE) {
      expect(vmsaBit(env.cvm, VMSA_PAGE)).toBe(false);
      expect(guestCan(env.cvm, VMSA_PAGE, ACCESS.WRITE)).toBe(true);
    }
    expect(env.cvm.vm.termination).toBeNull();
  });

  it('reads the APIC ID from R8[31:0] only', () => {
    expect(create(env, OTHER, CAA_PAGE, (1n << 32n) | 1n)).toBe(0);
    expect(env.cvm.vm.vcpus[1]!.vmsas[2]).toBe(OTHER);
  });
});

describe('DELETE_VCPU', () => {
  let env: Env;
  beforeAll(() => {
    env = setupEnv();
    validate(env, [AP_VMSA, AP_CAA, 0x20000]);
    expect(create(env, AP_VMSA, AP_CAA, 1)).toBe(0);
  });

  it.each([
    ['a page that is no VMSA', 0x20000],
    ['an unaligned address', AP_VMSA + 8],
    ["the BSP's first VMSA (the SVSM's page)", -1],
    ["vCPU 1's VMPL0 VMSA", -2],
    ['an address beyond RAM', RAM],
  ])('refuses %s with INVALID_PARAMETER and changes nothing', (_n, which) => {
    const gpa =
      which === -1
        ? env.cvm.vm.vcpus[0]!.vmsas[2]!
        : which === -2
          ? env.cvm.vm.vcpus[1]!.vmsas[0]!
          : which;
    const before = Uint32Array.from(env.cvm.machine.rmp.entries);
    const rax = bsp(env, (svsm) => svsm.deleteVcpu(gpa));
    expect(Number(rax)).toBe(SvsmResult.INVALID_PARAMETER);
    expect(rmpChanges(env.cvm, before)).toEqual([]);
  });

  it('gives the VMSA back to the guest, stops the AP, and a new CREATE_VCPU starts it again', () => {
    // The AP serves calls before.
    expect(on(env, 1, AP_CAA, (svsm) => svsm.queryProtocol(SvsmProtocol.CORE, 1))).not.toBeNull();
    expect(bsp(env, (svsm) => svsm.deleteVcpu(AP_VMSA))).toBe(0n);
    expect(vmsaBit(env.cvm, AP_VMSA)).toBe(false);
    expect(guestCan(env.cvm, AP_VMSA, ACCESS.WRITE)).toBe(true);
    expect(EFER.has(VMSA.get(physical(env.cvm, AP_VMSA, PAGE), 'efer'), 'SVME')).toBe(false);
    expect(env.cvm.vm.vcpus[1]!.vmsas[2]).toBeNull();
    expect(env.cvm.vm.vcpus[1]!.next).toBeNull();
    // Deleted twice: no longer registered.
    expect(Number(bsp(env, (svsm) => svsm.deleteVcpu(AP_VMSA)))).toBe(SvsmResult.INVALID_PARAMETER);
    // The page is the guest's: PVALIDATE may rescind and validate it again.
    const r = bsp(env, (svsm) =>
      svsm.pvalidate([
        { gfn: AP_VMSA / PAGE, pageSize: K4, validate: false, ignoreCf: false },
        { gfn: AP_VMSA / PAGE, pageSize: K4, validate: true, ignoreCf: false },
      ]),
    );
    expect(r).toEqual({ rax: 0n, done: 2 });
    expect(create(env, AP_VMSA, AP_CAA, 1)).toBe(0);
    expect(on(env, 1, AP_CAA, (svsm) => svsm.queryProtocol(SvsmProtocol.CORE, 1))).toEqual({
      minVersion: 1,
      maxVersion: 1,
    });
  });

  it('an AP that deletes its own VMSA waits until it gets a new one', () => {
    expect(() => on(env, 1, AP_CAA, (svsm) => svsm.deleteVcpu(AP_VMSA))).toThrow(/did not finish/);
    expect(env.cvm.vm.termination).toBeNull();
    expect(env.cvm.vm.vcpus[1]!.vmsas[2]).toBeNull();
    expect(vmsaBit(env.cvm, AP_VMSA)).toBe(false);
    validate(env, [0x23000, 0x24000]);
    expect(create(env, 0x23000, 0x24000, 1)).toBe(0);
    expect(on(env, 1, 0x24000, (svsm) => svsm.queryProtocol(SvsmProtocol.CORE, 1))).not.toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random call sequences never open SVSM or VMSA pages to the guest, and every page the
// guest newly validated reads as zero.

/** A GPA: a number, or one the test resolves when the command runs. */
type GpaPick = number | 'bspVmsa' | 'apVmpl0Vmsa' | 'bspCaa' | 'lastCreated';

type Command =
  | {
      readonly op: 'pvalidate';
      readonly entries: readonly {
        gpa: GpaPick;
        size: number;
        validate: boolean;
        ignoreCf: boolean;
      }[];
    }
  | { readonly op: 'remap'; readonly gpa: GpaPick }
  | {
      readonly op: 'create';
      readonly vmsa: GpaPick;
      readonly caa: GpaPick;
      readonly apicId: number;
      readonly corrupt: 'none' | 'vmpl' | 'svme' | 'sev';
    }
  | { readonly op: 'delete'; readonly gpa: GpaPick }
  | { readonly op: 'query'; readonly protocol: number; readonly version: number };

/** Pages the guest validated before the sequence, so that CREATE_VCPU can succeed. */
const PREPARED = Array.from({ length: 12 }, (_, i) => 0x10000 + i * PAGE);

/** Pages the guest has not validated (4 KiB RMP entries) and untouched 2 MiB regions. */
const FRESH_4K = Array.from({ length: 8 }, (_, i) => 0x30000 + i * PAGE);
const FRESH_2M = [0x40_0000, 0x60_0000, 0x80_0000, 0x120_0000];

const boundaryArb = fc.constantFrom<GpaPick>(
  'bspVmsa',
  'apVmpl0Vmsa',
  'bspCaa',
  0,
  0x9000,
  0xa000,
  0x20_0000,
  SVSM_BASE - PAGE,
  SVSM_BASE,
  SVSM_BASE + 0x3000,
  SVSM_END - HUGE,
  SVSM_END - PAGE,
  SVSM_END,
  GUEST_RAM_END - PAGE,
  GUEST_RAM_END,
  RAM,
  2 ** 52,
  0x10008,
);

const gpaArb: fc.Arbitrary<GpaPick> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...PREPARED) },
  { weight: 3, arbitrary: fc.constantFrom(...FRESH_4K) },
  { weight: 3, arbitrary: fc.constant<GpaPick>('lastCreated') },
  { weight: 3, arbitrary: boundaryArb },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: RAM / PAGE }).map((p) => p * PAGE) },
  { weight: 1, arbitrary: fc.maxSafeInteger().map((n) => Math.abs(n)) },
);

const pvalidateEntryArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      gpa: gpaArb,
      size: fc.constant<number>(K4),
      validate: fc.boolean(),
      ignoreCf: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      gpa: fc.oneof(
        fc.constantFrom<GpaPick>(...FRESH_2M),
        fc.integer({ min: 0, max: RAM / HUGE }).map((p) => p * HUGE),
      ),
      size: fc.constant<number>(M2),
      validate: fc.boolean(),
      ignoreCf: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      gpa: gpaArb,
      size: fc.constantFrom(M2, 2, 3),
      validate: fc.boolean(),
      ignoreCf: fc.boolean(),
    }),
  },
);

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('pvalidate' as const),
      entries: fc.array(pvalidateEntryArb, { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('remap' as const), gpa: gpaArb }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('create' as const),
      vmsa: gpaArb,
      caa: gpaArb,
      apicId: fc.constantFrom(0, 1, 1, 1, 1, 2, 0xffff_ffff),
      corrupt: fc.constantFrom(
        'none' as const,
        'none' as const,
        'none' as const,
        'vmpl' as const,
        'svme' as const,
        'sev' as const,
      ),
    }),
  },
  {
    // A well-formed CREATE_VCPU on prepared pages, so that sequences build up registered VMSAs.
    weight: 3,
    arbitrary: fc
      .uniqueArray(fc.constantFrom(...PREPARED), { minLength: 2, maxLength: 2 })
      .chain(([vmsa, caa]) =>
        fc.record({
          op: fc.constant('create' as const),
          vmsa: fc.constant<GpaPick>(vmsa!),
          caa: fc.constant<GpaPick>(caa!),
          apicId: fc.constantFrom(0, 1, 1, 1),
          corrupt: fc.constant('none' as const),
        }),
      ),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), gpa: gpaArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('delete' as const),
      gpa: fc.constant<GpaPick>('lastCreated'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('query' as const),
      protocol: fc.constantFrom(0, 1, 2, 0xffff_ffff),
      version: fc.constantFrom(0, 1, 2),
    }),
  },
);

const RESULT_CODES = new Set<number>([...Object.values(SvsmResult), 0x8000_1010]);

/** The test's model of the SVSM: registered VMSAs and the BSP's calling area and VMSA. */
interface Model {
  readonly vmsas: Set<number>;
  bspCaa: number;
  lastCreated: number;
  bspAlive: boolean;
}

function resolve(env: Env, m: Model, g: GpaPick): number {
  switch (g) {
    case 'bspVmsa':
      return env.cvm.vm.vcpus[0]!.vmsas[2] ?? 0;
    case 'apVmpl0Vmsa':
      return env.cvm.vm.vcpus[1]!.vmsas[0] ?? 0;
    case 'bspCaa':
      return m.bspCaa;
    case 'lastCreated':
      return m.lastCreated;
    default:
      return g;
  }
}

/** Guest-RAM pages of [gpa, gpa+size) outside the SVSM, for the zeroing check. */
function guestPages(gpa: number, size: number): number[] {
  const out: number[] = [];
  if (gpa % PAGE !== 0 || gpa + size > GUEST_RAM_END) return out;
  for (let p = gpa; p < gpa + size; p += PAGE) if (p < SVSM_BASE || p >= SVSM_END) out.push(p);
  return out;
}

/** Runs one command on the BSP; returns RAX, or null when the BSP parked (it deleted itself). */
function runCommand(env: Env, m: Model, cmd: Command): number | null {
  const box: number[] = [];
  const caa = m.bspCaa;
  let body: (svsm: SvsmClient, cpu: GuestCpu) => Generator<void, number, void>;
  switch (cmd.op) {
    case 'pvalidate': {
      const words = cmd.entries.map((e) => {
        const gpa = resolve(env, m, e.gpa);
        const gfn = Math.floor(gpa / PAGE) % 2 ** 52;
        return encodePvalidateEntry({
          gfn,
          pageSize: e.size,
          validate: e.validate,
          ignoreCf: e.ignoreCf,
        });
      });
      body = function* (svsm, cpu) {
        const list = new Uint8Array(8 + words.length * 8);
        const view = new DataView(list.buffer);
        view.setUint16(0, words.length, true);
        words.forEach((w, i) => view.setBigUint64(8 + i * 8, w, true));
        cpu.write(caa + 8, list);
        return Number((yield* svsm.call(SvsmProtocol.CORE, 1, BigInt(caa + 8))).rax);
      };
      break;
    }
    case 'remap': {
      const gpa = resolve(env, m, cmd.gpa);
      body = function* (svsm) {
        return Number(yield* svsm.remapCa(gpa));
      };
      break;
    }
    case 'create': {
      const vmsa = resolve(env, m, cmd.vmsa);
      const newCaa = resolve(env, m, cmd.caa);
      body = function* (svsm, cpu) {
        try {
          writeApVmsa(cpu, vmsa, {
            startIp: 0x9_f000,
            ...(cmd.corrupt === 'sev' ? { sevFeatures: 0b11n } : {}),
            ...(cmd.corrupt === 'vmpl' ? { vmpl: 1 } : {}),
          });
          if (cmd.corrupt === 'svme') {
            const page = cpu.read(vmsa, PAGE);
            VMSA.on(page).set('efer', 0n);
            cpu.write(vmsa, page);
          }
        } catch (e) {
          if (!(e instanceof CpuFaultError)) throw e;
        }
        const r = yield* svsm.call(
          SvsmProtocol.CORE,
          2,
          BigInt(vmsa),
          BigInt(newCaa),
          BigInt(cmd.apicId),
        );
        return Number(r.rax);
      };
      break;
    }
    case 'delete': {
      const gpa = resolve(env, m, cmd.gpa);
      body = function* (svsm) {
        return Number(yield* svsm.deleteVcpu(gpa));
      };
      break;
    }
    case 'query':
      body = function* (svsm) {
        return Number(
          (yield* svsm.call(
            SvsmProtocol.CORE,
            6,
            (BigInt(cmd.protocol) << 32n) | BigInt(cmd.version),
          )).rax,
        );
      };
      break;
  }
  env.driver.step(env.cvm, 0, function* (cpu) {
    box.push(yield* body(new SvsmClient(cpu, caa), cpu));
  });
  return box.length === 0 ? null : box[0]!;
}

function checkInvariants(env: Env, m: Model, fresh: readonly number[]): void {
  const { cvm } = env;
  expect(cvm.vm.termination).toBeNull();
  // No page of the SVSM region is open to the guest's VMPL or the one above it.
  for (let p = SVSM_BASE; p < SVSM_END; p += PAGE) {
    for (const vmpl of [2, 3]) {
      if (guestCan(cvm, p, ACCESS.READ, vmpl) || guestCan(cvm, p, ACCESS.WRITE, vmpl))
        throw new Error(`SVSM page 0x${p.toString(16)} is open to VMPL${vmpl}`);
    }
  }
  // Every registered VMSA is a VMSA page closed to the guest; no other guest page is a VMSA.
  for (const v of m.vmsas) {
    expect(vmsaBit(cvm, v), `VMSA bit of 0x${v.toString(16)}`).toBe(true);
    expect(guestCan(cvm, v, ACCESS.READ) || guestCan(cvm, v, ACCESS.WRITE)).toBe(false);
  }
  for (let p = 0; p < GUEST_RAM_END; p += PAGE) {
    if (p >= SVSM_BASE && p < SVSM_END) continue;
    if (vmsaBit(cvm, p) && !m.vmsas.has(p))
      throw new Error(`guest page 0x${p.toString(16)} is a VMSA the guest did not register`);
  }
  // Pages the guest newly validated read as zero (the ISA range excepted).
  for (const p of fresh) {
    if (!validated(cvm, p) || (p >= 0xa0000 && p < 0x100000)) continue;
    if (!physical(cvm, p, PAGE).every((b) => b === 0))
      throw new Error(`newly validated page 0x${p.toString(16)} is not zero`);
  }
}

describe('property: random core calls keep SVSM and VMSA pages closed and new pages zero', () => {
  it('holds after every call', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { minLength: 1, maxLength: 14 }), (commands) => {
        const env = setupEnv();
        validate(env, PREPARED);
        const bspVmsa = env.cvm.vm.vcpus[0]!.vmsas[2]!;
        const m: Model = {
          vmsas: new Set([bspVmsa]),
          bspCaa: 0xa000,
          lastCreated: PREPARED[0]!,
          bspAlive: true,
        };
        checkInvariants(env, m, []);
        for (const cmd of commands) {
          // The guest can cut itself off: a calling area it cannot write (CREATE_VCPU does not
          // check that the new one is validated) ends its sequence.
          if (!m.bspAlive || !guestCan(env.cvm, m.bspCaa, ACCESS.WRITE)) break;
          // Stale data in every page a PVALIDATE might newly validate (a host remap would leave
          // such data), so that a missing zeroing shows.
          const fresh: number[] = [];
          if (cmd.op === 'pvalidate') {
            for (const e of cmd.entries) {
              const gpa = resolve(env, m, e.gpa);
              for (const p of guestPages(gpa, e.size === M2 ? HUGE : PAGE)) {
                if (validated(env.cvm, p)) continue;
                physical(env.cvm, p, PAGE).fill(0xa5);
                fresh.push(p);
              }
            }
          }
          const targetVmsa = cmd.op === 'create' ? resolve(env, m, cmd.vmsa) : 0;
          const targetCaa = cmd.op === 'create' ? resolve(env, m, cmd.caa) : 0;
          const deleted = cmd.op === 'delete' ? resolve(env, m, cmd.gpa) : 0;
          const remapped = cmd.op === 'remap' ? resolve(env, m, cmd.gpa) : 0;
          const rax = runCommand(env, m, cmd);
          if (rax === null) {
            // Only deleting the BSP's own VMSA parks it.
            expect(cmd.op).toBe('delete');
            expect(env.cvm.vm.vcpus[0]!.vmsas[2]).toBeNull();
            m.vmsas.delete(deleted);
            m.bspAlive = false;
          } else {
            expect(RESULT_CODES.has(rax) || (rax > 0x8000_1000 && rax < 0x8000_1020)).toBe(true);
            if (rax === 0 && cmd.op === 'create') {
              m.vmsas.add(targetVmsa);
              m.lastCreated = targetVmsa;
              if (cmd.apicId === 0) m.bspCaa = targetCaa;
            }
            if (rax === 0 && cmd.op === 'delete') m.vmsas.delete(deleted);
            if (rax === 0 && cmd.op === 'remap') m.bspCaa = remapped;
          }
          checkInvariants(env, m, fresh);
        }
      }),
      { numRuns: 30 },
    );
  });
});
