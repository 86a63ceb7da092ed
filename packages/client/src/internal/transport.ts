/**
 * The request loop: node selection, failover, retry policy and error decoding.
 *
 * Retry policy (what may be sent twice):
 * - A connection that was never established (refused, DNS failure, unreachable, connect timeout)
 *   means the request never left the client: any request may go to the next node.
 * - An idempotent request (GET/HEAD, whole-state PUTs, a secret PUT carrying `cas`) is retried on
 *   any connection error, timeout, 503 or 421, on the next node.
 * - A non-idempotent write that may have reached a node (reset, timeout, closed socket) is NOT
 *   retried: it fails with `outcome_unknown`. So does a 503 answer to a write, unless its error code
 *   is one the server uses for "never proposed" (`retryableWriteCodes`).
 * A 421 (misdirected) or 307/308 (go to the leader) is retried on the next node for every method:
 * the node states it did not process the request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { CofferError } from '../errors.js';
import { backoffDelayMs, parseRetryAfterMs, type BackoffOptions } from './backoff.js';

/** HTTP methods the API uses. */
export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';

/** Reported before each retry. */
export interface RetryInfo {
  /** 1-based number of the attempt about to be made. */
  attempt: number;
  /** Node the attempt goes to. */
  address: string;
  /** Wait before it, in ms. */
  delayMs: number;
  /** Why the previous attempt failed (an error code or `status_503`). */
  reason: string;
}

/** Fixed transport parameters. */
export interface TransportOptions {
  addresses: readonly string[];
  token: () => string | undefined;
  timeoutMs: number;
  maxAttempts: number;
  backoff: BackoffOptions;
  maxRetryAfterMs: number;
  retryableWriteCodes: ReadonlySet<string>;
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  dispatcher: Dispatcher;
  userAgent: string;
  newRequestId: () => string;
  onRetry: (info: RetryInfo) => void;
}

/** One logical request. */
export interface RequestSpec {
  method: HttpMethod;
  /** Path with query, already encoded, starting with `/`. */
  path: string;
  /** JSON body. */
  json?: unknown;
  /** Raw body; a factory so that a retry gets a fresh stream. */
  body?: () => Readable | Buffer;
  /** Extra headers. */
  headers?: Record<string, string>;
  /** Whether the request may be sent twice (see the module comment). */
  idempotent: boolean;
  /** Statuses handed back to the caller instead of raised (e.g. health's 429/503). */
  passStatuses?: readonly number[];
  /** Pin to this node: no failover. */
  address?: string;
  /**
   * For check-and-set writes: a 409 after an attempt that may have been applied could be our own
   * earlier write winning, so it becomes `outcome_unknown` rather than a plain conflict.
   */
  casWrite?: boolean;
  /** Overrides the per-attempt timeout (headers and idle body), in ms; 0 disables. */
  timeoutMs?: number;
}

/** A successful answer; the body is not consumed yet. */
export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
  address: string;
  requestId: string;
  attempts: number;
}

/** Errors raised before any byte could have reached the server. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Answers by which a node says it did not process the request. */
const NOT_PROCESSED_STATUSES: ReadonlySet<number> = new Set([307, 308, 421]);

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // undici may wrap the socket error (e.g. AggregateError from happy eyeballs).
    const inner = (err as { errors?: unknown }).errors;
    if (Array.isArray(inner) && inner.length > 0) return errorCode(inner[0]);
    const cause = (err as { cause?: unknown }).cause;
    if (cause !== undefined) return errorCode(cause);
  }
  return 'unknown';
}

/**
 * Decode an error answer into a {@link CofferError}, consuming the body.
 *
 * @param res - the undici response
 * @param address - node that answered
 * @param requestId - id the client sent
 * @param nowMs - for Retry-After dates
 * @returns the error (not thrown)
 */
export async function errorFromResponse(
  res: Dispatcher.ResponseData,
  address: string,
  requestId: string,
  nowMs: number,
): Promise<CofferError> {
  let text = '';
  try {
    text = await res.body.text();
  } catch {
    // The body is only used for the code and message; the status already says enough.
  }
  const retryAfterMs = parseRetryAfterMs(res.headers['retry-after'], nowMs);
  const headerId = res.headers['x-request-id'];
  let code = 'http_error';
  let message = `HTTP ${res.statusCode} from ${address}`;
  let serverRequestId = typeof headerId === 'string' ? headerId : undefined;
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
    const e = parsed.error;
    if (e !== undefined && typeof e.code === 'string') {
      code = e.code;
      if (typeof e.message === 'string') message = e.message;
      if (typeof e.requestId === 'string') serverRequestId = e.requestId;
    }
  } catch {
    // Not a contract error body (a proxy's HTML page, say): keep `http_error`.
  }
  return new CofferError(code, message, {
    status: res.statusCode,
    requestId: serverRequestId ?? requestId,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    address,
  });
}

/** See the module comment. */
export class Transport {
  readonly #o: TransportOptions;
  /** Index of the node that last answered; the next request starts there. */
  #preferred = 0;
  /** Per-node earliest time for the next attempt, from Retry-After. */
  readonly #notBefore = new Map<string, number>();

  /** @param options - fixed parameters */
  constructor(options: TransportOptions) {
    if (options.addresses.length === 0) throw new RangeError('at least one address is required');
    this.#o = options;
  }

  /** @returns the configured node addresses */
  get addresses(): readonly string[] {
    return this.#o.addresses;
  }

