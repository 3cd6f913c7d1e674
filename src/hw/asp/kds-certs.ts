// X.509 certificates in the formats of AMD's Key Distribution Service: the ARK (self-signed
// root), the ASK (the ARK-signed intermediate that signs VCEKs) and the VCEK (the chip's
// report-signing key at one TCB). Every field imitates AMD's genuine Milan certificates
// (test/fixtures/amd-milan, decoded in reference/sev-snp-abi.md section 4): the DN and its RDN
// order, serial numbers, validity spans, which extensions each carries and in what order, and
// RSASSA-PSS SHA-384 signatures whose AlgorithmIdentifier is byte-identical to AMD's. The VCEK
// carries only the AMD KDS extensions (go-sev-guest rejects any other).
//
// Dates are explicit inputs (a verifier checks them against real time, so the caller decides);
// the PSS salt is an input too, so a certificate is a function of its inputs.

import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  Name,
  RelativeDistinguishedName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_keyUsage,
  id_ce_subjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { AMD_KDS_OID } from '../../arch/index.js';
import { TCB_VERSION, type ProductName } from '../../arch/index.js';
import { derIa5String, derInteger, derTlv } from './der.js';
import { PSS_SALT_LENGTH, signRsaPssSha384 } from './rsa.js';

/** Serial numbers of AMD's certificates: ARK 0x10000, ASK 0x10001, every VCEK 0. */
export const KDS_CERT_SERIAL = { ARK: 0x10000n, ASK: 0x10001n, VCEK: 0n } as const;
/** Validity spans in years: 25 for ARK and ASK, 7 for a VCEK. */
export const KDS_CERT_VALIDITY_YEARS = { ARK: 25, ASK: 25, VCEK: 7 } as const;
export const VCEK_COMMON_NAME = 'SEV-VCEK';
export const CHIP_ID_SIZE = 64;

export function arkCommonName(product: ProductName): string {
  return `ARK-${product}`;
}

export function askCommonName(product: ProductName): string {
  return `SEV-${product}`;
}

/**
 * The CRL distribution point of ARK and ASK. It names AMD's real KDS because go-sev-guest
 * accepts no other value; nothing here serves or fetches it.
 */
export function kdsCrlUrl(product: ProductName): string {
  return `https://kdsintf.amd.com/vcek/v1/${product}/crl`;
}

/** The VCEK productName extension for a product line: "<Product>-B0" as on AMD's Milan VCEK. */
export function defaultProductName(product: ProductName): string {
  return `${product}-B0`;
}

/** A certificate that cannot be built from its inputs; the message says which input. */
export class KdsCertificateError extends Error {
  override readonly name = 'KdsCertificateError';
}

// ---------------------------------------------------------------------------------------------
// Fixed encodings

const OID = {
  rsassaPss: '1.2.840.113549.1.1.10',
  commonName: '2.5.4.3',
  country: '2.5.4.6',
  locality: '2.5.4.7',
  state: '2.5.4.8',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
} as const;

// DER of the OIDs inside the PSS parameters.
const OID_SHA384 = Uint8Array.of(0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02);
const OID_MGF1 = Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08);
const DER_NULL = Uint8Array.of(0x05, 0x00);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const seq = (...parts: Uint8Array[]): Uint8Array => derTlv(0x30, concat(...parts));
const explicit = (n: number, inner: Uint8Array): Uint8Array => derTlv(0xa0 | n, inner);

/**
 * RSASSA-PSS-params as AMD writes them: hash SHA-384 and MGF1-SHA-384 with explicit NULL
 * parameters, salt 0x30, and the trailer field 1 written out although it is the DEFAULT.
 */
const PSS_SHA384_PARAMS = (() => {
  const sha384 = seq(OID_SHA384, DER_NULL);
  return seq(
    explicit(0, sha384),
    explicit(1, seq(OID_MGF1, sha384)),
    explicit(2, derInteger(PSS_SALT_LENGTH)),
    explicit(3, derInteger(1)),
  );
})();

function pssAlgorithm(): AlgorithmIdentifier {
  return new AlgorithmIdentifier({
    algorithm: OID.rsassaPss,
    parameters: PSS_SHA384_PARAMS.slice().buffer,
  });
}

