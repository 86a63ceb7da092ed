// The deterministic state machine. `apply` is a pure function of (state, entry): no clock, no
// randomness, no I/O. Everything replicated lives in memory except the sealed bytes, which the
// durable store keeps in LevelDB (`bc`/`bw` records) and this class only hashes; an in-memory
// instance (`keepBlobs`) keeps them in a Map and serves as the reference replica in tests.
//
// Persistence contract: every mutation marks the record keys it touched (`dirty`) and queues
// blob writes (`blobOps`); `takeChanges()` hands them, with the applied position, to the store,
// which writes them in ONE atomic batch. Invariant: the in-memory state equals the decoded
// on-disk records after each completed batch.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesEqual, timingSafeEqual, toHex } from './bytes.js';
import { assertNever, decodeCommand, type Command } from './commands.js';
import { StateError, invariant } from './errors.js';
import {
  KEY,
  ctKey,
  decodeAllowlist,
  decodeBootstrap,
  decodeDedup,
  decodeLockout,
  decodeMember,
  decodeNumber,
  decodeRole,
  decodeSecret,
  decodeToken,
  decodeSnapshotSchedule,
  decodeWatermark,
  dedupKey,
  dekKey,
  encodeAllowlist,
  encodeBootstrap,
  encodeCt,
  encodeDedup,
  encodeLockout,
  encodeMember,
  encodeNumber,
  encodeRole,
  encodeSecret,
  encodeToken,
  encodeSnapshotSchedule,
  encodeWatermark,
  decodeCt,
  type AllowlistRecord,
  type BootstrapRecord,
  type CommandResult,
  type LockoutRecord,
  type MemberRecord,
  type RoleRecord,
  type SecretRecord,
  type SnapshotScheduleRecord,
  type TokenRecord,
  type VersionMeta,
  type WatermarkRecord,
} from './records.js';
import type { Integrity } from './integrity.js';
import { decodeSnapshotBlob, encodeSnapshotBlob } from './snapshot-format.js';
import type { LogEntry, RoleRule, SealedValue } from './types.js';

/** Vault's default number of retained versions. */
export const DEFAULT_MAX_VERSIONS = 10;
/** Size of the idempotency table (entries, FIFO). Part of the replicated state and the snapshot. */
export const DEDUP_CAPACITY = 10_000;
/** Failure timestamps kept per client IP; a lockout policy needs at most this many. */
export const MAX_FAILURES_KEPT = 64;
/** Name of the token seeded by `bootstrap`. */
export const BOOTSTRAP_TOKEN_NAME = 'bootstrap-admin';
/** The built-in, immutable role. */
export const ADMIN_ROLE: Readonly<RoleRecord> = Object.freeze({
  name: 'admin',
  rules: [{ paths: ['**'], actions: ['*'] }],
  rateLimit: null,
  updatedAt: 0,
  maxTtlSecs: null,
});

/** What applying one log entry produced. */
export type ApplyResult = {
  index: number;
  /** Null for entries that carry no command (empty normal entries, conf changes). */
  requestId: string | null;
  result: CommandResult;
  /** True when `requestId` had been applied before: `result` is the first result, nothing changed. */
  duplicate: boolean;
};

/** Changes since the last `takeChanges()`, for the store to write in one batch. */
export type StateChanges = {
  applied: { index: number; term: number };
  puts: [string, Uint8Array][];
  dels: string[];
  /** Replace every state record (state.restore / snapshot install): the store deletes the rest. */
  fullRewrite: boolean;
};

/** Lockout policy, from the server's configuration. `maxFailures` 0 disables lockout. */
export type LockoutPolicy = { maxFailures: number; windowMs: number; lockoutMs: number };

/** Token status at a point in time. */
export type TokenStatus = 'active' | 'revoked' | 'expired';

/** Options of a state machine. */
export type StateMachineOptions = {
  /**
   * Keep sealed bytes in memory (reference replicas, tests). Such a replica is never persisted:
   * `takeChanges()` then carries metadata only. Default false.
   */
  keepBlobs?: boolean;
  /**
   * The cluster's integrity keys: `state.restore` accepts only a snapshot whose tag they verify,
   * and `createSnapshot` tags with them. Without it both refuse (no unauthenticated snapshot is
   * ever made or accepted).
   */
  integrity?: Integrity;
};

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

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

/**
 * The replicated state and its deterministic apply. Queries are synchronous, from memory.
 */
export class StateMachine {
  private secrets = new Map<string, SecretRecord>();
  /** Secret names, sorted (prefix listing); rebuilt lazily after inserts and deletes. */
  private sortedNames: string[] = [];
  private namesStale = false;
  private tokens = new Map<string, TokenRecord>();
  private tokensByHash = new Map<string, string>();
  private roles = new Map<string, RoleRecord>();
  private lockouts = new Map<string, LockoutRecord>();
  private members = new Map<string, MemberRecord>();
  /** Insertion order = sequence order; eviction drops the oldest. */
  private dedup = new Map<string, { seq: number; result: CommandResult }>();
  private dedupBySeq = new Map<number, string>();
  private dedupSeq = 0;
  private allowlist: AllowlistRecord | null = null;
  private bootstrapRec: BootstrapRecord | null = null;
  private watermark: WatermarkRecord | null = null;
  private snapshotSchedule: SnapshotScheduleRecord | null = null;
  private lockoutSweep = 0;
  private appliedIndex = 0;
  private appliedTerm = 0;

  private readonly blobs: Map<string, Uint8Array> | null;
  private readonly integrity: Integrity | null;
  private dirty = new Set<string>();
  private blobOps = new Map<string, Uint8Array | null>();
  private fullRewrite = false;

