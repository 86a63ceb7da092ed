/**
 * Offline quorum-loss recovery: turns a surviving member's data dir into a new one-member cluster
 * that keeps everything the survivor holds.
 *
 * When a majority of the members is lost for good (two of three data dirs destroyed), the cluster
 * cannot elect a leader and nothing can be committed. `recoverDataDir` works on a STOPPED node:
 *
 * 1. opens its store and applies every entry of its Raft log that is not applied yet — up to the
 *    last index it holds, not only up to the commit index it happened to know (a write
 *    acknowledged by the old leader may sit in the survivor's log without the survivor having
 *    learnt that it was committed; entries that were never committed were outcome-unknown to
 *    their clients, so keeping them is allowed);
 * 2. rewrites the member address book to this node alone;
 * 3. builds a new store from a snapshot of that state whose Raft configuration has this node as
 *    the only voter, and swaps it in. The old store is kept beside it as
 *    `store.pre-recover-<timestamp>` until the operator removes it.
 *
 * The values stay sealed: nothing is decrypted, so the node needs the same KMS key (or local master
 * key) as before. The other members then join with fresh data dirs (`COFFER_JOIN`).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { type Integrity, openNodeStore } from '@coffer/state';
import { seedStoreFromSnapshot } from './restore.js';

/** What {@link recoverDataDir} needs. */
export interface RecoverOptions {
  /** The survivor's data dir (holds `store/`). The node must be stopped. */
  readonly dataDir: string;
  /** Id of the node that will run on it (normally the survivor's own id). */
  readonly nodeId: string;
  /** The node's advertised Raft URL; default: the address the book holds for `nodeId`. */
  readonly raftAddr?: string;
  /** Only report what would be kept; change nothing. */
  readonly dryRun?: boolean;
  /** The survivor's integrity keys (`loadStorageIntegrity` with its configuration). */
  readonly integrity: Integrity;
  /** Adopt a survivor's data dir written before storage integrity tags (`COFFER_INTEGRITY_ADOPT`). */
  readonly adoptUntagged?: boolean;
}

/** What {@link recoverDataDir} found and did. */
export interface RecoverResult {
  /** The index (and its term) the new cluster starts from: the last entry the survivor held. */
  readonly index: number;
  readonly term: number;
  /** Highest index the survivor knew to be committed (entries after it are kept too). */
  readonly commit: number;
  /** Members of the old configuration (as the survivor last knew it). */
  readonly previousMembers: string[];
  readonly secrets: number;
  /** Where the old store was moved (absent on a dry run). */
  readonly backupDir?: string;
}

/**
 * Converts a stopped survivor's data dir into a new single-member cluster, keeping all its data.
 *
 * @param opts - see {@link RecoverOptions}
 * @returns see {@link RecoverResult}
 * @throws {Error} no store in the data dir, the store is in use (node still running), or no Raft
 *   address is known for the node
 */
export async function recoverDataDir(opts: RecoverOptions): Promise<RecoverResult> {
  const storeDir = path.join(opts.dataDir, 'store');
  if (!existsSync(storeDir) || readdirSync(storeDir).length === 0) throw new Error(`${storeDir} holds no store: recover needs the data dir of a surviving member`);
  let store;
  try {
    store = await openNodeStore(storeDir, opts.integrity, { adoptUntagged: opts.adoptUntagged === true });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot open ${storeDir} (${msg}); stop the node before recovering its data dir`);
  }
  let blob: Uint8Array;
  let result: Omit<RecoverResult, 'backupDir'>;
  let raftAddr: string;
  try {
    const { hardState, snapshot, entries } = store.load();
    const previousMembers = [...new Set([...(snapshot?.confState.voters ?? []), ...(snapshot?.confState.learners ?? []), ...store.state.listMembers().map((m) => m.id)])].sort();
    const last = entries.at(-1);
    const index = last?.index ?? snapshot?.index ?? store.applied;
    const term = last?.term ?? snapshot?.term ?? 0;
    if (index < 1) throw new Error(`${storeDir} is empty (no log entries): nothing to recover`);
    const known = store.state.listMembers().find((m) => m.id === opts.nodeId)?.raftAddr;
    raftAddr = opts.raftAddr ?? (known !== undefined && known !== '' ? known : '');
    if (raftAddr === '') throw new Error(`the address book has no Raft address for ${opts.nodeId}: pass --raft-addr`);
    if (opts.dryRun === true) {
      return { index, term, commit: hardState.commit, previousMembers, secrets: store.state.secretCount };
    }
    // Apply what the log holds beyond the applied index. Configuration-change entries only
    // advance the index here: the configuration is replaced below anyway.
    await store.applyEntries(entries.filter((e) => e.index > store.applied));
    const snap = await store.createSnapshot();
    if (snap.index !== index) throw new Error(`applied index ${snap.index} after replay, expected ${index}`);
    blob = snap.data;
    result = { index, term: snap.term, commit: hardState.commit, previousMembers, secrets: store.state.secretCount };
    await store.close();
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const staging = path.join(opts.dataDir, `store.recovering-${stamp}`);
    const backupDir = path.join(opts.dataDir, `store.pre-recover-${stamp}`);
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true, mode: 0o700 });
    try {
      // The new cluster never starts below a term the survivor has already seen.
      await seedStoreFromSnapshot({ storeDir: staging, nodeId: opts.nodeId, raftAddr, snapshot: blob, term: Math.max(hardState.term, snap.term), integrity: opts.integrity });
    } catch (err) {
      rmSync(staging, { recursive: true, force: true });
      throw err;
    }
    renameSync(storeDir, backupDir);
    renameSync(staging, storeDir);
    return { ...result, backupDir };
  } finally {
    await store.close();
  }
}
