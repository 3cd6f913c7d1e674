// The local APIC of each vCPU in x2APIC mode, reached through RDMSR/WRMSR exits of MSRs
// 0x800-0x8FF (reference/linux-snp-guest.md section 3.7: under SNP every APIC access is a #VC that
// the guest forwards as a GHCB MSR exit) and IA32_TSC_DEADLINE (0x6E0). Register rules follow the
// Intel SDM (vol. 3A, 11.12 "x2APIC") and KVM's lapic.c where the SDM leaves a choice:
// - every x2APIC MSR raises #GP unless APIC_BASE has EN and EXTD set (x2APIC mode);
// - reserved and absent registers (0x800, 0x801, DFR 0x80E, ICR2 0x831, CMCI 0x82F: AMD has six
//   LVT entries, 0x840 and above...) raise #GP on read and write;
// - read-only registers (ID, version, PPR, LDR, ISR/TMR/IRR, current count) raise #GP on write,
//   write-only ones (EOI, SELF IPI) on read; EOI and ESR take only 0; bits 63:32 must be 0 in
//   every register but the ICR, whose reserved bits 13, 16-17 and 20-31 also raise #GP (KVM).
// The timer counts the APIC bus clock, which here runs at the virtual TSC's rate
// (`TSC_PER_BUS_TICK`), divided by the divide configuration. Nothing here runs on its own: the
// timer is brought up to date lazily from `vm.machine.tsc` on every access and on every
// `highestPending` query. TSC-deadline mode exists only if the CPU model advertises it
// (CPUID 1 ECX bit 24); otherwise MSR 0x6E0 raises #GP and timer mode 2 cannot be selected.
// Interrupt injection is not here: `highestPending` and `acknowledge` are for whoever injects
// (../interrupt-injection.ts). Device interrupts arrive through `X2apics.deliver` (the IOAPIC's
// messages), and the EOI of a level-triggered vector (TMR set) is broadcast to `onEoi` listeners,
// as the local APIC's EOI message reaches every IOAPIC.

import { X2APIC_MSR } from '../../arch/index.js';

/** The virtual TSC ticks per APIC bus clock tick (the timer's input before the divider). */
export const TSC_PER_BUS_TICK = 1n;

/** Version register: version 0x14, six LVT entries (max LVT index 5), no directed EOI (KVM/AMD). */
export const X2APIC_VERSION = 0x0005_0014;

/** IA32_TSC_DEADLINE. */
export const MSR_TSC_DEADLINE = 0x6e0;

export const APIC_LVT_MASKED = 1 << 16;
export const APIC_SVR_ENABLE = 1 << 8;
/** Timer modes, LVT timer bits 18:17. */
export const TIMER_MODE = { ONE_SHOT: 0, PERIODIC: 1, TSC_DEADLINE: 2 } as const;
/** ICR delivery modes, bits 10:8. */
export const ICR_DELIVERY = {
  FIXED: 0,
  LOWEST: 1,
  SMI: 2,
  NMI: 4,
  INIT: 5,
  STARTUP: 6,
} as const;
/** ICR destination shorthands, bits 19:18. */
export const ICR_SHORTHAND = { NONE: 0, SELF: 1, ALL: 2, ALL_BUT_SELF: 3 } as const;
/** ESR bits. */
export const APIC_ESR = { SEND_ILLEGAL_VECTOR: 1 << 5, RECEIVE_ILLEGAL_VECTOR: 1 << 6 } as const;

const ICR_RESERVED = 0xfff0_0000n | 0x3_0000n | 0x2000n;
const ICR_BUSY = 0x1000n;
const LVT_BASE = 0x1_00ff; // vector and mask (delivery status, bit 12, is read-only)
const LVT_DELIVERY_MODE = 0x700;
const LVT_LINT = LVT_BASE | LVT_DELIVERY_MODE | 0xa000; // + polarity (13), trigger mode (15)
/** Writable bits of each LVT register, by x2APIC MSR. */
const LVT_WRITABLE = new Map<number, number>([
  [X2APIC_MSR.LVT_TIMER, LVT_BASE], // mode bits added per APIC
  [X2APIC_MSR.LVT_THERMAL, LVT_BASE | LVT_DELIVERY_MODE],
  [X2APIC_MSR.LVT_PMC, LVT_BASE | LVT_DELIVERY_MODE],
  [X2APIC_MSR.LVT_LINT0, LVT_LINT],
  [X2APIC_MSR.LVT_LINT1, LVT_LINT],
  [X2APIC_MSR.LVT_ERROR, LVT_BASE],
]);

