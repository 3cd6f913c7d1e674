// tpm2-tools (Debian's, over the mssim TCTI) against `svsm tpm serve`: each workflow end to end,
// checking results with the tools' own verifiers (tpm2_checkquote, tpm2_verifysignature) and
// OpenSSL where it can judge independently.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_TPM2_TOOLS, startServer, type TpmUnderTest } from './harness.js';

const ZERO32 = '00'.repeat(32);

if (!HAVE_TPM2_TOOLS) {
  describe('tpm2-tools workflows', () => {
    it.skip('skipped: tpm2-tools are not installed (scripts/install-test-tools.sh installs them; CI does)', () => {});
  });
}

describe.runIf(HAVE_TPM2_TOOLS)('tpm2-tools workflows against svsm tpm serve', () => {
  let tpm: TpmUnderTest;
  const file = (name: string): string => join(tpm.dir, name);

  beforeAll(async () => {
    tpm = await startServer();
    await tpm.ok('tpm2_startup', '-c');
  });
  afterAll(async () => {
    await tpm.stop();
  });

  /** Flushes what the tools leave loaded (there is no resource manager). */
  async function flushAll(): Promise<void> {
    await tpm.ok('tpm2_flushcontext', '-t');
    await tpm.ok('tpm2_flushcontext', '-s');
  }

  it('startup, selftest, getcap, getrandom and stirrandom work', async () => {
    await tpm.ok('tpm2_selftest', '-f');
    const fixed = await tpm.ok('tpm2_getcap', 'properties-fixed');
    expect(fixed).toContain('value: "2.0"');
    expect(fixed).toMatch(/TPM2_PT_NV_BUFFER_MAX:\s+raw: 0x400/);
    const algs = await tpm.ok('tpm2_getcap', 'algorithms');
    for (const alg of ['rsa', 'ecc', 'sha256', 'sha384', 'aes', 'rsapss', 'ecdsa', 'oaep'])
      expect(algs).toContain(`${alg}:`);
    expect(await tpm.ok('tpm2_getcap', 'commands')).toContain('TPM2_CC_PolicyPCR');
    expect(await tpm.ok('tpm2_getcap', 'pcrs')).toMatch(/sha1.*\n[\s\S]*sha256[\s\S]*sha384/);
    expect(await tpm.ok('tpm2_getcap', 'ecc-curves')).toContain('TPM2_ECC_NIST_P384');
    const permanent = await tpm.ok('tpm2_getcap', 'handles-permanent');
    expect(permanent).toContain('0x40000001');
    const a = await tpm.ok('tpm2_getrandom', '--hex', '32');
    const b = await tpm.ok('tpm2_getrandom', '--hex', '32');
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(b);
    writeFileSync(file('stir'), 'entropy');
    await tpm.ok('tpm2_stirrandom', file('stir'));
  });

  it('PCR extend, event, read and reset give the values the spec defines', async () => {
    await tpm.ok('tpm2_pcrreset', '16');
    const initial = await tpm.ok('tpm2_pcrread', 'sha256:0,16,17+sha1:17');
    expect(initial).toContain(`16: 0x${ZERO32.toUpperCase()}`);
    expect(initial).toContain(`17: 0x${'FF'.repeat(32)}`);
    expect(initial).toContain(`17: 0x${'FF'.repeat(20)}`);
    const digest = '11'.repeat(32);
    await tpm.ok('tpm2_pcrextend', `16:sha256=${digest}`);
    const expected = createHash('sha256')
      .update(Buffer.from(ZERO32 + digest, 'hex'))
      .digest('hex');
    const after = await tpm.ok('tpm2_pcrread', 'sha256:16+sha1:16+sha384:16');
    expect(after).toContain(`16: 0x${expected.toUpperCase()}`);
    expect(after).toContain(`16: 0x${'00'.repeat(20)}`);
    writeFileSync(file('event'), 'an event');
    const ev = await tpm.ok('tpm2_pcrevent', '16', file('event'));
    expect(ev).toContain(`sha1: ${createHash('sha1').update('an event').digest('hex')}`);
    const sha1After = createHash('sha1')
      .update(Buffer.concat([Buffer.alloc(20), createHash('sha1').update('an event').digest()]))
      .digest('hex');
    expect(await tpm.ok('tpm2_pcrread', 'sha1:16')).toContain(sha1After.toUpperCase());
    await tpm.ok('tpm2_pcrreset', '16');
    expect(await tpm.ok('tpm2_pcrread', 'sha256:16')).toContain(`16: 0x${ZERO32.toUpperCase()}`);
    // PCR 0 is not resettable from locality 0.
    expect((await tpm.tool('tpm2_pcrreset', '0')).code).not.toBe(0);
  });

  it('primaries are deterministic; keys created under one load under the other', async () => {
    await flushAll();
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-G', 'ecc384', '-c', file('p1.ctx'));
    await tpm.ok('tpm2_readpublic', '-c', file('p1.ctx'), '-o', file('p1.pub'));
    await tpm.ok(
      'tpm2_create',
      '-C',
      file('p1.ctx'),
      '-G',
      'ecc256',
      '-u',
      file('k.pub'),
      '-r',
      file('k.priv'),
    );
    await flushAll();
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-G', 'ecc384', '-c', file('p2.ctx'));
    await tpm.ok('tpm2_readpublic', '-c', file('p2.ctx'), '-o', file('p2.pub'));
    expect(readFileSync(file('p2.pub'))).toEqual(readFileSync(file('p1.pub')));
    await tpm.ok(
      'tpm2_load',
      '-C',
      file('p2.ctx'),
      '-u',
      file('k.pub'),
      '-r',
      file('k.priv'),
      '-c',
      file('k.ctx'),
    );
    const pub = await tpm.ok('tpm2_readpublic', '-c', file('k.ctx'));
    expect(pub).toMatch(/curve-id:\s+value: NIST p256/);
    await flushAll();
  });

  it.each([
    ['rsa2048', 'rsassa'],
    ['rsa2048', 'rsapss'],
    ['ecc256', 'ecdsa'],
    ['ecc384', 'ecdsa'],
  ])(
    '%s keys sign with %s; tpm2_verifysignature and OpenSSL accept, a changed message is refused',
    async (alg, scheme) => {
      await flushAll();
      await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('prim.ctx'));
      await tpm.ok(
        'tpm2_create',
        '-C',
        file('prim.ctx'),
        '-G',
        alg,
        '-u',
        file('s.pub'),
        '-r',
        file('s.priv'),
        '-c',
        file('s.ctx'),
      );
      writeFileSync(file('msg'), `message for ${alg}/${scheme}`);
      const hashAlg = alg === 'ecc384' ? 'sha384' : 'sha256';
      await tpm.ok(
        'tpm2_sign',
        '-c',
        file('s.ctx'),
        '-g',
        hashAlg,
        '-s',
        scheme,
        '-f',
        'plain',
        '-o',
        file('sig.plain'),
        file('msg'),
      );
      await tpm.ok(
        'tpm2_sign',
        '-c',
        file('s.ctx'),
        '-g',
        hashAlg,
        '-s',
        scheme,
        '-o',
        file('sig'),
        file('msg'),
      );
      await tpm.ok(
        'tpm2_verifysignature',
        '-c',
        file('s.ctx'),
        '-g',
        hashAlg,
        '-s',
        file('sig'),
        '-m',
        file('msg'),
      );
      await tpm.ok('tpm2_readpublic', '-c', file('s.ctx'), '-f', 'pem', '-o', file('s.pem'));
      const args = [
        'dgst',
        `-${hashAlg}`,
        '-verify',
        file('s.pem'),
        '-signature',
        file('sig.plain'),
      ];
      if (scheme === 'rsapss')
        args.push('-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:auto');
      const openssl = spawnSync('openssl', [...args, file('msg')], { encoding: 'utf8' });
      expect(openssl.stdout + openssl.stderr).toContain('Verified OK');
      writeFileSync(file('msg2'), 'another message');
      const bad = await tpm.tool(
        'tpm2_verifysignature',
        '-c',
        file('s.ctx'),
        '-g',
        hashAlg,
        '-s',
        file('sig'),
        '-m',
        file('msg2'),
      );
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('0x2DB'); // TPM_RC_SIGNATURE on parameter 2
      await flushAll();
    },
  );

  it('createek and createak give an AK whose quote tpm2_checkquote validates; a wrong nonce fails', async () => {
    await flushAll();
    await tpm.ok('tpm2_createek', '-c', file('ek.ctx'), '-G', 'rsa', '-u', file('ek.pub'));
    await tpm.ok(
      'tpm2_createak',
      '-C',
      file('ek.ctx'),
      '-c',
      file('ak.ctx'),
      '-G',
      'ecc',
      '-g',
      'sha256',
      '-s',
      'ecdsa',
      '-u',
      file('ak.pub'),
    );
    await tpm.ok('tpm2_pcrextend', `16:sha256=${'22'.repeat(32)}`);
    await tpm.ok(
      'tpm2_quote',
      '-c',
      file('ak.ctx'),
      '-l',
      'sha256:0,1,16+sha1:16',
      '-q',
      'c0ffee01',
      '-m',
      file('q.msg'),
      '-s',
      file('q.sig'),
      '-o',
      file('q.pcrs'),
      '-g',
      'sha256',
    );
    const ok = await tpm.ok(
      'tpm2_checkquote',
      '-u',
      file('ak.pub'),
      '-m',
      file('q.msg'),
      '-s',
      file('q.sig'),
      '-f',
      file('q.pcrs'),
      '-g',
      'sha256',
      '-q',
      'c0ffee01',
    );
    expect(ok).toContain('16:');
    const wrong = await tpm.tool(
      'tpm2_checkquote',
      '-u',
      file('ak.pub'),
      '-m',
      file('q.msg'),
      '-s',
      file('q.sig'),
      '-f',
      file('q.pcrs'),
      '-g',
      'sha256',
      '-q',
      'c0ffee02',
    );
    expect(wrong.code).not.toBe(0);
    // The ECC EK template (L-2) works too, and the EK is the same after a second createek.
    await flushAll();
    await tpm.ok('tpm2_createek', '-c', file('ek2.ctx'), '-G', 'ecc', '-u', file('eke1.pub'));
    await tpm.ok('tpm2_createek', '-c', file('ek3.ctx'), '-G', 'ecc', '-u', file('eke2.pub'));
    expect(readFileSync(file('eke1.pub'))).toEqual(readFileSync(file('eke2.pub')));
    await flushAll();
  });

  it('an object sealed to a PCR policy unseals, and no longer after the PCR changes', async () => {
    await flushAll();
    await tpm.ok('tpm2_pcrreset', '23');
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('sp.ctx'));
    await tpm.ok('tpm2_createpolicy', '--policy-pcr', '-l', 'sha256:23', '-L', file('pcr.policy'));
    await flushAll();
    writeFileSync(file('secret'), 'the sealed secret');
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('sp.ctx'));
    await tpm.ok(
      'tpm2_create',
      '-C',
      file('sp.ctx'),
      '-L',
      file('pcr.policy'),
      '-i',
      file('secret'),
      '-u',
      file('seal.pub'),
      '-r',
      file('seal.priv'),
      '-c',
      file('seal.ctx'),
    );
    expect(await tpm.ok('tpm2_unseal', '-c', file('seal.ctx'), '-p', 'pcr:sha256:23')).toBe(
      'the sealed secret',
    );
    // A password session cannot unseal an object without userWithAuth.
    expect((await tpm.tool('tpm2_unseal', '-c', file('seal.ctx'))).stderr).toContain('0x12F');
    await tpm.ok('tpm2_pcrextend', `23:sha256=${'33'.repeat(32)}`);
    const after = await tpm.tool('tpm2_unseal', '-c', file('seal.ctx'), '-p', 'pcr:sha256:23');
    expect(after.code).not.toBe(0);
    expect(after.stderr).toContain('0x99D'); // TPM_RC_POLICY_FAIL, session 1
    await flushAll();
  });

  it('policy sessions with PolicyCommandCode and PolicyPassword or PolicyAuthValue authorize Unseal', async () => {
    await flushAll();
    for (const [policy, flag] of [
      ['tpm2_policypassword', 'pw'],
      ['tpm2_policyauthvalue', 'av'],
    ] as const) {
      await tpm.ok('tpm2_startauthsession', '-S', file('trial.ctx'));
      await tpm.ok('tpm2_policycommandcode', '-S', file('trial.ctx'), 'TPM2_CC_Unseal');
      await tpm.ok(policy, '-S', file('trial.ctx'), '-L', file(`${flag}.policy`));
      await tpm.ok('tpm2_flushcontext', file('trial.ctx'));
      await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('pp.ctx'));
      writeFileSync(file('s2'), `sealed with ${flag}`);
      await tpm.ok(
        'tpm2_create',
        '-C',
        file('pp.ctx'),
        '-L',
        file(`${flag}.policy`),
        '-p',
        'objpw',
        '-i',
        file('s2'),
        '-c',
        file(`${flag}.ctx`),
      );
      await tpm.ok('tpm2_startauthsession', '--policy-session', '-S', file('real.ctx'));
      await tpm.ok('tpm2_policycommandcode', '-S', file('real.ctx'), 'TPM2_CC_Unseal');
      await tpm.ok(policy, '-S', file('real.ctx'));
      const wrong = await tpm.tool(
        'tpm2_unseal',
        '-c',
        file(`${flag}.ctx`),
        '-p',
        `session:${file('real.ctx')}+wrong`,
      );
      expect(wrong.stderr).toContain('0x98E'); // TPM_RC_AUTH_FAIL: counts toward lockout
      await tpm.ok('tpm2_dictionarylockout', '-c');
      // The failed command left the session's policy as it was: restart it and satisfy it again.
      await tpm.ok('tpm2_policyrestart', '-S', file('real.ctx'));
      await tpm.ok('tpm2_policycommandcode', '-S', file('real.ctx'), 'TPM2_CC_Unseal');
      await tpm.ok(policy, '-S', file('real.ctx'));
      expect(
        await tpm.ok(
          'tpm2_unseal',
          '-c',
          file(`${flag}.ctx`),
          '-p',
          `session:${file('real.ctx')}+objpw`,
        ),
      ).toBe(`sealed with ${flag}`);
      await tpm.ok('tpm2_flushcontext', file('real.ctx'));
      await flushAll();
    }
  });

  it('NV indices: define, write, read, readpublic and undefine, with index and owner auth', async () => {
    await tpm.ok(
      'tpm2_nvdefine',
      '0x1500016',
      '-C',
      'o',
      '-s',
      '32',
      '-a',
      'ownerread|ownerwrite|authread|authwrite',
      '-p',
      'nvpass',
    );
    // Unwritten: NV_UNINITIALIZED.
    expect((await tpm.tool('tpm2_nvread', '0x1500016', '-C', 'o', '-s', '4')).stderr).toContain(
      '0x14A',
    );
    writeFileSync(file('nvdata'), '0123456789abcdef');
    await tpm.ok(
      'tpm2_nvwrite',
      '0x1500016',
      '-C',
      '0x1500016',
      '-P',
      'nvpass',
      '-i',
      file('nvdata'),
      '--offset',
      '8',
    );
    await tpm.ok('tpm2_nvread', '0x1500016', '-C', 'o', '-s', '24', '-o', file('nvout'));
    expect(readFileSync(file('nvout'))).toEqual(
      Buffer.concat([Buffer.alloc(8, 0xff), Buffer.from('0123456789abcdef')]),
    );
    const pub = await tpm.ok('tpm2_nvreadpublic', '0x1500016');
    expect(pub).toContain('ownerwrite|authwrite|ownerread|authread|written');
    expect(
      (await tpm.tool('tpm2_nvread', '0x1500016', '-C', '0x1500016', '-P', 'bad', '-s', '4'))
        .stderr,
    ).toContain('0x98E');
    await tpm.ok('tpm2_dictionarylockout', '-c');
    await tpm.ok('tpm2_nvundefine', '0x1500016', '-C', 'o');
    expect((await tpm.tool('tpm2_nvreadpublic', '0x1500016')).code).not.toBe(0);
  });

  it('a wrong password is refused, counts toward lockout, and lockout holds until reset', async () => {
    await flushAll();
    await tpm.ok('tpm2_dictionarylockout', '-c');
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('dp.ctx'));
    await tpm.ok(
      'tpm2_create',
      '-C',
      file('dp.ctx'),
      '-p',
      'right',
      '-G',
      'ecc',
      '-c',
      file('dk.ctx'),
    );
    writeFileSync(file('m'), 'm');
    const counter = async (): Promise<number> => {
      const v = await tpm.ok('tpm2_getcap', 'properties-variable');
      return Number(/TPM2_PT_LOCKOUT_COUNTER: (0x[0-9A-F]+)/.exec(v)![1]);
    };
    expect(await counter()).toBe(0);
    for (let i = 1; i <= 3; i++) {
      const r = await tpm.tool(
        'tpm2_sign',
        '-c',
        file('dk.ctx'),
        '-p',
        'wrong',
        '-g',
        'sha256',
        '-o',
        file('x'),
        file('m'),
      );
      expect(r.stderr).toContain('0x98E');
      expect(await counter()).toBe(i);
    }
    const locked = await tpm.tool(
      'tpm2_sign',
      '-c',
      file('dk.ctx'),
      '-p',
      'right',
      '-g',
      'sha256',
      '-o',
      file('x'),
      file('m'),
    );
    expect(locked.stderr).toContain('0x921'); // TPM_RC_LOCKOUT
    expect(await tpm.ok('tpm2_getcap', 'properties-variable')).toMatch(/inLockout:\s+1/);
    await tpm.ok('tpm2_dictionarylockout', '-c');
    await tpm.ok(
      'tpm2_sign',
      '-c',
      file('dk.ctx'),
      '-p',
      'right',
      '-g',
      'sha256',
      '-o',
      file('x'),
      file('m'),
    );
    await flushAll();
  });

  it('hierarchy auth: changeauth, a wrong owner password is BAD_AUTH, clear resets it', async () => {
    await flushAll();
    await tpm.ok('tpm2_changeauth', '-c', 'o', 'ownerpw');
    await tpm.ok('tpm2_changeauth', '-c', 'l', 'lockpw');
    expect(await tpm.ok('tpm2_getcap', 'properties-variable')).toMatch(/ownerAuthSet:\s+1/);
    expect(
      (await tpm.tool('tpm2_createprimary', '-C', 'o', '-P', 'nope', '-c', file('x.ctx'))).stderr,
    ).toContain('0x9A2');
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-P', 'ownerpw', '-c', file('x.ctx'));
    await tpm.ok('tpm2_createek', '-c', file('eka.ctx'), '-G', 'ecc', '-u', file('eka.pub'));
    await tpm.ok('tpm2_clear', '-c', 'l', 'lockpw');
    expect(await tpm.ok('tpm2_getcap', 'properties-variable')).toMatch(/ownerAuthSet:\s+0/);
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('x.ctx'));
    // Clear keeps the endorsement primary seed: the EK is the same.
    await tpm.ok('tpm2_createek', '-c', file('ekb.ctx'), '-G', 'ecc', '-u', file('ekb.pub'));
    expect(readFileSync(file('ekb.pub'))).toEqual(readFileSync(file('eka.pub')));
    await flushAll();
  });

  it('salted and bound HMAC sessions encrypt parameters (AES-CFB) both ways', async () => {
    await flushAll();
    for (const alg of ['rsa', 'ecc']) {
      await tpm.ok('tpm2_createprimary', '-C', 'o', '-G', alg, '-c', file('salt.ctx'));
      await tpm.ok(
        'tpm2_startauthsession',
        '--hmac-session',
        '-S',
        file('hs.ctx'),
        '-c',
        file('salt.ctx'),
      );
      await tpm.ok('tpm2_sessionconfig', file('hs.ctx'), '--enable-encrypt', '--enable-decrypt');
      await tpm.ok(
        'tpm2_nvdefine',
        '0x1500020',
        '-C',
        'o',
        '-s',
        '16',
        '-a',
        'ownerread|ownerwrite',
        '-P',
        `session:${file('hs.ctx')}`,
      );
      writeFileSync(file('nv'), 'confidential!!!!');
      await tpm.ok(
        'tpm2_nvwrite',
        '0x1500020',
        '-C',
        'o',
        '-i',
        file('nv'),
        '-P',
        `session:${file('hs.ctx')}`,
      );
      expect(
        await tpm.ok(
          'tpm2_nvread',
          '0x1500020',
          '-C',
          'o',
          '-s',
          '16',
          '-P',
          `session:${file('hs.ctx')}`,
        ),
      ).toBe('confidential!!!!');
      expect(await tpm.ok('tpm2_getrandom', '-S', file('hs.ctx'), '--hex', '16')).toMatch(
        /^[0-9a-f]{32}$/,
      );
      await tpm.ok('tpm2_nvundefine', '0x1500020', '-C', 'o');
      await tpm.ok('tpm2_flushcontext', file('hs.ctx'));
      await flushAll();
    }
  });

  it('evictcontrol persists a key, hash/hmac/rsaencrypt/rsadecrypt work on it', async () => {
    await flushAll();
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('ev.ctx'));
    await tpm.ok('tpm2_evictcontrol', '-C', 'o', '-c', file('ev.ctx'), '0x81000005');
    expect(await tpm.ok('tpm2_getcap', 'handles-persistent')).toContain('0x81000005');
    await flushAll();
    await tpm.ok('tpm2_create', '-C', '0x81000005', '-G', 'rsa2048', '-c', file('rsa.ctx'));
    writeFileSync(file('plain'), 'attack at dawn');
    for (const scheme of ['rsaes', 'oaep']) {
      await tpm.ok(
        'tpm2_rsaencrypt',
        '-c',
        file('rsa.ctx'),
        '-s',
        scheme,
        '-o',
        file('ct'),
        file('plain'),
      );
      await tpm.ok(
        'tpm2_rsadecrypt',
        '-c',
        file('rsa.ctx'),
        '-s',
        scheme,
        '-o',
        file('pt'),
        file('ct'),
      );
      expect(readFileSync(file('pt'), 'utf8')).toBe('attack at dawn');
    }
    const h = await tpm.ok('tpm2_hash', '-g', 'sha384', '--hex', file('plain'));
    expect(h).toBe(createHash('sha384').update('attack at dawn').digest('hex'));
    await tpm.ok('tpm2_create', '-C', '0x81000005', '-G', 'hmac', '-c', file('hk.ctx'));
    const mac1 = await tpm.ok('tpm2_hmac', '-c', file('hk.ctx'), '--hex', file('plain'));
    const mac2 = await tpm.ok('tpm2_hmac', '-c', file('hk.ctx'), '--hex', file('plain'));
    expect(mac1).toMatch(/^[0-9a-f]{64}$/);
    expect(mac1).toBe(mac2);
    await tpm.ok('tpm2_evictcontrol', '-C', 'o', '-c', '0x81000005');
    expect(await tpm.ok('tpm2_getcap', 'handles-persistent')).not.toContain('0x81000005');
    await flushAll();
  });

  it('Shutdown(STATE) then Startup(STATE) keeps PCRs; Startup(CLEAR) resets them', async () => {
    await tpm.ok('tpm2_pcrextend', `16:sha256=${'44'.repeat(32)}`);
    const before = await tpm.ok('tpm2_pcrread', 'sha256:16');
    await tpm.ok('tpm2_shutdown');
    await tpm.powerCycle();
    await tpm.ok('tpm2_startup');
    expect(await tpm.ok('tpm2_pcrread', 'sha256:16')).toBe(before);
    // Startup(STATE) without a Shutdown(STATE) before it is TPM_RC_VALUE.
    await tpm.powerCycle();
    expect((await tpm.tool('tpm2_startup')).stderr).toContain('0x1C4');
    await tpm.ok('tpm2_startup', '-c');
    expect(await tpm.ok('tpm2_pcrread', 'sha256:16')).toContain(`16: 0x${ZERO32.toUpperCase()}`);
    await tpm.ok('tpm2_pcrextend', `16:sha256=${'44'.repeat(32)}`);
    await tpm.ok('tpm2_shutdown', '-c');
    await tpm.powerCycle();
    await tpm.ok('tpm2_startup', '-c');
    expect(await tpm.ok('tpm2_pcrread', 'sha256:16')).toContain(`16: 0x${ZERO32.toUpperCase()}`);
  });
});

