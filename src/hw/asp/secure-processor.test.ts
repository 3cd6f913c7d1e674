import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  ATTESTATION_REPORT,
  MSG_KEY_RSP,
  MSG_REPORT_RSP,
  PAGE_TYPE,
  SEV_FW_STATUS,
  SNP_MSG_TYPE,
  SNP_SECRETS_PAGE,
  VMSA,
} from '../../arch/index.js';
import { openResponse, reportRequest, sealRequest } from '../../../test/support/guest-messages.js';
import { MIN_MEMORY_BYTES, PhysicalMemory } from '../memory.js';
import { seededRandom } from '../random.js';
import { ACCESS, Rmp, RMP_OK } from '../rmp.js';
import type { ChipIdentity } from './chip-identity.js';
import { defaultSnpCpuidEntries } from '../platform-cpuid.js';
import { buildCpuidPage } from '../../arch/index.js';
import { verifyReportSignature } from './report-signer.js';
import { SecureProcessor } from './secure-processor.js';
import { loadTestIdentity } from './test-identity.fixture.js';
import { vcekOf } from './vcek.js';

const POLICY = 0x30000n; // SMT allowed, bit 17 set

let identity: ChipIdentity;
beforeAll(() => {
  identity = loadTestIdentity();
});

function machine(): { mem: PhysicalMemory; rmp: Rmp; asp: SecureProcessor } {
  const mem = new PhysicalMemory(MIN_MEMORY_BYTES);
  const rmp = new Rmp(mem.pageCount);
  const asp = new SecureProcessor({ identity, memory: mem, rmp, random: seededRandom('asp test') });
  return { mem, rmp, asp };
}

/** Launches a guest with one code page, a secrets page and a VMSA; returns its VMPCKs. */
function launchSmallGuest(m: ReturnType<typeof machine>): Uint8Array[] {
  const { mem, asp } = m;
  expect(asp.launchStart(POLICY)).toEqual({ status: 0 });
  mem.fill(0x10000, 4096, 0x90);
  expect(asp.launchUpdate(0x10000, PAGE_TYPE.NORMAL).status).toBe(0);
  expect(asp.launchUpdate(0x20000, PAGE_TYPE.SECRETS).status).toBe(0);
  VMSA.on(mem.bytes, 0x30000).set('efer', 0x1000n).set('sevFeatures', 1n).set('rip', 0x10000n);
  expect(asp.launchUpdate(0x30000, PAGE_TYPE.VMSA).status).toBe(0);
  expect(asp.launchFinish({ hostData: new Uint8Array(32).fill(0x77) }).status).toBe(0);
  const secrets = SNP_SECRETS_PAGE.on(mem.bytes, 0x20000);
  return [
    secrets.get('vmpck0'),
    secrets.get('vmpck1'),
    secrets.get('vmpck2'),
    secrets.get('vmpck3'),
  ];
}

// The digest of launchSmallGuest, computed from the spec without the firmware's code.
function expectedDigest(mem: PhysicalMemory): Buffer {
  const h = (b: Uint8Array): Buffer => createHash('sha384').update(b).digest();
  let ld: Buffer = Buffer.alloc(48);
  const step = (contents: Buffer, type: number, gpa: bigint): void => {
    const info = Buffer.alloc(0x70);
    ld.copy(info, 0);
    contents.copy(info, 0x30);
    info.writeUInt16LE(0x70, 0x60);
    info[0x62] = type;
    info.writeBigUInt64LE(gpa, 0x68);
    ld = h(info);
  };
  step(h(mem.read(0x10000, 4096)), 1, 0x10000n);
  step(Buffer.alloc(48), 5, 0x20000n);
  step(h(mem.read(0x30000, 4096)), 2, 0xffff_ffff_f000n);
  return ld;
}

