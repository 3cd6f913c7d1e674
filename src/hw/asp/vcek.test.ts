import { createPublicKey, sign, verify } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TCB_VERSION } from '../../arch/index.js';
import { bytesToBigInt } from './bignum.js';
import type { ChipIdentity } from './chip-identity.js';
import { P384_ORDER } from './ecdsa-p384.js';
import { loadTestIdentity } from './test-identity.fixture.js';
import { deriveVcek, deriveVcekScalar, vcekCertificate, vcekOf } from './vcek.js';

let id: ChipIdentity;
beforeAll(() => {
  id = loadTestIdentity();
});

const spki = (k: import('node:crypto').KeyObject): string =>
  k.export({ type: 'spki', format: 'der' }).toString('hex');

describe('VCEK derivation', () => {
  it('gives the same key for the same chip secret and TCB', () => {
    const a = vcekOf(id);
    const b = deriveVcek(id.chipSecret.slice(), id.tcb);
    expect(b.scalar).toEqual(a.scalar);
    expect(spki(b.publicKey)).toBe(spki(a.publicKey));
  });

  it('gives another key for another TCB or another secret', () => {
    const base = vcekOf(id);
    const newer = vcekOf(id, TCB_VERSION.with(id.tcb, 'snp', 9));
    expect(spki(newer.publicKey)).not.toBe(spki(base.publicKey));
    const otherSecret = id.chipSecret.slice();
    otherSecret[63] = otherSecret[63]! ^ 1;
    expect(spki(deriveVcek(otherSecret, id.tcb).publicKey)).not.toBe(spki(base.publicKey));
  });

  it('is a working P-384 key pair with its scalar in [1, n-1]', () => {
    const v = vcekOf(id);
    expect(v.privateKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    const d = bytesToBigInt(v.scalar);
    expect(d >= 1n && d < P384_ORDER).toBe(true);
    const sig = sign('sha384', Buffer.from('m'), v.privateKey);
    expect(verify('sha384', Buffer.from('m'), v.publicKey, sig)).toBe(true);
    expect(spki(createPublicKey(v.privateKey))).toBe(spki(v.publicKey));
  });

  it('keeps every derived scalar in range and distinct per TCB (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }), (tcb) => {
        const d = bytesToBigInt(deriveVcekScalar(id.chipSecret, tcb));
        expect(d >= 1n && d < P384_ORDER).toBe(true);
        if (tcb !== id.tcb) expect(d).not.toBe(bytesToBigInt(vcekOf(id).scalar));
      }),
      { numRuns: 50 },
    );
  });

  it('refuses a chip secret of the wrong size and a TCB outside u64', () => {
    expect(() => deriveVcekScalar(new Uint8Array(32), 0n)).toThrow(RangeError);
    expect(() => deriveVcekScalar(id.chipSecret, -1n)).toThrow(RangeError);
    expect(() => deriveVcekScalar(id.chipSecret, 1n << 64n)).toThrow(RangeError);
  });
});

describe('vcekCertificate', () => {
  it('is the same bytes every time for the same identity, TCB and date', () => {
    expect(vcekCertificate(id)).toEqual(vcekCertificate(id));
  });

  it('changes with the TCB', () => {
    const other = TCB_VERSION.with(id.tcb, 'microcode', 116);
    expect(vcekCertificate(id, other)).not.toEqual(vcekCertificate(id));
  });
});
