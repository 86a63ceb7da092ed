// Data dirs from before record tags, and data dirs tagged under a previous cluster key: adopted or
// re-tagged once, at open, in one synced batch. Also the key ranges and record checks the store's
// open shares with them.
import type { ClassicLevel } from 'classic-level';
import { StateError } from './errors.js';
import { RECORD_TAG_BYTES, type Integrity, type IntegrityFailureKind } from './integrity.js';
import { CHECK_CHUNK_RECORDS, type RecordChecker } from './record-checker.js';
import { RAFT_KEY } from './raft-log.js';
import { KEY } from './records.js';
import { LEGACY_SNAPSHOT_FORMAT_VERSION, decodeLegacySnapshotBlob, decodeSnapshotBlob, encodeSnapshotBlob, snapshotFormatVersion } from './snapshot-format.js';

// State keyspace: 'a' (applied) .. 'm…' (metadata); blobs 'b…' lie in between. 'r…' is Raft.
export const STATE_GTE = 'a';
export const STATE_LT = 'n';
export const META_GTE = 'm';
export const META_LT = 'n';

/**
 * Key of the format marker: present (and tagged under this key) once every record of the data dir
 * carries a tag. Outside the state ('a'..'n') and Raft ('r') ranges, so no rewrite touches it.
 */
export const INTEGRITY_MARKER_KEY = 'zintegrity';
export const MARKER_VALUE: Uint8Array = new Uint8Array([0x01]);

/**
 * What an open did besides opening: adopted a data dir written before record tags (`untagged`), or
 * re-tagged one written under the previous cluster key (`rekeyed`). Null on every other open.
 */
export type StoreAdoption = { from: 'untagged' | 'rekeyed'; records: number; snapshotReencoded: boolean };

export function recordKind(key: string): IntegrityFailureKind {
  return key.charCodeAt(0) === 0x62 /* b */ ? 'blob' : key.startsWith(RAFT_KEY.entryPrefix) ? 'raft_entry' : key.charCodeAt(0) === 0x72 /* r */ ? 'raft_state' : 'record';
}

/** Verifies a record that cannot be done without: reports and throws SM_INTEGRITY when it fails. */
export function openOrThrow(integrity: Integrity, kind: IntegrityFailureKind, key: string, stored: Uint8Array): Uint8Array {
  const value = integrity.openRecord(key, stored);
  if (value !== null) return value;
  integrity.report({ kind, key, action: 'refused' });
  throw new StateError('SM_INTEGRITY', `stored record ${JSON.stringify(key)} fails its integrity check (edited, forged or moved on disk)`);
}

/** Records per LevelDB read when walking a range. */
const RANGE_BATCH = 8192;

/** Every key of the store in [gte, lt), in order, with its value. */
export async function readRange(db: ClassicLevel<string, Uint8Array>, gte: string, lt: string, each: (key: string, value: Uint8Array) => void): Promise<void> {
  await readBatches(db, gte, lt, (batch) => {
    for (const [k, v] of batch) each(k, v);
  });
}

/**
 * Every key of the store in [gte, lt), in order, a batch at a time. The next batch is read (on
 * LevelDB's thread) while `each` handles this one: boot reads a million records, and waiting for
 * each batch before decoding it left the main thread idle for seconds.
 */
async function readBatches(db: ClassicLevel<string, Uint8Array>, gte: string, lt: string, each: (batch: [string, Uint8Array][]) => void | Promise<void>): Promise<void> {
  const it = db.iterator({ gte, lt });
  let next = it.nextv(RANGE_BATCH);
  try {
    for (;;) {
      const batch = await next;
      if (batch.length === 0) break;
      next = it.nextv(RANGE_BATCH);
      await each(batch);
    }
  } finally {
    // Settle the read still in flight (when `each` threw) before closing the iterator.
    await next.catch(() => undefined);
    await it.close();
  }
}

type Checked = { records: [string, Uint8Array][]; ok: Promise<Uint8Array> };

/**
 * Every record of the store in [gte, lt), in key order, with its tag checked (`Integrity.openRecord`):
 * `each` gets the value (tag removed) of every record that verifies, `refused` the key of every
 * one that does not. Past {@link CHECK_CHUNK_RECORDS} records the tags are checked on a worker
 * thread while this thread hands over the records already checked; a small range never starts
 * one, and should the worker fail, its records are checked here instead.
 *
 * @param db - the store
 * @param gte - first key
 * @param lt - end of the range
 * @param integrity - the keys to check with
 * @param each - called per verified record, in key order
 * @param refused - called per record whose tag does not verify, in key order
 */
