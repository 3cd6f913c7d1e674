// The differential test: generate cases from the catalogue, run them natively through the harness
// and in the simulator's interpreter, and compare registers, RIP, the defined flags, memory and
// exceptions.

import { spawnSync } from 'node:child_process';
import {
  Cpu,
  Interpreter,
  PERM_R,
  PERM_W,
  PERM_X,
  STOP_EXCEPTION,
  type TranslateResult,
  type Translator,
} from '../../src/hw/cpu/index.js';
import { FORMS } from './catalog.js';
import { type Case, DF, Rng } from './forms.js';
import { CODE, DATA, DATA_SIZE, fillPattern, INSN_OFF, LANDINGS } from './layout.js';

/** Flags compared: CF PF AF ZF SF OF and DF. */
const FLAG_MASK = 0x8d5 | DF;
const SIGILL = 4;
const SIGTRAP = 5;
const SIGBUS = 7;
const SIGFPE = 8;
const SIGSEGV = 11;

/** The harness's address space: the code page at physical 0, the data pages after it. */
class HarnessMap implements Translator {
  translate(lo: number, hi: number, access: number, user: boolean, out: TranslateResult): number {
    const a = lo >>> 0;
    if (hi === 0 && a >= CODE && a < CODE + 0x1000) {
      out.perm = PERM_R | PERM_W | PERM_X;
      return 0;
    }
    if (hi === 0 && a >= DATA && a < DATA + DATA_SIZE) {
      out.perm = PERM_R | PERM_W;
      return 1 + ((a - DATA) >>> 12);
    }
    out.vector = 14;
    out.errorCode = (access === 1 ? 2 : 0) | (user ? 4 : 0) | (access === 2 ? 16 : 0);
    return -1;
  }
}

/** One side's outcome, in the harness's output format. */
export interface Outcome {
  land: number;
  signal: number;
  rip: bigint;
  flags: number;
  regs: bigint[];
  mem: Map<number, bigint>;
  mxcsr?: number;
  xmm?: bigint[];
  x87?: { fcw: number; fsw: number; ftw: number; st: [bigint, number][] };
}

function parseOutcome(line: string): Outcome {
  const t = line.trim().split(' ');
  if (t[0] !== 'R') throw new Error(`harness: unexpected output ${JSON.stringify(line)}`);
  const h = (k: number) => BigInt('0x' + t[k]!);
  const land = parseInt(t[1]!, 16);
  const regs: bigint[] = [];
  for (let k = 0; k < 16; k++) regs.push(h(5 + k));
  const n = parseInt(t[21]!, 16);
  const mem = new Map<number, bigint>();
  for (let k = 0; k < n; k++) mem.set(parseInt(t[22 + 2 * k]!, 16), h(23 + 2 * k));
  const out: Outcome = {
    land: land === 0xff ? -1 : land,
    signal: parseInt(t[2]!, 16),
    rip: h(3),
    flags: Number(h(4) & 0xffffffffn),
    regs,
    mem,
  };
  const x = 22 + 2 * n;
  if (t[x] === 'X') {
    out.mxcsr = parseInt(t[x + 1]!, 16);
    out.xmm = [];
    for (let k = 0; k < 32; k++) out.xmm.push(h(x + 2 + k));
  }
  const f = t.indexOf('F', x);
  if (f >= 0) {
    const st: [bigint, number][] = [];
    for (let k = 0; k < 8; k++) st.push([h(f + 4 + 2 * k), parseInt(t[f + 5 + 2 * k]!, 16)]);
    out.x87 = {
      fcw: parseInt(t[f + 1]!, 16),
      fsw: parseInt(t[f + 2]!, 16),
      ftw: parseInt(t[f + 3]!, 16),
      st,
    };
  }
  return out;
}

function hex(v: bigint | number): string {
  return v.toString(16);
}

export function caseLine(c: Case): string {
  const parts = [
    'T',
    Buffer.from(c.code).toString('hex'),
    hex(c.seed),
    hex(c.flags),
    ...c.regs.map((r) => hex(r)),
    hex(c.mem.length),
  ];
  for (const [off, v] of c.mem) parts.push(hex(off), hex(v & ((1n << 64n) - 1n)));
  if (c.simd !== undefined) parts.push('X', hex(c.simd.mxcsr), ...c.simd.xmm.map((v) => hex(v)));
  if (c.x87 !== undefined) {
    parts.push('F', hex(c.x87.fcw), hex(c.x87.st.length));
    for (const v of c.x87.st) parts.push(hex(v & ((1n << 64n) - 1n)), hex(v >> 64n));
  }
  return parts.join(' ');
}

/** Runs cases natively; returns one outcome per case. */
export function runNative(harness: string, cases: readonly Case[]): Outcome[] {
  const out: Outcome[] = [];
  const CHUNK = 20_000;
  for (let k = 0; k < cases.length; k += CHUNK) {
    const input = cases
      .slice(k, k + CHUNK)
      .map(caseLine)
      .join('\n');
    const res = spawnSync(harness, [], {
      input: input + '\n',
      maxBuffer: 1 << 30,
      encoding: 'utf8',
    });
    if (res.status !== 0) throw new Error(`harness exited with ${res.status}: ${res.stderr}`);
    const lines = res.stdout.split('\n').filter((l) => l.startsWith('R'));
    if (lines.length !== Math.min(CHUNK, cases.length - k)) {
      throw new Error(
        `harness answered ${lines.length} of ${Math.min(CHUNK, cases.length - k)} cases`,
      );
    }
    for (const l of lines) out.push(parseOutcome(l));
  }
  return out;
}

