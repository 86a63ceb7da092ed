/**
 * The only module that knows how errors look on the wire. Services throw a {@link ServiceError}
 * (`service/errors.ts`) whose `code` is a stable snake_case string from CONTRACT.md; its HTTP
 * status, and its status on Vault-shaped routes, come from ONE exhaustive table,
 * {@link ERROR_HTTP}. Unknown errors become 500 `internal` with the request id and no internal
 * message, so stack traces, file paths and values never leak.
 *
 * Native body: `{"error": {"code", "message", "requestId"}}`, plus `"leader"` (the leader's API
 * URL) when the error names one. Vault body: `{"errors": [message]}`, `{"errors": []}` for 404.
 * Both set `Retry-After` whenever the error carries `retryAfterSecs` and `X-Coffer-Leader` when it
 * names a leader.
 */
import type { ServerResponse } from 'node:http';
import { TransitError, type TransitErrorCode } from '@coffer/crypto';
import type { NodeErrorCode } from '../errors.js';
import { SealError, type SealErrorCode } from '../seal/errors.js';
import { ServiceError, type ServiceErrorCode } from '../service/errors.js';
import { sendJson } from './body.js';

export { ServiceError, type ServiceErrorCode, type ServiceErrorOptions } from '../service/errors.js';

/** How one code is answered. */
export interface HttpErrorRow {
  /** Status on native routes. */
  readonly status: number;
  /** Status on Vault-shaped routes, where Vault answers differently (default: `status`). */
  readonly vaultStatus?: number;
}

/**
 * Every service error code → its answer: adding a code without a row does not compile.
 */
export const ERROR_HTTP: Readonly<Record<ServiceErrorCode, HttpErrorRow>> = Object.freeze({
  invalid_request: { status: 400 },
  invalid_json: { status: 400 },
  invalid_name: { status: 400 },
  invalid_forward: { status: 401 },
  invalid_value: { status: 400 },
  invalid_snapshot: { status: 400 },
  immutable_role: { status: 400 },
  // Vault answers a missing or unknown token with 403 "permission denied".
  missing_token: { status: 401, vaultStatus: 403 },
  invalid_token: { status: 401, vaultStatus: 403 },
  permission_denied: { status: 403 },
  not_allowlisted: { status: 403 },
  not_found: { status: 404 },
  method_not_allowed: { status: 405 },
  // Vault answers a check-and-set mismatch with 400.
  cas_conflict: { status: 409, vaultStatus: 400 },
  already_exists: { status: 409 },
  role_in_use: { status: 409 },
  body_too_large: { status: 413 },
  rate_limited: { status: 429 },
  locked_out: { status: 429 },
  internal: { status: 500 },
  integrity_error: { status: 500 },
  no_leader: { status: 503 },
  no_quorum: { status: 503 },
  outcome_unknown: { status: 503 },
  kms_unavailable: { status: 503 },
  audit_unavailable: { status: 503 },
  shutting_down: { status: 503 },
  removed: { status: 503 },
  upgrade_pending: { status: 503 },
  // The sealed start (seal/errors.ts): Vault answers a sealed node 503 and bad unseal input 400.
  sealed: { status: 503 },
  not_initialized: { status: 400 },
  already_initialized: { status: 400 },
  unseal_key_malformed: { status: 400 },
  unseal_key_duplicate: { status: 400 },
  unseal_keys_wrong: { status: 400 },
  // The requester of an access request may not decide it (CONTRACT.md).
  self_approval: { status: 403 },
  already_decided: { status: 409 },
  // Rotation targets (rotation/README.md): a write while one waits for its target, and what the target said.
  rotation_pending: { status: 409 },
  rotation_target_invalid: { status: 400 },
  rotation_target_refused: { status: 409 },
  rotation_target_unavailable: { status: 503 },
});

/** Native status of every code (derived from {@link ERROR_HTTP}). */
export const SERVICE_ERROR_STATUS: Readonly<Record<ServiceErrorCode, number>> = Object.freeze(
  Object.fromEntries(Object.entries(ERROR_HTTP).map(([code, row]) => [code, row.status])) as Record<ServiceErrorCode, number>,
);

/** Every code, for tests and docs. */
export const SERVICE_ERROR_CODES: readonly ServiceErrorCode[] = Object.freeze(Object.keys(ERROR_HTTP) as ServiceErrorCode[]);

/**
 * @param err - the error
 * @param vault - whether the route answers in Vault's shapes
 * @returns the HTTP status to send
 */
