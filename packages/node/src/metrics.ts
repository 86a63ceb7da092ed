/**
 * The node's Prometheus metrics (prom-client), prefix `coffer_`, one registry per node.
 *
 * Label rules: `route` is the route TEMPLATE (`/v1/secrets/:name`), never the concrete path, so no
 * secret name becomes a label; `token` is a token NAME (operator-chosen, bounded), never a token;
 * `peer` is a member id. Counters end in `_total`, durations are `_seconds`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PEER_REFUSALS } from './peer/auth.js';

/** Latency buckets (seconds) for proposals and HTTP: 0.5 ms .. 10 s. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/** Every metric the node exports, as typed fields. */
export interface CofferMetrics {
  readonly registry: Registry;
  readonly raftTerm: Gauge;
  readonly raftCommitIndex: Gauge;
  readonly raftAppliedIndex: Gauge;
  /** 1 while this node is leader. */
  readonly raftIsLeader: Gauge;
  readonly raftLeaderChanges: Counter;
  /** Snapshots this node (as leader) started sending to lagging followers. */
  readonly raftSnapshotsSent: Counter;
  /** Snapshots from a leader that replaced this node's state. */
  readonly raftSnapshotsInstalled: Counter;
  /** Propose → applied locally; `outcome`: ok | dropped | timeout | not_leader | error. */
  readonly raftProposalDuration: Histogram<'outcome'>;
  /** Failed peer RPCs we sent; `kind`: e.g. connect, timeout, status. */
  readonly peerRpcErrors: Counter<'peer' | 'kind'>;
  readonly peerRequests: Counter<'peer'>;
  readonly peerMessages: Counter<'peer'>;
  readonly peerBytes: Counter<'peer'>;
  /** Incoming peer requests refused by authentication. */
  readonly peerRefusals: Counter<'reason'>;
  readonly httpRequests: Counter<'method' | 'route' | 'status' | 'token'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  /** `op`: generate_data_key | decrypt | re_encrypt | list_key_rotations … */
  readonly kmsDuration: Histogram<'op'>;
  readonly kmsErrors: Counter<'op'>;
  readonly dekCacheHits: Counter;
  readonly dekCacheMisses: Counter;
  readonly dekCacheEvictions: Counter;
  /** Client IPs locked out after repeated auth failures. */
  readonly authLockouts: Counter;
  /** Failed authentications (401s and verify mismatches) that count toward lockout. */
  readonly authFailures: Counter;
  /** Ed25519 logins by outcome: `ok` (a session opened, on the leader), `refused` (where refused). */
  readonly identityLogins: Counter<'outcome'>;
  /** Requests refused by a role rate limit. */
  readonly rateLimited: Counter;
  readonly auditWriteFailures: Counter;
  /** Stored records, blobs, Raft entries or snapshots refused because their tag did not verify. */
  readonly integrityFailures: Counter<'kind'>;
  /**
   * Scheduled snapshots (COFFER_SNAPSHOT_INTERVAL): time of the cluster's last successful one, as
   * this node knows it (its own writes and the replicated record), in Unix seconds; 0 before any.
   */
  readonly snapshotLastSuccess: Gauge;
  /** Size in bytes of the last successful scheduled snapshot. */
  readonly snapshotSizeBytes: Gauge;
  /** Scheduled snapshots this node was to write and could not. */
  readonly snapshotFailures: Counter;
  /** The configured schedule in seconds; 0 when scheduled snapshots are off (for alert rules). */
  readonly snapshotInterval: Gauge;
  /** Rotation target runs (rotation/), by target `type` and `outcome`: ok | invalid | unreachable | refused | timeout. */
  readonly rotationTargetRuns: Counter<'type' | 'outcome'>;
  /** Duration of rotation target runs, by target `type`. */
  readonly rotationTargetDuration: Histogram<'type'>;
  /** Rotations whose new version waits for its target to confirm it (replicated state; no names). */
  readonly rotationPending: Gauge;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Also collect process/GC/event-loop metrics (`coffer_process_*`, …). Default false. */
  readonly collectDefault?: boolean;
}

/**
 * Builds a fresh registry with every metric registered.
 *
 * @param opts - whether to add prom-client's default process metrics
 * @returns the metrics; serve `await metrics.registry.metrics()` on `GET /metrics`
 * @example
 * ```ts
 * const m = createMetrics();
 * m.peerRefusals.inc({ reason: 'replayed' });
 * m.httpRequests.inc({ method: 'GET', route: '/v1/secrets/:name', status: '200', token: '' });
 * ```
 */
