/**
 * The KMS re-wrap worker moves transit key versions too: after the local key ring rotates, a pass
 * re-wraps every transit key version's DEK onto the new master key, so the old key can leave the
 * ring and every ciphertext still decrypts on every node (without the pass they could not: the
 * versions would be wrapped under a key no node holds).
 */
import { randomBytes } from 'node:crypto';
import { TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(240_000);

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('KMS re-wrap of transit keys (local key ring)', () => {
  const cluster = new TestCluster({ env: { COFFER_KMS_REWRAP_ENABLED: 'true', COFFER_KMS_REWRAP_MAX_PER_SEC: '200' } });
  const oldKey = cluster.masterKey;
  const newKey = randomBytes(32).toString('base64');

  beforeAll(async () => {
    await cluster.start();
    await cluster.bootstrapped();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  async function restartAll(masterKey: string): Promise<NodeHandle> {
    await Promise.all(cluster.nodes.map((n) => cluster.kill(n, 'SIGTERM')));
    await Promise.all(cluster.nodes.map((n) => cluster.spawnNode(n, { COFFER_LOCAL_MASTER_KEY: masterKey })));
    return cluster.bootstrapped(30_000);
  }

  async function ok(n: NodeHandle, method: string, p: string, body?: unknown): Promise<any> {
    const r = await cluster.call(n, method, p, body);
    if (r.status !== 200 && r.status !== 202) throw new Error(`${method} ${p} on ${n.id}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  test('after a pass the old master key can leave the ring; every transit ciphertext still decrypts', async () => {
    let leader = await cluster.leader();
    await ok(leader, 'POST', '/v1/transit/keys/tk-a');
    await ok(leader, 'POST', '/v1/transit/keys/tk-b', { type: 'aes256-gcm' });
    const cts: [string, string, string][] = [];
    const enc = async (key: string, text: string): Promise<void> => {
      cts.push([key, text, (await ok(leader, 'POST', `/v1/transit/encrypt/${key}`, { plaintext: b64(text) })).data.ciphertext]);
    };
    await enc('tk-a', 'a under version 1');
    await enc('tk-b', 'b under version 1');
    await ok(leader, 'POST', '/v1/transit/keys/tk-a/rotate');
    await enc('tk-a', 'a under version 2');

    // Rotate the ring: new key current, old key still present; force a pass and wait for its end.
    leader = await restartAll(`${newKey},${oldKey}`);
    const before = (await ok(leader, 'GET', '/v1/admin/kms/rewrap/status')).lastPassAt as string | null;
    expect((await ok(leader, 'POST', '/v1/admin/kms/rewrap')).accepted).toBe(true);
    await cluster.eventually(
      async () => {
        const s = await ok(await cluster.leader(), 'GET', '/v1/admin/kms/rewrap/status');
        return !s.running && s.lastPassAt !== null && s.lastPassAt !== before;
      },
      60_000,
      're-wrap pass finished',
    );

    // Drop the old key everywhere: every ciphertext of every version decrypts on every node.
    leader = await restartAll(newKey);
    for (const n of cluster.nodes) {
      for (const [key, text, ct] of cts) {
        const r = await cluster.call(n, 'POST', `/v1/transit/decrypt/${key}`, { ciphertext: ct });
        expect({ n: n.id, key, status: r.status, text: r.status === 200 ? Buffer.from(r.body.data.plaintext, 'base64').toString() : r.body }).toEqual({ n: n.id, key, status: 200, text });
      }
    }
    // And the keys keep working for new data.
    const fresh = (await ok(leader, 'POST', '/v1/transit/encrypt/tk-a', { plaintext: b64('after') })).data.ciphertext as string;
    expect(fresh).toMatch(/^coffer:v2:/);
  });
});
