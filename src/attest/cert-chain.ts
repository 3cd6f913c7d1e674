// AMD's certificate chain ARK -> ASK -> VCEK (or ARK -> ASVK -> VLEK): decoding PEM and DER, and
// the checks a relying party makes before it believes the VCEK's key (reference/sev-snp-abi.md
// sections 4.1 and 4.3): the ARK signs itself, the ARK signs the ASK, the ASK signs the VCEK, all
// with RSASSA-PSS SHA-384 (MGF1 SHA-384, salt 48); issuer names chain; the ARK and ASK are CAs;
// the VCEK key is ECDSA P-384; every certificate is within its validity period; and, when the
// caller pins one, the ARK is the trusted ARK.

import { KeyObject, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate, type Name } from '@peculiar/asn1-x509';
import {
  children,
  DER_TAG,
  DerError,
  integerValue,
  oidValue,
  readOnlyTlv,
  type Tlv,
} from './der.js';

/** One verification step: a stable name, whether it holds and what was found. */
export interface VerifyCheck {
  readonly name: string;
  readonly ok: boolean;
  /** What was found: the facts when the check holds, its problems joined by '; ' otherwise. */
  readonly detail: string;
  /** Every reason this check fails (empty when it holds). */
  readonly problems: readonly string[];
}

/** A check from its problems: it holds when there are none. */
export function makeCheck(
  name: string,
  problems: readonly string[],
  okDetail: string,
): VerifyCheck {
  return {
    name,
    ok: problems.length === 0,
    detail: problems.length === 0 ? okDetail : problems.join('; '),
    problems: [...problems],
  };
}

/** Bytes that are not a certificate (not DER, no PEM block, not X.509); one-sentence message. */
export class CertificateDecodeError extends Error {
  override readonly name = 'CertificateDecodeError';
}

const OID = {
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  mgf1: '1.2.840.113549.1.1.8',
  sha1: '1.3.14.3.2.26',
  sha384: '2.16.840.1.101.3.4.2.2',
  commonName: '2.5.4.3',
} as const;

/** AMD's PSS parameters (SNP ABI / AMD KDS: SHA-384, MGF1 with SHA-384, 48-byte salt). */
const PSS_SALT_LENGTH = 48;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;

/**
 * The DER certificates in a file's bytes: the file itself when it is DER, or every CERTIFICATE
 * block of a PEM file in order (AMD's cert_chain holds the ASK, then the ARK).
 */
export function decodeCertificates(bytes: Uint8Array): Uint8Array[] {
  if (bytes[0] === DER_TAG.SEQUENCE) {
    try {
      readOnlyTlv(bytes);
    } catch (e) {
      if (e instanceof DerError) {
        throw new CertificateDecodeError(`it is not a DER certificate (${e.message})`);
      }
      throw e;
    }
    return [bytes.slice()];
  }
  const text = Buffer.from(bytes).toString('latin1');
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    out.push(new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  }
  if (out.length === 0) {
    throw new CertificateDecodeError(
      'it is neither a DER certificate nor a PEM file with a CERTIFICATE block',
    );
  }
  return out;
}

/** A decoded certificate, in the two forms the checks need. */
export interface ParsedCertificate {
  readonly der: Uint8Array;
  /** Node's view, for signatures, keys and basic constraints. */
  readonly x509: X509Certificate;
  /** The ASN.1 structure, for names, validity, algorithms and extensions. */
  readonly asn: Certificate;
  /** The subject's common name ('' when there is none). */
  readonly commonName: string;
}

function commonName(name: Name): string {
  for (const rdn of name) {
    for (const atv of rdn) if (atv.type === OID.commonName) return atv.value.toString();
  }
  return '';
}

