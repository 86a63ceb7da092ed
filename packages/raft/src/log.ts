import { RaftError, invariant } from './errors.js';
import { limitSize, type Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

/**
 * The raft log: what is in stable storage plus what is not yet persisted (`unstable`), as in
 * etcd-io/raft `log.go` and `log_unstable.go`.
 *
 * Invariant: applied <= committed <= lastIndex().
 * Invariant: unstable entries start at `unstableOffset`; everything below is in storage (or
 * covered by the unstable snapshot).
 */
export class RaftLog {
  readonly storage: Storage;
  /** Highest index known to be committed on a quorum. */
  committed: number;
  /** Highest index the driver has applied (acknowledged through advance()). */
  applied: number;
  /** Highest index handed to the driver in a Ready but not yet acknowledged. Invariant: applied <= applying <= committed. */
  applying: number;
  unstableSnapshot: Snapshot | null = null;
  unstableEntries: Entry[] = [];
  unstableOffset: number;
  /** Called after entries are appended (the core tracks configuration changes in the log). */
  onAppend: ((ents: Entry[]) => void) | null = null;

  constructor(storage: Storage) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstableOffset = storage.lastIndex() + 1;
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    return this.unstableSnapshot !== null ? this.unstableSnapshot.meta.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstableEntries.length > 0) return this.unstableOffset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** Last index known to be durable (for the leader's own acknowledgement). */
  stableLastIndex(): number {
    if (this.unstableSnapshot !== null) return 0;
    return this.unstableEntries.length > 0 ? this.unstableOffset - 1 : this.lastIndex();
  }

  /** @returns the term of entry `i`, or null when `i` is compacted or beyond the log */
  term(i: number): number | null {
    if (i >= this.unstableOffset) {
      const e = this.unstableEntries[i - this.unstableOffset];
      if (e !== undefined) return e.term;
      return null;
    }
    const s = this.unstableSnapshot;
    if (s !== null) {
      if (i === s.meta.index) return s.meta.term;
      if (i < s.meta.index) return null;
    }
    if (i < this.storage.firstIndex() - 1 || i > this.storage.lastIndex()) return null;
    try {
      return this.storage.term(i);
    } catch (e) {
      if (e instanceof RaftError && (e.code === 'RAFT_COMPACTED' || e.code === 'RAFT_UNAVAILABLE')) return null;
      throw e;
    }
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    invariant(t !== null, `unexpected error when getting the last term (${this.lastIndex()})`);
    return t;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  /** @returns index of the first entry whose term disagrees with ours (or that we lack), else 0 */
  findConflict(ents: Entry[]): number {
    for (const e of ents) if (!this.matchTerm(e.index, e.term)) return e.index;
    return 0;
  }

  /**
   * The fast back-off hint: the largest index <= `index` whose term is <= `term`, and that term.
   * The leader can then skip a whole term of conflicting entries in one round trip.
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      const t = this.term(index);
      if (t === null) return [index, 0];
      if (t <= term) return [index, t];
    }
    return [0, 0];
  }

  /**
   * Follower side of MsgApp (Raft §5.3): when our entry at `index` has term `logTerm`, append
   * `ents` (dropping a conflicting suffix) and advance commit.
   *
   * @returns the index of the last new entry, or null when the consistency check fails
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | null {
    if (!this.matchTerm(index, logTerm)) return null;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      invariant(ci > this.committed, `entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    invariant(after >= this.committed, `after(${after}) is out of range [committed(${this.committed})]`);
    const from = ents[0]!.index;
    const end = this.unstableOffset + this.unstableEntries.length;
    if (from === end) {
      for (const e of ents) this.unstableEntries.push(e);
    } else if (from <= this.unstableOffset) {
      // Replaces entries that may already be in storage; the driver's append truncates them there.
      this.unstableOffset = from;
      this.unstableEntries = ents.slice();
    } else {
      this.unstableEntries = this.unstableEntries.slice(0, from - this.unstableOffset).concat(ents);
    }
    if (this.onAppend !== null) this.onAppend(ents);
    return this.lastIndex();
  }

  /**
   * Entries in [lo, hi) within `maxSize` bytes.
   * @throws {RAFT_COMPACTED} when lo is below firstIndex()
   */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo >= hi) return [];
    if (lo < this.firstIndex()) throw new RaftError('RAFT_COMPACTED', `index ${lo} is compacted`);
    invariant(hi <= this.lastIndex() + 1, `slice[${lo},${hi}) out of bound [${this.firstIndex()},${this.lastIndex()}]`);
    let ents: Entry[] = [];
    if (lo < this.unstableOffset) {
      const stableHi = Math.min(hi, this.unstableOffset);
      ents = this.storage.entries(lo, stableHi, maxSize);
      if (ents.length < stableHi - lo) return ents; // size limit hit
    }
    if (hi > this.unstableOffset) {
      const u = this.unstableEntries.slice(Math.max(lo, this.unstableOffset) - this.unstableOffset, hi - this.unstableOffset);
      ents = ents.length > 0 ? ents.concat(u) : u;
    }
    return limitSize(ents, maxSize);
  }

  commitTo(c: number): void {
    if (this.committed < c) {
      invariant(this.lastIndex() >= c, `tocommit(${c}) is out of range [lastIndex(${this.lastIndex()})]`);
      this.committed = c;
    }
  }

  /** Raft §5.4.2 (figure 8): only an entry of the leader's own term commits by counting. */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    invariant(this.committed >= i && i >= this.applied, `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  hasNextCommittedEnts(): boolean {
    return this.unstableSnapshot === null && this.committed > this.applying;
  }

  nextCommittedEnts(): Entry[] {
    if (!this.hasNextCommittedEnts()) return [];
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const ents = this.slice(lo, this.committed + 1, Number.MAX_SAFE_INTEGER);
    if (ents.length > 0) this.applying = ents[ents.length - 1]!.index;
    return ents;
  }

  /** The driver persisted entries up to `i` (with term `t`): they leave the unstable part. */
  stableTo(i: number, t: number): void {
    if (i < this.unstableOffset) return;
    const e = this.unstableEntries[i - this.unstableOffset];
    // A newer append may have replaced the persisted entry; then it stays unstable.
    if (e === undefined || e.term !== t) return;
    this.unstableEntries = this.unstableEntries.slice(i + 1 - this.unstableOffset);
    this.unstableOffset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.unstableSnapshot !== null && this.unstableSnapshot.meta.index === i) this.unstableSnapshot = null;
  }

  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstableSnapshot = s;
    this.unstableEntries = [];
    this.unstableOffset = s.meta.index + 1;
  }

  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }

  /** @returns the snapshot to send a lagging follower, or null when none is at hand yet */
  snapshotToSend(): Snapshot | null {
    return this.unstableSnapshot ?? this.storage.snapshotToSend();
  }
}
