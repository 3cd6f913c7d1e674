// Shared helpers for benchmarks: each figure is printed as one line `BENCH <name> <value>`, and
// figures are ratios against a baseline measured in the same run where one exists.

export interface Bench {
  /** The figure's name, e.g. `arch.struct_get_vs_dataview`. */
  readonly name: string;
  /** Runs the measurement and returns the figure. */
  run(): number | Promise<number>;
}

/** Nanoseconds per call of `fn`, after warming up, over at least `minMs` of wall time. */
export function nsPerOp(fn: () => void, minMs = 200): number {
  for (let i = 0; i < 10_000; i++) fn();
  let iterations = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  const budget = BigInt(minMs) * 1_000_000n;
  while (elapsed < budget) {
    for (let i = 0; i < 10_000; i++) fn();
    iterations += 10_000;
    elapsed = process.hrtime.bigint() - start;
  }
  return Number(elapsed) / iterations;
}

/** Keeps a computed value observable so the optimiser cannot drop the work that made it. */
export const sink = { value: 0 as number | bigint };