/** AMD's DN: OU, C (PrintableString), L, ST, O, CN, one attribute per RDN, in that order. */
export function amdName(commonName: string): Name {
  const rdn = (type: string, value: AttributeValue): RelativeDistinguishedName =>
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
  const utf8 = (text: string): AttributeValue => new AttributeValue({ utf8String: text });
  return new Name([
    rdn(OID.organizationalUnit, utf8('Engineering')),
    rdn(OID.country, new AttributeValue({ printableString: 'US' })),
    rdn(OID.locality, utf8('Santa Clara')),
    rdn(OID.state, utf8('CA')),
    rdn(OID.organization, utf8('Advanced Micro Devices')),
    rdn(OID.commonName, utf8(commonName)),
  ]);
}

// KeyUsage BIT STRINGs exactly as AMD encodes them. The ASK's keeps AMD's "1 unused bit" where
// minimal DER would say 2; imitating it keeps the bytes identical to a genuine ASK.
const KEY_USAGE_CERT_SIGN_CRL_SIGN = Uint8Array.of(0x03, 0x02, 0x01, 0x06);
const KEY_USAGE_CERT_SIGN = Uint8Array.of(0x03, 0x02, 0x01, 0x04);

function extension(oid: string, value: Uint8Array | ArrayBuffer, critical = false): Extension {
  const bytes = value instanceof Uint8Array ? value : new Uint8Array(value);
  return new Extension({ extnID: oid, critical, extnValue: new OctetString(bytes) });
}

function crlDistributionPoints(product: ProductName): ArrayBuffer {
  return AsnConvert.serialize(
    new CRLDistributionPoints([
      new DistributionPoint({
        distributionPoint: new DistributionPointName({
          fullName: [new GeneralName({ uniformResourceIdentifier: kdsCrlUrl(product) })],
        }),
      }),
    ]),
  );
}

/** The public half of a key (a public key is returned as it is). */
function publicOf(key: KeyObject): KeyObject {
  return key.type === 'public' ? key : createPublicKey(key);
}

function spkiOf(key: KeyObject): SubjectPublicKeyInfo {
  const der = publicOf(key).export({ type: 'spki', format: 'der' });
  return AsnConvert.parse(der, SubjectPublicKeyInfo);
}

/**
 * The key identifier AMD uses (RFC 5280 section 4.2.1.2, method 1): SHA-1 of the BIT STRING
 * contents of the subject public key, i.e. of the PKCS#1 RSAPublicKey.
 */
export function keyIdentifier(publicKey: KeyObject): Uint8Array {
  const spki = spkiOf(publicKey);
  return new Uint8Array(createHash('sha1').update(new Uint8Array(spki.subjectPublicKey)).digest());
}

function addYears(date: Date, years: number): Date {
  return new Date(
    Date.UTC(
      date.getUTCFullYear() + years,
      date.getUTCMonth(),
      date.getUTCDate(),
      date.getUTCHours(),
      date.getUTCMinutes(),
      date.getUTCSeconds(),
    ),
  );
}

function checkDate(what: string, date: Date): Date {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new KdsCertificateError(`${what}: notBefore is not a valid date`);
  }
  const whole = new Date(date.getTime());
  whole.setUTCMilliseconds(0);
  return whole;
}

function checkRsaKey(what: string, key: KeyObject, type: 'public' | 'private'): void {
  if (key.asymmetricKeyType !== 'rsa' || (type === 'private' && key.type !== 'private')) {
    throw new KdsCertificateError(`${what} must be an RSA ${type} key`);
  }
}

function checkSalt(what: string, salt: Uint8Array): void {
  if (salt.length !== PSS_SALT_LENGTH) {
    throw new KdsCertificateError(`${what}: the PSS salt is ${PSS_SALT_LENGTH} bytes`);
  }
}

function integerContents(n: bigint): ArrayBuffer {
  return derInteger(n).slice(2).buffer; // short form: tag and one length byte
}

interface TbsInput {
  readonly serial: bigint;
  readonly issuer: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly years: number;
  readonly subjectPublicKey: KeyObject;
  readonly extensions: Extension[];
}

function signCertificate(tbsInput: TbsInput, issuerKey: KeyObject, salt: Uint8Array): Uint8Array {
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: integerContents(tbsInput.serial),
    signature: pssAlgorithm(),
    issuer: amdName(tbsInput.issuer),
    validity: new Validity({
      notBefore: tbsInput.notBefore,
      notAfter: addYears(tbsInput.notBefore, tbsInput.years),
    }),
    subject: amdName(tbsInput.subject),
    subjectPublicKeyInfo: spkiOf(tbsInput.subjectPublicKey),
    extensions: new Extensions(tbsInput.extensions),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature = signRsaPssSha384(issuerKey, tbsDer, salt);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: pssAlgorithm(),
    signatureValue: signature.slice().buffer,
  });
  return new Uint8Array(AsnConvert.serialize(cert));
}

