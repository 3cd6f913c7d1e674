// Core protocol DEPOSIT_MEM / WITHDRAW_MEM (src/svsm/protocols/core.ts; the list format and the
// result codes are an [uncertain] reading of the SVSM specification, described there). A deposited
// page is the SVSM's: the guest's VMPL can neither read nor write it; a withdrawn page is the
// guest's again and reads as zero. Hostile lists get their result code and change nothing else.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CpuFaultError,
  type GuestCpu,
  PVALIDATE_HEADER,
  SvsmCoreCall,
  SvsmProtocol,
  SvsmResult,
  encodePvalidateEntry,
} from '../src/arch/index.js';
import { SvsmClient, writeApVmsa } from '../src/guest/svsm-client.js';
import { ACCESS, RMP_OK } from '../src/hw/rmp.js';
import { type TestCvm, GUEST_CAA_GPA, createTestCvm } from './support/cvm.js';
import { GuestDriver, runOn } from './support/guest-driver.js';

const PAGE = 0x1000;
const MEMORY = 64 << 20;
const SVSM_BASE = 0x200_0000;
const SVSM_SIZE = 0x100_0000;
const LIST_PAGE = 0x14000;
const AP_VMSA = 0x15000;
const AP_CAA = 0x16000;
/** Pages the guest validates for the tests. */
const POOL = 0x20000;
const POOL_PAGES = 24;
/** Never validated by the guest. */
const UNVALIDATED = 0x60000;
/** Inside a 2 MiB RMP entry the guest validated as 2 MiB. */
const HUGE_PAGE = 0x40_0000;

interface Env {
  readonly cvm: TestCvm;
  readonly driver: GuestDriver;
}

function bsp<T>(env: Env, body: (svsm: SvsmClient, cpu: GuestCpu) => Generator<void, T, void>): T {
  return runOn(env.cvm, env.driver, 0, (cpu) => body(new SvsmClient(cpu, GUEST_CAA_GPA), cpu));
}

function setup(): Env {
  const driver = new GuestDriver(2);
  const cvm = createTestCvm(driver.program, { vcpus: 2, memoryBytes: MEMORY });
  driver.settle(cvm);
  const env: Env = { cvm, driver };
  const pages = [LIST_PAGE, AP_VMSA, AP_CAA];
  for (let i = 0; i < POOL_PAGES; i++) pages.push(POOL + i * PAGE);
  const r = bsp(env, function* (svsm, cpu) {
    const v = yield* svsm.pvalidate(
      pages.map((gpa) => ({ gfn: gpa / PAGE, pageSize: 0, validate: true, ignoreCf: false })),
    );
    const h = yield* svsm.pvalidate([
      { gfn: HUGE_PAGE / PAGE, pageSize: 1, validate: true, ignoreCf: false },
    ]);
    writeApVmsa(cpu, AP_VMSA, { startIp: 0x8000, rsi: BigInt(AP_CAA) });
    return [v.rax, h.rax, yield* svsm.createVcpu(AP_VMSA, AP_CAA, 1)];
  });
  expect(r).toEqual([0n, 0n, 0n]);
  return env;
}

function guestCan(cvm: TestCvm, gpa: number, access: 0 | 1): boolean {
  return cvm.machine.rmp.check(gpa, true, 2, 0, access) === RMP_OK;
}

function rmpSnapshot(cvm: TestCvm): Uint32Array {
  return Uint32Array.from(cvm.machine.rmp.entries);
}

function rmpChanges(cvm: TestCvm, before: Uint32Array): string[] {
  const now = cvm.machine.rmp.entries;
  const out: string[] = [];
  for (let i = 0; i < now.length; i++)
    if (now[i] !== before[i]) out.push(cvm.machine.rmp.describe(i));
  return out;
}

function physical(cvm: TestCvm, gpa: number, length: number): Uint8Array {
  return cvm.machine.physicalMemory().bytes.subarray(gpa, gpa + length);
}

/** Whether a guest read of `gpa` faults (what the guest itself sees). */
function guestReadFaults(env: Env, gpa: number): boolean {
  return bsp(env, function* (_svsm, cpu) {
    yield* [];
    try {
      cpu.read(gpa, 1);
      return false;
    } catch (e) {
      if (!(e instanceof CpuFaultError)) throw e;
      return true;
    }
  });
}

