/**
 * The errors services throw. A {@link ServiceError} carries a stable snake_case `code` (part of
 * the public contract, CONTRACT.md) and a message safe to show the client; it knows nothing of
 * HTTP. `http/errors.ts` maps every code to a status and a body in one exhaustive table.
 *
 * Also here: the one mapping from driver failures (`DriverError` codes) to service errors, so
 * whoever proposes or reads through the driver answers the same way ({@link fromDriverError}).
 */
import type { DriverErrorCode } from '../raft/driver.js';

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
  | 'rate_limited'
  | 'locked_out'
  | 'internal'
  | 'integrity_error'
  | 'no_leader'
  | 'no_quorum'
  | 'outcome_unknown'
  | 'kms_unavailable'
  | 'audit_unavailable'
  | 'shutting_down'
  | 'removed'
  | 'upgrade_pending';

/** Extra facts an error may carry. */
export interface ServiceErrorOptions extends ErrorOptions {
  /** Sets `Retry-After` (whole seconds, ≥ 1). */
  readonly retryAfterSecs?: number;
  /** Leader's API URL, when known (forwarding failures). */
  readonly leader?: string;
}

/**
 * An error the API answers with; its status and body come from `http/errors.ts`.
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
    this.retryAfterSecs = options?.retryAfterSecs === undefined ? undefined : Math.max(1, Math.ceil(options.retryAfterSecs));
    this.leader = options?.leader;
  }
}

/** How one driver failure is answered. `message: null` passes the driver's own message on. */
export interface DriverErrorRow {
  readonly code: ServiceErrorCode;
  readonly message: string | null;
  readonly retryAfterSecs?: number;
}

/**
 * Every driver failure → the service error a client sees. Adding a `DriverErrorCode` without a
 * row does not compile. `not_leader` reads "no leader is known" when the driver knows none.
 */
export const DRIVER_ERRORS: Readonly<Record<DriverErrorCode, DriverErrorRow>> = Object.freeze({
  not_leader: { code: 'no_leader', message: 'this node is not the leader; retry', retryAfterSecs: 1 },
  dropped: { code: 'no_leader', message: 'leadership changed before the write committed; it was not applied; retry', retryAfterSecs: 1 },
  outcome_unknown: { code: 'outcome_unknown', message: null, retryAfterSecs: 1 },
  no_quorum: { code: 'no_quorum', message: 'no quorum: the cluster cannot confirm the read right now', retryAfterSecs: 1 },
  stopped: { code: 'shutting_down', message: 'the node is shutting down', retryAfterSecs: 1 },
  conf_change_pending: { code: 'no_quorum', message: 'another membership change is in progress; retry when it completes', retryAfterSecs: 1 },
  invalid_conf_change: { code: 'invalid_request', message: null },
});

/**
 * Maps a driver failure through {@link DRIVER_ERRORS}; anything else is returned unchanged.
 *
 * @param err - what the driver threw (a `DriverError`, matched on its `code`)
 * @param leader - the leader the node knows of, or null
 * @returns the error to throw
 * @example
 * ```ts
 * try { await driver.propose(data); } catch (err) { throw fromDriverError(err, driver.leader()); }
 * ```
 */
export function fromDriverError(err: unknown, leader: string | null): unknown {
  if (!(err instanceof Error) || err.name !== 'DriverError') return err;
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code !== 'string' || !Object.hasOwn(DRIVER_ERRORS, code)) return err;
  const row = DRIVER_ERRORS[code as DriverErrorCode];
  const message = code === 'not_leader' && leader === null ? 'no leader is known; retry shortly' : (row.message ?? err.message);
  return new ServiceError(row.code, message, row.retryAfterSecs === undefined ? { cause: err } : { retryAfterSecs: row.retryAfterSecs, cause: err });
}
