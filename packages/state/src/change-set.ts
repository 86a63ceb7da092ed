// The change set of the state machine: which record keys changed since the store last wrote, and
// which sealed blobs to write or delete. The store writes them, with the applied position, in ONE
// atomic batch (`StateMachine.takeChanges`). Invariant: the in-memory state equals the decoded
// on-disk records after each completed batch.
import { ctKey, dekKey, type VersionMeta } from './records.js';

/** Keys touched and blob writes queued since the last hand-off to the store. */
export class ChangeSet {
  /** Metadata record keys touched; their values are encoded from memory at hand-off. */
  dirty: Set<string> = new Set();
  /** Blob writes (null = delete), in order. */
  blobOps: Map<string, Uint8Array | null> = new Map();
  /** Replace every state record (state.restore / snapshot install): the store deletes the rest. */
  fullRewrite = false;
  /**
   * In-memory blobs of a reference replica (`keepBlobs`), else null. Such a replica is never
   * persisted, so its blob writes go here instead of `blobOps`.
   */
  readonly blobs: Map<string, Uint8Array> | null;

  /**
   * @param keepBlobs - keep sealed bytes in memory instead of queueing them for the store
   */
  constructor(keepBlobs: boolean) {
    this.blobs = keepBlobs ? new Map() : null;
  }

  /**
   * Marks a metadata record as changed (or deleted: its value is looked up at hand-off).
   *
   * @param key - record key (`KEY.*` prefix + id, or a singleton key)
   */
  mark(key: string): void {
    this.dirty.add(key);
  }

  /**
   * Writes or deletes a sealed blob.
   *
   * @param key - `bc…`/`bw…` key
   * @param value - bytes, or null to delete
   */
  putBlob(key: string, value: Uint8Array | null): void {
    if (this.blobs) {
      // In-memory replicas keep blobs here and are never persisted: queueing writes would only
      // hold a second reference to every blob ever written.
      if (value === null) this.blobs.delete(key);
      else this.blobs.set(key, value);
    } else this.blobOps.set(key, value);
  }

  /**
   * Deletes the sealed bytes of one version (its envelope, and its re-wrapped DEK if any).
   *
   * @param name - secret name
   * @param v - the version's metadata
   */
  eraseVersion(name: string, v: VersionMeta): void {
    this.putBlob(ctKey(name, v.version), null);
    if (v.wrapMarker !== '') this.putBlob(dekKey(name, v.version), null);
  }

  /** Forgets every queued change (before a full rewrite). */
  clear(): void {
    this.blobOps.clear();
    this.dirty.clear();
  }

  /** Whether anything besides the applied position would be written. */
  get hasChanges(): boolean {
    return this.dirty.size > 0 || this.blobOps.size > 0 || this.fullRewrite;
  }

  /**
   * Hands the queued changes over and starts a new set.
   *
   * @returns the dirty keys, blob writes and whether everything is rewritten
   */
  take(): { dirty: Set<string>; blobOps: Map<string, Uint8Array | null>; fullRewrite: boolean } {
    const out = { dirty: this.dirty, blobOps: this.blobOps, fullRewrite: this.fullRewrite };
    this.dirty = new Set();
    this.blobOps = new Map();
    this.fullRewrite = false;
    return out;
  }
}
