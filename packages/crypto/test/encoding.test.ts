// The byte encodings behind the AAD, the local wrap AAD and the DEK cache key, checked against
// layouts rebuilt by hand (BigInt for the u64), at the edges of the version range.
import { createHash } from 'node:crypto';
import { DekCache, encodeAad } from '../src/index.js';
import { encodeKeyBinding } from '../src/context.js';

const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u64 = (n: number): number[] => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return [...b];
};
const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];
const lp = (s: string): number[] => [...u32(utf8(s).length), ...utf8(s)];

const versions = [0, 1, 255, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER];
const names = ['a', 'payments/db', 'ünïcødé/秘密/🔑', 'x'.repeat(700)];

test('encodeAad matches the documented layout for edge versions and multi-byte names', () => {
  for (const name of names) {
    for (const version of versions) {
      const want = [...utf8('coffer.envelope'), ...u32(1), 1, ...u32(utf8(name).length), ...utf8(name), ...u64(version)];
      expect([...encodeAad(1, 'xchacha20poly1305', { name, version })]).toEqual(want);
    }
  }
});

test('encodeKeyBinding matches the documented layout', () => {
  for (const name of names) {
    for (const version of versions) {
      const want = [...lp('coffer.local.wrap.v1'), ...lp('local:0011223344556677'), ...lp(name), ...u64(version)];
      expect([...encodeKeyBinding('coffer.local.wrap.v1', 'local:0011223344556677', { name, version })]).toEqual(want);
    }
  }
});

test('DekCache.keyFor is base64 SHA-256 of the key binding and the wrapped DEK, whatever came before', () => {
  const cache = new DekCache({ ttlSecs: 60 });
  const expected = (w: Uint8Array, keyId: string, name: string, version: number): string =>
    createHash('sha256')
      .update(Uint8Array.from([...lp('coffer.dek-cache.v1'), ...lp(keyId), ...lp(name), ...u64(version)]))
      .update(w)
      .digest('base64');
  // A long key first (grows the internal scratch buffer), then short ones: no residue may leak in.
  const long = new Uint8Array(3000).map((_, i) => i * 7);
  const short = Uint8Array.from([9, 8, 7]);
  const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  for (const w of [long, short, long.subarray(17, 201), new Uint8Array(0)]) {
    for (const name of names) {
      for (const version of [0, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
        expect(cache.keyFor(w, arn, { name, version })).toBe(expected(w, arn, name, version));
      }
    }
  }
  expect(() => cache.keyFor(short, arn, { name: '', version: 1 })).toThrow(TypeError);
});