export function httpStatus(err: ServiceError, vault = false): number {
  const row = ERROR_HTTP[err.code];
  return vault ? (row.vaultStatus ?? row.status) : row.status;
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

/** Vault's error body: `{"errors": [message]}`, `{"errors": []}` for a 404 as Vault does. */
export function vaultErrorBody(err: ServiceError): { readonly errors: readonly string[] } {
  return { errors: err.code === 'not_found' ? [] : [err.message] };
}

/**
 * Every transit error of the crypto core → its API code: each is the client's mistake in a
 * ciphertext or its context (400). The core's messages name what is wrong (the version, the
 * minimum, "authentication failed"), never key material, plaintext or the ciphertext itself.
 */
const TRANSIT_ERRORS: Readonly<Record<TransitErrorCode, ServiceErrorCode>> = {
  CRYPTO_TRANSIT_MALFORMED: 'invalid_request',
  CRYPTO_TRANSIT_VERSION_TOO_OLD: 'invalid_request',
  CRYPTO_TRANSIT_VERSION_UNKNOWN: 'invalid_request',
  CRYPTO_TRANSIT_INTEGRITY: 'invalid_request',
};

/** Every SealError code → its API code (a new seal code without a row does not compile). */
const SEAL_ERRORS: Readonly<Record<SealErrorCode, ServiceErrorCode>> = {
  NODE_SEAL_NOT_INITIALIZED: 'not_initialized',
  NODE_SEAL_ALREADY_INITIALIZED: 'already_initialized',
  NODE_SEAL_INVALID_PARAMS: 'invalid_request',
  NODE_SEAL_SHARE_MALFORMED: 'unseal_key_malformed',
  NODE_SEAL_SHARE_DUPLICATE: 'unseal_key_duplicate',
  NODE_SEAL_SHARES_WRONG: 'unseal_keys_wrong',
  NODE_SEAL_SEALED: 'sealed',
};

/** NodeError codes a client can cause, and how they are answered. */
const NODE_ERRORS: Partial<Record<NodeErrorCode, { readonly code: ServiceErrorCode; readonly message: string | null; readonly retryAfterSecs?: number }>> = {
  NODE_INVALID_DURATION: { code: 'invalid_request', message: null },
  NODE_INVALID_RATE_LIMIT: { code: 'invalid_request', message: null },
  NODE_AUDIT_WRITE_FAILED: { code: 'audit_unavailable', message: 'the audit log cannot be written; request refused', retryAfterSecs: 1 },
  NODE_AUDIT_CLOSED: { code: 'shutting_down', message: 'the node is shutting down', retryAfterSecs: 1 },
};

/**
 * Maps anything thrown to a ServiceError. ServiceErrors pass through; known client-fault
 * NodeErrors get their codes (matched on `code`, never on message text); everything else is
 * `internal` with a generic message (the original stays in `cause` for the log, never for the
 * client).
 *
 * @param err - anything thrown
 * @returns the error to answer with
 */
export function toServiceError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  // The seal's messages are written for operators and never hold a share or the key.
  if (err instanceof TransitError) return new ServiceError(TRANSIT_ERRORS[err.code], err.message, { cause: err });
  if (err instanceof SealError) return new ServiceError(SEAL_ERRORS[err.code], err.message, err.code === 'NODE_SEAL_SEALED' ? { cause: err, retryAfterSecs: 1 } : { cause: err });
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (typeof code === 'string' && Object.hasOwn(NODE_ERRORS, code)) {
      const row = NODE_ERRORS[code as NodeErrorCode];
      if (row !== undefined) {
        const opts = row.retryAfterSecs === undefined ? { cause: err } : { cause: err, retryAfterSecs: row.retryAfterSecs };
        return new ServiceError(row.code, row.message ?? err.message, opts);
      }
    }
  }
  return new ServiceError('internal', 'internal error; see the server log for this request id', { cause: err });
}

/**
 * Writes an error response, native or in Vault's envelope.
 *
 * @param res - the response (headers must not be sent yet)
 * @param err - the error
 * @param requestId - the request's id
 * @param vault - answer in Vault's envelope and with Vault's statuses
 */
export function sendError(res: ServerResponse, err: ServiceError, requestId: string, vault = false): void {
  if (vault && !res.hasHeader('x-request-id')) res.setHeader('x-request-id', requestId);
  if (err.retryAfterSecs !== undefined) res.setHeader('retry-after', String(err.retryAfterSecs));
  if (err.leader !== undefined) res.setHeader('x-coffer-leader', err.leader);
  sendJson(res, httpStatus(err, vault), vault ? vaultErrorBody(err) : errorBody(err, requestId));
}
