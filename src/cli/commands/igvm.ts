// `svsm measure <file>`: the SEV-SNP launch digest the AMD secure processor will compute for an
// IGVM file (what a relying party expects in the report's MEASUREMENT), with its pages by type.
// `svsm igvm show <file>`: the file's headers and directives, readably.

import type { Command } from 'commander';
import { describeIgvm } from '../../igvm/describe.js';
import {
  IgvmFormatError,
  IgvmMeasureError,
  type IgvmMeasurement,
  type IgvmModel,
  measure,
  readIgvm,
} from '../../igvm/index.js';
import { type CliIo, UserError } from '../io.js';
import { readInputFile } from '../read-input.js';

/** IGVM files hold whole guest images; the format itself stops at 4 GiB. */
const MAX_IGVM_BYTES = 1024 * 1024 * 1024;

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Runs `f`, turning the igvm layer's errors about the file into one-sentence user errors. */
function aboutFile<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof IgvmFormatError)
      throw new UserError(`${file} is not a valid IGVM file: ${e.message}`);
    if (e instanceof IgvmMeasureError) throw new UserError(`cannot measure ${file}: ${e.message}`);
    throw e;
  }
}

function readModel(file: string): { model: IgvmModel; size: number } {
  const bytes = readInputFile(file, 'IGVM file', MAX_IGVM_BYTES);
  return { model: aboutFile(file, () => readIgvm(bytes)), size: bytes.length };
}

function measurementJson(file: string, r: IgvmMeasurement, checkKvm: boolean): string {
  return JSON.stringify(
    {
      file,
      measurement: hex(r.digest),
      pageCounts: r.pageCounts,
      launchUpdates: r.updates.length,
      platformMask: r.platformMask,
      policy: r.policy === null ? null : `0x${r.policy.toString(16)}`,
      idBlock: r.idBlock === null ? null : { ld: hex(r.idBlock.ld), matches: r.idBlock.matches },
      checkKvm,
      notes: r.notes,
    },
    null,
    2,
  );
}

function measurementText(r: IgvmMeasurement): string {
  const c = r.pageCounts;
  const lines = [
    `Measurement:  ${hex(r.digest)}`,
    `Pages:        ${r.updates.length} (normal ${c.normal}, zero ${c.zero}, unmeasured ${c.unmeasured}, ` +
      `secrets ${c.secrets}, cpuid ${c.cpuid}, vmsa ${c.vmsa})`,
    `Policy:       ${r.policy === null ? 'none (QEMU uses 0)' : `0x${r.policy.toString(16)}`}`,
  ];
  if (r.idBlock !== null) {
    lines.push(
      `ID block:     ${r.idBlock.matches ? 'expects this measurement' : `expects ${hex(r.idBlock.ld)}, which differs`}`,
    );
  }
  for (const n of r.notes) lines.push(`Note:         ${n}`);
  return lines.join('\n');
}

export function addIgvmCommands(program: Command, io: CliIo): void {
  program
    .command('measure')
    .description(
      'print the SEV-SNP launch digest (the report MEASUREMENT) an IGVM file leads to, as ' +
        'coconut igvmmeasure computes it, and its launch pages by type',
    )
    .argument('<file>', 'an IGVM file (format version 1 or 2) with an SEV-SNP platform')
    .option('--json', 'print the result as JSON')
    .option(
      '--no-check-kvm',
      'measure in file order even where QEMU/KVM would measure differently (igvmmeasure without --check-kvm)',
    )
    .option('--native-zero', 'measure zero pages as ZERO pages (igvmmeasure --native-zero)')
    .action((file: string, opts: { json?: boolean; checkKvm: boolean; nativeZero?: boolean }) => {
      const { model } = readModel(file);
      const r = aboutFile(file, () =>
        measure(model, { checkKvm: opts.checkKvm, nativeZero: opts.nativeZero === true }),
      );
      io.out(opts.json === true ? measurementJson(file, r, opts.checkKvm) : measurementText(r));
    });

  const igvm = program.command('igvm').description('inspect IGVM launch images');
  igvm
    .command('show')
    .description("list an IGVM file's headers and directives")
    .argument('<file>', 'an IGVM file')
    .option('--pages', 'one line per PAGE_DATA instead of one per run of similar pages')
    .action((file: string, opts: { pages?: boolean }) => {
      const { model, size } = readModel(file);
      io.out(describeIgvm(model, size, { everyPage: opts.pages === true }).join('\n'));
    });
}
