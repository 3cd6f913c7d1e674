// The `svsm` command: builds the commander program and runs it with user errors mapped to
// one-sentence messages and exit codes (io.ts).

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { addAttestCommand } from './commands/attest.js';
import { addDisasmCommand } from './commands/disasm.js';
import { addExecCommand } from './commands/exec.js';
import { addIgvmCommands } from './commands/igvm.js';
import { addKdsCommands } from './commands/kds.js';
import { addReportCommands } from './commands/report.js';
import { addRunCommands } from './commands/run.js';
import { addTpmCommands } from './commands/tpm.js';
import { addVerifyCommand } from './commands/verify.js';
import { type CliIo, EXIT, processIo, UserError } from './io.js';

function packageVersion(): string {
  // src/cli and dist/cli both sit two levels below the package root.
  const url = new URL('../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * The `svsm` program. A command whose verdict is negative (e.g. a rejected report) reports exit
 * code 1 through `setExitCode`; user errors still throw UserError.
 */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void = () => {}): Command {
  const program = new Command('svsm')
    .description(
      'svsm-ts: an AMD SEV-SNP confidential VM in software (the machine, the untrusted host and ' +
        'a Secure VM Service Module) and tools to inspect what it produces.',
    )
    .version(packageVersion(), '-V, --version', 'print the svsm-ts version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .exitOverride();
  addRunCommands(program, io, setExitCode);
  addAttestCommand(program, io, setExitCode);
  addReportCommands(program, io);
  addVerifyCommand(program, io, setExitCode);
  addKdsCommands(program, io);
  addIgvmCommands(program, io);
  addTpmCommands(program, io);
  addDisasmCommand(program, io);
  addExecCommand(program, io, setExitCode);
  for (const cmd of program.commands) {
    cmd.exitOverride();
    for (const sub of cmd.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI on `args` (without node and script) and returns the exit code. */
export async function runCli(args: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode: number = EXIT.OK;
  const program = buildProgram(io, (code) => {
    exitCode = Math.max(exitCode, code);
  });
  try {
    await program.parseAsync([...args], { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit through here with code 0; usage errors were already printed.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (e instanceof UserError) {
      io.err(`svsm: ${e.message}`);
      return EXIT.USAGE;
    }
    throw e;
  }
}
