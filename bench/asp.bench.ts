import { hash } from 'node:crypto';
import { PAGE_TYPE } from '../src/arch/index.js';
import { LaunchDigest, sha384 } from '../src/hw/asp/launch-digest.js';
import type { Bench } from './harness.js';

// The launch digest of a 64 MiB image of NORMAL pages, as throughput relative to one plain
// SHA-384 over the same bytes in the same run (1.0 = as fast as hashing the image once).
const IMAGE_BYTES = 64 * 1024 * 1024;

function seconds(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export const benches: Bench[] = [
  {
    name: 'asp.launch_digest_vs_sha384',
    run() {
      const image = new Uint8Array(IMAGE_BYTES);
      for (let i = 0; i < image.length; i += 4096) image[i] = i >>> 12;
      const digestOnce = (): void => {
        const ld = new LaunchDigest();
        for (let off = 0; off < IMAGE_BYTES; off += 4096) {
          ld.update({
            type: PAGE_TYPE.NORMAL,
            gpa: off,
            contents: sha384(image.subarray(off, off + 4096)),
          });
        }
      };
      const plainOnce = (): void => void hash('sha384', image, 'buffer');
      digestOnce();
      plainOnce();
      let ld = Infinity;
      let plain = Infinity;
      for (let r = 0; r < 3; r++) {
        ld = Math.min(ld, seconds(digestOnce));
        plain = Math.min(plain, seconds(plainOnce));
      }
      return plain / ld;
    },
  },
];
