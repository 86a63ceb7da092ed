/**
 * What the HTTP layer sees of a running node, split by concern. server.ts builds it; the routes
 * use nothing else.
 *
 * The split keeps the routes free of Raft and storage details: a route authenticates, authorises,
 * validates, then either reads local state (after `readBarrier` for linearizable reads) or builds
 * a command and calls `propose`. Everything that must happen on the leader happens inside
 * `propose`; a follower's routes call `forwardToLeader` first for writes — except the routes
 * that run where they arrive (`proposeHere`), whose commands a follower hands to the leader
 * through Raft (`propose(cmd, {viaLeader: true})`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Envelopes, KeyProvider } from '@coffer/crypto';
import type { ConfState, Status } from '@coffer/raft';
import type { Command, CommandResult, SealedValue, StateMachine } from '@coffer/state';
import type { AuditLog } from './audit/audit-log.js';
import type { Lockout } from './auth/lockout.js';
import type { ServerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { NodeSeal } from './seal/node-seal.js';
import type { CofferMetrics } from './metrics.js';

/** Consistency of a read. */
export type ReadConsistency = 'linearizable' | 'stale';

/** One member as the cluster API reports it. */
export interface MemberView {
  id: string;
  raftAddr: string;
  apiAddr: string;
  suffrage: 'voter' | 'learner';
  /** Leader's view of replication; null on followers or for the leader itself. */
  matchIndex: number | null;
  /** Recently heard from (leader's view; on followers: known to the leader). */
  healthy: boolean;
}

/** What every part of the node carries: settings, logs, metrics, audit, clock. */
export interface NodeEnvironment {
  readonly config: Readonly<ServerConfig>;
  readonly logger: Logger;
  readonly metrics: CofferMetrics;
  readonly audit: AuditLog;
  /** The node's clock (ms). Commands carry the proposer's time in `at`. */
  now(): number;
}

/** Local reads: the replicated state, sealed values, the keys that open them, and the read barrier. */
export interface ReadPath {
  /** Seals and opens secret values (KMS + DEK cache behind it). */
  readonly envelopes: Envelopes;
  readonly kms: KeyProvider;
  /**
   * The replicated state (synchronous queries). NB: a snapshot install replaces the object, so
   * read this property each time; never keep the reference.
   */
  readonly state: StateMachine;
  /** Sealed bytes of one version, from LevelDB. */
  readSealed(name: string, version: number): Promise<SealedValue | undefined>;
  /**
   * Waits until local state reflects every write acknowledged before the call (ReadIndex); a
   * no-op for `stale`.
   *
   * @throws {ServiceError} `no_quorum` / `no_leader` (503 with Retry-After)
   */
  readBarrier(consistency: ReadConsistency): Promise<void>;
}

/** Writes: one command through Raft, answered with its apply result. */
export interface Proposer {
  /**
   * Proposes a command (leader only) and resolves with its apply result.
   *
   * @throws {ServiceError} `no_leader`, `no_quorum`, `outcome_unknown`, `shutting_down`,
   *   `upgrade_pending`, `invalid_request`, `internal`
   */
  propose(cmd: Command, opts?: ProposeOptions): Promise<CommandResult>;
  /**
   * Whether this follower can hand proposals to the leader it knows now (that leader said in its
   * hello answer that it takes them); false on the leader.
   */
  canProposeViaLeader(): boolean;
}

/** How {@link Proposer.propose} proposes. */
export interface ProposeOptions {
  /**
   * On a follower whose leader takes them ({@link Proposer.canProposeViaLeader}), hand the command
   * to the leader through Raft and wait for it to apply here (a fresh, non-empty `requestId`
   * recognises it) instead of refusing with `no_leader`. Only for a request this node authorised
   * after a read barrier and audits itself (see http/pipeline.ts).
   */
  readonly viaLeader?: boolean;
}

/** Who leads and who the members are (read-only). */
export interface ClusterView {
  /** Whether this node is the leader now. */
  isLeader(): boolean;
  /** The known leader's id, or null. */
  leaderId(): string | null;
  /** The known leader's API origin (e.g. `http://127.0.0.1:8200`), or undefined. */
  leaderApiAddr(): string | undefined;
  /** Raft status: term, commit, applied, role, leader's progress map. */
  raftStatus(): Status;
  /** Current membership. */
  confState(): ConfState;
  /** Members with addresses, suffrage, match index and health. */
  members(): MemberView[];
}

