// CPUID NAE event (SVM_EXIT_CPUID 0x72). Inputs RAX (leaf) and RCX (subleaf), and XCR0 when the
// leaf is 0xD (KVM `sev_es_validate_vmgexit`); XSS is taken when valid. The answer comes from the
// VM's CPU model and goes back in RAX, RBX, RCX and RDX, each marked valid (Linux checks all four).

import { XCR0_RESET } from '../../hw/platform-cpuid.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

export function cpuidExit(x: GhcbExit): void {
  if (x.missing('rax', 'rcx')) return;
  const leaf = x.get32('rax');
  if (leaf === 0xd && x.missing('xcr0')) return;
  const subleaf = x.get32('rcx');
  const xcr0 = leaf === 0xd ? x.get('xcr0') : XCR0_RESET;
  const xss = leaf === 0xd && x.isValid('xss') ? x.get('xss') : 0n;
  const r = platformOf(x.vm).cpu.cpuid(leaf, subleaf, xcr0, xss, x.hv.vcpu.apicId);
  x.output32('rax', r.eax);
  x.output32('rbx', r.ebx);
  x.output32('rcx', r.ecx);
  x.output32('rdx', r.edx);
  x.ok(0n);
}
