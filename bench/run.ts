// `npm run bench` runs every benchmark; `npm run bench -- NAME` runs those whose name contains
// NAME. Output: one line `BENCH <name> <value>` per figure.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Bench } from './harness.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const filter = process.argv[2];
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
let ran = 0;
for (const file of files) {
  const mod = (await import(pathToFileURL(dir + file).href)) as { benches: Bench[] };
  for (const b of mod.benches) {
    if (filter !== undefined && !b.name.includes(filter)) continue;
    const value = await b.run();
    console.log(`BENCH ${b.name} ${Number.isInteger(value) ? value : value.toFixed(3)}`);
    ran++;
  }
}
if (ran === 0) {
  console.error(`bench: no benchmark matches ${JSON.stringify(filter)}`);
  process.exitCode = 2;
}