describe('SNP launch', () => {
  it('measures pages, fills the secrets page and makes every page assigned and validated', () => {
    const m = machine();
    const vmpcks = launchSmallGuest(m);
    expect(Buffer.from(m.asp.measurement).equals(expectedDigest(m.mem))).toBe(true);
    expect(SNP_SECRETS_PAGE.get(m.mem.bytes, 'version', 0x20000)).toBe(3);
    expect(SNP_SECRETS_PAGE.get(m.mem.bytes, 'fms', 0x20000)).toBe(0xa00f11);
    expect(new Set(vmpcks.map((k) => Buffer.from(k).toString('hex'))).size).toBe(4);
    for (const gpa of [0x10000, 0x20000, 0x30000]) {
      expect(m.rmp.check(gpa, true, 0, 0, ACCESS.READ)).toBe(RMP_OK);
      expect(m.rmp.check(gpa, true, 2, 0, ACCESS.READ)).not.toBe(RMP_OK);
    }
    expect(m.rmp.describe(0x30)).toContain('vmsa');
    expect(m.asp.state).toBe('running');
  });

  it('zeroes ZERO pages, leaves UNMEASURED pages alone, and applies VMPL permissions', () => {
    const m = machine();
    m.asp.launchStart(POLICY);
    m.mem.fill(0x40000, 4096, 0xee);
    m.mem.fill(0x41000, 4096, 0xee);
    m.asp.launchUpdate(0x40000, PAGE_TYPE.ZERO);
    m.asp.launchUpdate(0x41000, PAGE_TYPE.UNMEASURED, { vmplPerms: [0, 0xf, 0] });
    expect(m.mem.read(0x40000, 4096).every((b) => b === 0)).toBe(true);
    expect(m.mem.read(0x41000, 4096).every((b) => b === 0xee)).toBe(true);
    expect(m.rmp.vmplPerms(0x41)).toEqual([0, 0xf, 0]);
  });

  it('checks the guest policy', () => {
    const cases: [bigint, number, RegExp][] = [
      [0x10000n, SEV_FW_STATUS.INVALID_PARAM, /bit 17/],
      [0x30000n | (1n << 40n), SEV_FW_STATUS.INVALID_PARAM, /63:26/],
      [0x20000n, SEV_FW_STATUS.POLICY_FAILURE, /SMT/],
      [0x30000n | (2n << 8n), SEV_FW_STATUS.POLICY_FAILURE, /ABI 2\.0/],
      [0x30000n | (1n << 23n), SEV_FW_STATUS.POLICY_FAILURE, /RAPL/],
    ];
    for (const [policy, status, reason] of cases) {
      const r = machine().asp.launchStart(policy);
      expect(r.status, policy.toString(16)).toBe(status);
      expect(r.reason).toMatch(reason);
    }
    expect(machine().asp.launchStart(0x30000n | (1n << 8n) | 55n).status).toBe(0);
  });

  it('refuses commands out of order and pages that already belong to the guest', () => {
    const m = machine();
    expect(m.asp.launchUpdate(0x10000, PAGE_TYPE.NORMAL).status).toBe(
      SEV_FW_STATUS.INVALID_GUEST_STATE,
    );
    expect(m.asp.launchFinish().status).toBe(SEV_FW_STATUS.INVALID_GUEST_STATE);
    m.asp.launchStart(POLICY);
    expect(m.asp.launchStart(POLICY).status).toBe(SEV_FW_STATUS.INVALID_GUEST_STATE);
    expect(m.asp.launchUpdate(0x10000, PAGE_TYPE.NORMAL).status).toBe(0);
    expect(m.asp.launchUpdate(0x10000, PAGE_TYPE.NORMAL).status).toBe(
      SEV_FW_STATUS.INVALID_PAGE_STATE,
    );
    expect(m.asp.launchUpdate(0x10001, PAGE_TYPE.NORMAL).status).toBe(
      SEV_FW_STATUS.INVALID_ADDRESS,
    );
    expect(m.asp.launchUpdate(MIN_MEMORY_BYTES, PAGE_TYPE.NORMAL).status).toBe(
      SEV_FW_STATUS.INVALID_ADDRESS,
    );
    expect(m.asp.launchUpdate(0x11000, 9 as never).status).toBe(SEV_FW_STATUS.INVALID_PARAM);
    expect(m.asp.guestRequest(new Uint8Array(4096)).status).toBe(SEV_FW_STATUS.INVALID_GUEST_STATE);
  });

  it('accepts the platform CPUID page and rejects a bad one with corrected values written back', () => {
    const m = machine();
    m.asp.launchStart(POLICY);
    const entries = defaultSnpCpuidEntries('Milan', 1);
    m.mem.write(0x50000, buildCpuidPage(entries));
    expect(m.asp.launchUpdate(0x50000, PAGE_TYPE.CPUID).status).toBe(0);
    const bad = entries.map((e) => (e.eaxIn === 1 ? { ...e, eax: 0x00b00f00 } : e));
    m.mem.write(0x51000, buildCpuidPage(bad));
    const r = m.asp.launchUpdate(0x51000, PAGE_TYPE.CPUID);
    expect(r.status).toBe(SEV_FW_STATUS.INVALID_PARAM);
    expect(m.rmp.isAssigned(0x51)).toBe(false);
    expect(m.asp.launchUpdate(0x51000, PAGE_TYPE.CPUID).status).toBe(0);
  });
});

