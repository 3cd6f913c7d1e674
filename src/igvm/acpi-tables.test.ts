import { describe, expect, it } from 'vitest';
import {
  E820_ENTRY,
  E820_TYPE,
  FACS,
  FADT,
  FADT_F,
  MADT_ENTRY_HEADER,
  MADT_HEADER,
  MADT_INTERRUPT_OVERRIDE,
  MADT_IO_APIC,
  MADT_LOCAL_X2APIC,
  MADT_LOCAL_X2APIC_NMI,
  MADT_TYPE,
  RSDP,
  SDT_HEADER,
  acpiChecksum,
} from '../arch/index.js';
import {
  AcpiBuildError,
  buildAcpiTables,
  buildE820,
  encodeE820,
  type AcpiTables,
} from './acpi-tables.js';

const ascii = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Reads the tables back as Linux would, from the RSDP, through GPAs. */
function parse(t: AcpiTables) {
  const at = (gpa: number | bigint): number => {
    const off = Number(gpa) - t.baseGpa;
    expect(off >= 0 && off < t.bytes.length).toBe(true);
    return off;
  };
  const table = (gpa: number | bigint, signature: string) => {
    const off = at(gpa);
    expect(ascii(SDT_HEADER.get(t.bytes, 'signature', off))).toBe(signature);
    const length = SDT_HEADER.get(t.bytes, 'length', off);
    expect(off + length).toBeLessThanOrEqual(t.bytes.length);
    expect([signature, acpiChecksum(t.bytes, off, off + length)]).toEqual([signature, 0]);
    return { off, length };
  };
  const r = at(t.rsdpGpa);
  expect(ascii(RSDP.get(t.bytes, 'signature', r))).toBe('RSD PTR ');
  expect(RSDP.get(t.bytes, 'revision', r)).toBe(2);
  expect(RSDP.get(t.bytes, 'length', r)).toBe(36);
  expect(acpiChecksum(t.bytes, r, r + 20)).toBe(0);
  expect(acpiChecksum(t.bytes, r, r + 36)).toBe(0);
  const xsdt = table(RSDP.get(t.bytes, 'xsdtAddress', r), 'XSDT');
  const pointers: bigint[] = [];
  const view = new DataView(t.bytes.buffer, t.bytes.byteOffset);
  for (let p = xsdt.off + 36; p < xsdt.off + xsdt.length; p += 8) {
    pointers.push(view.getBigUint64(p, true));
  }
  const bySig = new Map(
    pointers.map((p) => [ascii(SDT_HEADER.get(t.bytes, 'signature', at(p))), p]),
  );
  const fadt = table(bySig.get('FACP')!, 'FACP');
  const madt = table(bySig.get('APIC')!, 'APIC');
  const dsdt = table(FADT.get(t.bytes, 'xDsdt', fadt.off), 'DSDT');
  const facs = at(FADT.get(t.bytes, 'xFirmwareCtrl', fadt.off));
  const entries: { type: number; off: number }[] = [];
  for (let p = madt.off + MADT_HEADER.size; p < madt.off + madt.length;) {
    const length = MADT_ENTRY_HEADER.get(t.bytes, 'length', p);
    expect(length).toBeGreaterThanOrEqual(2);
    entries.push({ type: MADT_ENTRY_HEADER.get(t.bytes, 'type', p), off: p });
    p += length;
    expect(p).toBeLessThanOrEqual(madt.off + madt.length);
  }
  return { xsdt, pointers, fadt, madt, dsdt, facs, entries };
}

