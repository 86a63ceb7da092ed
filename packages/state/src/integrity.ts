// Authentication of everything this package writes below the barrier: LevelDB records (state
// metadata, sealed blobs, the applied position, Raft entries, hard state, snapshot meta) and
// snapshot blobs. The keys come from the caller (`node` derives them with HKDF from the cluster's
// integrity root, which the disk does not hold); this package never calls a KMS.
//
// Record tag:   HMAC-SHA256(recordKey, u32 BE len(key) || utf8(key) || value), appended to the value.
//               Binding the key means a record moved under another key (a token under another
//               name, a ciphertext under another secret or version, an entry at another index)
//               fails like an edited one.
// Snapshot tag: HMAC-SHA256(snapshotKey, every byte of the blob before the tag) — snapshot-format.ts.
//
// NB: node:crypto rather than @noble/hashes: a snapshot is tens of MiB, and OpenSSL's SHA-256 is
// several times faster than the pure-JS one. Record tags go through FastHmac (hmac.ts): the same
// HMAC-SHA256, without the few microseconds of set-up that one createHmac per record costs.
//
// What a tag cannot stop (documented in docs/SECURITY.md): a disk writer who kept an older copy of
// the same data dir can put back an older, authentic value of the same key (rollback), and can
// delete records.
import { createHmac, createSecretKey, timingSafeEqual, type Hmac, type KeyObject } from 'node:crypto';
import { FastHmac } from './hmac.js';
import { RecordChecker } from './record-checker.js';

/** Bytes of the tag appended to every stored record. */
export const RECORD_TAG_BYTES = 32;

/** Bytes of a derived key. */
export const INTEGRITY_KEY_BYTES = 32;

/** What failed its check; the label of `coffer_integrity_failures_total`. */
export type IntegrityFailureKind = 'record' | 'blob' | 'raft_entry' | 'raft_state' | 'snapshot';

/** Every failure kind (metric label values). */
export const INTEGRITY_FAILURE_KINDS: readonly IntegrityFailureKind[] = Object.freeze(['record', 'blob', 'raft_entry', 'raft_state', 'snapshot'] as const);

/**
 * One refused record. `key` is the LevelDB key (a record name such as `mtdeploy` or `rl0000…12`),
 * never its value; `action` says what the store did about it.
 */
export type IntegrityFailure = { kind: IntegrityFailureKind; key: string; action: string };

/** The two keys an {@link Integrity} needs; both exactly 32 bytes, derived by the caller. */
export type IntegrityKeys = { readonly record: Uint8Array; readonly snapshot: Uint8Array };

/** Options of an {@link Integrity}. */
export type IntegrityOptions = {
  /** Called once per refused record (log it, count it). Must not throw. */
  onFailure?: (failure: IntegrityFailure) => void;
};

/**
 * MACs and checks records and snapshots. One instance per node, shared by its store and state
 * machine; `destroy()` on shutdown.
 *
 * @example
 * ```ts
 * const integrity = new Integrity({ record: recordKey, snapshot: snapshotKey }, { onFailure: (f) => log.error(f) });
 * const stored = integrity.sealRecord('mtdeploy', value);
 * integrity.openRecord('mtdeploy', stored); // value, or null when edited/moved
 * ```
 */
export class Integrity {
  private recordKeyBytes: Buffer;
  private snapshotKeyBytes: Buffer;
  private readonly recordMac: FastHmac;
  private snapshotKey: KeyObject;
  private readonly onFailure: (failure: IntegrityFailure) => void;
  private destroyed = false;