describe('guest requests', () => {
  it('answer MSG_REPORT_REQ with a report signed by the VCEK carrying the launch facts', () => {
    const m = machine();
    const vmpcks = launchSmallGuest(m);
    const reportData = new Uint8Array(64).fill(0x42);
    const req = sealRequest(
      vmpcks[0]!,
      1n,
      0,
      SNP_MSG_TYPE.REPORT_REQ,
      reportRequest(reportData, 0),
    );
    const r = m.asp.guestRequest(req);
    expect(r.status).toBe(0);
    const rsp = openResponse(vmpcks[0]!, r.response!);
    expect(rsp).toMatchObject({ seqno: 2n, type: SNP_MSG_TYPE.REPORT_RSP, vmpck: 0 });
    expect(MSG_REPORT_RSP.get(rsp.payload, 'status')).toBe(0);
    expect(MSG_REPORT_RSP.get(rsp.payload, 'reportSize')).toBe(0x4a0);
    const report = MSG_REPORT_RSP.get(rsp.payload, 'report');
    const v = ATTESTATION_REPORT.on(report);
    expect(v.get('version')).toBe(3);
    expect(v.get('policy')).toBe(POLICY);
    expect(Buffer.from(v.get('reportData')).equals(Buffer.from(reportData))).toBe(true);
    expect(Buffer.from(v.get('measurement')).equals(expectedDigest(m.mem))).toBe(true);
    expect(v.get('hostData').every((b) => b === 0x77)).toBe(true);
    expect(Buffer.from(v.get('chipId')).equals(Buffer.from(identity.chipId))).toBe(true);
    expect(v.get('reportedTcb')).toBe(identity.tcb);
    expect(verifyReportSignature(report, vcekOf(identity).publicKey)).toBe(true);
  });

  it('refuse a report for a VMPL more privileged than the requester, in the response status', () => {
    const m = machine();
    const vmpcks = launchSmallGuest(m);
    const req = sealRequest(
      vmpcks[2]!,
      1n,
      2,
      SNP_MSG_TYPE.REPORT_REQ,
      reportRequest(new Uint8Array(64), 0),
    );
    const r = m.asp.guestRequest(req);
    expect(r.status).toBe(0);
    const rsp = openResponse(vmpcks[2]!, r.response!);
    expect(MSG_REPORT_RSP.get(rsp.payload, 'status')).toBe(SEV_FW_STATUS.INVALID_PARAM);
    expect(MSG_REPORT_RSP.get(rsp.payload, 'report').every((b) => b === 0)).toBe(true);
    const own = sealRequest(
      vmpcks[2]!,
      3n,
      2,
      SNP_MSG_TYPE.REPORT_REQ,
      reportRequest(new Uint8Array(64), 3),
    );
    const ok = openResponse(vmpcks[2]!, m.asp.guestRequest(own).response!);
    expect(ATTESTATION_REPORT.get(MSG_REPORT_RSP.get(ok.payload, 'report'), 'vmpl')).toBe(3);
  });

  it('refuse a replayed request, a wrong key and a tampered ciphertext', () => {
    const m = machine();
    const vmpcks = launchSmallGuest(m);
    const req = sealRequest(
      vmpcks[0]!,
      1n,
      0,
      SNP_MSG_TYPE.REPORT_REQ,
      reportRequest(new Uint8Array(64), 0),
    );
    expect(m.asp.guestRequest(req).status).toBe(0);
    expect(m.asp.guestRequest(req)).toMatchObject({
      status: SEV_FW_STATUS.INVALID_PARAM,
      reason: expect.stringMatching(/sequence/),
    });
    const wrongKey = sealRequest(
      vmpcks[1]!,
      3n,
      0,
      SNP_MSG_TYPE.REPORT_REQ,
      reportRequest(new Uint8Array(64), 0),
    );
    expect(m.asp.guestRequest(wrongKey).reason).toMatch(/authenticate/);
    const tampered = sealRequest(
      vmpcks[0]!,
      3n,
      0,
      SNP_MSG_TYPE.REPORT_REQ,
      reportRequest(new Uint8Array(64), 0),
    );
    tampered[0x70]! ^= 1;
    expect(m.asp.guestRequest(tampered).status).not.toBe(0);
  });

  it('derive the same key for the same request and a different one for another VMPL', () => {
    const m = machine();
    const vmpcks = launchSmallGuest(m);
    const keyReq = (vmpl: number): Uint8Array => {
      const b = Buffer.alloc(0x20);
      b.writeBigUInt64LE(0b1001n, 0x08); // policy and measurement
      b.writeUInt32LE(vmpl, 0x10);
      return new Uint8Array(b);
    };
    const ask = (seq: bigint, vmpl: number): Uint8Array => {
      const r = m.asp.guestRequest(
        sealRequest(vmpcks[1]!, seq, 1, SNP_MSG_TYPE.KEY_REQ, keyReq(vmpl)),
      );
      const rsp = openResponse(vmpcks[1]!, r.response!);
      expect(MSG_KEY_RSP.get(rsp.payload, 'status')).toBe(0);
      return MSG_KEY_RSP.get(rsp.payload, 'derivedKey');
    };
    const a = ask(1n, 1);
    const b = ask(3n, 1);
    const c = ask(5n, 2);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
    const denied = openResponse(
      vmpcks[1]!,
      m.asp.guestRequest(sealRequest(vmpcks[1]!, 7n, 1, SNP_MSG_TYPE.KEY_REQ, keyReq(0))).response!,
    );
    expect(MSG_KEY_RSP.get(denied.payload, 'status')).toBe(SEV_FW_STATUS.INVALID_PARAM);
  });
});
