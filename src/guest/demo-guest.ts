// The demo guest of `svsm run`: what a guest OS does first under an SVSM, as a scripted VMPL2
// program that logs each step - find the SVSM through its secrets page, ask which protocols it
// speaks, validate memory through it, bring up a second vCPU with CREATE_VCPU, and ask for an
// attestation report.

import {
  ATTESTATION_REPORT,
  type GuestCpu,
  SvsmProtocol,
  SvsmResult,
  bytesToHex,
  resultName,
} from '../arch/index.js';
import { SvsmClient, writeApVmsa } from './svsm-client.js';

export interface DemoOptions {
  /** Guest memory to validate through the SVSM from 2 MiB up, in 2 MiB entries. */
  readonly validateBytes: number;
  readonly vcpus: number;
}

const PAGE = 0x1000;
const HUGE = 0x20_0000;
const AP_VMSA = 0x11000;
const AP_CAA = 0x12000;
/** The attestation buffers, in the first validated 2 MiB page. */
const NONCE = 0x20_0000;
const REPORT = NONCE + 0x1000;
const MANIFEST = NONCE + 0x2000;
const CERTS = NONCE + 0x3000;

const entry = (
  gpa: number,
  pageSize: number,
): { pageSize: number; validate: boolean; ignoreCf: boolean; gfn: number } => ({
  pageSize,
  validate: true,
  ignoreCf: false,
  gfn: gpa / PAGE,
});

export function demoGuest(o: DemoOptions): (cpu: GuestCpu) => Generator<void, void, void> {
  return function* (cpu) {
    if (cpu.vcpuIndex !== 0) {
      // An AP: its calling area arrives in RSI of the first state the BSP gave it.
      const svsm = new SvsmClient(cpu, Number(cpu.readRegister('rsi')));
      const v = yield* svsm.queryProtocol(SvsmProtocol.CORE, 1);
      cpu.log(
        `guest vCPU ${cpu.vcpuIndex}: running at VMPL${cpu.vmpl}; its own SVSM call answered (core ${v?.minVersion}-${v?.maxVersion}); halting`,
      );
      return;
    }
    const secretsGpa = Number(cpu.readRegister('rsi'));
    const caa = SvsmClient.caaFromSecrets(cpu, secretsGpa);
    cpu.log(
      `guest: secrets page at 0x${secretsGpa.toString(16)}, SVSM calling area at 0x${caa.toString(16)}`,
    );
    const svsm = new SvsmClient(cpu, caa);
    for (const [name, p] of [
      ['core', SvsmProtocol.CORE],
      ['attestation', SvsmProtocol.ATTEST],
      ['vTPM', SvsmProtocol.VTPM],
    ] as const) {
      const v = yield* svsm.queryProtocol(p, 1);
      cpu.log(
        `guest: QUERY_PROTOCOL ${name}: ${v === null ? 'not supported' : `versions ${v.minVersion}-${v.maxVersion}`}`,
      );
    }

    const huge = [];
    for (let gpa = HUGE; gpa < HUGE + o.validateBytes; gpa += HUGE) huge.push(entry(gpa, 1));
    const r = yield* svsm.pvalidate(huge);
    cpu.log(
      `guest: PVALIDATE ${huge.length} x 2 MiB at 0x${HUGE.toString(16)}: ${r.rax === 0n ? 'success' : resultName(r.rax)} (${r.done} done)`,
    );
    const probe = cpu.read(HUGE, 16);
    cpu.log(
      `guest: validated memory reads ${probe.every((b) => b === 0) ? 'as zero' : 'NOT as zero'}`,
    );

    if (o.vcpus >= 2) {
      const p = yield* svsm.pvalidate([entry(AP_VMSA, 0), entry(AP_CAA, 0)]);
      writeApVmsa(cpu, AP_VMSA, { startIp: 0x9_f000, rsi: BigInt(AP_CAA) });
      const c = p.rax === 0n ? yield* svsm.createVcpu(AP_VMSA, AP_CAA, 1) : p.rax;
      cpu.log(
        `guest: CREATE_VCPU for vCPU 1 (VMSA 0x${AP_VMSA.toString(16)}, CAA 0x${AP_CAA.toString(16)}): ${c === 0n ? 'success' : resultName(c)}`,
      );
    }

    const nonce = Uint8Array.from({ length: 64 }, (_, i) => i);
    cpu.write(NONCE, nonce);
    const a = yield* svsm.attestServices({
      nonce: { gpa: NONCE, size: nonce.length },
      report: { gpa: REPORT, size: PAGE },
      manifest: { gpa: MANIFEST, size: PAGE },
      certificates: { gpa: CERTS, size: 4 * PAGE },
    });
    if (a.rax === BigInt(SvsmResult.SUCCESS)) {
      const report = cpu.read(REPORT, Number(a.r8));
      const v = ATTESTATION_REPORT.on(report);
      cpu.log(
        `guest: ATTEST_SERVICES: report version ${v.get('version')}, VMPL ${v.get('vmpl')}, measurement ${bytesToHex(v.get('measurement')).slice(0, 32)}..., ${a.rdx} bytes of certificates`,
      );
    } else {
      cpu.log(`guest: ATTEST_SERVICES failed: ${resultName(a.rax)}`);
    }
    cpu.log('guest: done, halting');
  };
}
