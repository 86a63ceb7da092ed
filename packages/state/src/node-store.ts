// One LevelDB per node data dir holding the Raft log and the state machine. Sharing one database
// lets a Raft append and a state batch share one group-committed write, and a synced write covers
// every earlier unsynced one (one write-ahead log).
//
// Below the barrier: every record is stored as `value || tag` (integrity.ts) except the saved Raft
// snapshot, which carries its own keyed tag. Records are checked when read: at open (a bad state
// record is left out and reported; a bad Raft entry is cut off with everything after it; a bad
// applied position, hard state or snapshot meta stops the open), when a blob is read (refused with
// SM_INTEGRITY) and when a snapshot is made (a bad record is left out). The marker record
// `zintegrity` says the data dir is in this format and under this key; a data dir without it was
// written by a build before record tags and is adopted once (`adoptUntaggedStore`).
import { mkdirSync } from 'node:fs';
import { ClassicLevel } from 'classic-level';
import { StateError } from './errors.js';
import { GroupWriter, type Op, type WriterStats } from './group-writer.js';
import type { Integrity } from './integrity.js';
import { RAFT_KEY, RaftLogStore, decodeEntry, decodeHardState, decodeSnapMeta, encodeHardState, entryKey, type RaftLogState } from './raft-log.js';
import { KEY, ctKey, decodeApplied, dekKey, encodeApplied } from './records.js';
import { decodeSnapshotBlob, encodeSnapshotBlobAsync } from './snapshot-format.js';
import {
  INTEGRITY_MARKER_KEY,
  MARKER_VALUE,
  META_GTE,
  META_LT,
  STATE_GTE,
  STATE_LT,
  adoptUntaggedStore,
  openOrThrow,
  readCheckedRange,
  readRange,
  recordKind,
  rekeyStore,
  type StoreAdoption,
} from './store-adoption.js';
import { assembleSealed } from './state-queries.js';
import { StateMachine, type ApplyResult } from './state-machine.js';
import type { LogEntry, SealedValue } from './types.js';

export { INTEGRITY_MARKER_KEY, type StoreAdoption } from './store-adoption.js';

/** Options of {@link openNodeStore}. */
export type OpenStoreOptions = {
  /**
   * The integrity keys before a cluster-key rotation: a data dir whose marker verifies under them
   * is re-tagged under the current keys (records that do not verify under them stay as they are,
   * and are refused like any other).
   */
  previous?: Integrity | undefined;
  /**
   * Adopt a data dir written before record tags (no marker, no tags) as it is, once. Without it
   * such a data dir is refused: a disk writer could otherwise strip every tag and the marker and
   * have forged records adopted at the next start.
   */
  adoptUntagged?: boolean | undefined;
};

/** Bytes of sealed blobs (ciphertext, wrapped DEKs) kept in memory for hot reads. */
export const BLOB_CACHE_BYTES: number = 32 * 1024 * 1024;

/** A consistent snapshot of the state at an applied index. */
export type StateSnapshot = { index: number; term: number; data: Uint8Array };

/**
 * The durable store of one node: `log` (Raft) and the state machine (`state` for synchronous
 * queries, `applyEntries` to apply, `readSealed` for the sealed bytes).
 */
