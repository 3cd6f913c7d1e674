// The core protocol (SVSM spec protocol 0) against the reference's rules
// (reference/coconut-svsm.md section 3, checked against COCONUT's kernel/src/protocols/core.rs):
// PVALIDATE lists, REMAP_CA, QUERY_PROTOCOL, unknown protocols and calls. Hostile inputs get the
// reference's result code and change nothing else (the RMP is compared before and after).
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CpuFaultError,
  type GuestCpu,
  PVALIDATE_HEADER,
  PvalidatePageSize,
  SVSM_CAA_BUFFER_OFFSET,
  SvsmCoreCall,
  SvsmProtocol,
  SvsmResult,
  VECTOR,
  encodePvalidateEntry,
  queryProtocolRcx,
} from '../src/arch/index.js';
import { SvsmClient, writeApVmsa } from '../src/guest/svsm-client.js';
import { ACCESS, RMP_OK } from '../src/hw/rmp.js';
import { type TestCvm, createTestCvm } from './support/cvm.js';
import { GuestDriver, runOn } from './support/guest-driver.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
const SVSM_BASE = 0x200_0000;
const SVSM_SIZE = 0x100_0000;
/** 4 KiB RMP entries (the first 2 MiB were split at boot for the secrets copy and the CAA). */
const LIST_PAGE = 0x14000;
const FREE_4K = 0x20000;
/** An untouched 2 MiB region: one 2 MiB RMP entry, not validated. */
const HUGE_FREE = 0x40_0000;
const HUGE_MISMATCH = 0x60_0000;
/** A 2 MiB region whose RMP entry the host splits into 4 KiB entries. */
const SPLIT_REGION = 0x80_0000;
const AP_VMSA = 0x15000;
const AP_CAA = 0x16000;

const K4 = PvalidatePageSize.SIZE_4K;
const M2 = PvalidatePageSize.SIZE_2M;
const entry = (gpa: number, validate = true, pageSize: number = K4, ignoreCf = false): bigint =>
  encodePvalidateEntry({ gfn: gpa / PAGE, pageSize, validate, ignoreCf });

interface Env {
  readonly cvm: TestCvm;
  readonly driver: GuestDriver;
  /** The BSP's calling area (REMAP_CA moves it). */
  bspCaa: number;
}

function bsp<T>(env: Env, body: (svsm: SvsmClient, cpu: GuestCpu) => Generator<void, T, void>): T {
  return runOn(env.cvm, env.driver, 0, (cpu) => body(new SvsmClient(cpu, env.bspCaa), cpu));
}

/** A 2-vCPU CVM whose guest has a list page and a guest-owned VMSA for vCPU 1. */
function setup(): Env {
  const driver = new GuestDriver(2);
  const cvm = createTestCvm(driver.program, { vcpus: 2, memoryBytes: 64 << 20 });
  driver.settle(cvm);
  const env: Env = { cvm, driver, bspCaa: cvm.caaGpa };
  const r = bsp(env, function* (svsm, cpu) {
    const v = yield* svsm.pvalidate(
      [LIST_PAGE, AP_VMSA, AP_CAA].map((gpa) => ({
        gfn: gpa / PAGE,
        pageSize: K4,
        validate: true,
        ignoreCf: false,
      })),
    );
    writeApVmsa(cpu, AP_VMSA, { startIp: 0x8000, rsi: BigInt(AP_CAA) });
    return [v.rax, yield* svsm.createVcpu(AP_VMSA, AP_CAA, 1)];
  });
  expect(r).toEqual([0n, 0n]);
  return env;
}

/** Calls PVALIDATE with a list the test lays out itself; returns RAX and the list's `next`. */
function pvalidateAt(
  env: Env,
  listGpa: number,
  words: readonly bigint[],
  header: { entries?: number; next?: number } = {},
): { rax: number; next: number | null } {
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
      if (!(e instanceof CpuFaultError)) throw e;
      writable = false;
    }
    const r = yield* svsm.call(SvsmProtocol.CORE, SvsmCoreCall.PVALIDATE, BigInt(listGpa));
    const next = writable ? PVALIDATE_HEADER.get(cpu.read(listGpa, 8), 'curIndex') : null;
    return { rax: Number(r.rax), next };
  });
}