// ---------------------------------------------------------------------------------------------
// ARK, ASK, VCEK

export interface ArkCertificateInput {
  readonly product: ProductName;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly notBefore: Date;
  /** 48-byte RSASSA-PSS salt. */
  readonly salt: Uint8Array;
}

/**
 * The self-signed ARK: serial 0x10000, 25 years, extensions KeyUsage (critical; keyCertSign,
 * cRLSign), SubjectKeyIdentifier, BasicConstraints (critical; CA), CRL distribution point.
 */
export function buildArkCertificate(input: ArkCertificateInput): Uint8Array {
  checkRsaKey('ARK public key', input.publicKey, 'public');
  checkRsaKey('ARK private key', input.privateKey, 'private');
  checkSalt('ARK', input.salt);
  const name = arkCommonName(input.product);
  return signCertificate(
    {
      serial: KDS_CERT_SERIAL.ARK,
      issuer: name,
      subject: name,
      notBefore: checkDate('ARK', input.notBefore),
      years: KDS_CERT_VALIDITY_YEARS.ARK,
      subjectPublicKey: input.publicKey,
      extensions: [
        extension(id_ce_keyUsage, KEY_USAGE_CERT_SIGN_CRL_SIGN, true),
        extension(
          id_ce_subjectKeyIdentifier,
          AsnConvert.serialize(new SubjectKeyIdentifier(keyIdentifier(input.publicKey))),
        ),
        extension(
          id_ce_basicConstraints,
          AsnConvert.serialize(new BasicConstraints({ cA: true })),
          true,
        ),
        extension(id_ce_cRLDistributionPoints, crlDistributionPoints(input.product)),
      ],
    },
    input.privateKey,
    input.salt,
  );
}

export interface AskCertificateInput {
  readonly product: ProductName;
  readonly publicKey: KeyObject;
  readonly arkPublicKey: KeyObject;
  readonly arkPrivateKey: KeyObject;
  readonly notBefore: Date;
  readonly salt: Uint8Array;
}

/**
 * The ASK, signed by the ARK: serial 0x10001, 25 years, extensions SubjectKeyIdentifier,
 * AuthorityKeyIdentifier (the ARK's key id), BasicConstraints (critical; CA, pathlen 0),
 * KeyUsage (critical; keyCertSign), CRL distribution point.
 */
export function buildAskCertificate(input: AskCertificateInput): Uint8Array {
  checkRsaKey('ASK public key', input.publicKey, 'public');
  checkRsaKey('ARK public key', input.arkPublicKey, 'public');
  checkRsaKey('ARK private key', input.arkPrivateKey, 'private');
  checkSalt('ASK', input.salt);
  return signCertificate(
    {
      serial: KDS_CERT_SERIAL.ASK,
      issuer: arkCommonName(input.product),
      subject: askCommonName(input.product),
      notBefore: checkDate('ASK', input.notBefore),
      years: KDS_CERT_VALIDITY_YEARS.ASK,
      subjectPublicKey: input.publicKey,
      extensions: [
        extension(
          id_ce_subjectKeyIdentifier,
          AsnConvert.serialize(new SubjectKeyIdentifier(keyIdentifier(input.publicKey))),
        ),
        extension(
          id_ce_authorityKeyIdentifier,
          AsnConvert.serialize(
            new AuthorityKeyIdentifier({
              keyIdentifier: new KeyIdentifier(keyIdentifier(input.arkPublicKey)),
            }),
          ),
        ),
        extension(
          id_ce_basicConstraints,
          AsnConvert.serialize(new BasicConstraints({ cA: true, pathLenConstraint: 0 })),
          true,
        ),
        extension(id_ce_keyUsage, KEY_USAGE_CERT_SIGN, true),
        extension(id_ce_cRLDistributionPoints, crlDistributionPoints(input.product)),
      ],
    },
    input.arkPrivateKey,
    input.salt,
  );
}

/**
 * Refuses a TCB that a KDS certificate cannot express: go-sev-guest allows 0..127 for every
 * SPL except the microcode's (0..255).
 */
export function checkKdsTcb(tcb: bigint): void {
  if (typeof tcb !== 'bigint' || tcb < 0n || tcb > 0xffff_ffff_ffff_ffffn) {
    throw new KdsCertificateError(`TCB_VERSION ${String(tcb)} is not a u64`);
  }
  const parts = TCB_VERSION.decode(tcb);
  for (const [name, value] of Object.entries(parts)) {
    if (name !== 'microcode' && value > 127n) {
      throw new KdsCertificateError(
        `TCB_VERSION ${name} SPL ${value} exceeds 127, which KDS certificates cannot carry`,
      );
    }
  }
}

