// The simulated machine's identity for commands: `<dir>/identity.json`, created on first use.

import { join } from 'node:path';
import type { ChipIdentity } from '../hw/asp/chip-identity.js';
import {
  loadOrCreateMachineIdentityAt,
  MACHINE_DIR_NAME,
  MACHINE_IDENTITY_FILE_NAME,
  MachineIdentityFileError,
} from '../host/machine-identity-file.js';
import { existsSync } from 'node:fs';
import { type CliIo, UserError } from './io.js';

/** Default --machine-dir: `.svsm-machine` in the current directory. */
export const DEFAULT_MACHINE_DIR = MACHINE_DIR_NAME;

export function loadOrCreateIdentity(
  dir: string,
  io: CliIo,
  who: string,
): { identity: ChipIdentity; path: string; created: boolean } {
  const path = join(dir, MACHINE_IDENTITY_FILE_NAME);
  try {
    if (!existsSync(path))
      io.out(`${who}: creating a new machine identity in ${dir} (a few seconds)`);
    return loadOrCreateMachineIdentityAt(path);
  } catch (e) {
    if (e instanceof MachineIdentityFileError) throw new UserError(e.message);
    throw e;
  }
}
