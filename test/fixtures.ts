// Paths of the test fixtures, so tests do not each work out the repository root.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export function fixture(path: string): Uint8Array {
  return new Uint8Array(readFileSync(FIXTURES + path));
}
