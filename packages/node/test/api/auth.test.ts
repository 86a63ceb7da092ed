// Authentication, RBAC, rate limits, lockout and audit, over real HTTP (single-node path).
import { verifyAuditFile } from '../../src/audit/audit-log.js';
import { ACTIONS, type Action } from '../../src/auth/rbac.js';
import { ADMIN_TOKEN, startHarness, type Harness } from './harness.js';

// The RBAC matrix runs a round per action (two roles, two tokens, two probes each).
jest.setTimeout(60_000);

let h: Harness;
afterEach(async () => {
  await h.close();
});

/** A ciphertext of the transit key `rbac-key`, made fresh each round (the decrypt probe's body). */
let probeCiphertext = '';
let probeRequestId = '';

/** One representative request per action. Secret actions act on `rbac/target`, transit ones on key `rbac-key`. */
const PROBES: Record<Action, { method: string; path: string; body?: unknown }> = {
  // The harness runs with COFFER_READ_AUTH=token, so reads need secret.read.
  'secret.read': { method: 'GET', path: '/v1/secrets/rbac/target' },
  'audit.read': { method: 'GET', path: '/v1/audit?limit=1' },
  'secret.write': { method: 'PUT', path: '/v1/secrets/rbac/target', body: { value: 'x' } },
  'secret.list': { method: 'GET', path: '/v1/versions/rbac/target' },
  'secret.delete': { method: 'POST', path: '/v1/delete/rbac/target', body: { versions: [1] } },
  'secret.destroy': { method: 'POST', path: '/v1/destroy/rbac/target', body: { versions: [1] } },
  'secret.rotate': { method: 'POST', path: '/v1/rotate/rbac/target' },
  // A role within the caller's own (only token.create): minting admin would be refused as escalation.
  'token.create': { method: 'POST', path: '/v1/tokens', body: { name: 'made-by-probe', role: 'role-allow-token-create' } },
  'token.read': { method: 'GET', path: '/v1/tokens' },
  'token.revoke': { method: 'DELETE', path: '/v1/tokens/victim' },
  'role.read': { method: 'GET', path: '/v1/roles' },
  // Within the caller's own grants (nobody grants what they do not hold).
  'role.write': { method: 'PUT', path: '/v1/roles/probe-role', body: { rules: [{ actions: ['role.write'] }] } },
  'allowlist.read': { method: 'GET', path: '/v1/allowlist' },
  'allowlist.write': { method: 'PUT', path: '/v1/allowlist', body: { cidrs: ['127.0.0.1/32', '::1/128'] } },
  'kms.rewrap': { method: 'GET', path: '/v1/admin/kms/rewrap/status' },
  'cluster.read': { method: 'GET', path: '/v1/cluster' },
  'cluster.manage': { method: 'POST', path: '/v1/cluster/leader/transfer', body: {} },
  'identity.manage': { method: 'GET', path: '/v1/identities' },
  'approle.manage': { method: 'GET', path: '/v1/approles' },
  // With COFFER_SEAL=none an authorised seal is refused as having nothing to seal (400); see ALLOWED_STATUS.
  'operator.seal': { method: 'PUT', path: '/v1/sys/seal' },
  // Denying decides without granting anything; a fresh pending request per round.
  'access.approve': {
    method: 'POST',
    get path() {
      return `/v1/access-requests/${probeRequestId}/deny`;
    },
  },
  'transit.manage': { method: 'GET', path: '/v1/transit/keys/rbac-key' },
  'transit.encrypt': { method: 'POST', path: '/v1/transit/encrypt/rbac-key', body: { plaintext: 'eA==' } },
  'transit.decrypt': {
    method: 'POST',
    path: '/v1/transit/decrypt/rbac-key',
    get body() {
      return { ciphertext: probeCiphertext };
    },
  },
};

/** The answer an authorised probe gets when it is not a 2xx. */
const ALLOWED_STATUS: Partial<Record<Action, number>> = { 'operator.seal': 400 };

