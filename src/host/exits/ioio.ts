// IOIO NAE event (SVM_EXIT_IOIO 0x7B): EXITINFO1 in the APM's IOIO intercept format (direction,
// string, operand size, port), routed to the port bus. OUT takes RAX (required); IN returns RAX,
// marked valid, with the bits above the operand kept from the guest's RAX as KVM does. String
// forms move EXITINFO2 elements through the scratch area (KVM `sev_es_string_io`); OUTS to a
// UART's THR is passed on as one run of bytes.

import { GHCB_ERR, IOIO_EXITINFO1 } from '../../arch/index.js';
import type { PortSize } from '../devices/bus.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

// Every IOIO_EXITINFO1 field lies in the low 32 bits: decoded from a number, without BigInts.
const BIT = (name: 'in' | 'string' | 'size16' | 'size32'): number =>
  1 << IOIO_EXITINFO1.specs[name].lo;
const IN = BIT('in');
const STRING = BIT('string');
const SIZE16 = BIT('size16');
const SIZE32 = BIT('size32');
const PORT_SHIFT = IOIO_EXITINFO1.specs.port.lo;
const PORT_MASK = (1 << IOIO_EXITINFO1.specs.port.width) - 1;

/** The operand size, or 0 if EXITINFO1 names none (then 1, as KVM's `>> SVM_IOIO_SIZE_SHIFT`). */
function operandSize(info: number): PortSize {
  if (info & SIZE32) return 4;
  if (info & SIZE16) return 2;
  return 1;
}

const SIZE_MASK = [0, 0xff, 0xffff, 0, 0xffff_ffff] as const;

export function ioioExit(x: GhcbExit): void {
  const info = x.get32('swExitInfo1');
  const port = (info >>> PORT_SHIFT) & PORT_MASK;
  const isIn = (info & IN) !== 0;
  const size = operandSize(info);
  const platform = platformOf(x.vm);
  const bus = platform.ports;
  if (info & STRING) {
    if (x.missing('swScratch')) return;
    const count = x.get('swExitInfo2');
    const bytes = count * BigInt(size);
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
      x.error(GHCB_ERR.INVALID_SCRATCH_AREA);
      return;
    }
    const scratch = x.scratch(Number(bytes));
    if (scratch === null) return;
    const data = scratch.bytes;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const uart = platform.com1;
    if (!isIn && size === 1 && uart.isThr(port)) {
      uart.transmitMany(data);
    } else {
      for (let off = 0; off < data.length; off += size) {
        if (isIn) {
          const v = bus.in(port, size);
          if (size === 1) view.setUint8(off, v);
          else if (size === 2) view.setUint16(off, v, true);
          else view.setUint32(off, v, true);
        } else {
          const v =
            size === 1
              ? view.getUint8(off)
              : size === 2
                ? view.getUint16(off, true)
                : view.getUint32(off, true);
          bus.out(port, size, v);
        }
      }
      if (isIn) scratch.commit();
    }
    x.ok(0n);
    return;
  }
  const mask = SIZE_MASK[size];
  if (isIn) {
    const value = bus.in(port, size);
    // KVM `complete_fast_pio_in`: a 32-bit IN zero-extends, narrower ones keep RAX's other bits.
    if (size < 4 && x.isValid('rax'))
      x.output('rax', (x.get('rax') & ~BigInt(mask)) | BigInt(value));
    else x.output32('rax', value);
  } else {
    if (x.missing('rax')) return;
    bus.out(port, size, (x.get32('rax') & mask) >>> 0);
  }
  x.ok(0n);
}
