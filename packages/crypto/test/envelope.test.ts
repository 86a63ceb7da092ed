// Envelope sealing: round trip, nonce freshness, AAD binding and the full tamper matrix.
import {
  createLocalProvider,
  CryptoError,
  DekCache,
  encodeAad,
  Envelopes,
  open,
  seal,
  type DataKey,
  type Envelope,
  type KeyProvider,
  type SecretContext,
} from '../src/index.js';

const KEY_B64 = Buffer.alloc(32, 7).toString('base64');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const ctx: SecretContext = { name: 'payments/db-password', version: 3 };

async function expectIntegrity(p: Promise<unknown>): Promise<void> {
  let result: unknown;
  let thrown: unknown;
  try {
    result = await p;
  } catch (err) {
    thrown = err;
  }
  // Fail closed: the promise must reject; any resolved value (wrong plaintext) is a failure.
  expect(result).toBeUndefined();
  expect(thrown).toBeInstanceOf(CryptoError);
  expect((thrown as CryptoError).code).toBe('CRYPTO_INTEGRITY');
}

function clone(env: Envelope): Envelope {
  return { ...env, nonce: env.nonce.slice(), ciphertext: env.ciphertext.slice(), wrappedDek: env.wrappedDek.slice() };
}

describe('seal/open round trip', () => {
  const provider = createLocalProvider({ masterKeyBase64: KEY_B64 });
  afterAll(() => provider.close());

  test('opens what it sealed; the envelope has the documented shape', async () => {
    const envelopes = new Envelopes({ provider, cache: new DekCache({ ttlSecs: 60 }) });
    const env = await envelopes.seal(enc('s3cret'), ctx);
    expect(env.formatVersion).toBe(1);
    expect(env.alg).toBe('xchacha20poly1305');
    expect(env.nonce).toHaveLength(24);
    expect(env.ciphertext).toHaveLength(6 + 16);
    expect(env.kmsKeyId).toBe(provider.currentKeyId());
    expect(Buffer.from(env.ciphertext).includes(Buffer.from('s3cret'))).toBe(false);
    expect(new TextDecoder().decode(await envelopes.open(env, ctx))).toBe('s3cret');
  });

  test('empty and large values round-trip, with and without a cache', async () => {
    const big = new Uint8Array(200_000).map((_, i) => i * 31);
    for (const cache of [undefined, new DekCache({ ttlSecs: 0 }), new DekCache({ ttlSecs: 60 })]) {
      const deps = { provider, cache };
      for (const value of [new Uint8Array(0), big]) {
        const env = await seal(value, ctx, deps);
        expect(Buffer.compare(await open(env, ctx, deps), value)).toBe(0);
      }
    }
  });

  test('every seal uses a fresh DEK (distinct wrapped DEKs) and does not modify the input', async () => {
    const envelopes = new Envelopes({ provider });
    const value = enc('same value');
    const a = await envelopes.seal(value, ctx);
    const b = await envelopes.seal(value, ctx);
    expect(Buffer.compare(a.wrappedDek, b.wrappedDek)).not.toBe(0);
    expect(Buffer.compare(a.ciphertext, b.ciphertext)).not.toBe(0);
    expect(new TextDecoder().decode(value)).toBe('same value');
  });

  test('the nonce comes from the injected randomBytes', async () => {
    const fixed = new Uint8Array(24).fill(0xab);
    const envelopes = new Envelopes({ provider, randomBytes: (n) => (n === 24 ? fixed.slice() : new Uint8Array(n)) });
    const env = await envelopes.seal(enc('x'), ctx);
    expect(Buffer.from(env.nonce).toString('hex')).toBe('ab'.repeat(24));
  });

  test('the plaintext DEK is zeroized after seal and after open', async () => {
    const handedOut: Uint8Array[] = [];
    const spy: KeyProvider = {
      ...provider,
      kind: 'local',
      currentKeyId: () => provider.currentKeyId(),
      generateDataKey: async (c): Promise<DataKey> => {
        const dk = await provider.generateDataKey(c);
        handedOut.push(dk.plaintext);
        return dk;
      },
      decrypt: async (w, k, c) => {
        const dek = await provider.decrypt(w, k, c);
        handedOut.push(dek);
        return dek;
      },
      reEncrypt: (w, k, c) => provider.reEncrypt(w, k, c),
      listKeyRotations: () => provider.listKeyRotations(),
      close: async () => {},
    };
    const envelopes = new Envelopes({ provider: spy });
    const env = await envelopes.seal(enc('v'), ctx);
    await envelopes.open(env, ctx);
    expect(handedOut).toHaveLength(2);
    for (const dek of handedOut) expect(dek.every((b) => b === 0)).toBe(true);
  });

  test('a DEK served from the cache is wiped after the open, also when the open fails', async () => {
    const served: Uint8Array[] = [];
    class SpyCache extends DekCache {
      override getInto(key: string, out: Uint8Array): boolean {
        const hit = super.getInto(key, out);
        if (hit) served.push(out);
        return hit;
      }
    }
    const envelopes = new Envelopes({ provider, cache: new SpyCache({ ttlSecs: 60 }), cacheOnSeal: true });
    const env = await envelopes.seal(enc('cached value'), ctx);
    expect(new TextDecoder().decode(await envelopes.open(env, ctx))).toBe('cached value');
    const bad = clone(env);
    bad.ciphertext[0]! ^= 1;
    await expectIntegrity(envelopes.open(bad, ctx));
    expect(served).toHaveLength(2);
    for (const dek of served) expect(dek.every((b) => b === 0)).toBe(true);
  });
});