describe('RBAC matrix, single-node path', () => {
  beforeAll(() => undefined);
  test('every action: allowed with a role that grants it, 403 with one that grants everything else', async () => {
    h = await startHarness({ env: { COFFER_READ_AUTH: 'token' } });
    const probed = Object.keys(PROBES) as (keyof typeof PROBES)[];
    expect([...probed].sort()).toEqual([...ACTIONS].sort());
    for (const action of probed) {
      await h.req('PUT', '/v1/secrets/rbac/target', { body: { value: 'seed' } });
      await h.req('POST', '/v1/tokens', { body: { name: 'victim', role: 'admin' } });
      await h.req('POST', '/v1/transit/keys/rbac-key');
      probeCiphertext = (await h.req('POST', '/v1/transit/encrypt/rbac-key', { body: { plaintext: 'eA==' } })).body?.data?.ciphertext ?? '';
      if (action === 'access.approve') {
        const made = await h.req('POST', '/v1/access-requests', { body: { org: 'probe', project: 'p', role: 'readonly', justification: 'rbac probe' } });
        expect(made.status).toBe(200);
        probeRequestId = made.body.id as string;
      }
      // Path-scoped actions are granted on the probe's name only: secret.* on rbac/**, transit.* on rbac-*.
      const grant = action.startsWith('secret.')
        ? [{ paths: ['rbac/**'], actions: [action] }]
        : action.startsWith('transit.')
          ? [{ paths: ['rbac-*'], actions: [action] }]
          : [{ actions: [action] }];
      const allowed = await h.tokenWith(`allow-${action.replace('.', '-')}`, grant);
      const others = ACTIONS.filter((a) => a !== action);
      const denied = await h.tokenWith(`deny-${action.replace('.', '-')}`, [{ paths: ['**'], actions: others }]);
      const p = PROBES[action];
      const no = await h.req(p.method, p.path, { token: denied, body: p.body });
      // Vault-shaped routes (transit) answer in Vault's error envelope.
      const code = no.body?.error?.code ?? (Array.isArray(no.body?.errors) ? 'permission_denied' : undefined);
      expect([action, no.status, code]).toEqual([action, 403, 'permission_denied']);
      const yes = await h.req(p.method, p.path, { token: allowed, body: p.body });
      const expected = ALLOWED_STATUS[action];
      expect([action, yes.status]).toEqual([action, expected ?? (yes.status < 300 ? yes.status : -1)]);
      // Clean up what the probe may have created so the next round starts alike.
      await h.req('DELETE', '/v1/tokens/made-by-probe');
      await h.req('DELETE', '/v1/tokens/victim');
    }
  });

  test('secret actions are scoped by path globs', async () => {
    h = await startHarness();
    const t = await h.tokenWith('scoped', [{ paths: ['payments/*'], actions: ['secret.write'] }]);
    expect((await h.req('PUT', '/v1/secrets/payments/stripe', { token: t, body: { value: 'x' } })).status).toBe(200);
    expect((await h.req('PUT', '/v1/secrets/payments/a/b', { token: t, body: { value: 'x' } })).status).toBe(403);
    expect((await h.req('PUT', '/v1/secrets/billing/x', { token: t, body: { value: 'x' } })).status).toBe(403);
    expect((await h.req('GET', '/v1/secrets', { token: t })).status).toBe(403);
  });
});