export class NodeStore {
  readonly db: ClassicLevel<string, Uint8Array>;
  /** The Raft log, hard state and saved snapshot. */
  readonly log: RaftLogStore;
  /** Set when this open adopted a data dir written before record tags (log it loudly). */
  readonly adoption: StoreAdoption | null;
  private readonly writer: GroupWriter;
  private readonly integrity: Integrity;
  private sm: StateMachine;
  private bootLog: RaftLogState;
  /** Blob writes of the batch being written: reads must see them before LevelDB does. */
  private inflight = new Map<string, Uint8Array | null>();
  /**
   * Recently read blobs (ciphertext and wrapped DEKs only — never plaintext), so hot reads skip
   * LevelDB. Insertion order is recency order (a hit moves the entry to the end). Bounded by
   * {@link BLOB_CACHE_BYTES}.
   */
  private blobCache = new Map<string, Uint8Array | null>();
  private blobCacheBytes = 0;
  /** Bumped before and after every batch that changes blobs: a read that overlapped one does not fill the cache. */
  private blobGen = 0;
  /** Serialises applies, restores and snapshots against each other. */
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** @internal use `openNodeStore` */
  constructor(
    db: ClassicLevel<string, Uint8Array>,
    sm: StateMachine,
    bootLog: RaftLogState,
    first: number,
    last: number,
    integrity: Integrity,
    adoption: StoreAdoption | null,
  ) {
    this.db = db;
    this.sm = sm;
    this.bootLog = bootLog;
    this.integrity = integrity;
    this.adoption = adoption;
    this.writer = new GroupWriter(db, sm.applied);
    this.log = new RaftLogStore(
      this.writer,
      { first, last, snapshot: bootLog.snapshot },
      async (i) => {
        const key = entryKey(i);
        const v = await db.get(key);
        return v === undefined ? undefined : decodeEntry(i, openOrThrow(integrity, 'raft_entry', key, v));
      },
      () => this.syncApplied(),
      integrity,
    );
  }

  private seal(key: string, value: Uint8Array): Uint8Array {
    return this.integrity.sealRecord(key, value);
  }

  /** The in-memory state machine: synchronous queries. Replaced by `restoreSnapshot`. */
  get state(): StateMachine {
    return this.sm;
  }

  /** Index of the last applied entry. */
  get applied(): number {
    return this.sm.applied;
  }

  /** Group-commit counters. */
  get writerStats(): Readonly<WriterStats> {
    return this.writer.stats;
  }

  /**
   * What was on disk at open: hard state, saved snapshot meta and the entries after it. The
   * node feeds these to its Raft storage and passes `applied` to Raft.
   *
   * @returns the Raft state at boot
   */
  load(): RaftLogState {
    return this.bootLog;
  }

