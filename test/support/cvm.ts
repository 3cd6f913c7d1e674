// Assembles a whole CVM for tests: machine (test chip identity), SVSM engine at VMPL0, a scripted
// guest at VMPL2, the host VM, and the launch image with the SVSM bundle at a chosen address.
import { buildCpuidPage, type GuestProgram } from '../../src/arch/index.js';
import { svsmBundle } from '../../src/cli/svsm-bundle.js';
import { loadTestIdentity } from '../../src/hw/asp/test-identity.fixture.js';
import { PerVcpuEngine } from '../../src/hw/engines/per-vcpu-engine.js';
import { ScriptedEngine } from '../../src/hw/engines/scripted-engine.js';
import { X86Engine } from '../../src/hw/engines/x86-engine.js';
import { SvsmEngine } from '../../src/hw/engines/svsm-engine.js';
import { Machine } from '../../src/hw/machine.js';
import { CpuModel } from '../../src/host/cpu-model.js';
import { seededRandom } from '../../src/hw/random.js';
import { igvmToLaunchPlan, launchPlanToIgvm, readIgvm, writeIgvm } from '../../src/igvm/index.js';
import { buildSvsmImage, bspVmsaGpa } from '../../src/igvm/svsm-image.js';
import { Vm } from '../../src/host/vm.js';

let bundle: string | null = null;

export interface TestCvm {
  readonly machine: Machine;
  readonly vm: Vm;
  readonly guest: ScriptedEngine;
  /** The x86 engine of the vCPUs in `x86Vcpus` (one engine for all of them). */
  readonly x86: X86Engine | null;
  readonly serial: string[];
  readonly hostLog: string[];
  readonly measurement: Uint8Array;
  readonly caaGpa: number;
  readonly secretsGpa: number;
  /** The IGVM file the CVM was launched from, with `viaIgvm`. */
  readonly igvmFile?: Uint8Array;
}

export interface TestCvmOptions {
  readonly svsmBase?: number;
  /** Bytes of the SVSM region (2 MiB multiple; default DEFAULT_SVSM_SIZE, 16 MiB). */
  readonly svsmSize?: number;
  readonly memoryBytes?: number;
  readonly vcpus?: number;
  readonly seed?: string;
  /** Write the image as an IGVM file and launch from the file, as `svsm run --image` does. */
  readonly viaIgvm?: boolean;
  /** vCPUs whose VMPL2 runs on the x86 interpreter instead of the scripted program. */
  readonly x86Vcpus?: readonly number[];
  /** Makes the x86 engine (tests may pass a subclass). */
  readonly x86Engine?: (machine: Machine) => X86Engine;
  /** TSC on wall-clock time (VmOptions.realtime). */
  readonly realtime?: boolean;
}

export const GUEST_SECRETS_GPA = 0x9000;
export const GUEST_CAA_GPA = 0xa000;

export function createTestCvm(program: GuestProgram, o: TestCvmOptions = {}): TestCvm {
  bundle ??= svsmBundle();
  const memoryBytes = o.memoryBytes ?? 64 * 1024 * 1024;
  const vcpus = o.vcpus ?? 1;
  const machine = new Machine({
    identity: loadTestIdentity(),
    random: seededRandom(o.seed ?? 'test cvm'),
    memoryBytes,
    vcpuCount: vcpus,
  });
  const guest = new ScriptedEngine(machine, () => program);
  machine.engines[0] = new SvsmEngine(machine);
  const x86Vcpus = o.x86Vcpus ?? [];
  const x86 = x86Vcpus.length === 0 ? null : (o.x86Engine ?? ((m) => new X86Engine(m)))(machine);
  machine.engines[2] =
    x86 === null ? guest : new PerVcpuEngine(machine, (i) => (x86Vcpus.includes(i) ? x86 : guest));
  const serialBytes: number[] = [];
  const serial: string[] = [];
  const hostLog: string[] = [];
  const vm = new Vm(machine, {
    realtime: o.realtime ?? false,
    log: (l) => hostLog.push(l),
    serial: (b) => {
      for (const x of b) {
        if (x === 0x0a) {
          serial.push(Buffer.from(serialBytes).toString('utf8'));
          serialBytes.length = 0;
        } else serialBytes.push(x);
      }
    },
  });
  const plan = buildSvsmImage({
    code: bundle,
    cpuidPage: buildCpuidPage(
      new CpuModel({ product: 'Milan', vcpuCount: vcpus }).snpCpuidEntries(),
    ),
    memorySize: memoryBytes,
    svsmBase: o.svsmBase ?? 0x200_0000,
    ...(o.svsmSize === undefined ? {} : { svsmSize: o.svsmSize }),
    vcpuCount: vcpus,
    guestCaaGpa: GUEST_CAA_GPA,
    guestSecretsGpa: GUEST_SECRETS_GPA,
    guestRsi: BigInt(GUEST_SECRETS_GPA),
  });
  const igvmFile = o.viaIgvm === true ? writeIgvm(launchPlanToIgvm(plan)) : undefined;
  const launched =
    igvmFile === undefined ? plan : igvmToLaunchPlan(readIgvm(igvmFile), bspVmsaGpa(memoryBytes));
  const measurement = vm.launch(launched);
  return {
    machine,
    vm,
    guest,
    x86,
    serial,
    hostLog,
    measurement,
    caaGpa: GUEST_CAA_GPA,
    secretsGpa: GUEST_SECRETS_GPA,
    ...(igvmFile === undefined ? {} : { igvmFile }),
  };
}
