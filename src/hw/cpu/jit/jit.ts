// The JIT's policy and its seam with the run loop: counts how often each entry point (a cached
// Insn, i.e. a physical address) is reached, compiles it into a block once hot, and runs the
// block when the budget allows a whole pass (so the instruction budget is honoured exactly).
//
// Compiled blocks hang off the Insn record of their entry, so they live exactly as long as the
// page's decoded code: the CodeCache's invalidation (stores into code pages by any CPU, or
// `CodeCache.invalidate` by other writers) drops them with the records.

import { type Cpu, X86Fault } from '../cpu.js';
import type { Insn } from '../insn.js';
import { type BlockPlan, MAX_BLOCK, planBlock } from './block.js';
import { type BlockFn, compileBlock } from './js-backend.js';

export interface JitOptions {
  /** Entries into an instruction before its block is compiled (1 = at first sight). */
  threshold?: number;
  /** Longest block in instructions. */
  maxBlock?: number;
}

/** A compiled block, attached to the Insn of its entry. */
export class Block {
  constructor(
    readonly fn: BlockFn,
    /** Instructions in one pass (the run loop enters only if the budget covers a pass). */
    readonly count: number,
    /** Offset of each instruction from the entry (to count retired ones when one faults). */
    readonly offsets: Int32Array,
    /** Physical address of the block's page. */
    readonly pageBase: number,
  ) {}
}

/** Attached to entries that cannot start a block: never retried. */
const NO_BLOCK = new Block(() => 0, Number.POSITIVE_INFINITY, new Int32Array(0), 0);

export class Jit {
  readonly threshold: number;
  readonly maxBlock: number;
  /** Blocks compiled and instructions executed in blocks (statistics). */
  compiled = 0;
  executed = 0;

  constructor(options: JitOptions = {}) {
    this.threshold = Math.max(1, options.threshold ?? 32);
    this.maxBlock = Math.max(1, options.maxBlock ?? MAX_BLOCK);
  }

  /**
   * Called by the run loop after fetching `i` (RIP already advanced, c.startLo/startHi = its
   * address) once `i` has a block or its `heat` reached the threshold. Runs the block starting
   * at `i` (compiling it first if needed) if `left` covers a pass, and the blocks that follow on
   * the same page; returns the number of instructions executed (RIP and c.instructions updated),
   * or 0 when the interpreter should execute `i` itself. A fault inside a block propagates like one from
   * `execute`, with c.startLo at the faulting instruction and earlier instructions counted.
   */
  enter(c: Cpu, i: Insn, left: number): number {
    let b = i.block as Block | null;
    if (b === null) b = this.compile(c, i); // the run loop counted `i.heat` up to the threshold
    if (b.count > left) return 0;
    // Blocks run back to back while the next RIP stays on the entry's virtual page (so on the
    // same physical page, already translated for execution) and the next entry is compiled;
    // anything else goes back to the run loop.
    const r = c.r;
    const code = c.code;
    const hi = c.startHi;
    const pageBase = b.pageBase;
    let entry = c.startLo;
    let total = 0;
    try {
      for (;;) {
        total += b.fn(c, left - total);
        const lo = r[32]!;
        if (r[33] !== hi || ((lo ^ entry) & ~0xfff) !== 0) break;
        const next = code.lookup(pageBase + (lo & 0xfff));
        if (next === undefined) break;
        const nb = next.block as Block | null;
        if (nb === null || nb.count > left - total) break;
        b = nb;
        entry = lo;
        c.startLo = lo;
      }
    } catch (e) {
      if (e instanceof X86Fault) {
        const k = b.offsets.indexOf(c.startLo - entry);
        c.instructions += k;
        total += k;
      }
      this.executed += total;
      throw e;
    }
    this.executed += total;
    return total;
  }

  private compile(c: Cpu, i: Insn): Block {
    const pa = c.fetchAddress(c.startLo, c.startHi);
    // The instruction that crosses a page is decoded each time and never cached: no block.
    const plan = c.code.lookup(pa) === i ? planBlock(c.mem, c.code, pa, i, this.maxBlock) : null;
    const b = plan === null ? NO_BLOCK : this.build(plan, c.code.hasCode);
    i.block = b;
    return b;
  }

  private build(plan: BlockPlan, hasCode: Uint8Array): Block {
    this.compiled++;
    return new Block(
      compileBlock(plan, hasCode),
      plan.insns.length,
      Int32Array.from(plan.insns, (p) => p.off),
      plan.pa - (plan.pa & 0xfff),
    );
  }
}
