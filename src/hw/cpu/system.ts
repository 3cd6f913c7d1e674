// System instructions (AMD64 APM vol. 3, chapter 4, and vol. 2 for the registers they touch):
// control/debug registers, descriptor-table registers, MSRs, IF/AC, segment loads, SWAPGS,
// SYSCALL/SYSRET, SYSENTER/SYSEXIT, INT n. Far transfers and IRET are in far.ts. None of this is
// on the hot path.

import { MSR } from '../../arch/x86.js';
import {
  type Cpu,
  MODE_64,
  MODE_REAL,
  RAX,
  RCX,
  RDX,
  RSP,
  SEG_CS,
  SEG_FS,
  SEG_GS,
  SEG_LDTR,
  SEG_SS,
  SEG_TR,
  TRAP_EXCEPTION,
  TRAP_SOFTWARE,
  VEC_DB,
  VEC_GP,
  VEC_OF,
  VEC_UD,
  VEC_VC,
} from './cpu.js';
import { debugChanged, stepByNewFlags } from './debug.js';
import { ea, pop, push, readE, registerSystemHandlers, storeE } from './execute.js';
import { callFar, iret, jumpFar, retFar, stackAdjust, stackPush, stackRead } from './far.js';
import { IF, OF, ZF } from './flags.js';
import { type Insn, NO_REG } from './insn.js';
import * as H from './ops.js';
import { legacyFlow } from './legacy.js';
import {
  visibleDescriptor,
  loadDataSegment,
  loadLdt,
  loadStackSegment,
  loadTr,
} from './segments.js';

/** SVM exit code of an MSR access, the #VC error code under SEV-ES (APM vol. 2, 15.35). */
export const VC_MSR = 0x7c;

/** RFLAGS.AC (alignment check; the SMAP override). */
const AC = 0x40000;
const CR0_PE = 0x1;
const CR0_TS = 0x8;
const CR0_ET = 0x10;
const CR0_NW = 0x20000000;
const CR0_CD = 0x40000000;
const CR0_PG = 0x80000000;
/** CR0 bits that exist: PE MP EM TS ET NE WP AM NW CD PG. */
const CR0_DEFINED = 0xe005003f;
/** CR4 bits that exist (APM vol. 2, 3.1.3): 0-12, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP, PKE, CET. */
const CR4_DEFINED = 0x00f71fff;
const CR4_PAE = 0x20;
const CR4_DE = 0x8;
const CR4_UMIP = 0x800;
const CR4_LA57 = 0x1000;
const CR4_FSGSBASE = 0x10000;
const CR4_PCIDE = 0x20000;
const EFER_SCE = 0x1;
const EFER_LME = 0x100;
const EFER_LMA = 0x400;
/** EFER bits software may set: SCE LME NXE SVME LMSLE FFXSR TCE AUTOIBRS (LMA is read-only). */
const EFER_WRITABLE = 0x20fd01;

function longModeActive(c: Cpu): boolean {
  return (c.efer & EFER_LMA) !== 0;
}

function requireCpl0(c: Cpu): void {
  if (c.cpl !== 0) c.fault(VEC_GP, 0);
}

/** Register n as MOV CRn/DRn sees it: 64 bits in 64-bit mode, else 32. */
function reg64(c: Cpu, n: number): bigint {
  const v = c.getReg64(n);
  return c.mode === MODE_64 ? v : v & 0xffffffffn;
}

function isCanonical(v: bigint): boolean {
  const top = v >> 47n;
  return top === 0n || top === 0x1ffffn;
}

