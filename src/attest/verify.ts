// A relying party's verdict on an attestation report: the report's own format and reserved
// fields, its ECDSA P-384 signature by the VCEK (or VLEK), the certificate chain that vouches for
// that key, the VCEK's KDS extensions against REPORTED_TCB and CHIP_ID, and the values the caller
// expects. Every check runs (none stops the others), so a rejection lists every reason.
// Facts: reference/sev-snp-abi.md sections 2 (report, signature) and 4.3 (how verifiers check).

import { verify as cryptoVerify } from 'node:crypto';
import {
  ATTESTATION_REPORT,
  bytesToHex,
  checkReportBytes,
  GUEST_POLICY,
  productFromCpuid,
  REPORT_SIGNED_LENGTH,
  REPORT_SIZE,
  ReportFormatError,
  SIGNATURE_ALGO_ECDSA_P384_SHA384,
  SIGNER_INFO,
  SIGNING_KEY,
  TCB_VERSION,
  P384_SCALAR_SIZE,
  sevComponentToBigEndian,
} from '../arch/index.js';
import {
  type ChainInput,
  checkCertChain,
  makeCheck,
  type ParsedCertificate,
  type VerifyCheck,
} from './cert-chain.js';
import { type KdsExtensions, KdsExtensionError, parseKdsExtensions } from './vcek-extensions.js';

export type { VerifyCheck } from './cert-chain.js';

/** Values the relying party requires; each one given becomes a check. */
export interface ExpectedValues {
  /** MEASUREMENT, 48 bytes. */
  readonly measurement?: Uint8Array | undefined;
  /** REPORT_DATA, 64 bytes. */
  readonly reportData?: Uint8Array | undefined;
  /** HOST_DATA, 32 bytes. */
  readonly hostData?: Uint8Array | undefined;
  /** ID_KEY_DIGEST, 48 bytes. */
  readonly idKeyDigest?: Uint8Array | undefined;
  /** AUTHOR_KEY_DIGEST, 48 bytes. */
  readonly authorKeyDigest?: Uint8Array | undefined;
  /** FAMILY_ID, 16 bytes. */
  readonly familyId?: Uint8Array | undefined;
  /** IMAGE_ID, 16 bytes. */
  readonly imageId?: Uint8Array | undefined;
  readonly vmpl?: number | undefined;
  readonly guestSvn?: number | undefined;
  readonly policy?: bigint | undefined;
}

export interface VerifyInput extends ChainInput {
  /** The raw 0x4a0-byte ATTESTATION_REPORT. */
  readonly report: Uint8Array;
  readonly expected?: ExpectedValues | undefined;
}

export interface VerifyResult {
  /** True only when every check holds. */
  readonly ok: boolean;
  /** Every reason for rejection, as "check-name: reason". */
  readonly reasons: string[];
  readonly checks: VerifyCheck[];
}

const EXPECTED_BYTES = [
  ['measurement', 'MEASUREMENT'],
  ['reportData', 'REPORT_DATA'],
  ['hostData', 'HOST_DATA'],
  ['idKeyDigest', 'ID_KEY_DIGEST'],
  ['authorKeyDigest', 'AUTHOR_KEY_DIGEST'],
  ['familyId', 'FAMILY_ID'],
  ['imageId', 'IMAGE_ID'],
] as const;

/** TCB_VERSION fields and the KDS SPL each must equal (Milan/Genoa layout). */
const TCB_FIELDS = [
  ['bootLoader', 'blSPL'],
  ['tee', 'teeSPL'],
  ['spl4', 'spl4'],
  ['spl5', 'spl5'],
  ['spl6', 'spl6'],
  ['spl7', 'spl7'],
  ['snp', 'snpSPL'],
  ['microcode', 'ucodeSPL'],
] as const;

type Report = ReturnType<typeof ATTESTATION_REPORT.on>;

function isZero(b: Uint8Array): boolean {
  return b.every((x) => x === 0);
}

function hex(n: bigint | number, width = 0): string {
  return '0x' + n.toString(16).padStart(width, '0');
}

