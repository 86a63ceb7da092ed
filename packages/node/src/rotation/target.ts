/**
 * Runs a rotation target for one rotation: reads the admin connection URL from the target's
 * connection secret (through a callback, so this module needs neither the state nor the KMS) and
 * sets the new password. The leader calls it after the pending version is replicated and before
 * the version commits (see ./README.md for the whole flow).
 */
import { RotationTargetError } from './errors.js';
import { DEFAULT_TARGET_TIMEOUT_MS, checkPostgresUrl, setPostgresPassword, type RotationTarget, type SetPostgresPasswordOptions } from './postgres.js';

/** What {@link runRotationTarget} needs. */
export type RunRotationTargetOptions = {
  readonly target: RotationTarget;
  /** The password the rotation is about to commit. */
  readonly password: string;
  /**
   * Reads a secret's current value as text (the leader's local, already-barriered state).
   * Returns `undefined` when the secret does not exist or its current version is deleted or destroyed.
   */
  readonly readSecret: (name: string) => Promise<string | undefined>;
  /** Bound on connecting and on the statement, each; default {@link DEFAULT_TARGET_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** The setter; a parameter so the caller's tests can count calls. Default {@link setPostgresPassword}. */
  readonly setPassword?: (opts: SetPostgresPasswordOptions) => Promise<void>;
};

/**
 * Applies a rotation target.
 *
 * @param opts - target, new password, secret reader
 * @returns when the target system has the new password
 * @throws {NODE_ROTATION_TARGET_INVALID} the connection secret is missing, unreadable or not a
 *   postgres URL (the message names the secret, never its value)
 * @throws {RotationTargetError} every other code of {@link setPostgresPassword}
 * @example
 * ```ts
 * await runRotationTarget({ target, password: fresh, readSecret: (n) => secrets.readText(n) });
 * ```
 */
export async function runRotationTarget(opts: RunRotationTargetOptions): Promise<void> {
  const { target } = opts;
  const setPassword = opts.setPassword ?? setPostgresPassword;
  const connectionUrl = await opts.readSecret(target.connectionSecret);
  if (connectionUrl === undefined) {
    throw new RotationTargetError(
      'NODE_ROTATION_TARGET_INVALID',
      `cannot set the password of PostgreSQL role ${JSON.stringify(target.role)}: connection secret ${JSON.stringify(target.connectionSecret)} does not exist or has no readable current version`,
    );
  }
  // Checked here too, so the message can name the secret the operator has to fix (never its value).
  const urlCheck = checkPostgresUrl(connectionUrl);
  if (!urlCheck.ok) {
    throw new RotationTargetError(
      'NODE_ROTATION_TARGET_INVALID',
      `cannot set the password of PostgreSQL role ${JSON.stringify(target.role)}: connection secret ${JSON.stringify(target.connectionSecret)}: ${urlCheck.reason}`,
    );
  }
  await setPassword({ connectionUrl, role: target.role, password: opts.password, timeoutMs: opts.timeoutMs ?? DEFAULT_TARGET_TIMEOUT_MS });
}
