// SVSM console output: bytes to COM1 through the GHCB (string I/O via the shared buffer), as an
// SVSM under SEV-SNP must, since port I/O is intercepted.

import { IOIO_EXITINFO1, SW_EXITCODE, type Vmpl0 } from '../arch/index.js';
import type { GhcbClient } from './sev/ghcb-client.js';

const COM1 = 0x3f8;
const CHUNK = 0x7f0;

export function serialWrite(ghcb: GhcbClient, text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length; off += CHUNK) {
    const part = bytes.subarray(off, off + CHUNK);
    const info = IOIO_EXITINFO1.encode({ port: COM1, string: true, size8: true, address64: true });
    ghcb.callOrPanic(
      SW_EXITCODE.IOIO,
      {
        swExitInfo1: info,
        swExitInfo2: BigInt(part.length),
        swScratch: BigInt(ghcb.sharedBufferGpa),
      },
      part,
    );
  }
}

/** Writes one log line for vCPU `cpu`. */
export function logLine(cpu: Vmpl0, ghcb: GhcbClient | null, text: string): void {
  if (ghcb === null) return;
  serialWrite(ghcb, `[svsm cpu${cpu.vcpuIndex}] ${text}\n`);
}
