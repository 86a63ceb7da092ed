import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CofferClient, type ClientWarning, type TokenExpiryInfo } from '@coffer/client';
import { apiError, caught, fakeTime, json, standIn, type StandIn } from './helpers';

const servers: StandIn[] = [];
const clients: CofferClient[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function node(handler: Parameters<typeof standIn>[0]): Promise<StandIn> {
  const s = await standIn(handler);
  servers.push(s);
  return s;
}

/** A node whose secret value and availability the test controls. */
async function controllable(): Promise<{ s: StandIn; state: { up: boolean; value: string } }> {
  const state = { up: true, value: 'v1' };
  const s = await node((req, res) => {
    if (!state.up) return apiError(res, 503, 'no_quorum');
    if (req.method === 'PUT') return json(res, 200, { name: 'db', version: 2, createdAt: 0 });
    const name = (req.url ?? '').replace(/^\/v1\/secrets\//, '').replace(/\?.*$/, '');
    if (name !== 'db') return apiError(res, 404, 'not_found');
    json(res, 200, { name: 'db', version: 1, value: state.value, createdAt: 0 });
  });
  return { s, state };
}

describe('read cache and circuit breaker', () => {
  function cachedClient(url: string): { c: CofferClient; time: ReturnType<typeof fakeTime>; events: string[]; warnings: ClientWarning[] } {
    const time = fakeTime();
    const c = new CofferClient({
      addresses: [url],
      cache: { ttlMs: 60_000 },
      breaker: { failureThreshold: 3, firstProbeMs: 30_000, maxProbeMs: 100_000 },
      retry: { maxAttempts: 1 },
      clock: time.now,
      sleep: time.sleep,
    });
    clients.push(c);
    const events: string[] = [];
    const warnings: ClientWarning[] = [];
    c.on('breakerOpen', (i) => events.push(`open:${i.retryInMs}`));
    c.on('breakerClosed', () => events.push('closed'));
    c.on('warning', (w) => warnings.push(w));
    return { c, time, events, warnings };
  }

  test('a fresh cached value is served without a request; an expired one is refetched', async () => {
    const { s, state } = await controllable();
    const { c, time } = cachedClient(s.url);
    expect((await c.secrets.get('db')).value).toBe('v1');
    state.value = 'v2';
    time.advance(59_000);
    expect((await c.secrets.get('db')).value).toBe('v1');
    expect(s.hits).toHaveLength(1);
    time.advance(2_000);
    expect((await c.secrets.get('db')).value).toBe('v2');
    expect(s.hits).toHaveLength(2);
  });

  test('a write through the client drops the cached value', async () => {
    const { s, state } = await controllable();
    const { c } = cachedClient(s.url);
    await c.secrets.get('db');
    state.value = 'v2';
    await c.secrets.put('db', { value: 'v2' });
    expect((await c.secrets.get('db')).value).toBe('v2');
  });

  test('after N failures the breaker opens and serves the expired cache with a warning; probes back off; a good probe closes it', async () => {
    const { s, state } = await controllable();
    const { c, time, events, warnings } = cachedClient(s.url);
    await c.secrets.get('db');
    time.advance(120_000); // expired
    state.up = false;

    // Failures 1 and 2: the breaker is still closed, so the error surfaces.
    expect((await caught(c.secrets.get('db'))).code).toBe('no_quorum');
    expect((await caught(c.secrets.get('db'))).code).toBe('no_quorum');
    expect(c.breakerState).toBe('closed');
    // Failure 3 opens it and the stale value is served.
    expect((await c.secrets.get('db')).value).toBe('v1');
    expect(c.breakerState).toBe('open');
    expect(events).toEqual(['open:30000']);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ code: 'stale_cache', name: 'db', ageMs: 120_000 });
    expect(JSON.stringify(warnings[0]?.message)).not.toContain('v1');
    expect(s.hits).toHaveLength(4);

    // While open nothing is sent: cached reads are served, others fail fast.
    expect((await c.secrets.get('db')).value).toBe('v1');
    const fast = await caught(c.secrets.get('other'));
    expect(fast).toMatchObject({ code: 'breaker_open', retryAfterMs: 30_000 });
    expect((await caught(c.roles.list())).code).toBe('breaker_open');
    expect(s.hits).toHaveLength(4);

    // First probe after 30 s fails: reopen with the wait doubled.
    time.advance(30_000);
    expect((await c.secrets.get('db')).value).toBe('v1');
    expect(s.hits).toHaveLength(5);
    expect(events).toEqual(['open:30000', 'open:60000']);
    // Next probe doubles again but stops at the ceiling (100 s).
    time.advance(60_000);
    await c.secrets.get('db');
    expect(events).toEqual(['open:30000', 'open:60000', 'open:100000']);
    time.advance(100_000);
    await c.secrets.get('db');
    expect(events.at(-1)).toBe('open:100000');

    // Recovery: the next probe succeeds, the breaker closes, fresh values flow again.
    state.up = true;
    state.value = 'v9';
    time.advance(100_000);
    expect((await c.secrets.get('db')).value).toBe('v9');
    expect(c.breakerState).toBe('closed');
    expect(events.at(-1)).toBe('closed');
  });

  test('a definite answer (404) counts as the service working, not as a failure', async () => {
    const { s } = await controllable();
    const { c } = cachedClient(s.url);
    for (let i = 0; i < 5; i++) expect((await caught(c.secrets.get('missing'))).code).toBe('not_found');
    expect(c.breakerState).toBe('closed');
  });

  test('without a cache there is no breaker by default', async () => {
    const s = await node((_req, res) => apiError(res, 503, 'no_quorum'));
    const c = new CofferClient({ addresses: [s.url], retry: { maxAttempts: 1 } });
    clients.push(c);
    for (let i = 0; i < 4; i++) expect((await caught(c.secrets.get('x'))).code).toBe('no_quorum');
    expect(c.breakerState).toBeUndefined();
    expect(s.hits).toHaveLength(4);
  });
});

