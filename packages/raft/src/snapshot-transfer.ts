// Chunked snapshot transfer (InstallSnapshot). The leader streams a snapshot in chunks of
// `maxSnapshotChunkBytes`, at most `maxSnapshotChunksInflight` ahead of what the follower
// acknowledged; the follower reassembles them in order and reports how far it got. A lost,
// duplicated or reordered chunk makes the follower report what it has and the leader resumes from
// there; a stalled transfer is resumed on the next heartbeat response.
import type { SnapshotTransfer } from './progress.js';
import type { Message, NodeId, Snapshot, SnapshotChunk } from './types.js';

/**
 * Leader: the next chunks of a transfer, at most a window ahead of the acknowledged bytes.
 * Advances `tr.sent`.
 *
 * @param tr - the transfer (its snapshot is `snap`)
 * @param snap - the snapshot being sent
 * @param chunkBytes - bytes per chunk
 * @param chunksInflight - chunks allowed beyond the acknowledged bytes
 * @returns chunks to send, in order
 */
export function nextChunks(tr: SnapshotTransfer, snap: Snapshot, chunkBytes: number, chunksInflight: number): SnapshotChunk[] {
  const window = chunkBytes * chunksInflight;
  const total = snap.data.length;
  const out: SnapshotChunk[] = [];
  while ((tr.sent < total || !tr.started) && tr.sent - tr.acked < window) {
    const end = Math.min(total, tr.sent + chunkBytes);
    out.push({ meta: snap.meta, offset: tr.sent, totalBytes: total, data: snap.data.subarray(tr.sent, end) });
    tr.sent = end;
    tr.started = true;
  }
  return out;
}

/** Leader: sends again from the acknowledged byte (a gap, a lost partial copy or a stall). */
function rewind(tr: SnapshotTransfer): void {
  tr.sent = tr.acked;
  if (tr.sent === 0) tr.started = false;
}

/**
 * Leader: a follower's MsgSnapResp for this transfer. `rejectHint` is the number of bytes it holds.
 */
export function handleSnapResp(tr: SnapshotTransfer, m: Message): void {
  if (m.reject) {
    // The follower saw a gap (or lost its partial copy): resume where it says it is.
    tr.acked = Math.min(m.rejectHint, tr.sent);
    rewind(tr);
  } else {
    tr.acked = Math.max(tr.acked, Math.min(m.rejectHint, tr.sent));
  }
}

/**
 * Leader: a heartbeat response from a follower in snapshot state. Chunks lost in the network
 * stall the transfer: when nothing was acknowledged since the previous heartbeat, resend from the
 * last acknowledged byte.
 *
 * @returns whether the transfer was rewound (send its next chunks)
 */
export function checkStalled(tr: SnapshotTransfer): boolean {
  const stalled = tr.acked === tr.ackedAtLastHeartbeat;
  if (stalled) rewind(tr);
  return stalled;
}

/** Follower: what to answer a chunk with. */
export type ChunkOutcome =
  /** Ask the leader to resume from byte `from`. */
  | { kind: 'resend'; from: number }
  /** In order so far: `received` bytes held. */
  | { kind: 'progress'; received: number }
  /** The last byte arrived: install it. */
  | { kind: 'complete'; snapshot: Snapshot };

interface PartialSnapshot {
  from: NodeId;
  meta: Snapshot['meta'];
  total: number;
  received: number;
  buf: Uint8Array;
}

/** Follower: reassembles one incoming snapshot at a time. */
export class SnapshotReceiver {
  private partial: PartialSnapshot | null = null;

  /** Drops a partial copy of a snapshot at or below `index` (already covered by the log). */
  dropCovered(index: number): void {
    if (this.partial !== null && this.partial.meta.index <= index) this.partial = null;
  }

  /**
   * Takes one chunk from `from`. A chunk of another transfer starts a new one if it is a first
   * chunk; a gap asks for a resend; a duplicate is acknowledged again.
   */
  receive(from: NodeId, c: SnapshotChunk): ChunkOutcome {
    let p = this.partial;
    if (p === null || p.meta.index !== c.meta.index || p.meta.term !== c.meta.term || p.from !== from || p.total !== c.totalBytes) {
      // A chunk of a transfer we have no start for: ask for it from the beginning.
      if (c.offset !== 0) return { kind: 'resend', from: 0 };
      p = { from, meta: c.meta, total: c.totalBytes, received: 0, buf: new Uint8Array(c.totalBytes) };
      this.partial = p;
    }
    if (c.offset === p.received) {
      p.buf.set(c.data, c.offset);
      p.received += c.data.length;
    } else if (c.offset > p.received) {
      // A gap (lost or reordered chunk): resume from what we have.
      return { kind: 'resend', from: p.received };
    }
    if (p.received < p.total) return { kind: 'progress', received: p.received };
    this.partial = null;
    return { kind: 'complete', snapshot: { meta: p.meta, data: p.buf } };
  }
}
