// The address space shared by the native harness (harness.c) and the simulated side: keep the
// constants in sync with the #defines there.

export const CODE = 0x1000_0000;
export const DATA = 0x1001_0000;
export const DATA_SIZE = 0x2000;
export const INSN_OFF = 0x100;
/** Landing points of taken branches (code-page offsets), by id; id 0 is the fall-through. */
export const LANDINGS = [0, 0x000, 0x040, 0x0c0, 0x140, 0x400, 0x800, 0xc00];

/** The per-test data pattern: xorshift32 from `seed`, one word per 4 bytes (harness.c `fill`). */
export function fillPattern(out: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 0x9e3779b9;
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let i = 0; i < DATA_SIZE; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    view.setUint32(i, x, true);
  }
}
