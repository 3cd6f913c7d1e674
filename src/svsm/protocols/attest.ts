// The attestation protocol (SVSM spec, protocol 1). Not implemented yet: every call answers
// UNSUPPORTED_CALL, so a guest can tell it is absent rather than get a fake report.

import { SvsmResult } from '../../arch/index.js';
import type { SvsmCall } from './call.js';

export function attestProtocol(c: SvsmCall): number {
  void c;
  return SvsmResult.UNSUPPORTED_CALL;
}
