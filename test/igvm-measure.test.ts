// The relying party's calculator (src/igvm/measure.ts) against the simulated AMD secure processor
// (src/hw/asp): an IGVM file is written, read back and loaded the way QEMU/KVM loads one
// (reference/igvm.md section 5; the loader below is written for this test, apart from measure),
// every page goes through SNP_LAUNCH_UPDATE, and the MEASUREMENT the ASP freezes at
// SNP_LAUNCH_FINISH must equal what measure() predicts for the file.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildCpuidPage, PAGE_TYPE, type PageType } from '../src/arch/index.js';
import { IGVM_PAGE_DATA_TYPE, IGVM_PLATFORM_TYPE } from '../src/arch/igvm.js';
import type { ChipIdentity } from '../src/hw/asp/chip-identity.js';
import { SecureProcessor } from '../src/hw/asp/secure-processor.js';
import { loadTestIdentity } from '../src/hw/asp/test-identity.fixture.js';
import { MIN_MEMORY_BYTES, PhysicalMemory } from '../src/hw/memory.js';
import { defaultSnpCpuidEntries } from '../src/hw/platform-cpuid.js';
import { seededRandom } from '../src/hw/random.js';
import { Rmp } from '../src/hw/rmp.js';
import {
  type IgvmDirective,
  type IgvmModel,
  type IgvmVpContext,
  measure,
  readIgvm,
  writeIgvm,
} from '../src/igvm/index.js';
import {
  filledPage,
  flags,
  page,
  PAGE,
  smallSnpModel,
  snpVmsa,
  SNP_MASK,
} from '../src/igvm/model.fixture.js';

let identity: ChipIdentity;
beforeAll(() => {
  identity = loadTestIdentity();
}, 60_000);

/** Where this loader puts the VMSA page in memory; KVM measures it at 0xFFFFFFFFF000 anyway. */
const VMSA_HOST_GPA = MIN_MEMORY_BYTES - PAGE;

