/**
 * Ed25519 identities, sessions, memberships and access requests against a real three-node cluster
 * (COFFER_READ_AUTH=token, so what a session may read is exactly what its memberships grant;
 * COFFER_SESSION_TTL=12s, so a session expires within the run): login on the leader and through a
 * follower, a replayed nonce and a signature by the wrong key refused, a disabled identity's
 * session refused at once on every node, readonly members cannot write, members stay inside their
 * project, self-approval refused, approval creates a working membership, a session expiring
 * mid-run, and the hostile cases for every route (no or low token, path tricks, oversized body).
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import * as path from 'node:path';
import { TestCluster, assertLoopback, runCli, sleep, type HttpResult, type NodeHandle } from '../src/harness';

jest.setTimeout(240_000);

function keyPair(): { priv: KeyObject; pub: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x as string;
  return { priv: privateKey, pub: Buffer.from(x, 'base64url').toString('base64') };
}

/** One request with the path exactly as given (no client-side dot resolution). */
function rawRequest(n: NodeHandle, method: string, rawPath: string, body: string, token?: string): Promise<{ status: number; text: string }> {
  const url = new URL(n.api);
  assertLoopback(url.href);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname, port: url.port, method, path: rawPath, agent: false, timeout: 15_000,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Declares a body of `declared` bytes, sends 1 KiB of it and waits for the answer (sent before the body is read). */
function declaredOnly(n: NodeHandle, method: string, rawPath: string, declared: number, token?: string): Promise<number> {
  const url = new URL(n.api);
  assertLoopback(url.href);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname, port: url.port, method, path: rawPath, agent: false, timeout: 15_000,
        headers: { 'content-type': 'application/json', 'content-length': String(declared), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          resolve(res.statusCode ?? 0);
          req.destroy();
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.write('{"identity":"' + 'x'.repeat(1000));
  });
}

