// A small protected-mode machine for the system-architecture tests: flat memory at 0, a GDT with
// ring-0/ring-3 64-bit and 32-bit code and data, a 64-bit TSS, an IDT whose gates point at
// per-vector HLT stubs. Only tests import it.

import { Cpu, RSP, SEG_CS, SEG_DS, SEG_ES, SEG_SS, SEG_TR } from './cpu.js';
import { Interpreter } from './interpreter.js';
import { FlatTranslator } from './translator.js';

export const hex = (s: string): Uint8Array =>
  Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

export const MEM_SIZE = 0x100000;
export const GDT = 0x1000;
export const IDT = 0x2000;
export const TSS = 0x3000;
/** Handler of vector v: HLT at STUBS + 16 * v. */
export const STUBS = 0x8000;
export const CODE = 0x10000;
export const STACK = 0x80000;
export const RSP0 = 0x70000;
export const IST1 = 0x60008; // deliberately not 16-byte aligned

export const SEL_CODE64 = 0x08;
export const SEL_DATA0 = 0x10;
export const SEL_CODE32_3 = 0x18;
export const SEL_DATA3 = 0x20;
export const SEL_CODE64_3 = 0x28;
export const SEL_TSS = 0x30;
export const SEL_CODE32_0 = 0x40;
/** A data segment marked not present. */
export const SEL_DATA_NP = 0x48;

/** GDT descriptors (APM vol. 2, 4.8): flat 4 GiB, G = 1. */
const DESCRIPTORS: [number, bigint][] = [
  [SEL_CODE64, 0x00af9b000000ffffn],
  [SEL_DATA0, 0x00cf93000000ffffn],
  [SEL_CODE32_3, 0x00cffb000000ffffn],
  [SEL_DATA3, 0x00cff3000000ffffn],
  [SEL_CODE64_3, 0x00affb000000ffffn],
  [SEL_CODE32_0, 0x00cf9b000000ffffn],
  [SEL_DATA_NP, 0x00cf13000000ffffn],
];

export interface Machine {
  mem: Uint8Array;
  view: DataView;
  cpu: Cpu;
  interp: Interpreter;
}

/** Writes an IDT gate: 64-bit interrupt (0xE) or trap (0xF) gate, IST, DPL, present. */
export function setGate(
  view: DataView,
  vector: number,
  target: number,
  opts: { type?: number; ist?: number; dpl?: number; present?: boolean; sel?: number } = {},
): void {
  const a = IDT + vector * 16;
  const type = opts.type ?? 0xe;
  view.setUint16(a, target & 0xffff, true);
  view.setUint16(a + 2, opts.sel ?? SEL_CODE64, true);
  view.setUint8(a + 4, opts.ist ?? 0);
  view.setUint8(a + 5, type | ((opts.dpl ?? 0) << 5) | (opts.present === false ? 0 : 0x80));
  view.setUint16(a + 6, (target >>> 16) & 0xffff, true);
  view.setUint32(a + 8, 0, true);
  view.setUint32(a + 12, 0, true);
}

export function machine(code: string, at = CODE): Machine {
  const mem = new Uint8Array(MEM_SIZE);
  const view = new DataView(mem.buffer);
  for (const [sel, d] of DESCRIPTORS) view.setBigUint64(GDT + sel, d, true);
  // 64-bit TSS descriptor: base TSS, limit 0x67, type 9 (available), present.
  view.setBigUint64(GDT + SEL_TSS, BigInt(0x67) | (BigInt(TSS) << 16n) | (0x89n << 40n), true);
  view.setBigUint64(GDT + SEL_TSS + 8, 0n, true);
  view.setBigUint64(TSS + 4, BigInt(RSP0), true);
  view.setBigUint64(TSS + 36, BigInt(IST1), true);
  for (let v = 0; v < 256; v++) {
    mem[STUBS + 16 * v] = 0xf4; // hlt
    setGate(view, v, STUBS + 16 * v);
  }
  mem.set(hex(code), at);
  const cpu = new Cpu(mem, new FlatTranslator(0, MEM_SIZE));
  cpu.gdtrBase = BigInt(GDT);
  cpu.gdtrLimit = 0x4f;
  cpu.idtrBase = BigInt(IDT);
  cpu.idtrLimit = 256 * 16 - 1;
  cpu.setSegment(SEG_CS, SEL_CODE64, 0n, 0xffffffff, 0xa9b);
  for (const s of [SEG_DS, SEG_ES, SEG_SS]) cpu.setSegment(s, SEL_DATA0, 0n, 0xffffffff, 0xc93);
  cpu.setSegment(SEG_TR, SEL_TSS, BigInt(TSS), 0x67, 0x8b);
  cpu.rip = BigInt(at);
  cpu.setReg64(RSP, BigInt(STACK));
  return { mem, view, cpu, interp: new Interpreter(cpu) };
}

/** Puts the CPU at CPL 3 in 64-bit code with ring-3 stack and data. */
export function toUser(cpu: Cpu): void {
  cpu.setCpl(3);
  cpu.setSegment(SEG_CS, SEL_CODE64_3 | 3, 0n, 0xffffffff, 0xafb);
  cpu.setSegment(SEG_SS, SEL_DATA3 | 3, 0n, 0xffffffff, 0xcf3);
}
