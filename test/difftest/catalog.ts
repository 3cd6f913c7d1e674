// The catalogue of instruction forms the differential test covers (64-bit mode, user level).

import {
  AF,
  Builder,
  type Case,
  CF,
  edge,
  emitModrm,
  finish,
  type Form,
  immBytes,
  landing,
  OF,
  PF,
  pushLe,
  type Rng,
  SF,
  ZF,
} from './forms.js';
import { SSE_FORMS } from './catalog-sse.js';
import { X87_FORMS } from './catalog-x87.js';
import { DATA } from './layout.js';

const ALL = CF | PF | AF | ZF | SF | OF;
const SIZES_V = [2, 4, 8] as const;
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const SHIFTS = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

/** Prefix and REX.W for an operand size. */
function sz(size: number): { prefixes: number[]; w: boolean } {
  return { prefixes: size === 2 ? [0x66] : [], w: size === 8 };
}

function bits(size: number): string {
  return String(size * 8);
}

const forms: Form[] = [];

function form(name: string, gen: (b: Builder, r: Rng) => void): void {
  forms.push({
    name,
    gen(r: Rng): Case {
      const b = new Builder(r);
      gen(b, r);
      return b.build(name);
    },
  });
}

/** A ModRM form: opcode, E size (memory span), reg field (random register unless ext). */
function modrmForm(
  name: string,
  o: {
    size: number;
    opcode: number[];
    mem: boolean;
    ext?: number;
    imm?: number;
    undef?: number;
    avoid?: number[];
    lock?: boolean;
    memSize?: number;
    extraPrefixes?: number[];
    setup?: (b: Builder, rm: number, reg: number, r: Rng) => void;
  },
): void {
  form(`${name} ${o.mem ? 'mem' : 'reg'}`, (b, r) => {
    const p = sz(o.size);
    const prefixes = [...(o.extraPrefixes ?? []), ...p.prefixes];
    if (o.lock === true && o.mem && r.chance(0.3)) prefixes.unshift(0xf0);
    const avoid = o.avoid ?? [];
    let regField = o.ext ?? r.int(16);
    if (o.ext === undefined) while (avoid.includes(regField)) regField = r.int(16);
    const { rm, reg } = emitModrm(b, {
      prefixes,
      w: p.w,
      opcode: o.opcode,
      regField,
      ext: o.ext !== undefined,
      e: { mem: o.mem, size: o.memSize ?? o.size, avoid },
      byteRegs: o.size === 1,
    });
    b.undef = o.undef ?? 0;
    o.setup?.(b, rm, reg, r);
    finish(b, o.imm !== undefined ? immBytes(r, o.imm) : []);
  });
}

// ---- ALU
for (let op = 0; op < 8; op++) {
  const mn = ALU[op]!;
  const undef = op === 1 || op === 4 || op === 6 ? AF : 0;
  const lock = op !== 7;
  for (const mem of [false, true]) {
    modrmForm(`${mn} Eb,Gb`, { size: 1, opcode: [op * 8], mem, undef, lock });
    modrmForm(`${mn} Gb,Eb`, { size: 1, opcode: [op * 8 + 2], mem, undef });
    modrmForm(`${mn} Eb,Ib (80)`, { size: 1, opcode: [0x80], ext: op, imm: 1, mem, undef, lock });
    for (const s of SIZES_V) {
      modrmForm(`${mn} Ev,Gv ${bits(s)}`, { size: s, opcode: [op * 8 + 1], mem, undef, lock });
      modrmForm(`${mn} Gv,Ev ${bits(s)}`, { size: s, opcode: [op * 8 + 3], mem, undef });
      modrmForm(`${mn} Ev,Iz ${bits(s)}`, {
        size: s,
        opcode: [0x81],
        ext: op,
        imm: s === 2 ? 2 : 4,
        mem,
        undef,
        lock,
      });
      modrmForm(`${mn} Ev,Ib ${bits(s)}`, {
        size: s,
        opcode: [0x83],
        ext: op,
        imm: 1,
        mem,
        undef,
        lock,
      });
    }
  }
  form(`${mn} AL,Ib`, (b, r) => {
    b.bytes.push(op * 8 + 4, ...immBytes(r, 1));
    b.undef = undef;
  });
  for (const s of SIZES_V) {
    form(`${mn} rAX,Iz ${bits(s)}`, (b, r) => {
      const p = sz(s);
      b.bytes.push(
        ...p.prefixes,
        ...(p.w ? [0x48] : []),
        op * 8 + 5,
        ...immBytes(r, s === 2 ? 2 : 4),
      );
      b.undef = undef;
    });
  }
}

