/**
 * A rotation through a target system, on the leader (./README.md, "The rotation flow"):
 *
 * 1. `rotation.begin`: the new value, sealed as version v+1 would be, is replicated while v stays
 *    current (reads and verify still see v). Skipped when a rotation is already pending: then that
 *    one is resumed with ITS value (a new leader, or a retry after an unknown outcome).
 * 2. The target is run with the password opened from the replicated envelope (so a resumed
 *    attempt sets exactly the password the first one may have set).
 * 3. `rotation.commit` (v+1 becomes current; v keeps its grace window) or `rotation.fail` (the
 *    error is recorded; the pending value is dropped only when no attempt can have applied it:
 *    the attempt that began it got a certain "no").
 *
 * One run per secret at a time on this node: the API and the worker share the run in flight.
 */
import { zeroize } from '@coffer/crypto';
import { rotationStateOf, pendingRotations, MAX_ROTATION_ERROR_MESSAGE_BYTES, type PendingRotation } from '@coffer/state';
import type { NodeContext } from '../context.js';
import { commandId, cryptoFailure } from '../service/common.js';
import { ServiceError, type ServiceErrorCode } from '../service/errors.js';
import { expectOk } from '../service/results.js';
import type { PlainValue } from '../service/values.js';
import { RotationTargetError, type RotationTargetErrorCode } from './errors.js';
import { decodeRotationTarget, type RotationTarget } from './postgres.js';
import { runRotationTarget, type RunRotationTargetOptions } from './target.js';

/** What a flow needs of the node. */
export type RotationFlowContext = Pick<NodeContext, 'state' | 'propose' | 'now' | 'envelopes' | 'logger' | 'metrics' | 'config'>;

/** Outcome of a rotation: the new current version. */
export interface RotatedVersion {
  readonly name: string;
  readonly version: number;
  readonly createdAt: number;
}

/** What {@link rotateWithTarget} is given. */
export interface RotationFlowOptions {
  readonly ctx: RotationFlowContext;
  readonly name: string;
  readonly actor: string;
  /** A fresh value for version v+1 (called only when no rotation is pending); its plaintext is zeroized here. */
  readonly newValue: () => Promise<PlainValue>;
  /** Reads a secret's current value as text on this node (the connection secret). */
  readonly readText: (name: string) => Promise<string | undefined>;
  /** Bound on connecting and on the statement (tests); default the target's. */
  readonly timeoutMs?: number;
  /** The target setter (tests count calls). */
  readonly setPassword?: RunRotationTargetOptions['setPassword'];
}

/** API code of a target error (also what `lastError.code` records). */
const API_CODES: Readonly<Record<RotationTargetErrorCode, ServiceErrorCode>> = {
  NODE_ROTATION_TARGET_INVALID: 'rotation_target_invalid',
  NODE_ROTATION_TARGET_UNREACHABLE: 'rotation_target_unavailable',
  NODE_ROTATION_TARGET_REFUSED: 'rotation_target_refused',
  NODE_ROTATION_TARGET_TIMEOUT: 'rotation_target_unavailable',
};

/** Metric outcome of a target error. */
const OUTCOMES: Readonly<Record<RotationTargetErrorCode, string>> = {
  NODE_ROTATION_TARGET_INVALID: 'invalid',
  NODE_ROTATION_TARGET_UNREACHABLE: 'unreachable',
  NODE_ROTATION_TARGET_REFUSED: 'refused',
  NODE_ROTATION_TARGET_TIMEOUT: 'timeout',
};

/** Runs in flight per node (keyed by the node's state machine, which the API and the workers share). */
const IN_FLIGHT = new WeakMap<object, Map<string, Promise<RotatedVersion>>>();

/**
 * The target a secret's stored policy names, if it is a runnable one.
 *
 * @param stored - `RotationPolicy.target`
 * @returns the target, or null (none, or a legacy string that is never run)
 */
