// Bit-field layouts inside one integer register or word (guest policy, TCB_VERSION, PVALIDATE
// list entries, GHCB MSR-protocol values...), declared as data like byte layouts are.

import { LayoutError, FieldRangeError } from './struct.js';

export interface BitFieldSpec {
  /** Lowest bit index. */
  readonly lo: number;
  /** Width in bits (1 for a flag). */
  readonly width: number;
  readonly doc?: string;
}

export type BitFieldSpecs = Readonly<Record<string, BitFieldSpec>>;

/**
 * Bit fields of a `bits`-wide unsigned word held as a bigint. decode() gives every field as a
 * bigint; get/with read and replace one field.
 */
export class BitLayout<F extends BitFieldSpecs> {
  constructor(
    readonly name: string,
    readonly bits: 8 | 16 | 32 | 64,
    readonly specs: F,
  ) {
    let used = 0n;
    for (const [k, f] of Object.entries(specs)) {
      if (!Number.isInteger(f.lo) || !Number.isInteger(f.width) || f.width < 1) {
        throw new LayoutError(`${name}.${k}: bad bit range`);
      }
      if (f.lo < 0 || f.lo + f.width > bits) {
        throw new LayoutError(`${name}.${k}: bits ${f.lo}..${f.lo + f.width - 1} outside ${bits}`);
      }
      const m = this.maskOf(f);
      if ((used & m) !== 0n) throw new LayoutError(`${name}.${k} overlaps another field`);
      used |= m;
      this.fieldShift[k] = BigInt(f.lo);
      this.fieldMask[k] = (1n << BigInt(f.width)) - 1n;
    }
    this.definedMask = used;
    this.limit = 1n << BigInt(bits);
  }

  // Per-field shift and (unshifted) mask as bigints, computed once: get/has run in hot paths.
  private readonly fieldShift: Record<string, bigint> = {};
  private readonly fieldMask: Record<string, bigint> = {};
  private readonly limit: bigint;

  /** Bits covered by some declared field; the rest are reserved. */
  readonly definedMask: bigint;

  private maskOf(f: BitFieldSpec): bigint {
    return ((1n << BigInt(f.width)) - 1n) << BigInt(f.lo);
  }

  private check(word: bigint): void {
    if (word < 0n || word >= this.limit) {
      throw new FieldRangeError(`${this.name}: ${word} does not fit ${this.bits} bits`);
    }
  }

  get<K extends keyof F & string>(word: bigint, key: K): bigint {
    this.check(word);
    return (word >> this.fieldShift[key]!) & this.fieldMask[key]!;
  }

  /** Flag test for 1-bit fields. */
  has<K extends keyof F & string>(word: bigint, key: K): boolean {
    return this.get(word, key) !== 0n;
  }

  /** The word with one field replaced. */
  with<K extends keyof F & string>(word: bigint, key: K, value: bigint | number | boolean): bigint {
    this.check(word);
    const f = this.specs[key]!;
    const v = typeof value === 'boolean' ? (value ? 1n : 0n) : BigInt(value);
    if (v < 0n || v >= 1n << BigInt(f.width)) {
      throw new FieldRangeError(`${this.name}.${key}: ${v} does not fit ${f.width} bits`);
    }
    return (word & ~this.maskOf(f)) | (v << BigInt(f.lo));
  }

  /** Builds a word from named fields (absent fields are zero). */
  encode(values: Partial<Record<keyof F & string, bigint | number | boolean>>): bigint {
    let w = 0n;
    for (const [k, v] of Object.entries(values) as [
      keyof F & string,
      bigint | number | boolean,
    ][]) {
      w = this.with(w, k, v);
    }
    return w;
  }

  decode(word: bigint): Record<keyof F & string, bigint> {
    this.check(word);
    const out = {} as Record<keyof F & string, bigint>;
    for (const k of Object.keys(this.specs) as (keyof F & string)[]) out[k] = this.get(word, k);
    return out;
  }

  /** Set bits that no declared field covers (reserved, must-be-zero bits in most specs). */
  reservedBits(word: bigint): bigint {
    this.check(word);
    return word & ~this.definedMask;
  }

  /** Names of set flags and non-zero fields, for logs: "SNPActive|DebugSwap" or "minor=0 ...". */
  describe(word: bigint): string {
    const parts: string[] = [];
    for (const [k, f] of Object.entries(this.specs)) {
      const v = this.get(word, k as keyof F & string);
      if (f.width === 1) {
        if (v !== 0n) parts.push(k);
      } else if (v !== 0n) {
        parts.push(`${k}=0x${v.toString(16)}`);
      }
    }
    const rsv = this.reservedBits(word);
    if (rsv !== 0n) parts.push(`reserved=0x${rsv.toString(16)}`);
    return parts.length ? parts.join('|') : '(none)';
  }
}

export function defineBits<F extends BitFieldSpecs>(
  name: string,
  bits: 8 | 16 | 32 | 64,
  fields: F,
): BitLayout<F> {
  return new BitLayout(name, bits, fields);
}

/** A single-bit field. */
export function flag(lo: number, doc?: string): BitFieldSpec {
  return doc === undefined ? { lo, width: 1 } : { lo, width: 1, doc };
}

/** A multi-bit field. */
export function field(lo: number, width: number, doc?: string): BitFieldSpec {
  return doc === undefined ? { lo, width } : { lo, width, doc };
}