// ---- TEST, MOV, XCHG, LEA, INC/DEC/NOT/NEG, MUL/DIV
for (const mem of [false, true]) {
  modrmForm('test Eb,Gb', { size: 1, opcode: [0x84], mem, undef: AF });
  modrmForm('test Eb,Ib', { size: 1, opcode: [0xf6], ext: 0, imm: 1, mem, undef: AF });
  modrmForm('mov Eb,Gb', { size: 1, opcode: [0x88], mem });
  modrmForm('mov Gb,Eb', { size: 1, opcode: [0x8a], mem });
  modrmForm('mov Eb,Ib', { size: 1, opcode: [0xc6], ext: 0, imm: 1, mem });
  modrmForm('xchg Eb,Gb', { size: 1, opcode: [0x86], mem, lock: true });
  modrmForm('inc Eb', { size: 1, opcode: [0xfe], ext: 0, mem, lock: true });
  modrmForm('dec Eb', { size: 1, opcode: [0xfe], ext: 1, mem, lock: true });
  modrmForm('not Eb', { size: 1, opcode: [0xf6], ext: 2, mem, lock: true });
  modrmForm('neg Eb', { size: 1, opcode: [0xf6], ext: 3, mem, lock: true });
  modrmForm('mul Eb', { size: 1, opcode: [0xf6], ext: 4, mem, undef: SF | ZF | AF | PF });
  modrmForm('imul Eb', { size: 1, opcode: [0xf6], ext: 5, mem, undef: SF | ZF | AF | PF });
  for (const [k, mn] of [
    [6, 'div'],
    [7, 'idiv'],
  ] as const) {
    modrmForm(`${mn} Eb`, {
      size: 1,
      opcode: [0xf6],
      ext: k,
      mem,
      undef: ALL,
      avoid: [0],
      setup: divSetup(1, k === 7),
    });
  }
  modrmForm('setcc Eb', { size: 1, opcode: [0x0f, 0x90], mem }); // cc 0 here; all cc below
  for (const s of SIZES_V) {
    const n = bits(s);
    modrmForm(`test Ev,Gv ${n}`, { size: s, opcode: [0x85], mem, undef: AF });
    modrmForm(`test Ev,Iz ${n}`, {
      size: s,
      opcode: [0xf7],
      ext: 0,
      imm: s === 2 ? 2 : 4,
      mem,
      undef: AF,
    });
    modrmForm(`mov Ev,Gv ${n}`, { size: s, opcode: [0x89], mem });
    modrmForm(`mov Gv,Ev ${n}`, { size: s, opcode: [0x8b], mem });
    modrmForm(`mov Ev,Iz ${n}`, { size: s, opcode: [0xc7], ext: 0, imm: s === 2 ? 2 : 4, mem });
    modrmForm(`xchg Ev,Gv ${n}`, { size: s, opcode: [0x87], mem, lock: true });
    modrmForm(`inc Ev ${n}`, { size: s, opcode: [0xff], ext: 0, mem, lock: true });
    modrmForm(`dec Ev ${n}`, { size: s, opcode: [0xff], ext: 1, mem, lock: true });
    modrmForm(`not Ev ${n}`, { size: s, opcode: [0xf7], ext: 2, mem, lock: true });
    modrmForm(`neg Ev ${n}`, { size: s, opcode: [0xf7], ext: 3, mem, lock: true });
    modrmForm(`mul Ev ${n}`, { size: s, opcode: [0xf7], ext: 4, mem, undef: SF | ZF | AF | PF });
    modrmForm(`imul Ev ${n}`, { size: s, opcode: [0xf7], ext: 5, mem, undef: SF | ZF | AF | PF });
    modrmForm(`div Ev ${n}`, {
      size: s,
      opcode: [0xf7],
      ext: 6,
      mem,
      undef: ALL,
      avoid: [0, 2],
      setup: divSetup(s, false),
    });
    modrmForm(`idiv Ev ${n}`, {
      size: s,
      opcode: [0xf7],
      ext: 7,
      mem,
      undef: ALL,
      avoid: [0, 2],
      setup: divSetup(s, true),
    });
    modrmForm(`imul Gv,Ev ${n}`, { size: s, opcode: [0x0f, 0xaf], mem, undef: SF | ZF | AF | PF });
    modrmForm(`imul Gv,Ev,Iz ${n}`, {
      size: s,
      opcode: [0x69],
      mem,
      imm: s === 2 ? 2 : 4,
      undef: SF | ZF | AF | PF,
    });
    modrmForm(`imul Gv,Ev,Ib ${n}`, {
      size: s,
      opcode: [0x6b],
      mem,
      imm: 1,
      undef: SF | ZF | AF | PF,
    });
    modrmForm(`movzx Gv,Eb ${n}`, { size: s, opcode: [0x0f, 0xb6], mem, memSize: 1 });
    modrmForm(`movzx Gv,Ew ${n}`, { size: s, opcode: [0x0f, 0xb7], mem, memSize: 2 });
    modrmForm(`movsx Gv,Eb ${n}`, { size: s, opcode: [0x0f, 0xbe], mem, memSize: 1 });
    modrmForm(`movsx Gv,Ew ${n}`, { size: s, opcode: [0x0f, 0xbf], mem, memSize: 2 });
    modrmForm(`cmpxchg Ev,Gv ${n}`, {
      size: s,
      opcode: [0x0f, 0xb1],
      mem,
      lock: true,
      setup: cmpxchgSetup(s),
    });
    modrmForm(`xadd Ev,Gv ${n}`, { size: s, opcode: [0x0f, 0xc1], mem, lock: true });
    for (const [k, mn] of ['bt', 'bts', 'btr', 'btc'].entries()) {
      modrmForm(`${mn} Ev,Gv ${n}`, {
        size: s,
        opcode: [0x0f, [0xa3, 0xab, 0xb3, 0xbb][k]!],
        mem,
        lock: k > 0,
        undef: OF | SF | AF | PF,
        setup: btOffsetSetup(s, mem),
      });
      modrmForm(`${mn} Ev,Ib ${n}`, {
        size: s,
        opcode: [0x0f, 0xba],
        ext: 4 + k,
        imm: 1,
        mem,
        lock: k > 0,
        undef: OF | SF | AF | PF,
      });
    }
    modrmForm(`bsf Gv,Ev ${n}`, {
      size: s,
      opcode: [0x0f, 0xbc],
      mem,
      undef: CF | OF | SF | AF | PF,
      setup: zeroSometimes(s),
    });
    modrmForm(`bsr Gv,Ev ${n}`, {
      size: s,
      opcode: [0x0f, 0xbd],
      mem,
      undef: CF | OF | SF | AF | PF,
      setup: zeroSometimes(s),
    });
    modrmForm(`tzcnt Gv,Ev ${n}`, {
      size: s,
      extraPrefixes: [0xf3],
      opcode: [0x0f, 0xbc],
      mem,
      undef: OF | SF | AF | PF,
      setup: zeroSometimes(s),
    });
    modrmForm(`lzcnt Gv,Ev ${n}`, {
      size: s,
      extraPrefixes: [0xf3],
      opcode: [0x0f, 0xbd],
      mem,
      undef: OF | SF | AF | PF,
      setup: zeroSometimes(s),
    });
    modrmForm(`popcnt Gv,Ev ${n}`, {
      size: s,
      extraPrefixes: [0xf3],
      opcode: [0x0f, 0xb8],
      mem,
      setup: zeroSometimes(s),
    });
    modrmForm(`push Ev ${s === 2 ? '16' : s === 4 ? '64' : '64 rex.w'}`, {
      size: s === 4 ? 8 : s,
      opcode: [0xff],
      ext: 6,
      mem,
      avoid: [4],
    });
    modrmForm(`pop Ev ${s === 2 ? '16' : s === 4 ? '64' : '64 rex.w'}`, {
      size: s === 4 ? 8 : s,
      opcode: [0x8f],
      ext: 0,
      mem,
      avoid: [4],
    });
    if (mem) {
      modrmForm(`lea Gv,M ${n}`, { size: s, opcode: [0x8d], mem });
      modrmForm(`nop Ev ${n}`, { size: s, opcode: [0x0f, 0x1f], ext: 0, mem });
    }
    for (let cc = 0; cc < 16; cc++)
      modrmForm(`cmov${CC[cc]} Gv,Ev ${n}`, { size: s, opcode: [0x0f, 0x40 + cc], mem });
    // SHLD/SHRD: 16-bit counts above 16 are undefined, so keep them in range.
    for (const [k, mn] of ['shld', 'shrd'].entries()) {
      modrmForm(`${mn} Ev,Gv,Ib ${n}`, {
        size: s,
        opcode: [0x0f, k === 0 ? 0xa4 : 0xac],
        mem,
        setup: (b, _rm, _reg, r) => {
          const count = s === 2 ? r.int(17) : r.int(256);
          b.undef = shiftUndef(4, s, count) | AF;
          finish(b, [count]);
        },
      });
      modrmForm(`${mn} Ev,Gv,CL ${n}`, {
        size: s,
        opcode: [0x0f, k === 0 ? 0xa5 : 0xad],
        mem,
        avoid: [1],
        setup: (b, _rm, _reg, r) => {
          const count = s === 2 ? r.int(17) : r.int(256);
          b.regs[1] = (edge(r) & ~0xffn) | BigInt(count);
          b.undef = shiftUndef(4, s, count) | AF;
        },
      });
    }
  }
  modrmForm('cmpxchg Eb,Gb', {
    size: 1,
    opcode: [0x0f, 0xb0],
    mem,
    lock: true,
    setup: cmpxchgSetup(1),
  });
  modrmForm('xadd Eb,Gb', { size: 1, opcode: [0x0f, 0xc0], mem, lock: true });
  for (let cc = 1; cc < 16; cc++)
    modrmForm(`set${CC[cc]} Eb`, { size: 1, opcode: [0x0f, 0x90 + cc], mem });
  // Shifts and rotates: 8 kinds x 4 sizes x (1, imm8, CL).
  for (let k = 0; k < 8; k++) {
    for (const s of [1, 2, 4, 8]) {
      const n = bits(s);
      const op1 = s === 1 ? 0 : 1;
      modrmForm(`${SHIFTS[k]} E,1 ${n}`, {
        size: s,
        opcode: [0xd0 + op1],
        ext: k,
        mem,
        setup: (b) => {
          b.undef = shiftUndef(k, s, 1);
        },
      });
      modrmForm(`${SHIFTS[k]} E,Ib ${n}`, {
        size: s,
        opcode: [0xc0 + op1],
        ext: k,
        mem,
        setup: (b, _rm, _reg, r) => {
          const count = r.chance(0.5) ? r.int(s * 8 + 2) : r.int(256);
          b.undef = shiftUndef(k, s, count);
          finish(b, [count]);
        },
      });
      modrmForm(`${SHIFTS[k]} E,CL ${n}`, {
        size: s,
        opcode: [0xd2 + op1],
        ext: k,
        mem,
        avoid: [1],
        setup: (b, _rm, _reg, r) => {
          const count = r.chance(0.5) ? r.int(s * 8 + 2) : r.int(256);
          b.regs[1] = (edge(r) & ~0xffn) | BigInt(count);
          b.undef = shiftUndef(k, s, count);
        },
      });
    }
  }
}

