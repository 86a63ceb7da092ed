import { CofferClient, CofferError, type RetryInfo } from '@coffer/client';
import { apiError, caught, deadAddress, fakeTime, json, standIn, type StandIn } from './helpers';

const servers: StandIn[] = [];
const clients: CofferClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function node(handler: Parameters<typeof standIn>[0]): Promise<StandIn> {
  const s = await standIn(handler);
  servers.push(s);
  return s;
}

function client(addresses: string[], extra: ConstructorParameters<typeof CofferClient>[0] = {}): { c: CofferClient; time: ReturnType<typeof fakeTime>; retries: RetryInfo[] } {
  const time = fakeTime();
  const c = new CofferClient({ addresses, clock: time.now, sleep: time.sleep, random: () => 0.5, ...extra });
  const retries: RetryInfo[] = [];
  c.on('retry', (r) => retries.push(r));
  clients.push(c);
  return { c, time, retries };
}

const secret = { name: 'app/db', version: 3, value: 'hunter2', createdAt: '2026-01-01T00:00:00Z' };

describe('failover', () => {
  test('a refused connection moves a read to the next node, with a backoff sleep', async () => {
    const dead = await deadAddress();
    const live = await node((_req, res) => json(res, 200, secret));
    const { c, time, retries } = client([dead, live.url]);
    await expect(c.secrets.get('app/db')).resolves.toEqual(secret);
    expect(live.hits.map((h) => `${h.method} ${h.url}`)).toEqual(['GET /v1/secrets/app/db']);
    expect(retries).toEqual([{ attempt: 2, address: live.url, delayMs: 75, reason: 'unavailable' }]);
    expect(time.sleeps).toEqual([75]);
  });

  test('the node that answered is tried first next time', async () => {
    const dead = await deadAddress();
    const live = await node((_req, res) => json(res, 200, secret));
    const { c, retries } = client([dead, live.url]);
    await c.secrets.get('app/db');
    await c.secrets.get('app/db');
    expect(retries).toHaveLength(1);
    expect(live.hits).toHaveLength(2);
  });

  test('a 503 read is retried on the next node; Retry-After is honoured for the node that sent it', async () => {
    let calls = 0;
    const a = await node((_req, res) => {
      calls += 1;
      if (calls === 1) apiError(res, 503, 'no_quorum', { 'retry-after': '3' });
      else json(res, 200, secret);
    });
    const { c, time } = client([a.url]);
    await expect(c.secrets.get('app/db')).resolves.toEqual(secret);
    expect(a.hits).toHaveLength(2);
    expect(time.sleeps).toEqual([3000]);
  });

  test('backoff doubles, is bounded, and jitter stays within [step/2, step]', async () => {
    const dead = await deadAddress();
    for (const [random, expected] of [
      [0, [50, 100, 200, 200, 200]],
      [0.999999, [100, 200, 400, 400, 400]],
    ] as const) {
      const { c, time } = client([dead], { random: () => random, retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 400 } });
      const err = await caught(c.secrets.get('x'));
      expect(err.code).toBe('unavailable');
      expect(err.attempts).toBe(6);
      expect(time.sleeps).toEqual(expected);
    }
  });

  test('a Retry-After longer than maxRetryAfterMs gives up instead of sleeping', async () => {
    const a = await node((_req, res) => apiError(res, 503, 'no_quorum', { 'retry-after': '120' }));
    const { c, time } = client([a.url], { retry: { maxRetryAfterMs: 30_000 } });
    const err = await caught(c.secrets.get('x'));
    expect(err).toMatchObject({ code: 'no_quorum', status: 503, retryAfterMs: 120_000, requestId: 'srv-no_quorum' });
    expect(a.hits).toHaveLength(1);
    expect(time.sleeps).toEqual([]);
  });

  test('a read that fails on every node reports the server error it last got', async () => {
    const a = await node((_req, res) => apiError(res, 503, 'no_leader'));
    const b = await node((_req, res) => apiError(res, 503, 'no_leader'));
    const { c } = client([a.url, b.url], { retry: { maxAttempts: 4 } });
    const err = await caught(c.secrets.get('x'));
    expect(err).toMatchObject({ code: 'no_leader', status: 503, attempts: 4 });
    expect(a.hits).toHaveLength(2);
    expect(b.hits).toHaveLength(2);
  });
});

