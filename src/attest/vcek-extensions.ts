// The AMD KDS extensions of a VCEK or VLEK certificate (arc 1.3.6.1.4.1.3704.1): the TCB the key
// was derived for, the chip (hwID) or cloud provider (cspID) it belongs to, and the product.
// Facts: reference/sev-snp-abi.md section 4.2 (AMD "VCEK certificate" specification); the
// strictness (only KDS extensions plus authorityKeyIdentifier) follows go-sev-guest.

import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
// certs.ts is not yet re-exported by src/arch/index.ts; switch to the index when it is.
import { AMD_KDS_OID } from '../arch/index.js';
import { DER_TAG, DerError, integerValue, readOnlyTlv, stringValue } from './der.js';

/** authorityKeyIdentifier, the one standard extension a KDS-issued VCEK/VLEK may carry. */
const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';

/** CHIP_ID length in the report; Turin hwIDs are the first 8 bytes of it. */
const HWID_SIZES = [64, 8] as const;

/** Security patch levels from the certificate, named as the TCB_VERSION fields they match. */
export interface KdsTcb {
  readonly bootLoader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  /** Reserved SPLs 4..7 (AMD's Milan/Genoa certificates carry them, as 0). */
  readonly spl4: number | undefined;
  readonly spl5: number | undefined;
  readonly spl6: number | undefined;
  readonly spl7: number | undefined;
  /** Turin only. */
  readonly fmc: number | undefined;
}

export interface KdsExtensions {
  /** VCEK when the certificate names a chip (hwID), VLEK when it names a provider (cspID). */
  readonly kind: 'VCEK' | 'VLEK';
  readonly structVersion: number;
  /** As the certificate spells it, e.g. "Milan-B0". */
  readonly productName: string;
  /** The product line: productName up to its first '-' ("Milan"). */
  readonly productLine: string;
  readonly tcb: KdsTcb;
  /** The chip's CHIP_ID (64 bytes; 8 on Turin), for a VCEK. */
  readonly hwId: Uint8Array | undefined;
  /** The cloud provider's ID, for a VLEK. */
  readonly cspId: string | undefined;
}

