// The deterministic state machine. `apply` is a pure function of (state, entry): no clock, no
// randomness, no I/O. Everything replicated lives in memory (state-tables.ts) except the sealed
// bytes, which the durable store keeps in LevelDB (`bc`/`bw` records) and this class only hashes;
// an in-memory instance (`keepBlobs`) keeps them in a Map and serves as the reference replica in
// tests.
//
// What each command does lives with the command, in its family file (commands/*.ts); this class
// decodes, deduplicates, dispatches through the registry and hands the change set (change-set.ts)
// to the store, which writes it in ONE atomic batch. Queries are in state-queries.ts.
import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from './bytes.js';
import { ChangeSet } from './change-set.js';
import { decodeCommand } from './commands/codec.js';
import { RECORD_TABLES, specOf, type Command } from './commands/registry.js';
import { sealConfigOf, type SealConfigRecord } from './commands/seal.js';
import { cmpStr, type ApplyContext } from './commands/spec.js';
import { StateError, invariant } from './errors.js';
import type { Integrity } from './integrity.js';
import { KEY, type CommandResult } from './records.js';
import { decodeSnapshotBlob, encodeSnapshotBlob } from './snapshot-format.js';
import { StateQueries } from './state-queries.js';
import { StateTables } from './state-tables.js';
import type { LogEntry } from './types.js';

export { DEDUP_CAPACITY } from './dedup-table.js';
export { MAX_FAILURES_KEPT } from './commands/access.js';
export { DEFAULT_MAX_VERSIONS } from './commands/secrets.js';
export { ADMIN_ROLE, BOOTSTRAP_TOKEN_NAME, tokenStatusAt } from './commands/tokens.js';
export { assembleSealed, type LockoutPolicy, type TokenStatus } from './state-queries.js';

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

/**
 * The replicated state and its deterministic apply. Queries are synchronous, from memory.
 */
export class StateMachine extends StateQueries {
  private appliedIndex = 0;
  private appliedTerm = 0;
  private readonly integrity: Integrity | null;

  /**
   * @param options - see `StateMachineOptions`
   */
  constructor(options: StateMachineOptions = {}) {
    super(new StateTables(RECORD_TABLES), new ChangeSet(options.keepBlobs === true));
    this.integrity = options.integrity ?? null;
  }

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
    sm.tables.load(records, sm.changes.blobs);
    sm.appliedIndex = applied.index;
    sm.appliedTerm = applied.term;
    return sm;
  }

  /**
   * Builds a state machine from records as a reader hands them over, one at a time (boot: nothing
   * holds every record at once).
   *
   * @param read - calls `each` once per metadata record, in any order, and resolves when done
   * @param applied - the applied position the records reflect
   * @param options - see `StateMachineOptions`
   * @returns the state machine
   * @throws {SM_CORRUPT_STORAGE} a record does not decode
   */
  static async fromRecordReader(
    read: (each: (key: string, value: Uint8Array) => void) => Promise<void>,
    applied: { index: number; term: number },
    options: StateMachineOptions = {},
  ): Promise<StateMachine> {
    const sm = new StateMachine(options);
    const loading = sm.tables.loader(sm.changes.blobs);
    await read(loading.add);
    loading.done();
    sm.appliedIndex = applied.index;
    sm.appliedTerm = applied.term;
    return sm;
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
      const seen = this.tables.dedup.get(cmd.requestId);
      if (seen) return { result: seen, duplicate: true };
    }
    const ctx: ApplyContext = { tables: this.tables, changes: this.changes, restore: (blob) => this.restore(blob) };
    const result = specOf(cmd.type).apply(ctx, cmd);
    // state.restore replaced the table itself; remembering the restore in the restored table
    // still makes a retried restore a no-op.
    if (cmd.requestId !== '') this.tables.dedup.remember(cmd.requestId, result, (key) => this.changes.mark(key));
    return { result, duplicate: false };
  }

  private restore(blob: Uint8Array): CommandResult {
    let records: [string, Uint8Array][];
    const probe = new StateTables(RECORD_TABLES);
    // Deterministic on every member: they all derive the same snapshot key from the cluster key.
    if (!this.integrity) return { status: 'invalid_snapshot' };
    try {
      records = decodeSnapshotBlob(blob, this.integrity).records;
      // Decode fully before touching anything: a bad blob must leave the state as it was.
      probe.load(records, null);
    } catch (e) {
      if (e instanceof StateError) return { status: 'invalid_snapshot' };
      throw e;
    }
    probe.members = this.tables.members; // the address book follows Raft membership, not the backup
    // The backup schedule goes on from where this cluster is, not where the backup was taken:
    // restoring an old file must not re-open slots that were already written.
    probe.snapshotSchedule = this.tables.snapshotSchedule;
    this.tables = probe;
    this.changes.clear();
    this.changes.blobs?.clear();
    for (const [k, v] of records) {
      if (k.startsWith(KEY.blobCt) || k.startsWith(KEY.blobDek)) this.changes.putBlob(k, v);
    }
    this.changes.fullRewrite = true;
    return { status: 'ok', count: this.tables.secrets.size };
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
    const { dirty, blobOps, fullRewrite } = this.changes.take();
    if (fullRewrite) {
      for (const rec of this.tables.metaRecords()) puts.push(rec);
    } else {
      for (const key of dirty) {
        const value = this.tables.encodeKey(key);
        if (value === null) dels.push(key);
        else puts.push([key, value]);
      }
    }
    for (const [key, value] of blobOps) {
      if (value === null) dels.push(key);
      else puts.push([key, value]);
    }
    return { applied: { index: this.appliedIndex, term: this.appliedTerm }, puts, dels, fullRewrite };
  }

  /** Whether there is anything `takeChanges()` would return besides the applied position. */
  get hasChanges(): boolean {
    return this.changes.hasChanges;
  }

  /**
   * Every metadata record (everything but the sealed blobs), sorted by key.
   *
   * @returns `[key, value]` pairs
   */
  metaRecords(): [string, Uint8Array][] {
    return this.tables.metaRecords();
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
    const blobs = this.changes.blobs;
    invariant(blobs, 'createSnapshot on a state machine without in-memory blobs');
    invariant(this.integrity, 'createSnapshot on a state machine without integrity keys');
    const sorted = [...blobs.entries()].sort((a, b) => cmpStr(a[0], b[0]));
    return encodeSnapshotBlob(this.appliedIndex, this.appliedTerm, [...sorted, ...this.metaRecords()], this.integrity);
  }

  /**
   * Checks a snapshot blob the way `state.restore` will, without changing anything: lets the API
   * refuse an edited or foreign snapshot before it enters the log.
   *
   * @param blob - snapshot bytes
   * @returns the snapshot's applied index, term, number of records, and its seal configuration
   *   (a sealed cluster refuses a snapshot made under another master key)
   * @throws {SM_SNAPSHOT_NOT_AUTHENTIC} {SM_UNSUPPORTED_SNAPSHOT} {SM_CORRUPT_SNAPSHOT} {SM_CORRUPT_STORAGE}
   */
  checkSnapshot(blob: Uint8Array): { index: number; term: number; records: number; seal: Readonly<SealConfigRecord> | undefined } {
    invariant(this.integrity, 'checkSnapshot on a state machine without integrity keys');
    const snap = decodeSnapshotBlob(blob, this.integrity);
    const tables = new StateTables(RECORD_TABLES);
    tables.load(snap.records, null);
    return { index: snap.index, term: snap.term, records: snap.records.length, seal: sealConfigOf(tables) };
  }
}
