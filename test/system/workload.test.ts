// The C workload (programs/workload.c, gcc -O2, freestanding) run on the interpreter: its output
// must equal what workload-expected.ts computes independently (FIPS 180 digests, node:crypto,
// BigInt sorts, glibc's printf text).
import { beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from './build.js';
import { MAILBOX, BareMachine } from '../../src/hw/bare-machine.js';
import { expectedWorkloadOutput } from './workload-expected.js';

let elf: Uint8Array;
beforeAll(() => {
  elf = buildProgram('workload');
});

describe('the C workload', () => {
  it('prints the FIPS 180 digests, the sorted checksums and the formatted text, on flat memory', () => {
    const m = BareMachine.longMode(elf, 'flat');
    const r = m.run(100_000_000);
    expect(r.exception).toBeNull();
    expect(r.stop).toBe('hlt');
    expect(r.output).toBe(expectedWorkloadOutput());
    expect(r.exitCode).toBe(0);
  });

  it('prints the same through 4-level paging and retires the same instructions', () => {
    const flat = BareMachine.longMode(elf, 'flat').run(100_000_000);
    const m = BareMachine.longMode(elf, 'paging');
    const r = m.run(100_000_000);
    expect(r.stop).toBe('hlt');
    expect(r.output).toBe(expectedWorkloadOutput());
    expect(r.instructions).toBe(flat.instructions);
    // The program really went through the page tables.
    expect(m.paging!.walks).toBeGreaterThan(0);
  });

  it('stops at the instruction budget with partial output and resumes to the same result', () => {
    const m = BareMachine.longMode(elf, 'flat');
    const first = m.run(1_000_000);
    expect(first.stop).toBe('budget');
    expect(first.instructions).toBe(1_000_000);
    expect(expectedWorkloadOutput().startsWith(first.output)).toBe(true);
    expect(first.exitCode).toBeNull();
    const rest = m.run(100_000_000);
    expect(rest.stop).toBe('hlt');
    expect(rest.output).toBe(expectedWorkloadOutput());
  });

  it('faults with #PF at the null page under paging (page 0 is not mapped)', () => {
    // The same image, entered at address 0 instead of its entry point.
    const m = BareMachine.longMode(elf, 'paging');
    m.cpu.rip = 0n;
    const r = m.run(10);
    expect(r.stop).toBe('exception');
    expect(r.exception).toMatchObject({ vector: 14, rip: 0n });
    expect(m.memory.bytes[MAILBOX.len]).toBe(0);
  });

  it('prints the same again when restarted in the same machine (code stays cached)', () => {
    const m = BareMachine.longMode(elf, 'paging');
    const first = m.run(100_000_000);
    const pages = m.cpu.code.invalidations;
    m.restart();
    const again = m.run(100_000_000);
    expect(again).toEqual(first);
    expect(again.output).toBe(expectedWorkloadOutput());
    expect(m.cpu.code.invalidations).toBe(pages);
  });
});
