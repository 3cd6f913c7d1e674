import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GUEST_FIELD_SELECT } from '../../arch/index.js';
import {
  DERIVED_KEY_SIZE,
  deriveGuestKey,
  KeyDerivationError,
  type DerivedKeyInput,
} from './key-derivation.js';

const CHIP_SECRET = new Uint8Array(64).fill(0x5a);

/** Guest fields in GUEST_FIELD_SELECT bit order, each with a generator and a mutation. */
const FIELDS = [
  { bit: 0, key: 'policy' },
  { bit: 1, key: 'imageId' },
  { bit: 2, key: 'familyId' },
  { bit: 3, key: 'measurement' },
  { bit: 4, key: 'guestSvn' },
  { bit: 5, key: 'tcbVersion' },
  { bit: 6, key: 'launchMitVector' },
] as const;

type FieldKey = (typeof FIELDS)[number]['key'];

const bytes = (n: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: n, maxLength: n });
const u64 = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn });

const inputArb: fc.Arbitrary<DerivedKeyInput> = fc.record({
  root: fc.oneof(
    fc.constant({ kind: 'VCEK' as const, chipSecret: CHIP_SECRET }),
    bytes(32).map((vmrk) => ({ kind: 'VMRK' as const, vmrk })),
  ),
  guestFieldSelect: fc.bigInt({ min: 0n, max: 0x7fn }),
  vmpl: fc.integer({ min: 0, max: 3 }),
  policy: u64,
  imageId: bytes(16),
  familyId: bytes(16),
  measurement: bytes(48),
  guestSvn: fc.integer({ min: 0, max: 0xffff_ffff }),
  tcbVersion: u64,
  launchMitVector: u64,
});

/** The input with one guest field changed to a different value. */
function mutate(input: DerivedKeyInput, key: FieldKey): DerivedKeyInput {
  const v = input[key];
  if (typeof v === 'bigint') return { ...input, [key]: v ^ 1n };
  if (typeof v === 'number') return { ...input, [key]: (v ^ 1) >>> 0 };
  const b = v.slice();
  b[b.length - 1] = b[b.length - 1]! ^ 1;
  return { ...input, [key]: b };
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('deriveGuestKey', () => {
  it('gives a 32-byte key, the same for the same inputs', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const k = deriveGuestKey(input);
        expect(k.length).toBe(DERIVED_KEY_SIZE);
        expect(deriveGuestKey({ ...input })).toEqual(k);
      }),
    );
  });

  it('changes when a selected field changes and not when an unselected one does', () => {
    fc.assert(
      fc.property(inputArb, fc.constantFrom(...FIELDS), (input, f) => {
        const selected = ((input.guestFieldSelect >> BigInt(f.bit)) & 1n) === 1n;
        const before = hex(deriveGuestKey(input));
        const after = hex(deriveGuestKey(mutate(input, f.key)));
        if (selected) expect(after).not.toBe(before);
        else expect(after).toBe(before);
      }),
      { numRuns: 500 },
    );
  });

  it('always mixes in the VMPL', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const other = { ...input, vmpl: (input.vmpl + 1) % 4 };
        expect(hex(deriveGuestKey(other))).not.toBe(hex(deriveGuestKey(input)));
      }),
    );
  });

  it('depends on the root: VCEK vs VMRK, and which chip or VMRK', () => {
    fc.assert(
      fc.property(inputArb, bytes(32), (input, vmrk) => {
        const vcekKey = hex(
          deriveGuestKey({ ...input, root: { kind: 'VCEK', chipSecret: CHIP_SECRET } }),
        );
        const vmrkKey = hex(deriveGuestKey({ ...input, root: { kind: 'VMRK', vmrk } }));
        expect(vmrkKey).not.toBe(vcekKey);
        const otherChip = CHIP_SECRET.slice();
        otherChip[0] = 0;
        const otherChipKey = hex(
          deriveGuestKey({ ...input, root: { kind: 'VCEK', chipSecret: otherChip } }),
        );
        expect(otherChipKey).not.toBe(vcekKey);
      }),
      { numRuns: 50 },
    );
  });

  it('separates selections: selecting a field with the same values gives another key', () => {
    fc.assert(
      fc.property(inputArb, fc.constantFrom(...FIELDS), (input, f) => {
        const toggled = {
          ...input,
          guestFieldSelect: input.guestFieldSelect ^ (1n << BigInt(f.bit)),
        };
        expect(hex(deriveGuestKey(toggled))).not.toBe(hex(deriveGuestKey(input)));
      }),
    );
  });

  it('refuses reserved GUEST_FIELD_SELECT bits, a VMPL over 3, mis-sized fields', () => {
    const base: DerivedKeyInput = {
      root: { kind: 'VCEK', chipSecret: CHIP_SECRET },
      guestFieldSelect: GUEST_FIELD_SELECT.encode({ measurement: true }),
      vmpl: 0,
      policy: 0x30000n,
      imageId: new Uint8Array(16),
      familyId: new Uint8Array(16),
      measurement: new Uint8Array(48),
      guestSvn: 0,
      tcbVersion: 0n,
      launchMitVector: 0n,
    };
    expect(() => deriveGuestKey({ ...base, guestFieldSelect: 1n << 7n })).toThrow(
      KeyDerivationError,
    );
    expect(() => deriveGuestKey({ ...base, vmpl: 4 })).toThrow(/VMPL 4/);
    expect(() => deriveGuestKey({ ...base, measurement: new Uint8Array(32) })).toThrow(
      /MEASUREMENT is 48 bytes/,
    );
    expect(() =>
      deriveGuestKey({ ...base, root: { kind: 'VMRK', vmrk: new Uint8Array(16) } }),
    ).toThrow(/VMRK is 32 bytes/);
    expect(() =>
      deriveGuestKey({ ...base, root: { kind: 'VCEK', chipSecret: new Uint8Array(8) } }),
    ).toThrow(/chip secret/);
    // An unselected field is not checked: its value does not matter.
    expect(() => deriveGuestKey({ ...base, imageId: new Uint8Array(3) })).not.toThrow();
  });
});