describe('buildAcpiTables', () => {
  it.each([1, 4, 64])('builds tables for %i vCPUs that parse back with valid checksums', (n) => {
    const t = buildAcpiTables({ vcpuCount: n, baseGpa: 0xe_0000 });
    const p = parse(t);
    expect(t.bytes.length % 0x1000).toBe(0);
    expect(p.pointers.map(Number)).toEqual([t.fadtGpa, t.madtGpa]);
    expect(p.xsdt.length).toBe(36 + 2 * 8);

    // FADT: revision 6, full length, not hardware-reduced, no SMM, legacy PM1a blocks.
    expect(p.fadt.length).toBe(276);
    expect(SDT_HEADER.get(t.bytes, 'revision', p.fadt.off)).toBe(6);
    const fadt = FADT.on(t.bytes, p.fadt.off);
    expect(fadt.get('flags') & FADT_F.HW_REDUCED_ACPI).toBe(0);
    expect(fadt.get('smiCmd')).toBe(0);
    expect(fadt.get('dsdt')).toBe(t.dsdtGpa);
    expect(fadt.get('firmwareCtrl')).toBe(0);
    expect([fadt.get('pm1aEvtBlk'), fadt.get('pm1EvtLen')]).toEqual([0x600, 4]);
    expect([fadt.get('pm1aCntBlk'), fadt.get('pm1CntLen')]).toEqual([0x604, 2]);
    expect(fadt.get('pmTmrBlk')).toBe(0);
    expect(fadt.get('sciInt')).toBe(9);

    // FACS and DSDT.
    expect(p.facs % 64).toBe(0);
    expect(ascii(FACS.get(t.bytes, 'signature', p.facs))).toBe('FACS');
    expect(FACS.get(t.bytes, 'length', p.facs)).toBe(64);
    // The DSDT holds Name (\_S5, Package () {5, 5, 0, 0}), the SLP_TYP the host's PM1a acts on.
    expect(p.dsdt.length).toBe(36 + 14);
    expect([...t.bytes.subarray(p.dsdt.off + 36, p.dsdt.off + 50)]).toEqual([
      0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0x00, 0x00,
    ]);

    // MADT: LAPIC at 0xFEE00000, no PCAT_COMPAT, n x2APICs, one IOAPIC, two overrides, one NMI.
    expect(MADT_HEADER.get(t.bytes, 'localApicAddress', p.madt.off)).toBe(0xfee0_0000);
    expect(MADT_HEADER.get(t.bytes, 'flags', p.madt.off)).toBe(0);
    const ofType = (type: number) => p.entries.filter((e) => e.type === type);
    const x2apics = ofType(MADT_TYPE.LOCAL_X2APIC).map((e) => MADT_LOCAL_X2APIC.on(t.bytes, e.off));
    expect(x2apics.map((e) => e.get('x2apicId'))).toEqual([...Array(n).keys()]);
    expect(x2apics.every((e) => e.get('flags') === 1 && e.get('length') === 16)).toBe(true);
    const ioapics = ofType(MADT_TYPE.IO_APIC).map((e) => MADT_IO_APIC.on(t.bytes, e.off));
    expect(ioapics.map((e) => [e.get('ioApicId'), e.get('address'), e.get('gsiBase')])).toEqual([
      [0, 0xfec0_0000, 0],
    ]);
    const isos = ofType(MADT_TYPE.INTERRUPT_SOURCE_OVERRIDE).map((e) =>
      MADT_INTERRUPT_OVERRIDE.on(t.bytes, e.off),
    );
    expect(isos.map((e) => [e.get('bus'), e.get('source'), e.get('gsi'), e.get('flags')])).toEqual([
      [0, 0, 2, 0],
      [0, 9, 9, 0xd],
    ]);
    const nmis = ofType(MADT_TYPE.LOCAL_X2APIC_NMI).map((e) =>
      MADT_LOCAL_X2APIC_NMI.on(t.bytes, e.off),
    );
    expect(nmis.map((e) => [e.get('processorUid'), e.get('lint')])).toEqual([[0xffff_ffff, 1]]);
    expect(p.entries.length).toBe(n + 1 + 2 + 1);
  });

  it('points at the GPAs of wherever it is placed, above 4 GiB too', () => {
    const base = 0x1_2345_6000;
    const t = buildAcpiTables({ vcpuCount: 2, baseGpa: base });
    const p = parse(t);
    expect(t.rsdpGpa).toBe(base);
    expect(FADT.get(t.bytes, 'dsdt', p.fadt.off)).toBe(0);
    expect(Number(FADT.get(t.bytes, 'xDsdt', p.fadt.off))).toBe(t.dsdtGpa);
    const low = buildAcpiTables({ vcpuCount: 2, baseGpa: 0x8000 });
    expect(low.bytes.slice(0x100)).not.toEqual(t.bytes.slice(0x100));
  });

  it('takes the IOAPIC, overrides and a PM timer from the options', () => {
    const t = buildAcpiTables({
      vcpuCount: 1,
      baseGpa: 0,
      ioapic: { id: 1, address: 0xfec0_1000, gsiBase: 24 },
      overrides: [{ source: 4, gsi: 28, flags: 0xf }],
      pmTimerPort: 0x608,
    });
    const p = parse(t);
    expect(FADT.get(t.bytes, 'pmTmrBlk', p.fadt.off)).toBe(0x608);
    expect(FADT.get(t.bytes, 'pmTmrLen', p.fadt.off)).toBe(4);
    const iso = p.entries.find((e) => e.type === MADT_TYPE.INTERRUPT_SOURCE_OVERRIDE)!;
    expect(MADT_INTERRUPT_OVERRIDE.get(t.bytes, 'gsi', iso.off)).toBe(28);
    const io = p.entries.find((e) => e.type === MADT_TYPE.IO_APIC)!;
    expect(MADT_IO_APIC.get(t.bytes, 'gsiBase', io.off)).toBe(24);
  });

  it('refuses impossible requests with AcpiBuildError', () => {
    expect(() => buildAcpiTables({ vcpuCount: 0, baseGpa: 0 })).toThrow(AcpiBuildError);
    expect(() => buildAcpiTables({ vcpuCount: 1, baseGpa: 0x10 })).toThrow(AcpiBuildError);
    expect(() =>
      buildAcpiTables({ vcpuCount: 1, baseGpa: 0, overrides: [{ source: 16, gsi: 0, flags: 0 }] }),
    ).toThrow(AcpiBuildError);
  });
});

