// Maps AWS SDK / network failures onto CryptoErrorCode. The node turns UNAVAILABLE and THROTTLED
// into 503 (retry later) and everything else into 500, so the split matters: a dead KMS endpoint
// must never look like a permission problem, and a bad ciphertext must never look transient.
import type { CryptoErrorCode } from '../errors.js';

const BY_NAME: Readonly<Record<string, CryptoErrorCode>> = {
  // Throttling (AWS generic and KMS-modelled).
  ThrottlingException: 'CRYPTO_KMS_THROTTLED',
  Throttling: 'CRYPTO_KMS_THROTTLED',
  TooManyRequestsException: 'CRYPTO_KMS_THROTTLED',
  RequestLimitExceeded: 'CRYPTO_KMS_THROTTLED',
  LimitExceededException: 'CRYPTO_KMS_THROTTLED',
  // Permission and credentials.
  AccessDeniedException: 'CRYPTO_KMS_ACCESS_DENIED',
  UnrecognizedClientException: 'CRYPTO_KMS_ACCESS_DENIED',
  InvalidSignatureException: 'CRYPTO_KMS_ACCESS_DENIED',
  SignatureDoesNotMatch: 'CRYPTO_KMS_ACCESS_DENIED',
  IncompleteSignature: 'CRYPTO_KMS_ACCESS_DENIED',
  MissingAuthenticationToken: 'CRYPTO_KMS_ACCESS_DENIED',
  InvalidClientTokenId: 'CRYPTO_KMS_ACCESS_DENIED',
  ExpiredTokenException: 'CRYPTO_KMS_ACCESS_DENIED',
  CredentialsProviderError: 'CRYPTO_KMS_ACCESS_DENIED',
  InvalidGrantTokenException: 'CRYPTO_KMS_ACCESS_DENIED',
  // The blob itself (tampered, other key, other encryption context).
  InvalidCiphertextException: 'CRYPTO_KMS_INVALID_CIPHERTEXT',
  IncorrectKeyException: 'CRYPTO_KMS_INVALID_CIPHERTEXT',
  // The key.
  NotFoundException: 'CRYPTO_KMS_KEY_NOT_FOUND',
  DisabledException: 'CRYPTO_KMS_KEY_UNUSABLE',
  KMSInvalidStateException: 'CRYPTO_KMS_KEY_UNUSABLE',
  KeyUnavailableException: 'CRYPTO_KMS_KEY_UNUSABLE',
  InvalidKeyUsageException: 'CRYPTO_KMS_KEY_UNUSABLE',
  // Server side or transport: transient.
  KMSInternalException: 'CRYPTO_KMS_UNAVAILABLE',
  DependencyTimeoutException: 'CRYPTO_KMS_UNAVAILABLE',
  ServiceUnavailable: 'CRYPTO_KMS_UNAVAILABLE',
  ServiceUnavailableException: 'CRYPTO_KMS_UNAVAILABLE',
  InternalFailure: 'CRYPTO_KMS_UNAVAILABLE',
  InternalError: 'CRYPTO_KMS_UNAVAILABLE',
  RequestTimeout: 'CRYPTO_KMS_UNAVAILABLE',
  RequestTimeoutException: 'CRYPTO_KMS_UNAVAILABLE',
  TimeoutError: 'CRYPTO_KMS_UNAVAILABLE',
  AbortError: 'CRYPTO_KMS_UNAVAILABLE',
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ESOCKETTIMEDOUT', 'ABORT_ERR',
]);

/**
 * Classifies a thrown value from the AWS SDK (modelled exception, HTTP status or Node network
 * error) into a {@link CryptoErrorCode}.
 */
export function classifyKmsError(err: unknown): CryptoErrorCode {
  if (err === null || typeof err !== 'object') return 'CRYPTO_KMS_ERROR';
  const e = err as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: unknown }; cause?: unknown };
  const byName = typeof e.name === 'string' ? BY_NAME[e.name] : undefined;
  if (byName) return byName;
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || e.code.startsWith('UND_ERR_'))) return 'CRYPTO_KMS_UNAVAILABLE';
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number') {
    if (status === 429) return 'CRYPTO_KMS_THROTTLED';
    if (status >= 500) return 'CRYPTO_KMS_UNAVAILABLE';
    if (status === 401 || status === 403) return 'CRYPTO_KMS_ACCESS_DENIED';
  }
  // NB: the SDK's retry middleware re-wraps a thrown value that fails `instanceof Error` (a Node
  // error from another realm, e.g. under jest's VM) as `new Error("AWS SDK error wrapper for " +
  // String(err))`, dropping `code`. Only for that wrapper do we read the code back from the text.
  if (typeof (e as { message?: unknown }).message === 'string') {
    const m = /^AWS SDK error wrapper for .*?\b(E[A-Z_]{3,}|UND_ERR_[A-Z_]+)\b/.exec((e as { message: string }).message);
    if (m && (NETWORK_CODES.has(m[1]!) || m[1]!.startsWith('UND_ERR_'))) return 'CRYPTO_KMS_UNAVAILABLE';
  }
  // Errors wrapped by the SDK or by fetch keep the network error as `cause`.
  if (e.cause !== undefined && e.cause !== err) {
    const inner = classifyKmsError(e.cause);
    if (inner !== 'CRYPTO_KMS_ERROR') return inner;
  }
  return 'CRYPTO_KMS_ERROR';
}

/** Codes worth another attempt with backoff. */
export function isRetryable(code: CryptoErrorCode): boolean {
  return code === 'CRYPTO_KMS_UNAVAILABLE' || code === 'CRYPTO_KMS_THROTTLED';
}
