import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytesFrom, seededRandom, systemRandom } from './random.js';

describe('seededRandom', () => {
  it('gives the same stream for the same seed, as string or bytes', () => {
    const a = randomBytesFrom(seededRandom('seed'), 100);
    const b = randomBytesFrom(seededRandom('seed'), 100);
    const c = randomBytesFrom(seededRandom(new TextEncoder().encode('seed')), 100);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it('gives different streams for different seeds', () => {
    const a = randomBytesFrom(seededRandom('seed-a'), 32);
    const b = randomBytesFrom(seededRandom('seed-b'), 32);
    expect(b).not.toEqual(a);
  });

  it('yields the same bytes however the stream is cut into fill calls', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 70 }), { maxLength: 12 }), (cuts) => {
        const total = cuts.reduce((n, c) => n + c, 0);
        const whole = randomBytesFrom(seededRandom('cut'), total);
        const r = seededRandom('cut');
        const pieces = cuts.map((c) => randomBytesFrom(r, c));
        const joined = new Uint8Array(total);
        let at = 0;
        for (const p of pieces) {
          joined.set(p, at);
          at += p.length;
        }
        expect(joined).toEqual(whole);
      }),
    );
  });

  it('is HMAC-SHA-256(SHA-256(label || seed), counter) (a change would change every seeded machine)', () => {
    const bytes = randomBytesFrom(seededRandom('svsm-ts'), 8);
    expect(Buffer.from(bytes).toString('hex')).toBe('21cc6bc3f71afe00');
  });
});

describe('systemRandom', () => {
  it('fills a buffer with bytes that differ between calls', () => {
    const r = systemRandom();
    const a = randomBytesFrom(r, 32);
    const b = randomBytesFrom(r, 32);
    expect(a).not.toEqual(b);
    expect(a.some((x) => x !== 0)).toBe(true);
  });
});

describe('randomBytesFrom', () => {
  it('refuses a negative length', () => {
    expect(() => randomBytesFrom(seededRandom('x'), -1)).toThrow(RangeError);
  });
});
