// A small flat machine for the SSE and x87 tests: code at CODE, scratch data at DATA, and `run`,
// which executes a hex string's instructions once each and answers the first exception's vector
// (or -1).
import { Cpu } from './cpu.js';
import { Interpreter, STOP_EXCEPTION } from './interpreter.js';
import { FlatTranslator } from './translator.js';

export const CODE = 0x1000;
/** A 16-byte aligned scratch area; the window ends at 0x4000. */
export const DATA = 0x2000;

export interface SimdMachine {
  readonly cpu: Cpu;
  readonly mem: Uint8Array;
  readonly v: DataView;
  run(hex: string): number;
}

export function simdMachine(): SimdMachine {
  const mem = new Uint8Array(0x4000);
  const cpu = new Cpu(mem, new FlatTranslator(0, 0x4000));
  const interp = new Interpreter(cpu);
  const run = (hex: string): number => {
    const code = Buffer.from(hex.replace(/ /g, ''), 'hex');
    mem.set(code, CODE);
    cpu.code.invalidate(CODE, code.length);
    cpu.rip = BigInt(CODE);
    let n = 0;
    while (Number(cpu.rip) < CODE + code.length && n++ < 64) {
      if (interp.run(1) === STOP_EXCEPTION) return cpu.exVector;
    }
    return -1;
  };
  return { cpu, mem, v: new DataView(mem.buffer), run };
}