/** Decodes one DER certificate; throws CertificateDecodeError when it is not X.509. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  let x509: X509Certificate;
  let asn: Certificate;
  try {
    x509 = new X509Certificate(der);
    asn = AsnConvert.parse(der, Certificate);
  } catch (e) {
    if (e instanceof Error) {
      throw new CertificateDecodeError(`it is not an X.509 certificate (${e.message})`);
    }
    throw e;
  }
  return { der: der.slice(), x509, asn, commonName: commonName(asn.tbsCertificate.subject) };
}

function equalBytes(a: Uint8Array | ArrayBuffer, b: Uint8Array | ArrayBuffer): boolean {
  return Buffer.from(a instanceof Uint8Array ? a : new Uint8Array(a)).equals(
    Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)),
  );
}

function nameDer(name: Name): ArrayBuffer {
  return AsnConvert.serialize(name);
}

function nameText(name: Name): string {
  return name.map((rdn) => rdn.map((atv) => atv.value.toString()).join('+')).join(', ');
}

/** AlgorithmIdentifier inside DER: its OID and, if present, the parameters' TLV. */
function algorithmAt(bytes: Uint8Array, tlv: Tlv): { oid: string; params: Tlv | undefined } {
  const parts = children(bytes, tlv);
  if (tlv.tag !== DER_TAG.SEQUENCE || parts.length < 1 || parts.length > 2) {
    throw new DerError('an AlgorithmIdentifier is not a SEQUENCE of an OID and parameters');
  }
  return { oid: oidValue(bytes, parts[0]!), params: parts[1] };
}

/** A hash AlgorithmIdentifier must be SHA-384 (parameters absent or NULL). */
function hashProblem(bytes: Uint8Array, tlv: Tlv, what: string): string | undefined {
  const alg = algorithmAt(bytes, tlv);
  if (alg.oid !== OID.sha384) return `${what} is ${alg.oid}, not SHA-384`;
  if (alg.params !== undefined && alg.params.tag !== DER_TAG.NULL) {
    return `${what} has parameters other than NULL`;
  }
  return undefined;
}

/**
 * Why a signature AlgorithmIdentifier is not RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48 and
 * trailer 1 (RFC 4055 RSASSA-PSS-params; AMD writes the default trailer field explicitly).
 */