  /**
   * @param keys - record and snapshot keys (copied; zero your copies)
   * @param options - see {@link IntegrityOptions}
   * @throws {RangeError} a key that is not 32 bytes
   */
  constructor(keys: IntegrityKeys, options: IntegrityOptions = {}) {
    if (keys.record.length !== INTEGRITY_KEY_BYTES || keys.snapshot.length !== INTEGRITY_KEY_BYTES) throw new RangeError('integrity keys must be 32 bytes');
    this.recordKeyBytes = Buffer.from(keys.record);
    this.snapshotKeyBytes = Buffer.from(keys.snapshot);
    this.recordMac = new FastHmac(this.recordKeyBytes);
    this.snapshotKey = createSecretKey(this.snapshotKeyBytes);
    this.onFailure = options.onFailure ?? (() => undefined);
  }

  private recordTag(key: string, value: Uint8Array): string {
    if (this.destroyed) throw new TypeError('integrity keys were destroyed');
    return this.recordMac.keyedDigest(key, value);
  }

  /**
   * Appends the tag of `(key, value)` to `value`.
   *
   * @param key - the LevelDB key the value is stored under
   * @param value - the record's bytes
   * @returns `value || tag` (a new array)
   */
  sealRecord(key: string, value: Uint8Array): Uint8Array {
    // From Buffer's shared pool (small records are written and dropped at once): a fresh
    // ArrayBuffer per record cost more than the tag.
    const out = Buffer.allocUnsafe(value.length + RECORD_TAG_BYTES);
    out.set(value, 0);
    out.write(this.recordTag(key, value), value.length, 'latin1');
    return out;
  }

  /**
   * Checks a stored record's tag.
   *
   * @param key - the LevelDB key it was read from
   * @param stored - `value || tag` as read
   * @returns the value (a view into `stored`), or null when the tag does not verify
   */
  openRecord(key: string, stored: Uint8Array): Uint8Array | null {
    if (stored.length < RECORD_TAG_BYTES) return null;
    const value = stored.subarray(0, stored.length - RECORD_TAG_BYTES);
    const tag = stored.subarray(stored.length - RECORD_TAG_BYTES);
    return timingSafeEqual(Buffer.from(this.recordTag(key, value), 'latin1'), tag) ? value : null;
  }

  /**
   * A worker thread that checks record tags like {@link openRecord}, for reading many records at
   * once (boot). It gets a copy of the record key only; `close()` it when done.
   *
   * @returns the checker
   */
  recordChecker(): RecordChecker {
    if (this.destroyed) throw new TypeError('integrity keys were destroyed');
    return new RecordChecker(this.recordKeyBytes, RECORD_TAG_BYTES);
  }

  /**
   * @param body - every byte of a snapshot blob before its tag
   * @returns the 32-byte snapshot tag
   */
  snapshotTag(body: Uint8Array): Uint8Array {
    return this.snapshotHmac().update(body).digest();
  }

  /**
   * An HMAC under the snapshot key, to feed a blob in pieces: `digest()` gives the same tag as
   * {@link snapshotTag} over all of them.
   */
  snapshotHmac(): Hmac {
    if (this.destroyed) throw new TypeError('integrity keys were destroyed');
    return createHmac('sha256', this.snapshotKey);
  }

  /**
   * @param body - every byte of a snapshot blob before its tag
   * @param tag - the tag found at its end
   * @returns whether the tag is the one this cluster's key gives
   */
  verifySnapshotTag(body: Uint8Array, tag: Uint8Array): boolean {
    return tag.length === 32 && timingSafeEqual(this.snapshotTag(body), tag);
  }

  /**
   * Reports a refused record to the `onFailure` hook.
   *
   * @param failure - what, where and what was done
   */
  report(failure: IntegrityFailure): void {
    try {
      this.onFailure(failure);
    } catch {
      // A reporting hook must not turn a refused record into a crash.
    }
  }

  /**
   * Overwrites the key bytes with zeros; the instance throws `TypeError` afterwards. Best effort:
   * JS gives no guarantee that no copy survives (a KeyObject keeps its own copy until collected).
   */
  destroy(): void {
    this.recordKeyBytes.fill(0);
    this.snapshotKeyBytes.fill(0);
    this.recordMac.destroy();
    this.destroyed = true;
  }
}
