// A scripted guest that asks the SVSM for an attestation (ATTEST_SERVICES) with a nonce, as a
// relying party's agent in the guest would, and hands back what the SVSM wrote: the report, the
// services manifest and the certificate table.

import { type GuestCpu, SvsmResult, resultName } from '../arch/index.js';
import { SvsmClient } from './svsm-client.js';

export interface Attestation {
  readonly report: Uint8Array;
  readonly manifest: Uint8Array;
  readonly certificates: Uint8Array;
}

const BUFFERS = 0x20_0000;
const NONCE = BUFFERS;
const REPORT = BUFFERS + 0x1000;
const MANIFEST = BUFFERS + 0x2000;
const CERTS = BUFFERS + 0x3000;
// The SVSM accepts up to 16 KiB of certificate buffer.
const CERTS_SIZE = 0x4000;

export function attestGuest(
  nonce: Uint8Array,
  done: (a: Attestation) => void,
): (cpu: GuestCpu) => Generator<void, void, void> {
  return function* (cpu) {
    const svsm = new SvsmClient(
      cpu,
      SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))),
    );
    // The buffers must be validated guest memory before the SVSM can write them.
    const v = yield* svsm.pvalidate([
      { pageSize: 1, validate: true, ignoreCf: true, gfn: BUFFERS / 0x1000 },
    ]);
    if (v.rax !== 0n)
      throw new Error(`guest: PVALIDATE of its buffers failed: ${resultName(v.rax)}`);
    cpu.write(NONCE, nonce);
    cpu.log(`guest: ATTEST_SERVICES with a ${nonce.length}-byte nonce`);
    const r = yield* svsm.attestServices({
      nonce: { gpa: NONCE, size: nonce.length },
      report: { gpa: REPORT, size: 0x1000 },
      manifest: { gpa: MANIFEST, size: 0x1000 },
      certificates: { gpa: CERTS, size: CERTS_SIZE },
    });
    if (r.rax !== BigInt(SvsmResult.SUCCESS)) {
      throw new Error(`guest: ATTEST_SERVICES failed: ${resultName(r.rax)}`);
    }
    cpu.log(`guest: report ${r.r8} bytes, manifest ${r.rcx} bytes, certificates ${r.rdx} bytes`);
    done({
      report: cpu.read(REPORT, Number(r.r8)),
      manifest: cpu.read(MANIFEST, Number(r.rcx)),
      certificates: cpu.read(CERTS, Number(r.rdx)),
    });
  };
}
