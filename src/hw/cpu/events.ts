// Delivery of exceptions and interrupts through the IDT (APM vol. 2, chapter 8): the contract the
// x86 engine uses to hand an exception (#VC included) or an injected interrupt to guest code.
//
// Contract (shared by the engine and the system-architecture work of issue 5):
// - `deliverEvent(c, vector, errorCode, kind)` performs the delivery on `c` as the CPU would at an
//   instruction boundary: IDT gate lookup, privilege/stack switch (IST, TSS), frame push, CS/RIP
//   load, RFLAGS changes; a fault during delivery escalates (#DF, then shutdown).
// - RIP in `c.r` is where the event returns to (the faulting instruction for faults, the next
//   one for traps and software interrupts), as the interpreter leaves it after STOP_EXCEPTION.
// - It throws `ShutdownError` when delivery ends in a triple fault.
// - A fault while delivering EVENT_SOFTWARE returns to `c.startLo/startHi` (the INT instruction).
//
// Long mode (APM 8.9): 16-byte gates, interrupt/trap gates only, IST or RSPn from the 64-bit TSS,
// RSP aligned down to 16, SS:RSP always pushed, a null SS (RPL = new CPL) on a privilege change.
// Legacy protected mode (8.7): 8-byte 16/32-bit gates, SSn:ESPn from the 32-bit TSS, SS:ESP
// pushed only on a privilege change. Real mode: the IVT (4-byte CS:IP vectors).
// #DF (8.2.9, Table 8-7): contributory = #DE, #TS, #NP, #SS, #GP; a contributory fault during a
// contributory one, or a contributory or #PF during #PF, becomes #DF; any fault during #DF is a
// triple fault. Everything else is delivered serially (the second event replaces the first).

import {
  type Cpu,
  MODE_REAL,
  RSP,
  SEG_CS,
  SEG_SS,
  SEG_TR,
  VEC_DE,
  VEC_DF,
  VEC_GP,
  VEC_NMI,
  VEC_NP,
  VEC_PF,
  VEC_SS,
  VEC_TS,
  X86Fault,
} from './cpu.js';
import { stackPush } from './far.js';
import { IF, TF } from './flags.js';
import {
  ATTR_CE,
  ATTR_CODE,
  ATTR_DB,
  ATTR_L,
  ATTR_P,
  ATTR_S,
  Descriptor,
  dpl,
  loadCode,
  longMode,
  readDescriptor,
  readLinear,
  Segment,
} from './segments.js';

/** What kind of event is being delivered (changes error-code pushing and IF handling). */
export const EVENT_EXCEPTION = 0;
export const EVENT_EXTERNAL = 1;
export const EVENT_NMI = 2;
export const EVENT_SOFTWARE = 3;

/** errorCode value meaning "this event pushes no error code". */
export const NO_ERROR_CODE = -1;

/** A triple fault: the vCPU shuts down (the engine reports a SHUTDOWN exit). */
export class ShutdownError extends Error {
  override readonly name = 'ShutdownError';
}

/** Exceptions that push an error code (APM vol. 2, Table 8-1): #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX. */
export function pushesErrorCode(vector: number): boolean {
  switch (vector) {
    case 8:
    case 10:
    case 11:
    case 12:
    case 13:
    case 14:
    case 17:
    case 21:
    case 29:
    case 30:
      return true;
    default:
      return false;
  }
}

const BENIGN = 0;
const CONTRIBUTORY = 1;
const PAGE_FAULT = 2;

function classOf(vector: number): number {
  if (vector === VEC_PF) return PAGE_FAULT;
  if (vector === VEC_DE || (vector >= VEC_TS && vector <= VEC_GP)) return CONTRIBUTORY;
  return BENIGN;
}

const RFLAGS_AC = 0x40000;
const RFLAGS_RF = 0x10000;
const RFLAGS_NT = 0x4000;
const RFLAGS_VM = 0x20000;