  /**
   * @param options - see `StateMachineOptions`
   */
  constructor(options: StateMachineOptions = {}) {
    this.blobs = options.keepBlobs ? new Map() : null;
    this.integrity = options.integrity ?? null;
  }

  // ---------------------------------------------------------------------------------------------
  // Loading

  /**
   * Builds a state machine from on-disk records (boot) or snapshot records.
   *
   * @param records - metadata records (`m…`), and blob records (`b…`) when `keepBlobs`
   * @param applied - the applied position the records reflect
   * @param options - see `StateMachineOptions`
   * @returns the state machine
   * @throws {SM_CORRUPT_STORAGE} a record does not decode
   */
  static fromRecords(records: Iterable<readonly [string, Uint8Array]>, applied: { index: number; term: number }, options: StateMachineOptions = {}): StateMachine {
    const sm = new StateMachine(options);
    sm.loadRecords(records);
    sm.appliedIndex = applied.index;
    sm.appliedTerm = applied.term;
    return sm;
  }

  private loadRecords(records: Iterable<readonly [string, Uint8Array]>): void {
    const dedupEntries: [number, string, CommandResult][] = [];
    for (const [key, value] of records) {
      const p2 = key.slice(0, 2);
      const rest = key.slice(2);
      if (p2 === KEY.secret) this.secrets.set(rest, decodeSecret(value));
      else if (p2 === KEY.token) this.tokens.set(rest, decodeToken(value));
      else if (p2 === KEY.role) this.roles.set(rest, decodeRole(value));
      else if (p2 === KEY.lockout) this.lockouts.set(rest, decodeLockout(value));
      else if (p2 === KEY.member) this.members.set(rest, decodeMember(value));
      else if (p2 === KEY.dedup) {
        const d = decodeDedup(value);
        dedupEntries.push([Number(rest), d.requestId, d.result]);
      } else if (key === KEY.allowlist) this.allowlist = decodeAllowlist(value);
      else if (key === KEY.bootstrap) this.bootstrapRec = decodeBootstrap(value);
      else if (key === KEY.watermark) this.watermark = decodeWatermark(value);
      else if (key === KEY.snapshotSchedule) this.snapshotSchedule = decodeSnapshotSchedule(value);
      else if (key === KEY.sweep) this.lockoutSweep = decodeNumber(value);
      else if (key === KEY.dedupSeq) this.dedupSeq = decodeNumber(value);
      else if (p2 === KEY.blobCt || p2 === KEY.blobDek) {
        if (this.blobs) this.blobs.set(key, value);
      } else throw new StateError('SM_CORRUPT_STORAGE', `unknown record key prefix ${JSON.stringify(key.slice(0, 2))}`);
    }
    dedupEntries.sort((a, b) => a[0] - b[0]);
    for (const [seq, id, result] of dedupEntries) {
      this.dedup.set(id, { seq, result });
      this.dedupBySeq.set(seq, id);
    }
    this.namesStale = true;
    for (const t of this.tokens.values()) this.tokensByHash.set(toHex(t.tokenHash), t.name);
    // Invariant: lockout maps are iterated only by the sweep, which does not depend on order.
  }

  // ---------------------------------------------------------------------------------------------
  // Apply

  /** Index of the last applied entry. */
  get applied(): number {
    return this.appliedIndex;
  }

  /** Term of the last applied entry. */
  get appliedTermValue(): number {
    return this.appliedTerm;
  }

  /**
   * Applies one committed log entry. Entries at or below the applied index are ignored (never
   * applied twice); a gap is an invariant break (never skipped).
   *
   * @param entry - the committed entry; `confChange` entries and empty entries only advance the index
   * @returns the result, or null for an entry already applied
   * @throws {SM_UNKNOWN_COMMAND} {SM_UNSUPPORTED_VERSION} {SM_CORRUPT_COMMAND} undecodable data; state untouched
   * @throws {SM_INVARIANT} a gap in indexes
   */
  apply(entry: LogEntry): ApplyResult | null {
    if (entry.index <= this.appliedIndex) return null;
    invariant(entry.index === this.appliedIndex + 1, `apply gap: applied ${this.appliedIndex}, got entry ${entry.index}`);
    if (entry.type === 'confChange' || entry.data.length === 0) {
      this.advance(entry);
      return { index: entry.index, requestId: null, result: { status: 'noop' }, duplicate: false };
    }
    let cmd: Command;
    try {
      cmd = decodeCommand(entry.data);
    } catch (e) {
      if (e instanceof StateError) e.index = entry.index;
      throw e;
    }
    const out = this.applyCommand(cmd);
    this.advance(entry);
    return { index: entry.index, requestId: cmd.requestId, ...out };
  }

  private advance(entry: LogEntry): void {
    this.appliedIndex = entry.index;
    this.appliedTerm = entry.term;
  }

  /**
   * Applies one decoded command (without an index): the deterministic core, also used by tests.
   *
   * @param cmd - the command
   * @returns its result and whether it was a duplicate
   */
  applyCommand(cmd: Command): { result: CommandResult; duplicate: boolean } {
    if (cmd.requestId !== '') {
      const seen = this.dedup.get(cmd.requestId);
      if (seen) return { result: { ...seen.result }, duplicate: true };
    }
    const result = this.dispatch(cmd);
    // state.restore replaced the table itself; remembering the restore in the restored table
    // still makes a retried restore a no-op.
    if (cmd.requestId !== '') this.remember(cmd.requestId, result);
    return { result, duplicate: false };
  }

