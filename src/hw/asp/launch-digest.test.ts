import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { PAGE_TYPE } from '../../arch/index.js';
import { LaunchDigest, pageContents, sha384 } from './launch-digest.js';

// Known answers worked out from the spec's description of PAGE_INFO alone (reference
// sev-snp-abi.md 1.1), with byte-by-byte construction that does not use the PAGE_INFO layout.
function pageInfo(
  ld: Buffer,
  contents: Buffer,
  type: number,
  gpa: bigint,
  perms: [number, number, number] = [0, 0, 0],
): Buffer {
  const b = Buffer.alloc(0x70);
  ld.copy(b, 0x00);
  contents.copy(b, 0x30);
  b.writeUInt16LE(0x70, 0x60);
  b[0x62] = type;
  b[0x63] = 0; // IMI
  b[0x64] = 0;
  b[0x65] = perms[0];
  b[0x66] = perms[1];
  b[0x67] = perms[2];
  b.writeBigUInt64LE(gpa, 0x68);
  return b;
}
const h = (b: Buffer): Buffer => createHash('sha384').update(b).digest();

describe('launch digest', () => {
  it('starts at 48 zero bytes', () => {
    expect([...new LaunchDigest().digest]).toEqual(new Array(48).fill(0));
  });

  it('chains a NORMAL page as SHA-384 of PAGE_INFO with the page hash as CONTENTS', () => {
    const page = Buffer.alloc(4096, 0xab);
    const ld = new LaunchDigest();
    ld.update({
      type: PAGE_TYPE.NORMAL,
      gpa: 0x10000,
      contents: pageContents(PAGE_TYPE.NORMAL, page),
    });
    const expected = h(pageInfo(Buffer.alloc(48), h(page), 1, 0x10000n));
    expect(Buffer.from(ld.digest).toString('hex')).toBe(expected.toString('hex'));
  });

  it('measures ZERO, UNMEASURED, SECRETS and CPUID pages with zero CONTENTS', () => {
    for (const type of [PAGE_TYPE.ZERO, PAGE_TYPE.UNMEASURED, PAGE_TYPE.SECRETS, PAGE_TYPE.CPUID]) {
      const ld = new LaunchDigest();
      ld.update({ type, gpa: 0x5000, contents: pageContents(type, new Uint8Array(4096).fill(7)) });
      const expected = h(pageInfo(Buffer.alloc(48), Buffer.alloc(48), type, 0x5000n));
      expect(Buffer.from(ld.digest).equals(expected), `type ${type}`).toBe(true);
    }
  });

  it('measures a VMSA page at GPA 0xFFFFFFFFF000 whatever its real address', () => {
    const vmsa = Buffer.alloc(4096);
    vmsa.writeBigUInt64LE(0xfff0n, 0x178);
    const ld = new LaunchDigest();
    ld.update({
      type: PAGE_TYPE.VMSA,
      gpa: 0x123000,
      contents: pageContents(PAGE_TYPE.VMSA, vmsa),
    });
    const expected = h(pageInfo(Buffer.alloc(48), h(vmsa), 2, 0xffff_ffff_f000n));
    expect(Buffer.from(ld.digest).equals(expected)).toBe(true);
  });

  it('includes VMPL permissions in the order reserved, VMPL1, VMPL2, VMPL3', () => {
    const ld = new LaunchDigest();
    ld.update({
      type: PAGE_TYPE.ZERO,
      gpa: 0,
      contents: new Uint8Array(48),
      vmplPerms: [0xf, 0x3, 0x1],
    });
    const expected = h(pageInfo(Buffer.alloc(48), Buffer.alloc(48), 3, 0n, [0xf, 0x3, 0x1]));
    expect(Buffer.from(ld.digest).equals(expected)).toBe(true);
  });

  it('depends on page order: a two-page chain feeds the first digest into the second', () => {
    const a = Buffer.alloc(4096, 1);
    const b = Buffer.alloc(4096, 2);
    const ld = new LaunchDigest();
    ld.update({ type: PAGE_TYPE.NORMAL, gpa: 0, contents: sha384(a) });
    ld.update({ type: PAGE_TYPE.NORMAL, gpa: 0x1000, contents: sha384(b) });
    const d1 = h(pageInfo(Buffer.alloc(48), h(a), 1, 0n));
    const d2 = h(pageInfo(d1, h(b), 1, 0x1000n));
    expect(Buffer.from(ld.digest).equals(d2)).toBe(true);
    const swapped = new LaunchDigest();
    swapped.update({ type: PAGE_TYPE.NORMAL, gpa: 0x1000, contents: sha384(b) });
    swapped.update({ type: PAGE_TYPE.NORMAL, gpa: 0, contents: sha384(a) });
    expect(Buffer.from(swapped.digest).equals(d2)).toBe(false);
  });

  it('digests a 64 MiB image page by page to the independently computed value', () => {
    const pages = 16384;
    const image = Buffer.alloc(pages * 4096);
    for (let i = 0; i < pages; i++) image.writeUInt32LE((i * 2654435761) >>> 0, i * 4096);
    const ld = new LaunchDigest();
    let expected: Buffer = Buffer.alloc(48);
    for (let i = 0; i < pages; i++) {
      const page = image.subarray(i * 4096, (i + 1) * 4096);
      ld.update({ type: PAGE_TYPE.NORMAL, gpa: 0x100000 + i * 4096, contents: sha384(page) });
      expected = h(pageInfo(expected, h(page), 1, BigInt(0x100000 + i * 4096)));
    }
    expect(Buffer.from(ld.digest).equals(expected)).toBe(true);
  });

  it('chains a large run of NORMAL pages hashed in parallel to the page-by-page digest', () => {
    const pages = 2048;
    const image = new Uint8Array(pages * 4096);
    for (let i = 0; i < image.length; i += 509) image[i] = (i * 7) & 0xff;
    const a = new LaunchDigest();
    a.updateNormalPages(0x40_0000, image);
    const b = new LaunchDigest();
    for (let i = 0; i < pages; i++) {
      b.update({
        type: PAGE_TYPE.NORMAL,
        gpa: 0x40_0000 + i * 4096,
        contents: sha384(image.subarray(i * 4096, (i + 1) * 4096)),
      });
    }
    expect(Buffer.from(a.digest).equals(Buffer.from(b.digest))).toBe(true);
  });
});
