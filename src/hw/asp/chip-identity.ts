// The identity of one simulated AMD chip: what the silicon and AMD's KDS know about it. A chip
// has a product line, a 64-byte secret fused at manufacture, its CHIP_ID (derived from that
// secret), its installed firmware (TCB_VERSION and SNP firmware version), and the AMD root
// (ARK) and signing (ASK) keys and certificates that vouch for it. The VCEK is not stored: it
// is derived from (chip secret, TCB), see vcek.ts.
//
// RSA-4096 generation takes about a second per key, so the ARK and ASK are generated once and
// persisted with the rest as a versioned JSON document (chipIdentityToJson/FromJson). The
// document holds private keys: whoever reads it can forge this machine's attestations.

import { createHmac, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { bytesToHex, hexToBytes } from '../../arch/index.js';
import { PRODUCT_CPUID, TCB_VERSION, type ProductName } from '../../arch/index.js';
import { randomBytesFrom, type RandomSource } from '../random.js';
import {
  arkCommonName,
  askCommonName,
  buildArkCertificate,
  buildAskCertificate,
  checkChipIdForHwid,
  checkKdsTcb,
  defaultProductName,
  derToPem,
  KdsCertificateError,
  pemBlocks,
} from './kds-certs.js';
import { AMD_RSA_MODULUS_BITS, generateRsaKeyPair, PSS_SALT_LENGTH } from './rsa.js';

export const CHIP_SECRET_SIZE = 64;
export const CHIP_ID_SIZE = 64;

/** SNP firmware version as the report's CURRENT_/COMMITTED_ MAJOR, MINOR, BUILD bytes carry it. */
export interface FirmwareVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
}

/** An RSA key pair with its certificate (DER). */
export interface CertifiedKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly certificate: Uint8Array;
}

export interface ChipIdentity {
  readonly product: ProductName;
  /** The VCEK productName extension, e.g. "Milan-B0". */
  readonly productName: string;
  /** The chip-unique secret every chip key is derived from. */
  readonly chipSecret: Uint8Array;
  /** CHIP_ID of reports and hwID of VCEK certificates, derived from chipSecret. */
  readonly chipId: Uint8Array;
  /** The installed (current = committed) TCB_VERSION. */
  readonly tcb: bigint;
  readonly firmware: FirmwareVersion;
  /** When the ARK and ASK were issued; VCEK certificates are dated from it too. */
  readonly issuedAt: Date;
  readonly ark: CertifiedKey;
  readonly ask: CertifiedKey;
}

/**
 * Default TCBs. Milan: BL 3, TEE 0, SNP 8, microcode 115 (0x73), a Milan level of the 1.55
 * firmware generation. Genoa: BL 7, TEE 0, SNP 14, microcode 72 (0x48), representative values
 * (any values <= 127, microcode <= 255, are accepted by verifiers).
 */
export const DEFAULT_TCB: Readonly<Record<ProductName, bigint>> = {
  Milan: TCB_VERSION.encode({ bootLoader: 3, tee: 0, snp: 8, microcode: 115 }),
  Genoa: TCB_VERSION.encode({ bootLoader: 7, tee: 0, snp: 14, microcode: 72 }),
};

/** SNP firmware 1.55 build 21: new enough for version-3 reports. */
export const DEFAULT_FIRMWARE: Readonly<Record<ProductName, FirmwareVersion>> = {
  Milan: { major: 1, minor: 55, build: 21 },
  Genoa: { major: 1, minor: 55, build: 21 },
};

export interface ChipIdentityOptions {
  /** Product line; Milan by default. */
  readonly product?: ProductName;
  /** VCEK productName; "<product>-B0" by default, as on AMD's genuine Milan VCEK. */
  readonly productName?: string;
  readonly tcb?: bigint;
  readonly firmware?: FirmwareVersion;
  /** Issue date of the certificates. Explicit: verifiers compare it with real time. */
  readonly issuedAt: Date;
}

/** A chip identity (or its document) that is not well formed; the message names the field. */
export class ChipIdentityError extends Error {
  override readonly name = 'ChipIdentityError';
}

const CHIP_ID_LABEL = new TextEncoder().encode('svsm-ts CHIP_ID v1');

