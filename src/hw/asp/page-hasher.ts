// SHA-384 of many 4 KiB pages at once, for the launch digest of large images: the pages' CONTENTS
// hashes are independent of each other (only the PAGE_INFO chain is sequential), so a second
// thread hashes half of them while this one hashes the other half. The result is exactly what
// hashing each page in turn gives; only the wall time differs.

import { hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const PAGE = 0x1000;
const DIGEST = 48;
/** Below this many pages a thread hand-off costs more than it saves. */
export const PARALLEL_MIN_PAGES = 1024;

// The helper thread: hashes the pages of a shared buffer it is told about, writes the digests into
// a shared result buffer, and signals completion through an Int32Array word.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
parentPort.on('message', ({ pages, results, signal, count }) => {
  const p = new Uint8Array(pages);
  const r = new Uint8Array(results);
  for (let i = 0; i < count; i++) {
    r.set(hash('sha384', p.subarray(i * ${PAGE}, (i + 1) * ${PAGE}), 'buffer'), i * ${DIGEST});
  }
  const s = new Int32Array(signal);
  Atomics.store(s, 0, 1);
  Atomics.notify(s, 0);
});
`;

let worker: Worker | null = null;

function helper(): Worker {
  if (worker === null) {
    worker = new Worker(WORKER_SOURCE, { eval: true });
    // The helper must never keep the process alive on its own.
    worker.unref();
  }
  return worker;
}

function hashRange(
  bytes: Uint8Array,
  first: number,
  count: number,
  out: Uint8Array,
  outFirst: number,
): void {
  for (let i = 0; i < count; i++) {
    const at = (first + i) * PAGE;
    out.set(hash('sha384', bytes.subarray(at, at + PAGE), 'buffer'), (outFirst + i) * DIGEST);
  }
}

/**
 * SHA-384 of each 4 KiB page of `bytes` (a multiple of 4 KiB), 48 bytes per page in order.
 * Large inputs are split with a helper thread; the call returns when all are done.
 */
export function hashPages(bytes: Uint8Array): Uint8Array {
  if (bytes.length % PAGE !== 0) throw new RangeError('hashPages takes whole 4 KiB pages');
  const count = bytes.length / PAGE;
  const out = new Uint8Array(count * DIGEST);
  if (count < PARALLEL_MIN_PAGES) {
    hashRange(bytes, 0, count, out, 0);
    return out;
  }
  const mine = Math.ceil(count / 2);
  const theirs = count - mine;
  const pages = new SharedArrayBuffer(theirs * PAGE);
  new Uint8Array(pages).set(bytes.subarray(mine * PAGE));
  const results = new SharedArrayBuffer(theirs * DIGEST);
  const signal = new SharedArrayBuffer(4);
  helper().postMessage({ pages, results, signal, count: theirs });
  hashRange(bytes, 0, mine, out, 0);
  Atomics.wait(new Int32Array(signal), 0, 0);
  out.set(new Uint8Array(results), mine * DIGEST);
  return out;
}