/** Calls DEPOSIT_MEM/WITHDRAW_MEM with a list the test lays out itself. */
function listCall(
  env: Env,
  callId: number,
  listGpa: number,
  words: readonly bigint[],
  header: { entries?: number; next?: number } = {},
): { rax: number; next: number } {
  return bsp(env, function* (svsm, cpu) {
    let writable = true;
    try {
      const list = new Uint8Array(8 + words.length * 8);
      PVALIDATE_HEADER.on(list)
        .set('numEntries', header.entries ?? words.length)
        .set('curIndex', header.next ?? 0);
      const view = new DataView(list.buffer);
      words.forEach((w, i) => view.setBigUint64(8 + i * 8, w, true));
      cpu.write(listGpa, list);
    } catch (e) {
      // A list the guest cannot write (SVSM memory, beyond RAM, a deposited page).
      if (!(e instanceof CpuFaultError)) throw e;
      writable = false;
    }
    const r = yield* svsm.call(SvsmProtocol.CORE, callId, BigInt(listGpa));
    const next = writable ? PVALIDATE_HEADER.get(cpu.read(listGpa, 8), 'curIndex') : -1;
    return { rax: Number(r.rax), next };
  });
}

const entry = (gpa: number, pageSize = 0): bigint =>
  encodePvalidateEntry({ gfn: Math.floor(gpa / PAGE), pageSize, validate: false, ignoreCf: false });

describe('DEPOSIT_MEM and WITHDRAW_MEM', () => {
  let env: Env;
  beforeAll(() => {
    env = setup();
  });

  it('takes deposited pages from the guest, zeroed, and gives them back zeroed on withdraw', () => {
    const a = POOL;
    const b = POOL + PAGE;
    bsp(env, function* (_svsm, cpu) {
      cpu.write(a, new Uint8Array(PAGE).fill(0x11));
      cpu.write(b, new Uint8Array(PAGE).fill(0x22));
      yield* [];
    });
    const d = bsp(env, (svsm) => svsm.depositMem([a, b]));
    expect(d).toEqual({ rax: 0n, done: 2 });
    for (const p of [a, b]) {
      expect(guestCan(env.cvm, p, ACCESS.READ)).toBe(false);
      expect(guestCan(env.cvm, p, ACCESS.WRITE)).toBe(false);
      expect(physical(env.cvm, p, PAGE).every((x) => x === 0)).toBe(true);
    }
    expect(guestReadFaults(env, a)).toBe(true);
    // The SVSM may have written into a deposited page; withdrawal zeroes it.
    physical(env.cvm, a, 16).fill(0x5a);
    const w = bsp(env, (svsm) => svsm.withdrawMem([a, b]));
    expect(w).toEqual({ rax: 0n, done: 2 });
    for (const p of [a, b]) {
      expect(guestCan(env.cvm, p, ACCESS.WRITE)).toBe(true);
      expect(guestReadFaults(env, p)).toBe(false);
    }
    const back = bsp(env, function* (_svsm, cpu) {
      yield* [];
      return cpu.read(a, PAGE);
    });
    expect(back.every((x) => x === 0)).toBe(true);
  });

  it('refuses PVALIDATE, REMAP_CA and CREATE_VCPU on a deposited page', () => {
    const p = POOL + 2 * PAGE;
    expect(bsp(env, (svsm) => svsm.depositMem([p])).rax).toBe(0n);
    const before = rmpSnapshot(env.cvm);
    const pv = bsp(env, (svsm) =>
      svsm.pvalidate([{ gfn: p / PAGE, pageSize: 0, validate: false, ignoreCf: false }]),
    );
    expect(Number(pv.rax)).toBe(SvsmResult.INVALID_ADDRESS);
    expect(Number(bsp(env, (svsm) => svsm.remapCa(p)))).toBe(SvsmResult.INVALID_ADDRESS);
    expect(Number(bsp(env, (svsm) => svsm.createVcpu(p, POOL + 3 * PAGE, 1)))).toBe(
      SvsmResult.INVALID_ADDRESS,
    );
    expect(rmpChanges(env.cvm, before)).toEqual([]);
    expect(bsp(env, (svsm) => svsm.withdrawMem([p])).rax).toBe(0n);
  });

  it('stops at the first failing entry and reports how far it got in next', () => {
    const a = POOL + 4 * PAGE;
    const c = POOL + 5 * PAGE;
    const r = listCall(env, SvsmCoreCall.DEPOSIT_MEM, LIST_PAGE, [
      entry(a),
      entry(SVSM_BASE),
      entry(c),
    ]);
    expect(r).toEqual({ rax: SvsmResult.INVALID_ADDRESS, next: 1 });
    expect(guestCan(env.cvm, a, ACCESS.READ)).toBe(false);
    expect(guestCan(env.cvm, c, ACCESS.READ)).toBe(true);
    expect(bsp(env, (svsm) => svsm.withdrawMem([a])).rax).toBe(0n);
  });
});