function pssProblems(alg: AlgorithmIdentifier): string[] {
  if (alg.algorithm !== OID.rsassaPss)
    return [`signature algorithm ${alg.algorithm}, not RSASSA-PSS`];
  if (alg.parameters === undefined || alg.parameters === null) {
    return ['RSASSA-PSS without parameters (defaults to SHA-1)'];
  }
  const bytes = new Uint8Array(alg.parameters);
  const problems: string[] = [];
  try {
    const seq = readOnlyTlv(bytes);
    if (seq.tag !== DER_TAG.SEQUENCE)
      throw new DerError('RSASSA-PSS parameters are not a SEQUENCE');
    const fields = new Map<number, Tlv>();
    for (const f of children(bytes, seq)) {
      const inner = children(bytes, f);
      if ((f.tag & 0xe0) !== 0xa0 || inner.length !== 1) {
        throw new DerError(
          `unexpected field with tag 0x${f.tag.toString(16)} in RSASSA-PSS parameters`,
        );
      }
      fields.set(f.tag & 0x1f, inner[0]!);
    }
    const hash = fields.get(0);
    const mgf = fields.get(1);
    const salt = fields.get(2);
    const trailer = fields.get(3);
    if (hash === undefined) problems.push('PSS hash is the default SHA-1');
    else {
      const p = hashProblem(bytes, hash, 'PSS hash');
      if (p !== undefined) problems.push(p);
    }
    if (mgf === undefined) problems.push('PSS mask generation is the default MGF1-SHA-1');
    else {
      const m = algorithmAt(bytes, mgf);
      if (m.oid !== OID.mgf1) problems.push(`PSS mask generation is ${m.oid}, not MGF1`);
      else if (m.params === undefined) problems.push('MGF1 without its hash');
      else {
        const p = hashProblem(bytes, m.params, 'MGF1 hash');
        if (p !== undefined) problems.push(p);
      }
    }
    const saltLength = salt === undefined ? 20n : integerValue(bytes, salt);
    if (saltLength !== BigInt(PSS_SALT_LENGTH)) {
      problems.push(`PSS salt length ${saltLength}, not ${PSS_SALT_LENGTH}`);
    }
    const trailerField = trailer === undefined ? 1n : integerValue(bytes, trailer);
    if (trailerField !== 1n) problems.push(`PSS trailer field ${trailerField}, not 1`);
  } catch (e) {
    if (e instanceof DerError) return [`malformed RSASSA-PSS parameters: ${e.message}`];
    throw e;
  }
  return problems;
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Why `child` is not issued and signed by `issuer` (empty when it is). */
function signedByProblems(
  child: ParsedCertificate,
  issuer: ParsedCertificate,
  childRole: string,
  issuerRole: string,
): string[] {
  const problems: string[] = [];
  const childIssuer = child.asn.tbsCertificate.issuer;
  const issuerSubject = issuer.asn.tbsCertificate.subject;
  if (!equalBytes(nameDer(childIssuer), nameDer(issuerSubject))) {
    problems.push(
      `the ${childRole}'s issuer (${nameText(childIssuer)}) is not the ${issuerRole}'s subject (${nameText(issuerSubject)})`,
    );
  }
  if (issuer.x509.publicKey.asymmetricKeyType !== 'rsa') {
    problems.push(
      `the ${issuerRole}'s key is ${issuer.x509.publicKey.asymmetricKeyType ?? 'unknown'}, not RSA`,
    );
  } else if (!verifyCertSignature(child, issuer.x509.publicKey)) {
    problems.push(`the ${childRole}'s signature does not verify with the ${issuerRole}'s key`);
  }
  return problems;
}

function verifyCertSignature(cert: ParsedCertificate, key: KeyObject): boolean {
  try {
    return cert.x509.verify(key);
  } catch (e) {
    // OpenSSL refuses some malformed signatures by throwing rather than returning false.
    if (e instanceof Error) return false;
    throw e;
  }
}

export interface ChainInput {
  /** DER certificates. A VLEK goes in `vcek`, its ASVK in `ask`. */
  readonly ark: Uint8Array;
  readonly ask: Uint8Array;
  readonly vcek: Uint8Array;
  /** A trusted ARK (DER) to pin: the given ARK must have its subject and public key. */
  readonly trustedArk?: Uint8Array | undefined;
  /** The instant the validity periods are checked at; the current time when absent. */
  readonly now?: Date | undefined;
  /** False to skip the validity periods (e.g. to verify an old report with expired certs). */
  readonly checkTime?: boolean | undefined;
}

export interface ChainResult {
  readonly checks: VerifyCheck[];
  /** The decoded certificates, for the checks that use them, when they decode. */
  readonly ark: ParsedCertificate | undefined;
  readonly ask: ParsedCertificate | undefined;
  readonly vcek: ParsedCertificate | undefined;
}

/** Runs every chain check (none stops the others) and returns them in a fixed order. */
export function checkCertChain(input: ChainInput): ChainResult {
  const checks: VerifyCheck[] = [];
  const add = (name: string, problems: readonly string[], okDetail: string): void => {
    checks.push(makeCheck(name, problems, okDetail));
  };

  const decoded: Partial<Record<'ARK' | 'ASK' | 'VCEK', ParsedCertificate>> = {};
  const decodeProblems: string[] = [];
  for (const [role, der] of [
    ['ARK', input.ark],
    ['ASK', input.ask],
    ['VCEK', input.vcek],
  ] as const) {
    try {
      decoded[role] = parseCertificate(der);
    } catch (e) {
      if (!(e instanceof CertificateDecodeError)) throw e;
      decodeProblems.push(`the ${role}: ${e.message}`);
    }
  }
  const { ARK: ark, ASK: ask, VCEK: vcek } = decoded;
  add(
    'certificates',
    decodeProblems,
    `ARK "${ark?.commonName}", ASK "${ask?.commonName}", VCEK "${vcek?.commonName}"`,
  );

  if (ark !== undefined) {
    const problems: string[] = [];
    const t = ark.asn.tbsCertificate;
    if (!equalBytes(nameDer(t.issuer), nameDer(t.subject))) {
      problems.push(`the ARK's issuer (${nameText(t.issuer)}) is not its subject`);
    }
    if (ark.x509.publicKey.asymmetricKeyType !== 'rsa') {
      problems.push(
        `the ARK's key is ${ark.x509.publicKey.asymmetricKeyType ?? 'unknown'}, not RSA`,
      );
    } else if (!verifyCertSignature(ark, ark.x509.publicKey)) {
      problems.push("the ARK's signature does not verify with its own key");
    }
    add('ark-self-signed', problems, `${ark.commonName} signs itself`);
  }

  if (input.trustedArk === undefined) {
    add('ark-pinned', [], 'not pinned: no trusted ARK given, so the ARK is trusted as supplied');
  } else if (ark !== undefined) {
    let problems: string[];
    try {
      const trusted = parseCertificate(input.trustedArk);
      const spki = (c: ParsedCertificate): Buffer =>
        c.x509.publicKey.export({ type: 'spki', format: 'der' });
      problems = [];
      if (!spki(trusted).equals(spki(ark))) {
        problems.push(`the ARK's public key is not the trusted ARK's (${trusted.commonName})`);
      }
      if (
        !equalBytes(
          nameDer(trusted.asn.tbsCertificate.subject),
          nameDer(ark.asn.tbsCertificate.subject),
        )
      ) {
        problems.push(`the ARK's subject is not the trusted ARK's (${trusted.commonName})`);
      }
    } catch (e) {
      if (!(e instanceof CertificateDecodeError)) throw e;
      problems = [`the trusted ARK: ${e.message}`];
    }
    add('ark-pinned', problems, `the ARK is the trusted ${ark.commonName}`);
  }

  if (ark !== undefined && ask !== undefined) {
    add(
      'ask-signed-by-ark',
      signedByProblems(ask, ark, 'ASK', 'ARK'),
      `${ask.commonName} is issued and signed by ${ark.commonName}`,
    );
  }
  if (ask !== undefined && vcek !== undefined) {
    add(
      'vcek-signed-by-ask',
      signedByProblems(vcek, ask, 'VCEK', 'ASK'),
      `${vcek.commonName} is issued and signed by ${ask.commonName}`,
    );
  }

  const cas = [
    ['ARK', ark],
    ['ASK', ask],
  ] as const;
  if (ark !== undefined || ask !== undefined) {
    const problems: string[] = [];
    for (const [role, c] of cas) {
      if (c !== undefined && !c.x509.ca) {
        problems.push(`the ${role} lacks basicConstraints CA:TRUE`);
      }
    }
    add('ca-constraints', problems, 'the ARK and ASK are CAs (basicConstraints CA:TRUE)');
  }

  const all = [
    ['ARK', ark],
    ['ASK', ask],
    ['VCEK', vcek],
  ] as const;
  if (ark !== undefined || ask !== undefined || vcek !== undefined) {
    const problems: string[] = [];
    for (const [role, c] of all) {
      if (c === undefined) continue;
      for (const p of pssProblems(c.asn.signatureAlgorithm)) problems.push(`the ${role}: ${p}`);
      if (
        !equalBytes(
          AsnConvert.serialize(c.asn.signatureAlgorithm),
          AsnConvert.serialize(c.asn.tbsCertificate.signature),
        )
      ) {
        problems.push(`the ${role}'s signed and unsigned signature algorithms differ`);
      }
    }
    add('signature-algorithms', problems, 'RSASSA-PSS with SHA-384, MGF1-SHA-384, salt 48');
  }

  if (vcek !== undefined) {
    const key = vcek.x509.publicKey;
    const curve = key.asymmetricKeyDetails?.namedCurve;
    add(
      'vcek-public-key',
      key.asymmetricKeyType === 'ec' && curve === 'secp384r1'
        ? []
        : [
            `the VCEK's key is ${key.asymmetricKeyType ?? 'unknown'}${curve === undefined ? '' : ' ' + curve}, not ECDSA P-384`,
          ],
      'ECDSA P-384',
    );
  }

  if (input.checkTime === false) {
    add('validity', [], 'not checked (time check turned off)');
  } else if (ark !== undefined || ask !== undefined || vcek !== undefined) {
    const now = input.now ?? new Date();
    const problems: string[] = [];
    const periods: string[] = [];
    for (const [role, c] of all) {
      if (c === undefined) continue;
      const from = c.asn.tbsCertificate.validity.notBefore.getTime();
      const to = c.asn.tbsCertificate.validity.notAfter.getTime();
      periods.push(`${role} ${iso(from)}..${iso(to)}`);
      if (now < from) problems.push(`the ${role} is not valid before ${iso(from)}`);
      if (now > to) problems.push(`the ${role} expired at ${iso(to)}`);
    }
    add(
      'validity',
      problems.map((p) => `${p} (checked at ${iso(now)})`),
      `valid at ${iso(now)}: ${periods.join(', ')}`,
    );
  }

  return { checks, ark, ask, vcek };
}