describe('buildE820', () => {
  const MiB = 0x10_0000;

  it('cuts reserved ranges out of RAM, keeps their type and merges neighbours', () => {
    const map = buildE820(
      [
        { base: 0, size: 0xa_0000 },
        { base: MiB, size: 255 * MiB },
        { base: 256 * MiB, size: 256 * MiB },
      ],
      [
        { base: 0xe_0000, size: 0x1000, type: E820_TYPE.ACPI },
        { base: 0x80_0000, size: 0x1000 },
        { base: 0x80_1000, size: 0x1000 },
        { base: 0xfec0_0000, size: 0x1000 },
      ],
    );
    expect(map).toEqual([
      { addr: 0, size: 0xa_0000, type: E820_TYPE.RAM },
      { addr: 0xe_0000, size: 0x1000, type: E820_TYPE.ACPI },
      { addr: MiB, size: 0x70_0000, type: E820_TYPE.RAM },
      { addr: 0x80_0000, size: 0x2000, type: E820_TYPE.RESERVED },
      { addr: 0x80_2000, size: 512 * MiB - 0x80_2000, type: E820_TYPE.RAM },
      { addr: 0xfec0_0000, size: 0x1000, type: E820_TYPE.RESERVED },
    ]);
  });

  it('encodes packed 20-byte boot_e820_entry records', () => {
    const map = buildE820([{ base: 0x1_0000_0000, size: 0x2000 }]);
    const bytes = encodeE820(map);
    expect(bytes.length).toBe(20);
    expect(E820_ENTRY.get(bytes, 'addr')).toBe(0x1_0000_0000n);
    expect(E820_ENTRY.get(bytes, 'size')).toBe(0x2000n);
    expect(E820_ENTRY.get(bytes, 'type')).toBe(1);
  });

  it('refuses conflicting reservations, empty ranges and more than 128 entries', () => {
    const ram = [{ base: 0, size: 0x100_0000 }];
    expect(() =>
      buildE820(ram, [
        { base: 0x1000, size: 0x2000, type: E820_TYPE.ACPI },
        { base: 0x2000, size: 0x1000 },
      ]),
    ).toThrow(AcpiBuildError);
    expect(() => buildE820([{ base: 0, size: 0 }])).toThrow(AcpiBuildError);
    const holes = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ base: 0x2000 * i + 0x1000, size: 0x1000 }));
    // n holes: n reserved entries, n RAM entries before them and one after.
    expect(buildE820(ram, holes(63))).toHaveLength(127);
    expect(() => buildE820(ram, holes(64))).toThrow(AcpiBuildError);
  });
});