/** Reserved report bytes and bits that must be zero, and policy bit 17 that must be one. */
function reservedProblems(r: Report, version: number): string[] {
  const problems: string[] = [];
  const bytes = r.bytes;
  const zeroRange = (from: number, to: number, what: string): void => {
    const nonZero: number[] = [];
    for (let i = from; i < to; i++) if (bytes[i] !== 0) nonZero.push(i);
    if (nonZero.length > 0) {
      const shown = nonZero.slice(0, 4).map((o) => hex(o, 3));
      problems.push(
        `${what} (${hex(from, 3)}..${hex(to - 1, 3)}) is not zero at ${shown.join(', ')}${nonZero.length > 4 ? ` and ${nonZero.length - 4} more` : ''}`,
      );
    }
  };
  const at = (name: Parameters<typeof ATTESTATION_REPORT.offset>[0]): number =>
    ATTESTATION_REPORT.offset(name);
  zeroRange(at('reserved0'), at('reportData'), 'reserved field');
  // Version 2 has no CPUID bytes: the whole 0x188..0x19F is reserved.
  zeroRange(version >= 3 ? at('reserved1') : at('cpuidFamId'), at('chipId'), 'reserved field');
  zeroRange(at('reserved2'), at('reserved2') + 1, 'reserved byte');
  zeroRange(at('reserved3'), at('reserved3') + 1, 'reserved byte');
  // The mitigation vectors exist from version 5 on; before that, 0x1F8..0x29F is reserved.
  zeroRange(at('launchMitVector'), REPORT_SIGNED_LENGTH, 'reserved field');
  zeroRange(at('reserved5'), bytes.length, 'reserved area after the signature');
  const signer = SIGNER_INFO.reservedBits(BigInt(r.get('signerInfo')));
  if (signer !== 0n)
    problems.push(`signer info has reserved bits ${hex(signer)} set (bits 31:5 MBZ)`);
  const policy = r.get('policy');
  const policyReserved = GUEST_POLICY.reservedBits(policy);
  if (policyReserved !== 0n) {
    problems.push(`POLICY has reserved bits ${hex(policyReserved)} set`);
  }
  if (!GUEST_POLICY.has(policy, 'reserved1')) {
    problems.push('POLICY bit 17 (reserved, must be one) is clear');
  }
  return problems;
}

/** Why the signature over bytes 0..0x29F does not verify with the VCEK's key. */
function signatureProblems(r: Report, vcek: ParsedCertificate | undefined): string[] {
  const problems: string[] = [];
  const components: Uint8Array[] = [];
  for (const [name, field] of [
    ['R', 'signatureR'],
    ['S', 'signatureS'],
  ] as const) {
    const le = r.get(field);
    if (!isZero(le.subarray(P384_SCALAR_SIZE))) {
      problems.push(
        `signature ${name} has non-zero bytes beyond its ${P384_SCALAR_SIZE} (they must be zero padding)`,
      );
    } else {
      components.push(sevComponentToBigEndian(le));
    }
  }
  const key = vcek?.x509.publicKey;
  if (key === undefined) {
    problems.push('the signature cannot be checked without a decodable VCEK');
  } else if (
    key.asymmetricKeyType !== 'ec' ||
    key.asymmetricKeyDetails?.namedCurve !== 'secp384r1'
  ) {
    problems.push("the signature cannot be checked: the VCEK's key is not ECDSA P-384");
  } else if (components.length === 2) {
    const signed = r.bytes.subarray(0, REPORT_SIGNED_LENGTH);
    const sig = Buffer.concat(components);
    if (!cryptoVerify('sha384', signed, { key, dsaEncoding: 'ieee-p1363' }, sig)) {
      problems.push(
        "the ECDSA P-384 signature over bytes 0x000..0x29f does not verify with the VCEK's key",
      );
    }
  }
  return problems;
}

function tcbText(t: KdsExtensions['tcb']): string {
  return `boot loader ${t.bootLoader}, TEE ${t.tee}, SNP ${t.snp}, microcode ${t.microcode}`;
}

function reportedTcbCheck(r: Report, ext: KdsExtensions): VerifyCheck {
  const raw = r.get('reportedTcb');
  if (ext.productLine === 'Turin') {
    return makeCheck(
      'reported-tcb',
      ['the Turin TCB_VERSION layout is not supported (Milan and Genoa are)'],
      '',
    );
  }
  const reported = TCB_VERSION.decode(raw);
  const problems: string[] = [];
  for (const [field, spl] of TCB_FIELDS) {
    const want = ext.tcb[field];
    if (want === undefined) continue; // spl4..7 are optional in the certificate
    const got = Number(reported[field]);
    if (got !== want) {
      problems.push(`REPORTED_TCB ${field} is ${got}, the ${ext.kind}'s ${spl} is ${want}`);
    }
  }
  return makeCheck(
    'reported-tcb',
    problems,
    `REPORTED_TCB ${hex(raw, 16)} equals the ${ext.kind}'s SPLs (${tcbText(ext.tcb)})`,
  );
}

