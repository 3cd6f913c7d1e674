import { describe, expect, it } from 'vitest';
import { expectSpecLayout } from '../../test/support/spec-layout.js';
import {
  acpiChecksum,
  acpiChecksumByte,
  acpiName,
  E820_ENTRY,
  E820_TYPE,
  FACS,
  FADT,
  FADT_F,
  GAS,
  MADT_HEADER,
  MADT_INTERRUPT_OVERRIDE,
  MADT_IO_APIC,
  MADT_LOCAL_APIC,
  MADT_LOCAL_APIC_NMI,
  MADT_LOCAL_X2APIC,
  MADT_LOCAL_X2APIC_NMI,
  MADT_TYPE,
  MPS_INTI,
  RSDP,
  SDT_HEADER,
} from './acpi.js';

// Tables typed from ACPI 6.5 chapter 5 and Linux `actbl*.h` / `bootparam.h`, independently of
// acpi.ts.
const SDT = {
  signature: [0, 4],
  length: [4, 4],
  revision: [8, 1],
  checksum: [9, 1],
  oemId: [10, 6],
  oemTableId: [16, 8],
  oemRevision: [24, 4],
  creatorId: [28, 4],
  creatorRevision: [32, 4],
} as const satisfies Record<string, readonly [number, number]>;

function gasAt<P extends string>(
  prefix: P,
  at: number,
): Record<
  `${P}.${'spaceId' | 'bitWidth' | 'bitOffset' | 'accessSize' | 'address'}`,
  [number, number]
> {
  return {
    [`${prefix}.spaceId`]: [at, 1],
    [`${prefix}.bitWidth`]: [at + 1, 1],
    [`${prefix}.bitOffset`]: [at + 2, 1],
    [`${prefix}.accessSize`]: [at + 3, 1],
    [`${prefix}.address`]: [at + 4, 8],
  } as Record<
    `${P}.${'spaceId' | 'bitWidth' | 'bitOffset' | 'accessSize' | 'address'}`,
    [number, number]
  >;
}

type SdtKey = keyof typeof SDT & string;
function headerAt(): Record<`header.${SdtKey}`, readonly [number, number]> {
  const out: Record<string, readonly [number, number]> = {};
  for (const [k, v] of Object.entries(SDT)) out[`header.${k}`] = v;
  return out as Record<`header.${SdtKey}`, readonly [number, number]>;
}

describe('RSDP 2.0', () => {
  it('is 36 bytes with every field at its ACPI 5.2.5.3 offset', () => {
    expectSpecLayout(RSDP, 36, {
      signature: [0, 8],
      checksum: [8, 1],
      oemId: [9, 6],
      revision: [15, 1],
      rsdtAddress: [16, 4],
      length: [20, 4],
      xsdtAddress: [24, 8],
      extendedChecksum: [32, 1],
      reserved: [33, 3],
    });
  });
});

describe('system description table header', () => {
  it('is 36 bytes (ACPI 5.2.6)', () => {
    expectSpecLayout(SDT_HEADER, 36, {
      signature: [0, 4],
      length: [4, 4],
      revision: [8, 1],
      checksum: [9, 1],
      oemId: [10, 6],
      oemTableId: [16, 8],
      oemRevision: [24, 4],
      creatorId: [28, 4],
      creatorRevision: [32, 4],
    });
  });
});

describe('generic address structure', () => {
  it('is 12 bytes (ACPI 5.2.3.2)', () => {
    expectSpecLayout(GAS, 12, {
      spaceId: [0, 1],
      bitWidth: [1, 1],
      bitOffset: [2, 1],
      accessSize: [3, 1],
      address: [4, 8],
    });
  });
});

describe('FADT revision 6', () => {
  it('is 276 (0x114) bytes with every field at its ACPI 5.2.9 offset', () => {
    expectSpecLayout(FADT, 0x114, {
      ...headerAt(),
      firmwareCtrl: [36, 4],
      dsdt: [40, 4],
      reserved0: [44, 1],
      preferredPmProfile: [45, 1],
      sciInt: [46, 2],
      smiCmd: [48, 4],
      acpiEnable: [52, 1],
      acpiDisable: [53, 1],
      s4biosReq: [54, 1],
      pstateCnt: [55, 1],
      pm1aEvtBlk: [56, 4],
      pm1bEvtBlk: [60, 4],
      pm1aCntBlk: [64, 4],
      pm1bCntBlk: [68, 4],
      pm2CntBlk: [72, 4],
      pmTmrBlk: [76, 4],
      gpe0Blk: [80, 4],
      gpe1Blk: [84, 4],
      pm1EvtLen: [88, 1],
      pm1CntLen: [89, 1],
      pm2CntLen: [90, 1],
      pmTmrLen: [91, 1],
      gpe0BlkLen: [92, 1],
      gpe1BlkLen: [93, 1],
      gpe1Base: [94, 1],
      cstCnt: [95, 1],
      pLvl2Lat: [96, 2],
      pLvl3Lat: [98, 2],
      flushSize: [100, 2],
      flushStride: [102, 2],
      dutyOffset: [104, 1],
      dutyWidth: [105, 1],
      dayAlrm: [106, 1],
      monAlrm: [107, 1],
      century: [108, 1],
      iapcBootArch: [109, 2],
      reserved1: [111, 1],
      flags: [112, 4],
      ...gasAt('resetReg', 116),
      resetValue: [128, 1],
      armBootArch: [129, 2],
      minorVersion: [131, 1],
      xFirmwareCtrl: [132, 8],
      xDsdt: [140, 8],
      ...gasAt('xPm1aEvtBlk', 148),
      ...gasAt('xPm1bEvtBlk', 160),
      ...gasAt('xPm1aCntBlk', 172),
      ...gasAt('xPm1bCntBlk', 184),
      ...gasAt('xPm2CntBlk', 196),
      ...gasAt('xPmTmrBlk', 208),
      ...gasAt('xGpe0Blk', 220),
      ...gasAt('xGpe1Blk', 232),
      ...gasAt('sleepControlReg', 244),
      ...gasAt('sleepStatusReg', 256),
      hypervisorVendorId: [268, 8],
    });
  });

  it('has HW_REDUCED_ACPI at bit 20 of the flags', () => {
    expect(FADT_F.HW_REDUCED_ACPI).toBe(0x10_0000);
  });
});

