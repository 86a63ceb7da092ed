/** What the API groups need from the client: sending, decoding, cache, breaker and events. */
import type { Secret, TokenInfo } from '../types.js';
import type { CircuitBreaker } from './breaker.js';
import type { ReadCache } from './cache.js';
import type { RequestSpec, TransportResponse } from './transport.js';
import { CofferError } from '../errors.js';

/** A warning the client emits (never contains a secret value or token). */
export interface ClientWarning {
  /**
   * `stale_cache`: a cached value was served because the service is unavailable;
   * `relogin_failed`: logging in again before a session expires failed (it is retried).
   */
  code: 'stale_cache' | 'relogin_failed';
  message: string;
  /** Secret name concerned. */
  name?: string;
  /** Age of the served value in ms. */
  ageMs?: number;
  /** The failure that caused the fallback. */
  cause?: unknown;
}

/** Internal interface between the client and its API groups. */
export interface ApiCore {
  /** Send through the breaker; the body is left unconsumed. */
  send(spec: RequestSpec, opts?: { bypassBreaker?: boolean }): Promise<TransportResponse>;
  /** Send and decode a JSON answer (undefined for an empty body). */
  json<T>(spec: RequestSpec, opts?: { bypassBreaker?: boolean }): Promise<T>;
  now(): number;
  warn(w: ClientWarning): void;
  readonly cache: ReadCache<Secret> | undefined;
  readonly cacheTtlMs: number;
  readonly breaker: CircuitBreaker | undefined;
  tokenSeen(info: TokenInfo): void;
}

/**
 * Read a JSON body.
 *
 * @param res - an answer
 * @returns the parsed body, or undefined when empty
 * @throws {invalid_response} the body is not JSON
 */
export async function readJson<T>(res: TransportResponse): Promise<T> {
  const text = await res.body.text();
  if (text.trim() === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new CofferError('invalid_response', `${res.address} answered ${res.status} with a body that is not JSON`, {
      status: res.status,
      requestId: res.requestId,
      address: res.address,
      cause,
    });
  }
}

/**
 * Encode a secret name for the URL: each `/`-separated segment is percent-encoded, the slashes
 * stay (the name is a path suffix, as in Vault KV v2).
 *
 * @param name - secret name
 * @returns the encoded path part
 * @throws {TypeError} empty name
 */
export function encodeSecretName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('secret name must be a non-empty string');
  return name.split('/').map(encodeURIComponent).join('/');
}

/**
 * Encode a token, role or member name (one path segment).
 *
 * @param name - the name
 * @returns percent-encoded segment
 * @throws {TypeError} empty name
 */
export function encodeSegment(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('name must be a non-empty string');
  return encodeURIComponent(name);
}

/**
 * Lists come back as an array or wrapped in an object (`{"secrets": [...]}`); accept both.
 *
 * @param body - decoded answer
 * @param keys - wrapper keys to look for, in order
 * @returns the array (empty when none is found)
 */
export function pickArray<T>(body: unknown, keys: readonly string[]): T[] {
  if (Array.isArray(body)) return body as T[];
  if (typeof body === 'object' && body !== null) {
    for (const k of keys) {
      const v = (body as Record<string, unknown>)[k];
      if (Array.isArray(v)) return v as T[];
    }
  }
  return [];
}
