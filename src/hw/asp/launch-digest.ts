// The launch digest the firmware keeps during SNP_LAUNCH_UPDATE: LD starts as 48 zero bytes and
// every page does LD = SHA-384(PAGE_INFO), PAGE_INFO holding the old LD, the page's CONTENTS,
// its type, IMI flag, VMPL1-3 permissions and GPA (reference/sev-snp-abi.md 1.1).

import { hash } from 'node:crypto';
import { hashPages } from './page-hasher.js';
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

export class LaunchDigest {
  private ld: Uint8Array = new Uint8Array(DIGEST_SIZE);
  private readonly info = PAGE_INFO.on(PAGE_INFO.alloc());

  constructor() {
    this.info.set('length', PAGE_INFO_LENGTH);
  }

  /** Chains one page into the digest. */
  update(p: MeasuredPage): void {
    if (p.contents.length !== DIGEST_SIZE) {
      throw new RangeError(`page CONTENTS must be ${DIGEST_SIZE} bytes`);
    }
    const perms = p.vmplPerms ?? [0, 0, 0];
    this.info
      .set('digestCur', this.ld)
      .set('contents', p.contents)
      .set('pageType', p.type)
      .set('imiPage', p.imi === true ? 1 : 0)
      .set('vmpl1Perms', perms[0])
      .set('vmpl2Perms', perms[1])
      .set('vmpl3Perms', perms[2])
      .set('gpa', BigInt(p.type === PAGE_TYPE.VMSA ? PAGE_INFO_VMSA_GPA : p.gpa));
    this.ld = sha384(this.info.bytes);
  }

  /**
   * Chains consecutive NORMAL pages starting at `gpa` (`bytes` a multiple of 4 KiB), hashing their
   * contents in parallel where that pays off; the digest is the same as page by page.
   */
  updateNormalPages(gpa: number, bytes: Uint8Array): void {
    const contents = hashPages(bytes);
    for (let i = 0; i < bytes.length / 0x1000; i++) {
      this.update({
        type: PAGE_TYPE.NORMAL,
        gpa: gpa + i * 0x1000,
        contents: contents.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE),
      });
    }
  }

  /** The current digest (a copy). */
  get digest(): Uint8Array {
    return Uint8Array.from(this.ld);
  }
}
