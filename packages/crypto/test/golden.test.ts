// Golden envelopes: the stored format (AAD encoding, local wrap layout, key ids) must never change
// silently. Fixtures are only ever added, never edited; a new format version gets a new file.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createLocalProvider, Envelopes, type Envelope } from '../src/index.js';

interface Fixture {
  masterKeyBase64: string;
  name: string;
  version: number;
  plaintext: string;
  envelope: { formatVersion: number; alg: 'xchacha20poly1305'; nonce: string; ciphertext: string; wrappedDek: string; kmsKeyId: string };
}

const fixture: Fixture = JSON.parse(readFileSync(path.join(__dirname, 'fixtures', 'envelope.v1.local.json'), 'utf8'));
const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// Deterministic "randomness" so sealing reproduces the fixture byte for byte.
function counterRandom(): (n: number) => Uint8Array {
  let c = 0;
  return (n) => Uint8Array.from({ length: n }, () => (c++ * 37 + 11) & 0xff);
}

const storedEnvelope = (): Envelope => ({
  formatVersion: fixture.envelope.formatVersion,
  alg: fixture.envelope.alg,
  nonce: fromHex(fixture.envelope.nonce),
  ciphertext: fromHex(fixture.envelope.ciphertext),
  wrappedDek: fromHex(fixture.envelope.wrappedDek),
  kmsKeyId: fixture.envelope.kmsKeyId,
});

test('a format-1 envelope sealed by the local provider still opens', async () => {
  const provider = createLocalProvider({ masterKeyBase64: fixture.masterKeyBase64 });
  const out = await new Envelopes({ provider }).open(storedEnvelope(), { name: fixture.name, version: fixture.version });
  expect(Buffer.from(out).toString('utf8')).toBe(fixture.plaintext);
  await provider.close();
});

test('sealing with the same key and randomness reproduces the fixture exactly', async () => {
  const random = counterRandom();
  const provider = createLocalProvider({ masterKeyBase64: fixture.masterKeyBase64, randomBytes: random });
  const env = await new Envelopes({ provider, randomBytes: random }).seal(new TextEncoder().encode(fixture.plaintext), {
    name: fixture.name,
    version: fixture.version,
  });
  expect({
    formatVersion: env.formatVersion,
    alg: env.alg,
    nonce: toHex(env.nonce),
    ciphertext: toHex(env.ciphertext),
    wrappedDek: toHex(env.wrappedDek),
    kmsKeyId: env.kmsKeyId,
  }).toEqual(fixture.envelope);
  await provider.close();
});

test('the documented layouts, rebuilt by hand, open the fixture with plain @noble/ciphers', () => {
  // Independent of src/: builds both AADs from the README's byte layouts and uses noble directly.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { xchacha20poly1305 } = require('@noble/ciphers/chacha.js') as typeof import('@noble/ciphers/chacha.js');
  const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const u64 = (n: number): number[] => [...u32(Math.floor(n / 2 ** 32)), ...u32(n >>> 0)];
  const utf8 = (s: string): number[] => [...Buffer.from(s, 'utf8')];
  const lp = (s: string): number[] => [...u32(utf8(s).length), ...utf8(s)];
  const env = storedEnvelope();

  const wrapAad = Uint8Array.from([...lp('coffer.local.wrap.v1'), ...lp(env.kmsKeyId), ...lp(fixture.name), ...u64(fixture.version)]);
  expect(env.wrappedDek[0]).toBe(1);
  const master = Uint8Array.from(Buffer.from(fixture.masterKeyBase64, 'base64'));
  const dek = xchacha20poly1305(master, env.wrappedDek.subarray(1, 25), wrapAad).decrypt(env.wrappedDek.subarray(25));
  expect(dek).toHaveLength(32);

  const aad = Uint8Array.from([...utf8('coffer.envelope'), ...u32(1), 1, ...u32(utf8(fixture.name).length), ...utf8(fixture.name), ...u64(fixture.version)]);
  const pt = xchacha20poly1305(dek, env.nonce, aad).decrypt(env.ciphertext);
  expect(Buffer.from(pt).toString('utf8')).toBe(fixture.plaintext);
});