/** Flags left undefined by shift/rotate kind k of a `size`-byte operand by `count` (APM vol. 3). */
function shiftUndef(k: number, size: number, count: number): number {
  const n = count & (size === 8 ? 63 : 31);
  if (n === 0) return 0;
  let u = n !== 1 ? OF : 0;
  if (k >= 4) u |= AF; // shifts: AF undefined
  if (k >= 4 && n >= size * 8) u |= CF | OF; // shift counts past the operand width
  if (k === 2 || k === 3) {
    // RCL/RCR of 8/16-bit operands rotate modulo 9/17: OF undefined unless the rotation is 1.
    const m = size === 1 ? n % 9 : size === 2 ? n % 17 : n;
    if (m !== 1) u |= OF;
  }
  if (k < 2 && size < 4 && n % (size * 8) !== 1) u |= OF;
  return u;
}

function divSetup(size: number, signed: boolean) {
  return (b: Builder, rm: number, _reg: number, r: Rng): void => {
    // Mostly dividends that give a quotient in range; sometimes zero divisors and overflow.
    const mask = size === 8 ? (1n << 64n) - 1n : (1n << BigInt(size * 8)) - 1n;
    const k = r.int(10);
    if (k < 6) {
      const rax = b.regs[0]!;
      const signBit = (rax >> BigInt(size * 8 - 1)) & 1n;
      const hi = signed && signBit === 1n ? mask : 0n;
      if (size === 1)
        b.regs[0] = (rax & ~0xff00n) | (signed && (rax & 0x80n) !== 0n ? 0xff00n : 0n);
      else b.regs[2] = (b.regs[2]! & ~mask) | hi;
    }
    if (k === 9 && rm >= 0 && rm !== 0 && rm !== 2) {
      b.regs[rm] = b.regs[rm]! & ~mask;
    }
    if (rm < 0 && k === 9) b.mem.push([b.memOff, 0n]);
  };
}