describe('caching the DEK at seal time', () => {
  const provider = createLocalProvider({ masterKeyBase64: KEY_B64 });
  afterAll(() => provider.close());
  // The local provider under another kind: what a remote KMS gets by default.
  const counting = (kind: 'local' | 'aws'): { p: KeyProvider; decrypts: () => number } => {
    let n = 0;
    const p: KeyProvider = {
      kind,
      currentKeyId: () => provider.currentKeyId(),
      generateDataKey: (c) => provider.generateDataKey(c),
      decrypt: (w, k, c) => {
        n++;
        return provider.decrypt(w, k, c);
      },
      reEncrypt: (w, k, c) => provider.reEncrypt(w, k, c),
      listKeyRotations: () => provider.listKeyRotations(),
      close: async () => {},
    };
    return { p, decrypts: () => n };
  };

  test('a remote KMS: the fresh DEK is cached, so reading right after writing asks the KMS nothing', async () => {
    const { p, decrypts } = counting('aws');
    const envelopes = new Envelopes({ provider: p, cache: new DekCache({ ttlSecs: 60 }) });
    const env = await envelopes.seal(enc('v'), ctx);
    expect(new TextDecoder().decode(await envelopes.open(env, ctx))).toBe('v');
    expect(decrypts()).toBe(0);
  });

  test('the local provider: not cached at seal; the first open unwraps and caches, later opens hit', async () => {
    const { p, decrypts } = counting('local');
    const cache = new DekCache({ ttlSecs: 60 });
    const envelopes = new Envelopes({ provider: p, cache });
    const env = await envelopes.seal(enc('v'), ctx);
    expect(cache.size).toBe(0);
    for (let i = 0; i < 3; i++) expect(new TextDecoder().decode(await envelopes.open(env, ctx))).toBe('v');
    expect(decrypts()).toBe(1);
    expect(cache.size).toBe(1);
  });

  test('cacheOnSeal overrides the default either way', async () => {
    const local = counting('local');
    const cached = new Envelopes({ provider: local.p, cache: new DekCache({ ttlSecs: 60 }), cacheOnSeal: true });
    await cached.open(await cached.seal(enc('v'), ctx), ctx);
    expect(local.decrypts()).toBe(0);
    const remote = counting('aws');
    const uncached = new Envelopes({ provider: remote.p, cache: new DekCache({ ttlSecs: 60 }), cacheOnSeal: false });
    await uncached.open(await uncached.seal(enc('v'), ctx), ctx);
    expect(remote.decrypts()).toBe(1);
  });
});