/** Executes a system-architecture handler (H_MOV_R_CR .. 119). */
export function executeSystem(c: Cpu, i: Insn): void {
  switch (i.op) {
    case H.H_MOV_R_CR:
      requireCpl0(c);
      c.setReg64(i.rm, readCr(c, i.reg) & (c.mode === MODE_64 ? ~0n : 0xffffffffn));
      return;
    case H.H_MOV_CR_R:
      requireCpl0(c);
      writeCr(c, i.reg, reg64(c, i.rm));
      return;
    case H.H_MOV_R_DR:
      requireCpl0(c);
      c.setReg64(i.rm, readDr(c, i.reg));
      return;
    case H.H_MOV_DR_R:
      requireCpl0(c);
      writeDr(c, i.reg, reg64(c, i.rm));
      return;
    case H.H_SDT: {
      if ((c.cr4 & CR4_UMIP) !== 0 && c.cpl !== 0) c.fault(VEC_GP, 0);
      const base = i.sub === 0 ? c.gdtrBase : c.idtrBase;
      const limit = i.sub === 0 ? c.gdtrLimit : c.idtrLimit;
      ea(c, i, c.mode === MODE_64 ? 10 : 6);
      const a0 = c.a0;
      const a1 = c.a1;
      c.write16(a0, a1, limit);
      const b0 = (a0 + 2) | 0;
      const b1 = b0 >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1;
      const lo = Number(base & 0xffffffffn) | 0;
      if (c.mode === MODE_64) c.write64(b0, b1, lo, Number(base >> 32n) | 0);
      else c.write32(b0, b1, lo);
      return;
    }
    case H.H_LDT_TABLE: {
      requireCpl0(c);
      ea(c, i, c.mode === MODE_64 ? 10 : 6);
      const a0 = c.a0;
      const a1 = c.a1;
      const limit = c.read16(a0, a1);
      const b0 = (a0 + 2) | 0;
      const b1 = b0 >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1;
      let base: bigint;
      if (c.mode === MODE_64) {
        const lo = c.read64(b0, b1);
        base = (BigInt(c.v1 >>> 0) << 32n) | BigInt(lo >>> 0);
        if (!isCanonical(base)) c.fault(VEC_GP, 0);
      } else {
        const lo = c.read32(b0, b1) >>> 0;
        base = BigInt(i.osz === 2 ? lo & 0xffffff : lo);
      }
      if (i.sub === 0) {
        c.gdtrBase = base;
        c.gdtrLimit = limit;
      } else {
        c.idtrBase = base;
        c.idtrLimit = limit;
      }
      return;
    }
    case H.H_SMSW:
      if ((c.cr4 & CR4_UMIP) !== 0 && c.cpl !== 0) c.fault(VEC_GP, 0);
      // A register destination takes the operand size (upper CR0 bits are zero); memory 16.
      storeE(
        c,
        i,
        i.rm === NO_REG ? 2 : i.osz,
        i.osz === 2 || i.rm === NO_REG ? c.cr0 & 0xffff : c.cr0,
        0,
      );
      return;
    case H.H_LMSW: {
      requireCpl0(c);
      const v = readE(c, i, 2);
      // PE can be set but not cleared; MP, EM, TS are loaded.
      const n = (c.cr0 & ~0xe) | (v & 0xf) | (c.cr0 & CR0_PE);
      if (n !== c.cr0) {
        c.cr0 = n;
        c.controlChanged();
      }
      return;
    }
    case H.H_CLTS:
      requireCpl0(c);
      c.cr0 &= ~CR0_TS;
      return;
    case H.H_INVLPG:
      requireCpl0(c);
      ea(c, i, 0); // INVLPG accesses nothing: no limit check
      c.invlpg(c.a0, c.a1);
      return;
    case H.H_SLDT: {
      if ((c.cr4 & CR4_UMIP) !== 0 && c.cpl !== 0) c.fault(VEC_GP, 0);
      if (c.mode === MODE_REAL) c.fault(VEC_UD);
      const sel = c.seg[i.sub === 0 ? SEG_LDTR : SEG_TR]!.selector;
      storeE(c, i, i.rm === NO_REG ? 2 : i.osz, sel, 0);
      return;
    }
    case H.H_LLDT:
    case H.H_LTR: {
      if (c.mode === MODE_REAL) c.fault(VEC_UD);
      requireCpl0(c);
      const sel = readE(c, i, 2);
      if (i.op === H.H_LLDT) loadLdt(c, sel);
      else loadTr(c, sel);
      return;
    }
    case H.H_RDMSR: {
      requireCpl0(c);
      const v = rdmsr(c, c.r[2 * RCX]! >>> 0);
      c.setReg(RAX, 4, Number(v & 0xffffffffn) | 0, 0);
      c.setReg(RDX, 4, Number(v >> 32n) | 0, 0);
      return;
    }
    case H.H_WRMSR: {
      requireCpl0(c);
      const r = c.r;
      const v = (BigInt(r[2 * RDX]! >>> 0) << 32n) | BigInt(r[2 * RAX]! >>> 0);
      wrmsr(c, r[2 * RCX]! >>> 0, v);
      return;
    }
    case H.H_CLI:
    case H.H_STI: {
      const f = c.flags;
      const iopl = (f.bits >> 12) & 3;
      // Protected mode: CPL <= IOPL (VME/PVI virtual interrupts are not modelled).
      if (c.mode !== MODE_REAL && c.cpl > iopl) c.fault(VEC_GP, 0);
      if (i.op === H.H_CLI) {
        f.bits &= ~IF;
      } else {
        // STI's shadow: interrupts wait until the next instruction completed.
        if ((f.bits & IF) === 0) c.shadowEnd = c.instructions + 1;
        f.bits |= IF;
      }
      return;
    }
    case H.H_CLAC:
      if (c.cpl !== 0) c.fault(VEC_UD);
      if (i.sub === 0) c.flags.bits &= ~AC;
      else c.flags.bits |= AC;
      return;
    case H.H_MOV_SREG_E: {
      const n = i.reg & 7;
      if (n === SEG_CS || n > 5) c.fault(VEC_UD);
      const sel = readE(c, i, 2);
      loadSegment(c, n, sel);
      return;
    }
    case H.H_MOV_E_SREG: {
      const n = i.reg & 7;
      if (n > 5) c.fault(VEC_UD);
      const sel = c.seg[n]!.selector;
      // Register: zero-extended to the operand size; memory: 16 bits.
      storeE(c, i, i.rm === NO_REG ? 2 : i.osz, sel, 0);
      return;
    }
    case H.H_PUSH_SREG:
      if (c.mode === MODE_64) push(c, i.osz, c.seg[i.sub]!.selector, 0);
      else stackPush(c, i.osz, c.seg[i.sub]!.selector, 0);
      return;
    case H.H_POP_SREG: {
      const r = c.r;
      const lo = r[8]!;
      const hi = r[9]!;
      let sel: number;
      if (c.mode === MODE_64) {
        sel = pop(c, i.osz) & 0xffff;
      } else {
        sel = stackRead(c, 0, 2);
        stackAdjust(c, i.osz);
      }
      try {
        loadSegment(c, i.sub, sel);
      } catch (e) {
        r[8] = lo; // a faulting load leaves RSP as it was
        r[9] = hi;
        throw e;
      }
      return;
    }
    case H.H_LFP: {
      ea(c, i, i.osz + 2);
      const a0 = c.a0;
      const a1 = c.a1;
      const off0 = c.read(a0, a1, i.osz);
      const off1 = c.v1;
      const s0 = (a0 + i.osz) | 0;
      const s1 = s0 >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1;
      const sel = c.read16(s0, s1);
      // LSS loads SS and the stack pointer together: no MOV SS shadow (SDM vol. 3, 6.8.3).
      loadSegment(c, i.sub, sel, false);
      c.setReg(i.reg, i.osz, off0, off1);
      return;
    }
    case H.H_SWAPGS: {
      if (c.mode !== MODE_64) c.fault(VEC_UD);
      requireCpl0(c);
      const gs = c.seg[SEG_GS]!.base;
      c.setSegmentBase(SEG_GS, c.kernelGsBase);
      c.kernelGsBase = gs;
      return;
    }
    case H.H_SYSCALL:
      syscall(c);
      return;
    case H.H_SYSRET:
      sysret(c, i.osz === 8);
      return;
    case H.H_SYSENTER:
      sysenter(c);
      return;
    case H.H_SYSEXIT:
      sysexit(c);
      return;
    case H.H_INT:
      c.trap(i.imm & 0xff, TRAP_SOFTWARE);
      return;
    case H.H_INTO:
      if (c.mode === MODE_64) c.fault(VEC_UD);
      if ((c.flags.get() & OF) !== 0) c.trap(VEC_OF, TRAP_SOFTWARE);
      return;
    case H.H_INT1:
      c.trap(VEC_DB, TRAP_EXCEPTION);
      return;
    case H.H_IRET:
      iret(c, i.osz);
      return;
    case H.H_JMP_FAR:
    case H.H_CALL_FAR: {
      ea(c, i, i.osz + 2);
      const a0 = c.a0;
      const a1 = c.a1;
      const n = i.osz;
      const off0 = c.read(a0, a1, n);
      const off1 = n === 8 ? c.v1 : 0;
      const s0 = (a0 + n) | 0;
      const s1 = s0 >>> 0 < a0 >>> 0 ? (a1 + 1) | 0 : a1;
      const sel = c.read16(s0, s1);
      if (i.op === H.H_JMP_FAR) jumpFar(c, sel, off0, off1, n);
      else callFar(c, sel, off0, off1, n);
      return;
    }
    case H.H_JMP_FAR_PTR:
    case H.H_CALL_FAR_PTR:
      if (c.mode === MODE_64) c.fault(VEC_UD);
      if (i.op === H.H_JMP_FAR_PTR) jumpFar(c, i.imm2, i.imm, 0, i.osz);
      else callFar(c, i.imm2, i.imm, 0, i.osz);
      return;
    case H.H_RETF:
      retFar(c, i.osz, i.imm & 0xffff);
      return;
    case H.H_VERRW: {
      if (c.mode === MODE_REAL) c.fault(VEC_UD);
      const d = visibleDescriptor(c, readE(c, i, 2));
      const a = d === null ? 0 : d.attr;
      // VERR: data or readable code; VERW: writable data.
      const ok =
        (a & 0x10) !== 0 && (i.sub === 0 ? (a & 0x8) === 0 || (a & 0x2) !== 0 : (a & 0xa) === 0x2);
      c.flags.assign(ZF, ok ? ZF : 0);
      return;
    }
    case H.H_LARLSL: {
      if (c.mode === MODE_REAL) c.fault(VEC_UD);
      const d = visibleDescriptor(c, readE(c, i, 2));
      // Code/data, LDT and TSS descriptors (and, for LAR, gates outside long mode) qualify.
      const a = d === null ? 0 : d.attr;
      const t = a & 0x1f;
      const ok =
        d !== null &&
        ((t & 0x10) !== 0 ||
          t === 0x2 ||
          t === 0x9 ||
          t === 0xb ||
          (!longModeActive(c) &&
            (t === 0x1 ||
              t === 0x3 ||
              (i.sub === 0 &&
                (t === 0x4 ||
                  t === 0x5 ||
                  t === 0x6 ||
                  t === 0x7 ||
                  t === 0xc ||
                  t === 0xe ||
                  t === 0xf)))));
      c.flags.assign(ZF, ok ? ZF : 0);
      if (ok && d !== null) {
        // LAR: descriptor bits 8-23 of the high dword masked to F0FF00h; LSL: the byte limit.
        const v = i.sub === 0 ? d.hi & 0x00f0ff00 : d.limit;
        c.setReg(i.reg, i.osz, i.osz === 2 ? v & 0xffff : v | 0, 0);
      }
      return;
    }
    case H.H_FSGSBASE: {
      // #UD unless CR4.FSGSBASE (only 64-bit mode decodes these); 32-bit forms zero-extend.
      if ((c.cr4 & CR4_FSGSBASE) === 0) c.fault(VEC_UD);
      const n = i.sub & 1 ? SEG_GS : SEG_FS;
      if (i.sub < 2) {
        const b = c.seg[n]!.base;
        c.setReg64(i.rm, i.osz === 8 ? b : b & 0xffffffffn);
      } else {
        const v = i.osz === 8 ? c.getReg64(i.rm) : c.getReg64(i.rm) & 0xffffffffn;
        if (!isCanonical(v)) c.fault(VEC_GP, 0);
        c.setSegmentBase(n, v);
      }
      return;
    }
    case H.H_LEGACY_FLOW:
      legacyFlow(c, i);
      return;
    case H.H_RDPID: {
      const v = c.tscAux & 0xffffffffn;
      c.setReg(i.rm, 8, Number(v) | 0, 0);
      return;
    }
    default:
      c.fault(VEC_UD);
  }
}