/** Delivers one event to `c`, escalating faults raised on the way (#DF, triple fault). */
export function deliverEvent(c: Cpu, vector: number, errorCode: number, kind: number): void {
  let vec = vector;
  let err = errorCode;
  let k = kind;
  const saved = snapshot(c);
  for (;;) {
    try {
      deliverOnce(c, vec, err, k);
      c.onEvent?.(vec, err);
      // Debug traps of the interrupted instruction are dropped (INT n clears TF: no single-step
      // trap after it; a #DB trap is consumed by its own delivery). debug.ts.
      c.dbArmedAt = -1;
      return;
    } catch (e) {
      if (!(e instanceof X86Fault)) throw e;
      restore(c, saved);
      // A nested page fault (RMP or hypervisor) is not an x86 event: it leaves to the host with
      // the state as before this delivery, and the event is raised again on return.
      if (c.exVector > 255) throw e;
      // A fault while delivering INT n/INT3/INTO is a fault of that instruction: it returns to
      // the instruction itself (`startLo/startHi`, which the interpreter sets per instruction).
      if (k === EVENT_SOFTWARE) {
        c.r[32] = c.startLo;
        c.r[33] = c.startHi;
      }
      const nv = c.exVector;
      if (k === EVENT_EXCEPTION && vec === VEC_DF) {
        throw new ShutdownError(`triple fault (vector ${nv} while delivering #DF)`);
      }
      const a = k === EVENT_EXCEPTION ? classOf(vec) : BENIGN;
      const b = classOf(nv);
      if ((a === CONTRIBUTORY && b === CONTRIBUTORY) || (a === PAGE_FAULT && b !== BENIGN)) {
        vec = VEC_DF;
        err = 0;
      } else {
        vec = nv;
        err = pushesErrorCode(nv) ? c.exErrorCode : NO_ERROR_CODE;
      }
      k = EVENT_EXCEPTION;
    }
  }
}

interface Snapshot {
  rsp0: number;
  rsp1: number;
  cpl: number;
  cs: Segment;
  ss: Segment;
  flags: number;
  rip0: number;
  rip1: number;
}

function snapshot(c: Cpu): Snapshot {
  const cs = c.seg[SEG_CS]!;
  const ss = c.seg[SEG_SS]!;
  return {
    rsp0: c.r[2 * RSP]!,
    rsp1: c.r[2 * RSP + 1]!,
    cpl: c.cpl,
    cs: new Segment(cs.selector, cs.base, cs.limit, cs.attr),
    ss: new Segment(ss.selector, ss.base, ss.limit, ss.attr),
    flags: c.flags.get(),
    rip0: c.r[32]!,
    rip1: c.r[33]!,
  };
}

function restore(c: Cpu, s: Snapshot): void {
  c.r[2 * RSP] = s.rsp0;
  c.r[2 * RSP + 1] = s.rsp1;
  c.r[32] = s.rip0;
  c.r[33] = s.rip1;
  c.setCpl(s.cpl);
  c.setSegment(SEG_CS, s.cs.selector, s.cs.base, s.cs.limit, s.cs.attr);
  c.setSegment(SEG_SS, s.ss.selector, s.ss.base, s.ss.limit, s.ss.attr);
  c.flags.put(s.flags);
}

const desc = new Descriptor();

