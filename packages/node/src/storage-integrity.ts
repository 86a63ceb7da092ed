/**
 * The integrity root of a node's storage, and the keys derived from it.
 *
 * Everything the disk or a backup holds is either sealed (secret values) or authenticated with a
 * key the disk does not hold (ARCHITECTURE.md, "Invariants of the request path"). The keys are
 * HKDF-SHA256(root, salt = empty, info, 32 bytes), one info string per use, in the style of
 * `derivePeerKey` (peer/auth.ts):
 *
 *   "coffer record mac v1"    tags of LevelDB records (@coffer/state integrity.ts)
 *   "coffer snapshot mac v1"  tags of snapshot blobs (backups, InstallSnapshot, the saved snapshot)
 *
 * Rotating the cluster key changes these keys: start every node with the new `COFFER_CLUSTER_KEY`
 * and the old one in `COFFER_PREVIOUS_CLUSTER_KEY` once; the store re-tags its data dir.
 *
 * The root is, in this order:
 * 1. `COFFER_CLUSTER_KEY` when set (required with more than one node): every member derives the
 *    same keys, so members exchange snapshots and a backup restores into any member or into a new
 *    cluster started with the same cluster key.
 * 2. otherwise (one node, no cluster key) a random 32-byte root generated once through the KMS
 *    provider (local master key or AWS KMS) and kept only in its wrapped form in
 *    `<data dir>/integrity-root.json`. Unwrapping it needs the KMS key (or the local master key);
 *    it is re-wrapped onto the current key at start when the key was rotated. That file is not a
 *    secret (it is wrapped), but a backup restores only where it is present: keep a copy with the
 *    backups of such a node.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { hkdfSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import { createAwsProvider, createLocalProvider, type KeyProvider } from '@coffer/crypto';
import { Integrity, type IntegrityFailure } from '@coffer/state';
import type { AuditLog } from './audit/audit-log.js';
import type { ServerConfig } from './config.js';
import type { Logger } from './logger.js';

/** HKDF info of the record key; changing it makes every data dir unreadable. */
export const RECORD_MAC_INFO = 'coffer record mac v1';
/** HKDF info of the snapshot key; changing it makes every backup unrestorable. */
export const SNAPSHOT_MAC_INFO = 'coffer snapshot mac v1';
/** File (in the data dir) holding the wrapped root of a node without a cluster key. */
export const INTEGRITY_ROOT_FILE = 'integrity-root.json';
/** KMS context the root is wrapped for: not a valid secret name, so no secret can share it. */
const ROOT_CONTEXT = { name: ':coffer:integrity-root', version: 1 } as const;

const EMPTY = new Uint8Array(0);

/**
 * Derives the record and snapshot keys and wraps them in an {@link Integrity}.
 *
 * @param root - the integrity root (≥ 32 bytes); not modified
 * @param onFailure - receives every refused record (log it, count it)
 * @returns the integrity object; `destroy()` it on shutdown
 * @throws {RangeError} a root shorter than 32 bytes
 */
export function integrityFromRoot(root: Uint8Array, onFailure?: (f: IntegrityFailure) => void): Integrity {
  if (!(root instanceof Uint8Array) || root.length < 32) throw new RangeError('the integrity root must be at least 32 bytes');
  const record = new Uint8Array(hkdfSync('sha256', root, EMPTY, RECORD_MAC_INFO, 32));
  const snapshot = new Uint8Array(hkdfSync('sha256', root, EMPTY, SNAPSHOT_MAC_INFO, 32));
  try {
    return new Integrity({ record, snapshot }, onFailure === undefined ? {} : { onFailure });
  } finally {
    record.fill(0);
    snapshot.fill(0);
  }
}

type RootFile = { v: 1; kmsKeyId: string; wrapped: string };