export async function readCheckedRange(
  db: ClassicLevel<string, Uint8Array>,
  gte: string,
  lt: string,
  integrity: Integrity,
  each: (key: string, value: Uint8Array) => void,
  refused: (key: string) => void,
): Promise<void> {
  let chunk: [string, Uint8Array][] = [];
  let checker: RecordChecker | null = null;
  const queue: Checked[] = [];
  const here = (records: [string, Uint8Array][]): void => {
    for (const [k, v] of records) {
      const value = integrity.openRecord(k, v);
      if (value === null) refused(k);
      else each(k, value);
    }
  };
  const deliver = async (c: Checked): Promise<void> => {
    const ok = await c.ok.catch(() => null);
    if (ok === null || ok.length !== c.records.length) {
      here(c.records);
      return;
    }
    for (let i = 0; i < c.records.length; i++) {
      const [k, v] = c.records[i] as [string, Uint8Array];
      if (ok[i] === 1) each(k, v.subarray(0, v.length - RECORD_TAG_BYTES));
      else refused(k);
    }
  };
  try {
    await readBatches(db, gte, lt, async (batch) => {
      for (const kv of batch) chunk.push(kv);
      if (chunk.length < CHECK_CHUNK_RECORDS) return;
      checker ??= integrity.recordChecker();
      const ok = checker.check(chunk);
      ok.catch(() => undefined); // handled in deliver; never an unhandled rejection meanwhile
      queue.push({ records: chunk, ok });
      chunk = [];
      // One chunk on the worker while the one before it is handed over here.
      if (queue.length > 1) await deliver(queue.shift() as Checked);
    });
    for (const c of queue.splice(0)) await deliver(c);
    here(chunk);
  } finally {
    await (checker as RecordChecker | null)?.close();
  }
}

/**
 * First open of a data dir written before record tags: tag every record as it is, re-encode a
 * saved v1 Raft snapshot as v2, and write the marker, in one synced batch (all or nothing).
 *
 * Trust on first use: whatever the untagged data dir holds at this moment is adopted, including
 * anything a disk writer put there before the upgrade. A data dir that already carries tags but
 * has lost its marker is refused (removing the marker must not turn forged records into adopted
 * ones); one rewritten entirely in the old format cannot be told apart (docs/SECURITY.md).
 */
export async function adoptUntaggedStore(db: ClassicLevel<string, Uint8Array>, integrity: Integrity): Promise<StoreAdoption> {
  const [a, hs] = await db.getMany([KEY.applied, RAFT_KEY.hardState]);
  if ((a !== undefined && integrity.openRecord(KEY.applied, a) !== null) || (hs !== undefined && integrity.openRecord(RAFT_KEY.hardState, hs) !== null)) {
    throw new StateError('SM_INTEGRITY', `the data dir holds tagged records but no ${INTEGRITY_MARKER_KEY} marker: it was tampered with; wipe it and let the node re-join`);
  }
  const batch = db.batch();
  let records = 0;
  let snapshotReencoded = false;
  const tag = (k: string, v: Uint8Array): void => {
    batch.put(k, integrity.sealRecord(k, v));
    records++;
  };
  await readRange(db, STATE_GTE, STATE_LT, tag);
  await readRange(db, RAFT_KEY.entryPrefix, RAFT_KEY.entryPrefix + '~', tag);
  const [h, sm, sd] = await db.getMany([RAFT_KEY.hardState, RAFT_KEY.snapMeta, RAFT_KEY.snapData]);
  if (h !== undefined) tag(RAFT_KEY.hardState, h);
  if (sm !== undefined) tag(RAFT_KEY.snapMeta, sm);
  if (sd !== undefined && sd.length > 0 && snapshotFormatVersion(sd) === LEGACY_SNAPSHOT_FORMAT_VERSION) {
    // Our own saved snapshot, checked against its sha256; accepted here once, never via restore.
    const snap = decodeLegacySnapshotBlob(sd);
    batch.put(RAFT_KEY.snapData, encodeSnapshotBlob(snap.index, snap.term, snap.records, integrity));
    snapshotReencoded = true;
  }
  batch.put(INTEGRITY_MARKER_KEY, integrity.sealRecord(INTEGRITY_MARKER_KEY, MARKER_VALUE));
  await batch.write({ sync: true });
  return { from: 'untagged', records, snapshotReencoded };
}

/**
 * A data dir tagged under the previous keys (a cluster-key rotation): every record that verifies
 * under them is tagged under the current keys, the saved snapshot re-tagged, the marker replaced,
 * in one synced batch. A record that does not verify is left alone (the open refuses it later).
 */
export async function rekeyStore(db: ClassicLevel<string, Uint8Array>, previous: Integrity, integrity: Integrity): Promise<StoreAdoption> {
  const batch = db.batch();
  let records = 0;
  let snapshotReencoded = false;
  const retag = (k: string, v: Uint8Array): void => {
    const value = previous.openRecord(k, v);
    if (value === null) return;
    batch.put(k, integrity.sealRecord(k, value));
    records++;
  };
  await readRange(db, STATE_GTE, STATE_LT, retag);
  await readRange(db, RAFT_KEY.entryPrefix, RAFT_KEY.entryPrefix + '~', retag);
  const [h, sm, sd] = await db.getMany([RAFT_KEY.hardState, RAFT_KEY.snapMeta, RAFT_KEY.snapData]);
  if (h !== undefined) retag(RAFT_KEY.hardState, h);
  if (sm !== undefined) retag(RAFT_KEY.snapMeta, sm);
  if (sd !== undefined && sd.length > 0) {
    const snap = decodeSnapshotBlob(sd, previous);
    batch.put(RAFT_KEY.snapData, encodeSnapshotBlob(snap.index, snap.term, snap.records, integrity));
    snapshotReencoded = true;
  }
  batch.put(INTEGRITY_MARKER_KEY, integrity.sealRecord(INTEGRITY_MARKER_KEY, MARKER_VALUE));
  await batch.write({ sync: true });
  return { from: 'rekeyed', records, snapshotReencoded };
}