/** A certificate whose KDS extensions are missing or malformed; `problems` lists every one. */
export class KdsExtensionError extends Error {
  override readonly name = 'KdsExtensionError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

type KdsName = keyof typeof AMD_KDS_OID;
const NAME_OF_OID: ReadonlyMap<string, KdsName> = new Map(
  (Object.entries(AMD_KDS_OID) as [KdsName, string][]).map(([name, oid]) => [oid, name]),
);

/** The SPL extensions and the TcbView field each one fills. */
const SPL_FIELDS: readonly [KdsName, keyof KdsTcb][] = [
  ['blSPL', 'bootLoader'],
  ['teeSPL', 'tee'],
  ['snpSPL', 'snp'],
  ['ucodeSPL', 'microcode'],
  ['spl4', 'spl4'],
  ['spl5', 'spl5'],
  ['spl6', 'spl6'],
  ['spl7', 'spl7'],
  ['fmcSPL', 'fmc'],
];
const REQUIRED: readonly KdsName[] = [
  'structVersion',
  'productName',
  'blSPL',
  'teeSPL',
  'snpSPL',
  'ucodeSPL',
];

function describe(name: KdsName): string {
  return `${name} (${AMD_KDS_OID[name]})`;
}

/** A one-byte SPL: a DER INTEGER in 0..255 (0x80.. with its leading zero byte). */
function splValue(value: Uint8Array): number {
  const v = integerValue(value, readOnlyTlv(value));
  if (v < 0n || v > 255n) throw new DerError(`the value ${v} is outside 0..255`);
  return Number(v);
}

/** hwID: the raw CHIP_ID bytes (as AMD's KDS writes them) or the same wrapped in an OCTET STRING. */
function hwIdValue(value: Uint8Array): Uint8Array {
  if ((HWID_SIZES as readonly number[]).includes(value.length)) return value.slice();
  if (value[0] === DER_TAG.OCTET_STRING) {
    const tlv = readOnlyTlv(value);
    const inner = value.slice(tlv.start, tlv.end);
    if ((HWID_SIZES as readonly number[]).includes(inner.length)) return inner;
    throw new DerError(`the wrapped chip ID is ${inner.length} bytes, not 64 (or 8 on Turin)`);
  }
  throw new DerError(
    `${value.length} bytes are neither a raw 64-byte chip ID nor one in an OCTET STRING`,
  );
}

/**
 * The KDS extensions of a VCEK or VLEK (DER bytes or a parsed certificate). Throws
 * KdsExtensionError listing every missing, duplicated, malformed or unexpected extension.
 */
export function parseKdsExtensions(cert: Uint8Array | Certificate): KdsExtensions {
  const parsed = cert instanceof Certificate ? cert : AsnConvert.parse(cert, Certificate);
  const problems: string[] = [];
  const values = new Map<KdsName, Uint8Array>();
  const seen = new Set<string>();
  for (const ext of parsed.tbsCertificate.extensions ?? []) {
    if (seen.has(ext.extnID)) {
      problems.push(`extension ${ext.extnID} appears more than once`);
      continue;
    }
    seen.add(ext.extnID);
    const name = NAME_OF_OID.get(ext.extnID);
    if (name !== undefined) {
      values.set(name, new Uint8Array(ext.extnValue.buffer));
    } else if (ext.extnID !== OID_AUTHORITY_KEY_IDENTIFIER) {
      problems.push(
        `unexpected extension ${ext.extnID} (a KDS certificate carries only AMD's 1.3.6.1.4.1.3704.1 extensions and authorityKeyIdentifier)`,
      );
    }
  }
  for (const name of REQUIRED) {
    if (!values.has(name)) problems.push(`missing extension ${describe(name)}`);
  }

  const decode = <T>(name: KdsName, read: (v: Uint8Array) => T): T | undefined => {
    const v = values.get(name);
    if (v === undefined) return undefined;
    try {
      return read(v);
    } catch (e) {
      if (e instanceof DerError) {
        problems.push(`extension ${describe(name)} is malformed: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  };

  const structVersion = decode('structVersion', (v) => {
    const n = integerValue(v, readOnlyTlv(v));
    if (n < 0n || n > 0xffffn) throw new DerError(`the value ${n} is outside 0..65535`);
    return Number(n);
  });
  const productName = decode('productName', (v) => {
    const tlv = readOnlyTlv(v);
    if (tlv.tag !== DER_TAG.IA5_STRING) {
      throw new DerError(`expected an IA5String, found tag 0x${tlv.tag.toString(16)}`);
    }
    const s = stringValue(v, tlv);
    if (s.length === 0) throw new DerError('the product name is empty');
    return s;
  });
  const spl: Partial<Record<keyof KdsTcb, number>> = {};
  for (const [name, key] of SPL_FIELDS) {
    const n = decode(name, splValue);
    if (n !== undefined) spl[key] = n;
  }
  const hwId = decode('hwID', hwIdValue);
  const cspId = decode('cspID', (v) => stringValue(v, readOnlyTlv(v)));
  if (values.has('hwID') && values.has('cspID')) {
    problems.push('the certificate carries both hwID (VCEK) and cspID (VLEK)');
  } else if (!values.has('hwID') && !values.has('cspID')) {
    problems.push(
      `missing extension ${describe('hwID')} (a VCEK) or ${describe('cspID')} (a VLEK)`,
    );
  }

  if (
    problems.length > 0 ||
    structVersion === undefined ||
    productName === undefined ||
    spl.bootLoader === undefined ||
    spl.tee === undefined ||
    spl.snp === undefined ||
    spl.microcode === undefined
  ) {
    throw new KdsExtensionError(problems);
  }
  return {
    kind: hwId !== undefined ? 'VCEK' : 'VLEK',
    structVersion,
    productName,
    productLine: productName.split('-')[0]!,
    tcb: {
      bootLoader: spl.bootLoader,
      tee: spl.tee,
      snp: spl.snp,
      microcode: spl.microcode,
      spl4: spl.spl4,
      spl5: spl.spl5,
      spl6: spl.spl6,
      spl7: spl.spl7,
      fmc: spl.fmc,
    },
    hwId,
    cspId,
  };
}