/** A 256-bit vector set (ISR, IRR, TMR), eight 32-bit words as the registers show it. */
export class VectorSet {
  readonly words = new Uint32Array(8);

  set(v: number): void {
    this.words[v >> 5]! |= 1 << (v & 31);
  }
  clear(v: number): void {
    this.words[v >> 5]! &= ~(1 << (v & 31));
  }
  has(v: number): boolean {
    return (this.words[v >> 5]! & (1 << (v & 31))) !== 0;
  }
  /** The highest vector in the set, or -1 if it is empty. */
  highest(): number {
    for (let i = 7; i >= 0; i--) {
      const w = this.words[i]!;
      if (w !== 0) return i * 32 + 31 - Math.clz32(w);
    }
    return -1;
  }
  reset(): void {
    this.words.fill(0);
  }
}

/** How an APIC reaches the others and the clock. */
interface ApicSystem {
  /** The machine's virtual TSC. */
  now(): bigint;
  /** The virtual TSC as vCPU `apicId` reads it (with its IA32_TSC offset). */
  guestTsc(apicId: number): bigint;
  readonly tscDeadline: boolean;
  sendIpi(from: LocalApic, icr: bigint): void;
  /** The EOI of a level-triggered vector, broadcast to the IOAPICs. */
  eoiBroadcast(vector: number): void;
}

/** The divide configuration register's divisor: bits 0, 1 and 3; 0b111 divides by 1. */
export function timerDivisor(tdcr: number): bigint {
  const v = (tdcr & 3) | ((tdcr & 8) >> 1);
  return v === 7 ? 1n : 2n << BigInt(v);
}

/** One vCPU's local APIC (x2APIC mode). */
export class LocalApic {
  readonly isr = new VectorSet();
  readonly irr = new VectorSet();
  readonly tmr = new VectorSet();
  tpr = 0;
  svr = 0xff;
  esr = 0;
  /** Errors collected since the last ESR write (which makes them visible). */
  private esrPending = 0;
  icr = 0n;
  /** LVT registers by MSR (reset: masked). */
  private readonly lvt = new Map<number, number>();
  /** An NMI is waiting for delivery (ICR NMI IPIs, or an NMI LVT). */
  nmiPending = false;
  // Timer.
  private initialCount = 0;
  private divideConfig = 0;
  /** Machine TSC when the count was (re)loaded; null when the count is not running. */
  private start: bigint | null = null;
  /** Periods already signalled since `start` (periodic mode). */
  private periodsFired = 0n;
  /** IA32_TSC_DEADLINE as the guest wrote it (guest TSC), 0 when disarmed. */
  private deadline = 0n;

  constructor(
    readonly apicId: number,
    private readonly system: ApicSystem,
  ) {
    this.reset();
  }

  /** Power-on / APIC-disable state (SDM 11.4.7.1). */
  reset(): void {
    this.isr.reset();
    this.irr.reset();
    this.tmr.reset();
    this.tpr = 0;
    this.svr = 0xff;
    this.esr = 0;
    this.esrPending = 0;
    this.icr = 0n;
    for (const msr of LVT_WRITABLE.keys()) this.lvt.set(msr, APIC_LVT_MASKED);
    this.nmiPending = false;
    this.initialCount = 0;
    this.divideConfig = 0;
    this.start = null;
    this.periodsFired = 0n;
    this.deadline = 0n;
  }

  get softwareEnabled(): boolean {
    return (this.svr & APIC_SVR_ENABLE) !== 0;
  }

  /** Logical destination in x2APIC mode: cluster (ID[31:4]) and one bit (ID[3:0]). */
  get ldr(): number {
    return (((this.apicId >>> 4) << 16) | (1 << (this.apicId & 0xf))) >>> 0;
  }

  /** Processor priority: the TPR, or the class of the highest in-service vector if higher. */
  get ppr(): number {
    const isrv = Math.max(this.isr.highest(), 0);
    return (this.tpr & 0xf0) >= (isrv & 0xf0) ? this.tpr : isrv & 0xf0;
  }

