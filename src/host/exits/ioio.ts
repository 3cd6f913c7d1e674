// IOIO NAE event (SVM_EXIT_IOIO 0x7B): EXITINFO1 in the APM's IOIO intercept format (direction,
// string, operand size, port), routed to the port bus. OUT takes RAX (required); IN returns RAX,
// marked valid, with the bits above the operand kept from the guest's RAX as KVM does. String
// forms move EXITINFO2 elements through the scratch area (KVM `sev_es_string_io`); OUTS to a
// UART's THR is passed on as one run of bytes.

import { GHCB_ERR, IOIO_EXITINFO1 } from '../../arch/index.js';
import type { PortSize } from '../devices/bus.js';
import { platformOf } from '../devices/platform.js';
import type { GhcbExit } from './ghcb-exit.js';

/** The operand size, or 0 if EXITINFO1 names none (then 1, as KVM's `>> SVM_IOIO_SIZE_SHIFT`). */
function operandSize(info: bigint): PortSize {
  if (IOIO_EXITINFO1.has(info, 'size32')) return 4;
  if (IOIO_EXITINFO1.has(info, 'size16')) return 2;
  return 1;
}

const SIZE_MASK = [0n, 0xffn, 0xffffn, 0n, 0xffff_ffffn] as const;

export function ioioExit(x: GhcbExit): void {
  const info = x.get('swExitInfo1');
  const port = Number(IOIO_EXITINFO1.get(info, 'port'));
  const isIn = IOIO_EXITINFO1.has(info, 'in');
  const size = operandSize(info);
  const platform = platformOf(x.vm);
  const bus = platform.ports;
  if (IOIO_EXITINFO1.has(info, 'string')) {
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
    // KVM `complete_fast_pio_in`: a 32-bit IN zero-extends, narrower ones keep RAX's other bits.
    const rax = size < 4 && x.isValid('rax') ? x.get('rax') & ~mask : 0n;
    x.output('rax', rax | BigInt(bus.in(port, size)));
  } else {
    if (x.missing('rax')) return;
    bus.out(port, size, Number(x.get('rax') & mask));
  }
  x.ok(0n);
}
