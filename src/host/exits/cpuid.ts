// CPUID NAE event (SVM_EXIT_CPUID 0x72). Inputs RAX (leaf) and RCX (subleaf), and XCR0 when the
// leaf is 0xD (KVM `sev_es_validate_vmgexit`); XSS is taken when valid. The answer comes from the
// VM's CPU model and goes back in RAX, RBX, RCX and RDX, each marked valid (Linux checks all four).

import { XCR0_RESET } from '../../hw/platform-cpuid.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

export function cpuidExit(x: GhcbExit): void {
  if (x.missing('rax', 'rcx')) return;
  const leaf = Number(x.get('rax') & 0xffff_ffffn);
  if (leaf === 0xd && x.missing('xcr0')) return;
  const subleaf = Number(x.get('rcx') & 0xffff_ffffn);
  const xcr0 = leaf === 0xd ? x.get('xcr0') : XCR0_RESET;
  const xss = leaf === 0xd && x.isValid('xss') ? x.get('xss') : 0n;
  const r = platformOf(x.vm).cpu.cpuid(leaf, subleaf, xcr0, xss, x.hv.vcpu.apicId);
  x.output('rax', BigInt(r.eax));
  x.output('rbx', BigInt(r.ebx));
  x.output('rcx', BigInt(r.ecx));
  x.output('rdx', BigInt(r.edx));
  x.ok(0n);
}