  private remember(requestId: string, result: CommandResult): void {
    const seq = ++this.dedupSeq;
    this.dedup.set(requestId, { seq, result });
    this.dedupBySeq.set(seq, requestId);
    this.dirty.add(dedupKey(seq));
    this.dirty.add(KEY.dedupSeq);
    // Invariant: the table holds exactly the sequence numbers (dedupSeq - size, dedupSeq], so the
    // oldest is found by arithmetic (iterating a Map from its head after many deletes is O(n)).
    while (this.dedup.size > DEDUP_CAPACITY) {
      const oldest = this.dedupSeq - this.dedup.size + 1;
      const oldId = this.dedupBySeq.get(oldest);
      invariant(oldId !== undefined, `idempotency table lost entry ${oldest}`);
      this.dedup.delete(oldId);
      this.dedupBySeq.delete(oldest);
      this.dirty.add(dedupKey(oldest));
    }
  }

  private dispatch(c: Command): CommandResult {
    switch (c.type) {
      case 'noop':
        return { status: 'ok' };
      case 'secret.put':
        return this.secretPut(c);
      case 'secret.metadata':
        return this.secretMetadata(c);
      case 'secret.delete':
      case 'secret.undelete':
      case 'secret.destroy':
        return this.secretVersions(c);
      case 'secret.destroyAll':
        return this.secretDestroyAll(c.name);
      case 'token.create':
        return this.tokenCreate(c);
      case 'token.revoke':
        return this.tokenRevoke(c.name, c.at);
      case 'token.rotate':
        return this.tokenRotate(c);
      case 'token.expire':
        return this.tokenExpire(c.names, c.at);
      case 'role.put':
        return this.rolePut(c.name, c.rules, c.rateLimit, c.maxTtlSecs, c.at);
      case 'role.delete':
        return this.roleDelete(c.name, c.at);
      case 'allowlist.replace':
        this.allowlist = { cidrs: [...c.cidrs], updatedAt: c.at };
        this.dirty.add(KEY.allowlist);
        return { status: 'ok' };
      case 'allowlist.seed':
        if (this.allowlist !== null) return { status: 'noop' };
        this.allowlist = { cidrs: [...c.cidrs], updatedAt: c.at };
        this.dirty.add(KEY.allowlist);
        return { status: 'ok' };
      case 'bootstrap':
        return this.bootstrap(c.tokenHash, c.cidrs, c.at);
      case 'kms.rewrap':
        return this.kmsRewrap(c);
      case 'kms.watermark':
        this.watermark = {
          marker: c.marker,
          passStartedAt: c.passStartedAt,
          passFinishedAt: c.passFinishedAt,
          rewrapped: c.rewrapped,
          failed: c.failed,
          updatedAt: c.at,
        };
        this.dirty.add(KEY.watermark);
        return { status: 'ok' };
      case 'auth.failure':
        return this.authFailure(c.ip, c.at, c.retainMs);
      case 'auth.reset':
        if (!this.lockouts.delete(c.ip)) return { status: 'noop' };
        this.dirty.add(KEY.lockout + c.ip);
        return { status: 'ok' };
      case 'member.upsert':
        this.members.set(c.id, { id: c.id, raftAddr: c.raftAddr, apiAddr: c.apiAddr, updatedAt: c.at });
        this.dirty.add(KEY.member + c.id);
        return { status: 'ok' };
      case 'member.remove':
        if (!this.members.delete(c.id)) return { status: 'not_found' };
        this.dirty.add(KEY.member + c.id);
        return { status: 'ok' };
      case 'state.restore':
        return this.stateRestore(c.snapshot);
      case 'snapshot.schedule':
        return this.applySnapshotSchedule(c);
      default:
        return assertNever(c);
    }
  }

  // --- secrets ---------------------------------------------------------------------------------

  private touchSecret(s: SecretRecord): void {
    this.dirty.add(KEY.secret + s.name);
  }

  private putBlob(key: string, value: Uint8Array | null): void {
    if (this.blobs) {
      // In-memory replicas keep blobs here and are never persisted: queueing writes would only
      // hold a second reference to every blob ever written.
      if (value === null) this.blobs.delete(key);
      else this.blobs.set(key, value);
    } else this.blobOps.set(key, value);
  }

  private eraseBlobs(name: string, v: VersionMeta): void {
    this.putBlob(ctKey(name, v.version), null);
    if (v.wrapMarker !== '') this.putBlob(dekKey(name, v.version), null);
  }

  private newSecret(name: string, at: number): SecretRecord {
    const s: SecretRecord = {
      name,
      createdAt: at,
      updatedAt: at,
      currentVersion: 0,
      maxVersions: DEFAULT_MAX_VERSIONS,
      casRequired: false,
      deleteVersionAfterSecs: 0,
      description: null,
      rotation: null,
      customMetadata: [],
      versions: [],
    };
    this.secrets.set(name, s);
    this.namesStale = true;
    return s;
  }

  private prune(s: SecretRecord): void {
    // Vault semantics: beyond max_versions the oldest versions go, metadata and all.
    while (s.versions.length > s.maxVersions) {
      const old = s.versions.shift() as VersionMeta;
      if (!old.destroyed) this.eraseBlobs(s.name, old);
    }
  }

