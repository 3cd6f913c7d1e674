// The SVSM image as an IGVM file: `measure` of the file predicts the MEASUREMENT the simulated ASP
// computes when the host launches the same file, for three SVSM base addresses, and the SVSM boots
// and serves its guest from each of them.
import { describe, expect, it } from 'vitest';
import { SvsmProtocol } from '../src/arch/index.js';
import { SvsmClient } from '../src/guest/svsm-client.js';
import {
  igvmToLaunchPlan,
  launchPlanToIgvm,
  measure,
  readIgvm,
  writeIgvm,
} from '../src/igvm/index.js';
import { bspVmsaGpa } from '../src/igvm/svsm-image.js';
import { createTestCvm } from './support/cvm.js';

describe('the SVSM launched from an IGVM file', () => {
  for (const base of [0x200_0000, 0x1000_0000, 0x2e00_0000]) {
    it(`measures and boots with the SVSM at 0x${base.toString(16)}`, () => {
      let answer: unknown = undefined;
      const cvm = createTestCvm(
        function* (cpu) {
          const caa = SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi')));
          answer = yield* new SvsmClient(cpu, caa).queryProtocol(SvsmProtocol.CORE, 1);
        },
        { svsmBase: base, memoryBytes: 0x3000_0000, viaIgvm: true },
      );
      const file = cvm.igvmFile!;
      const predicted = measure(file).digest;
      expect(Buffer.from(predicted).toString('hex')).toBe(
        Buffer.from(cvm.measurement).toString('hex'),
      );
      cvm.vm.run();
      expect(cvm.vm.termination).toBeNull();
      expect(answer).toEqual({ minVersion: 1, maxVersion: 1 });
      expect(cvm.serial.join('\n')).toContain(`booted at 0x${base.toString(16)}`);
    });
  }

  it('round-trips the plan through the file', () => {
    const cvm = createTestCvm(function* () {}, { viaIgvm: true });
    const model = readIgvm(cvm.igvmFile!);
    const plan = igvmToLaunchPlan(model, bspVmsaGpa(64 * 1024 * 1024));
    expect(writeIgvm(launchPlanToIgvm(plan))).toEqual(cvm.igvmFile);
  });
});
