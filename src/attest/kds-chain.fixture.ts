// Test material: self-made ARK/ASK/VCEK certificates in AMD's KDS shapes (RSA-2048 instead of
// RSA-4096 for speed; same names, PSS parameters and extensions), and report re-signing, so tests
// can build chains and reports that differ from the genuine ones in exactly one way.

import { constants, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  Extension,
  Extensions,
  id_ce_basicConstraints,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import { ATTESTATION_REPORT, hexToBytes, REPORT_SIGNED_LENGTH } from '../arch/index.js';
import { AMD_KDS_OID, bigEndianToSevComponent } from '../arch/index.js';

/** AMD's RSASSA-PSS parameters, byte for byte as in AMD's certificates (trailer field explicit). */
export const AMD_PSS_ALGORITHM_HEX =
  '304606092a864886f70d01010a3039a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130a303020101';

/** AMD's subject/issuer DN with the given CN (reference/sev-snp-abi.md section 4.1). */
export function amdName(cn: string): Name {
  const rdn = (type: string, value: AttributeValue): RelativeDistinguishedName =>
    new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value })]);
  return new Name([
    rdn('2.5.4.11', new AttributeValue({ utf8String: 'Engineering' })),
    rdn('2.5.4.6', new AttributeValue({ printableString: 'US' })),
    rdn('2.5.4.7', new AttributeValue({ utf8String: 'Santa Clara' })),
    rdn('2.5.4.8', new AttributeValue({ utf8String: 'CA' })),
    rdn('2.5.4.10', new AttributeValue({ utf8String: 'Advanced Micro Devices' })),
    rdn('2.5.4.3', new AttributeValue({ utf8String: cn })),
  ]);
}

export interface Issuer {
  readonly name: Name;
  readonly privateKey: KeyObject;
}

export interface MadeCert {
  readonly der: Uint8Array;
  readonly name: Name;
  readonly privateKey: KeyObject;
}

export type SignatureStyle = 'amd-pss' | 'pss-salt-32' | 'pkcs1-sha384';

export interface CertOptions {
  readonly subject: Name;
  readonly issuer?: Issuer | undefined;
  /** The issuer name written into the certificate, when it should differ from the issuer's. */
  readonly issuerName?: Name | undefined;
  readonly key: { publicKey: KeyObject; privateKey: KeyObject };
  readonly ca?: boolean | undefined;
  readonly extensions?: Extension[] | undefined;
  readonly notBefore?: Date | undefined;
  readonly notAfter?: Date | undefined;
  readonly signature?: SignatureStyle | undefined;
  readonly serial?: number | undefined;
}

function algorithm(style: SignatureStyle): AlgorithmIdentifier {
  if (style === 'pkcs1-sha384') {
    return new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.12', parameters: null });
  }
  const hex =
    style === 'pss-salt-32'
      ? AMD_PSS_ALGORITHM_HEX.replace('a203020130', 'a203020120') // [2] saltLength 48 -> 32
      : AMD_PSS_ALGORITHM_HEX;
  return AsnConvert.parse(hexToBytes(hex), AlgorithmIdentifier);
}

/** A certificate signed by `issuer` (or self-signed), in the style of AMD's KDS. */
export function makeCert(o: CertOptions): MadeCert {
  const style = o.signature ?? 'amd-pss';
  const signer: Issuer = o.issuer ?? { name: o.subject, privateKey: o.key.privateKey };
  const extensions = [...(o.extensions ?? [])];
  if (o.ca === true) {
    extensions.push(
      new Extension({
        extnID: id_ce_basicConstraints,
        critical: true,
        extnValue: new OctetString(AsnConvert.serialize(new BasicConstraints({ cA: true }))),
      }),
    );
  }
  const spki = o.key.publicKey.export({ type: 'spki', format: 'der' });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: Uint8Array.of(o.serial ?? 1).buffer,
    signature: algorithm(style),
    issuer: o.issuerName ?? signer.name,
    validity: new Validity({
      notBefore: o.notBefore ?? new Date('2022-01-01T00:00:00Z'),
      notAfter: o.notAfter ?? new Date('2045-01-01T00:00:00Z'),
    }),
    subject: o.subject,
    subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
    ...(extensions.length > 0 ? { extensions: new Extensions(extensions) } : {}),
  });
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signature =
    style === 'pkcs1-sha384'
      ? sign('sha384', tbsDer, signer.privateKey)
      : sign('sha384', tbsDer, {
          key: signer.privateKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: style === 'pss-salt-32' ? 32 : 48,
        });
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: algorithm(style),
    signatureValue: new Uint8Array(signature).buffer,
  });
  return {
    der: new Uint8Array(AsnConvert.serialize(cert)),
    name: o.subject,
    privateKey: o.key.privateKey,
  };
}

