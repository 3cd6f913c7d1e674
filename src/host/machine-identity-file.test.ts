import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chipIdentityToJson } from '../hw/asp/chip-identity.js';
import {
  loadTestIdentity,
  TEST_IDENTITY_ISSUED_AT,
  TEST_IDENTITY_SEED,
  testIdentityJson,
} from '../hw/asp/test-identity.fixture.js';
import { seededRandom } from '../hw/random.js';
import {
  loadOrCreateMachineIdentity,
  machineIdentityPath,
  MachineIdentityFileError,
  readMachineIdentityFile,
  writeNewMachineIdentityFile,
} from './machine-identity-file.js';

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'svsm-machine-'));
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

describe('machineIdentityPath', () => {
  it('is <dir>/.svsm-machine/identity.json', () => {
    expect(machineIdentityPath('/x')).toBe('/x/.svsm-machine/identity.json');
  });
});

describe('loadOrCreateMachineIdentity', () => {
  it('creates the file on first use (mode 0600) and reads the same identity afterwards', () => {
    let clockReads = 0;
    const now = (): Date => {
      clockReads++;
      return TEST_IDENTITY_ISSUED_AT;
    };
    const first = loadOrCreateMachineIdentity(base, {
      random: seededRandom(TEST_IDENTITY_SEED),
      now,
    });
    expect(first.created).toBe(true);
    expect(first.path).toBe(machineIdentityPath(base));
    expect(statSync(first.path).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(first.path)).mode & 0o077).toBe(0);
    // The injected seed and clock make it exactly the TEST-ONLY fixture.
    expect(readFileSync(first.path, 'utf8')).toBe(testIdentityJson());
    expect(readdirSync(dirname(first.path))).toEqual(['identity.json']);

    const second = loadOrCreateMachineIdentity(base, { now });
    expect(second.created).toBe(false);
    expect(chipIdentityToJson(second.identity)).toBe(chipIdentityToJson(first.identity));
    expect(clockReads).toBe(1);
  });

  it('uses the file another process created meanwhile instead of its own', () => {
    const path = machineIdentityPath(base);
    const theirs = testIdentityJson();
    // The clock is read after the existence check and before the write: the other process
    // wins the race there.
    const now = (): Date => {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, theirs, { mode: 0o600 });
      return new Date('2030-06-01T00:00:00Z');
    };
    const got = loadOrCreateMachineIdentity(base, { random: seededRandom('ours'), now });
    expect(got.created).toBe(false);
    expect(chipIdentityToJson(got.identity)).toBe(theirs);
    expect(readFileSync(path, 'utf8')).toBe(theirs);
    expect(readdirSync(dirname(path))).toEqual(['identity.json']);
  });

  it('refuses a corrupt file with an error naming it, and leaves it untouched', () => {
    const path = machineIdentityPath(base);
    mkdirSync(dirname(path), { recursive: true });
    const corrupt = testIdentityJson().replace('"snp": 8', '"snp": "eight"');
    writeFileSync(path, corrupt);
    const load = (): unknown => loadOrCreateMachineIdentity(base, { random: seededRandom('x') });
    expect(load).toThrow(MachineIdentityFileError);
    expect(load).toThrow(`the machine identity file ${path} is not valid: tcb.snp must be`);
    expect(load).toThrow(/never replaced automatically/);
    expect(readFileSync(path, 'utf8')).toBe(corrupt);
  });

  it('reports an unreadable path (a directory) naming the file', () => {
    const path = machineIdentityPath(base);
    mkdirSync(path, { recursive: true });
    expect(() => loadOrCreateMachineIdentity(base)).toThrow(
      `cannot read the machine identity file ${path} (EISDIR)`,
    );
  });
});

describe('writeNewMachineIdentityFile', () => {
  it('writes nothing and says so when the file exists', () => {
    const path = machineIdentityPath(base);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, 'existing');
    expect(writeNewMachineIdentityFile(path, loadTestIdentity(), seededRandom('w'))).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('existing');
    expect(readdirSync(dirname(path))).toEqual(['identity.json']);
  });

  it('writes a file that reads back as the same identity', () => {
    const path = join(base, 'deep', 'dir', 'id.json');
    const identity = loadTestIdentity();
    expect(writeNewMachineIdentityFile(path, identity, seededRandom('w'))).toBe(true);
    expect(chipIdentityToJson(readMachineIdentityFile(path))).toBe(chipIdentityToJson(identity));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });
});
