import { RaftError, invariant } from './errors.js';
import { encodeConfChange } from './codec.js';
import type { ConfState, Entry, HardState, NodeId, Snapshot } from './types.js';

/**
 * The raft-facing read side of the log, synchronous because the core never waits. etcd-io/raft
 * `storage.go` semantics: index `firstIndex() - 1` is the snapshot's index, whose term is known
 * but whose entry is not.
 */
export interface Storage {
  /** Persisted hard state and the configuration as of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), limited to about `maxSize` bytes of data (at least one entry).
   * @throws {RAFT_COMPACTED} when lo <= the snapshot index
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /**
   * Term of entry `i`, for `firstIndex() - 1 <= i <= lastIndex()`.
   * @throws {RAFT_COMPACTED} below that range; {RAFT_UNAVAILABLE} above it
   */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  /**
   * The latest snapshot (index 0 when there is none): its meta is the compaction point's. Its data
   * may be empty when the state machine keeps its state itself (see {@link snapshotToSend}).
   */
  snapshot(): Snapshot;
  /**
   * A snapshot to send to a follower the log no longer reaches: the whole state at an index
   * between `firstIndex() - 1` and `lastIndex()`. `null` when none is at hand yet (it is being
   * built on demand): the leader tries again on the follower's next heartbeat response, as etcd
   * does with ErrSnapshotTemporarilyUnavailable.
   */
  snapshotToSend(): Snapshot | null;
}

const EMPTY = new Uint8Array(0);

function entrySize(e: Entry): number {
  return e.data.length + 16;
}

/**
 * Returns a prefix of `ents` whose data fits `maxSize` bytes, keeping at least one entry.
 *
 * @param ents - the entries
 * @param maxSize - the byte budget
 * @returns the prefix (possibly `ents` itself)
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxSize) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

/**
 * In-memory {@link Storage}. The driver writes it (append, setHardState, applySnapshot) while
 * handling a Ready, and at boot repopulates it from disk. Entries are held behind a dummy entry
 * at the snapshot index, as in etcd's MemoryStorage.
 *
 * @example
 * ```ts
 * const storage = MemoryStorage.bootstrap(['n1', 'n2', 'n3']); // a new cluster
 * const joiner = new MemoryStorage();                          // a node that will be added later
 * ```
 */
