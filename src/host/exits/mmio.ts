// MMIO NAE events (MMIO_READ 0x8000_0001, MMIO_WRITE 0x8000_0002): EXITINFO1 = GPA, EXITINFO2 =
// length, the data in the scratch area at SW_SCRATCH (normally the GHCB's shared buffer), routed
// to the MMIO bus. Reads nobody claims return all ones.

import { GHCB_ERR } from '../../arch/index.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

/** Above this the address cannot be a guest physical address (52 bits). */
const GPA_LIMIT = 2 ** 52;

export function mmioExit(x: GhcbExit, write: boolean): void {
  if (x.missing('swScratch')) return;
  const gpa = x.get('swExitInfo1');
  const length = x.get('swExitInfo2');
  if (length > BigInt(Number.MAX_SAFE_INTEGER)) {
    x.error(GHCB_ERR.INVALID_SCRATCH_AREA);
    return;
  }
  const scratch = x.scratch(Number(length));
  if (scratch === null) return;
  const bus = platformOf(x.vm).mmio;
  const at = gpa + length <= BigInt(GPA_LIMIT) ? Number(gpa) : -1;
  if (write) {
    if (at >= 0) bus.write(at, scratch.bytes);
  } else {
    if (at >= 0) bus.read(at, scratch.bytes);
    else scratch.bytes.fill(0xff);
    scratch.commit();
  }
  x.ok(0n);
}
