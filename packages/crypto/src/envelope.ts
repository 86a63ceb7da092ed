// Envelope encryption of one secret version: a fresh DEK from the key provider, a fresh 24-byte
// nonce, XChaCha20-Poly1305 with AAD bound to (format, alg, name, version). Only the envelope
// (ciphertext, nonce, wrapped DEK, key id) ever leaves this module.
import { aead, KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH } from './internal/aead.js';
import { assertContext, encodeAad, ENVELOPE_ALG, ENVELOPE_FORMAT_VERSION, type SecretContext } from './context.js';
import { CryptoError } from './errors.js';
import { randomBytes as osRandomBytes, zeroize, type RandomBytes } from './bytes.js';
import type { DekCache } from './dek-cache.js';
import type { KeyProvider } from './key-provider.js';

/**
 * A sealed secret version, stored as-is in the replicated state. Field names are a contract with
 * @coffer/state (which declares an identical structural type).
 */
export interface Envelope {
  /** Envelope format (1 today); bound into the AAD. */
  formatVersion: number;
  alg: 'xchacha20poly1305';
  /** 24 bytes, fresh random per seal. */
  nonce: Uint8Array;
  /** Ciphertext || 16-byte Poly1305 tag. */
  ciphertext: Uint8Array;
  /** The DEK as wrapped by the key provider. */
  wrappedDek: Uint8Array;
  /** Id of the key that wrapped the DEK (local: ring entry id; aws: key ARN). */
  kmsKeyId: string;
}

/** What sealing and opening need. */
export interface EnvelopeDeps {
  /** Creates and unwraps DEKs. */
  readonly provider: KeyProvider;
  /** Unwrapped-DEK cache; omit (or TTL 0) to ask the provider on every open. */
  readonly cache?: DekCache | undefined;
  /** CSPRNG for nonces (default: the OS). */
  readonly randomBytes?: RandomBytes | undefined;
  /**
   * Put a freshly generated DEK in the cache at seal time, so reading a value right after
   * writing it costs no KMS call. Default: true for a remote KMS (`aws`), false for the `local`
   * provider, whose unwrap is one in-process AEAD open — cheaper than keying and filling the cache
   * on every write for versions that are mostly never read before the next write supersedes them
   * (an open still caches the DEK it unwrapped).
   */
  readonly cacheOnSeal?: boolean | undefined;
}

// Where a cached DEK is copied for the one synchronous AEAD call of a cache-hit open; wiped after.
const cachedDek = new Uint8Array(KEY_LENGTH);

function integrity(message: string, cause?: unknown): CryptoError {
  return new CryptoError('CRYPTO_INTEGRITY', message, cause === undefined ? undefined : { cause });
}

// Storage is untrusted: any shape problem is an integrity failure, not a programmer error.
function checkEnvelope(env: Envelope): void {
  if (env === null || typeof env !== 'object') throw integrity('envelope is not an object');
  if (env.formatVersion !== ENVELOPE_FORMAT_VERSION) throw integrity('unsupported envelope format version');
  if (env.alg !== ENVELOPE_ALG) throw integrity('unsupported envelope algorithm');
  if (!(env.nonce instanceof Uint8Array) || env.nonce.length !== NONCE_LENGTH) throw integrity('envelope nonce is malformed');
  if (!(env.ciphertext instanceof Uint8Array) || env.ciphertext.length < TAG_LENGTH) throw integrity('envelope ciphertext is malformed');
  if (!(env.wrappedDek instanceof Uint8Array) || env.wrappedDek.length === 0) throw integrity('envelope wrapped DEK is malformed');
  if (typeof env.kmsKeyId !== 'string' || env.kmsKeyId === '') throw integrity('envelope key id is malformed');
}

/**
 * Seals and opens secret versions. Build one per node and share it.
 *
 * @example
 * ```ts
 * const envelopes = new Envelopes({ provider, cache: new DekCache({ ttlSecs: 300 }) });
 * const env = await envelopes.seal(value, { name: 'payments/db', version: 4 });
 * const value2 = await envelopes.open(env, { name: 'payments/db', version: 4 });
 * ```
 */
export class Envelopes {
  readonly #provider: KeyProvider;
  readonly #cache: DekCache | undefined;
  readonly #random: RandomBytes;
  readonly #cacheOnSeal: boolean;

  /** @param deps - key provider, optional DEK cache, optional CSPRNG. */
  constructor(deps: EnvelopeDeps) {
    if (!deps || typeof deps.provider !== 'object') throw new TypeError('Envelopes: deps.provider is required');
    this.#provider = deps.provider;
    this.#cache = deps.cache;
    this.#random = deps.randomBytes ?? osRandomBytes;
    this.#cacheOnSeal = deps.cacheOnSeal ?? deps.provider.kind !== 'local';
  }

