// Group commit: every write of a node (Raft appends, hard state, state-machine batches) goes
// through one queue. While a batch is being written, later callers accumulate; the next batch
// carries all of them in one LevelDB write, synced if any of them asked for sync. Order is
// preserved: operations are concatenated in call order, and a LevelDB batch applies in order.
import type { ClassicLevel } from 'classic-level';
import { StateError } from './errors.js';

/** One LevelDB batch operation (string keys, byte values). */
export type Op = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

type Pending = { ops: Op[]; sync: boolean; resolve: () => void; reject: (e: unknown) => void; applied: number | null };

/** Counters for the benchmark and metrics. */
export type WriterStats = { writes: number; syncedWrites: number; requests: number };

export class GroupWriter {
  private readonly db: ClassicLevel<string, Uint8Array>;
  private queue: Pending[] = [];
  private running = false;
  private failure: unknown = null;
  /** Applied index carried by the newest completed write. */
  persistedApplied = 0;
  /** Applied index as of the newest completed synced write (everything before it is on disk). */
  syncedApplied = 0;
  readonly stats: WriterStats = { writes: 0, syncedWrites: 0, requests: 0 };

  constructor(db: ClassicLevel<string, Uint8Array>, applied: number) {
    this.db = db;
    this.persistedApplied = applied;
    // What was on disk when we opened survived a reopen: count it as durable.
    this.syncedApplied = applied;
  }

  /**
   * Queues operations; resolves once they are written (and fsynced when `sync`).
   *
   * @param ops - operations, applied in order after everything queued before
   * @param sync - fsync before resolving
   * @param applied - the state machine's applied index these ops persist, if any
   */
  write(ops: Op[], sync: boolean, applied: number | null = null): Promise<void> {
    if (this.failure) return Promise.reject(this.failed());
    this.stats.requests++;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ ops, sync, resolve, reject, applied });
      if (!this.running) {
        this.running = true;
        // A synced write on an idle writer starts now: its fsync is the longest wait there is, and
        // starting it before the caller goes on (a Raft leader sends its appends next) lets both
        // overlap. Anything else waits for setImmediate, so callers of the current tick (and their
        // microtasks) join the first batch: a commit index and the applied state it lets through
        // go in one write. Under load the writer is busy and every caller joins the next batch.
        if (sync) void this.drain();
        else setImmediate(() => void this.drain());
      }
    });
  }

  private failed(): StateError {
    return new StateError('SM_CORRUPT_STORAGE', 'storage is unusable after a failed write', { cause: this.failure });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      const sync = group.some((p) => p.sync);
      const ops: Op[] = [];
      let applied: number | null = null;
      for (const p of group) {
        for (const op of p.ops) ops.push(op);
        if (p.applied !== null) applied = p.applied;
      }
      try {
        if (this.failure) throw this.failed();
        // A chained batch costs less per operation than an array batch in abstract-level.
        const batch = this.db.batch();
        for (const op of ops) {
          if (op.type === 'put') batch.put(op.key, op.value);
          else batch.del(op.key);
        }
        await batch.write({ sync });
        this.stats.writes++;
        if (sync) this.stats.syncedWrites++;
        if (applied !== null) this.persistedApplied = applied;
        if (sync) this.syncedApplied = this.persistedApplied;
        for (const p of group) p.resolve();
      } catch (e) {
        // A failed write leaves memory ahead of disk: the store is unusable from here on and the
        // node must exit (STYLE.md §4: storage errors make the node inoperable).
        this.failure ??= e;
        for (const p of group) p.reject(e);
      }
    }
    this.running = false;
  }

  /** Resolves when everything queued so far is written. */
  async idle(): Promise<void> {
    if (this.running || this.queue.length > 0) await this.write([], false);
  }
}
