// Guest physical memory: one WebAssembly.Memory, so that a later JIT's generated WebAssembly can
// address it directly. Guest physical address == offset into the buffer (one VM per process).

export const PAGE_SIZE = 0x1000;
export const PAGE_SHIFT = 12;
export const HUGE_PAGE_SIZE = 0x20_0000;
const WASM_PAGE = 0x1_0000;

export const MIN_MEMORY_BYTES = 16 * 1024 * 1024;
export const MAX_MEMORY_BYTES = 3 * 1024 * 1024 * 1024;
export const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;

/** A memory size or an address that the machine cannot have: a clear message for the user. */
export class MemoryConfigError extends RangeError {
  override readonly name = 'MemoryConfigError';
}

function mib(n: number): string {
  return `${n / (1024 * 1024)} MiB`;
}

/** Checks a requested memory size and says in one sentence what is wrong with it. */
export function checkMemorySize(bytes: number): void {
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new MemoryConfigError(`memory size must be a positive number of bytes, got ${bytes}`);
  }
  if (bytes % HUGE_PAGE_SIZE !== 0) {
    throw new MemoryConfigError(`memory size must be a multiple of 2 MiB, got ${bytes} bytes`);
  }
  if (bytes < MIN_MEMORY_BYTES) {
    throw new MemoryConfigError(
      `memory size ${mib(bytes)} is below the minimum of ${mib(MIN_MEMORY_BYTES)}`,
    );
  }
  if (bytes > MAX_MEMORY_BYTES) {
    throw new MemoryConfigError(
      `memory size ${mib(bytes)} is above the maximum of ${mib(MAX_MEMORY_BYTES)}`,
    );
  }
}

/** Parses "512M", "1G", "64MiB" or a plain byte count. */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+)\s*(k|kib|m|mib|g|gib)?\s*$/i.exec(text);
  if (m === null) {
    throw new MemoryConfigError(`cannot read memory size ${JSON.stringify(text)} (try 512M or 1G)`);
  }
  const unit = (m[2] ?? '').toLowerCase();
  const scale = unit.startsWith('k')
    ? 1024
    : unit.startsWith('m')
      ? 1024 ** 2
      : unit.startsWith('g')
        ? 1024 ** 3
        : 1;
  const bytes = Number(m[1]) * scale;
  checkMemorySize(bytes);
  return bytes;
}

export class PhysicalMemory {
  readonly memory: WebAssembly.Memory;
  /** The whole of guest physical memory. Only src/hw touches it directly. */
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly pageCount: number;

  constructor(size: number = DEFAULT_MEMORY_BYTES) {
    checkMemorySize(size);
    const pages = size / WASM_PAGE;
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    this.bytes = new Uint8Array(this.memory.buffer);
    this.size = size;
    this.pageCount = size / PAGE_SIZE;
  }

  /** True when [gpa, gpa+length) lies inside memory. */
  contains(gpa: number, length = 1): boolean {
    return Number.isSafeInteger(gpa) && gpa >= 0 && length >= 0 && gpa + length <= this.size;
  }

  /** Throws a MemoryConfigError naming the range when it is outside memory. */
  checkRange(gpa: number, length: number): void {
    if (!this.contains(gpa, length)) {
      throw new MemoryConfigError(
        `guest physical range 0x${gpa.toString(16)}+0x${length.toString(16)} is outside the 0x${this.size.toString(16)} bytes of memory`,
      );
    }
  }

  /** A view (not a copy) of one 4 KiB page. */
  page(pfn: number): Uint8Array {
    this.checkRange(pfn * PAGE_SIZE, PAGE_SIZE);
    return this.bytes.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  }

  read(gpa: number, length: number): Uint8Array {
    this.checkRange(gpa, length);
    return this.bytes.slice(gpa, gpa + length);
  }

  write(gpa: number, data: Uint8Array): void {
    this.checkRange(gpa, data.length);
    this.bytes.set(data, gpa);
  }

  fill(gpa: number, length: number, value = 0): void {
    this.checkRange(gpa, length);
    this.bytes.fill(value, gpa, gpa + length);
  }
}
