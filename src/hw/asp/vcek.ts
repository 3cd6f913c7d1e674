// The VCEK (Versioned Chip Endorsement Key): the ECDSA P-384 key that signs this chip's
// attestation reports. AMD derives it inside the chip from a chip-unique secret and the TCB
// version, so that a firmware update yields a new key and AMD's KDS can certify the key for
// exactly that (hwID, TCB). The simulator does the same: the private scalar is HKDF-SHA-384 of
// (chip secret, TCB_VERSION), so the same identity always gives the same VCEK.

import { createECDH, createHmac, createPrivateKey, createPublicKey, hkdfSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { base64url, bigIntToBytes, bytesToBigInt } from './bignum.js';
import { CHIP_SECRET_SIZE, type ChipIdentity } from './chip-identity.js';
import { P384_BYTES, P384_ORDER } from './ecdsa-p384.js';
import { buildVcekCertificate } from './kds-certs.js';
import { PSS_SALT_LENGTH } from './rsa.js';

export interface Vcek {
  /** The TCB_VERSION this key belongs to. */
  readonly tcb: bigint;
  /** The private scalar d, 48 bytes big-endian, in [1, n-1]. */
  readonly scalar: Uint8Array;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const VCEK_SALT = new TextEncoder().encode('svsm-ts VCEK v1');
/** 64 more bits than the order, so reducing them mod n-1 has negligible bias (FIPS 186-5 A.2.1). */
const VCEK_SEED_BYTES = P384_BYTES + 8;

function tcbBytes(tcb: bigint): Uint8Array {
  if (typeof tcb !== 'bigint' || tcb < 0n || tcb > 0xffff_ffff_ffff_ffffn) {
    throw new RangeError(`TCB_VERSION ${String(tcb)} is not a u64`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, tcb, true);
  return out;
}

/** The VCEK private scalar for (chip secret, TCB): HKDF-SHA-384, reduced into [1, n-1]. */
export function deriveVcekScalar(chipSecret: Uint8Array, tcb: bigint): Uint8Array {
  if (chipSecret.length !== CHIP_SECRET_SIZE) {
    throw new RangeError(`the chip secret is ${CHIP_SECRET_SIZE} bytes, got ${chipSecret.length}`);
  }
  const seed = new Uint8Array(
    hkdfSync('sha384', chipSecret, VCEK_SALT, tcbBytes(tcb), VCEK_SEED_BYTES),
  );
  const d = (bytesToBigInt(seed) % (P384_ORDER - 1n)) + 1n;
  return bigIntToBytes(d, P384_BYTES);
}

/** The VCEK of a chip secret at one TCB, as node KeyObjects. */
export function deriveVcek(chipSecret: Uint8Array, tcb: bigint): Vcek {
  const scalar = deriveVcekScalar(chipSecret, tcb);
  const ecdh = createECDH('secp384r1');
  ecdh.setPrivateKey(scalar);
  const point = ecdh.getPublicKey(); // 0x04 || X || Y
  const privateKey = createPrivateKey({
    key: {
      kty: 'EC',
      crv: 'P-384',
      x: base64url(point.subarray(1, 1 + P384_BYTES)),
      y: base64url(point.subarray(1 + P384_BYTES)),
      d: base64url(scalar),
    },
    format: 'jwk',
  });
  return { tcb, scalar, privateKey, publicKey: createPublicKey(privateKey) };
}

/** The chip's VCEK at `tcb` (its installed TCB by default). */
export function vcekOf(identity: ChipIdentity, tcb: bigint = identity.tcb): Vcek {
  return deriveVcek(identity.chipSecret, tcb);
}

const CERT_SALT_LABEL = new TextEncoder().encode('svsm-ts VCEK certificate PSS salt v1');

/**
 * The VCEK certificate AMD's KDS would serve for this chip at `tcb`, signed by the chip's ASK
 * and dated `notBefore` (the identity's issue date by default). The PSS salt is derived from
 * the chip secret, TCB and date, so the certificate is the same bytes every time.
 */
export function vcekCertificate(
  identity: ChipIdentity,
  tcb: bigint = identity.tcb,
  notBefore: Date = identity.issuedAt,
): Uint8Array {
  const when = new Uint8Array(8);
  new DataView(when.buffer).setBigInt64(0, BigInt(notBefore.getTime()), true);
  const salt = new Uint8Array(
    createHmac('sha384', identity.chipSecret)
      .update(CERT_SALT_LABEL)
      .update(tcbBytes(tcb))
      .update(when)
      .digest(),
  ).subarray(0, PSS_SALT_LENGTH);
  return buildVcekCertificate({
    product: identity.product,
    productName: identity.productName,
    publicKey: vcekOf(identity, tcb).publicKey,
    askPrivateKey: identity.ask.privateKey,
    chipId: identity.chipId,
    tcb,
    notBefore,
    salt,
  });
}
