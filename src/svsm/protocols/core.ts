// The core protocol (SVSM spec, protocol 0), with the checks COCONUT applies
// (reference/coconut-svsm.md section 3).

import {
  AP_CREATION_OP,
  EFER,
  PVALIDATE_ENTRY_SIZE,
  PVALIDATE_HEADER,
  PVALIDATE_HEADER_SIZE,
  PvalidatePageSize,
  SvsmCoreCall,
  SvsmProtocol,
  SvsmResult,
  VMPL_PERM_ALL,
  VMSA,
  createVcpuApicId,
  decodePvalidateEntry,
  decodeQueryProtocolRcx,
  maxPvalidateEntries,
  pvalidateEntryReservedBits,
  queryProtocolAnswer,
  svsmProtocolResult,
} from '../../arch/index.js';
import { RMPADJUST_PERMS_SHIFT, RMPADJUST_VMSA, apCreation } from '../boot/vmsa-page.js';
import { SvsmPanic } from '../errors.js';
import { GuestMemoryFault } from '../mm/guest-memory.js';
import type { SvsmCall } from './call.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
/** PVALIDATE's "no change" (CF set) as a protocol result. */
const FAIL_UNCHANGED = 0x10;
/** The legacy ISA range is not zeroed on validation. */
const ISA_START = 0xa0000;
const ISA_END = 0x100000;
/** The highest VMPL; the guest's access is revoked from its VMPL up to this one. */
const VMPL_MAX = 3;

/** The protocols and versions this SVSM offers (QUERY_PROTOCOL). */
/** A protocol's version range, with its QUERY_PROTOCOL answer (max << 32 | min) encoded once. */
const offered = (min: number, max: number): { min: number; max: number; answer: bigint } => ({
  min,
  max,
  answer: queryProtocolAnswer(min, max),
});

export const SUPPORTED_PROTOCOLS: ReadonlyMap<number, ReturnType<typeof offered>> = new Map([
  [SvsmProtocol.CORE, offered(1, 1)],
  [SvsmProtocol.ATTEST, offered(1, 1)],
]);

export function coreProtocol(c: SvsmCall): number {
  switch (c.call) {
    case SvsmCoreCall.QUERY_PROTOCOL:
      return queryProtocol(c);
    case SvsmCoreCall.PVALIDATE:
      return pvalidateList(c);
    case SvsmCoreCall.REMAP_CA:
      return remapCa(c);
    case SvsmCoreCall.CREATE_VCPU:
      return createVcpu(c);
    case SvsmCoreCall.DELETE_VCPU:
      return deleteVcpu(c);
    case SvsmCoreCall.CONFIGURE_VTOM:
      // Only the query form exists; this SVSM does not use vTOM.
      if ((c.rcx & 1n) === 1n) {
        c.rcx = 0n;
        return SvsmResult.SUCCESS;
      }
      return SvsmResult.INVALID_REQUEST;
    case SvsmCoreCall.DEPOSIT_MEM:
      return memoryList(c, depositOne);
    case SvsmCoreCall.WITHDRAW_MEM:
      return memoryList(c, withdrawOne);
    default:
      return SvsmResult.UNSUPPORTED_CALL;
  }
}

function queryProtocol(c: SvsmCall): number {
  const { protocol, version } = decodeQueryProtocolRcx(c.rcx);
  const p = SUPPORTED_PROTOCOLS.get(protocol);
  c.rcx = p !== undefined && version >= p.min && version <= p.max ? p.answer : 0n;
  return SvsmResult.SUCCESS;
}

/** REMAP_CA: moves this vCPU's calling area to a new guest page, zeroed. */
function remapCa(c: SvsmCall): number {
  const gpa = Number(c.rcx);
  if (gpa % PAGE !== 0) return SvsmResult.INVALID_PARAMETER;
  if (c.pc.caa === gpa) return SvsmResult.SUCCESS;
  if (
    !c.k.guest.isGuestRange(gpa, PAGE) ||
    isVmsa(c, gpa, PAGE) ||
    isCaa(c, gpa, PAGE) ||
    isDeposited(c, gpa, PAGE)
  )
    return SvsmResult.INVALID_ADDRESS;
  c.k.guest.write(c.cpu, gpa, new Uint8Array(PAGE));
  c.pc.caa = gpa;
  return SvsmResult.SUCCESS;
}

/** Whether a deposited page (owned by the SVSM now) lies in [gpa, gpa+size). */
function isDeposited(c: SvsmCall, gpa: number, size: number): boolean {
  return c.k.deposited.overlaps(gpa, size);
}