export function createMetrics(opts: MetricsOptions = {}): CofferMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.collectDefault === true) collectDefaultMetrics({ register: registry, prefix: 'coffer_' });
  const peerRefusals = new Counter({
    name: 'coffer_peer_refusals_total',
    help: 'Incoming peer requests refused by cluster-key authentication, by reason',
    labelNames: ['reason'] as const,
    registers,
  });
  // Pre-create every reason so dashboards see zeros, not gaps.
  for (const reason of PEER_REFUSALS) peerRefusals.inc({ reason }, 0);
  const rotationTargetRuns = new Counter({
    name: 'coffer_rotation_target_total',
    help: 'Rotation target runs (e.g. ALTER ROLE on PostgreSQL) by target type and outcome',
    labelNames: ['type', 'outcome'] as const,
    registers,
  });
  for (const outcome of ['ok', 'invalid', 'unreachable', 'refused', 'timeout']) rotationTargetRuns.inc({ type: 'postgres', outcome }, 0);
  return {
    registry,
    raftTerm: new Gauge({ name: 'coffer_raft_term', help: 'Current Raft term', registers }),
    raftCommitIndex: new Gauge({ name: 'coffer_raft_commit_index', help: 'Raft commit index', registers }),
    raftAppliedIndex: new Gauge({ name: 'coffer_raft_applied_index', help: 'Raft applied index', registers }),
    raftIsLeader: new Gauge({ name: 'coffer_raft_is_leader', help: '1 while this node is the Raft leader', registers }),
    raftLeaderChanges: new Counter({ name: 'coffer_raft_leader_changes_total', help: 'Leader changes seen by this node', registers }),
    raftSnapshotsSent: new Counter({ name: 'coffer_raft_snapshots_sent_total', help: 'Snapshots sent to followers too far behind to catch up from the log', registers }),
    raftSnapshotsInstalled: new Counter({ name: 'coffer_raft_snapshots_installed_total', help: 'Snapshots received from the leader and installed', registers }),
    raftProposalDuration: new Histogram({
      name: 'coffer_raft_proposal_duration_seconds',
      help: 'Time from proposing a command to its local apply',
      labelNames: ['outcome'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    peerRequests: new Counter({ name: 'coffer_peer_requests_total', help: 'Raft message batches sent to each peer (stream frames, or HTTP requests to a peer without streams)', labelNames: ['peer'] as const, registers }),
    peerMessages: new Counter({ name: 'coffer_peer_messages_total', help: 'Raft messages sent to each peer (many per batch)', labelNames: ['peer'] as const, registers }),
    peerBytes: new Counter({ name: 'coffer_peer_sent_bytes_total', help: 'Bytes of encoded Raft messages sent to each peer', labelNames: ['peer'] as const, registers }),
    peerRpcErrors: new Counter({ name: 'coffer_peer_rpc_errors_total', help: 'Failed outgoing peer RPCs', labelNames: ['peer', 'kind'] as const, registers }),
    peerRefusals,
    httpRequests: new Counter({
      name: 'coffer_http_requests_total',
      help: 'API requests by method, route template, status and token name',
      labelNames: ['method', 'route', 'status', 'token'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'coffer_http_request_duration_seconds',
      help: 'API request duration by method and route template',
      labelNames: ['method', 'route'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    kmsDuration: new Histogram({
      name: 'coffer_kms_request_duration_seconds',
      help: 'KMS call latency by operation',
      labelNames: ['op'] as const,
      buckets: [...LATENCY_BUCKETS],
      registers,
    }),
    kmsErrors: new Counter({ name: 'coffer_kms_errors_total', help: 'Failed KMS calls by operation', labelNames: ['op'] as const, registers }),
    dekCacheHits: new Counter({ name: 'coffer_dek_cache_hits_total', help: 'Unwrapped-DEK cache hits', registers }),
    dekCacheMisses: new Counter({ name: 'coffer_dek_cache_misses_total', help: 'Unwrapped-DEK cache misses', registers }),
    dekCacheEvictions: new Counter({ name: 'coffer_dek_cache_evictions_total', help: 'Unwrapped-DEK cache evictions (TTL or size)', registers }),
    authLockouts: new Counter({ name: 'coffer_auth_lockouts_total', help: 'Client IPs locked out after repeated auth failures', registers }),
    authFailures: new Counter({ name: 'coffer_auth_failures_total', help: 'Authentication failures counted toward lockout', registers }),
    identityLogins: new Counter({ name: 'coffer_identity_logins_total', help: 'Ed25519 identity logins by outcome (ok: a session opened; refused)', labelNames: ['outcome'] as const, registers }),
    rateLimited: new Counter({ name: 'coffer_http_rate_limited_total', help: 'Requests refused by a role rate limit', registers }),
    auditWriteFailures: new Counter({ name: 'coffer_audit_write_failures_total', help: 'Audit lines that could not be written or synced', registers }),
    integrityFailures: new Counter({
      name: 'coffer_integrity_failures_total',
      help: 'Stored records (kind record, blob, raft_entry, raft_state), snapshots or sealed values (kind value) refused because their integrity check failed',
      labelNames: ['kind'] as const,
      registers,
    }),
    snapshotLastSuccess: new Gauge({
      name: 'coffer_snapshot_last_success_timestamp_seconds',
      help: 'Unix time of the last successful scheduled snapshot in the cluster, as this node knows it (0 before any)',
      registers,
    }),
    snapshotSizeBytes: new Gauge({ name: 'coffer_snapshot_size_bytes', help: 'Size of the last successful scheduled snapshot file', registers }),
    snapshotFailures: new Counter({ name: 'coffer_snapshot_failures_total', help: 'Scheduled snapshots this node was to write and could not', registers }),
    snapshotInterval: new Gauge({ name: 'coffer_snapshot_interval_seconds', help: 'Configured scheduled-snapshot interval (COFFER_SNAPSHOT_INTERVAL); 0 when off', registers }),
    rotationTargetRuns,
    rotationTargetDuration: new Histogram({
      name: 'coffer_rotation_target_duration_seconds',
      help: 'Duration of rotation target runs by target type',
      labelNames: ['type'] as const,
      buckets: [...LATENCY_BUCKETS, 30, 60],
      registers,
    }),
    rotationPending: new Gauge({ name: 'coffer_rotation_pending', help: 'Rotations whose new version waits for its rotation target to confirm it', registers }),
  };
}
