/**
 * The background workers of one node (each acts only while the node leads; idle on followers):
 * KMS re-wrap, automatic rotation, scheduled snapshots. They run on the node context, so they are
 * started after it is built; until then the controls answer as a disabled worker would.
 */
import type { NodeContext, WorkerControls } from '../context.js';
import { SecretService } from '../service/secrets.js';
import type { SnapshotScheduleStatus } from './snapshots.js';
import { RewrapWorker } from './rewrap.js';
import { RotationWorker } from './rotation.js';
import { SnapshotWorker } from './snapshots.js';

/** The running workers, and {@link WorkerControls} over them. */
export class Workers implements WorkerControls {
  private rewrap: RewrapWorker | undefined;
  private rotation: RotationWorker | undefined;
  private snapshots: SnapshotWorker | undefined;

  /**
   * Builds and starts every worker.
   *
   * @param ctx - the node context
   */
  start(ctx: NodeContext): void {
    // Workers that need the key (re-wrap, rotation) act only while this node leads AND is
    // unsealed (COFFER_SEAL=shamir); a sealed leader leaves them idle instead of failing each pass.
    const unsealedLeader = (): boolean => ctx.isLeader() && ctx.seal?.isSealed() !== true;
    const keyed: NodeContext = new Proxy(ctx, { get: (t, k, r) => (k === 'isLeader' ? unsealedLeader : Reflect.get(t, k, r)) });
    this.rewrap = new RewrapWorker(keyed);
    this.rewrap.start();
    this.rotation = new RotationWorker(keyed, new SecretService(keyed));
    this.rotation.start();
    this.snapshots = new SnapshotWorker(ctx);
    this.snapshots.start();
  }

  /** Tells the re-wrap worker this node now leads (it checks for a rotation at once). */
  onLeadership(): void {
    this.rewrap?.onLeadership();
  }

  requestRewrapPass(): boolean {
    return this.rewrap?.requestPass() ?? false;
  }

  snapshotSchedule(): SnapshotScheduleStatus {
    if (this.snapshots === undefined) throw new Error('the snapshot worker is built before the API listens');
    return this.snapshots.status();
  }

  /** Stops the workers, newest first, each waiting for its work in flight. */
  async stop(): Promise<void> {
    for (const w of [this.snapshots, this.rotation, this.rewrap]) await w?.stop().catch(() => undefined);
  }
}