describe.runIf(HAVE_TPM2_TOOLS)('svsm tpm serve --state', () => {
  it('keeps NV indices, persistent keys and hierarchy auth across a restart', async () => {
    const first = await startServer();
    const state = join(first.dir, 'tpm.state');
    await first.stop();
    const a = await startServer(state);
    await a.ok('tpm2_startup', '-c');
    await a.ok('tpm2_nvdefine', '0x1500030', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite');
    writeFileSync(join(a.dir, 'd'), 'persist!');
    await a.ok('tpm2_nvwrite', '0x1500030', '-C', 'o', '-i', join(a.dir, 'd'));
    await a.ok('tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', join(a.dir, 'p.ctx'));
    await a.ok('tpm2_readpublic', '-c', join(a.dir, 'p.ctx'), '-o', join(a.dir, 'p.pub'));
    await a.ok('tpm2_evictcontrol', '-C', 'o', '-c', join(a.dir, 'p.ctx'), '0x81000009');
    await a.ok('tpm2_changeauth', '-c', 'o', 'kept');
    await a.ok('tpm2_shutdown', '-c');
    await a.stop();
    const b = await startServer(state);
    await b.ok('tpm2_startup', '-c');
    expect(await b.ok('tpm2_nvread', '0x1500030', '-C', 'o', '-P', 'kept', '-s', '8')).toBe(
      'persist!',
    );
    expect(await b.ok('tpm2_getcap', 'handles-persistent')).toContain('0x81000009');
    // The owner seed survived: the same primary again.
    await b.ok(
      'tpm2_createprimary',
      '-C',
      'o',
      '-P',
      'kept',
      '-G',
      'ecc',
      '-c',
      join(b.dir, 'p.ctx'),
    );
    await b.ok('tpm2_readpublic', '-c', join(b.dir, 'p.ctx'), '-o', join(b.dir, 'p2.pub'));
    expect(readFileSync(join(b.dir, 'p2.pub'))).toEqual(readFileSync(join(a.dir, 'p.pub')));
    await b.stop();
  });
});
