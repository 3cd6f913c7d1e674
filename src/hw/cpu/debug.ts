// Debug exceptions (AMD64 APM vol. 2, 13.1 "Software-Debug Resources"; Intel SDM vol. 3B, 17.3):
// single-step traps (RFLAGS.TF), instruction breakpoints (DR7 R/W = 00, faults at the
// instruction) and data breakpoints (R/W = 01 writes, 11 reads or writes; traps after the
// instruction), reported as #DB with DR6.BS / DR6.Bn.
//
// Design: all of it lives off the hot path. While TF or RF is set, a breakpoint is enabled, or a
// trap is pending, `Cpu.updateAttention` keeps `attention` set, so every instruction passes the
// run loop's boundary (interpreter.ts), which delivers the pending #DB trap of the previous
// instruction, checks instruction breakpoints at the new RIP, and arms the single-step trap; the
// JIT is not entered then (one instruction at a time). Data breakpoints use the TLB: pages that
// hold a watched byte are cached without read and write permission (execute stays), so every
// data access to them leaves the fast path for `Cpu.translate`, which compares the byte's linear
// address with the watched ranges; `debugChanged` flushes the TLB so no earlier entry bypasses
// that. Accesses to other pages cost nothing.
//
// Which instruction a trap belongs to: `armDebug` records the instruction count at its start
// (`dbArmedAt`) and the DR6 bits raised so far (`dbHits`: BS when TF was set at the start, Bn
// from watched accesses). The trap is taken only if that instruction retired (the count moved
// by exactly one) and no event was delivered since (`deliverEvent` disarms): so no trap after a
// faulting instruction, none after the instruction that sets TF (POPF, IRET: TF was clear at
// its start), one after the instruction that clears it, and none after INT n/INT3/INTO, which
// clear TF on delivery (as Bochs does; the SDM asks debuggers to emulate INT n for this reason).
// SYSCALL/SYSRET decide by TF after the instruction (`stepByNewFlags`), so a SYSCALL whose FMASK
// clears TF does not trap in the kernel (SYSENTER keeps TF: it traps at CPL 0). After MOV SS/POP
// SS the trap waits one more instruction (the shadow also holds debug traps) and is reported with
// its bits merged; LSS has no such shadow.
//
// A fault pushes RFLAGS with RF set (the run loop sets it before delivery), a #DB with RF clear.
// Not modelled: per-iteration single-steps and data traps of REP string
// instructions (the whole REP instruction is one step), I/O breakpoints (R/W = 10), general
// detect (DR7.GD), task-switch traps (DR6.BT), implicit supervisor accesses (descriptor tables,
// the TSS) hitting data breakpoints.

import { type Cpu, MODE_64, SEG_CS, TRAP_EXCEPTION, VEC_DB } from './cpu.js';
import { deliverEvent, EVENT_EXCEPTION, NO_ERROR_CODE } from './events.js';
import { RF, TF } from './flags.js';

/** DR6.BS: the #DB is a single-step trap. B0-B3 are bits 0-3. */
export const DR6_BS = 0x4000;

/** Bytes covered by DR7.LENn (00: 1, 01: 2, 10: 8, 11: 4). */
const LENGTHS = [1, 2, 8, 4];

/**
 * DR0-DR3 or DR7 changed (MOV DRn, a VMSA load): decodes the enabled breakpoints into the CPU's
 * number fields, flushes the TLB when the watched data ranges changed (watched pages must lose
 * their cached data permissions; with none before and after, the TLB is left alone, so a VM
 * entry does not empty it) and recomputes `attention`.
 */
export function debugChanged(c: Cpu): void {
  const before = watchedRanges(c);
  const dr7 = Number(c.dr7 & 0xffffffffn);
  let exec = 0;
  let watch = 0;
  let writeOnly = 0;
  for (let n = 0; n < 4; n++) {
    if (((dr7 >>> (2 * n)) & 3) === 0) continue;
    const rw = (dr7 >>> (16 + 4 * n)) & 3;
    const len = LENGTHS[(dr7 >>> (18 + 4 * n)) & 3]!;
    // The low address bits below the length are ignored (breakpoints are aligned ranges).
    const a = BigInt.asUintN(64, c.dr[n]!) & ~BigInt(rw === 0 ? 0 : len - 1);
    c.bpLo[n] = Number(a & 0xffffffffn) | 0;
    c.bpHi[n] = Number(a >> 32n) | 0;
    c.bpLen[n] = len;
    // R/W = 10 (I/O breakpoints with CR4.DE) is not modelled.
    if (rw === 0) exec |= 1 << n;
    if (rw === 1 || rw === 3) watch |= 1 << n;
    if (rw === 1) writeOnly |= 1 << n;
  }
  c.bpExec = exec;
  c.bpWatch = watch;
  c.bpWriteOnly = writeOnly;
  if (watchedRanges(c) !== before) c.flushTlb();
  c.updateAttention();
}

