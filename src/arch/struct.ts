// One declarative way to describe a byte layout from a spec: each field has a name, an offset, a
// size and an endianness. A layout gives typed get/set over bytes and a describe() for debugging,
// so no other code needs hand-written offset arithmetic.

/** Field types: unsigned integers (u64 as bigint) and raw byte ranges. */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'bytes';

export interface FieldSpec {
  readonly offset: number;
  readonly type: FieldType;
  /** Size in bytes; required for 'bytes', implied for integers. */
  readonly size?: number;
  /** Byte order; little-endian unless a spec says otherwise. */
  readonly endian?: 'le' | 'be';
  /** Optional note for describe(): the spec's name or a unit. */
  readonly doc?: string;
}

export type FieldSpecs = Readonly<Record<string, FieldSpec>>;

/** The JS type a field reads as. */
export type FieldValue<F extends FieldSpec> = F['type'] extends 'u64'
  ? bigint
  : F['type'] extends 'bytes'
    ? Uint8Array
    : number;

export interface ResolvedField {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  readonly type: FieldType;
  readonly littleEndian: boolean;
  readonly doc: string | undefined;
}

const INT_SIZES: Readonly<Record<Exclude<FieldType, 'bytes'>, number>> = {
  u8: 1,
  u16: 2,
  u32: 4,
  u64: 8,
};

/** A layout declaration that cannot be right (overlap, out of bounds, bad size). */
export class LayoutError extends Error {
  override readonly name = 'LayoutError';
}

/** Bytes too short for a layout, or a value that does not fit its field. */
export class FieldRangeError extends RangeError {
  override readonly name = 'FieldRangeError';
}

function toDataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hex(n: number | bigint, width = 0): string {
  return '0x' + n.toString(16).padStart(width, '0');
}

/**
 * A struct layout from a spec. `F` keeps the field names and types so that get/set are typed.
 * All accessors take the bytes and an optional base offset, so one layout serves arrays and
 * structures embedded in a page.
 */
export class StructLayout<F extends FieldSpecs> {
  readonly fields: readonly ResolvedField[];
  private readonly byName: ReadonlyMap<string, ResolvedField>;

  constructor(
    readonly name: string,
    readonly size: number,
    readonly specs: F,
  ) {
    if (!Number.isInteger(size) || size <= 0) {
      throw new LayoutError(`${name}: size ${size} is not a positive integer`);
    }
    const resolved: ResolvedField[] = [];
    for (const [fieldName, spec] of Object.entries(specs)) {
      const fieldSize = spec.type === 'bytes' ? spec.size : INT_SIZES[spec.type];
      if (fieldSize === undefined || !Number.isInteger(fieldSize) || fieldSize <= 0) {
        throw new LayoutError(`${name}.${fieldName}: a bytes field needs a positive size`);
      }
      if (spec.type !== 'bytes' && spec.size !== undefined && spec.size !== fieldSize) {
        throw new LayoutError(
          `${name}.${fieldName}: size ${spec.size} contradicts type ${spec.type}`,
        );
      }
      if (!Number.isInteger(spec.offset) || spec.offset < 0 || spec.offset + fieldSize > size) {
        throw new LayoutError(
          `${name}.${fieldName}: ${hex(spec.offset)}+${hex(fieldSize)} lies outside ${hex(size)} bytes`,
        );
      }
      resolved.push({
        name: fieldName,
        offset: spec.offset,
        size: fieldSize,
        type: spec.type,
        littleEndian: spec.endian !== 'be',
        doc: spec.doc,
      });
    }
    resolved.sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < resolved.length; i++) {
      const prev = resolved[i - 1]!;
      const cur = resolved[i]!;
      if (prev.offset + prev.size > cur.offset) {
        throw new LayoutError(`${name}: field ${cur.name} overlaps ${prev.name}`);
      }
    }
    this.fields = resolved;
    this.byName = new Map(resolved.map((f) => [f.name, f]));
  }

  /** The resolved field, for code that needs its offset (hot paths) or size. */
  field<K extends keyof F & string>(key: K): ResolvedField {
    const f = this.byName.get(key);
    if (f === undefined) throw new LayoutError(`${this.name} has no field ${key}`);
    return f;
  }

  offset<K extends keyof F & string>(key: K): number {
    return this.field(key).offset;
  }

  /** Reads a field. Byte fields return a copy, so later writes to the buffer do not alias it. */
  get<K extends keyof F & string>(bytes: Uint8Array, key: K, base = 0): FieldValue<F[K]> {
    return readField(this.checked(bytes, base), this.field(key), base) as FieldValue<F[K]>;
  }

  /** Writes a field; integers out of range and byte arrays of the wrong length are refused. */
  set<K extends keyof F & string>(
    bytes: Uint8Array,
    key: K,
    value: FieldValue<F[K]>,
    base = 0,
  ): void {
    writeField(this.checked(bytes, base), this.field(key), value, base, this.name);
  }

  /** A view bound to one buffer and base, for code that touches many fields of one struct. */
  on(bytes: Uint8Array, base = 0): StructView<F> {
    return new StructView(this, bytes, base);
  }

  /** Fresh zeroed bytes of this layout's size. */
  alloc(): Uint8Array {
    return new Uint8Array(this.size);
  }

  /** Every field decoded to a plain object (bytes as lower-case hex), for JSON output. */
  toObject(bytes: Uint8Array, base = 0): Record<string, string | number> {
    const view = this.checked(bytes, base);
    const out: Record<string, string | number> = {};
    for (const f of this.fields) {
      const v = readField(view, f, base);
      out[f.name] = v instanceof Uint8Array ? bytesToHex(v) : typeof v === 'bigint' ? hex(v) : v;
    }
    return out;
  }

  /** A human-readable dump: one line per field with its offset and value. */
  describe(bytes: Uint8Array, base = 0): string {
    const view = this.checked(bytes, base);
    const width = Math.max(...this.fields.map((f) => f.name.length));
    const lines = [`${this.name} (${hex(this.size)} bytes)`];
    for (const f of this.fields) {
      const v = readField(view, f, base);
      const shown =
        v instanceof Uint8Array
          ? v.every((b) => b === 0)
            ? `${v.length} zero bytes`
            : bytesToHex(v)
          : hex(v, f.size * 2);
      const doc = f.doc === undefined ? '' : `  (${f.doc})`;
      lines.push(`  ${hex(f.offset, 3)} ${f.name.padEnd(width)} ${shown}${doc}`);
    }
    return lines.join('\n');
  }

  private checked(bytes: Uint8Array, base: number): DataView {
    if (!Number.isInteger(base) || base < 0 || base + this.size > bytes.length) {
      throw new FieldRangeError(
        `${this.name} needs ${hex(this.size)} bytes at ${hex(base)}, buffer has ${hex(bytes.length)}`,
      );
    }
    return toDataView(bytes);
  }
}

