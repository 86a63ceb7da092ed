/**
 * Membership and replication through real processes: a restarted follower catches up through the
 * log and, after compaction, through a snapshot; a fourth node joins and becomes a voter; a removed
 * node never answers 200 on health (also after a restart); leadership transfer with and without
 * a target.
 */
import { TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

/** Runs `fn` over `items` with at most `width` in flight. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

describe('membership and catch-up (real processes)', () => {
  // Snapshot every 50 applied entries and keep only 20 behind it, so a follower that misses a
  // few hundred writes cannot catch up from the log.
  const cluster = new TestCluster({ snapshotEntries: 50, env: { COFFER_SNAPSHOT_CATCHUP_ENTRIES: '20' } });

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
  });
  afterAll(async () => {
    await cluster.stop(process.env['COFFER_E2E_KEEP'] === '1');
  });

  const running = (): NodeHandle[] => cluster.nodes.filter((n) => cluster.isRunning(n));

  /** Writes name → value through the current leader, retrying across elections. */
  async function write(name: string, value: string): Promise<void> {
    await cluster.eventually(async () => {
      const leader = await cluster.leader(20_000, running());
      return (await cluster.http(leader, 'PUT', `/v1/secrets/${name}`, { value })).status === 200;
    }, 30_000, `write ${name}`);
  }

  async function hasAll(n: NodeHandle, expected: ReadonlyMap<string, string>): Promise<boolean> {
    for (const [name, value] of expected) {
      const r = await cluster.http(n, 'GET', `/v1/secrets/${name}?consistency=stale`, undefined, null);
      if (r.status !== 200 || r.body.value !== value) return false;
    }
    return true;
  }

  async function sentSnapshots(): Promise<number> {
    let sum = 0;
    for (const n of running()) sum += await cluster.metric(n, 'coffer_raft_snapshots_sent_total');
    return sum;
  }

  test('a restarted follower catches up through the log when it lags a little (no snapshot)', async () => {
    const leader = await cluster.leader();
    const f = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    const stopped = await cluster.terminate(f);
    expect(stopped.code).toBe(0);
    const expected = new Map<string, string>();
    for (let i = 0; i < 8; i++) {
      expected.set(`log/k${i}`, `log-value-${i}`);
      await write(`log/k${i}`, `log-value-${i}`);
    }
    await cluster.spawnNode(f);
    await cluster.eventually(() => hasAll(f, expected), 30_000, 'follower catches up from the log');
    expect(await cluster.metric(f, 'coffer_raft_snapshots_installed_total')).toBe(0);
  });

  test('after compaction a restarted follower is sent a snapshot and has every value', async () => {
    const leader = await cluster.leader();
    const f = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    const sentBefore = await sentSnapshots();
    expect((await cluster.terminate(f)).code).toBe(0);
    const expected = new Map<string, string>();
    const items = Array.from({ length: 240 }, (_, i) => i);
    for (const i of items) expected.set(`snap/k${i % 60}`, `snap-value-${i}`);
    // Keys are written in rounds so the last value of each key is the highest round's.
    for (let round = 0; round < 4; round++) {
      await pool(items.slice(round * 60, round * 60 + 60), 6, (i) => write(`snap/k${i % 60}`, `snap-value-${i}`));
    }
    await cluster.spawnNode(f);
    await cluster.eventually(() => hasAll(f, expected), 60_000, 'follower catches up through a snapshot');
    expect(await cluster.metric(f, 'coffer_raft_snapshots_installed_total')).toBeGreaterThanOrEqual(1);
    expect(await sentSnapshots()).toBeGreaterThan(sentBefore);
    // The earlier values are still there too.
    expect((await cluster.http(f, 'GET', '/v1/secrets/log/k7?consistency=stale', undefined, null)).body.value).toBe('log-value-7');
  });

  test('leadership transfer to a named voter, then to the best candidate', async () => {
    const leader = await cluster.leader();
    const target = cluster.nodes.find((n) => n !== leader && cluster.isRunning(n)) as NodeHandle;
    const r = await cluster.http(leader, 'POST', '/v1/cluster/leader/transfer', { to: target.id });
    expect([r.status, r.body]).toEqual([200, { leader: target.id }]);
    expect((await cluster.leader(20_000)).id).toBe(target.id);
    // Without "to", sent to a follower (forwarded to the leader): leadership moves off target.
    const via = cluster.nodes.find((n) => n !== target && cluster.isRunning(n)) as NodeHandle;
    // Right after a transfer a follower may still point at the old leader: 503 + Retry-After, retry.
    let r2 = await cluster.http(via, 'POST', '/v1/cluster/leader/transfer', {});
    for (let i = 0; i < 50 && r2.status === 503; i++) {
      expect(r2.headers.get('retry-after')).not.toBeNull();
      await new Promise((r) => setTimeout(r, 200));
      r2 = await cluster.http(via, 'POST', '/v1/cluster/leader/transfer', {});
    }
    expect([r2.status, r2.body]).toEqual([200, { leader: expect.any(String) }]);
    expect(r2.body.leader).not.toBe(target.id);
    await cluster.eventually(async () => (await cluster.leader(20_000)).id === r2.body.leader, 20_000, 'new leader reports itself');
    const bad = await cluster.http(via, 'POST', '/v1/cluster/leader/transfer', { to: 'nobody' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_request']);
    await write('after/transfer', 'still-writable');
  });

  test('a fourth node joins, becomes a voter and has the data; a removed node never answers 200 on health', async () => {
    const leader = await cluster.leader();
    const n4 = await cluster.addHandle('n4');
    const add = await cluster.http(leader, 'POST', '/v1/cluster/members', { id: 'n4', raftAddr: n4.raft, apiAddr: n4.api });
    expect([add.status, add.body]).toEqual([200, { id: 'n4', raftAddr: n4.raft, apiAddr: n4.api, suffrage: 'learner' }]);
    const again = await cluster.http(leader, 'POST', '/v1/cluster/members', { id: 'n4', raftAddr: n4.raft, apiAddr: n4.api });
    expect([again.status, again.body.error.code]).toEqual([409, 'already_exists']);
    await cluster.spawnNode(n4, { COFFER_JOIN: leader.api });
    await cluster.eventually(async () => {
      const st = await cluster.http(await cluster.leader(), 'GET', '/v1/cluster');
      return st.status === 200 && st.body.members.some((m: { id: string; suffrage: string }) => m.id === 'n4' && m.suffrage === 'voter');
    }, 60_000, 'n4 promoted to voter');
    await cluster.eventually(async () => {
      const r = await cluster.http(n4, 'GET', '/v1/secrets/snap/k59?consistency=stale', undefined, null);
      return r.status === 200 && r.body.value === 'snap-value-239';
    }, 30_000, 'n4 has the data');
    expect((await cluster.http(n4, 'GET', '/v1/secrets/after/transfer', undefined, null)).body.value).toBe('still-writable');
    expect((await cluster.http(n4, 'PUT', '/v1/secrets/via/n4', { value: 'written-through-n4' })).status).toBe(200);

    // Remove one of the original followers.
    const lead = await cluster.leader();
    const victim = cluster.nodes.find((n) => n !== lead && n !== n4 && cluster.isRunning(n)) as NodeHandle;
    const del = await cluster.http(lead, 'DELETE', `/v1/cluster/members/${victim.id}`);
    expect([del.status, del.body]).toEqual([200, { id: victim.id, removed: true }]);
    const gone = await cluster.http(lead, 'DELETE', `/v1/cluster/members/${victim.id}`);
    expect([gone.status, gone.body.error.code]).toEqual([404, 'not_found']);
    const st = await cluster.http(lead, 'GET', '/v1/cluster');
    expect(st.body.members.map((m: { id: string }) => m.id)).not.toContain(victim.id);
    expect(st.body.members.filter((m: { suffrage: string }) => m.suffrage === 'voter')).toHaveLength(3);

    const members = cluster.nodes.filter((n) => n !== victim && cluster.isRunning(n));
    const neverHealthy = async (ms: number): Promise<void> => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const h = await cluster.http(victim, 'GET', '/v1/sys/health', undefined, null);
        expect([victim.id, h.status]).not.toEqual([victim.id, 200]);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    // The cluster keeps working while the removed node is still running.
    await Promise.all([
      neverHealthy(4_000),
      (async () => {
        for (let i = 0; i < 10; i++) await write(`after/remove${i}`, `r${i}`);
      })(),
    ]);
    for (const n of members) {
      await cluster.eventually(async () => (await cluster.http(n, 'GET', '/v1/secrets/after/remove9?consistency=stale', undefined, null)).body?.value === 'r9', 20_000, `${n.id} has the write`);
    }
    // It learns that it was removed: 503 on health (also with standbyok) and 503 `removed` on
    // every other route, reads included.
    const removedEverywhere = async (): Promise<void> => {
      await cluster.eventually(async () => (await cluster.http(victim, 'GET', '/v1/sys/health?standbyok=true', undefined, null)).status === 503, 15_000, 'removed node answers 503 with standbyok');
      const read = await cluster.http(victim, 'GET', '/v1/secrets/after/remove9?consistency=stale', undefined, null);
      expect([read.status, read.body.error.code]).toEqual([503, 'removed']);
      const w = await cluster.http(victim, 'PUT', '/v1/secrets/after/removed-write', { value: 'no' });
      expect([w.status, w.body.error.code]).toEqual([503, 'removed']);
    };
    await removedEverywhere();
    // Restarted, it still never claims health, and the members keep their leader.
    expect((await cluster.terminate(victim)).code).toBe(0);
    await cluster.spawnNode(victim);
    await neverHealthy(4_000);
    const after = await cluster.leader(20_000, members);
    expect(after).not.toBe(victim);
    await write('after/restart-removed', 'ok');
    await removedEverywhere();
  });

  test('a member removed while it is down learns it on restart and stops serving', async () => {
    const lead = await cluster.leader();
    const ids = (await cluster.call(lead, 'GET', '/v1/cluster')).body.members.map((m: { id: string }) => m.id) as string[];
    const down = cluster.nodes.find((n) => n !== lead && ids.includes(n.id)) as NodeHandle;
    expect((await cluster.terminate(down)).code).toBe(0);
    const del = await cluster.call(lead, 'DELETE', `/v1/cluster/members/${down.id}`);
    expect(del.status).toBe(200);
    await write('after/remove-down', 'two voters left');
    await cluster.spawnNode(down);
    // Its Raft messages reach the members, which tell it it was removed.
    await cluster.eventually(async () => {
      const r = await cluster.http(down, 'GET', '/v1/secrets/after/remove-down?consistency=stale', undefined, null);
      return r.status === 503 && r.body.error.code === 'removed';
    }, 30_000, 'the restarted removed node learns it was removed');
    expect((await cluster.http(down, 'GET', '/v1/sys/health?standbyok=true', undefined, null)).status).toBe(503);
    await write('after/remove-down-2', 'still writable');
  });
});
