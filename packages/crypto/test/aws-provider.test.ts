// The aws key provider against a real KMS protocol implementation (moto_server), started and
// stopped by this file. These tests fail (they do not skip) if moto_server cannot start.
import { createServer, type Server, type Socket } from 'node:net';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  KMSClient,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import {
  createAwsProvider,
  CryptoError,
  DekCache,
  Envelopes,
  type AwsKeyProvider,
  type CryptoErrorCode,
  type KmsOperation,
} from '../src/index.js';
import { startMoto, freePort, type Moto } from './helpers/moto.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const region = 'us-east-1';
const ctx = { name: 'payments/stripe-key', version: 7 };
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function failure(p: Promise<unknown>): Promise<CryptoError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CryptoError) return err;
    throw err;
  }
  throw new Error('expected a CryptoError, but the call succeeded');
}

let moto: Moto;
let admin: KMSClient;
let keyArn: string;
const providers: AwsKeyProvider[] = [];

function provider(extra: Partial<Parameters<typeof createAwsProvider>[0]> = {}): AwsKeyProvider {
  const p = createAwsProvider({ keyId: keyArn, endpoint: moto.endpoint, region, credentials, timeoutMs: 3_000, ...extra });
  providers.push(p);
  return p;
}

beforeAll(async () => {
  moto = await startMoto();
  admin = new KMSClient({ endpoint: moto.endpoint, region, credentials });
  const key = await admin.send(new CreateKeyCommand({ Description: 'coffer test key' }));
  keyArn = key.KeyMetadata!.Arn!;
}, 60_000);

afterAll(async () => {
  for (const p of providers) await p.close();
  admin?.destroy();
  await moto?.stop();
}, 30_000);

test('GenerateDataKey: a 32-byte DEK, a wrapped blob and the key ARN; Decrypt returns the same DEK', async () => {
  const p = provider();
  const dk = await p.generateDataKey(ctx);
  expect(dk.plaintext).toHaveLength(32);
  expect(dk.kmsKeyId).toBe(keyArn);
  expect(dk.wrappedDek.length).toBeGreaterThan(32);
  const back = await p.decrypt(dk.wrappedDek, dk.kmsKeyId, ctx);
  expect(Buffer.compare(back, dk.plaintext)).toBe(0);
  expect(p.currentKeyId()).toBe(keyArn);
});

test('the encryption context is sent: KMS itself refuses to unwrap for another name or version', async () => {
  const p = provider();
  const dk = await p.generateDataKey(ctx);
  expect((await failure(p.decrypt(dk.wrappedDek, dk.kmsKeyId, { ...ctx, version: 8 }))).code).toBe('CRYPTO_KMS_INVALID_CIPHERTEXT');
  expect((await failure(p.decrypt(dk.wrappedDek, dk.kmsKeyId, { ...ctx, name: 'other' }))).code).toBe('CRYPTO_KMS_INVALID_CIPHERTEXT');
  // Direct check that the context is exactly the documented one.
  const raw = await admin.send(
    new DecryptCommand({ CiphertextBlob: dk.wrappedDek, KeyId: keyArn, EncryptionContext: { 'coffer:name': ctx.name, 'coffer:version': '7' } }),
  );
  expect(Buffer.compare(raw.Plaintext!, dk.plaintext)).toBe(0);
  await expect(admin.send(new DecryptCommand({ CiphertextBlob: dk.wrappedDek, KeyId: keyArn }))).rejects.toMatchObject({
    name: 'InvalidCiphertextException',
  });
});

test('envelopes over AWS: round trip; a moved or tampered envelope fails with an integrity error', async () => {
  const envelopes = new Envelopes({ provider: provider() });
  const env = await envelopes.seal(enc('sk_live_123'), ctx);
  expect(env.kmsKeyId).toBe(keyArn);
  expect(Buffer.from(await envelopes.open(env, ctx)).toString()).toBe('sk_live_123');
  expect((await failure(envelopes.open(env, { ...ctx, version: 6 }))).code).toBe('CRYPTO_INTEGRITY');
  const bad = { ...env, wrappedDek: env.wrappedDek.slice() };
  bad.wrappedDek[bad.wrappedDek.length - 1]! ^= 1;
  expect((await failure(envelopes.open(bad, ctx))).code).toBe('CRYPTO_INTEGRITY');
});

test('unknown key: a typed not-found error', async () => {
  const p = provider({ keyId: 'arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000' });
  expect((await failure(p.generateDataKey(ctx))).code).toBe('CRYPTO_KMS_KEY_NOT_FOUND');
});

