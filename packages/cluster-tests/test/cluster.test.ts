/**
 * A real three-node cluster: `./bin/coffer server` processes on loopback, driven over HTTP.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(120_000);

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

describe('three-node cluster (real processes)', () => {
  const cluster = new TestCluster({ snapshotEntries: 50 });

  beforeAll(async () => {
    await cluster.start();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  async function followerOf(leader: NodeHandle): Promise<NodeHandle> {
    const f = cluster.nodes.find((n) => n !== leader && n.proc?.exitCode === null && n.proc?.signalCode === null);
    if (f === undefined) throw new Error('no follower');
    return f;
  }

  test('elects a leader; followers answer health 429, or 200 with standbyok', async () => {
    const leader = await cluster.leader();
    const follower = await followerOf(leader);
    expect((await cluster.http(leader, 'GET', '/v1/sys/health', undefined, null)).status).toBe(200);
    // Health means ready: a follower says 429 once it has caught up under this leader (503 before).
    await cluster.eventually(async () => (await cluster.http(follower, 'GET', '/v1/sys/health', undefined, null)).status === 429, 10_000, 'follower ready');
    const h = await cluster.http(follower, 'GET', '/v1/sys/health', undefined, null);
    expect(h.status).toBe(429);
    expect(h.body).toMatchObject({ initialized: true, standby: true });
    expect((await cluster.http(follower, 'GET', '/v1/sys/health?standbyok=true', undefined, null)).status).toBe(200);
  });

  test('a write through a follower is readable on every node', async () => {
    const leader = await cluster.leader();
    const follower = await followerOf(leader);
    await cluster.eventually(async () => (await cluster.http(follower, 'PUT', '/v1/secrets/app/db-password', { value: 'hunter2-canary-7f3a' })).status === 200, 20_000, 'write via follower');
    for (const n of cluster.nodes) {
      const r = await cluster.http(n, 'GET', '/v1/secrets/app/db-password', undefined, null);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ name: 'app/db-password', value: 'hunter2-canary-7f3a' });
    }
  });

  test('check-and-set: a stale cas is refused with 409 and nothing changes', async () => {
    const leader = await cluster.leader();
    const first = await cluster.http(leader, 'PUT', '/v1/secrets/app/cas', { value: 'one', cas: 0 });
    expect(first.status).toBe(200);
    expect(first.body.version).toBe(1);
    const second = await cluster.http(leader, 'PUT', '/v1/secrets/app/cas', { value: 'two', cas: 1 });
    expect(second.status).toBe(200);
    const stale = await cluster.http(leader, 'PUT', '/v1/secrets/app/cas', { value: 'three', cas: 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe('cas_conflict');
    const read = await cluster.http(leader, 'GET', '/v1/secrets/app/cas', undefined, null);
    expect(read.body).toMatchObject({ version: 2, value: 'two' });
  });

  test('peer port refuses unauthenticated and forged requests', async () => {
    const n = cluster.nodes[0] as NodeHandle;
    const plain = await fetch(`${n.raft}/raft/v1/messages`, { method: 'POST', body: new Uint8Array([1, 0]) });
    expect(plain.status).toBe(401);
    const forged = await fetch(`${n.raft}/raft/v1/rpc/register`, {
      method: 'POST',
      headers: { 'x-coffer-from': 'n2', 'x-coffer-ts': String(Date.now()), 'x-coffer-nonce': '0'.repeat(32), 'x-coffer-sig': 'f'.repeat(64) },
      body: JSON.stringify({ raftAddr: 'http://127.0.0.1:1', apiAddr: 'http://127.0.0.1:1' }),
    });
    expect(forged.status).toBe(401);
  });

  test('leader SIGKILL: a new leader takes over and no acknowledged write is lost; the old leader catches up', async () => {
    const leader = await cluster.leader();
    const acked: [string, string][] = [];
    for (let i = 0; i < 60; i++) {
      const r = await cluster.http(leader, 'PUT', `/v1/secrets/load/k${i % 7}`, { value: `v${i}` });
      if (r.status === 200) acked.push([`load/k${i % 7}`, `v${i}`]);
    }
    expect(acked.length).toBe(60);
    await cluster.kill(leader);
    const survivors = cluster.nodes.filter((n) => n !== leader);
    const next = await cluster.leader(20_000, survivors);
    expect(next).not.toBe(leader);
    const latest = new Map(acked);
    for (const n of survivors) {
      for (const [name, value] of latest) {
        const r = await cluster.http(n, 'GET', `/v1/secrets/${name}`, undefined, null);
        expect(r.status).toBe(200);
        expect(r.body.value).toBe(value);
      }
    }
    // Writes continue (more than the snapshot threshold, so the restarted node may need a snapshot).
    for (let i = 0; i < 80; i++) expect((await cluster.http(next, 'PUT', `/v1/secrets/after/k${i % 5}`, { value: `w${i}` })).status).toBe(200);
    await cluster.spawnNode(leader);
    await cluster.eventually(async () => {
      const r = await cluster.http(leader, 'GET', '/v1/secrets/after/k4?consistency=stale', undefined, null);
      return r.status === 200 && r.body.value === 'w79';
    }, 30_000, 'restarted node catches up');
  });

  test('a canary value and raw tokens never appear in data files or logs', async () => {
    const canary = Buffer.from('hunter2-canary-7f3a');
    const token = Buffer.from(cluster.bootstrapToken);
    for (const f of filesUnder(cluster.root)) {
      const bytes = readFileSync(f);
      expect({ file: f, canary: bytes.includes(canary) }).toEqual({ file: f, canary: false });
      expect({ file: f, token: bytes.includes(token) }).toEqual({ file: f, token: false });
    }
  });
});