/**
 * A segment load by MOV/POP/LxS. MOV SS and POP SS (`shadow`) hold interrupts and debug traps
 * back for one instruction, so the stack pointer can follow; LSS loads both at once and does not.
 */
export function loadSegment(c: Cpu, n: number, sel: number, shadow = true): void {
  if (n === SEG_SS) {
    loadStackSegment(c, sel, c.cpl);
    if (shadow) {
      c.shadowEnd = c.instructions + 1;
      c.ssShadowEnd = c.instructions + 1; // debug traps wait too (debug.ts)
    }
  } else {
    loadDataSegment(c, n, sel);
  }
}

// ---- control and debug registers -------------------------------------------------------------

export function readCr(c: Cpu, n: number): bigint {
  switch (n) {
    case 0:
      return BigInt(c.cr0 >>> 0);
    case 2:
      return (BigInt(c.cr2Hi >>> 0) << 32n) | BigInt(c.cr2Lo >>> 0);
    case 3:
      return c.cr3;
    case 4:
      return BigInt(c.cr4 >>> 0);
    case 8:
      if (c.mode !== MODE_64) c.fault(VEC_UD);
      return BigInt(c.cr8);
    default:
      return c.fault(VEC_UD);
  }
}

/** MOV CRn, value with the reserved-bit and consistency checks of APM vol. 2, 3.1. */
export function writeCr(c: Cpu, n: number, v: bigint): void {
  switch (n) {
    case 0: {
      if (v >> 32n !== 0n) c.fault(VEC_GP, 0);
      const x = Number(v) | 0;
      if ((x & CR0_PG) !== 0 && (x & CR0_PE) === 0) c.fault(VEC_GP, 0);
      if ((x & CR0_NW) !== 0 && (x & CR0_CD) === 0) c.fault(VEC_GP, 0);
      const lma = (c.efer & EFER_LMA) !== 0;
      if ((x & CR0_PG) !== 0 && (c.efer & EFER_LME) !== 0 && (c.cr4 & CR4_PAE) === 0) {
        c.fault(VEC_GP, 0);
      }
      // Leaving long mode is only possible from compatibility mode.
      if (lma && (x & CR0_PG) === 0 && c.mode === MODE_64) c.fault(VEC_GP, 0);
      c.cr0 = (x & CR0_DEFINED) | CR0_ET | 0;
      c.controlChanged();
      return;
    }
    case 2:
      c.cr2Lo = Number(v & 0xffffffffn) | 0;
      c.cr2Hi = Number(v >> 32n) | 0;
      return;
    case 3:
      // Bits 63:52 are reserved in long mode (MBZ); legacy mode keeps the low 32 bits.
      if ((c.efer & EFER_LMA) !== 0) {
        // With CR4.PCIDE, bit 63 asks not to flush the PCID's translations and is not stored
        // (this TLB has no PCIDs, so it flushes anyway).
        const x = (c.cr4 & CR4_PCIDE) !== 0 ? v & ~(1n << 63n) : v;
        if (x >> 52n !== 0n) c.fault(VEC_GP, 0);
        c.cr3 = x;
      } else {
        c.cr3 = v & 0xffffffffn;
      }
      c.controlChanged();
      return;
    case 4: {
      if (v >> 32n !== 0n) c.fault(VEC_GP, 0);
      const x = Number(v) | 0;
      if ((x & ~CR4_DEFINED) !== 0) c.fault(VEC_GP, 0);
      if ((c.efer & EFER_LMA) !== 0) {
        if ((x & CR4_PAE) === 0) c.fault(VEC_GP, 0);
        if (((x ^ c.cr4) & CR4_LA57) !== 0) c.fault(VEC_GP, 0);
      }
      c.cr4 = x;
      c.controlChanged();
      return;
    }
    case 8:
      if (c.mode !== MODE_64) c.fault(VEC_UD);
      if (v >> 4n !== 0n) c.fault(VEC_GP, 0);
      c.cr8 = Number(v);
      return;
    default:
      c.fault(VEC_UD);
  }
}

