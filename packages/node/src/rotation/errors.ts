/**
 * Errors of rotation targets (systems whose credentials Coffer changes when it rotates a secret).
 *
 * Callers match on `code`, never on `message`: codes are a contract, messages are not.
 * Messages name the role and what the target system said; they never contain a password, a
 * password verifier or a connection URL (the URL carries the admin's password).
 *
 * NB: a separate class, not a `NodeError`, only because `NodeErrorCode` lives in `../errors.ts`;
 * the codes carry the package prefix so they can move there unchanged.
 */

/** Every code a {@link RotationTargetError} can carry. */
export type RotationTargetErrorCode =
  /** The target description is unusable: bad role name, bad connection URL, bad target object. */
  | 'NODE_ROTATION_TARGET_INVALID'
  /** Could not connect or authenticate to the target as the admin: nothing was changed. */
  | 'NODE_ROTATION_TARGET_UNREACHABLE'
  /** The target answered and refused the change (e.g. no privilege, unknown role). */
  | 'NODE_ROTATION_TARGET_REFUSED'
  /** The target did not answer in time (connect, or the statement itself). */
  | 'NODE_ROTATION_TARGET_TIMEOUT';

/**
 * Whether the target may have applied the change despite the error.
 * - `no`: the change certainly did not happen (refused, or failed before it was sent).
 * - `unknown`: the statement was sent and no answer came back (timeout, connection lost); the
 *   new password may or may not be in force, so a caller must not assume the old one still is.
 */
export type TargetOutcome = 'no' | 'unknown';

/**
 * A rotation target failed or refused.
 *
 * @example
 * ```ts
 * try { await setPostgresPassword(opts); }
 * catch (e) { if (e instanceof RotationTargetError && e.code === 'NODE_ROTATION_TARGET_REFUSED') {} }
 * ```
 */
export class RotationTargetError extends Error {
  override readonly name: string = 'RotationTargetError';
  /** Stable code; match on this. */
  readonly code: RotationTargetErrorCode;
  /** Whether the change may have happened anyway (see {@link TargetOutcome}). */
  readonly applied: TargetOutcome;
  /** The target's own error code when it gave one (PostgreSQL: the SQLSTATE, e.g. `42501`). */
  readonly targetCode: string | null;

  /**
   * @param code - the stable code
   * @param message - a human sentence without secrets (not a contract)
   * @param details - outcome and the target's own code
   */
  constructor(code: RotationTargetErrorCode, message: string, details: { applied?: TargetOutcome; targetCode?: string | null } = {}) {
    // NB: no `cause`: a driver error may carry connection parameters; the message keeps what matters.
    super(message);
    this.code = code;
    this.applied = details.applied ?? 'no';
    this.targetCode = details.targetCode ?? null;
  }
}