  lvtRegister(msr: number): number {
    return this.lvt.get(msr) ?? APIC_LVT_MASKED;
  }

  get timerMode(): number {
    return (this.lvtRegister(X2APIC_MSR.LVT_TIMER) >> 17) & 3;
  }

  /**
   * Accepts a fixed interrupt into the IRR (KVM: dropped while software-disabled); whether it was
   * accepted (an IOAPIC sets Remote IRR only then).
   */
  acceptFixed(vector: number, level = false): boolean {
    if (vector < 16) {
      this.esrPending |= APIC_ESR.RECEIVE_ILLEGAL_VECTOR;
      return false;
    }
    if (!this.softwareEnabled) return false;
    this.irr.set(vector);
    if (level) this.tmr.set(vector);
    else this.tmr.clear(vector);
    return true;
  }

  /** The vector the APIC would deliver now (above the PPR's class), or -1. */
  highestPending(): number {
    this.updateTimer();
    if (!this.softwareEnabled) return -1;
    const v = this.irr.highest();
    return v >= 0 && (v & 0xf0) > (this.ppr & 0xf0) ? v : -1;
  }

  /** The CPU takes `vector` (INTA): IRR to ISR. */
  acknowledge(vector: number): void {
    this.irr.clear(vector);
    this.isr.set(vector);
  }

  /** EOI: the highest in-service vector leaves the ISR; a level-triggered one is broadcast. */
  eoi(): void {
    const v = this.isr.highest();
    if (v < 0) return;
    this.isr.clear(v);
    if (this.tmr.has(v)) this.system.eoiBroadcast(v);
  }

  /** Machine TSC at which the timer next signals, or null (for a host that idles a HLT). */
  nextTimerEvent(): bigint | null {
    this.updateTimer();
    if (this.timerMode === TIMER_MODE.TSC_DEADLINE) {
      if (this.deadline === 0n) return null;
      return this.deadline - (this.system.guestTsc(this.apicId) - this.system.now());
    }
    if (this.start === null) return null;
    return this.start + this.period() * (this.periodsFired + 1n);
  }

  private period(): bigint {
    return BigInt(this.initialCount) * timerDivisor(this.divideConfig) * TSC_PER_BUS_TICK;
  }

  private fireTimer(): void {
    const lvt = this.lvtRegister(X2APIC_MSR.LVT_TIMER);
    if ((lvt & APIC_LVT_MASKED) === 0) this.acceptFixed(lvt & 0xff);
  }

  /** Whether the timer's expiry would reach the IRR (LVT not masked). */
  get timerUnmasked(): boolean {
    return (this.lvtRegister(X2APIC_MSR.LVT_TIMER) & APIC_LVT_MASKED) === 0;
  }

  /** Signals the expiries that virtual time has reached since the last look. */
  updateTimer(): void {
    if (this.timerMode === TIMER_MODE.TSC_DEADLINE) {
      if (this.deadline !== 0n && this.system.guestTsc(this.apicId) >= this.deadline) {
        this.deadline = 0n;
        this.fireTimer();
      }
      return;
    }
    if (this.start === null) return;
    const elapsed = this.system.now() - this.start;
    const period = this.period();
    const periods = elapsed < 0n ? 0n : elapsed / period;
    if (periods <= this.periodsFired) return;
    // Expiries that happened while nobody looked coalesce into one interrupt, as a busy IRR bit does.
    this.fireTimer();
    if (this.timerMode === TIMER_MODE.PERIODIC) this.periodsFired = periods;
    else this.start = null;
  }

  /** TMCCT: counts down from the initial count at bus clock / divisor; 0 once a one-shot expired. */
  currentCount(): number {
    this.updateTimer();
    if (this.start === null || this.timerMode === TIMER_MODE.TSC_DEADLINE) return 0;
    const ticks =
      (this.system.now() - this.start) / (timerDivisor(this.divideConfig) * TSC_PER_BUS_TICK);
    const initial = BigInt(this.initialCount);
    return Number(initial - (ticks % initial));
  }

  private setInitialCount(count: number): void {
    if (this.timerMode === TIMER_MODE.TSC_DEADLINE) return; // ignored in TSC-deadline mode
    this.initialCount = count;
    this.periodsFired = 0n;
    this.start = count === 0 ? null : this.system.now();
  }

