// Transit core: known answers (checked against an independent implementation), the AAD layout,
// round trips and tamper refusal as properties, strict parsing, the version policy, rewrap,
// datakey, zeroization, and key versions sealed under a real (local) key provider.
import fc from 'fast-check';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { gcm } from '@noble/ciphers/aes.js';
import {
  TransitError,
  TRANSIT_ERROR_CODES,
  checkDecryptionVersion,
  decryptWithKeyVersion,
  encodeTransitAad,
  encryptWithKeyVersion,
  formatTransitCiphertext,
  isTransitKeyName,
  isTransitKeyType,
  parseTransitCiphertext,
  transitDataKey,
  transitDecrypt,
  transitEncrypt,
  transitRewrap,
  type TransitErrorCode,
  type TransitKeyType,
  type TransitKeyVersion,
  type TransitKeyring,
} from '../src/transit.js';
import { generateTransitKeyVersion, openTransitKey, sealTransitKey, transitKeyContext, transitKeyring } from '../src/transit-keys.js';
import { CryptoError } from '../src/errors.js';
import { Envelopes, type Envelope } from '../src/envelope.js';
import { createLocalProvider } from '../src/local-provider.js';
import { DekCache } from '../src/dek-cache.js';
import { randomBytes } from '../src/bytes.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const TYPES: TransitKeyType[] = ['xchacha20-poly1305', 'aes256-gcm'];
const NONCE: Record<TransitKeyType, number> = { 'xchacha20-poly1305': 24, 'aes256-gcm': 12 };