function rmpSnapshot(cvm: TestCvm): Uint32Array {
  return Uint32Array.from(cvm.machine.rmp.entries);
}

/** The pages whose RMP entry differs from `before` (expected: none). */
function rmpChanges(cvm: TestCvm, before: Uint32Array): string[] {
  const now = cvm.machine.rmp.entries;
  const out: string[] = [];
  for (let i = 0; i < now.length; i++)
    if (now[i] !== before[i]) out.push(cvm.machine.rmp.describe(i));
  return out;
}

function guestCan(cvm: TestCvm, gpa: number, access: 0 | 1): boolean {
  return cvm.machine.rmp.check(gpa, true, 2, 0, access) === RMP_OK;
}

function physical(cvm: TestCvm, gpa: number, length: number): Uint8Array {
  return cvm.machine.physicalMemory().bytes.subarray(gpa, gpa + length);
}

describe('core protocol: PVALIDATE', () => {
  let env: Env;
  beforeAll(() => {
    env = setup();
  });

  it('validates 4 KiB pages, zeroes them and grants the guest read and write', () => {
    physical(env.cvm, FREE_4K, 2 * PAGE).fill(0xa5);
    const r = pvalidateAt(env, LIST_PAGE, [entry(FREE_4K), entry(FREE_4K + PAGE)]);
    expect(r).toEqual({ rax: SvsmResult.SUCCESS, next: 2 });
    expect(physical(env.cvm, FREE_4K, 2 * PAGE).every((b) => b === 0)).toBe(true);
    expect(guestCan(env.cvm, FREE_4K, ACCESS.WRITE)).toBe(true);
    expect(guestCan(env.cvm, FREE_4K + PAGE, ACCESS.READ)).toBe(true);
  });

  it('answers FAIL_NOT_CHANGED for an already validated page unless ignore_cf is set', () => {
    const page = FREE_4K + 2 * PAGE;
    const r = pvalidateAt(env, LIST_PAGE, [entry(page), entry(page)]);
    expect(r).toEqual({ rax: 0x8000_1010, next: 1 });
    const again = pvalidateAt(env, LIST_PAGE, [entry(page, true, K4, true)]);
    expect(again).toEqual({ rax: SvsmResult.SUCCESS, next: 1 });
  });

  it('does not zero a page that was already validated (ignore_cf)', () => {
    const page = FREE_4K + 3 * PAGE;
    expect(pvalidateAt(env, LIST_PAGE, [entry(page)]).rax).toBe(0);
    bsp(env, function* (_svsm, cpu) {
      cpu.write(page, Uint8Array.of(1, 2, 3));
      yield* [];
    });
    expect(pvalidateAt(env, LIST_PAGE, [entry(page, true, K4, true)]).rax).toBe(0);
    expect([...physical(env.cvm, page, 3)]).toEqual([1, 2, 3]);
  });

  it('validates a 2 MiB page and zeroes all 512 of its pages', () => {
    for (let off = 0; off < HUGE; off += PAGE) physical(env.cvm, HUGE_FREE + off, 16).fill(0x5a);
    const r = pvalidateAt(env, LIST_PAGE, [entry(HUGE_FREE, true, M2)]);
    expect(r).toEqual({ rax: 0, next: 1 });
    expect(physical(env.cvm, HUGE_FREE, HUGE).every((b) => b === 0)).toBe(true);
    expect(guestCan(env.cvm, HUGE_FREE + HUGE - PAGE, ACCESS.WRITE)).toBe(true);
  });

  it('answers FAIL_SIZE_MISMATCH for a 4 KiB entry inside a 2 MiB RMP entry', () => {
    const before = rmpSnapshot(env.cvm);
    const r = pvalidateAt(env, LIST_PAGE, [entry(HUGE_MISMATCH + PAGE)]);
    expect(r).toEqual({ rax: SvsmResult.PVALIDATE_FAIL_SIZE_MISMATCH, next: 0 });
    expect(rmpChanges(env.cvm, before)).toEqual([]);
  });

  it('answers FAIL_SIZE_MISMATCH for a 2 MiB entry over 4 KiB RMP entries', () => {
    // The host split this region's RMP entry (PSMASH), as it may at any time.
    expect(env.cvm.machine.rmp.psmash(SPLIT_REGION)).toBe(0);
    const before = rmpSnapshot(env.cvm);
    const r = pvalidateAt(env, LIST_PAGE, [entry(SPLIT_REGION, true, M2)]);
    expect(r).toEqual({ rax: SvsmResult.PVALIDATE_FAIL_SIZE_MISMATCH, next: 0 });
    expect(rmpChanges(env.cvm, before)).toEqual([]);
  });

  it('rescinds a page: the guest loses access, and it reads zero when validated again', () => {
    const page = FREE_4K + 4 * PAGE;
    expect(pvalidateAt(env, LIST_PAGE, [entry(page)]).rax).toBe(0);
    bsp(env, function* (_svsm, cpu) {
      cpu.write(page, new Uint8Array(PAGE).fill(0x77));
      yield* [];
    });
    expect(pvalidateAt(env, LIST_PAGE, [entry(page, false)])).toEqual({ rax: 0, next: 1 });
    expect(guestCan(env.cvm, page, ACCESS.READ)).toBe(false);
    const fault = bsp(env, function* (_svsm, cpu) {
      try {
        cpu.read(page, 1);
        return null;
      } catch (e) {
        yield* [];
        return e instanceof CpuFaultError ? e.vector : null;
      }
    });
    expect(fault).toBe(VECTOR.VC);
    expect(pvalidateAt(env, LIST_PAGE, [entry(page)]).rax).toBe(0);
    expect(physical(env.cvm, page, PAGE).every((b) => b === 0)).toBe(true);
  });

  it('stops at the first failing entry and reports how far it got in next', () => {
    const a = FREE_4K + 5 * PAGE;
    const c = FREE_4K + 6 * PAGE;
    const r = pvalidateAt(env, LIST_PAGE, [entry(a), entry(SVSM_BASE), entry(c)]);
    expect(r).toEqual({ rax: SvsmResult.INVALID_ADDRESS, next: 1 });
    expect(guestCan(env.cvm, a, ACCESS.READ)).toBe(true);
    expect(guestCan(env.cvm, c, ACCESS.READ)).toBe(false);
  });

  it('starts from next', () => {
    const a = FREE_4K + 7 * PAGE;
    const b = FREE_4K + 8 * PAGE;
    const r = pvalidateAt(env, LIST_PAGE, [entry(a), entry(b)], { next: 1 });
    expect(r).toEqual({ rax: 0, next: 2 });
    expect(guestCan(env.cvm, a, ACCESS.READ)).toBe(false);
    expect(guestCan(env.cvm, b, ACCESS.READ)).toBe(true);
  });
});