function deliverOnce(c: Cpu, vector: number, errorCode: number, kind: number): void {
  if (c.mode === MODE_REAL) {
    deliverReal(c, vector);
    return;
  }
  const long = longMode(c);
  const ext = kind === EVENT_SOFTWARE ? 0 : 1;
  const idtErr = vector * 8 + 2 + ext;
  const size = long ? 16 : 8;
  if (vector * size + size - 1 > c.idtrLimit) c.fault(VEC_GP, idtErr);
  const gate = c.idtrBase + BigInt(vector * size);
  const w0 = readLinear(c, gate, 4);
  const w1 = readLinear(c, gate + 4n, 4);
  const type = (w1 >>> 8) & 0x1f;
  const is32 = type === 0xe || type === 0xf;
  const is16 = !long && (type === 0x6 || type === 0x7);
  if (!is32 && !is16) c.fault(VEC_GP, idtErr); // task gates are not modelled
  if (kind === EVENT_SOFTWARE && ((w1 >>> 13) & 3) < c.cpl) c.fault(VEC_GP, vector * 8 + 2);
  if ((w1 & 0x8000) === 0) c.fault(VEC_NP, idtErr);
  const trapGate = (type & 1) !== 0;
  const sel = w0 >>> 16;
  let off0 = (w0 & 0xffff) | (w1 & 0xffff0000);
  let off1 = 0;
  if (long) {
    off1 = readLinear(c, gate + 8n, 4);
  } else if (is16) {
    off0 &= 0xffff;
  }

  // The target code segment.
  if ((sel & 0xfffc) === 0) c.fault(VEC_GP, ext);
  readDescriptor(c, sel, desc, VEC_GP);
  const selErr = (sel & 0xfffc) + ext;
  const a = desc.attr;
  if ((a & (ATTR_S | ATTR_CODE)) !== (ATTR_S | ATTR_CODE)) c.fault(VEC_GP, selErr);
  if (long && ((a & ATTR_L) === 0 || (a & ATTR_DB) !== 0)) c.fault(VEC_GP, selErr);
  if (dpl(a) > c.cpl) c.fault(VEC_GP, selErr);
  if ((a & ATTR_P) === 0) c.fault(VEC_NP, selErr);
  const from = c.cpl;
  const to = (a & ATTR_CE) !== 0 ? from : dpl(a);
  if (long && off1 >> 15 !== off1 >> 31) c.fault(VEC_GP, ext);

  const flags = c.flags.get();
  const r = c.r;
  const oldCs = c.seg[SEG_CS]!.selector;
  const oldSs = c.seg[SEG_SS]!.selector;
  const rip0 = r[32]!;
  const rip1 = r[33]!;
  const sp0 = r[2 * RSP]!;
  const sp1 = r[2 * RSP + 1]!;

  if (long) {
    const ist = w1 & 7;
    let rsp: bigint;
    if (ist !== 0) rsp = tssRead64(c, 36 + (ist - 1) * 8, ext);
    else if (to < from) rsp = tssRead64(c, 4 + to * 8, ext);
    else rsp = (BigInt(sp1 >>> 0) << 32n) | BigInt(sp0 >>> 0);
    const top = rsp >> 47n;
    if (top !== 0n && top !== 0x1ffffn) c.fault(VEC_SS, ext);
    rsp &= ~15n;
    if (to !== from) {
      c.setCpl(to);
      // A null SS with RPL = new CPL (APM 8.9.3).
      c.setSegment(SEG_SS, to, 0n, 0xffffffff, 0x493 | (to << 5));
    }
    r[2 * RSP] = Number(rsp & 0xffffffffn) | 0;
    r[2 * RSP + 1] = Number(rsp >> 32n) | 0;
    // Pushes now see 64-bit mode only once CS is loaded; the frame is 8-byte slots regardless.
    push64(c, oldSs, 0);
    push64(c, sp0, sp1);
    push64(c, flags, 0);
    push64(c, oldCs, 0);
    push64(c, rip0, rip1);
    if (errorCode !== NO_ERROR_CODE) push64(c, errorCode, 0);
  } else {
    const w = is32 ? 4 : 2;
    if (to < from) {
      // SSn:ESPn from the 32-bit TSS (or SPn from a 16-bit one).
      const tss32 = (c.seg[SEG_TR]!.attr & 0x8) !== 0;
      const espOff = tss32 ? 4 + to * 8 : 2 + to * 4;
      const esp = tssRead(c, espOff, tss32 ? 4 : 2, ext);
      const ss = tssRead(c, espOff + (tss32 ? 4 : 2), 2, ext);
      loadTssStack(c, ss, to, ext);
      c.setCpl(to);
      r[2 * RSP] = esp | 0;
      r[2 * RSP + 1] = 0;
      stackPush(c, w, oldSs, 0);
      stackPush(c, w, sp0, 0);
    }
    stackPush(c, w, flags, 0);
    stackPush(c, w, oldCs, 0);
    stackPush(c, w, rip0, 0);
    if (errorCode !== NO_ERROR_CODE) stackPush(c, w, errorCode, 0);
  }

  loadCode(c, sel, desc, to);
  r[32] = off0 | 0;
  r[33] = off1 | 0;
  let nf = flags & ~(TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
  if (!trapGate) nf &= ~IF;
  c.flags.put(nf);
  if (vector === VEC_NMI && kind === EVENT_NMI) c.nmiBlocked = true;
}

/** An 8-byte push on the new long-mode stack (64-bit RSP whatever the old mode was). */
function push64(c: Cpu, v0: number, v1: number): void {
  const r = c.r;
  const lo = (r[2 * RSP]! - 8) | 0;
  const hi = lo >>> 0 > r[2 * RSP]! >>> 0 ? (r[2 * RSP + 1]! - 1) | 0 : r[2 * RSP + 1]!;
  c.write64(lo, hi, v0, v1);
  r[2 * RSP] = lo;
  r[2 * RSP + 1] = hi;
}

/** Reads the TSS at `off` (#TS(TR) beyond its limit). */
function tssRead(c: Cpu, off: number, size: number, ext: number): number {
  const tr = c.seg[SEG_TR]!;
  if (off + size - 1 > tr.limit) c.fault(VEC_TS, (tr.selector & 0xfffc) + ext);
  return readLinear(c, tr.base + BigInt(off), size);
}

function tssRead64(c: Cpu, off: number, ext: number): bigint {
  const lo = tssRead(c, off, 8, ext);
  return (BigInt(c.v1 >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** The inner stack segment from a legacy TSS: #TS(selector) for anything but a writable data segment at DPL = CPL. */
function loadTssStack(c: Cpu, sel: number, cpl: number, ext: number): void {
  const err = (sel & 0xfffc) + ext;
  if ((sel & 0xfffc) === 0 || (sel & 3) !== cpl) c.fault(VEC_TS, err);
  const d = new Descriptor();
  readDescriptor(c, sel, d, VEC_TS);
  const a = d.attr;
  if ((a & (ATTR_S | ATTR_CODE | 0x2)) !== (ATTR_S | 0x2) || dpl(a) !== cpl) c.fault(VEC_TS, err);
  if ((a & ATTR_P) === 0) c.fault(VEC_SS, err);
  c.setSegment(SEG_SS, sel, d.base, d.limit, a);
}

/** Real mode: FLAGS, CS, IP pushed; CS:IP from the IVT; IF, TF, AC cleared (APM 8.7.1). */
function deliverReal(c: Cpu, vector: number): void {
  if (vector * 4 + 3 > c.idtrLimit) c.fault(VEC_GP, 0);
  const v = readLinear(c, c.idtrBase + BigInt(vector * 4), 4);
  const r = c.r;
  const flags = c.flags.get();
  stackPush(c, 2, flags, 0);
  stackPush(c, 2, c.seg[SEG_CS]!.selector, 0);
  stackPush(c, 2, r[32]!, 0);
  const sel = v >>> 16;
  const cs = c.seg[SEG_CS]!;
  c.setSegment(SEG_CS, sel, BigInt(sel << 4), cs.limit, cs.attr);
  r[32] = v & 0xffff;
  r[33] = 0;
  c.flags.put(flags & ~(IF | TF | RFLAGS_AC));
}
