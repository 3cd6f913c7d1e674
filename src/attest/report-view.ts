// A relying party's view of an attestation report: every field decoded (TCBs split into SPLs,
// policy and platform flags named), as text for people and as JSON for tools.

import {
  ATTESTATION_REPORT,
  checkReportBytes,
  GUEST_POLICY,
  PLATFORM_INFO,
  productFromCpuid,
  SIGNER_INFO,
  TCB_VERSION,
  bytesToHex,
} from '../arch/index.js';

export interface TcbView {
  raw: string;
  bootLoader: number;
  tee: number;
  snp: number;
  microcode: number;
}

export interface ReportView {
  version: number;
  guestSvn: number;
  policy: { raw: string; abiMajor: number; abiMinor: number; flags: string[] };
  familyId: string;
  imageId: string;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: TcbView;
  platformInfo: { raw: string; flags: string[] };
  signerInfo: { authorKeyEn: boolean; maskChipKey: boolean; signingKey: string };
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  reportIdMa: string;
  reportedTcb: TcbView;
  cpuid: { family: number; model: number; stepping: number; product: string } | null;
  chipId: string;
  committedTcb: TcbView;
  currentFirmware: string;
  committedFirmware: string;
  launchTcb: TcbView;
  signature: { r: string; s: string };
}

function tcb(raw: bigint): TcbView {
  const t = TCB_VERSION.decode(raw);
  return {
    raw: '0x' + raw.toString(16).padStart(16, '0'),
    bootLoader: Number(t.bootLoader),
    tee: Number(t.tee),
    snp: Number(t.snp),
    microcode: Number(t.microcode),
  };
}

/** Names of the set one-bit fields of a word (reserved must-be-one bits left out). */
function setFlags(layout: typeof GUEST_POLICY | typeof PLATFORM_INFO, word: bigint): string[] {
  return Object.entries(layout.specs)
    .filter(([name, f]) => f.width === 1 && !name.startsWith('reserved'))
    .filter(([, f]) => ((word >> BigInt(f.lo)) & 1n) === 1n)
    .map(([name]) => name);
}

/** Strips the zero padding of a little-endian signature component and shows it big-endian. */
function sigHex(le: Uint8Array): string {
  const be = Uint8Array.from(le).reverse();
  let i = 0;
  while (i < be.length - 1 && be[i] === 0) i++;
  return bytesToHex(be.subarray(i));
}

/** Decodes a report; throws ReportFormatError (a one-sentence reason) for unreadable input. */
export function viewReport(bytes: Uint8Array): ReportView {
  const version = checkReportBytes(bytes);
  const r = ATTESTATION_REPORT.on(bytes);
  const policy = r.get('policy');
  const platform = r.get('platformInfo');
  const signer = BigInt(r.get('signerInfo'));
  const signingKey = Number(SIGNER_INFO.get(signer, 'signingKey'));
  const fam = r.get('cpuidFamId');
  const mod = r.get('cpuidModId');
  const fw = (maj: number, min: number, build: number): string => `${maj}.${min}.${build}`;
  return {
    version,
    guestSvn: r.get('guestSvn'),
    policy: {
      raw: '0x' + policy.toString(16),
      abiMajor: Number(GUEST_POLICY.get(policy, 'abiMajor')),
      abiMinor: Number(GUEST_POLICY.get(policy, 'abiMinor')),
      flags: setFlags(GUEST_POLICY, policy),
    },
    familyId: bytesToHex(r.get('familyId')),
    imageId: bytesToHex(r.get('imageId')),
    vmpl: r.get('vmpl'),
    signatureAlgo: r.get('signatureAlgo'),
    currentTcb: tcb(r.get('currentTcb')),
    platformInfo: {
      raw: '0x' + platform.toString(16),
      flags: setFlags(PLATFORM_INFO, platform),
    },
    signerInfo: {
      authorKeyEn: SIGNER_INFO.has(signer, 'authorKeyEn'),
      maskChipKey: SIGNER_INFO.has(signer, 'maskChipKey'),
      signingKey:
        signingKey === 0
          ? 'VCEK'
          : signingKey === 1
            ? 'VLEK'
            : signingKey === 7
              ? 'none'
              : `reserved (${signingKey})`,
    },
    reportData: bytesToHex(r.get('reportData')),
    measurement: bytesToHex(r.get('measurement')),
    hostData: bytesToHex(r.get('hostData')),
    idKeyDigest: bytesToHex(r.get('idKeyDigest')),
    authorKeyDigest: bytesToHex(r.get('authorKeyDigest')),
    reportId: bytesToHex(r.get('reportId')),
    reportIdMa: bytesToHex(r.get('reportIdMa')),
    reportedTcb: tcb(r.get('reportedTcb')),
    cpuid:
      version >= 3
        ? {
            family: fam,
            model: mod,
            stepping: r.get('cpuidStep'),
            product: productFromCpuid(fam, mod) ?? 'unknown',
          }
        : null,
    chipId: bytesToHex(r.get('chipId')),
    committedTcb: tcb(r.get('committedTcb')),
    currentFirmware: fw(r.get('currentMajor'), r.get('currentMinor'), r.get('currentBuild')),
    committedFirmware: fw(
      r.get('committedMajor'),
      r.get('committedMinor'),
      r.get('committedBuild'),
    ),
    launchTcb: tcb(r.get('launchTcb')),
    signature: { r: sigHex(r.get('signatureR')), s: sigHex(r.get('signatureS')) },
  };
}