describe('nonce uniqueness', () => {
  test('100,000 seals never repeat a nonce', async () => {
    const provider = createLocalProvider({ masterKeyBase64: KEY_B64 });
    const envelopes = new Envelopes({ provider, cacheOnSeal: false });
    const seen = new Set<string>();
    const value = new Uint8Array(1);
    for (let i = 0; i < 100_000; i++) {
      const env = await envelopes.seal(value, { name: 'n', version: i });
      seen.add(Buffer.from(env.nonce).toString('latin1'));
    }
    expect(seen.size).toBe(100_000);
    await provider.close();
  });
});

describe('AAD binding', () => {
  test('distinct (name, version) pairs never encode alike, even when their "name:version" text does', () => {
    const pairs: SecretContext[] = [
      { name: 'a', version: 12 },
      { name: 'a1', version: 2 },
      { name: 'a:1', version: 2 },
      { name: 'a', version: 1 },
      { name: 'a\u0000', version: 1 },
      { name: 'é', version: 1 },
      { name: 'e\u0301', version: 1 },
      { name: 'x'.repeat(300), version: 0 },
      { name: 'x'.repeat(300), version: Number.MAX_SAFE_INTEGER },
    ];
    const seen = new Set(pairs.map((p) => Buffer.from(encodeAad(1, 'xchacha20poly1305', p)).toString('hex')));
    expect(seen.size).toBe(pairs.length);
  });

  test('the format version is part of the AAD', () => {
    const one = Buffer.from(encodeAad(1, 'xchacha20poly1305', ctx)).toString('hex');
    const two = Buffer.from(encodeAad(2, 'xchacha20poly1305', ctx)).toString('hex');
    expect(one).not.toBe(two);
  });

  test('names with lone surrogates (which would encode like U+FFFD) and bad versions are refused', async () => {
    const provider = createLocalProvider({ masterKeyBase64: KEY_B64 });
    const envelopes = new Envelopes({ provider });
    await expect(envelopes.seal(enc('x'), { name: 'a\uD800', version: 1 })).rejects.toThrow(TypeError);
    await expect(envelopes.seal(enc('x'), { name: '', version: 1 })).rejects.toThrow(TypeError);
    await expect(envelopes.seal(enc('x'), { name: 'a', version: 1.5 })).rejects.toThrow(RangeError);
    await expect(envelopes.seal(enc('x'), { name: 'a', version: -1 })).rejects.toThrow(RangeError);
    // A well-formed surrogate pair is fine.
    const env = await envelopes.seal(enc('x'), { name: 'key-\u{1F511}', version: 1 });
    expect(await envelopes.open(env, { name: 'key-\u{1F511}', version: 1 })).toHaveLength(1);
    await provider.close();
  });
});