function cmpxchgSetup(size: number) {
  return (b: Builder, rm: number, _reg: number, r: Rng): void => {
    if (!r.chance(0.5)) return;
    // Make the comparison succeed half of the time.
    const mask = size === 8 ? (1n << 64n) - 1n : (1n << BigInt(size * 8)) - 1n;
    if (rm >= 0) {
      if (rm !== 0) b.regs[0] = (b.regs[0]! & ~mask) | (b.regs[rm]! & mask);
    } else {
      b.mem.push([b.memOff, b.regs[0]!]);
    }
  };
}

function zeroSometimes(size: number) {
  return (b: Builder, rm: number, _reg: number, r: Rng): void => {
    if (!r.chance(0.15)) return;
    if (rm >= 0) b.regs[rm] = 0n;
    else b.mem.push([b.memOff, 0n]);
    void size;
  };
}

function btOffsetSetup(size: number, mem: boolean) {
  return (b: Builder, _rm: number, reg: number, r: Rng): void => {
    if (!mem || reg === _rm) return;
    // Register bit offsets address a bit string around the operand: keep it in the data pages.
    const off = BigInt(r.int(1024) - 256);
    b.regs[reg] = off & ((1n << 64n) - 1n);
    void size;
  };
}

// ---- register-in-opcode and no-ModRM forms
for (let rr = 0; rr < 16; rr++) {
  const rex = rr >= 8 ? [0x41] : [];
  if (rr !== 4) {
    form(`push r${rr}`, (b) => b.bytes.push(...rex, 0x50 + (rr & 7)));
    form(`pop r${rr}`, (b) => b.bytes.push(...rex, 0x58 + (rr & 7)));
  }
  form(`mov r${rr},imm64`, (b, r) =>
    b.bytes.push(0x48 | (rr >= 8 ? 1 : 0), 0xb8 + (rr & 7), ...immBytes(r, 8)),
  );
  form(`mov r${rr}d,imm32`, (b, r) => b.bytes.push(...rex, 0xb8 + (rr & 7), ...immBytes(r, 4)));
  form(`mov r${rr}b,imm8`, (b, r) =>
    b.bytes.push(
      ...(rr >= 8 ? [0x41] : r.chance(0.5) ? [0x40] : []),
      0xb0 + (rr & 7),
      ...immBytes(r, 1),
    ),
  );
  form(`bswap r${rr} 64`, (b) => b.bytes.push(0x48 | (rr >= 8 ? 1 : 0), 0x0f, 0xc8 + (rr & 7)));
  form(`bswap r${rr} 32`, (b) => b.bytes.push(...rex, 0x0f, 0xc8 + (rr & 7)));
  if (rr !== 0)
    form(`xchg r${rr},rax`, (b) => b.bytes.push(0x48 | (rr >= 8 ? 1 : 0), 0x90 + (rr & 7)));
}
form('push r16', (b, r) => b.bytes.push(0x66, 0x50 + r.pick([0, 1, 2, 3, 5, 6, 7])));
form('pop r16', (b, r) => b.bytes.push(0x66, 0x58 + r.pick([0, 1, 2, 3, 5, 6, 7])));
form('push imm32', (b, r) => b.bytes.push(0x68, ...immBytes(r, 4)));
form('push imm8', (b, r) => b.bytes.push(0x6a, ...immBytes(r, 1)));
form('pushfq', (b) => b.bytes.push(0x9c));
form('popfq', (b, r) => {
  b.bytes.push(0x9d);
  const v = BigInt((r.u32() & (CF | PF | AF | ZF | SF | OF | 0x400 | 0x4000 | 0x200000)) | 0x202);
  b.mem.push([Number(b.regs[4]!) - DATA, v]);
});
form('mov rax,moffs64', (b) => {
  b.bytes.push(0x48, 0xa1);
  pushLe(b.bytes, DATA + 0x800, 8);
});
form('mov moffs64,rax', (b) => {
  b.bytes.push(0x48, 0xa3);
  pushLe(b.bytes, DATA + 0x808, 8);
});
form('mov al,moffs8', (b) => {
  b.bytes.push(0xa0);
  pushLe(b.bytes, DATA + 0x7ff, 8);
});
for (const [op, mn] of [
  [0x98, 'cbw'],
  [0x99, 'cwd'],
] as const) {
  for (const s of SIZES_V)
    form(`${mn} ${bits(s)}`, (b) =>
      b.bytes.push(...sz(s).prefixes, ...(s === 8 ? [0x48] : []), op),
    );
}
for (const [op, mn] of [
  [0x9e, 'sahf'],
  [0x9f, 'lahf'],
  [0xf8, 'clc'],
  [0xf9, 'stc'],
  [0xf5, 'cmc'],
  [0xfc, 'cld'],
  [0xfd, 'std'],
  [0x90, 'nop'],
  [0xc9, 'leave'],
  [0xd7, 'xlat'],
  [0xcc, 'int3'],
  [0xf4, 'hlt'],
] as const) {
  form(mn, (b) => {
    b.bytes.push(op);
    if (mn === 'leave') b.regs[5] = BigInt(DATA + 0x800 + 8 * (b.r.int(64) - 32));
    if (mn === 'xlat') b.regs[3] = BigInt(DATA + 0x100 + b.r.int(0x100));
  });
}
form('pause', (b) => b.bytes.push(0xf3, 0x90));
form('endbr64', (b) => b.bytes.push(0xf3, 0x0f, 0x1e, 0xfa));
form('ud2', (b) => b.bytes.push(0x0f, 0x0b));
form('lock add reg (invalid)', (b) => b.bytes.push(0xf0, 0x48, 0x01, 0xc0 | b.r.int(64)));
form('enter', (b, r) => {
  b.regs[5] = BigInt(DATA + 0x800 + 8 * (r.int(64) - 32));
  b.bytes.push(0xc8, r.int(256), r.int(2), r.int(3));
});