describe('writes', () => {
  test('a POST whose connection dies after sending is not retried: outcome_unknown', async () => {
    const a = await node((req) => req.socket.destroy());
    const b = await node((_req, res) => json(res, 200, {}));
    const { c } = client([a.url, b.url]);
    const err = await caught(c.tokens.create('ci', 'deployer', { ttl: '90d' }));
    expect(err.code).toBe('outcome_unknown');
    expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.hits).toHaveLength(1);
    expect(b.hits).toHaveLength(0);
  });

  test('a POST refused at connect (never sent) goes to the next node', async () => {
    const dead = await deadAddress();
    const b = await node((_req, res) => json(res, 200, { name: 'ci', role: 'deployer', token: 't0k', expiresAt: null }));
    const { c } = client([dead, b.url]);
    await expect(c.tokens.create('ci', 'deployer')).resolves.toMatchObject({ token: 't0k' });
    expect(JSON.parse(b.hits[0]?.body ?? '')).toEqual({ name: 'ci', role: 'deployer' });
  });

  test('a secret PUT without cas answered 503 is outcome_unknown; with cas it is retried', async () => {
    let n = 0;
    const a = await node((_req, res) => {
      n += 1;
      if (n === 1 || n === 2) apiError(res, 503, 'no_quorum');
      else json(res, 200, { name: 'k', version: 2, createdAt: 1 });
    });
    const { c } = client([a.url]);
    const err = await caught(c.secrets.put('k', { value: 'v' }));
    expect(err).toMatchObject({ code: 'outcome_unknown', status: 503 });
    expect((err.cause as CofferError).code).toBe('no_quorum');
    expect(a.hits).toHaveLength(1);
    await expect(c.secrets.put('k', { value: 'v' }, { cas: 1 })).resolves.toMatchObject({ version: 2 });
    expect(a.hits).toHaveLength(3);
    expect(JSON.parse(a.hits[2]?.body ?? '')).toEqual({ value: 'v', cas: 1 });
    // Every attempt of one logical request carries the same request id.
    expect(a.hits[1]?.headers['x-request-id']).toBe(a.hits[2]?.headers['x-request-id']);
  });

  test('a write answered 503 no_leader (never proposed) goes to the next node', async () => {
    const a = await node((_req, res) => apiError(res, 503, 'no_leader', { 'retry-after': '1' }));
    const b = await node((_req, res) => json(res, 200, {}));
    const { c } = client([a.url, b.url]);
    await expect(c.roles.delete('old')).resolves.toBeUndefined();
    expect(a.hits).toHaveLength(1);
    expect(b.hits.map((h) => `${h.method} ${h.url}`)).toEqual(['DELETE /v1/roles/old']);
  });

  test('421 (misdirected) moves any request to the next node', async () => {
    const a = await node((_req, res) => apiError(res, 421, 'not_leader'));
    const b = await node((_req, res) => json(res, 202, {}));
    const { c } = client([a.url, b.url]);
    await expect(c.kms.rewrap()).resolves.toBeUndefined();
    expect(b.hits).toHaveLength(1);
  });
});

