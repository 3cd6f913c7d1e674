// A CliIo that keeps what a command printed, line by line, for CLI tests.
import type { CliIo } from '../../src/cli/io.js';

export interface CapturedIo extends CliIo {
  /** Lines written to standard output. */
  readonly lines: string[];
  /** Lines written to standard error. */
  readonly errors: string[];
}

export function captureIo(): CapturedIo {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (t) => void lines.push(t), err: (t) => void errors.push(t) };
}
