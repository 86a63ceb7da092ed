/**
 * The errors services throw. A {@link ServiceError} carries a stable snake_case `code` (part of
 * the public contract, CONTRACT.md) and a message safe to show the client; it knows nothing of
 * HTTP. `http/errors.ts` maps every code to a status and a body in one exhaustive table.
 * (Driver failures become ServiceErrors in `raft/errors.ts`.)
 */

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
  | 'upgrade_pending'
  | 'sealed'
  | 'not_initialized'
  | 'already_initialized'
  | 'unseal_key_malformed'
  | 'unseal_key_duplicate'
  | 'unseal_keys_wrong'
  | 'self_approval'
  | 'already_decided'
  | 'rotation_pending'
  | 'rotation_target_invalid'
  | 'rotation_target_refused'
  | 'rotation_target_unavailable';

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
