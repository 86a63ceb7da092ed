/**
 * Health means ready (CONTRACT.md): load balancers send traffic to a node the moment
 * `/v1/sys/health` says 200 (leader) or 429 (standby), so from that moment the node must serve.
 * Fresh clusters are started repeatedly and every node is hammered as soon as its health turns
 * 200/429: a write through it, a linearizable read, a batch read, a token check — no 503 (no leader
 * or its address unknown yet) and no 403 (allowlist not seeded yet) may follow.
 */
import { TestCluster, sleep, type HttpResult, type NodeHandle } from '../src/harness';

jest.setTimeout(240_000);

const ROUNDS = 3;

async function healthStatus(n: NodeHandle): Promise<{ status: number; body: any } | undefined> {
  try {
    const r = await fetch(`${n.api}/v1/sys/health`, { signal: AbortSignal.timeout(1_000) });
    return { status: r.status, body: await r.json() };
  } catch {
    return undefined;
  }
}

/** Polls a node's health every few ms; at the first 200/429, runs `use` at once. */
async function atFirstReady(n: NodeHandle, use: () => Promise<void>, timeoutMs = 30_000): Promise<{ notReadyBodies: number }> {
  const deadline = Date.now() + timeoutMs;
  let notReadyBodies = 0;
  while (Date.now() < deadline) {
    const h = await healthStatus(n);
    if (h !== undefined && (h.status === 200 || h.status === 429)) {
      expect(h.body.ready).toBe(true);
      await use();
      return { notReadyBodies };
    }
    if (h !== undefined && h.status === 503) {
      expect(h.body.ready).toBe(false);
      notReadyBodies++;
    }
    await sleep(5);
  }
  throw new Error(`${n.id} never became ready`);
}

describe('health means ready (real processes)', () => {
  test(`${ROUNDS} fresh clusters: every node serves writes and reads the moment its health says 200/429`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const cluster = new TestCluster();
      let ok = false;
      try {
        await cluster.start();
        const results: [string, string, number][] = [];
        const record = (n: NodeHandle, what: string, r: HttpResult): void => {
          results.push([n.id, what, r.status]);
          // What a failure said, for the report (error code and message; never a value).
          if (r.status !== 200) console.log(`round ${round}: ${n.id} ${what} → ${r.status} ${JSON.stringify(r.body?.error ?? r.body)}`);
        };
        await Promise.all(
          cluster.nodes.map((n) =>
            atFirstReady(n, async () => {
              record(n, 'write', await cluster.http(n, 'PUT', `/v1/secrets/ready/${n.id}`, { value: `v-${n.id}` }));
              record(n, 'read', await cluster.http(n, 'GET', `/v1/secrets/ready/${n.id}`, undefined, null));
              record(n, 'batch', await cluster.http(n, 'POST', '/v1/batch/secrets', { names: [`ready/${n.id}`] }, null));
              record(n, 'token', await cluster.http(n, 'GET', '/v1/tokens/self'));
            }),
          ),
        );
        const sorted = [...results].sort((a, b) => (a[0] + a[1] < b[0] + b[1] ? -1 : 1));
        expect(sorted).toEqual(cluster.nodes.flatMap((n) => ['batch', 'read', 'token', 'write'].map((w) => [n.id, w, 200])));
        ok = true;
      } finally {
        // A failed round keeps its node logs (and says where) for the report.
        if (!ok) console.log(`round ${round} failed; node logs kept in ${cluster.root}`);
        await cluster.stop(!ok);
      }
    }
  });

  test('COFFER_READ_ALLOWLIST seeds a new cluster without a bootstrap token; a different configured list later is only logged', async () => {
    const cluster = new TestCluster({ size: 1, env: { COFFER_BOOTSTRAP_TOKEN: '', COFFER_READ_ALLOWLIST: '127.0.0.1/32' } });
    try {
      await cluster.start();
      const n = cluster.nodes[0] as NodeHandle;
      await atFirstReady(n, async () => {
        // 404, not 403 not_allowlisted: the allowlist was seeded.
        const r = await cluster.http(n, 'GET', '/v1/secrets/none/here', undefined, null);
        expect([r.status, r.body.error.code]).toEqual([404, 'not_found']);
      });
      // Restart with another list: the replicated one stays in force, and the node says so.
      await cluster.kill(n, 'SIGTERM');
      await cluster.spawnNode(n, { COFFER_READ_ALLOWLIST: '127.0.0.2/32' });
      await atFirstReady(n, async () => {
        expect((await cluster.http(n, 'GET', '/v1/secrets/none/here', undefined, null)).status).toBe(404);
      });
      const { readFileSync } = await import('node:fs');
      await cluster.eventually(async () => readFileSync(n.logFile, 'utf8').includes('COFFER_READ_ALLOWLIST differs from the replicated read allowlist'), 5_000, 'the difference is logged');
    } finally {
      await cluster.stop();
    }
  });
});
