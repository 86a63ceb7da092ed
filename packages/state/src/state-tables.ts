// The replicated tables of the state machine, and their mapping to metadata records (`m…` keys,
// see records.ts): load from records, encode one changed key, list every record. Appliers
// (commands/*.ts) change the tables and mark the keys they touched in the change set.
import { toHex } from './bytes.js';
import { cmpStr } from './bytes.js';
import { DedupTable } from './dedup-table.js';
import { StateError } from './errors.js';
import {
  KEY,
  decodeAllowlist,
  decodeBootstrap,
  decodeDedup,
  decodeLockout,
  decodeMember,
  decodeNumber,
  decodeRole,
  decodeSecret,
  decodeSnapshotSchedule,
  decodeToken,
  decodeWatermark,
  encodeAllowlist,
  encodeBootstrap,
  encodeLockout,
  encodeMember,
  encodeNumber,
  encodeRole,
  encodeSecret,
  encodeSnapshotSchedule,
  encodeToken,
  encodeWatermark,
  type AllowlistRecord,
  type BootstrapRecord,
  type CommandResult,
  type LockoutRecord,
  type MemberRecord,
  type RoleRecord,
  type SecretRecord,
  type SnapshotScheduleRecord,
  type TokenRecord,
  type WatermarkRecord,
} from './records.js';

/**
 * A keyed table that a command family adds without touching this file: records under
 * `prefix + id`. The prefix is two characters, `m` and a letter no other table uses (the registry
 * checks). Listed in `RECORD_TABLES` (commands/registry.ts).
 */
export interface RecordTable<R> {
  /** Two characters, `m` + a letter not used by another table. */
  readonly prefix: string;
  /** Deterministic encoding (one value, one byte string: it feeds the digest). */
  encode(record: R): Uint8Array;
  /** Decodes; throws `SM_CORRUPT_STORAGE` on anything malformed. */
  decode(bytes: Uint8Array): R;
}

/** The replicated state, as tables. */
export class StateTables {
  secrets: Map<string, SecretRecord> = new Map();
  tokens: Map<string, TokenRecord> = new Map();
  /** hex(tokenHash) → token name (derived, not persisted). */
  tokensByHash: Map<string, string> = new Map();
  roles: Map<string, RoleRecord> = new Map();
  lockouts: Map<string, LockoutRecord> = new Map();
  members: Map<string, MemberRecord> = new Map();
  dedup: DedupTable = new DedupTable();
  allowlist: AllowlistRecord | null = null;
  bootstrap: BootstrapRecord | null = null;
  watermark: WatermarkRecord | null = null;
  snapshotSchedule: SnapshotScheduleRecord | null = null;
  /** The retention period in which the lockout table was last swept. */
  lockoutSweep = 0;
  /**
   * Names of the secrets with a rotation policy (derived, not persisted): the leader polls for due
   * rotations every few seconds, and a scan of every secret is slow at a million.
   */
  readonly rotating: Set<string> = new Set();
  /** Secret names, sorted (prefix listing); rebuilt lazily after inserts and deletes. */
  private sortedNames: string[] = [];
  private namesStale = false;
  private readonly extra: ReadonlyMap<string, { def: RecordTable<unknown>; rows: Map<string, unknown> }>;

  /**
   * @param extraTables - the family tables of the registry (`RECORD_TABLES`)
   */
  constructor(extraTables: readonly RecordTable<unknown>[]) {
    this.extra = new Map(extraTables.map((def) => [def.prefix, { def, rows: new Map<string, unknown>() }]));
  }

  /**
   * The rows of a family table.
   *
   * @param def - a table listed in `RECORD_TABLES`
   * @returns id → record; changes must be marked (`changes.mark(def.prefix + id)`)
   * @throws {SM_INVARIANT} a table that is not registered
   */
  table<R>(def: RecordTable<R>): Map<string, R> {
    const t = this.extra.get(def.prefix);
    if (t === undefined || t.def !== def) throw new StateError('SM_INVARIANT', `record table ${JSON.stringify(def.prefix)} is not registered`);
    return t.rows as Map<string, R>;
  }

  /**
   * Call after setting or clearing a secret's rotation policy, and after removing a secret.
   *
   * @param name - the secret
   */
  rotationChanged(name: string): void {
    if (this.secrets.get(name)?.rotation != null) this.rotating.add(name);
    else this.rotating.delete(name);
  }

  /** Call after adding or removing a secret: the sorted name list is rebuilt on next use. */
  namesChanged(): void {
    this.namesStale = true;
  }

  /** Sorted secret names. Sorting lazily keeps bulk creation O(n log n) instead of O(n²). */
  get names(): string[] {
    if (this.namesStale) {
      this.sortedNames = [...this.secrets.keys()].sort(cmpStr);
      this.namesStale = false;
    }
    return this.sortedNames;
  }

