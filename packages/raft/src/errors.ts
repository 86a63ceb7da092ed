/**
 * Error codes of @coffer/raft. Codes are a contract (callers match on `code`, never on the
 * message); messages may change.
 *
 * HTTP mapping used by the node: `RAFT_NOT_LEADER` -> redirect with the leader hint,
 * `RAFT_PROPOSAL_DROPPED` and `RAFT_CONF_CHANGE_PENDING` -> 503; the rest are 500.
 */
export type RaftErrorCode =
  /** This node is not the leader; `leaderId` carries the leader it knows of (or null). */
  | 'RAFT_NOT_LEADER'
  /** The leader refused the proposal for now (leadership transfer, or it is being removed). */
  | 'RAFT_PROPOSAL_DROPPED'
  /** A membership change is already in flight, or the leader has not yet committed in its term. */
  | 'RAFT_CONF_CHANGE_PENDING'
  /** The membership change is not valid against the current configuration. */
  | 'RAFT_INVALID_CONF_CHANGE'
  /** Bytes handed to a decoder are not a valid encoding. */
  | 'RAFT_DECODE'
  /** The configuration failed validation. */
  | 'RAFT_CONFIG'
  /** Storage: the requested index is older than the first available one (compacted). */
  | 'RAFT_COMPACTED'
  /** Storage: the requested index is beyond the last one. */
  | 'RAFT_UNAVAILABLE'
  /** Storage: the snapshot is older than the one already held. */
  | 'RAFT_SNAPSHOT_OUT_OF_DATE';

/** Every {@link RaftErrorCode}, for exhaustive tables (e.g. the node's HTTP status map). */
export const RAFT_ERROR_CODES: readonly RaftErrorCode[] = [
  'RAFT_NOT_LEADER',
  'RAFT_PROPOSAL_DROPPED',
  'RAFT_CONF_CHANGE_PENDING',
  'RAFT_INVALID_CONF_CHANGE',
  'RAFT_DECODE',
  'RAFT_CONFIG',
  'RAFT_COMPACTED',
  'RAFT_UNAVAILABLE',
  'RAFT_SNAPSHOT_OUT_OF_DATE',
];

/**
 * The one error class of @coffer/raft.
 *
 * @example
 * ```ts
 * try { node.propose(bytes); } catch (e) {
 *   if (e instanceof RaftError && e.code === 'RAFT_NOT_LEADER') redirect(e.leaderId);
 * }
 * ```
 */
export class RaftError extends Error {
  override readonly name: string = 'RaftError';
  /** Stable machine-readable code. */
  readonly code: RaftErrorCode;
  /** For `RAFT_NOT_LEADER`: the leader this node knows of, or null when it knows none. */
  readonly leaderId: string | null;

  /**
   * @param code - the stable error code
   * @param message - human-readable detail (not a contract)
   * @param options - `cause`, and `leaderId` for `RAFT_NOT_LEADER`
   */
  constructor(code: RaftErrorCode, message: string, options?: ErrorOptions & { leaderId?: string | null }) {
    super(message, options);
    this.code = code;
    this.leaderId = options?.leaderId ?? null;
  }
}

/**
 * A broken internal invariant (etcd panics here). The driver must treat it as fatal: the node's
 * state can no longer be trusted.
 */
export class InvariantError extends Error {
  override readonly name: string = 'InvariantError';
}

/**
 * Throws {@link InvariantError} when `cond` is false.
 *
 * @param cond - the condition that must hold
 * @param msg - what broke
 * @throws {InvariantError} when `cond` is false
 */
export function invariant(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new InvariantError(msg);
}
