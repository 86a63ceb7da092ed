// The raw-bytes master key of the local provider, as the sealed start uses it: the provider keeps
// its own copy (the caller wipes its buffer right away), refuses a bad ring, and the id matches
// what a base64-configured provider with the same key reports (data written under one opens
// under the other).
import { randomBytes } from 'node:crypto';
import { CryptoError, createLocalProvider, localKeyId } from '@coffer/crypto';

const ctx = { name: 'app/db', version: 1 };

test('masterKeys: the caller may wipe its buffer at once; wrapping and unwrapping still work; same id as base64', async () => {
  const key = Uint8Array.from(randomBytes(32));
  const b64 = Buffer.from(key).toString('base64');
  const id = localKeyId(key);
  const raw = createLocalProvider({ masterKeys: [key] });
  key.fill(0);
  expect(raw.currentKeyId()).toBe(id);
  expect(raw.ephemeral).toBe(false);
  const dk = await raw.generateDataKey(ctx);
  const viaText = createLocalProvider({ masterKeyBase64: b64 });
  expect(Buffer.from(await viaText.decrypt(dk.wrappedDek, dk.kmsKeyId, ctx)).equals(Buffer.from(dk.plaintext))).toBe(true);
  await raw.close();
  await expect(raw.decrypt(dk.wrappedDek, dk.kmsKeyId, ctx)).rejects.toMatchObject({ code: 'CRYPTO_KMS_UNAVAILABLE' });
  await viaText.close();
});

test.each([
  ['an empty ring', { masterKeys: [] }],
  ['a short key', { masterKeys: [new Uint8Array(31)] }],
  ['both forms', { masterKeys: [new Uint8Array(32)], masterKeyBase64: Buffer.alloc(32).toString('base64') }],
])('masterKeys refuses %s', (_what, opts) => {
  expect(() => createLocalProvider(opts)).toThrow(CryptoError);
});
