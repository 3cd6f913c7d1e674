// The SVSM attestation protocol end to end: a scripted VMPL2 guest calls ATTEST_SERVICES as Linux
// does, the SVSM gets a report from the simulated ASP through the host with VMPCK0, and the relying
// party's verifier accepts it with the certificates the call returned. Then hostile calls: small
// buffers, bad addresses, reserved bytes, unknown calls, a host that tampers with the response.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ATTESTATION_REPORT,
  ATTEST_SERVICES_OP,
  CERT_GUID,
  GUEST_MSG_HDR,
  GUEST_MSG_PAYLOAD_OFFSET,
  type GuestCpu,
  SNP_SECRETS_PAGE,
  SvsmAttestCall,
  SvsmProtocol,
  SvsmResult,
  VTPM_SERVICE_GUID,
  parseCertTable,
  parseServicesManifest,
} from '../src/arch/index.js';
import { verifyReport } from '../src/attest/verify.js';
import { type AttestCallArgs, type CallResult, SvsmClient } from '../src/guest/svsm-client.js';
import type { ChipIdentity } from '../src/hw/asp/chip-identity.js';
import { loadTestIdentity } from '../src/hw/asp/test-identity.fixture.js';
import { vcekCertificate } from '../src/hw/asp/vcek.js';
import { createTestCvm, type TestCvm } from './support/cvm.js';

const PAGE = 0x1000;
/** Guest pages the test guest validates through the SVSM for its buffers. */
const BUF = 0x10_0000;
const BUF_PAGES = 8;
const NONCE = BUF + 0x40;
const REPORT = BUF + 0x1000;
const MANIFEST = BUF + 0x2000;
const CERTS = BUF + 0x3000;
/** A guest page nobody validated. */
const UNVALIDATED = 0x18_0000;
const SVSM_BASE = 0x200_0000;
const MEMORY = 64 * 1024 * 1024;
const ATTEST = SvsmProtocol.ATTEST;

let identity: ChipIdentity;
beforeAll(() => {
  identity = loadTestIdentity();
});

const nonceBytes = Uint8Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);

function args(o: Partial<AttestCallArgs> = {}): AttestCallArgs {
  return {
    report: { gpa: REPORT, size: PAGE },
    nonce: { gpa: NONCE, size: 64 },
    manifest: { gpa: MANIFEST, size: PAGE },
    certificates: { gpa: CERTS, size: 4 * PAGE },
    ...o,
  };
}

const sha512 = (...parts: Uint8Array[]): Uint8Array =>
  new Uint8Array(createHash('sha512').update(Buffer.concat(parts)).digest());

interface Session {
  readonly cpu: GuestCpu;
  readonly svsm: SvsmClient;
}

/** A guest that validates its buffer pages and writes the nonce, then runs `body`. */
function runGuest(body: (s: Session) => Generator<void, void, void>): TestCvm {
  const cvm = createTestCvm(
    function* (cpu) {
      const svsm = new SvsmClient(
        cpu,
        SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))),
      );
      const entries = Array.from({ length: BUF_PAGES }, (_, i) => ({
        pageSize: 0,
        validate: true,
        ignoreCf: false,
        gfn: BUF / PAGE + i,
      }));
      const v = yield* svsm.pvalidate(entries);
      if (v.rax !== 0n) throw new Error(`PVALIDATE of the buffers failed: ${v.rax}`);
      cpu.write(NONCE, nonceBytes);
      yield* body({ cpu, svsm });
    },
    { svsmBase: SVSM_BASE, memoryBytes: MEMORY },
  );
  return cvm;
}

/** Records the guest requests the host hands to the ASP: sequence number and VMPCK of each. */
function recordRequests(cvm: TestCvm): { seqno: bigint; vmpck: number; status: number }[] {
  const seen: { seqno: bigint; vmpck: number; status: number }[] = [];
  const asp = cvm.machine.asp;
  const original = asp.guestRequest.bind(asp);
  asp.guestRequest = (request) => {
    const h = GUEST_MSG_HDR.on(request);
    const r = original(request);
    seen.push({ seqno: h.get('msgSeqno'), vmpck: h.get('msgVmpck'), status: r.status });
    return r;
  };
  return seen;
}

