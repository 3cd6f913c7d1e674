// What the host emulates for one VM beside the GHCB protocol: the virtual CPU (CPUID), each
// vCPU's MSRs, the port and MMIO buses and the devices on them. The exit handlers find it through
// `platformOf(vm)`; the local APICs (x2apic.ts) and the PC devices (pc-devices.ts: IOAPIC, PIT,
// RTC, ACPI PM) run on the VM's virtual TSC; a VM gets the default platform (COM1 to its serial
// sink) on its first exit, or the one given to `attachPlatform` before it runs.

import { CpuModel, type VirtualCpu } from '../cpu-model.js';
import { VcpuMsrs } from '../exits/msr-table.js';
import type { VmContext } from '../vm-context.js';
import { MmioBus, PortBus } from './bus.js';
import { PcDevices } from './pc-devices.js';
import { COM1_IRQ, COM1_PORT, Uart8250 } from './uart8250.js';
import { X2apics } from './x2apic.js';

export interface HostPlatformOptions {
  readonly cpu: VirtualCpu;
  /** Bytes the guest transmits on COM1. */
  readonly serial: (bytes: Uint8Array) => void;
  /** The machine's virtual TSC (`vm.machine.tsc`), which the APIC timers count. */
  readonly tsc: () => bigint;
  /** The TSC's rate, which the PIT, RTC and PM timer clocks divide; default 1 GHz. */
  readonly tscHz?: bigint;
  /** The RTC's wall-clock time (Unix seconds) at TSC 0; default a fixed date (deterministic). */
  readonly rtcEpoch?: number;
  /** The guest entered ACPI S5 (soft off); default: nothing happens. */
  readonly powerOff?: () => void;
}

export class HostPlatform {
  readonly cpu: CpuModel;
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  readonly com1: Uart8250;
  readonly msrs: readonly VcpuMsrs[];
  /** One local APIC per vCPU (index = APIC ID). */
  readonly apics: X2apics;
  /** IOAPIC, PIT, RTC, ACPI PM. */
  readonly pc: PcDevices;
  /** NMIs are blocked on vCPU i from an injected NMI until its NMI_COMPLETE (GHCB). */
  readonly nmiBlocked: boolean[];
  /** External interrupts injected, by vector (for the inspector and tests). */
  readonly injected = new Map<number, number>();
  /** The guest's AP jump table address (AP_JUMP_TABLE NAE event); kept, never dereferenced. */
  apJumpTable = 0n;

  constructor(o: HostPlatformOptions) {
    this.cpu = new CpuModel(o.cpu);
    this.msrs = Array.from({ length: o.cpu.vcpuCount }, (_, i) => new VcpuMsrs(i));
    const leaf1 = this.cpu.cpuid(1, 0, 1n, 0n, 0);
    this.apics = new X2apics({
      vcpuCount: o.cpu.vcpuCount,
      now: o.tsc,
      guestTsc: (id) => o.tsc() + (this.msrs[id]?.tscOffset ?? 0n),
      tscDeadline: ((leaf1.ecx >>> 24) & 1) === 1,
    });
    this.nmiBlocked = Array.from({ length: o.cpu.vcpuCount }, () => false);
    this.pc = new PcDevices({
      ports: this.ports,
      mmio: this.mmio,
      apics: this.apics,
      tsc: o.tsc,
      ...(o.tscHz === undefined ? {} : { tscHz: o.tscHz }),
      ...(o.rtcEpoch === undefined ? {} : { rtcEpoch: o.rtcEpoch }),
      powerOff: o.powerOff ?? (() => undefined),
    });
    this.com1 = new Uart8250({
      base: COM1_PORT,
      output: o.serial,
      onIrq: this.pc.isaIrq(COM1_IRQ),
    });
    this.ports.register(COM1_PORT, 8, this.com1);
  }
}

const platforms = new WeakMap<VmContext, HostPlatform>();

/** The platform of `vm` (created with the defaults on first use). */
export function platformOf(vm: VmContext): HostPlatform {
  let p = platforms.get(vm);
  if (p === undefined) {
    p = new HostPlatform({
      cpu: { product: vm.machine.asp.identity.product, vcpuCount: vm.machine.vcpus.length },
      serial: (bytes) => vm.serial(bytes),
      tsc: () => vm.machine.tsc,
      powerOff: () => vm.powerOff('the guest entered ACPI S5 (soft off)'),
    });
    platforms.set(vm, p);
  }
  return p;
}

/** Gives `vm` a platform built elsewhere (tests, the CLI's socket-backed COM1); before it runs. */
export function attachPlatform(vm: VmContext, platform: HostPlatform): void {
  if (platforms.has(vm)) throw new Error('the VM already has a host platform');
  platforms.set(vm, platform);
}