  private check(): void {
    if (this.closed) throw new StateError('SM_STORE_CLOSED', 'the store is closed');
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Applies committed entries and persists their effects together with the new applied index in
   * ONE atomic batch (not fsynced: the Raft log is; see `compact`). Entries at or below the
   * applied index are skipped, so replaying after a crash never applies twice.
   *
   * @param entries - committed entries in index order
   * @param onApplied - given the results as soon as every entry is applied in memory and the
   *   batch is queued (so that reads of this node already see it), before the unsynced write
   *   completes: that write adds nothing a caller could rely on (the Raft log holds the entries,
   *   and a failed write stops the node). Not called when an entry fails.
   * @returns one result per newly applied entry
   * @throws {SM_UNKNOWN_COMMAND} {SM_UNSUPPORTED_VERSION} {SM_CORRUPT_COMMAND} the entry that fails
   *   is not applied; the entries before it are applied and persisted first. The node must stop.
   */
  applyEntries(entries: readonly LogEntry[], onApplied?: (results: readonly ApplyResult[]) => void): Promise<ApplyResult[]> {
    this.check();
    return this.serial(async () => {
      const results: ApplyResult[] = [];
      let failure: unknown = null;
      for (const e of entries) {
        try {
          const r = this.sm.apply(e);
          if (r) results.push(r);
        } catch (err) {
          failure = err;
          break;
        }
      }
      await this.persist(failure === null && onApplied !== undefined ? () => onApplied(results) : undefined);
      if (failure !== null) throw failure;
      return results;
    });
  }

  /** @param onQueued - called once the batch is handed to the writer (blobs readable from `inflight`) */
  private async persist(onQueued?: () => void): Promise<void> {
    const before = this.writer.persistedApplied;
    if (!this.sm.hasChanges && this.sm.applied === before) {
      onQueued?.();
      return;
    }
    const ch = this.sm.takeChanges();
    const ops: Op[] = [];
    if (ch.fullRewrite) {
      // Replace the state wholesale (state.restore). Deletes first; a later put of the same key
      // in the same batch wins. The address book is kept as it is.
      for await (const key of this.db.keys({ gte: STATE_GTE, lt: STATE_LT })) {
        if (!key.startsWith(KEY.member)) ops.push({ type: 'del', key });
      }
    }
    if (ch.fullRewrite) this.clearBlobCache();
    for (const key of ch.dels) {
      ops.push({ type: 'del', key });
      if (key.charCodeAt(0) === 0x62 /* b */) {
        this.inflight.set(key, null);
        this.dropBlob(key);
      }
    }
    for (const [key, value] of ch.puts) {
      ops.push({ type: 'put', key, value: this.seal(key, value) });
      if (key.charCodeAt(0) === 0x62) {
        this.inflight.set(key, value);
        this.dropBlob(key);
      }
    }
    const blobsChange = this.inflight.size > 0 || ch.fullRewrite;
    if (blobsChange) this.blobGen++;
    ops.push({ type: 'put', key: KEY.applied, value: this.seal(KEY.applied, encodeApplied(ch.applied.index, ch.applied.term)) });
    try {
      const writing = this.writer.write(ops, false, ch.applied.index);
      onQueued?.();
      await writing;
    } finally {
      this.inflight = new Map();
      // Reads that started while the batch was being written must not fill the cache either.
      if (blobsChange) this.blobGen++;
      if (ch.fullRewrite) this.clearBlobCache();
    }
  }

  private dropBlob(key: string): void {
    const v = this.blobCache.get(key);
    if (v === undefined) return;
    this.blobCache.delete(key);
    this.blobCacheBytes -= (v?.length ?? 0) + key.length;
  }

  private clearBlobCache(): void {
    this.blobCache.clear();
    this.blobCacheBytes = 0;
  }

  private cachedBlob(key: string): Uint8Array | null | undefined {
    const v = this.blobCache.get(key);
    if (v !== undefined) {
      this.blobCache.delete(key);
      this.blobCache.set(key, v);
    }
    return v;
  }

  private cacheBlob(key: string, value: Uint8Array | null): void {
    const size = (value?.length ?? 0) + key.length;
    if (size > BLOB_CACHE_BYTES / 16) return;
    this.dropBlob(key);
    this.blobCache.set(key, value);
    this.blobCacheBytes += size;
    for (const [k, v] of this.blobCache) {
      if (this.blobCacheBytes <= BLOB_CACHE_BYTES) break;
      this.blobCache.delete(k);
      this.blobCacheBytes -= (v?.length ?? 0) + k.length;
    }
  }

  /**
   * Reads a version's sealed value (ciphertext and wrapped DEK) from LevelDB.
   *
   * @param name - secret name
   * @param version - version number
   * @returns the sealed value, or undefined for unknown, pruned or destroyed versions
   * @throws {SM_CORRUPT_STORAGE} the stored bytes do not match the digest in the metadata
   * @throws {SM_INTEGRITY} a stored blob fails its tag (edited, or moved from another name/version)
   */
  async readSealed(name: string, version: number): Promise<SealedValue | undefined> {
    this.check();
    // A batch that changes this version's blobs (a re-wrap, a destroy, a restore) can land while
    // LevelDB is being read: then the bytes read may not match the metadata any more. Such a read
    // is simply repeated; a mismatch without a concurrent batch is real corruption.
    for (let attempt = 0; ; attempt++) {
      const gen = this.blobGen;
      try {
        return await this.readSealedOnce(name, version, gen);
      } catch (err) {
        if (attempt < 5 && gen !== this.blobGen && err instanceof StateError && err.code === 'SM_CORRUPT_STORAGE') continue;
        throw err;
      }
    }
  }

  private async readSealedOnce(name: string, version: number, gen: number): Promise<SealedValue | undefined> {
    const meta = this.sm.getSecret(name);
    if (!meta?.versions.some((v) => v.version === version && !v.destroyed)) return undefined;
    const kc = ctKey(name, version);
    const kd = dekKey(name, version);
    // `null` = known absent (in flight as deleted, or cached as absent: a version never re-wrapped
    // has no separate wrapped-DEK blob).
    const pc = this.inflight.has(kc) ? (this.inflight.get(kc) as Uint8Array | null) : this.cachedBlob(kc);
    const pd = this.inflight.has(kd) ? (this.inflight.get(kd) as Uint8Array | null) : this.cachedBlob(kd);
    let ct = pc ?? undefined;
    let dek = pd ?? undefined;
    if (pc === undefined || pd === undefined) {
      const [sc, sd] = await this.db.getMany([kc, kd]);
      // Only verified bytes are used or cached (the cache holds values without their tags).
      const c = sc === undefined ? undefined : openOrThrow(this.integrity, 'blob', kc, sc);
      const d = sd === undefined ? undefined : openOrThrow(this.integrity, 'blob', kd, sd);
      if (pc === undefined) ct = c;
      if (pd === undefined) dek = d;
      // Fill the cache only if no batch changed blobs meanwhile (else `c`/`d` may be stale).
      if (gen === this.blobGen && !this.closed) {
        if (pc === undefined) this.cacheBlob(kc, c ?? null);
        if (pd === undefined) this.cacheBlob(kd, d ?? null);
      }
    }
    // Metadata may have moved on during the read (e.g. destroyed); re-check against current.
    return assembleSealed(this.sm.getSecret(name), version, ct, dek);
  }

  /**
   * A consistent snapshot of the persisted state (one LevelDB iterator is a point-in-time view):
   * everything replicated, at the persisted applied index.
   *
   * @returns applied index, term and the versioned, checksummed blob
   */
  createSnapshot(): Promise<StateSnapshot> {
    this.check();
    // The iterator is created in turn with applies (so it sees a whole batch or none of it) and
    // is a point-in-time view from then on: applies continue while it is read.
    return this.serial(async () => this.db.iterator({ gte: STATE_GTE, lt: STATE_LT })).then(async (it) => {
      const records: [string, Uint8Array][] = [];
      let applied = { index: 0, term: 0 };
      try {
        for (;;) {
          const batch = await it.nextv(4096);
          if (batch.length === 0) break;
          for (const [k, v] of batch) {
            if (k === KEY.applied) {
              applied = decodeApplied(openOrThrow(this.integrity, 'record', k, v));
              continue;
            }
            // A record that fails its tag was never loaded; it must not be laundered into a
            // snapshot that every member would trust.
            const value = this.integrity.openRecord(k, v);
            if (value === null) this.integrity.report({ kind: recordKind(k), key: k, action: 'left out of the snapshot' });
            else records.push([k, value]);
          }
        }
      } finally {
        await it.close();
      }
      return { index: applied.index, term: applied.term, data: await encodeSnapshotBlobAsync(applied.index, applied.term, records, this.integrity) };
    });
  }

  /**
   * Replaces the whole state (including the member address book) with a snapshot, atomically, and
   * sets the applied index to the snapshot's (Raft InstallSnapshot). Synced.
   *
   * @param blob - snapshot blob
   * @returns the snapshot's applied index and term
   * @throws {SM_CORRUPT_SNAPSHOT} {SM_UNSUPPORTED_SNAPSHOT} {SM_SNAPSHOT_NOT_AUTHENTIC} nothing is changed
   */
  restoreSnapshot(blob: Uint8Array): Promise<{ index: number; term: number }> {
    this.check();
    return this.serial(async () => {
      const snap = decodeSnapshotBlob(blob, this.integrity);
      const meta = snap.records.filter(([k]) => k.startsWith(META_GTE));
      const sm = StateMachine.fromRecords(meta, snap, { integrity: this.integrity });
      const ops: Op[] = [];
      for await (const key of this.db.keys({ gte: STATE_GTE, lt: STATE_LT })) ops.push({ type: 'del', key });
      for (const [key, value] of snap.records) ops.push({ type: 'put', key, value: this.seal(key, value) });
      ops.push({ type: 'put', key: KEY.applied, value: this.seal(KEY.applied, encodeApplied(snap.index, snap.term)) });
      this.blobGen++;
      this.clearBlobCache();
      await this.writer.write(ops, true, snap.index);
      this.blobGen++;
      this.clearBlobCache();
      this.sm = sm;
      return { index: snap.index, term: snap.term };
    });
  }

  /** @internal see `readSavedSnapshot` */
  async savedSnapshot(): Promise<Uint8Array | undefined> {
    const data = await this.db.get(RAFT_KEY.snapData);
    if (data === undefined || data.length === 0) return data;
    const meta = this.log.snapshotMeta;
    try {
      const snap = decodeSnapshotBlob(data, this.integrity);
      if (meta === null || snap.index !== meta.index || snap.term !== meta.term) throw new StateError('SM_INTEGRITY', 'the saved snapshot is not the one its meta describes');
    } catch (err) {
      this.integrity.report({ kind: 'snapshot', key: RAFT_KEY.snapData, action: 'refused' });
      throw new StateError('SM_INTEGRITY', 'the saved Raft snapshot fails its integrity check; wipe this data dir and let the node re-join', { cause: err });
    }
    return data;
  }

  private async syncApplied(): Promise<number> {
    await this.chain;
    if (this.writer.syncedApplied < this.writer.persistedApplied) {
      // A synced write flushes the write-ahead log, and with it every earlier state batch.
      await this.writer.write([{ type: 'put', key: KEY.applied, value: this.seal(KEY.applied, encodeApplied(this.sm.applied, this.sm.appliedTermValue)) }], true, this.sm.applied);
    }
    return this.writer.syncedApplied;
  }

  /**
   * Waits for queued writes, then closes LevelDB.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.chain;
    await this.writer.idle();
    this.closed = true;
    await this.db.close();
  }
}

/**
 * Opens (creating if needed) the store of one node data dir, loads the state metadata into memory
 * and the Raft log. If a saved snapshot is newer than the persisted state (a crash between saving
 * an installed snapshot and applying it), the state is restored from it before returning.
 *
 * Every record is checked against its tag (`integrity`): a state record that fails is left out
 * (the node serves the rest); a Raft entry that fails is cut off with every entry after it, and the
 * hard state's commit index is lowered to match, so the leader re-sends them (an entry at or below
 * the applied index cannot be cut: the open fails). Each refusal goes to `integrity.report`.
 *
 * @param dir - directory for LevelDB (e.g. `<COFFER_DATA_DIR>/store`)
 * @param integrity - the cluster's integrity keys (from `node`; the disk never holds them)
 * @param options - see {@link OpenStoreOptions}
 * @returns the open store
 * @throws {SM_CORRUPT_STORAGE} a record does not decode
 * @throws {SM_INTEGRITY} the data dir was written under another key, or a record it cannot do
 *   without (applied position, hard state, snapshot meta, an applied Raft entry) fails its tag
 * @example
 * ```ts
 * const store = await openNodeStore('/var/lib/coffer/n1/store', integrity);
 * const { hardState, snapshot, entries } = store.load();
 * ```
 */
export async function openNodeStore(dir: string, integrity: Integrity, options: OpenStoreOptions = {}): Promise<NodeStore> {
  mkdirSync(dir, { recursive: true });
  // A larger write buffer than LevelDB's 4 MiB default: a restore or a big apply batch otherwise
  // stalls on memtable flushes several times per write.
  const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view', writeBufferSize: 32 * 1024 * 1024 });
  await db.open();
  try {
    let adoption: StoreAdoption | null = null;
    const marker = await db.get(INTEGRITY_MARKER_KEY);
    if (marker === undefined) {
      const empty = (await db.keys({ limit: 1 }).all()).length === 0;
      // Not synced: a crash that loses it loses nothing else (the write-ahead log replays in order),
      // or leaves records without a marker, which the next open refuses: it fails closed.
      if (empty) await db.put(INTEGRITY_MARKER_KEY, integrity.sealRecord(INTEGRITY_MARKER_KEY, MARKER_VALUE), { sync: false });
      else if (options.adoptUntagged === true) adoption = await adoptUntaggedStore(db, integrity);
      else {
        throw new StateError(
          'SM_INTEGRITY',
          'this data dir has no storage integrity tags (written by a version before them, or stripped of them): to adopt it as it is, start once with COFFER_INTEGRITY_ADOPT=true',
        );
      }
    } else if (integrity.openRecord(INTEGRITY_MARKER_KEY, marker) === null) {
      if (options.previous !== undefined && options.previous.openRecord(INTEGRITY_MARKER_KEY, marker) !== null) {
        adoption = await rekeyStore(db, options.previous, integrity);
      } else {
        throw new StateError(
          'SM_INTEGRITY',
          'this data dir was written under another integrity key (a different COFFER_CLUSTER_KEY, master key or root key; after a cluster-key rotation set COFFER_PREVIOUS_CLUSTER_KEY), or its marker was edited',
        );
      }
    }

    const appliedRaw = await db.get(KEY.applied);
    const applied = appliedRaw ? decodeApplied(openOrThrow(integrity, 'record', KEY.applied, appliedRaw)) : { index: 0, term: 0 };
    const sm = await StateMachine.fromRecordReader(
      (each) => readCheckedRange(db, META_GTE, META_LT, integrity, each, (key) => integrity.report({ kind: 'record', key, action: 'ignored' })),
      applied,
      { integrity },
    );

    const [hsRaw, smRaw] = await db.getMany([RAFT_KEY.hardState, RAFT_KEY.snapMeta]);
    const hardState = hsRaw ? decodeHardState(openOrThrow(integrity, 'raft_state', RAFT_KEY.hardState, hsRaw)) : { term: 0, vote: null, commit: 0 };
    const snapshot = smRaw ? decodeSnapMeta(openOrThrow(integrity, 'raft_state', RAFT_KEY.snapMeta, smRaw)) : null;
    const snapIndex = snapshot?.index ?? 0;
    const entries: LogEntry[] = [];
    let first = snapIndex + 1;
    let last = snapIndex;
    let seenFirst = false;
    /** First stored index that fails its tag or breaks the sequence; it and everything after go. */
    let badAt: number | null = null;
    const stored: number[] = [];
    await readRange(db, RAFT_KEY.entryPrefix, RAFT_KEY.entryPrefix + '~', (k, v) => {
      const index = Number(k.slice(2));
      stored.push(index);
      if (badAt !== null) return;
      const value = integrity.openRecord(k, v);
      if (value === null || (seenFirst && index !== last + 1)) {
        badAt = index;
        integrity.report({ kind: 'raft_entry', key: k, action: value === null ? 'log cut here' : 'log cut here (gap)' });
        return;
      }
      if (!seenFirst) {
        first = index;
        seenFirst = true;
      }
      last = index;
      if (index > snapIndex) entries.push(decodeEntry(index, value));
    });
    if (badAt !== null) {
      const cut: number = badAt;
      // An applied entry cannot be cut (Raft would hold a log shorter than what was applied) and
      // an entry may only be dropped by compaction: stop, and let the operator re-join the node.
      if (cut <= applied.index) {
        throw new StateError('SM_INTEGRITY', `Raft entry ${cut}, already applied, fails its integrity check; wipe this data dir and let the node re-join`);
      }
      // Not applied yet: cut the log there. The commit index may not point past the log.
      const batch = db.batch();
      for (const i of stored) if (i >= cut) batch.del(entryKey(i));
      if (hardState.commit > cut - 1) {
        hardState.commit = Math.max(cut - 1, applied.index);
        batch.put(RAFT_KEY.hardState, integrity.sealRecord(RAFT_KEY.hardState, encodeHardState(hardState)));
      }
      await batch.write({ sync: true });
      if (!seenFirst) {
        first = snapIndex + 1;
        last = snapIndex;
      }
    }
    last = Math.max(last, snapIndex);
    const store = new NodeStore(db, sm, { hardState, snapshot, entries }, first, last, integrity, adoption);
    if (snapshot && snapshot.index > sm.applied) {
      const data = await db.get(RAFT_KEY.snapData);
      if (!data) throw new StateError('SM_CORRUPT_STORAGE', 'snapshot metadata without snapshot data');
      await store.restoreSnapshot(data);
    }
    return store;
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
}

/**
 * Reads the saved Raft snapshot blob (to send to a follower), checking its tag and that it is the
 * snapshot the saved meta describes.
 *
 * @param store - an open store
 * @returns the blob or undefined
 * @throws {SM_INTEGRITY} the saved blob fails its tag or does not match the saved meta
 */
export async function readSavedSnapshot(store: NodeStore): Promise<Uint8Array | undefined> {
  return store.savedSnapshot();
}