function finish(cvm: TestCvm): void {
  const state = cvm.vm.run();
  if (cvm.vm.termination !== null) console.log(cvm.serial.join('\n'));
  expect(cvm.vm.termination).toBeNull();
  expect(state).toBe('stopped');
}

const code = (r: CallResult): bigint => r.rax;

describe('ATTEST_SERVICES', () => {
  it('returns a VMPL0 report over SHA-512(nonce || manifest) that the verifier accepts with the returned certificates', () => {
    let result: CallResult | undefined;
    let report: Uint8Array = new Uint8Array();
    let manifest: Uint8Array = new Uint8Array();
    let certs: Uint8Array = new Uint8Array();
    let secretsCopy: Uint8Array = new Uint8Array();
    const cvm = runGuest(function* ({ cpu, svsm }) {
      result = yield* svsm.attestServices(args());
      report = cpu.read(REPORT, Number(result.r8));
      manifest = cpu.read(MANIFEST, Number(result.rcx));
      certs = cpu.read(CERTS, Number(result.rdx));
      secretsCopy = cpu.read(Number(cpu.readRegister('rsi')), PAGE);
    });
    const requests = recordRequests(cvm);
    finish(cvm);
    expect(result?.rax).toBe(BigInt(SvsmResult.SUCCESS));
    expect(result?.r8).toBe(0x4a0n);
    expect(result?.rcx).toBe(24n);

    // The manifest lists no service (this SVSM has none with data yet).
    expect(parseServicesManifest(manifest)).toEqual([]);

    const r = ATTESTATION_REPORT.on(report);
    expect(r.get('reportData')).toEqual(sha512(nonceBytes, manifest));
    expect(r.get('vmpl')).toBe(0);
    expect(r.get('measurement')).toEqual(cvm.measurement);

    const table = parseCertTable(certs);
    expect(table.map((e) => e.guid)).toEqual([CERT_GUID.ARK, CERT_GUID.ASK, CERT_GUID.VCEK]);
    const [ark, ask, vcek] = table.map((e) => e.data);
    expect(ark).toEqual(identity.ark.certificate);
    expect(ask).toEqual(identity.ask.certificate);
    expect(vcek).toEqual(vcekCertificate(identity));
    const verdict = verifyReport({
      report,
      ark: ark!,
      ask: ask!,
      vcek: vcek!,
      trustedArk: identity.ark.certificate,
      expected: {
        measurement: cvm.measurement,
        reportData: sha512(nonceBytes, manifest),
        vmpl: 0,
      },
    });
    expect(verdict.reasons).toEqual([]);
    expect(verdict.ok).toBe(true);

    // VMPCK0 only: one request reached the firmware, under VMPCK0, with the first number.
    expect(requests).toEqual([{ seqno: 1n, vmpck: 0, status: 0 }]);

    // The guest's secrets page copy never holds VMPCK0 or VMPCK1.
    const s = SNP_SECRETS_PAGE.on(secretsCopy);
    expect(s.get('vmpck0').every((b) => b === 0)).toBe(true);
    expect(s.get('vmpck1').every((b) => b === 0)).toBe(true);
    expect(s.get('vmpck2').some((b) => b !== 0)).toBe(true);
  });

  it('without a certificate buffer returns RDX = 0, and each report uses new sequence numbers', () => {
    const results: CallResult[] = [];
    const reports: Uint8Array[] = [];
    const cvm = runGuest(function* ({ cpu, svsm }) {
      for (let i = 0; i < 3; i++) {
        cpu.write(
          NONCE,
          Uint8Array.from(nonceBytes, (b) => b ^ i),
        );
        results.push(yield* svsm.attestServices(args({ certificates: { gpa: 0, size: 0 } })));
        reports.push(cpu.read(REPORT, 0x4a0));
      }
      // Certificates after plain requests: the extended path still works.
      results.push(yield* svsm.attestServices(args()));
    });
    const requests = recordRequests(cvm);
    finish(cvm);
    expect(results.map(code)).toEqual([0n, 0n, 0n, 0n]);
    expect(results.slice(0, 3).map((r) => r.rdx)).toEqual([0n, 0n, 0n]);
    expect(results[3]!.rdx).toBeGreaterThan(0n);
    expect(requests.map((q) => q.seqno)).toEqual([1n, 3n, 5n, 7n]);
    expect(requests.every((q) => q.status === 0 && q.vmpck === 0)).toBe(true);
    reports.forEach((rep, i) => {
      const nonce = Uint8Array.from(nonceBytes, (b) => b ^ i);
      const manifest = emptyManifest();
      expect(ATTESTATION_REPORT.get(rep, 'reportData')).toEqual(sha512(nonce, manifest));
    });
  });

  it('answers too-small buffers with INVALID_PARAMETER and the sizes, and Linux-style retries succeed', () => {
    const results: CallResult[] = [];
    let reportAfterRefusal: Uint8Array = new Uint8Array();
    const cvm = runGuest(function* ({ cpu, svsm }) {
      results.push(yield* svsm.attestServices(args({ report: { gpa: REPORT, size: 0x100 } })));
      results.push(yield* svsm.attestServices(args({ manifest: { gpa: MANIFEST, size: 8 } })));
      // Sizes only: no buffers at all.
      results.push(
        yield* svsm.attestServices(
          args({ report: { gpa: 0, size: 0 }, manifest: { gpa: 0, size: 0 } }),
        ),
      );
      const small = yield* svsm.attestServices(args({ certificates: { gpa: CERTS, size: PAGE } }));
      results.push(small);
      reportAfterRefusal = cpu.read(REPORT, 0x4a0);
      // Grow to what RDX said, rounded to pages, as Linux does.
      const size = Math.ceil(Number(small.rdx) / PAGE) * PAGE;
      results.push(yield* svsm.attestServices(args({ certificates: { gpa: CERTS, size } })));
      // Now the SVSM knows the certificates' size and says so with a too-small report buffer.
      results.push(yield* svsm.attestServices(args({ report: { gpa: REPORT, size: 0x49f } })));
    });
    const requests = recordRequests(cvm);
    finish(cvm);
    const param = BigInt(SvsmResult.INVALID_PARAMETER);
    const [r0, r1, r2, r3, r4, r5] = results;
    for (const r of [r0, r1, r2]) {
      expect(r?.rax).toBe(param);
      expect([r?.rcx, r?.rdx, r?.r8]).toEqual([24n, 0n, 0x4a0n]);
    }
    expect(r3?.rax).toBe(param);
    expect([r3?.rcx, r3?.r8]).toEqual([24n, 0x4a0n]);
    expect(r3!.rdx).toBeGreaterThan(BigInt(PAGE));
    expect(reportAfterRefusal.every((b) => b === 0)).toBe(true);
    expect(r4?.rax).toBe(0n);
    expect(r4?.rdx).toBe(r3?.rdx);
    expect(r5?.rax).toBe(param);
    expect([r5?.rcx, r5?.rdx, r5?.r8]).toEqual([24n, r3?.rdx, 0x4a0n]);
    // Too-small report/manifest buffers never reached the firmware; the certificate probe did.
    expect(requests.map((q) => q.seqno)).toEqual([1n, 3n]);
  });

  it('refuses operands and buffers outside guest memory with INVALID_ADDRESS, without a guest request', () => {
    const results: CallResult[] = [];
    let untouched = true;
    const cvm = runGuest(function* ({ cpu, svsm }) {
      const raw = (rcx: bigint): Generator<void, CallResult, void> =>
        svsm.call(ATTEST, SvsmAttestCall.ATTEST_SERVICES, rcx);
      results.push(yield* raw(BigInt(SVSM_BASE + 0x1000))); // operand in SVSM memory
      results.push(yield* raw(BigInt(MEMORY))); // beyond RAM
      results.push(yield* raw(1n << 60n)); // not an address at all
      results.push(yield* raw(BigInt(UNVALIDATED))); // a guest page that faults
      // An operand that starts in a good page and runs into an unvalidated one.
      const edge = BUF + BUF_PAGES * PAGE - 0x20;
      cpu.write(edge, new Uint8Array(0x20));
      results.push(yield* raw(BigInt(edge)));
      results.push(yield* svsm.attestServices(args({ report: { gpa: SVSM_BASE, size: PAGE } })));
      results.push(yield* svsm.attestServices(args({ manifest: { gpa: MEMORY, size: PAGE } })));
      results.push(
        yield* svsm.attestServices(args({ nonce: { gpa: SVSM_BASE + 0x40, size: 64 } })),
      );
      results.push(yield* svsm.attestServices(args({ nonce: { gpa: UNVALIDATED, size: 64 } })));
      results.push(yield* svsm.attestServices(args({ report: { gpa: UNVALIDATED, size: PAGE } })));
      results.push(
        yield* svsm.attestServices(args({ certificates: { gpa: UNVALIDATED, size: PAGE } })),
      );
      results.push(
        yield* svsm.attestServices(
          args({ certificates: { gpa: SVSM_BASE - PAGE, size: 2 * PAGE } }),
        ),
      );
      untouched = [REPORT, MANIFEST, CERTS].every((g) => cpu.read(g, PAGE).every((b) => b === 0));
    });
    const requests = recordRequests(cvm);
    finish(cvm);
    expect(results.map(code)).toEqual(results.map(() => BigInt(SvsmResult.INVALID_ADDRESS)));
    expect(requests).toEqual([]);
    expect(untouched).toBe(true);
  });

  it('refuses reserved bytes, bad nonces and misaligned buffers with INVALID_PARAMETER', () => {
    const results: CallResult[] = [];
    const cvm = runGuest(function* ({ cpu, svsm }) {
      const op = ATTEST_SERVICES_OP.alloc();
      ATTEST_SERVICES_OP.on(op)
        .set('reportGpa', BigInt(REPORT))
        .set('reportSize', PAGE)
        .set('nonceGpa', BigInt(NONCE))
        .set('nonceSize', 64)
        .set('manifestGpa', BigInt(MANIFEST))
        .set('manifestSize', PAGE);
      const at = BUF + 0x800;
      for (const f of ATTEST_SERVICES_OP.fields.filter((x) => x.name.startsWith('reserved'))) {
        for (const i of [0, f.size - 1]) {
          const bad = Uint8Array.from(op);
          bad[f.offset + i] = 1;
          cpu.write(at, bad);
          results.push(yield* svsm.call(ATTEST, SvsmAttestCall.ATTEST_SERVICES, BigInt(at)));
        }
      }
      for (const size of [0, 32, 63, 65, 128]) {
        results.push(yield* svsm.attestServices(args({ nonce: { gpa: NONCE, size } })));
      }
      results.push(yield* svsm.attestServices(args({ nonce: { gpa: BUF + PAGE - 32, size: 64 } })));
      results.push(yield* svsm.attestServices(args({ report: { gpa: REPORT + 8, size: PAGE } })));
      results.push(
        yield* svsm.attestServices(args({ manifest: { gpa: MANIFEST + 1, size: PAGE } })),
      );
      results.push(
        yield* svsm.attestServices(args({ certificates: { gpa: CERTS + 8, size: PAGE } })),
      );
      results.push(
        yield* svsm.attestServices(args({ certificates: { gpa: CERTS, size: 4 * PAGE + 1 } })),
      );
    });
    const requests = recordRequests(cvm);
    finish(cvm);
    expect(results.length).toBe(8 + 5 + 5);
    expect(results.map(code)).toEqual(results.map(() => BigInt(SvsmResult.INVALID_PARAMETER)));
    expect(requests).toEqual([]);
  });
});

