/**
 * The automatic rotation worker: secrets written with a rotation policy
 * (`"rotation": {"intervalSecs", "graceSecs"}`) get a new random value once their current version
 * is `intervalSecs` old — exactly what `POST /v1/rotate/{name}` does (userpass secrets keep their
 * username and get a new password). The previous version stays valid for `POST /v1/verify/{name}`
 * during its grace window.
 *
 * - Leader only; it looks every `COFFER_ROTATION_POLL_SECS` and proposes only when something is
 *   due (an idle cluster's log does not grow).
 * - Each rotation is one ordinary replicated write, audited with actor `rotation-worker`.
 * - A rotation that fails (KMS unavailable, lost leadership) is simply due again at the next poll.
 * - A secret whose policy names a rotation target (rotation/README.md) rotates through it. A
 *   rotation left pending (an unknown outcome, or a leader that died mid-rotation) is resumed at
 *   every poll with its replicated password until the target confirms it; a target that refused
 *   is tried again once `min(intervalSecs, 5 min)` has passed since its last error.
 */
import type { NodeContext } from '../context.js';
import type { SecretService } from '../service/secrets.js';
import { pendingRotations, rotationStateOf } from '@coffer/state';
import { policyTarget, updatePendingGauge } from '../rotation/flow.js';
import { commandId } from '../service/common.js';

/** Actor recorded in the audit log and in the version's metadata. */
export const ROTATION_ACTOR = 'rotation-worker';

/** Most rotations started per poll. */
const PAGE = 1000;

/** Longest wait before a due rotation whose target failed is tried again. */
const MAX_TARGET_RETRY_MS = 5 * 60_000;

/** Leader-side scheduler of automatic rotations. */
export class RotationWorker {
  readonly #ctx: Pick<NodeContext, 'config' | 'logger' | 'state' | 'now' | 'isLeader' | 'audit' | 'metrics'>;
  readonly #secrets: Pick<SecretService, 'rotate'>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  constructor(ctx: Pick<NodeContext, 'config' | 'logger' | 'state' | 'now' | 'isLeader' | 'audit' | 'metrics'>, secrets: Pick<SecretService, 'rotate'>) {
    this.#ctx = ctx;
    this.#secrets = secrets;
  }

  /** Starts polling. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), this.#ctx.config.rotationPollSecs * 1000);
    this.#timer.unref();
  }

  /** Stops polling; waits for a scan in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  #tick(): void {
    // Every node reports the replicated count, so the gauge survives a leader change.
    if (!this.#stopped) updatePendingGauge(this.#ctx);
    if (this.#stopped || this.#running !== undefined || !this.#ctx.isLeader()) return;
    this.#running = this.runOnce()
      .catch((err: unknown) => {
        this.#ctx.logger.warn({ err: String(err) }, 'automatic rotation scan failed');
        return 0;
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  /**
   * Rotates every secret that is due now (leader only).
   *
   * @returns how many secrets were rotated
   */
  async runOnce(): Promise<number> {
    let rotated = 0;
    // Pending rotations first (they hold a replicated password the target may already have), then
    // at most PAGE due ones per poll; the rest are still due at the next one.
    const pending = pendingRotations(this.#ctx.state);
    const due = this.#ctx.state.rotationDue(this.#ctx.now(), PAGE).filter((n) => !pending.includes(n) && this.#due(n));
    for (const name of [...pending, ...due]) {
      if (this.#stopped || !this.#ctx.isLeader()) return rotated;
      const requestId = commandId();
      try {
        const w = await this.#secrets.rotate(name, ROTATION_ACTOR);
        rotated++;
        await this.#ctx.audit.append({ requestId, actor: ROTATION_ACTOR, clientIp: null, action: 'secret.rotate', resource: name, outcome: 'ok', status: 200 });
        this.#ctx.logger.info({ name, version: w.version }, 'secret rotated automatically');
      } catch (err) {
        await this.#ctx.audit
          .append({ requestId, actor: ROTATION_ACTOR, clientIp: null, action: 'secret.rotate', resource: name, outcome: 'error', status: 503 })
          .catch(() => undefined);
        this.#ctx.logger.warn({ name, err: String(err) }, 'automatic rotation failed; retried at the next poll');
      }
    }
    return rotated;
  }

  #due(name: string): boolean {
    const rec = this.#ctx.state.getSecret(name);
    if (rec?.rotation == null || rec.rotation.intervalSecs <= 0) return false;
    const current = rec.versions.find((v) => v.version === rec.currentVersion);
    // Nothing to rotate from a destroyed or soft-deleted current version: an operator removed it.
    if (current === undefined || current.destroyed || current.deletedAt !== null) return false;
    const now = this.#ctx.now();
    if (current.createdAt + rec.rotation.intervalSecs * 1000 > now) return false;
    // A target that just failed is not hammered at every poll.
    const lastError = policyTarget(rec.rotation.target) === null ? undefined : rotationStateOf(this.#ctx.state, name)?.lastError;
    return lastError == null || lastError.at + Math.min(rec.rotation.intervalSecs * 1000, MAX_TARGET_RETRY_MS) <= now;
  }
}
