import { describe, expect, it } from 'vitest';
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import { ALG, CC, RC, RH, SE, ST, SU } from './constants.js';
import { bytesToHex, hexToBytes } from './hex.js';
import { kdfa } from './crypto.js';
import { marshal, Reader, Writer } from './marshal.js';
import { nvName } from './machine.js';
import { sessionKey } from './session.js';
import { parseState, serializeState } from './state.js';
import { Tpm } from './tpm.js';
import { readPublic, writePublic, type Public } from './types.js';

/** A deterministic random source, so runs repeat. */
function seeded(seed = 1): (n: number) => Uint8Array {
  let x = seed;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      out[i] = x >>> 24;
    }
    return out;
  };
}

function cmd(
  cc: number,
  body: (w: Writer) => void = () => {},
  tag: number = ST.NO_SESSIONS,
): Uint8Array {
  const w = new Writer();
  w.u16(tag).u32(0).u32(cc);
  body(w);
  const b = w.finish();
  new DataView(b.buffer).setUint32(2, b.length);
  return b;
}

/** A command with one password session (empty password) for its one authorized handle. */
function pwCmd(
  cc: number,
  handles: number[],
  params: (w: Writer) => void,
  password: Uint8Array = new Uint8Array(0),
): Uint8Array {
  return cmd(
    cc,
    (w) => {
      for (const h of handles) w.u32(h);
      const auth = marshal((a) => a.u32(RH.PW).b2(new Uint8Array(0)).u8(1).b2(password));
      w.u32(auth.length).bytes(auth);
      params(w);
    },
    ST.SESSIONS,
  );
}

function rc(response: Uint8Array): number {
  return new DataView(response.buffer, response.byteOffset).getUint32(6);
}

function started(): Tpm {
  const tpm = new Tpm({ random: seeded(), now: () => 0 });
  tpm.onInternalError = (e) => {
    throw e;
  };
  tpm.powerOn();
  expect(rc(tpm.execute(cmd(CC.Startup, (w) => w.u16(SU.CLEAR))))).toBe(RC.SUCCESS);
  return tpm;
}

function startTrial(tpm: Tpm): number {
  const r = tpm.execute(
    cmd(CC.StartAuthSession, (w) =>
      w
        .u32(RH.NULL)
        .u32(RH.NULL)
        .b2(new Uint8Array(32))
        .b2(new Uint8Array(0))
        .u8(SE.TRIAL)
        .u16(ALG.NULL)
        .u16(ALG.SHA256),
    ),
  );
  expect(rc(r)).toBe(RC.SUCCESS);
  return new DataView(r.buffer).getUint32(10);
}

function policyDigest(tpm: Tpm, session: number): string {
  const r = tpm.execute(cmd(CC.PolicyGetDigest, (w) => w.u32(session)));
  expect(rc(r)).toBe(RC.SUCCESS);
  return bytesToHex(r.subarray(12));
}

