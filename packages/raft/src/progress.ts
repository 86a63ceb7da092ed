/**
 * The leader's view of one follower (etcd-io/raft `tracker/progress.go`).
 *
 * - probe: we do not know the follower's last index; send one MsgApp per heartbeat interval and
 *   wait for the answer.
 * - replicate: the follower is caught up; stream MsgApp optimistically, bounded by `Inflights`.
 * - snapshot: the follower needs a snapshot; nothing else is sent until it is installed.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Sliding window of unacknowledged MsgApp (last index and bytes of each). */
export class Inflights {
  private readonly maxCount: number;
  private readonly maxBytes: number;
  private idx: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  bytes = 0;

  constructor(maxCount: number, maxBytes: number) {
    this.maxCount = maxCount;
    this.maxBytes = maxBytes;
  }

  count(): number {
    return this.idx.length - this.head;
  }

  add(index: number, bytes: number): void {
    this.idx.push(index);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last index is <= `to`. */
  freeLE(to: number): void {
    while (this.head < this.idx.length && this.idx[this.head]! <= to) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.idx.length) {
      this.idx = this.idx.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  freeFirstOne(): void {
    if (this.count() > 0) this.freeLE(this.idx[this.head]!);
  }

  full(): boolean {
    return this.count() >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.idx = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
  }
}

/** An outgoing chunked snapshot transfer. */
export interface SnapshotTransfer {
  snapIndex: number;
  snapTerm: number;
  /** Bytes the follower has confirmed. */
  acked: number;
  /** Bytes sent so far (may exceed `acked` by the window). */
  sent: number;
  /** True once the first chunk went out (a zero-byte snapshot still needs one). */
  started: boolean;
  /** `acked` at the previous heartbeat response, to detect a stalled transfer. */
  ackedAtLastHeartbeat: number;
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In the snapshot state: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from within the last election timeout (CheckQuorum); kept up to date by the leader. */
  recentActive = false;
  /** Leader tick at which this peer was last heard from. */
  lastHeardTick = 0;
  /** In the probe state: a probe is out, wait for its answer or the next heartbeat. */
  probeSent = false;
  isLearner: boolean;
  readonly inflights: Inflights;
  transfer: SnapshotTransfer | null = null;

  constructor(next: number, isLearner: boolean, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.transfer = null;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapIndex;
  }

  /** @returns true when `n` acknowledges something new */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A MsgApp at `rejected` was refused; `matchHint` is the follower's hint.
   * @returns false when the rejection is stale
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
