// A scripted guest's device access as Linux's #VC handler forwards it: IOIO, MMIO and MSR exits
// through a shared GHCB page (reference/linux-snp-guest.md section 4), plus NMI_COMPLETE.
import {
  clearValid,
  GHCB,
  type GhcbValidatedField,
  type GuestCpu,
  IOIO_EXITINFO1,
  isValid,
  markValid,
  MSR,
  msrPscRequest,
  msrRegisterGpaRequest,
  PSC_OP,
  SW_EXITCODE,
} from '../../src/arch/index.js';

export const GHCB_GPA = 0x5_0000;
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
    const page = new Uint8Array(0x1000);
    const g = GHCB.on(page);
    g.set('protocolVersion', 2);
    clearValid(page);
    g.set('swExitCode', BigInt(code)).set('swExitInfo1', info1).set('swExitInfo2', info2);
    for (const f of ['swExitCode', 'swExitInfo1', 'swExitInfo2'] as const) markValid(page, f);
    for (const [name, value] of Object.entries(inputs) as [GhcbValidatedField, bigint][]) {
      GHCB.set(page, name, value as never);
      markValid(page, name);
    }
    if (buffer !== undefined) page.set(buffer, BUFFER_OFFSET);
    this.cpu.write(GHCB_GPA, page, true);
    this.cpu.wrmsr(MSR.GHCB, BigInt(GHCB_GPA));
    yield* this.cpu.vmgexit();
    const after = this.cpu.read(GHCB_GPA, 0x1000, true);
    return {
      info1: GHCB.get(after, 'swExitInfo1'),
      info2: GHCB.get(after, 'swExitInfo2'),
      reg: (name) => (isValid(after, name) ? BigInt(GHCB.get(after, name)) : undefined),
      buffer: (n) => after.slice(BUFFER_OFFSET, BUFFER_OFFSET + n),
    };
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
