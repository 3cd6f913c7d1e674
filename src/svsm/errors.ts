// The SVSM's two kinds of failure (STYLE.md "Errors"): a result code for the guest, which is a
// value returned by protocol handlers, and a panic, a fatal condition that ends the VM.

/** A fatal error: the SVSM panics (wipes its keys, terminates the VM). */
export class SvsmPanic extends Error {
  override readonly name = 'SvsmPanic';
}

/** Throws a panic with `message` unless `condition` holds. */
export function assertOrPanic(condition: boolean, message: string): asserts condition {
  if (!condition) throw new SvsmPanic(message);
}
