// The local key provider: configuration errors, the ephemeral-key warning, the key ring.
import {
  createLocalProvider,
  CryptoError,
  DekCache,
  Envelopes,
  EPHEMERAL_KEY_WARNING,
  LOCAL_MASTER_KEY_ENV,
  localKeyId,
  parseLocalMasterKeys,
  type CryptoErrorCode,
} from '../src/index.js';

const b64 = (fill: number, len = 32): string => Buffer.alloc(len, fill).toString('base64');
const ctx = { name: 'svc/api-key', version: 1 };
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<CryptoErrorCode | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof CryptoError) return err.code;
    throw err;
  }
  return undefined;
}

describe('configuration errors name COFFER_LOCAL_MASTER_KEY and never echo the value', () => {
  const cases: Array<[string, string | string[]]> = [
    ['not base64', 'not*base64!'],
    ['base64 with bad padding', 'AAAA=A=='],
    ['too short', b64(1, 16)],
    ['too long', b64(1, 33)],
    ['empty', ''],
    ['whitespace only', '   '],
    ['an empty ring entry', `${b64(1)},,${b64(2)}`],
    ['a bad second ring entry', `${b64(1)},${b64(2, 31)}`],
    ['a duplicate ring entry', `${b64(1)},${b64(2)},${b64(1)}`],
    ['an empty array', []],
    ['base64url alphabet', Buffer.alloc(32, 0xfb).toString('base64url')],
  ];
  test.each(cases)('%s', (_label, value) => {
    let thrown: unknown;
    try {
      createLocalProvider({ masterKeyBase64: value });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(CryptoError);
    const err = thrown as CryptoError;
    expect(err.code).toBe('CRYPTO_CONFIG');
    expect(err.message).toContain(LOCAL_MASTER_KEY_ENV);
    const values = Array.isArray(value) ? value : value.split(',');
    for (const v of values) if (v.trim().length >= 8) expect(err.message).not.toContain(v.trim());
  });

  test('the message says which ring entry is wrong', () => {
    expect(() => parseLocalMasterKeys(`${b64(1)},${b64(2, 31)}`)).toThrow(/entry 2 of 2.*31 bytes.*exactly 32/);
  });

  test('surrounding whitespace is tolerated; valid keys parse in order', () => {
    const keys = parseLocalMasterKeys(` ${b64(1)} , ${b64(2)}\n`);
    expect(keys.map((k) => k[0])).toEqual([1, 2]);
  });
});

describe('ephemeral key', () => {
  test('no key configured: a random key and one loud warning', async () => {
    const warnings: string[] = [];
    const a = createLocalProvider({ onWarning: (m) => warnings.push(m) });
    const b = createLocalProvider({ onWarning: (m) => warnings.push(m) });
    expect(warnings).toEqual([EPHEMERAL_KEY_WARNING, EPHEMERAL_KEY_WARNING]);
    expect(warnings[0]).toMatch(/COFFER_LOCAL_MASTER_KEY is not set.*UNREADABLE AFTER A RESTART/);
    expect(a.ephemeral).toBe(true);
    expect(a.currentKeyId()).not.toBe(b.currentKeyId());
    // A second process (b) with its own ephemeral key cannot read a's secrets.
    const env = await new Envelopes({ provider: a }).seal(enc('x'), ctx);
    expect(await codeOf(new Envelopes({ provider: b }).open(env, ctx))).toBe('CRYPTO_KMS_KEY_NOT_FOUND');
    await a.close();
    await b.close();
  });

  test('a configured key gives no warning', () => {
    const warnings: string[] = [];
    const p = createLocalProvider({ masterKeyBase64: b64(9), onWarning: (m) => warnings.push(m) });
    expect(p.ephemeral).toBe(false);
    expect(warnings).toEqual([]);
  });
});

describe('key ring', () => {
  const k1 = b64(1);
  const k2 = b64(2);
  const k3 = b64(3);

  test('key ids are stable, derived from the key, and do not depend on ring position', () => {
    const a = createLocalProvider({ masterKeyBase64: k1 });
    const b = createLocalProvider({ masterKeyBase64: [k2, k1] });
    expect(a.currentKeyId()).toMatch(/^local:[0-9a-f]{16}$/);
    expect(b.keyIds()).toEqual([localKeyId(Buffer.from(k2, 'base64')), a.currentKeyId()]);
  });

  test('rotation: new writes use the new current key, old envelopes still open, rewrap moves them', async () => {
    const before = createLocalProvider({ masterKeyBase64: k1 });
    const oldEnv = await new Envelopes({ provider: before }).seal(enc('old'), ctx);
    expect(await before.listKeyRotations()).toEqual([]);

    // The operator prepends k2: it becomes current, k1 stays for decryption.
    const after = createLocalProvider({ masterKeyBase64: `${k2},${k1}` });
    const envelopes = new Envelopes({ provider: after, cache: new DekCache({ ttlSecs: 60 }) });
    expect(Buffer.from(await envelopes.open(oldEnv, ctx)).toString()).toBe('old');
    const newEnv = await envelopes.seal(enc('new'), { ...ctx, version: 2 });
    expect(newEnv.kmsKeyId).toBe(after.currentKeyId());
    expect(newEnv.kmsKeyId).not.toBe(oldEnv.kmsKeyId);
    const rotations = await after.listKeyRotations();
    expect(rotations).toEqual([{ keyId: after.currentKeyId(), rotationId: after.currentKeyId(), rotationType: 'RING' }]);

    const moved = await envelopes.rewrap(oldEnv, ctx);
    expect(moved.kmsKeyId).toBe(after.currentKeyId());

    // Once every version is re-wrapped, k1 can leave the ring; un-rewrapped data would not open.
    const trimmed = createLocalProvider({ masterKeyBase64: k2 });
    const e2 = new Envelopes({ provider: trimmed });
    expect(Buffer.from(await e2.open(moved, ctx)).toString()).toBe('old');
    expect(Buffer.from(await e2.open(newEnv, { ...ctx, version: 2 })).toString()).toBe('new');
    expect(await codeOf(e2.open(oldEnv, ctx))).toBe('CRYPTO_KMS_KEY_NOT_FOUND');

    // A third rotation lists both, oldest first.
    const later = createLocalProvider({ masterKeyBase64: [k3, k2, k1] });
    expect((await later.listKeyRotations()).map((r) => r.keyId)).toEqual(later.keyIds().slice(0, 2).reverse());
    for (const p of [before, after, trimmed, later]) await p.close();
  });

  test('wrong master key: a clear error naming the variable, never data', async () => {
    const writer = createLocalProvider({ masterKeyBase64: k1 });
    const reader = createLocalProvider({ masterKeyBase64: k3 });
    const env = await new Envelopes({ provider: writer }).seal(enc('x'), ctx);
    let thrown: unknown;
    try {
      await new Envelopes({ provider: reader }).open(env, ctx);
    } catch (err) {
      thrown = err;
    }
    expect((thrown as CryptoError).code).toBe('CRYPTO_KMS_KEY_NOT_FOUND');
    expect((thrown as CryptoError).message).toContain(env.kmsKeyId);
    expect((thrown as CryptoError).message).toContain(LOCAL_MASTER_KEY_ENV);
  });

  test('provider level: a wrapped DEK only unwraps for its own context and key id', async () => {
    const p = createLocalProvider({ masterKeyBase64: `${k1},${k2}` });
    const dk = await p.generateDataKey(ctx);
    expect(dk.plaintext).toHaveLength(32);
    const back = await p.decrypt(dk.wrappedDek, dk.kmsKeyId, ctx);
    expect(Buffer.compare(back, dk.plaintext)).toBe(0);
    expect(await codeOf(p.decrypt(dk.wrappedDek, dk.kmsKeyId, { ...ctx, version: 2 }))).toBe('CRYPTO_KMS_INVALID_CIPHERTEXT');
    expect(await codeOf(p.decrypt(dk.wrappedDek, dk.kmsKeyId, { ...ctx, name: 'other' }))).toBe('CRYPTO_KMS_INVALID_CIPHERTEXT');
    // Same bytes presented as wrapped by the other ring key.
    expect(await codeOf(p.decrypt(dk.wrappedDek, p.keyIds()[1]!, ctx))).toBe('CRYPTO_KMS_INVALID_CIPHERTEXT');
    expect(await codeOf(p.reEncrypt(dk.wrappedDek, dk.kmsKeyId, { ...ctx, version: 9 }))).toBe('CRYPTO_KMS_INVALID_CIPHERTEXT');
    await p.close();
  });

  test('hooks see one call per operation; close() makes later calls fail', async () => {
    const ops: string[] = [];
    const errors: string[] = [];
    const p = createLocalProvider({
      masterKeyBase64: k1,
      hooks: { onKmsLatency: (op, s) => { expect(s).toBeGreaterThanOrEqual(0); ops.push(op); }, onKmsError: (op, code) => errors.push(`${op}:${code}`) },
    });
    const dk = await p.generateDataKey(ctx);
    await p.decrypt(dk.wrappedDek, dk.kmsKeyId, ctx);
    await p.reEncrypt(dk.wrappedDek, dk.kmsKeyId, ctx);
    await codeOf(p.decrypt(dk.wrappedDek, dk.kmsKeyId, { ...ctx, version: 5 }));
    expect(ops).toEqual(['GenerateDataKey', 'Decrypt', 'ReEncrypt', 'Decrypt']);
    expect(errors).toEqual(['Decrypt:CRYPTO_KMS_INVALID_CIPHERTEXT']);
    await p.close();
    expect(await codeOf(p.generateDataKey(ctx))).toBe('CRYPTO_KMS_UNAVAILABLE');
    expect(await codeOf(() => p.currentKeyId())).toBe('CRYPTO_KMS_UNAVAILABLE');
  });
});