/** Whether a registered VMSA page lies in [gpa, gpa+size). */
function isVmsa(c: SvsmCall, gpa: number, size: number): boolean {
  for (const v of c.k.vmsas.keys()) if (v >= gpa && v < gpa + size) return true;
  return false;
}

/** Whether a vCPU's calling area (other than `except`'s) lies in [gpa, gpa+size). */
function isCaa(c: SvsmCall, gpa: number, size: number, except?: number): boolean {
  return c.k.cpus.some(
    (p) => p.index !== except && p.caa !== null && p.caa >= gpa && p.caa < gpa + size,
  );
}

/** RMPADJUST of the guest's VMPL and those above it: `perms` for the guest, none above. */
function adjustGuest(c: SvsmCall, va: number, big: boolean, perms: number, vmsa = 0): number {
  const guestVmpl = c.k.boot.guestVmpl;
  for (let vmpl = VMPL_MAX; vmpl >= guestVmpl; vmpl--) {
    const p = vmpl === guestVmpl ? perms : 0;
    const attrs = vmpl | (p << RMPADJUST_PERMS_SHIFT) | (vmpl === guestVmpl ? vmsa : 0);
    const r = c.cpu.rmpadjust(va, big, attrs);
    if (r.rax !== 0) return r.rax;
  }
  return 0;
}

/**
 * CREATE_VCPU (COCONUT core_create_vcpu): RCX = the new VMSA, a guest page the guest filled in;
 * RDX = its calling area; R8[31:0] = the APIC ID of the vCPU that runs it. The page is taken from
 * the guest (no access, then the RMP VMSA bit) once its contents pass the SVSM spec's checks.
 */
function createVcpu(c: SvsmCall): number {
  const { k, cpu } = c;
  const vmsaGpa = Number(c.rcx);
  const caaGpa = Number(c.rdx);
  for (const gpa of [vmsaGpa, caaGpa]) {
    if (gpa % PAGE !== 0 || !k.guest.isGuestRange(gpa, PAGE)) return SvsmResult.INVALID_ADDRESS;
  }
  if (vmsaGpa === caaGpa) return SvsmResult.INVALID_ADDRESS;
  const apicId = createVcpuApicId(c.r8);
  const target = k.cpus.find((p) => p.apicId === apicId);
  if (target === undefined) return SvsmResult.INVALID_PARAMETER;
  // Neither page may already be a VMSA or someone else's calling area (COCONUT's registry check).
  if (isVmsa(c, vmsaGpa, PAGE) || isVmsa(c, caaGpa, PAGE) || isCaa(c, vmsaGpa, PAGE))
    return SvsmResult.INVALID_ADDRESS;
  if (isDeposited(c, vmsaGpa, PAGE) || isDeposited(c, caaGpa, PAGE))
    return SvsmResult.INVALID_ADDRESS;
  if (isCaa(c, caaGpa, PAGE, target.index)) return SvsmResult.INVALID_ADDRESS;

  const result = k.guest.onPage(cpu, vmsaGpa, PAGE, (va) => {
    // The guest must not change the page between the checks and the VMSA bit.
    const revoked = adjustGuest(c, va, false, 0);
    if (revoked !== 0) return svsmProtocolResult(revoked);
    cpu.flushTlb();
    const page = VMSA.on(cpu.read(va, PAGE));
    if (
      page.get('vmpl') !== k.boot.guestVmpl ||
      !EFER.has(page.get('efer'), 'SVME') ||
      page.get('sevFeatures') !== k.sevFeatures
    ) {
      returnToGuest(c, va);
      return SvsmResult.INVALID_PARAMETER;
    }
    const marked = adjustGuest(c, va, false, 0, RMPADJUST_VMSA);
    if (marked !== 0) {
      returnToGuest(c, va);
      return svsmProtocolResult(marked);
    }
    return SvsmResult.SUCCESS;
  });
  if (result !== SvsmResult.SUCCESS) return result;

  k.vmsas.set(vmsaGpa, { cpuIndex: target.index, guestOwned: true });
  // The target vCPU's SVSM serves calls from this VMSA and CAA from its next entry on.
  target.guestVmsa = vmsaGpa;
  target.caa = caaGpa;
  // Tell the host, which starts a vCPU that waits (AP reset hold) at the new VMSA.
  if (!apCreation(k, cpu, AP_CREATION_OP.CREATE, k.boot.guestVmpl, apicId, vmsaGpa))
    k.log(cpu, `the host refused the VMSA 0x${vmsaGpa.toString(16)} of vCPU ${apicId}`);
  k.log(
    cpu,
    `CREATE_VCPU: vCPU ${apicId} VMSA 0x${vmsaGpa.toString(16)} CAA 0x${caaGpa.toString(16)}`,
  );
  return SvsmResult.SUCCESS;
}