/** DR4/DR5 alias DR6/DR7 unless CR4.DE, where they are #UD (APM vol. 2, 13.1.1). */
function drIndex(c: Cpu, n: number): number {
  if (n === 4 || n === 5) {
    if ((c.cr4 & CR4_DE) !== 0) c.fault(VEC_UD);
    return n + 2;
  }
  if (n > 7) c.fault(VEC_UD);
  return n;
}

export function readDr(c: Cpu, n: number): bigint {
  const k = drIndex(c, n);
  if (k < 4) return c.dr[k]!;
  // DR6 bits 31:16 and 11:4, DR7 bit 10 read as one.
  return k === 6 ? c.dr6 | 0xffff0ff0n : c.dr7 | 0x400n;
}

export function writeDr(c: Cpu, n: number, v: bigint): void {
  const k = drIndex(c, n);
  if (k < 4) {
    c.dr[k] = v;
    debugChanged(c);
    return;
  }
  if (v >> 32n !== 0n) c.fault(VEC_GP, 0);
  if (k === 6) {
    c.dr6 = v | 0xffff0ff0n;
    return;
  }
  c.dr7 = v | 0x400n;
  debugChanged(c);
}

// ---- MSRs --------------------------------------------------------------------------------------

/** Memory types valid in a PAT entry: UC, WC, WT, WP, WB, UC- (2 and 3 are reserved). */
function validPat(v: bigint): boolean {
  for (let k = 0n; k < 64n; k += 8n) {
    const t = (v >> k) & 0xffn;
    if (t === 2n || t === 3n || t > 7n) return false;
  }
  return true;
}

