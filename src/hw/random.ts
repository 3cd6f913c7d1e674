// The one source of randomness of the simulated machine (STYLE.md "Determinism"). Everything
// under src/hw, src/host and src/svsm that needs random bytes takes a RandomSource: tests and
// reproducible runs pass seededRandom(seed), a real machine passes systemRandom() once, at the
// edge.

import { createHash, createHmac, randomFillSync } from 'node:crypto';

/** Fills buffers with random bytes. */
export interface RandomSource {
  fill(bytes: Uint8Array): void;
}

/** `length` fresh bytes from `random`. */
export function randomBytesFrom(random: RandomSource, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`cannot draw ${length} random bytes`);
  }
  const out = new Uint8Array(length);
  random.fill(out);
  return out;
}

const SEEDED_LABEL = 'svsm-ts seededRandom v1';
const BLOCK = 32;

/**
 * A deterministic generator: HMAC-SHA-256 in counter mode, keyed with SHA-256(label || seed).
 * The same seed yields the same byte stream however the stream is cut into fill() calls.
 * Not for real secrets: the seed is the whole secret.
 */
export function seededRandom(seed: Uint8Array | string): RandomSource {
  const seedBytes = typeof seed === 'string' ? new TextEncoder().encode(seed) : seed;
  const key = createHash('sha256').update(SEEDED_LABEL).update(seedBytes).digest();
  let counter = 0n;
  let block = new Uint8Array(0);
  let used = 0;
  const counterBytes = new Uint8Array(8);
  const counterView = new DataView(counterBytes.buffer);
  return {
    fill(bytes: Uint8Array): void {
      let at = 0;
      while (at < bytes.length) {
        if (used === block.length) {
          counterView.setBigUint64(0, counter++, false);
          block = new Uint8Array(createHmac('sha256', key).update(counterBytes).digest());
          used = 0;
        }
        const take = Math.min(bytes.length - at, BLOCK - used);
        bytes.set(block.subarray(used, used + take), at);
        used += take;
        at += take;
      }
    },
  };
}

/**
 * The operating system's CSPRNG. This is the only place in src/hw that reaches it; a machine
 * that must be reproducible is given seededRandom() instead.
 */
export function systemRandom(): RandomSource {
  return {
    fill(bytes: Uint8Array): void {
      randomFillSync(bytes);
    },
  };
}
