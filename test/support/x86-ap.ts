// For tests that run hand-assembled x86-64 code at VMPL2 on the x86 engine: a scripted vCPU 0
// validates the pages through the SVSM, identity-maps the first 2 MiB with 4-level tables,
// writes the code and data it is given, builds a 64-bit VMSA and starts vCPU 1 on it with
// CREATE_VCPU.
import { type GuestCpu, MSR, PvalidatePageSize, VMSA } from '../../src/arch/index.js';
import { SvsmClient } from '../../src/guest/svsm-client.js';
import type { Cpu } from '../../src/hw/cpu/cpu.js';
import type { VmExit } from '../../src/hw/engine.js';
import { X86Engine } from '../../src/hw/engines/x86-engine.js';
import type { Vcpu } from '../../src/hw/vcpu.js';

export const PAGE = 0x1000;
export const C_BIT = 1n << 51n;
export const AP_VMSA = 0x11000;
export const AP_CAA = 0x12000;
/** PML4, then PDPT, PD and PT in the next three pages. */
export const PML4 = 0x20000;
export const CODE = 0x24000;
export const DATA = 0x25000;
export const STACK = 0x26000;
/** The pages every such guest has validated. */
export const AP_PAGES = [
  AP_VMSA,
  AP_CAA,
  PML4,
  PML4 + PAGE,
  PML4 + 2 * PAGE,
  PML4 + 3 * PAGE,
  CODE,
  DATA,
  STACK,
];

export const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
/** `v` as `bytes` little-endian bytes, in hex. */
export const le = (v: number | bigint, bytes: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)));
  return b.subarray(0, bytes).toString('hex');
};
export const imm32 = (v: number | bigint) => le(v, 4);
/** mov r32, imm32 for EAX (0), ECX (1), EDX (2), EBX (3). */
export const mov = (reg: number, v: number | bigint) => (0xb8 + reg).toString(16) + imm32(v);

export interface ApSetup {
  /** Pages to validate besides AP_PAGES. */
  readonly extraPages?: readonly number[];
  /** A page the tables map with the C-bit clear (shared). */
  readonly shared: number;
  /** Bytes to write before the vCPU starts (the code at CODE among them). */
  readonly writes: readonly (readonly [number, Uint8Array])[];
}

/** vCPU 0's program: prepares memory and a 64-bit VMSA (IF clear) and starts vCPU 1 at CODE. */
export function* startX86Ap(cpu: GuestCpu, setup: ApSetup): Generator<void, void, void> {
  const svsm = new SvsmClient(cpu, SvsmClient.caaFromSecrets(cpu, Number(cpu.readRegister('rsi'))));
  const r = yield* svsm.pvalidate(
    [...AP_PAGES, ...(setup.extraPages ?? [])].map((gpa) => ({
      gfn: gpa / PAGE,
      pageSize: PvalidatePageSize.SIZE_4K,
      validate: true,
      ignoreCf: false,
    })),
  );
  if (r.rax !== 0n) throw new Error(`PVALIDATE failed: ${r.rax}`);
  for (let l = 0; l < 3; l++) {
    cpu.write(PML4 + l * PAGE, hex(le(BigInt(PML4 + (l + 1) * PAGE) | C_BIT | 3n, 8)));
  }
  const pt = new Uint8Array(PAGE);
  for (let i = 0; i < 512; i++) {
    const gpa = i * PAGE;
    new DataView(pt.buffer).setBigUint64(
      i * 8,
      BigInt(gpa) | (gpa === setup.shared ? 0n : C_BIT) | 3n,
      true,
    );
  }
  cpu.write(PML4 + 3 * PAGE, pt);
  for (const [gpa, bytes] of setup.writes) cpu.write(gpa, bytes);
  const page = VMSA.alloc();
  VMSA.set(page, 'cs.selector', 8);
  VMSA.set(page, 'cs.attrib', 0x29b); // 64-bit code segment
  VMSA.on(page)
    .set('vmpl', cpu.vmpl)
    .set('efer', 0x1d00n) // SVME, LME, LMA, NXE
    .set('cr0', 0x8001_0033n)
    .set('cr4', 0x20n)
    .set('cr3', BigInt(PML4) | C_BIT)
    .set('rflags', 2n) // IF clear
    .set('rip', BigInt(CODE))
    .set('rsp', BigInt(STACK + PAGE))
    .set('sevFeatures', cpu.rdmsr(MSR.SEV_STATUS) >> 2n);
  cpu.write(AP_VMSA, page);
  const created = yield* svsm.createVcpu(AP_VMSA, AP_CAA, 1);
  if (created !== 0n) throw new Error(`CREATE_VCPU failed: 0x${created.toString(16)}`);
}

/** The x86 engine, recording the exceptions the guest raises ([vector, error code]) before delivery. */
export class RecordingX86Engine extends X86Engine {
  readonly faults: [number, number][] = [];
  protected override guestException(c: Cpu, vcpu: Vcpu): VmExit | null {
    this.faults.push([c.exVector, c.exErrorCode]);
    return super.guestException(c, vcpu);
  }
}
