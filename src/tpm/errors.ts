// A TPM response code as a value that unwinds the command being executed. The engine turns it
// into the 10-byte error response; it never escapes the engine. Format-1 codes carry the number of
// the handle, session or parameter they are about (Part 2, Table 16).

import { RC_FMT1, RC_P, RC_S } from './constants.js';

export class TpmError extends Error {
  override readonly name = 'TpmError';
  constructor(readonly rc: number) {
    super(`TPM_RC 0x${rc.toString(16).padStart(3, '0')}`);
  }
}

/** Throws a TPM response code. */
export function fail(rc: number): never {
  throw new TpmError(rc);
}

/** True for a format-1 code that does not yet name a handle, session or parameter. */
function unnumbered(rc: number): boolean {
  return (rc & RC_FMT1) !== 0 && (rc & 0xfc0) === RC_FMT1;
}

/** The format-1 code `rc` about parameter n (1-based); other codes pass through. */
export function rcParam(rc: number, n: number): number {
  return unnumbered(rc) ? rc | RC_P | ((n & 0xf) << 8) : rc;
}

/** The format-1 code `rc` about handle n (1-based). */
export function rcHandle(rc: number, n: number): number {
  return unnumbered(rc) ? rc | ((n & 0x7) << 8) : rc;
}

/** The format-1 code `rc` about session n (1-based). */
export function rcSession(rc: number, n: number): number {
  return unnumbered(rc) ? rc | RC_S | ((n & 0x7) << 8) : rc;
}

/** Runs `fn`, numbering any unnumbered format-1 code it throws with `number(rc)`. */
export function numbered<T>(fn: () => T, number: (rc: number) => number): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TpmError) throw new TpmError(number(e.rc));
    throw e;
  }
}
