/**
 * The only module that knows HTTP statuses. Every refusal the API sends is a {@link ServiceError}
 * whose `code` is a stable snake_case string from CONTRACT.md; its status comes from ONE
 * exhaustive table, {@link SERVICE_ERROR_STATUS}. Unknown errors become 500 `internal` with the
 * request id and no internal message, so stack traces, file paths and values never leak.
 *
 * Body: `{"error": {"code", "message", "requestId"}}`, plus `"leader"` (the leader's API URL)
 * when the error names one. `Retry-After` is set whenever the error carries `retryAfterSecs`.
 */
import type { ServerResponse } from 'node:http';
import type { NodeErrorCode } from '../errors.js';

/** A stable API error code (snake_case, part of the public contract). */
export type ServiceErrorCode =
  | 'invalid_request'
  | 'invalid_json'
  | 'invalid_name'
  | 'invalid_forward'
  | 'invalid_value'
  | 'invalid_snapshot'
  | 'immutable_role'
  | 'missing_token'
  | 'invalid_token'
  | 'permission_denied'
  | 'not_allowlisted'
  | 'not_found'
  | 'method_not_allowed'
  | 'cas_conflict'
  | 'already_exists'
  | 'role_in_use'
  | 'body_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'locked_out'
  | 'internal'
  | 'integrity_error'
  | 'not_leader'
  | 'no_leader'
  | 'no_quorum'
  | 'outcome_unknown'
  | 'kms_unavailable'
  | 'audit_unavailable'
  | 'shutting_down'
  | 'removed'
  | 'upgrade_pending';

/**
 * HTTP status for every service error code: ONE exhaustive table, so adding a code without a
 * status does not compile.
 */
export const SERVICE_ERROR_STATUS: Readonly<Record<ServiceErrorCode, number>> = Object.freeze({
  invalid_request: 400,
  invalid_json: 400,
  invalid_name: 400,
  invalid_forward: 401,
  invalid_value: 400,
  invalid_snapshot: 400,
  immutable_role: 400,
  missing_token: 401,
  invalid_token: 401,
  permission_denied: 403,
  not_allowlisted: 403,
  not_found: 404,
  method_not_allowed: 405,
  cas_conflict: 409,
  already_exists: 409,
  role_in_use: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  locked_out: 429,
  internal: 500,
  integrity_error: 500,
  not_leader: 503,
  no_leader: 503,
  no_quorum: 503,
  outcome_unknown: 503,
  kms_unavailable: 503,
  audit_unavailable: 503,
  shutting_down: 503,
  removed: 503,
  upgrade_pending: 503,
});

/** Every code, for tests and docs. */
export const SERVICE_ERROR_CODES: readonly ServiceErrorCode[] = Object.freeze(Object.keys(SERVICE_ERROR_STATUS) as ServiceErrorCode[]);

/** Extra facts an error may carry. */
export interface ServiceErrorOptions extends ErrorOptions {
  /** Sets `Retry-After` (whole seconds, ≥ 1). */
  readonly retryAfterSecs?: number;
  /** Leader's API URL, when known (no_leader/not_leader/forwarding failures). */
  readonly leader?: string;
}

/**
 * An error the API answers with.
 *
 * @example
 * ```ts
 * throw new ServiceError('cas_conflict', 'check-and-set expected version 3, current is 4');
 * throw new ServiceError('rate_limited', 'role rate limit exceeded', { retryAfterSecs: 2 });
 * ```
 */
export class ServiceError extends Error {
  override readonly name: string = 'ServiceError';
  readonly code: ServiceErrorCode;
  readonly status: number;
  readonly retryAfterSecs: number | undefined;
  readonly leader: string | undefined;

  /**
   * @param code - stable code; decides the status
   * @param message - a human sentence, safe to show the client (never a value or token)
   * @param options - retryAfterSecs, leader, cause
   */
  constructor(code: ServiceErrorCode, message: string, options?: ServiceErrorOptions) {
    super(message, options);
    this.code = code;
    this.status = SERVICE_ERROR_STATUS[code];
    this.retryAfterSecs = options?.retryAfterSecs === undefined ? undefined : Math.max(1, Math.ceil(options.retryAfterSecs));
    this.leader = options?.leader;
  }
}

/** The JSON error body. */
export interface ErrorBody {
  readonly error: { readonly code: ServiceErrorCode; readonly message: string; readonly requestId: string; readonly leader?: string };
}

/**
 * @param err - the error
 * @param requestId - the request's id
 * @returns the body to send
 */
export function errorBody(err: ServiceError, requestId: string): ErrorBody {
  const inner = err.leader === undefined
    ? { code: err.code, message: err.message, requestId }
    : { code: err.code, message: err.message, requestId, leader: err.leader };
  return { error: inner };
}

