// Durable Raft log, hard state and snapshot, in the node's LevelDB next to the state machine.
//
//   rl<index, 16 digits>  entry        rh  hard state
//   rs                    snapshot meta rd  snapshot data
//
// Entries are written by `append` in one batch together with the hard state; a new entry at
// index i replaces i and everything after it (Raft §5.3 log matching: a conflicting suffix goes).
// Every record but the snapshot data carries a record tag (integrity.ts) bound to its key, so an
// entry injected or edited on disk is never replayed; the snapshot data authenticates itself.
import { Reader, Writer } from './bytes.js';
import { StateError, invariant } from './errors.js';
import type { GroupWriter, Op } from './group-writer.js';
import type { Integrity } from './integrity.js';
import type { HardState, LogEntry, SnapshotMeta } from './types.js';

export const RAFT_KEY = { entryPrefix: 'rl', hardState: 'rh', snapMeta: 'rs', snapData: 'rd' } as const;

/** Key of the entry at `index`; zero-padded so key order is index order. */
export function entryKey(index: number): string {
  return RAFT_KEY.entryPrefix + String(index).padStart(16, '0');
}

export function encodeEntry(e: LogEntry): Uint8Array {
  return new Writer(32 + e.data.length).u8(1).u53(e.term).u8(e.type === 'normal' ? 0 : 1).bytes(e.data).finish();
}

export function decodeEntry(index: number, b: Uint8Array): LogEntry {
  const r = new Reader(b, 'SM_CORRUPT_STORAGE');
  if (r.u8() !== 1) r.fail('unknown log entry record version');
  const term = r.u53();
  const t = r.u8();
  if (t > 1) r.fail('bad entry type');
  const data = r.bytes();
  r.end();
  return { index, term, type: t === 0 ? 'normal' : 'confChange', data };
}

export function encodeHardState(h: HardState): Uint8Array {
  return new Writer(64).u8(1).u53(h.term).optStr(h.vote).u53(h.commit).finish();
}

export function decodeHardState(b: Uint8Array): HardState {
  const r = new Reader(b, 'SM_CORRUPT_STORAGE');
  if (r.u8() !== 1) r.fail('unknown hard state record version');
  const h = { term: r.u53(), vote: r.optStr(), commit: r.u53() };
  r.end();
  return h;
}

export function encodeSnapMeta(m: SnapshotMeta): Uint8Array {
  return new Writer(64).u8(1).u53(m.index).u53(m.term).strs(m.confState.voters).strs(m.confState.learners).finish();
}

export function decodeSnapMeta(b: Uint8Array): SnapshotMeta {
  const r = new Reader(b, 'SM_CORRUPT_STORAGE');
  if (r.u8() !== 1) r.fail('unknown snapshot meta record version');
  const m = { index: r.u53(), term: r.u53(), confState: { voters: r.strs(), learners: r.strs() } };
  r.end();
  return m;
}

/** What `load()` returns at boot. */
export type RaftLogState = {
  hardState: HardState;
  snapshot: SnapshotMeta | null;
  /** Every stored entry after the snapshot index, ascending. */
  entries: LogEntry[];
};

/** Options of a log write. */
export type WriteOptions = { sync: boolean };

/**
 * The Raft log of one node. Obtain it from `openNodeStore(dir).log`.
 */
export class RaftLogStore {
  private readonly writer: GroupWriter;
  private readonly integrity: Integrity;
  private readonly syncedAppliedFn: () => Promise<number>;
  private first: number;
  private last: number;
  private snap: SnapshotMeta | null;
  /** Snapshot saves, one at a time. */
  private snapChain: Promise<unknown> = Promise.resolve();
  private readonly getEntry: (index: number) => Promise<LogEntry | undefined>;

  /** @internal built by openNodeStore */
  constructor(
    writer: GroupWriter,
    init: { first: number; last: number; snapshot: SnapshotMeta | null },
    getEntry: (index: number) => Promise<LogEntry | undefined>,
    syncedApplied: () => Promise<number>,
    integrity: Integrity,
  ) {
    this.writer = writer;
    this.integrity = integrity;
    this.first = init.first;
    this.last = init.last;
    this.snap = init.snapshot;
    this.getEntry = getEntry;
    this.syncedAppliedFn = syncedApplied;
  }

  /** Index of the first stored entry (snapshot index + 1 when the log is empty). */
  get firstIndex(): number {
    return this.first;
  }

  /** Index of the last stored entry (the snapshot index when the log is empty). */
  get lastIndex(): number {
    return this.last;
  }

  /** Metadata of the saved snapshot, or null. */
  get snapshotMeta(): SnapshotMeta | null {
    return this.snap;
  }