export function policyTarget(stored: string | null | undefined): RotationTarget | null {
  return stored == null ? null : decodeRotationTarget(stored);
}

/**
 * Sets `coffer_rotation_pending` from the replicated state.
 *
 * @param ctx - the node
 */
export function updatePendingGauge(ctx: Pick<NodeContext, 'state' | 'metrics'>): void {
  ctx.metrics.rotationPending.set(pendingRotations(ctx.state).length);
}

/**
 * Rotates a secret through its target, or resumes its pending rotation (leader only, after a read
 * barrier).
 *
 * @param opts - the node, the secret, who asks, how to make and read values
 * @returns the new current version
 * @throws {ServiceError} `rotation_target_refused` (409), `rotation_target_unavailable` (503,
 *   Retry-After), `rotation_target_invalid` (400), `not_found`, `cas_conflict`, `kms_unavailable`,
 *   and whatever `propose` throws
 */
export function rotateWithTarget(opts: RotationFlowOptions): Promise<RotatedVersion> {
  let runs = IN_FLIGHT.get(opts.ctx.state);
  if (runs === undefined) {
    runs = new Map();
    IN_FLIGHT.set(opts.ctx.state, runs);
  }
  const running = runs.get(opts.name);
  if (running !== undefined) return running;
  const mine = run(opts).finally(() => {
    runs.delete(opts.name);
    updatePendingGauge(opts.ctx);
  });
  runs.set(opts.name, mine);
  return mine;
}

async function run(opts: RotationFlowOptions): Promise<RotatedVersion> {
  const { ctx, name } = opts;
  const existing = rotationStateOf(ctx.state, name)?.pending ?? null;
  if (existing !== null) return settle(opts, existing, false);
  const rec = ctx.state.getSecret(name);
  if (rec === undefined || rec.currentVersion < 1) throw new ServiceError('not_found', `secret "${name}" not found`);
  const fromVersion = rec.currentVersion;
  const value = await opts.newValue();
  let sealed;
  try {
    sealed = await ctx.envelopes.seal(value.plaintext, { name, version: fromVersion + 1 });
  } catch (err) {
    throw cryptoFailure(err);
  } finally {
    zeroize(value.plaintext);
  }
  const attemptId = commandId();
  const res = await ctx.propose({ type: 'rotation.begin', requestId: commandId(), at: ctx.now(), name, fromVersion, attemptId, format: value.format, sealed, actor: opts.actor });
  if (res.status === 'version_conflict') throw new ServiceError('cas_conflict', `secret "${name}" changed while its rotation was starting; retry`);
  if (res.status === 'rotation_pending') {
    // Another proposer's begin won (a leader that was deposed meanwhile): finish that one.
    const other = rotationStateOf(ctx.state, name)?.pending ?? null;
    if (other === null) throw new ServiceError('cas_conflict', `secret "${name}" changed while its rotation was starting; retry`);
    return settle(opts, other, false);
  }
  expectOk(res, { not_found: `secret "${name}" not found` });
  const pending = rotationStateOf(ctx.state, name)?.pending;
  if (pending?.attemptId !== attemptId) throw new ServiceError('cas_conflict', `secret "${name}" changed while its rotation was starting; retry`);
  updatePendingGauge(ctx);
  return settle(opts, pending, true);
}

/** The password inside an opened value: the value itself, or a userpass value's password. */
function passwordOf(p: PendingRotation, plaintext: Uint8Array): string {
  const text = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.length).toString('utf8');
  if (p.format !== 'userpass') return text;
  const up = JSON.parse(text) as { password?: unknown };
  if (typeof up.password !== 'string') throw new ServiceError('internal', 'a pending userpass value has no password');
  return up.password;
}

function clip(message: string): string {
  let m = message;
  while (Buffer.byteLength(m) > MAX_ROTATION_ERROR_MESSAGE_BYTES) m = `${m.slice(0, Math.floor(m.length * 0.9))}…`;
  return m;
}