describe('ATTEST_SINGLE_SERVICE and unknown calls', () => {
  it('knows no service yet, checks its operand, and answers unknown calls UNSUPPORTED_CALL', () => {
    const results: CallResult[] = [];
    const cvm = runGuest(function* ({ cpu, svsm }) {
      results.push(yield* svsm.attestSingleService(args({ serviceGuid: VTPM_SERVICE_GUID })));
      results.push(
        yield* svsm.attestSingleService(
          args({ serviceGuid: VTPM_SERVICE_GUID, manifestVersion: 1 }),
        ),
      );
      // Reserved bytes 0x54..0x57 of the single-service operand.
      yield* svsm.attestSingleService(args({ serviceGuid: VTPM_SERVICE_GUID }));
      const at = svsm.caa + 8;
      const op = cpu.read(at, 0x58);
      op[0x57] = 0xff;
      cpu.write(at, op);
      results.push(yield* svsm.call(ATTEST, SvsmAttestCall.ATTEST_SINGLE_SERVICE, BigInt(at)));
      results.push(yield* svsm.call(ATTEST, 2, BigInt(at)));
      results.push(yield* svsm.call(ATTEST, 0xffff_ffff));
    });
    const requests = recordRequests(cvm);
    finish(cvm);
    expect(results.map(code)).toEqual(
      [
        SvsmResult.UNSUPPORTED_PROTOCOL,
        SvsmResult.INVALID_PARAMETER,
        SvsmResult.INVALID_PARAMETER,
        SvsmResult.UNSUPPORTED_CALL,
        SvsmResult.UNSUPPORTED_CALL,
      ].map(BigInt),
    );
    expect(requests).toEqual([]);
  });
});