  private setDivide(tdcr: number): void {
    this.updateTimer();
    const running = this.start !== null && this.timerMode !== TIMER_MODE.TSC_DEADLINE;
    const remaining = running ? BigInt(this.currentCount()) : 0n;
    this.divideConfig = tdcr & 0xb;
    if (running) {
      // The count goes on from where it was, at the new rate.
      const done = BigInt(this.initialCount) - remaining;
      this.start = this.system.now() - done * timerDivisor(this.divideConfig) * TSC_PER_BUS_TICK;
      this.periodsFired = 0n;
    }
  }

  private setLvt(msr: number, value: number): void {
    let writable = LVT_WRITABLE.get(msr)!;
    if (msr === X2APIC_MSR.LVT_TIMER) writable |= this.system.tscDeadline ? 0x6_0000 : 0x2_0000;
    let v = value & writable;
    if (((v >> 17) & 3) === 3) v &= ~0x4_0000; // mode 3 is reserved: taken as periodic
    if (!this.softwareEnabled) v |= APIC_LVT_MASKED;
    if (msr === X2APIC_MSR.LVT_TIMER) {
      this.updateTimer();
      const old = this.timerMode;
      this.lvt.set(msr, v);
      if (this.timerMode !== old) {
        // A mode change disarms the timer (KVM apic_update_lvtt).
        this.initialCount = 0;
        this.start = null;
        this.deadline = 0n;
      }
      return;
    }
    this.lvt.set(msr, v);
  }

  /** RDMSR of x2APIC register `msr`; undefined = #GP. */
  read(msr: number): bigint | undefined {
    const M = X2APIC_MSR;
    if (msr >= M.ISR0 && msr < M.ISR0 + 8) return BigInt(this.isr.words[msr - M.ISR0]!);
    if (msr >= M.TMR0 && msr < M.TMR0 + 8) return BigInt(this.tmr.words[msr - M.TMR0]!);
    if (msr >= M.IRR0 && msr < M.IRR0 + 8) {
      this.updateTimer();
      return BigInt(this.irr.words[msr - M.IRR0]!);
    }
    if (LVT_WRITABLE.has(msr)) return BigInt(this.lvtRegister(msr));
    switch (msr) {
      case M.ID:
        return BigInt(this.apicId);
      case M.VERSION:
        return BigInt(X2APIC_VERSION);
      case M.TPR:
        return BigInt(this.tpr);
      case M.PPR:
        return BigInt(this.ppr);
      case M.LDR:
        return BigInt(this.ldr);
      case M.SVR:
        return BigInt(this.svr);
      case M.ESR:
        return BigInt(this.esr);
      case M.ICR:
        return this.icr;
      case M.TIMER_INITIAL_COUNT:
        return BigInt(this.initialCount);
      case M.TIMER_CURRENT_COUNT:
        return BigInt(this.currentCount());
      case M.TIMER_DIVIDE_CONFIG:
        return BigInt(this.divideConfig);
      default:
        return undefined; // reserved, absent, or write-only (EOI, SELF IPI)
    }
  }

  /** WRMSR of x2APIC register `msr`; false = #GP. */
  write(msr: number, value: bigint): boolean {
    const M = X2APIC_MSR;
    if (msr === M.ICR) {
      if ((value & ICR_RESERVED) !== 0n) return false;
      this.icr = value & ~ICR_BUSY;
      this.system.sendIpi(this, this.icr);
      return true;
    }
    if (value >> 32n !== 0n) return false;
    const v = Number(value);
    if (LVT_WRITABLE.has(msr)) {
      this.setLvt(msr, v);
      return true;
    }
    switch (msr) {
      case M.TPR:
        this.tpr = v & 0xff;
        return true;
      case M.EOI:
        if (v !== 0) return false;
        this.eoi();
        return true;
      case M.SVR:
        this.svr = v & 0x13ff & ~0x1000; // vector, enable, focus; no directed EOI
        if (!this.softwareEnabled)
          for (const [k, lvt] of this.lvt) this.lvt.set(k, lvt | APIC_LVT_MASKED);
        return true;
      case M.ESR:
        if (v !== 0) return false;
        this.esr = this.esrPending;
        this.esrPending = 0;
        return true;
      case M.TIMER_INITIAL_COUNT:
        this.setInitialCount(v);
        return true;
      case M.TIMER_DIVIDE_CONFIG:
        this.setDivide(v);
        return true;
      case M.SELF_IPI:
        this.system.sendIpi(this, BigInt(v & 0xff) | (BigInt(ICR_SHORTHAND.SELF) << 18n));
        return true;
      default:
        return false; // reserved, absent, or read-only
    }
  }