/** NodeError codes that are the client's fault, and what the client sees. */
const NODE_CODE_TO_SERVICE: Partial<Record<NodeErrorCode, ServiceErrorCode>> = {
  NODE_INVALID_DURATION: 'invalid_request',
  NODE_INVALID_RATE_LIMIT: 'invalid_request',
  NODE_AUDIT_WRITE_FAILED: 'audit_unavailable',
  NODE_AUDIT_CLOSED: 'shutting_down',
};

/** body-parser `type` values (express.json/raw/text) → codes. Matched on `type`, never message. */
const BODY_PARSER_TYPES: Readonly<Record<string, readonly [ServiceErrorCode, string]>> = {
  'entity.too.large': ['body_too_large', 'request body is too large'],
  'parameters.too.many': ['body_too_large', 'request has too many parameters'],
  'entity.parse.failed': ['invalid_json', 'request body is not valid JSON'],
  'encoding.unsupported': ['unsupported_media_type', 'request body encoding is not supported'],
  'charset.unsupported': ['unsupported_media_type', 'request body charset is not supported'],
  'request.aborted': ['invalid_request', 'request was aborted by the client'],
  'request.size.invalid': ['invalid_request', 'request body size does not match Content-Length'],
};

/**
 * Maps anything thrown to a ServiceError. ServiceErrors pass through; known client-fault
 * NodeErrors and body-parser errors get their codes; everything else is `internal` with a
 * generic message (the original stays in `cause` for the log, never for the client).
 *
 * @param err - anything thrown
 * @returns the error to answer with
 */
export function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  if (typeof err === 'object' && err !== null) {
    const e = err as { code?: unknown; type?: unknown; message?: unknown };
    if (typeof e.code === 'string' && Object.hasOwn(NODE_CODE_TO_SERVICE, e.code)) {
      const code = NODE_CODE_TO_SERVICE[e.code as NodeErrorCode] as ServiceErrorCode;
      const message = code === 'invalid_request' && typeof e.message === 'string' ? e.message : code === 'audit_unavailable' ? 'the audit log cannot be written; request refused' : 'the node is shutting down';
      return new ServiceError(code, message, code === 'invalid_request' ? { cause: err } : { cause: err, retryAfterSecs: 1 });
    }
    if (typeof e.type === 'string' && Object.hasOwn(BODY_PARSER_TYPES, e.type)) {
      const [code, message] = BODY_PARSER_TYPES[e.type] as readonly [ServiceErrorCode, string];
      return new ServiceError(code, message, { cause: err });
    }
  }
  return new ServiceError('internal', 'internal error; see the server log for this request id', { cause: err });
}

/**
 * Writes an error response on a plain node `ServerResponse` (express's `res` is one), so the lean
 * hot routes and express share one code path.
 *
 * @param res - the response (headers must not be sent yet)
 * @param err - the error
 * @param requestId - the request's id
 */
export function sendServiceError(res: ServerResponse, err: ServiceError, requestId: string): void {
  const body = JSON.stringify(errorBody(err, requestId));
  res.statusCode = err.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  if (err.retryAfterSecs !== undefined) res.setHeader('retry-after', String(err.retryAfterSecs));
  if (err.leader !== undefined) res.setHeader('x-coffer-leader', err.leader);
  res.end(body);
}

/** Options of {@link errorHandler}. */
export interface ErrorHandlerOptions {
  /** Finds the request id (default: `res.locals.requestId`, else `"unknown"`). */
  readonly requestId?: (req: unknown, res: ServerResponse & { locals?: Record<string, unknown> }) => string;
  /** Called for `internal` errors, with the original error (log it). */
  readonly onInternal?: (err: unknown, requestId: string) => void;
}

/** The express error-middleware signature, without importing express types into callers. */
export type ErrorMiddleware = (err: unknown, req: unknown, res: ServerResponse & { locals?: Record<string, unknown> }, next: (err?: unknown) => void) => void;

/**
 * An express error handler (four arguments) mapping errors via {@link toServiceError}.
 *
 * @param opts - request id lookup and internal-error hook
 * @returns the middleware; register it last (`app.use(errorHandler(...))`)
 * @example
 * ```ts
 * app.use(errorHandler({ onInternal: (err, id) => log.error({ err, requestId: id }, 'request failed') }));
 * ```
 */
export function errorHandler(opts: ErrorHandlerOptions = {}): ErrorMiddleware {
  return (err, req, res, next) => {
    if (res.headersSent) {
      // Too late for a clean answer: let express close the connection.
      next(err);
      return;
    }
    const fromLocals = res.locals?.['requestId'];
    const requestId = opts.requestId?.(req, res) ?? (typeof fromLocals === 'string' ? fromLocals : 'unknown');
    const se = toServiceError(err);
    if (se.code === 'internal') opts.onInternal?.(err, requestId);
    sendServiceError(res, se, requestId);
  };
}
