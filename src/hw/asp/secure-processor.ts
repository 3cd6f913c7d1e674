// The AMD secure processor's SNP firmware for one guest: the launch commands that build and
// measure the guest (SNP_LAUNCH_START/UPDATE/FINISH) and the guest requests it answers
// afterwards (reports and derived keys). Facts: reference/sev-snp-abi.md sections 1-3.

import {
  GUEST_FIELD_SELECT,
  GUEST_POLICY,
  KEY_SEL,
  MSG_KEY_REQ_SIZE_V1,
  MSG_KEY_REQ_SIZE_V2,
  MSG_KEY_REQ_V2,
  MSG_KEY_RSP,
  MSG_REPORT_REQ,
  MSG_REPORT_RSP,
  PAGE_TYPE,
  type PageType,
  PLATFORM_INFO,
  PRODUCT_CPUID,
  REPORT_SIZE,
  ROOT_KEY_SELECT,
  SECRETS_PAGE_VERSION,
  SEV_FW_STATUS,
  SNP_MSG_TYPE,
  SNP_SECRETS_PAGE,
  TCB_VERSION,
  VMPCK_FIELDS,
  VMPL_PERM_ALL,
} from '../../arch/index.js';
import { PAGE_SIZE, type PhysicalMemory } from '../memory.js';
import { randomBytesFrom, type RandomSource } from '../random.js';
import type { Rmp } from '../rmp.js';
import type { ChipIdentity } from './chip-identity.js';
import { checkCpuidPage } from './cpuid-check.js';
import { type GuestMessage, GuestMessageChannel } from './guest-channel.js';
import { deriveGuestKey } from './key-derivation.js';
import { LaunchDigest, pageContents } from './launch-digest.js';
import { buildReport, signReport } from './report-signer.js';
import { vcekCertificate, vcekOf } from './vcek.js';

/** A firmware command's outcome: SEV_FW_STATUS, and for people a reason when it failed. */
export interface FwResult {
  readonly status: number;
  readonly reason?: string;
}

const OK: FwResult = { status: SEV_FW_STATUS.SUCCESS };
const fail = (status: number, reason: string): FwResult => ({ status, reason });

export type GuestState = 'uninitialised' | 'launching' | 'running';

export interface LaunchUpdateOptions {
  readonly vmplPerms?: readonly [number, number, number];
  /** IMI_PAGE: digested for a migration image; we support only normal launches. */
  readonly imi?: boolean;
}

export interface LaunchFinishOptions {
  readonly hostData?: Uint8Array;
}

export interface GuestRequestResult extends FwResult {
  /** The encrypted response page, when the command succeeded. */
  readonly response?: Uint8Array;
}

export interface SecureProcessorOptions {
  readonly identity: ChipIdentity;
  readonly memory: PhysicalMemory;
  readonly rmp: Rmp;
  readonly random: RandomSource;
  /** PLATFORM_INFO of the platform; SMT enabled by default, as on the genuine Milan report. */
  readonly platformInfo?: bigint;
}

interface LaunchedGuest {
  readonly policy: bigint;
  readonly digest: LaunchDigest;
  readonly vmpcks: readonly Uint8Array[];
  readonly reportId: Uint8Array;
  readonly launchTcb: bigint;
  measurement?: Uint8Array;
  hostData: Uint8Array;
  channel?: GuestMessageChannel;
}

export class SecureProcessor {
  readonly identity: ChipIdentity;
  readonly platformInfo: bigint;
  private readonly memory: PhysicalMemory;
  private readonly rmp: Rmp;
  private readonly random: RandomSource;
  private guest: LaunchedGuest | null = null;
  private stateName: GuestState = 'uninitialised';

  constructor(opts: SecureProcessorOptions) {
    this.identity = opts.identity;
    this.memory = opts.memory;
    this.rmp = opts.rmp;
    this.random = opts.random;
    this.platformInfo = opts.platformInfo ?? PLATFORM_INFO.encode({ smtEn: true });
  }

  get state(): GuestState {
    return this.stateName;
  }

  /** The launch digest so far (during launch) or the final MEASUREMENT. */
  get measurement(): Uint8Array {
    if (this.guest === null) throw new Error('no guest has been launched');
    return this.guest.measurement ?? this.guest.digest.digest;
  }

