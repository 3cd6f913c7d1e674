// `svsm exec` on programs the system tests build: the C workload's output and exit status, and
// the trace of a program that takes #PF and software interrupts through its IDT.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { captureIo } from '../support/cli-io.js';
import { buildProgramFile } from './build.js';
import { expectedWorkloadOutput } from './workload-expected.js';

describe('svsm exec on built programs', () => {
  it('runs the C workload: its output on standard output, exit status 0', async () => {
    const io = captureIo();
    expect(await runCli(['exec', buildProgramFile('workload')], io)).toBe(0);
    expect(io.lines.join('\n') + '\n').toBe(expectedWorkloadOutput());
    expect(io.errors.at(-1)).toMatch(/^svsm exec: halted after 3[0-9]{6} instructions/);
  });

  it('traces a program that takes #PF through its IDT: events, then the handler', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svsm-exec-'));
    try {
      const trace = join(dir, 'pf.trace');
      const io = captureIo();
      const args = ['exec', buildProgramFile('pf'), '--paging', '--events', '--trace'];
      expect(await runCli([...args, '--trace-file', trace], io)).toBe(0);
      expect(io.lines[0]).toBe('#PF test');
      const lines = readFileSync(trace, 'utf8').trimEnd().split('\n');
      const events = lines.filter((l) => l.startsWith('-- event'));
      expect(events.length).toBeGreaterThanOrEqual(2);
      expect(events[0]).toMatch(/^-- event 14 #PF error 2 -> [0-9a-f]{16}$/);
      // The line after an event is the handler's first instruction, at the RIP the event names.
      const k = lines.indexOf(events[0]!);
      expect(lines[k + 1]!.split(/ +/)[2]).toBe(events[0]!.split(' ').at(-1));
      // Every instruction has its line, the faulting ones too (they do not retire, so the
      // handler's first instruction has the same count): no gaps, and the faults are the events.
      const counts = lines.filter((l) => !l.startsWith('--')).map((l) => Number(l.split(/ +/)[1]));
      expect(
        counts.every((n, i) => i === 0 || n - counts[i - 1]! === 1 || n === counts[i - 1]),
      ).toBe(true);
      const repeats = counts.filter((n, i) => i > 0 && n === counts[i - 1]).length;
      expect(repeats).toBe(events.length);
      const summary = io.errors.at(-1)!;
      const retired = Number(/after ([0-9]+) instructions/.exec(summary)![1]);
      expect(retired).toBe(counts.length - events.length);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
