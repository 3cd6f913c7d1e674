// Hierarchy commands (Part 3, section 24) and dictionary-attack functions (section 25):
// HierarchyChangeAuth, Clear, ClearControl, DictionaryAttackLockReset, DictionaryAttackParameters.

import { CC, RC, RH } from '../constants.js';
import { fail, rcParam } from '../errors.js';
import { b2, params, u32, yesNo } from '../marshal.js';
import { command, type CommandDef } from '../command.js';

export const hierarchyCommands: CommandDef[] = [
  command({
    cc: CC.HierarchyChangeAuth,
    name: 'HierarchyChangeAuth',
    handles: [{ kind: 'hierarchyAuth', auth: 'USER' }],
    decrypt: true,
    nv: true,
    authAfter: true,
    parse: (r) => params<[Uint8Array]>(r, b2(64)),
    run(m, [h], [newAuth]) {
      const s = m.state;
      switch (h!.handle) {
        case RH.OWNER:
          s.ownerAuth = newAuth;
          break;
        case RH.ENDORSEMENT:
          s.endorsementAuth = newAuth;
          break;
        case RH.LOCKOUT:
          s.lockoutAuth = newAuth;
          break;
        case RH.PLATFORM:
          m.platformAuth = newAuth;
          break;
      }
      m.dirty = true;
    },
  }),
  command({
    cc: CC.Clear,
    name: 'Clear',
    handles: [{ kind: 'clear', auth: 'USER' }],
    nv: true,
    parse: (r) => params<[]>(r),
    run(m) {
      if (m.state.disableClear) fail(RC.DISABLED);
      m.clearOwner();
    },
  }),
  command({
    cc: CC.ClearControl,
    name: 'ClearControl',
    handles: [{ kind: 'clear', auth: 'USER' }],
    nv: true,
    parse: (r) => params<[boolean]>(r, yesNo),
    run(m, [h], [disable]) {
      // Only the platform may enable Clear again (Part 3, 24.7).
      if (!disable && h!.handle === RH.LOCKOUT) fail(RC.AUTH_FAIL);
      m.state.disableClear = disable;
      m.dirty = true;
    },
  }),
  command({
    cc: CC.DictionaryAttackLockReset,
    name: 'DictionaryAttackLockReset',
    handles: [{ kind: 'lockout', auth: 'USER' }],
    nv: true,
    parse: (r) => params<[]>(r),
    run(m) {
      m.state.failedTries = 0;
      m.dirty = true;
    },
  }),
  command({
    cc: CC.DictionaryAttackParameters,
    name: 'DictionaryAttackParameters',
    handles: [{ kind: 'lockout', auth: 'USER' }],
    nv: true,
    parse: (r) => params<[number, number, number]>(r, u32, u32, u32),
    run(m, _h, [newMaxTries, newRecoveryTime, lockoutRecovery]) {
      if (newMaxTries > 0xffff) fail(rcParam(RC.VALUE, 1));
      const s = m.state;
      s.maxTries = newMaxTries;
      s.recoveryTime = newRecoveryTime * 1000;
      s.lockoutRecovery = lockoutRecovery * 1000;
      s.failedTries = 0;
      m.dirty = true;
    },
  }),
];