const rsaKeys: { publicKey: KeyObject; privateKey: KeyObject }[] = [];
/** The i-th RSA-2048 key pair of this test process (made once, reused). */
export function rsaKey(i: number): { publicKey: KeyObject; privateKey: KeyObject } {
  while (rsaKeys.length <= i) rsaKeys.push(generateKeyPairSync('rsa', { modulusLength: 2048 }));
  return rsaKeys[i]!;
}

export function p384Key(): { publicKey: KeyObject; privateKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
}

function derInteger(n: number): Uint8Array {
  return n >= 0x80 ? Uint8Array.of(0x02, 2, 0, n) : Uint8Array.of(0x02, 1, n);
}

function derIa5(s: string): Uint8Array {
  return Uint8Array.of(0x16, s.length, ...Buffer.from(s, 'ascii'));
}

/** One extension with raw extnValue contents. */
export function ext(oid: string, value: Uint8Array): Extension {
  return new Extension({ extnID: oid, extnValue: new OctetString(value) });
}

export interface KdsValues {
  readonly productName?: string;
  readonly bootLoader?: number;
  readonly tee?: number;
  readonly snp?: number;
  readonly microcode?: number;
  /** Raw hwID bytes (VCEK); omitted when `cspId` is given. */
  readonly hwId?: Uint8Array;
  readonly cspId?: string;
}

/** AMD KDS extensions in the order and encoding AMD's Milan VCEK uses. */
export function kdsExtensions(v: KdsValues): Extension[] {
  const out = [
    ext(AMD_KDS_OID.structVersion, derInteger(0)),
    ext(AMD_KDS_OID.productName, derIa5(v.productName ?? 'Milan-B0')),
    ext(AMD_KDS_OID.blSPL, derInteger(v.bootLoader ?? 2)),
    ext(AMD_KDS_OID.teeSPL, derInteger(v.tee ?? 0)),
    ext(AMD_KDS_OID.spl4, derInteger(0)),
    ext(AMD_KDS_OID.spl5, derInteger(0)),
    ext(AMD_KDS_OID.spl6, derInteger(0)),
    ext(AMD_KDS_OID.spl7, derInteger(0)),
    ext(AMD_KDS_OID.snpSPL, derInteger(v.snp ?? 5)),
    ext(AMD_KDS_OID.ucodeSPL, derInteger(v.microcode ?? 0x44)),
  ];
  if (v.cspId !== undefined) out.push(ext(AMD_KDS_OID.cspID, derIa5(v.cspId)));
  else out.push(ext(AMD_KDS_OID.hwID, v.hwId ?? new Uint8Array(64).fill(0x11)));
  return out;
}

export interface MadeChain {
  readonly ark: MadeCert;
  readonly ask: MadeCert;
  readonly vcek: MadeCert;
}

/** A whole self-made Milan chain, AMD's names and shapes, valid 2022..2045. */
export function makeChain(kds: KdsValues = {}, vlek = false): MadeChain {
  const ark = makeCert({ subject: amdName('ARK-Milan'), key: rsaKey(0), ca: true });
  const ask = makeCert({
    subject: amdName(vlek ? 'SEV-VLEK-Milan' : 'SEV-Milan'),
    issuer: ark,
    key: rsaKey(1),
    ca: true,
  });
  const vcek = makeCert({
    subject: amdName(vlek ? 'SEV-VLEK' : 'SEV-VCEK'),
    issuer: ask,
    key: p384Key(),
    extensions: kdsExtensions(kds),
    serial: 0,
  });
  return { ark, ask, vcek };
}

/** A copy of `report` with its signature replaced by one from `privateKey` (P-384). */
export function resignReport(report: Uint8Array, privateKey: KeyObject): Uint8Array {
  const out = report.slice();
  const sig = sign('sha384', out.subarray(0, REPORT_SIGNED_LENGTH), {
    key: privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  ATTESTATION_REPORT.on(out)
    .set('signatureR', bigEndianToSevComponent(sig.subarray(0, 48)))
    .set('signatureS', bigEndianToSevComponent(sig.subarray(48, 96)));
  return out;
}