function chipIdCheck(r: Report, ext: KdsExtensions): VerifyCheck {
  const chipId = r.get('chipId');
  if (ext.hwId === undefined) {
    return makeCheck('chip-id', [], `not compared: a VLEK (cspID "${ext.cspId}") names no chip`);
  }
  if (isZero(chipId)) {
    return makeCheck('chip-id', [], 'not compared: CHIP_ID is zero (masked by MASK_CHIP_ID)');
  }
  const same = Buffer.from(chipId.subarray(0, ext.hwId.length)).equals(ext.hwId);
  return makeCheck(
    'chip-id',
    same ? [] : [`CHIP_ID ${bytesToHex(chipId)} is not the VCEK's hwID ${bytesToHex(ext.hwId)}`],
    `CHIP_ID equals the VCEK's hwID (${bytesToHex(ext.hwId).slice(0, 16)}...)`,
  );
}

function signingKeyCheck(r: Report, ext: KdsExtensions | undefined): VerifyCheck {
  const signer = BigInt(r.get('signerInfo'));
  const key = Number(SIGNER_INFO.get(signer, 'signingKey'));
  const problems: string[] = [];
  if (SIGNER_INFO.has(signer, 'maskChipKey')) {
    problems.push('MASK_CHIP_KEY is set: the firmware did not sign this report');
  }
  const name = key === SIGNING_KEY.VCEK ? 'VCEK' : key === SIGNING_KEY.VLEK ? 'VLEK' : undefined;
  if (name === undefined) {
    problems.push(
      key === SIGNING_KEY.NONE
        ? 'SIGNING_KEY is 7: the report is not signed'
        : `SIGNING_KEY ${key} is reserved`,
    );
  } else if (ext !== undefined && ext.kind !== name) {
    problems.push(`the report says it is signed by a ${name}, the certificate is a ${ext.kind}`);
  }
  return makeCheck('signing-key', problems, `signed by a ${name ?? '?'}`);
}

/** The product line and CNs of the chain agree with each other and with the report's CPUID. */
function productCheck(
  r: Report,
  version: number,
  ext: KdsExtensions,
  ark: ParsedCertificate | undefined,
  ask: ParsedCertificate | undefined,
  vcek: ParsedCertificate,
): VerifyCheck {
  const line = ext.productLine;
  const problems: string[] = [];
  const vcekCn = ext.kind === 'VCEK' ? 'SEV-VCEK' : 'SEV-VLEK';
  const askCn = ext.kind === 'VCEK' ? `SEV-${line}` : `SEV-VLEK-${line}`;
  if (vcek.commonName !== vcekCn) {
    problems.push(`the ${ext.kind}'s CN is "${vcek.commonName}", not "${vcekCn}"`);
  }
  if (ask !== undefined && ask.commonName !== askCn) {
    problems.push(`the ASK's CN is "${ask.commonName}", not "${askCn}" for ${ext.productName}`);
  }
  if (ark !== undefined && ark.commonName !== `ARK-${line}`) {
    problems.push(`the ARK's CN is "${ark.commonName}", not "ARK-${line}" for ${ext.productName}`);
  }
  if (version >= 3) {
    const fam = r.get('cpuidFamId');
    const mod = r.get('cpuidModId');
    const fromCpuid = productFromCpuid(fam, mod);
    if (fromCpuid !== line) {
      problems.push(
        `the report's CPUID (family ${hex(fam)}, model ${hex(mod)}) names ${fromCpuid ?? 'no known product'}, the ${ext.kind} is for ${ext.productName}`,
      );
    }
  }
  return makeCheck(
    'product',
    problems,
    `${ext.productName}: the CNs agree${version >= 3 ? ' and so does the CPUID' : ' (a version 2 report has no CPUID)'}`,
  );
}

