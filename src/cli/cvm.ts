// Assembles a confidential VM for the CLI: the machine with this machine's chip identity, the SVSM
// engine at VMPL0, a scripted guest (or the x86 engine) at VMPL2, the host, and the launch image
// (built now, or read from an IGVM file).

import { readFileSync } from 'node:fs';
import { buildCpuidPage, type GuestProgram } from '../arch/index.js';
import { ScriptedEngine } from '../hw/engines/scripted-engine.js';
import { SvsmEngine } from '../hw/engines/svsm-engine.js';
import { X86Engine } from '../hw/engines/x86-engine.js';
import { Machine } from '../hw/machine.js';
import type { ChipIdentity } from '../hw/asp/chip-identity.js';
import { parseMemorySize } from '../hw/memory.js';
import { CpuModel } from '../host/cpu-model.js';
import { seededRandom, systemRandom } from '../hw/random.js';
import { Vm } from '../host/vm.js';
import {
  bspVmsaGpa,
  buildSvsmImage,
  igvmToLaunchPlan,
  type LaunchPlan,
  readIgvm,
} from '../igvm/index.js';
import { backtraceSymbolizer } from './backtrace.js';
import { svsmBundle, svsmBundleWithMap } from './svsm-bundle.js';

export const GUEST_SECRETS_GPA = 0x9000;
export const GUEST_CAA_GPA = 0xa000;
export const DEFAULT_SVSM_BASE = 0x200_0000;

export interface CvmOptions {
  readonly identity: ChipIdentity;
  readonly memory: string;
  readonly vcpus: number;
  readonly svsmBase: number;
  /** An IGVM file to launch instead of building the image now. */
  readonly image?: string;
  /** Makes the run reproducible bit for bit. */
  readonly seed?: string;
  readonly onHostLog: (line: string) => void;
  readonly onSerialLine: (line: string) => void;
  /** Raw COM1 output; when given, it replaces the line-by-line `onSerialLine`. */
  readonly onSerialBytes?: (bytes: Uint8Array) => void;
  /** TSC and timers on wall-clock time instead of virtual time (VmOptions.realtime). */
  readonly realtime?: boolean;
  readonly onGuestLog?: (line: string) => void;
  /**
   * What runs VMPL2: the scripted `program` (default) or the x86 interpreter on the VMSA the SVSM
   * made (which needs the guest's entry state in 64-bit mode; see hw/engines/x86-engine.ts).
   */
  readonly guestEngine?: 'scripted' | 'x86';
}

export interface Cvm {
  readonly machine: Machine;
  readonly vm: Vm;
  readonly guest: ScriptedEngine;
  readonly plan: LaunchPlan;
}

/** The launch plan of the SVSM image for these options. */
export function svsmImagePlan(o: {
  memoryBytes: number;
  vcpus: number;
  svsmBase: number;
}): LaunchPlan {
  return buildSvsmImage({
    code: svsmBundle(),
    cpuidPage: buildCpuidPage(
      new CpuModel({ product: 'Milan', vcpuCount: o.vcpus }).snpCpuidEntries(),
    ),
    memorySize: o.memoryBytes,
    svsmBase: o.svsmBase,
    vcpuCount: o.vcpus,
    guestCaaGpa: GUEST_CAA_GPA,
    guestSecretsGpa: GUEST_SECRETS_GPA,
    guestRsi: BigInt(GUEST_SECRETS_GPA),
  });
}

/** Maps an SVSM panic's backtrace lines back to the TypeScript sources. */
export function svsmConsoleSymbolizer(): (line: string) => string {
  return backtraceSymbolizer(svsmBundleWithMap().map);
}

export function createCvm(program: GuestProgram, o: CvmOptions): Cvm {
  const memoryBytes = parseMemorySize(o.memory);
  const machine = new Machine({
    identity: o.identity,
    random: o.seed === undefined ? systemRandom() : seededRandom(o.seed),
    memoryBytes,
    vcpuCount: o.vcpus,
  });
  const guest = new ScriptedEngine(machine, () => program, o.onGuestLog);
  machine.engines[0] = new SvsmEngine(machine);
  machine.engines[2] = o.guestEngine === 'x86' ? new X86Engine(machine) : guest;
  // The SVSM's console, with panic backtraces mapped back to its TypeScript sources.
  const symbolize = svsmConsoleSymbolizer();
  let line: number[] = [];
  const vm = new Vm(machine, {
    log: o.onHostLog,
    realtime: o.realtime ?? false,
    serial:
      o.onSerialBytes ??
      ((bytes) => {
        for (const b of bytes) {
          if (b === 0x0a) {
            o.onSerialLine(symbolize(Buffer.from(line).toString('utf8')));
            line = [];
          } else line.push(b);
        }
      }),
  });
  const plan =
    o.image === undefined
      ? svsmImagePlan({ memoryBytes, vcpus: o.vcpus, svsmBase: o.svsmBase })
      : igvmToLaunchPlan(readIgvm(new Uint8Array(readFileSync(o.image))), bspVmsaGpa(memoryBytes));
  return { machine, vm, guest, plan };
}