/** The rollback of CREATE_VCPU and the end of DELETE_VCPU: not a VMSA, guest RWX again. */
function returnToGuest(c: SvsmCall, va: number): void {
  const r = adjustGuest(c, va, false, VMPL_PERM_ALL);
  if (r !== 0) throw new SvsmPanic(`returning a VMSA page to the guest failed: ${r}`);
  c.cpu.flushTlb();
}

/**
 * DELETE_VCPU (COCONUT core_delete_vcpu): RCX = a VMSA that CREATE_VCPU registered. EFER.SVME is
 * cleared (no VMRUN of it any more), the VMSA bit too, the page is the guest's again (RWX), and
 * the host forgets it if its vCPU was running it. The SVSM's own guest VMSAs are not the guest's
 * to delete (their pages would otherwise be handed to the guest).
 */
function deleteVcpu(c: SvsmCall): number {
  const { k, cpu } = c;
  const vmsaGpa = Number(c.rcx);
  const entry = k.vmsas.get(vmsaGpa);
  if (entry === undefined || !entry.guestOwned) return SvsmResult.INVALID_PARAMETER;
  k.vmsas.delete(vmsaGpa);
  const owner = k.cpus[entry.cpuIndex]!;
  const current = owner.guestVmsa === vmsaGpa;
  if (current) {
    owner.guestVmsa = null;
    owner.caa = null;
  }
  k.guest.onPage(cpu, vmsaGpa, PAGE, (va) => {
    const efer = va + VMSA.offset('efer');
    cpu.writeU64(efer, EFER.with(cpu.readU64(efer), 'SVME', false));
    returnToGuest(c, va);
  });
  if (current && !apCreation(k, cpu, AP_CREATION_OP.DESTROY, k.boot.guestVmpl, owner.apicId, 0))
    k.log(cpu, `the host refused to forget the VMSA of vCPU ${owner.apicId}`);
  k.log(cpu, `DELETE_VCPU: vCPU ${owner.apicId} VMSA 0x${vmsaGpa.toString(16)}`);
  return SvsmResult.SUCCESS;
}

/**
 * PVALIDATE: a list of entries at RCX (header {entries u16, next u16}), processed from `next`,
 * stopping at the first failure; `next` counts the entries done and is always written back.
 */
function pvalidateList(c: SvsmCall): number {
  const { k, cpu } = c;
  const listGpa = Number(c.rcx);
  // COCONUT: an unaligned list, or one outside guest memory, is INVALID_PARAMETER.
  if (listGpa % 8 !== 0 || !k.guest.isGuestRange(listGpa, PVALIDATE_HEADER_SIZE))
    return SvsmResult.INVALID_PARAMETER;
  const offsetInPage = listGpa % PAGE;
  if (offsetInPage + PVALIDATE_HEADER_SIZE > PAGE) return SvsmResult.INVALID_PARAMETER;
  const header = PVALIDATE_HEADER.on(k.guest.read(cpu, listGpa, PVALIDATE_HEADER_SIZE));
  const entries = header.get('numEntries');
  let next = header.get('curIndex');
  if (entries === 0 || entries > maxPvalidateEntries(offsetInPage) || entries <= next) {
    return SvsmResult.INVALID_PARAMETER;
  }
  const body = k.guest.read(cpu, listGpa + PVALIDATE_HEADER_SIZE, entries * PVALIDATE_ENTRY_SIZE);
  const view = new DataView(body.buffer);
  let result: number = SvsmResult.SUCCESS;
  for (; next < entries; next++) {
    const word = view.getBigUint64(next * PVALIDATE_ENTRY_SIZE, true);
    try {
      result = pvalidateOne(c, word);
    } catch (e) {
      // A fault on one entry's page ends the list like any other request error.
      if (!(e instanceof GuestMemoryFault)) throw e;
      result = SvsmResult.INVALID_ADDRESS;
    }
    if (result !== SvsmResult.SUCCESS) break;
  }
  header.set('curIndex', next);
  k.guest.write(cpu, listGpa, header.bytes);
  return result;
}