// ---- string instructions
const STRINGS: [string, number, boolean][] = [
  ['movs', 0xa4, false],
  ['cmps', 0xa6, true],
  ['stos', 0xaa, false],
  ['lods', 0xac, false],
  ['scas', 0xae, true],
];
for (const [mn, op, cond] of STRINGS) {
  for (const s of [1, 2, 4, 8]) {
    for (const rep of cond ? [0, 0xf3, 0xf2] : [0, 0xf3]) {
      const name = `${rep === 0xf3 ? (cond ? 'repe ' : 'rep ') : rep === 0xf2 ? 'repne ' : ''}${mn} ${bits(s)}`;
      form(name, (b, r) => {
        if (rep !== 0) b.bytes.push(rep);
        if (s === 2) b.bytes.push(0x66);
        if (s === 8) b.bytes.push(0x48);
        b.bytes.push(s === 1 ? op : op + 1);
        b.regs[6] = BigInt(DATA + 0x400 + r.int(0x1000));
        b.regs[7] = BigInt(DATA + 0x400 + r.int(0x1000));
        b.regs[1] = r.chance(0.2) ? 0n : BigInt(r.int(17));
        if (cond && r.chance(0.5)) {
          // Equal runs, so REPE/REPNE stop at interesting places.
          b.regs[7] = b.regs[6]! + BigInt(r.int(3) * s);
          b.regs[0] = 0n;
        }
        if (mn === 'cmps' || mn === 'scas') b.undef = 0;
      });
    }
  }
}

