/**
 * The sealed start (COFFER_SEAL=shamir, CONTRACT.md "Sealed start"), on a real 3-node cluster:
 * init once per cluster (a race between two nodes hands out one set of shares), every node sealed
 * until threshold shares reach *it* (two different subsets on two nodes; fewer do not), wrong,
 * malformed and repeated shares refused with a clear message, a sealed node serves nothing but
 * health/init/unseal/seal-status (no stale read either), writes resume once a majority is
 * unsealed even when the sealed node was leader, seal drops the key, a restart seals again,
 * and the hostile cases (no/low token for seal, oversized unseal body, path tricks).
 */
import { spawn } from 'node:child_process';
import * as http from 'node:http';
import { COFFER_BIN, TestCluster, type HttpResult, type NodeHandle } from '../src/harness';

jest.setTimeout(300_000);

let cluster: TestCluster;
let keys: string[] = [];

const health = (n: NodeHandle): Promise<HttpResult> => cluster.http(n, 'GET', '/v1/sys/health?standbyok=true', undefined, null);
const sealStatus = async (n: NodeHandle): Promise<{ initialized: boolean; sealed: boolean; t: number; n: number; progress: number }> =>
  (await cluster.http(n, 'GET', '/v1/sys/seal-status', undefined, null)).body;
const unseal = (n: NodeHandle, key: string): Promise<HttpResult> => cluster.http(n, 'PUT', '/v1/sys/unseal', { key }, null);

/** `./bin/coffer ARGS` with `stdin` piped in (the harness's runCli has no stdin). */
function cli(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(COFFER_BIN, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    p.stdin?.end(stdin);
  });
}