/**
 * RDMSR: the MSRs the CPU holds, then (SEV-ES) #VC with error code 0x7C, then the platform's
 * hook; an MSR nobody knows is #GP(0).
 */
export function rdmsr(c: Cpu, msr: number): bigint {
  switch (msr) {
    case MSR.EFER:
      return BigInt(c.efer >>> 0);
    case MSR.STAR:
      return c.star;
    case MSR.LSTAR:
      return c.lstar;
    case MSR.CSTAR:
      return c.cstar;
    case MSR.SFMASK:
      return c.sfmask;
    case MSR.FS_BASE:
      return c.seg[SEG_FS]!.base;
    case MSR.GS_BASE:
      return c.seg[SEG_GS]!.base;
    case MSR.KERNEL_GS_BASE:
      return c.kernelGsBase;
    case MSR.TSC_AUX:
      return c.tscAux;
    case MSR.PAT:
      return c.pat;
    case MSR.SYSENTER_CS:
      return c.sysenterCs;
    case MSR.SYSENTER_ESP:
      return c.sysenterEsp;
    case MSR.SYSENTER_EIP:
      return c.sysenterEip;
    case MSR.GHCB:
      if (c.sevEs) return c.ghcbMsr;
      break;
    default:
      break;
  }
  if (c.sevEs) c.fault(VEC_VC, VC_MSR);
  const v = c.platform.rdmsr?.(msr);
  if (v === undefined) c.fault(VEC_GP, 0);
  return BigInt.asUintN(64, v);
}