  /** SNP_LAUNCH_START: checks the guest policy against this platform and firmware. */
  launchStart(policy: bigint): FwResult {
    if (this.stateName !== 'uninitialised') {
      return fail(
        SEV_FW_STATUS.INVALID_GUEST_STATE,
        'a guest was already launched on this machine',
      );
    }
    const problem = this.policyProblem(policy);
    if (problem !== null) return problem;
    const vmpcks = [0, 1, 2, 3].map(() => randomBytesFrom(this.random, 32));
    this.guest = {
      policy,
      digest: new LaunchDigest(),
      vmpcks,
      reportId: randomBytesFrom(this.random, 32),
      launchTcb: this.identity.tcb,
      hostData: new Uint8Array(32),
    };
    this.stateName = 'launching';
    return OK;
  }

  private policyProblem(policy: bigint): FwResult | null {
    if (policy < 0n || policy > 0xffff_ffff_ffff_ffffn) {
      return fail(SEV_FW_STATUS.INVALID_PARAM, 'the policy is not a 64-bit value');
    }
    if (GUEST_POLICY.reservedBits(policy) !== 0n) {
      return fail(SEV_FW_STATUS.INVALID_PARAM, 'policy bits 63:26 must be zero');
    }
    if (!GUEST_POLICY.has(policy, 'reserved1')) {
      return fail(SEV_FW_STATUS.INVALID_PARAM, 'policy bit 17 must be one');
    }
    const major = Number(GUEST_POLICY.get(policy, 'abiMajor'));
    const minor = Number(GUEST_POLICY.get(policy, 'abiMinor'));
    const fw = this.identity.firmware;
    if (major > fw.major || (major === fw.major && minor > fw.minor)) {
      return fail(
        SEV_FW_STATUS.POLICY_FAILURE,
        `the policy needs ABI ${major}.${minor}, the firmware is ${fw.major}.${fw.minor}`,
      );
    }
    if (PLATFORM_INFO.has(this.platformInfo, 'smtEn') && !GUEST_POLICY.has(policy, 'smt')) {
      return fail(
        SEV_FW_STATUS.POLICY_FAILURE,
        'SMT is enabled on the platform but the policy does not allow it',
      );
    }
    if (GUEST_POLICY.has(policy, 'raplDis') && !PLATFORM_INFO.has(this.platformInfo, 'raplDis')) {
      return fail(SEV_FW_STATUS.POLICY_FAILURE, 'the policy requires RAPL to be disabled');
    }
    if (
      GUEST_POLICY.has(policy, 'ciphertextHiding') &&
      !PLATFORM_INFO.has(this.platformInfo, 'ciphertextHidingEn')
    ) {
      return fail(SEV_FW_STATUS.POLICY_FAILURE, 'the policy requires ciphertext hiding');
    }
    return null;
  }

  /**
   * SNP_LAUNCH_UPDATE of one 4 KiB page: measures it by type, makes it assigned and validated
   * with the given VMPL permissions. The page must not belong to the guest yet.
   */
  launchUpdate(gpa: number, type: PageType, opts: LaunchUpdateOptions = {}): FwResult {
    const g = this.guest;
    if (this.stateName !== 'launching' || g === null) {
      return fail(SEV_FW_STATUS.INVALID_GUEST_STATE, 'SNP_LAUNCH_UPDATE outside a launch');
    }
    if (
      !Number.isSafeInteger(gpa) ||
      gpa % PAGE_SIZE !== 0 ||
      !this.memory.contains(gpa, PAGE_SIZE)
    ) {
      return fail(
        SEV_FW_STATUS.INVALID_ADDRESS,
        `0x${gpa.toString(16)} is not a page of guest memory`,
      );
    }
    if (!Object.values(PAGE_TYPE).includes(type)) {
      return fail(SEV_FW_STATUS.INVALID_PARAM, `page type ${type} does not exist`);
    }
    if (opts.imi === true) {
      return fail(SEV_FW_STATUS.UNSUPPORTED, 'migration images (IMI pages) are not supported');
    }
    const perms = opts.vmplPerms ?? [0, 0, 0];
    if (perms.some((p) => !Number.isInteger(p) || p < 0 || p > VMPL_PERM_ALL)) {
      return fail(SEV_FW_STATUS.INVALID_PARAM, 'VMPL permissions are 4-bit masks');
    }
    const pfn = gpa / PAGE_SIZE;
    if (this.rmp.isAssigned(pfn)) {
      return fail(
        SEV_FW_STATUS.INVALID_PAGE_STATE,
        `page 0x${gpa.toString(16)} already belongs to the guest`,
      );
    }
    const page = this.memory.page(pfn);
    switch (type) {
      case PAGE_TYPE.ZERO:
        page.fill(0);
        break;
      case PAGE_TYPE.SECRETS:
        this.fillSecretsPage(page, g);
        break;
      case PAGE_TYPE.CPUID: {
        const check = checkCpuidPage(page, this.identity.product);
        if (!check.ok) {
          // The firmware writes the values it would accept back and fails the command.
          page.set(check.corrected);
          return fail(
            SEV_FW_STATUS.INVALID_PARAM,
            `CPUID page rejected: ${check.mismatches.length} entries corrected`,
          );
        }
        break;
      }
      default:
        break;
    }
    g.digest.update({ type, gpa, contents: pageContents(type, page), vmplPerms: perms });
    this.rmp.firmwareAssign(pfn, {
      validated: true,
      vmsa: type === PAGE_TYPE.VMSA,
      vmplPerms: [perms[0], perms[1], perms[2]],
    });
    return OK;
  }

