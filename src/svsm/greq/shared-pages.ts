// Pages of the SVSM's own memory turned into pages it shares with the host, as the guest-request
// transport needs (the host copies the request to the firmware and writes the response and the
// certificate table): taken from the page allocator, validation rescinded (PVALIDATE; a page
// inside a 2 MiB RMP entry is split first with PSC PSMASH), then made shared with a PSC through
// the GHCB. They are reached through the vCPU's window with the C-bit clear, never through the
// kernel's private mapping. `release` undoes all of it before the pages go back to the allocator.

import {
  PSC_ENTRY,
  PSC_HEADER,
  PSC_MAX_ENTRIES,
  PSC_OP,
  SW_EXITCODE,
  type Vmpl0,
} from '../../arch/index.js';
import { SvsmPanic } from '../errors.js';
import type { AddressSpace } from '../mm/address-space.js';
import { type BuddyAllocator, orderForPages } from '../mm/buddy-allocator.js';
import type { GhcbClient } from '../sev/ghcb-client.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
/** PVALIDATE_FAIL_SIZEMISMATCH: a 4 KiB PVALIDATE inside a 2 MiB RMP entry. */
const FAIL_SIZE_MISMATCH = 6;

/** A physically contiguous run of shared pages. */
export interface SharedPages {
  readonly gpa: number;
  readonly pages: number;
}

/** PSC NAE event (GHCB spec "Page State Change") for `gfns`, all 4 KiB, or one PSMASH. */
function pageStateChange(ghcb: GhcbClient, operation: number, gpas: readonly number[]): void {
  if (gpas.length === 0 || gpas.length > PSC_MAX_ENTRIES) {
    throw new SvsmPanic(`a PSC of ${gpas.length} entries does not fit the GHCB`);
  }
  const desc = new Uint8Array(8 + 8 * gpas.length);
  PSC_HEADER.on(desc)
    .set('curEntry', 0)
    .set('endEntry', gpas.length - 1);
  const view = new DataView(desc.buffer);
  gpas.forEach((gpa, i) => {
    const big = operation === PSC_OP.PSMASH;
    const entry = PSC_ENTRY.encode({ gfn: gpa / PAGE, operation, pageSize: big });
    view.setBigUint64(8 + 8 * i, entry, true);
  });
  const r = ghcb.callOrPanic(SW_EXITCODE.PSC, { swScratch: BigInt(ghcb.sharedBufferGpa) }, desc);
  if (r.exitInfo1 !== 0n || r.exitInfo2 !== 0n) {
    throw new SvsmPanic(
      `the host refused PSC operation ${operation} of 0x${gpas[0]!.toString(16)}`,
    );
  }
}

/** Rescinds the validation of one 4 KiB page of the SVSM region, splitting its 2 MiB entry if needed. */
function rescind(cpu: Vmpl0, ghcb: GhcbClient, space: AddressSpace, pa: number): void {
  const va = space.va(pa);
  let r = cpu.pvalidate(va, false, false);
  if (r.rax === FAIL_SIZE_MISMATCH) {
    pageStateChange(ghcb, PSC_OP.PSMASH, [pa - (pa % HUGE)]);
    r = cpu.pvalidate(va, false, false);
  }
  if (r.rax !== 0 || r.carry) {
    throw new SvsmPanic(`rescinding SVSM page 0x${pa.toString(16)} failed: ${r.rax}`);
  }
}

/**
 * `pages` contiguous pages (rounded up to a power of two, which the result reports), shared with
 * the host. Null when the allocator has no such block (the caller decides whether that is fatal).
 */
export function allocSharedPages(
  cpu: Vmpl0,
  ghcb: GhcbClient,
  space: AddressSpace,
  allocator: BuddyAllocator,
  pages: number,
): SharedPages | null {
  const order = orderForPages(pages);
  const gpa = allocator.allocPages(order);
  if (gpa === null) return null;
  const count = 2 ** order;
  const all: number[] = [];
  for (let i = 0; i < count; i++) {
    rescind(cpu, ghcb, space, gpa + i * PAGE);
    all.push(gpa + i * PAGE);
  }
  pageStateChange(ghcb, PSC_OP.SHARED, all);
  return { gpa, pages: count };
}

/** Makes shared pages private and validated again (zeroed) and gives them back to the allocator. */
export function releaseSharedPages(
  cpu: Vmpl0,
  ghcb: GhcbClient,
  space: AddressSpace,
  allocator: BuddyAllocator,
  run: SharedPages,
): void {
  const all = Array.from({ length: run.pages }, (_, i) => run.gpa + i * PAGE);
  pageStateChange(ghcb, PSC_OP.PRIVATE, all);
  for (const pa of all) {
    const va = space.va(pa);
    const r = cpu.pvalidate(va, false, true);
    if (r.rax !== 0 || r.carry)
      throw new SvsmPanic(`revalidating SVSM page 0x${pa.toString(16)} failed: ${r.rax}`);
    cpu.fill(va, PAGE, 0);
  }
  allocator.freePages(run.gpa);
}

/** Maps a run at consecutive shared slots of this vCPU's window; returns the first VA. */
export function mapSharedPages(
  cpu: Vmpl0,
  space: AddressSpace,
  firstSlot: number,
  run: SharedPages,
): number {
  let first = 0;
  for (let i = 0; i < run.pages; i++) {
    const va = space.mapWindow(cpu, firstSlot + i, run.gpa + i * PAGE, true);
    if (i === 0) first = va;
  }
  return first;
}

export function unmapSharedPages(
  cpu: Vmpl0,
  space: AddressSpace,
  firstSlot: number,
  run: SharedPages,
): void {
  for (let i = 0; i < run.pages; i++) space.unmapWindow(cpu, firstSlot + i);
}
