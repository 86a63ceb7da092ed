/**
 * Backups through real processes and the CLI: `coffer snapshot save` from a running cluster (sealed:
 * no plaintext in the file), `coffer cluster restore` replacing the state on every node online, and
 * `coffer snapshot restore --data-dir` preparing a new one-member cluster offline that another node
 * then joins.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

describe('backup and restore', () => {
  const cluster = new TestCluster();
  const restored = new TestCluster({ size: 0 });
  const canary = `canary-${Date.now()}-backup`;
  let env: Record<string, string>;
  let file: string;

  beforeAll(async () => {
    await cluster.start();
    await cluster.bootstrapped();
    env = { COFFER_ADDR: cluster.nodes.map((n) => n.api).join(','), COFFER_TOKEN: cluster.bootstrapToken };
    file = path.join(cluster.root, 'backup.snap');
  });
  afterAll(async () => {
    await restored.stop();
    await cluster.stop();
  });

  async function valueOn(n: NodeHandle, name: string, c: TestCluster = cluster): Promise<number | string> {
    const r = await c.http(n, 'GET', `/v1/secrets/${name}?consistency=stale`, undefined, null);
    return r.status === 200 ? r.body.value : r.status;
  }

  test('snapshot save writes a sealed backup', async () => {
    const leader = await cluster.leader();
    for (let i = 1; i <= 5; i++) expect((await cluster.http(leader, 'PUT', `/v1/secrets/bk/s${i}`, { value: `${canary}-${i}` })).status).toBe(200);
    const saved = await runCli(['snapshot', 'save', file], env);
    expect(saved).toMatchObject({ code: 0 });
    const bytes = readFileSync(file);
    expect(bytes.length).toBeGreaterThan(100);
    expect(bytes.includes(Buffer.from(canary))).toBe(false);
    expect(bytes.includes(Buffer.from(cluster.bootstrapToken))).toBe(false);
  });

  test('cluster restore replaces the state on every node through consensus', async () => {
    const leader = await cluster.leader();
    expect((await cluster.http(leader, 'PUT', '/v1/secrets/bk/after-backup', { value: 'later' })).status).toBe(200);
    expect((await cluster.http(leader, 'DELETE', '/v1/secrets/bk/s1')).status).toBe(200);
    const r = await runCli(['cluster', 'restore', file], env);
    expect(r).toMatchObject({ code: 0 });
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await valueOn(n, 'bk/s1')) === `${canary}-1` && (await valueOn(n, 'bk/after-backup')) === 404, 20_000, `restore applied on ${n.id}`);
    }
  });

  test('snapshot restore --data-dir makes a new one-member cluster that others can join', async () => {
    const dir = path.join(restored.root, 'r1');
    // No --node-id: the data dir's name is the node id, as with COFFER_DATA_DIR=./data/<id>.
    const r1 = await restored.addHandle('r1');
    // The snapshot is checked with the integrity keys from the server's variables (the cluster key).
    const keys = { COFFER_CLUSTER_KEY: cluster.clusterKey, COFFER_LOCAL_MASTER_KEY: cluster.masterKey };
    const out = await runCli(['snapshot', 'restore', file, '--data-dir', dir, '--raft-addr', r1.raft], keys);
    expect(out).toMatchObject({ code: 0 });
    expect(out.stdout).toMatch(/for node r1/);
    r1.dataDir = dir;
    const same = { COFFER_LOCAL_MASTER_KEY: cluster.masterKey, COFFER_CLUSTER_KEY: cluster.clusterKey, COFFER_BOOTSTRAP_TOKEN: cluster.bootstrapToken };
    await restored.spawnNode(r1, same);
    await restored.leader(30_000);
    for (let i = 1; i <= 5; i++) expect(await valueOn(r1, `bk/s${i}`, restored)).toBe(`${canary}-${i}`);
    // The tokens came with the backup.
    expect((await restored.http(r1, 'GET', '/v1/tokens/self', undefined, cluster.bootstrapToken)).status).toBe(200);

    const r2 = await restored.addHandle('r2');
    await restored.spawnNode(r2, { ...same, COFFER_JOIN: r1.api });
    await restored.eventually(async () => (await valueOn(r2, 'bk/s3', restored)) === `${canary}-3`, 30_000, 'r2 caught up');
    const st = await restored.http(r1, 'GET', '/v1/cluster', undefined, cluster.bootstrapToken);
    expect(st.body.members.map((m: { id: string }) => m.id).sort()).toEqual(['r1', 'r2']);
    // Writes work in the new cluster.
    expect((await restored.http(r1, 'PUT', '/v1/secrets/bk/new', { value: 'after-restore' }, cluster.bootstrapToken)).status).toBe(200);
  });

  test('snapshot restore refuses a data dir that already holds a store, and a file that is not a snapshot', async () => {
    const dir = path.join(restored.root, 'r1');
    const keys = { COFFER_CLUSTER_KEY: cluster.clusterKey, COFFER_LOCAL_MASTER_KEY: cluster.masterKey };
    const again = await runCli(['snapshot', 'restore', file, '--data-dir', dir], keys);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already holds data/);
    const junk = path.join(restored.root, 'junk.snap');
    writeFileSync(junk, 'not a snapshot');
    const bad = await runCli(['snapshot', 'restore', junk, '--data-dir', path.join(restored.root, 'r9')], keys);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/snapshot/i);
  });
});
