/**
 * Small helpers shared by the services: command ids, crypto error mapping, timestamps.
 */
import { randomUUID } from 'node:crypto';
import { isTransientCryptoError } from '@coffer/crypto';
import { ServiceError } from './errors.js';

/**
 * A fresh command id. NB: never derived from the client's `X-Request-Id`: the state machine
 * deduplicates on it, so a client reusing a header value would otherwise see later writes
 * answered with the first one's result and silently dropped.
 *
 * @returns a random id
 */
export function commandId(): string {
  return randomUUID();
}

/**
 * Maps a failure of the envelope layer: a KMS that is down or throttling is a 503 the client may
 * retry; anything else (integrity failures, bad keys) stays an internal error with its cause.
 *
 * @param err - what seal/open threw
 * @returns the error to throw
 */
export function cryptoFailure(err: unknown): unknown {
  if (isTransientCryptoError(err)) return new ServiceError('kms_unavailable', 'the key service is unavailable; retry shortly', { retryAfterSecs: 1, cause: err });
  return err;
}

/**
 * The one timestamp formatter of the API (http/body.ts re-exports it).
 *
 * @param ms - epoch milliseconds, or null
 * @returns ISO-8601 text, or null
 */
export function iso(ms: number): string;
export function iso(ms: number | null | undefined): string | null;
export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