describe('Ed25519 identities, sessions and access requests (real cluster)', () => {
  const cluster = new TestCluster({ env: { COFFER_READ_AUTH: 'token', COFFER_AUTH_MAX_FAILURES: '4', COFFER_SESSION_TTL: '12s' } });
  let leader: NodeHandle;
  let follower: NodeHandle;
  let lowToken: string;
  let approverToken: string;
  let nextAddr = 10;
  // Each refused login comes from an address of its own, so the lockout never turns a 401 into a 429.
  const freshAddr = (): string => `127.0.4.${nextAddr++}`;
  const admin = (n: NodeHandle, method: string, p: string, body?: unknown): Promise<HttpResult> => cluster.http(n, method, p, body);
  const as = (n: NodeHandle, token: string | null, method: string, p: string, body?: unknown): Promise<HttpResult> => cluster.http(n, method, p, body, token);
  /** For requests expected to fail authentication: from an address of their own (lockout). */
  const asFresh = (n: NodeHandle, token: string | null, method: string, p: string, body?: unknown): Promise<HttpResult> => cluster.httpFrom(n, freshAddr(), method, p, body, token);

  /** Every audit line of one node, as JSON text (paged through GET /v1/audit). */
  async function auditOf(n: NodeHandle): Promise<string> {
    const out: unknown[] = [];
    let since = 1;
    for (let page = 0; page < 100; page++) {
      const r = await admin(n, 'GET', `/v1/audit?since=${since}&limit=1000`);
      expect(r.status).toBe(200);
      const records = r.body.records as { seq: number }[];
      out.push(...records);
      if (records.length === 0 || typeof r.body.next !== 'number') break;
      since = r.body.next as number;
    }
    return JSON.stringify(out);
  }

  async function register(name: string, type = 'agent'): Promise<KeyObject> {
    const k = keyPair();
    const r = await admin(leader, 'POST', '/v1/identities', { name, type, publicKey: k.pub });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ name, type, fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{32}$/) });
    return k.priv;
  }
  async function challenge(n: NodeHandle, identity: string): Promise<string> {
    const c = await as(n, null, 'POST', '/v1/auth/challenge', { identity });
    expect(c.status).toBe(200);
    expect(Date.parse(c.body.expiresAt as string) - Date.now()).toBeLessThanOrEqual(61_000);
    return c.body.nonce as string;
  }
  const signed = (identity: string, nonce: string, priv: KeyObject): string => sign(null, Buffer.from(`coffer-login:${identity}:${nonce}`, 'utf8'), priv).toString('base64');
  async function login(n: NodeHandle, identity: string, priv: KeyObject): Promise<string> {
    const nonce = await challenge(n, identity);
    const r = await as(n, null, 'POST', '/v1/auth/login', { identity, nonce, signature: signed(identity, nonce, priv) });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ token: expect.any(String), expiresAt: expect.any(String) });
    return r.body.token as string;
  }

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
    leader = await cluster.leader();
    follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    expect((await admin(leader, 'PUT', '/v1/roles/low', { rules: [{ paths: ['org/acme/**'], actions: ['secret.read'] }] })).status).toBe(200);
    expect((await admin(leader, 'PUT', '/v1/roles/approver', { rules: [{ paths: ['org/acme/**'], actions: ['secret.read', 'secret.write', 'secret.list', 'secret.delete'] }, { actions: ['access.approve'] }] })).status).toBe(200);
    lowToken = (await admin(leader, 'POST', '/v1/tokens', { name: 'low', role: 'low', ttl: '1d' })).body.token as string;
    approverToken = (await admin(leader, 'POST', '/v1/tokens', { name: 'approver', role: 'approver', ttl: '1d' })).body.token as string;
    for (const p of ['org/acme/project/web/db', 'org/acme/project/api/key', 'org/other/project/web/db']) {
      expect((await admin(leader, 'PUT', `/v1/secrets/${p}`, { value: `v-${p}` })).status).toBe(200);
    }
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('login on the leader and through a follower; the session reads what its membership grants, on every node', async () => {
    const priv = await register('agent-a');
    expect((await admin(leader, 'PUT', '/v1/memberships/agent-a', { org: 'acme', project: 'web', role: 'member' })).status).toBe(200);
    for (const n of [leader, follower]) {
      const s = await login(n, 'agent-a', priv);
      for (const m of cluster.nodes) {
        const read = await as(m, s, 'GET', '/v1/secrets/org/acme/project/web/db');
        expect(read.status).toBe(200);
        expect(read.body.value).toBe('v-org/acme/project/web/db');
        // A member outside its project: refused.
        expect((await as(m, s, 'GET', '/v1/secrets/org/acme/project/api/key')).status).toBe(403);
        expect((await as(m, s, 'GET', '/v1/secrets/org/other/project/web/db')).status).toBe(403);
      }
      expect((await as(follower, s, 'PUT', '/v1/secrets/org/acme/project/web/new', { value: 'x' })).status).toBe(200);
      expect((await as(leader, s, 'PUT', '/v1/secrets/org/acme/project/api/new', { value: 'x' })).status).toBe(403);
      // Listing shows only what the membership covers.
      const listed = await as(n, s, 'GET', '/v1/secrets?prefix=org/');
      expect(listed.status).toBe(200);
      const names = JSON.stringify(listed.body);
      expect(names).toContain('org/acme/project/web/db');
      expect(names).not.toContain('org/acme/project/api');
      expect(names).not.toContain('org/other');
      const me = await as(follower, s, 'GET', '/v1/tokens/self');
      expect(me.status).toBe(200);
      expect(me.body.name).toBe('identity:agent-a');
      // Sessions are principals, not administrators.
      expect((await as(n, s, 'GET', '/v1/identities')).status).toBe(403);
    }
    const shown = await admin(follower, 'GET', '/v1/identities/agent-a');
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ name: 'agent-a', type: 'agent', disabledAt: null, memberships: [{ org: 'acme', project: 'web', role: 'member' }] });
  });

  test('a replayed nonce, a signature by the wrong key, a nonce for another identity and an unknown identity are all 401', async () => {
    const priv = await register('agent-b');
    const wrong = keyPair().priv;
    const nonce = await challenge(follower, 'agent-b');
    const ok = await cluster.httpFrom(leader, freshAddr(), 'POST', '/v1/auth/login', { identity: 'agent-b', nonce, signature: signed('agent-b', nonce, priv) }, null);
    expect(ok.status).toBe(200);
    // The same nonce again, on another node (where the first login did not happen): spent.
    for (const n of cluster.nodes) {
      const again = await cluster.httpFrom(n, freshAddr(), 'POST', '/v1/auth/login', { identity: 'agent-b', nonce, signature: signed('agent-b', nonce, priv) }, null);
      expect(again.status).toBe(401);
      expect(again.body.error.code).toBe('invalid_token');
    }
    // The same signed login sent to all three nodes at once: exactly one session, every round.
    for (let round = 0; round < 5; round++) {
      const nc = await challenge(cluster.nodes[round % 3] as NodeHandle, 'agent-b');
      const body = { identity: 'agent-b', nonce: nc, signature: signed('agent-b', nc, priv) };
      const answers = await Promise.all(cluster.nodes.map((m) => cluster.httpFrom(m, freshAddr(), 'POST', '/v1/auth/login', body, null)));
      expect(answers.map((x) => x.status).sort()).toEqual([200, 401, 401]);
    }
    const n2 = await challenge(leader, 'agent-b');
    const bad = await cluster.httpFrom(follower, freshAddr(), 'POST', '/v1/auth/login', { identity: 'agent-b', nonce: n2, signature: signed('agent-b', n2, wrong) }, null);
    expect(bad.status).toBe(401);
    // The nonce survived the failed attempt (nothing was spent) but is bound to agent-b.
    const other = await cluster.httpFrom(leader, freshAddr(), 'POST', '/v1/auth/login', { identity: 'agent-a', nonce: n2, signature: signed('agent-a', n2, priv) }, null);
    expect(other.status).toBe(401);
    const n3 = await challenge(leader, 'nobody');
    expect((await cluster.httpFrom(leader, freshAddr(), 'POST', '/v1/auth/login', { identity: 'nobody', nonce: n3, signature: signed('nobody', n3, wrong) }, null)).status).toBe(401);
    // A bad login is refused where it arrives: the follower audits the 401, the leader never sees it.
    const nf = await challenge(follower, 'ghost-on-follower');
    expect((await cluster.httpFrom(follower, freshAddr(), 'POST', '/v1/auth/login', { identity: 'ghost-on-follower', nonce: nf, signature: signed('ghost-on-follower', nf, wrong) }, null)).status).toBe(401);
    expect(await auditOf(follower)).toMatch(/"action":"auth\.login"[^}]*"resource":"identity:ghost-on-follower"|"resource":"identity:ghost-on-follower"[^}]*"action":"auth\.login"/);
    expect(await auditOf(leader)).not.toContain('identity:ghost-on-follower"');
    // Logins are counted by outcome where they are decided (metrics read from the real nodes).
    expect(await cluster.metric(follower, 'coffer_identity_logins_total')).toBeGreaterThanOrEqual(1); // refused there
    const okLeader = await cluster.http(leader, 'GET', '/metrics', undefined, null);
    expect(String(okLeader.body)).toMatch(/coffer_identity_logins_total\{outcome="ok"\} [1-9]/);
    expect(String(okLeader.body)).toMatch(/coffer_identity_logins_total\{outcome="refused"\} [1-9]/);
    // A tampered nonce.
    const t = `${n2.slice(0, -2)}${n2.endsWith('AA') ? 'AB' : 'AA'}`;
    expect((await cluster.httpFrom(leader, freshAddr(), 'POST', '/v1/auth/login', { identity: 'agent-b', nonce: t, signature: signed('agent-b', t, priv) }, null)).status).toBe(401);
  });

  test('a disabled identity: its live session is refused at once on every node, and it cannot log in again', async () => {
    const priv = await register('agent-c');
    expect((await admin(leader, 'PUT', '/v1/memberships/agent-c', { org: 'acme', project: 'web', role: 'readonly' })).status).toBe(200);
    const s = await login(follower, 'agent-c', priv);
    for (const m of cluster.nodes) expect((await as(m, s, 'GET', '/v1/secrets/org/acme/project/web/db')).status).toBe(200);
    // A readonly member cannot write.
    const w = await as(leader, s, 'PUT', '/v1/secrets/org/acme/project/web/db', { value: 'nope' });
    expect(w.status).toBe(403);
    const d = await admin(follower, 'POST', '/v1/identities/agent-c/disable');
    expect(d.status).toBe(200);
    expect(d.body.disabledAt).toEqual(expect.any(String));
    for (const m of cluster.nodes) {
      const r = await asFresh(m, s, 'GET', '/v1/secrets/org/acme/project/web/db');
      expect(r.status).toBe(401);
    }
    const nonce = await challenge(leader, 'agent-c');
    expect((await cluster.httpFrom(leader, freshAddr(), 'POST', '/v1/auth/login', { identity: 'agent-c', nonce, signature: signed('agent-c', nonce, priv) }, null)).status).toBe(401);
    // Deleting drops memberships too.
    expect((await admin(leader, 'DELETE', '/v1/identities/agent-c')).status).toBe(200);
    expect((await admin(follower, 'GET', '/v1/identities/agent-c')).status).toBe(404);
  });

  test('access requests: self-approval is refused, a human approves, the membership works; visibility', async () => {
    const priv = await register('agent-d');
    // agent-d administers org "beta", so approving would be within its power, were it not its own request.
    expect((await admin(leader, 'PUT', '/v1/memberships/agent-d', { org: 'beta', role: 'admin' })).status).toBe(200);
    const s = await login(leader, 'agent-d', priv);
    const filed = await as(follower, s, 'POST', '/v1/access-requests', { org: 'beta', project: 'web', role: 'member', justification: 'ci deploys' });
    expect(filed.status).toBe(200);
    expect(filed.body).toEqual({ id: expect.any(String), status: 'pending' });
    const id = filed.body.id as string;
    const self = await as(follower, s, 'POST', `/v1/access-requests/${id}/approve`);
    expect(self.status).toBe(403);
    expect(self.body.error.code).toBe('self_approval');
    // A request for acme: agent-d is no admin there and holds no access.approve.
    const acme = await as(leader, s, 'POST', '/v1/access-requests', { org: 'acme', project: 'web', role: 'readonly', justification: 'read the db password' });
    expect(acme.status).toBe(200);
    const notMine = await as(leader, s, 'POST', `/v1/access-requests/${acme.body.id as string}/approve`);
    expect(notMine.status).toBe(403);
    // The requester sees its own requests; the low token (not a requester, no access.approve) sees none.
    const own = await as(follower, s, 'GET', '/v1/access-requests?status=pending');
    expect(own.status).toBe(200);
    expect((own.body.requests as { id: string }[]).map((q) => q.id).sort()).toEqual([id, acme.body.id as string].sort());
    expect((await as(leader, lowToken, 'GET', '/v1/access-requests')).body.requests).toEqual([]);
    // The approver (access.approve and the secret grants on org/acme/**) approves through a follower.
    const approved = await as(follower, approverToken, 'POST', `/v1/access-requests/${acme.body.id as string}/approve`);
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'approved', decidedBy: 'approver', requester: 'identity:agent-d' });
    expect((await as(leader, approverToken, 'POST', `/v1/access-requests/${acme.body.id as string}/deny`)).status).toBe(409);
    // Nobody grants what they do not hold: the approver holds nothing in beta.
    expect((await as(leader, approverToken, 'POST', `/v1/access-requests/${id}/approve`)).status).toBe(403);
    expect((await as(leader, approverToken, 'POST', `/v1/access-requests/${id}/deny`)).status).toBe(200);
    for (const m of cluster.nodes) {
      await cluster.eventually(async () => (await as(m, s, 'GET', '/v1/secrets/org/acme/project/web/db')).status === 200, 10_000, 'the approved membership reads');
      expect((await as(m, s, 'PUT', '/v1/secrets/org/acme/project/web/db', { value: 'no' })).status).toBe(403);
    }
    // The org admin grants within its org through the membership route, and not outside it.
    expect((await as(follower, s, 'PUT', '/v1/memberships/agent-a', { org: 'beta', project: 'x', role: 'readonly' })).status).toBe(200);
    expect((await as(follower, s, 'PUT', '/v1/memberships/agent-a', { org: 'acme', project: 'x', role: 'readonly' })).status).toBe(403);
    const lines = await auditOf(leader);
    expect(lines).toContain('identity:agent-d');
    expect(lines).not.toContain(s);
  });

  test('an org admin decides its own org\'s requests (and sees them), not another org\'s; refused logins lock the address out', async () => {
    const adminKey = await register('beta-admin', 'human');
    expect((await admin(leader, 'PUT', '/v1/memberships/beta-admin', { org: 'beta', role: 'admin' })).status).toBe(200);
    const agentKey = await register('agent-g');
    const a = await login(follower, 'agent-g', agentKey);
    const inBeta = (await as(leader, a, 'POST', '/v1/access-requests', { org: 'beta', project: 'api', role: 'readonly', justification: 'read beta' })).body.id as string;
    const inAcme = (await as(leader, a, 'POST', '/v1/access-requests', { org: 'acme', project: 'api', role: 'readonly', justification: 'read acme' })).body.id as string;
    const h = await login(leader, 'beta-admin', adminKey);
    const seen = await as(follower, h, 'GET', '/v1/access-requests?status=pending');
    const ids = (seen.body.requests as { id: string }[]).map((q) => q.id);
    expect(ids).toContain(inBeta);
    expect(ids).not.toContain(inAcme);
    expect((await as(follower, h, 'POST', `/v1/access-requests/${inAcme}/approve`)).status).toBe(403);
    const ok = await as(follower, h, 'POST', `/v1/access-requests/${inBeta}/approve`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', decidedBy: 'identity:beta-admin' });
    expect((await admin(leader, 'GET', '/v1/identities/agent-g')).body.memberships).toEqual([expect.objectContaining({ org: 'beta', project: 'api', role: 'readonly', grantedBy: 'identity:beta-admin' })]);
    // Refused logins count toward the lockout (COFFER_AUTH_MAX_FAILURES=4): then 429, even with a right signature.
    const from = freshAddr();
    for (let i = 0; i < 4; i++) {
      const nonce = await challenge(leader, 'agent-g');
      const r = await cluster.httpFrom(follower, from, 'POST', '/v1/auth/login', { identity: 'agent-g', nonce, signature: signed('agent-g', nonce, adminKey) }, null);
      expect(r.status).toBe(401);
    }
    const nonce = await challenge(leader, 'agent-g');
    await cluster.eventually(async () => {
      const r = await cluster.httpFrom(leader, from, 'POST', '/v1/auth/login', { identity: 'agent-g', nonce, signature: signed('agent-g', nonce, agentKey) }, null);
      return r.status === 429;
    }, 10_000, 'the address is locked out');
  });

  test('a session expiring mid-run stops working on every node (COFFER_SESSION_TTL)', async () => {
    const priv = await register('agent-e');
    expect((await admin(leader, 'PUT', '/v1/memberships/agent-e', { org: 'acme', project: 'web', role: 'readonly' })).status).toBe(200);
    const nonce = await challenge(follower, 'agent-e');
    const r = await as(follower, null, 'POST', '/v1/auth/login', { identity: 'agent-e', nonce, signature: signed('agent-e', nonce, priv) });
    expect(r.status).toBe(200);
    const s = r.body.token as string;
    const expiresAt = Date.parse(r.body.expiresAt as string);
    expect(expiresAt - Date.now()).toBeLessThanOrEqual(12_500);
    expect((await as(leader, s, 'GET', '/v1/secrets/org/acme/project/web/db')).status).toBe(200);
    await sleep(Math.max(0, expiresAt - Date.now()) + 1_000);
    for (const m of cluster.nodes) expect((await asFresh(m, s, 'GET', '/v1/secrets/org/acme/project/web/db')).status).toBe(401);
  });

  test('CLI: identity create (key file 0600, exclusive, never sent), login ed25519, access-requests, exit codes', async () => {
    const addr = cluster.nodes.map((n) => n.api).join(',');
    const adminEnv = { COFFER_ADDR: addr, COFFER_TOKEN: cluster.bootstrapToken };
    const keyFile = path.join(cluster.root, 'cli-agent.key');
    const created = await runCli(['identity', 'create', 'cli-agent', '--type', 'agent', '--key-out', keyFile, '--json'], adminEnv);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toEqual({ name: 'cli-agent', type: 'agent', fingerprint: expect.stringMatching(/^sha256:/), keyFile });
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const pem = readFileSync(keyFile, 'utf8');
    expect(pem).toContain('BEGIN PRIVATE KEY');
    // Never overwritten; a second create with the same file refuses before registering anything.
    const again = await runCli(['identity', 'create', 'cli-agent2', '--type', 'agent', '--key-out', keyFile], adminEnv);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
    expect(readFileSync(keyFile, 'utf8')).toBe(pem);
    expect((await admin(leader, 'GET', '/v1/identities/cli-agent2')).status).toBe(404);
    expect((await runCli(['identity', 'create', 'x', '--type', 'robot'], adminEnv)).code).toBe(2);
    expect((await runCli(['identity', 'create', '--help'], adminEnv)).stdout).toContain('./<name>.key');

    const login = await runCli(['login', 'ed25519', '--identity', 'cli-agent', '--key', keyFile, '--json'], { COFFER_ADDR: addr });
    expect(login.code).toBe(0);
    const session = JSON.parse(login.stdout) as { token: string; expiresAt: string };
    expect(session).toEqual({ token: expect.any(String), expiresAt: expect.any(String) });
    const text = await runCli(['login', 'ed25519', '--identity', 'cli-agent', '--key', keyFile], { COFFER_ADDR: addr });
    expect(text.code).toBe(0);
    expect(text.stdout.trim()).toMatch(/^\S+$/);
    const wrongKey = path.join(cluster.root, 'wrong.key');
    expect((await runCli(['identity', 'create', 'cli-other', '--type', 'service', '--key-out', wrongKey], adminEnv)).code).toBe(0);
    const refused = await runCli(['login', 'ed25519', '--identity', 'cli-agent', '--key', wrongKey], { COFFER_ADDR: addr });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('invalid_token');

    const agentEnv = { COFFER_ADDR: addr, COFFER_TOKEN: session.token };
    const filed = await runCli(['access-requests', 'create', '--org', 'acme', '--project', 'web', '--role', 'readonly', '--why', 'read the db'], agentEnv);
    expect(filed.code).toBe(0);
    const id = filed.stdout.trim();
    const self = await runCli(['access-requests', 'approve', id], agentEnv);
    expect(self.code).toBe(1);
    expect((await runCli(['access-requests', 'create', '--org', 'acme', '--project', 'web', '--role', 'owner', '--why', 'x'], agentEnv)).code).toBe(2);
    const pending = await runCli(['access-requests', 'list', '--pending', '--json'], { COFFER_ADDR: addr, COFFER_TOKEN: approverToken });
    expect(pending.code).toBe(0);
    expect((JSON.parse(pending.stdout) as { id: string }[]).map((q) => q.id)).toContain(id);
    const ok = await runCli(['access-requests', 'approve', id, '--json'], { COFFER_ADDR: addr, COFFER_TOKEN: approverToken });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ id, status: 'approved', decidedBy: 'approver' });
    const granted = await runCli(['identity', 'grant', 'cli-agent', '--org', 'acme', '--project', 'api', '--role', 'readonly', '--json'], adminEnv);
    expect(granted.code).toBe(0);
    expect(JSON.parse(granted.stdout)).toEqual({ identity: 'cli-agent', org: 'acme', project: 'api', role: 'readonly' });
    expect((await runCli(['identity', 'grant', 'cli-agent', '--org', 'acme', '--role', 'member'], adminEnv)).code).toBe(2);
    const shown = await runCli(['identity', 'show', 'cli-agent'], adminEnv);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/acme\s+api\s+readonly/);
    expect(shown.stdout).toMatch(/acme\s+web\s+readonly\s+approver/);
    expect((await runCli(['identity', 'revoke', 'cli-agent', '--org', 'acme', '--project', 'api'], adminEnv)).code).toBe(0);
    expect((await runCli(['identity', 'revoke', 'cli-agent', '--org', 'acme', '--project', 'api'], adminEnv)).code).toBe(1);
    const list = await runCli(['identity', 'list', '--json'], adminEnv);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((i) => i.name)).toContain('cli-agent');
    expect((await runCli(['identity', 'disable', 'cli-agent'], adminEnv)).code).toBe(0);
    expect((await asFresh(leader, session.token, 'GET', '/v1/secrets/org/acme/project/web/db')).status).toBe(401);
    expect((await runCli(['identity', 'delete', 'cli-agent'], adminEnv)).code).toBe(0);
    expect((await runCli(['identity', 'delete', 'cli-agent'], adminEnv)).code).toBe(1);
    // The private key never reached a server: no audit line and no log holds it.
    const body = pem.split('\n').filter((l) => !l.startsWith('-----')).join('');
    for (const n of cluster.nodes) expect(readFileSync(n.logFile, 'utf8')).not.toContain(body.slice(0, 40));
  });

  test('hostile: no or low token, path tricks, through a follower, oversized bodies', async () => {
    await register('agent-f');
    const routes: [string, string, unknown][] = [
      ['POST', '/v1/identities', { name: 'x1', type: 'agent', publicKey: keyPair().pub }],
      ['GET', '/v1/identities', undefined],
      ['GET', '/v1/identities/agent-f', undefined],
      ['POST', '/v1/identities/agent-f/disable', undefined],
      ['DELETE', '/v1/identities/agent-f', undefined],
      ['PUT', '/v1/memberships/agent-f', { org: 'acme', project: 'web', role: 'member' }],
      ['DELETE', '/v1/memberships/agent-f', { org: 'acme', project: 'web' }],
    ];
    for (const n of [leader, follower]) {
      for (const [method, p, body] of routes) {
        expect([method, p, (await as(n, null, method, p, body)).status]).toEqual([method, p, 401]);
        expect([method, p, (await as(n, lowToken, method, p, body)).status]).toEqual([method, p, 403]);
      }
      expect((await as(n, null, 'POST', '/v1/access-requests', { org: 'acme', project: 'web', role: 'member', justification: '' })).status).toBe(401);
      expect((await as(n, null, 'GET', '/v1/access-requests')).status).toBe(401);
      expect((await as(n, lowToken, 'POST', '/v1/access-requests/any-id/approve')).status).toBe(403);
      expect((await as(n, null, 'POST', '/v1/access-requests/any-id/deny')).status).toBe(401);
    }
    // Still there: nothing above acted.
    expect((await admin(follower, 'GET', '/v1/identities/agent-f')).body.disabledAt).toBeNull();
    for (const p of ['/v1/identities/%2e%2e', '/v1/identities/..', '/v1/identities/a%2fb', '/v1/memberships/%2e%2e', '/v1/access-requests/%2e%2e/approve', '/v1/identities/agent-f/%2e%2e/disable']) {
      const r = await rawRequest(follower, p.endsWith('approve') || p.endsWith('disable') ? 'POST' : 'GET', p, '', cluster.bootstrapToken);
      expect([p, r.status]).toEqual([p, p.includes('%2f') ? 400 : 400]);
    }
    // Bad input names the field.
    const bad = await admin(follower, 'POST', '/v1/identities', { name: 'k', type: 'agent', publicKey: 'AAAA' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('publicKey');
    expect((await admin(leader, 'POST', '/v1/identities', { name: 'agent-f', type: 'agent', publicKey: keyPair().pub })).status).toBe(409);
    expect((await admin(leader, 'PUT', '/v1/memberships/agent-f', { org: 'acme', role: 'member' })).status).toBe(400);
    expect((await as(leader, null, 'POST', '/v1/auth/challenge', { identity: '../x' })).status).toBe(400);
    const noSig = await as(follower, null, 'POST', '/v1/auth/login', { identity: 'agent-f', nonce: 'x' });
    expect([noSig.status, noSig.body.error.message]).toEqual([400, expect.stringContaining('"signature"')]);
    expect((await as(leader, null, 'POST', '/v1/auth/login', { identity: 'agent-f', nonce: 7, signature: 'x' })).status).toBe(400);
    expect((await as(leader, null, 'POST', '/v1/auth/login', { identity: 'agent-f', nonce: 'x', signature: 'x', extra: 1 })).status).toBe(400);
    // Oversized bodies: refused before they are read, on the login routes too.
    const bodied: [string, string][] = [
      ['POST', '/v1/auth/challenge'], ['POST', '/v1/auth/login'], ['POST', '/v1/identities'], ['POST', '/v1/identities/agent-f/disable'],
      ['PUT', '/v1/memberships/agent-f'], ['DELETE', '/v1/memberships/agent-f'], ['POST', '/v1/access-requests'],
      ['POST', '/v1/access-requests/any-id/approve'], ['POST', '/v1/access-requests/any-id/deny'],
    ];
    for (const n of [leader, follower]) {
      for (const [method, p] of bodied) {
        expect([method, p, await declaredOnly(n, method, p, 3 * 1024 * 1024, cluster.bootstrapToken)]).toEqual([method, p, 413]);
        // Over the routes' own 16 KiB limit (8 KiB for the login routes), still refused unread.
        expect([method, p, await declaredOnly(n, method, p, 20 * 1024, cluster.bootstrapToken)]).toEqual([method, p, 413]);
      }
    }
    expect((await admin(leader, 'GET', '/v1/identities/agent-f')).body.disabledAt).toBeNull();
  });
});
