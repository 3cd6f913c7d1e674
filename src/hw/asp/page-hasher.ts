// SHA-384 of many 4 KiB pages at once, for the launch digest of large images: the pages' CONTENTS
// hashes are independent of each other (only the PAGE_INFO chain is sequential), so a second
// thread hashes half of them while this one hashes the other half. The result is exactly what
// hashing each page in turn gives; only the wall time differs.

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

/** Hashes being computed by the helper thread; `wait()` returns them (48 bytes per page). */
export interface PendingHashes {
  readonly count: number;
  wait(): Uint8Array;
}

/**
 * Starts hashing the 4 KiB pages of `bytes` on the helper thread (the bytes are copied first, so
 * the caller may go on using its buffer) and returns at once.
 */
export function hashPagesInBackground(bytes: Uint8Array): PendingHashes {
  if (bytes.length % PAGE !== 0) throw new RangeError('hashPages takes whole 4 KiB pages');
  const count = bytes.length / PAGE;
  const pages = new SharedArrayBuffer(bytes.length);
  new Uint8Array(pages).set(bytes);
  const results = new SharedArrayBuffer(count * DIGEST);
  const signal = new SharedArrayBuffer(4);
  helper().postMessage({ pages, results, signal, count });
  return {
    count,
    wait(): Uint8Array {
      Atomics.wait(new Int32Array(signal), 0, 0);
      return new Uint8Array(results);
    },
  };
}
