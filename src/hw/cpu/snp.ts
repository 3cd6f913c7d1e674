// The hypervisor-facing and SEV-SNP instructions: VMMCALL, VMGEXIT, PVALIDATE, RMPADJUST, and
// the instructions an SEV-ES guest's hypervisor always intercepts (WBINVD, INVD, MONITOR, MWAIT),
// which raise #VC with their SVM exit code (AMD64 APM vol. 2 15.35 "SEV-ES": a non-automatic exit
// becomes #VC; vol. 3 per instruction; reference/sev-snp-abi.md 6.3, 7.3, 7.4).
//
// Outside an SEV-ES guest there is no hypervisor behind this CPU: VMMCALL (and VMGEXIT, which is
// VMMCALL with F3 there) is #UD as on a processor whose VMM does not intercept it; the cache and
// monitor instructions do nothing observable. PVALIDATE/RMPADJUST need an SNP guest (#UD
// otherwise) and go to the platform (the engine), which owns the RMP.

import { type Cpu, RAX, RCX, RDX, VEC_GP, VEC_UD, VEC_VC } from './cpu.js';
import { AF, CF, OF, PF, SF, ZF } from './flags.js';
import { type Insn } from './insn.js';

/** SVM exit codes (APM vol. 2 appendix C) of the instructions here. */
export const EXIT_INVD = 0x76;
export const EXIT_VMMCALL = 0x81;
export const EXIT_WBINVD = 0x89;
export const EXIT_MONITOR = 0x8a;
export const EXIT_MWAIT = 0x8b;
export const EXIT_VMGEXIT = 0x403;

/** VMMCALL: #VC 0x81 in an SEV-ES guest, #UD without a hypervisor. */
export function execVmmcall(c: Cpu): never {
  if (c.sevEs) c.fault(VEC_VC, EXIT_VMMCALL);
  return c.fault(VEC_UD);
}

/**
 * VMGEXIT: in an SEV-ES guest an automatic #VMEXIT(VMGEXIT) once the instruction completed (the
 * guest resumes after it); otherwise it is VMMCALL. [uncertain] no CPL check: the APM allows it
 * where VMMCALL is allowed.
 */
export function execVmgexit(c: Cpu): void {
  if (!c.sevEs) execVmmcall(c);
  c.exitCode = EXIT_VMGEXIT;
  c.halted = true;
}

/** WBINVD (sub 0) / INVD (sub 1): privileged (#GP(0) at CPL > 0, checked before the intercept). */
export function execCache(c: Cpu, i: Insn): void {
  if (c.cpl !== 0) c.fault(VEC_GP, 0);
  if (c.sevEs) c.fault(VEC_VC, i.sub === 0 ? EXIT_WBINVD : EXIT_INVD);
}

/**
 * MONITOR / MWAIT: #UD at CPL > 0 (user-mode MONITOR/MWAIT is not enabled), #VC under SEV-ES;
 * otherwise MWAIT returns at once, as it may (a wake-up event can end it any time).
 */
export function execMonitor(c: Cpu, mwait: boolean): void {
  if (c.cpl !== 0) c.fault(VEC_UD);
  if (c.sevEs) c.fault(VEC_VC, mwait ? EXIT_MWAIT : EXIT_MONITOR);
}

/** CPL 0 in an SNP guest; the address in RAX must be canonical (#GP(0)). */
function rmpInstructionChecks(c: Cpu): void {
  if (!c.sevEs) c.fault(VEC_UD);
  if (c.cpl !== 0) c.fault(VEC_GP, 0);
  const hi = c.r[2 * RAX + 1]!;
  if (hi >> 15 !== hi >> 31) c.fault(VEC_GP, 0);
}

/**
 * EAX and rFLAGS after PVALIDATE/RMPADJUST: CF as the instruction reports it ("no change" for
 * PVALIDATE); [uncertain] ZF, SF, OF, AF and PF cleared.
 */
function finish(c: Cpu, rax: number, carry: boolean): void {
  c.setReg(RAX, 4, rax, 0);
  c.flags.assign(CF | ZF | SF | OF | AF | PF, carry ? CF : 0);
}

/** PVALIDATE: RAX = virtual address, ECX[0] = 2 MiB, EDX[0] = validate. */
export function execPvalidate(c: Cpu): void {
  rmpInstructionChecks(c);
  const hook = c.platform.pvalidate;
  if (hook === undefined) c.fault(VEC_UD);
  const r = c.r;
  const out = hook(
    c,
    r[2 * RAX]!,
    r[2 * RAX + 1]!,
    (r[2 * RCX]! & 1) !== 0,
    (r[2 * RDX]! & 1) !== 0,
  );
  finish(c, out.rax, out.carry);
}

/** RMPADJUST: RAX = virtual address, RCX[0] = 2 MiB, RDX = target VMPL | perms << 8 | VMSA << 16. */
export function execRmpadjust(c: Cpu): void {
  rmpInstructionChecks(c);
  const hook = c.platform.rmpadjust;
  if (hook === undefined) c.fault(VEC_UD);
  const r = c.r;
  const out = hook(
    c,
    r[2 * RAX]!,
    r[2 * RAX + 1]!,
    (r[2 * RCX]! & 1) !== 0,
    r[2 * RDX]!,
    r[2 * RDX + 1]!,
  );
  finish(c, out.rax, out.carry);
}
