// The one interface the node uses to create, unwrap and re-wrap data keys, whichever KMS is behind.
import type { SecretContext } from './context.js';
import type { CryptoErrorCode } from './errors.js';

/** A fresh data key: the plaintext DEK (caller zeroizes it) and its wrapped form for storage. */
export interface DataKey {
  /** 32-byte DEK. The caller owns it and must zeroize it after use. */
  readonly plaintext: Uint8Array;
  /** The DEK as wrapped by the provider; opaque, safe to store and replicate. */
  readonly wrappedDek: Uint8Array;
  /** The key that wrapped it (local: ring entry id; aws: key ARN). Decrypt needs it. */
  readonly kmsKeyId: string;
}

/** A wrapped DEK and the key id that wrapped it (result of a re-wrap). */
export interface WrappedKey {
  readonly wrappedDek: Uint8Array;
  readonly kmsKeyId: string;
}

/**
 * One rotation of the provider's key material, oldest first in {@link KeyProvider.listKeyRotations}.
 * A re-wrap worker keeps the last `rotationId` it processed as its watermark: when the newest
 * rotation's id differs, a pass is due.
 */
export interface KeyRotation {
  /** Key id after the rotation (aws: the key ARN, unchanged by rotation; local: the new ring key). */
  readonly keyId: string;
  /** Stable id of this rotation (aws: the rotation date in ISO 8601; local: the new ring key id). */
  readonly rotationId: string;
  /** When the rotation happened, if the provider knows (aws does; the local ring does not). */
  readonly rotatedAt?: Date;
  /** aws: `AUTOMATIC` or `ON_DEMAND`; local: `RING`. */
  readonly rotationType: string;
}

/** KMS operations reported to metric hooks. */
export type KmsOperation = 'GenerateDataKey' | 'Decrypt' | 'ReEncrypt' | 'ListKeyRotations' | 'DescribeKey';

/** Metric hooks of a key provider. Called synchronously; must not throw. */
export interface KmsHooks {
  /** Every attempt of a KMS call (successful or not), with its duration in seconds. */
  readonly onKmsLatency?: (op: KmsOperation, seconds: number) => void;
  /** Every failed attempt, with the code it maps to. */
  readonly onKmsError?: (op: KmsOperation, code: CryptoErrorCode) => void;
}

/**
 * Wraps and unwraps data keys. The context (secret name and version) is the KMS encryption
 * context: a wrapped DEK cannot be unwrapped for another secret or version.
 *
 * @example
 * ```ts
 * const dk = await provider.generateDataKey({ name: 'a', version: 1 });
 * try { use(dk.plaintext); } finally { zeroize(dk.plaintext); }
 * const dek = await provider.decrypt(dk.wrappedDek, dk.kmsKeyId, { name: 'a', version: 1 });
 * ```
 */
export interface KeyProvider {
  /** `'local'` or `'aws'`. */
  readonly kind: 'local' | 'aws';
  /**
   * A new random 32-byte DEK, wrapped under the current key and bound to `ctx`.
   * @param ctx - secret name and version (the KMS encryption context).
   * @returns the plaintext DEK (caller zeroizes), its wrapped form and the wrapping key id.
   * @throws {CRYPTO_KMS_UNAVAILABLE | CRYPTO_KMS_THROTTLED | CRYPTO_KMS_ACCESS_DENIED | CRYPTO_KMS_KEY_NOT_FOUND | CRYPTO_KMS_KEY_UNUSABLE | CRYPTO_KMS_ERROR}
   */
  generateDataKey(ctx: SecretContext): Promise<DataKey>;
  /**
   * Unwraps a DEK with the key that wrapped it. The caller zeroizes the result.
   * @param wrappedDek - the stored wrapped DEK.
   * @param kmsKeyId - the stored id of the key that wrapped it.
   * @param ctx - the context it was wrapped for.
   * @returns the 32-byte DEK.
   * @throws {CRYPTO_KMS_INVALID_CIPHERTEXT} tampered blob, other key or other context.
   */
  decrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<Uint8Array>;
  /**
   * Re-wraps a DEK onto the current key material; with AWS the DEK never leaves the KMS.
   * @param wrappedDek - the stored wrapped DEK.
   * @param kmsKeyId - the stored id of the key that wrapped it.
   * @param ctx - the context it was wrapped for (kept for the new wrap).
   * @returns the new wrapped DEK and key id; the ciphertext it protects is unchanged.
   * @throws {CRYPTO_KMS_INVALID_CIPHERTEXT} and the other CRYPTO_KMS_* codes.
   */
  reEncrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<WrappedKey>;
  /**
   * Rotations of the current key, oldest first.
   * @returns the rotations; empty when the key was never rotated.
   * @throws CRYPTO_KMS_* codes (aws).
   */
  listKeyRotations(): Promise<KeyRotation[]>;
  /**
   * Id of the key new DEKs are wrapped with.
   * @returns local: the current ring key id; aws: the key ARN once known, else the configured id.
   */
  currentKeyId(): string;
  /**
   * Releases connections and wipes held key material. Later calls fail with CRYPTO_KMS_UNAVAILABLE.
   * @returns when done.
   */
  close(): Promise<void>;
}
