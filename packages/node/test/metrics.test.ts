import { createMetrics } from '../src/metrics.js';

describe('createMetrics', () => {
  test('every metric is registered with the coffer_ prefix', async () => {
    const m = createMetrics();
    m.raftTerm.set(3);
    m.raftCommitIndex.set(10);
    m.raftAppliedIndex.set(9);
    m.raftLeaderChanges.inc();
    m.raftProposalDuration.observe({ outcome: 'ok' }, 0.003);
    m.peerRpcErrors.inc({ peer: 'n2', kind: 'timeout' });
    m.peerRefusals.inc({ reason: 'replayed' });
    m.httpRequests.inc({ method: 'GET', route: '/v1/secrets/:name', status: '200', token: '' });
    m.httpDuration.observe({ method: 'GET', route: '/v1/secrets/:name' }, 0.001);
    m.kmsDuration.observe({ op: 'decrypt' }, 0.02);
    m.kmsErrors.inc({ op: 'decrypt' });
    m.dekCacheHits.inc();
    m.dekCacheMisses.inc();
    m.dekCacheEvictions.inc();
    m.authLockouts.inc();
    m.auditWriteFailures.inc();
    m.raftSnapshotsSent.inc();
    m.raftSnapshotsInstalled.inc();
    const text = await m.registry.metrics();
    for (const name of [
      'coffer_raft_term 3',
      'coffer_raft_commit_index 10',
      'coffer_raft_applied_index 9',
      'coffer_raft_leader_changes_total 1',
      'coffer_raft_proposal_duration_seconds_bucket{le="0.005",outcome="ok"} 1',
      'coffer_peer_rpc_errors_total{peer="n2",kind="timeout"} 1',
      'coffer_peer_refusals_total{reason="replayed"} 1',
      'coffer_peer_refusals_total{reason="bad_signature"} 0',
      'coffer_http_requests_total{method="GET",route="/v1/secrets/:name",status="200",token=""} 1',
      'coffer_http_request_duration_seconds_count{method="GET",route="/v1/secrets/:name"} 1',
      'coffer_kms_request_duration_seconds_count{op="decrypt"} 1',
      'coffer_kms_errors_total{op="decrypt"} 1',
      'coffer_dek_cache_hits_total 1',
      'coffer_dek_cache_misses_total 1',
      'coffer_dek_cache_evictions_total 1',
      'coffer_auth_lockouts_total 1',
      'coffer_audit_write_failures_total 1',
      'coffer_raft_snapshots_sent_total 1',
      'coffer_raft_snapshots_installed_total 1',
    ]) {
      expect(text).toContain(name);
    }
    for (const line of text.split('\n')) {
      if (line.startsWith('# HELP ')) expect(line.slice(7)).toMatch(/^coffer_/);
    }
  });

  test('registries are independent (one per node in a test process)', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.raftTerm.set(5);
    expect(await b.registry.metrics()).toContain('coffer_raft_term 0');
  });

  test('default process metrics are opt-in and prefixed', async () => {
    const m = createMetrics({ collectDefault: true });
    expect(await m.registry.metrics()).toContain('coffer_process_cpu_user_seconds_total');
  });
});