/** WRMSR in the same order as `rdmsr`; a reserved bit or a non-canonical address is #GP(0). */
export function wrmsr(c: Cpu, msr: number, v: bigint): void {
  switch (msr) {
    case MSR.EFER: {
      const x = Number(v & 0xffffffffn);
      if (v >> 32n !== 0n || (x & ~(EFER_WRITABLE | EFER_LMA)) !== 0) c.fault(VEC_GP, 0);
      // LME cannot change while paging is on.
      if ((c.cr0 & CR0_PG) !== 0 && ((x ^ c.efer) & EFER_LME) !== 0) c.fault(VEC_GP, 0);
      c.efer = (x & EFER_WRITABLE) | (c.efer & EFER_LMA);
      c.controlChanged();
      return;
    }
    case MSR.STAR:
      c.star = v;
      return;
    case MSR.LSTAR:
    case MSR.CSTAR:
    case MSR.FS_BASE:
    case MSR.GS_BASE:
    case MSR.KERNEL_GS_BASE:
    case MSR.SYSENTER_ESP:
    case MSR.SYSENTER_EIP:
      if (!isCanonical(v)) c.fault(VEC_GP, 0);
      if (msr === MSR.LSTAR) c.lstar = v;
      else if (msr === MSR.CSTAR) c.cstar = v;
      else if (msr === MSR.FS_BASE) c.setSegmentBase(SEG_FS, v);
      else if (msr === MSR.GS_BASE) c.setSegmentBase(SEG_GS, v);
      else if (msr === MSR.KERNEL_GS_BASE) c.kernelGsBase = v;
      else if (msr === MSR.SYSENTER_ESP) c.sysenterEsp = v;
      else c.sysenterEip = v;
      return;
    case MSR.SFMASK:
      if (v >> 32n !== 0n) c.fault(VEC_GP, 0);
      c.sfmask = v;
      return;
    case MSR.TSC_AUX:
      if (v >> 32n !== 0n) c.fault(VEC_GP, 0);
      c.tscAux = v;
      return;
    case MSR.PAT:
      if (!validPat(v)) c.fault(VEC_GP, 0);
      c.pat = v;
      return;
    case MSR.SYSENTER_CS:
      c.sysenterCs = v & 0xffffn;
      return;
    case MSR.GHCB:
      if (c.sevEs) {
        c.ghcbMsr = v;
        return;
      }
      break;
    default:
      break;
  }
  if (c.sevEs) c.fault(VEC_VC, VC_MSR);
  if (c.platform.wrmsr?.(msr, v) !== true) c.fault(VEC_GP, 0);
}