describe('command framing errors (Part 3, 5)', () => {
  it('every command before Startup is TPM_RC_INITIALIZE, and so is a second Startup', () => {
    const tpm = new Tpm({ random: seeded() });
    tpm.powerOn();
    expect(rc(tpm.execute(cmd(CC.GetRandom, (w) => w.u16(8))))).toBe(RC.INITIALIZE);
    expect(rc(tpm.execute(cmd(CC.Startup, (w) => w.u16(SU.CLEAR))))).toBe(RC.SUCCESS);
    expect(rc(tpm.execute(cmd(CC.Startup, (w) => w.u16(SU.CLEAR))))).toBe(RC.INITIALIZE);
  });

  it('a size field that differs from the bytes received is TPM_RC_COMMAND_SIZE', () => {
    const tpm = started();
    const c = cmd(CC.GetRandom, (w) => w.u16(8));
    expect(rc(tpm.execute(c.subarray(0, c.length - 1)))).toBe(RC.COMMAND_SIZE);
    expect(rc(tpm.execute(new Uint8Array([0x80, 0x01, 0, 0])))).toBe(RC.COMMAND_SIZE);
  });

  it('unknown tags and command codes get TPM_RC_BAD_TAG and TPM_RC_COMMAND_CODE', () => {
    const tpm = started();
    expect(rc(tpm.execute(cmd(CC.GetRandom, (w) => w.u16(8), 0x8003)))).toBe(RC.BAD_TAG);
    expect(rc(tpm.execute(cmd(0x1ff)))).toBe(RC.COMMAND_CODE);
  });

  it('a truncated parameter is TPM_RC_INSUFFICIENT for that parameter; extra bytes are TPM_RC_SIZE', () => {
    const tpm = started();
    expect(rc(tpm.execute(cmd(CC.GetRandom, (w) => w.u8(8))))).toBe(0x1da);
    expect(rc(tpm.execute(cmd(CC.GetCapability, (w) => w.u32(6).u32(0x100))))).toBe(0x3da);
    expect(rc(tpm.execute(cmd(CC.GetRandom, (w) => w.u16(8).u8(0))))).toBe(RC.SIZE);
  });

  it('missing authorization is TPM_RC_AUTH_MISSING; sessions where none are allowed TPM_RC_AUTH_CONTEXT', () => {
    const tpm = started();
    expect(rc(tpm.execute(cmd(CC.PCR_Reset, (w) => w.u32(16))))).toBe(RC.AUTH_MISSING);
    expect(rc(tpm.execute(pwCmd(CC.FlushContext, [], (w) => w.u32(0x80000000))))).toBe(
      RC.AUTH_CONTEXT,
    );
    expect(rc(tpm.execute(pwCmd(CC.PCR_Reset, [16], () => {})))).toBe(RC.SUCCESS);
  });

  it('handles of the wrong type are numbered TPM_RC_HANDLE / VALUE errors', () => {
    const tpm = started();
    expect(rc(tpm.execute(pwCmd(CC.PCR_Reset, [99], () => {})))).toBe(0x184);
    expect(rc(tpm.execute(pwCmd(CC.Clear, [RH.OWNER], () => {})))).toBe(0x18b);
  });

  it('a wrong hierarchy password is TPM_RC_BAD_AUTH on session 1 and does not count toward lockout', () => {
    const tpm = started();
    tpm.state.ownerAuth = new TextEncoder().encode('pw');
    const r = tpm.execute(
      pwCmd(
        CC.HierarchyChangeAuth,
        [RH.OWNER],
        (w) => w.b2(new Uint8Array(0)),
        new Uint8Array([1]),
      ),
    );
    expect(rc(r)).toBe(0x9a2);
    expect(tpm.state.failedTries).toBe(0);
  });

  it('a command that fails never changes the persistent state, and nothing throws', () => {
    const tpm = started();
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 64 }),
        fc.constantFrom(...Object.values(CC)),
        fc.constantFrom(ST.NO_SESSIONS, ST.SESSIONS),
        (body, cc, tag) => {
          const before = serializeState(tpm.state);
          const r = tpm.execute(cmd(cc, (w) => w.bytes(body), tag));
          expect(r.length).toBeGreaterThanOrEqual(10);
          if (rc(r) !== RC.SUCCESS) {
            expect(r.length).toBe(10);
            expect(serializeState(tpm.state)).toEqual(before);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('policy digests and keys (known answers from tpm2-tools/libtpms captures)', () => {
  it('PolicyPCR over SHA-256 PCR 0 and 1 at zero gives the digest tpm2_createpolicy gives', () => {
    const tpm = started();
    const s = startTrial(tpm);
    const sel = (w: Writer) =>
      w
        .u32(1)
        .u16(ALG.SHA256)
        .u8(3)
        .bytes(Uint8Array.of(3, 0, 0));
    expect(
      rc(
        tpm.execute(
          cmd(CC.PolicyPCR, (w) => {
            w.u32(s).b2(new Uint8Array(0));
            sel(w);
          }),
        ),
      ),
    ).toBe(RC.SUCCESS);
    expect(policyDigest(tpm, s)).toBe(
      '182c84e9792152b63f7716ef2c303b0e34442f51e72883f944b18d3075b45719',
    );
  });

  it('PolicyCommandCode(Unseal) and PolicySecret(endorsement) give the published digests', () => {
    const tpm = started();
    const s = startTrial(tpm);
    expect(rc(tpm.execute(cmd(CC.PolicyCommandCode, (w) => w.u32(s).u32(CC.Unseal))))).toBe(
      RC.SUCCESS,
    );
    expect(policyDigest(tpm, s)).toBe(
      'e613137076524bde487533865884e9732ebee3aacb095d94a6de492ec06c46fa',
    );
    const t = startTrial(tpm);
    const r = tpm.execute(
      pwCmd(CC.PolicySecret, [RH.ENDORSEMENT, t], (w) =>
        w.b2(new Uint8Array(0)).b2(new Uint8Array(0)).b2(new Uint8Array(0)).u32(0),
      ),
    );
    expect(rc(r)).toBe(RC.SUCCESS);
    expect(policyDigest(tpm, t)).toBe(
      '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa',
    );
  });

  it('the session key of a session bound to the owner with an empty authValue is KDFa over an empty key', () => {
    const key = sessionKey(
      ALG.SHA256,
      true,
      new Uint8Array(0),
      new Uint8Array(0),
      hexToBytes('8d4aafae3b700dc1997067bd0577db9789073697b70bee535f16c7ba24f4d8a8'),
      hexToBytes('7c8f59b0ec1b7aa2965aec2dfbb967b6c98562e133436eeff24de3912da38c5e'),
    );
    expect(bytesToHex(key)).toBe(
      '35c455adfe7c6fbc7e0d3151136798917982b68b28a01a60bec7396f7390b61a',
    );
    expect(
      kdfa(ALG.SHA256, new Uint8Array(0), 'ATH', new Uint8Array(0), new Uint8Array(0), 9).length,
    ).toBe(2);
  });

  it('an NV index Name is nameAlg || H(TPMS_NV_PUBLIC)', () => {
    const name = nvName({
      public: {
        nvIndex: 0x01500016,
        nameAlg: ALG.SHA256,
        attributes: 0x00060006,
        authPolicy: new Uint8Array(0),
        dataSize: 32,
      },
      authValue: new Uint8Array(0),
      data: new Uint8Array(0),
    });
    expect(bytesToHex(name)).toBe(
      '000b5efc224a5ca11f53db485095134d993aa8c24c69fdf17cdc1d38dfa3fec20c80',
    );
  });
});

describe('marshalling round trips', () => {
  const bytes = (max: number) => fc.uint8Array({ maxLength: max });
  const sym = fc.constantFrom(
    { algorithm: ALG.NULL, keyBits: 0, mode: ALG.NULL },
    { algorithm: ALG.AES, keyBits: 128, mode: ALG.CFB },
    { algorithm: ALG.AES, keyBits: 256, mode: ALG.CFB },
  );
  const pubArb: fc.Arbitrary<Public> = fc.oneof(
    fc.record({
      type: fc.constant(ALG.RSA),
      nameAlg: fc.constantFrom(ALG.SHA1, ALG.SHA256, ALG.SHA384),
      objectAttributes: fc.constantFrom(0x00030072, 0x00060072, 0x00050072),
      authPolicy: bytes(64),
      parameters: fc.record({
        symmetric: sym,
        scheme: fc.constantFrom(
          { scheme: ALG.NULL, hashAlg: ALG.NULL },
          { scheme: ALG.RSASSA, hashAlg: ALG.SHA256 },
        ),
        keyBits: fc.constantFrom(2048, 3072),
        exponent: fc.constantFrom(0, 65537),
      }),
      unique: bytes(512),
    }),
    fc.record({
      type: fc.constant(ALG.ECC),
      nameAlg: fc.constantFrom(ALG.SHA256, ALG.SHA384),
      objectAttributes: fc.constantFrom(0x00030072, 0x00060072),
      authPolicy: bytes(64),
      parameters: fc.record({
        symmetric: sym,
        scheme: fc.constantFrom(
          { scheme: ALG.NULL, hashAlg: ALG.NULL },
          { scheme: ALG.ECDSA, hashAlg: ALG.SHA384 },
        ),
        curveID: fc.constantFrom(3, 4),
        kdf: fc.constant({ scheme: ALG.NULL, hashAlg: ALG.NULL }),
      }),
      unique: fc.record({ x: bytes(48), y: bytes(48) }),
    }),
    fc.record({
      type: fc.constant(ALG.KEYEDHASH),
      nameAlg: fc.constant(ALG.SHA256),
      objectAttributes: fc.constant(0x12),
      authPolicy: bytes(32),
      parameters: fc.record({ scheme: fc.constant({ scheme: ALG.NULL, hashAlg: ALG.NULL }) }),
      unique: bytes(32),
    }),
  ) as fc.Arbitrary<Public>;

  it('TPMT_PUBLIC unmarshal(marshal(p)) is p, and marshal(unmarshal(b)) is b', () => {
    fc.assert(
      fc.property(pubArb, (p) => {
        const b = marshal((w) => writePublic(w, p));
        const r = new Reader(b);
        const back = readPublic(r);
        expect(r.remaining).toBe(0);
        expect(marshal((w) => writePublic(w, back))).toEqual(b);
      }),
    );
  });

  it('every truncation of a TPMT_PUBLIC is TPM_RC_INSUFFICIENT, never an exception of another kind', () => {
    fc.assert(
      fc.property(pubArb, fc.nat(), (p, cut) => {
        const b = marshal((w) => writePublic(w, p));
        const short = b.subarray(0, cut % b.length);
        expect(() => readPublic(new Reader(short))).toThrow(/TPM_RC 0x09a/);
      }),
    );
  });

  it('the persistent state blob round-trips and refuses other versions', () => {
    const tpm = started();
    tpm.state.nvIndices.push({
      public: {
        nvIndex: 0x01000001,
        nameAlg: ALG.SHA256,
        attributes: 0x20060006,
        authPolicy: new Uint8Array(0),
        dataSize: 4,
      },
      authValue: Uint8Array.of(1, 2),
      data: Uint8Array.of(9, 8, 7, 6),
    });
    const blob = serializeState(tpm.state);
    expect(serializeState(parseState(blob))).toEqual(blob);
    const other = blob.slice();
    other[7] = 2;
    expect(() => parseState(other)).toThrow(/version 2/);
    expect(() => parseState(blob.subarray(0, 50))).toThrow(/truncated/);
  });
});

describe('hash, HMAC and event sequences (Part 3, 17)', () => {
  const chunks = [new Uint8Array(1024).fill(1), new Uint8Array(1024).fill(2), hexToBytes('0304')];
  const all = new Uint8Array(Buffer.concat(chunks));
  const handleOf = (r: Uint8Array): number => new DataView(r.buffer, r.byteOffset).getUint32(10);
  /** The first TPM2B of a response with sessions (after the parameterSize field). */
  const firstB2 = (r: Uint8Array): Reader => {
    const rd = new Reader(r, 14);
    return rd;
  };

  function feed(tpm: Tpm, seq: number, password: Uint8Array = new Uint8Array(0)): void {
    for (const c of chunks.slice(0, -1)) {
      expect(rc(tpm.execute(pwCmd(CC.SequenceUpdate, [seq], (w) => w.b2(c), password)))).toBe(
        RC.SUCCESS,
      );
    }
  }

  it('a hash sequence gives the digest of all its data and a hashcheck ticket', () => {
    const tpm = started();
    const start = tpm.execute(
      cmd(CC.HashSequenceStart, (w) => w.b2(new Uint8Array(0)).u16(ALG.SHA256)),
    );
    expect(rc(start)).toBe(RC.SUCCESS);
    const seq = handleOf(start);
    feed(tpm, seq);
    const done = tpm.execute(
      pwCmd(CC.SequenceComplete, [seq], (w) => w.b2(chunks[2]!).u32(RH.OWNER)),
    );
    expect(rc(done)).toBe(RC.SUCCESS);
    const r = firstB2(done);
    expect(bytesToHex(r.b2())).toBe(createHash('sha256').update(all).digest('hex'));
    expect(r.u16()).toBe(ST.HASHCHECK);
    expect(r.u32()).toBe(RH.OWNER);
    expect(r.b2().length).toBe(32);
    // The sequence is gone once complete.
    expect(rc(tpm.execute(pwCmd(CC.SequenceUpdate, [seq], (w) => w.b2(chunks[0]!))))).toBe(
      RC.REFERENCE_H0,
    );
  });

  it('an HMAC sequence is keyed by the HMAC key and authorized by the sequence auth', () => {
    const tpm = started();
    const key = hexToBytes('00112233445566778899aabbccddeeff');
    const template = hexToBytes('0008' + '000b' + '00040052' + '0000' + '0005000b' + '0000');
    const primary = tpm.execute(
      pwCmd(CC.CreatePrimary, [RH.OWNER], (w) => {
        w.sized((s) => s.b2(new Uint8Array(0)).b2(key));
        w.b2(template).b2(new Uint8Array(0)).u32(0);
      }),
    );
    expect(rc(primary)).toBe(RC.SUCCESS);
    const password = hexToBytes('616263');
    const start = tpm.execute(
      pwCmd(CC.HMAC_Start, [handleOf(primary)], (w) => w.b2(password).u16(ALG.NULL)),
    );
    expect(rc(start)).toBe(RC.SUCCESS);
    const seq = handleOf(start);
    expect(rc(tpm.execute(pwCmd(CC.SequenceUpdate, [seq], (w) => w.b2(chunks[0]!))))).toBe(
      0x9a2, // BAD_AUTH on session 1: sequences are not DA-protected
    );
    feed(tpm, seq, password);
    const done = tpm.execute(
      pwCmd(CC.SequenceComplete, [seq], (w) => w.b2(chunks[2]!).u32(RH.NULL), password),
    );
    expect(rc(done)).toBe(RC.SUCCESS);
    const r = firstB2(done);
    expect(bytesToHex(r.b2())).toBe(createHmac('sha256', key).update(all).digest('hex'));
    expect([r.u16(), r.u32(), r.b2().length]).toEqual([ST.HASHCHECK, RH.NULL, 0]);
  });

  it('an event sequence extends every bank of a PCR; SequenceComplete refuses it', () => {
    const tpm = started();
    const start = tpm.execute(
      cmd(CC.HashSequenceStart, (w) => w.b2(new Uint8Array(0)).u16(ALG.NULL)),
    );
    const seq = handleOf(start);
    feed(tpm, seq);
    expect(
      rc(tpm.execute(pwCmd(CC.SequenceComplete, [seq], (w) => w.b2(chunks[2]!).u32(RH.NULL)))),
    ).toBe(RC.MODE + 0x100);
    const twoPw = cmd(
      CC.EventSequenceComplete,
      (w) => {
        w.u32(16).u32(seq);
        const one = marshal((a) => a.u32(RH.PW).b2(new Uint8Array(0)).u8(1).b2(new Uint8Array(0)));
        w.u32(2 * one.length)
          .bytes(one)
          .bytes(one);
        w.b2(chunks[2]!);
      },
      ST.SESSIONS,
    );
    const done = tpm.execute(twoPw);
    expect(rc(done)).toBe(RC.SUCCESS);
    const r = new Reader(done, 14);
    expect(r.u32()).toBe(3);
    const digests = new Map<number, string>();
    for (let i = 0; i < 3; i++) {
      const alg = r.u16();
      digests.set(alg, bytesToHex(r.bytes(alg === ALG.SHA1 ? 20 : alg === ALG.SHA256 ? 32 : 48)));
    }
    expect(digests.get(ALG.SHA256)).toBe(createHash('sha256').update(all).digest('hex'));
    expect(digests.get(ALG.SHA1)).toBe(createHash('sha1').update(all).digest('hex'));
    const pcr = tpm.execute(
      cmd(CC.PCR_Read, (w) => w.u32(1).u16(ALG.SHA256).u8(3).bytes(hexToBytes('000001'))),
    );
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.alloc(32), createHash('sha256').update(all).digest()]))
      .digest('hex');
    expect(bytesToHex(pcr.subarray(pcr.length - 32))).toBe(expected);
  });
});

describe('PolicyOR (Part 3, 23.6)', () => {
  const a = new Uint8Array(32).fill(0xaa);
  const b = new Uint8Array(32).fill(0xbb);
  const orCmd = (s: number, list: Uint8Array[]): Uint8Array =>
    cmd(CC.PolicyOR, (w) => {
      w.u32(s).u32(list.length);
      for (const d of list) w.b2(d);
    });

  it('a trial session takes H(zeros || TPM_CC_PolicyOR || digests) whatever its digest was', () => {
    const tpm = started();
    const s = startTrial(tpm);
    expect(rc(tpm.execute(cmd(CC.PolicyAuthValue, (w) => w.u32(s))))).toBe(RC.SUCCESS);
    expect(rc(tpm.execute(orCmd(s, [a, b])))).toBe(RC.SUCCESS);
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.alloc(32), Buffer.from('00000171', 'hex'), a, b]))
      .digest('hex');
    expect(policyDigest(tpm, s)).toBe(expected);
  });

  it('fewer than two or more than eight digests is TPM_RC_SIZE on parameter 1', () => {
    const tpm = started();
    const s = startTrial(tpm);
    expect(rc(tpm.execute(orCmd(s, [a])))).toBe(0x1d5);
    expect(rc(tpm.execute(orCmd(s, new Array<Uint8Array>(9).fill(a))))).toBe(0x1d5);
  });
});
