// What the host hands the secure processor to build a guest: the policy, the pages with their
// launch types and contents, and the VMSA the bootstrap processor starts from. An IGVM file or the
// image builder produces one; `Vm.launch` carries it out.

import type { PageType } from '../arch/index.js';

export interface LaunchPage {
  readonly gpa: number;
  readonly type: PageType;
  /** Contents the host copies in before SNP_LAUNCH_UPDATE (at most 4 KiB; the rest is zero). */
  readonly data?: Uint8Array;
  readonly vmplPerms?: readonly [number, number, number];
}

export interface LaunchPlan {
  readonly policy: bigint;
  readonly pages: readonly LaunchPage[];
  /** GPA of the BSP's VMPL0 VMSA among `pages`. */
  readonly bspVmsaGpa: number;
  readonly hostData?: Uint8Array;
}

/** A launch the firmware refused, with the page and the firmware's reason. */
export class LaunchError extends Error {
  override readonly name = 'LaunchError';
}
