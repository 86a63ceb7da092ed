/**
 * Offline restore: turns a snapshot (from `GET /v1/cluster/snapshot`) into a new node data dir.
 *
 * The node started on it is a one-member cluster holding the backup at the snapshot's index; the
 * other members join it afterwards. The snapshot stays sealed: nothing here decrypts anything, so
 * the restored node needs the same KMS key (or local master key) as the cluster that made it.
 * The snapshot must be authentic under the integrity keys given (derived from the same cluster key,
 * or the same KMS-wrapped root, as the cluster that made it): an edited or foreign one is refused
 * before anything is written.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { decodeSnapshotBlob, type Integrity, openNodeStore } from '@coffer/state';

/** What {@link restoreDataDir} needs. */
export interface RestoreOptions {
  readonly dataDir: string;
  readonly nodeId: string;
  /** The node's advertised Raft URL (recorded in the address book). */
  readonly raftAddr: string;
  readonly snapshot: Uint8Array;
  /** The integrity keys the node will run with (`loadStorageIntegrity`). */
  readonly integrity: Integrity;
}

/**
 * Creates `dataDir/store` from a snapshot.
 *
 * @param opts - see {@link RestoreOptions}
 * @returns the snapshot's index and how many secrets it holds
 * @throws {Error} when the data dir already holds a store
 * @throws {StateError} `SM_SNAPSHOT_NOT_AUTHENTIC` (edited, or another cluster's key),
 *   `SM_UNSUPPORTED_SNAPSHOT` (e.g. the unauthenticated v1 format), `SM_CORRUPT_SNAPSHOT`
 */
export async function restoreDataDir(opts: RestoreOptions): Promise<{ index: number; term: number; secrets: number }> {
  const storeDir = path.join(opts.dataDir, 'store');
  if (existsSync(storeDir) && readdirSync(storeDir).length > 0) {
    throw new Error(`${storeDir} already holds data: restore only into a new data dir`);
  }
  const snap = decodeSnapshotBlob(opts.snapshot, opts.integrity); // validates version and tag first
  if (snap.index < 1) throw new Error('the snapshot is of an empty cluster (applied index 0): nothing to restore');
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const { secrets } = await seedStoreFromSnapshot({ storeDir, nodeId: opts.nodeId, raftAddr: opts.raftAddr, snapshot: opts.snapshot, term: snap.term, integrity: opts.integrity });
  return { index: snap.index, term: snap.term, secrets };
}

/**
 * Writes a new store at `storeDir` from a snapshot blob, as a one-member cluster: the address book
 * holds only `nodeId`, the Raft configuration has it as the only voter, and the hard state commits
 * the snapshot's index at `term` (at least the snapshot's term).
 *
 * @internal shared by `restoreDataDir` and `recoverDataDir`
 * @returns the number of secrets in the new store
 */
export async function seedStoreFromSnapshot(opts: { storeDir: string; nodeId: string; raftAddr: string; snapshot: Uint8Array; term: number; integrity: Integrity }): Promise<{ secrets: number }> {
  const store = await openNodeStore(opts.storeDir, opts.integrity);
  try {
    const { index, term: snapTerm } = await store.restoreSnapshot(opts.snapshot);
    // Make the node the only voter, and remember its address.
    const sm = store.state;
    for (const m of sm.listMembers()) if (m.id !== opts.nodeId) sm.applyCommand({ type: 'member.remove', requestId: '', at: 0, id: m.id });
    sm.applyCommand({ type: 'member.upsert', requestId: '', at: 0, id: opts.nodeId, raftAddr: opts.raftAddr, apiAddr: '' });
    // Persist the address-book edits at the snapshot's own applied index.
    await store.applyEntries([]);
    const data = (await store.createSnapshot()).data;
    await store.log.saveSnapshot({ index, term: snapTerm, confState: { voters: [opts.nodeId], learners: [] } }, data);
    await store.log.setHardState({ term: Math.max(opts.term, snapTerm), vote: null, commit: index });
    return { secrets: sm.secretCount };
  } finally {
    await store.close();
  }
}
