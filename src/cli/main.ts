#!/usr/bin/env node
import { runCli } from './program.js';

// A reader that goes away (`svsm disasm ... | head`) is not an error of ours: stop quietly, as
// command-line tools do on a closed pipe.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

process.exitCode = await runCli(process.argv.slice(2));
