import { describe, expect, it } from 'vitest';
import { SvsmProtocol, SvsmResult } from '../src/arch/index.js';
import { SvsmClient } from '../src/guest/svsm-client.js';
import { createTestCvm } from './support/cvm.js';

describe('the SVSM boots and serves its guest', () => {
  it('boots, runs the guest at VMPL2 and answers QUERY_PROTOCOL', () => {
    const results: unknown[] = [];
    const cvm = createTestCvm(function* (cpu) {
      const caa = SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi')));
      const svsm = new SvsmClient(cpu, caa);
      results.push(yield* svsm.queryProtocol(SvsmProtocol.CORE, 1));
      results.push(yield* svsm.queryProtocol(SvsmProtocol.ATTEST, 1));
      results.push(yield* svsm.queryProtocol(9, 1));
      const unknown = yield* svsm.call(7, 0);
      results.push(unknown.rax);
    });
    const state = cvm.vm.run();
    expect(cvm.vm.termination).toBeNull();
    expect(state).toBe('stopped');
    expect(cvm.serial.join('\n')).toContain('booted at 0x2000000');
    expect(results).toEqual([
      { minVersion: 1, maxVersion: 1 },
      { minVersion: 1, maxVersion: 1 },
      null,
      BigInt(SvsmResult.UNSUPPORTED_PROTOCOL),
    ]);
  });
});