function readRootFile(file: string): RootFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not a Coffer integrity root file (${err instanceof Error ? err.message : String(err)})`);
  }
  const p = parsed as Partial<RootFile> | null;
  if (p === null || typeof p !== 'object' || p.v !== 1 || typeof p.kmsKeyId !== 'string' || typeof p.wrapped !== 'string') {
    throw new Error(`${file} is not a Coffer integrity root file`);
  }
  return { v: 1, kmsKeyId: p.kmsKeyId, wrapped: p.wrapped };
}

function writeRootFile(file: string, content: RootFile): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(content)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/**
 * Unwraps (creating it on first use) the KMS-protected integrity root of a node without a cluster
 * key.
 *
 * @param dataDir - the node's data dir
 * @param kms - the node's key provider
 * @param opts - `create: false` to refuse when the file is missing (offline tools)
 * @returns the 32-byte root (zero it when done) and whether it was created now
 * @throws {Error} a malformed file, or (create false) no file
 * @throws {CryptoError} the KMS refuses to unwrap it (another key, KMS unreachable)
 */
export async function loadWrappedRoot(dataDir: string, kms: KeyProvider, opts: { create: boolean }): Promise<{ root: Uint8Array; created: boolean }> {
  const file = path.join(dataDir, INTEGRITY_ROOT_FILE);
  if (!existsSync(file)) {
    if (!opts.create) throw new Error(`${file} does not exist: this node has no cluster key, so its integrity root is needed`);
    const dk = await kms.generateDataKey(ROOT_CONTEXT);
    writeRootFile(file, { v: 1, kmsKeyId: dk.kmsKeyId, wrapped: Buffer.from(dk.wrappedDek).toString('base64') });
    return { root: dk.plaintext, created: true };
  }
  const content = readRootFile(file);
  const wrapped = new Uint8Array(Buffer.from(content.wrapped, 'base64'));
  const root = await kms.decrypt(wrapped, content.kmsKeyId, ROOT_CONTEXT);
  if (opts.create && content.kmsKeyId !== kms.currentKeyId()) {
    // The key was rotated: move the root onto the current key, so dropping the old one (local
    // ring) or its material does not strand the data dir.
    const re = await kms.reEncrypt(wrapped, content.kmsKeyId, ROOT_CONTEXT);
    writeRootFile(file, { v: 1, kmsKeyId: re.kmsKeyId, wrapped: Buffer.from(re.wrappedDek).toString('base64') });
  }
  return { root, created: false };
}

/**
 * The integrity keys of the previous cluster key during a rotation (`COFFER_PREVIOUS_CLUSTER_KEY`):
 * the store re-tags a data dir written under them.
 *
 * @param config - from `loadConfig`
 * @returns the previous keys, or undefined when no previous key is configured
 */
export function previousIntegrity(config: Readonly<ServerConfig>): Integrity | undefined {
  return config.previousClusterKey === undefined ? undefined : integrityFromRoot(config.previousClusterKey);
}

/**
 * Audit lines for stored records the store refused (`action: storage.integrity`, the record's key as
 * resource, never its value). Failures found while the store opens come before the audit log is
 * open: they wait here (at most {@link IntegrityAuditTrail.MAX_PENDING}) and are written once it is.
 */
export class IntegrityAuditTrail {
  static readonly MAX_PENDING = 1000;
  private pending: IntegrityFailure[] = [];
  private audit: AuditLog | undefined;

  /** @param f - a refused record, from `Integrity`'s `onFailure` */
  record(f: IntegrityFailure): void {
    if (this.audit !== undefined) this.write(this.audit, f);
    else if (this.pending.length < IntegrityAuditTrail.MAX_PENDING) this.pending.push(f);
  }

  /** @param audit - the node's audit log, now open: writes what waited, and later failures at once */
  attach(audit: AuditLog): void {
    this.audit = audit;
    for (const f of this.pending.splice(0)) this.write(audit, f);
  }

  private write(audit: AuditLog, f: IntegrityFailure): void {
    // A failed audit write is counted by the audit log itself (coffer_audit_write_failures_total).
    audit.append({ requestId: 'storage', actor: null, clientIp: null, action: 'storage.integrity', resource: `${f.kind}:${f.key}`, outcome: 'error', status: 500 }).catch(() => undefined);
  }
}

/** What {@link loadStorageIntegrity} needs besides the configuration. */
export interface StorageIntegrityOptions {
  /** Create the wrapped root when the data dir has none (the server); offline tools pass false. */
  readonly create: boolean;
  /**
   * A wrapped root file to copy into the data dir first when it has none (offline restore of a
   * backup made by a node without a cluster key: the old data dir's `integrity-root.json`).
   */
  readonly rootFile?: string | undefined;
  readonly logger?: Logger | undefined;
  /** Receives every refused record (log it, count it). */
  readonly onFailure?: ((f: IntegrityFailure) => void) | undefined;
}

/**
 * The integrity keys of a node's storage and backups, from its configuration: the cluster key when
 * set, else the KMS-wrapped root in the data dir (unwrapped with the configured local master key
 * or AWS KMS key; created on first start).
 *
 * @param config - from `loadConfig`
 * @param opts - see {@link StorageIntegrityOptions}
 * @returns the integrity object; `destroy()` it when done
 * @throws {Error} no root file where one is needed (offline tools), a malformed one
 * @throws {CryptoError} the KMS refuses to unwrap the root (another key, KMS unreachable)
 * @example
 * ```ts
 * const integrity = await loadStorageIntegrity(config, { create: true, logger });
 * const store = await openNodeStore(path.join(config.dataDir, 'store'), integrity);
 * ```
 */
export async function loadStorageIntegrity(config: Readonly<ServerConfig>, opts: StorageIntegrityOptions): Promise<Integrity> {
  if (config.clusterKey !== undefined) return integrityFromRoot(config.clusterKey, opts.onFailure);
  if (config.kmsMode === 'local' && config.localMasterKeys === undefined) {
    if (!opts.create) throw new Error('neither COFFER_CLUSTER_KEY nor COFFER_LOCAL_MASTER_KEY is set: the integrity keys of a data dir or backup come from one of them (or from AWS KMS)');
    // Ephemeral master key (development): nothing sealed survives a restart anyway.
    opts.logger?.warn('no cluster key and no master key: the storage integrity root lives only in this process; the data dir will not open after a restart');
    return integrityFromRoot(new Uint8Array(randomBytes(32)), opts.onFailure);
  }
  const own = path.join(config.dataDir, INTEGRITY_ROOT_FILE);
  if (opts.rootFile !== undefined && !existsSync(own)) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    readRootFile(opts.rootFile); // refuse a file that is not one before copying it
    copyFileSync(opts.rootFile, own);
  }
  const kms: KeyProvider =
    config.kmsMode === 'aws'
      ? createAwsProvider({ keyId: config.kmsKeyId as string, endpoint: config.kmsEndpoint })
      : createLocalProvider({ masterKeyBase64: (config.localMasterKeys ?? []).map((k) => Buffer.from(k).toString('base64')).join(',') });
  try {
    const { root, created } = await loadWrappedRoot(config.dataDir, kms, { create: opts.create });
    if (created) opts.logger?.info(`created the storage integrity root (KMS-wrapped) in ${INTEGRITY_ROOT_FILE}`);
    try {
      return integrityFromRoot(root, opts.onFailure);
    } finally {
      root.fill(0);
    }
  } finally {
    await kms.close();
  }
}
