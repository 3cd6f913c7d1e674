// The SVSM's panic: report the error with its backtrace on the console, wipe every VMPCK from the
// secrets page and from memory (so a compromised SVSM state can never sign guest messages), and ask
// the host to terminate the VM.

import {
  MSR,
  msrTerminateRequest,
  SNP_SECRETS_PAGE,
  VMPCK_FIELDS,
  type Vmpl0,
} from '../arch/index.js';
import { currentKernel } from './kernel.js';

/** GHCB termination reason set 0, code 0 ("general"). */
const TERM_SET = 0;
const TERM_GENERAL = 0;

export function panic(cpu: Vmpl0, error: unknown): void {
  const k = currentKernel();
  const text =
    error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
  try {
    if (k !== null) {
      k.log(cpu, `PANIC: ${text}`);
      k.vmpck0.fill(0);
      const secrets = k.space.va(k.boot.secretsGpa);
      for (const f of VMPCK_FIELDS)
        cpu.write(secrets + SNP_SECRETS_PAGE.offset(f), new Uint8Array(32));
    }
  } finally {
    // The host ends the VM here; the VMGEXIT does not return to us.
    cpu.wrmsr(MSR.GHCB, msrTerminateRequest(TERM_SET, TERM_GENERAL));
    cpu.vmgexit();
  }
}
