// The idempotency table: request id → first result, FIFO-bounded to DEDUP_CAPACITY entries. Part
// of the replicated state, the snapshot and the digest: every replica evicts the same entries.
import { invariant } from './errors.js';
import { KEY, dedupKey, encodeDedup, encodeNumber, type CommandResult } from './records.js';

/** Size of the idempotency table (entries, FIFO). Part of the replicated state and the snapshot. */
export const DEDUP_CAPACITY = 10_000;

/** Request ids already applied, with their results. */
export class DedupTable {
  /** Insertion order = sequence order; eviction drops the oldest. */
  private byId = new Map<string, { seq: number; result: CommandResult }>();
  private bySeq = new Map<number, string>();
  /** Sequence number of the newest entry (persisted as `KEY.dedupSeq`). */
  seq = 0;

  /**
   * @param requestId - a proposal's request id
   * @returns the remembered result (a copy), or undefined
   */
  get(requestId: string): CommandResult | undefined {
    const d = this.byId.get(requestId);
    return d ? { ...d.result } : undefined;
  }

  /** Number of entries. */
  get size(): number {
    return this.byId.size;
  }

  /**
   * Remembers a result, evicting the oldest entries beyond the capacity.
   *
   * @param requestId - non-empty request id
   * @param result - the first result
   * @param mark - marks a changed record key
   */
  remember(requestId: string, result: CommandResult, mark: (key: string) => void): void {
    const seq = ++this.seq;
    this.byId.set(requestId, { seq, result });
    this.bySeq.set(seq, requestId);
    mark(dedupKey(seq));
    mark(KEY.dedupSeq);
    // Invariant: the table holds exactly the sequence numbers (seq - size, seq], so the oldest is
    // found by arithmetic (iterating a Map from its head after many deletes is O(n)).
    while (this.byId.size > DEDUP_CAPACITY) {
      const oldest = this.seq - this.byId.size + 1;
      const oldId = this.bySeq.get(oldest);
      invariant(oldId !== undefined, `idempotency table lost entry ${oldest}`);
      this.byId.delete(oldId);
      this.bySeq.delete(oldest);
      mark(dedupKey(oldest));
    }
  }

  /**
   * Loads entries read from records (any order).
   *
   * @param entries - `[seq, requestId, result]`
   */
  load(entries: [number, string, CommandResult][]): void {
    entries.sort((a, b) => a[0] - b[0]);
    for (const [seq, id, result] of entries) {
      this.byId.set(id, { seq, result });
      this.bySeq.set(seq, id);
    }
  }

  /**
   * @param seqText - the part of an `md` key after the prefix
   * @returns the record's value, or null when the entry is gone
   */
  encodeEntry(seqText: string): Uint8Array | null {
    const id = this.bySeq.get(Number(seqText));
    const d = id === undefined ? undefined : this.byId.get(id);
    return id !== undefined && d ? encodeDedup(id, d.result) : null;
  }

  /**
   * Appends every record of the table (entries and the counter), unsorted.
   *
   * @param out - where to push `[key, value]` pairs
   */
  records(out: [string, Uint8Array][]): void {
    for (const [id, d] of this.byId) out.push([dedupKey(d.seq), encodeDedup(id, d.result)]);
    out.push([KEY.dedupSeq, encodeNumber(this.seq)]);
  }
}
