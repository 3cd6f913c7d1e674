// The machine identity file: where a host keeps its simulated chip (secret, ARK, ASK; see
// src/hw/asp/chip-identity.ts) between runs, so that the VCEK and the certificates a verifier
// has pinned stay the same. Default location `<dir>/.svsm-machine/identity.json`.
//
// Rules: the file is created on first use, from the system CSPRNG unless a source is injected;
// it is written to a temporary file (mode 0600) in the same directory and then hard-linked into
// place, which, unlike rename, fails if another process got there first, in which case we read
// theirs, so concurrent first runs agree on one machine. A file that exists but cannot be read
// or parsed is an error naming the file; it is never replaced.

import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
  existsSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { bytesToHex } from '../arch/index.js';
import {
  ChipIdentityError,
  chipIdentityFromJson,
  chipIdentityToJson,
  createChipIdentity,
  type ChipIdentity,
  type ChipIdentityOptions,
} from '../hw/asp/chip-identity.js';
import { randomBytesFrom, systemRandom, type RandomSource } from '../hw/random.js';

export const MACHINE_DIR_NAME = '.svsm-machine';
export const MACHINE_IDENTITY_FILE_NAME = 'identity.json';
/** Owner read/write only: the file holds the chip secret and the ARK/ASK private keys. */
export const MACHINE_IDENTITY_FILE_MODE = 0o600;

/** `<baseDir>/.svsm-machine/identity.json`. */
export function machineIdentityPath(baseDir: string): string {
  return join(baseDir, MACHINE_DIR_NAME, MACHINE_IDENTITY_FILE_NAME);
}

/** The identity file cannot be read, parsed or written; the message names the file. */
export class MachineIdentityFileError extends Error {
  override readonly name = 'MachineIdentityFileError';
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface MachineIdentityOptions {
  /** Randomness for a new identity; the system CSPRNG by default. */
  readonly random?: RandomSource;
  /**
   * The wall clock, read once when a new identity is created, to date its certificates:
   * verifiers check validity against real time. Never read when the file exists.
   */
  readonly now?: () => Date;
  /** Product, TCB and firmware of a new identity. */
  readonly chip?: Omit<ChipIdentityOptions, 'issuedAt'>;
}

export interface LoadedMachineIdentity {
  readonly identity: ChipIdentity;
  readonly path: string;
  /** True if this call created the file. */
  readonly created: boolean;
}

function errnoCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/** Reads and checks an identity file. */
export function readMachineIdentityFile(path: string): ChipIdentity {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new MachineIdentityFileError(
      path,
      `cannot read the machine identity file ${path} (${errnoCode(e) ?? String(e)})`,
      { cause: e },
    );
  }
  try {
    return chipIdentityFromJson(text);
  } catch (e) {
    if (!(e instanceof ChipIdentityError)) throw e;
    throw new MachineIdentityFileError(
      path,
      `the machine identity file ${path} is not valid: ${e.message}. It is never replaced ` +
        'automatically: restore it, or move it away to create a new machine',
      { cause: e },
    );
  }
}

/**
 * Writes `identity` to `path` if no file is there, atomically and with mode 0600. Returns false,
 * writing nothing, if the file already exists.
 */
export function writeNewMachineIdentityFile(
  path: string,
  identity: ChipIdentity,
  random: RandomSource,
): boolean {
  const dir = dirname(path);
  const tmp = join(
    dir,
    `.${MACHINE_IDENTITY_FILE_NAME}.${process.pid}.${bytesToHex(randomBytesFrom(random, 6))}.tmp`,
  );
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'wx', MACHINE_IDENTITY_FILE_MODE);
    try {
      writeSync(fd, chipIdentityToJson(identity));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new MachineIdentityFileError(
      path,
      `cannot write the machine identity file ${path} (${errnoCode(e) ?? String(e)})`,
      { cause: e },
    );
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'EEXIST') return false;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
      // A file system without hard links: rename, after a (racy) existence check.
      if (existsSync(path)) return false;
      renameSync(tmp, path);
      return true;
    }
    throw new MachineIdentityFileError(
      path,
      `cannot create the machine identity file ${path} (${code ?? String(e)})`,
      { cause: e },
    );
  } finally {
    if (existsSync(tmp)) unlinkSync(tmp);
  }
}

/**
 * The machine identity under `baseDir`: read from its file, or created and saved there on first
 * use (which takes a few seconds: two RSA-4096 keys).
 */
export function loadOrCreateMachineIdentity(
  baseDir: string,
  options: MachineIdentityOptions = {},
): LoadedMachineIdentity {
  return loadOrCreateMachineIdentityAt(machineIdentityPath(baseDir), options);
}

/** The same, for an identity file at an explicit path. */
export function loadOrCreateMachineIdentityAt(
  path: string,
  options: MachineIdentityOptions = {},
): LoadedMachineIdentity {
  if (existsSync(path)) return { identity: readMachineIdentityFile(path), path, created: false };
  const random = options.random ?? systemRandom();
  const now = options.now ?? ((): Date => new Date());
  const identity = createChipIdentity(random, { ...options.chip, issuedAt: now() });
  if (writeNewMachineIdentityFile(path, identity, random)) return { identity, path, created: true };
  // Another process created it meanwhile: use theirs.
  return { identity: readMachineIdentityFile(path), path, created: false };
}