async function settle(opts: RotationFlowOptions, p: PendingRotation, began: boolean): Promise<RotatedVersion> {
  const { ctx, name } = opts;
  const target = policyTarget(ctx.state.getSecret(name)?.rotation?.target);
  if (target === null) {
    // Only reachable if the policy lost its target while a rotation was pending: nothing can run it.
    const message = `secret "${name}" no longer names a rotation target; its pending rotation is dropped`;
    await fail(opts, p, { code: 'rotation_target_invalid', message }, true);
    throw new ServiceError('rotation_target_invalid', message);
  }
  let plaintext: Uint8Array;
  try {
    plaintext = await ctx.envelopes.open(p.sealed as Parameters<NodeContext['envelopes']['open']>[0], { name, version: p.fromVersion + 1 });
  } catch (err) {
    throw cryptoFailure(err);
  }
  let password: string;
  try {
    password = passwordOf(p, plaintext);
  } finally {
    zeroize(plaintext);
  }
  const started = performance.now();
  try {
    await runRotationTarget({
      target,
      password,
      readSecret: opts.readText,
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
      ...(opts.setPassword === undefined ? {} : { setPassword: opts.setPassword }),
    });
  } catch (err) {
    ctx.metrics.rotationTargetDuration.observe({ type: target.type }, (performance.now() - started) / 1000);
    if (!(err instanceof RotationTargetError)) {
      // Failed before the target was touched (e.g. the KMS could not open the connection secret).
      if (began) await fail(opts, p, { code: 'rotation_target_unavailable', message: 'the connection secret could not be read (KMS or storage failure); nothing was changed' }, true);
      throw cryptoFailure(err);
    }
    ctx.metrics.rotationTargetRuns.inc({ type: target.type, outcome: OUTCOMES[err.code] });
    ctx.logger.warn({ name, role: target.role, code: err.code, targetCode: err.targetCode, applied: err.applied }, 'rotation target failed');
    const code = API_CODES[err.code];
    // Only the attempt that began the rotation knows no earlier attempt ran; a resumed one keeps
    // the pending value even on a certain "no" (an earlier attempt may have set it).
    const drop = began && err.applied === 'no';
    await fail(opts, p, { code, message: clip(err.message) }, drop);
    const message = drop ? err.message : `${err.message} (the new password stays pending and is retried at the next rotation poll)`;
    throw new ServiceError(code, message, code === 'rotation_target_unavailable' ? { retryAfterSecs: ctx.config.rotationPollSecs } : undefined);
  }
  ctx.metrics.rotationTargetDuration.observe({ type: target.type }, (performance.now() - started) / 1000);
  ctx.metrics.rotationTargetRuns.inc({ type: target.type, outcome: 'ok' });
  const res = await ctx.propose({ type: 'rotation.commit', requestId: commandId(), at: ctx.now(), name, attemptId: p.attemptId });
  if (res.status === 'ok') return { name, version: res.version ?? p.fromVersion + 1, createdAt: res.createdAt ?? ctx.now() };
  // Decided by someone else meanwhile (another leader's commit): the outcome is in the state.
  const rec = ctx.state.getSecret(name);
  const made = rec?.versions.find((v) => v.version === p.fromVersion + 1);
  if (res.status === 'noop' && made !== undefined && rec?.currentVersion === made.version) return { name, version: made.version, createdAt: made.createdAt };
  throw new ServiceError('cas_conflict', `secret "${name}" changed while its rotation was committing`);
}

/** Records a target failure; never hides the original error (a failed proposal is only logged). */
async function fail(opts: RotationFlowOptions, p: PendingRotation, error: { code: string; message: string }, drop: boolean): Promise<void> {
  const { ctx, name } = opts;
  try {
    await ctx.propose({ type: 'rotation.fail', requestId: commandId(), at: ctx.now(), name, attemptId: p.attemptId, error, drop });
  } catch (err) {
    ctx.logger.warn({ name, err: String(err) }, 'could not record the rotation target failure; the pending rotation is retried at the next poll');
  }
}