// ---- control flow
form('call rel32', (b, r) => {
  b.bytes.push(0xe8, 0, 0, 0, 0);
  setRel32(b, landing(r, false));
});
form('jmp rel32', (b, r) => {
  b.bytes.push(0xe9, 0, 0, 0, 0);
  setRel32(b, landing(r, false));
});
form('jmp rel8', (b, r) => {
  b.bytes.push(0xeb, 0);
  b.bytes[1] = (landing(r, true) - b.end) & 0xff;
});
for (let cc = 0; cc < 16; cc++) {
  form(`j${CC[cc]} rel8`, (b, r) => {
    b.bytes.push(0x70 + cc, 0);
    b.bytes[1] = (landing(r, true) - b.end) & 0xff;
  });
  form(`j${CC[cc]} rel32`, (b, r) => {
    b.bytes.push(0x0f, 0x80 + cc, 0, 0, 0, 0);
    setRel32(b, landing(r, false));
  });
}
for (const mem of [false, true]) {
  for (const [ext, mn] of [
    [2, 'call'],
    [4, 'jmp'],
  ] as const) {
    modrmForm(`${mn} Ev`, {
      size: 8,
      opcode: [0xff],
      ext,
      mem,
      avoid: [4],
      setup: (b, rm, _reg, r) => {
        const t = BigInt(landing(r, false));
        if (rm >= 0) b.regs[rm] = t;
        else b.mem.push([b.memOff, t]);
      },
    });
  }
}
for (const imm of [false, true]) {
  form(imm ? 'ret imm16' : 'ret', (b, r) => {
    b.bytes.push(imm ? 0xc2 : 0xc3);
    if (imm) b.bytes.push(r.int(64) * 8, 0);
    b.mem.push([Number(b.regs[4]!) - DATA, BigInt(landing(r, false))]);
  });
}
for (const s of [4, 8]) {
  form(`cmpxchg${s === 4 ? '8b' : '16b'} m`, (b, r) => {
    const { rm } = emitModrm(b, {
      w: s === 8,
      opcode: [0x0f, 0xc7],
      regField: 1,
      ext: true,
      e: { mem: true, size: 2 * s, avoid: [0, 1, 2, 3] },
    });
    void rm;
    if (r.chance(0.5)) {
      b.mem.push([
        b.memOff,
        (b.regs[0]! & (s === 8 ? (1n << 64n) - 1n : 0xffffffffn)) |
          (s === 4 ? (b.regs[2]! & 0xffffffffn) << 32n : 0n),
      ]);
      if (s === 8) b.mem.push([b.memOff + 8, b.regs[2]!]);
    }
    finish(b);
  });
}

function setRel32(b: Builder, target: number): void {
  const rel = target - b.end;
  const at = b.bytes.length - 4;
  for (let k = 0; k < 4; k++) b.bytes[at + k] = (rel >> (8 * k)) & 0xff;
}

export const FORMS: readonly Form[] = [...forms, ...SSE_FORMS, ...X87_FORMS];
