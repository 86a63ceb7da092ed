/**
 * Upgrade gating through real processes: the leader proposes a command only when every member has
 * advertised (peer RPC `hello`, signed with the cluster key) that it can apply that command's
 * version. A member that advertises less — as an older build would — holds those writes back with
 * 503 `upgrade_pending`, reads keep working, and once it advertises support writes resume.
 */
import { derivePeerKey, signPeerRequest } from '@coffer/node';
import { SUPPORTED_COMMAND_VERSIONS } from '@coffer/state';
import { TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(120_000);

describe('upgrade gating', () => {
  const cluster = new TestCluster();

  beforeAll(async () => {
    await cluster.start();
    await cluster.bootstrapped();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  async function hello(leader: NodeHandle, as: NodeHandle, commands: Record<string, number>): Promise<number> {
    const body = new TextEncoder().encode(JSON.stringify({ commands }));
    const p = '/raft/v1/rpc/hello';
    const key = derivePeerKey(new Uint8Array(Buffer.from(cluster.clusterKey, 'base64')));
    const headers = signPeerRequest(key, { method: 'POST', path: p, from: as.id, to: leader.id, body });
    const r = await fetch(`${leader.raft}${p}`, { method: 'POST', body, headers: { ...headers, 'content-type': 'application/json' } });
    await r.arrayBuffer();
    return r.status;
  }

  test('a member that cannot apply a command version holds it back; writes resume once it can', async () => {
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    expect((await cluster.http(leader, 'PUT', '/v1/secrets/up/a', { value: 'before' })).status).toBe(200);

    // The follower now says it cannot apply secret.put at the current version.
    const older: Record<string, number> = { ...SUPPORTED_COMMAND_VERSIONS };
    delete older['secret.put'];
    expect(await hello(leader, follower, older)).toBe(200);
    const held = await cluster.http(leader, 'PUT', '/v1/secrets/up/a', { value: 'during' });
    expect(held.status).toBe(503);
    expect(held.body.error.code).toBe('upgrade_pending');
    expect(held.headers.get('retry-after')).not.toBeNull();
    // Other commands and reads are unaffected.
    expect((await cluster.http(leader, 'GET', '/v1/secrets/up/a', undefined, null)).body.value).toBe('before');
    expect((await cluster.http(leader, 'PUT', '/v1/allowlist', { cidrs: ['127.0.0.0/8', '::1/128'] })).status).toBe(200);

    // Upgraded: it advertises the version, and the write goes through.
    expect(await hello(leader, follower, { ...SUPPORTED_COMMAND_VERSIONS })).toBe(200);
    expect((await cluster.http(leader, 'PUT', '/v1/secrets/up/a', { value: 'after' })).status).toBe(200);
  });

  test('hello is refused without the cluster key and with a malformed table', async () => {
    const leader = await cluster.leader();
    const unsigned = await fetch(`${leader.raft}/raft/v1/rpc/hello`, { method: 'POST', body: JSON.stringify({ commands: {} }) });
    await unsigned.arrayBuffer();
    expect(unsigned.status).toBe(401);
    const follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    expect(await hello(leader, follower, { 'secret.put': -1 } as Record<string, number>)).toBe(400);
  });

  test('a member that is down does not hold newer command types back after a leader change (the replicated floor)', async () => {
    // Once every member has said hello, the leader records what all of them apply.
    await cluster.eventually(async () => {
      const st = await cluster.http(await cluster.leader(), 'GET', '/v1/cluster');
      return JSON.stringify(st.body.commandFloor?.members) === JSON.stringify(cluster.nodes.map((n) => n.id).sort());
    }, 15_000, 'the command floor lists every member');
    const leader = await cluster.leader();
    const [down, next] = cluster.nodes.filter((n) => n !== leader) as [NodeHandle, NodeHandle];
    await cluster.kill(down);
    // A new leader that never hears from `down`: it falls back to the floor for it.
    const moved = await cluster.http(leader, 'POST', '/v1/cluster/leader/transfer', { to: next.id });
    expect(moved.status).toBe(200);
    expect((await cluster.leader(15_000, [leader, next])).id).toBe(next.id);
    // transit.create is newer than the baseline: without the floor this was 503 upgrade_pending.
    const created = await cluster.http(next, 'POST', '/v1/transit/keys/after-failover');
    expect([created.status, created.body?.errors ?? created.body?.error ?? null]).toEqual([200, null]);
    const enc = await cluster.http(leader, 'POST', '/v1/transit/encrypt/after-failover', { plaintext: Buffer.from('hi').toString('base64') });
    expect(enc.status).toBe(200);
    await cluster.spawnNode(down);
    await cluster.waitUp(down);
  });
});