test('RotateKeyOnDemand → ListKeyRotations shows it → ReEncrypt gives a new blob that decrypts to the same DEK', async () => {
  const key = await admin.send(new CreateKeyCommand({ Description: 'rotation' }));
  const arn = key.KeyMetadata!.Arn!;
  await admin.send(new CreateAliasCommand({ AliasName: 'alias/coffer-rotation', TargetKeyId: arn }));
  // Configured by alias, as operators usually do; stored ids are ARNs.
  const p = provider({ keyId: 'alias/coffer-rotation' });
  expect(await p.listKeyRotations()).toEqual([]);
  const envelopes = new Envelopes({ provider: p });
  const env = await envelopes.seal(enc('before rotation'), ctx);
  expect(env.kmsKeyId).toBe(arn);
  const dek = await p.decrypt(env.wrappedDek, env.kmsKeyId, ctx);

  await admin.send(new RotateKeyOnDemandCommand({ KeyId: arn }));
  const rotations = await p.listKeyRotations();
  expect(rotations).toHaveLength(1);
  expect(rotations[0]).toMatchObject({ keyId: arn, rotationType: 'ON_DEMAND' });
  expect(rotations[0]!.rotatedAt).toBeInstanceOf(Date);
  expect(rotations[0]!.rotationId).toBe(rotations[0]!.rotatedAt!.toISOString());

  const moved = await envelopes.rewrap(env, ctx);
  expect(moved.kmsKeyId).toBe(arn);
  expect(Buffer.compare(moved.wrappedDek, env.wrappedDek)).not.toBe(0);
  expect(Buffer.compare(moved.ciphertext, env.ciphertext)).toBe(0);
  const dek2 = await p.decrypt(moved.wrappedDek, moved.kmsKeyId, ctx);
  expect(Buffer.compare(dek2, dek)).toBe(0);
  expect(Buffer.from(await envelopes.open(moved, ctx)).toString()).toBe('before rotation');
  // ReEncrypt also enforces the source encryption context.
  expect((await failure(p.reEncrypt(env.wrappedDek, env.kmsKeyId, { ...ctx, version: 1 }))).code).toBe('CRYPTO_KMS_INVALID_CIPHERTEXT');
});

test('an unreachable KMS: typed unavailable error after bounded retries, while the DEK cache keeps reads working', async () => {
  // A moto of its own, so stopping it does not disturb the other tests.
  const own = await startMoto();
  try {
    const kms = new KMSClient({ endpoint: own.endpoint, region, credentials });
    const arn = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
    kms.destroy();
    const calls: KmsOperation[] = [];
    const errors: CryptoErrorCode[] = [];
    const p = createAwsProvider({
      keyId: arn,
      endpoint: own.endpoint,
      region,
      credentials,
      timeoutMs: 1_000,
      maxAttempts: 3,
      backoffBaseMs: 20,
      backoffMaxMs: 100,
      hooks: { onKmsLatency: (op) => calls.push(op), onKmsError: (_op, code) => errors.push(code) },
    });
    providers.push(p);
    let hits = 0;
    const envelopes = new Envelopes({ provider: p, cache: new DekCache({ ttlSecs: 300, onHit: () => hits++ }) });
    const cached = await envelopes.seal(enc('cached value'), ctx); // seal puts its DEK in the cache
    const uncached = await new Envelopes({ provider: p }).seal(enc('not cached'), { ...ctx, version: 8 });

    await own.stop();
    calls.length = 0;

    expect(Buffer.from(await envelopes.open(cached, ctx)).toString()).toBe('cached value');
    expect(hits).toBe(1);
    expect(calls).toEqual([]); // served without the KMS

    const t0 = Date.now();
    const err = await failure(envelopes.open(uncached, { ...ctx, version: 8 }));
    const elapsed = Date.now() - t0;
    expect(err.code).toBe('CRYPTO_KMS_UNAVAILABLE');
    expect(err.message).not.toContain('not cached');
    expect(calls).toEqual(['Decrypt', 'Decrypt', 'Decrypt']); // maxAttempts, no more
    expect(errors).toEqual(['CRYPTO_KMS_UNAVAILABLE', 'CRYPTO_KMS_UNAVAILABLE', 'CRYPTO_KMS_UNAVAILABLE']);
    // Bound: 3 attempts x 1 s timeout + 2 backoffs of at most 100 ms (plus generous slack).
    expect(elapsed).toBeLessThan(10_000);
    expect((await failure(p.generateDataKey(ctx))).code).toBe('CRYPTO_KMS_UNAVAILABLE');
  } finally {
    await own.stop();
  }
}, 60_000);

test('a KMS that accepts connections but never answers: unavailable within the per-attempt timeout', async () => {
  const sockets = new Set<Socket>();
  const blackhole: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  const port = await freePort();
  await new Promise<void>((r) => blackhole.listen(port, '127.0.0.1', () => r()));
  try {
    const p = createAwsProvider({
      keyId: 'arn:aws:kms:us-east-1:123456789012:key/11111111-1111-1111-1111-111111111111',
      endpoint: `http://127.0.0.1:${port}`,
      region,
      credentials,
      timeoutMs: 300,
      maxAttempts: 2,
      backoffBaseMs: 10,
      backoffMaxMs: 10,
    });
    providers.push(p);
    const t0 = Date.now();
    const err = await failure(p.decrypt(new Uint8Array(100), 'arn:aws:kms:us-east-1:123456789012:key/x', ctx));
    expect(err.code).toBe('CRYPTO_KMS_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(10_000);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => blackhole.close(() => r()));
  }
}, 30_000);

test('configuration errors are typed', () => {
  expect(() => createAwsProvider({ keyId: '' })).toThrow(CryptoError);
  expect(() => createAwsProvider({ keyId: 'k', maxAttempts: 0 })).toThrow(/maxAttempts/);
  expect(() => createAwsProvider({ keyId: 'k', timeoutMs: -5 })).toThrow(/timeoutMs/);
});