/** Loads an IGVM file into a fresh machine through the ASP and returns the ASP's MEASUREMENT. */
function launchThroughAsp(file: Uint8Array): Uint8Array {
  const model = readIgvm(file);
  const snp = model.platforms.find(
    (p) => p.kind === 'supportedPlatform' && p.platformType === IGVM_PLATFORM_TYPE.SEV_SNP,
  );
  if (snp === undefined || snp.kind !== 'supportedPlatform') throw new Error('no SNP platform');
  const mask = snp.compatibilityMask;
  const memory = new PhysicalMemory(MIN_MEMORY_BYTES);
  const rmp = new Rmp(memory.pageCount);
  const asp = new SecureProcessor({ identity, memory, rmp, random: seededRandom('igvm loader') });
  const policy = model.initialization.find(
    (h) => h.kind === 'guestPolicy' && (h.compatibilityMask & mask) !== 0,
  );
  expect(asp.launchStart(policy?.kind === 'guestPolicy' ? policy.policy : 0n).status).toBe(0);

  const update = (gpa: number, type: PageType): void => {
    const r = asp.launchUpdate(gpa, type);
    expect(r, `SNP_LAUNCH_UPDATE ${type} at 0x${gpa.toString(16)}`).toEqual({ status: 0 });
  };
  const areas = new Map<number, Uint8Array>();
  let bsp: IgvmVpContext | null = null;
  for (const d of model.directives) {
    if (d.kind === 'parameterArea') {
      // QEMU ignores the file's initial data and fills the area itself.
      areas.set(d.parameterAreaIndex, new Uint8Array(d.numberOfBytes));
    } else if (d.kind === 'parameter' && d.parameterType === 0x307) {
      const area = areas.get(d.parameterAreaIndex)!;
      new DataView(area.buffer).setUint32(d.byteOffset, 1, true);
    } else if (d.kind === 'parameterInsert' && (d.compatibilityMask & mask) !== 0) {
      const area = areas.get(d.parameterAreaIndex)!;
      memory.write(d.gpa, area);
      for (let off = 0; off < area.length; off += PAGE) update(d.gpa + off, PAGE_TYPE.UNMEASURED);
    } else if (d.kind === 'pageData' && (d.compatibilityMask & mask) !== 0) {
      memory.fill(d.gpa, PAGE, 0);
      if (d.data !== null) memory.write(d.gpa, d.data);
      if (d.dataType === IGVM_PAGE_DATA_TYPE.SECRETS) {
        update(d.gpa, PAGE_TYPE.SECRETS);
      } else if (d.dataType !== IGVM_PAGE_DATA_TYPE.NORMAL) {
        // KVM replaces the file's CPUID page by the table the firmware checks.
        memory.write(d.gpa, buildCpuidPage(defaultSnpCpuidEntries(identity.product, 1)));
        update(d.gpa, PAGE_TYPE.CPUID);
      } else {
        update(d.gpa, d.flags.unmeasured ? PAGE_TYPE.UNMEASURED : PAGE_TYPE.NORMAL);
      }
    } else if (d.kind === 'vpContext' && d.compatibilityMask === mask && bsp === null) {
      bsp = d;
    }
  }
  // KVM measures the VMSA when the launch finishes, after every queued page.
  if (bsp !== null) {
    memory.write(VMSA_HOST_GPA, bsp.context);
    update(VMSA_HOST_GPA, PAGE_TYPE.VMSA);
  }
  expect(asp.launchFinish().status).toBe(0);
  return asp.measurement;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('measure(file) predicts the MEASUREMENT of the simulated ASP', () => {
  it('for the small SNP image (code, zero, unmeasured, secrets, CPUID, insert, VMSA)', () => {
    const file = writeIgvm(smallSnpModel());
    expect(hex(launchThroughAsp(file))).toBe(hex(measure(file).digest));
  });

  it('for a file that is only a VMSA', () => {
    const base = smallSnpModel();
    const file = writeIgvm({ ...base, directives: base.directives.slice(-1) });
    expect(hex(launchThroughAsp(file))).toBe(hex(measure(file).digest));
  });

  it('and a different page changes both alike', () => {
    const base = smallSnpModel();
    const changed: IgvmModel = {
      ...base,
      directives: base.directives.map((d) =>
        d.kind === 'pageData' && d.gpa === 0x10000 ? { ...d, data: filledPage(0x91) } : d,
      ),
    };
    const a = writeIgvm(base);
    const b = writeIgvm(changed);
    expect(hex(measure(a).digest)).not.toBe(hex(measure(b).digest));
    expect(hex(launchThroughAsp(b))).toBe(hex(measure(b).digest));
  });

  it('for random SNP images laid out as igvmbuilder does', () => {
    const pageKind = fc.constantFrom('data', 'zero', 'unmeasured', 'secrets', 'cpuid', 'shared');
    const image = fc.record({
      pages: fc.uniqueArray(
        fc.record({
          pfn: fc.integer({ min: 0x10, max: 0xeff }),
          kind: pageKind,
          fill: fc.nat(255),
        }),
        { selector: (p) => p.pfn, maxLength: 40 },
      ),
      inserts: fc.uniqueArray(fc.integer({ min: 0xf00, max: 0xf7f }), { maxLength: 3 }),
      rip: fc.bigInt({ min: 0n, max: 0xffff_ffffn }),
    });
    fc.assert(
      fc.property(image, ({ pages, inserts, rip }) => {
        const base = smallSnpModel();
        const directives: IgvmDirective[] = [];
        inserts.forEach((pfn, i) => {
          directives.push(
            {
              kind: 'parameterArea',
              numberOfBytes: PAGE,
              parameterAreaIndex: i,
              initialData: null,
            },
            { kind: 'parameter', parameterType: 0x307, parameterAreaIndex: i, byteOffset: 0 },
          );
        });
        inserts.forEach((pfn, i) =>
          directives.push({
            kind: 'parameterInsert',
            gpa: pfn * PAGE,
            compatibilityMask: SNP_MASK,
            parameterAreaIndex: i,
          }),
        );
        for (const p of [...pages].sort((a, b) => a.pfn - b.pfn)) {
          const gpa = p.pfn * PAGE;
          const data = filledPage(p.fill);
          directives.push(
            p.kind === 'data'
              ? page(gpa, data)
              : p.kind === 'zero'
                ? page(gpa, null)
                : p.kind === 'unmeasured'
                  ? { ...page(gpa, data), flags: flags({ unmeasured: true }) }
                  : p.kind === 'shared'
                    ? { ...page(gpa, data), flags: flags({ shared: true }) }
                    : p.kind === 'secrets'
                      ? page(gpa, null, IGVM_PAGE_DATA_TYPE.SECRETS)
                      : page(gpa, null, IGVM_PAGE_DATA_TYPE.CPUID_DATA),
          );
        }
        directives.push({
          kind: 'vpContext',
          gpa: 0xffff_ffff_f000,
          compatibilityMask: SNP_MASK,
          vpIndex: 0,
          context: snpVmsa(rip),
        });
        const file = writeIgvm({ ...base, directives });
        expect(hex(launchThroughAsp(file))).toBe(hex(measure(file).digest));
      }),
      { numRuns: 25 },
    );
  });
});
