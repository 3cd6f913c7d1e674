// The demo guest of `svsm run`: what a guest OS does first under an SVSM, as a scripted VMPL2
// program that logs each step - find the SVSM through its secrets page, ask which protocols it
// speaks, and validate memory through it.

import { type GuestCpu, SvsmProtocol, SvsmResult, resultName } from '../arch/index.js';
import { SvsmClient } from './svsm-client.js';

export interface DemoOptions {
  /** Guest memory to validate through the SVSM, from 1 MiB up (2 MiB entries). */
  readonly validateBytes: number;
}

export function demoGuest(o: DemoOptions): (cpu: GuestCpu) => Generator<void, void, void> {
  return function* (cpu) {
    const secretsGpa = Number(cpu.readRegister('rsi'));
    const caa = SvsmClient.caaFromSecrets(cpu, secretsGpa);
    cpu.log(
      `guest: secrets page at 0x${secretsGpa.toString(16)}, SVSM calling area at 0x${caa.toString(16)}`,
    );
    const svsm = new SvsmClient(cpu, caa);
    for (const [name, p] of [
      ['core', SvsmProtocol.CORE],
      ['attestation', SvsmProtocol.ATTEST],
      ['vTPM', SvsmProtocol.VTPM],
    ] as const) {
      const v = yield* svsm.queryProtocol(p, 1);
      cpu.log(
        `guest: QUERY_PROTOCOL ${name}: ${v === null ? 'not supported' : `versions ${v.minVersion}-${v.maxVersion}`}`,
      );
    }
    const HUGE = 0x20_0000;
    const start = 0x20_0000;
    const entries = [];
    for (let gpa = start; gpa < start + o.validateBytes; gpa += HUGE) {
      entries.push({ pageSize: 1, validate: true, ignoreCf: false, gfn: gpa / 0x1000 });
    }
    const r = yield* svsm.pvalidate(entries);
    cpu.log(
      `guest: PVALIDATE ${entries.length} x 2 MiB at 0x${start.toString(16)}: ${r.rax === 0n ? 'success' : resultName(r.rax)} (${r.done} done)`,
    );
    const probe = cpu.read(start, 16);
    cpu.log(
      `guest: validated memory reads ${probe.every((b) => b === 0) ? 'as zero' : 'NOT as zero'}`,
    );
    if (r.rax !== BigInt(SvsmResult.SUCCESS)) cpu.log('guest: memory validation failed');
    cpu.log('guest: done, halting');
  };
}
