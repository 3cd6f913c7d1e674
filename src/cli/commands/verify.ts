import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  checkReportBytes,
  FieldRangeError,
  hexToBytes,
  ReportFormatError,
} from '../../arch/index.js';
import {
  CertificateDecodeError,
  decodeCertificates,
  parseCertificate,
} from '../../attest/cert-chain.js';
import { type ExpectedValues, verifyReport, type VerifyResult } from '../../attest/verify.js';
import { type CliIo, EXIT, UserError } from '../io.js';
import { readInputFile } from '../read-input.js';

/** File names --certs-dir looks for, per role, in this order (snpguest and AMD KDS names). */
const CERT_EXTENSIONS = ['pem', 'der', 'crt', 'cer'];
const DIR_NAMES = {
  ark: ['ark'],
  ask: ['ask', 'asvk'],
  vcek: ['vcek', 'vlek'],
} as const;
/** AMD KDS `cert_chain`: the ASK (or ASVK), then the ARK, in one PEM file. */
const CHAIN_FILE = 'cert_chain.pem';

const HELP_AFTER = `
Certificates: --ark, --ask and --vcek name PEM or DER files. A PEM file may hold AMD's
cert_chain (the ASK, then the ARK): given as --ask it also supplies the ARK; given as --ark
its second certificate is used. With --certs-dir D, a certificate not named by a flag is
looked for in D as:
  ARK   ark.pem, ark.der, ark.crt or ark.cer, else the second certificate of cert_chain.pem
  ASK   ask.* or asvk.* (same extensions), else the first certificate of cert_chain.pem
  VCEK  vcek.* or vlek.* (same extensions)
(the names snpguest fetch and AMD's KDS use). A VLEK goes where the VCEK goes.

Trust: without --trusted-ark the ARK is trusted as given; pin AMD's ARK (or your
simulator's) with --trusted-ark to make the chain mean something.

Time: every certificate must be within its validity period now, or at --at DATE (ISO 8601,
e.g. 2025-06-30). --no-time-check skips the validity periods, e.g. for an old report whose
certificates have expired since; the check is then listed as not checked.

Exit codes: 0 every check holds; 1 the report is rejected (each reason is printed);
2 a usage error: a missing or unreadable file, a file that is not a report or a certificate,
bad hex, or an expected value of the wrong length.`;

interface VerifyOptions {
  report: string;
  ark?: string;
  ask?: string;
  vcek?: string;
  certsDir?: string;
  trustedArk?: string;
  measurement?: string;
  reportData?: string;
  hostData?: string;
  vmpl?: string;
  at?: string;
  timeCheck: boolean;
  json?: boolean;
}

/** The one existing file among `candidates` in `dir`; a UserError if there are several. */
function findInDir(dir: string, stems: readonly string[], role: string): string | undefined {
  const found = stems
    .flatMap((stem) => CERT_EXTENSIONS.map((ext) => join(dir, `${stem}.${ext}`)))
    .filter((p) => existsSync(p));
  if (found.length > 1) {
    throw new UserError(
      `--certs-dir ${dir} holds more than one ${role} (${found.map((p) => p.slice(dir.length + 1)).join(', ')}); name one with --${role.toLowerCase()}`,
    );
  }
  return found[0];
}

/** DER certificates of a file named on the command line; every failure is a UserError. */
function readCerts(path: string, what: string): Uint8Array[] {
  const bytes = readInputFile(path, what, 1 << 20);
  let ders: Uint8Array[];
  try {
    ders = decodeCertificates(bytes);
    for (const der of ders) parseCertificate(der);
  } catch (e) {
    if (e instanceof CertificateDecodeError) throw new UserError(`${what} ${path}: ${e.message}`);
    throw e;
  }
  return ders;
}

interface Chain {
  ark: Uint8Array;
  ask: Uint8Array;
  vcek: Uint8Array;
}

/** Picks the ARK from a file of one certificate or of AMD's cert_chain (ASK, ARK). */
function arkOf(certs: Uint8Array[], path: string, what: string): Uint8Array {
  if (certs.length > 2) {
    throw new UserError(
      `${what} ${path} holds ${certs.length} certificates; expected the ARK, or the ASK then the ARK`,
    );
  }
  return certs[certs.length - 1]!;
}

function resolveChain(o: VerifyOptions): Chain {
  const dir = o.certsDir;
  if (dir !== undefined && !existsSync(dir)) {
    throw new UserError(`certificate directory ${dir} does not exist`);
  }
  const inDir = (role: keyof typeof DIR_NAMES): string | undefined =>
    dir === undefined ? undefined : findInDir(dir, DIR_NAMES[role], role.toUpperCase());
  const chainFile =
    dir !== undefined && existsSync(join(dir, CHAIN_FILE)) ? join(dir, CHAIN_FILE) : undefined;

  const vcekPath = o.vcek ?? inDir('vcek');
  if (vcekPath === undefined) {
    throw new UserError(
      dir === undefined
        ? 'no VCEK: give --vcek FILE or --certs-dir DIR'
        : `no VCEK: give --vcek FILE or put vcek.pem (or .der) in ${dir}`,
    );
  }
  const vcekCerts = readCerts(vcekPath, 'VCEK file');
  if (vcekCerts.length !== 1) {
    throw new UserError(`VCEK file ${vcekPath} holds ${vcekCerts.length} certificates, not one`);
  }

  const askPath = o.ask ?? inDir('ask') ?? chainFile;
  if (askPath === undefined) {
    throw new UserError(
      dir === undefined
        ? 'no ASK: give --ask FILE or --certs-dir DIR'
        : `no ASK: give --ask FILE or put ask.pem or ${CHAIN_FILE} in ${dir}`,
    );
  }
  const askCerts = readCerts(askPath, 'ASK file');
  if (askCerts.length > 2) {
    throw new UserError(
      `ASK file ${askPath} holds ${askCerts.length} certificates; expected the ASK, or the ASK then the ARK`,
    );
  }

  let ark: Uint8Array;
  const arkPath = o.ark ?? inDir('ark') ?? chainFile;
  if (arkPath !== undefined) {
    ark = arkOf(readCerts(arkPath, 'ARK file'), arkPath, 'ARK file');
  } else if (askCerts.length === 2) {
    ark = askCerts[1]!;
  } else {
    throw new UserError(
      dir === undefined
        ? 'no ARK: give --ark FILE, an --ask file holding the ASK then the ARK, or --certs-dir DIR'
        : `no ARK: give --ark FILE or put ark.pem or ${CHAIN_FILE} in ${dir}`,
    );
  }
  return { ark, ask: askCerts[0]!, vcek: vcekCerts[0]! };
}

