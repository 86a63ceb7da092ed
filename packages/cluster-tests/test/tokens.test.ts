/**
 * Token lifecycle and lockout through real processes: TTL expiry, revoke and rotate take effect
 * on every node; repeated authentication failures from one client address lock that address out
 * on every node (429 + Retry-After) without touching other addresses, until the lockout ends.
 *
 * Every request expected to fail authentication comes from a loopback address of its own, so
 * these checks never lock out the address the rest of the file uses.
 */
import { TestCluster, type HttpResult, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

const LOCKOUT_SECS = 5;

describe('tokens and lockout on a three-node cluster (real processes)', () => {
  const cluster = new TestCluster({
    env: { COFFER_AUTH_MAX_FAILURES: '4', COFFER_AUTH_WINDOW_SECS: '120', COFFER_AUTH_LOCKOUT_SECS: String(LOCKOUT_SECS) },
  });
  let probeIp = 0;
  /** A fresh loopback source address (127.0.5.1, 127.0.5.2, …) for a request that should get 401. */
  const freshIp = (): string => `127.0.${5 + Math.floor(probeIp / 250)}.${(probeIp++ % 250) + 1}`;

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  const self = (n: NodeHandle, token: string, ip = freshIp()): Promise<HttpResult> => cluster.httpFrom(n, ip, 'GET', '/v1/tokens/self?consistency=stale', undefined, token);

  async function mint(name: string, ttl?: string): Promise<string> {
    const r = await cluster.call(await cluster.leader(), 'POST', '/v1/tokens', ttl === undefined ? { name, role: 'admin' } : { name, role: 'admin', ttl });
    expect([name, r.status]).toEqual([name, 200]);
    return r.body.token as string;
  }
  /** Waits until `token` gets `status` on every node. */
  async function everywhere(token: string, status: number, what: string, timeoutMs = 10_000): Promise<void> {
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await self(n, token)).status === status, timeoutMs, `${what} on ${n.id}`);
    }
  }

  test('a token with a short TTL works on every node, then is refused with 401 on every node', async () => {
    const started = Date.now();
    const t = await mint('short-lived', '5s');
    const r = await cluster.call(cluster.nodes[0] as NodeHandle, 'GET', '/v1/tokens');
    const rec = r.body.tokens.find((x: { name: string }) => x.name === 'short-lived');
    expect(Date.parse(rec.expiresAt) - started).toBeGreaterThan(4_000);
    expect(Date.parse(rec.expiresAt) - started).toBeLessThan(7_000);
    await everywhere(t, 200, 'the fresh token works', 4_000);
    await everywhere(t, 401, 'the expired token is refused', 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(rec.expiresAt));
    for (const n of cluster.nodes) {
      const again = await self(n, t);
      expect([n.id, again.status, again.body.error.code]).toEqual([n.id, 401, 'invalid_token']);
      const listed = (await cluster.call(n, 'GET', '/v1/tokens?consistency=stale')).body.tokens.find((x: { name: string }) => x.name === 'short-lived');
      expect([n.id, listed.status]).toEqual([n.id, 'expired']);
    }
    // An expired token cannot be rotated back to life.
    const rot = await cluster.call(cluster.nodes[1] as NodeHandle, 'POST', '/v1/tokens/short-lived/rotate', {});
    expect(rot.status).toBe(400);
  });

  test('a token revoked through a follower is refused on every node', async () => {
    const t = await mint('to-revoke');
    // Usable on every node as soon as its creation is acknowledged, without waiting.
    for (const n of cluster.nodes) expect([n.id, (await self(n, t)).status]).toEqual([n.id, 200]);
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    const rev = await cluster.call(follower, 'DELETE', '/v1/tokens/to-revoke');
    expect(rev.status).toBe(200);
    expect(typeof rev.body.revokedAt).toBe('string');
    await everywhere(t, 401, 'the revoked token is refused', 5_000);
    for (const n of cluster.nodes) {
      const listed = (await cluster.call(n, 'GET', '/v1/tokens?consistency=stale')).body.tokens.find((x: { name: string }) => x.name === 'to-revoke');
      expect([n.id, listed.status, listed.revokedAt]).toEqual([n.id, 'revoked', rev.body.revokedAt]);
    }
  });

  test('after rotation the old token is refused and the new one works, on every node', async () => {
    const old = await mint('to-rotate');
    await everywhere(old, 200, 'the token works');
    const rot = await cluster.call(cluster.nodes[2] as NodeHandle, 'POST', '/v1/tokens/to-rotate/rotate', {});
    expect(rot.status).toBe(200);
    const fresh = rot.body.token as string;
    expect(fresh).not.toBe(old);
    // The new token works everywhere at once (a node that does not know it catches up first).
    for (const n of cluster.nodes) expect([n.id, (await self(n, fresh)).status]).toEqual([n.id, 200]);
    await everywhere(old, 401, 'the old token is refused', 5_000);
    for (const n of cluster.nodes) expect((await self(n, fresh)).body).toMatchObject({ name: 'to-rotate', role: 'admin', status: 'active' });
  });

  test('repeated failures from one address lock it out on every node (429 + Retry-After), others unaffected, until the lockout ends', async () => {
    const bad = '127.0.9.1';
    const good = '127.0.9.2';
    // Four failures (the limit), spread over the nodes.
    for (let i = 0; i < 4; i++) {
      const r = await cluster.httpFrom(cluster.nodes[i % 3] as NodeHandle, bad, 'GET', '/v1/tokens', undefined, `cof_wrong_${i}`);
      expect(r.status).toBe(401);
    }
    const lockedAt = Date.now();
    for (const n of cluster.nodes) {
      // Even a valid token is refused from the locked address, on every node.
      await cluster.eventually(async () => (await cluster.httpFrom(n, bad, 'GET', '/v1/tokens/self')).status === 429, 5_000, `lockout seen on ${n.id}`);
      const r = await cluster.httpFrom(n, bad, 'GET', '/v1/tokens/self');
      expect([n.id, r.status, r.body.error.code]).toEqual([n.id, 429, 'locked_out']);
      const retry = r.headers.get('retry-after');
      expect(retry).toMatch(/^\d+$/);
      expect(Number(retry)).toBeGreaterThanOrEqual(1);
      expect(Number(retry)).toBeLessThanOrEqual(LOCKOUT_SECS);
      // Another address is not affected: its valid token works and its bad token is a plain 401.
      expect((await cluster.httpFrom(n, good, 'GET', '/v1/tokens/self')).status).toBe(200);
      expect((await cluster.httpFrom(n, good, 'GET', '/v1/tokens/self', undefined, 'cof_wrong_other')).status).toBe(401);
    }
    // The lockout ends after its window, on every node.
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await cluster.httpFrom(n, bad, 'GET', '/v1/tokens/self')).status === 200, (LOCKOUT_SECS + 10) * 1000, `lockout ends on ${n.id}`);
    }
    expect(Date.now() - lockedAt).toBeGreaterThanOrEqual((LOCKOUT_SECS - 1) * 1000);
  });
});