describe('FACS', () => {
  it('is 64 bytes (ACPI 5.2.10)', () => {
    expectSpecLayout(FACS, 64, {
      signature: [0, 4],
      length: [4, 4],
      hardwareSignature: [8, 4],
      firmwareWakingVector: [12, 4],
      globalLock: [16, 4],
      flags: [20, 4],
      xFirmwareWakingVector: [24, 8],
      version: [32, 1],
      reserved0: [33, 3],
      ospmFlags: [36, 4],
      reserved1: [40, 24],
    });
  });
});

describe('MADT', () => {
  it('has a 44-byte fixed part (ACPI 5.2.12)', () => {
    expectSpecLayout(MADT_HEADER, 44, {
      ...headerAt(),
      localApicAddress: [36, 4],
      flags: [40, 4],
    });
  });

  it('has the entry types of ACPI table 5.21', () => {
    expect(MADT_TYPE).toEqual({
      LOCAL_APIC: 0,
      IO_APIC: 1,
      INTERRUPT_SOURCE_OVERRIDE: 2,
      LOCAL_APIC_NMI: 4,
      LOCAL_X2APIC: 9,
      LOCAL_X2APIC_NMI: 10,
    });
  });

  it('lays out each entry type at its spec offsets', () => {
    expectSpecLayout(MADT_LOCAL_APIC, 8, {
      type: [0, 1],
      length: [1, 1],
      processorUid: [2, 1],
      apicId: [3, 1],
      flags: [4, 4],
    });
    expectSpecLayout(MADT_IO_APIC, 12, {
      type: [0, 1],
      length: [1, 1],
      ioApicId: [2, 1],
      reserved: [3, 1],
      address: [4, 4],
      gsiBase: [8, 4],
    });
    expectSpecLayout(MADT_INTERRUPT_OVERRIDE, 10, {
      type: [0, 1],
      length: [1, 1],
      bus: [2, 1],
      source: [3, 1],
      gsi: [4, 4],
      flags: [8, 2],
    });
    expectSpecLayout(MADT_LOCAL_APIC_NMI, 6, {
      type: [0, 1],
      length: [1, 1],
      processorUid: [2, 1],
      flags: [3, 2],
      lint: [5, 1],
    });
    expectSpecLayout(MADT_LOCAL_X2APIC, 16, {
      type: [0, 1],
      length: [1, 1],
      reserved: [2, 2],
      x2apicId: [4, 4],
      flags: [8, 4],
      processorUid: [12, 4],
    });
    expectSpecLayout(MADT_LOCAL_X2APIC_NMI, 12, {
      type: [0, 1],
      length: [1, 1],
      flags: [2, 2],
      processorUid: [4, 4],
      lint: [8, 1],
      reserved: [9, 3],
    });
  });

  it('encodes QEMU level/active-high as MPS INTI 0xD', () => {
    expect(MPS_INTI.POLARITY_ACTIVE_HIGH | MPS_INTI.TRIGGER_LEVEL).toBe(0xd);
    expect(MPS_INTI.POLARITY_ACTIVE_LOW | MPS_INTI.TRIGGER_LEVEL).toBe(0xf);
  });
});

describe('e820 entry', () => {
  it('is 20 packed bytes {u64 addr, u64 size, u32 type}', () => {
    expectSpecLayout(E820_ENTRY, 20, { addr: [0, 8], size: [8, 8], type: [16, 4] });
    expect([E820_TYPE.RAM, E820_TYPE.RESERVED, E820_TYPE.ACPI, E820_TYPE.NVS]).toEqual([
      1, 2, 3, 4,
    ]);
  });
});

describe('checksum rule', () => {
  it('gives the byte that makes a range sum to 0 mod 256', () => {
    const t = Uint8Array.from([0x41, 0x50, 0x49, 0x43, 0, 0xff, 0x80]);
    t[4] = acpiChecksumByte(t);
    expect(acpiChecksum(t)).toBe(0);
    expect(acpiChecksumByte(new Uint8Array(3))).toBe(0);
  });

  it('pads names with spaces and refuses names too long', () => {
    expect(Array.from(acpiName('AB', 4))).toEqual([0x41, 0x42, 0x20, 0x20]);
    expect(() => acpiName('TOOLONG', 6)).toThrow(RangeError);
  });
});