/** Refuses a CHIP_ID that is not 64 bytes or that snpguest would misread as DER (see below). */
export function checkChipIdForHwid(chipId: Uint8Array): void {
  if (chipId.length !== CHIP_ID_SIZE) {
    throw new KdsCertificateError(`CHIP_ID is ${CHIP_ID_SIZE} bytes, got ${chipId.length}`);
  }
  // The hwID extension holds the raw 64 bytes (no OCTET STRING wrapper) as on AMD's VCEKs;
  // snpguest parses it as DER when it starts with an OCTET STRING (0x04) or INTEGER (0x02) tag.
  if (chipId[0] === 0x02 || chipId[0] === 0x04) {
    throw new KdsCertificateError(
      `CHIP_ID starts with 0x0${chipId[0]}, which verifiers misread as a DER tag in hwID`,
    );
  }
}

export interface VcekCertificateInput {
  readonly product: ProductName;
  /** The productName extension, e.g. "Milan-B0". */
  readonly productName: string;
  /** The VCEK's P-384 public key. */
  readonly publicKey: KeyObject;
  readonly askPrivateKey: KeyObject;
  readonly chipId: Uint8Array;
  /** The TCB_VERSION the VCEK was derived for (the report's REPORTED_TCB). */
  readonly tcb: bigint;
  readonly notBefore: Date;
  readonly salt: Uint8Array;
}

/** The AMD KDS extensions of a VCEK, in the order AMD's certificates list them. */
export function vcekExtensions(productName: string, tcb: bigint, chipId: Uint8Array): Extension[] {
  checkKdsTcb(tcb);
  checkChipIdForHwid(chipId);
  const spl = TCB_VERSION.decode(tcb);
  const int = (oid: string, v: bigint): Extension => extension(oid, derInteger(v));
  return [
    extension(AMD_KDS_OID.structVersion, derInteger(0)),
    extension(AMD_KDS_OID.productName, derIa5String(productName)),
    int(AMD_KDS_OID.blSPL, spl.bootLoader),
    int(AMD_KDS_OID.teeSPL, spl.tee),
    int(AMD_KDS_OID.spl4, spl.spl4),
    int(AMD_KDS_OID.spl5, spl.spl5),
    int(AMD_KDS_OID.spl6, spl.spl6),
    int(AMD_KDS_OID.spl7, spl.spl7),
    int(AMD_KDS_OID.snpSPL, spl.snp),
    int(AMD_KDS_OID.ucodeSPL, spl.microcode),
    extension(AMD_KDS_OID.hwID, chipId),
  ];
}

/**
 * A VCEK certificate, signed by the ASK: serial 0, 7 years, subject CN=SEV-VCEK, issuer
 * CN=SEV-<product>, an ECDSA P-384 key, and only AMD's KDS extensions.
 */
export function buildVcekCertificate(input: VcekCertificateInput): Uint8Array {
  const details = input.publicKey.asymmetricKeyDetails;
  if (input.publicKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    throw new KdsCertificateError('the VCEK public key must be an ECDSA P-384 key');
  }
  checkRsaKey('ASK private key', input.askPrivateKey, 'private');
  checkSalt('VCEK', input.salt);
  return signCertificate(
    {
      serial: KDS_CERT_SERIAL.VCEK,
      issuer: askCommonName(input.product),
      subject: VCEK_COMMON_NAME,
      notBefore: checkDate('VCEK', input.notBefore),
      years: KDS_CERT_VALIDITY_YEARS.VCEK,
      subjectPublicKey: publicOf(input.publicKey),
      extensions: vcekExtensions(input.productName, input.tcb, input.chipId),
    },
    input.askPrivateKey,
    input.salt,
  );
}

// ---------------------------------------------------------------------------------------------
// PEM

/** DER to PEM with 64-column base64 lines. */
export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The DER of every PEM block with `label`, in order. */
export function pemBlocks(pem: string, label = 'CERTIFICATE'): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(re)) {
    out.push(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  }
  return out;
}

/** The KDS cert_chain document: the ASK then the ARK, PEM. */
export function kdsCertChainPem(askDer: Uint8Array, arkDer: Uint8Array): string {
  return derToPem(askDer) + derToPem(arkDer);
}