  /**
   * Encrypts one secret version under a fresh DEK and nonce. The caller still owns (and should
   * zeroize) `plaintext`; the DEK is zeroized here.
   *
   * @param plaintext - the secret value.
   * @param ctx - secret name and version; bound into the AAD and the KMS encryption context.
   * @returns the envelope to store.
   * @throws {CRYPTO_KMS_*} when the provider cannot create a data key.
   * @throws TypeError / RangeError for a bad context or non-Uint8Array plaintext.
   */
  async seal(plaintext: Uint8Array, ctx: SecretContext): Promise<Envelope> {
    if (!(plaintext instanceof Uint8Array)) throw new TypeError('seal: plaintext must be a Uint8Array');
    const aad = encodeAad(ENVELOPE_FORMAT_VERSION, ENVELOPE_ALG, ctx);
    const dataKey = await this.#provider.generateDataKey(ctx);
    const dek = dataKey.plaintext;
    try {
      if (dek.length !== KEY_LENGTH) throw new CryptoError('CRYPTO_KMS_ERROR', 'key provider returned a DEK of the wrong length');
      const nonce = this.#random(NONCE_LENGTH);
      if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_LENGTH) throw new RangeError('randomBytes returned a bad nonce');
      const ciphertext = aead.seal(dek, nonce, plaintext, aad);
      const cache = this.#cache;
      if (this.#cacheOnSeal && cache?.enabled) cache.set(cache.keyFor(dataKey.wrappedDek, dataKey.kmsKeyId, ctx), dek);
      return {
        formatVersion: ENVELOPE_FORMAT_VERSION,
        alg: ENVELOPE_ALG,
        nonce,
        ciphertext,
        wrappedDek: dataKey.wrappedDek,
        kmsKeyId: dataKey.kmsKeyId,
      };
    } finally {
      zeroize(dek);
    }
  }

  /**
   * Decrypts an envelope for the given context. Fails closed: never returns wrong plaintext.
   *
   * @param env - the stored envelope.
   * @param ctx - the name and version the caller expects this envelope to be.
   * @returns the plaintext (the caller zeroizes it after use).
   * @throws {CRYPTO_INTEGRITY} tampered or malformed envelope, wrapped DEK refused, or another name/version.
   * @throws {CRYPTO_KMS_UNAVAILABLE | CRYPTO_KMS_THROTTLED | CRYPTO_KMS_*} when the DEK is not cached and the provider fails.
   */
  async open(env: Envelope, ctx: SecretContext): Promise<Uint8Array> {
    assertContext(ctx);
    checkEnvelope(env);
    const aad = encodeAad(env.formatVersion, env.alg, ctx);
    const cache = this.#cache;
    const cacheKey = cache?.enabled ? cache.keyFor(env.wrappedDek, env.kmsKeyId, ctx) : undefined;
    if (cacheKey !== undefined && cache!.getInto(cacheKey, cachedDek)) {
      // Cache hit: the DEK sits in the module's scratch buffer only until the AEAD is done (no
      // await in between, so no other open can touch it), then it is wiped.
      try {
        return aead.open(cachedDek, env.nonce, env.ciphertext, aad);
      } finally {
        zeroize(cachedDek);
      }
    }
    let dek: Uint8Array;
    try {
      dek = await this.#provider.decrypt(env.wrappedDek, env.kmsKeyId, ctx);
    } catch (err) {
      // A refused wrapped DEK is tampering (or the wrong context) as far as the caller knows.
      if (err instanceof CryptoError && err.code === 'CRYPTO_KMS_INVALID_CIPHERTEXT') {
        throw integrity('wrapped DEK was refused for this name and version', err);
      }
      throw err;
    }
    try {
      if (dek.length !== KEY_LENGTH) throw integrity('unwrapped DEK has the wrong length');
      const plaintext = aead.open(dek, env.nonce, env.ciphertext, aad);
      // Cached only now that the DEK has proven itself against this envelope's tag.
      if (cacheKey !== undefined) cache!.set(cacheKey, dek);
      return plaintext;
    } finally {
      zeroize(dek);
    }
  }

  /**
   * Re-wraps an envelope's DEK onto the provider's current key (KMS ReEncrypt). The ciphertext
   * and nonce are unchanged; only `wrappedDek` and `kmsKeyId` are new.
   *
   * @param env - the stored envelope.
   * @param ctx - its name and version.
   * @returns a new envelope object (the input is not modified).
   * @throws {CRYPTO_INTEGRITY} malformed envelope or a wrapped DEK the provider refuses.
   * @throws {CRYPTO_KMS_*} provider failures.
   */
  async rewrap(env: Envelope, ctx: SecretContext): Promise<Envelope> {
    assertContext(ctx);
    checkEnvelope(env);
    try {
      const wrapped = await this.#provider.reEncrypt(env.wrappedDek, env.kmsKeyId, ctx);
      return { ...env, wrappedDek: wrapped.wrappedDek, kmsKeyId: wrapped.kmsKeyId };
    } catch (err) {
      if (err instanceof CryptoError && err.code === 'CRYPTO_KMS_INVALID_CIPHERTEXT') {
        throw integrity('wrapped DEK was refused for this name and version', err);
      }
      throw err;
    }
  }
}

/**
 * One-shot form of {@link Envelopes.seal}.
 *
 * @param plaintext - the secret value.
 * @param ctx - secret name and version.
 * @param deps - provider, cache, randomness.
 * @returns the envelope.
 * @throws {CRYPTO_KMS_*} provider failures.
 */
export function seal(plaintext: Uint8Array, ctx: SecretContext, deps: EnvelopeDeps): Promise<Envelope> {
  return new Envelopes(deps).seal(plaintext, ctx);
}

/**
 * One-shot form of {@link Envelopes.open}.
 *
 * @param env - the stored envelope.
 * @param ctx - expected name and version.
 * @param deps - provider, cache.
 * @returns the plaintext.
 * @throws {CRYPTO_INTEGRITY} tampered envelope or wrong context.
 */
export function open(env: Envelope, ctx: SecretContext, deps: EnvelopeDeps): Promise<Uint8Array> {
  return new Envelopes(deps).open(env, ctx);
}
