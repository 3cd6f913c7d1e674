// tpm2-tools against `svsm tpm serve` on inputs over one command buffer (1024 bytes), which the
// tools send as hash, HMAC and event sequences (HashSequenceStart, HMAC_Start, SequenceUpdate,
// SequenceComplete, EventSequenceComplete).

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_TPM2_TOOLS, startServer, type TpmUnderTest } from './harness.js';

describe.runIf(HAVE_TPM2_TOOLS)('tpm2-tools sequences against svsm tpm serve', () => {
  let tpm: TpmUnderTest;
  const file = (name: string): string => join(tpm.dir, name);
  const big = Buffer.alloc(5000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;

  beforeAll(async () => {
    tpm = await startServer();
    await tpm.ok('tpm2_startup', '-c');
    writeFileSync(join(tpm.dir, 'big'), big);
  });
  afterAll(async () => {
    await tpm.stop();
  });

  it('tpm2_hash of 5000 bytes gives the digest and a ticket tpm2_sign accepts for a restricted key', async () => {
    for (const alg of ['sha1', 'sha256', 'sha384']) {
      const out = await tpm.ok('tpm2_hash', '-g', alg, '--hex', file('big'));
      expect(out.trim()).toBe(createHash(alg).update(big).digest('hex'));
    }
    await tpm.ok(
      'tpm2_hash',
      '-C',
      'o',
      '-g',
      'sha256',
      '-o',
      file('digest'),
      '-t',
      file('ticket'),
      file('big'),
    );
    // TPMT_TK_HASHCHECK: tag 0x8024, hierarchy owner, a 32-byte HMAC.
    expect(readFileSync(file('ticket')).subarray(0, 8).toString('hex')).toBe('8024400000010020');
    // A restricted signing key signs the digest only with that ticket.
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('prim.ctx'));
    await tpm.createAndLoad(
      file('prim.ctx'),
      'ak',
      '-G',
      'ecc:ecdsa-sha256:null',
      '-a',
      'restricted|sign|fixedtpm|fixedparent|sensitivedataorigin|userwithauth',
    );
    await tpm.ok('tpm2_flushcontext', '-t');
    await tpm.ok(
      'tpm2_sign',
      '-c',
      file('ak.ctx'),
      '-g',
      'sha256',
      '-d',
      '-t',
      file('ticket'),
      '-o',
      file('sig'),
      file('digest'),
    );
    await tpm.ok('tpm2_flushcontext', '-t');
    await tpm.ok(
      'tpm2_verifysignature',
      '-c',
      file('ak.ctx'),
      '-g',
      'sha256',
      '-m',
      file('big'),
      '-s',
      file('sig'),
    );
    await tpm.ok('tpm2_flushcontext', '-t');
  });

  it('data starting with TPM_GENERATED_VALUE gets a NULL ticket from a hash sequence', async () => {
    writeFileSync(file('gen'), Buffer.concat([Buffer.from('ff544347', 'hex'), big]));
    await tpm.ok('tpm2_hash', '-C', 'o', '-g', 'sha256', '-t', file('gen.ticket'), file('gen'));
    expect(readFileSync(file('gen.ticket')).toString('hex')).toBe('8024400000070000');
  });

  it('tpm2_hmac of 5000 bytes is repeatable and covers all of the data', async () => {
    await tpm.ok('tpm2_createprimary', '-C', 'o', '-c', file('p2.ctx'));
    await tpm.ok('tpm2_create', '-C', file('p2.ctx'), '-G', 'hmac', '-c', file('hk.ctx'));
    await tpm.ok('tpm2_flushcontext', '-t');
    const a = await tpm.ok('tpm2_hmac', '-c', file('hk.ctx'), '--hex', file('big'));
    await tpm.ok('tpm2_flushcontext', '-t');
    const b = await tpm.ok('tpm2_hmac', '-c', file('hk.ctx'), '--hex', file('big'));
    await tpm.ok('tpm2_flushcontext', '-t');
    const changed = Buffer.from(big);
    changed[4999] = changed[4999]! ^ 1;
    writeFileSync(file('big2'), changed);
    const c = await tpm.ok('tpm2_hmac', '-c', file('hk.ctx'), '--hex', file('big2'));
    await tpm.ok('tpm2_flushcontext', '-t');
    expect(a.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('tpm2_pcrevent of 5000 bytes extends every bank with the data digest', async () => {
    await tpm.ok('tpm2_pcrreset', '16');
    const out = await tpm.ok('tpm2_pcrevent', '16', file('big'));
    for (const alg of ['sha1', 'sha256', 'sha384'])
      expect(out).toContain(`${alg}: ${createHash(alg).update(big).digest('hex')}`);
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.alloc(32), createHash('sha256').update(big).digest()]))
      .digest('hex');
    expect(await tpm.ok('tpm2_pcrread', 'sha256:16')).toContain(expected.toUpperCase());
    await tpm.ok('tpm2_pcrreset', '16');
  });
});