describe('check-and-set after an unknown outcome', () => {
  test('a 409 on the retry of a cas write whose first attempt got no answer is outcome_unknown', async () => {
    let n = 0;
    const s = await node((req, res) => {
      n += 1;
      if (n === 1) req.socket.destroy();
      else apiError(res, 409, 'cas_conflict');
    });
    const c = new CofferClient({ addresses: [s.url], sleep: async () => undefined });
    clients.push(c);
    const err = await caught(c.secrets.put('k', { value: 'v' }, { cas: 4 }));
    expect(err).toMatchObject({ code: 'outcome_unknown', status: 409 });
    expect(s.hits).toHaveLength(2);
    // Without an ambiguous attempt a conflict is just a conflict.
    expect((await caught(c.secrets.put('k', { value: 'v' }, { cas: 4 }))).code).toBe('cas_conflict');
  });
});

describe('token expiry awareness', () => {
  test('fires once when under 25 % of the lifetime remains, again after setToken', async () => {
    const created = Date.parse('2026-01-01T00:00:00Z');
    const expires = created + 100 * 86_400_000;
    const s = await node((_req, res) =>
      json(res, 200, { name: 'svc', role: 'reader', createdAt: new Date(created).toISOString(), expiresAt: new Date(expires).toISOString() }),
    );
    const time = fakeTime(created + 70 * 86_400_000);
    const seen: TokenExpiryInfo[] = [];
    const callback: TokenExpiryInfo[] = [];
    const c = new CofferClient({ addresses: [s.url], token: 't1', clock: time.now, onTokenExpiring: (i) => callback.push(i) });
    clients.push(c);
    c.on('tokenExpiring', (i) => seen.push(i));

    expect((await c.checkTokenExpiry())?.remainingFraction).toBeCloseTo(0.3);
    expect(seen).toHaveLength(0);
    time.advance(6 * 86_400_000); // 24 % left
    const info = await c.checkTokenExpiry();
    expect(info).toEqual({ name: 'svc', expiresAtMs: expires, remainingMs: 24 * 86_400_000, remainingFraction: 0.24 });
    expect(seen).toEqual([info]);
    expect(callback).toEqual([info]);
    await c.tokens.self();
    expect(seen).toHaveLength(1);
    c.setToken('t2');
    await c.tokens.self();
    expect(seen).toHaveLength(2);
  });

  test('watchTokenExpiry checks at once and stops when asked', async () => {
    const s = await node((_req, res) => json(res, 200, { name: 'svc', role: 'r', createdAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-11T00:00:00Z' }));
    const c = new CofferClient({ addresses: [s.url], clock: () => Date.parse('2026-01-10T00:00:00Z') });
    clients.push(c);
    const fired = new Promise<TokenExpiryInfo>((resolve) => c.on('tokenExpiring', resolve));
    const stop = c.watchTokenExpiry(3_600_000);
    expect((await fired).remainingFraction).toBeCloseTo(0.1);
    stop();
    expect(s.hits).toHaveLength(1);
  });

  test('a token without expiry never fires', async () => {
    const s = await node((_req, res) => json(res, 200, { name: 'svc', role: 'r', createdAt: '2026-01-01T00:00:00Z', expiresAt: null }));
    const c = new CofferClient({ addresses: [s.url], tokenExpiryThreshold: 1 });
    clients.push(c);
    let fired = 0;
    c.on('tokenExpiring', () => (fired += 1));
    expect(await c.checkTokenExpiry()).toBeUndefined();
    expect(fired).toBe(0);
  });
});

describe('snapshot and restore streaming', () => {
  const payload = Buffer.alloc(300_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;

  function tmp(): string {
    const d = mkdtempSync(path.join(tmpdir(), 'coffer-client-'));
    dirs.push(d);
    return d;
  }

  test('save streams to the file with progress and leaves no partial file', async () => {
    const s = await node((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(payload.length) });
      res.end(payload);
    });
    const c = new CofferClient({ addresses: [s.url] });
    clients.push(c);
    const dir = tmp();
    const file = path.join(dir, 'backup.snap');
    const progress: number[] = [];
    const out = await c.cluster.snapshot(file, { onProgress: (p) => progress.push(p.bytes) });
    expect(out).toEqual({ file, bytes: payload.length });
    expect(readFileSync(file).equals(payload)).toBe(true);
    expect(progress.at(-1)).toBe(payload.length);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(readdirSync(dir)).toEqual(['backup.snap']);
  });

  test('a stream cut midway fails and leaves nothing behind', async () => {
    const s = await node((_req, res) => {
      res.writeHead(200, { 'content-length': String(payload.length) });
      res.write(payload.subarray(0, 1000), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const c = new CofferClient({ addresses: [s.url] });
    clients.push(c);
    const dir = tmp();
    await expect(c.cluster.snapshot(path.join(dir, 'b.snap'))).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([]);
  });

  test('restore uploads the file with progress', async () => {
    const received: Buffer[] = [];
    const s = await node((_req, res, body) => {
      received.push(body);
      json(res, 200, { restored: true });
    });
    const c = new CofferClient({ addresses: [s.url] });
    clients.push(c);
    const dir = tmp();
    const file = path.join(dir, 'in.snap');
    writeFileSync(file, payload);
    const progress: number[] = [];
    await expect(c.cluster.restore(file, { onProgress: (p) => progress.push(p.bytes) })).resolves.toEqual({ restored: true });
    expect(received[0]?.equals(payload)).toBe(true);
    expect(s.hits[0]?.headers['content-type']).toBe('application/octet-stream');
    expect(progress.at(-1)).toBe(payload.length);
    expect(existsSync(file)).toBe(true);
  });
});