  readTscDeadline(): bigint {
    this.updateTimer();
    return this.timerMode === TIMER_MODE.TSC_DEADLINE ? this.deadline : 0n;
  }

  /** Ignored outside TSC-deadline mode (SDM 11.5.4.1); 0 disarms. */
  writeTscDeadline(value: bigint): void {
    if (this.timerMode !== TIMER_MODE.TSC_DEADLINE) return;
    this.deadline = value;
    this.updateTimer();
  }

  /** Latches an error for the next ESR write. */
  error(bits: number): void {
    this.esrPending |= bits;
  }
}

/** APIC_BASE modes by EN (bit 11) and EXTD (bit 10). */
function apicMode(base: bigint): 'disabled' | 'invalid' | 'xapic' | 'x2apic' {
  const en = (base & 0x800n) !== 0n;
  const extd = (base & 0x400n) !== 0n;
  return en ? (extd ? 'x2apic' : 'xapic') : extd ? 'invalid' : 'disabled';
}

/** Whether APIC_BASE is in x2APIC mode (EN and EXTD), where MSRs 0x800-0x8FF exist. */
export function isX2apicMode(base: bigint): boolean {
  return apicMode(base) === 'x2apic';
}

/**
 * Whether a WRMSR of APIC_BASE from `old` to `next` is legal (else #GP), as KVM's
 * kvm_set_apic_base: EXTD needs x2APIC in CPUID, EXTD without EN is invalid, and x2APIC to xAPIC
 * and disabled to x2APIC are illegal transitions (SDM figure "x2APIC state transitions").
 */
export function apicBaseWriteAllowed(old: bigint, next: bigint, x2apic: boolean): boolean {
  const from = apicMode(old);
  const to = apicMode(next);
  if (to === 'invalid' || (to === 'x2apic' && !x2apic)) return false;
  if (from === 'x2apic' && to === 'xapic') return false;
  return !(from === 'disabled' && to === 'x2apic');
}

export interface X2apicOptions {
  readonly vcpuCount: number;
  /** The machine's virtual TSC (`vm.machine.tsc`). */
  readonly now: () => bigint;
  /** Guest TSC of vCPU `apicId` (machine TSC plus its IA32_TSC offset); default `now`. */
  readonly guestTsc?: (apicId: number) => bigint;
  /** CPUID 1 ECX bit 24 is advertised: IA32_TSC_DEADLINE and timer mode 2 exist. */
  readonly tscDeadline: boolean;
}

/** An interrupt message from an IOAPIC (or MSI): the fields of a redirection entry. */
export interface InterruptMessage {
  readonly vector: number;
  /** ICR_DELIVERY: FIXED, LOWEST or NMI are delivered; SMI, INIT, ExtINT go nowhere here. */
  readonly deliveryMode: number;
  /** Logical destination mode (else physical). */
  readonly logical: boolean;
  /** 8-bit destination of an IOAPIC entry: an APIC ID, 0xFF for all, or a logical bit mask. */
  readonly destination: number;
  readonly level: boolean;
}

/** The local APICs of a VM, one per vCPU (index = APIC ID), and the interrupt bus between them. */
export class X2apics implements ApicSystem {
  readonly apics: readonly LocalApic[];
  readonly tscDeadline: boolean;
  private readonly guestTscOf: (apicId: number) => bigint;
  private readonly eoiListeners: ((vector: number) => void)[] = [];

  constructor(private readonly o: X2apicOptions) {
    this.tscDeadline = o.tscDeadline;
    this.guestTscOf = o.guestTsc ?? ((): bigint => o.now());
    this.apics = Array.from({ length: o.vcpuCount }, (_, i) => new LocalApic(i, this));
  }

  now(): bigint {
    return this.o.now();
  }

