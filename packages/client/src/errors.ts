/**
 * Errors raised by @coffer/client.
 *
 * NB: the house style asks for `UPPER_SNAKE` package-prefixed codes, but a `CofferError` mostly
 * carries the *server's* code, which the HTTP contract fixes as stable snake_case
 * (`not_found`, `cas_conflict`, …). Client-side codes share that one namespace and spelling so
 * callers match a single field, whichever side produced the error.
 */

/** Codes the client itself produces (the server's own codes pass through unchanged). */
export type ClientErrorCode =
  /** A non-idempotent write may or may not have been applied: the request may have reached a node. */
  | 'outcome_unknown'
  /** No node answered: every attempt failed with a connection error. */
  | 'unavailable'
  /** The circuit breaker is open and the request was not sent. */
  | 'breaker_open'
  /** The server answered with a body the client could not understand. */
  | 'invalid_response'
  /** The server answered with an error status but no contract error body. */
  | 'http_error';

/** Client codes as constants, for matching without string literals. */
export const ClientErrorCodes: {
  readonly OUTCOME_UNKNOWN: 'outcome_unknown';
  readonly UNAVAILABLE: 'unavailable';
  readonly BREAKER_OPEN: 'breaker_open';
  readonly INVALID_RESPONSE: 'invalid_response';
  readonly HTTP_ERROR: 'http_error';
} = {
  OUTCOME_UNKNOWN: 'outcome_unknown',
  UNAVAILABLE: 'unavailable',
  BREAKER_OPEN: 'breaker_open',
  INVALID_RESPONSE: 'invalid_response',
  HTTP_ERROR: 'http_error',
} as const;

/** Construction details of a {@link CofferError}. */
export interface CofferErrorDetails {
  /** HTTP status of the answer that caused the error, when there was one. */
  status?: number;
  /** The server's request id (or, when no server answered, the id the client sent). */
  requestId?: string;
  /** Milliseconds the server asked the client to wait (`Retry-After`). */
  retryAfterMs?: number;
  /** The node address that produced the error, when one did. */
  address?: string;
  /** How many attempts were made before giving up. */
  attempts?: number;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * The one error class of @coffer/client. Match on `code` (a contract), never on `message`.
 *
 * `code` is either the server's `error.code` (e.g. `not_found`, `permission_denied`, `cas_conflict`) or a
 * {@link ClientErrorCode}. Messages never contain tokens or secret values.
 *
 * @example
 * ```ts
 * try { await client.secrets.get('db/password'); }
 * catch (e) { if (e instanceof CofferError && e.code === 'not_found') { ... } }
 * ```
 */
export class CofferError extends Error {
  override readonly name = 'CofferError';
  /** Stable snake_case code: the server's, or a {@link ClientErrorCode}. */
  readonly code: string;
  /** HTTP status, when a server answered. */
  readonly status: number | undefined;
  /** Request id for correlating with the server's audit log. */
  readonly requestId: string | undefined;
  /** Milliseconds the server asked to wait before retrying, if it said. */
  readonly retryAfterMs: number | undefined;
  /** Node address the error came from, if any. */
  readonly address: string | undefined;
  /** Attempts made (1 when no retry happened). */
  readonly attempts: number | undefined;

  /**
   * @param code - stable snake_case code
   * @param message - human sentence (not a contract)
   * @param details - status, request id, retry hint, cause
   */
  constructor(code: string, message: string, details: CofferErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.requestId = details.requestId;
    this.retryAfterMs = details.retryAfterMs;
    this.address = details.address;
    this.attempts = details.attempts;
  }
}

/**
 * Whether an error means "the service could not be reached or could not decide" (as opposed to a
 * definite answer such as 403 or 404). These are the failures the circuit breaker counts.
 *
 * @param err - any thrown value
 * @returns true for connection failures, unknown outcomes and 5xx answers
 */
export function isAvailabilityError(err: unknown): boolean {
  if (!(err instanceof CofferError)) return false;
  if (err.code === 'unavailable' || err.code === 'outcome_unknown' || err.code === 'breaker_open') return true;
  return err.status !== undefined && err.status >= 500;
}
