/**
 * Vault KV v2 compatibility against a real three-node cluster, driven by the unmodified
 * `node-vault` npm client (pointed at a follower and at the leader) and by raw HTTP for the wire
 * details (LIST method, `?list=true`, error envelope, 404s, allowlist denial).
 */
import { request as httpRequest } from 'node:http';
import vault from 'node-vault';
import { TestCluster, assertLoopback, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

type VaultClient = ReturnType<typeof vault>;

/** The status and body a node-vault call failed with. */
async function failure(p: Promise<unknown>): Promise<{ status: number; body: any; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { message: string; response?: { statusCode: number; body: unknown } };
    return { status: e.response?.statusCode ?? -1, body: e.response?.body, message: e.message };
  }
  throw new Error('expected the call to fail');
}

/** One raw HTTP/1.1 request (any method, including LIST), on its own connection. */
function raw(n: NodeHandle, method: string, p: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  const url = new URL(p, n.api);
  assertLoopback(url.toString());
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }) }, agent: false, timeout: 15_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('Vault KV v2 compatibility (node-vault against real nodes)', () => {
  const cluster = new TestCluster();
  let leader: NodeHandle;
  let follower: NodeHandle;
  let viaFollower: VaultClient;
  let viaLeader: VaultClient;

  beforeAll(async () => {
    await cluster.start();
    leader = await cluster.leader();
    follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    viaFollower = vault({ apiVersion: 'v1', endpoint: follower.api, token: cluster.bootstrapToken });
    viaLeader = vault({ apiVersion: 'v1', endpoint: leader.api, token: cluster.bootstrapToken });
    // Writes through a follower need it to know the leader: a secret put (handed to the leader
    // through Raft) and a delete (forwarded over HTTP to the leader's API address).
    await cluster.eventually(async () => (await cluster.http(follower, 'PUT', '/v1/secrets/warmup', { value: 'x' })).status === 200, 20_000, 'follower takes puts');
    await cluster.eventually(async () => [200, 404].includes((await cluster.http(follower, 'DELETE', '/v1/secrets/warmup-never-written')).status), 20_000, 'follower forwards writes');
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('write through a follower, read back on every node in the KV v2 shape', async () => {
    const w = await viaFollower.write('secret/data/app/db', { data: { username: 'app', password: 'pw-1', port: 5432 } });
    expect(w).toMatchObject({ lease_id: '', renewable: false, lease_duration: 0, wrap_info: null, auth: null });
    expect(typeof w.request_id).toBe('string');
    expect(w.data).toMatchObject({ version: 1, destroyed: false, deletion_time: '', custom_metadata: null });
    expect(Date.parse(w.data.created_time)).not.toBeNaN();
    for (const n of cluster.nodes) {
      const c = vault({ apiVersion: 'v1', endpoint: n.api, token: cluster.bootstrapToken });
      const r = await c.read('secret/data/app/db');
      expect(r.data.data).toEqual({ username: 'app', password: 'pw-1', port: 5432 });
      expect(r.data.metadata).toMatchObject({ version: 1, destroyed: false, deletion_time: '' });
    }
    // The same secret natively: a `kv` value.
    const native = await cluster.http(leader, 'GET', '/v1/secrets/app/db', undefined, null);
    expect(native.body).toMatchObject({ name: 'app/db', version: 1, format: 'kv', data: { username: 'app', password: 'pw-1', port: 5432 } });
  });

  test('versions: read a specific version, soft-delete, undelete, destroy', async () => {
    await viaLeader.write('secret/data/app/ver', { data: { v: 'one' } });
    await viaFollower.write('secret/data/app/ver', { data: { v: 'two' } });
    await viaLeader.write('secret/data/app/ver', { data: { v: 'three' } });
    expect((await viaFollower.read('secret/data/app/ver?version=1')).data.data).toEqual({ v: 'one' });
    expect((await viaFollower.read('secret/data/app/ver')).data).toMatchObject({ data: { v: 'three' }, metadata: { version: 3 } });

    // Soft-delete the latest (DELETE data): a read is 404 with the version's metadata.
    await viaFollower.delete('secret/data/app/ver');
    const gone = await failure(viaLeader.read('secret/data/app/ver'));
    expect(gone.status).toBe(404);
    expect(gone.body.data.data).toBeNull();
    expect(gone.body.data.metadata.version).toBe(3);
    expect(gone.body.data.metadata.deletion_time).not.toBe('');
    // Older versions stay readable.
    expect((await viaLeader.read('secret/data/app/ver?version=2')).data.data).toEqual({ v: 'two' });

    await viaFollower.write('secret/undelete/app/ver', { versions: [3] });
    expect((await viaLeader.read('secret/data/app/ver')).data.data).toEqual({ v: 'three' });

    await viaFollower.write('secret/delete/app/ver', { versions: [1] });
    expect((await failure(viaLeader.read('secret/data/app/ver?version=1'))).status).toBe(404);

    await viaFollower.write('secret/destroy/app/ver', { versions: [2] });
    const destroyed = await failure(viaLeader.read('secret/data/app/ver?version=2'));
    expect(destroyed.status).toBe(404);
    expect(destroyed.body.data.metadata).toMatchObject({ version: 2, destroyed: true });
    // Undelete cannot bring back a destroyed version.
    await viaLeader.write('secret/undelete/app/ver', { versions: [2] });
    expect((await failure(viaLeader.read('secret/data/app/ver?version=2'))).status).toBe(404);

    const meta = await viaFollower.read('secret/metadata/app/ver');
    expect(meta.data).toMatchObject({ current_version: 3, oldest_version: 1, max_versions: 10, cas_required: false, delete_version_after: '0s' });
    expect(meta.data.versions['1'].deletion_time).not.toBe('');
    expect(meta.data.versions['2'].destroyed).toBe(true);
    expect(meta.data.versions['3']).toMatchObject({ deletion_time: '', destroyed: false });
  });

  test('list (LIST method) returns keys with folders suffixed "/", 404 when empty', async () => {
    await viaLeader.write('secret/data/list/a', { data: { k: '1' } });
    await viaLeader.write('secret/data/list/sub/b', { data: { k: '2' } });
    await viaLeader.write('secret/data/list/sub/deeper/c', { data: { k: '3' } });
    const top = await viaFollower.list('secret/metadata/list');
    expect(top.data.keys).toEqual(['a', 'sub/']);
    expect((await viaLeader.list('secret/metadata/list/sub/')).data.keys).toEqual(['b', 'deeper/']);
    const root = await viaFollower.list('secret/metadata/');
    expect(root.data.keys).toEqual(expect.arrayContaining(['app/', 'list/', 'warmup']));
    expect((await failure(viaLeader.list('secret/metadata/nothing-here'))).status).toBe(404);
    // node-vault's GET fallback (`?list=1`) answers the same.
    const fallback = vault({ apiVersion: 'v1', endpoint: follower.api, token: cluster.bootstrapToken, noCustomHTTPVerbs: true });
    expect((await fallback.list('secret/metadata/list')).data.keys).toEqual(['a', 'sub/']);
  });

  test('metadata: max_versions, cas_required, custom_metadata; CAS conflicts; pruning', async () => {
    await viaFollower.write('secret/metadata/app/cfg', { max_versions: 3, cas_required: true, custom_metadata: { owner: 'payments', tier: 'gold' } });
    let meta = await viaLeader.read('secret/metadata/app/cfg');
    expect(meta.data).toMatchObject({ max_versions: 3, cas_required: true, custom_metadata: { owner: 'payments', tier: 'gold' }, current_version: 0 });

    // cas_required: a write without cas is refused.
    const noCas = await failure(viaFollower.write('secret/data/app/cfg', { data: { n: 0 } }));
    expect(noCas.status).toBe(400);
    expect(noCas.message).toBe('check-and-set parameter required for this call');

    for (let i = 1; i <= 5; i++) {
      const w = await viaFollower.write('secret/data/app/cfg', { data: { n: i }, options: { cas: i - 1 } });
      expect(w.data.version).toBe(i);
      expect(w.data.custom_metadata).toEqual({ owner: 'payments', tier: 'gold' });
    }
    // A stale cas: 400 with Vault's message, nothing written.
    const conflict = await failure(viaLeader.write('secret/data/app/cfg', { data: { n: 99 }, options: { cas: 2 } }));
    expect(conflict.status).toBe(400);
    expect(conflict.message).toBe('check-and-set parameter did not match the current version');
    expect(conflict.body).toEqual({ errors: ['check-and-set parameter did not match the current version'] });
    expect((await viaLeader.read('secret/data/app/cfg')).data.data).toEqual({ n: 5 });

    // max_versions 3: versions 1 and 2 were pruned.
    meta = await viaFollower.read('secret/metadata/app/cfg');
    expect(Object.keys(meta.data.versions).sort()).toEqual(['3', '4', '5']);
    expect(meta.data.oldest_version).toBe(3);
    expect((await failure(viaLeader.read('secret/data/app/cfg?version=1'))).status).toBe(404);
    expect((await viaLeader.read('secret/data/app/cfg?version=3')).data.data).toEqual({ n: 3 });

    // Lowering max_versions prunes at once; cas_required off lets plain writes through again.
    await viaLeader.write('secret/metadata/app/cfg', { max_versions: 2, cas_required: false });
    meta = await viaFollower.read('secret/metadata/app/cfg');
    expect(Object.keys(meta.data.versions).sort()).toEqual(['4', '5']);
    expect(meta.data.custom_metadata).toEqual({ owner: 'payments', tier: 'gold' });
    expect((await viaFollower.write('secret/data/app/cfg', { data: { n: 6 } })).data.version).toBe(6);

    // cas 0 on an existing secret conflicts; on a new one it creates.
    expect((await failure(viaLeader.write('secret/data/app/cfg', { data: {}, options: { cas: 0 } }))).status).toBe(400);
    expect((await viaLeader.write('secret/data/app/fresh', { data: { a: 'b' }, options: { cas: 0 } })).data.version).toBe(1);

    // DELETE metadata erases everything.
    await viaFollower.delete('secret/metadata/app/fresh');
    expect((await failure(viaLeader.read('secret/metadata/app/fresh'))).status).toBe(404);
    expect((await failure(viaLeader.read('secret/data/app/fresh'))).status).toBe(404);
  });

  test('patch (JSON merge patch, node-vault update) through a follower', async () => {
    await viaLeader.write('secret/data/app/patch', { data: { a: '1', b: { c: '2', d: '3' }, gone: 'x' } });
    const w = await viaFollower.update('secret/data/app/patch', { data: { a: 'one', b: { d: null, e: '5' }, gone: null, n: 7 } });
    expect(w.data.version).toBe(2);
    expect((await viaLeader.read('secret/data/app/patch')).data.data).toEqual({ a: 'one', b: { c: '2', e: '5' }, n: 7 });
    // With options.cas: a stale one is refused.
    const stale = await failure(viaFollower.update('secret/data/app/patch', { data: { a: 'two' }, options: { cas: 1 } }));
    expect(stale.status).toBe(400);
    expect(stale.message).toBe('check-and-set parameter did not match the current version');
    expect((await viaFollower.update('secret/data/app/patch', { data: { a: 'two' }, options: { cas: 2 } })).data.version).toBe(3);
    // Nothing to patch: 404; a plain (native) value cannot be patched: 400.
    expect((await failure(viaLeader.update('secret/data/app/never-written', { data: { a: '1' } }))).status).toBe(404);
    expect((await cluster.http(leader, 'PUT', '/v1/secrets/app/plain', { value: 'text' })).status).toBe(200);
    expect((await failure(viaLeader.update('secret/data/app/plain', { data: { a: '1' } }))).status).toBe(400);
  });

  test('health: node-vault reads it from the leader and a follower', async () => {
    const lh = await viaLeader.health();
    expect(lh).toMatchObject({ initialized: true, sealed: false, standby: false });
    expect(typeof lh.server_time_utc).toBe('number');
    // Health means ready: the follower says 429 once it has caught up under this leader.
    await cluster.eventually(async () => (await raw(follower, 'GET', '/v1/sys/health')).status === 429, 10_000, 'follower ready');
    const fh = await viaFollower.health();
    expect(fh).toMatchObject({ initialized: true, sealed: false, standby: true });
    expect((await raw(follower, 'GET', '/v1/sys/health')).status).toBe(429);
    expect((await raw(follower, 'GET', '/v1/sys/health?standbyok=true')).status).toBe(200);
    expect((await raw(follower, 'GET', '/v1/sys/health?standbycode=200')).status).toBe(200);
    expect((await raw(leader, 'GET', '/v1/sys/health?activecode=204')).status).toBe(204);
    expect((await raw(leader, 'GET', '/v1/sys/health?activecode=abc')).status).toBe(400);
  });

  test('mount discovery: the `vault kv` CLI\'s preflight finds a KV v2 mount at secret/, then its requests work', async () => {
    // What `vault kv put secret/cli/app k=v`, `vault kv get secret/cli/app` and `vault kv list secret/cli`
    // send: the preflight (no token needed here; Vault's CLI sends one), then the KV v2 route.
    for (const [n, p] of [[follower, 'secret/cli/app'], [leader, 'secret/cli/'], [leader, 'secret']] as const) {
      const pre = await raw(n, 'GET', `/v1/sys/internal/ui/mounts/${p}`, { 'x-vault-request': 'true' });
      expect({ status: pre.status, path: pre.body?.data?.path, type: pre.body?.data?.type, options: pre.body?.data?.options }).toEqual({ status: 200, path: 'secret/', type: 'kv', options: { version: '2' } });
    }
    const other = await raw(leader, 'GET', '/v1/sys/internal/ui/mounts/kv/app');
    expect({ status: other.status, body: other.body }).toEqual({ status: 403, body: { errors: ['permission denied'] } });
    const put = await raw(follower, 'PUT', '/v1/secret/data/cli/app', { 'x-vault-token': cluster.bootstrapToken }, JSON.stringify({ data: { k: 'v' }, options: {} }));
    expect(put.status).toBe(200);
    const got = await raw(leader, 'GET', '/v1/secret/data/cli/app', { 'x-vault-token': cluster.bootstrapToken });
    expect(got.body?.data?.data).toEqual({ k: 'v' });
    const listed = await raw(leader, 'LIST', '/v1/secret/metadata/cli', { 'x-vault-token': cluster.bootstrapToken });
    expect(listed.body?.data?.keys).toEqual(['app']);
  });

  describe('raw HTTP', () => {
    const token = (): Record<string, string> => ({ 'x-vault-token': cluster.bootstrapToken });

    beforeAll(async () => {
      await viaLeader.write('secret/data/raw/one', { data: { x: '1' } });
      await viaLeader.write('secret/data/raw/dir/two', { data: { x: '2' } });
    });

    test('LIST method and ?list=true on every node, with and without a trailing slash', async () => {
      for (const n of cluster.nodes) {
        for (const [method, p] of [
          ['LIST', '/v1/secret/metadata/raw'],
          ['LIST', '/v1/secret/metadata/raw/'],
          ['GET', '/v1/secret/metadata/raw?list=true'],
          ['GET', '/v1/secret/metadata/raw/?list=true'],
        ] as const) {
          const r = await raw(n, method, p, token());
          expect([method, p, r.status]).toEqual([method, p, 200]);
          expect(r.body.data).toEqual({ keys: ['dir/', 'one'] });
          expect(r.body).toMatchObject({ lease_id: '', renewable: false, lease_duration: 0, wrap_info: null, warnings: null, auth: null });
        }
      }
      const empty = await raw(leader, 'LIST', '/v1/secret/metadata/raw/none', token());
      expect(empty).toMatchObject({ status: 404, body: { errors: [] } });
      // LIST needs a token like any listing.
      expect((await raw(leader, 'LIST', '/v1/secret/metadata/raw')).status).toBe(403);
      // Other unknown methods are still refused by the HTTP layer.
      expect((await raw(leader, 'FROB', '/v1/secret/metadata/raw', token())).status).toBe(400);
    });

    test('LIST over a keep-alive connection after other requests', async () => {
      const { Agent } = await import('node:http');
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      const url = new URL(leader.api);
      const call = (method: string, p: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          const req = httpRequest({ host: url.hostname, port: url.port, method, path: p, headers: token(), agent, timeout: 15_000 }, (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', reject);
          req.end();
        });
      try {
        expect((await call('GET', '/v1/secret/data/raw/one')).status).toBe(200);
        const l = await call('LIST', '/v1/secret/metadata/raw');
        expect(l.status).toBe(200);
        expect(JSON.parse(l.body).data.keys).toEqual(['dir/', 'one']);
        expect((await call('GET', '/v1/secret/data/raw/one')).status).toBe(200);
        expect((await call('LIST', '/v1/secret/metadata/raw/dir')).status).toBe(200);
      } finally {
        agent.destroy();
      }
    });

    test('error envelope and 404s', async () => {
      expect(await raw(leader, 'GET', '/v1/secret/data/raw/missing')).toMatchObject({ status: 404, body: { errors: [] } });
      expect(await raw(leader, 'GET', '/v1/secret/metadata/raw/missing', token())).toMatchObject({ status: 404, body: { errors: [] } });
      expect(await raw(leader, 'GET', '/v1/secret/data/raw/one?version=7')).toMatchObject({ status: 404, body: { errors: [] } });
      expect(await raw(leader, 'GET', '/v1/secret/nope/raw/one')).toMatchObject({ status: 404, body: { errors: [] } });
      const bad = await raw(leader, 'GET', '/v1/secret/data/raw/one?version=x');
      expect(bad.status).toBe(400);
      expect(bad.body.errors).toHaveLength(1);
      // No token on a write: 403 permission denied, Vault's code for it.
      const noToken = await raw(follower, 'POST', '/v1/secret/data/raw/one', {}, JSON.stringify({ data: { x: 'y' } }));
      expect(noToken.status).toBe(403);
      expect(noToken.body.errors).toHaveLength(1);
      const noData = await raw(follower, 'POST', '/v1/secret/data/raw/one', token(), JSON.stringify({ value: 'x' }));
      expect(noData.status).toBe(400);
      expect(noData.body).toEqual({ errors: [expect.stringContaining('unknown field')] });
      const missingData = await raw(leader, 'POST', '/v1/secret/data/raw/one', token(), JSON.stringify({ options: {} }));
      expect(missingData).toMatchObject({ status: 400, body: { errors: ['no data provided'] } });
      const badJson = await raw(leader, 'PUT', '/v1/secret/data/raw/one', token(), '{"data":');
      expect(badJson.status).toBe(400);
      expect(badJson.body.errors).toHaveLength(1);
      const badName = await raw(leader, 'GET', '/v1/secret/data/raw/a%20b');
      expect(badName.status).toBe(400);
      const noVersions = await raw(leader, 'POST', '/v1/secret/delete/raw/one', token(), JSON.stringify({ versions: [] }));
      expect(noVersions).toMatchObject({ status: 400, body: { errors: ['no version number provided'] } });
      const wrongMethod = await raw(leader, 'DELETE', '/v1/secret/undelete/raw/one', token());
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.body.errors).toHaveLength(1);
    });

    test('RBAC: a role limited to one folder writes there only and lists only what it may see', async () => {
      const role = await cluster.http(leader, 'PUT', '/v1/roles/kv-team', { rules: [{ paths: ['team/**'], actions: ['secret.write', 'secret.list', 'secret.delete'] }] });
      expect(role.status).toBe(200);
      const t = await cluster.http(leader, 'POST', '/v1/tokens', { name: 'kv-team-token', role: 'kv-team' });
      expect(t.status).toBe(200);
      const team = vault({ apiVersion: 'v1', endpoint: follower.api, token: t.body.token });
      await team.write('secret/data/team/app', { data: { ok: 'yes' } });
      await viaLeader.write('secret/data/other/app', { data: { ok: 'no' } });
      const denied = await failure(team.write('secret/data/other/app', { data: { x: '1' } }));
      expect(denied.status).toBe(403);
      expect((await failure(team.write('secret/destroy/team/app', { versions: [1] }))).status).toBe(403);
      const keys = (await team.list('secret/metadata/')).data.keys as string[];
      expect(keys).toEqual(['team/']);
      expect((await failure(team.read('secret/metadata/other/app'))).status).toBe(403);
    });

    test('allowlist: a KV v2 read from a client address off the allowlist is denied', async () => {
      // Allow only an address this test never uses as a source.
      expect((await cluster.http(leader, 'PUT', '/v1/allowlist', { cidrs: ['127.0.0.2/32'] })).status).toBe(200);
      try {
        for (const n of cluster.nodes) {
          await cluster.eventually(async () => (await raw(n, 'GET', '/v1/secret/data/raw/one', token())).status === 403, 15_000, `allowlist replicated to ${n.id}`);
          const r = await raw(n, 'GET', '/v1/secret/data/raw/one', token());
          expect(r.body.errors).toEqual([expect.stringContaining('allowlist')]);
          expect(JSON.stringify(r.body)).not.toContain('"x"');
        }
        // node-vault sees the same denial.
        const denied = await failure(viaFollower.read('secret/data/raw/one'));
        expect(denied.status).toBe(403);
      } finally {
        expect((await cluster.http(leader, 'PUT', '/v1/allowlist', { cidrs: ['127.0.0.0/8', '::1/128'] })).status).toBe(200);
      }
      await cluster.eventually(async () => (await raw(follower, 'GET', '/v1/secret/data/raw/one')).status === 200, 15_000, 'allowlist restored');
    });
  });
});
