// The public surface of src/tpm: a TPM 2.0 engine, its persistent state and the mssim server.
export { Tpm } from './tpm.js';
export type { TpmOptions } from './machine.js';
export {
  serializeState,
  parseState,
  manufacture,
  StateFormatError,
  type PersistentState,
} from './state.js';
export { startTpmServer, type TpmServer, type TpmServerOptions } from './mssim-server.js';
export { CommandConnection, PlatformConnection, SimulatorPlatform, TPM_SIGNAL } from './mssim.js';
export { RC, CC, ALG, ST, SU, RH } from './constants.js';
