// Virtual time (the default: runs reproduce) and wall-clock time (`realtime`): the TSC the guest
// reads through RDTSC exits and RDMSR of IA32_TSC, which the APIC timers also count.
import { describe, expect, it } from 'vitest';
import { MSR_EXITINFO1, SW_EXITCODE, MSR } from '../src/arch/index.js';
import { TSC_HZ, TscClock } from '../src/hw/clock.js';
import { ghcbExit, runGhcbGuest, type Answer } from './support/ghcb-guest.js';
import type { GuestCpu } from '../src/arch/index.js';

const tscOf = (a: Answer): bigint => (a.reg('rdx')! << 32n) | a.reg('rax')!;

function busyWaitMs(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* the guest computes for a while without exiting */
  }
}

function* readTsc(cpu: GuestCpu, viaMsr: boolean): Generator<void, bigint, void> {
  return tscOf(
    viaMsr
      ? yield* ghcbExit(cpu, SW_EXITCODE.MSR, BigInt(MSR_EXITINFO1.RDMSR), 0n, { rcx: MSR.TSC })
      : yield* ghcbExit(cpu, SW_EXITCODE.RDTSC, 0n, 0n),
  );
}

/** TSC readings of a guest that reads, computes for `waitMs` of wall time, and reads again. */
function readings(realtime: boolean, waitMs: number): bigint[] {
  const out: bigint[] = [];
  runGhcbGuest(
    function* (cpu) {
      for (let i = 0; i < 3; i++) {
        out.push(yield* readTsc(cpu, i === 1));
        busyWaitMs(waitMs);
      }
    },
    { realtime },
  );
  return out;
}

describe('the TSC clock', () => {
  it('is virtual by default: only what the engines count moves it', () => {
    const c = new TscClock();
    expect(c.mode).toBe('virtual');
    c.set(c.read() + 1000n);
    busyWaitMs(2);
    expect(c.read()).toBe(1000n);
  });

  it('follows the wall clock at TSC_HZ when asked, never going backwards', () => {
    let ns = 5_000;
    const c = new TscClock();
    c.set(10n);
    c.useWallClock(() => ns);
    expect(c.mode).toBe('realtime');
    expect(c.read()).toBe(10n); // the count so far until the wall clock passes it
    ns += 1_000_000; // 1 ms
    expect(c.read()).toBe(BigInt(TSC_HZ / 1000));
    // An engine that counts ahead of the wall clock wins until the wall clock catches up.
    c.set(c.read() + 5_000_000n);
    expect(c.read()).toBe(BigInt(TSC_HZ / 1000) + 5_000_000n);
    ns += 10_000_000;
    expect(c.read()).toBe(BigInt((11 * TSC_HZ) / 1000));
  });
});

describe('guest time', () => {
  it('two default runs read the same TSC values, whatever the wall clock did', () => {
    const a = readings(false, 0);
    const b = readings(false, 15);
    expect(a).toEqual(b);
    // Strictly increasing, and far less than 15 ms of a 2 GHz clock apart.
    expect(a[1]! > a[0]! && a[2]! > a[1]!).toBe(true);
    expect(a[2]! - a[0]!).toBeLessThan(BigInt(TSC_HZ / 1000));
  });

  it('with realtime, the TSC advances with the wall clock', () => {
    const wait = 20;
    const t0 = performance.now();
    const r = readings(true, wait);
    const elapsedMs = performance.now() - t0;
    for (let i = 1; i < r.length; i++) {
      const deltaMs = Number(r[i]! - r[i - 1]!) / (TSC_HZ / 1000);
      expect(deltaMs).toBeGreaterThanOrEqual(wait * 0.95);
      expect(deltaMs).toBeLessThan(elapsedMs);
    }
  });
});
