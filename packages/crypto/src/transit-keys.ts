// Transit key versions at rest: sealed like a secret value, under the KeyProvider, so a disk, a
// snapshot or the Raft log never holds one in the clear (the AEAD and keyring layers are in
// transit.ts).
import { randomBytes as osRandomBytes, zeroize, type RandomBytes } from './bytes.js';
import { CryptoError } from './errors.js';
import type { SecretContext } from './context.js';
import type { Envelope, Envelopes } from './envelope.js';
import { assertTransitRef, TRANSIT_KEY_LENGTH, type TransitKeyring, type TransitKeyType } from './transit.js';

// ---------------------------------------------------------------------------------------------
// Storing key versions: sealed like a secret value, under the KeyProvider.

/** Identifies one stored key version. */
export interface TransitKeyRef {
  readonly name: string;
  readonly type: TransitKeyType;
  readonly version: number;
}

/**
 * The envelope context a transit key version is sealed under: name `transit:{type}:{name}`,
 * version = the key version. Secret names cannot contain `:`, so no secret's envelope (or
 * wrapped DEK, whose KMS encryption context is this same pair) can be substituted for a transit
 * key's, and a key version cannot be relabelled as another key, type or version.
 *
 * @param ref - key name, type and version.
 * @returns the SecretContext for {@link Envelopes.seal}/{@link Envelopes.open}.
 * @throws TypeError / RangeError for a bad name, type or version.
 * @example
 * ```ts
 * transitKeyContext({ name: 'orders', type: 'aes256-gcm', version: 2 }); // { name: 'transit:aes256-gcm:orders', version: 2 }
 * ```
 */
export function transitKeyContext(ref: TransitKeyRef): SecretContext {
  assertTransitRef(ref.name, ref.type, ref.version);
  return { name: `transit:${ref.type}:${ref.name}`, version: ref.version };
}

/**
 * Seals a transit key version's raw bytes for the replicated state: a fresh DEK from the key
 * provider (KMS or local), XChaCha20-Poly1305 under the DEK, the DEK wrapped and bound to
 * {@link transitKeyContext}. The result is an ordinary {@link Envelope}: the KMS re-wrap pass
 * handles it like a secret version's.
 *
 * @param envelopes - the node's Envelopes (provider and DEK cache).
 * @param key - the 32 raw key bytes (still the caller's; see {@link generateTransitKeyVersion}).
 * @param ref - what the bytes are.
 * @returns the envelope to store in the key's record.
 * @throws RangeError when `key` is not 32 bytes; CRYPTO_KMS_* from the provider.
 * @example
 * ```ts
 * const env = await sealTransitKey(envelopes, key, { name: 'orders', type: 'xchacha20-poly1305', version: 1 });
 * ```
 */
export async function sealTransitKey(envelopes: Envelopes, key: Uint8Array, ref: TransitKeyRef): Promise<Envelope> {
  if (!(key instanceof Uint8Array) || key.length !== TRANSIT_KEY_LENGTH) throw new RangeError('transit key must be 32 bytes');
  return envelopes.seal(key, transitKeyContext(ref));
}

/**
 * Opens a stored transit key version.
 *
 * @param envelopes - the node's Envelopes.
 * @param env - the stored envelope.
 * @param ref - the name, type and version the caller expects it to be.
 * @returns the 32 key bytes (a fresh buffer; the caller — usually the keyring layer — zeroizes it).
 * @throws {CRYPTO_INTEGRITY} tampered envelope, another key/type/version, or not 32 bytes.
 * @throws {CRYPTO_KMS_*} provider failures.
 * @example
 * ```ts
 * const ring = { name, type, latestVersion, minDecryptionVersion,
 *   openVersion: (v) => openTransitKey(envelopes, record.versions[v], { name, type, version: v }) };
 * ```
 */
export async function openTransitKey(envelopes: Envelopes, env: Envelope, ref: TransitKeyRef): Promise<Uint8Array> {
  const key = await envelopes.open(env, transitKeyContext(ref));
  if (key.length !== TRANSIT_KEY_LENGTH) {
    zeroize(key);
    throw new CryptoError('CRYPTO_INTEGRITY', 'stored transit key version is not 32 bytes');
  }
  return key;
}

/**
 * Creates a new key version: 32 random bytes, sealed with {@link sealTransitKey}, then wiped.
 * The node proposes the returned envelope (create = version 1, rotate = latest + 1).
 *
 * @param envelopes - the node's Envelopes.
 * @param ref - the new version's name, type and number.
 * @param randomBytes - CSPRNG (default the OS).
 * @returns the sealed key version.
 * @throws CRYPTO_KMS_* from the provider.
 * @example
 * ```ts
 * const env = await generateTransitKeyVersion(envelopes, { name: 'orders', type: 'aes256-gcm', version: latest + 1 });
 * ```
 */
export async function generateTransitKeyVersion(envelopes: Envelopes, ref: TransitKeyRef, randomBytes: RandomBytes = osRandomBytes): Promise<Envelope> {
  transitKeyContext(ref);
  const key = randomBytes(TRANSIT_KEY_LENGTH);
  try {
    return await sealTransitKey(envelopes, key, ref);
  } finally {
    zeroize(key);
  }
}

/** A transit key as the replicated state keeps it: policy plus one sealed envelope per version. */
export interface TransitKeyRecord {
  readonly name: string;
  readonly type: TransitKeyType;
  readonly latestVersion: number;
  readonly minDecryptionVersion: number;
  /** The sealed versions (from {@link generateTransitKeyVersion}), by version number. */
  readonly versions: ReadonlyMap<number, Envelope>;
}

/**
 * The keyring of a stored key: versions are opened through the node's Envelopes (DEK cache and
 * key provider) only when an operation needs them, and the keyring layer wipes each opened copy.
 *
 * @param envelopes - the node's Envelopes.
 * @param record - the key's replicated record.
 * @returns a {@link TransitKeyring} for {@link transitEncrypt} and friends.
 * @throws {CRYPTO_INTEGRITY} (from `openVersion`) when a version the policy admits has no stored
 *   envelope, or its envelope does not open as that key version: the state is inconsistent (500).
 * @example
 * ```ts
 * const ct = await transitEncrypt(transitKeyring(envelopes, state.transitKeys.get(name)), plaintext);
 * ```
 */
export function transitKeyring(envelopes: Envelopes, record: TransitKeyRecord): TransitKeyring {
  const { name, type, latestVersion, minDecryptionVersion, versions } = record;
  return {
    name,
    type,
    latestVersion,
    minDecryptionVersion,
    openVersion(version: number): Promise<Uint8Array> {
      const env = versions.get(version);
      if (env === undefined) {
        return Promise.reject(new CryptoError('CRYPTO_INTEGRITY', `transit key "${name}" has no stored version ${version}`));
      }
      return openTransitKey(envelopes, env, { name, type, version });
    },
  };
}
