// `svsm attest --out-dir D [--nonce HEX]`: launches the CVM, has its guest ask the SVSM for an
// attestation, and writes what a relying party needs: report.bin, the ARK/ASK/VCEK certificates
// (PEM), the services manifest and the nonce. `svsm verify --certs-dir D --report D/report.bin`
// accepts them, and the report's MEASUREMENT is what `svsm measure` predicts for the image.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  ATTEST_NONCE_SIZE,
  ATTESTATION_REPORT,
  bytesToHex,
  CERT_GUID,
  hexToBytes,
  parseCertTable,
} from '../../arch/index.js';
import { derToPem } from '../../hw/asp/kds-certs.js';
import { attestGuest, type Attestation } from '../../guest/attest-guest.js';
import { systemRandom, randomBytesFrom } from '../../hw/random.js';
import { createCvm, DEFAULT_SVSM_BASE } from '../cvm.js';
import { type CliIo, UserError } from '../io.js';
import { DEFAULT_MACHINE_DIR, loadOrCreateIdentity } from '../machine-identity.js';

interface AttestOptions {
  outDir: string;
  nonce?: string;
  memory: string;
  vcpus: string;
  machineDir: string;
  seed?: string;
}

function parseVcpus(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 64)
    throw new UserError(`--vcpus must be an integer 1..64, got "${text}"`);
  return n;
}

export function attest(o: AttestOptions, io: CliIo, setExitCode: (code: number) => void): void {
  let nonce: Uint8Array;
  if (o.nonce === undefined) nonce = randomBytesFrom(systemRandom(), ATTEST_NONCE_SIZE);
  else {
    try {
      nonce = hexToBytes(o.nonce);
    } catch {
      throw new UserError(`--nonce must be hex, got "${o.nonce}"`);
    }
    if (nonce.length !== ATTEST_NONCE_SIZE) {
      throw new UserError(
        `--nonce must be ${ATTEST_NONCE_SIZE} bytes (${2 * ATTEST_NONCE_SIZE} hex digits), got ${nonce.length}`,
      );
    }
  }
  const { identity } = loadOrCreateIdentity(o.machineDir, io, 'svsm attest');
  let result: Attestation | null = null;
  const cvm = createCvm(
    attestGuest(nonce, (a) => {
      result = a;
    }),
    {
      identity,
      memory: o.memory,
      vcpus: parseVcpus(o.vcpus),
      svsmBase: DEFAULT_SVSM_BASE,
      ...(o.seed === undefined ? {} : { seed: o.seed }),
      onHostLog: () => undefined,
      onSerialLine: (l) => io.out(l),
      onGuestLog: (l) => io.out(l),
    },
  );
  const measurement = cvm.vm.launch(cvm.plan);
  cvm.vm.run();
  const t = cvm.vm.termination;
  const got = result as Attestation | null;
  if (t !== null || got === null) {
    io.err(`svsm attest: no attestation: ${t?.reason ?? 'the guest did not finish'}`);
    setExitCode(1);
    return;
  }
  const certs = new Map(parseCertTable(got.certificates).map((e) => [e.guid, e.data]));
  mkdirSync(o.outDir, { recursive: true });
  const write = (name: string, data: Uint8Array | string): void =>
    writeFileSync(join(o.outDir, name), data);
  write('report.bin', got.report);
  write('manifest.bin', got.manifest);
  write('nonce.bin', nonce);
  for (const [name, guid] of [
    ['ark.pem', CERT_GUID.ARK],
    ['ask.pem', CERT_GUID.ASK],
    ['vcek.pem', CERT_GUID.VCEK],
  ] as const) {
    const der = certs.get(guid);
    if (der === undefined) throw new Error(`the certificate table has no ${name}`);
    write(name, derToPem(der));
  }
  const reported = ATTESTATION_REPORT.get(got.report, 'measurement');
  io.out(
    `svsm attest: wrote report.bin, ark.pem, ask.pem, vcek.pem, manifest.bin, nonce.bin to ${o.outDir}`,
  );
  io.out(`svsm attest: MEASUREMENT ${bytesToHex(reported)} (launch: ${bytesToHex(measurement)})`);
}

export function addAttestCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('attest')
    .description(
      'launch the CVM, have its guest request an attestation from the SVSM, and write the evidence',
    )
    .requiredOption(
      '--out-dir <dir>',
      'where to write report.bin, ark/ask/vcek.pem, manifest.bin and nonce.bin',
    )
    .option(
      '--nonce <hex>',
      'the 64-byte nonce (128 hex digits) the report binds: REPORT_DATA = SHA-512(nonce || manifest); random if absent',
    )
    .option('--memory <size>', 'guest memory (as for run and build-image)', '512M')
    .option('--vcpus <n>', 'number of vCPUs (as for run and build-image)', '2')
    .option('--machine-dir <dir>', 'where the machine identity lives', DEFAULT_MACHINE_DIR)
    .option('--seed <text>', 'make the run reproducible')
    .action((opts: AttestOptions) => attest(opts, io, setExitCode));
}
