import { describe, expect, it } from 'vitest';
import {
  checkMemorySize,
  MemoryConfigError,
  parseMemorySize,
  PhysicalMemory,
  MIN_MEMORY_BYTES,
} from './memory.js';

describe('physical memory', () => {
  it('is one WebAssembly.Memory of the requested size', () => {
    const m = new PhysicalMemory(MIN_MEMORY_BYTES);
    expect(m.memory).toBeInstanceOf(WebAssembly.Memory);
    expect(m.memory.buffer.byteLength).toBe(MIN_MEMORY_BYTES);
    expect(m.pageCount).toBe(MIN_MEMORY_BYTES / 4096);
  });

  it('refuses sizes that are not a multiple of 2 MiB, too small or too large', () => {
    expect(() => checkMemorySize(17 * 1024 * 1024)).toThrow(/multiple of 2 MiB/);
    expect(() => checkMemorySize(2 * 1024 * 1024)).toThrow(/below the minimum/);
    expect(() => checkMemorySize(4 * 1024 ** 3)).toThrow(/above the maximum/);
    expect(() => checkMemorySize(-2)).toThrow(MemoryConfigError);
    expect(() => checkMemorySize(3 * 1024 ** 3)).not.toThrow();
  });

  it('parses human sizes', () => {
    expect(parseMemorySize('512M')).toBe(512 * 1024 ** 2);
    expect(parseMemorySize('1G')).toBe(1024 ** 3);
    expect(parseMemorySize('64MiB')).toBe(64 * 1024 ** 2);
    expect(() => parseMemorySize('lots')).toThrow(/cannot read memory size/);
  });

  it('reads and writes by guest physical address and refuses ranges outside memory', () => {
    const m = new PhysicalMemory(MIN_MEMORY_BYTES);
    m.write(0x1ffe, Uint8Array.of(1, 2, 3, 4));
    expect([...m.read(0x1ffe, 4)]).toEqual([1, 2, 3, 4]);
    expect(m.page(1)[0xffe]).toBe(1);
    expect(() => m.read(MIN_MEMORY_BYTES - 2, 4)).toThrow(/outside/);
    expect(() => m.page(MIN_MEMORY_BYTES / 4096)).toThrow(MemoryConfigError);
  });
});