  private fillSecretsPage(page: Uint8Array, g: LaunchedGuest): void {
    page.fill(0);
    const s = SNP_SECRETS_PAGE.on(page)
      .set('version', SECRETS_PAGE_VERSION)
      .set('imiEn', 0)
      .set('fms', PRODUCT_CPUID[this.identity.product].fms);
    VMPCK_FIELDS.forEach((f, i) => s.set(f, g.vmpcks[i]!));
  }

  /** SNP_LAUNCH_FINISH: freezes the digest as MEASUREMENT and records HOST_DATA. */
  launchFinish(opts: LaunchFinishOptions = {}): FwResult {
    const g = this.guest;
    if (this.stateName !== 'launching' || g === null) {
      return fail(SEV_FW_STATUS.INVALID_GUEST_STATE, 'SNP_LAUNCH_FINISH outside a launch');
    }
    if (opts.hostData !== undefined) {
      if (opts.hostData.length !== 32)
        return fail(SEV_FW_STATUS.INVALID_PARAM, 'HOST_DATA is 32 bytes');
      g.hostData = Uint8Array.from(opts.hostData);
    }
    g.measurement = g.digest.digest;
    g.channel = new GuestMessageChannel(g.vmpcks);
    this.stateName = 'running';
    return OK;
  }

  /** SNP_GUEST_REQUEST: one encrypted request page in, one encrypted response page out. */
  guestRequest(request: Uint8Array): GuestRequestResult {
    const g = this.guest;
    if (this.stateName !== 'running' || g === null || g.channel === undefined) {
      return fail(SEV_FW_STATUS.INVALID_GUEST_STATE, 'the guest is not running');
    }
    const opened = g.channel.open(request);
    if (!opened.ok) return fail(opened.status, opened.reason);
    const msg = opened.message;
    let payload: Uint8Array;
    if (msg.type === SNP_MSG_TYPE.REPORT_REQ) {
      payload = this.reportResponse(g, msg);
    } else if (msg.type === SNP_MSG_TYPE.KEY_REQ) {
      payload = this.keyResponse(g, msg);
    } else {
      return fail(SEV_FW_STATUS.INVALID_PARAM, `message type ${msg.type} is not supported`);
    }
    return { status: SEV_FW_STATUS.SUCCESS, response: g.channel.respond(msg, payload) };
  }

  /** MSG_REPORT_RSP for a MSG_REPORT_REQ; errors travel in the response's STATUS. */
  private reportResponse(g: LaunchedGuest, msg: GuestMessage): Uint8Array {
    const rsp = MSG_REPORT_RSP.alloc();
    const status = (s: number): Uint8Array => {
      MSG_REPORT_RSP.set(rsp, 'status', s);
      return rsp;
    };
    if (msg.payload.length < MSG_REPORT_REQ.size) return status(SEV_FW_STATUS.INVALID_PARAM);
    const req = MSG_REPORT_REQ.on(msg.payload);
    const vmpl = req.get('vmpl');
    // A guest may ask for its own VMPL or a less privileged one, never a more privileged one.
    if (vmpl > 3 || vmpl < msg.vmpck) return status(SEV_FW_STATUS.INVALID_PARAM);
    const keySel = req.get('keySel') & 0x3;
    if (keySel === KEY_SEL.VLEK) return status(SEV_FW_STATUS.INVALID_KEY);
    if (keySel === 3) return status(SEV_FW_STATUS.INVALID_PARAM);
    const id = this.identity;
    const report = buildReport({
      product: id.product,
      policy: g.policy,
      vmpl,
      currentTcb: id.tcb,
      platformInfo: this.platformInfo,
      reportData: req.get('reportData'),
      measurement: g.measurement!,
      hostData: g.hostData,
      reportId: g.reportId,
      reportedTcb: id.tcb,
      chipId: id.chipId,
      committedTcb: id.tcb,
      currentVersion: id.firmware,
      launchTcb: g.launchTcb,
    });
    signReport(report, vcekOf(id).privateKey);
    MSG_REPORT_RSP.on(rsp)
      .set('status', SEV_FW_STATUS.SUCCESS)
      .set('reportSize', REPORT_SIZE)
      .set('report', report);
    return rsp;
  }

