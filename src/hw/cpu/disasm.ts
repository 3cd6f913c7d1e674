// The disassembler: the decoder's output printed in Intel syntax (close to `objdump -M intel`).
// It is table-driven through the same OpDef rows the interpreter executes, so what it prints is
// what the CPU will do.

import { decode, DECODE_MORE, DECODE_TOO_LONG } from './decoder.js';
import { Insn, NO_REG, REP_E, REP_NE, RIP_BASE } from './insn.js';
import * as H from './ops.js';
import { x87Text } from './x87-disasm.js';

const R64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi'];
const R32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const R16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const R8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil'];
const R8H = ['ah', 'ch', 'dh', 'bh'];

/** The name of register n at `size` bytes (n byte-register coded for size 1). */
export function regName(n: number, size: number): string {
  if (size === 1 && n >= 16) return R8H[n - 16]!;
  if (n < 8) {
    return (size === 8 ? R64 : size === 4 ? R32 : size === 2 ? R16 : R8)[n]!;
  }
  return `r${n}${size === 8 ? '' : size === 4 ? 'd' : size === 2 ? 'w' : 'b'}`;
}

const PTR: Record<number, string> = { 1: 'byte', 2: 'word', 4: 'dword', 8: 'qword', 16: 'xmmword' };
/** CMPPS/CMPPD/CMPSS/CMPSD predicates 0..7 (the assembler's pseudo-op names). */
const CMP_PRED = ['eq', 'lt', 'le', 'unord', 'neq', 'nlt', 'nle', 'ord'];
/** XMM-or-memory operand shapes and their memory sizes. */
const XMM_MEM: Record<string, number> = { Wx: 16, Wss: 4, Wsd: 8, Wq: 8, Ux: 16 };
const MEM_ONLY: Record<string, number> = { Mb: 1, Mq: 8, Md: 4, Mx: 16, Mz: 0 };
const U64 = (1n << 64n) - 1n;

function hex(v: bigint): string {
  return '0x' + v.toString(16);
}

