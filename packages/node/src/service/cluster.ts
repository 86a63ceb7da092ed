/**
 * Cluster administration and health: status, membership, leadership transfer, snapshots,
 * restore through consensus, and the health answer load balancers poll.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { StateError, versionFloorOf } from '@coffer/state';
import type { NodeContext } from '../context.js';
import { ServiceError } from './errors.js';
import { commandId } from './common.js';
import { expectOk } from './results.js';

/** This build's version, reported by the health route. */
export const NODE_VERSION: string = ((): string => {
  try {
    // src/service and dist/service both sit two levels below the package root.
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** Health answer: HTTP status and body. */
export interface HealthAnswer {
  readonly status: number;
  readonly body: {
    initialized: boolean;
    standby: boolean;
    leader: string | null;
    term: number;
    version: string;
    /** Vault's fields, so Vault clients' health checks read it: never sealed (no unseal step). */
    sealed: boolean;
    performance_standby: boolean;
    server_time_utc: number;
    cluster_name: string;
    /** Whether this node can serve now (CONTRACT.md, "Health means ready"). */
    ready: boolean;
  };
}

/**
 * Health per CONTRACT.md: 200 on the leader; 429 on a follower (200 with `standbyok`); 503 with
 * `"ready": false` until the node can serve (see readiness.ts: leader and its API address known,
 * caught up, seeds applied, a voter), and when it was removed or is shutting down. A removed node
 * never answers 200.
 *
 * @param ctx - the node
 * @param standbyOk - `?standbyok=true`
 * @returns status and body
 */
export function health(ctx: NodeContext, standbyOk: boolean): HealthAnswer {
  const st = ctx.raftStatus();
  const leader = ctx.leaderId();
  const removed = ctx.isRemoved();
  const isLeader = !removed && ctx.isLeader();
  const sealed = ctx.seal?.isSealed() === true;
  const ready = !removed && !sealed && !ctx.isClosing() && ctx.isReady();
  const body = {
    initialized: st.confState.voters.length > 0,
    standby: !isLeader,
    leader,
    term: st.term,
    version: NODE_VERSION,
    sealed,
    performance_standby: false,
    server_time_utc: Math.floor(ctx.now() / 1000),
    cluster_name: 'coffer',
    ready,
  };
  let status: number;
  if (!ready || leader === null) status = 503;
  else if (isLeader) status = 200;
  else status = standbyOk ? 200 : 429;
  return { status, body };
}

const URL_RE = /^https?:\/\/[^\s/?#]+$/;

/**
 * Checks a member address: an http(s) origin without path.
 *
 * @param field - field name for the message
 * @param value - the value
 * @returns the origin
 * @throws {ServiceError} `invalid_request`
 */
export function checkOrigin(field: string, value: unknown): string {
  if (typeof value !== 'string' || !URL_RE.test(value)) {
    throw new ServiceError('invalid_request', `"${field}" must be an http(s) origin such as http://10.0.0.4:8201`);
  }
  try {
    return new URL(value).origin;
  } catch {
    throw new ServiceError('invalid_request', `"${field}" is not a valid URL`);
  }
}

/** Cluster operations of one node. */
export class ClusterService {
  private readonly ctx: NodeContext;

  /** @param ctx - the running node */
  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  /**
   * @returns `GET /v1/cluster`'s body
   */
  status(): Record<string, unknown> {
    const st = this.ctx.raftStatus();
    return {
      id: this.ctx.config.nodeId,
      leader: this.ctx.leaderId(),
      term: st.term,
      commitIndex: st.commit,
      appliedIndex: st.applied,
      members: this.ctx.members(),
      snapshots: this.ctx.snapshotSchedule(),
      // Upgrade gating: the members whose command versions are replicated (cluster.versions), so
      // a leader may propose what they all apply even while one of them is down.
      commandFloor: ((f) => (f === undefined ? null : { members: f.members, at: new Date(f.at).toISOString() }))(versionFloorOf(this.ctx.state)),
    };
  }

  /**
   * Whether `id` is a member (voter or learner).
   *
   * @param id - member id
   * @returns true when it is in the configuration
   */
  isMember(id: string): boolean {
    const cs = this.ctx.confState();
    return cs.voters.includes(id) || cs.learners.includes(id);
  }

  /**
   * Validates a restore body before it goes through consensus (a bad blob never enters the log),
   * then replaces the replicated state on every node.
   *
   * @param blob - snapshot bytes as downloaded from `GET /v1/cluster/snapshot`
   * @returns the number of secrets restored
   * @throws {ServiceError} `invalid_snapshot` for a blob that is not authentic (edited, or made by
   *   a cluster with another key), is in an unauthenticated older format, or does not decode
   */
  async restore(blob: Uint8Array): Promise<number> {
    if (blob.length === 0) throw new ServiceError('invalid_request', 'the body must be a snapshot (application/octet-stream)');
    let sealKeyId: string | undefined;
    try {
      sealKeyId = this.ctx.state.checkSnapshot(blob).seal?.keyId;
    } catch (err) {
      throw snapshotRefusal(err);
    }
    // A sealed cluster (COFFER_SEAL=shamir) opens only DEKs wrapped under its own master key: a
    // snapshot made under another (another init, or a cluster without a sealed start) would
    // restore data no share opens.
    const ours = this.ctx.seal?.keyId();
    if (ours !== undefined && sealKeyId !== ours) {
      throw new ServiceError('invalid_snapshot', 'this snapshot was made under another master key than this sealed cluster\'s (another init, or a cluster without COFFER_SEAL=shamir); it is refused');
    }
    const res = expectOk(await this.ctx.propose({ type: 'state.restore', requestId: commandId(), at: this.ctx.now(), snapshot: blob }));
    return res.count ?? 0;
  }

  /**
   * @returns the re-wrap status body
   */
  rewrapStatus(): Record<string, unknown> {
    const wm = this.ctx.state.getWatermark();
    const progress = wm === null ? { done: 0, pending: 0 } : this.ctx.state.rewrapProgress(wm.marker);
    const running = wm !== null && wm.passStartedAt !== null && (wm.passFinishedAt === null || wm.passFinishedAt < wm.passStartedAt);
    return {
      enabled: this.ctx.config.kmsRewrapEnabled,
      running,
      watermark: wm === null ? null : wm.marker,
      pending: progress.pending,
      done: progress.done,
      lastPassAt: wm?.passFinishedAt === null || wm === null ? null : new Date(wm.passFinishedAt).toISOString(),
    };
  }
}

/**
 * The API error for a snapshot `checkSnapshot` refused (never echoes the blob).
 *
 * @param err - what `checkSnapshot` threw
 * @returns the `invalid_snapshot` error to throw
 */
export function snapshotRefusal(err: unknown): ServiceError {
  if (err instanceof StateError && err.code === 'SM_SNAPSHOT_NOT_AUTHENTIC') {
    return new ServiceError('invalid_snapshot', 'the snapshot is not authentic: it was edited or comes from a cluster with another key', { cause: err });
  }
  if (err instanceof StateError && err.code === 'SM_UNSUPPORTED_SNAPSHOT') return new ServiceError('invalid_snapshot', err.message, { cause: err });
  return new ServiceError('invalid_snapshot', 'the body is not a valid Coffer snapshot', { cause: err });
}
