// The firmware area of the launch image (boot_params with the e820 map and the RSDP pointer, the
// ACPI tables) read back, as Linux reads it, out of the guest memory of a launched CVM; and the
// launch digest `svsm measure` predicts for the image's IGVM file still equals the firmware's.
import { describe, expect, it } from 'vitest';
import {
  acpiChecksum,
  BOOT_PARAMS,
  E820_ENTRY,
  E820_TYPE,
  FADT,
  MADT_ENTRY_HEADER,
  MADT_HEADER,
  MADT_IO_APIC,
  MADT_LOCAL_X2APIC,
  MADT_TYPE,
  PAGE_TYPE,
  RSDP,
  SDT_HEADER,
  RMP_ASSIGNED,
} from '../src/arch/index.js';
import { DEFAULT_SVSM_SIZE, measure } from '../src/igvm/index.js';
import { BOOT_PARAMS_GPA, FIRMWARE_AREA_BASE } from '../src/igvm/firmware-tables.js';
import { buildSvsmImage } from '../src/igvm/svsm-image.js';
import { createTestCvm, GUEST_CAA_GPA, GUEST_SECRETS_GPA } from './support/cvm.js';

const ascii = (b: Uint8Array): string => new TextDecoder().decode(b);

interface E820 {
  addr: number;
  size: number;
  type: number;
}

/** What Linux learns from guest memory: the e820 map and the CPUs and IOAPIC of the MADT. */
function readFirmware(mem: Uint8Array, bootParamsGpa: number) {
  const bp = mem.subarray(bootParamsGpa, bootParamsGpa + 0x1000);
  const n = BOOT_PARAMS.get(bp, 'e820Entries');
  const table = BOOT_PARAMS.get(bp, 'e820Table');
  const e820: E820[] = Array.from({ length: n }, (_, i) => ({
    addr: Number(E820_ENTRY.get(table, 'addr', i * 20)),
    size: Number(E820_ENTRY.get(table, 'size', i * 20)),
    type: E820_ENTRY.get(table, 'type', i * 20),
  }));
  const rsdp = Number(BOOT_PARAMS.get(bp, 'acpiRsdpAddr'));
  expect(ascii(RSDP.get(mem, 'signature', rsdp))).toBe('RSD PTR ');
  expect(acpiChecksum(mem, rsdp, rsdp + 20)).toBe(0);
  expect(acpiChecksum(mem, rsdp, rsdp + 36)).toBe(0);
  const sdt = (gpa: number, sig: string): { at: number; length: number } => {
    expect(ascii(SDT_HEADER.get(mem, 'signature', gpa))).toBe(sig);
    const length = SDT_HEADER.get(mem, 'length', gpa);
    expect(acpiChecksum(mem, gpa, gpa + length)).toBe(0);
    return { at: gpa, length };
  };
  const xsdt = sdt(Number(RSDP.get(mem, 'xsdtAddress', rsdp)), 'XSDT');
  const view = new DataView(mem.buffer, mem.byteOffset);
  const tables = new Map<string, number>();
  for (let p = xsdt.at + 36; p < xsdt.at + xsdt.length; p += 8) {
    const gpa = Number(view.getBigUint64(p, true));
    tables.set(ascii(SDT_HEADER.get(mem, 'signature', gpa)), gpa);
  }
  const fadt = sdt(tables.get('FACP')!, 'FACP');
  sdt(Number(FADT.get(mem, 'xDsdt', fadt.at)), 'DSDT');
  const madt = sdt(tables.get('APIC')!, 'APIC');
  const x2apicIds: number[] = [];
  const ioapics: number[] = [];
  for (let p = madt.at + MADT_HEADER.size; p < madt.at + madt.length;) {
    const type = MADT_ENTRY_HEADER.get(mem, 'type', p);
    const length = MADT_ENTRY_HEADER.get(mem, 'length', p);
    expect(length).toBeGreaterThan(0);
    if (type === MADT_TYPE.LOCAL_X2APIC) x2apicIds.push(MADT_LOCAL_X2APIC.get(mem, 'x2apicId', p));
    if (type === MADT_TYPE.IO_APIC) ioapics.push(MADT_IO_APIC.get(mem, 'address', p));
    p += length;
  }
  const tableSpan = [rsdp, ...tables.values(), fadt.at, madt.at];
  return { e820, rsdp, x2apicIds, ioapics, tableSpan };
}

/** The e820 type at `gpa`, or undefined when no entry covers it. */
const typeAt = (e820: E820[], gpa: number): number | undefined =>
  e820.find((e) => e.addr <= gpa && gpa < e.addr + e.size)?.type;

