import type { Command } from 'commander';
import { ReportFormatError } from '../../arch/index.js';
import { formatReport, viewReport } from '../../attest/report-view.js';
import { type CliIo, UserError } from '../io.js';
import { readInputFile } from '../read-input.js';

export function addReportCommands(program: Command, io: CliIo): void {
  const report = program
    .command('report')
    .description('inspect SEV-SNP attestation reports (ATTESTATION_REPORT, versions 2 to 4)');

  report
    .command('show')
    .description('decode an attestation report file and print every field')
    .argument('<file>', 'a raw 1184-byte (0x4a0) report, as written by snpguest or `svsm attest`')
    .option('--json', 'print the decoded fields as JSON instead of text')
    .action((file: string, opts: { json?: boolean }) => {
      const bytes = readInputFile(file, 'report file', 1 << 20);
      let view;
      try {
        view = viewReport(bytes);
      } catch (e) {
        if (e instanceof ReportFormatError) throw new UserError(`${file}: ${e.message}`);
        throw e;
      }
      io.out(opts.json ? JSON.stringify(view, null, 2) : formatReport(view));
    });
}