/** The enabled data breakpoints as text ('' when none), to see whether they changed. */
function watchedRanges(c: Cpu): string {
  let out = '';
  for (let n = 0; n < 4; n++) {
    if ((c.bpWatch & (1 << n)) === 0) continue;
    out += `${n}:${c.bpLo[n]}:${c.bpHi[n]}:${c.bpLen[n]}:${(c.bpWriteOnly >> n) & 1};`;
  }
  return out;
}

/**
 * At the boundary after the instruction `armDebug` armed: its #DB trap, if it raised one.
 * Returns true when the run loop must stop with STOP_EXCEPTION (faults are not delivered: the
 * trap is in `exVector`/`exKind`, RIP after the instruction).
 */
export function debugTrap(c: Cpu): boolean {
  if (c.instructions !== c.dbArmedAt + 1) {
    // The armed instruction did not retire (it faulted, or the run stopped before it).
    if (c.instructions !== c.dbArmedAt) c.dbArmedAt = -1;
    return false;
  }
  if (c.instructions === c.ssShadowEnd) {
    // MOV SS/POP SS: the trap waits for the end of the next instruction (armDebug adds its bits).
    c.dbArmedAt = c.instructions;
    return false;
  }
  const hits = c.dbHits;
  if (hits === 0) {
    c.dbArmedAt = -1;
    return false;
  }
  c.dr6 |= BigInt(hits);
  if (!c.deliverFaults) {
    c.dbArmedAt = -1;
    c.dbHits = 0;
    c.exVector = VEC_DB;
    c.exErrorCode = 0;
    c.exKind = TRAP_EXCEPTION;
    return true;
  }
  // deliverEvent disarms once the frame is pushed; a nested page fault leaves the trap pending.
  deliverEvent(c, VEC_DB, NO_ERROR_CODE, EVENT_EXCEPTION);
  return false;
}

/**
 * Before an instruction while debugging is active: the instruction breakpoint fault (unless RF,
 * which is cleared here as the SDM says, after that check), then the single-step arming.
 */
export function armDebug(c: Cpu): void {
  const f = c.flags.bits;
  if ((f & RF) !== 0) c.flags.bits = f & ~RF;
  else if (c.bpExec !== 0) instructionBreakpoint(c);
  const carried = c.dbArmedAt === c.instructions ? c.dbHits : 0;
  c.dbHits = carried | ((f & TF) !== 0 ? DR6_BS : 0);
  // Armed even without a pending bit: data breakpoints may add one, and the run loop enters no
  // compiled block while an instruction is armed.
  c.dbArmedAt = c.instructions;
}

/** #DB (a fault: RIP stays at the instruction) when an enabled R/W = 00 breakpoint matches. */
function instructionBreakpoint(c: Cpu): void {
  const r = c.r;
  let lo = r[32]!;
  let hi = r[33]!;
  if (c.mode !== MODE_64) {
    lo = (lo + c.segBase[2 * SEG_CS]!) | 0;
    hi = 0;
  }
  let hits = 0;
  for (let n = 0; n < 4; n++) {
    if ((c.bpExec & (1 << n)) !== 0 && c.bpLo[n] === lo && c.bpHi[n] === hi) hits |= 1 << n;
  }
  if (hits === 0) return;
  c.dr6 |= BigInt(hits);
  c.fault(VEC_DB, 0);
}

/**
 * SYSCALL/SYSRET: the single-step trap follows TF as the instruction left it
 * (the instruction counter is still the one `armDebug` recorded).
 */
export function stepByNewFlags(c: Cpu): void {
  const armed = c.dbArmedAt === c.instructions ? c.dbHits : 0;
  const hits = (c.flags.bits & TF) !== 0 ? armed | DR6_BS : armed & ~DR6_BS;
  c.dbHits = hits;
  c.dbArmedAt = c.instructions;
  c.updateAttention();
}
