// Startup, Shutdown, testing and random numbers (Part 3, sections 9, 10 and 16).

import { CC, LIMITS, RC, SU } from '../constants.js';
import { fail, rcParam } from '../errors.js';
import { b2, params, u16, yesNo } from '../marshal.js';
import { command, type CommandDef } from '../command.js';

const readSu = (r: Parameters<typeof u16>[0]): number => {
  const su = r.u16();
  if (su !== SU.CLEAR && su !== SU.STATE) fail(RC.VALUE);
  return su;
};

export const startupCommands: CommandDef[] = [
  command({
    cc: CC.Startup,
    name: 'Startup',
    handles: [],
    noSessions: true,
    nv: true,
    parse: (r) => params<[number]>(r, readSu),
    run(m, _h, [su]) {
      if (m.started) fail(RC.INITIALIZE);
      const s = m.state;
      if (su === SU.STATE && (s.orderly !== 'state' || s.savedPcrs === undefined)) {
        fail(rcParam(RC.VALUE, 1));
      }
      m.safe = s.orderly !== 'none';
      m.objects.clear();
      m.sequences.clear();
      m.sessions.clear();
      m.platformAuth = new Uint8Array(0);
      m.platformPolicy = { alg: 0x0010, digest: new Uint8Array(0) };
      m.phEnable = true;
      m.phEnableNV = true;
      if (su === SU.STATE) {
        // TPM Resume: PCRs come back as Shutdown(STATE) saved them.
        m.pcrs.restore(s.savedPcrs!.banks, s.savedPcrs!.updateCounter);
        s.restartCount++;
      } else if (s.orderly === 'state') {
        // TPM Restart: Startup(CLEAR) after Shutdown(STATE).
        m.pcrs.reset();
        s.restartCount++;
        m.shEnable = true;
        m.ehEnable = true;
      } else {
        // TPM Reset: new null hierarchy, counters restart.
        m.pcrs.reset();
        s.resetCount++;
        s.restartCount = 0;
        m.shEnable = true;
        m.ehEnable = true;
        m.nullProof = m.random(64);
        m.nullSeed = m.random(64);
      }
      s.orderly = 'none';
      s.savedPcrs = undefined;
      m.started = true;
      m.dirty = true;
    },
  }),
  command({
    cc: CC.Shutdown,
    name: 'Shutdown',
    handles: [],
    nv: true,
    parse: (r) => params<[number]>(r, readSu),
    run(m, _h, [su]) {
      const s = m.state;
      m.clock();
      if (su === SU.STATE) {
        s.orderly = 'state';
        s.savedPcrs = { banks: m.pcrs.snapshot(), updateCounter: m.pcrs.updateCounter };
      } else {
        s.orderly = 'clear';
        s.savedPcrs = undefined;
      }
      m.dirty = true;
    },
  }),
  command({
    cc: CC.SelfTest,
    name: 'SelfTest',
    handles: [],
    parse: (r) => params<[boolean]>(r, yesNo),
    run(m) {
      m.selfTested = true;
    },
  }),
  command({
    cc: CC.GetTestResult,
    name: 'GetTestResult',
    handles: [],
    encrypt: true,
    parse: (r) => params<[]>(r),
    run(_m, _h, _p, out) {
      out.b2(new Uint8Array(0)).u32(RC.SUCCESS);
    },
  }),
  command({
    cc: CC.GetRandom,
    name: 'GetRandom',
    handles: [],
    encrypt: true,
    parse: (r) => params<[number]>(r, u16),
    run(m, _h, [n], out) {
      // At most one digest's worth per call (Part 3, 16.1).
      out.b2(m.random(Math.min(n, LIMITS.MAX_DIGEST)));
    },
  }),
  command({
    cc: CC.StirRandom,
    name: 'StirRandom',
    handles: [],
    decrypt: true,
    parse: (r) => params<[Uint8Array]>(r, b2(128)),
    run(m, _h, [data]) {
      m.stir(data);
    },
  }),
];
