// The hidden part of a segment register (APM vol. 2, 4.5.3), in the VMSA's attribute format so
// the engine can copy VMSA segments in and out unchanged.

/** A segment register: selector plus the hidden (cached) descriptor. */
export class Segment {
  constructor(
    public selector = 0,
    public base = 0n,
    /** Byte-granular limit (G already applied). */
    public limit = 0xffff,
    /** VMSA-format attributes: descriptor bits 40-47 in bits 0-7, bits 52-55 in 8-11. */
    public attr = 0,
  ) {}
}
