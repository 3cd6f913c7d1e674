import { ACCESS, Rmp } from '../src/hw/rmp.js';
import { type Bench, nsPerOp, sink } from './harness.js';

// One RMP access check as the MMU makes it on a TLB fill (validated private page, VMPL2 read).
// The figure includes the benchmark loop's own call overhead (a few ns).
const PAGES = 4096;
const rmp = new Rmp(PAGES);
for (let p = 0; p < PAGES; p++) {
  rmp.rmpupdate(p * 4096, false, true);
  rmp.pvalidate(0, 0, p * 4096, false, true);
  rmp.rmpadjust(0, 0, p * 4096, false, 2, 0xf, false);
}
let i = 0;

export const benches: Bench[] = [
  {
    name: 'rmp.check_ns',
    run() {
      return nsPerOp(() => {
        i = (i + 4096 * 7) & (PAGES * 4096 - 1);
        sink.value = rmp.check(i, true, 2, 0, ACCESS.READ);
      });
    },
  },
];
