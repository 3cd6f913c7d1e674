// Platform Configuration Registers (Part 1, section 17): 24 PCRs in each of the SHA-1, SHA-256 and
// SHA-384 banks, with the PC Client initial values (PCR 17-22 all ones, the rest zero) and the
// update counter PolicyPCR and PCR_Read report.

import { ALG, LIMITS } from './constants.js';
import { digestSize, hash } from './crypto.js';
import type { PcrSelection } from './types.js';
import { selectedPcrs } from './types.js';

export const PCR_BANKS: readonly number[] = [ALG.SHA1, ALG.SHA256, ALG.SHA384];

/** PCRs the TPM lets locality 0 reset (PC Client: 16 for debug, 23 for applications). */
export const RESETTABLE_PCRS: ReadonlySet<number> = new Set([16, 23]);

export class PcrBanks {
  readonly banks = new Map<number, Uint8Array[]>();
  updateCounter = 0;

  constructor() {
    this.reset();
  }

  /** Startup(CLEAR): every PCR to its initial value. */
  reset(): void {
    for (const alg of PCR_BANKS) {
      const size = digestSize(alg);
      const values: Uint8Array[] = [];
      for (let i = 0; i < LIMITS.PCR_COUNT; i++) {
        values.push(new Uint8Array(size).fill(i >= 17 && i <= 22 ? 0xff : 0));
      }
      this.banks.set(alg, values);
    }
    this.updateCounter = 0;
  }

  /** Copies of the values, for Shutdown(STATE). */
  snapshot(): Map<number, Uint8Array[]> {
    return new Map([...this.banks].map(([alg, v]) => [alg, v.map((d) => d.slice())]));
  }

  restore(saved: Map<number, Uint8Array[]>, counter: number): void {
    for (const [alg, values] of saved) {
      if (this.banks.has(alg) && values.length === LIMITS.PCR_COUNT) {
        this.banks.set(
          alg,
          values.map((d) => d.slice()),
        );
      }
    }
    this.updateCounter = counter;
  }

  get(alg: number, index: number): Uint8Array | undefined {
    return this.banks.get(alg)?.[index];
  }

  /** PCR[i] = H(PCR[i] || digest) in the bank of `alg` (no-op for an unallocated bank). */
  extend(alg: number, index: number, digest: Uint8Array): void {
    const bank = this.banks.get(alg);
    if (bank === undefined) return;
    bank[index] = hash(alg, bank[index]!, digest);
  }

  resetPcr(index: number): void {
    for (const [alg, bank] of this.banks) bank[index] = new Uint8Array(digestSize(alg));
  }

  /** The values of a selection, bank by bank in list order, PCRs ascending (Part 1, 17.6). */
  values(selection: readonly PcrSelection[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const s of selection) {
      const bank = this.banks.get(s.hash);
      if (bank === undefined) continue;
      for (const i of selectedPcrs(s)) if (i < LIMITS.PCR_COUNT) out.push(bank[i]!);
    }
    return out;
  }

  /** H_alg of the concatenated values of a selection: the pcrDigest of quotes and PolicyPCR. */
  digest(alg: number, selection: readonly PcrSelection[]): Uint8Array {
    return hash(alg, ...this.values(selection));
  }
}
