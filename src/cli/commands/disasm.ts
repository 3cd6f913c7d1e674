// `svsm disasm`: x86-64 code printed in Intel syntax by the simulator's own decoder
// (src/hw/cpu), so what it shows is what the simulated CPU will execute.

import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { disassemble } from '../../hw/cpu/index.js';
import { type CliIo, UserError } from '../io.js';

const HELP_AFTER = `
Reads raw machine code (64-bit mode) from FILE, or from --hex, and prints one line per
instruction: address, bytes, Intel-syntax text. Bytes the decoder does not accept (or that this
CPU does not implement yet) print as (bad) and are skipped one at a time.
Examples:
  svsm disasm --hex "48 01 c8 0f 94 c0"
  svsm disasm code.bin --address 0xffffffff81000000 --offset 0x200 --length 64`;

export interface DisasmOptions {
  readonly hex?: string;
  readonly address: string;
  readonly offset: string;
  readonly length?: string;
}

function parseNumber(name: string, text: string): bigint {
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(text))
    throw new UserError(`${name} must be a number, got "${text}"`);
  return BigInt(text);
}

function parseHex(text: string): Uint8Array {
  const clean = text.replace(/[\s,]|0x/gi, '');
  if (!/^([0-9a-f]{2})*$/i.test(clean))
    throw new UserError(`--hex must be pairs of hex digits, got "${text}"`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

/** The listing for `code` at `address` as lines of text. */
export function disasmLines(code: Uint8Array, address: bigint): string[] {
  return disassemble(code, address).map((l) => {
    const bytes = Buffer.from(l.bytes)
      .toString('hex')
      .replace(/(..)(?!$)/g, '$1 ');
    return `${l.address.toString(16).padStart(8, '0')}:  ${bytes.padEnd(30)} ${l.text}`;
  });
}

export function addDisasmCommand(program: Command, io: CliIo): void {
  program
    .command('disasm')
    .description("disassemble x86-64 machine code with the simulated CPU's decoder")
    .argument('[file]', 'raw machine code')
    .option('--hex <bytes>', 'machine code as hex instead of a file')
    .option('--address <n>', 'address of the first byte', '0')
    .option('--offset <n>', 'skip this many bytes of the file', '0')
    .option('--length <n>', 'disassemble at most this many bytes')
    .addHelpText('after', HELP_AFTER)
    .action((file: string | undefined, opts: DisasmOptions) => {
      let code: Uint8Array;
      if (opts.hex !== undefined) {
        if (file !== undefined) throw new UserError('give either a file or --hex, not both');
        code = parseHex(opts.hex);
      } else if (file !== undefined) {
        try {
          code = new Uint8Array(readFileSync(file));
        } catch (e) {
          throw new UserError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
        }
      } else {
        throw new UserError('give a file of machine code or --hex');
      }
      const offset = Number(parseNumber('--offset', opts.offset));
      const length =
        opts.length !== undefined ? Number(parseNumber('--length', opts.length)) : code.length;
      if (offset > code.length)
        throw new UserError(`--offset ${offset} is past the end (${code.length} bytes)`);
      const address = parseNumber('--address', opts.address);
      for (const line of disasmLines(code.subarray(offset, offset + length), address)) io.out(line);
    });
}