function expectedChecks(r: Report, expected: ExpectedValues): VerifyCheck[] {
  const checks: VerifyCheck[] = [];
  for (const [key, specName] of EXPECTED_BYTES) {
    const want = expected[key];
    if (want === undefined) continue;
    const got = r.get(key);
    if (want.length !== got.length) {
      throw new RangeError(`expected ${specName} must be ${got.length} bytes, got ${want.length}`);
    }
    const same = Buffer.from(got).equals(want);
    checks.push(
      makeCheck(
        `expected-${key}`,
        same ? [] : [`${specName} is ${bytesToHex(got)}, expected ${bytesToHex(want)}`],
        `${specName} is the expected ${bytesToHex(want)}`,
      ),
    );
  }
  const numbers = [
    ['vmpl', 'VMPL', r.get('vmpl')],
    ['guestSvn', 'GUEST_SVN', r.get('guestSvn')],
  ] as const;
  for (const [key, specName, got] of numbers) {
    const want = expected[key];
    if (want === undefined) continue;
    checks.push(
      makeCheck(
        `expected-${key}`,
        got === want ? [] : [`${specName} is ${got}, expected ${want}`],
        `${specName} is the expected ${want}`,
      ),
    );
  }
  if (expected.policy !== undefined) {
    const got = r.get('policy');
    checks.push(
      makeCheck(
        'expected-policy',
        got === expected.policy ? [] : [`POLICY is ${hex(got)}, expected ${hex(expected.policy)}`],
        `POLICY is the expected ${hex(expected.policy)}`,
      ),
    );
  }
  return checks;
}

/**
 * Verifies a report against its certificate chain and the expected values. Never throws for bad
 * input data (an unreadable report or certificate is a failed check); throws RangeError only for
 * an expected value of the wrong length, which is the caller's mistake.
 */
export function verifyReport(input: VerifyInput): VerifyResult {
  const checks: VerifyCheck[] = [];
  let version: 2 | 3 | 4 | undefined;
  try {
    version = checkReportBytes(input.report);
    checks.push(makeCheck('report-format', [], `version ${version} ATTESTATION_REPORT`));
  } catch (e) {
    if (!(e instanceof ReportFormatError)) throw e;
    checks.push(makeCheck('report-format', [e.message], ''));
  }
  // The signature covers the bytes whatever their version says, so it is checked whenever the
  // size is right; the checks that depend on the layout need a known version.
  const r = input.report.length === REPORT_SIZE ? ATTESTATION_REPORT.on(input.report) : undefined;

  const chain = checkCertChain(input);
  let ext: KdsExtensions | undefined;
  let extCheck: VerifyCheck | undefined;
  if (chain.vcek !== undefined) {
    try {
      ext = parseKdsExtensions(chain.vcek.asn);
      extCheck = makeCheck(
        'vcek-extensions',
        [],
        `${ext.kind} for ${ext.productName}, structVersion ${ext.structVersion}`,
      );
    } catch (e) {
      if (!(e instanceof KdsExtensionError)) throw e;
      extCheck = makeCheck('vcek-extensions', e.problems, '');
    }
  }

  if (r !== undefined) {
    const algo = r.get('signatureAlgo');
    checks.push(
      makeCheck(
        'signature-algorithm',
        algo === SIGNATURE_ALGO_ECDSA_P384_SHA384
          ? []
          : [`SIGNATURE_ALGO is ${algo}, not 1 (ECDSA P-384 with SHA-384)`],
        'ECDSA P-384 with SHA-384',
      ),
    );
    checks.push(signingKeyCheck(r, ext));
    checks.push(
      makeCheck(
        'report-signature',
        signatureProblems(r, chain.vcek),
        "bytes 0x000..0x29f are signed by the VCEK's key",
      ),
    );
  }
  if (r !== undefined && version !== undefined) {
    checks.push(
      makeCheck('reserved-zero', reservedProblems(r, version), 'all reserved fields are zero'),
    );
  }
  checks.push(...chain.checks);
  if (extCheck !== undefined) checks.push(extCheck);
  if (r !== undefined && version !== undefined && ext !== undefined && chain.vcek !== undefined) {
    checks.push(productCheck(r, version, ext, chain.ark, chain.ask, chain.vcek));
    checks.push(reportedTcbCheck(r, ext));
    checks.push(chipIdCheck(r, ext));
  }
  if (r !== undefined && version !== undefined && input.expected !== undefined) {
    checks.push(...expectedChecks(r, input.expected));
  }

  const reasons = checks.flatMap((c) => c.problems.map((p) => `${c.name}: ${p}`));
  return { ok: reasons.length === 0 && checks.every((c) => c.ok), reasons, checks };
}