function tcbText(t: TcbView): string {
  return `${t.raw} (boot loader ${t.bootLoader}, TEE ${t.tee}, SNP ${t.snp}, microcode ${t.microcode})`;
}

function bytesText(hex: string): string {
  if (/^(00)+$/.test(hex)) return `(zero, ${hex.length / 2} bytes)`;
  if (/^(ff)+$/.test(hex)) return `(all 0xff, ${hex.length / 2} bytes)`;
  return hex;
}

/** A readable multi-line rendering of a decoded report. */
export function formatReport(v: ReportView): string {
  const rows: [string, string][] = [
    ['Version', String(v.version)],
    ['Guest SVN', String(v.guestSvn)],
    [
      'Policy',
      `${v.policy.raw} (ABI ${v.policy.abiMajor}.${v.policy.abiMinor}${v.policy.flags.length ? ', ' + v.policy.flags.join(', ') : ''})`,
    ],
    ['Family ID', bytesText(v.familyId)],
    ['Image ID', bytesText(v.imageId)],
    ['VMPL', String(v.vmpl)],
    [
      'Signature algorithm',
      v.signatureAlgo === 1 ? '1 (ECDSA P-384 with SHA-384)' : `${v.signatureAlgo} (unknown)`,
    ],
    ['Current TCB', tcbText(v.currentTcb)],
    [
      'Platform info',
      `${v.platformInfo.raw}${v.platformInfo.flags.length ? ' (' + v.platformInfo.flags.join(', ') + ')' : ''}`,
    ],
    [
      'Signer',
      `${v.signerInfo.signingKey}${v.signerInfo.authorKeyEn ? ', author key enabled' : ''}${v.signerInfo.maskChipKey ? ', chip key masked' : ''}`,
    ],
    ['Report data', bytesText(v.reportData)],
    ['Measurement', bytesText(v.measurement)],
    ['Host data', bytesText(v.hostData)],
    ['ID key digest', bytesText(v.idKeyDigest)],
    ['Author key digest', bytesText(v.authorKeyDigest)],
    ['Report ID', bytesText(v.reportId)],
    ['Report ID (MA)', bytesText(v.reportIdMa)],
    ['Reported TCB', tcbText(v.reportedTcb)],
    [
      'CPUID',
      v.cpuid === null
        ? '(not in version 2 reports)'
        : `family 0x${v.cpuid.family.toString(16)}, model 0x${v.cpuid.model.toString(16)}, stepping ${v.cpuid.stepping} (${v.cpuid.product})`,
    ],
    ['Chip ID', bytesText(v.chipId)],
    ['Committed TCB', tcbText(v.committedTcb)],
    ['Current firmware', v.currentFirmware],
    ['Committed firmware', v.committedFirmware],
    ['Launch TCB', tcbText(v.launchTcb)],
    ['Signature R', v.signature.r],
    ['Signature S', v.signature.s],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, val]) => `${(k + ':').padEnd(width + 1)} ${val}`).join('\n');
}
