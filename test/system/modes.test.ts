// The reset-to-long-mode ROM (programs/modes.S) on the interpreter: real mode at the reset vector,
// protected mode, long mode; it prints R, P, L and the control registers long mode sees.
import { describe, expect, it } from 'vitest';
import { buildProgram } from './build.js';
import { BareMachine } from '../../src/hw/bare-machine.js';

const BUDGET = 1_000_000;

describe('mode switches', () => {
  it('goes from the reset vector through real and protected mode to long mode', () => {
    const m = BareMachine.realMode(buildProgram('modes'));
    const r = m.run(BUDGET);
    expect(r.stop).toBe('hlt');
    expect(r.output).toBe(
      'RPL\n' +
        // CS is the GDT's 64-bit code segment; CR0 keeps reset's CD/NW (0x60000000) plus PE and
        // PG (ET from reset); CR4 = PAE; EFER = LME | LMA (LMA set by the CPU when PG turned on).
        'cs=0018 cr0=00000000e0000011 cr4=0000000000000020 efer=0000000000000500\n',
    );
  });
});
