// What the host emulates for one VM beside the GHCB protocol: the virtual CPU (CPUID), each
// vCPU's MSRs, the port and MMIO buses and the devices on them. The exit handlers find it through
// `platformOf(vm)`; a VM gets the default platform (COM1 to its serial sink) on its first exit,
// or the one given to `attachPlatform` before it runs.

import { CpuModel, type VirtualCpu } from '../cpu-model.js';
import { VcpuMsrs } from '../exits/msr-table.js';
import type { VmContext } from '../vm-context.js';
import { MmioBus, PortBus } from './bus.js';
import { COM1_PORT, Uart8250 } from './uart8250.js';

export interface HostPlatformOptions {
  readonly cpu: VirtualCpu;
  /** Bytes the guest transmits on COM1. */
  readonly serial: (bytes: Uint8Array) => void;
}

export class HostPlatform {
  readonly cpu: CpuModel;
  readonly ports = new PortBus();
  readonly mmio = new MmioBus();
  readonly com1: Uart8250;
  readonly msrs: readonly VcpuMsrs[];

  constructor(o: HostPlatformOptions) {
    this.cpu = new CpuModel(o.cpu);
    this.msrs = Array.from({ length: o.cpu.vcpuCount }, (_, i) => new VcpuMsrs(i));
    this.com1 = new Uart8250({ base: COM1_PORT, output: o.serial });
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