  /**
   * Loads metadata records (boot, snapshot). Blob records go to `blobs` when given, else are skipped.
   *
   * @param records - `[key, value]` pairs
   * @param blobs - in-memory blob map of a reference replica, or null
   * @throws {SM_CORRUPT_STORAGE} a record does not decode or has an unknown prefix
   */
  load(records: Iterable<readonly [string, Uint8Array]>, blobs: Map<string, Uint8Array> | null): void {
    const loading = this.loader(blobs);
    for (const [key, value] of records) loading.add(key, value);
    loading.done();
  }

  /**
   * Loads records one at a time, as they are read (boot streams a million records without
   * holding them all first): `add` each, then `done` once.
   *
   * @param blobs - in-memory blob map of a reference replica, or null
   * @throws {SM_CORRUPT_STORAGE} from `add`: a record does not decode or has an unknown prefix
   */
  loader(blobs: Map<string, Uint8Array> | null): { add: (key: string, value: Uint8Array) => void; done: () => void } {
    const dedupEntries: [number, string, CommandResult][] = [];
    const add = (key: string, value: Uint8Array): void => {
      const p2 = key.slice(0, 2);
      if (p2 === KEY.secret) {
        const s = decodeSecret(value);
        // The record's own name as the map key (one string per secret, not two).
        const name = key.length === s.name.length + 2 && key.endsWith(s.name) ? s.name : key.slice(2);
        this.secrets.set(name, s);
        if (s.rotation !== null) this.rotating.add(name);
        return;
      }
      const rest = key.slice(2);
      if (p2 === KEY.token) this.tokens.set(rest, decodeToken(value));
      else if (p2 === KEY.role) this.roles.set(rest, decodeRole(value));
      else if (p2 === KEY.lockout) this.lockouts.set(rest, decodeLockout(value));
      else if (p2 === KEY.member) this.members.set(rest, decodeMember(value));
      else if (p2 === KEY.dedup) {
        const d = decodeDedup(value);
        dedupEntries.push([Number(rest), d.requestId, d.result]);
      } else if (key === KEY.allowlist) this.allowlist = decodeAllowlist(value);
      else if (key === KEY.bootstrap) this.bootstrap = decodeBootstrap(value);
      else if (key === KEY.watermark) this.watermark = decodeWatermark(value);
      else if (key === KEY.snapshotSchedule) this.snapshotSchedule = decodeSnapshotSchedule(value);
      else if (key === KEY.sweep) this.lockoutSweep = decodeNumber(value);
      else if (key === KEY.dedupSeq) this.dedup.seq = decodeNumber(value);
      else if (p2 === KEY.blobCt || p2 === KEY.blobDek) {
        if (blobs) blobs.set(key, value);
      } else {
        const t = this.extra.get(p2);
        if (t === undefined) throw new StateError('SM_CORRUPT_STORAGE', `unknown record key prefix ${JSON.stringify(p2)}`);
        t.rows.set(rest, t.def.decode(value));
      }
    };
    const done = (): void => {
      this.dedup.load(dedupEntries);
      this.namesStale = true;
      for (const t of this.tokens.values()) this.tokensByHash.set(toHex(t.tokenHash), t.name);
      // Invariant: lockout maps are iterated only by the sweep, which does not depend on order.
    };
    return { add, done };
  }

  /**
   * The current value of one metadata record.
   *
   * @param key - a key marked dirty
   * @returns the encoded record, or null when it no longer exists (delete it)
   * @throws {SM_INVARIANT} a key no table owns
   */
  encodeKey(key: string): Uint8Array | null {
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
      case KEY.dedup:
        return this.dedup.encodeEntry(rest);
    }
    switch (key) {
      case KEY.allowlist:
        return this.allowlist ? encodeAllowlist(this.allowlist) : null;
      case KEY.bootstrap:
        return this.bootstrap ? encodeBootstrap(this.bootstrap) : null;
      case KEY.watermark:
        return this.watermark ? encodeWatermark(this.watermark) : null;
      case KEY.snapshotSchedule:
        return this.snapshotSchedule ? encodeSnapshotSchedule(this.snapshotSchedule) : null;
      case KEY.sweep:
        return encodeNumber(this.lockoutSweep);
      case KEY.dedupSeq:
        return encodeNumber(this.dedup.seq);
    }
    const t = this.extra.get(p2);
    if (t !== undefined) return t.rows.has(rest) ? t.def.encode(t.rows.get(rest)) : null;
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
    this.dedup.records(out);
    if (this.allowlist) out.push([KEY.allowlist, encodeAllowlist(this.allowlist)]);
    if (this.bootstrap) out.push([KEY.bootstrap, encodeBootstrap(this.bootstrap)]);
    if (this.watermark) out.push([KEY.watermark, encodeWatermark(this.watermark)]);
    if (this.snapshotSchedule) out.push([KEY.snapshotSchedule, encodeSnapshotSchedule(this.snapshotSchedule)]);
    out.push([KEY.sweep, encodeNumber(this.lockoutSweep)]);
    for (const { def, rows } of this.extra.values()) for (const [id, r] of rows) out.push([def.prefix + id, def.encode(r)]);
    out.sort((a, b) => cmpStr(a[0], b[0]));
    return out;
  }
}