function kv(type: TransitKeyType, key: Uint8Array, version = 1, name = 'orders'): TransitKeyVersion {
  return { name, type, version, key };
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

async function caughtAsync(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

function expectTransit(err: unknown, code: TransitErrorCode): TransitError {
  expect(err).toBeInstanceOf(TransitError);
  if (!(err instanceof TransitError)) throw err;
  expect(err.code).toBe(code);
  return err;
}

// A keyring over plain in-memory versions; records which versions were opened and keeps every
// copy it handed out, so tests can check the core wiped them.
function memoryRing(type: TransitKeyType, keys: Uint8Array[], min = 1, name = 'orders'): TransitKeyring & { opened: number[]; copies: Uint8Array[] } {
  const opened: number[] = [];
  const copies: Uint8Array[] = [];
  return {
    name,
    type,
    latestVersion: keys.length,
    minDecryptionVersion: min,
    opened,
    copies,
    openVersion(version: number): Uint8Array {
      opened.push(version);
      const copy = Uint8Array.from(keys[version - 1]!);
      copies.push(copy);
      return copy;
    },
  };
}

describe('known answers', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const plaintext = enc('coffer transit');
  const context = enc('tenant-7');
  // "coffer.transit.v1" | typeId | nameLen u32 | "orders" | version u32 = 3 | ctxLen u32 | "tenant-7"
  const aadHex = (typeId: string): string =>
    '636f666665722e7472616e7369742e7631' + typeId + '00000006' + '6f7264657273' + '00000003' + '00000008' + '74656e616e742d37';
  const golden: Record<TransitKeyType, { typeId: string; text: string }> = {
    'xchacha20-poly1305': { typeId: '01', text: 'coffer:v3:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXt1ZjFrWSWWL9lenNxugU03CYSquOkufTKy3A4X+h' },
    'aes256-gcm': { typeId: '02', text: 'coffer:v3:QEFCQ0RFRkdISUpLgdbIRUNOp3e/pXlF8hAQPuJqDadnHOZAXsGyjtaE' },
  };

  test.each(TYPES)('%s: the AAD is the documented layout', (type) => {
    expect(Buffer.from(encodeTransitAad(type, 'orders', 3, context)).toString('hex')).toBe(aadHex(golden[type].typeId));
  });

  test.each(TYPES)('%s: encryption with a fixed nonce gives the golden string, equal to an independent implementation', (type) => {
    const nonce = Uint8Array.from({ length: NONCE[type] }, (_, i) => 0x40 + i);
    const text = encryptWithKeyVersion(kv(type, key, 3), plaintext, { context, randomBytes: () => Uint8Array.from(nonce) });
    expect(text).toBe(golden[type].text);
    // @noble/ciphers (pure JS) as the reference: XChaCha20-Poly1305 and AES-256-GCM, AAD as bytes.
    const aad = hex(aadHex(golden[type].typeId));
    const sealed = type === 'aes256-gcm' ? gcm(key, nonce, aad).encrypt(plaintext) : xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
    expect(text).toBe(`coffer:v3:${Buffer.concat([nonce, sealed]).toString('base64')}`);
    expect(Buffer.from(decryptWithKeyVersion(kv(type, key, 3), golden[type].text, { context })).toString()).toBe('coffer transit');
  });

  test('the AES-GCM reference agrees with NIST GCM test case 14 (so the cross-check means something)', () => {
    const out = gcm(new Uint8Array(32), new Uint8Array(12)).encrypt(new Uint8Array(16));
    expect(Buffer.from(out).toString('hex')).toBe('cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919');
  });

  test.each(TYPES)('%s: agrees with the reference on random inputs (both directions)', (type) => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: NONCE[type], maxLength: NONCE[type] }),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 40 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        (k, nonce, pt, ctx, version) => {
          const text = encryptWithKeyVersion(kv(type, k, version), pt, { context: ctx, randomBytes: () => Uint8Array.from(nonce) });
          const aad = encodeTransitAad(type, 'orders', version, ctx);
          const ref = type === 'aes256-gcm' ? gcm(k, nonce, aad) : xchacha20poly1305(k, nonce, aad);
          const payload = parseTransitCiphertext(text, type).payload;
          const sealedByRef = ref.encrypt(pt);
          expect(Buffer.from(payload.subarray(NONCE[type])).equals(Buffer.from(sealedByRef))).toBe(true);
          const refText = formatTransitCiphertext(version, Uint8Array.from(Buffer.concat([nonce, sealedByRef])));
          expect(Buffer.from(decryptWithKeyVersion(kv(type, k, version), refText, { context: ctx })).equals(Buffer.from(pt))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('both types give different ciphertexts for the same key, nonce prefix and input (type is bound)', () => {
    const k = randomBytes(32);
    const x = encryptWithKeyVersion(kv('xchacha20-poly1305', k), enc('a'));
    const a = encryptWithKeyVersion(kv('aes256-gcm', k), enc('a'));
    expectTransit(caught(() => decryptWithKeyVersion(kv('aes256-gcm', k), x)), 'CRYPTO_TRANSIT_INTEGRITY');
    expectTransit(caught(() => decryptWithKeyVersion(kv('xchacha20-poly1305', k), a)), 'CRYPTO_TRANSIT_MALFORMED');
  });
});

describe.each(TYPES)('%s properties', (type) => {
  test('round trip for any plaintext and context', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 2048 }), fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined }), (k, pt, ctx) => {
        const text = encryptWithKeyVersion(kv(type, k), pt, { context: ctx });
        expect(text.startsWith('coffer:v1:')).toBe(true);
        expect(Buffer.from(decryptWithKeyVersion(kv(type, k), text, { context: ctx })).equals(Buffer.from(pt))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('every single-bit flip of a ciphertext is refused (exhaustive, 3-byte message)', () => {
    const k = randomBytes(32);
    const text = encryptWithKeyVersion(kv(type, k), enc('abc'), { context: enc('ctx') });
    const payload = parseTransitCiphertext(text).payload;
    for (let bit = 0; bit < payload.length * 8; bit++) {
      const bad = Uint8Array.from(payload);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const err = caught(() => decryptWithKeyVersion(kv(type, k), formatTransitCiphertext(1, bad), { context: enc('ctx') }));
      expectTransit(err, 'CRYPTO_TRANSIT_INTEGRITY');
    }
  });

  test('any single-bit flip is refused and never yields plaintext (random messages)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 512 }), fc.nat(), (k, pt, where) => {
        const text = encryptWithKeyVersion(kv(type, k), pt);
        const payload = parseTransitCiphertext(text).payload;
        const bit = where % (payload.length * 8);
        payload[bit >> 3]! ^= 1 << (bit & 7);
        expectTransit(caught(() => decryptWithKeyVersion(kv(type, k), formatTransitCiphertext(1, payload))), 'CRYPTO_TRANSIT_INTEGRITY');
      }),
      { numRuns: 300 },
    );
  });

  test('another context is refused; an absent context equals the empty one', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ maxLength: 32 }), (c1, c2) => {
        fc.pre(!Buffer.from(c1).equals(Buffer.from(c2)));
        const k = randomBytes(32);
        const text = encryptWithKeyVersion(kv(type, k), enc('v'), { context: c1 });
        expectTransit(caught(() => decryptWithKeyVersion(kv(type, k), text, { context: c2 })), 'CRYPTO_TRANSIT_INTEGRITY');
      }),
      { numRuns: 100 },
    );
    const k = randomBytes(32);
    const text = encryptWithKeyVersion(kv(type, k), enc('v'));
    expect(Buffer.from(decryptWithKeyVersion(kv(type, k), text, { context: new Uint8Array(0) })).toString()).toBe('v');
  });

  test('another key name (same key bytes) is refused', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/), fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/), (n1, n2) => {
        fc.pre(n1 !== n2 && isTransitKeyName(n1) && isTransitKeyName(n2));
        const k = randomBytes(32);
        const text = encryptWithKeyVersion(kv(type, k, 1, n1), enc('v'));
        expectTransit(caught(() => decryptWithKeyVersion(kv(type, k, 1, n2), text)), 'CRYPTO_TRANSIT_INTEGRITY');
      }),
      { numRuns: 100 },
    );
  });

  test('a ciphertext relabelled to another version (same key bytes) is refused', () => {
    const k = randomBytes(32);
    const text = encryptWithKeyVersion(kv(type, k, 1), enc('v'));
    const relabelled = text.replace('coffer:v1:', 'coffer:v2:');
    expectTransit(caught(() => decryptWithKeyVersion(kv(type, k, 2), relabelled)), 'CRYPTO_TRANSIT_INTEGRITY');
    // And decrypting a v2 ciphertext with the v1 key version is a version mismatch, not a guess.
    expectTransit(caught(() => decryptWithKeyVersion(kv(type, k, 1), relabelled)), 'CRYPTO_TRANSIT_VERSION_UNKNOWN');
  });

  test('another key is refused', () => {
    const text = encryptWithKeyVersion(kv(type, randomBytes(32)), enc('v'));
    expectTransit(caught(() => decryptWithKeyVersion(kv(type, randomBytes(32)), text)), 'CRYPTO_TRANSIT_INTEGRITY');
  });

  test('nonces are fresh per encryption', () => {
    const k = randomBytes(32);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(Buffer.from(parseTransitCiphertext(encryptWithKeyVersion(kv(type, k), enc('same'))).payload.subarray(0, NONCE[type])).toString('hex'));
    expect(seen.size).toBe(2000);
  });
});

