// PCR commands (Part 3, section 22): PCR_Extend, PCR_Event, PCR_Read, PCR_Reset.

import { CC, LIMITS, RC } from '../constants.js';
import { digestSize, hash } from '../crypto.js';
import { fail } from '../errors.js';
import { b2, params, type Reader } from '../marshal.js';
import { PCR_BANKS, RESETTABLE_PCRS } from '../pcr.js';
import {
  readHashAlg,
  readPcrSelectionList,
  selectedPcrs,
  writePcrSelectionList,
  type PcrSelection,
} from '../types.js';
import { command, type CommandDef } from '../command.js';

interface Digest {
  alg: number;
  digest: Uint8Array;
}

/** TPML_DIGEST_VALUES: count, then TPMT_HA (hashAlg, digest of that algorithm's size). */
function readDigestValues(r: Reader): Digest[] {
  const count = r.u32();
  if (count > 16) fail(RC.SIZE);
  const out: Digest[] = [];
  for (let i = 0; i < count; i++) {
    const alg = readHashAlg(r, false);
    out.push({ alg, digest: r.bytes(digestSize(alg)) });
  }
  return out;
}

/** PCRs 0-15 may be extended from any locality; 16 and 23 too; 17-22 need locality 3 or 4. */
function checkExtendLocality(pcr: number, locality: number): void {
  if (pcr >= 17 && pcr <= 22 && locality < 3) fail(RC.LOCALITY);
}

export const pcrCommands: CommandDef[] = [
  command({
    cc: CC.PCR_Extend,
    name: 'PCR_Extend',
    handles: [{ kind: 'pcrOrNull', auth: 'USER' }],
    parse: (r) => params<[Digest[]]>(r, readDigestValues),
    run(m, [pcr], [digests], _out, ctx) {
      if (pcr!.kind !== 'pcr') return;
      checkExtendLocality(pcr!.handle, ctx.locality);
      for (const d of digests) m.pcrs.extend(d.alg, pcr!.handle, d.digest);
      m.pcrs.updateCounter++;
    },
  }),
  command({
    cc: CC.PCR_Event,
    name: 'PCR_Event',
    handles: [{ kind: 'pcrOrNull', auth: 'USER' }],
    decrypt: true,
    parse: (r) => params<[Uint8Array]>(r, b2(LIMITS.MAX_BUFFER)),
    run(m, [pcr], [data], out, ctx) {
      if (pcr!.kind === 'pcr') checkExtendLocality(pcr!.handle, ctx.locality);
      const digests = PCR_BANKS.map((alg) => ({ alg, digest: hash(alg, data) }));
      if (pcr!.kind === 'pcr') {
        for (const d of digests) m.pcrs.extend(d.alg, pcr!.handle, d.digest);
        m.pcrs.updateCounter++;
      }
      out.u32(digests.length);
      for (const d of digests) out.u16(d.alg).bytes(d.digest);
    },
  }),
  command({
    cc: CC.PCR_Read,
    name: 'PCR_Read',
    handles: [],
    parse: (r) => params<[PcrSelection[]]>(r, readPcrSelectionList),
    run(m, _h, [selection], out) {
      // At most 8 digests per call (TPML_DIGEST); selectionOut shows exactly those returned.
      const outSel: PcrSelection[] = [];
      const values: Uint8Array[] = [];
      for (const s of selection) {
        const bank = m.pcrs.banks.get(s.hash);
        const sel = new Uint8Array(s.select.length);
        if (bank !== undefined) {
          for (const i of selectedPcrs(s)) {
            if (i >= LIMITS.PCR_COUNT || values.length === 8) continue;
            sel[i >> 3]! |= 1 << (i & 7);
            values.push(bank[i]!);
          }
        }
        outSel.push({ hash: s.hash, select: sel });
      }
      out.u32(m.pcrs.updateCounter);
      writePcrSelectionList(out, outSel);
      out.u32(values.length);
      for (const v of values) out.b2(v);
    },
  }),
  command({
    cc: CC.PCR_Reset,
    name: 'PCR_Reset',
    handles: [{ kind: 'pcr', auth: 'USER' }],
    parse: (r) => params<[]>(r),
    run(m, [pcr], _p, _out, ctx) {
      const i = pcr!.handle;
      if (!RESETTABLE_PCRS.has(i) && !(ctx.locality >= 3 && i >= 17 && i <= 22)) fail(RC.LOCALITY);
      m.pcrs.resetPcr(i);
      m.pcrs.updateCounter++;
    },
  }),
];