/** Runs cases in the simulator. */
export class Simulated {
  private readonly mem = new Uint8Array(0x3000);
  private readonly cpu = new Cpu(this.mem, new HarnessMap());
  readonly interp: Interpreter;
  private readonly initial = new Uint8Array(DATA_SIZE);
  private readonly initial32 = new Int32Array(this.initial.buffer);

  /**
   * `jit`: compile every case's instruction as a one-instruction block and run it compiled
   * (instructions the JIT does not take still run in the interpreter). Off: interpreter only.
   */
  constructor(jit = false) {
    this.interp = new Interpreter(this.cpu, { jit: jit ? { threshold: 1, maxBlock: 1 } : false });
    this.cpu.cpl = 3;
  }

  run(c: Case): Outcome {
    const { mem, cpu } = this;
    mem.fill(0xcc, 0, 0x1000);
    mem.set(c.code, INSN_OFF);
    cpu.code.invalidatePage(0);
    const data = mem.subarray(0x1000, 0x3000);
    fillPattern(data, c.seed);
    const view = new DataView(data.buffer, data.byteOffset, DATA_SIZE);
    for (const [off, v] of c.mem) {
      if (off >= 0 && off + 8 <= DATA_SIZE) view.setBigUint64(off, v & ((1n << 64n) - 1n), true);
    }
    this.initial.set(data);
    for (let k = 0; k < 16; k++) cpu.setReg64(k, c.regs[k]!);
    cpu.rflags = c.flags;
    cpu.rip = BigInt(CODE + INSN_OFF);
    const simd = cpu.simd;
    simd.mxcsr = c.simd?.mxcsr ?? 0x1f80;
    simd.fninit();
    if (c.x87 !== undefined) {
      simd.fcw = c.x87.fcw;
      for (let k = Math.min(c.x87.st.length, 8) - 1; k >= 0; k--) {
        simd.top = (simd.top - 1) & 7;
        simd.setSt(simd.top, c.x87.st[k]!);
        simd.empty[simd.top] = 0;
      }
    }
    for (let k = 0; k < 16; k++) {
      simd.setXmm(
        k,
        c.simd !== undefined ? (c.simd.xmm[2 * k + 1]! << 64n) | c.simd.xmm[2 * k]! : 0n,
      );
    }
    const stop = this.interp.run(1);
    let land = -1;
    let signal = 0;
    let rip = cpu.rip;
    if (stop === STOP_EXCEPTION) {
      const v = cpu.exVector;
      signal = v === 0 ? SIGFPE : v === 6 ? SIGILL : v === 3 ? SIGTRAP : SIGSEGV;
    } else {
      const off = Number(rip - BigInt(CODE));
      if (off === INSN_OFF + c.code.length) land = 0;
      else land = LANDINGS.indexOf(off, 1);
      rip = land < 0 ? 0n : rip;
    }
    const changes = new Map<number, bigint>();
    const now = new Int32Array(data.buffer, data.byteOffset, DATA_SIZE / 4);
    const before = this.initial32;
    for (let w = 0; w < DATA_SIZE / 4; w += 2) {
      if (now[w] !== before[w] || now[w + 1] !== before[w + 1]) {
        changes.set(w * 4, view.getBigUint64(w * 4, true));
      }
    }
    const regs: bigint[] = [];
    for (let k = 0; k < 16; k++) regs.push(cpu.getReg64(k));
    const out: Outcome = { land, signal, rip, flags: cpu.rflags, regs, mem: changes };
    if (c.x87 !== undefined) {
      const st: [bigint, number][] = [];
      let ftw = 0;
      for (let k = 0; k < 8; k++) {
        if (simd.empty[k] === 0) ftw |= 1 << k;
        const v = simd.getSt((simd.top + k) & 7);
        st.push([v & ((1n << 64n) - 1n), Number(v >> 64n)]);
      }
      out.x87 = { fcw: simd.fcw, fsw: simd.fswFull, ftw, st };
    }
    if (c.simd !== undefined) {
      out.mxcsr = simd.mxcsr;
      out.xmm = [];
      const M = (1n << 64n) - 1n;
      for (let k = 0; k < 16; k++) {
        const v = simd.getXmm(k);
        out.xmm.push(v & M, v >> 64n);
      }
    }
    return out;
  }
}

const REG_NAMES = [
  'rax',
  'rcx',
  'rdx',
  'rbx',
  'rsp',
  'rbp',
  'rsi',
  'rdi',
  'r8',
  'r9',
  'r10',
  'r11',
  'r12',
  'r13',
  'r14',
  'r15',
];