  private secretPut(c: Extract<Command, { type: 'secret.put' }>): CommandResult {
    const existing = this.secrets.get(c.name);
    const current = existing?.currentVersion ?? 0;
    if (c.cas === null && existing?.casRequired) return { status: 'cas_required', currentVersion: current };
    if (c.cas !== null && c.cas !== current) return { status: 'cas_conflict', currentVersion: current };
    if (c.version !== current + 1) return { status: 'version_conflict', currentVersion: current };
    const s = existing ?? this.newSecret(c.name, c.at);
    const ct = encodeCt(c.sealed.formatVersion, c.sealed.alg, c.sealed.nonce, c.sealed.ciphertext, c.sealed.wrappedDek);
    const dek = c.sealed.wrappedDek;
    s.versions.push({
      version: c.version,
      createdAt: c.at,
      createdBy: c.actor,
      format: c.format,
      deletedAt: null,
      destroyed: false,
      formatVersion: c.sealed.formatVersion,
      alg: c.sealed.alg,
      kmsKeyId: c.sealed.kmsKeyId,
      wrapMarker: '',
      sizeBytes: c.sealed.ciphertext.length,
      ctDigest: sha256(ct),
      dekDigest: sha256(dek),
    });
    s.currentVersion = c.version;
    s.updatedAt = c.at;
    if (c.description !== null) s.description = c.description;
    if (c.rotation !== null) s.rotation = { ...c.rotation };
    this.putBlob(ctKey(c.name, c.version), ct);
    this.prune(s);
    this.touchSecret(s);
    return { status: 'ok', version: c.version, createdAt: c.at };
  }

  private secretMetadata(c: Extract<Command, { type: 'secret.metadata' }>): CommandResult {
    const s = this.secrets.get(c.name) ?? this.newSecret(c.name, c.at);
    if (c.maxVersions !== null) s.maxVersions = c.maxVersions;
    if (c.casRequired !== null) s.casRequired = c.casRequired;
    if (c.customMetadata !== null) s.customMetadata = Object.entries(c.customMetadata).sort((a, b) => cmpStr(a[0], b[0]));
    if (c.description !== null) s.description = c.description;
    if (c.rotation === 'clear') s.rotation = null;
    else if (c.rotation !== null) s.rotation = { ...c.rotation };
    if (c.deleteVersionAfterSecs !== null) s.deleteVersionAfterSecs = c.deleteVersionAfterSecs;
    s.updatedAt = c.at;
    this.prune(s);
    this.touchSecret(s);
    return { status: 'ok', currentVersion: s.currentVersion };
  }

  private secretVersions(c: Extract<Command, { type: 'secret.delete' | 'secret.undelete' | 'secret.destroy' }>): CommandResult {
    const s = this.secrets.get(c.name);
    if (!s) return { status: 'not_found' };
    const wanted = c.versions.length === 0 ? [s.currentVersion] : c.versions;
    let count = 0;
    for (const v of wanted) {
      const meta = s.versions.find((m) => m.version === v);
      if (!meta || meta.destroyed) continue;
      if (c.type === 'secret.delete' && meta.deletedAt === null) {
        meta.deletedAt = c.at;
        count++;
      } else if (c.type === 'secret.undelete' && meta.deletedAt !== null) {
        meta.deletedAt = null;
        count++;
      } else if (c.type === 'secret.destroy') {
        meta.destroyed = true;
        this.eraseBlobs(s.name, meta);
        count++;
      }
    }
    if (count === 0) return { status: 'noop', count: 0, currentVersion: s.currentVersion };
    s.updatedAt = c.at;
    this.touchSecret(s);
    return { status: 'ok', count, currentVersion: s.currentVersion };
  }

  private secretDestroyAll(name: string): CommandResult {
    const s = this.secrets.get(name);
    if (!s) return { status: 'not_found' };
    for (const v of s.versions) if (!v.destroyed) this.eraseBlobs(name, v);
    this.secrets.delete(name);
    this.namesStale = true;
    this.dirty.add(KEY.secret + name);
    return { status: 'ok', count: s.versions.length };
  }

  // --- tokens and roles ------------------------------------------------------------------------

  private setToken(t: TokenRecord): void {
    this.tokens.set(t.name, t);
    this.tokensByHash.set(toHex(t.tokenHash), t.name);
    this.dirty.add(KEY.token + t.name);
  }

  private dropToken(t: TokenRecord): void {
    this.tokens.delete(t.name);
    this.tokensByHash.delete(toHex(t.tokenHash));
    this.dirty.add(KEY.token + t.name);
  }

  private tokenCreate(c: Extract<Command, { type: 'token.create' }>): CommandResult {
    if (!this.getRole(c.role)) return { status: 'role_not_found' };
    const old = this.tokens.get(c.name);
    // Names are unique among live tokens; a revoked or expired record gives its name up.
    if (old && tokenStatusAt(old, c.at) === 'active') return { status: 'already_exists' };
    const other = this.tokensByHash.get(toHex(c.tokenHash));
    if (other !== undefined && other !== c.name) return { status: 'hash_conflict' };
    if (old) this.dropToken(old);
    this.setToken({
      name: c.name,
      role: c.role,
      tokenHash: c.tokenHash.slice(),
      createdAt: c.at,
      createdBy: c.actor,
      expiresAt: c.expiresAt,
      revokedAt: null,
      rotatedAt: null,
    });
    return { status: 'ok', createdAt: c.at };
  }

  private tokenRevoke(name: string, at: number): CommandResult {
    const t = this.tokens.get(name);
    if (!t) return { status: 'not_found' };
    if (t.revokedAt !== null) return { status: 'noop' };
    this.setToken({ ...t, revokedAt: at });
    return { status: 'ok' };
  }

