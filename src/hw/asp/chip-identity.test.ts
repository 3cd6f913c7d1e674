import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { TCB_VERSION } from '../../arch/index.js';
import { seededRandom } from '../random.js';
import {
  CHIP_IDENTITY_FORMAT,
  ChipIdentityError,
  chipIdentityFromJson,
  chipIdentityToJson,
  createChipIdentity,
  DEFAULT_TCB,
  deriveChipId,
  withFirmware,
  type ChipIdentity,
} from './chip-identity.js';
import {
  loadTestIdentity,
  TEST_IDENTITY_ISSUED_AT,
  TEST_IDENTITY_SEED,
  testIdentityJson,
} from './test-identity.fixture.js';

const json = testIdentityJson();
let id: ChipIdentity;
beforeAll(() => {
  id = loadTestIdentity();
});

/** The fixture document with one edit applied. */
function edited(edit: (doc: Record<string, unknown>) => void): string {
  const doc = JSON.parse(json) as Record<string, unknown>;
  edit(doc);
  return JSON.stringify(doc);
}

describe('createChipIdentity', () => {
  it('is reproducible from its seed: the TEST-ONLY fixture is what the seed creates', () => {
    const fresh = createChipIdentity(seededRandom(TEST_IDENTITY_SEED), {
      issuedAt: TEST_IDENTITY_ISSUED_AT,
    });
    expect(chipIdentityToJson(fresh)).toBe(json);
  });

  it('makes a Milan chip with the default TCB, firmware and AMD-style ARK/ASK', () => {
    expect(id.product).toBe('Milan');
    expect(id.productName).toBe('Milan-B0');
    expect(id.tcb).toBe(DEFAULT_TCB.Milan);
    expect(TCB_VERSION.decode(id.tcb)).toMatchObject({
      bootLoader: 3n,
      tee: 0n,
      snp: 8n,
      microcode: 115n,
    });
    expect(id.firmware).toEqual({ major: 1, minor: 55, build: 21 });
    expect(id.chipSecret.length).toBe(64);
    expect(id.chipId).toEqual(deriveChipId(id.chipSecret));
    expect(id.ark.privateKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
    expect(id.ask.privateKey.asymmetricKeyDetails?.modulusLength).toBe(4096);
    expect(new X509Certificate(id.ark.certificate).subject).toContain('CN=ARK-Milan');
    expect(new X509Certificate(id.ask.certificate).subject).toContain('CN=SEV-Milan');
  });

  it('refuses bad options before spending seconds on RSA keys', () => {
    const r = seededRandom('x');
    const at = TEST_IDENTITY_ISSUED_AT;
    expect(() => createChipIdentity(r, { issuedAt: new Date(NaN) })).toThrow(/issuedAt/);
    expect(() =>
      createChipIdentity(r, { issuedAt: at, tcb: TCB_VERSION.encode({ snp: 200 }) }),
    ).toThrow(ChipIdentityError);
    expect(() =>
      createChipIdentity(r, { issuedAt: at, firmware: { major: 1, minor: 256, build: 0 } }),
    ).toThrow(/firmware.minor/);
    expect(() => createChipIdentity(r, { issuedAt: at, productName: '' })).toThrow(/productName/);
    expect(() =>
      createChipIdentity(r, { issuedAt: at, product: 'Turin' as unknown as 'Milan' }),
    ).toThrow(/product must be one of Milan, Genoa/);
  });
});

describe('deriveChipId', () => {
  it('is deterministic, 64 bytes, and never starts with 0x02 or 0x04', () => {
    const r = seededRandom('chip ids');
    for (let i = 0; i < 300; i++) {
      const secret = new Uint8Array(64);
      r.fill(secret);
      const chipId = deriveChipId(secret);
      expect(chipId.length).toBe(64);
      expect([0x02, 0x04]).not.toContain(chipId[0]);
      expect(deriveChipId(secret)).toEqual(chipId);
    }
  });
});

describe('withFirmware', () => {
  it('changes TCB and firmware but keeps the chip', () => {
    const tcb = TCB_VERSION.encode({ bootLoader: 4, snp: 9, microcode: 120 });
    const updated = withFirmware(id, tcb, { major: 1, minor: 55, build: 30 });
    expect(updated.tcb).toBe(tcb);
    expect(updated.chipId).toEqual(id.chipId);
    expect(updated.firmware.build).toBe(30);
    expect(() => withFirmware(id, TCB_VERSION.encode({ bootLoader: 128 }))).toThrow(
      ChipIdentityError,
    );
  });
});

describe('chipIdentityToJson / chipIdentityFromJson', () => {
  it('round-trips an identity to the same document', () => {
    expect(chipIdentityToJson(chipIdentityFromJson(json))).toBe(json);
    expect(JSON.parse(json)).toMatchObject({ format: CHIP_IDENTITY_FORMAT, version: 1 });
  });

  const cases: [string, string, RegExp][] = [
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /JSON object/],
    ['another format', edited((d) => (d.format = 'x')), /format must be/],
    ['version 2', edited((d) => (d.version = 2)), /unsupported version 2/],
    ['an unknown field', edited((d) => (d.tbc = 1)), /unknown field "tbc"/],
    ['a missing field', edited((d) => delete d.firmware), /lacks the field "firmware"/],
    ['an unknown product', edited((d) => (d.product = 'Rome')), /product must be one of/],
    ['a short chip secret', edited((d) => (d.chipSecret = 'abcd')), /chipSecret must be 64 bytes/],
    ['a non-hex chip secret', edited((d) => (d.chipSecret = 'zz'.repeat(64))), /chipSecret/],
    [
      'a chipId that does not match the secret',
      edited((d) => (d.chipId = '00'.repeat(64))),
      /chipId does not match/,
    ],
    [
      'an SPL over 127',
      edited((d) => ((d.tcb as Record<string, number>).snp = 128)),
      /snp SPL 128 exceeds 127/,
    ],
    [
      'a fractional SPL',
      edited((d) => ((d.tcb as Record<string, number>).tee = 1.5)),
      /tcb.tee must be an integer/,
    ],
    [
      'a firmware byte over 255',
      edited((d) => ((d.firmware as Record<string, number>).build = 300)),
      /firmware.build must be an integer 0..255/,
    ],
    ['a bad date', edited((d) => (d.issuedAt = 'yesterday')), /issuedAt/],
    [
      'a private key that is not PEM',
      edited((d) => ((d.ark as Record<string, string>).privateKey = 'nope')),
      /ark.privateKey is not a PEM private key/,
    ],
    [
      'swapped ARK and ASK private keys',
      edited((d) => {
        const ark = d.ark as Record<string, string>;
        const ask = d.ask as Record<string, string>;
        [ark.privateKey, ask.privateKey] = [ask.privateKey!, ark.privateKey!];
      }),
      /ark.certificate does not certify ark.privateKey/,
    ],
    [
      'a certificate that is not one PEM block',
      edited((d) => ((d.ask as Record<string, string>).certificate = '')),
      /ask.certificate must hold exactly one PEM certificate/,
    ],
    [
      'a garbled certificate',
      edited(
        (d) =>
          ((d.ask as Record<string, string>).certificate =
            '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
      ),
      /ask.certificate is not an X.509 certificate/,
    ],
  ];
  for (const [what, text, message] of cases) {
    it(`rejects ${what} with a clear error`, () => {
      expect(() => chipIdentityFromJson(text)).toThrow(ChipIdentityError);
      expect(() => chipIdentityFromJson(text)).toThrow(message);
    });
  }

  it('rejects an ASK certificate the ARK did not sign', () => {
    // The ASK slot holding the ARK's own key and certificate: certifies its key, wrong subject.
    const text = edited((d) => (d.ask = d.ark));
    expect(() => chipIdentityFromJson(text)).toThrow(/ask.certificate subject is not CN=SEV-Milan/);
  });
});
