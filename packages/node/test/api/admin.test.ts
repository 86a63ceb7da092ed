// Roles, allowlist, KMS, cluster, health and metrics routes over real HTTP (single-node path).
import { startHarness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.close();
});

describe('allowlist, single-node path', () => {
  test('IPv4, IPv6 and IPv4-mapped clients; spoofed X-Forwarded-For ignored with trust-proxy off', async () => {
    h = await startHarness({ cidrs: ['127.0.0.1/32'] });
    await h.req('PUT', '/v1/secrets/al', { body: { value: 'v' } });
    // The server listens on "::", so 127.0.0.1 arrives as ::ffff:127.0.0.1 and is normalised.
    expect((await h.req('GET', '/v1/secrets/al', { token: null })).status).toBe(200);
    const v6 = await h.req('GET', '/v1/secrets/al', { token: null, host: `http://[::1]:${h.port}` });
    expect([v6.status, v6.body.error.code]).toEqual([403, 'not_allowlisted']);
    await h.req('PUT', '/v1/allowlist', { body: { cidrs: ['::1'] } });
    expect((await h.req('GET', '/v1/secrets/al', { token: null, host: `http://[::1]:${h.port}` })).status).toBe(200);
    expect((await h.req('GET', '/v1/secrets/al', { token: null })).status).toBe(403);
    const spoof = await h.req('GET', '/v1/secrets/al', { token: null, headers: { 'x-forwarded-for': '::1' } });
    expect(spoof.status).toBe(403);
    expect((await h.req('GET', '/metrics', { token: null })).status).toBe(403);
    const lines = h.auditLines().filter((l) => l.action === 'secret.read');
    expect(lines.some((l) => l.status === 403 && l.outcome === 'denied' && l.resource === 'al')).toBe(true);
  });

  test('empty list denies every read; bad entries are named in a 400', async () => {
    h = await startHarness({ cidrs: [] });
    await h.req('PUT', '/v1/secrets/e', { body: { value: 'v' } });
    expect((await h.req('GET', '/v1/secrets/e')).status).toBe(403);
    expect((await h.req('POST', '/v1/batch/secrets', { body: { names: ['e'] } })).status).toBe(403);
    const bad = await h.req('PUT', '/v1/allowlist', { body: { cidrs: ['10.0.0.0/8', '300.1.1.1', 'fe80::/200'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('"300.1.1.1"');
    expect(bad.body.error.message).toContain('"fe80::/200"');
    const ok = await h.req('PUT', '/v1/allowlist', { body: { cidrs: ['10.0.0.7/8', '127.0.0.0/8'] } });
    expect(ok.body).toEqual({ cidrs: ['10.0.0.0/8', '127.0.0.0/8'] });
    expect((await h.req('GET', '/v1/allowlist')).body).toEqual({ cidrs: ['10.0.0.0/8', '127.0.0.0/8'] });
    expect((await h.req('GET', '/v1/secrets/e')).status).toBe(200);
  });

  test('trust-proxy on: the left-most X-Forwarded-For entry is the client', async () => {
    h = await startHarness({ cidrs: ['10.9.0.0/16'], env: { COFFER_TRUST_PROXY: 'true' } });
    await h.req('PUT', '/v1/secrets/p', { body: { value: 'v' } });
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.9.1.2, 127.0.0.1' } })).status).toBe(200);
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.8.1.2' } })).status).toBe(403);
    expect((await h.req('GET', '/v1/secrets/p')).status).toBe(403);
  });
});

describe('roles, single-node path', () => {
  test('put, get, list, delete; admin immutable; role in use', async () => {
    h = await startHarness();
    const doc = { rules: [{ paths: ['payments/*'], actions: ['secret.write'] }], rateLimit: '100/m' };
    expect((await h.req('PUT', '/v1/roles/payments', { body: doc })).body).toEqual({ name: 'payments', ...doc });
    expect((await h.req('GET', '/v1/roles/payments')).body).toMatchObject({ name: 'payments', ...doc, builtIn: false });
    expect((await h.req('GET', '/v1/roles')).body.roles.map((r: { name: string }) => r.name)).toEqual(['admin', 'payments']);
    expect((await h.req('GET', '/v1/roles/admin')).body.builtIn).toBe(true);
    const bad = await h.req('PUT', '/v1/roles/x', { body: { rules: [{ paths: ['a'], actions: ['secret.reed'] }] } });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_request']);
    expect(bad.body.error.message).toContain('rules[0].actions[0]');
    for (const [m, body] of [['PUT', doc], ['DELETE', undefined]] as const) {
      const r = await h.req(m, '/v1/roles/admin', body === undefined ? {} : { body });
      expect([r.status, r.body.error.code]).toEqual([400, 'immutable_role']);
    }
    await h.req('POST', '/v1/tokens', { body: { name: 'pay', role: 'payments' } });
    const inUse = await h.req('DELETE', '/v1/roles/payments');
    expect([inUse.status, inUse.body.error.code]).toEqual([409, 'role_in_use']);
    await h.req('DELETE', '/v1/tokens/pay');
    expect((await h.req('DELETE', '/v1/roles/payments')).status).toBe(200);
    expect((await h.req('GET', '/v1/roles/payments')).status).toBe(404);
    expect((await h.req('DELETE', '/v1/roles/payments')).status).toBe(404);
  });
});

describe('cluster, KMS, health and metrics, single-node path', () => {
  test('health: 200 leader, 429 follower, 200 standbyok, 503 without leader, when removed or shutting down', async () => {
    h = await startHarness();
    const ok = await h.req('GET', '/v1/sys/health', { token: null });
    expect([ok.status, ok.body]).toEqual([200, { initialized: true, standby: false, leader: 'n1', term: 4, version: expect.any(String), sealed: false, performance_standby: false, server_time_utc: expect.any(Number), cluster_name: 'coffer' }]);
    h.leader.is = false;
    h.leader.leaderId = 'n2';
    expect((await h.req('GET', '/v1/sys/health')).status).toBe(429);
    expect((await h.req('GET', '/v1/sys/health?standbyok=true')).status).toBe(200);
    h.leader.leaderId = null;
    expect((await h.req('GET', '/v1/sys/health?standbyok=true')).status).toBe(503);
    h.leader.is = true;
    h.leader.leaderId = 'n1';
    h.leader.removed = true;
    expect((await h.req('GET', '/v1/sys/health?standbyok=true')).status).toBe(503);
    // A node shutting down tells balancers to move on, also as leader.
    h.leader.removed = false;
    h.leader.closing = true;
    expect((await h.req('GET', '/v1/sys/health')).status).toBe(503);
  });

  test('cluster status, members, transfer', async () => {
    h = await startHarness();
    const st = await h.req('GET', '/v1/cluster');
    expect(st.body).toMatchObject({ id: 'n1', leader: 'n1', term: 4, members: [{ id: 'n1', suffrage: 'voter' }] });
    const add = await h.req('POST', '/v1/cluster/members', { body: { id: 'n4', raftAddr: 'http://127.0.0.1:8231', apiAddr: 'http://127.0.0.1:8230' } });
    expect(add.body).toEqual({ id: 'n4', raftAddr: 'http://127.0.0.1:8231', apiAddr: 'http://127.0.0.1:8230', suffrage: 'learner' });
    expect((await h.req('POST', '/v1/cluster/members', { body: { id: 'n4', raftAddr: 'nope', apiAddr: 'http://x:1' } })).status).toBe(400);
    expect((await h.req('POST', '/v1/cluster/members', { body: { id: 'n1', raftAddr: 'http://a:1', apiAddr: 'http://a:2' } })).status).toBe(409);
    expect((await h.req('DELETE', '/v1/cluster/members/n9')).status).toBe(404);
    expect((await h.req('DELETE', '/v1/cluster/members/n1')).body).toEqual({ id: 'n1', removed: true });
    expect((await h.req('POST', '/v1/cluster/leader/transfer', { body: { to: 'n1' } })).body).toEqual({ leader: 'n1' });
    expect((await h.req('POST', '/v1/cluster/leader/transfer', { body: { to: 'n7' } })).status).toBe(400);
  });

  test('snapshot streams sealed bytes; restore goes through consensus; a bad blob is refused', async () => {
    h = await startHarness();
    await h.req('PUT', '/v1/secrets/snap/a', { body: { value: 'canary-snapshot-value' } });
    const res = await fetch(`${h.base}/v1/cluster/snapshot`, { headers: { authorization: `Bearer ${(await import('./harness.js')).ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const blob = new Uint8Array(await res.arrayBuffer());
    expect(Buffer.from(blob).includes('canary-snapshot-value')).toBe(false);
    await h.req('DELETE', '/v1/secrets/snap/a');
    expect((await h.req('GET', '/v1/secrets/snap/a')).status).toBe(404);
    const r = await h.req('POST', '/v1/cluster/restore', { rawBody: blob, headers: { 'content-type': 'application/octet-stream' } });
    expect([r.status, r.body]).toEqual([200, { restored: true, secrets: 1 }]);
    expect(h.proposed.at(-1)?.type).toBe('state.restore');
    expect((await h.req('GET', '/v1/secrets/snap/a')).body.value).toBe('canary-snapshot-value');
    const bad = await h.req('POST', '/v1/cluster/restore', { rawBody: 'not a snapshot' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_request']);
  });

  test('KMS re-wrap trigger and status', async () => {
    h = await startHarness();
    const off = await h.req('POST', '/v1/admin/kms/rewrap');
    expect(off.status).toBe(400);
    await h.close();
    h = await startHarness({ env: { COFFER_KMS_REWRAP_ENABLED: 'true' } });
    expect((await h.req('POST', '/v1/admin/kms/rewrap')).status).toBe(202);
    expect(h.rewrapRequests).toBe(1);
    expect((await h.req('GET', '/v1/admin/kms/rewrap/status')).body).toEqual({ enabled: true, running: false, watermark: null, pending: 0, done: 0, lastPassAt: null });
  });

  test('metrics: Prometheus text for allowlisted clients, route templates and token names as labels', async () => {
    h = await startHarness();
    await h.req('PUT', '/v1/secrets/m/secret-name', { body: { value: 'v' } });
    const r = await h.req('GET', '/metrics', { token: null });
    expect(r.status).toBe(200);
    expect(r.text).toContain('coffer_http_requests_total{method="PUT",route="/v1/secrets/{name+}",status="200",token="bootstrap-admin"} 1');
    expect(r.text).not.toContain('m/secret-name');
  });
});
