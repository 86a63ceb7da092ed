// Public entry of @coffer/crypto: re-exports only.
export { CryptoError, CRYPTO_ERROR_CODES, isTransientCryptoError, type CryptoErrorCode } from './errors.js';
export { constantTimeEqual, hmacSha256, randomBytes, sha256, zeroize, type RandomBytes } from './bytes.js';
export { generateToken, hashToken, isTokenFormat, TOKEN_PREFIX } from './token.js';
export {
  assertContext,
  encodeAad,
  kmsEncryptionContext,
  ENVELOPE_ALG,
  ENVELOPE_FORMAT_VERSION,
  KMS_CONTEXT_NAME_KEY,
  KMS_CONTEXT_VERSION_KEY,
  type SecretContext,
} from './context.js';
export { Envelopes, open, seal, type Envelope, type EnvelopeDeps } from './envelope.js';
export { DekCache, type DekCacheOptions, type DekEvictReason } from './dek-cache.js';
export type { DataKey, KeyProvider, KeyRotation, KmsHooks, KmsOperation, WrappedKey } from './key-provider.js';
export {
  createLocalProvider,
  parseLocalMasterKeys,
  localKeyId,
  LOCAL_MASTER_KEY_ENV,
  EPHEMERAL_KEY_WARNING,
  type LocalKeyProvider,
  type LocalProviderOptions,
} from './local-provider.js';
export { createAwsProvider, type AwsKeyProvider, type AwsProviderOptions } from './aws-provider.js';
export { AEAD_BACKEND } from './aead-backend.js';
export type { AeadName } from './internal/aead.js';
export {
  TransitError,
  TRANSIT_ERROR_CODES,
  TRANSIT_KEY_TYPES,
  TRANSIT_KEY_LENGTH,
  TRANSIT_CIPHERTEXT_PREFIX,
  TRANSIT_MAX_VERSION,
  TRANSIT_MAX_CONTEXT_BYTES,
  isTransitKeyName,
  isTransitKeyType,
  encodeTransitAad,
  parseTransitCiphertext,
  formatTransitCiphertext,
  encryptWithKeyVersion,
  decryptWithKeyVersion,
  checkDecryptionVersion,
  transitEncrypt,
  transitDecrypt,
  transitRewrap,
  transitDataKey,
  type TransitErrorCode,
  type TransitKeyType,
  type TransitKeyVersion,
  type TransitKeyring,
  type TransitEncryptOptions,
  type TransitDecryptOptions,
  type TransitDataKeyOptions,
  type TransitDataKey,
  type ParsedTransitCiphertext,
} from './transit.js';
export {
  transitKeyContext,
  sealTransitKey,
  openTransitKey,
  generateTransitKeyVersion,
  transitKeyring,
  type TransitKeyRecord,
  type TransitKeyRef,
} from './transit-keys.js';
export { splitSecret, combineShares, shamirParamsError, SHAMIR_MAX_SHARES, SHAMIR_SECRET_LENGTH } from './shamir.js';