describe('firmware tables in the launch image', () => {
  for (const vcpus of [1, 3, 8]) {
    it(`describe ${vcpus} vCPU(s), RAM, the SVSM and themselves to the guest`, () => {
      const memoryBytes = 64 * 1024 * 1024;
      const svsmBase = 0x200_0000;
      const cvm = createTestCvm(function* () {}, { vcpus, memoryBytes, svsmBase });
      const mem = cvm.machine.physicalMemory().bytes;
      const fw = readFirmware(mem, BOOT_PARAMS_GPA);

      expect(fw.x2apicIds).toEqual(cvm.machine.vcpus.map((v) => v.apicId));
      expect(fw.ioapics).toEqual([0xfec0_0000]);

      // Sorted, disjoint, and every byte of memory accounted for.
      for (let i = 1; i < fw.e820.length; i++)
        expect(fw.e820[i]!.addr).toBeGreaterThanOrEqual(
          fw.e820[i - 1]!.addr + fw.e820[i - 1]!.size,
        );
      expect(fw.e820.reduce((s, e) => s + e.size, 0)).toBe(memoryBytes);
      expect(typeAt(fw.e820, 0)).toBe(E820_TYPE.RAM);
      expect(typeAt(fw.e820, 0x9_f000)).toBe(E820_TYPE.RAM);
      expect(typeAt(fw.e820, 0x100_0000)).toBe(E820_TYPE.RAM);
      for (const gpa of [GUEST_SECRETS_GPA, GUEST_CAA_GPA, BOOT_PARAMS_GPA])
        expect(typeAt(fw.e820, gpa)).toBe(E820_TYPE.RESERVED);
      for (const gpa of fw.tableSpan) expect(typeAt(fw.e820, gpa)).toBe(E820_TYPE.ACPI);
      for (const gpa of [svsmBase, svsmBase + DEFAULT_SVSM_SIZE - 1, memoryBytes - 1])
        expect(typeAt(fw.e820, gpa)).toBe(E820_TYPE.RESERVED);
      expect(typeAt(fw.e820, svsmBase + DEFAULT_SVSM_SIZE)).toBe(E820_TYPE.RAM);

      // Launched, so measured and guest-owned: the host cannot rewrite them after the fact.
      const rmp = cvm.machine.rmp;
      for (const gpa of [BOOT_PARAMS_GPA, fw.rsdp, ...fw.tableSpan]) {
        expect(rmp.entries[Math.floor(gpa / 0x1000)]! & RMP_ASSIGNED).not.toBe(0);
        expect(cvm.machine.hypervisorMemory.isShared(gpa)).toBe(false);
      }
    });
  }

  it('are NORMAL (measured) pages of the plan, and svsm measure still predicts the digest', () => {
    const cvm = createTestCvm(function* () {}, { vcpus: 2, viaIgvm: true });
    expect(measure(cvm.igvmFile!).digest).toEqual(cvm.measurement);
    // The digest covers the tables: another vCPU count (another MADT) gives another digest.
    const other = createTestCvm(function* () {}, { vcpus: 3, viaIgvm: true });
    expect(measure(other.igvmFile!).digest).toEqual(other.measurement);
    expect(other.measurement).not.toEqual(cvm.measurement);
  });

  it('refuses a layout whose SVSM region or guest pages collide with the firmware area', () => {
    const base = {
      code: 'export {}',
      cpuidPage: new Uint8Array(0x1000),
      memorySize: 64 * 1024 * 1024,
      guestCaaGpa: GUEST_CAA_GPA,
      guestSecretsGpa: GUEST_SECRETS_GPA,
    };
    expect(() =>
      buildSvsmImage({
        ...base,
        svsmBase: 0,
        guestCaaGpa: 0x200_0000,
        guestSecretsGpa: 0x200_1000,
      }),
    ).toThrow(/overlaps the firmware area/);
    expect(() =>
      buildSvsmImage({ ...base, svsmBase: 0x200_0000, guestCaaGpa: FIRMWARE_AREA_BASE + 0x3000 }),
    ).toThrow(/lies in the firmware area/);
    const plan = buildSvsmImage({ ...base, svsmBase: 0x200_0000, vcpuCount: 4 });
    const firmwarePages = plan.pages.filter(
      (p) => p.gpa >= FIRMWARE_AREA_BASE && p.gpa < 0x10_0000,
    );
    expect(firmwarePages.length).toBeGreaterThanOrEqual(2);
    expect(firmwarePages.every((p) => p.type === PAGE_TYPE.NORMAL)).toBe(true);
    expect(plan.firmware.e820.length).toBe(
      BOOT_PARAMS.get(plan.pages.find((p) => p.gpa === BOOT_PARAMS_GPA)!.data!, 'e820Entries'),
    );
  });
});