describe('hostile DEPOSIT_MEM and WITHDRAW_MEM lists change nothing', () => {
  let env: Env;
  const deposited = POOL + 10 * PAGE;
  const good = POOL + 11 * PAGE;
  beforeAll(() => {
    env = setup();
    expect(bsp(env, (svsm) => svsm.depositMem([deposited])).rax).toBe(0n);
  });

  const D = SvsmCoreCall.DEPOSIT_MEM;
  const W = SvsmCoreCall.WITHDRAW_MEM;
  const cases: {
    name: string;
    call: number;
    listGpa?: number;
    words?: () => bigint[];
    header?: { entries?: number; next?: number };
    rax: number;
    next?: number;
  }[] = [
    {
      name: 'deposit: a list not 8-byte aligned',
      call: D,
      listGpa: LIST_PAGE + 4,
      rax: 0x8000_0005,
    },
    {
      name: 'deposit: a list crossing its page',
      call: D,
      listGpa: LIST_PAGE + 0xff0,
      header: { entries: 2 },
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    {
      name: 'deposit: zero entries',
      call: D,
      words: () => [],
      header: { entries: 0 },
      rax: 0x8000_0005,
    },
    { name: 'deposit: next = entries', call: D, header: { next: 1 }, rax: 0x8000_0005, next: 1 },
    { name: 'deposit: next > entries', call: D, header: { next: 7 }, rax: 0x8000_0005, next: 7 },
    {
      name: 'deposit: a list in SVSM memory',
      call: D,
      listGpa: SVSM_BASE + 0x3000,
      rax: 0x8000_0005,
    },
    { name: 'deposit: a list beyond RAM', call: D, listGpa: MEMORY, rax: 0x8000_0005 },
    { name: 'deposit: a list in a deposited page', call: D, listGpa: deposited, rax: 0x8000_0003 },
    {
      name: 'deposit: reserved bits',
      call: D,
      words: () => [entry(good) | (1n << 4n)],
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    {
      name: 'deposit: a 2 MiB entry',
      call: D,
      words: () => [entry(HUGE_PAGE, 1)],
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    {
      name: 'deposit: page size 3',
      call: D,
      words: () => [entry(good, 3)],
      rax: 0x8000_0005,
      next: 0,
    },
    {
      name: 'deposit: a page of SVSM memory',
      call: D,
      words: () => [entry(SVSM_BASE + SVSM_SIZE - PAGE)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: a page beyond RAM',
      call: D,
      words: () => [entry(MEMORY)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: a page at 2^51',
      call: D,
      words: () => [entry(2 ** 51)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: a registered VMSA',
      call: D,
      words: () => [entry(AP_VMSA)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: the calling area',
      call: D,
      words: () => [entry(GUEST_CAA_GPA)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: "deposit: another vCPU's calling area",
      call: D,
      words: () => [entry(AP_CAA)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: the page holding the list',
      call: D,
      words: () => [entry(LIST_PAGE)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: a page deposited already',
      call: D,
      words: () => [entry(deposited)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: the same page twice in one list (the second fails)',
      call: D,
      words: () => [entry(deposited), entry(deposited)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'deposit: a page the guest never validated',
      call: D,
      words: () => [entry(UNVALIDATED)],
      rax: SvsmResult.PVALIDATE_FAIL_INPUT,
      next: 0,
    },
    {
      name: 'deposit: a 4 KiB page inside a validated 2 MiB RMP entry',
      call: D,
      words: () => [entry(HUGE_PAGE + PAGE)],
      rax: SvsmResult.PVALIDATE_FAIL_SIZE_MISMATCH,
      next: 0,
    },
    {
      name: 'withdraw: a page never deposited',
      call: W,
      words: () => [entry(good)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'withdraw: a page of SVSM memory',
      call: W,
      words: () => [entry(SVSM_BASE + 0x5000)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'withdraw: a registered VMSA',
      call: W,
      words: () => [entry(AP_VMSA)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'withdraw: reserved bits on a deposited page',
      call: W,
      words: () => [entry(deposited) | (1n << 11n)],
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    {
      name: 'withdraw: zero entries',
      call: W,
      words: () => [],
      header: { entries: 0 },
      rax: 0x8000_0005,
    },
    { name: 'withdraw: a list in SVSM memory', call: W, listGpa: SVSM_BASE, rax: 0x8000_0005 },
  ];

  it.each(cases)('$name', (c) => {
    const before = rmpSnapshot(env.cvm);
    const listGpa = c.listGpa ?? LIST_PAGE;
    const r = listCall(env, c.call, listGpa, c.words?.() ?? [entry(good)], c.header);
    expect(r.rax).toBe(c.rax);
    if (c.next !== undefined) expect(r.next).toBe(c.next);
    expect(rmpChanges(env.cvm, before)).toEqual([]);
    // The deposited page is still the SVSM's, the good one still the guest's.
    expect(guestCan(env.cvm, deposited, ACCESS.READ)).toBe(false);
    expect(guestCan(env.cvm, good, ACCESS.WRITE)).toBe(true);
    expect(env.cvm.vm.termination).toBeNull();
  });
});

describe('property: random deposit/withdraw sequences', () => {
  let env: Env;
  beforeAll(() => {
    env = setup();
  });

  it('keeps the SVSM region and deposited pages from VMPL2; withdrawn pages read zero', () => {
    const pages = Array.from({ length: 8 }, (_, i) => POOL + i * PAGE);
    const deposited = new Set<number>();
    const op = fc.record({
      deposit: fc.boolean(),
      picks: fc.uniqueArray(fc.integer({ min: 0, max: pages.length - 1 }), {
        minLength: 1,
        maxLength: 4,
      }),
      fill: fc.integer({ min: 1, max: 255 }),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 6 }), (ops) => {
        for (const o of ops) {
          const gpas = o.picks.map((i) => pages[i]!);
          // The guest scribbles on the pages it owns first.
          bsp(env, function* (_svsm, cpu) {
            yield* [];
            for (const g of gpas) if (!deposited.has(g)) cpu.write(g, Uint8Array.of(o.fill));
          });
          const r = bsp(env, (svsm) =>
            o.deposit ? svsm.depositMem(gpas) : svsm.withdrawMem(gpas),
          );
          // Model: entries succeed in order until the first that is in the wrong state.
          const ok = gpas.findIndex((g) => deposited.has(g) === o.deposit);
          const done = ok === -1 ? gpas.length : ok;
          expect(r.done).toBe(done);
          expect(Number(r.rax)).toBe(done === gpas.length ? 0 : SvsmResult.INVALID_ADDRESS);
          for (const g of gpas.slice(0, done)) {
            if (o.deposit) deposited.add(g);
            else {
              deposited.delete(g);
              expect(physical(env.cvm, g, PAGE).every((x) => x === 0)).toBe(true);
            }
          }
        }
        for (const g of pages) {
          const own = !deposited.has(g);
          expect(guestCan(env.cvm, g, ACCESS.READ)).toBe(own);
          expect(guestCan(env.cvm, g, ACCESS.WRITE)).toBe(own);
        }
        for (let off = 0; off < SVSM_SIZE; off += 0x40 * PAGE) {
          expect(guestCan(env.cvm, SVSM_BASE + off, ACCESS.READ)).toBe(false);
        }
        expect(env.cvm.vm.termination).toBeNull();
      }),
      { numRuns: 15, seed: 0x5eed },
    );
  });
});