describe.each([
  ['without a DEK cache', false],
  ['with a warm DEK cache', true],
])('tamper matrix (%s)', (_label, withCache) => {
  const provider = createLocalProvider({ masterKeyBase64: KEY_B64 });
  const envelopes = new Envelopes({ provider, cache: withCache ? new DekCache({ ttlSecs: 600 }) : undefined });
  let env: Envelope;
  const value = enc('correct horse battery staple');

  beforeAll(async () => {
    env = await envelopes.seal(value, ctx);
    expect(Buffer.from(await envelopes.open(env, ctx)).toString()).toBe('correct horse battery staple');
  });
  afterAll(() => provider.close());

  test('every single-bit flip of the ciphertext and of the tag', async () => {
    for (let i = 0; i < env.ciphertext.length * 8; i++) {
      const bad = clone(env);
      bad.ciphertext[i >> 3]! ^= 1 << (i & 7);
      await expectIntegrity(envelopes.open(bad, ctx));
    }
  });

  test('every single-bit flip of the nonce', async () => {
    for (let i = 0; i < env.nonce.length * 8; i++) {
      const bad = clone(env);
      bad.nonce[i >> 3]! ^= 1 << (i & 7);
      await expectIntegrity(envelopes.open(bad, ctx));
    }
  });

  test('every single-bit flip of every byte of the wrapped DEK', async () => {
    for (let i = 0; i < env.wrappedDek.length * 8; i++) {
      const bad = clone(env);
      bad.wrappedDek[i >> 3]! ^= 1 << (i & 7);
      await expectIntegrity(envelopes.open(bad, ctx));
    }
  });

  test('other name, other version, other format version, other algorithm', async () => {
    await expectIntegrity(envelopes.open(env, { ...ctx, name: 'payments/db-passworD' }));
    await expectIntegrity(envelopes.open(env, { ...ctx, name: `${ctx.name}x` }));
    await expectIntegrity(envelopes.open(env, { ...ctx, version: ctx.version + 1 }));
    await expectIntegrity(envelopes.open(env, { ...ctx, version: 0 }));
    for (const formatVersion of [0, 2, 255, 257]) await expectIntegrity(envelopes.open({ ...clone(env), formatVersion }, ctx));
    await expectIntegrity(envelopes.open({ ...clone(env), alg: 'aes-256-gcm' as 'xchacha20poly1305' }, ctx));
  });

  test('truncated, extended, swapped and malformed fields', async () => {
    const e = clone(env);
    await expectIntegrity(envelopes.open({ ...e, ciphertext: e.ciphertext.subarray(0, e.ciphertext.length - 1) }, ctx));
    await expectIntegrity(envelopes.open({ ...e, ciphertext: new Uint8Array([...e.ciphertext, 0]) }, ctx));
    await expectIntegrity(envelopes.open({ ...e, ciphertext: new Uint8Array(0) }, ctx));
    await expectIntegrity(envelopes.open({ ...e, nonce: e.nonce.subarray(0, 12) }, ctx));
    await expectIntegrity(envelopes.open({ ...e, wrappedDek: e.wrappedDek.subarray(1) }, ctx));
    await expectIntegrity(envelopes.open({ ...e, wrappedDek: new Uint8Array(0) }, ctx));
    await expectIntegrity(envelopes.open({ ...e, nonce: 'x' as unknown as Uint8Array }, ctx));
    await expectIntegrity(envelopes.open(null as unknown as Envelope, ctx));
    // Parts of two valid envelopes spliced together.
    const other = await envelopes.seal(value, ctx);
    await expectIntegrity(envelopes.open({ ...e, wrappedDek: other.wrappedDek }, ctx));
    await expectIntegrity(envelopes.open({ ...e, nonce: other.nonce }, ctx));
    await expectIntegrity(envelopes.open({ ...e, ciphertext: other.ciphertext }, ctx));
  });

  test('an envelope moved to another secret is refused', async () => {
    const a = await envelopes.seal(enc('A'), { name: 'a', version: 1 });
    await expectIntegrity(envelopes.open(a, { name: 'b', version: 1 }));
    await expectIntegrity(envelopes.open(a, { name: 'a', version: 2 }));
  });
});

describe('rewrap', () => {
  test('keeps ciphertext and nonce, changes only the wrapped DEK, and still opens', async () => {
    const k1 = Buffer.alloc(32, 1).toString('base64');
    const k2 = Buffer.alloc(32, 2).toString('base64');
    const oldRing = createLocalProvider({ masterKeyBase64: k1 });
    const env = await new Envelopes({ provider: oldRing }).seal(enc('v1'), ctx);
    const newRing = createLocalProvider({ masterKeyBase64: `${k2},${k1}` });
    const envelopes = new Envelopes({ provider: newRing });
    const moved = await envelopes.rewrap(env, ctx);
    expect(moved.kmsKeyId).toBe(newRing.currentKeyId());
    expect(moved.kmsKeyId).not.toBe(env.kmsKeyId);
    expect(Buffer.compare(moved.ciphertext, env.ciphertext)).toBe(0);
    expect(Buffer.compare(moved.nonce, env.nonce)).toBe(0);
    expect(Buffer.from(await envelopes.open(moved, ctx)).toString()).toBe('v1');
    await expectIntegrity(envelopes.rewrap(env, { ...ctx, version: 4 }));
    await oldRing.close();
    await newRing.close();
  });
});
