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
 * - A configured `target` is stored and reported but not called: Coffer does not reach out to
 *   other systems with secret values.
 */
import type { NodeContext } from '../context.js';
import type { SecretService } from '../service/secrets.js';
import { commandId } from '../service/common.js';

/** Actor recorded in the audit log and in the version's metadata. */
export const ROTATION_ACTOR = 'rotation-worker';

/** Most rotations started per poll. */
const PAGE = 1000;

/** Leader-side scheduler of automatic rotations. */
export class RotationWorker {
  readonly #ctx: Pick<NodeContext, 'config' | 'logger' | 'state' | 'now' | 'isLeader' | 'audit'>;
  readonly #secrets: Pick<SecretService, 'rotate'>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  constructor(ctx: Pick<NodeContext, 'config' | 'logger' | 'state' | 'now' | 'isLeader' | 'audit'>, secrets: Pick<SecretService, 'rotate'>) {
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
    // At most PAGE per poll; the rest are still due at the next one.
    for (const name of this.#ctx.state.rotationDue(this.#ctx.now(), PAGE)) {
      if (this.#stopped || !this.#ctx.isLeader()) return rotated;
      if (!this.#due(name)) continue;
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
    return current.createdAt + rec.rotation.intervalSecs * 1000 <= this.#ctx.now();
  }
}
