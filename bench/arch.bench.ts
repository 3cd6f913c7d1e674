import { ATTESTATION_REPORT } from '../src/arch/index.js';
import { type Bench, nsPerOp, sink } from './harness.js';

// Field access through a bound StructView against a hand-written DataView read of the same
// field: the cost of declaring layouts as data instead of scattering offsets.
const bytes = new Uint8Array(ATTESTATION_REPORT.size);
const view = ATTESTATION_REPORT.on(bytes);
const dv = new DataView(bytes.buffer);

export const benches: Bench[] = [
  {
    name: 'arch.struct_get_vs_dataview',
    run() {
      const layout = nsPerOp(() => {
        sink.value = view.get('reportedTcb');
      });
      const direct = nsPerOp(() => {
        sink.value = dv.getBigUint64(0x180, true);
      });
      return layout / direct;
    },
  },
];