  guestTsc(apicId: number): bigint {
    return this.guestTscOf(apicId);
  }

  /** The vector vCPU `apicId` would take now, or -1 (none, masked by the PPR, or no such vCPU). */
  highestPending(apicId: number): number {
    return this.apics[apicId]?.highestPending() ?? -1;
  }

  /** Whether an NMI waits for vCPU `apicId`; taking it clears it. */
  takeNmi(apicId: number): boolean {
    const a = this.apics[apicId];
    if (a === undefined || !a.nmiPending) return false;
    a.nmiPending = false;
    return true;
  }

  /** Registers an IOAPIC for the EOI broadcast of level-triggered vectors. */
  onEoi(listener: (vector: number) => void): void {
    this.eoiListeners.push(listener);
  }

  eoiBroadcast(vector: number): void {
    for (const l of this.eoiListeners) l(vector);
  }

  /**
   * Delivers a device interrupt; returns how many APICs accepted it. Without interrupt remapping an
   * IOAPIC reaches x2APIC IDs 0-254 physically (0xFF is broadcast) and, logically, the members of
   * cluster 0 named by the 8-bit mask (x2APIC logical ID = cluster << 16 | 1 << (ID & 15)).
   */
  deliver(m: InterruptMessage): number {
    const dest = m.destination & 0xff;
    const targets = m.logical
      ? this.apics.filter((a) => a.ldr >>> 16 === 0 && (a.ldr & dest) !== 0)
      : dest === 0xff
        ? [...this.apics]
        : this.apics.filter((a) => a.apicId === dest);
    switch (m.deliveryMode) {
      case ICR_DELIVERY.FIXED:
      case ICR_DELIVERY.LOWEST: {
        const to = m.deliveryMode === ICR_DELIVERY.LOWEST ? targets.slice(0, 1) : targets;
        let accepted = 0;
        for (const t of to) if (t.acceptFixed(m.vector & 0xff, m.level)) accepted++;
        return accepted;
      }
      case ICR_DELIVERY.NMI:
        for (const t of targets) t.nmiPending = true;
        return targets.length;
      default:
        return 0; // SMI, INIT, ExtINT: no SMM, APs start by AP_CREATION, no 8259
    }
  }

  /** The APICs an ICR addresses. */
  private targets(from: LocalApic, icr: bigint): LocalApic[] {
    const shorthand = Number((icr >> 18n) & 3n);
    if (shorthand === ICR_SHORTHAND.SELF) return [from];
    if (shorthand === ICR_SHORTHAND.ALL) return [...this.apics];
    if (shorthand === ICR_SHORTHAND.ALL_BUT_SELF) return this.apics.filter((a) => a !== from);
    const dest = Number(icr >> 32n);
    if (dest === 0xffff_ffff) return [...this.apics];
    if ((icr & 0x800n) === 0n) return this.apics.filter((a) => a.apicId === dest);
    // Logical x2APIC: cluster in bits 31:16, a bit per member in 15:0.
    return this.apics.filter((a) => a.ldr >>> 16 === dest >>> 16 && (a.ldr & dest & 0xffff) !== 0);
  }

  /** Delivers the IPI `icr` (x2APIC layout, destination in bits 63:32) sent by `from`. */
  sendIpi(from: LocalApic, icr: bigint): void {
    const vector = Number(icr & 0xffn);
    const mode = Number((icr >> 8n) & 7n);
    const targets = this.targets(from, icr);
    switch (mode) {
      case ICR_DELIVERY.FIXED:
      case ICR_DELIVERY.LOWEST: {
        if (vector < 16) {
          from.error(APIC_ESR.SEND_ILLEGAL_VECTOR);
          return;
        }
        // Lowest priority goes to one target: the first (all priorities are equal here).
        const to = mode === ICR_DELIVERY.LOWEST ? targets.slice(0, 1) : targets;
        for (const t of to) t.acceptFixed(vector, (icr & 0x8000n) !== 0n);
        return;
      }
      case ICR_DELIVERY.NMI:
        for (const t of targets) t.nmiPending = true;
        return;
      default:
        // SMI, INIT, SIPI and the reserved modes: SNP guests start APs with AP_CREATION and
        // have no SMM, so these go nowhere.
        return;
    }
  }
}