/** A layout bound to one buffer, with the same typed accessors. */
export class StructView<F extends FieldSpecs> {
  private readonly view: DataView;

  constructor(
    readonly layout: StructLayout<F>,
    readonly bytes: Uint8Array,
    readonly base = 0,
  ) {
    if (!Number.isInteger(base) || base < 0 || base + layout.size > bytes.length) {
      throw new FieldRangeError(
        `${layout.name} needs ${hex(layout.size)} bytes at ${hex(base)}, buffer has ${hex(bytes.length)}`,
      );
    }
    this.view = toDataView(bytes);
  }

  get<K extends keyof F & string>(key: K): FieldValue<F[K]> {
    return readField(this.view, this.layout.field(key), this.base) as FieldValue<F[K]>;
  }

  set<K extends keyof F & string>(key: K, value: FieldValue<F[K]>): this {
    writeField(this.view, this.layout.field(key), value, this.base, this.layout.name);
    return this;
  }

  describe(): string {
    return this.layout.describe(this.bytes, this.base);
  }
}

function readField(view: DataView, f: ResolvedField, base: number): number | bigint | Uint8Array {
  const at = base + f.offset;
  switch (f.type) {
    case 'u8':
      return view.getUint8(at);
    case 'u16':
      return view.getUint16(at, f.littleEndian);
    case 'u32':
      return view.getUint32(at, f.littleEndian);
    case 'u64':
      return view.getBigUint64(at, f.littleEndian);
    case 'bytes':
      return new Uint8Array(view.buffer.slice(view.byteOffset + at, view.byteOffset + at + f.size));
  }
}

function writeField(
  view: DataView,
  f: ResolvedField,
  value: unknown,
  base: number,
  structName: string,
): void {
  const at = base + f.offset;
  const where = `${structName}.${f.name}`;
  if (f.type === 'bytes') {
    if (!(value instanceof Uint8Array) || value.length !== f.size) {
      throw new FieldRangeError(`${where} takes exactly ${f.size} bytes`);
    }
    new Uint8Array(view.buffer, view.byteOffset + at, f.size).set(value);
    return;
  }
  if (f.type === 'u64') {
    if (typeof value !== 'bigint' || value < 0n || value > 0xffff_ffff_ffff_ffffn) {
      throw new FieldRangeError(`${where} takes a bigint in [0, 2^64)`);
    }
    view.setBigUint64(at, value, f.littleEndian);
    return;
  }
  const max = 2 ** (8 * f.size);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value >= max) {
    throw new FieldRangeError(`${where} takes an integer in [0, ${hex(max)})`);
  }
  if (f.type === 'u8') view.setUint8(at, value);
  else if (f.type === 'u16') view.setUint16(at, value, f.littleEndian);
  else view.setUint32(at, value, f.littleEndian);
}

/** Declares a layout. */
export function defineStruct<F extends FieldSpecs>(
  name: string,
  size: number,
  fields: F,
): StructLayout<F> {
  return new StructLayout(name, size, fields);
}

type Prefixed<P extends string, F extends FieldSpecs> = {
  readonly [K in keyof F & string as `${P}.${K}`]: F[K];
};

/** Places a smaller layout's fields at `offset` under `prefix.` (e.g. a VMSA's segment registers). */
export function embed<P extends string, F extends FieldSpecs>(
  prefix: P,
  offset: number,
  inner: StructLayout<F>,
): Prefixed<P, F> {
  const out: Record<string, FieldSpec> = {};
  for (const [k, spec] of Object.entries(inner.specs)) {
    out[`${prefix}.${k}`] = { ...spec, offset: offset + spec.offset };
  }
  return out as Prefixed<P, F>;
}

/** Lower-case hex of bytes, no separators. */
export function bytesToHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Parses hex (optionally 0x-prefixed, even length); throws FieldRangeError with a reason. */
export function hexToBytes(text: string): Uint8Array {
  const h = text.startsWith('0x') || text.startsWith('0X') ? text.slice(2) : text;
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) {
    throw new FieldRangeError(`not an even-length hex string: ${JSON.stringify(text)}`);
  }
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}
