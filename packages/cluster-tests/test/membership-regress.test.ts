/**
 * Regressions found by the fault-injection runs, pinned down on their own:
 *   - a removed member, wiped and re-added under the same id, replays its own old removal from
 *     the log while catching up and used to mark itself removed for good (503 to everything);
 *   - while catching up it answered valid clients 401/403 from its empty state (now 503);
 *   - a write forwarded by a follower to a paused leader hung for the 15 s forwarding timeout
 *     (now answered 503 as soon as the follower stops following that leader).
 */
import { rmSync } from 'node:fs';
import { TestCluster, sleep, type NodeHandle } from '../src/harness';

jest.setTimeout(120_000);

describe('membership and forwarding regressions (real processes)', () => {
  const cluster = new TestCluster({ env: { COFFER_ELECTION_MS: '1000' } });

  beforeAll(async () => {
    await cluster.start();
    const leader = await cluster.leader();
    await cluster.eventually(async () => (await cluster.http(leader, 'PUT', '/v1/secrets/reg/seed', { value: 'v' })).status === 200, 20_000, 'first write');
  });
  afterAll(async () => {
    for (const n of cluster.nodes) n.proc?.kill('SIGCONT');
    await cluster.stop();
  });

  test('a removed member, wiped and re-added with COFFER_JOIN, becomes a voter; meanwhile it never answers 401/403', async () => {
    const leader = await cluster.leader();
    const victim = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    expect((await cluster.http(leader, 'DELETE', `/v1/cluster/members/${victim.id}`)).status).toBe(200);
    await cluster.kill(victim);
    rmSync(victim.dataDir, { recursive: true, force: true });
    await cluster.spawnNode(victim, { COFFER_JOIN: leader.api });
    const seen = new Set<number>();
    await cluster.eventually(
      async () => {
        const r = await cluster.http(victim, 'GET', '/v1/secrets/reg/seed');
        seen.add(r.status);
        const m = await cluster.http(leader, 'GET', '/v1/cluster');
        return r.status === 200 && (m.body.members as { id: string; suffrage: string }[]).some((x) => x.id === victim.id && x.suffrage === 'voter');
      },
      60_000,
      'rejoined node becomes a voter and serves reads',
    );
    expect([...seen].filter((s) => s !== 200 && s !== 503)).toEqual([]);
  });

  test('a write forwarded to a paused leader is answered 503 soon after the follower stops following it', async () => {
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    leader.proc?.kill('SIGSTOP');
    try {
      // A write the follower forwards over HTTP (role writes are; secret puts go through Raft).
      const t = Date.now();
      const r = await cluster.http(follower, 'PUT', '/v1/roles/reg-fwd', { rules: [{ paths: ['reg/*'], actions: ['secret.read'] }] });
      const took = Date.now() - t;
      expect(r.status).toBe(503);
      // Followers stop following after 1–2 election timeouts (1 s each here); the forwarding
      // timeout is 15 s.
      expect(took).toBeLessThan(6_000);
      // A secret put through the same follower meanwhile: answered as soon, by the next leader or 503.
      const t2 = Date.now();
      const put = await cluster.http(follower, 'PUT', '/v1/secrets/reg/fwd', { value: 'x' });
      expect([200, 503]).toContain(put.status);
      expect(Date.now() - t2).toBeLessThan(6_000);
    } finally {
      leader.proc?.kill('SIGCONT');
    }
    await sleep(500);
    await cluster.eventually(async () => (await cluster.http(follower, 'PUT', '/v1/secrets/reg/fwd', { value: 'y' })).status === 200, 20_000, 'writes again');
  });
});