/** PUT with the path exactly as given (no URL normalisation); resolves with the status. */
function rawPut(n: NodeHandle, p: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: n.apiPort, path: p, method: 'PUT', headers: { authorization: `Bearer ${token}` }, agent: false, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A share of the right shape whose y-values were changed: it rebuilds a wrong key. */
function corrupt(share: string): string {
  const b = Buffer.from(share, 'base64');
  b[0] = (b[0] ?? 0) ^ 0x5a;
  return b.toString('base64');
}

async function unsealWith(n: NodeHandle, subset: readonly number[]): Promise<void> {
  for (const [i, k] of subset.entries()) {
    const r = await unseal(n, keys[k] as string);
    expect(r.status).toBe(200);
    expect(r.body.sealed).toBe(i < subset.length - 1);
    if (i < subset.length - 1) expect(r.body.progress).toBe(i + 1);
  }
}

async function expectSealedNode(n: NodeHandle): Promise<void> {
  const h = await health(n);
  expect(h.status).toBe(503);
  expect(h.body).toMatchObject({ sealed: true, ready: false });
  for (const p of ['/v1/secrets/sealed/probe', '/v1/secrets/sealed/probe?consistency=stale', '/v1/secret/data/sealed/probe', '/v1/tokens/self']) {
    const r = await cluster.http(n, 'GET', p);
    expect([p, r.status, r.body?.error?.code ?? r.body]).toEqual([p, 503, expect.anything()]);
    if (!p.startsWith('/v1/secret/')) expect(r.body.error.code).toBe('sealed');
  }
  const w = await cluster.http(n, 'PUT', '/v1/secrets/sealed/probe', { value: 'x' });
  expect(w.status).toBe(503);
  expect(w.body.error.code).toBe('sealed');
  expect(w.body.error.message).toMatch(/sealed/);
}

/** Some node that is unsealed and leads (health 200), waiting for the sealed-leader hand-off. */
async function unsealedLeader(among: NodeHandle[]): Promise<NodeHandle> {
  return cluster.leader(30_000, among);
}

beforeAll(async () => {
  cluster = new TestCluster({ env: { COFFER_SEAL: 'shamir', COFFER_LOCAL_MASTER_KEY: '' } });
  await cluster.start();
});

afterAll(async () => {
  await cluster?.stop();
});

test('every node starts sealed and uninitialised, and serves only health, init, unseal and seal-status', async () => {
  for (const n of cluster.nodes) {
    const st = await sealStatus(n);
    expect(st).toMatchObject({ initialized: false, sealed: true, t: 0, n: 0, progress: 0 });
    await expectSealedNode(n);
    const u = await unseal(n, Buffer.alloc(33, 1).toString('base64'));
    expect(u.status).toBe(400);
    expect(u.body.error.code).toBe('not_initialized');
  }
});

test('init: bad parameters are refused; two inits racing on two nodes hand out exactly one set of 5 shares', async () => {
  const [n1, n2, n3] = cluster.nodes as [NodeHandle, NodeHandle, NodeHandle];
  for (const body of [{ secret_shares: 5, secret_threshold: 1 }, { secret_shares: 3, secret_threshold: 4 }, { secret_shares: 256, secret_threshold: 3 }, { secret_shares: '5', secret_threshold: 3 }, { secret_shares: 5 }, { secret_shares: 5, secret_threshold: 3, pgp_keys: [] }]) {
    const r = await cluster.call(n1, 'PUT', '/v1/sys/init', body, null);
    expect([JSON.stringify(body), r.status]).toEqual([JSON.stringify(body), 400]);
    expect(r.body.error.message).toMatch(/secret_shares|secret_threshold|pgp_keys/);
  }
  // A leader must be elected (sealed nodes still run Raft) and the new command type advertised:
  // until then init answers 503 with Retry-After, which `call` retries.
  // One through the CLI (which waits out "no leader yet" itself), one through the API.
  const [viaCli, b] = await Promise.all([
    cli(['operator', 'init', '--shares', '5', '--threshold', '3', '--json'], { COFFER_ADDR: n2.api }),
    cluster.call(n3, 'PUT', '/v1/sys/init', { secret_shares: 5, secret_threshold: 3 }, null, {}, 30_000),
  ]);
  const a: HttpResult = viaCli.code === 0
    ? { status: 200, body: JSON.parse(viaCli.stdout), headers: new Headers() }
    : { status: /already initialized/.test(viaCli.stderr) ? 400 : -1, body: { error: { code: /already initialized/.test(viaCli.stderr) ? 'already_initialized' : viaCli.stderr } }, headers: new Headers() };
  const won = [a, b].filter((r) => r.status === 200);
  const lost = [a, b].filter((r) => r.status !== 200);
  expect(won).toHaveLength(1);
  expect(lost[0]?.status).toBe(400);
  expect(lost[0]?.body.error.code).toBe('already_initialized');
  keys = won[0]?.body.keys;
  expect(keys).toHaveLength(5);
  expect(won[0]?.body.keys_base64).toEqual(keys);
  for (const k of keys) expect(Buffer.from(k, 'base64')).toHaveLength(33);
  expect(new Set(keys).size).toBe(5);
  // Once per cluster, whichever node is asked.
  const again = await cluster.call(n1, 'PUT', '/v1/sys/init', { secret_shares: 5, secret_threshold: 3 }, null);
  expect(again.status).toBe(400);
  expect(again.body.error.code).toBe('already_initialized');
  for (const n of cluster.nodes) {
    await cluster.eventually(async () => (await sealStatus(n)).initialized, 15_000, `${n.id} learns the seal config`);
    expect(await sealStatus(n)).toMatchObject({ initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
  }
});

test('wrong, malformed and repeated shares are refused with a clear message; 2 of 5 do not unseal', async () => {
  const n3 = cluster.nodes[2] as NodeHandle;
  const bad = await unseal(n3, 'not-a-share');
  expect(bad.status).toBe(400);
  expect(bad.body.error.code).toBe('unseal_key_malformed');
  expect(bad.body.error.message).not.toContain('not-a-share');
  expect((await unseal(n3, keys[0] as string)).body.progress).toBe(1);
  const dup = await unseal(n3, keys[0] as string);
  expect(dup.status).toBe(400);
  expect(dup.body.error.code).toBe('unseal_key_duplicate');
  expect(dup.body.error.message).toMatch(/already submitted/);
  expect((await sealStatus(n3)).progress).toBe(1);
  // Two of five: still sealed.
  expect((await unseal(n3, keys[1] as string)).body).toMatchObject({ sealed: true, progress: 2 });
  await expectSealedNode(n3);
  // A third share that is wrong: refused, progress reset.
  const wrong = await unseal(n3, corrupt(keys[2] as string));
  expect(wrong.status).toBe(400);
  expect(wrong.body.error.code).toBe('unseal_keys_wrong');
  expect(wrong.body.error.message).toMatch(/do not rebuild/);
  expect(await sealStatus(n3)).toMatchObject({ sealed: true, progress: 0 });
  // reset as in Vault
  await unseal(n3, keys[3] as string);
  const reset = await cluster.http(n3, 'PUT', '/v1/sys/unseal', { reset: true }, null);
  expect(reset.body).toMatchObject({ sealed: true, progress: 0 });
});

test('two different 3-of-5 subsets unseal two nodes; the cluster writes with the third still sealed, also when the sealed node leads', async () => {
  const [n1, n2, n3] = cluster.nodes as [NodeHandle, NodeHandle, NodeHandle];
  await unsealWith(n1, [0, 1, 4]);
  await unsealWith(n2, [3, 2, 0]);
  const leader = await unsealedLeader([n1, n2]);
  const w = await cluster.call(n1, 'PUT', '/v1/secrets/sealed/one', { value: 'v1' });
  expect(w.status).toBe(200);
  for (const n of [n1, n2]) {
    const r = await cluster.call(n, 'GET', '/v1/secrets/sealed/one');
    expect(r.status).toBe(200);
    expect(r.body.value).toBe('v1');
  }
  // The sealed follower has the entry (Raft runs while sealed) but serves nothing from it.
  await expectSealedNode(n3);

  // Make the sealed node the leader: it must hand leadership to an unsealed voter, so writes go on.
  const t = await cluster.call(leader, 'POST', '/v1/cluster/leader/transfer', { to: 'n3' });
  expect(t.status).toBe(200);
  expect(t.body.leader).toBe('n3');
  const back = await unsealedLeader([n1, n2]);
  expect(['n1', 'n2']).toContain(back.id);
  const w2 = await cluster.call(n2, 'PUT', '/v1/secrets/sealed/one', { value: 'v2' }, undefined, {}, 30_000);
  expect(w2.status).toBe(200);
  expect((await cluster.call(n1, 'GET', '/v1/secrets/sealed/one')).body.value).toBe('v2');
});

test('hostile: seal needs operator.seal (no token, a low token), the unseal body is capped, path tricks do not reach the routes', async () => {
  const [n1, n2] = cluster.nodes as [NodeHandle, NodeHandle];
  const none = await cluster.http(n2, 'PUT', '/v1/sys/seal', undefined, null);
  expect(none.status).toBe(401);
  const role = await cluster.call(n1, 'PUT', '/v1/roles/reader-only', { rules: [{ paths: ['**'], actions: ['secret.list'] }] });
  expect(role.status).toBe(200);
  const tok = await cluster.call(n1, 'POST', '/v1/tokens', { name: 'low-seal', role: 'reader-only' });
  expect(tok.status).toBe(200);
  const low = await cluster.http(n2, 'PUT', '/v1/sys/seal', undefined, tok.body.token);
  expect(low.status).toBe(403);
  expect((await sealStatus(n2)).sealed).toBe(false);

  const big = await cluster.http(n1, 'PUT', '/v1/sys/unseal', { key: 'A'.repeat(4096) }, null);
  expect(big.status).toBe(413);
  for (const p of ['/v1/sys/./seal', '/v1/sys/x/../seal', '/v1/sys/%2e%2e/sys/seal', '/v1/sys//seal', '/v1/sys/seal/', '/v1/sys/SEAL']) {
    // Sent as written (fetch and URL would normalise the path first), with an admin token.
    const r = await rawPut(n2, p, cluster.bootstrapToken);
    expect([p, r]).toEqual([p, p === '/v1/sys/seal/' || p === '/v1/sys/SEAL' ? 404 : 400]);
  }
  expect((await sealStatus(n2)).sealed).toBe(false);
  // Unseal is never forwarded: a share given to n2 does not count on n3.
  await unseal(n2, keys[1] as string);
  expect((await sealStatus(cluster.nodes[2] as NodeHandle)).progress).toBe(0);
});

test('seal drops the key: reads refused, then another subset unseals it again', async () => {
  const [n1] = cluster.nodes as [NodeHandle];
  const s = await cluster.http(n1, 'PUT', '/v1/sys/seal');
  expect(s.status).toBe(200);
  expect(s.body.sealed).toBe(true);
  await expectSealedNode(n1);
  await unsealWith(n1, [2, 3, 1]);
  const r = await cluster.call(n1, 'GET', '/v1/secrets/sealed/one', undefined, undefined, {}, 30_000);
  expect(r.status).toBe(200);
  expect(r.body.value).toBe('v2');
});

async function rawBody(n: NodeHandle, method: string, p: string, body?: Uint8Array): Promise<{ status: number; bytes: Buffer; json: any }> {
  const r = await fetch(`${n.api}${p}`, {
    method,
    headers: { authorization: `Bearer ${cluster.bootstrapToken}`, 'content-type': 'application/octet-stream' },
    ...(body === undefined ? {} : { body }),
    signal: AbortSignal.timeout(30_000),
  });
  const bytes = Buffer.from(await r.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: r.status, bytes, json };
}

test('restore: a snapshot of this cluster is accepted; one made under another master key (same cluster key) is refused', async () => {
  const leader = await unsealedLeader(cluster.nodes.filter((n) => cluster.isRunning(n)));
  const own = await rawBody(leader, 'GET', '/v1/cluster/snapshot');
  expect(own.status).toBe(200);
  // Another sealed cluster (one node, its own init) that shares the cluster key, so its snapshot
  // authenticates here: only the seal's key id tells it apart.
  const other = new TestCluster({ size: 1, env: { COFFER_SEAL: 'shamir', COFFER_LOCAL_MASTER_KEY: '', COFFER_CLUSTER_KEY: cluster.clusterKey } });
  try {
    await other.start();
    const o = other.nodes[0] as NodeHandle;
    const init = await other.call(o, 'PUT', '/v1/sys/init', { secret_shares: 1, secret_threshold: 1 }, null, {}, 30_000);
    expect(init.status).toBe(200);
    await other.eventually(async () => (await other.http(o, 'PUT', '/v1/sys/unseal', { key: init.body.keys[0] }, null)).body?.sealed === false, 15_000, 'other cluster unsealed');
    await other.leader(30_000);
    const foreign = await (async () => {
      const r = await fetch(`${o.api}/v1/cluster/snapshot`, { headers: { authorization: `Bearer ${other.bootstrapToken}` }, signal: AbortSignal.timeout(30_000) });
      expect(r.status).toBe(200);
      return Buffer.from(await r.arrayBuffer());
    })();
    const refused = await rawBody(leader, 'POST', '/v1/cluster/restore', foreign);
    expect(refused.status).toBe(400);
    expect(refused.json.error.code).toBe('invalid_snapshot');
    expect(refused.json.error.message).toMatch(/another master key/);
  } finally {
    await other.stop();
  }
  const ok = await rawBody(leader, 'POST', '/v1/cluster/restore', own.bytes);
  expect(ok.status).toBe(200);
  expect((await cluster.call(leader, 'GET', '/v1/secrets/sealed/one')).body.value).toBe('v2');
});

test('a restart seals again; the shares unseal it after the restart', async () => {
  const n2 = cluster.nodes[1] as NodeHandle;
  await cluster.terminate(n2);
  await cluster.spawnNode(n2);
  expect(await sealStatus(n2)).toMatchObject({ initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
  await expectSealedNode(n2);
  // Through the CLI, the share on stdin (never on argv), to that one node.
  const env = { COFFER_ADDR: n2.api };
  const st = await cli(['operator', 'status', '--json'], env);
  expect(st.code).toBe(0);
  expect(JSON.parse(st.stdout)).toMatchObject({ initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
  const wrongShare = await cli(['operator', 'unseal', '-'], env, 'not-a-share\n');
  expect(wrongShare.code).toBe(1);
  expect(wrongShare.stderr).toMatch(/unseal key/);
  expect(wrongShare.stderr).not.toContain('not-a-share');
  for (const [i, k] of [4, 0, 2].entries()) {
    const r = await cli(['operator', 'unseal', '-'], env, `${keys[k] as string}\n`);
    expect([r.code, r.stdout]).toEqual([0, expect.stringMatching(i < 2 ? /still sealed: \d more share/ : /unsealed/)]);
  }
  const again = await cli(['operator', 'init', '--shares', '5', '--threshold', '3'], env);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/already initialized/);
  expect((await cli(['operator', 'init', '--shares', '5', '--threshold', '9'], env)).code).toBe(2);
  const noToken = await cli(['operator', 'seal'], env);
  expect(noToken.code).toBe(1);
  const help = await cli(['operator', '--help'], {});
  expect(help.stdout).toMatch(/init[\s\S]*unseal[\s\S]*seal[\s\S]*status/);
  await cluster.eventually(async () => (await health(n2)).status !== 503, 30_000, 'n2 ready after unseal');
  const r = await cluster.call(n2, 'GET', '/v1/secrets/sealed/one');
  expect(r.status).toBe(200);
  expect(r.body.value).toBe('v2');
});