  private tokenRotate(c: Extract<Command, { type: 'token.rotate' }>): CommandResult {
    const t = this.tokens.get(c.name);
    if (!t) return { status: 'not_found' };
    if (tokenStatusAt(t, c.at) !== 'active') return { status: 'token_inactive' };
    const other = this.tokensByHash.get(toHex(c.tokenHash));
    if (other !== undefined) return { status: 'hash_conflict' };
    this.tokensByHash.delete(toHex(t.tokenHash));
    this.setToken({ ...t, tokenHash: c.tokenHash.slice(), rotatedAt: c.at, expiresAt: c.expiresAt ?? t.expiresAt });
    return { status: 'ok' };
  }

  private tokenExpire(names: readonly string[], at: number): CommandResult {
    let count = 0;
    for (const name of names) {
      const t = this.tokens.get(name);
      if (t && tokenStatusAt(t, at) !== 'active') {
        this.dropToken(t);
        count++;
      }
    }
    return { status: count ? 'ok' : 'noop', count };
  }

  private rolePut(name: string, rules: readonly RoleRule[], rateLimit: string | null, maxTtlSecs: number | null, at: number): CommandResult {
    if (name === ADMIN_ROLE.name) return { status: 'immutable' };
    this.roles.set(name, { name, rules: rules.map((r) => ({ paths: [...r.paths], actions: [...r.actions] })), rateLimit, updatedAt: at, maxTtlSecs });
    this.dirty.add(KEY.role + name);
    return { status: 'ok' };
  }

  private roleDelete(name: string, at: number): CommandResult {
    if (name === ADMIN_ROLE.name) return { status: 'immutable' };
    if (!this.roles.has(name)) return { status: 'not_found' };
    let users = 0;
    for (const t of this.tokens.values()) if (t.role === name && tokenStatusAt(t, at) === 'active') users++;
    if (users > 0) return { status: 'role_in_use', count: users };
    this.roles.delete(name);
    this.dirty.add(KEY.role + name);
    return { status: 'ok' };
  }

  private bootstrap(tokenHash: Uint8Array, cidrs: readonly string[], at: number): CommandResult {
    if (this.bootstrapRec) {
      // Same seed replayed (every node starts with the same COFFER_BOOTSTRAP_TOKEN): a no-op.
      return timingSafeEqual(this.bootstrapRec.tokenHash, tokenHash) ? { status: 'noop' } : { status: 'already_bootstrapped' };
    }
    const old = this.tokens.get(BOOTSTRAP_TOKEN_NAME);
    if (old) this.dropToken(old);
    const clash = this.tokensByHash.get(toHex(tokenHash));
    if (clash !== undefined) return { status: 'hash_conflict' };
    this.setToken({
      name: BOOTSTRAP_TOKEN_NAME,
      role: ADMIN_ROLE.name,
      tokenHash: tokenHash.slice(),
      createdAt: at,
      createdBy: 'bootstrap',
      expiresAt: null,
      revokedAt: null,
      rotatedAt: null,
    });
    this.bootstrapRec = { tokenHash: tokenHash.slice(), at };
    this.dirty.add(KEY.bootstrap);
    this.allowlist = { cidrs: [...cidrs], updatedAt: at };
    this.dirty.add(KEY.allowlist);
    return { status: 'ok' };
  }

  // --- KMS ---------------------------------------------------------------------------------------

  private kmsRewrap(c: Extract<Command, { type: 'kms.rewrap' }>): CommandResult {
    const s = this.secrets.get(c.name);
    const v = s?.versions.find((m) => m.version === c.version);
    if (!s || !v) return { status: 'not_found' };
    // Idempotent: a destroyed version, one already at this marker, or one re-wrapped under another
    // key since the worker read it is left alone.
    if (v.destroyed || v.wrapMarker === c.marker || v.kmsKeyId !== c.expectedKmsKeyId) return { status: 'stale' };
    const dek = c.wrappedDek.slice();
    v.kmsKeyId = c.kmsKeyId;
    v.wrapMarker = c.marker;
    v.dekDigest = sha256(dek);
    this.putBlob(dekKey(c.name, c.version), dek);
    this.touchSecret(s);
    return { status: 'ok', version: c.version };
  }

  // --- lockout -------------------------------------------------------------------------------------

  private authFailure(ip: string, at: number, retainMs: number): CommandResult {
    const rec = this.lockouts.get(ip) ?? { ip, failures: [] };
    const f = rec.failures;
    // Proposer clocks may step back across leaders: keep the list sorted regardless.
    let i = f.length;
    while (i > 0 && (f[i - 1] as number) > at) i--;
    f.splice(i, 0, at);
    const keepFrom = at - retainMs;
    while (f.length > 0 && ((f[0] as number) < keepFrom || f.length > MAX_FAILURES_KEPT)) f.shift();
    this.lockouts.set(ip, rec);
    this.dirty.add(KEY.lockout + ip);
    // Bounded table: once per retention period (decided by the command's own `at`, so every replica
    // sweeps on the same entry) drop IPs whose newest failure is past retention.
    const bucket = Math.floor(at / retainMs);
    if (bucket !== this.lockoutSweep) {
      this.lockoutSweep = bucket;
      this.dirty.add(KEY.sweep);
      for (const [k, r] of this.lockouts) {
        const last = r.failures[r.failures.length - 1];
        if (last === undefined || last < keepFrom) {
          this.lockouts.delete(k);
          this.dirty.add(KEY.lockout + k);
        }
      }
    }
    return { status: 'ok', count: f.length };
  }

  // --- scheduled snapshots ---------------------------------------------------------------------

