import { readFileSync, statSync } from 'node:fs';
import { UserError } from './io.js';

/** Reads a file named on the command line, turning every failure into a one-sentence UserError. */
export function readInputFile(path: string, what: string, maxBytes = 64 * 1024 * 1024): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new UserError(`${what} ${path} is a directory, not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(
      code === 'ENOENT'
        ? `${what} ${path} does not exist`
        : `cannot read ${what} ${path} (${code ?? String(e)})`,
    );
  }
  if (size > maxBytes)
    throw new UserError(`${what} ${path} is ${size} bytes, larger than expected`);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UserError(
      `cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
}
