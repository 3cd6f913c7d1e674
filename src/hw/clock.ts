// The machine's time stamp counter. By default it is virtual: it moves only when the engines
// advance it (per instruction, per exit), so two runs with one seed see the same TSC values, the
// same timer expiries, and are identical bit for bit. `useWallClock()` maps it to elapsed wall
// time at TSC_HZ instead, for interactive use: the TSC is then the larger of the wall-clock count
// and what the engines counted, so it never goes backwards and still moves while an engine
// counts faster than the wall clock.

/** The TSC's nominal rate in both modes: what guest time means in seconds. */
export const TSC_HZ = 2_000_000_000;

export type ClockMode = 'virtual' | 'realtime';

/** Nanoseconds of a monotonic wall clock. */
export type WallClock = () => number;

const monotonicNs: WallClock = () => performance.now() * 1e6;

export class TscClock {
  private counted = 0n;
  private wallStart = 0;
  private wall: WallClock | null = null;

  get mode(): ClockMode {
    return this.wall === null ? 'virtual' : 'realtime';
  }

  /** From now on the TSC follows `wall` (TSC 0 = the count so far at this instant). */
  useWallClock(wall: WallClock = monotonicNs): void {
    this.wall = wall;
    this.wallStart = wall();
  }

  read(): bigint {
    if (this.wall === null) return this.counted;
    const elapsed = BigInt(Math.floor(((this.wall() - this.wallStart) * TSC_HZ) / 1e9));
    return elapsed > this.counted ? elapsed : this.counted;
  }

  /** What the engines set (`tsc += n`); the wall clock, if used, still wins when ahead. */
  set(value: bigint): void {
    this.counted = value;
  }
}
