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
 */
export interface KeyProvider {
  /** `'local'` or `'aws'`. */
  readonly kind: 'local' | 'aws';
  /**
   * A new random 32-byte DEK, wrapped under the current key and bound to `ctx`.
   * @throws {CRYPTO_KMS_UNAVAILABLE | CRYPTO_KMS_THROTTLED | CRYPTO_KMS_ACCESS_DENIED | CRYPTO_KMS_KEY_NOT_FOUND | CRYPTO_KMS_KEY_UNUSABLE | CRYPTO_KMS_ERROR}
   */
  generateDataKey(ctx: SecretContext): Promise<DataKey>;
  /**
   * Unwraps a DEK with the key that wrapped it. The caller zeroizes the result.
   * @throws {CRYPTO_KMS_INVALID_CIPHERTEXT} tampered blob, other key or other context.
   */
  decrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<Uint8Array>;
  /** Re-wraps a DEK onto the current key material; with AWS the DEK never leaves the KMS. */
  reEncrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<WrappedKey>;
  /** Rotations of the current key, oldest first. */
  listKeyRotations(): Promise<KeyRotation[]>;
  /** Id of the key new DEKs are wrapped with. */
  currentKeyId(): string;
  /** Releases connections and wipes held key material. Later calls fail. */
  close(): Promise<void>;
}
