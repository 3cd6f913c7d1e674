// What a command may touch of the outside world, so commands run the same in tests and in a shell.

import type { Readable } from 'node:stream';

/** A mistake at the edge (bad argument, unreadable file): printed as one sentence, exit code 2. */
export class UserError extends Error {
  override readonly name = 'UserError';
}

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Standard input, for commands that take it interactively (`svsm run --serial stdio`). */
  readonly stdin?: Readable;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : text + '\n'),
  // Looked up on use: touching process.stdin opens it.
  get stdin(): Readable {
    return process.stdin;
  },
};

/** Exit codes: 0 success, 1 a check failed (e.g. a report was rejected), 2 a user error. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;