// ---- SYSCALL / SYSRET (APM vol. 3 "SYSCALL", "SYSRET") ---------------------------------------

/** Hidden parts SYSCALL and SYSRET load: flat 64-bit/32-bit code, flat data. */
const ATTR_CODE64_DPL0 = 0xa9b;
const ATTR_DATA_DPL0 = 0xc93;
const ATTR_CODE64_DPL3 = 0xafb;
const ATTR_CODE32_DPL3 = 0xcfb;
const ATTR_CODE32_DPL0 = 0xc9b;
const ATTR_DATA_DPL3 = 0xcf3;

function syscall(c: Cpu): void {
  if ((c.efer & EFER_SCE) === 0) c.fault(VEC_UD);
  const r = c.r;
  const csSel = Number((c.star >> 32n) & 0xffffn) & 0xfffc;
  const rflags = c.flags.get();
  if ((c.efer & EFER_LMA) !== 0) {
    const from64 = c.mode === MODE_64;
    // RCX = return RIP, R11 = RFLAGS with RF cleared.
    r[2 * RCX] = r[32]!;
    r[2 * RCX + 1] = from64 ? r[33]! : 0;
    r[22] = rflags & ~0x10000;
    r[23] = 0;
    const target = from64 ? c.lstar : c.cstar;
    c.setCpl(0);
    c.setSegment(SEG_CS, csSel, 0n, 0xffffffff, ATTR_CODE64_DPL0);
    c.setSegment(SEG_SS, (csSel + 8) & 0xffff, 0n, 0xffffffff, ATTR_DATA_DPL0);
    c.flags.put(rflags & ~Number(c.sfmask & 0xffffffffn) & ~0x10000);
    r[32] = Number(target & 0xffffffffn) | 0;
    r[33] = Number(target >> 32n) | 0;
  } else {
    c.setReg(RCX, 4, r[32]!, 0);
    c.setCpl(0);
    c.setSegment(SEG_CS, csSel, 0n, 0xffffffff, ATTR_CODE32_DPL0);
    c.setSegment(SEG_SS, (csSel + 8) & 0xffff, 0n, 0xffffffff, ATTR_DATA_DPL0);
    c.flags.put(rflags & ~(IF | 0x10000 | 0x20000));
    r[32] = Number(c.star & 0xffffffffn) | 0;
    r[33] = 0;
  }
  stepByNewFlags(c);
}