describe('tokens and authentication, single-node path', () => {
  test('missing, unknown, X-Vault-Token; audit lines for 401 and 403 without raw tokens', async () => {
    h = await startHarness();
    const miss = await h.req('GET', '/v1/tokens', { token: null });
    expect([miss.status, miss.body.error.code]).toEqual([401, 'missing_token']);
    const bad = await h.req('GET', '/v1/tokens', { token: 'cof_not-a-real-token' });
    expect([bad.status, bad.body.error.code]).toEqual([401, 'invalid_token']);
    const vault = await h.req('GET', '/v1/tokens', { token: null, headers: { 'x-vault-token': ADMIN_TOKEN } });
    expect(vault.status).toBe(200);
    const weak = await h.tokenWith('weak', [{ actions: ['cluster.read'] }]);
    const denied = await h.req('GET', '/v1/tokens', { token: weak, headers: { 'x-request-id': 'deny-1' } });
    expect(denied.status).toBe(403);
    const lines = h.auditLines();
    expect(lines.find((l) => l.status === 401 && l.action === 'token.read' && l.actor === '-')).toMatchObject({ outcome: 'denied', clientIp: '127.0.0.1' });
    expect(lines.find((l) => l.requestId === 'deny-1')).toMatchObject({ status: 403, outcome: 'denied', actor: 'weak', action: 'token.read' });
    const text = JSON.stringify(lines);
    expect(text).not.toContain(ADMIN_TOKEN);
    expect(text).not.toContain(weak);
    expect((await verifyAuditFile(h.auditFile)).ok).toBe(true);
  });

  test('a token revoked while a linearizable read waits for its barrier gets 401, not the answer', async () => {
    h = await startHarness();
    const reader = await h.tokenWith('reader', [{ actions: ['role.read', 'cluster.read'] }]);
    expect((await h.req('GET', '/v1/roles', { token: reader })).status).toBe(200);
    // What a follower sees: the revocation, acknowledged through the leader before this read was
    // sent, is applied here only while the read's barrier waits for it.
    const barrier = h.ctx.readBarrier.bind(h.ctx);
    h.ctx.readBarrier = async (consistency) => {
      await barrier(consistency);
      if (consistency === 'linearizable') await h.ctx.propose({ type: 'token.revoke', requestId: 'revoke-reader', at: h.clock.now, name: 'reader', actor: 'admin' });
    };
    const r = await h.req('GET', '/v1/roles', { token: reader, headers: { 'x-request-id': 'after-revoke' } });
    expect([r.status, r.body.error?.code]).toEqual([401, 'invalid_token']);
    expect(h.auditLines().find((l) => l.requestId === 'after-revoke')).toMatchObject({ status: 401, outcome: 'denied' });
    // A stale read takes no barrier and answers from this node's state, where it is now revoked.
    h.ctx.readBarrier = barrier;
    expect((await h.req('GET', '/v1/roles?consistency=stale', { token: reader })).status).toBe(401);
  });

  test('create with TTL, expiry, list without hashes, self, revoke, rotate', async () => {
    h = await startHarness();
    const created = await h.req('POST', '/v1/tokens', { body: { name: 'ci', role: 'admin', ttl: '1h' } });
    expect(created.status).toBe(200);
    expect(created.body).toEqual({ name: 'ci', role: 'admin', token: expect.stringMatching(/^cof_[A-Za-z0-9_-]{43}$/), expiresAt: new Date(h.clock.now + 3_600_000).toISOString() });
    const t = created.body.token as string;
    expect((await h.req('GET', '/v1/tokens/self', { token: t })).body).toMatchObject({ name: 'ci', role: 'admin', status: 'active' });
    expect((await h.req('POST', '/v1/tokens', { body: { name: 'ci', role: 'admin' } })).status).toBe(409);
    expect((await h.req('POST', '/v1/tokens', { body: { name: 'x', role: 'nope' } })).status).toBe(400);
    expect((await h.req('POST', '/v1/tokens', { body: { name: 'x', role: 'admin', ttl: '5 days' } })).status).toBe(400);
    expect((await h.req('POST', '/v1/tokens', { body: { name: 'self', role: 'admin' } })).body.error.code).toBe('invalid_name');
    const list = await h.req('GET', '/v1/tokens');
    expect(list.body.tokens.map((x: { name: string }) => x.name)).toEqual(['bootstrap-admin', 'ci']);
    expect(list.text).not.toMatch(/hash|cof_/i);
    // Six months: `m` is a month in a TTL.
    const six = await h.req('POST', '/v1/tokens', { body: { name: 'six', role: 'admin', ttl: '6m' } });
    expect(Date.parse(six.body.expiresAt) - h.clock.now).toBe(180 * 86_400_000);

    // Rotate: the old token stops working, the new one works.
    const rot = await h.req('POST', '/v1/tokens/ci/rotate', { token: t });
    expect(rot.status).toBe(200);
    expect((await h.req('GET', '/v1/tokens/self', { token: t })).status).toBe(401);
    const t2 = rot.body.token as string;
    expect((await h.req('GET', '/v1/tokens/self', { token: t2 })).status).toBe(200);
    // Expiry.
    h.clock.now += 3_600_001;
    const exp = await h.req('GET', '/v1/tokens/self', { token: t2 });
    expect([exp.status, exp.body.error.code]).toEqual([401, 'invalid_token']);
    expect((await h.req('POST', '/v1/tokens/ci/rotate')).status).toBe(400);
    // Revoke.
    const rv = await h.req('POST', '/v1/tokens', { body: { name: 'rv', role: 'admin' } });
    expect((await h.req('DELETE', '/v1/tokens/rv')).body).toEqual({ name: 'rv', revokedAt: new Date(h.clock.now).toISOString() });
    expect((await h.req('GET', '/v1/tokens/self', { token: rv.body.token })).status).toBe(401);
    expect((await h.req('DELETE', '/v1/tokens/ghost')).status).toBe(404);
  });

  test('lockout: 429 locked_out with Retry-After after repeated failures, cluster state decides', async () => {
    h = await startHarness({ env: { COFFER_AUTH_MAX_FAILURES: '3', COFFER_AUTH_WINDOW_SECS: '60', COFFER_AUTH_LOCKOUT_SECS: '120' } });
    for (let i = 0; i < 3; i++) expect((await h.req('GET', '/v1/tokens', { token: `wrong-${i}` })).status).toBe(401);
    const locked = await h.req('GET', '/v1/tokens');
    expect([locked.status, locked.body.error.code, locked.headers.get('retry-after')]).toEqual([429, 'locked_out', '120']);
    // Verify is locked too (its mismatches count toward the same lockout).
    expect((await h.req('POST', '/v1/verify/any', { token: null, body: { value: 'x' } })).status).toBe(429);
    // Once locked, denials are audited once per window, then one summary line for the rest.
    for (let i = 0; i < 5; i++) expect((await h.req('GET', '/v1/tokens')).status).toBe(429);
    expect(h.auditLines().filter((l) => l.status === 429).length).toBe(1);
    h.clock.now += 61_000;
    expect((await h.req('GET', '/v1/tokens')).status).toBe(429);
    const lines429 = h.auditLines().filter((l) => l.status === 429);
    expect(lines429.map((l) => l.action)).toEqual(['token.read', 'auth.lockout.suppressed', 'token.read']);
    expect(lines429[1]?.resource).toBe('6 denied requests from this address were not audited singly');
    // The lockout reached the replicated state: 3 failures proposed once, not one write per failure.
    expect(h.proposed.filter((c) => c.type === 'auth.failure').length).toBe(3);
    h.clock.now += 121_000;
    expect((await h.req('GET', '/v1/tokens')).status).toBe(200);
  });

  test('lockout: a valid token in between does not clear failures; parallel bad requests stop at the limit', async () => {
    h = await startHarness({ env: { COFFER_AUTH_MAX_FAILURES: '5', COFFER_AUTH_WINDOW_SECS: '300', COFFER_AUTH_LOCKOUT_SECS: '900' } });
    // 4 bad + 1 good, repeated: before, the good one erased the count and nothing ever locked.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 4 && round * 4 + i < 5; i++) await h.req('GET', '/v1/tokens', { token: `bad-${round}-${i}` });
      const good = await h.req('GET', '/v1/tokens');
      if (round === 0) expect(good.status).toBe(200);
      else expect(good.body.error.code).toBe('locked_out');
    }
    // Parallel: 20 bad requests at once from a fresh address family (IPv6 /64): exactly 5 are judged.
    h.clock.now += 901_000;
    const v6 = `http://[::1]:${h.port}`;
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => h.req('GET', '/v1/tokens', { token: `p-${i}`, host: v6 })));
    expect(all.filter((r) => r.status === 401).length).toBe(5);
    expect(all.filter((r) => r.status === 429).length).toBe(15);
    expect(h.auditLines().filter((l) => l.clientIp === '::1' && l.status === 401).length).toBe(5);
  });

  test('per-role rate limit: 429 rate_limited with Retry-After', async () => {
    h = await startHarness();
    const t = await h.tokenWith('slow', [{ actions: ['cluster.read'] }], '2/m');
    expect((await h.req('GET', '/v1/cluster', { token: t })).status).toBe(200);
    expect((await h.req('GET', '/v1/cluster', { token: t })).status).toBe(200);
    const r = await h.req('GET', '/v1/cluster', { token: t });
    expect([r.status, r.body.error.code, r.headers.get('retry-after')]).toEqual([429, 'rate_limited', '30']);
    h.clock.now += 30_000;
    expect((await h.req('GET', '/v1/cluster', { token: t })).status).toBe(200);
  });

  test('audit fails closed: 503 audit_unavailable instead of the answer', async () => {
    h = await startHarness();
    h.auditBroken.on = true;
    const r = await h.req('GET', '/v1/tokens');
    expect([r.status, r.body.error.code]).toEqual([503, 'audit_unavailable']);
    const w = await h.req('PUT', '/v1/secrets/x', { body: { value: 'y' } });
    expect(w.status).toBe(503);
    h.auditBroken.on = false;
    expect((await h.req('GET', '/v1/tokens')).status).toBe(200);
  });

  test('follower: writes are authorised where they arrive, then forwarded to the canonical path; reads are served locally', async () => {
    h = await startHarness();
    h.leader.is = false;
    h.leader.leaderId = 'n2';
    // No or a wrong token: refused here, never forwarded, audited here.
    const bad = await h.req('PUT', '/v1/secrets/f/x', { token: 'whatever', body: { value: 'v' } });
    expect([bad.status, bad.headers.get('x-test-forwarded')]).toEqual([401, null]);
    expect((await h.req('DELETE', '/v1/tokens/x', { token: null })).status).toBe(401);
    expect(h.forwarded).toEqual([]);
    expect(h.auditLines().filter((l) => l.status === 401).length).toBe(2);
    // Authorised: forwarded, to the decoded and re-encoded name (what was authorised is what runs).
    const w = await h.req('PUT', '/v1/secrets/f%2Fx', { body: { value: 'v' } });
    expect([w.status, w.headers.get('x-test-forwarded')]).toEqual([200, 'yes']);
    expect(h.forwarded[0]).toEqual({ method: 'PUT', url: '/v1/secrets/f/x', body: '{"value":"v"}' });
    // A path that would normalise to another route is refused before anything else.
    for (const p of ['/v1/rotate/%2e%2e/batch/secrets', '/v1/rotate/../batch/secrets', '/v1/rotate/%2E%2e/batch/secrets', '/v1/rotate//x']) {
      const trick = await h.raw('POST', p, JSON.stringify({ names: ['f/x'] }));
      expect([p, trick.status, JSON.parse(trick.text).error.code]).toEqual([p, 400, 'invalid_name']);
    }
    expect(h.forwarded.length).toBe(1);
    expect((await h.req('GET', '/v1/tokens')).status).toBe(200);
    const r = await h.req('GET', '/v1/secrets/f/x', { token: null });
    expect(r.status).toBe(404);
  });
});