  /**
   * Appends entries (and the hard state) in ONE atomic batch. An entry at index i replaces the
   * stored entry i and every entry after it. Concurrent callers share one synced write.
   *
   * @param entries - contiguous entries; the first must be in [firstIndex, lastIndex + 1]
   * @param hardState - written in the same batch when given
   * @param options - `sync: true` to fsync before resolving (what Raft needs before sending)
   * @returns resolves when written
   * @throws {SM_INVARIANT} non-contiguous entries or a gap after the last index
   */
  // async: the bookkeeping below still runs synchronously at call time (ordering of concurrent
  // callers), while invariant failures surface as rejections.
  async append(entries: readonly LogEntry[], hardState?: HardState, options: WriteOptions = { sync: true }): Promise<void> {
    const ops: Op[] = [];
    if (entries.length > 0) {
      const first = (entries[0] as LogEntry).index;
      invariant(first > (this.snap?.index ?? 0), `append at ${first} is at or below the snapshot index ${this.snap?.index ?? 0}`);
      invariant(first <= this.last + 1, `append at ${first} leaves a gap after last index ${this.last}`);
      let expect = first;
      for (const e of entries) {
        invariant(e.index === expect++, 'entries to append must be contiguous');
        const key = entryKey(e.index);
        ops.push({ type: 'put', key, value: this.integrity.sealRecord(key, encodeEntry(e)) });
      }
      const newLast = expect - 1;
      // Truncate the conflicting suffix that the new entries do not overwrite.
      for (let i = newLast + 1; i <= this.last; i++) ops.push({ type: 'del', key: entryKey(i) });
      if (first < this.first) this.first = first;
      this.last = newLast;
    }
    if (hardState) ops.push(this.hardStateOp(hardState));
    return this.writer.write(ops, options.sync);
  }

  /**
   * Persists the hard state alone.
   *
   * @param hardState - term, vote, commit
   * @param options - sync (default true)
   */
  setHardState(hardState: HardState, options: WriteOptions = { sync: true }): Promise<void> {
    return this.writer.write([this.hardStateOp(hardState)], options.sync);
  }

  private hardStateOp(h: HardState): Op {
    return { type: 'put', key: RAFT_KEY.hardState, value: this.integrity.sealRecord(RAFT_KEY.hardState, encodeHardState(h)) };
  }

  /**
   * Saves a snapshot (synced). If the stored entry at `meta.index` does not match `meta.term` (or
   * is missing), the whole log is superseded by the snapshot and discarded; otherwise the entries
   * are kept and `compact` decides what goes. Saves run one at a time, and a meta-only one that is
   * not newer than the saved snapshot is skipped (overtaken by one received from the leader).
   *
   * @param meta - snapshot index, term and configuration
   * @param data - the snapshot blob (received from the leader), or null to record the meta only:
   *   the state machine holds that state itself, and its applied position is synced up to
   *   `meta.index` first
   * @returns whether it was saved
   * @throws {SM_COMPACTION_UNSAFE} meta only, and the state is not applied up to `meta.index`
   */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array | null): Promise<boolean> {
    const run = this.snapChain.then(() => this.saveSnapshotNow(meta, data));
    this.snapChain = run.catch(() => undefined);
    return run;
  }

  private async saveSnapshotNow(meta: SnapshotMeta, data: Uint8Array | null): Promise<boolean> {
    if (data === null) {
      const synced = await this.syncedAppliedFn();
      if (synced < meta.index) throw new StateError('SM_COMPACTION_UNSAFE', `cannot record a snapshot at ${meta.index}: applied state is durable only up to ${synced}`);
    }
    if (data === null && this.snap !== null && meta.index <= this.snap.index) return false;
    const ops: Op[] = [
      { type: 'put', key: RAFT_KEY.snapMeta, value: this.integrity.sealRecord(RAFT_KEY.snapMeta, encodeSnapMeta(meta)) },
      // Meta only: an earlier blob (one received from the leader) is of no further use.
      { type: 'put', key: RAFT_KEY.snapData, value: data ?? new Uint8Array(0) },
    ];
    const at = meta.index >= this.first && meta.index <= this.last ? await this.getEntry(meta.index) : undefined;
    const keep = at !== undefined && at.term === meta.term;
    if (!keep) {
      for (let i = this.first; i <= this.last; i++) ops.push({ type: 'del', key: entryKey(i) });
    }
    await this.writer.write(ops, true);
    this.snap = meta;
    if (!keep) {
      this.first = meta.index + 1;
      this.last = meta.index;
    } else if (this.first > meta.index + 1) this.first = meta.index + 1;
    return true;
  }

  /**
   * Discards entries up to and including `index`. Only entries whose effects are durably on disk
   * may go: `index` must not exceed the saved snapshot's index, and the state machine's applied
   * index is synced first if it is not yet.
   *
   * @param index - last index to discard
   * @throws {SM_COMPACTION_UNSAFE} `index` beyond the snapshot or beyond the applied index
   */
  async compact(index: number): Promise<void> {
    if (!this.snap || index > this.snap.index) {
      throw new StateError('SM_COMPACTION_UNSAFE', `cannot compact to ${index}: saved snapshot is at ${this.snap?.index ?? 0}`);
    }
    const synced = await this.syncedAppliedFn();
    if (index > synced) throw new StateError('SM_COMPACTION_UNSAFE', `cannot compact to ${index}: applied state is durable only up to ${synced}`);
    const ops: Op[] = [];
    for (let i = this.first; i <= Math.min(index, this.last); i++) ops.push({ type: 'del', key: entryKey(i) });
    if (ops.length === 0) return;
    await this.writer.write(ops, false);
    this.first = Math.max(this.first, index + 1);
  }
}
