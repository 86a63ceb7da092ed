// Secret routes over real HTTP, single-node path (see harness.ts).
import { startHarness, type Harness } from './harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

describe('secrets, single-node path', () => {
  test('write, read, versions; ciphertext only in state', async () => {
    const w1 = await h.req('PUT', '/v1/secrets/payments/stripe/api-key', { body: { value: 'sk_live_canary_1' } });
    expect(w1.status).toBe(200);
    expect(w1.body).toEqual({ name: 'payments/stripe/api-key', version: 1, createdAt: expect.any(String) });
    const w2 = await h.req('PUT', '/v1/secrets/payments/stripe/api-key', { body: { value: 'sk_live_canary_2', description: 'Stripe' } });
    expect(w2.body.version).toBe(2);
    const r = await h.req('GET', '/v1/secrets/payments/stripe/api-key', { token: null });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ name: 'payments/stripe/api-key', version: 2, value: 'sk_live_canary_2', createdAt: expect.any(String) });
    const r1 = await h.req('GET', '/v1/secrets/payments/stripe/api-key?version=1&consistency=stale', { token: null });
    expect(r1.body.value).toBe('sk_live_canary_1');
    // The command that went through the log carried ciphertext only.
    const put = h.proposed.find((c) => c.type === 'secret.put');
    expect(Buffer.from(JSON.stringify(put, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v))).includes('sk_live_canary')).toBe(false);
    const snap = Buffer.from(h.sm().createSnapshot());
    expect(snap.includes('sk_live_canary')).toBe(false);
    const v = await h.req('GET', '/v1/versions/payments/stripe/api-key');
    expect(v.status).toBe(200);
    expect(v.body.currentVersion).toBe(2);
    expect(v.body.description).toBe('Stripe');
    expect(v.body.versions.map((x: { version: number }) => x.version)).toEqual([1, 2]);
    expect(JSON.stringify(v.body)).not.toContain('canary');
  });

  test('base64 and userpass formats; rotate keeps the username', async () => {
    await h.req('PUT', '/v1/secrets/bin', { body: { valueBase64: Buffer.from([0, 1, 2, 255]).toString('base64') } });
    expect((await h.req('GET', '/v1/secrets/bin')).body.valueBase64).toBe('AAEC/w==');
    await h.req('PUT', '/v1/secrets/db/app', { body: { format: 'userpass', username: 'app', password: 'hunter2' } });
    const r = await h.req('GET', '/v1/secrets/db/app');
    expect(r.body).toMatchObject({ format: 'userpass', username: 'app', password: 'hunter2', version: 1 });
    const rot = await h.req('POST', '/v1/rotate/db/app');
    expect(rot.status).toBe(200);
    expect(rot.body.version).toBe(2);
    const r2 = await h.req('GET', '/v1/secrets/db/app');
    expect(r2.body.username).toBe('app');
    expect(r2.body.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await h.req('PUT', '/v1/secrets/plain', { body: { value: 'x' } });
    await h.req('POST', '/v1/rotate/plain', { body: {} });
    expect((await h.req('GET', '/v1/secrets/plain')).body.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await h.req('POST', '/v1/rotate/missing')).status).toBe(404);
  });

  test('check-and-set: 409 cas_conflict with the error shape; cas 0 creates only', async () => {
    expect((await h.req('PUT', '/v1/secrets/c', { body: { value: 'a', cas: 0 } })).status).toBe(200);
    const again = await h.req('PUT', '/v1/secrets/c', { body: { value: 'b', cas: 0 } });
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: { code: 'cas_conflict', message: expect.any(String), requestId: expect.any(String) } });
    expect((await h.req('PUT', '/v1/secrets/c', { body: { value: 'b', cas: 1 } })).body.version).toBe(2);
    expect((await h.req('PUT', '/v1/secrets/c', { body: { value: 'c', cas: 1 } })).status).toBe(409);
    expect((await h.req('PUT', '/v1/secrets/c', { body: { value: 'c', cas: 7 } })).status).toBe(409);
  });

  test('delete, undelete, destroy, destroy-all', async () => {
    for (const v of ['a', 'b', 'c']) await h.req('PUT', '/v1/secrets/d/x', { body: { value: v } });
    expect((await h.req('POST', '/v1/delete/d/x', { body: { versions: [3] } })).body).toEqual({ name: 'd/x', versions: [3], changed: 1 });
    expect((await h.req('GET', '/v1/secrets/d/x')).status).toBe(404);
    expect((await h.req('GET', '/v1/secrets/d/x?version=2')).body.value).toBe('b');
    expect((await h.req('POST', '/v1/undelete/d/x', { body: { versions: [3] } })).status).toBe(200);
    expect((await h.req('GET', '/v1/secrets/d/x')).body.value).toBe('c');
    expect((await h.req('POST', '/v1/destroy/d/x', { body: { versions: [1] } })).status).toBe(200);
    expect((await h.req('GET', '/v1/secrets/d/x?version=1')).status).toBe(404);
    const meta = await h.req('GET', '/v1/versions/d/x');
    expect(meta.body.versions[0]).toMatchObject({ version: 1, destroyed: true });
    expect((await h.req('POST', '/v1/delete/nope', { body: { versions: [1] } })).status).toBe(404);
    expect((await h.req('DELETE', '/v1/secrets/d/x')).body).toEqual({ name: 'd/x', destroyed: 3 });
    expect((await h.req('GET', '/v1/versions/d/x')).status).toBe(404);
    expect((await h.req('DELETE', '/v1/secrets/d/x')).status).toBe(404);
  });

  test('list by prefix, paged, filtered by the role', async () => {
    for (const n of ['apps/a', 'apps/b', 'apps/c', 'other/z']) await h.req('PUT', `/v1/secrets/${n}`, { body: { value: n } });
    const all = await h.req('GET', '/v1/secrets?prefix=apps/');
    expect(all.body.secrets.map((s: { name: string }) => s.name)).toEqual(['apps/a', 'apps/b', 'apps/c']);
    expect(all.body.secrets[0]).toEqual({ name: 'apps/a', version: 1, createdAt: expect.any(String), updatedAt: expect.any(String) });
    const page = await h.req('GET', '/v1/secrets?prefix=apps/&limit=2');
    expect(page.body.next).toBe('apps/b');
    const rest = await h.req('GET', '/v1/secrets?prefix=apps/&after=apps/b');
    expect(rest.body.secrets.map((s: { name: string }) => s.name)).toEqual(['apps/c']);
    const t = await h.tokenWith('lister', [{ paths: ['apps/a', 'other/**'], actions: ['secret.list'] }]);
    const mine = await h.req('GET', '/v1/secrets', { token: t });
    expect(mine.body.secrets.map((s: { name: string }) => s.name)).toEqual(['apps/a', 'other/z']);
    expect((await h.req('GET', '/v1/secrets?prefix=bad%20prefix')).status).toBe(400);
  });

  test('concurrent writes to one name each get their own version (reservation + re-seal)', async () => {
    await h.close();
    h = await startHarness({ proposeDelayMs: 5 });
    const results = await Promise.all(Array.from({ length: 6 }, (_, i) => h.req('PUT', '/v1/secrets/hot', { body: { value: `v${i}` } })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(results.map((r) => r.body.version).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    // Each stored version opens with its own AAD (name:version) and holds what that write sent.
    for (const r of results) {
      const got = await h.req('GET', `/v1/secrets/hot?version=${r.body.version}`);
      expect(got.status).toBe(200);
    }
    const values = await Promise.all(results.map((r) => h.req('GET', `/v1/secrets/hot?version=${r.body.version}`)));
    expect(values.map((v) => v.body.value).sort()).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5']);
  });

  test('concurrent plain writes whose seals finish out of order propose in reservation order: no re-seal, no 409', async () => {
    await h.close();
    h = await startHarness({ proposeDelayMs: 2, sealReverseMs: 40 });
    const n = 32;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => h.req('PUT', '/v1/secrets/hot2', { body: { value: `v${i}` } })));
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: n }, () => 200));
    expect(results.map((r) => r.body.version).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    // One proposal per write, in version order: nothing lost its version to a later seal.
    const puts = h.proposed.filter((c) => c.type === 'secret.put' && c.name === 'hot2') as { version: number }[];
    expect(puts.map((c) => c.version)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  });

  test('batch read: missing names omitted, at most 256 names', async () => {
    await h.req('PUT', '/v1/secrets/b/1', { body: { value: 'one' } });
    await h.req('PUT', '/v1/secrets/b/2', { body: { value: 'two' } });
    const r = await h.req('POST', '/v1/batch/secrets', { token: null, body: { names: ['b/1', 'b/missing', 'b/2'] } });
    expect(r.status).toBe(200);
    expect(r.body.secrets.map((s: { name: string; value: string }) => [s.name, s.value])).toEqual([['b/1', 'one'], ['b/2', 'two']]);
    const many = Array.from({ length: 257 }, (_, i) => `n${i}`);
    expect((await h.req('POST', '/v1/batch/secrets', { body: { names: many } })).status).toBe(400);
    expect((await h.req('POST', '/v1/batch/secrets', { body: { names: ['ok', 'bad//name'] } })).body.error.code).toBe('invalid_name');
  });

  test('verify: current and grace versions match; a mismatch counts toward lockout', async () => {
    await h.req('PUT', '/v1/secrets/v/key', { body: { value: 'old', rotation: { intervalSecs: 3600, graceSecs: 60 } } });
    h.clock.now += 1000;
    await h.req('PUT', '/v1/secrets/v/key', { body: { value: 'new' } });
    expect((await h.req('POST', '/v1/verify/v/key', { token: null, body: { value: 'new' } })).body).toEqual({ valid: true, version: 2 });
    expect((await h.req('POST', '/v1/verify/v/key', { token: null, body: { value: 'old' } })).body).toEqual({ valid: true, version: 1 });
    h.clock.now += 61_000;
    expect((await h.req('POST', '/v1/verify/v/key', { token: null, body: { value: 'old' } })).body).toEqual({ valid: false, version: null });
    // That mismatch counts: four more (5 = COFFER_AUTH_MAX_FAILURES) lock the address out.
    for (let i = 0; i < 4; i++) expect((await h.req('POST', '/v1/verify/v/key', { token: null, body: { value: `wrong-${i}` } })).status).toBe(200);
    expect((await h.req('POST', '/v1/verify/v/key', { token: null, body: { value: 'new' } })).body.error.code).toBe('locked_out');
    h.clock.now += 901_000;
    await h.req('PUT', '/v1/secrets/v/up', { body: { format: 'userpass', username: 'u', password: 'pw' } });
    expect((await h.req('POST', '/v1/verify/v/up', { body: { value: 'pw' } })).body.valid).toBe(true);
    expect((await h.req('POST', '/v1/verify/v/none', { body: { value: 'x' } })).status).toBe(404);
  });

  test('every secret route prefix takes the whole rest of the path as the name', async () => {
    const name = 'a.b/c_d/e-f/rotate/versions';
    expect((await h.req('PUT', `/v1/secrets/${name}`, { body: { value: 'x' } })).body.name).toBe(name);
    expect((await h.req('GET', `/v1/secrets/${name}`)).body.name).toBe(name);
    expect((await h.req('GET', `/v1/versions/${name}`)).body.name).toBe(name);
    expect((await h.req('POST', `/v1/verify/${name}`, { body: { value: 'x' } })).body.valid).toBe(true);
    expect((await h.req('POST', `/v1/rotate/${name}`)).body.name).toBe(name);
    for (const op of ['delete', 'undelete', 'destroy']) expect((await h.req('POST', `/v1/${op}/${name}`, { body: { versions: [1] } })).body.name).toBe(name);
    expect((await h.req('DELETE', `/v1/secrets/${name}`)).body.name).toBe(name);
    // Percent-encoded segments decode to the same name.
    expect((await h.req('PUT', '/v1/secrets/enc%2Fname', { body: { value: 'x' } })).body.name).toBe('enc/name');
  });

  test.each([
    ['PUT', '/v1/secrets/'],
    ['GET', '/v1/secrets/'],
    ['DELETE', '/v1/secrets/'],
    ['POST', '/v1/verify/'],
    ['POST', '/v1/rotate/'],
    ['GET', '/v1/versions/'],
    ['POST', '/v1/delete/'],
    ['POST', '/v1/undelete/'],
    ['POST', '/v1/destroy/'],
  ])('%s %s refuses bad names with 400 invalid_name', async (method, prefix) => {
    // NB: fetch normalises literal dot segments, so those are sent percent-encoded.
    for (const bad of ['a//b', 'a/%2E%2Fb', 'a/%2E%2E%2Fb', 'sp%20ace', 'x/', 'a%zz', 'n'.repeat(513), 'caf%C3%A9']) {
      const r = await h.req(method, `${prefix}${bad}`, method === 'GET' || method === 'DELETE' ? {} : { body: { value: 'x' } });
      expect([r.status, r.body?.error?.code]).toEqual([400, 'invalid_name']);
    }
  });

  test('limits and body errors: 413, invalid_json, invalid_value, unknown fields', async () => {
    const big = 'x'.repeat(1024 * 1024 + 1);
    const r1 = await h.req('PUT', '/v1/secrets/big', { body: { value: big } });
    expect([r1.status, r1.body.error.code]).toEqual([413, 'body_too_large']);
    const r2 = await h.req('PUT', '/v1/secrets/big', { rawBody: JSON.stringify({ value: 'y'.repeat(3 * 1024 * 1024) }), headers: { 'content-type': 'application/json' } });
    expect([r2.status, r2.body.error.code]).toEqual([413, 'body_too_large']);
    expect((await h.req('PUT', '/v1/secrets/ok', { body: { value: 'y'.repeat(1024 * 1024) } })).status).toBe(200);
    const r3 = await h.req('PUT', '/v1/secrets/j', { rawBody: '{"value": ', headers: { 'content-type': 'application/json' } });
    expect([r3.status, r3.body.error.code]).toEqual([400, 'invalid_json']);
    const r4 = await h.req('PUT', '/v1/secrets/j', { body: { value: 'a', valueBase64: 'YQ==' } });
    expect([r4.status, r4.body.error.code]).toEqual([400, 'invalid_value']);
    const r5 = await h.req('PUT', '/v1/secrets/j', { body: { value: 'a', colour: 'red' } });
    expect([r5.status, r5.body.error.code]).toEqual([400, 'invalid_request']);
    const r6 = await h.req('PUT', '/v1/secrets/j', { body: { value: 'a', cas: -1 } });
    expect(r6.status).toBe(400);
    const r7 = await h.req('GET', '/v1/secrets/ok?version=abc');
    expect(r7.status).toBe(400);
    const r8 = await h.req('GET', '/v1/secrets/ok?consistency=weird');
    expect(r8.status).toBe(400);
  });

  test('unknown route 404, wrong method 405, request id echoed when well-formed', async () => {
    const r = await h.req('GET', '/v1/nothing');
    expect([r.status, r.body.error.code]).toEqual([404, 'not_found']);
    const m = await h.req('PATCH', '/v1/tokens');
    expect([m.status, m.body.error.code]).toEqual([405, 'method_not_allowed']);
    expect(m.headers.get('allow')).toBe('POST, GET');
    const id = await h.req('GET', '/v1/secrets/none', { headers: { 'x-request-id': 'req-42' } });
    expect(id.headers.get('x-request-id')).toBe('req-42');
    expect(id.body.error.requestId).toBe('req-42');
    const bad = await h.req('GET', '/v1/secrets/none', { headers: { 'x-request-id': 'bad id!' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
