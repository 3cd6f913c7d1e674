// `svsm run` (= `npm start`): launches a CVM - the SVSM at VMPL0 and the scripted demo guest at
// VMPL2 - and prints a readable log of each step: the host's, the SVSM's console and the guest's.
// `svsm build-image` writes the same launch image as an IGVM file.

import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { bytesToHex } from '../../arch/index.js';
import { MemoryConfigError, parseMemorySize } from '../../hw/memory.js';
import {
  ImageLayoutError,
  IgvmFormatError,
  launchPlanToIgvm,
  measure,
  writeIgvm,
} from '../../igvm/index.js';
import { LaunchError } from '../../igvm/launch-plan.js';
import { demoGuest } from '../../guest/demo-guest.js';
import { platformOf } from '../../host/devices/platform.js';
import { createCvm, DEFAULT_SVSM_BASE, svsmConsoleSymbolizer, svsmImagePlan } from '../cvm.js';
import { parseSerialSpec, SERIAL_HELP, SerialPort } from '../serial.js';
import { type CliIo, UserError } from '../io.js';
import { DEFAULT_MACHINE_DIR, loadOrCreateIdentity } from '../machine-identity.js';

interface RunOptions {
  memory: string;
  vcpus: string;
  svsmBase: string;
  image?: string;
  seed?: string;
  machineDir: string;
  serial: string;
  realtime?: boolean;
}

/** VMRUNs between two looks at the terminal or socket. */
const SLICE_ENTRIES = 1000;
/** The same guard as `Vm.run`: a guest that never waits is stopped. */
const MAX_ENTRIES = 10_000_000;

function parseIntArg(text: string, name: string, min: number, max: number): number {
  const n = text.startsWith('0x') ? Number.parseInt(text.slice(2), 16) : Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UserError(`${name} must be an integer ${min}..${max}, got "${text}"`);
  }
  return n;
}

/** Turns the errors a bad configuration can raise into one-sentence user errors. */
function asUserError(e: unknown): never {
  if (
    e instanceof MemoryConfigError ||
    e instanceof ImageLayoutError ||
    e instanceof IgvmFormatError
  ) {
    throw new UserError(e.message);
  }
  if (e instanceof LaunchError) throw new UserError(`the launch failed: ${e.message}`);
  throw e;
}

export async function runCvm(
  o: RunOptions,
  io: CliIo,
  setExitCode: (code: number) => void,
): Promise<void> {
  const vcpus = parseIntArg(o.vcpus, '--vcpus', 1, 64);
  const svsmBase = parseIntArg(o.svsmBase, '--svsm-base', 0, 3 * 2 ** 30);
  const serialSpec = parseSerialSpec(o.serial);
  const { identity, path, created } = loadOrCreateIdentity(o.machineDir, io, 'svsm run');
  io.out(
    `host: machine ${identity.productName}, chip ${bytesToHex(identity.chipId).slice(0, 16)}... (${created ? 'new identity' : 'identity'} ${path})`,
  );
  const symbolize = svsmConsoleSymbolizer();
  const serial = await SerialPort.open(serialSpec, {
    onLine: (l) => io.out(symbolize(l)),
    ...(io.stdin === undefined ? {} : { stdin: io.stdin }),
    onListening: (port) => io.out(`host: COM1 waits for a client on 127.0.0.1:${port}`),
  });
  try {
    const started = process.hrtime.bigint();
    let cvm;
    try {
      cvm = createCvm(demoGuest({ validateBytes: 8 * 1024 * 1024, vcpus }), {
        identity,
        memory: o.memory,
        vcpus,
        svsmBase,
        ...(o.image === undefined ? {} : { image: o.image }),
        ...(o.seed === undefined ? {} : { seed: o.seed }),
        realtime: o.realtime === true,
        onHostLog: (l) => io.out(`host: ${l}`),
        onSerialLine: (l) => io.out(l),
        onSerialBytes: (bytes) => serial.write(bytes),
        onGuestLog: (l) => io.out(l),
      });
      cvm.vm.launch(cvm.plan);
    } catch (e) {
      asUserError(e);
    }
    const uart = platformOf(cvm.vm).com1;
    let state = cvm.vm.state;
    for (let entries = 0; ; entries += SLICE_ENTRIES) {
      serial.pump(uart);
      state = cvm.vm.runSlice(SLICE_ENTRIES);
      if (state !== 'running') break;
      if (entries + SLICE_ENTRIES >= MAX_ENTRIES) {
        cvm.vm.terminate(`stopped after ${MAX_ENTRIES} VMRUNs`, false);
        break;
      }
      // Lets the terminal or socket deliver input and take output.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    serial.close();
    const t = cvm.vm.termination;
    if (t !== null) {
      io.err(`svsm run: the VM was terminated: ${t.reason}`);
      setExitCode(1);
      return;
    }
    io.out(`host: VM ${cvm.vm.state} after ${ms.toFixed(0)} ms`);
  } finally {
    serial.close();
  }
}

export function addRunCommands(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  const common = (c: Command): Command =>
    c
      .option('--memory <size>', 'guest memory, e.g. 512M or 1G (16M..3G, multiple of 2M)', '512M')
      .option(
        '--vcpus <n>',
        'number of vCPUs (the demo guest brings up the second with CREATE_VCPU)',
        '2',
      )
      .option(
        '--svsm-base <gpa>',
        'guest physical address of the SVSM region (2 MiB aligned)',
        `0x${DEFAULT_SVSM_BASE.toString(16)}`,
      );
  common(
    program
      .command('run')
      .description(
        'launch a confidential VM with the SVSM and the scripted demo guest, and log each step',
      ),
  )
    .option(
      '--image <file>',
      'launch this IGVM file (from `svsm build-image`) instead of building the image',
    )
    .option(
      '--seed <text>',
      'make the run reproducible: the same seed gives the same run, bit for bit',
    )
    .option(
      '--machine-dir <dir>',
      'where the machine identity (chip secret, ARK/ASK) lives',
      DEFAULT_MACHINE_DIR,
    )
    .option('--serial <where>', SERIAL_HELP, 'stdio')
    .option(
      '--realtime',
      'run the TSC and timers on wall-clock time (interactive use); by default time is virtual ' +
        'and derived from executed work, so two runs with one --seed are identical',
    )
    .action((opts: RunOptions) => runCvm(opts, io, setExitCode));

  common(
    program
      .command('build-image')
      .description(
        'write the launch image (SVSM, boot parameters, secrets and CPUID pages, VMSA, and the ' +
          'firmware area: boot_params with the e820 map, ACPI tables) as an IGVM file',
      ),
  )
    .requiredOption('--out <file>', 'the IGVM file to write')
    .action((opts: RunOptions & { out: string }) => {
      try {
        const plan = svsmImagePlan({
          memoryBytes: parseMemorySize(opts.memory),
          vcpus: parseIntArg(opts.vcpus, '--vcpus', 1, 64),
          svsmBase: parseIntArg(opts.svsmBase, '--svsm-base', 0, 3 * 2 ** 30),
        });
        const file = writeIgvm(launchPlanToIgvm(plan));
        writeFileSync(opts.out, file);
        io.out(
          `wrote ${opts.out} (${file.length} bytes); launch digest ${bytesToHex(measure(file).digest)}`,
        );
      } catch (e) {
        asUserError(e);
      }
    });
}
