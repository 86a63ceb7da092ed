/**
 * Boot of the Raft member: raft's in-memory storage rebuilt from the durable log (or the founding
 * entries of a new cluster), the durable log over the node store, and the driver's timing.
 */
import { type Entry, type HardState, MemoryStorage } from '@coffer/raft';
import { type NodeStore, readSavedSnapshot } from '@coffer/state';
import type { ServerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { DriverOptions, DurableLog, LoadedLog } from './driver-types.js';
import { foundingLog } from './members.js';

/**
 * Rebuilds raft's in-memory storage from what is on disk, or bootstraps a new cluster.
 *
 * @param loaded - the durable log's contents
 * @param bootstrap - founding entries for a new cluster (used only when the disk is empty)
 * @returns the populated storage and whether it was freshly bootstrapped (its entries must be persisted)
 */
export function loadStorage(loaded: LoadedLog, bootstrap: { entries: Entry[]; hardState: HardState } | undefined): { storage: MemoryStorage; fresh: boolean } {
  const storage = new MemoryStorage();
  const empty = loaded.hardState === undefined && loaded.snapshot === undefined && loaded.entries.length === 0;
  if (empty && bootstrap !== undefined) {
    storage.append(bootstrap.entries);
    storage.setHardState(bootstrap.hardState);
    return { storage, fresh: true };
  }
  // A snapshot saved as meta only (the state store holds that state) has no data: one to send a
  // follower is built when needed.
  if (loaded.snapshot !== undefined && loaded.snapshot.meta.index > 0) storage.applySnapshot(loaded.snapshot, loaded.snapshot.data.length > 0);
  storage.append(loaded.entries);
  if (loaded.hardState !== undefined) storage.setHardState(loaded.hardState);
  return { storage, fresh: false };
}

/**
 * Raft's storage for this node: what the store holds, or — for a new data dir with no COFFER_JOIN
 * — the founding entries of COFFER_INITIAL_CLUSTER, persisted (synced) before Raft sees them.
 *
 * @param store - the opened node store
 * @param config - `join` and `initialCluster` decide whether this node founds a cluster
 * @returns raft's storage and the durable log the driver writes
 */
export async function bootRaftLog(store: NodeStore, config: Readonly<ServerConfig>): Promise<{ storage: MemoryStorage; durableLog: DurableLog }> {
  const loaded = store.load();
  const bootLog: LoadedLog = {
    hardState: loaded.hardState.term === 0 && loaded.hardState.commit === 0 && loaded.hardState.vote === null ? undefined : loaded.hardState,
    snapshot: loaded.snapshot === null ? undefined : { meta: loaded.snapshot, data: (await readSavedSnapshot(store)) ?? new Uint8Array(0) },
    entries: loaded.entries as Entry[],
  };
  const founding = config.join === undefined ? foundingLog(config.initialCluster) : undefined;
  const { storage, fresh } = loadStorage(bootLog, founding);
  if (fresh && founding !== undefined) await store.log.append(founding.entries, founding.hardState, { sync: true });
  const durableLog: DurableLog = {
    append: (entries, hs, sync) => store.log.append(entries, hs, { sync }),
    saveSnapshot: async (meta, data) => {
      await store.log.saveSnapshot(meta, data);
    },
    compact: (index) => store.log.compact(index),
  };
  return { storage, durableLog };
}

/**
 * The driver's timing from the configured heartbeat and election times.
 *
 * Ticks are ~1/10 heartbeat: the randomised election timeout is drawn in ticks, and with only 20
 * possible values two followers drew the same one 1 time in 20 and split the vote after a leader
 * failure (recovery then took a second election timeout). 100 values: 1 in 100.
 *
 * @param config - heartbeat, election and snapshot settings
 * @param logger - raft's log lines go here
 * @returns the driver options
 */
export function driverOptions(config: Readonly<ServerConfig>, logger: Logger): DriverOptions {
  const tickMs = Math.max(5, Math.round(config.heartbeatMs / 10));
  return {
    nodeId: config.nodeId,
    tickMs,
    heartbeatTicks: Math.max(1, Math.round(config.heartbeatMs / tickMs)),
    electionTicks: Math.max(3, Math.round(config.electionMs / tickMs)),
    snapshotEntries: config.snapshotEntries,
    snapshotCatchUpEntries: config.snapshotCatchUpEntries,
    logger: {
      debug: (m) => logger.debug(m),
      info: (m) => logger.info(m),
      warn: (m) => logger.warn(m),
    },
  };
}