function pvalidateOne(c: SvsmCall, word: bigint): number {
  const { k, cpu } = c;
  if (pvalidateEntryReservedBits(word) !== 0n) return SvsmResult.INVALID_PARAMETER;
  const e = decodePvalidateEntry(word);
  if (e.pageSize !== PvalidatePageSize.SIZE_4K && e.pageSize !== PvalidatePageSize.SIZE_2M) {
    return SvsmResult.INVALID_PARAMETER;
  }
  const big = e.pageSize === PvalidatePageSize.SIZE_2M;
  const size = big ? HUGE : PAGE;
  const gpa = e.gfn * PAGE;
  if (gpa % size !== 0) return SvsmResult.INVALID_PARAMETER;
  if (
    !k.guest.isGuestRange(gpa, size) ||
    isCaa(c, gpa, size) ||
    isVmsa(c, gpa, size) ||
    isDeposited(c, gpa, size)
  )
    return SvsmResult.INVALID_ADDRESS;
  const guestVmpl = k.boot.guestVmpl;
  return k.guest.onPage(cpu, gpa, PAGE, (va) => {
    if (!e.validate) {
      // Revoke the guest's access first, then rescind (an unvalidated page has none: FAIL_INPUT).
      const adj = adjustGuest(c, va, big, 0);
      if (adj !== 0 && adj !== 1) return svsmProtocolResult(adj);
    }
    const r = cpu.pvalidate(va, big, e.validate);
    if (r.rax !== 0) return svsmProtocolResult(r.rax);
    if (r.carry && !e.ignoreCf) return svsmProtocolResult(FAIL_UNCHANGED);
    if (e.validate) {
      if (!r.carry) zeroGuest(c, gpa, size, va);
      const adj = cpu.rmpadjust(va, big, guestVmpl | (VMPL_PERM_ALL << RMPADJUST_PERMS_SHIFT));
      if (adj.rax !== 0) return svsmProtocolResult(adj.rax);
    }
    cpu.flushTlb();
    return SvsmResult.SUCCESS;
  });
}

/** Zeroes a newly validated page (a 2 MiB one through the huge window), except the ISA range. */
function zeroGuest(c: SvsmCall, gpa: number, size: number, firstVa: number): void {
  const { k, cpu } = c;
  if (size === HUGE) {
    k.guest.zeroHuge(cpu, gpa, ISA_START, ISA_END);
    return;
  }
  if (gpa >= ISA_START && gpa < ISA_END) return;
  cpu.fill(firstVa, PAGE, 0);
}

// ---------------------------------------------------------------------------------------------
// DEPOSIT_MEM (call 4) and WITHDRAW_MEM (call 5)
//
// The SVSM specification's text for these calls was not available to this implementation; the
// reading below follows the rest of the core protocol and is marked [uncertain] where it guesses:
// - [uncertain] RCX = GPA of a list in the PVALIDATE list's format: header {entries u16, next u16,
//   reserved u32}, then u64 entries; 8-byte aligned, not crossing its page; processed from `next`,
//   which counts the entries done and is always written back; the first failing entry ends the
//   call with its result code, leaving it and the entries after it untouched.
// - [uncertain] Entry: bits 1:0 page size (only 0 = 4 KiB is accepted here; 1 = 2 MiB gets
//   INVALID_PARAMETER, as do 2 and 3), bits 11:2 reserved (must be zero, else INVALID_PARAMETER),
//   bits 63:12 the GFN.
// - [uncertain] DEPOSIT_MEM: the page must be guest memory the guest validated beforehand (with
//   SVSM_CORE_PVALIDATE); not SVSM memory, not beyond RAM, not a VMSA or a calling area, not
//   deposited already, not the list's own page (INVALID_ADDRESS). The SVSM revokes every access
//   of the guest's VMPL and those above it (RMPADJUST; a page the guest never validated fails
//   with PROTOCOL_BASE + the RMPADJUST code, FAIL_INPUT 0x80001001), zeroes it and adds it to
//   its deposited pool. The page stays validated and private.
// - [uncertain] WITHDRAW_MEM: each entry names a page to take back; a page not deposited is
//   INVALID_ADDRESS, one the SVSM is using is FAIL_INUSE (0x80001003, AMD linux-svsm's code for
//   "in use"). The SVSM zeroes it, grants the guest's VMPL read/write/execute again (still
//   validated, as deposited) and removes it from the pool.

/** Entry bits 11:2, reserved in DEPOSIT_MEM/WITHDRAW_MEM entries [uncertain]. */
const MEMORY_ENTRY_RESERVED = 0xffcn;

/**
 * Runs `one` on each entry of the list at RCX from `next` on, with PVALIDATE's header rules and
 * progress reporting.
 */
