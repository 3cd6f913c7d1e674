// The core protocol (SVSM spec, protocol 0), with the checks COCONUT applies
// (reference/coconut-svsm.md section 3).

import {
  PVALIDATE_ENTRY_SIZE,
  PVALIDATE_HEADER,
  PVALIDATE_HEADER_SIZE,
  PvalidatePageSize,
  SvsmCoreCall,
  SvsmProtocol,
  SvsmResult,
  VMPL_PERM_ALL,
  decodePvalidateEntry,
  decodeQueryProtocolRcx,
  maxPvalidateEntries,
  pvalidateEntryReservedBits,
  queryProtocolAnswer,
  svsmProtocolResult,
} from '../../arch/index.js';
import type { SvsmCall } from './call.js';

const PAGE = 0x1000;
const HUGE = 0x20_0000;
/** PVALIDATE's "no change" (CF set) as a protocol result. */
const FAIL_UNCHANGED = 0x10;
/** The legacy ISA range is not zeroed on validation. */
const ISA_START = 0xa0000;
const ISA_END = 0x100000;

/** The protocols and versions this SVSM offers (QUERY_PROTOCOL). */
export const SUPPORTED_PROTOCOLS: ReadonlyMap<number, { min: number; max: number }> = new Map([
  [SvsmProtocol.CORE, { min: 1, max: 1 }],
  [SvsmProtocol.ATTEST, { min: 1, max: 1 }],
]);

export function coreProtocol(c: SvsmCall): number {
  switch (c.call) {
    case SvsmCoreCall.QUERY_PROTOCOL:
      return queryProtocol(c);
    case SvsmCoreCall.PVALIDATE:
      return pvalidateList(c);
    case SvsmCoreCall.REMAP_CA:
      return remapCa(c);
    case SvsmCoreCall.CONFIGURE_VTOM:
      // Only the query form exists; this SVSM does not use vTOM.
      if ((c.rcx & 1n) === 1n) {
        c.rcx = 0n;
        return SvsmResult.SUCCESS;
      }
      return SvsmResult.INVALID_REQUEST;
    case SvsmCoreCall.DEPOSIT_MEM:
    case SvsmCoreCall.WITHDRAW_MEM:
      return SvsmResult.UNSUPPORTED_CALL;
    default:
      return SvsmResult.UNSUPPORTED_CALL;
  }
}

function queryProtocol(c: SvsmCall): number {
  const { protocol, version } = decodeQueryProtocolRcx(c.rcx);
  const p = SUPPORTED_PROTOCOLS.get(protocol);
  c.rcx =
    p !== undefined && version >= p.min && version <= p.max
      ? queryProtocolAnswer(p.min, p.max)
      : 0n;
  return SvsmResult.SUCCESS;
}

/** REMAP_CA: moves this vCPU's calling area to a new guest page, zeroed. */
function remapCa(c: SvsmCall): number {
  const gpa = Number(c.rcx);
  if (gpa % PAGE !== 0) return SvsmResult.INVALID_PARAMETER;
  if (!c.k.guest.isGuestRange(gpa, PAGE) || isVmsa(c, gpa)) return SvsmResult.INVALID_ADDRESS;
  if (c.pc.caa === gpa) return SvsmResult.SUCCESS;
  c.k.guest.write(c.cpu, gpa, new Uint8Array(PAGE));
  c.pc.caa = gpa;
  return SvsmResult.SUCCESS;
}

function isVmsa(c: SvsmCall, gpa: number): boolean {
  return c.k.cpus.some((p) => p.guestVmsa === gpa);
}

function isCaa(c: SvsmCall, gpa: number, size: number): boolean {
  return c.k.cpus.some((p) => p.caa !== null && p.caa >= gpa && p.caa < gpa + size);
}

/**
 * PVALIDATE: a list of entries at RCX (header {entries u16, next u16}), processed from `next`,
 * stopping at the first failure; `next` counts the entries done and is always written back.
 */
function pvalidateList(c: SvsmCall): number {
  const { k, cpu } = c;
  const listGpa = Number(c.rcx);
  if (listGpa % 8 !== 0) return SvsmResult.INVALID_PARAMETER;
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
    result = pvalidateOne(c, word);
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
  if (!k.guest.isGuestRange(gpa, size) || isCaa(c, gpa, size)) return SvsmResult.INVALID_ADDRESS;
  for (const p of k.cpus)
    if (p.guestVmsa !== null && p.guestVmsa >= gpa && p.guestVmsa < gpa + size)
      return SvsmResult.INVALID_ADDRESS;
  const guestVmpl = k.boot.guestVmpl;
  return k.guest.onPage(cpu, gpa, PAGE, (va) => {
    if (!e.validate) {
      // Revoke the guest's access first, then rescind.
      const adj = cpu.rmpadjust(va, big, guestVmpl);
      if (adj.rax !== 0 && adj.rax !== 1) return svsmProtocolResult(adj.rax);
    }
    const r = cpu.pvalidate(va, big, e.validate);
    if (r.rax !== 0) return svsmProtocolResult(r.rax);
    if (r.carry && !e.ignoreCf) return svsmProtocolResult(FAIL_UNCHANGED);
    if (e.validate) {
      if (!r.carry) zeroGuest(c, gpa, size, va);
      const adj = cpu.rmpadjust(va, big, guestVmpl | (VMPL_PERM_ALL << 8));
      if (adj.rax !== 0) return svsmProtocolResult(adj.rax);
    }
    cpu.flushTlb();
    return SvsmResult.SUCCESS;
  });
}

/** Zeroes a newly validated page (all 512 pages of a 2 MiB one), except the ISA range. */
function zeroGuest(c: SvsmCall, gpa: number, size: number, firstVa: number): void {
  const { k, cpu } = c;
  for (let off = 0; off < size; off += PAGE) {
    const page = gpa + off;
    if (page >= ISA_START && page < ISA_END) continue;
    if (off === 0) cpu.fill(firstVa, PAGE, 0);
    else k.guest.write(cpu, page, new Uint8Array(PAGE));
  }
}
