// The launch digest the firmware keeps during SNP_LAUNCH_UPDATE: LD starts as 48 zero bytes and
// every page does LD = SHA-384(PAGE_INFO), PAGE_INFO holding the old LD, the page's CONTENTS,
// its type, IMI flag, VMPL1-3 permissions and GPA (reference/sev-snp-abi.md 1.1).

import { hash } from 'node:crypto';
import { hashPagesInBackground, PARALLEL_MIN_PAGES } from './page-hasher.js';
import {
  PAGE_INFO,
  PAGE_INFO_LENGTH,
  PAGE_INFO_VMSA_GPA,
  PAGE_TYPE,
  type PageType,
} from '../../arch/index.js';

export const DIGEST_SIZE = 48;
const ZERO_CONTENTS = new Uint8Array(DIGEST_SIZE);

/** SHA-384 of bytes (one-shot, no hasher object per call). */
export function sha384(data: Uint8Array): Uint8Array {
  return new Uint8Array(hash('sha384', data, 'buffer'));
}

/** What a page type contributes as CONTENTS: the page's hash for NORMAL and VMSA, else zeros. */
export function pageContents(type: PageType, page: Uint8Array): Uint8Array {
  return type === PAGE_TYPE.NORMAL || type === PAGE_TYPE.VMSA ? sha384(page) : ZERO_CONTENTS;
}

export interface MeasuredPage {
  readonly type: PageType;
  /** The page's GPA; VMSA pages are measured at PAGE_INFO_VMSA_GPA whatever this says. */
  readonly gpa: number;
  readonly contents: Uint8Array;
  readonly imi?: boolean;
  readonly vmplPerms?: readonly [number, number, number];
}

// PAGE_INFO offsets, read once from the layout (the chain is the launch's hot path).
const O = {
  digestCur: PAGE_INFO.offset('digestCur'),
  contents: PAGE_INFO.offset('contents'),
  pageType: PAGE_INFO.offset('pageType'),
  imiPage: PAGE_INFO.offset('imiPage'),
  vmpl1Perms: PAGE_INFO.offset('vmpl1Perms'),
  vmpl2Perms: PAGE_INFO.offset('vmpl2Perms'),
  vmpl3Perms: PAGE_INFO.offset('vmpl3Perms'),
  gpa: PAGE_INFO.offset('gpa'),
} as const;

export class LaunchDigest {
  private ld: Uint8Array = new Uint8Array(DIGEST_SIZE);
  private readonly info = PAGE_INFO.alloc();
  private readonly view = new DataView(this.info.buffer);

  constructor() {
    PAGE_INFO.set(this.info, 'length', PAGE_INFO_LENGTH);
  }

  /** Chains one page into the digest. */
  update(p: MeasuredPage): void {
    if (p.contents.length !== DIGEST_SIZE) {
      throw new RangeError(`page CONTENTS must be ${DIGEST_SIZE} bytes`);
    }
    const perms = p.vmplPerms ?? [0, 0, 0];
    const b = this.info;
    b[O.pageType] = p.type;
    b[O.imiPage] = p.imi === true ? 1 : 0;
    b[O.vmpl1Perms] = perms[0];
    b[O.vmpl2Perms] = perms[1];
    b[O.vmpl3Perms] = perms[2];
    this.chain(p.contents, p.type === PAGE_TYPE.VMSA ? PAGE_INFO_VMSA_GPA : p.gpa);
  }

  /** The chaining step with type and permissions already in place. */
  private chain(contents: Uint8Array, gpa: number): void {
    const b = this.info;
    b.set(this.ld, O.digestCur);
    b.set(contents, O.contents);
    this.view.setUint32(O.gpa, gpa % 2 ** 32, true);
    this.view.setUint32(O.gpa + 4, Math.floor(gpa / 2 ** 32), true);
    this.ld = sha384(b);
  }

  /**
   * Chains consecutive NORMAL pages starting at `gpa` (`bytes` a multiple of 4 KiB; VMPL
   * permissions 0). For long runs a helper thread hashes the second half of the pages while this
   * one hashes and chains the first half; the digest is the same as page by page.
   */
  updateNormalPages(gpa: number, bytes: Uint8Array): void {
    const count = bytes.length / 0x1000;
    if (!Number.isInteger(count)) throw new RangeError('updateNormalPages takes whole 4 KiB pages');
    const mine = count < PARALLEL_MIN_PAGES ? count : Math.ceil(count / 2);
    const pending = mine < count ? hashPagesInBackground(bytes.subarray(mine * 0x1000)) : null;
    const b = this.info;
    b[O.pageType] = PAGE_TYPE.NORMAL;
    b.fill(0, O.imiPage, O.vmpl3Perms + 1);
    for (let i = 0; i < mine; i++) {
      this.chain(sha384(bytes.subarray(i * 0x1000, (i + 1) * 0x1000)), gpa + i * 0x1000);
    }
    if (pending === null) return;
    const rest = pending.wait();
    for (let i = 0; i < pending.count; i++) {
      this.chain(rest.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE), gpa + (mine + i) * 0x1000);
    }
  }

  /** The current digest (a copy). */
  get digest(): Uint8Array {
    return Uint8Array.from(this.ld);
  }
}