  // Invariant: at most one claim per slot commits, so each slot has one writer. A claim for an
  // older or equal slot is stale (a deposed leader's, or a retry), except a retry of a slot whose
  // write was reported failed. Outcomes count only for the current claim and its writer.
  private applySnapshotSchedule(c: Extract<Command, { type: 'snapshot.schedule' }>): CommandResult {
    const cur = this.snapshotSchedule;
    if (c.phase === 'claim') {
      const retry = cur !== null && c.slotAt === cur.slotAt && cur.state === 'failed';
      if (cur !== null && c.slotAt <= cur.slotAt && !retry) return { status: 'stale' };
      this.snapshotSchedule = {
        slotAt: c.slotAt,
        nodeId: c.nodeId,
        claimedAt: c.at,
        state: 'claimed',
        lastSuccessAt: cur?.lastSuccessAt ?? null,
        lastSlotAt: cur?.lastSlotAt ?? null,
        lastIndex: cur?.lastIndex ?? 0,
        lastSizeBytes: cur?.lastSizeBytes ?? 0,
        lastNodeId: cur?.lastNodeId ?? null,
        lastError: cur?.lastError ?? null,
        lastErrorAt: cur?.lastErrorAt ?? null,
        failures: cur?.failures ?? 0,
      };
    } else {
      if (cur === null || cur.slotAt !== c.slotAt || cur.nodeId !== c.nodeId || cur.state !== 'claimed') return { status: 'stale' };
      this.snapshotSchedule =
        c.phase === 'done'
          ? { ...cur, state: 'done', lastSuccessAt: c.at, lastSlotAt: c.slotAt, lastIndex: c.index, lastSizeBytes: c.sizeBytes, lastNodeId: c.nodeId, lastError: null, lastErrorAt: null }
          : { ...cur, state: 'failed', lastError: c.error ?? 'unknown error', lastErrorAt: c.at, failures: cur.failures + 1 };
    }
    this.dirty.add(KEY.snapshotSchedule);
    return { status: 'ok' };
  }

  // --- restore -------------------------------------------------------------------------------------

  private stateRestore(blob: Uint8Array): CommandResult {
    let records: [string, Uint8Array][];
    let probe: StateMachine;
    // Deterministic on every member: they all derive the same snapshot key from the cluster key.
    if (!this.integrity) return { status: 'invalid_snapshot' };
    try {
      records = decodeSnapshotBlob(blob, this.integrity).records;
      // Decode fully before touching anything: a bad blob must leave the state as it was.
      probe = new StateMachine({ keepBlobs: false });
      probe.loadRecords(records);
    } catch (e) {
      if (e instanceof StateError) return { status: 'invalid_snapshot' };
      throw e;
    }
    const members = this.members;
    const schedule = this.snapshotSchedule;
    const blobs = this.blobs;
    this.secrets = probe.secrets;
    this.namesStale = true;
    this.tokens = probe.tokens;
    this.tokensByHash = probe.tokensByHash;
    this.roles = probe.roles;
    this.lockouts = probe.lockouts;
    this.dedup = probe.dedup;
    this.dedupBySeq = probe.dedupBySeq;
    this.dedupSeq = probe.dedupSeq;
    this.allowlist = probe.allowlist;
    this.bootstrapRec = probe.bootstrapRec;
    this.watermark = probe.watermark;
    this.lockoutSweep = probe.lockoutSweep;
    this.members = members; // the address book follows Raft membership, not the backup
    // The backup schedule goes on from where this cluster is, not where the backup was taken:
    // restoring an old file must not re-open slots that were already written.
    this.snapshotSchedule = schedule;
    this.blobOps.clear();
    this.dirty.clear();
    if (blobs) blobs.clear();
    for (const [k, v] of records) {
      if (k.startsWith(KEY.blobCt) || k.startsWith(KEY.blobDek)) this.putBlob(k, v);
    }
    this.fullRewrite = true;
    return { status: 'ok', count: this.secrets.size };
  }

  // ---------------------------------------------------------------------------------------------
  // Persistence hand-off

  /**
   * Changes since the previous call (dirty records encoded now, blob writes, applied position).
   *
   * @returns what the store must write in one batch
   */
  takeChanges(): StateChanges {
    const puts: [string, Uint8Array][] = [];
    const dels: string[] = [];
    if (this.fullRewrite) {
      for (const rec of this.metaRecords()) puts.push(rec);
    } else {
      for (const key of this.dirty) {
        const value = this.encodeKey(key);
        if (value === null) dels.push(key);
        else puts.push([key, value]);
      }
    }
    for (const [key, value] of this.blobOps) {
      if (value === null) dels.push(key);
      else puts.push([key, value]);
    }
    const out: StateChanges = { applied: { index: this.appliedIndex, term: this.appliedTerm }, puts, dels, fullRewrite: this.fullRewrite };
    this.dirty = new Set();
    this.blobOps = new Map();
    this.fullRewrite = false;
    return out;
  }

  /** Whether there is anything `takeChanges()` would return besides the applied position. */
  get hasChanges(): boolean {
    return this.dirty.size > 0 || this.blobOps.size > 0 || this.fullRewrite;
  }

