/**
 * Hostile requests against every transit route on a real three-node cluster: no token, an unknown
 * token, a token whose role lacks the action (or holds it on other keys only), path tricks
 * (`..`, `%2e%2e`, `%2f`, over-long names), declared and real oversized bodies, a refused
 * request's body never read, and every route through a follower.
 */
import { TestCluster, type NodeHandle } from '../src/harness';
import { bigBodyRequest, partialBodyRequest, rawHttp } from '../src/hostile';

jest.setTimeout(240_000);

type R = { method: string; path: (name: string) => string; body?: Record<string, unknown>; ok: number };

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('transit routes under hostile requests', () => {
  const cluster = new TestCluster();
  let leader: NodeHandle;
  let follower: NodeHandle;
  let low: string;
  let otherKeys: string;
  let ct = '';

  /** Every transit route with a valid body; `ok` is the status an admin gets. */
  const routes = (): R[] => [
    { method: 'POST', path: (n) => `/v1/transit/keys/${n}`, body: {}, ok: 200 },
    { method: 'GET', path: (n) => `/v1/transit/keys/${n}`, ok: 200 },
    { method: 'POST', path: (n) => `/v1/transit/keys/${n}/rotate`, ok: 200 },
    { method: 'POST', path: (n) => `/v1/transit/keys/${n}/config`, body: { deletion_allowed: false }, ok: 200 },
    { method: 'POST', path: (n) => `/v1/transit/encrypt/${n}`, body: { plaintext: b64('x') }, ok: 200 },
    { method: 'POST', path: (n) => `/v1/transit/decrypt/${n}`, body: { ciphertext: ct }, ok: 200 },
    { method: 'POST', path: (n) => `/v1/transit/rewrap/${n}`, body: { ciphertext: ct }, ok: 200 },
    { method: 'POST', path: (n) => `/v1/transit/datakey/plaintext/${n}`, body: {}, ok: 200 },
    { method: 'POST', path: (n) => `/v1/transit/datakey/wrapped/${n}`, body: {}, ok: 200 },
    { method: 'DELETE', path: (n) => `/v1/transit/keys/${n}`, ok: 400 }, // deletion not allowed
  ];
  const auth = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

  beforeAll(async () => {
    await cluster.start();
    leader = await cluster.bootstrapped();
    follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    await cluster.ready();
    const mk = async (method: string, p: string, body?: unknown): Promise<any> => {
      const r = await cluster.call(leader, method, p, body);
      if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    };
    await mk('POST', '/v1/transit/keys/k1');
    await mk('POST', '/v1/transit/keys/app-k');
    ct = (await mk('POST', '/v1/transit/encrypt/k1', { plaintext: b64('hello') })).data.ciphertext;
    await mk('PUT', '/v1/roles/low', { rules: [{ paths: ['**'], actions: ['secret.write', 'secret.list'] }, { actions: ['token.read'] }] });
    await mk('PUT', '/v1/roles/app-only', { rules: [{ paths: ['app-*'], actions: ['transit.encrypt', 'transit.decrypt', 'transit.manage'] }] });
    low = (await mk('POST', '/v1/tokens', { name: 'low', role: 'low' })).token;
    otherKeys = (await mk('POST', '/v1/tokens', { name: 'app-only', role: 'app-only' })).token;
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('no token, an unknown token, a role without the action, a role scoped to other keys: 403, nothing done', async () => {
    for (const [i, r] of routes().entries()) {
      for (const [what, headers] of [
        ['no token', {}],
        ['unknown token', auth('cof_not_a_real_token_000000000000000000000000')],
        ['low token', auth(low)],
        ['token for app-* keys', auth(otherKeys)],
      ] as const) {
        // Unknown tokens count toward the address's lockout: each route's from its own address.
        const from = what === 'unknown token' ? `127.0.0.${50 + i}` : '127.0.0.1';
        const res = await rawHttp(follower, r.method, r.path('k1'), { from, headers, ...(r.body === undefined ? {} : { body: r.body }) });
        if (res.status !== 403) throw new Error(`${what}: ${r.method} ${r.path('k1')} answered ${res.status} ${res.text}`);
        expect(Array.isArray(res.body.errors)).toBe(true);
        expect(res.text).not.toContain('hello');
      }
    }
    // Nothing happened: still one version, still present.
    const k = await cluster.call(leader, 'GET', '/v1/transit/keys/k1');
    expect(k.body.data.latest_version).toBe(1);
  });

  test('path tricks are refused with 400 before anything runs', async () => {
    const admin = auth(cluster.bootstrapToken);
    for (const r of routes()) {
      for (const bad of ['..', '%2e%2e', '%2E%2e', '.', 'a%2fb', '..%2fk1', 'k1%00', 'a'.repeat(65), '%ff']) {
        const res = await rawHttp(follower, r.method, r.path(bad), { headers: admin, ...(r.body === undefined ? {} : { body: r.body }) });
        if (res.status !== 400) throw new Error(`${r.method} ${r.path(bad)} answered ${res.status} ${res.text}`);
      }
      // Dot segments elsewhere in the path cannot reach another route either.
      const around = await rawHttp(follower, r.method, r.path('k1').replace('/v1/transit/', '/v1/transit/x/../'), { headers: admin });
      expect(around.status).toBe(400);
      // In Vault's envelope, like every transit answer (node-vault reads `errors`).
      expect(Array.isArray(JSON.parse(around.text).errors)).toBe(true);
    }
    const unknown = await rawHttp(follower, 'GET', '/v1/transit/nothing-here', { headers: admin });
    expect([unknown.status, Array.isArray(JSON.parse(unknown.text).errors)]).toEqual([404, true]);
    expect((await cluster.call(leader, 'GET', '/v1/transit/keys/k1')).body.data.latest_version).toBe(1);
  });

  test('oversized bodies: a declared one is refused with 413 before it is read, a real one too', async () => {
    for (const r of routes().filter((x) => x.body !== undefined || x.method === 'POST')) {
      for (const headers of [{}, auth(low), auth(cluster.bootstrapToken)]) {
        // Only a few body bytes: the answer comes from the declared length alone (and a reset after
        // a large unread upload could beat the answer to the client).
        const p = await partialBodyRequest(follower, '127.0.0.1', r.method, r.path('k1'), 3 * 1024 * 1024, { ...headers, 'content-type': 'application/json' }, 16);
        if (p.status !== 413) throw new Error(`${r.method} ${r.path('k1')} with ${Object.keys(headers).join(',') || 'no token'}: ${String(p.status)} after ${p.sentBytes} bytes, ${p.ms} ms`);
      }
    }
    // The whole body sent: the node answers 413 and closes while the upload goes on. null is the
    // client seeing the reset before that answer (the kernel drops an answer a reset overtakes),
    // so try a few times for the answer itself; any other status is wrong.
    const seen: (number | null)[] = [];
    for (let i = 0; i < 5 && !seen.includes(413); i++) {
      seen.push(await bigBodyRequest(follower, '127.0.0.1', 'POST', '/v1/transit/encrypt/k1', 3 * 1024 * 1024, { ...auth(cluster.bootstrapToken), 'content-type': 'application/json' }));
    }
    expect(seen.filter((s) => s !== null && s !== 413)).toEqual([]);
    expect(cluster.isRunning(follower)).toBe(true);
    // A refused request's body (under the limit) is never waited for: 403 arrives with most of it unsent.
    const refused = await partialBodyRequest(follower, '127.0.0.1', 'POST', '/v1/transit/encrypt/k1', 1024 * 1024, { ...auth(low), 'content-type': 'application/json' }, 4096);
    expect(refused.status).toBe(403);
  });

  test('every route works through a follower and through the leader alike', async () => {
    for (const n of [follower, leader]) {
      for (const r of routes()) {
        const res = await cluster.call(n, r.method, r.path('k1'), r.body);
        if (res.status !== r.ok) throw new Error(`${n.id}: ${r.method} ${r.path('k1')} answered ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
    // One rotation per pass above (follower, leader): 1 + 2 = 3 versions, on every node.
    for (const n of cluster.nodes) expect((await cluster.call(n, 'GET', '/v1/transit/keys/k1')).body.data.latest_version).toBe(3);
  });

  test('bodies are validated with a clear 400 naming the field', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['POST', '/v1/transit/keys/k2', { type: 'rsa-4096' }, /"type" must be one of xchacha20-poly1305, aes256-gcm/],
      ['POST', '/v1/transit/keys/k2', { exportable: true }, /unsupported field "exportable"/],
      ['POST', '/v1/transit/encrypt/k1', {}, /"plaintext" is required/],
      ['POST', '/v1/transit/encrypt/k1', { plaintext: 'not base64!' }, /"plaintext" must be standard base64/],
      ['POST', '/v1/transit/encrypt/k1', { plaintext: b64('x'), batch_input: [] }, /unsupported field "batch_input"/],
      ['POST', '/v1/transit/encrypt/k1', { plaintext: b64('x'), name: 'other' }, /"name" in the body/],
      ['POST', '/v1/transit/encrypt/k1', { plaintext: b64('x'), context: b64('c'.repeat(5000)) }, /"context" must be at most 4096 bytes/],
      ['POST', '/v1/transit/encrypt/missing', { plaintext: b64('x') }, /transit key "missing" does not exist/],
      ['POST', '/v1/transit/decrypt/k1', { ciphertext: 42 }, /"ciphertext" is required/],
      ['POST', '/v1/transit/keys/k1/config', {}, /send "min_decryption_version" and\/or "deletion_allowed"/],
      ['POST', '/v1/transit/keys/k1/config', { deletion_allowed: 'yes' }, /"deletion_allowed" must be true or false/],
      ['POST', '/v1/transit/keys/k1/config', { min_decryption_version: -1 }, /"min_decryption_version" must be a key version/],
      ['POST', '/v1/transit/datakey/wrapped/k1', { bits: '256' }, /"bits" must be 128, 256 or 512/],
    ];
    for (const [method, p, body, re] of cases) {
      const res = await cluster.call(follower, method, p, body);
      if (res.status !== 400) throw new Error(`${method} ${p} ${JSON.stringify(body)} answered ${res.status} ${JSON.stringify(res.body)}`);
      expect(res.body.errors[0]).toMatch(re);
    }
    const notJson = await rawHttp(follower, 'POST', '/v1/transit/encrypt/k1', { headers: { ...auth(cluster.bootstrapToken), 'content-type': 'application/json' }, body: '{"plaintext":' });
    expect(notJson.status).toBe(400);
  });
});
