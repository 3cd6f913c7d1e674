// Guest physical memory that remembers which pages may hold something other than zeros. Memory
// starts zeroed, and every write path of the machine marks the pages it stores to: the host and
// the firmware through write/fill/page, the world switch (VMSA pages), the MMU (accessed and dirty
// bits), the engines (their stores). A page nobody marked is therefore known to be zero without
// reading it, which matters because reading untouched memory makes the host commit it: zeroing a
// freshly validated 2 GiB would otherwise read all of it.
//
// A writer this file does not know about cannot make the knowledge wrong: the raw bytes and the
// WebAssembly.Memory are reachable only through `trackedBytes()` (for writers that mark) or the
// `bytes` / `memory` properties, and taking either of those turns the knowledge off for good.

import { PAGE_SIZE, PhysicalMemory } from './memory.js';

export class TrackedMemory extends PhysicalMemory {
  private readonly raw: Uint8Array;
  private readonly wasm: WebAssembly.Memory;
  /** Per page: 1 when something may have stored a non-zero byte there since the machine started. */
  private readonly written: Uint8Array;
  /** Someone took the bytes without promising to mark: no page is known to be zero any more. */
  private untracked = false;
  private readonly storeListeners: ((gpa: number, length: number) => void)[] = [];

  constructor(size?: number) {
    super(size);
    this.raw = this.bytes;
    this.wasm = this.memory;
    this.written = new Uint8Array(this.pageCount);
    Object.defineProperty(this, 'bytes', {
      get: (): Uint8Array => {
        this.untracked = true;
        return this.raw;
      },
    });
    Object.defineProperty(this, 'memory', {
      get: (): WebAssembly.Memory => {
        this.untracked = true;
        return this.wasm;
      },
    });
  }

  /** The bytes, for a writer that calls `markWritten` for every store it makes. */
  trackedBytes(): Uint8Array {
    return this.raw;
  }

  /**
   * Called with every range a marking writer stores to (markWritten, write, fill, page), so caches
   * of memory contents (decoded x86 code) can forget it. The x86 CPU's own stores do not come
   * through here (it keeps its code cache coherent itself).
   */
  onStore(listener: (gpa: number, length: number) => void): void {
    this.storeListeners.push(listener);
  }

  private stored(gpa: number, length: number): void {
    for (const l of this.storeListeners) l(gpa, length);
  }

  /** Records a store to [gpa, gpa+length) (conservatively: whole pages, any value). */
  markWritten(gpa: number, length: number): void {
    if (length <= 0) return;
    if (this.storeListeners.length !== 0) this.stored(gpa, length);
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + length - 1) / PAGE_SIZE);
    if (first === last) this.written[first] = 1;
    else this.written.fill(1, first, last + 1);
  }

  /** True when nothing can have stored a non-zero byte in [gpa, gpa+length) since the start. */
  knownZero(gpa: number, length: number): boolean {
    if (this.untracked || length <= 0) return false;
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + length - 1) / PAGE_SIZE);
    for (let p = first; p <= last; p++) if (this.written[p] !== 0) return false;
    return true;
  }

  override page(pfn: number): Uint8Array {
    this.checkRange(pfn * PAGE_SIZE, PAGE_SIZE);
    // The caller may store through the view: the page counts as written.
    this.written[pfn] = 1;
    this.stored(pfn * PAGE_SIZE, PAGE_SIZE);
    return this.raw.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  }

  override read(gpa: number, length: number): Uint8Array {
    this.checkRange(gpa, length);
    return this.raw.slice(gpa, gpa + length);
  }

  override write(gpa: number, data: Uint8Array): void {
    this.checkRange(gpa, data.length);
    this.raw.set(data, gpa);
    this.markWritten(gpa, data.length);
  }

  override fill(gpa: number, length: number, value = 0): void {
    this.checkRange(gpa, length);
    this.raw.fill(value, gpa, gpa + length);
    if (value !== 0) this.markWritten(gpa, length);
    else this.stored(gpa, length);
  }
}

/** The bytes of `memory` for a writer that marks its stores (see TrackedMemory). */
export function writerBytes(memory: PhysicalMemory): Uint8Array {
  return memory instanceof TrackedMemory ? memory.trackedBytes() : memory.bytes;
}
