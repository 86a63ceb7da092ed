/**
 * Quorum-loss recovery with real processes on loopback: two of three data dirs are destroyed, ONE
 * offline command (`coffer recover`) turns the survivor into a new one-member cluster keeping all
 * its data, and two fresh nodes join it and catch up.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { runCli, TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

describe('quorum loss: coffer recover on the survivor, then fresh nodes join', () => {
  // A low snapshot threshold: part of the data is in the survivor's snapshot, part only in its log.
  const cluster = new TestCluster({ snapshotEntries: 40 });
  // `coffer recover` opens the store with the integrity keys from the server's variables.
  const keys = { COFFER_CLUSTER_KEY: cluster.clusterKey, COFFER_LOCAL_MASTER_KEY: cluster.masterKey };
  // Set while a test runs; a test that throws leaves it set and the temp dir (logs) is kept.
  let failed = false;

  beforeAll(async () => {
    await cluster.start();
  });
  afterAll(async () => {
    if (failed) process.stderr.write(`recovery test failed: logs kept in ${cluster.root}\n`);
    await cluster.stop(failed);
  });

  const expected = new Map<string, string>();

  async function readAll(n: NodeHandle, what: string): Promise<void> {
    await cluster.eventually(
      async () => {
        for (const [name, value] of expected) {
          const r = await cluster.http(n, 'GET', `/v1/secrets/${name}?consistency=stale`, undefined, null);
          if (r.status !== 200 || r.body.value !== value) return false;
        }
        return true;
      },
      60_000,
      what,
    );
    // And one linearizable read through the node, once it is caught up.
    const [name, value] = [...expected][expected.size - 1] as [string, string];
    const r = await cluster.http(n, 'GET', `/v1/secrets/${name}`, undefined, null);
    expect({ node: n.id, status: r.status, value: r.body?.value }).toEqual({ node: n.id, status: 200, value });
  }

  test('refuses a data dir without a store, and a store still in use', async () => {
    const [n1] = cluster.nodes as [NodeHandle];
    await cluster.leader();
    const busy = await runCli(['recover', '--data-dir', n1.dataDir, '--node-id', n1.id], keys);
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/stop the node/);
    const none = await runCli(['recover', '--data-dir', `${cluster.root}/nowhere`, '--node-id', 'n9'], keys);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no store/);
  });

  test('write, kill all, wipe two, recover the survivor, join two fresh nodes', async () => {
    failed = true;
    const leader = await cluster.leader();
    // 120 writes over 12 names (more than the snapshot threshold), with a CAS chain and a delete.
    for (let i = 0; i < 120; i++) {
      const name = `rec/k${i % 12}`;
      const r = await cluster.http(leader, 'PUT', `/v1/secrets/${name}`, { value: `v${i}` });
      expect(r.status).toBe(200);
      expected.set(name, `v${i}`);
    }
    const cas = await cluster.http(leader, 'PUT', '/v1/secrets/rec/cas', { value: 'c1', cas: 0 });
    expect(cas.status).toBe(200);
    expected.set('rec/cas', 'c1');
    expect((await cluster.http(leader, 'PUT', '/v1/secrets/rec/gone', { value: 'x' })).status).toBe(200);
    expect((await cluster.http(leader, 'DELETE', '/v1/secrets/rec/gone')).status).toBeLessThan(300);
    // The survivor is a follower: it may not know the latest commit index; recover keeps its log.
    const survivor = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    await readAll(survivor, 'survivor has every write before the kill');

    for (const n of cluster.nodes) await cluster.kill(n);
    const lost = cluster.nodes.filter((n) => n !== survivor);
    for (const n of lost) rmSync(n.dataDir, { recursive: true, force: true });

    const dry = await runCli(['recover', '--data-dir', survivor.dataDir, '--node-id', survivor.id, '--dry-run', '--json'], keys);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan).toMatchObject({ dryRun: true, previousMembers: ['n1', 'n2', 'n3'] });
    expect(plan.index).toBeGreaterThan(120);
    expect(readdirSync(survivor.dataDir).filter((e) => e.startsWith('store.pre-recover'))).toEqual([]);

    const rec = await runCli(['recover', '--data-dir', survivor.dataDir, '--node-id', survivor.id, '--json'], keys);
    expect({ code: rec.code, stderr: rec.stderr }).toEqual({ code: 0, stderr: '' });
    const done = JSON.parse(rec.stdout);
    expect(done.index).toBe(plan.index);
    expect(done.secrets).toBe(plan.secrets);
    expect(existsSync(done.backupDir)).toBe(true);

    // The survivor alone is a working cluster with all the data.
    await cluster.spawnNode(survivor);
    expect(await cluster.leader(30_000, [survivor])).toBe(survivor);
    await readAll(survivor, 'recovered survivor serves every write');
    expect((await cluster.http(survivor, 'GET', '/v1/secrets/rec/gone')).status).toBe(404);
    const members = await cluster.http(survivor, 'GET', '/v1/cluster');
    expect(members.status).toBe(200);
    expect(members.body.members.map((m: { id: string; suffrage: string }) => [m.id, m.suffrage])).toEqual([[survivor.id, 'voter']]);
    // It takes writes on its own.
    expect((await cluster.http(survivor, 'PUT', '/v1/secrets/rec/after', { value: 'solo' })).status).toBe(200);
    expected.set('rec/after', 'solo');
    const cas2 = await cluster.http(survivor, 'PUT', '/v1/secrets/rec/cas', { value: 'c2', cas: 1 });
    expect(cas2.status).toBe(200);
    expected.set('rec/cas', 'c2');

    // Fresh nodes join and catch up (the survivor's log was compacted: they get a snapshot).
    for (const n of lost) {
      await cluster.spawnNode(n, { COFFER_JOIN: survivor.api });
      await readAll(n, `${n.id} catches up after joining`);
    }
    // A three-member cluster again: every member is a voter and writes go through.
    await cluster.eventually(
      async () => {
        const r = await cluster.http(survivor, 'GET', '/v1/cluster');
        if (r.status !== 200) return false;
        const got = (r.body.members as { id: string; suffrage: string }[]).map((m) => `${m.id}:${m.suffrage}`).sort();
        return JSON.stringify(got) === JSON.stringify(['n1:voter', 'n2:voter', 'n3:voter']);
      },
      60_000,
      'both fresh nodes promoted to voters',
    );
    const leader2 = await cluster.leader(30_000);
    await cluster.eventually(async () => (await cluster.http(leader2, 'PUT', '/v1/secrets/rec/final', { value: 'three' })).status === 200, 30_000, 'write on the re-formed cluster');
    expected.set('rec/final', 'three');
    for (const n of cluster.nodes) await readAll(n, `${n.id} has every write at the end`);
    failed = false;
  });
});