export class MemoryStorage implements Storage {
  private hard: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: EMPTY };
  /** Whether `snap.data` is the state at its index (false: only the meta was recorded). */
  private snapHasData = true;
  /** A snapshot built on demand for sending (see {@link snapshotToSend}). */
  private sendable: Snapshot | null = null;
  /** A follower needed a snapshot and none was at hand. */
  private wanted = false;
  // ents[0] is a dummy standing for the snapshot index.
  private ents: Entry[] = [{ term: 0, index: 0, type: 'normal', data: EMPTY }];

  /**
   * Storage for the founding members of a NEW cluster: entries 1..n (term 1) each add one voter
   * and are already committed, as etcd's bootstrap does. Nodes that join later start from an
   * empty `new MemoryStorage()` and learn these entries (or a snapshot) from the leader.
   *
   * @param voters - ids of the founding voters (every founder must pass the same list, same order)
   * @returns the populated storage
   * @throws {TypeError} when `voters` is empty or has duplicates
   */
  static bootstrap(voters: NodeId[]): MemoryStorage {
    if (voters.length === 0 || new Set(voters).size !== voters.length) {
      throw new TypeError('bootstrap needs a non-empty list of distinct voters');
    }
    const s = new MemoryStorage();
    s.append(
      voters.map((id, i) => ({
        term: 1,
        index: i + 1,
        type: 'confChange' as const,
        data: encodeConfChange({ type: 'addVoter', nodeId: id, context: EMPTY }),
      })),
    );
    s.setHardState({ term: 1, vote: null, commit: voters.length });
    return s;
  }

  /** @returns persisted hard state and the latest snapshot's configuration */
  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hard }, confState: this.snap.meta.confState };
  }

  /** @param hs - the hard state from a Ready */
  setHardState(hs: HardState): void {
    this.hard = { ...hs };
  }

  /** @returns the entries in [lo, hi) within `maxSize` bytes @throws {RAFT_COMPACTED} */
  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new RaftError('RAFT_COMPACTED', `requested index ${lo} is compacted (first ${offset + 1})`);
    invariant(hi <= this.lastIndex() + 1, `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  /** @returns the term of entry i @throws {RAFT_COMPACTED} @throws {RAFT_UNAVAILABLE} */
  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new RaftError('RAFT_COMPACTED', `requested index ${i} is compacted`);
    const e = this.ents[i - offset];
    if (e === undefined) throw new RaftError('RAFT_UNAVAILABLE', `requested index ${i} is unavailable`);
    return e.term;
  }

  /** @returns the first index with an entry */
  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  /** @returns the last index (the snapshot index when the log is empty) */
  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  /** @returns the latest snapshot (its data empty when only its meta was recorded) */
  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * @returns the snapshot to send a lagging follower, or null when there is none at hand (then
   *   {@link takeSnapshotRequest} tells the driver to build one)
   */
  snapshotToSend(): Snapshot | null {
    if (this.sendable !== null) return this.sendable;
    if (this.snapHasData && this.snap.meta.index > 0) return this.snap;
    this.wanted = true;
    return null;
  }

  /**
   * Whether a follower needed a snapshot that was not at hand since the last call (build one and
   * hand it to {@link setSnapshotToSend}).
   *
   * @returns true once per request
   */
  takeSnapshotRequest(): boolean {
    const wanted = this.wanted;
    this.wanted = false;
    return wanted;
  }

  /**
   * Holds a snapshot built on demand for sending, until the log is compacted past it or replaced.
   *
   * @param i - the index the state was read at, `firstIndex() - 1 <= i <= lastIndex()`
   * @param confState - the configuration as of `i`
   * @param data - the state at `i`
   * @returns whether it was taken (false: the log moved past `i` meanwhile; ask again)
   */
  setSnapshotToSend(i: number, confState: ConfState, data: Uint8Array): boolean {
    if (i < this.ents[0]!.index || i > this.lastIndex()) return false;
    if (this.sendable !== null && this.sendable.meta.index >= i) return false;
    const cs = { voters: [...confState.voters], learners: [...confState.learners] };
    this.sendable = { meta: { index: i, term: this.term(i), confState: cs }, data };
    return true;
  }

  /**
   * Replaces the whole log with a snapshot received from the leader (from a Ready), or at boot
   * with the saved one.
   *
   * @param s - the snapshot
   * @param hasData - false when `s.data` is not the state (a snapshot saved as meta only)
   * @throws {RAFT_SNAPSHOT_OUT_OF_DATE} when it is not newer than the held one
   */
  applySnapshot(s: Snapshot, hasData = true): void {
    if (s.meta.index <= this.snap.meta.index) {
      throw new RaftError('RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot ${s.meta.index} is not newer than ${this.snap.meta.index}`);
    }
    this.snap = s;
    this.snapHasData = hasData;
    this.sendable = null;
    this.ents = [{ term: s.meta.term, index: s.meta.index, type: 'normal', data: EMPTY }];
  }

  /**
   * Records a snapshot of the state machine at applied index `i` (then call `compact`).
   *
   * @param i - an applied index, `<= lastIndex()`
   * @param confState - the configuration as of `i` (what `applyConfChange` last returned)
   * @param data - the state machine's serialized state, or null when the state machine keeps its
   *   state itself and builds a snapshot to send only when a follower needs one
   * @returns the new snapshot
   * @throws {RAFT_SNAPSHOT_OUT_OF_DATE} when `i` is not newer than the held snapshot
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array | null): Snapshot {
    if (i <= this.snap.meta.index) {
      throw new RaftError('RAFT_SNAPSHOT_OUT_OF_DATE', `snapshot ${i} is not newer than ${this.snap.meta.index}`);
    }
    invariant(i <= this.lastIndex(), `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    const cs = { voters: [...confState.voters], learners: [...confState.learners] };
    this.snap = { meta: { index: i, term: this.term(i), confState: cs }, data: data ?? EMPTY };
    this.snapHasData = data !== null;
    return this.snap;
  }

  /**
   * Discards entries up to and including `i` (the driver must have a snapshot covering them).
   *
   * @param i - last index to discard, `<= lastIndex()`
   * @throws {RAFT_COMPACTED} when `i` is already compacted
   */
  compact(i: number): void {
    const offset = this.ents[0]!.index;
    if (i <= offset) throw new RaftError('RAFT_COMPACTED', `index ${i} is already compacted`);
    invariant(i <= this.lastIndex(), `compact ${i} is out of bound lastindex(${this.lastIndex()})`);
    const dummy = this.ents[i - offset]!;
    const rest = this.ents.slice(i - offset + 1);
    this.ents = [{ term: dummy.term, index: dummy.index, type: 'normal', data: EMPTY }, ...rest];
    // A built snapshot the log no longer continues from is of no use to anyone: let it go.
    if (this.sendable !== null && this.sendable.meta.index < i) this.sendable = null;
  }

  /**
   * Appends entries from a Ready; entries at or after the first new index are replaced
   * (a follower's conflicting suffix). Entries at or below the snapshot index are ignored.
   *
   * @param entries - contiguous entries
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    if (entries[0]!.index < first) entries = entries.slice(first - entries[0]!.index);
    const offset = entries[0]!.index - this.ents[0]!.index;
    invariant(offset <= this.ents.length, `missing log entry [last: ${this.lastIndex()}, append at: ${entries[0]!.index}]`);
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of entries) this.ents.push(e);
  }
}
