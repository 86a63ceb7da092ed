/**
 * The Raft driver's seams (what it needs from the log, the state machine and its owner) and its
 * errors. Re-exported by driver.ts, which is where callers import them from.
 */
import { type ConfChange, type Entry, type HardState, type NodeId, RaftError, type Snapshot, type SnapshotMeta } from '@coffer/raft';

/** The durable Raft log as the driver needs it (implemented over @coffer/state's store). */
export interface DurableLog {
  /** Appends entries (replacing any conflicting suffix) and the hard state in one atomic batch. */
  append(entries: Entry[], hardState: HardState | undefined, sync: boolean): Promise<void>;
  /**
   * Persists a snapshot. With `replaceLog` (a snapshot received from the leader) every stored
   * entry is discarded too: the log restarts after the snapshot. `data` null records the meta
   * only: the state machine holds that state itself (its applied position is made durable up to
   * `meta.index` first).
   */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array | null, replaceLog: boolean): Promise<void>;
  /** Discards entries up to and including `index` (a snapshot covers them). */
  compact(index: number): Promise<void>;
}

/** What the driver found on disk at boot. */
export interface LoadedLog {
  hardState: HardState | undefined;
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

/** An applied entry's outcome, as the state machine reports it. */
export type ApplyOutcome = unknown;

/** The replicated state machine as the driver needs it. */
export interface Applier {
  /** Index of the last applied entry (persisted atomically with the state). */
  appliedIndex(): number;
  /**
   * Applies committed entries in order and persists their effects with the new applied index in
   * one atomic write. Returns one outcome per entry (undefined for entries that are not commands).
   * Throws (fatal) on an entry it cannot decode: the node must stop, never skip.
   *
   * `early`, when given, may receive the outcomes of some entries (by index) as soon as they are
   * applied in memory, before the state write that follows them completes (it is not synced: the
   * Raft log is what makes them durable); the returned outcomes still cover every entry.
   */
  apply(entries: readonly Entry[], confChanges: ReadonlyMap<number, ConfChange>, early?: (outcomes: ReadonlyMap<number, ApplyOutcome>) => void): Promise<ApplyOutcome[]>;
  /**
   * A consistent serialization of the state, and the applied index it was taken at: the index
   * applied when called (the store takes it in turn with applies).
   */
  snapshot(): Promise<{ index: number; data: Uint8Array }>;
  /** Replaces the whole state with a snapshot taken at `index`. */
  restore(index: number, data: Uint8Array): Promise<void>;
}

/** Why a proposal or read failed; mapped to HTTP by the API layer. */
export type DriverErrorCode = 'not_leader' | 'dropped' | 'outcome_unknown' | 'no_quorum' | 'stopped' | 'conf_change_pending' | 'invalid_conf_change';

/** A failure of the driver that callers handle by code. */
export class DriverError extends Error {
  override readonly name: string = 'DriverError';
  readonly code: DriverErrorCode;
  /** For `not_leader`: the leader this node knows of. */
  readonly leaderId: NodeId | null;
  /**
   * @param code - why
   * @param message - human-readable detail
   * @param leaderId - the known leader, for `not_leader`
   */
  constructor(code: DriverErrorCode, message: string, leaderId: NodeId | null = null) {
    super(message);
    this.code = code;
    this.leaderId = leaderId;
  }
}

/** Entries kept behind a snapshot when {@link DriverOptions.snapshotCatchUpEntries} is not set. */
export const DEFAULT_SNAPSHOT_CATCHUP_ENTRIES = 1_000;

/** Hooks for metrics and logs. */
export interface DriverEvents {
  onLeaderChange?(lead: NodeId | null, term: number): void;
  onApplied?(index: number): void;
  onRoleChange?(role: string, term: number): void;
  /** The log was compacted behind a snapshot (meta only: `bytes` 0) taken at `index`. */
  onSnapshot?(index: number, bytes: number): void;
  /** A whole-state snapshot was built for a lagging follower. */
  onSnapshotBuilt?(index: number, bytes: number, ms: number): void;
  /** A snapshot started on its way to a lagging follower (first chunk handed to the transport). */
  onSnapshotSent?(to: NodeId, index: number): void;
  /** A snapshot received from the leader replaced this node's state. */
  onSnapshotInstalled?(index: number): void;
  onFatal(err: unknown): void;
}

/** Settings of the driver. */
export interface DriverOptions {
  readonly nodeId: NodeId;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotEntries: number;
  /** Entries kept behind a snapshot so slightly lagging followers need no snapshot. */
  readonly snapshotCatchUpEntries?: number;
  readonly proposalTimeoutMs?: number;
  readonly readTimeoutMs?: number;
  readonly rng?: () => number;
  readonly logger?: { debug(m: string): void; info(m: string): void; warn(m: string): void };
}

/** Raft's refusals of a proposal, as driver errors (anything else passes through). */
export function toDriverError(err: unknown): Error {
  if (err instanceof RaftError) {
    switch (err.code) {
      case 'RAFT_NOT_LEADER':
        return new DriverError('not_leader', 'this node is not the leader', err.leaderId);
      case 'RAFT_PROPOSAL_DROPPED':
        return new DriverError('dropped', err.message);
      case 'RAFT_CONF_CHANGE_PENDING':
        return new DriverError('conf_change_pending', err.message);
      case 'RAFT_INVALID_CONF_CHANGE':
        return new DriverError('invalid_conf_change', err.message);
      default:
        return err;
    }
  }
  return err as Error;
}
