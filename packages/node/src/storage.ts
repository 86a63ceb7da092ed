/**
 * Opening the node's storage below the barrier: every record and snapshot is tagged with keys
 * derived from the cluster key (or a KMS-wrapped root); the disk never holds them
 * (storage-integrity.ts). A half-installed snapshot is finished here, before Raft sees the store.
 */
import path from 'node:path';
import { type Integrity, type NodeStore, openNodeStore } from '@coffer/state';
import type { ServerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { CofferMetrics } from './metrics.js';
import { IntegrityAuditTrail, loadStorageIntegrity, previousIntegrity } from './storage-integrity.js';

/** The opened store and what reports its integrity failures. */
export interface OpenedStorage {
  readonly store: NodeStore;
  /** Integrity failures go to the audit log once it is open (`trail.attach(audit)`). */
  readonly trail: IntegrityAuditTrail;
  /** Closes the store and zeroes the integrity keys. */
  close(): Promise<void>;
}

/**
 * @param config - data dir, cluster key (current and previous), adoption switch
 * @param logger - refused records (key only) and adoption notes
 * @param metrics - `coffer_integrity_failures_total`
 * @returns the opened storage
 * @throws when the store cannot be opened (the integrity keys are zeroed first)
 */
export async function openStorage(config: Readonly<ServerConfig>, logger: Logger, metrics: CofferMetrics): Promise<OpenedStorage> {
  const trail = new IntegrityAuditTrail();
  const integrity: Integrity = await loadStorageIntegrity(config, {
    create: true,
    logger,
    onFailure: (f) => {
      metrics.integrityFailures.inc({ kind: f.kind });
      logger.error({ integrity: f.kind, record: f.key, action: f.action }, 'stored data failed its integrity check');
      trail.record(f);
    },
  });
  const previous = previousIntegrity(config);
  let store: NodeStore;
  try {
    store = await openNodeStore(path.join(config.dataDir, 'store'), integrity, { previous, adoptUntagged: config.integrityAdopt });
  } catch (err) {
    integrity.destroy();
    throw err;
  } finally {
    previous?.destroy();
  }
  if (store.adoption?.from === 'untagged') {
    logger.warn(
      { records: store.adoption.records, snapshotReencoded: store.adoption.snapshotReencoded },
      'ADOPTED a data dir written before storage integrity tags: every record it held was trusted as it was and is tagged from now on (one-time upgrade step; see docs/SECURITY.md)',
    );
  } else if (store.adoption?.from === 'rekeyed') {
    logger.warn({ records: store.adoption.records }, 're-tagged the data dir from COFFER_PREVIOUS_CLUSTER_KEY to COFFER_CLUSTER_KEY; unset COFFER_PREVIOUS_CLUSTER_KEY');
  }
  return {
    store,
    trail,
    async close() {
      await store.close().catch(() => undefined);
      integrity.destroy();
    },
  };
}
