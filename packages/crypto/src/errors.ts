/**
 * Error codes of @coffer/crypto. Codes are a contract (callers match on `code`, never on the
 * message); messages may change and never contain key material, plaintext or wrapped keys.
 *
 * HTTP mapping used by the node: `CRYPTO_KMS_UNAVAILABLE` and `CRYPTO_KMS_THROTTLED` are
 * transient (503); every other code is a 500.
 */
export type CryptoErrorCode =
  /** Bad key-provider configuration (e.g. `COFFER_LOCAL_MASTER_KEY` is not base64 of 32 bytes). */
  | 'CRYPTO_CONFIG'
  /** An envelope failed authentication: tampered, truncated, or opened with another name/version. */
  | 'CRYPTO_INTEGRITY'
  /** The KMS could not be reached or answered with a server-side/transient failure. */
  | 'CRYPTO_KMS_UNAVAILABLE'
  /** The KMS refused the call for lack of permission (or bad credentials). */
  | 'CRYPTO_KMS_ACCESS_DENIED'
  /** The KMS (or the local ring) refused the wrapped DEK: corrupt, other key, other context. */
  | 'CRYPTO_KMS_INVALID_CIPHERTEXT'
  /** The KMS throttled the call and retries were exhausted. */
  | 'CRYPTO_KMS_THROTTLED'
  /** The key id is unknown to the KMS (or not in the local ring). */
  | 'CRYPTO_KMS_KEY_NOT_FOUND'
  /** The key exists but cannot be used now (disabled, pending deletion, unavailable). */
  | 'CRYPTO_KMS_KEY_UNUSABLE'
  /** Any other KMS failure; the `cause` holds the SDK error. */
  | 'CRYPTO_KMS_ERROR';

/** Every {@link CryptoErrorCode}, for exhaustive tables (e.g. the node's HTTP status map). */
export const CRYPTO_ERROR_CODES: readonly CryptoErrorCode[] = [
  'CRYPTO_CONFIG',
  'CRYPTO_INTEGRITY',
  'CRYPTO_KMS_UNAVAILABLE',
  'CRYPTO_KMS_ACCESS_DENIED',
  'CRYPTO_KMS_INVALID_CIPHERTEXT',
  'CRYPTO_KMS_THROTTLED',
  'CRYPTO_KMS_KEY_NOT_FOUND',
  'CRYPTO_KMS_KEY_UNUSABLE',
  'CRYPTO_KMS_ERROR',
];

/**
 * The one error class of @coffer/crypto. Programmer errors (a context with an empty name, a
 * non-integer version) are plain `TypeError`/`RangeError` without a code.
 *
 * @example
 * ```ts
 * try { await envelopes.open(env, ctx); }
 * catch (err) { if (err instanceof CryptoError && err.code === 'CRYPTO_INTEGRITY') { ... } }
 * ```
 */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  readonly code: CryptoErrorCode;

  /**
   * @param code - stable machine-readable code.
   * @param message - human-readable text; must never include secret material.
   * @param options - `cause` keeps the underlying error (e.g. the AWS SDK exception).
   */
  constructor(code: CryptoErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * True when `err` is a {@link CryptoError} with a code the node should answer with 503 (retry
 * later) rather than 500.
 *
 * @param err - any thrown value.
 * @returns whether the failure is transient (KMS unavailable or throttled).
 */
export function isTransientCryptoError(err: unknown): boolean {
  return (
    err instanceof CryptoError && (err.code === 'CRYPTO_KMS_UNAVAILABLE' || err.code === 'CRYPTO_KMS_THROTTLED')
  );
}