/**
 * CHIP_ID from the chip secret: HMAC-SHA-512, re-derived with a counter in the rare case its
 * first byte is 0x02 or 0x04 (which snpguest would misread as a DER tag in the VCEK's hwID).
 */
export function deriveChipId(chipSecret: Uint8Array): Uint8Array {
  checkChipSecret(chipSecret);
  for (let counter = 0; ; counter++) {
    const id = new Uint8Array(
      createHmac('sha512', chipSecret)
        .update(CHIP_ID_LABEL)
        .update(Uint8Array.of(counter))
        .digest(),
    );
    if (id[0] !== 0x02 && id[0] !== 0x04) return id;
  }
}

function checkChipSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length !== CHIP_SECRET_SIZE) {
    throw new ChipIdentityError(`the chip secret is ${CHIP_SECRET_SIZE} bytes`);
  }
}

function checkFirmware(fw: FirmwareVersion, where = 'firmware'): void {
  for (const k of ['major', 'minor', 'build'] as const) {
    const v = fw[k];
    if (!Number.isInteger(v) || v < 0 || v > 0xff) {
      throw new ChipIdentityError(`${where}.${k} must be an integer 0..255, got ${String(v)}`);
    }
  }
}

function checkProductName(name: string, where = 'productName'): void {
  if (typeof name !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(name)) {
    throw new ChipIdentityError(`${where} must be 1..64 printable ASCII characters`);
  }
}

function checkIssuedAt(date: Date, where = 'issuedAt'): void {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new ChipIdentityError(`${where} is not a valid date`);
  }
}

function checkTcb(tcb: bigint, where = 'tcb'): void {
  try {
    checkKdsTcb(tcb);
  } catch (e) {
    if (e instanceof KdsCertificateError) throw new ChipIdentityError(`${where}: ${e.message}`);
    throw e;
  }
}

function productOf(value: unknown, where = 'product'): ProductName {
  if (typeof value !== 'string' || !Object.hasOwn(PRODUCT_CPUID, value)) {
    const known = Object.keys(PRODUCT_CPUID).join(', ');
    throw new ChipIdentityError(`${where} must be one of ${known}, got ${JSON.stringify(value)}`);
  }
  return value as ProductName;
}

/**
 * A new chip: secret, ARK and ASK key pairs and certificates, every random byte from `random`
 * (so a seeded source gives the same chip every time). Takes a few seconds: two RSA-4096 keys.
 */
export function createChipIdentity(
  random: RandomSource,
  options: ChipIdentityOptions,
): ChipIdentity {
  const product = productOf(options.product ?? 'Milan');
  const productName = options.productName ?? defaultProductName(product);
  const tcb = options.tcb ?? DEFAULT_TCB[product];
  const firmware = options.firmware ?? DEFAULT_FIRMWARE[product];
  checkProductName(productName);
  checkTcb(tcb);
  checkFirmware(firmware);
  checkIssuedAt(options.issuedAt);
  const issuedAt = new Date(options.issuedAt.getTime());
  issuedAt.setUTCMilliseconds(0);

  const chipSecret = randomBytesFrom(random, CHIP_SECRET_SIZE);
  const arkKeys = generateRsaKeyPair(random, AMD_RSA_MODULUS_BITS);
  const askKeys = generateRsaKeyPair(random, AMD_RSA_MODULUS_BITS);
  const arkCert = buildArkCertificate({
    product,
    publicKey: arkKeys.publicKey,
    privateKey: arkKeys.privateKey,
    notBefore: issuedAt,
    salt: randomBytesFrom(random, PSS_SALT_LENGTH),
  });
  const askCert = buildAskCertificate({
    product,
    publicKey: askKeys.publicKey,
    arkPublicKey: arkKeys.publicKey,
    arkPrivateKey: arkKeys.privateKey,
    notBefore: issuedAt,
    salt: randomBytesFrom(random, PSS_SALT_LENGTH),
  });
  return {
    product,
    productName,
    chipSecret,
    chipId: deriveChipId(chipSecret),
    tcb,
    firmware: { ...firmware },
    issuedAt,
    ark: { ...arkKeys, certificate: arkCert },
    ask: { ...askKeys, certificate: askCert },
  };
}

