// Signing artefacts around attestation: the extended-guest-request certificate table, the GUIDs
// that name its entries, the AMD KDS certificate extension OIDs, the launch ID block and ID auth
// info, and AMD's fixed-size ECDSA public key and signature formats.
// Facts: reference/sev-snp-abi.md sections 2 ("ID block / ID auth") and 4 (SNP ABI, Tables
// "ID_BLOCK", "ID_AUTH_INFO", "ECDSA Public Key Format", "ECDSA Signature Format"; GHCB spec
// "SNP Extended Guest Request"; AMD VCEK certificate specification).

import { bytesToHex, defineStruct, FieldRangeError } from './struct.js';

// ---------------------------------------------------------------------------------------------
// GUIDs

const GUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const GUID_SIZE = 16;

function guidHex(guid: string): string {
  if (!GUID_PATTERN.test(guid)) {
    throw new FieldRangeError(
      `not a GUID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: ${JSON.stringify(guid)}`,
    );
  }
  return guid.replace(/-/g, '').toLowerCase();
}

function guidBytes(bytes: Uint8Array): void {
  if (bytes.length !== GUID_SIZE) {
    throw new FieldRangeError(`a GUID is ${GUID_SIZE} bytes, got ${bytes.length}`);
  }
}

function formatGuidHex(h: string): string {
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Swaps the first three groups (4, 2, 2 bytes) between RFC 4122 and bytes_le order. */
function swapGuidGroups(b: Uint8Array): Uint8Array {
  return Uint8Array.of(b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.subarray(8));
}

/**
 * GUID string to bytes in RFC 4122 (network, "big-endian") order: the hex digits in the order
 * they are written. This is the order of the certificate table (go-sev-guest, virtee).
 */
export function guidToBytesRfc4122(guid: string): Uint8Array {
  const h = guidHex(guid);
  const out = new Uint8Array(GUID_SIZE);
  for (let i = 0; i < GUID_SIZE; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** 16 bytes in RFC 4122 order to the lower-case GUID string. */
export function guidFromBytesRfc4122(bytes: Uint8Array): string {
  guidBytes(bytes);
  return formatGuidHex(bytesToHex(bytes));
}

/**
 * GUID string to the mixed-endian "bytes_le" order of EFI/OVMF (Python `uuid.bytes_le`): the
 * first three groups little-endian, the last two as written. Used by OVMF's GUIDed tables.
 */
export function guidToBytesLe(guid: string): Uint8Array {
  return swapGuidGroups(guidToBytesRfc4122(guid));
}

/** 16 bytes in bytes_le order to the lower-case GUID string. */
export function guidFromBytesLe(bytes: Uint8Array): string {
  guidBytes(bytes);
  return guidFromBytesRfc4122(swapGuidGroups(bytes));
}

/** GUIDs naming the entries of the certificate table (GHCB spec / AMD KDS). */
export const CERT_GUID = {
  ARK: 'c0b406a4-a803-4952-9743-3fb6014cd0ae',
  /** Also names the ASVK of a VLEK chain. */
  ASK: '4ab7b379-bbac-4fe4-a02f-05aef327c782',
  VCEK: '63da758d-e664-4564-adc5-f4b93be8accd',
  VLEK: 'a8074bc2-a25a-483e-aae6-39c045a0b8a1',
} as const;

// ---------------------------------------------------------------------------------------------
// Extended guest request certificate table

export const CERT_TABLE_ENTRY_SIZE = 24;

// One table entry; an all-zero entry ends the table. Offsets count from the table's start.
export const CERT_TABLE_ENTRY = defineStruct('CERT_TABLE_ENTRY', CERT_TABLE_ENTRY_SIZE, {
  guid: { offset: 0x00, type: 'bytes', size: GUID_SIZE, doc: 'RFC 4122 byte order' },
  offset: { offset: 0x10, type: 'u32', doc: 'from the start of the table' },
  length: { offset: 0x14, type: 'u32' },
});

/** A certificate (DER) and the GUID that names it. */
export interface CertTableEntry {
  readonly guid: string;
  readonly data: Uint8Array;
}

/** A table entry as stored: where its data lies. */
export interface CertTableHeaderEntry {
  readonly guid: string;
  readonly offset: number;
  readonly length: number;
}

/** A certificate table that cannot be read; the message says why in one sentence. */
export class CertTableError extends Error {
  override readonly name = 'CertTableError';
}

/** Bytes `encodeCertTable(entries)` produces: entries, terminator, then the blobs. */
export function certTableSize(entries: readonly CertTableEntry[]): number {
  let size = (entries.length + 1) * CERT_TABLE_ENTRY_SIZE;
  for (const e of entries) size += e.data.length;
  return size;
}

/** The table with the blobs packed in entry order after the terminator, no padding. */
export function encodeCertTable(entries: readonly CertTableEntry[]): Uint8Array {
  const size = certTableSize(entries);
  if (size > 0xffff_ffff) {
    throw new FieldRangeError(`a certificate table of ${size} bytes exceeds u32 offsets`);
  }
  const out = new Uint8Array(size);
  let cursor = (entries.length + 1) * CERT_TABLE_ENTRY_SIZE;
  entries.forEach((e, i) => {
    const at = i * CERT_TABLE_ENTRY_SIZE;
    CERT_TABLE_ENTRY.on(out, at)
      .set('guid', guidToBytesRfc4122(e.guid))
      .set('offset', cursor)
      .set('length', e.data.length);
    out.set(e.data, cursor);
    cursor += e.data.length;
  });
  return out;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/**
 * The entries before the all-zero terminator, with every data range checked to lie after the
 * entries and inside `bytes`. Bytes after the last blob (page padding) are allowed.
 */
export function readCertTableHeader(bytes: Uint8Array): CertTableHeaderEntry[] {
  const entries: CertTableHeaderEntry[] = [];
  let end = -1;
  for (let at = 0; at + CERT_TABLE_ENTRY_SIZE <= bytes.length; at += CERT_TABLE_ENTRY_SIZE) {
    if (bytes.subarray(at, at + CERT_TABLE_ENTRY_SIZE).every((b) => b === 0)) {
      end = at + CERT_TABLE_ENTRY_SIZE;
      break;
    }
    const e = CERT_TABLE_ENTRY.on(bytes, at);
    entries.push({
      guid: guidFromBytesRfc4122(e.get('guid')),
      offset: e.get('offset'),
      length: e.get('length'),
    });
  }
  if (end < 0) {
    throw new CertTableError(
      `certificate table has no all-zero terminator entry within its ${bytes.length} bytes`,
    );
  }
  entries.forEach((e, i) => {
    if (e.offset < end) {
      throw new CertTableError(
        `certificate table entry ${i} (${e.guid}) has offset ${hex(e.offset)} inside the entry list, which ends at ${hex(end)}`,
      );
    }
    if (e.offset + e.length > bytes.length) {
      throw new CertTableError(
        `certificate table entry ${i} (${e.guid}) covers ${hex(e.offset)}..${hex(e.offset + e.length)}, outside the ${hex(bytes.length)}-byte buffer`,
      );
    }
  });
  return entries;
}

/** The certificates of a table (copies), in table order; throws CertTableError if malformed. */
export function parseCertTable(bytes: Uint8Array): CertTableEntry[] {
  return readCertTableHeader(bytes).map((e) => ({
    guid: e.guid,
    data: bytes.slice(e.offset, e.offset + e.length),
  }));
}

// ---------------------------------------------------------------------------------------------
// AMD KDS certificate extensions (VCEK/VLEK), arc 1.3.6.1.4.1.3704.1

const KDS_ARC = '1.3.6.1.4.1.3704.1';

export const AMD_KDS_OID = {
  structVersion: `${KDS_ARC}.1`,
  productName: `${KDS_ARC}.2`,
  blSPL: `${KDS_ARC}.3.1`,
  teeSPL: `${KDS_ARC}.3.2`,
  snpSPL: `${KDS_ARC}.3.3`,
  spl4: `${KDS_ARC}.3.4`,
  spl5: `${KDS_ARC}.3.5`,
  spl6: `${KDS_ARC}.3.6`,
  spl7: `${KDS_ARC}.3.7`,
  ucodeSPL: `${KDS_ARC}.3.8`,
  /** Turin only. */
  fmcSPL: `${KDS_ARC}.3.9`,
  /** VCEK: the 64-byte CHIP_ID. */
  hwID: `${KDS_ARC}.4`,
  /** VLEK: the CSP's ID, instead of hwID. */
  cspID: `${KDS_ARC}.5`,
} as const;

// ---------------------------------------------------------------------------------------------
// AMD ECDSA public key and signature formats

/** ECDSA scalars and coordinates are stored little-endian, zero-padded to 72 bytes. */
export const SEV_ECDSA_COMPONENT_SIZE = 72;
/** Big-endian size of a P-384 scalar or coordinate. */
export const P384_SCALAR_SIZE = 48;
/** CURVE of the public key format (SNP ABI "ECC Curve Name Encodings"). */
export const SEV_ECDSA_CURVE_P384 = 2;
/** ID_KEY_ALGO / AUTH_KEY_ALGO: ECDSA P-384 with SHA-384. */
export const ID_KEY_ALGO_ECDSA_P384_SHA384 = 1;
export const SEV_ECDSA_PUBKEY_SIZE = 0x404;
export const SEV_ECDSA_SIGNATURE_SIZE = 0x200;

// SNP ABI, Table "ECDSA Public Key Format". ID_KEY_DIGEST is SHA-384 of all 0x404 bytes.
export const SEV_ECDSA_PUBKEY = defineStruct('SEV_ECDSA_PUBKEY', SEV_ECDSA_PUBKEY_SIZE, {
  curve: { offset: 0x000, type: 'u32', doc: '2 = P-384' },
  qx: { offset: 0x004, type: 'bytes', size: SEV_ECDSA_COMPONENT_SIZE, doc: 'LE' },
  qy: { offset: 0x04c, type: 'bytes', size: SEV_ECDSA_COMPONENT_SIZE, doc: 'LE' },
  reserved094: { offset: 0x094, type: 'bytes', size: SEV_ECDSA_PUBKEY_SIZE - 0x094 },
});

// SNP ABI, Table "ECDSA Signature Format" (also the report's signature).
export const SEV_ECDSA_SIGNATURE = defineStruct('SEV_ECDSA_SIGNATURE', SEV_ECDSA_SIGNATURE_SIZE, {
  r: { offset: 0x000, type: 'bytes', size: SEV_ECDSA_COMPONENT_SIZE, doc: 'LE' },
  s: { offset: 0x048, type: 'bytes', size: SEV_ECDSA_COMPONENT_SIZE, doc: 'LE' },
  reserved090: { offset: 0x090, type: 'bytes', size: SEV_ECDSA_SIGNATURE_SIZE - 0x090 },
});

/**
 * A stored 72-byte little-endian component (R, S, Qx, Qy) as a `size`-byte big-endian integer,
 * the form WebCrypto and DER use. Refuses a value that does not fit `size` bytes.
 */
export function sevComponentToBigEndian(le: Uint8Array, size = P384_SCALAR_SIZE): Uint8Array {
  if (le.length !== SEV_ECDSA_COMPONENT_SIZE) {
    throw new FieldRangeError(
      `an ECDSA component is stored in ${SEV_ECDSA_COMPONENT_SIZE} bytes, got ${le.length}`,
    );
  }
  if (!Number.isInteger(size) || size < 1 || size > SEV_ECDSA_COMPONENT_SIZE) {
    throw new FieldRangeError(`big-endian size ${size} is outside 1..${SEV_ECDSA_COMPONENT_SIZE}`);
  }
  if (le.subarray(size).some((b) => b !== 0)) {
    throw new FieldRangeError(`ECDSA component does not fit ${size} big-endian bytes`);
  }
  return le.slice(0, size).reverse();
}

/**
 * A big-endian integer (any length; leading zero bytes, as in DER, are ignored) as the stored
 * 72-byte little-endian component.
 */
export function bigEndianToSevComponent(be: Uint8Array): Uint8Array {
  let start = 0;
  while (start < be.length && be[start] === 0) start++;
  const digits = be.subarray(start);
  if (digits.length > SEV_ECDSA_COMPONENT_SIZE) {
    throw new FieldRangeError(
      `a ${digits.length}-byte integer does not fit a ${SEV_ECDSA_COMPONENT_SIZE}-byte ECDSA component`,
    );
  }
  const out = new Uint8Array(SEV_ECDSA_COMPONENT_SIZE);
  out.set(digits.slice().reverse());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Launch identity: ID block and ID auth info (SNP_LAUNCH_FINISH inputs)

export const ID_BLOCK_VERSION = 1;

// SNP ABI, Table "ID_BLOCK".
export const ID_BLOCK = defineStruct('ID_BLOCK', 0x60, {
  ld: { offset: 0x00, type: 'bytes', size: 48, doc: 'expected launch digest' },
  familyId: { offset: 0x30, type: 'bytes', size: 16, doc: 'FAMILY_ID' },
  imageId: { offset: 0x40, type: 'bytes', size: 16, doc: 'IMAGE_ID' },
  version: { offset: 0x50, type: 'u32', doc: 'VERSION, 1' },
  guestSvn: { offset: 0x54, type: 'u32', doc: 'GUEST_SVN' },
  policy: { offset: 0x58, type: 'u64', doc: 'guest policy' },
});

// SNP ABI, Table "ID_AUTH_INFO".
export const ID_AUTH_INFO = defineStruct('ID_AUTH_INFO', 0x1000, {
  idKeyAlgo: { offset: 0x000, type: 'u32', doc: 'ID_KEY_ALGO' },
  authKeyAlgo: { offset: 0x004, type: 'u32', doc: 'AUTH_KEY_ALGO' },
  reserved008: { offset: 0x008, type: 'bytes', size: 0x38 },
  idBlockSig: {
    offset: 0x040,
    type: 'bytes',
    size: SEV_ECDSA_SIGNATURE_SIZE,
    doc: 'ID_BLOCK_SIG, by ID_KEY',
  },
  idKey: { offset: 0x240, type: 'bytes', size: SEV_ECDSA_PUBKEY_SIZE, doc: 'ID_KEY' },
  reserved644: { offset: 0x644, type: 'bytes', size: 0x3c },
  idKeySig: {
    offset: 0x680,
    type: 'bytes',
    size: SEV_ECDSA_SIGNATURE_SIZE,
    doc: 'ID_KEY_SIG, by AUTHOR_KEY',
  },
  authorKey: { offset: 0x880, type: 'bytes', size: SEV_ECDSA_PUBKEY_SIZE, doc: 'AUTHOR_KEY' },
  reservedC84: { offset: 0xc84, type: 'bytes', size: 0x1000 - 0xc84 },
});
