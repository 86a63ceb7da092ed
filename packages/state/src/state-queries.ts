// Synchronous queries over the replicated state, from memory (the sealed bytes of a durable
// replica stay in LevelDB: `NodeStore.readSealed`). `StateMachine` extends this class with apply,
// persistence hand-off and snapshots.
import { timingSafeEqual, toHex } from './bytes.js';
import { MAX_FAILURES_KEPT } from './commands/access.js';
import { effectiveDeletedAt } from './commands/secrets.js';
import { cmpStr } from './commands/spec.js';
import { ADMIN_ROLE } from './commands/tokens.js';
import type { ChangeSet } from './change-set.js';
import { StateError, invariant } from './errors.js';
import {
  ctKey,
  decodeCt,
  dekKey,
  sha256Digest,
  type CommandResult,
  type MemberRecord,
  type RoleRecord,
  type SecretRecord,
  type SnapshotScheduleRecord,
  type TokenRecord,
  type VersionMeta,
  type WatermarkRecord,
} from './records.js';
import type { RecordTable, StateTables } from './state-tables.js';
import type { SealedValue } from './types.js';

/** Lockout policy, from the server's configuration. `maxFailures` 0 disables lockout. */
export type LockoutPolicy = { maxFailures: number; windowMs: number; lockoutMs: number };

/** Token status at a point in time. */
export type TokenStatus = 'active' | 'revoked' | 'expired';

