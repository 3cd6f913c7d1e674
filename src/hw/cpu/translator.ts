// The seam between the CPU's own TLB and whatever turns a virtual page into a physical one.
// The CPU asks only on a TLB miss (or a permission it has not cached yet); the answer is a page
// frame number plus the permissions the walk granted, or a fault. Today the flat translator below
// serves the tests; next the long-mode walker (4-level paging, NX/WP/SMEP/SMAP, A/D bits, C-bit
// and the RMP check of src/hw/mmu.ts) implements the same interface, so the hot path is unchanged.

/** Kinds of access (what the translation is asked for). */
export const ACCESS_READ = 0;
export const ACCESS_WRITE = 1;
export const ACCESS_EXEC = 2;

/** Permission bits a translation grants, cached in the TLB. */
export const PERM_R = 1;
export const PERM_W = 2;
export const PERM_X = 4;

/** The outcome of a translation, one reused object per CPU (no allocation per miss). */
export interface TranslateResult {
  /** Permissions granted for the page (PERM_*). A walk grants PERM_W only once D is set. */
  perm: number;
  /** On a fault: the exception vector (e.g. 14 for #PF, 29 for #VC). */
  vector: number;
  /** On a fault: its error code. */
  errorCode: number;
}

export interface Translator {
  /**
   * Translates the page holding the virtual address hi:lo (two int32 halves) for `access` at
   * privilege `user`. Returns the physical frame number (address / 4096) and sets `out.perm`, or
   * returns -1 and sets `out.vector`/`out.errorCode`. The address is canonical (the CPU checks).
   */
  translate(lo: number, hi: number, access: number, user: boolean, out: TranslateResult): number;
  /** Takes new paging registers (MOV CRn, WRMSR EFER); absent for fixed mappings. */
  setControl?(cr0: bigint, cr3: bigint, cr4: bigint, efer: bigint): void;
}

/**
 * Flat memory for tests and the differential harness: the virtual window
 * [base, base + size) maps onto physical [0, size); any other address is a not-present #PF.
 */
export class FlatTranslator implements Translator {
  constructor(
    /** Virtual base of the window (below 2^32, page aligned). */
    readonly base: number,
    /** Window size in bytes (page multiple). */
    readonly size: number,
  ) {
    if (base % 4096 !== 0 || size % 4096 !== 0 || base + size > 2 ** 32) {
      throw new RangeError('flat window must be page aligned and below 4 GiB');
    }
  }

  translate(lo: number, hi: number, access: number, user: boolean, out: TranslateResult): number {
    const off = (lo >>> 0) - this.base;
    if (hi !== 0 || off < 0 || off >= this.size) {
      out.vector = 14;
      // #PF error code: not present, W for writes, U for user, I for fetches.
      out.errorCode =
        (access === ACCESS_WRITE ? 2 : 0) | (user ? 4 : 0) | (access === ACCESS_EXEC ? 16 : 0);
      return -1;
    }
    out.perm = PERM_R | PERM_W | PERM_X;
    return off >>> 12;
  }
}
