// tpm2-tools against `svsm tpm serve`: PolicyOR, NV_Extend, NV_Increment, ObjectChangeAuth and
// DictionaryAttackParameters, end to end.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_TPM2_TOOLS, startServer, type TpmUnderTest } from './harness.js';

describe.runIf(HAVE_TPM2_TOOLS)('tpm2-tools policies and NV against svsm tpm serve', () => {
  let tpm: TpmUnderTest;
  const file = (name: string): string => join(tpm.dir, name);

  beforeAll(async () => {
    tpm = await startServer();
    await tpm.ok('tpm2_startup', '-c');
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('prim.ctx'));
  });
  afterAll(async () => {
    await tpm.stop();
  });

  async function trialPolicy(name: string, ...steps: string[][]): Promise<Buffer> {
    await tpm.ok('tpm2_startauthsession', '-S', file('trial.ctx'));
    for (const [tool, ...args] of steps) await tpm.ok(tool!, '-S', file('trial.ctx'), ...args);
    await tpm.ok('tpm2_flushcontext', file('trial.ctx'));
    return readFileSync(file(name));
  }

  it('PolicyOR: the trial digest is H(0 || CC || branches) and either branch unseals', async () => {
    const a = await trialPolicy('a.policy', ['tpm2_policyauthvalue', '-L', file('a.policy')]);
    const b = await trialPolicy('b.policy', [
      'tpm2_policycommandcode',
      '-L',
      file('b.policy'),
      'TPM2_CC_Unseal',
    ]);
    const branches = `sha256:${file('a.policy')},${file('b.policy')}`;
    const or = await trialPolicy('or.policy', ['tpm2_policyor', '-L', file('or.policy'), branches]);
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.alloc(32), Buffer.from('00000171', 'hex'), a, b]))
      .digest();
    expect(or.toString('hex')).toBe(expected.toString('hex'));

    writeFileSync(file('secret'), 'or-sealed');
    await tpm.createAndLoad(file('prim.ctx'), 's', '-L', file('or.policy'), '-i', file('secret'));
    await tpm.ok('tpm2_flushcontext', '-t');

    // Branch b satisfied, then OR: unseals.
    await tpm.ok('tpm2_startauthsession', '--policy-session', '-S', file('p.ctx'));
    await tpm.ok('tpm2_policycommandcode', '-S', file('p.ctx'), 'TPM2_CC_Unseal');
    await tpm.ok('tpm2_policyor', '-S', file('p.ctx'), branches);
    const out = await tpm.ok('tpm2_unseal', '-c', file('s.ctx'), '-p', `session:${file('p.ctx')}`);
    expect(out).toBe('or-sealed');
    await tpm.ok('tpm2_flushcontext', file('p.ctx'));
    await tpm.ok('tpm2_flushcontext', '-t');

    // No branch satisfied: PolicyOR refuses (TPM_RC_VALUE on parameter 1).
    await tpm.ok('tpm2_startauthsession', '--policy-session', '-S', file('q.ctx'));
    const refused = await tpm.tool('tpm2_policyor', '-S', file('q.ctx'), branches);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('ErrorCode (0x000001c4)');
    await tpm.ok('tpm2_flushcontext', file('q.ctx'));
  });

  it('NV_Extend: an extend index holds H(H(0 || a) || b), and NV_Write is refused on it', async () => {
    await tpm.ok(
      'tpm2_nvdefine',
      '0x1500020',
      '-C',
      'o',
      '-s',
      '32',
      '-a',
      'ownerread|ownerwrite|nt=extend',
    );
    writeFileSync(file('a'), 'first');
    writeFileSync(file('b'), 'second');
    await tpm.ok('tpm2_nvextend', '-C', 'o', '-i', file('a'), '0x1500020');
    await tpm.ok('tpm2_nvextend', '-C', 'o', '-i', file('b'), '0x1500020');
    await tpm.ok('tpm2_nvread', '-C', 'o', '-s', '32', '-o', file('ext'), '0x1500020');
    const h = (...parts: Buffer[]): Buffer =>
      createHash('sha256').update(Buffer.concat(parts)).digest();
    const expected = h(h(Buffer.alloc(32), Buffer.from('first')), Buffer.from('second'));
    expect(readFileSync(file('ext')).toString('hex')).toBe(expected.toString('hex'));
    const write = await tpm.tool('tpm2_nvwrite', '-C', 'o', '-i', file('a'), '0x1500020');
    expect(write.code).not.toBe(0);
    await tpm.ok('tpm2_nvundefine', '-C', 'o', '0x1500020');
  });

  it('NV_Increment: a counter counts up by one from where it starts', async () => {
    await tpm.ok(
      'tpm2_nvdefine',
      '0x1500021',
      '-C',
      'o',
      '-s',
      '8',
      '-a',
      'ownerread|ownerwrite|nt=counter',
    );
    const uninitialized = await tpm.tool('tpm2_nvread', '-C', 'o', '-s', '8', '0x1500021');
    expect(uninitialized.code).not.toBe(0);
    await tpm.ok('tpm2_nvincrement', '-C', 'o', '0x1500021');
    await tpm.ok('tpm2_nvread', '-C', 'o', '-s', '8', '-o', file('c1'), '0x1500021');
    await tpm.ok('tpm2_nvincrement', '-C', 'o', '0x1500021');
    await tpm.ok('tpm2_nvread', '-C', 'o', '-s', '8', '-o', file('c2'), '0x1500021');
    const c1 = readFileSync(file('c1')).readBigUInt64BE(0);
    const c2 = readFileSync(file('c2')).readBigUInt64BE(0);
    expect(c1).toBeGreaterThanOrEqual(1n);
    expect(c2 - c1).toBe(1n);
    await tpm.ok('tpm2_nvundefine', '-C', 'o', '0x1500021');
  });

  it('ObjectChangeAuth: the new private blob needs the new password, the old one is refused', async () => {
    await tpm.createAndLoad(file('prim.ctx'), 'k', '-p', 'oldpw');
    await tpm.ok('tpm2_flushcontext', '-t');
    await tpm.ok(
      'tpm2_changeauth',
      '-c',
      file('k.ctx'),
      '-C',
      file('prim.ctx'),
      '-p',
      'oldpw',
      '-r',
      file('k2.priv'),
      'newpw',
    );
    await tpm.ok('tpm2_flushcontext', '-t');
    await tpm.ok(
      'tpm2_load',
      '-C',
      file('prim.ctx'),
      '-u',
      file('k.pub'),
      '-r',
      file('k2.priv'),
      '-c',
      file('k2.ctx'),
    );
    await tpm.ok('tpm2_flushcontext', '-t');
    writeFileSync(file('msg'), 'message');
    await tpm.ok(
      'tpm2_sign',
      '-c',
      file('k2.ctx'),
      '-p',
      'newpw',
      '-g',
      'sha256',
      '-o',
      file('sig'),
      file('msg'),
    );
    await tpm.ok('tpm2_flushcontext', '-t');
    const old = await tpm.tool(
      'tpm2_sign',
      '-c',
      file('k2.ctx'),
      '-p',
      'oldpw',
      '-g',
      'sha256',
      '-o',
      file('sig2'),
      file('msg'),
    );
    expect(old.code).not.toBe(0);
    await tpm.ok('tpm2_flushcontext', '-t');
    await tpm.ok('tpm2_dictionarylockout', '-c');
  });

  it('DictionaryAttackParameters: new limits show in properties-variable', async () => {
    await tpm.ok('tpm2_dictionarylockout', '-s', '-n', '7', '-t', '100', '-l', '200');
    const v = await tpm.ok('tpm2_getcap', 'properties-variable');
    expect(v).toMatch(/TPM2_PT_MAX_AUTH_FAIL:\s+0x7\b/);
    expect(v).toMatch(/TPM2_PT_LOCKOUT_INTERVAL:\s+0x64\b/);
    expect(v).toMatch(/TPM2_PT_LOCKOUT_RECOVERY:\s+0xC8\b/i);
  });

  it('ClearControl: disableClear blocks Clear until the platform clears it', async () => {
    await tpm.ok('tpm2_clearcontrol', '-C', 'l', 's');
    const v = await tpm.ok('tpm2_getcap', 'properties-variable');
    expect(v).toMatch(/disableClear:\s+1/);
    const blocked = await tpm.tool('tpm2_clear', '-c', 'l');
    expect(blocked.code).not.toBe(0);
    expect(blocked.stderr).toContain('ErrorCode (0x00000120)');
    await tpm.ok('tpm2_clearcontrol', '-C', 'p', 'c');
    await tpm.ok('tpm2_clear', '-c', 'l');
  });
});
