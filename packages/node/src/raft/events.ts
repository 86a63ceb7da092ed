/**
 * The driver's events: logged and counted here, then fanned out to the parts that react to them
 * (subscribed by the composition root before the node can hear from a peer). Also the wait for a
 * first leader.
 *
 * A node that has just started knows no leader until the first heartbeat arrives (or its first
 * election ends): requests that need the leader wait for it, up to a bound, instead of failing at
 * once. Once a leader has been seen, a node without one answers 503 at once (no quorum, or an
 * election under way): clients retry elsewhere rather than pile up here.
 */
import type { NodeId } from '@coffer/raft';
import type { Logger } from '../logger.js';
import type { CofferMetrics } from '../metrics.js';
import type { DriverEvents } from './driver-types.js';

/** How often a {@link RaftEvents.firstLeader} wait re-checks its condition without a wake-up. */
const FALLBACK_POLL_MS = 250;

/** Called on every leader change, in the order subscribed. */
export type LeaderListener = (lead: NodeId | null, term: number) => void;

/** What {@link RaftEvents} needs. */
export interface RaftEventsDeps {
  readonly nodeId: NodeId;
  readonly logger: Logger;
  readonly metrics: CofferMetrics;
  /** Whether the node is shutting down (waits end). */
  readonly closing: () => boolean;
  /** The driver stopped: the node cannot continue. */
  readonly fatal: (err: unknown) => void;
}

/** {@link DriverEvents} for one node. */
export class RaftEvents implements DriverEvents {
  private readonly deps: RaftEventsDeps;
  private readonly leaderListeners: LeaderListener[] = [];
  private readonly appliedListeners: ((index: number) => void)[] = [];
  private readonly waiters = new Set<() => void>();
  private sawLeader = false;

  /** @param deps - see {@link RaftEventsDeps} */
  constructor(deps: RaftEventsDeps) {
    this.deps = deps;
  }

  /** @param listener - told of every later leader change */
  onLeader(listener: LeaderListener): void {
    this.leaderListeners.push(listener);
  }

  /** @param listener - told after every applied batch */
  onApply(listener: (index: number) => void): void {
    this.appliedListeners.push(listener);
  }

  onLeaderChange(lead: NodeId | null, term: number): void {
    const { nodeId, metrics } = this.deps;
    metrics.raftLeaderChanges.inc();
    metrics.raftIsLeader.set(lead === nodeId ? 1 : 0);
    metrics.raftTerm.set(term);
    this.deps.logger.info({ lead, term }, `${nodeId} sees leader ${lead ?? 'none'} at term ${term}`);
    for (const l of this.leaderListeners) l(lead, term);
    if (lead !== null) {
      this.sawLeader = true;
      this.wakeWaiters();
    }
  }

  /** Lets every {@link firstLeader} wait check its condition again. */
  private wakeWaiters(): void {
    if (this.waiters.size === 0) return;
    for (const wake of [...this.waiters]) wake();
  }

  onApplied(index: number): void {
    this.deps.metrics.raftAppliedIndex.set(index);
    for (const l of this.appliedListeners) l(index);
    this.wakeWaiters();
  }

  onSnapshot(index: number, bytes: number): void {
    this.deps.logger.info({ index, bytes }, 'snapshot taken, log compacted');
  }

  onSnapshotBuilt(index: number, bytes: number, ms: number): void {
    this.deps.logger.info({ index, bytes, ms }, `built a snapshot at index ${index} for a lagging follower`);
  }

  onSnapshotSent(to: NodeId, index: number): void {
    this.deps.metrics.raftSnapshotsSent.inc();
    this.deps.logger.info({ to, index }, `sending snapshot at index ${index} to ${to}`);
  }

  onSnapshotInstalled(index: number): void {
    this.deps.metrics.raftSnapshotsInstalled.inc();
    this.deps.logger.info({ index }, `installed snapshot at index ${index} from the leader`);
    this.wakeWaiters();
  }

  onFatal(err: unknown): void {
    this.deps.logger.fatal({ err: String((err as Error)?.stack ?? err) }, 'raft driver stopped: the node cannot continue safely');
    this.deps.fatal(err);
  }

  /**
   * Until a leader was first seen: resolves once `ready()` holds or `ms` have passed. Afterwards
   * resolves at once.
   *
   * @param ready - what to wait for (e.g. a leader and its API address are known)
   * @param ms - the longest wait
   */
  async firstLeader(ready: () => boolean, ms: number): Promise<void> {
    if (this.sawLeader) return;
    const deadline = Date.now() + ms;
    while (!ready() && !this.deps.closing()) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        // Leader changes, applied entries and installed snapshots (what brings a member's API
        // address into the address book) wake the wait at once; the timer is only a safety net
        // for anything else the condition reads (it was a 50 ms poll that a request waited out).
        const wake = (): void => {
          this.waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, FALLBACK_POLL_MS));
        this.waiters.add(wake);
      });
    }
  }
}
