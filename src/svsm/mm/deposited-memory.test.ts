import { describe, expect, it } from 'vitest';
import { AllocatorError } from './allocator-error.js';
import { DepositedMemory } from './deposited-memory.js';

describe('DepositedMemory', () => {
  it('hands out free deposits oldest first and refuses to withdraw a page in use', () => {
    const m = new DepositedMemory();
    expect(m.deposit(0x3000)).toBe(true);
    expect(m.deposit(0x1000)).toBe(true);
    expect(m.deposit(0x1000)).toBe(false);
    expect(m.allocPage()).toBe(0x3000);
    expect(m.withdraw(0x3000)).toBe('in-use');
    expect(m.withdraw(0x5000)).toBe('not-deposited');
    expect(m.withdraw(0x1000)).toBe('withdrawn');
    expect(m.allocPage()).toBeNull();
    m.freePage(0x3000);
    expect(m.withdraw(0x3000)).toBe('withdrawn');
    expect(m.pageCount).toBe(0);
  });

  it('treats freeing a page not in use, or depositing an unaligned one, as a fatal misuse', () => {
    const m = new DepositedMemory();
    m.deposit(0x2000);
    expect(() => m.freePage(0x2000)).toThrow(AllocatorError);
    expect(() => m.deposit(0x2001)).toThrow(AllocatorError);
  });
});