  private encodeKey(key: string): Uint8Array | null {
    const p2 = key.slice(0, 2);
    const rest = key.slice(2);
    let rec;
    switch (p2) {
      case KEY.secret:
        return (rec = this.secrets.get(rest)) ? encodeSecret(rec) : null;
      case KEY.token:
        return (rec = this.tokens.get(rest)) ? encodeToken(rec) : null;
      case KEY.role:
        return (rec = this.roles.get(rest)) ? encodeRole(rec) : null;
      case KEY.lockout:
        return (rec = this.lockouts.get(rest)) ? encodeLockout(rec) : null;
      case KEY.member:
        return (rec = this.members.get(rest)) ? encodeMember(rec) : null;
      case KEY.dedup: {
        const id = this.dedupBySeq.get(Number(rest));
        const d = id === undefined ? undefined : this.dedup.get(id);
        return id !== undefined && d ? encodeDedup(id, d.result) : null;
      }
    }
    switch (key) {
      case KEY.allowlist:
        return this.allowlist ? encodeAllowlist(this.allowlist) : null;
      case KEY.bootstrap:
        return this.bootstrapRec ? encodeBootstrap(this.bootstrapRec) : null;
      case KEY.watermark:
        return this.watermark ? encodeWatermark(this.watermark) : null;
      case KEY.snapshotSchedule:
        return this.snapshotSchedule ? encodeSnapshotSchedule(this.snapshotSchedule) : null;
      case KEY.sweep:
        return encodeNumber(this.lockoutSweep);
      case KEY.dedupSeq:
        return encodeNumber(this.dedupSeq);
    }
    throw new StateError('SM_INVARIANT', `dirty key with unknown prefix ${JSON.stringify(p2)}`);
  }

  /**
   * Every metadata record (everything but the sealed blobs), sorted by key.
   *
   * @returns `[key, value]` pairs
   */
  metaRecords(): [string, Uint8Array][] {
    const out: [string, Uint8Array][] = [];
    for (const s of this.secrets.values()) out.push([KEY.secret + s.name, encodeSecret(s)]);
    for (const t of this.tokens.values()) out.push([KEY.token + t.name, encodeToken(t)]);
    for (const r of this.roles.values()) out.push([KEY.role + r.name, encodeRole(r)]);
    for (const l of this.lockouts.values()) out.push([KEY.lockout + l.ip, encodeLockout(l)]);
    for (const m of this.members.values()) out.push([KEY.member + m.id, encodeMember(m)]);
    for (const [id, d] of this.dedup) out.push([dedupKey(d.seq), encodeDedup(id, d.result)]);
    if (this.allowlist) out.push([KEY.allowlist, encodeAllowlist(this.allowlist)]);
    if (this.bootstrapRec) out.push([KEY.bootstrap, encodeBootstrap(this.bootstrapRec)]);
    if (this.watermark) out.push([KEY.watermark, encodeWatermark(this.watermark)]);
    if (this.snapshotSchedule) out.push([KEY.snapshotSchedule, encodeSnapshotSchedule(this.snapshotSchedule)]);
    out.push([KEY.sweep, encodeNumber(this.lockoutSweep)]);
    out.push([KEY.dedupSeq, encodeNumber(this.dedupSeq)]);
    out.sort((a, b) => cmpStr(a[0], b[0]));
    return out;
  }

  /**
   * SHA-256 over the canonical replicated state: every metadata record sorted by key, which
   * includes the sha256 of each version's sealed bytes and wrapped DEK. Two replicas that applied
   * the same commands have the same digest. The applied index is not part of it.
   *
   * @returns 32-byte digest
   */
  digest(): Uint8Array {
    const h = sha256.create();
    const len = new Uint8Array(4);
    const lenView = new DataView(len.buffer);
    for (const [k, v] of this.metaRecords()) {
      const kb = Buffer.from(k, 'utf8');
      lenView.setUint32(0, kb.length);
      h.update(len);
      h.update(kb);
      lenView.setUint32(0, v.length);
      h.update(len);
      h.update(v);
    }
    return h.digest();
  }

  /**
   * Hex of `digest()`.
   *
   * @returns 64 hex characters
   */
  stateDigest(): string {
    return toHex(this.digest());
  }

  /**
   * Snapshot blob of an in-memory (`keepBlobs`) state machine.
   *
   * @returns versioned, checksummed blob
   * @throws {SM_INVARIANT} when blobs are not kept in memory (use the store's `createSnapshot`)
   */
  createSnapshot(): Uint8Array {
    invariant(this.blobs, 'createSnapshot on a state machine without in-memory blobs');
    invariant(this.integrity, 'createSnapshot on a state machine without integrity keys');
    const blobs = [...this.blobs.entries()].sort((a, b) => cmpStr(a[0], b[0]));
    return encodeSnapshotBlob(this.appliedIndex, this.appliedTerm, [...blobs, ...this.metaRecords()], this.integrity);
  }