function memoryList(
  c: SvsmCall,
  one: (c: SvsmCall, gpa: number, listPage: number) => number,
): number {
  const { k, cpu } = c;
  const listGpa = Number(c.rcx);
  if (listGpa % 8 !== 0 || !k.guest.isGuestRange(listGpa, PVALIDATE_HEADER_SIZE))
    return SvsmResult.INVALID_PARAMETER;
  const offsetInPage = listGpa % PAGE;
  if (offsetInPage + PVALIDATE_HEADER_SIZE > PAGE) return SvsmResult.INVALID_PARAMETER;
  // The list itself must be the guest's: a list in a deposited page is not its to pass.
  if (isDeposited(c, listGpa, PAGE)) return SvsmResult.INVALID_ADDRESS;
  const header = PVALIDATE_HEADER.on(k.guest.read(cpu, listGpa, PVALIDATE_HEADER_SIZE));
  const entries = header.get('numEntries');
  let next = header.get('curIndex');
  if (entries === 0 || entries > maxPvalidateEntries(offsetInPage) || entries <= next) {
    return SvsmResult.INVALID_PARAMETER;
  }
  const body = k.guest.read(cpu, listGpa + PVALIDATE_HEADER_SIZE, entries * PVALIDATE_ENTRY_SIZE);
  const view = new DataView(body.buffer);
  const listPage = listGpa - offsetInPage;
  let result: number = SvsmResult.SUCCESS;
  for (; next < entries; next++) {
    const word = view.getBigUint64(next * PVALIDATE_ENTRY_SIZE, true);
    if ((word & MEMORY_ENTRY_RESERVED) !== 0n) {
      result = SvsmResult.INVALID_PARAMETER;
      break;
    }
    const e = decodePvalidateEntry(word);
    if (e.pageSize !== PvalidatePageSize.SIZE_4K) {
      result = SvsmResult.INVALID_PARAMETER;
      break;
    }
    try {
      result = one(c, e.gfn * PAGE, listPage);
    } catch (err) {
      if (!(err instanceof GuestMemoryFault)) throw err;
      result = SvsmResult.INVALID_ADDRESS;
    }
    if (result !== SvsmResult.SUCCESS) break;
  }
  header.set('curIndex', next);
  k.guest.write(cpu, listGpa, header.bytes);
  return result;
}

/** DEPOSIT_MEM of one 4 KiB page: the guest loses it, zeroed, to the SVSM's deposited pool. */
function depositOne(c: SvsmCall, gpa: number, listPage: number): number {
  const { k, cpu } = c;
  if (
    !k.guest.isGuestRange(gpa, PAGE) ||
    isVmsa(c, gpa, PAGE) ||
    isCaa(c, gpa, PAGE) ||
    isDeposited(c, gpa, PAGE) ||
    gpa === listPage
  )
    return SvsmResult.INVALID_ADDRESS;
  const r = k.guest.onPage(cpu, gpa, PAGE, (va) => {
    // Revoke first (VMPL3 down to the guest's): a page the guest never validated, or one inside a
    // 2 MiB RMP entry, fails on the first RMPADJUST and so changes nothing.
    const revoked = adjustGuest(c, va, false, 0);
    if (revoked !== 0) return svsmProtocolResult(revoked);
    cpu.flushTlb();
    cpu.fill(va, PAGE, 0);
    return SvsmResult.SUCCESS;
  });
  if (r !== SvsmResult.SUCCESS) return r;
  k.deposited.deposit(gpa);
  return SvsmResult.SUCCESS;
}

/** WITHDRAW_MEM of one 4 KiB page: zeroed, the guest's again (validated, RWX). */
function withdrawOne(c: SvsmCall, gpa: number): number {
  const { k, cpu } = c;
  if (!k.deposited.has(gpa)) return SvsmResult.INVALID_ADDRESS;
  if (k.deposited.inUse(gpa)) return SvsmResult.FAIL_INUSE;
  k.guest.onPage(cpu, gpa, PAGE, (va) => {
    cpu.fill(va, PAGE, 0);
    const r = adjustGuest(c, va, false, VMPL_PERM_ALL);
    // The SVSM validated-and-kept this page itself: failing to hand it back is its own bug.
    if (r !== 0) throw new SvsmPanic(`returning deposited page 0x${gpa.toString(16)} failed: ${r}`);
    cpu.flushTlb();
  });
  k.deposited.withdraw(gpa);
  return SvsmResult.SUCCESS;
}