/** Changes to the cluster itself (`cluster.manage`). */
export interface ClusterAdmin {
  /** Adds a member as a learner; the node promotes it to voter once it has caught up. */
  addMember(id: string, raftAddr: string, apiAddr: string): Promise<void>;
  /** Removes a member (the leader itself too). */
  removeMember(id: string): Promise<void>;
  /** Hands leadership to `to` (or the most up-to-date voter) and waits until it has moved. */
  transferLeadership(to: string | undefined): Promise<string>;
  /** A consistent snapshot of the replicated state (sealed; ciphertext only). */
  snapshot(): Promise<{ index: number; term: number; data: Uint8Array }>;
}

/** A follower's requests to the leader, and what a forwarded request may claim. */
export interface Forwarding {
  /**
   * Sends an authorised request to the leader's API and pipes the answer back (a follower's
   * writes). What is sent is signed with the cluster key: method, `target.path` exactly as sent,
   * the body's hash, the original client IP, time and sender. The leader authorises and audits it
   * again. Resolves when the response has been sent.
   *
   * @param target - the canonical path and query to send to, and the body already read
   * @throws {ServiceError} `no_leader` when no leader is known or it cannot be reached
   */
  forwardToLeader(req: IncomingMessage, res: ServerResponse, target: { readonly path: string; readonly body: Uint8Array | undefined }): Promise<void>;
  /**
   * The client IP of a request: the socket's, a trusted proxy's `X-Forwarded-For` entry
   * (COFFER_TRUST_PROXY / COFFER_TRUSTED_PROXIES), or the signed original IP of a request a member
   * forwarded.
   *
   * @throws {ServiceError} `invalid_forward` (401) when a request claims to be forwarded by a
   *   member but its signature does not verify: never a fallback to the socket's address
   */
  clientIp(req: IncomingMessage): string | undefined;
  /**
   * Checks the body of a forwarded request against the hash its signature covers (a no-op for a
   * request that was not forwarded).
   *
   * @throws {ServiceError} `invalid_forward` when the body is not the one that was signed
   */
  checkForwardedBody(req: IncomingMessage, body: Uint8Array): void;
}

/** Guards the request pipeline consults before a handler runs. */
export interface RequestGuards {
  /** Cluster-wide lockout of addresses after repeated authentication failures. */
  readonly lockout: Lockout;
}

/** The leader's background workers, as routes reach them. */
export interface WorkerControls {
  /** Asks the leader's re-wrap worker for a pass now; false when the worker is disabled. */
  requestRewrapPass(): boolean;
  /** Where the scheduled snapshots (COFFER_SNAPSHOT_INTERVAL) stand, for `GET /v1/cluster`. */
  snapshotSchedule(): SnapshotScheduleStatus;
}

/** Whether the node serves at all (health, draining, removal). */
export interface Lifecycle {
  /** Whether this node is shutting down (draining): health answers 503 so balancers move on. */
  isClosing(): boolean;
  /**
   * Whether this node can serve now (health's `ready`): it knows the leader and its API address,
   * has caught up with what the leader had committed when it learned of it, holds the seeds its
   * configuration plants, and is a voter.
   */
  isReady(): boolean;
  /** Whether this node has been removed from the cluster (health must never say 200). */
  isRemoved(): boolean;
}

/** The sealed start (COFFER_SEAL=shamir). */
export interface SealControl {
  /** This node's seal; absent when the cluster is not sealed (COFFER_SEAL=none). */
  readonly seal?: NodeSeal;
}

/**
 * The running node, as the HTTP layer uses it: every concern above in one object (server.ts
 * builds it from the parts that implement each; see node-context.ts). A part that needs only one
 * concern takes that interface, not this one.
 */
export interface NodeContext extends NodeEnvironment, ReadPath, Proposer, ClusterView, ClusterAdmin, Forwarding, RequestGuards, WorkerControls, Lifecycle, SealControl {}

/** `GET /v1/cluster`'s `snapshots` object. */
export interface SnapshotScheduleStatus {
  enabled: boolean;
  intervalSecs: number;
  dir: string;
  retain: number;
  /** ISO time of the cluster's last successful scheduled snapshot, or null. */
  lastSuccessAt: string | null;
  lastIndex: number | null;
  lastSizeBytes: number | null;
  /** The member that wrote it (the file is in that member's directory). */
  lastNode: string | null;
  /** Its file name, when this node wrote it. */
  lastFile: string | null;
  lastError: string | null;
  failures: number;
  /** ISO time of the next slot (null when off or before the first). */
  nextAt: string | null;
}
