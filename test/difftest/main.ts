// `npm run difftest [-- --cases N] [--seed S] [--filter TEXT] [--jit]`: the differential test against the
// host CPU; prints mismatches and ends with `DIFF forms=N cases=M mismatches=K`.

import { parseArgs } from 'node:util';
import { buildHarness, unsupportedReason } from './build.js';
import { runDifftest } from './run.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: '100000' },
    seed: { type: 'string' },
    filter: { type: 'string' },
    jit: { type: 'boolean', default: false },
  },
});
const why = unsupportedReason();
if (why !== null) {
  console.error(`difftest: ${why}`);
  process.exit(2);
}
const cases = Number(values.cases);
const seed = values.seed !== undefined ? Number(values.seed) : 1;
if (!Number.isSafeInteger(cases) || cases <= 0 || !Number.isSafeInteger(seed)) {
  console.error('difftest: --cases and --seed take whole numbers');
  process.exit(2);
}
const started = process.hrtime.bigint();
const r = runDifftest(buildHarness(), cases, seed, values.filter, 20, values.jit);
for (const rep of r.reports) console.log(rep);
const ms = Number(process.hrtime.bigint() - started) / 1e6;
console.error(`difftest: seed ${seed}, ${(ms / 1000).toFixed(1)} s`);
console.log(`DIFF forms=${r.forms} cases=${r.cases} mismatches=${r.mismatches}`);
process.exitCode = r.mismatches === 0 ? 0 : 1;