  /**
   * Checks a snapshot blob the way `state.restore` will, without changing anything: lets the API
   * refuse an edited or foreign snapshot before it enters the log.
   *
   * @param blob - snapshot bytes
   * @returns the snapshot's applied index, term and number of records
   * @throws {SM_SNAPSHOT_NOT_AUTHENTIC} {SM_UNSUPPORTED_SNAPSHOT} {SM_CORRUPT_SNAPSHOT} {SM_CORRUPT_STORAGE}
   */
  checkSnapshot(blob: Uint8Array): { index: number; term: number; records: number } {
    invariant(this.integrity, 'checkSnapshot on a state machine without integrity keys');
    const snap = decodeSnapshotBlob(blob, this.integrity);
    new StateMachine().loadRecords(snap.records);
    return { index: snap.index, term: snap.term, records: snap.records.length };
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  /** Sorted secret names. Sorting lazily keeps bulk creation O(n log n) instead of O(n²). */
  private get names(): string[] {
    if (this.namesStale) {
      this.sortedNames = [...this.secrets.keys()].sort(cmpStr);
      this.namesStale = false;
    }
    return this.sortedNames;
  }

  /**
   * @param name - secret name
   * @returns the secret's metadata and retained versions, or undefined
   */
  getSecret(name: string): Readonly<SecretRecord> | undefined {
    return this.secrets.get(name);
  }

  /**
   * @param name - secret name
   * @returns the highest version ever written (0 when none)
   */
  latestVersion(name: string): number {
    return this.secrets.get(name)?.currentVersion ?? 0;
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
    const s = this.secrets.get(name);
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
    const s = this.secrets.get(name);
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
    let i = lowerBound(this.names, after !== undefined && after >= prefix ? after : prefix);
    if (after !== undefined && this.names[i] === after) i++;
    const out: string[] = [];
    for (; i < this.names.length && out.length < limit; i++) {
      const n = this.names[i] as string;
      if (!n.startsWith(prefix)) break;
      out.push(n);
    }
    return out;
  }

  /** Number of secrets. */
  get secretCount(): number {
    return this.secrets.size;
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
    for (const name of this.names) {
      const s = this.secrets.get(name) as SecretRecord;
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
    const name = this.tokensByHash.get(toHex(tokenHash));
    const t = name === undefined ? undefined : this.tokens.get(name);
    return t && timingSafeEqual(t.tokenHash, tokenHash) ? t : undefined;
  }

  /**
   * @param name - token name
   * @returns the record or undefined
   */
  tokenByName(name: string): Readonly<TokenRecord> | undefined {
    return this.tokens.get(name);
  }

  /**
   * @returns every token record, sorted by name
   */
  listTokens(): Readonly<TokenRecord>[] {
    return [...this.tokens.values()].sort((a, b) => cmpStr(a.name, b.name));
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
    return name === ADMIN_ROLE.name ? ADMIN_ROLE : this.roles.get(name);
  }

  /**
   * @returns every role including the built-in `admin`, sorted by name
   */
  listRoles(): Readonly<RoleRecord>[] {
    return [ADMIN_ROLE, ...this.roles.values()].sort((a, b) => cmpStr(a.name, b.name));
  }

  /**
   * @returns the replicated allowlist (empty before bootstrap: reads fail closed)
   */
  getAllowlist(): readonly string[] {
    return this.allowlist?.cidrs ?? [];
  }

  /** Whether a read allowlist was ever set (by the bootstrap seed, a seed, or a replace). */
  get hasAllowlist(): boolean {
    return this.allowlist !== null;
  }

  /** How many addresses the replicated lockout table holds. */
  get lockoutCount(): number {
    return this.lockouts.size;
  }

  /** Whether a bootstrap seed has been applied. */
  get bootstrapped(): boolean {
    return this.bootstrapRec !== null;
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
    const rec = this.lockouts.get(ip);
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
    return (this.lockouts.get(ip)?.failures ?? []).filter((t) => t > now - windowMs && t <= now).length;
  }

  /**
   * @returns the KMS re-wrap watermark, or null before the first pass
   */
  getWatermark(): Readonly<WatermarkRecord> | null {
    return this.watermark;
  }

  /**
   * @returns where the scheduled snapshots stand, or null before the first claim
   */
  getSnapshotSchedule(): Readonly<SnapshotScheduleRecord> | null {
    return this.snapshotSchedule;
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
    for (const s of this.secrets.values()) {
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
    for (const name of this.names) {
      for (const v of (this.secrets.get(name) as SecretRecord).versions) {
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
    return [...this.members.values()].sort((a, b) => cmpStr(a.id, b.id));
  }

  /**
   * @param requestId - a proposal's request id
   * @returns the remembered result if that request was applied (and not yet evicted)
   */
  resultOf(requestId: string): CommandResult | undefined {
    const d = this.dedup.get(requestId);
    return d ? { ...d.result } : undefined;
  }

  /**
   * Sealed value from the in-memory blobs (`keepBlobs` only; the store reads LevelDB).
   *
   * @param name - secret name
   * @param version - version
   * @returns the sealed value or undefined (destroyed, pruned, unknown)
   */
  readSealedSync(name: string, version: number): SealedValue | undefined {
    invariant(this.blobs, 'readSealedSync on a state machine without in-memory blobs');
    return assembleSealed(this.secrets.get(name), version, this.blobs.get(ctKey(name, version)), this.blobs.get(dekKey(name, version)));
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
  if (!bytesEqual(sha256(ct), meta.ctDigest)) throw new StateError('SM_CORRUPT_STORAGE', `sealed record of ${JSON.stringify(s?.name)} v${version} does not match its digest`);
  const c = decodeCt(ct);
  const wrappedDek = dek ?? c.wrappedDek;
  if (!bytesEqual(sha256(wrappedDek), meta.dekDigest)) throw new StateError('SM_CORRUPT_STORAGE', `wrapped DEK of ${JSON.stringify(s?.name)} v${version} does not match its digest`);
  return { formatVersion: c.formatVersion, alg: c.alg, nonce: c.nonce, ciphertext: c.ciphertext, wrappedDek, kmsKeyId: meta.kmsKeyId };
}

function effectiveDeletedAt(s: SecretRecord, v: VersionMeta): number | null {
  if (v.deletedAt !== null) return v.deletedAt;
  return s.deleteVersionAfterSecs > 0 ? v.createdAt + s.deleteVersionAfterSecs * 1000 : null;
}

/**
 * Status of a token at time `now`.
 *
 * @param t - token record
 * @param now - a clock value
 * @returns 'active', 'revoked' or 'expired'
 */
export function tokenStatusAt(t: Pick<TokenRecord, 'revokedAt' | 'expiresAt'>, now: number): 'active' | 'revoked' | 'expired' {
  if (t.revokedAt !== null && t.revokedAt <= now) return 'revoked';
  if (t.expiresAt !== null && t.expiresAt <= now) return 'expired';
  return 'active';
}
