// MSG_KEY_REQ derived keys (SNP ABI, "MSG_KEY_REQ"; reference/sev-snp-abi.md section 3.4). The
// firmware derives a 32-byte key from a root key (the chip's VCEK-rooted secret or the guest's
// VMRK) mixed with the requesting VMPL and exactly the guest fields GUEST_FIELD_SELECT names.
// AMD's KDF is internal to the ASP and no outside tool can check it; what matters, and what the
// tests prove, is its contract: same inputs, same key; any selected field changed, another key;
// an unselected field changed, the same key.
//
// This is a pure function of its inputs. The ASP command handler decides the values first: it
// checks VMPL >= the requester's, GUEST_SVN <= the launch SVN, TCB_VERSION <= the committed TCB,
// and takes POLICY, IMAGE_ID, FAMILY_ID and MEASUREMENT from the guest's launch context.

import { createHmac, hkdfSync } from 'node:crypto';
import { GUEST_FIELD_SELECT } from '../../arch/index.js';
import { CHIP_SECRET_SIZE } from './chip-identity.js';

export const DERIVED_KEY_SIZE = 32;
export const VMRK_SIZE = 32;

/** The root of a derived key: ROOT_KEY_SELECT 0 (VCEK) or 1 (VMRK). */
export type DerivedKeyRoot =
  | { readonly kind: 'VCEK'; readonly chipSecret: Uint8Array }
  | { readonly kind: 'VMRK'; readonly vmrk: Uint8Array };

/** The inputs of one derivation. Unselected guest fields are ignored. */
export interface DerivedKeyInput {
  readonly root: DerivedKeyRoot;
  /** GUEST_FIELD_SELECT: bit 0 policy, 1 image_id, 2 family_id, 3 measurement, 4 guest_svn,
   * 5 tcb_version, 6 launch_mit_vector. */
  readonly guestFieldSelect: bigint;
  /** The VMPL of the request; always mixed in. */
  readonly vmpl: number;
  readonly policy: bigint;
  readonly imageId: Uint8Array;
  readonly familyId: Uint8Array;
  readonly measurement: Uint8Array;
  /** GUEST_SVN of the request (checked against the launch SVN by the caller). */
  readonly guestSvn: number;
  /** TCB_VERSION of the request (checked against the committed TCB by the caller). */
  readonly tcbVersion: bigint;
  /** LAUNCH_MIT_VECTOR of a version-2 request; 0 otherwise. */
  readonly launchMitVector: bigint;
}

/** Inputs the firmware would refuse with INVALID_PARAM. */
export class KeyDerivationError extends Error {
  override readonly name = 'KeyDerivationError';
}

const LABEL = new TextEncoder().encode('svsm-ts MSG_KEY_REQ derived key v1');
const VCEK_ROOT_SALT = new TextEncoder().encode('svsm-ts derived-key root v1');

function u32(v: number, what: string): Uint8Array {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw new KeyDerivationError(`${what} ${v} is not a u32`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v, true);
  return out;
}

function u64(v: bigint, what: string): Uint8Array {
  if (typeof v !== 'bigint' || v < 0n || v > 0xffff_ffff_ffff_ffffn) {
    throw new KeyDerivationError(`${what} ${String(v)} is not a u64`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, true);
  return out;
}

function sized(bytes: Uint8Array, size: number, what: string): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== size) {
    throw new KeyDerivationError(`${what} is ${size} bytes`);
  }
  return bytes;
}

function rootKey(root: DerivedKeyRoot): { id: number; key: Uint8Array } {
  if (root.kind === 'VCEK') {
    sized(root.chipSecret, CHIP_SECRET_SIZE, 'the chip secret');
    // Independent of the TCB: the TCB enters only when GUEST_FIELD_SELECT selects it.
    const key = new Uint8Array(hkdfSync('sha384', root.chipSecret, VCEK_ROOT_SALT, 'VCEK', 48));
    return { id: 0, key };
  }
  return { id: 1, key: sized(root.vmrk, VMRK_SIZE, 'the VMRK') };
}

/**
 * The 32-byte derived key: HMAC-SHA-384 under the root key of a fixed-layout message (root
 * selector, GUEST_FIELD_SELECT, VMPL, then each selected field tagged with its bit number, in
 * bit order, at its fixed size), truncated to 32 bytes.
 */
export function deriveGuestKey(input: DerivedKeyInput): Uint8Array {
  const select = input.guestFieldSelect;
  u64(select, 'GUEST_FIELD_SELECT');
  const reserved = GUEST_FIELD_SELECT.reservedBits(select);
  if (reserved !== 0n) {
    throw new KeyDerivationError(
      `GUEST_FIELD_SELECT sets reserved bits 0x${reserved.toString(16)}`,
    );
  }
  if (!Number.isInteger(input.vmpl) || input.vmpl < 0 || input.vmpl > 3) {
    throw new KeyDerivationError(`VMPL ${input.vmpl} is not 0..3`);
  }
  const { id, key } = rootKey(input.root);
  const has = (f: Parameters<typeof GUEST_FIELD_SELECT.has>[1]): boolean =>
    GUEST_FIELD_SELECT.has(select, f);
  const field = (bit: number, value: Uint8Array): Uint8Array[] => [Uint8Array.of(bit), value];

  const parts: Uint8Array[] = [LABEL, Uint8Array.of(id), u64(select, ''), u32(input.vmpl, '')];
  if (has('guestPolicy')) parts.push(...field(0, u64(input.policy, 'policy')));
  if (has('imageId')) parts.push(...field(1, sized(input.imageId, 16, 'IMAGE_ID')));
  if (has('familyId')) parts.push(...field(2, sized(input.familyId, 16, 'FAMILY_ID')));
  if (has('measurement')) parts.push(...field(3, sized(input.measurement, 48, 'MEASUREMENT')));
  if (has('guestSvn')) parts.push(...field(4, u32(input.guestSvn, 'GUEST_SVN')));
  if (has('tcbVersion')) parts.push(...field(5, u64(input.tcbVersion, 'TCB_VERSION')));
  if (has('launchMitVector')) {
    parts.push(...field(6, u64(input.launchMitVector, 'LAUNCH_MIT_VECTOR')));
  }
  const mac = createHmac('sha384', key);
  for (const p of parts) mac.update(p);
  return new Uint8Array(mac.digest()).slice(0, DERIVED_KEY_SIZE);
}
