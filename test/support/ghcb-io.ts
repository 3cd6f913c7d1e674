// A scripted guest's device access as Linux's #VC handler forwards it: IOIO, MMIO and MSR exits
// through a shared GHCB page (reference/linux-snp-guest.md section 4), plus NMI_COMPLETE.
import {
  type GhcbValidatedField,
  type GuestCpu,
  IOIO_EXITINFO1,
  MSR,
  msrPscRequest,
  msrRegisterGpaRequest,
  PSC_OP,
  SW_EXITCODE,
} from '../../src/arch/index.js';

import { GHCB_GPA, ghcbExit } from './ghcb-guest.js';

export { GHCB_GPA };
const BUFFER_OFFSET = 0x800;

export interface GhcbAnswer {
  readonly info1: bigint;
  readonly info2: bigint;
  reg(name: GhcbValidatedField): bigint | undefined;
  buffer(n: number): Uint8Array;
}

export class GhcbIo {
  constructor(readonly cpu: GuestCpu) {}

  /** Makes the GHCB page shared and registers it (the guest's first steps). */
  *setUp(): Generator<void, void, void> {
    this.cpu.wrmsr(MSR.GHCB, msrPscRequest(GHCB_GPA / 0x1000, PSC_OP.SHARED));
    yield* this.cpu.vmgexit();
    this.cpu.wrmsr(MSR.GHCB, msrRegisterGpaRequest(GHCB_GPA / 0x1000));
    yield* this.cpu.vmgexit();
  }

  *exit(
    code: number,
    info1: bigint,
    info2: bigint,
    inputs: Partial<Record<GhcbValidatedField, bigint>> = {},
    buffer?: Uint8Array,
  ): Generator<void, GhcbAnswer, void> {
    const a = yield* ghcbExit(
      this.cpu,
      code,
      info1,
      info2,
      inputs,
      buffer === undefined ? undefined : { at: BUFFER_OFFSET, bytes: buffer },
    );
    return { ...a, buffer: (n) => a.page.slice(BUFFER_OFFSET, BUFFER_OFFSET + n) };
  }

  private static ioInfo(port: number, isIn: boolean, size: 1 | 2 | 4): bigint {
    return IOIO_EXITINFO1.encode({
      port,
      in: isIn,
      size8: size === 1,
      size16: size === 2,
      size32: size === 4,
      address64: true,
    });
  }

  *in(port: number, size: 1 | 2 | 4 = 1): Generator<void, number, void> {
    const a = yield* this.exit(SW_EXITCODE.IOIO, GhcbIo.ioInfo(port, true, size), 0n, {
      rax: 0n,
    });
    return Number(a.reg('rax') ?? -1n);
  }

  *out(port: number, value: number, size: 1 | 2 | 4 = 1): Generator<void, void, void> {
    yield* this.exit(SW_EXITCODE.IOIO, GhcbIo.ioInfo(port, false, size), 0n, {
      rax: BigInt(value >>> 0),
    });
  }

  *mmioRead(gpa: number, length = 4): Generator<void, Uint8Array, void> {
    const a = yield* this.exit(SW_EXITCODE.MMIO_READ, BigInt(gpa), BigInt(length), {
      swScratch: BigInt(GHCB_GPA + BUFFER_OFFSET),
    });
    return a.buffer(length);
  }

  *mmioWrite(gpa: number, data: Uint8Array): Generator<void, void, void> {
    yield* this.exit(
      SW_EXITCODE.MMIO_WRITE,
      BigInt(gpa),
      BigInt(data.length),
      { swScratch: BigInt(GHCB_GPA + BUFFER_OFFSET) },
      data,
    );
  }

  *read32(gpa: number): Generator<void, number, void> {
    const b = yield* this.mmioRead(gpa, 4);
    return new DataView(b.buffer, b.byteOffset).getUint32(0, true);
  }

  *write32(gpa: number, value: number): Generator<void, void, void> {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    yield* this.mmioWrite(gpa, b);
  }

  *rdmsr(msr: number): Generator<void, bigint, void> {
    const a = yield* this.exit(SW_EXITCODE.MSR, 0n, 0n, { rcx: BigInt(msr) });
    return ((a.reg('rdx') ?? 0n) << 32n) | (a.reg('rax') ?? 0n);
  }

  *wrmsr(msr: number, value: bigint): Generator<void, GhcbAnswer, void> {
    return yield* this.exit(SW_EXITCODE.MSR, 1n, 0n, {
      rcx: BigInt(msr),
      rax: value & 0xffff_ffffn,
      rdx: value >> 32n,
    });
  }

  *nmiComplete(): Generator<void, void, void> {
    yield* this.exit(SW_EXITCODE.NMI_COMPLETE, 0n, 0n);
  }
}
