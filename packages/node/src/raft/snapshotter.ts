/**
 * The driver's snapshots: the periodic one (meta only, then log compaction) and the whole-state
 * one built on demand for a follower the log no longer reaches. Both run in the background, one of
 * each at a time; the driver owns the state they read (configuration, stop flag) through `host`.
 */
import type { ConfState, MemoryStorage } from '@coffer/raft';
import { type Applier, DEFAULT_SNAPSHOT_CATCHUP_ENTRIES, type DriverEvents, type DriverOptions, type DurableLog } from './driver-types.js';

/** What the snapshotter needs from its driver. */
export type SnapshotterHost = {
  readonly storage: MemoryStorage;
  readonly log: DurableLog;
  readonly applier: Applier;
  readonly events: DriverEvents;
  readonly opts: DriverOptions;
  /** The driver stopped (or failed): nothing more is recorded. */
  stopped(): boolean;
  /** The configuration as of the applied index, and its epoch (bumped on every change). */
  conf(): { state: ConfState; epoch: number };
  /** A snapshot could not be recorded: the driver stops and reports it as fatal. */
  fail(err: unknown): void;
};

export class Snapshotter {
  /** Index of the last snapshot (taken here, or installed from the leader by the driver). */
  snapshotIndex: number;
  /** A snapshot is being taken in the background. */
  private snapshotting = false;
  /** A snapshot to send is being built in the background. */
  private building = false;
  private readonly host: SnapshotterHost;

  /**
   * @param host - the driver's side
   * @param snapshotIndex - index of the snapshot the storage starts from
   */
  constructor(host: SnapshotterHost, snapshotIndex: number) {
    this.host = host;
    this.snapshotIndex = snapshotIndex;
  }

  /**
   * Compacts the log once `snapshotEntries` have been applied since the last snapshot, and builds
   * a snapshot to send when a lagging follower needs one; both in the background, one of each at a
   * time, so the Ready loop keeps sending heartbeats and acks meanwhile.
   *
   * The periodic snapshot records only its meta (index, term, configuration): the node store
   * already holds the state at that index, durably (the applied position is synced first). An
   * encoded whole-state snapshot is built only for a follower that needs one, from a point-in-time
   * read of the store (as etcd sends its current database): reading and encoding a large state
   * takes seconds and a blob as large as the state, and every member reaching the threshold at
   * about the same index did that at once and lost leadership under load.
   */
  maybeSnapshot(): void {
    if (this.host.stopped()) return;
    if (this.host.storage.takeSnapshotRequest() && !this.building) this.startBuild();
    if (this.snapshotting) return;
    const applied = this.host.applier.appliedIndex();
    if (applied - this.snapshotIndex < this.host.opts.snapshotEntries) return;
    this.snapshotting = true;
    void this.takeSnapshot(applied, this.host.conf().state, this.host.conf().epoch)
      .catch((err: unknown) => this.host.fail(err))
      .finally(() => {
        this.snapshotting = false;
      });
  }

  /** Records a snapshot at applied index `index` (meta only) and compacts the log behind it. */
  private async takeSnapshot(index: number, confState: ConfState, confEpoch: number): Promise<void> {
    const meta = { index, term: this.host.storage.term(index), confState };
    // Durable before it counts: the log syncs the applied position up to `index` first.
    await this.host.log.saveSnapshot(meta, null, false);
    // Overtaken: an installed snapshot (newer state) or a membership change applied meanwhile
    // (the saved meta stays correct: it describes `index`, which the state holds durably).
    if (this.host.stopped() || index <= this.snapshotIndex || this.host.conf().epoch !== confEpoch) return;
    this.host.storage.createSnapshot(index, confState, null);
    this.snapshotIndex = index;
    const keep = this.host.opts.snapshotCatchUpEntries ?? DEFAULT_SNAPSHOT_CATCHUP_ENTRIES;
    const compactTo = index - keep;
    if (compactTo > this.host.storage.firstIndex()) {
      this.host.storage.compact(compactTo);
      await this.host.log.compact(compactTo);
    }
    this.host.events.onSnapshot?.(index, 0);
  }

  /** Builds a whole-state snapshot for a follower the log no longer reaches. */
  private startBuild(): void {
    this.building = true;
    const confEpoch = this.host.conf().epoch;
    const confState = this.host.conf().state;
    const started = Date.now();
    void this.host.applier
      .snapshot()
      .then(({ index, data }) => {
        if (this.host.stopped()) return;
        // A membership change applied meanwhile: `confState` may not be the one as of `index`.
        if (this.host.conf().epoch !== confEpoch || !this.host.storage.setSnapshotToSend(index, confState, data)) return;
        this.host.events.onSnapshotBuilt?.(index, data.length, Date.now() - started);
      })
      .catch((err: unknown) => this.host.fail(err))
      .finally(() => {
        this.building = false;
      });
  }
}
