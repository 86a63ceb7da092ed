/**
 * A KeyProvider for a sealed start: the node builds its Envelopes (and everything else that wraps
 * or unwraps) on this one object at start, while it is still sealed; unsealing installs a local
 * key provider built from the reconstructed master key, sealing closes it (which wipes its ring)
 * and clears what was unwrapped with it. While sealed every call fails with
 * CRYPTO_KMS_UNAVAILABLE ("this node is sealed"), which the node answers with 503: defence in
 * depth behind the HTTP gate that already refuses everything but health, init, unseal and
 * seal-status.
 */
import { CryptoError, createLocalProvider, type DataKey, type KeyProvider, type KeyRotation, type LocalKeyProvider, type SecretContext, type WrappedKey } from '@coffer/crypto';
import type { SealTarget } from './seal.js';

/** Options of {@link SealableKeyProvider}. */
export interface SealableKeyProviderOptions {
  /**
   * The key id the unsealed key must have (the replicated config's `keyId`); checked again here
   * so a provider for another key is never installed. Read at unseal time.
   */
  readonly expectedKeyId?: () => string | undefined;
  /** Called after sealing, to drop what was unwrapped with the key (e.g. `dekCache.clear()`). */
  readonly onSeal?: () => void;
  /**
   * Builds the provider from the key (default: the local provider). The builder must copy what it
   * keeps; the key passed in is wiped right after it returns.
   */
  readonly build?: (key: Uint8Array) => KeyProvider;
}

function sealed(): CryptoError {
  return new CryptoError('CRYPTO_KMS_UNAVAILABLE', 'this node is sealed: unseal it with `coffer operator unseal`');
}

/**
 * The default builder: the local provider with the master key as its one-key ring.
 *
 * The provider copies the raw key (`masterKeys`) and wipes its copy on close; no base64 text of
 * the key is ever made. The caller wipes `key`.
 *
 * @param key - the 32-byte master key.
 * @returns a local key provider whose current key is `key`.
 */
export function localProviderFromKey(key: Uint8Array): LocalKeyProvider {
  return createLocalProvider({ masterKeys: [key] });
}

/**
 * A key provider that is empty while the node is sealed. Also the {@link SealTarget} of the
 * node's SealManager.
 *
 * @example
 * ```ts
 * const provider = new SealableKeyProvider({ expectedKeyId: () => seal.config()?.keyId, onSeal: () => cache.clear() });
 * const envelopes = new Envelopes({ provider, cache });
 * const seal = new SealManager({ target: provider });
 * ```
 */
export class SealableKeyProvider implements KeyProvider, SealTarget {
  readonly kind = 'local' as const;
  readonly #opts: SealableKeyProviderOptions;
  #inner: KeyProvider | undefined;

  /** @param opts - expected key id, seal hook, provider builder. */
  constructor(opts: SealableKeyProviderOptions = {}) {
    this.#opts = opts;
  }

  /**
   * Whether a key is installed.
   * @returns true while unsealed.
   */
  isUnsealed(): boolean {
    return this.#inner !== undefined;
  }

  /**
   * Installs a provider built from `key`, then wipes `key` (which this object owns from now on).
   * @param key - the verified master key.
   * @returns nothing.
   * @throws {CRYPTO_CONFIG} when the built provider's key id is not the expected one.
   */
  unseal(key: Uint8Array): void {
    let built: KeyProvider | undefined;
    try {
      built = (this.#opts.build ?? localProviderFromKey)(key);
      const expected = this.#opts.expectedKeyId?.();
      if (expected !== undefined && built.currentKeyId() !== expected) {
        void built.close();
        built = undefined;
        throw new CryptoError('CRYPTO_CONFIG', 'the unsealed key is not the key this cluster was initialized with');
      }
      const old = this.#inner;
      this.#inner = built;
      if (old !== undefined) void old.close();
    } finally {
      key.fill(0);
    }
  }

  /**
   * Drops the provider (closing it wipes its key ring) and calls `onSeal`.
   * @returns when the provider is closed.
   */
  async seal(): Promise<void> {
    const inner = this.#inner;
    this.#inner = undefined;
    try {
      if (inner !== undefined) await inner.close();
    } finally {
      this.#opts.onSeal?.();
    }
  }

  #live(): KeyProvider {
    const inner = this.#inner;
    if (inner === undefined) throw sealed();
    return inner;
  }

  /** @inheritdoc */
  generateDataKey(ctx: SecretContext): Promise<DataKey> {
    try {
      return this.#live().generateDataKey(ctx);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @inheritdoc */
  decrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<Uint8Array> {
    try {
      return this.#live().decrypt(wrappedDek, kmsKeyId, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @inheritdoc */
  reEncrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<WrappedKey> {
    try {
      return this.#live().reEncrypt(wrappedDek, kmsKeyId, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** @inheritdoc */
  listKeyRotations(): Promise<KeyRotation[]> {
    try {
      return this.#live().listKeyRotations();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The installed provider's current key id.
   * @returns the key id.
   * @throws {CRYPTO_KMS_UNAVAILABLE} while sealed.
   */
  currentKeyId(): string {
    return this.#live().currentKeyId();
  }

  /**
   * Seals for good (node shutdown).
   * @returns when done.
   */
  close(): Promise<void> {
    return this.seal();
  }
}
