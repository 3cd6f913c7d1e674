import { hash } from 'node:crypto';
import { PAGE_TYPE, SNP_MSG_TYPE, SNP_SECRETS_PAGE } from '../src/arch/index.js';
import { LaunchDigest } from '../src/hw/asp/launch-digest.js';
import { SecureProcessor } from '../src/hw/asp/secure-processor.js';
import { loadTestIdentity } from '../src/hw/asp/test-identity.fixture.js';
import { MIN_MEMORY_BYTES, PhysicalMemory } from '../src/hw/memory.js';
import { seededRandom } from '../src/hw/random.js';
import { Rmp } from '../src/hw/rmp.js';
import { openResponse, reportRequest, sealRequest } from '../test/support/guest-messages.js';
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
      // The image's pages are consecutive NORMAL pages, which the digest hashes in parallel.
      const digestOnce = (): void => new LaunchDigest().updateNormalPages(0, image);
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

// Guest-request report round trips: the guest seals MSG_REPORT_REQ, the firmware opens it, builds
// and signs a report and seals the response, the guest opens it.
benches.push({
  name: 'asp.report_roundtrips_per_s',
  run() {
    const identity = loadTestIdentity();
    const memory = new PhysicalMemory(MIN_MEMORY_BYTES);
    const rmp = new Rmp(memory.pageCount);
    const asp = new SecureProcessor({ identity, memory, rmp, random: seededRandom('bench') });
    asp.launchStart(0x30000n);
    asp.launchUpdate(0x1000, PAGE_TYPE.SECRETS);
    asp.launchFinish();
    const key = SNP_SECRETS_PAGE.get(memory.bytes, 'vmpck0', 0x1000);
    const req = reportRequest(new Uint8Array(64), 0);
    let seq = 1n;
    const once = (): void => {
      const r = asp.guestRequest(sealRequest(key, seq, 0, SNP_MSG_TYPE.REPORT_REQ, req));
      openResponse(key, r.response!);
      seq += 2n;
    };
    for (let i = 0; i < 20; i++) once();
    const start = process.hrtime.bigint();
    let n = 0;
    while (process.hrtime.bigint() - start < 1_000_000_000n) {
      once();
      n++;
    }
    return Math.round(n / (Number(process.hrtime.bigint() - start) / 1e9));
  },
});
