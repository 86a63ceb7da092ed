// One row per code: how AWS SDK and network failures map onto CryptoErrorCode.
import {
  DisabledException,
  InvalidCiphertextException,
  KMSInternalException,
  KMSInvalidStateException,
  LimitExceededException,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { classifyKmsError, isRetryable } from '../src/internal/kms-errors.js';
import { CRYPTO_ERROR_CODES, isTransientCryptoError, CryptoError } from '../src/index.js';

const meta = { $metadata: {} };
const named = (name: string, extra: object = {}): Error => Object.assign(new Error(name), { name, ...extra });
const net = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });

test.each([
  ['AccessDeniedException (generic AWS error)', named('AccessDeniedException', { $metadata: { httpStatusCode: 400 } }), 'CRYPTO_KMS_ACCESS_DENIED'],
  ['UnrecognizedClientException', named('UnrecognizedClientException'), 'CRYPTO_KMS_ACCESS_DENIED'],
  ['HTTP 403 without a known name', named('Weird', { $metadata: { httpStatusCode: 403 } }), 'CRYPTO_KMS_ACCESS_DENIED'],
  ['InvalidCiphertextException (SDK class)', new InvalidCiphertextException({ message: 'bad', ...meta }), 'CRYPTO_KMS_INVALID_CIPHERTEXT'],
  ['IncorrectKeyException', named('IncorrectKeyException'), 'CRYPTO_KMS_INVALID_CIPHERTEXT'],
  ['ThrottlingException', named('ThrottlingException', { $metadata: { httpStatusCode: 400 } }), 'CRYPTO_KMS_THROTTLED'],
  ['LimitExceededException (SDK class)', new LimitExceededException({ message: 'slow', ...meta }), 'CRYPTO_KMS_THROTTLED'],
  ['HTTP 429', named('Weird', { $metadata: { httpStatusCode: 429 } }), 'CRYPTO_KMS_THROTTLED'],
  ['KMSInternalException (SDK class)', new KMSInternalException({ message: 'oops', ...meta }), 'CRYPTO_KMS_UNAVAILABLE'],
  ['HTTP 503', named('Weird', { $metadata: { httpStatusCode: 503 } }), 'CRYPTO_KMS_UNAVAILABLE'],
  ['ECONNREFUSED', net('ECONNREFUSED'), 'CRYPTO_KMS_UNAVAILABLE'],
  ['ECONNRESET', net('ECONNRESET'), 'CRYPTO_KMS_UNAVAILABLE'],
  ['TimeoutError (request timeout)', named('TimeoutError'), 'CRYPTO_KMS_UNAVAILABLE'],
  ['AbortError (deadline)', named('AbortError'), 'CRYPTO_KMS_UNAVAILABLE'],
  ['network error as cause', Object.assign(new Error('fetch failed'), { cause: net('ENOTFOUND') }), 'CRYPTO_KMS_UNAVAILABLE'],
  ['NotFoundException (SDK class)', new NotFoundException({ message: 'none', ...meta }), 'CRYPTO_KMS_KEY_NOT_FOUND'],
  ['DisabledException (SDK class)', new DisabledException({ message: 'off', ...meta }), 'CRYPTO_KMS_KEY_UNUSABLE'],
  ['KMSInvalidStateException (SDK class)', new KMSInvalidStateException({ message: 'pending', ...meta }), 'CRYPTO_KMS_KEY_UNUSABLE'],
  ['the SDK wrapper of a cross-realm network error', new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:9'), 'CRYPTO_KMS_UNAVAILABLE'],
  ['an unrelated message mentioning a code', new Error('ECONNREFUSED is in this text'), 'CRYPTO_KMS_ERROR'],
  ['an unknown 400', named('ValidationException', { $metadata: { httpStatusCode: 400 } }), 'CRYPTO_KMS_ERROR'],
  ['a non-object', 'boom', 'CRYPTO_KMS_ERROR'],
])('%s → %s', (_label, err, code) => {
  expect(classifyKmsError(err)).toBe(code);
});

test('only unavailable and throttled are retried and answered as transient (503)', () => {
  const transient = CRYPTO_ERROR_CODES.filter((c) => isRetryable(c));
  expect(transient.sort()).toEqual(['CRYPTO_KMS_THROTTLED', 'CRYPTO_KMS_UNAVAILABLE']);
  for (const c of CRYPTO_ERROR_CODES) {
    expect(isTransientCryptoError(new CryptoError(c, 'x'))).toBe(transient.includes(c));
  }
  expect(isTransientCryptoError(new Error('x'))).toBe(false);
});
