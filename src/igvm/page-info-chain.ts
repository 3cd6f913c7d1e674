// The SEV-SNP launch digest as a relying party computes it: LD starts as 48 zero bytes and each
// page launched does LD = SHA-384(PAGE_INFO), PAGE_INFO = {LD, CONTENTS, LENGTH 0x70, PAGE_TYPE,
// IMI 0, VMPL1-3 perms 0, GPA} (reference/sev-snp-abi.md 1.1, coconut igvmmeasure page_info.rs).
// Written here on purpose, apart from src/hw/asp/launch-digest.ts: the two must agree, and a test
// that launches through the simulated ASP checks that they do.

import { createHash } from 'node:crypto';
import { PAGE_INFO, PAGE_INFO_LENGTH, PAGE_TYPE, type PageType } from '../arch/rmp.js';

export const SNP_DIGEST_SIZE = 48;

export function sha384(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha384').update(data).digest());
}

/** SHA-384 of a page of zeros: what a zero page imported as NORMAL contributes. */
export const SHA384_ZERO_PAGE: Uint8Array = sha384(new Uint8Array(0x1000));

/** One SNP_LAUNCH_UPDATE as the digest sees it. */
export interface LaunchUpdate {
  readonly pageType: PageType;
  readonly gpa: number;
  /** SHA-384 of the page for NORMAL and VMSA; 48 zero bytes for every other type. */
  readonly contents: Uint8Array;
}

const ZERO_CONTENTS = new Uint8Array(SNP_DIGEST_SIZE);

/** The CONTENTS field for a page type: the page's hash for NORMAL and VMSA, zeros otherwise. */
export function contentsFor(pageType: PageType, page: Uint8Array | null): Uint8Array {
  if (pageType !== PAGE_TYPE.NORMAL && pageType !== PAGE_TYPE.VMSA) return ZERO_CONTENTS;
  return page === null ? SHA384_ZERO_PAGE : sha384(page);
}

/** A running launch digest. */
export class PageInfoChain {
  private ld: Uint8Array = new Uint8Array(SNP_DIGEST_SIZE);
  private readonly record = PAGE_INFO.alloc();

  /** Chains one page: LD = SHA-384(PAGE_INFO). VMPL permissions and IMI are always 0 here. */
  update(u: LaunchUpdate): void {
    PAGE_INFO.on(this.record)
      .set('digestCur', this.ld)
      .set('contents', u.contents)
      .set('length', PAGE_INFO_LENGTH)
      .set('pageType', u.pageType)
      .set('gpa', BigInt(u.gpa));
    this.ld = sha384(this.record);
  }

  get digest(): Uint8Array {
    return Uint8Array.from(this.ld);
  }
}