  /** MSG_KEY_RSP for a MSG_KEY_REQ (version 1 or 2). */
  private keyResponse(g: LaunchedGuest, msg: GuestMessage): Uint8Array {
    const rsp = MSG_KEY_RSP.alloc();
    const status = (s: number): Uint8Array => {
      MSG_KEY_RSP.set(rsp, 'status', s);
      return rsp;
    };
    const v2 = msg.version >= 2;
    if (msg.payload.length < (v2 ? MSG_KEY_REQ_SIZE_V2 : MSG_KEY_REQ_SIZE_V1)) {
      return status(SEV_FW_STATUS.INVALID_PARAM);
    }
    // The V1 fields are a prefix of V2, so one padded view reads both.
    const buf = new Uint8Array(MSG_KEY_REQ_SIZE_V2);
    buf.set(msg.payload.subarray(0, v2 ? MSG_KEY_REQ_SIZE_V2 : MSG_KEY_REQ_SIZE_V1));
    const req = MSG_KEY_REQ_V2.on(buf);
    const root = BigInt(req.get('rootKeySelect'));
    const select = req.get('guestFieldSelect');
    const vmpl = req.get('vmpl');
    const tcb = req.get('tcbVersion');
    // No VMRK exists without a migration agent, and no VLEK is installed.
    if (ROOT_KEY_SELECT.has(root, 'rootKeySel')) return status(SEV_FW_STATUS.INVALID_PARAM);
    if (ROOT_KEY_SELECT.get(root, 'keySel') === BigInt(KEY_SEL.VLEK)) {
      return status(SEV_FW_STATUS.INVALID_KEY);
    }
    if (ROOT_KEY_SELECT.reservedBits(root) !== 0n) return status(SEV_FW_STATUS.INVALID_PARAM);
    if (GUEST_FIELD_SELECT.reservedBits(select) !== 0n) return status(SEV_FW_STATUS.INVALID_PARAM);
    if (vmpl > 3 || vmpl < msg.vmpck) return status(SEV_FW_STATUS.INVALID_PARAM);
    // Without an ID block the launch GUEST_SVN is 0, and a request may not exceed it.
    if (req.get('guestSvn') > 0) return status(SEV_FW_STATUS.INVALID_PARAM);
    if (!tcbAtMost(tcb, this.identity.tcb)) return status(SEV_FW_STATUS.INVALID_PARAM);
    const key = deriveGuestKey({
      root: { kind: 'VCEK', chipSecret: this.identity.chipSecret },
      guestFieldSelect: select,
      vmpl,
      policy: g.policy,
      imageId: new Uint8Array(16),
      familyId: new Uint8Array(16),
      measurement: g.measurement!,
      guestSvn: req.get('guestSvn'),
      tcbVersion: tcb,
      launchMitVector: v2 ? req.get('launchMitVector') : 0n,
    });
    MSG_KEY_RSP.on(rsp).set('status', SEV_FW_STATUS.SUCCESS).set('derivedKey', key);
    return rsp;
  }

  private vcekCert: Uint8Array | null = null;

  /** This chip's VCEK certificate (DER) for its current TCB, as the KDS serves it. */
  vcekCertificate(): Uint8Array {
    // Deriving and signing it takes ~20 ms; the identity and TCB do not change while we run.
    this.vcekCert ??= vcekCertificate(this.identity);
    return this.vcekCert;
  }
}

/** True when every SPL of `tcb` is at most the same SPL of `limit`. */
function tcbAtMost(tcb: bigint, limit: bigint): boolean {
  const a = TCB_VERSION.decode(tcb);
  const b = TCB_VERSION.decode(limit);
  return (Object.keys(a) as (keyof typeof a)[]).every((k) => a[k] <= b[k]);
}