describe('parsing', () => {
  // 12 + 6 + 16 = 34 bytes: the base64 ends in "==".
  const good = encryptWithKeyVersion(kv('aes256-gcm', randomBytes(32), 7), enc('hello!'));
  const b64 = good.slice('coffer:v7:'.length);
  test('the sample ends in padding', () => expect(b64.endsWith('==')).toBe(true));

  test.each([
    ['', 'must start with "coffer:v"'],
    [`vault:v7:${b64}`, 'must start with "coffer:v"'],
    [`COFFER:v7:${b64}`, 'must start with "coffer:v"'],
    [` coffer:v7:${b64}`, 'must start with "coffer:v"'],
    [`coffer:7:${b64}`, 'must start with "coffer:v"'],
    ['coffer:v7', 'no ":" after the key version'],
    [`coffer:v:${b64}`, 'decimal integer'],
    [`coffer:v0:${b64}`, 'decimal integer'],
    [`coffer:v07:${b64}`, 'decimal integer'],
    [`coffer:v+7:${b64}`, 'decimal integer'],
    [`coffer:v-7:${b64}`, 'decimal integer'],
    [`coffer:v7.0:${b64}`, 'decimal integer'],
    [`coffer:v 7:${b64}`, 'decimal integer'],
    [`coffer:v12345678901:${b64}`, 'decimal integer'],
    [`coffer:v4294967296:${b64}`, 'too large'],
    ['coffer:v7:', 'payload is empty'],
    [`coffer:v7:${b64.replace(/=+$/, '')}`, 'padded standard base64'],
    [`coffer:v7:${b64} `, 'padded standard base64'],
    [`coffer:v7:${b64}\n`, 'padded standard base64'],
    [`coffer:v7:${b64.slice(0, 8)} ${b64.slice(8)}`, 'padded standard base64'],
    [`coffer:v7:${b64}:`, 'padded standard base64'],
    [`coffer:v7:${b64.replace(/\+/g, '-').replace(/\//g, '_')}x`, 'padded standard base64'],
    ['coffer:v7:QR==', 'canonical base64'],
    ['coffer:v7:AAAA', 'needs at least 28'],
    [`coffer:v7:${Buffer.alloc(27).toString('base64')}`, 'needs at least 28'],
  ])('%j is refused: %s', (text, what) => {
    const err = expectTransit(caught(() => parseTransitCiphertext(text, 'aes256-gcm')), 'CRYPTO_TRANSIT_MALFORMED');
    expect(err.message).toContain(what);
  });

  test('the shortest valid payloads parse (empty plaintext)', () => {
    expect(parseTransitCiphertext(`coffer:v1:${Buffer.alloc(28).toString('base64')}`, 'aes256-gcm').payload.length).toBe(28);
    expect(parseTransitCiphertext(`coffer:v4294967295:${Buffer.alloc(40).toString('base64')}`, 'xchacha20-poly1305').version).toBe(4294967295);
    expectTransit(caught(() => parseTransitCiphertext(`coffer:v1:${Buffer.alloc(39).toString('base64')}`, 'xchacha20-poly1305')), 'CRYPTO_TRANSIT_MALFORMED');
    for (const type of TYPES) {
      const k = randomBytes(32);
      expect(decryptWithKeyVersion(kv(type, k), encryptWithKeyVersion(kv(type, k), new Uint8Array(0))).length).toBe(0);
    }
  });

  test('a non-string is malformed, not a crash', () => {
    expectTransit(caught(() => Reflect.apply(parseTransitCiphertext, undefined, [42])), 'CRYPTO_TRANSIT_MALFORMED');
  });

  test('arbitrary strings either parse to what formatting gives back or are MALFORMED', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `coffer:v${s}`), fc.string().map((s) => `coffer:v1:${s}`)), (text) => {
        let parsed;
        try {
          parsed = parseTransitCiphertext(text);
        } catch (err) {
          expectTransit(err, 'CRYPTO_TRANSIT_MALFORMED');
          return;
        }
        expect(formatTransitCiphertext(parsed.version, parsed.payload)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  test('only the canonical encoding of a payload parses (every last character tried, with and without padding)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 28, maxLength: 40 }), (bytes) => {
        const b64 = Buffer.from(bytes).toString('base64');
        const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
        const at = b64.length - pad - 1;
        for (const ch of alphabet) {
          const text = `coffer:v1:${b64.slice(0, at)}${ch}${b64.slice(at + 1)}`;
          let parsed;
          try {
            parsed = parseTransitCiphertext(text);
          } catch (err) {
            expectTransit(err, 'CRYPTO_TRANSIT_MALFORMED');
            continue;
          }
          expect(formatTransitCiphertext(1, parsed.payload)).toBe(text);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('mutated valid ciphertexts never decrypt to anything but the original', () => {
    const k = randomBytes(32);
    const original = encryptWithKeyVersion(kv('xchacha20-poly1305', k, 7), enc('the secret'));
    fc.assert(
      fc.property(fc.nat({ max: original.length - 1 }), fc.string({ minLength: 0, maxLength: 3 }), fc.nat({ max: 3 }), (at, insert, drop) => {
        const mutated = original.slice(0, at) + insert + original.slice(at + drop);
        fc.pre(mutated !== original);
        let out: Uint8Array;
        try {
          out = decryptWithKeyVersion(kv('xchacha20-poly1305', k, 7), mutated);
        } catch (err) {
          expect(err).toBeInstanceOf(TransitError);
          return;
        }
        // Only re-encodings of the same bytes could get here; the strict parser admits none.
        expect(Buffer.from(out).toString()).toBe('the secret');
        throw new Error(`a mutated ciphertext was accepted: ${mutated}`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('keyring: policy, rewrap, datakey, zeroization', () => {
  test.each(TYPES)('%s: encrypt uses the latest version and opens only it; the opened copy is wiped', async (type) => {
    const ring = memoryRing(type, [randomBytes(32), randomBytes(32), randomBytes(32)]);
    const text = await transitEncrypt(ring, enc('pay'));
    expect(text.startsWith('coffer:v3:')).toBe(true);
    expect(ring.opened).toEqual([3]);
    expect(ring.copies.every((c) => c.every((b) => b === 0))).toBe(true);
    expect(Buffer.from(await transitDecrypt(ring, text)).toString()).toBe('pay');
    expect(ring.opened).toEqual([3, 3]);
    expect(ring.copies.every((c) => c.every((b) => b === 0))).toBe(true);
  });

  test('old versions keep decrypting until min_decryption_version passes them; refusal opens no key', async () => {
    const keys = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const v1 = await transitEncrypt(memoryRing('aes256-gcm', keys.slice(0, 1)), enc('one'));
    const v2 = await transitEncrypt(memoryRing('aes256-gcm', keys.slice(0, 2)), enc('two'));
    const ring = memoryRing('aes256-gcm', keys, 1);
    expect(Buffer.from(await transitDecrypt(ring, v1)).toString()).toBe('one');
    const strict = memoryRing('aes256-gcm', keys, 2);
    const err = expectTransit(await caughtAsync(() => transitDecrypt(strict, v1)), 'CRYPTO_TRANSIT_VERSION_TOO_OLD');
    expect(err.message).toBe('ciphertext key version 1 is below the minimum decryption version 2 of key "orders"');
    expect(strict.opened).toEqual([]);
    expect(Buffer.from(await transitDecrypt(strict, v2)).toString()).toBe('two');
  });

  test('a version above the latest is unknown; nothing is opened', async () => {
    const ring = memoryRing('xchacha20-poly1305', [randomBytes(32)]);
    const future = encryptWithKeyVersion(kv('xchacha20-poly1305', randomBytes(32), 5), enc('x'));
    const err = expectTransit(await caughtAsync(() => transitDecrypt(ring, future)), 'CRYPTO_TRANSIT_VERSION_UNKNOWN');
    expect(err.message).toBe('key "orders" has no version 5 (latest is 1)');
    expect(ring.opened).toEqual([]);
    expectTransit(caught(() => checkDecryptionVersion({ name: 'k', latestVersion: 3, minDecryptionVersion: 2 }, 4)), 'CRYPTO_TRANSIT_VERSION_UNKNOWN');
    expect(() => checkDecryptionVersion({ name: 'k', latestVersion: 3, minDecryptionVersion: 2 }, 2)).not.toThrow();
  });

  test('a malformed ciphertext is refused before any key is opened', async () => {
    const ring = memoryRing('xchacha20-poly1305', [randomBytes(32)]);
    expectTransit(await caughtAsync(() => transitDecrypt(ring, 'coffer:v1:AAAA')), 'CRYPTO_TRANSIT_MALFORMED');
    expect(ring.opened).toEqual([]);
  });

  test('rewrap moves old ciphertexts to the latest version, keeps the context, and old ones are refused once min passes', async () => {
    const keys = [randomBytes(32)];
    const ctx = enc('tenant-1');
    const old = await transitEncrypt(memoryRing('xchacha20-poly1305', keys), enc('card'), { context: ctx });
    keys.push(randomBytes(32), randomBytes(32));
    const ring = memoryRing('xchacha20-poly1305', keys);
    const moved = await transitRewrap(ring, old, { context: ctx });
    expect(moved.startsWith('coffer:v3:')).toBe(true);
    expect(ring.opened).toEqual([1, 3]);
    expect(ring.copies.every((c) => c.every((b) => b === 0))).toBe(true);
    const rotatedPast = memoryRing('xchacha20-poly1305', keys, 3);
    expect(Buffer.from(await transitDecrypt(rotatedPast, moved, { context: ctx })).toString()).toBe('card');
    expectTransit(await caughtAsync(() => transitDecrypt(rotatedPast, old, { context: ctx })), 'CRYPTO_TRANSIT_VERSION_TOO_OLD');
    expectTransit(await caughtAsync(() => transitRewrap(rotatedPast, old, { context: ctx })), 'CRYPTO_TRANSIT_VERSION_TOO_OLD');
    expectTransit(await caughtAsync(() => transitRewrap(ring, old, { context: enc('other') })), 'CRYPTO_TRANSIT_INTEGRITY');
  });

  test.each(TYPES)('%s: datakey plaintext returns the key and its wrap; wrapped mode wipes the key', async (type) => {
    const ring = memoryRing(type, [randomBytes(32), randomBytes(32)]);
    const made: Uint8Array[] = [];
    const rng = (n: number): Uint8Array => {
      const b = randomBytes(n);
      made.push(b);
      return b;
    };
    const both = await transitDataKey(ring, { mode: 'plaintext', randomBytes: rng });
    expect(both.plaintext!.length).toBe(32);
    expect(both.ciphertext.startsWith('coffer:v2:')).toBe(true);
    expect(Buffer.from(await transitDecrypt(ring, both.ciphertext)).equals(Buffer.from(both.plaintext!))).toBe(true);

    made.length = 0;
    const wrapped = await transitDataKey(ring, { mode: 'wrapped', bits: 512, context: enc('c'), randomBytes: rng });
    expect(wrapped.plaintext).toBeUndefined();
    expect(Object.keys(wrapped)).toEqual(['ciphertext']);
    expect((await transitDecrypt(ring, wrapped.ciphertext, { context: enc('c') })).length).toBe(64);
    const dataKey = made[0]!;
    expect(dataKey.length).toBe(64);
    expect(dataKey.every((b) => b === 0)).toBe(true);

    expect((await transitDataKey(ring, { mode: 'plaintext', bits: 128 })).plaintext!.length).toBe(16);
    await expect(Reflect.apply(transitDataKey, undefined, [ring, { mode: 'plaintext', bits: 384 }])).rejects.toThrow(RangeError);
    await expect(Reflect.apply(transitDataKey, undefined, [ring, { mode: 'both' }])).rejects.toThrow(RangeError);
  });

  test('datakey wipes the data key when encryption fails', async () => {
    const made: Uint8Array[] = [];
    const ring: TransitKeyring = {
      name: 'k',
      type: 'aes256-gcm',
      latestVersion: 1,
      minDecryptionVersion: 1,
      openVersion: () => Promise.reject(new CryptoError('CRYPTO_KMS_UNAVAILABLE', 'kms down')),
    };
    const rng = (n: number): Uint8Array => {
      const b = randomBytes(n);
      made.push(b);
      return b;
    };
    await expect(transitDataKey(ring, { mode: 'plaintext', randomBytes: rng })).rejects.toMatchObject({ code: 'CRYPTO_KMS_UNAVAILABLE' });
    expect(made[0]!.every((b) => b === 0)).toBe(true);
  });

  test('the opened key is wiped also when decryption fails, and a wrong-length key is refused (and wiped)', async () => {
    const ring = memoryRing('aes256-gcm', [randomBytes(32)]);
    const other = encryptWithKeyVersion(kv('aes256-gcm', randomBytes(32)), enc('x'));
    expectTransit(await caughtAsync(() => transitDecrypt(ring, other)), 'CRYPTO_TRANSIT_INTEGRITY');
    expect(ring.copies[0]!.every((b) => b === 0)).toBe(true);
    const short = new Uint8Array(31).fill(7);
    const bad: TransitKeyring = { name: 'k', type: 'aes256-gcm', latestVersion: 1, minDecryptionVersion: 1, openVersion: () => short };
    await expect(transitEncrypt(bad, enc('x'))).rejects.toMatchObject({ code: 'CRYPTO_INTEGRITY' });
    expect(short.every((b) => b === 0)).toBe(true);
  });

  test('bad keyrings and arguments are programmer errors (TypeError/RangeError), not transit errors', async () => {
    const k = randomBytes(32);
    const base = { name: 'k', type: 'aes256-gcm' as const, latestVersion: 2, minDecryptionVersion: 1, openVersion: () => Uint8Array.from(k) };
    await expect(transitEncrypt({ ...base, minDecryptionVersion: 3 }, enc('x'))).rejects.toThrow(RangeError);
    await expect(transitEncrypt({ ...base, minDecryptionVersion: 0 }, enc('x'))).rejects.toThrow(RangeError);
    await expect(transitEncrypt({ ...base, latestVersion: 0 }, enc('x'))).rejects.toThrow(RangeError);
    await expect(transitEncrypt({ ...base, name: 'a/b' }, enc('x'))).rejects.toThrow(TypeError);
    await expect(Reflect.apply(transitEncrypt, undefined, [{ ...base, type: 'aes128-gcm' }, enc('x')])).rejects.toThrow(TypeError);
    await expect(Reflect.apply(transitEncrypt, undefined, [base, 'x'])).rejects.toThrow(TypeError);
    await expect(transitEncrypt(base, enc('x'), { context: new Uint8Array(4097) })).rejects.toThrow(RangeError);
    expect(() => encryptWithKeyVersion(kv('aes256-gcm', new Uint8Array(16)), enc('x'))).toThrow(RangeError);
  });
});

describe('names, types and errors', () => {
  test('key names: 1-64 of [A-Za-z0-9._-], not . or ..', () => {
    for (const ok of ['a', 'orders', 'A.b_c-9', 'x'.repeat(64), '...']) expect(isTransitKeyName(ok)).toBe(true);
    for (const bad of ['', '.', '..', 'x'.repeat(65), 'a/b', 'a:b', 'é', ' a', 'a\n', 42, undefined]) expect(isTransitKeyName(bad)).toBe(false);
    expect(isTransitKeyType('xchacha20-poly1305')).toBe(true);
    expect(isTransitKeyType('aes256-gcm')).toBe(true);
    expect(isTransitKeyType('aes256-gcm96')).toBe(false);
  });

  test('error codes are listed once each, and messages never contain key, plaintext or ciphertext', async () => {
    expect(new Set(TRANSIT_ERROR_CODES).size).toBe(4);
    const k = Uint8Array.from({ length: 32 }, () => 0x41);
    const ring = memoryRing('xchacha20-poly1305', [k, k], 2);
    const secret = 'SUPERSECRETPLAINTEXT';
    const v1 = encryptWithKeyVersion(kv('xchacha20-poly1305', k, 1), enc(secret));
    const v2 = encryptWithKeyVersion(kv('xchacha20-poly1305', k, 2), enc(secret));
    const tampered = v2.slice(0, -6) + (v2.endsWith('AAAA') ? 'BBBB' : 'AAAA') + v2.slice(-2);
    const messages: string[] = [];
    for (const text of [v1, tampered, 'coffer:v2:!!!!', `coffer:v9:${v2.slice(10)}`]) {
      const err = await caughtAsync(() => transitDecrypt(ring, text));
      expect(err).toBeInstanceOf(TransitError);
      if (err instanceof Error) messages.push(err.message);
    }
    expect(new Set(messages.map((m, i) => `${i}:${m}`)).size).toBe(4);
    for (const m of messages) {
      expect(m).not.toContain(secret);
      expect(m).not.toContain(v1.slice(10, 30));
      expect(m).not.toContain(v2.slice(10, 30));
      expect(m).not.toContain(Buffer.from(k).toString('base64').slice(0, 12));
      expect(m).not.toContain('AAAAAAAA');
    }
  });
});

describe('key versions sealed under a real (local) key provider', () => {
  const provider = createLocalProvider({ masterKeyBase64: Buffer.alloc(32, 9).toString('base64') });
  const envelopes = new Envelopes({ provider });
  afterAll(() => provider.close());

  test('the seal context is transit:{type}:{name} with the key version', () => {
    expect(transitKeyContext({ name: 'orders', type: 'aes256-gcm', version: 2 })).toEqual({ name: 'transit:aes256-gcm:orders', version: 2 });
    expect(() => transitKeyContext({ name: 'a:b', type: 'aes256-gcm', version: 1 })).toThrow(TypeError);
    expect(() => transitKeyContext({ name: 'a', type: 'aes256-gcm', version: 0 })).toThrow(RangeError);
  });

  test('seal, open, and a keyring built on openTransitKey round-trips', async () => {
    const key = randomBytes(32);
    const ref = { name: 'orders', type: 'xchacha20-poly1305' as const, version: 1 };
    const env = await sealTransitKey(envelopes, key, ref);
    expect(Buffer.from(env.ciphertext).includes(Buffer.from(key))).toBe(false);
    expect(Buffer.from(await openTransitKey(envelopes, env, ref)).equals(Buffer.from(key))).toBe(true);
    const ring: TransitKeyring = {
      name: 'orders',
      type: 'xchacha20-poly1305',
      latestVersion: 1,
      minDecryptionVersion: 1,
      openVersion: (v) => openTransitKey(envelopes, env, { ...ref, version: v }),
    };
    const text = await transitEncrypt(ring, enc('via the provider'));
    expect(Buffer.from(decryptWithKeyVersion(kv('xchacha20-poly1305', key), text)).toString()).toBe('via the provider');
    expect(Buffer.from(await transitDecrypt(ring, text)).toString()).toBe('via the provider');
  });

  test('a sealed key version cannot be opened as another key, type or version, nor a secret as a key', async () => {
    const ref = { name: 'orders', type: 'aes256-gcm' as const, version: 2 };
    const env = await sealTransitKey(envelopes, randomBytes(32), ref);
    for (const other of [
      { ...ref, name: 'orders2' },
      { ...ref, type: 'xchacha20-poly1305' as const },
      { ...ref, version: 1 },
    ]) {
      await expect(openTransitKey(envelopes, env, other)).rejects.toMatchObject({ code: 'CRYPTO_INTEGRITY' });
    }
    const secretEnv = await envelopes.seal(randomBytes(32), { name: 'orders', version: 2 });
    await expect(openTransitKey(envelopes, secretEnv, ref)).rejects.toMatchObject({ code: 'CRYPTO_INTEGRITY' });
    const tampered = { ...env, ciphertext: Uint8Array.from(env.ciphertext) };
    tampered.ciphertext[0]! ^= 1;
    await expect(openTransitKey(envelopes, tampered, ref)).rejects.toMatchObject({ code: 'CRYPTO_INTEGRITY' });
  });

  test('an envelope that holds something other than 32 bytes is refused', async () => {
    const ref = { name: 'orders', type: 'aes256-gcm' as const, version: 1 };
    const env = await envelopes.seal(randomBytes(16), transitKeyContext(ref));
    await expect(openTransitKey(envelopes, env, ref)).rejects.toMatchObject({ code: 'CRYPTO_INTEGRITY' });
    await expect(sealTransitKey(envelopes, randomBytes(31), ref)).rejects.toThrow(RangeError);
  });

  test('generateTransitKeyVersion wipes the raw key it created, and another provider key cannot open it', async () => {
    const made: Uint8Array[] = [];
    const ref = { name: 'orders', type: 'aes256-gcm' as const, version: 3 };
    const env = await generateTransitKeyVersion(envelopes, ref, (n) => {
      const b = randomBytes(n);
      made.push(b);
      return b;
    });
    expect(made).toHaveLength(1);
    expect(made[0]!.every((b) => b === 0)).toBe(true);
    expect((await openTransitKey(envelopes, env, ref)).length).toBe(32);
    const otherProvider = createLocalProvider({ masterKeyBase64: Buffer.alloc(32, 8).toString('base64') });
    try {
      await expect(openTransitKey(new Envelopes({ provider: otherProvider }), env, ref)).rejects.toMatchObject({ code: 'CRYPTO_KMS_KEY_NOT_FOUND' });
    } finally {
      await otherProvider.close();
    }
  });

  test('a key\'s life cycle through transitKeyring: create, encrypt, rotate, rewrap, raise the minimum', async () => {
    const cached = new Envelopes({ provider, cache: new DekCache({ ttlSecs: 60 }) });
    const versions = new Map<number, Envelope>();
    const record = (latest: number, min: number) => ({ name: 'payments', type: 'xchacha20-poly1305' as const, latestVersion: latest, minDecryptionVersion: min, versions });
    versions.set(1, await generateTransitKeyVersion(cached, { name: 'payments', type: 'xchacha20-poly1305', version: 1 }));
    const c1 = await transitEncrypt(transitKeyring(cached, record(1, 1)), enc('4111 1111 1111 1111'), { context: enc('acct-9') });
    expect(c1.startsWith('coffer:v1:')).toBe(true);
    versions.set(2, await generateTransitKeyVersion(cached, { name: 'payments', type: 'xchacha20-poly1305', version: 2 }));
    const ring2 = transitKeyring(cached, record(2, 1));
    expect(Buffer.from(await transitDecrypt(ring2, c1, { context: enc('acct-9') })).toString()).toBe('4111 1111 1111 1111');
    const c2 = await transitRewrap(ring2, c1, { context: enc('acct-9') });
    expect(c2.startsWith('coffer:v2:')).toBe(true);
    const ring2min2 = transitKeyring(cached, record(2, 2));
    expectTransit(await caughtAsync(() => transitDecrypt(ring2min2, c1, { context: enc('acct-9') })), 'CRYPTO_TRANSIT_VERSION_TOO_OLD');
    expect(Buffer.from(await transitDecrypt(ring2min2, c2, { context: enc('acct-9') })).toString()).toBe('4111 1111 1111 1111');
    // Same name, other key (a deleted and re-created key): old ciphertexts do not open.
    const recreated = new Map([[1, await generateTransitKeyVersion(cached, { name: 'payments', type: 'xchacha20-poly1305', version: 1 })]]);
    expectTransit(await caughtAsync(() => transitDecrypt(transitKeyring(cached, { ...record(1, 1), versions: recreated }), c1, { context: enc('acct-9') })), 'CRYPTO_TRANSIT_INTEGRITY');
    // A version the policy admits but the state lacks is the server's inconsistency, not the client's.
    versions.delete(1);
    await expect(transitDecrypt(transitKeyring(cached, record(2, 1)), c1, { context: enc('acct-9') })).rejects.toMatchObject({ code: 'CRYPTO_INTEGRITY' });
    // A version's envelope stored under another version number does not open.
    versions.set(1, versions.get(2)!);
    await expect(transitDecrypt(transitKeyring(cached, record(2, 1)), c1, { context: enc('acct-9') })).rejects.toMatchObject({ code: 'CRYPTO_INTEGRITY' });
  });
});
