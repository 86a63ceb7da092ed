/**
 * The KMS re-wrap worker through real processes: after the local key ring rotates, a pass moves
 * every live version's wrapped DEK onto the new key, so the old key can be dropped from the ring
 * and every version still opens.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { COFFER_BIN, TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

describe('KMS re-wrap worker (local key ring)', () => {
  const cluster = new TestCluster({ env: { COFFER_KMS_REWRAP_ENABLED: 'true', COFFER_KMS_REWRAP_MAX_PER_SEC: '200' } });
  const oldKey = cluster.masterKey;
  const newKey = randomBytes(32).toString('base64');
  const written = new Map<string, string[]>(); // name → values by version (index = version - 1)

  beforeAll(async () => {
    await cluster.start();
    await cluster.bootstrapped();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  async function restartAll(masterKey: string): Promise<void> {
    await Promise.all(cluster.nodes.map((n) => cluster.kill(n, 'SIGTERM')));
    await Promise.all(cluster.nodes.map((n) => cluster.spawnNode(n, { COFFER_LOCAL_MASTER_KEY: masterKey })));
    await cluster.leader(30_000);
  }

  async function status(n: NodeHandle): Promise<{ enabled: boolean; running: boolean; watermark: string | null; pending: number; done: number; lastPassAt: string | null }> {
    const r = await cluster.http(n, 'GET', '/v1/admin/kms/rewrap/status');
    expect(r.status).toBe(200);
    return r.body;
  }

  test('a pass re-wraps every live version; the old key can then leave the ring', async () => {
    const leader = await cluster.leader();
    for (let i = 0; i < 12; i++) {
      const name = `rewrap/s${i}`;
      const values: string[] = [];
      for (let v = 0; v < 1 + (i % 3); v++) {
        const value = `value-${i}-${v}-${randomBytes(6).toString('hex')}`;
        const r = await cluster.http(leader, 'PUT', `/v1/secrets/${name}`, { value });
        expect(r.status).toBe(200);
        values.push(value);
      }
      written.set(name, values);
    }
    // One destroyed version: nothing to re-wrap, and it must not count as pending.
    expect((await cluster.http(leader, 'POST', '/v1/destroy/rewrap/s2', { versions: [1] })).status).toBe(200);
    const live = [...written.values()].reduce((a, v) => a + v.length, 0) - 1;

    // Rotate: the new key becomes current, the old one stays in the ring for now.
    await restartAll(`${newKey},${oldKey}`);
    const lead = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== lead) as NodeHandle;
    // Force a pass through any node (followers forward it to the leader). Right after a restart an
    // election may still be settling: a 503 then is retryable, anything else is not.
    let forced = await cluster.http(follower, 'POST', '/v1/admin/kms/rewrap');
    for (let i = 0; forced.status === 503 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 250));
      forced = await cluster.http(follower, 'POST', '/v1/admin/kms/rewrap');
    }
    expect({ status: forced.status, body: forced.body }).toEqual({ status: 202, body: { accepted: true } });
    await cluster.eventually(
      async () => {
        const s = await status(follower);
        return s.enabled && !s.running && s.pending === 0 && s.done === live && s.lastPassAt !== null;
      },
      60_000,
      're-wrap pass finished',
    );
    const s = await status(follower);
    expect(s.watermark).toEqual(expect.any(String));

    // Drop the old key: every version must still open on every node, and the same rotation is not
    // worked on again.
    await restartAll(newKey);
    const afterDrop = await status(await cluster.leader());
    expect({ watermark: afterDrop.watermark, pending: afterDrop.pending, done: afterDrop.done }).toEqual({ watermark: s.watermark, pending: 0, done: live });
    for (const n of cluster.nodes) {
      for (const [name, values] of written) {
        for (let v = 1; v <= values.length; v++) {
          const r = await cluster.http(n, 'GET', `/v1/secrets/${name}?version=${v}&consistency=stale`, undefined, null);
          if (name === 'rewrap/s2' && v === 1) {
            expect(r.status).toBe(404);
            continue;
          }
          expect({ name, v, status: r.status, value: r.body?.value }).toEqual({ name, v, status: 200, value: values[v - 1] });
        }
      }
    }
  });

  test('a second forced pass with nothing new leaves everything in place', async () => {
    const leader = await cluster.leader();
    const before = await status(leader);
    expect((await cluster.http(leader, 'POST', '/v1/admin/kms/rewrap')).status).toBe(202);
    await cluster.eventually(async () => {
      const s = await status(leader);
      return !s.running && s.lastPassAt !== null && s.lastPassAt !== before.lastPassAt;
    }, 30_000, 'second pass finished');
    const after = await status(leader);
    expect(after.pending).toBe(0);
    expect(after.done).toBe(before.done);
  });
});

describe('KMS re-wrap from the CLI', () => {
  const cluster = new TestCluster({ size: 1, env: { COFFER_KMS_REWRAP_ENABLED: 'true' } });
  beforeAll(async () => {
    await cluster.start();
    const n = await cluster.bootstrapped();
    for (let i = 0; i < 5; i++) expect((await cluster.http(n, 'PUT', `/v1/secrets/cli/s${i}`, { value: `v${i}` })).status).toBe(200);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('coffer kms rewrap --wait runs a pass to the end; --status reports it', async () => {
    const env = { PATH: process.env['PATH'] ?? '', COFFER_ADDR: cluster.nodes[0]!.api, COFFER_TOKEN: cluster.bootstrapToken };
    const run = execFileSync(COFFER_BIN, ['kms', 'rewrap', '--wait', '--interval', '1', '--json'], { env, encoding: 'utf8' });
    const last = JSON.parse(run);
    expect(last).toMatchObject({ enabled: true, running: false, pending: 0, done: 5 });
    const st = JSON.parse(execFileSync(COFFER_BIN, ['kms', 'rewrap', '--status', '--json'], { env, encoding: 'utf8' }));
    expect(st).toMatchObject({ enabled: true, pending: 0, done: 5 });
    expect(st.lastPassAt).toEqual(expect.any(String));
  });
});

describe('KMS re-wrap worker disabled', () => {
  const cluster = new TestCluster({ size: 1 });
  beforeAll(async () => {
    await cluster.start();
    await cluster.bootstrapped();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('status says disabled and a forced pass is refused with a clear error', async () => {
    const n = await cluster.leader();
    const s = await cluster.http(n, 'GET', '/v1/admin/kms/rewrap/status');
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({ enabled: false, running: false });
    const r = await cluster.http(n, 'POST', '/v1/admin/kms/rewrap');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/COFFER_KMS_REWRAP_ENABLED/);
  });
});