function hexOption(text: string | undefined, flag: string, size: number): Uint8Array | undefined {
  if (text === undefined) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = hexToBytes(text);
  } catch (e) {
    if (e instanceof FieldRangeError)
      throw new UserError(`${flag} is not ${size} bytes of hex: ${e.message}`);
    throw e;
  }
  if (bytes.length !== size) {
    throw new UserError(
      `${flag} must be ${size} bytes (${2 * size} hex digits), this is ${bytes.length}`,
    );
  }
  return bytes;
}

function expectedValues(o: VerifyOptions): ExpectedValues {
  let vmpl: number | undefined;
  if (o.vmpl !== undefined) {
    if (!/^[0-3]$/.test(o.vmpl)) throw new UserError(`--vmpl must be 0, 1, 2 or 3, not ${o.vmpl}`);
    vmpl = Number(o.vmpl);
  }
  return {
    measurement: hexOption(o.measurement, '--measurement', 48),
    reportData: hexOption(o.reportData, '--report-data', 64),
    hostData: hexOption(o.hostData, '--host-data', 32),
    vmpl,
  };
}

function when(o: VerifyOptions): Date | undefined {
  if (o.at === undefined) return undefined;
  if (!o.timeCheck) throw new UserError('give --at DATE or --no-time-check, not both');
  const t = Date.parse(o.at);
  if (!/^\d{4}-\d{2}-\d{2}/.test(o.at) || Number.isNaN(t)) {
    throw new UserError(
      `--at ${o.at} is not an ISO 8601 date (e.g. 2025-06-30 or 2025-06-30T12:00Z)`,
    );
  }
  return new Date(t);
}

export function formatVerdict(result: VerifyResult): string {
  const width = Math.max(...result.checks.map((c) => c.name.length));
  const lines = result.checks.map(
    (c) => `${c.ok ? 'PASS' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`,
  );
  lines.push('');
  if (result.ok) {
    lines.push(`VERIFIED: all ${result.checks.length} checks hold`);
  } else {
    const n = result.reasons.length;
    lines.push(`REJECTED: ${n} reason${n === 1 ? '' : 's'}`);
    for (const r of result.reasons) lines.push(`  - ${r}`);
  }
  return lines.join('\n');
}

export function addVerifyCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('verify')
    .description(
      'verify an attestation report: its signature, the AMD certificate chain (ARK, ASK, VCEK), ' +
        "the VCEK's TCB and chip ID against the report, and the values you expect",
    )
    .requiredOption('--report <file>', 'the raw 1184-byte (0x4a0) ATTESTATION_REPORT')
    .option('--ark <file>', 'the AMD root key certificate (PEM or DER)')
    .option('--ask <file>', 'the AMD SEV key certificate, or cert_chain (ASK then ARK)')
    .option('--vcek <file>', 'the VCEK (or VLEK) certificate that signed the report')
    .option('--certs-dir <dir>', 'find certificates not named above in this directory (see below)')
    .option('--trusted-ark <file>', "pin the ARK: it must have this certificate's subject and key")
    .option('--measurement <hex>', 'expected MEASUREMENT (48 bytes)')
    .option('--report-data <hex>', 'expected REPORT_DATA (64 bytes)')
    .option('--host-data <hex>', 'expected HOST_DATA (32 bytes)')
    .option('--vmpl <n>', 'expected VMPL (0 to 3)')
    .option('--at <date>', 'check certificate validity at this date instead of now')
    .option('--no-time-check', 'do not check certificate validity periods')
    .option('--json', 'print the verdict as JSON: {ok, reasons, checks}')
    .addHelpText('after', HELP_AFTER)
    .action((o: VerifyOptions) => {
      const expected = expectedValues(o);
      const now = when(o);
      const report = readInputFile(o.report, 'report file', 1 << 20);
      try {
        checkReportBytes(report);
      } catch (e) {
        if (e instanceof ReportFormatError) throw new UserError(`${o.report}: ${e.message}`);
        throw e;
      }
      const chain = resolveChain(o);
      let trustedArk: Uint8Array | undefined;
      if (o.trustedArk !== undefined) {
        trustedArk = arkOf(
          readCerts(o.trustedArk, 'trusted ARK file'),
          o.trustedArk,
          'trusted ARK file',
        );
      }
      const result = verifyReport({
        report,
        ...chain,
        trustedArk,
        now,
        checkTime: o.timeCheck,
        expected,
      });
      io.out(
        o.json
          ? JSON.stringify(
              {
                ok: result.ok,
                reasons: result.reasons,
                checks: result.checks.map(({ name, ok, detail }) => ({ name, ok, detail })),
              },
              null,
              2,
            )
          : formatVerdict(result),
      );
      setExitCode(result.ok ? EXIT.OK : EXIT.FAILED);
    });
}