describe('core protocol: hostile PVALIDATE lists change nothing', () => {
  let env: Env;
  beforeAll(() => {
    env = setup();
  });
  const good = FREE_4K;

  const cases: {
    name: string;
    listGpa?: number;
    words?: bigint[];
    header?: { entries?: number; next?: number };
    rax: number;
    next?: number | null;
  }[] = [
    { name: 'a list GPA not 8-byte aligned', listGpa: LIST_PAGE + 4, rax: 0x8000_0005 },
    {
      name: 'a list running past its page',
      listGpa: LIST_PAGE + 0xf00,
      words: [entry(good)],
      header: { entries: 31 + 1 },
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    {
      name: 'a header in the last 8 bytes with one entry (crosses the page)',
      listGpa: LIST_PAGE + 0xff8,
      words: [],
      header: { entries: 1 },
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    { name: 'zero entries', words: [], header: { entries: 0 }, rax: SvsmResult.INVALID_PARAMETER },
    {
      name: 'next equal to entries',
      words: [entry(good)],
      header: { next: 1 },
      rax: SvsmResult.INVALID_PARAMETER,
      next: 1,
    },
    {
      name: 'next beyond entries',
      words: [entry(good)],
      header: { next: 9 },
      rax: SvsmResult.INVALID_PARAMETER,
      next: 9,
    },
    {
      name: 'more entries than a page holds',
      words: [entry(good)],
      header: { entries: 512 },
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    { name: 'a list in SVSM memory', listGpa: SVSM_BASE + 0x3000, rax: 0x8000_0005 },
    { name: 'a list beyond RAM', listGpa: 64 << 20, rax: SvsmResult.INVALID_PARAMETER },
    { name: 'a list at 2^52', listGpa: 2 ** 52, rax: SvsmResult.INVALID_PARAMETER },
    {
      name: 'a list in a page the guest never validated',
      listGpa: FREE_4K + 0x40 * PAGE,
      rax: SvsmResult.INVALID_ADDRESS,
    },
    {
      name: 'an entry with reserved bits set',
      words: [entry(good) | (1n << 4n)],
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    { name: 'page size 2', words: [entry(good, true, 2)], rax: 0x8000_0005, next: 0 },
    { name: 'page size 3', words: [entry(good, true, 3)], rax: 0x8000_0005, next: 0 },
    {
      name: 'a 2 MiB entry not 2 MiB aligned',
      words: [entry(HUGE_FREE + PAGE, true, M2)],
      rax: SvsmResult.INVALID_PARAMETER,
      next: 0,
    },
    {
      name: 'a page of SVSM memory',
      words: [entry(SVSM_BASE + 0x5000)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'the last page of SVSM memory, rescinded',
      words: [entry(SVSM_BASE + SVSM_SIZE - PAGE, false)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'a 2 MiB entry on the SVSM region',
      words: [entry(SVSM_BASE + HUGE, true, M2)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'a page beyond RAM',
      words: [entry(64 << 20)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: "the launch VMSA (last page, outside the guest's RAM)",
      words: [entry((64 << 20) - PAGE, false)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'a 2 MiB entry reaching beyond RAM',
      words: [entry((64 << 20) - HUGE, true, M2)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'the calling area',
      words: [entry(0xa000, false)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: "another vCPU's calling area",
      words: [entry(AP_CAA, false)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'a 2 MiB entry covering the calling area',
      words: [entry(0, false, M2)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'a registered guest VMSA (rescind)',
      words: [entry(AP_VMSA, false)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
    {
      name: 'a registered guest VMSA (validate, ignore_cf)',
      words: [entry(AP_VMSA, true, K4, true)],
      rax: SvsmResult.INVALID_ADDRESS,
      next: 0,
    },
  ];

  it.each(cases)('$name', (c) => {
    const before = rmpSnapshot(env.cvm);
    const r = pvalidateAt(env, c.listGpa ?? LIST_PAGE, c.words ?? [entry(good)], c.header);
    expect(r.rax).toBe(c.rax);
    if (c.next !== undefined) expect(r.next).toBe(c.next);
    expect(rmpChanges(env.cvm, before)).toEqual([]);
    // The SVSM still serves this guest.
    const q = bsp(env, (svsm) => svsm.queryProtocol(SvsmProtocol.CORE, 1));
    expect(q).toEqual({ minVersion: 1, maxVersion: 1 });
    expect(env.cvm.vm.termination).toBeNull();
  });
});

describe('core protocol: REMAP_CA', () => {
  let env: Env;
  beforeAll(() => {
    env = setup();
    expect(pvalidateAt(env, LIST_PAGE, [entry(FREE_4K), entry(FREE_4K + PAGE)]).rax).toBe(0);
  });

  it.each([
    ['not page aligned', FREE_4K + 8, SvsmResult.INVALID_PARAMETER],
    ['in SVSM memory', SVSM_BASE + 0x2000, SvsmResult.INVALID_ADDRESS],
    ['beyond RAM', 64 << 20, SvsmResult.INVALID_ADDRESS],
    ['onto a registered VMSA', AP_VMSA, SvsmResult.INVALID_ADDRESS],
    ["onto another vCPU's calling area", AP_CAA, SvsmResult.INVALID_ADDRESS],
    ['onto a page the guest never validated', FREE_4K + 0x30 * PAGE, SvsmResult.INVALID_ADDRESS],
  ])('refuses a new calling area %s', (_name, gpa, rax) => {
    const before = rmpSnapshot(env.cvm);
    const vmsaBefore = Uint8Array.from(physical(env.cvm, AP_VMSA, PAGE));
    const r = bsp(env, (svsm) => svsm.remapCa(gpa));
    expect(Number(r)).toBe(rax);
    expect(rmpChanges(env.cvm, before)).toEqual([]);
    expect(physical(env.cvm, AP_VMSA, PAGE)).toEqual(vmsaBefore);
    // Calls still go through the old calling area.
    expect(bsp(env, (svsm) => svsm.queryProtocol(SvsmProtocol.CORE, 1))).not.toBeNull();
  });

  it('remaps to the same page as a no-op', () => {
    expect(bsp(env, (svsm) => svsm.remapCa(env.bspCaa))).toBe(0n);
  });

  it('moves the calling area to a zeroed page, through which later calls go', () => {
    const next = FREE_4K + PAGE;
    bsp(env, function* (_svsm, cpu) {
      cpu.write(next, new Uint8Array(PAGE).fill(0xee));
      yield* [];
    });
    expect(bsp(env, (svsm) => svsm.remapCa(next))).toBe(0n);
    expect(physical(env.cvm, next, PAGE).every((b) => b === 0)).toBe(true);
    env.bspCaa = next;
    expect(bsp(env, (svsm) => svsm.queryProtocol(SvsmProtocol.CORE, 1))).toEqual({
      minVersion: 1,
      maxVersion: 1,
    });
    // The old calling area is an ordinary guest page again: PVALIDATE may rescind it.
    expect(pvalidateAt(env, LIST_PAGE, [entry(0xa000, false)]).rax).toBe(0);
  });
});

describe('core protocol: queries, unknown protocols and calls', () => {
  let env: Env;
  beforeAll(() => {
    env = setup();
  });

  it.each([
    ['an unknown protocol', 7, 0, SvsmResult.UNSUPPORTED_PROTOCOL],
    ['protocol 0xffffffff', 0xffff_ffff, 0, SvsmResult.UNSUPPORTED_PROTOCOL],
    ['an unknown core call', SvsmProtocol.CORE, 8, SvsmResult.UNSUPPORTED_CALL],
    ['core call 0xffffffff', SvsmProtocol.CORE, 0xffff_ffff, SvsmResult.UNSUPPORTED_CALL],
    // Implemented (test/svsm-deposit.test.ts); RCX 0x1234 is not an 8-byte aligned list.
    ['DEPOSIT_MEM, unaligned list', SvsmProtocol.CORE, SvsmCoreCall.DEPOSIT_MEM, 0x8000_0005],
    ['WITHDRAW_MEM, unaligned list', SvsmProtocol.CORE, SvsmCoreCall.WITHDRAW_MEM, 0x8000_0005],
    ['CONFIGURE_VTOM set', SvsmProtocol.CORE, SvsmCoreCall.CONFIGURE_VTOM, 0x8000_0006],
  ])('%s gets its result code and changes nothing', (_n, protocol, call, rax) => {
    const before = rmpSnapshot(env.cvm);
    const r = bsp(env, (svsm) => svsm.call(protocol, call, 0x1234n, 0x5678n, 0x9n));
    expect(Number(r.rax)).toBe(rax);
    expect(rmpChanges(env.cvm, before)).toEqual([]);
  });

  it('CONFIGURE_VTOM query answers 0 (no vTOM)', () => {
    const r = bsp(env, (svsm) => svsm.call(SvsmProtocol.CORE, SvsmCoreCall.CONFIGURE_VTOM, 1n));
    expect([r.rax, r.rcx]).toEqual([0n, 0n]);
  });

  it('QUERY_PROTOCOL answers 0 for versions and protocols it lacks', () => {
    const q = (p: number, v: number): bigint =>
      bsp(env, function* (svsm) {
        const r = yield* svsm.call(
          SvsmProtocol.CORE,
          SvsmCoreCall.QUERY_PROTOCOL,
          queryProtocolRcx(p, v),
        );
        expect(r.rax).toBe(0n);
        return r.rcx;
      });
    expect(q(SvsmProtocol.CORE, 0)).toBe(0n);
    expect(q(SvsmProtocol.CORE, 2)).toBe(0n);
    expect(q(SvsmProtocol.CORE, 1)).toBe((1n << 32n) | 1n);
    expect(q(3, 1)).toBe(0n);
    expect(q(0xffff_ffff, 1)).toBe(0n);
  });

  it('the list in the calling area buffer is what Linux uses', () => {
    expect(SVSM_CAA_BUFFER_OFFSET).toBe(8);
  });
});