/** The same chip with other firmware installed (a TCB update changes the VCEK, not the chip). */
export function withFirmware(
  identity: ChipIdentity,
  tcb: bigint,
  firmware: FirmwareVersion = identity.firmware,
): ChipIdentity {
  checkTcb(tcb);
  checkFirmware(firmware);
  return { ...identity, tcb, firmware: { ...firmware } };
}

// ---------------------------------------------------------------------------------------------
// The JSON document

export const CHIP_IDENTITY_FORMAT = 'svsm-ts chip identity';
export const CHIP_IDENTITY_VERSION = 1;

const TCB_FIELDS = [
  'bootLoader',
  'tee',
  'spl4',
  'spl5',
  'spl6',
  'spl7',
  'snp',
  'microcode',
] as const;

interface KeyDocument {
  privateKey: string;
  certificate: string;
}

interface ChipIdentityDocument {
  format: string;
  version: number;
  product: ProductName;
  productName: string;
  chipSecret: string;
  chipId: string;
  tcb: Record<(typeof TCB_FIELDS)[number], number>;
  firmware: FirmwareVersion;
  issuedAt: string;
  ark: KeyDocument;
  ask: KeyDocument;
}

function keyDocument(key: CertifiedKey): KeyDocument {
  return {
    privateKey: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certificate: derToPem(key.certificate),
  };
}

/** The identity as a JSON document (pretty-printed, newline-terminated). */
export function chipIdentityToJson(identity: ChipIdentity): string {
  const parts = TCB_VERSION.decode(identity.tcb);
  const tcb = Object.fromEntries(TCB_FIELDS.map((k) => [k, Number(parts[k])])) as Record<
    (typeof TCB_FIELDS)[number],
    number
  >;
  const doc: ChipIdentityDocument = {
    format: CHIP_IDENTITY_FORMAT,
    version: CHIP_IDENTITY_VERSION,
    product: identity.product,
    productName: identity.productName,
    chipSecret: bytesToHex(identity.chipSecret),
    chipId: bytesToHex(identity.chipId),
    tcb,
    firmware: {
      major: identity.firmware.major,
      minor: identity.firmware.minor,
      build: identity.firmware.build,
    },
    issuedAt: identity.issuedAt.toISOString(),
    ark: keyDocument(identity.ark),
    ask: keyDocument(identity.ask),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function objectAt(v: unknown, where: string, keys: readonly string[]): Json {
  if (!isObject(v)) throw new ChipIdentityError(`${where} must be an object`);
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new ChipIdentityError(`${where} has an unknown field "${k}"`);
  }
  for (const k of keys) {
    if (!(k in v)) throw new ChipIdentityError(`${where} lacks the field "${k}"`);
  }
  return v;
}

function path(where: string, key: string): string {
  return where === '' ? key : `${where}.${key}`;
}

function stringAt(obj: Json, key: string, where: string): string {
  const v = obj[key];
  if (typeof v !== 'string') throw new ChipIdentityError(`${path(where, key)} must be a string`);
  return v;
}

function byteAt(obj: Json, key: string, where: string, max = 0xff): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new ChipIdentityError(`${path(where, key)} must be an integer 0..${max}`);
  }
  return v;
}

function hexAt(obj: Json, key: string, size: number): Uint8Array {
  const text = stringAt(obj, key, '');
  if (!/^[0-9a-fA-F]*$/.test(text) || text.length !== 2 * size) {
    throw new ChipIdentityError(`${key} must be ${size} bytes as ${2 * size} hex digits`);
  }
  return hexToBytes(text);
}