/** Differences between native and simulated outcomes ('' when they agree). */
export function compare(c: Case, n: Outcome, s: Outcome): string {
  const diffs: string[] = [];
  const sig = (x: number) => (x === SIGBUS ? SIGSEGV : x);
  if (sig(n.signal) !== sig(s.signal)) diffs.push(`signal native ${n.signal} sim ${s.signal}`);
  if (n.land !== s.land) diffs.push(`landing native ${n.land} sim ${s.land}`);
  if (n.rip !== s.rip) diffs.push(`rip native ${hex(n.rip)} sim ${hex(s.rip)}`);
  const mask = FLAG_MASK & ~c.undef;
  if ((n.flags & mask) !== (s.flags & mask)) {
    diffs.push(
      `flags native ${hex(n.flags & mask)} sim ${hex(s.flags & mask)} (mask ${hex(mask)})`,
    );
  }
  for (let k = 0; k < 16; k++) {
    if (n.regs[k] !== s.regs[k])
      diffs.push(`${REG_NAMES[k]} native ${hex(n.regs[k]!)} sim ${hex(s.regs[k]!)}`);
  }
  if (c.simd !== undefined) {
    const m = c.simd.mxcsrMask;
    if (((n.mxcsr ?? 0) & m) !== ((s.mxcsr ?? 0) & m)) {
      diffs.push(`mxcsr native ${hex(n.mxcsr ?? -1)} sim ${hex(s.mxcsr ?? -1)} (mask ${hex(m)})`);
    }
    for (let k = 0; k < 16; k++) {
      const nl = n.xmm?.[2 * k];
      const nh = n.xmm?.[2 * k + 1];
      if (nl !== s.xmm?.[2 * k] || nh !== s.xmm?.[2 * k + 1]) {
        diffs.push(
          `xmm${k} native ${hex(nh ?? -1n)}:${hex(nl ?? -1n)} sim ${hex(s.xmm?.[2 * k + 1] ?? -1n)}:${hex(s.xmm?.[2 * k] ?? -1n)}`,
        );
      }
    }
  }
  if (c.x87 !== undefined) {
    const a = n.x87;
    const b = s.x87;
    if (a === undefined || b === undefined) {
      diffs.push('x87 state missing');
    } else {
      if (a.fcw !== b.fcw) diffs.push(`fcw native ${hex(a.fcw)} sim ${hex(b.fcw)}`);
      const m = c.x87.fswMask;
      if ((a.fsw & m) !== (b.fsw & m) || a.ftw !== b.ftw) {
        diffs.push(`fsw/ftw native ${hex(a.fsw)}/${hex(a.ftw)} sim ${hex(b.fsw)}/${hex(b.ftw)}`);
      }
      const top = (a.fsw >> 11) & 7;
      for (let k = 0; k < 8; k++) {
        if (((a.ftw >> ((top + k) & 7)) & 1) === 0) continue; // empty: contents undefined
        const [x, y] = [a.st[k]!, b.st[k]!];
        if (x[0] !== y[0] || x[1] !== y[1]) {
          diffs.push(`st(${k}) native ${hex(x[1])}:${hex(x[0])} sim ${hex(y[1])}:${hex(y[0])}`);
        }
      }
    }
  }
  const offs = new Set([...n.mem.keys(), ...s.mem.keys()]);
  for (const off of offs) {
    if (n.mem.get(off) !== s.mem.get(off)) {
      diffs.push(
        `mem +${hex(off)} native ${hex(n.mem.get(off) ?? -1n)} sim ${hex(s.mem.get(off) ?? -1n)}`,
      );
    }
  }
  return diffs.join('; ');
}

export interface DiffSummary {
  forms: number;
  cases: number;
  mismatches: number;
  /** The first mismatching cases, described. */
  reports: string[];
  /** Blocks the JIT compiled (0 unless run with the JIT). */
  compiled: number;
}

/** Generates `count` cases round-robin over the catalogue (optionally filtered by name). */
export function generate(count: number, seed: number, filter?: string): Case[] {
  const forms = filter === undefined ? FORMS : FORMS.filter((f) => f.name.includes(filter));
  const r = new Rng(seed);
  const cases: Case[] = [];
  for (let k = 0; k < count; k++) cases.push(forms[k % forms.length]!.gen(r));
  return cases;
}

export function runDifftest(
  harness: string,
  count: number,
  seed: number,
  filter?: string,
  maxReports = 20,
  jit = false,
): DiffSummary {
  const cases = generate(count, seed, filter);
  const native = runNative(harness, cases);
  const sim = new Simulated(jit);
  const reports: string[] = [];
  let mismatches = 0;
  const forms = new Set<string>();
  for (let k = 0; k < cases.length; k++) {
    const c = cases[k]!;
    forms.add(c.form);
    const d = compare(c, native[k]!, sim.run(c));
    if (d !== '') {
      mismatches++;
      if (reports.length < maxReports) reports.push(`${c.form}: ${caseLine(c)}\n    ${d}`);
    }
  }
  const compiled = sim.interp.jit?.compiled ?? 0;
  return { forms: forms.size, cases: cases.length, mismatches, reports, compiled };
}
