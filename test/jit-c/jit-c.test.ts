import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Cpu, RSP } from '../../src/hw/cpu/cpu.js';
import { Interpreter, STOP_BUDGET, STOP_HLT } from '../../src/hw/cpu/interpreter.js';
import { FlatTranslator } from '../../src/hw/cpu/translator.js';
import { buildWorkload, type Image, LOAD, unsupportedReason } from './build.js';

const SIZE = 0x10000;
const why = unsupportedReason();

function boot(img: Image, jit: boolean) {
  const mem = new Uint8Array(SIZE);
  mem.set(img.bytes);
  const cpu = new Cpu(mem, new FlatTranslator(LOAD, SIZE));
  cpu.rip = BigInt(img.entry);
  cpu.setReg64(RSP, BigInt(LOAD + 0xf000));
  return { mem, cpu, interp: new Interpreter(cpu, { jit }) };
}

function words(mem: Uint8Array, addr: number, n: number): number[] {
  const v = new DataView(mem.buffer, addr - LOAD, 4 * n);
  return Array.from({ length: n }, (_, k) => v.getUint32(4 * k, true));
}

describe.skipIf(why !== null)(
  'a gcc-compiled C program (SHA-256, quicksort, insertion sort)',
  () => {
    it('computes the right results with the JIT, in step with the interpreter', () => {
      const img = buildWorkload();
      const a = boot(img, false);
      const b = boot(img, true);
      // Same state after every slice (uneven budgets, so blocks are entered at many points).
      let stop = STOP_BUDGET;
      for (let slice = 1; stop === STOP_BUDGET; slice++) {
        const budget = 1 + ((slice * 7919) % 50_000);
        stop = a.interp.run(budget);
        expect(b.interp.run(budget)).toBe(stop);
        expect(b.cpu.instructions).toBe(a.cpu.instructions);
        expect(b.cpu.rip).toBe(a.cpu.rip);
        expect(b.cpu.rflags).toBe(a.cpu.rflags);
        for (let k = 0; k < 16; k++) expect(b.cpu.getReg64(k)).toBe(a.cpu.getReg64(k));
      }
      expect(stop).toBe(STOP_HLT);
      expect(Buffer.from(b.mem).equals(Buffer.from(a.mem))).toBe(true);
      expect(b.interp.jit!.executed).toBeGreaterThan(0.9 * b.cpu.instructions);

      // The results are right: SHA-256 of the same buffer, sorted arrays.
      let seed = 1;
      const lcg = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
      const buf = Buffer.alloc(4096);
      for (let i = 0; i < 4096; i++) buf[i] = (lcg() >>> 16) & 0xff;
      const digest = createHash('sha256').update(buf).digest();
      const out = words(b.mem, img.symbols.get('out')!, 8);
      expect(
        Buffer.from(out.flatMap((x) => [x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff])),
      ).toEqual(digest);
      const arr = words(b.mem, img.symbols.get('arr')!, 512);
      const expected: number[] = [];
      for (let i = 0; i < 512; i++) expected.push(lcg());
      expect(arr).toEqual(expected.sort((x, y) => x - y));
      const arr2 = words(b.mem, img.symbols.get('arr2')!, 128);
      expect(arr2).toEqual([...arr2].sort((x, y) => x - y));
    }, 120_000);
  },
);