function certifiedKeyAt(
  v: unknown,
  where: string,
  expectedSubject: string,
  issuerKey: KeyObject | undefined,
): CertifiedKey {
  const obj = objectAt(v, where, ['privateKey', 'certificate']);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(stringAt(obj, 'privateKey', where));
  } catch (e) {
    if (e instanceof ChipIdentityError) throw e;
    throw new ChipIdentityError(`${where}.privateKey is not a PEM private key`);
  }
  if (
    privateKey.asymmetricKeyType !== 'rsa' ||
    privateKey.asymmetricKeyDetails?.modulusLength !== AMD_RSA_MODULUS_BITS
  ) {
    throw new ChipIdentityError(`${where}.privateKey must be an RSA-${AMD_RSA_MODULUS_BITS} key`);
  }
  const publicKey = createPublicKey(privateKey);
  const blocks = pemBlocks(stringAt(obj, 'certificate', where));
  if (blocks.length !== 1) {
    throw new ChipIdentityError(`${where}.certificate must hold exactly one PEM certificate`);
  }
  const certificate = blocks[0]!;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certificate);
  } catch {
    throw new ChipIdentityError(`${where}.certificate is not an X.509 certificate`);
  }
  const spki = (k: KeyObject): string =>
    k.export({ type: 'spki', format: 'der' }).toString('base64');
  if (spki(x509.publicKey) !== spki(publicKey)) {
    throw new ChipIdentityError(`${where}.certificate does not certify ${where}.privateKey`);
  }
  if (!x509.subject.split('\n').includes(`CN=${expectedSubject}`)) {
    throw new ChipIdentityError(`${where}.certificate subject is not CN=${expectedSubject}`);
  }
  if (!x509.verify(issuerKey ?? publicKey)) {
    throw new ChipIdentityError(
      `${where}.certificate signature does not verify with the ${issuerKey ? 'ARK' : 'own'} key`,
    );
  }
  return { privateKey, publicKey, certificate };
}

/** Reads a chip identity document; throws ChipIdentityError naming the first bad field. */
export function chipIdentityFromJson(text: string): ChipIdentity {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ChipIdentityError(`not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isObject(parsed)) throw new ChipIdentityError('the document must be a JSON object');
  if (parsed.format !== CHIP_IDENTITY_FORMAT) {
    throw new ChipIdentityError(`format must be "${CHIP_IDENTITY_FORMAT}"`);
  }
  if (parsed.version !== CHIP_IDENTITY_VERSION) {
    throw new ChipIdentityError(
      `unsupported version ${JSON.stringify(parsed.version)} (this build reads version ${CHIP_IDENTITY_VERSION})`,
    );
  }
  const doc = objectAt(parsed, 'the document', [
    'format',
    'version',
    'product',
    'productName',
    'chipSecret',
    'chipId',
    'tcb',
    'firmware',
    'issuedAt',
    'ark',
    'ask',
  ]);
  const product = productOf(doc.product);
  const productName = stringAt(doc, 'productName', '');
  checkProductName(productName);
  const chipSecret = hexAt(doc, 'chipSecret', CHIP_SECRET_SIZE);
  const chipId = deriveChipId(chipSecret);
  if (bytesToHex(hexAt(doc, 'chipId', CHIP_ID_SIZE)) !== bytesToHex(chipId)) {
    throw new ChipIdentityError('chipId does not match the one derived from chipSecret');
  }
  checkChipIdForHwid(chipId);

  const tcbObj = objectAt(doc.tcb, 'tcb', TCB_FIELDS);
  const tcb = TCB_VERSION.encode(
    Object.fromEntries(TCB_FIELDS.map((k) => [k, byteAt(tcbObj, k, 'tcb')])),
  );
  checkTcb(tcb);
  const fwObj = objectAt(doc.firmware, 'firmware', ['major', 'minor', 'build']);
  const firmware: FirmwareVersion = {
    major: byteAt(fwObj, 'major', 'firmware'),
    minor: byteAt(fwObj, 'minor', 'firmware'),
    build: byteAt(fwObj, 'build', 'firmware'),
  };
  const issuedText = stringAt(doc, 'issuedAt', '');
  const issuedAt = new Date(issuedText);
  if (!/^\d{4}-\d\d-\d\dT/.test(issuedText)) {
    throw new ChipIdentityError('issuedAt must be an ISO 8601 date-time');
  }
  checkIssuedAt(issuedAt);

  const ark = certifiedKeyAt(doc.ark, 'ark', arkCommonName(product), undefined);
  const ask = certifiedKeyAt(doc.ask, 'ask', askCommonName(product), ark.publicKey);
  return { product, productName, chipSecret, chipId, tcb, firmware, issuedAt, ark, ask };
}
