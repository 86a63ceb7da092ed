/**
 * One table from state-machine result statuses to API errors, so every service answers the same
 * status for the same outcome (STYLE.md §7: one exhaustive table, matched on codes only).
 */
import type { CommandResult, ResultStatus } from '@coffer/state';
import { ServiceError, type ServiceErrorCode } from './errors.js';

type Failure = Exclude<ResultStatus, 'ok' | 'noop'>;

/** Every failing status → [API code, default message]. Adding a status without a row does not compile. */
export const RESULT_ERRORS: Readonly<Record<Failure, readonly [ServiceErrorCode, string]>> = Object.freeze({
  not_found: ['not_found', 'not found'],
  // Only after the bounded re-seal retries: concurrent writers kept taking the version.
  version_conflict: ['cas_conflict', 'the secret kept changing while this write was in flight; retry'],
  cas_conflict: ['cas_conflict', 'check-and-set failed: the current version is not the expected one'],
  cas_required: ['invalid_request', 'this secret requires check-and-set: send "cas"'],
  already_exists: ['already_exists', 'already exists'],
  role_not_found: ['invalid_request', 'the role does not exist'],
  role_in_use: ['role_in_use', 'the role is used by a live token'],
  immutable: ['immutable_role', 'the built-in admin role cannot be changed or deleted'],
  already_bootstrapped: ['internal', 'the cluster was bootstrapped with another token'],
  token_inactive: ['invalid_request', 'the token is revoked or expired'],
  hash_conflict: ['internal', 'token hash collision'],
  stale: ['internal', 'stale command'],
  invalid_snapshot: ['invalid_snapshot', 'the snapshot is not authentic or not a valid Coffer snapshot'],
  already_decided: ['already_decided', 'the access request was already approved or denied'],
  self_approval: ['self_approval', 'the requester cannot approve or deny its own access request'],
  // Login refusals are all one 401, whatever the reason (no oracle for which part was wrong).
  nonce_used: ['invalid_token', 'the login was refused: unknown identity, wrong signature, or a used or expired challenge'],
  identity_inactive: ['invalid_token', 'the login was refused: unknown identity, wrong signature, or a used or expired challenge'],
  rotation_pending: ['rotation_pending', 'a rotation of this secret is waiting for its target system to confirm the new password; retry once it has committed (GET /v1/versions shows "pending")'],
} satisfies Record<Failure, readonly [ServiceErrorCode, string]>);

/**
 * Passes a successful result through and throws the mapped error otherwise.
 *
 * @param result - what `ctx.propose` resolved with
 * @param messages - per-status messages that name the resource (default: the table's)
 * @returns the result when its status is `ok` or `noop`
 * @throws {ServiceError} the table's code for any other status
 * @example
 * ```ts
 * expectOk(await ctx.propose(cmd), { not_found: `no token named "${name}"` });
 * ```
 */
export function expectOk(result: CommandResult, messages: Partial<Record<Failure, string>> = {}): CommandResult {
  if (result.status === 'ok' || result.status === 'noop') return result;
  const [code, message] = RESULT_ERRORS[result.status];
  throw new ServiceError(code, messages[result.status] ?? message);
}