describe('errors', () => {
  test('a contract error body becomes a CofferError with code, status and request id, not retried', async () => {
    const a = await node((_req, res) => apiError(res, 404, 'not_found'));
    const { c } = client([a.url]);
    const err = await caught(c.secrets.get('nope'));
    expect(err).toBeInstanceOf(CofferError);
    expect(err).toMatchObject({ code: 'not_found', status: 404, requestId: 'srv-not_found', message: 'stand-in says not_found', attempts: 1 });
    expect(a.hits).toHaveLength(1);
  });

  test('a non-contract error body gives http_error with the status', async () => {
    const a = await node((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    const { c } = client([a.url]);
    const err = await caught(c.roles.list());
    expect(err).toMatchObject({ code: 'http_error', status: 502 });
  });

  test('a 200 that is not JSON is invalid_response', async () => {
    const a = await node((_req, res) => {
      res.writeHead(200);
      res.end('not json');
    });
    const { c } = client([a.url]);
    expect((await caught(c.cluster.status())).code).toBe('invalid_response');
  });

  test('the token goes in the Authorization header and never into an error message', async () => {
    const dead = await deadAddress();
    const a = await node((req, res) => apiError(res, req.headers.authorization === 'Bearer s3cr3t-token' ? 403 : 401, 'forbidden'));
    const { c } = client([a.url], { token: 's3cr3t-token' });
    const err = await caught(c.secrets.put('a/b', { value: 'value-xyz' }));
    expect(err).toMatchObject({ code: 'forbidden', status: 403 });
    const { c: c2 } = client([dead], { token: 's3cr3t-token', retry: { maxAttempts: 1 } });
    const err2 = await caught(c2.secrets.put('a/b', { value: 'value-xyz' }));
    for (const e of [err, err2]) {
      expect(`${e.message} ${e.stack ?? ''}`).not.toContain('s3cr3t-token');
      expect(`${e.message}`).not.toContain('value-xyz');
    }
  });
});

describe('routes', () => {
  test('methods hit the contract paths with the contract bodies', async () => {
    const a = await node((req, res) => {
      const url = req.url ?? '';
      if (url.startsWith('/v1/secrets?')) json(res, 200, { secrets: [{ name: 'p/a', version: 1 }] });
      else if (url.startsWith('/v1/versions/p/r')) json(res, 200, { versions: [{ version: 3 }], rotation: { intervalSecs: 60, graceSecs: 5, target: { type: 'postgres', role: 'app', connectionSecret: 'pg/admin' }, lastError: null, pending: true } });
      else if (url.startsWith('/v1/versions/')) json(res, 200, { versions: [{ version: 1 }, { version: 2 }], rotation: null });
      else if (url === '/v1/batch/secrets') json(res, 200, { secrets: [secret] });
      else if (url === '/v1/tokens') json(res, 200, { tokens: [{ name: 't', role: 'r', token: 'leak', hash: 'h' }] });
      else if (url === '/v1/cluster') json(res, 200, { id: 'c', leader: 'n1', term: 2, commitIndex: 5, appliedIndex: 5, members: [] });
      else if (url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('coffer_up 1\n');
      } else if (url.startsWith('/v1/sys/health')) json(res, 429, { standby: true, leader: 'n1' });
      else json(res, 200, {});
    });
    const { c } = client([a.url]);
    expect(await c.secrets.list('p/')).toEqual([{ name: 'p/a', version: 1 }]);
    expect(await c.secrets.versions('p/a')).toHaveLength(2);
    expect(await c.secrets.rotation('p/a')).toBeNull();
    expect(await c.secrets.rotation('p/r')).toEqual({ intervalSecs: 60, graceSecs: 5, target: { type: 'postgres', role: 'app', connectionSecret: 'pg/admin' }, lastError: null, pending: true });
    expect(await c.secrets.batch(['app/db'])).toEqual([secret]);
    expect(await c.tokens.list()).toEqual([{ name: 't', role: 'r' }]);
    await c.secrets.delete('p/a', [1]);
    await c.secrets.undelete('p/a', [1]);
    await c.secrets.destroy('p/a', [1]);
    await c.secrets.destroyAll('p/a');
    await c.secrets.verify('p/a', 'guess');
    await c.secrets.rotate('p/a');
    await c.secrets.get('p/a', { version: 2, consistency: 'stale' });
    await c.tokens.revoke('t');
    await c.tokens.rotate('t');
    await c.roles.put('r', { rules: [{ paths: ['p/*'], actions: ['secret.write'] }], rateLimit: '100/m' });
    await c.allowlist.set(['10.0.0.0/8']);
    await c.cluster.add({ id: 'n4', raftAddr: 'http://h4:8201', apiAddr: 'http://h4:8200' });
    await c.cluster.remove('n4');
    await c.cluster.transfer('n2');
    expect((await c.cluster.status()).leader).toBe('n1');
    expect(await c.metrics()).toBe('coffer_up 1\n');
    expect(await c.health({ address: a.url })).toEqual({ status: 429, standby: true, leader: 'n1' });
    expect(a.hits.map((h) => `${h.method} ${h.url} ${h.body}`)).toEqual([
      'GET /v1/secrets?prefix=p%2F ',
      'GET /v1/versions/p/a ',
      'GET /v1/versions/p/a ',
      'GET /v1/versions/p/r ',
      'POST /v1/batch/secrets {"names":["app/db"]}',
      'GET /v1/tokens ',
      'POST /v1/delete/p/a {"versions":[1]}',
      'POST /v1/undelete/p/a {"versions":[1]}',
      'POST /v1/destroy/p/a {"versions":[1]}',
      'DELETE /v1/secrets/p/a ',
      'POST /v1/verify/p/a {"value":"guess"}',
      'POST /v1/rotate/p/a {}',
      'GET /v1/secrets/p/a?version=2&consistency=stale ',
      'DELETE /v1/tokens/t ',
      'POST /v1/tokens/t/rotate {}',
      'PUT /v1/roles/r {"rules":[{"paths":["p/*"],"actions":["secret.write"]}],"rateLimit":"100/m"}',
      'PUT /v1/allowlist {"cidrs":["10.0.0.0/8"]}',
      'POST /v1/cluster/members {"id":"n4","raftAddr":"http://h4:8201","apiAddr":"http://h4:8200"}',
      'DELETE /v1/cluster/members/n4 ',
      'POST /v1/cluster/leader/transfer {"to":"n2"}',
      'GET /v1/cluster ',
      'GET /metrics ',
      'GET /v1/sys/health ',
    ]);
  });
});