function sysret(c: Cpu, to64: boolean): void {
  if ((c.efer & EFER_SCE) === 0) c.fault(VEC_UD);
  if (c.cpl !== 0 || c.mode === MODE_REAL) c.fault(VEC_GP, 0);
  const r = c.r;
  const base = Number((c.star >> 48n) & 0xffffn);
  // SS keeps its hidden attributes except the selector (AMD); Linux's sysret_ss_attrs relies on it.
  const ss = c.seg[SEG_SS]!;
  if ((c.efer & EFER_LMA) !== 0) {
    const csSel = ((to64 ? base + 16 : base) & 0xfffc) | 3;
    c.flags.put((r[22]! & ~0x30000) | 0x2);
    c.setCpl(3);
    c.setSegment(SEG_CS, csSel, 0n, 0xffffffff, to64 ? ATTR_CODE64_DPL3 : ATTR_CODE32_DPL3);
    c.setSegment(SEG_SS, ((base + 8) & 0xfffc) | 3, ss.base, ss.limit, ss.attr);
    r[32] = r[2 * RCX]!;
    r[33] = to64 ? r[2 * RCX + 1]! : 0;
  } else {
    c.flags.bits |= IF;
    c.setCpl(3);
    c.setSegment(SEG_CS, (base & 0xfffc) | 3, 0n, 0xffffffff, ATTR_CODE32_DPL3);
    c.setSegment(SEG_SS, ((base + 8) & 0xfffc) | 3, ss.base, ss.limit, ss.attr);
    r[32] = r[2 * RCX]!;
    r[33] = 0;
  }
  stepByNewFlags(c);
}

// ---- SYSENTER / SYSEXIT (APM vol. 3 "SYSENTER", "SYSEXIT"; vol. 2 6.1.1) ---------------------
// AMD parts run them in legacy protected mode only: in long mode, 64-bit or compatibility, both
// are #UD (Intel's 64-bit forms do not exist on AMD; compatibility-mode code uses SYSCALL). The
// hidden parts are fixed flat segments, not read from the GDT.

/** SYSENTER_CS's selector with RPL 0; #GP(0) when null, outside protected mode too. */
function sysenterSelector(c: Cpu): number {
  if (longModeActive(c)) c.fault(VEC_UD);
  if (c.mode === MODE_REAL) c.fault(VEC_GP, 0);
  const sel = Number(c.sysenterCs & 0xfffcn);
  if (sel === 0) c.fault(VEC_GP, 0);
  return sel;
}

/** To CPL 0: CS = SYSENTER_CS, SS = CS + 8, EIP/ESP from the MSRs; VM, IF, RF cleared. */
function sysenter(c: Cpu): void {
  const sel = sysenterSelector(c);
  const r = c.r;
  c.setCpl(0);
  c.setSegment(SEG_CS, sel, 0n, 0xffffffff, ATTR_CODE32_DPL0);
  c.setSegment(SEG_SS, (sel + 8) & 0xffff, 0n, 0xffffffff, ATTR_DATA_DPL0);
  c.flags.bits &= ~(IF | 0x10000 | 0x20000);
  r[32] = Number(c.sysenterEip & 0xffffffffn) | 0;
  r[33] = 0;
  r[2 * RSP] = Number(c.sysenterEsp & 0xffffffffn) | 0;
  r[2 * RSP + 1] = 0;
  // TF is not cleared: the single-step trap follows at CPL 0, before the first kernel
  // instruction (the case Linux's single_step_syscall test exercises).
}

/** From CPL 0 to 3: CS = SYSENTER_CS + 16, SS = + 24 (RPL 3), EIP = EDX, ESP = ECX. */
function sysexit(c: Cpu): void {
  const sel = sysenterSelector(c);
  if (c.cpl !== 0) c.fault(VEC_GP, 0);
  const r = c.r;
  c.setCpl(3);
  c.setSegment(SEG_CS, ((sel + 16) & 0xffff) | 3, 0n, 0xffffffff, ATTR_CODE32_DPL3);
  c.setSegment(SEG_SS, ((sel + 24) & 0xffff) | 3, 0n, 0xffffffff, ATTR_DATA_DPL3);
  r[32] = r[2 * RDX]!;
  r[33] = 0;
  r[2 * RSP] = r[2 * RCX]!;
  r[2 * RSP + 1] = 0;
}

registerSystemHandlers(executeSystem);