  /**
   * Send a request with failover. On success the body is left for the caller to consume.
   *
   * @param spec - the request
   * @returns the answer (2xx, 3xx or a `passStatuses` status)
   * @throws {CofferError} the server's error, `unavailable`, or `outcome_unknown`
   */
  async send(spec: RequestSpec): Promise<TransportResponse> {
    const o = this.#o;
    const requestId = o.newRequestId();
    const pinned = spec.address !== undefined;
    const maxAttempts = Math.max(1, o.maxAttempts);
    const start = this.#preferred;
    let lastError: CofferError | undefined;
    /** An earlier attempt reached a node without a definite answer. */
    let mayHaveApplied = false;

    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const index = pinned ? -1 : (start + attempt - 1) % o.addresses.length;
      const address = spec.address ?? (o.addresses[index] as string);
      if (attempt > 1) {
        let delayMs = backoffDelayMs(attempt - 1, o.backoff, o.random);
        const notBefore = this.#notBefore.get(address);
        if (notBefore !== undefined) delayMs = Math.max(delayMs, notBefore - o.now());
        if (delayMs > o.maxRetryAfterMs) break;
        o.onRetry({ attempt, address, delayMs, reason: lastError?.code ?? 'unknown' });
        await o.sleep(delayMs);
      }

      let res: Dispatcher.ResponseData;
      try {
        res = await undiciRequest(address + spec.path, {
          dispatcher: o.dispatcher,
          method: spec.method,
          headers: this.#headers(spec, requestId),
          body: spec.json !== undefined ? JSON.stringify(spec.json) : (spec.body?.() ?? null),
          headersTimeout: spec.timeoutMs ?? o.timeoutMs,
          bodyTimeout: spec.timeoutMs ?? o.timeoutMs,
        });
      } catch (err) {
        const code = errorCode(err);
        const notSent = NOT_SENT_CODES.has(code);
        if (!notSent && !spec.idempotent) {
          throw new CofferError(
            'outcome_unknown',
            `${spec.method} ${pathOnly(spec.path)} to ${address} failed after it may have been received (${code}); it may or may not have been applied`,
            { requestId, address, attempts: attempt, cause: err },
          );
        }
        if (!notSent) mayHaveApplied = true;
        lastError = new CofferError('unavailable', `could not reach ${address} (${code})`, {
          requestId,
          address,
          attempts: attempt,
          cause: err,
        });
        continue;
      }

      const status = res.statusCode;
      if (spec.passStatuses?.includes(status) === true || (status >= 200 && status < 300)) {
        if (!pinned) this.#preferred = index;
        this.#notBefore.delete(address);
        return { status, headers: res.headers, body: res.body, address, requestId, attempts: attempt };
      }

      const err = await errorFromResponse(res, address, requestId, o.now());
      if (status === 409 && spec.casWrite === true && mayHaveApplied) {
        throw new CofferError(
          'outcome_unknown',
          `${spec.method} ${pathOnly(spec.path)}: check-and-set conflict after an attempt with no answer; the earlier attempt may have been applied`,
          { status, ...(err.requestId === undefined ? {} : { requestId: err.requestId }), address, attempts: attempt, cause: err },
        );
      }
      // 421 and 307/308: the node declined to process the request (not the leader, say); any
      // method may go to the next node. Followers normally forward, so this is rare.
      if (status !== 503 && !NOT_PROCESSED_STATUSES.has(status)) throw withAttempts(err, attempt);
      if (err.retryAfterMs !== undefined) this.#notBefore.set(address, o.now() + err.retryAfterMs);
      if (status === 503 && !o.retryableWriteCodes.has(err.code)) mayHaveApplied = true;
      if (status === 503 && !spec.idempotent && !o.retryableWriteCodes.has(err.code)) {
        if (err.code === 'outcome_unknown') throw withAttempts(err, attempt);
        throw new CofferError(
          'outcome_unknown',
          `${spec.method} ${pathOnly(spec.path)}: ${address} answered 503 (${err.code}); the write may or may not have been applied`,
          {
            status,
            ...(err.requestId === undefined ? {} : { requestId: err.requestId }),
            ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
            address,
            attempts: attempt,
            cause: err,
          },
        );
      }
      lastError = withAttempts(err, attempt);
    }

    if (lastError === undefined) {
      throw new CofferError('unavailable', 'no attempt was made', { requestId });
    }
    if (lastError.code === 'unavailable') {
      const where = pinned ? spec.address : o.addresses.join(', ');
      throw new CofferError('unavailable', `no Coffer node answered (${where}); last: ${lastError.message}`, {
        requestId,
        ...(lastError.address === undefined ? {} : { address: lastError.address }),
        ...(lastError.attempts === undefined ? {} : { attempts: lastError.attempts }),
        cause: lastError.cause,
      });
    }
    throw lastError;
  }

  #headers(spec: RequestSpec, requestId: string): Record<string, string> {
    const h: Record<string, string> = {
      'user-agent': this.#o.userAgent,
      'x-request-id': requestId,
      accept: 'application/json',
      ...spec.headers,
    };
    const token = this.#o.token();
    if (token !== undefined && token !== '') h.authorization = `Bearer ${token}`;
    if (spec.json !== undefined) h['content-type'] = 'application/json';
    else if (spec.body !== undefined && h['content-type'] === undefined) h['content-type'] = 'application/octet-stream';
    return h;
  }
}

function withAttempts(err: CofferError, attempts: number): CofferError {
  return new CofferError(err.code, err.message, {
    ...(err.status === undefined ? {} : { status: err.status }),
    ...(err.requestId === undefined ? {} : { requestId: err.requestId }),
    ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    ...(err.address === undefined ? {} : { address: err.address }),
    attempts,
    ...(err.cause === undefined ? {} : { cause: err.cause }),
  });
}

/** Drop the query: error messages must not carry request parameters. */
function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
}