function big(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

function memOperand(i: Insn, size: number): string {
  const seg = i.seg === 4 ? 'fs:' : i.seg === 5 ? 'gs:' : '';
  const prefix = size > 0 ? `${PTR[size] ?? ''} ptr ` : '';
  const disp = BigInt.asIntN(64, big(i.disp, i.dispHi));
  if (i.base === RIP_BASE) {
    return `${prefix}${seg}[rip${disp < 0n ? '-' + hex(-disp) : '+' + hex(disp)}]`;
  }
  const regSize = i.asz;
  const parts: string[] = [];
  if (i.base !== NO_REG) parts.push(regName(i.base, regSize));
  if (i.index !== NO_REG) parts.push(`${regName(i.index, regSize)}*${1 << i.scale}`);
  let text = parts.join('+');
  if (parts.length === 0) text = hex(disp & U64);
  else if (disp > 0n) text += '+' + hex(disp);
  else if (disp < 0n) text += '-' + hex(-disp);
  return `${prefix}${seg}[${text}]`;
}

function immediate(i: Insn, size: number): string {
  const v = big(i.imm, size === 8 ? i.immHi : 0);
  const m = size === 8 ? U64 : (1n << BigInt(size * 8)) - 1n;
  return hex(v & m);
}

/** One instruction as text, given its address (for relative targets). */
export function formatInsn(i: Insn, address: bigint): string {
  const text = instructionText(i, address);
  if (i.base !== RIP_BASE || i.def === null) return text;
  // The address a RIP-relative operand names, after the whole instruction (not inside it).
  const disp = BigInt.asIntN(64, big(i.disp, i.dispHi));
  return `${text}    # ${hex((address + BigInt(i.len) + disp) & U64)}`;
}

function instructionText(i: Insn, address: bigint): string {
  const def = i.def;
  if (def === null) return '(bad)';
  const next = address + BigInt(i.len);
  let mn = def.mn;
  const osz = i.osz;
  const sfx = osz === 1 ? 'b' : osz === 2 ? 'w' : osz === 4 ? 'd' : 'q';
  const isString =
    (def.h >= H.H_MOVS && def.h <= H.H_SCAS) || def.h === H.H_INS || def.h === H.H_OUTS;
  if (isString) mn += sfx;
  if (def.h === H.H_CBW) mn = osz === 2 ? 'cbw' : osz === 4 ? 'cwde' : 'cdqe';
  if (def.h === H.H_CWD) mn = osz === 2 ? 'cwd' : osz === 4 ? 'cdq' : 'cqo';
  if (def.h === H.H_CMPXCHG8B && osz === 8) mn = 'cmpxchg16b';
  if (def.h === H.H_PUSHF || def.h === H.H_POPF) mn += osz === 8 ? 'q' : 'w';
  let pre = '';
  if (i.lock) pre += 'lock ';
  if (i.rep === REP_E)
    pre += isString && (def.h === H.H_CMPS || def.h === H.H_SCAS) ? 'repe ' : 'rep ';
  if (i.rep === REP_NE && isString) pre += 'repne ';
  if (isString || def.ops.length === 0) return pre + mn;
  if (def.h === H.H_X87) return x87Text(def.sub, i.rm, (size) => memOperand(i, size));
  if (def.h >= H.H_SIMD_FIRST && def.h <= H.H_SIMD_LAST) mn = simdMnemonic(i, mn);
  const out: string[] = [];
  for (const o of def.ops) {
    const xm = XMM_MEM[o];
    if (xm !== undefined) {
      out.push(i.rm !== NO_REG ? `xmm${i.rm}` : memOperand(i, xm));
      continue;
    }
    const mo = MEM_ONLY[o];
    if (mo !== undefined) {
      out.push(memOperand(i, mo));
      continue;
    }
    switch (o) {
      case 'Vx':
        out.push(`xmm${i.reg}`);
        break;
      case 'Ey':
        out.push(i.rm !== NO_REG ? regName(i.rm, osz) : memOperand(i, osz));
        break;
      case 'Ewr':
        out.push(i.rm !== NO_REG ? regName(i.rm, 4) : memOperand(i, 2));
        break;
      case 'Gy':
        out.push(regName(i.reg, osz));
        break;
      case 'Gd':
        out.push(regName(i.reg, 4));
        break;
      case 'Eb':
      case 'Ev':
      case 'Ew':
      case 'Ed':
      case 'M': {
        const size =
          o === 'Eb'
            ? 1
            : o === 'Ew'
              ? 2
              : o === 'Ed'
                ? 4
                : def.h === H.H_CMPXCHG8B
                  ? osz * 2
                  : osz;
        out.push(
          i.rm !== NO_REG
            ? regName(i.rm, size)
            : memOperand(i, def.h === H.H_LEA || (def.h >= H.H_MOV_R_CR && def.h < 120) ? 0 : size),
        );
        break;
      }
      case 'Gb':
        out.push(regName(i.reg, 1));
        break;
      case 'Gv':
        out.push(regName(i.reg, osz));
        break;
      case 'Zb':
        out.push(regName(i.rm, 1));
        break;
      case 'Zv':
        out.push(regName(i.rm, osz));
        break;
      case 'AL':
        out.push('al');
        break;
      case 'rAX':
        out.push(regName(0, osz));
        break;
      case 'CL':
        out.push('cl');
        break;
      case 'DX':
        out.push('dx');
        break;
      case 'eAX':
        out.push(regName(0, osz === 8 ? 4 : osz));
        break;
      case '1':
        out.push('1');
        break;
      case 'Ob':
      case 'Ov':
        out.push(memOperand(i, o === 'Ob' ? 1 : osz));
        break;
      case 'Ib':
        out.push(hex(BigInt(i.imm & 0xff)));
        break;
      case 'Iw':
        out.push(hex(BigInt(i.imm & 0xffff)));
        break;
      case 'Ibs':
      case 'Iz':
      case 'Iv':
        out.push(immediate(i, osz));
        break;
      case 'Jb':
      case 'Jz':
        out.push(hex((next + BigInt.asIntN(64, big(i.imm, i.immHi))) & U64));
        break;
      case 'Cd':
        out.push(`cr${i.reg}`);
        break;
      case 'Dd':
        out.push(`dr${i.reg}`);
        break;
      case 'Sw':
        out.push(['es', 'cs', 'ss', 'ds', 'fs', 'gs'][i.reg & 7] ?? `sreg${i.reg & 7}`);
        break;
      case 'Ap':
        out.push(`${hex(BigInt(i.imm2))}:${hex(BigInt(i.imm >>> 0))}`);
        break;
      default:
        out.push(o);
    }
  }
  if (def.h === H.H_ENTER) out[1] = hex(BigInt(i.imm2));
  // CMPccPS and friends: predicates 0..7 print as pseudo-ops without the immediate.
  if (def.h === H.H_SSE_CMP && (i.imm & 0xff) < 8) out.pop();
  return `${pre}${mn} ${out.join(', ')}`;
}

/** Mnemonics that depend on the encoding beyond the table row. */
function simdMnemonic(i: Insn, mn: string): string {
  switch (mn) {
    case 'movd':
      return i.osz === 8 ? 'movq' : mn;
    case 'movlps':
      return i.rm !== NO_REG ? 'movhlps' : mn;
    case 'movhps':
      return i.rm !== NO_REG && i.def?.ops[0] === 'Vx' ? 'movlhps' : mn;
    case 'fxsave':
    case 'fxrstor':
      return i.osz === 8 ? mn + '64' : mn;
    default:
      if (i.op === H.H_SSE_CMP && (i.imm & 0xff) < 8) {
        return 'cmp' + CMP_PRED[i.imm & 7]! + mn.slice(3);
      }
      return mn;
  }
}

export interface DisasmLine {
  readonly address: bigint;
  readonly bytes: Uint8Array;
  readonly text: string;
}

/** Disassembles `code` loaded at `address`; undecodable bytes print as `(bad)` one byte long. */
export function disassemble(code: Uint8Array, address = 0n): DisasmLine[] {
  const lines: DisasmLine[] = [];
  const insn = new Insn();
  let pos = 0;
  while (pos < code.length) {
    const n = decode(code, pos, code.length, insn);
    const at = address + BigInt(pos);
    if (n > 0) {
      lines.push({ address: at, bytes: code.subarray(pos, pos + n), text: formatInsn(insn, at) });
      pos += n;
    } else {
      const text =
        n === DECODE_MORE ? '(truncated)' : n === DECODE_TOO_LONG ? '(too long)' : '(bad)';
      lines.push({ address: at, bytes: code.subarray(pos, pos + 1), text });
      pos += 1;
    }
  }
  return lines;
}