/** First index in sorted `arr` whose value is >= `x`. */
function lowerBound(arr: readonly string[], x: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((arr[mid] as string) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The read side of the state machine. */
export class StateQueries {
  /** The replicated tables (replaced wholesale by `state.restore`). */
  protected tables: StateTables;
  /** Changes since the last hand-off, and the in-memory blobs of a reference replica. */
  protected readonly changes: ChangeSet;

  /**
   * @param tables - the replicated tables
   * @param changes - the change set
   */
  protected constructor(tables: StateTables, changes: ChangeSet) {
    this.tables = tables;
    this.changes = changes;
  }

  /**
   * The rows of a family's record table (`RECORD_TABLES`), read-only: a family's query functions
   * build on this.
   *
   * @param def - a registered table
   * @returns id → record
   * @throws {SM_INVARIANT} a table that is not registered
   */
  table<R>(def: RecordTable<R>): ReadonlyMap<string, Readonly<R>> {
    return this.tables.table(def);
  }

  /**
   * @param name - secret name
   * @returns the secret's metadata and retained versions, or undefined
   */
  getSecret(name: string): Readonly<SecretRecord> | undefined {
    return this.tables.secrets.get(name);
  }

  /**
   * @param name - secret name
   * @returns the highest version ever written (0 when none)
   */
  latestVersion(name: string): number {
    return this.tables.secrets.get(name)?.currentVersion ?? 0;
  }

  /**
   * The version a read without `?version=` returns: the newest readable one.
   *
   * @param name - secret name
   * @param now - the reader's clock (for `deleteVersionAfterSecs`)
   * @param version - a specific version instead of the current one
   * @returns version metadata or undefined when no readable version exists
   */
  readableVersion(name: string, now: number, version?: number): Readonly<VersionMeta> | undefined {
    const s = this.tables.secrets.get(name);
    if (!s) return undefined;
    const v = version === undefined ? s.versions.find((m) => m.version === s.currentVersion) : s.versions.find((m) => m.version === version);
    if (!v || v.destroyed) return undefined;
    const del = effectiveDeletedAt(s, v);
    return del !== null && del <= now ? undefined : v;
  }

  /**
   * Versions a `verify` may match: the current readable version and older ones still inside the
   * grace window of the rotation policy (grace runs from the creation of the next version).
   *
   * @param name - secret name
   * @param now - the reader's clock
   * @returns version numbers, newest first
   */
  verifiableVersions(name: string, now: number): number[] {
    const s = this.tables.secrets.get(name);
    if (!s) return [];
    const graceMs = (s.rotation?.graceSecs ?? 0) * 1000;
    const out: number[] = [];
    for (let i = s.versions.length - 1; i >= 0; i--) {
      const v = s.versions[i] as VersionMeta;
      const next = s.versions[i + 1];
      if (next && next.createdAt + graceMs <= now) break;
      const del = effectiveDeletedAt(s, v);
      if (!v.destroyed && (del === null || del > now)) out.push(v.version);
    }
    return out;
  }

  /**
   * Names with `prefix`, sorted, at most `limit`.
   *
   * @param prefix - name prefix ('' = all)
   * @param limit - maximum count
   * @param after - resume after this name (pagination)
   * @returns names
   */
  listNames(prefix: string, limit: number = Number.MAX_SAFE_INTEGER, after?: string): string[] {
    let i = lowerBound(this.tables.names, after !== undefined && after >= prefix ? after : prefix);
    if (after !== undefined && this.tables.names[i] === after) i++;
    const out: string[] = [];
    for (; i < this.tables.names.length && out.length < limit; i++) {
      const n = this.tables.names[i] as string;
      if (!n.startsWith(prefix)) break;
      out.push(n);
    }
    return out;
  }

  /** Number of secrets. */
  get secretCount(): number {
    return this.tables.secrets.size;
  }

  /**
   * Secrets whose rotation is due: newest version older than the policy interval.
   *
   * @param now - the leader's clock
   * @param limit - maximum count
   * @returns names, sorted
   */
  rotationDue(now: number, limit = 1000): string[] {
    const out: string[] = [];
    for (const name of [...this.tables.rotating].sort(cmpStr)) {
      const s = this.tables.secrets.get(name) as SecretRecord;
      if (!s.rotation) continue;
      const latest = s.versions[s.versions.length - 1];
      const since = latest?.createdAt ?? s.createdAt;
      if (since + s.rotation.intervalSecs * 1000 <= now) out.push(name);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Token lookup by the sha256 of a presented token. The map key is a hash, and the stored hash is
   * compared again in constant time before the record is returned.
   *
   * @param tokenHash - sha256 of the raw token (32 bytes)
   * @returns the record, whatever its status (check `tokenStatus`)
   */
  tokenByHash(tokenHash: Uint8Array): Readonly<TokenRecord> | undefined {
    const name = this.tables.tokensByHash.get(toHex(tokenHash));
    const t = name === undefined ? undefined : this.tables.tokens.get(name);
    return t && timingSafeEqual(t.tokenHash, tokenHash) ? t : undefined;
  }

  /**
   * @param name - token name
   * @returns the record or undefined
   */
  tokenByName(name: string): Readonly<TokenRecord> | undefined {
    return this.tables.tokens.get(name);
  }

  /**
   * @returns every token record, sorted by name
   */
  listTokens(): Readonly<TokenRecord>[] {
    return [...this.tables.tokens.values()].sort((a, b) => cmpStr(a.name, b.name));
  }

  /**
   * Tokens revoked or expired before `before` (candidates for a `token.expire` purge). Propose a
   * purge only when this is non-empty.
   *
   * @param before - cutoff time
   * @param limit - maximum count
   * @returns names, sorted
   */
  tokensToPurge(before: number, limit = 1000): string[] {
    const out: string[] = [];
    for (const t of this.listTokens()) {
      const deadAt = Math.min(t.revokedAt ?? Infinity, t.expiresAt ?? Infinity);
      if (deadAt < before) out.push(t.name);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * @param name - role name (`admin` is built in)
   * @returns the role or undefined
   */
  getRole(name: string): Readonly<RoleRecord> | undefined {
    return name === ADMIN_ROLE.name ? ADMIN_ROLE : this.tables.roles.get(name);
  }

  /**
   * @returns every role including the built-in `admin`, sorted by name
   */
  listRoles(): Readonly<RoleRecord>[] {
    return [ADMIN_ROLE, ...this.tables.roles.values()].sort((a, b) => cmpStr(a.name, b.name));
  }

  /**
   * @returns the replicated allowlist (empty before bootstrap: reads fail closed)
   */
  getAllowlist(): readonly string[] {
    return this.tables.allowlist?.cidrs ?? [];
  }

  /** Whether a read allowlist was ever set (by the bootstrap seed, a seed, or a replace). */
  get hasAllowlist(): boolean {
    return this.tables.allowlist !== null;
  }

  /** How many addresses the replicated lockout table holds. */
  get lockoutCount(): number {
    return this.tables.lockouts.size;
  }

  /** Whether a bootstrap seed has been applied. */
  get bootstrapped(): boolean {
    return this.tables.bootstrap !== null;
  }

  /**
   * Cluster-wide lockout check. Locked when `maxFailures` failures fell within `windowMs`, until
   * `lockoutMs` after the last of them.
   *
   * @param ip - client IP (normalised by the server)
   * @param now - the server's clock
   * @param policy - lockout policy (`maxFailures` 0 disables; at most `MAX_FAILURES_KEPT` is honoured)
   * @returns whether locked and for how much longer
   */
  isLockedOut(ip: string, now: number, policy: LockoutPolicy): { locked: boolean; retryAfterMs: number } {
    const rec = this.tables.lockouts.get(ip);
    const max = Math.min(policy.maxFailures, MAX_FAILURES_KEPT);
    if (!rec || max <= 0) return { locked: false, retryAfterMs: 0 };
    const f = rec.failures;
    let until = 0;
    for (let j = max - 1; j < f.length; j++) {
      const last = f[j] as number;
      if (last > now) break;
      if (last - (f[j - max + 1] as number) < policy.windowMs) until = Math.max(until, last + policy.lockoutMs);
    }
    return until > now ? { locked: true, retryAfterMs: until - now } : { locked: false, retryAfterMs: 0 };
  }

  /**
   * @param ip - client IP
   * @param now - the server's clock
   * @param windowMs - window length
   * @returns failures recorded within the window ending at `now`
   */
  failuresInWindow(ip: string, now: number, windowMs: number): number {
    return (this.tables.lockouts.get(ip)?.failures ?? []).filter((t) => t > now - windowMs && t <= now).length;
  }

  /**
   * @returns the KMS re-wrap watermark, or null before the first pass
   */
  getWatermark(): Readonly<WatermarkRecord> | null {
    return this.tables.watermark;
  }

  /**
   * @returns where the scheduled snapshots stand, or null before the first claim
   */
  getSnapshotSchedule(): Readonly<SnapshotScheduleRecord> | null {
    return this.tables.snapshotSchedule;
  }

  /**
   * Re-wrap progress towards `marker`: live versions already at it and those still pending.
   *
   * @param marker - rotation marker (normally the watermark's)
   * @returns counts
   */
  rewrapProgress(marker: string): { done: number; pending: number } {
    let done = 0;
    let pending = 0;
    for (const s of this.tables.secrets.values()) {
      for (const v of s.versions) {
        if (v.destroyed) continue;
        if (v.wrapMarker === marker) done++;
        else pending++;
      }
    }
    return { done, pending };
  }

  /**
   * Versions not yet re-wrapped to `marker`, in (name, version) order: resumable after a crash or
   * leader change simply by asking again.
   *
   * @param marker - rotation marker
   * @param limit - maximum count
   * @returns name, version and the key id that wrapped it
   */
  rewrapPending(marker: string, limit = 100): { name: string; version: number; kmsKeyId: string }[] {
    const out: { name: string; version: number; kmsKeyId: string }[] = [];
    for (const name of this.tables.names) {
      for (const v of (this.tables.secrets.get(name) as SecretRecord).versions) {
        if (v.destroyed || v.wrapMarker === marker) continue;
        out.push({ name, version: v.version, kmsKeyId: v.kmsKeyId });
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /**
   * @returns the cluster address book, sorted by id
   */
  listMembers(): Readonly<MemberRecord>[] {
    return [...this.tables.members.values()].sort((a, b) => cmpStr(a.id, b.id));
  }

  /**
   * @param requestId - a proposal's request id
   * @returns the remembered result if that request was applied (and not yet evicted)
   */
  resultOf(requestId: string): CommandResult | undefined {
    return this.tables.dedup.get(requestId);
  }

  /**
   * Sealed value from the in-memory blobs (`keepBlobs` only; the store reads LevelDB).
   *
   * @param name - secret name
   * @param version - version
   * @returns the sealed value or undefined (destroyed, pruned, unknown)
   */
  readSealedSync(name: string, version: number): SealedValue | undefined {
    invariant(this.changes.blobs, 'readSealedSync on a state machine without in-memory blobs');
    return assembleSealed(this.tables.secrets.get(name), version, this.changes.blobs.get(ctKey(name, version)), this.changes.blobs.get(dekKey(name, version)));
  }
}

/**
 * Rebuilds a sealed value from its version metadata, its `bc` record and its optional re-wrapped
 * DEK (`bw`), checking both against the digests in the metadata.
 *
 * @param s - the secret's metadata
 * @param version - version number
 * @param ct - the `bc` record
 * @param dek - the `bw` record, if the version was re-wrapped
 * @returns the sealed value, or undefined if destroyed or missing
 * @throws {SM_CORRUPT_STORAGE} bytes that do not match the metadata's digests
 */
export function assembleSealed(
  s: Readonly<SecretRecord> | undefined,
  version: number,
  ct: Uint8Array | undefined,
  dek: Uint8Array | undefined,
): SealedValue | undefined {
  const meta = s?.versions.find((m) => m.version === version);
  if (!meta || meta.destroyed || !ct) return undefined;
  if (sha256Digest(ct) !== meta.ctDigest) throw new StateError('SM_CORRUPT_STORAGE', `sealed record of ${JSON.stringify(s?.name)} v${version} does not match its digest`);
  const c = decodeCt(ct);
  const wrappedDek = dek ?? c.wrappedDek;
  if (sha256Digest(wrappedDek) !== meta.dekDigest) throw new StateError('SM_CORRUPT_STORAGE', `wrapped DEK of ${JSON.stringify(s?.name)} v${version} does not match its digest`);
  return { formatVersion: c.formatVersion, alg: c.alg, nonce: c.nonce, ciphertext: c.ciphertext, wrappedDek, kmsKeyId: meta.kmsKeyId };
}