describe('a host with more certificates than the SVSM takes', () => {
  it('answers RDX = the pages it wants, and the unsent request still consumes its sequence number', () => {
    const results: CallResult[] = [];
    const cvm = runGuest(function* ({ svsm }) {
      results.push(yield* svsm.attestServices(args()));
      results.push(yield* svsm.attestServices(args({ certificates: { gpa: 0, size: 0 } })));
    });
    // A 20 KB "VCEK": the table needs 6 pages, more than the SVSM's 4.
    cvm.machine.asp.vcekCertificate = () => new Uint8Array(20_000).fill(0x30);
    const requests = recordRequests(cvm);
    finish(cvm);
    const [big, plain] = results;
    expect(big?.rax).toBe(BigInt(SvsmResult.INVALID_PARAMETER));
    expect([big?.rcx, big?.rdx, big?.r8]).toEqual([24n, 6n * BigInt(PAGE), 0x4a0n]);
    expect(plain?.rax).toBe(0n);
    expect(requests).toEqual([
      { seqno: 1n, vmpck: 0, status: 0 },
      { seqno: 3n, vmpck: 0, status: 0 },
    ]);
  });
});

describe('a host that tampers with guest requests', () => {
  it('a response that does not authenticate wipes VMPCK0: no further request leaves the SVSM', () => {
    const results: CallResult[] = [];
    const cvm = runGuest(function* ({ svsm }) {
      results.push(yield* svsm.attestServices(args()));
      results.push(yield* svsm.attestServices(args()));
      results.push(yield* svsm.attestServices(args()));
    });
    const asp = cvm.machine.asp;
    const original = asp.guestRequest.bind(asp);
    let calls = 0;
    asp.guestRequest = (request) => {
      calls++;
      const r = original(request);
      // The second answer: one ciphertext bit flipped on its way back.
      if (calls === 2 && r.response !== undefined) r.response[GUEST_MSG_PAYLOAD_OFFSET + 40]! ^= 1;
      return r;
    };
    finish(cvm);
    expect(results.map(code)).toEqual(
      [0n, SvsmResult.INVALID_REQUEST, SvsmResult.INVALID_REQUEST].map(BigInt),
    );
    expect(calls).toBe(2);
    expect(cvm.serial.join('\n')).toMatch(/VMPCK0 wiped/);
  });

  it('a firmware refusal (a replayed sequence number) also wipes VMPCK0', () => {
    const results: CallResult[] = [];
    const cvm = runGuest(function* ({ svsm }) {
      results.push(yield* svsm.attestServices(args({ certificates: { gpa: 0, size: 0 } })));
      results.push(yield* svsm.attestServices(args({ certificates: { gpa: 0, size: 0 } })));
      results.push(yield* svsm.attestServices(args({ certificates: { gpa: 0, size: 0 } })));
    });
    const asp = cvm.machine.asp;
    const original = asp.guestRequest.bind(asp);
    let first: Uint8Array | null = null;
    let calls = 0;
    asp.guestRequest = (request) => {
      calls++;
      // The host replays the first request instead of the second.
      first ??= Uint8Array.from(request);
      return original(calls === 2 ? first : request);
    };
    finish(cvm);
    expect(results.map(code)).toEqual(
      [0n, SvsmResult.INVALID_REQUEST, SvsmResult.INVALID_REQUEST].map(BigInt),
    );
    expect(calls).toBe(2);
  });
});

/** The manifest of an SVSM without services: its 24-byte header. */
function emptyManifest(): Uint8Array {
  const m = new Uint8Array(24);
  // GUID 63849ebb-3d92-4670-a1ff-58f9c94b87bb in mixed-endian order, size 24, count 0.
  m.set([
    0xbb, 0x9e, 0x84, 0x63, 0x92, 0x3d, 0x70, 0x46, 0xa1, 0xff, 0x58, 0xf9, 0xc9, 0x4b, 0x87, 0xbb,
  ]);
  m[16] = 24;
  return m;
}
