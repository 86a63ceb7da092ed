import { RaftError } from './errors.js';
import type { Logger, NodeId } from './types.js';

/** Settings of one raft node. Times are in ticks: the driver decides how long a tick is. */
export interface Config {
  /** This node's id; must not be empty. */
  id: NodeId;
  /**
   * Base election timeout. A follower that hears no leader for a random number of ticks in
   * [electionTicks, electionTicks + electionJitterTicks) starts an election. Must exceed
   * `heartbeatTicks`.
   */
  electionTicks: number;
  /**
   * Width of the random part of the election timeout. Default `electionTicks` (etcd's
   * [electionTicks, 2 * electionTicks)); a narrower range bounds how long a cluster stays without
   * a leader after losing one, at a slightly higher chance of a split vote.
   */
  electionJitterTicks?: number;
  /** The leader sends heartbeats every `heartbeatTicks` ticks. */
  heartbeatTicks: number;
  /** Seeded random source in [0, 1), used only for election timeouts. */
  rng: () => number;
  /** Run a pre-election first, so a node rejoining from a partition cannot bump the term. Default true. */
  preVote?: boolean;
  /** Leader steps down when it has not heard from a quorum within an election timeout. Default true. */
  checkQuorum?: boolean;
  /** Upper bound on entry data bytes per MsgApp (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Bound on unacknowledged MsgApp per follower in the replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Bound on unacknowledged entry bytes per follower; 0 means unbounded. Default 0. */
  maxInflightBytes?: number;
  /** Size of one MsgSnap chunk. Default 1 MiB. */
  maxSnapshotChunkBytes?: number;
  /** Chunks of one snapshot transfer in flight at a time. Default 4. */
  maxSnapshotChunksInflight?: number;
  /** Index already applied by the state machine when restarting; committed entries above it are re-delivered. */
  applied?: number;
  /** Optional logger; silent by default. */
  logger?: Logger;
  /**
   * Test-only fault injection. Never set in production: each flag breaks a safety rule on purpose
   * so the simulator can show it notices.
   */
  testingKnobs?: { skipVoteLogCheck?: boolean };
}

/** {@link Config} with defaults filled in. */
export interface ResolvedConfig {
  id: NodeId;
  electionTicks: number;
  electionJitterTicks: number;
  heartbeatTicks: number;
  rng: () => number;
  preVote: boolean;
  checkQuorum: boolean;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  maxSnapshotChunkBytes: number;
  maxSnapshotChunksInflight: number;
  applied: number;
  logger: Logger;
  skipVoteLogCheck: boolean;
}

const silent: Logger = { debug() {}, info() {}, warn() {} };

function positiveInt(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RaftError('RAFT_CONFIG', `${what} must be a positive integer`);
}

/**
 * Checks a {@link Config} the way etcd's `Config.validate` does and fills in defaults.
 *
 * @param c - the configuration to check
 * @returns the configuration with every default filled in
 * @throws {RAFT_CONFIG} with a readable message naming the first bad field
 * @example
 * ```ts
 * validateConfig({ id: 'n1', electionTicks: 10, heartbeatTicks: 1, rng: seeded(1) });
 * ```
 */
export function validateConfig(c: Config): ResolvedConfig {
  if (typeof c.id !== 'string' || c.id === '') throw new RaftError('RAFT_CONFIG', 'cannot use an empty string as id');
  positiveInt(c.heartbeatTicks, 'heartbeat tick');
  positiveInt(c.electionTicks, 'election tick');
  if (c.electionTicks <= c.heartbeatTicks) {
    throw new RaftError('RAFT_CONFIG', 'election tick must be greater than heartbeat tick');
  }
  if (c.electionJitterTicks !== undefined) positiveInt(c.electionJitterTicks, 'election jitter tick');
  if (typeof c.rng !== 'function') throw new RaftError('RAFT_CONFIG', 'rng must be a function returning [0, 1)');
  const r: ResolvedConfig = {
    id: c.id,
    electionTicks: c.electionTicks,
    electionJitterTicks: c.electionJitterTicks ?? c.electionTicks,
    heartbeatTicks: c.heartbeatTicks,
    rng: c.rng,
    preVote: c.preVote ?? true,
    checkQuorum: c.checkQuorum ?? true,
    maxSizePerMsg: c.maxSizePerMsg ?? 1024 * 1024,
    maxInflightMsgs: c.maxInflightMsgs ?? 256,
    maxInflightBytes: c.maxInflightBytes ?? 0,
    maxSnapshotChunkBytes: c.maxSnapshotChunkBytes ?? 1024 * 1024,
    maxSnapshotChunksInflight: c.maxSnapshotChunksInflight ?? 4,
    applied: c.applied ?? 0,
    logger: c.logger ?? silent,
    skipVoteLogCheck: c.testingKnobs?.skipVoteLogCheck === true,
  };
  positiveInt(r.maxSizePerMsg, 'max size per msg');
  positiveInt(r.maxInflightMsgs, 'max inflight messages');
  if (!Number.isSafeInteger(r.maxInflightBytes) || r.maxInflightBytes < 0) {
    throw new RaftError('RAFT_CONFIG', 'max inflight bytes must be a non-negative integer (0 = unbounded)');
  }
  if (r.maxInflightBytes !== 0 && r.maxInflightBytes < r.maxSizePerMsg) {
    throw new RaftError('RAFT_CONFIG', 'max inflight bytes must be >= max message size');
  }
  positiveInt(r.maxSnapshotChunkBytes, 'max snapshot chunk bytes');
  positiveInt(r.maxSnapshotChunksInflight, 'max snapshot chunks inflight');
  if (!Number.isSafeInteger(r.applied) || r.applied < 0) throw new RaftError('RAFT_CONFIG', 'applied must be a non-negative integer');
  return r;
}
