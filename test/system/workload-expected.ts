// The output programs/workload.c must print, computed here independently of it: the FIPS 180
// digests as published, the pseudo-random inputs regenerated with BigInt, the large digest by
// node:crypto, the sorts by Array.prototype.sort. The constants mirror workload.c's #defines.

import { createHash } from 'node:crypto';

export const HASH_BYTES = 32768;
export const SORT_COUNT = 4000;
const HASH_SEED = 0x0123456789abcdefn;
const SORT_SEED = 0xfedcba9876543210n;
const M64 = (1n << 64n) - 1n;

/** FIPS 180-2 appendix B (B.1 one block, B.2 multi-block) and the empty message. */
export const FIPS_DIGESTS = {
  empty: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  abc: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  bits448: '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  bits896: 'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
} as const;

/** splitmix64 as a generator of 64-bit values. */
export function* splitmix64(seed: bigint): Generator<bigint, never> {
  let state = seed;
  for (;;) {
    state = (state + 0x9e3779b97f4a7c15n) & M64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    yield z ^ (z >> 31n);
  }
}

const hex16 = (v: bigint): string => v.toString(16).padStart(16, '0');

function sortLine(name: string): string {
  const gen = splitmix64(SORT_SEED);
  const values = Array.from({ length: SORT_COUNT }, () => gen.next().value);
  values.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let sum = 0n;
  values.forEach((v, i) => {
    sum = (((sum ^ v) * 0x100000001b3n) & M64) + BigInt(i);
    sum &= M64;
  });
  return (
    `${name} ${SORT_COUNT}: inversions 0 checksum ${hex16(sum)} ` +
    `min ${hex16(values[0]!)} max ${hex16(values[SORT_COUNT - 1]!)}\n`
  );
}

/** The whole expected output of the workload. */
export function expectedWorkloadOutput(): string {
  const buf = Buffer.alloc(HASH_BYTES);
  const gen = splitmix64(HASH_SEED);
  for (let i = 0; i < HASH_BYTES; i += 8) buf.writeBigUInt64LE(gen.next().value, i);
  const big = createHash('sha256').update(buf).digest('hex');
  return [
    `sha256("") = ${FIPS_DIGESTS.empty}\n`,
    `sha256("abc") = ${FIPS_DIGESTS.abc}\n`,
    `sha256(448 bits) = ${FIPS_DIGESTS.bits448}\n`,
    `sha256(896 bits) = ${FIPS_DIGESTS.bits896}\n`,
    `sha256(splitmix64 ${HASH_BYTES} bytes) = ${big}\n`,
    sortLine('merge sort'),
    sortLine('quicksort'),
    // What glibc's printf prints for the same calls.
    'format: [  -42|-42  |-0042|beef|  CAFE|str|ab  |ok] (43 bytes)\n',
    'format: 18446744073709551615 -9223372036854775808 1234567890123 fedcba9876543210\n',
    'format: truncated to "truncat" of 16\n',
    'done\n',
  ].join('');
}
