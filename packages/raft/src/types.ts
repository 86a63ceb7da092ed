/** Identifies a member of the cluster, e.g. `'n1'`. */
export type NodeId = string;

/** Kind of a log entry. The leader's empty entry at the start of its term is a 'normal' entry. */
export type EntryType = 'normal' | 'confChange';

/** One log entry. `data` is opaque to raft (a `confChange` entry holds an encoded {@link ConfChange}). */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** State that must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId | null;
  commit: number;
}

/** Volatile state, reported so the driver can notice leader changes. */
export interface SoftState {
  lead: NodeId | null;
  raftState: RaftRole;
}

/** Role of a node. */
export type RaftRole = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** A membership configuration: voters decide elections and commits; learners only replicate. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/** What a snapshot covers. */
export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

/** A state-machine snapshot: `data` is opaque bytes produced by the driver's state machine. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

/** One chunk of a snapshot in flight from a leader to a lagging follower (see MsgSnap). */
export interface SnapshotChunk {
  meta: SnapshotMeta;
  /** Byte offset of `data` within the whole snapshot. */
  offset: number;
  /** Size of the whole snapshot's data. */
  totalBytes: number;
  data: Uint8Array;
}

/** A single-server membership change. */
export type ConfChangeType = 'addLearner' | 'addVoter' | 'remove';

/**
 * A single-server membership change. `addVoter` promotes a learner or adds a voter directly.
 * `context` is opaque (the node stores the member's addresses there) and comes back unchanged in
 * the committed confChange entry.
 */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context: Uint8Array;
}

/**
 * Message kinds; `MsgHup`, `MsgBeat` and `MsgUnreachable` are local and never sent. `MsgProp`
 * carries a follower's proposal to the leader (`entries` without term or index; see
 * `RawNode.proposeViaLeader`).
 */
export type MessageType =
  | 'MsgHup'
  | 'MsgBeat'
  | 'MsgApp'
  | 'MsgAppResp'
  | 'MsgVote'
  | 'MsgVoteResp'
  | 'MsgPreVote'
  | 'MsgPreVoteResp'
  | 'MsgSnap'
  | 'MsgSnapResp'
  | 'MsgHeartbeat'
  | 'MsgHeartbeatResp'
  | 'MsgTransferLeader'
  | 'MsgTimeoutNow'
  | 'MsgReadIndex'
  | 'MsgReadIndexResp'
  | 'MsgUnreachable'
  | 'MsgProp';

/**
 * A raft message. Every field is always present (zero values when unused) so the codec and the
 * handlers never have to guess; `snapshot` is set only on MsgSnap.
 */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** MsgApp: term of the entry at `index`; MsgAppResp reject: term at `rejectHint`; votes: last log term. */
  logTerm: number;
  /** MsgApp: index preceding `entries`; responses: the acknowledged/rejected index; votes: last index. */
  index: number;
  commit: number;
  entries: Entry[];
  reject: boolean;
  /** MsgAppResp reject: the follower's hint for the leader's next probe; MsgSnapResp: bytes received. */
  rejectHint: number;
  /** ReadIndex request/heartbeat context, or the transfer marker on a forced vote. */
  context: Uint8Array;
  snapshot?: SnapshotChunk;
}

/** A linearizable read point: once `applied >= index`, reads tagged `context` may be served. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * Everything the driver must do, in this order (etcd-io/raft `node.go`):
 *
 * 1. Persist `hardState`, `entries` and `snapshot` to stable storage (one atomic write; fsync when
 *    `mustSync`). Entries replace any stored entries at the same or higher index.
 * 2. Only THEN send `messages`: a vote or an append acknowledgement in them promises that the
 *    state above is durable.
 * 3. Install `snapshot` into the state machine (if any), then apply `committedEntries` in order,
 *    calling `applyConfChange` for each confChange entry.
 * 4. Call `advance()` before the next `ready()`.
 */
export interface Ready {
  /** Set when the leader or role changed since the last Ready. */
  softState?: SoftState;
  /** Set when term, vote or commit changed; persist BEFORE sending messages. */
  hardState?: HardState;
  /** Entries to append to stable storage BEFORE sending messages. */
  entries: Entry[];
  /** A snapshot to persist (and install) BEFORE sending messages. */
  snapshot?: Snapshot;
  /** Entries committed by the cluster and now safe to apply (after persisting the above). */
  committedEntries: Entry[];
  /** Messages to send after persisting. Losing, duplicating or reordering them is safe. */
  messages: Message[];
  /** Completed ReadIndex requests. */
  readStates: ReadState[];
  /** Whether the persist step must be synced to disk (term, vote or entries changed). */
  mustSync: boolean;
}

/** Replication progress of one peer, as seen by the leader. */
export interface PeerProgress {
  matchIndex: number;
  nextIndex: number;
  state: 'probe' | 'replicate' | 'snapshot';
  isLearner: boolean;
  recentActive: boolean;
}

/** A snapshot of a node's state for diagnostics and the cluster API. */
export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  lead: NodeId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  raftState: RaftRole;
  /**
   * The configuration in force: the latest one in this node's log, possibly not yet committed or
   * applied. For snapshots use `RawNode.appliedConfState()`.
   */
  confState: ConfState;
  leadTransferee: NodeId | null;
  /** Present on the leader only. */
  progress?: Record<NodeId, PeerProgress>;
}

/** Injected logging; raft never writes anywhere itself. Messages never carry entry data. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}
