import { describe, expect, it } from 'vitest';
import { createTestCvm } from '../../test/support/cvm.js';
import { backtraceSymbolizer } from './backtrace.js';
import { svsmBundleWithMap } from './svsm-bundle.js';

describe('SVSM panic backtraces', () => {
  it('name the TypeScript sources of the frames, and the panic ends the VM with keys wiped', () => {
    const cvm = createTestCvm(function* () {});
    // A host that refuses every AP creation: the SVSM cannot give its guest a VMSA and panics.
    cvm.vm.byApicId = () => undefined;
    cvm.vm.run();
    expect(cvm.vm.termination?.reason).toMatch(/terminate/);
    const raw = cvm.serial.join('\n');
    expect(raw).toContain('PANIC: SvsmPanic: the host refused the guest VMSA of vCPU 0');
    expect(raw).toMatch(/<anonymous>:\d+:\d+/);
    const text = backtraceSymbolizer(svsmBundleWithMap().map)(raw);
    expect(text).toMatch(/src\/svsm\/boot\/boot\.ts:\d+:\d+/);
    expect(text).toMatch(/src\/svsm\/main\.ts:\d+:\d+/);
    // VMPCK0-3 are gone from the firmware's secrets page.
    const secrets = cvm.machine.physicalMemory().bytes.subarray(0x200_1000, 0x200_1000 + 0x1000);
    expect(secrets.subarray(0x20, 0xa0).every((b) => b === 0)).toBe(true);
  });
});
