/**
 * Hostile clients against a real three-node cluster, through the leader and through a follower
 * (issue 11, "The adversarial suite"; ARCHITECTURE.md, "Invariants of the request path"):
 *
 * - every route of the API's own route table × {no token, malformed header, wrong, revoked,
 *   expired, rotated-away, lower-privileged token} → 401 (Vault routes: 403, Vault's shape) or 403
 *   for RBAC, never 2xx, never 5xx; every allowlist route from outside the allowlist → 403;
 * - path tricks (dot segments in every spelling, encoded and double-encoded slashes, `//`,
 *   trailing `/`, unicode look-alikes, NUL, overlong names), sent byte for byte, on every route
 *   family: never a secret value, never a write;
 * - escalation (role, token, Vault metadata, membership, edited snapshot) → refused;
 * - allowlist spoofing (X-Forwarded-For, Forwarded, forged forwarding and peer headers,
 *   IPv4-mapped IPv6 spellings) → refused;
 * - oversized bodies before authentication → refused before the body is read, no memory jump;
 * - batch reads name every secret read in the audit log.
 *
 * The read allowlist is 127.0.0.1/32. Every request that should fail authentication comes from a
 * loopback address of its own (127.10.x.y …), so the lockout never turns an expected 401 into a 429
 * and no check depends on another's failures.
 *
 * Matrix tests collect every deviation and fail once with the whole list, so one run shows every
 * route that misbehaves.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { apiRoutes, createApi, type RouteInfo } from '@coffer/node';
import { TestCluster, sleep, type NodeHandle } from '../src/harness';
import { bigBodyRequest as bigBodyRequestRaw, mapLimit, partialBodyRequest as partialBodyRequestRaw, procStatusKb, rawHttp as rawHttpUncounted, resetPeakRss, type RawResult } from '../src/hostile';

jest.setTimeout(240_000);

/**
 * Every route the API mounts, from the API's own table: `createApi` on an inert context only
 * registers routes, so a route added later is covered here without editing this file.
 */
function routeTable(): readonly RouteInfo[] {
  const config = new Proxy({}, { get: (_t, k) => (typeof k === 'string' && /Secs$|Failures$|Ms$/.test(k) ? 1 : undefined) });
  const ctx = new Proxy({ config } as Record<string, unknown>, {
    get: (t, k) => (k in t ? t[k as string] : () => {
      throw new Error(`routeTable: createApi used ctx.${String(k)} while registering routes`);
    }),
  });
  return apiRoutes(createApi(ctx as never));
}

/** A concrete request for a route: `{x+}` → a secret name, `{id}` → a member id, `{x}` → one segment; LIST → `GET ?list=true`. */
function concrete(r: RouteInfo, secretName: string, segment: string, member = 'nobody'): { method: string; path: string } {
  let p = r.template.replace(/\{[a-z]+\+\}/, secretName).replace('{id}', member).replace(/\{[a-z]+\}/, segment);
  let method: string = r.method;
  if (method === 'LIST') {
    method = 'GET';
    p = `${p}${p.includes('?') ? '&' : '?'}list=true`;
  }
  return { method, path: p };
}

/** Requests sent by this file (each test logs its own count). */
let sent = 0;
const rawHttp: typeof rawHttpUncounted = (...a) => {
  sent++;
  return rawHttpUncounted(...a);
};
const partialBodyRequest: typeof partialBodyRequestRaw = (...a) => {
  sent++;
  return partialBodyRequestRaw(...a);
};
const bigBodyRequest: typeof bigBodyRequestRaw = (...a) => {
  sent++;
  return bigBodyRequestRaw(...a);
};

// Vault-shaped routes (KV v2 and transit) answer Vault's statuses: 403 for a missing or bad token.
const isVault = (p: string): boolean => p.startsWith('/v1/secret/') || p.startsWith('/v1/transit/');
const hasBody = (m: string): boolean => m === 'POST' || m === 'PUT' || m === 'PATCH';
const ADMIN_FROM = '127.0.0.9';
/** Rules granting every action in `actions` (secret actions on every path). */
const grant = (actions: readonly string[]): unknown[] => {
  const secret = actions.filter((a) => a.startsWith('secret.'));
  const other = actions.filter((a) => !a.startsWith('secret.'));
  return [...(secret.length > 0 ? [{ paths: ['**'], actions: secret }] : []), ...(other.length > 0 ? [{ actions: other }] : [])];
};
const ALL_ACTIONS = [
  'secret.write', 'secret.list', 'secret.delete', 'secret.destroy', 'secret.rotate', 'token.create', 'token.read', 'token.revoke',
  'role.read', 'role.write', 'allowlist.read', 'allowlist.write', 'kms.rewrap', 'cluster.read', 'cluster.manage', 'audit.read',
];

describe('hostile clients against a three-node cluster (real processes)', () => {
  const cluster = new TestCluster({ env: { COFFER_READ_ALLOWLIST: '127.0.0.1/32' } });
  const VALUE_CLOSED = `hc-closed-${randomBytes(12).toString('hex')}`;
  const VALUE_APP = `hc-appdb-${randomBytes(12).toString('hex')}`;
  let leader: NodeHandle;
  let follower: NodeHandle;
  const tok: Record<string, string> = {};
  let ipSeq = 0;
  /** A fresh source address outside the allowlist (127.10.0.1, 127.10.0.2, …). */
  const freshIp = (): string => {
    const k = ipSeq++;
    return `127.${10 + Math.floor(k / 62_500)}.${Math.floor(k / 250) % 250}.${(k % 250) + 1}`;
  };
  const both = (): [string, NodeHandle][] => [['leader', leader], ['follower', follower]];
  /**
   * A request with a token from a source address no hostile request uses (127.0.0.9), retried
   * while the cluster answers 503: if a bug ever attributes hostile failures to a node's own
   * address (127.0.0.1), the lockout it triggers must not stop the checks themselves.
   */
  const as = async (n: NodeHandle, method: string, p: string, body: unknown, token: string): Promise<{ status: number; body: any }> => {
    if (typeof token !== 'string' || token === '') throw new Error(`as(): no token for ${method} ${p}`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      // Attackers' tokens go out from addresses of their own: a refused attempt that turns into
      // 401s (e.g. a token that rotated itself away) must not lock out the admin's address.
      const r = await rawHttp(n, method, p, { from: token === cluster.bootstrapToken ? ADMIN_FROM : freshIp(), headers: { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body: body as Record<string, unknown> }) });
      if (r.status !== 503 || Date.now() > deadline) return r;
      await sleep(200);
    }
  };
  const admin = (method: string, p: string, body?: unknown) => as(leader, method, p, body, cluster.bootstrapToken);
  /** Creates (or replaces) a role as the admin; fails the test if refused. */
  const mkRole = async (name: string, rules: unknown[]): Promise<void> => {
    const r = await admin('PUT', `/v1/roles/${name}`, { rules });
    expect([name, r.status, r.body?.error]).toEqual([name, 200, undefined]);
  };
  /** Mints a token as the admin; fails the test if refused. Returns the raw token. */
  const mkToken = async (name: string, role: string, ttl?: string): Promise<string> => {
    const r = await admin('POST', '/v1/tokens', ttl === undefined ? { name, role } : { name, role, ttl });
    expect([name, r.status, r.body?.error]).toEqual([name, 200, undefined]);
    return r.body.token as string;
  };

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
    leader = await cluster.leader();
    follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    await mkRole('hc-low', [{ paths: ['hc/low/**'], actions: ['secret.write'] }]);
    await mkRole('hc-open', [{ paths: ['hc/open/**'], actions: ['secret.write', 'secret.list', 'secret.delete', 'secret.destroy', 'secret.rotate'] }]);
    tok['low'] = await mkToken('hc-low', 'hc-low');
    tok['open'] = await mkToken('hc-open', 'hc-open');
    tok['expired'] = await mkToken('hc-expired', 'hc-low', '2s');
    const expiredAt = Date.now() + 2_000;
    tok['revoked'] = await mkToken('hc-revoked', 'hc-low');
    expect((await admin('DELETE', '/v1/tokens/hc-revoked')).status).toBe(200);
    tok['rotated'] = await mkToken('hc-rotated', 'hc-low');
    const rot = await admin('POST', '/v1/tokens/hc-rotated/rotate', {});
    expect(rot.status).toBe(200);
    expect(rot.body.token).not.toBe(tok['rotated']);
    for (const [name, value] of [['hc/closed/x', VALUE_CLOSED], ['app/db', VALUE_APP], ['hc/open/x', 'open-value']] as const) {
      expect((await admin('PUT', `/v1/secrets/${name}`, { value })).status).toBe(200);
    }
    // Positive controls: the values are readable from the allowlisted address (so "absent" below means refused).
    for (const n of cluster.nodes) {
      const r = await rawHttp(n, 'GET', '/v1/secrets/hc/closed/x', { from: '127.0.0.1' });
      expect([n.id, r.status, r.body?.value]).toEqual([n.id, 200, VALUE_CLOSED]);
    }
    await sleep(Math.max(0, expiredAt + 500 - Date.now()));
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await rawHttp(n, 'GET', '/v1/tokens/self', { from: freshIp(), headers: { authorization: `Bearer ${tok['expired']}` } })).status === 401, 10_000, `expired token refused on ${n.id}`);
    }
  });
  afterAll(async () => {
    await cluster.stop();
  });
  let sentBefore = 0;
  beforeEach(() => {
    sentBefore = sent;
  });
  afterEach(() => {
    console.log(`requests sent by "${expect.getState().currentTestName?.replace('hostile clients against a three-node cluster (real processes) ', '') ?? '?'}": ${sent - sentBefore}`);
  });

  /** The secret's metadata as the admin sees it (version list), to prove nothing was written. */
  const versionsOf = async (name: string): Promise<unknown> => {
    const r = await admin('GET', `/v1/versions/${name}`);
    return r.status === 200 ? { current: r.body.currentVersion, versions: r.body.versions.map((v: { version: number; deletedAt: unknown; destroyed: boolean }) => [v.version, v.deletedAt, v.destroyed]) } : r.status;
  };

  test('every token route × every bad credential → 401 (Vault: 403), a lower-privileged token → 403, on leader and follower', async () => {
    const routes = routeTable();
    const guarded = routes.filter((r) => r.access === 'token' || r.access === 'anyToken');
    // The table is the API's: it must hold the contract's routes (a broken stub would return nothing).
    expect(guarded.length).toBeGreaterThanOrEqual(40);
    const basic = Buffer.from(`admin:${cluster.bootstrapToken}`).toString('base64');
    const classes: { name: string; headers: Record<string, string>; lower?: boolean }[] = [
      { name: 'no token', headers: {} },
      { name: 'malformed: empty Bearer', headers: { authorization: 'Bearer' } },
      { name: 'malformed: Basic with the admin token as password', headers: { authorization: `Basic ${basic}` } },
      { name: 'malformed: two tokens', headers: { authorization: `Bearer ${cluster.bootstrapToken} ${cluster.bootstrapToken}` } },
      { name: 'malformed: token with a NUL-ish suffix', headers: { authorization: `Bearer ${cluster.bootstrapToken}%00` } },
      { name: 'wrong token', headers: { authorization: `Bearer cof_${randomBytes(32).toString('base64url')}` } },
      { name: 'wrong token (X-Vault-Token)', headers: { 'x-vault-token': `cof_${randomBytes(32).toString('base64url')}` } },
      { name: 'revoked token', headers: { authorization: `Bearer ${tok['revoked']}` } },
      { name: 'expired token', headers: { authorization: `Bearer ${tok['expired']}` } },
      { name: 'rotated-away token', headers: { 'x-vault-token': tok['rotated'] as string } },
      { name: 'lower-privileged token', headers: { authorization: `Bearer ${tok['low']}` }, lower: true },
    ];
    const cases: { where: string; n: NodeHandle; r: RouteInfo; c: (typeof classes)[number] }[] = [];
    for (const [where, n] of both()) for (const r of guarded) for (const c of classes) if (!(c.lower === true && r.access === 'anyToken')) cases.push({ where, n, r, c });
    const failures: string[] = [];
    await mapLimit(cases, 6, async ({ where, n, r, c }) => {
      const { method, path: p } = concrete(r, 'hc/target/x', 'hc-target');
      const res = await rawHttp(n, method, p, { from: freshIp(), headers: c.headers, ...(hasBody(method) ? { body: {} } : {}) });
      const vault = isVault(p);
      const want = c.lower === true || vault ? 403 : 401;
      const okShape = vault ? Array.isArray(res.body?.errors) : typeof res.body?.error?.code === 'string';
      const okCode = vault || (c.lower === true ? res.body?.error?.code === 'permission_denied' : ['missing_token', 'invalid_token'].includes(res.body?.error?.code));
      if (res.status !== want || !okShape || !okCode) failures.push(`${where} ${method} ${p} [${c.name}] → ${res.status} ${res.text.slice(0, 160)} (want ${want})`);
    });
    console.log(`credential matrix: ${cases.length} requests (${guarded.length} token routes × ${classes.length} credential classes × leader and follower), ${failures.length} deviations`);
    expect(failures).toEqual([]);
  });

  test('every allowlist route from outside the allowlist → 403 not_allowlisted (a token does not help), on leader and follower', async () => {
    const routes = routeTable().filter((r) => r.access === 'allowlist');
    expect(routes.map((r) => `${r.method} ${r.template}`)).toEqual(expect.arrayContaining(['GET /v1/secrets/{name+}', 'POST /v1/batch/secrets', 'POST /v1/verify/{name+}', 'GET /metrics', 'GET /v1/secret/data/{path+}']));
    const failures: string[] = [];
    let count = 0;
    for (const [where, n] of both()) {
      for (const r of routes) {
        for (const token of [undefined, cluster.bootstrapToken]) {
          const { method, path: p } = concrete(r, 'hc/closed/x', 'hc-target');
          const body = p === '/v1/batch/secrets' ? { names: ['hc/closed/x', 'app/db'] } : p.startsWith('/v1/verify/') ? { value: VALUE_CLOSED } : undefined;
          const res = await rawHttp(n, method, p, { from: freshIp(), headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, ...(body === undefined ? {} : { body }) });
          count++;
          const vault = isVault(p);
          const codeOk = vault ? Array.isArray(res.body?.errors) : res.body?.error?.code === 'not_allowlisted';
          if (res.status !== 403 || !codeOk || res.text.includes(VALUE_CLOSED) || res.text.includes(VALUE_APP)) {
            failures.push(`${where} ${method} ${p} token=${token !== undefined} → ${res.status} ${res.text.slice(0, 160)}`);
          }
        }
      }
    }
    console.log(`allowlist matrix: ${count} requests, ${failures.length} deviations`);
    expect(failures).toEqual([]);
  });

  test('hole 1: POST /v1/rotate/%2e%2e/batch/secrets from a non-allowlisted address to a follower does not return the value', async () => {
    const before = await versionsOf('app/db');
    const failures: string[] = [];
    for (const [where, n] of both()) {
      for (const [label, headers] of [['no token', {}], ['lower token', { authorization: `Bearer ${tok['low']}` }]] as const) {
        const res = await rawHttp(n, 'POST', '/v1/rotate/%2e%2e/batch/secrets', { from: '127.0.0.2', headers, body: { names: ['app/db'] } });
        if (res.text.includes(VALUE_APP) || res.status < 400 || res.status >= 500) failures.push(`${where} [${label}] → ${res.status} ${res.text.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(await versionsOf('app/db')).toEqual(before);
  });

  test('path tricks on every route family, sent byte for byte, through leader and follower: never a value, never a write', async () => {
    const routes = routeTable();
    const MAIN_DOTS = ['..', '%2e%2e', '%2E%2e', '.%2e'];
    const dots = ['..', '%2e%2e', '%2E%2e', '%2e%2E', '.%2e', '%2e.', '%2E%2E', '%252e%252e', '%EF%BC%8E%EF%BC%8E', '%E2%80%A4%E2%80%A4', '\u00ef\u00bc\u008e\u00ef\u00bc\u008e'];
    const failures: string[] = [];
    const before = { closed: await versionsOf('hc/closed/x'), app: await versionsOf('app/db'), open: await versionsOf('hc/open/x') };
    const cases: { where: string; n: NodeHandle; method: string; path: string; body?: Record<string, unknown>; headers: Record<string, string>; what: string }[] = [];

    // 1. Escapes from every POST route with a whole-rest name (the write prefixes a follower forwards)
    //    to the allowlist-guarded reads, from a non-allowlisted address.
    const prefixes = [...new Set(routes.filter((r) => r.method === 'POST' && r.template.includes('+}')).map((r) => r.template.slice(0, r.template.indexOf('{'))))];
    expect(prefixes).toEqual(expect.arrayContaining(['/v1/rotate/', '/v1/delete/', '/v1/undelete/', '/v1/destroy/', '/v1/verify/', '/v1/secret/data/', '/v1/secret/metadata/', '/v1/secret/destroy/']));
    for (const [where, n] of both()) {
      for (const prefix of prefixes) {
        const climbs = prefix.split('/').filter((s) => s !== '').length - 1;
        for (const d of dots) {
          const up = `${d}/`.repeat(climbs);
          for (const [label, headers] of [['no token', {}], ['lower token', { authorization: `Bearer ${tok['low']}` }]] as const) {
            cases.push({ where, n, method: 'POST', path: `${prefix}${up}batch/secrets`, body: { names: ['hc/closed/x', 'app/db'] }, headers, what: `escape to batch [${label}]` });
            // (The other landings take the main spellings only, to keep the file's run time down.)
            if (MAIN_DOTS.includes(d)) cases.push({ where, n, method: 'POST', path: `${prefix}${up}verify/hc/closed/x`, body: { value: VALUE_CLOSED }, headers, what: `escape to verify [${label}]` });
          }
          if (!MAIN_DOTS.includes(d)) continue;
          // Escape to a token route with a wrong token: the 401 must be charged to the sender,
          // not to the follower that forwarded it (see the attribution test below).
          cases.push({ where, n, method: 'POST', path: `${prefix}${up}tokens`, body: { name: 'hc-escape', role: 'admin' }, headers: { authorization: `Bearer cof_${randomBytes(32).toString('base64url')}` }, what: 'escape to token minting [wrong token]' });
          // Encoded slashes: one segment that decodes to a path.
          cases.push({ where, n, method: 'POST', path: `${prefix}${`${d}%2f`.repeat(climbs)}batch%2fsecrets`, body: { names: ['hc/closed/x'] }, headers: {}, what: 'escape with %2f' });
        }
        // GET escapes from the token-guarded GET families to the secret read.
      }
      for (const prefix of ['/v1/versions/', '/v1/secret/metadata/', '/v1/tokens/', '/v1/roles/', '/v1/cluster/members/']) {
        const climbs = prefix.split('/').filter((s) => s !== '').length - 1;
        for (const d of dots) cases.push({ where, n, method: 'GET', path: `${prefix}${`${d}/`.repeat(climbs)}secrets/hc/closed/x`, headers: { authorization: `Bearer ${tok['low']}` }, what: 'GET escape' });
      }
      // Spellings of the read route itself from a non-allowlisted address.
      for (const p of ['//v1/secrets/hc/closed/x', '/v1//secrets/hc/closed/x', '/v1/secrets//hc/closed/x', '/v1/./secrets/hc/closed/x', '/v1/%2e/secrets/hc/closed/x', '/V1/secrets/hc/closed/x', '/v1/SECRETS/hc/closed/x', '/v1/secrets/hc/closed/x/', '/v1/secrets/hc%2fclosed%2fx', '/v1/secrets/hc%252fclosed%252fx', '/v1/secret/data/hc/closed/x/', '/v1/secret/data//hc/closed/x', '/v1/x/%2e%2e/secrets/hc/closed/x', '/v1/secrets/hc/closed/x%00', '/v1/secrets/hc/closed/x%23', '/v1/secrets/hc/closed/x#frag', '/v1/secrets/hc/closed/x;a=b', '/v1/secrets/hc%EF%BC%8Fclosed%EF%BC%8Fx', '/v1/secrets/hc\u00ef\u00bc\u008fclosed\u00ef\u00bc\u008fx']) {
        cases.push({ where, n, method: 'GET', path: p, headers: {}, what: 'read spelling' });
      }

      // 2. Name tricks on every route with a secret name, with a token that may act on hc/open/**
      //    only: each spelling tries to reach hc/closed/x (or is not a valid name at all).
      const nameTricks = [
        'hc/open/../closed/x', 'hc/open/%2e%2e/closed/x', 'hc/open/%2E%2e/closed/x', 'hc/open/.%2e/closed/x', 'hc/open/%2e./closed/x',
        'hc/open%2f..%2fclosed%2fx', 'hc/open%2f%2e%2e%2fclosed/x', 'hc/open/%252e%252e/closed/x', 'hc/open%252f..%252fclosed/x', 'hc%2fclosed%2fx',
        'hc%252fclosed%252fx', 'hc/open//../closed/x', 'hc//closed/x', 'hc/open/x/', 'hc/open//x', 'hc/open/./x', 'hc/closed/x/', 'hc/open/x/..%2f..%2fclosed/x',
        'hc/open/%EF%BC%8E%EF%BC%8E/closed/x', 'hc/open/%E2%80%A4%E2%80%A4/closed/x', 'hc/open%EF%BC%8F..%EF%BC%8Fclosed/x', 'hc/open/%EF%BC%852e%EF%BC%852e/closed/x',
        'hc/open/\u00e2\u0080\u00a4\u00e2\u0080\u00a4/closed/x', 'hc/open\u00ef\u00bc\u008f..\u00ef\u00bc\u008fclosed/x',
        'hc/open/x%00', 'hc/open/x%00/../../closed/x', 'hc/closed%00/x', `hc/open/${'a'.repeat(505)}`, `hc/closed/${'a'.repeat(503)}`,
      ];
      expect(Buffer.byteLength(`hc/open/${'a'.repeat(505)}`)).toBe(513);
      const secretRoutes = routes.filter((r) => r.access === 'token' && r.template.includes('+}'));
      for (const r of secretRoutes) {
        for (const t of nameTricks) {
          const { method, path: p } = concrete(r, t, 'x');
          cases.push({ where, n, method, path: p, ...(hasBody(method) ? { body: p.startsWith('/v1/secret/') ? { data: { v: 'trick' } } : { value: 'trick' } } : {}), headers: { authorization: `Bearer ${tok['open']}` }, what: `name trick on ${r.method} ${r.template}` });
        }
      }
      // 3. One-segment families (tokens, roles, members): dot segments and encoded slashes with a
      //    token that holds none of their actions.
      const segRoutes = routes.filter((r) => r.access === 'token' && /\{[a-z]+\}/.test(r.template));
      for (const r of segRoutes) {
        for (const t of ['..', '%2e%2e', '%2E%2e', '.', '%2e', 'hc-open%2f..%2f..%2fallowlist', '%2e%2e%2fallowlist', 'x%00', '\u00ef\u00bc\u008e\u00ef\u00bc\u008e', 'a'.repeat(65)]) {
          const { method, path: p } = concrete(r, 'x', t, t);
          cases.push({ where, n, method, path: p, ...(hasBody(method) ? { body: { rules: [{ actions: ALL_ACTIONS }], cidrs: ['0.0.0.0/0'] } } : {}), headers: { authorization: `Bearer ${tok['open']}` }, what: `segment trick on ${r.method} ${r.template}` });
        }
      }
    }

    await mapLimit(cases, 6, async (c) => {
      let res: RawResult;
      try {
        res = await rawHttp(c.n, c.method, c.path, { from: freshIp(), headers: c.headers, ...(c.body === undefined ? {} : { body: c.body }) });
      } catch (err) {
        failures.push(`${c.where} ${c.method} ${c.path} (${c.what}) → no answer: ${String(err)}`);
        return;
      }
      const leaked = res.text.includes(VALUE_CLOSED) || res.text.includes(VALUE_APP) || res.body?.valid === true;
      if (leaked || ![400, 401, 403, 404, 405].includes(res.status)) failures.push(`${c.where} ${c.method} ${JSON.stringify(c.path).slice(0, 140)} (${c.what}) → ${res.status} ${res.text.slice(0, 140)}`);
    });
    console.log(`path tricks: ${cases.length} requests, ${failures.length} deviations`);
    expect(failures).toEqual([]);
    // Nothing was written anywhere: the secrets are as they were, and no new name appeared.
    expect({ closed: await versionsOf('hc/closed/x'), app: await versionsOf('app/db'), open: await versionsOf('hc/open/x') }).toEqual(before);
    const names = (await admin('GET', '/v1/secrets?prefix=')).body.secrets.map((s: { name: string }) => s.name);
    expect(names.filter((x: string) => !['e2e/ready', 'hc/closed/x', 'app/db', 'hc/open/x'].includes(x) && !x.startsWith('hc/audit/') && !x.startsWith('esc/'))).toEqual([]);
  });

  test('escalation: role.write alone cannot widen its own role or reach token minting', async () => {
    await mkRole('esc-rw', [{ actions: ['role.write'] }]);
    const rw = await mkToken('esc-rw', 'esc-rw');
    const roleBefore = (await admin('GET', '/v1/roles/esc-rw')).body;
    const failures: string[] = [];
    for (const [where, n] of both()) {
      const tries: [string, string, unknown][] = [
        ['PUT', '/v1/roles/esc-rw', { rules: grant(ALL_ACTIONS) }],
        ['PUT', '/v1/roles/esc-rw', { rules: [{ actions: ['role.write', 'token.create'] }] }],
        ['PUT', `/v1/roles/esc-new-${n.id}`, { rules: [{ actions: ['token.create'] }] }],
        ['PUT', `/v1/roles/esc-new2-${n.id}`, { rules: [{ paths: ['**'], actions: ['secret.write'] }] }],
        ['POST', '/v1/tokens', { name: `esc-admin-${n.id}`, role: 'admin' }],
      ];
      for (const [m, p, b] of tries) {
        const r = await as(n, m, p, b, rw);
        if (r.status !== 403) failures.push(`${where} ${m} ${p} ${JSON.stringify(b)} → ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
      }
      // Within its own grant it works (so the refusals above are about the rule, not a broken token).
      const ok = await as(n, 'PUT', `/v1/roles/esc-sub-${n.id}`, { rules: [{ actions: ['role.write'] }] }, rw);
      expect([where, ok.status]).toEqual([where, 200]);
    }
    expect((await admin('GET', '/v1/roles/esc-rw')).body).toEqual(roleBefore);
    const roles = (await admin('GET', '/v1/roles')).body.roles.map((r: { name: string }) => r.name);
    const tokens = (await admin('GET', '/v1/tokens')).body.tokens.map((t: { name: string }) => t.name);
    expect({ roles: roles.filter((x: string) => x.startsWith('esc-new')), tokens: tokens.filter((x: string) => x.startsWith('esc-admin')) }).toEqual({ roles: [], tokens: [] });
    expect(failures).toEqual([]);
  });

  test('escalation: token.create cannot mint broader, never-expiring or over-long tokens, nor extend itself by rotation', async () => {
    await mkRole('esc-tc', [{ actions: ['token.create'] }]);
    await mkRole('esc-broad', [{ actions: ['token.create', 'token.read'] }]);
    const minted = await admin('POST', '/v1/tokens', { name: 'esc-tc', role: 'esc-tc', ttl: '1h' });
    expect(minted.status).toBe(200);
    const tc = minted.body.token as string;
    const expiresAt = minted.body.expiresAt as string;
    const failures: string[] = [];
    const yearFromNow = Date.now() + 366 * 86_400_000;
    for (const [where, n] of both()) {
      for (const [what, body] of [['admin role', { name: `esc-tc-admin-${n.id}`, role: 'admin' }], ['broader role', { name: `esc-tc-broad-${n.id}`, role: 'esc-broad' }]] as const) {
        const r = await as(n, 'POST', '/v1/tokens', body, tc);
        if (r.status !== 403) failures.push(`${where} mint ${what} → ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
      }
      // A lifetime beyond any sane maximum is refused outright.
      const long = await as(n, 'POST', '/v1/tokens', { name: `esc-tc-99y-${n.id}`, role: 'esc-tc', ttl: '99y' }, tc);
      if (long.status < 400 || long.status >= 500) failures.push(`${where} mint ttl 99y → ${long.status} expiresAt=${long.body?.expiresAt}`);
      // No ttl: refused, or given a bounded lifetime (the role's or the cluster's maximum) — never none.
      const forever = await as(n, 'POST', '/v1/tokens', { name: `esc-tc-forever-${n.id}`, role: 'esc-tc' }, tc);
      if (forever.status >= 500 || (forever.status < 300 && (forever.body?.expiresAt === null || Date.parse(forever.body?.expiresAt) > yearFromNow))) {
        failures.push(`${where} mint without ttl → ${forever.status} expiresAt=${forever.body?.expiresAt} (a token.create holder minted a token that never expires)`);
      }
      // Rotating itself to a longer life.
      const ext = await as(n, 'POST', '/v1/tokens/esc-tc/rotate', { ttl: '99y' }, tc);
      if (ext.status < 400 || ext.status >= 500) failures.push(`${where} self-rotate ttl 99y → ${ext.status} expiresAt=${ext.body?.expiresAt}`);
    }
    // Within bounds it works (the refusals are about the rule).
    expect((await as(follower, 'POST', '/v1/tokens', { name: 'esc-tc-ok', role: 'esc-tc', ttl: '10m' }, tc)).status).toBe(200);
    const rec = (await admin('GET', '/v1/tokens')).body.tokens.find((t: { name: string }) => t.name === 'esc-tc');
    if (rec !== undefined && rec.status === 'active' && Date.parse(rec.expiresAt) > Date.parse(expiresAt)) failures.push(`esc-tc now expires at ${rec.expiresAt}, was ${expiresAt}`);
    expect(failures).toEqual([]);
  });

  test('escalation: secret.write alone cannot prune or expire history through Vault metadata (needs secret.destroy, as the native destroy)', async () => {
    await mkRole('esc-sw', [{ paths: ['esc/**'], actions: ['secret.write'] }]);
    const sw = await mkToken('esc-sw', 'esc-sw');
    for (let i = 1; i <= 3; i++) expect((await admin('PUT', '/v1/secrets/esc/hist', { value: `v${i}` })).status).toBe(200);
    const before = await versionsOf('esc/hist');
    const failures: string[] = [];
    for (const [where, n] of both()) {
      for (const m of ['POST', 'PUT']) {
        for (const body of [{ max_versions: 1 }, { delete_version_after: '1s' }, { max_versions: 1, delete_version_after: '1s' }]) {
          const r = await as(n, m, '/v1/secret/metadata/esc/hist', body, sw);
          if (r.status !== 403) failures.push(`${where} ${m} /v1/secret/metadata/esc/hist ${JSON.stringify(body)} → ${r.status}`);
        }
      }
      const native = await as(n, 'POST', '/v1/destroy/esc/hist', { versions: [1] }, sw);
      expect([where, 'native destroy', native.status]).toEqual([where, 'native destroy', 403]);
    }
    await sleep(1_500); // a delete_version_after that slipped through would have hidden the versions by now
    expect(await versionsOf('esc/hist')).toEqual(before);
    const read = await rawHttp(leader, 'GET', '/v1/secrets/esc/hist?version=1', { from: '127.0.0.1' });
    expect([read.status, read.body?.value]).toEqual([200, 'v1']);
    expect(failures).toEqual([]);
  });

  test('allowlist spoofing from 127.0.0.2-style addresses: forwarding headers, forged forwarding/peer headers, IPv4-mapped spellings → refused', async () => {
    const spoofs: Record<string, string>[] = [
      { 'x-forwarded-for': '127.0.0.1' },
      { 'x-forwarded-for': '127.0.0.1, 127.0.0.1' },
      { 'x-forwarded-for': '::ffff:127.0.0.1' },
      { 'x-forwarded-for': '::ffff:7f00:1' },
      { 'x-forwarded-for': '[::ffff:127.0.0.1]' },
      { 'x-forwarded-for': '0:0:0:0:0:ffff:127.0.0.1' },
      { forwarded: 'for=127.0.0.1' },
      { forwarded: 'for="[::ffff:127.0.0.1]"' },
      { 'x-real-ip': '127.0.0.1' },
      { 'true-client-ip': '127.0.0.1' },
      { 'x-client-ip': '127.0.0.1' },
    ];
    const now = String(Date.now());
    const wrongKey = randomBytes(32);
    const forgedSig = (ip: string, p: string): string => createHmac('sha256', wrongKey).update(`coffer-peer-v1\nGET\nFWD ${ip} ${p}\n${leader.id}\n${follower.id}\n${now}\n${'ab'.repeat(16)}\n${createHash('sha256').digest('hex')}`).digest('hex');
    const forged: Record<string, string>[] = [
      { 'x-coffer-forwarded-ip': '127.0.0.1' },
      { 'x-coffer-forwarded-ip': '' },
      { 'x-coffer-forwarded-ip': '::ffff:127.0.0.1' },
      { 'x-coffer-forwarded-ip': '127.0.0.1', 'x-coffer-from': leader.id, 'x-coffer-ts': now, 'x-coffer-nonce': randomBytes(16).toString('hex'), 'x-coffer-sig': randomBytes(32).toString('hex') },
      { 'x-coffer-forwarded-ip': '127.0.0.1', 'x-coffer-from': leader.id, 'x-coffer-ts': now, 'x-coffer-nonce': 'ab'.repeat(16), 'x-coffer-sig': forgedSig('127.0.0.1', '/v1/secrets/hc/closed/x') },
      { 'x-coffer-forwarded-ip': '127.0.0.1', 'x-coffer-from': 'x', 'x-coffer-ts': 'soon', 'x-coffer-nonce': 'zz', 'x-coffer-sig': 'nope' },
    ];
    const reads: [string, string, Record<string, unknown> | undefined][] = [
      ['GET', '/v1/secrets/hc/closed/x', undefined],
      ['POST', '/v1/batch/secrets', { names: ['hc/closed/x'] }],
      ['GET', '/v1/secret/data/hc/closed/x', undefined],
      ['POST', '/v1/verify/hc/closed/x', { value: VALUE_CLOSED }],
    ];
    const failures: string[] = [];
    let count = 0;
    for (const [where, n] of both()) {
      for (const [m, p, b] of reads) {
        for (const h of spoofs) {
          const r = await rawHttp(n, m, p, { from: freshIp(), headers: h, ...(b === undefined ? {} : { body: b }) });
          count++;
          if (r.status !== 403 || r.text.includes(VALUE_CLOSED) || r.body?.valid === true) failures.push(`${where} ${m} ${p} ${JSON.stringify(h)} → ${r.status} ${r.text.slice(0, 120)}`);
        }
        for (const h of forged) {
          // Invariant: a forwarding signature that does not verify is a 401, never a fallback to the socket address.
          const r = await rawHttp(n, m, p, { from: freshIp(), headers: h, ...(b === undefined ? {} : { body: b }) });
          count++;
          if (r.status !== 401 || r.text.includes(VALUE_CLOSED) || r.body?.valid === true) failures.push(`${where} ${m} ${p} forged ${JSON.stringify(h).slice(0, 80)} → ${r.status} ${r.text.slice(0, 120)} (want 401)`);
        }
      }
      // A forged forwarding header must not turn an allowlisted socket into someone else either:
      // from 127.0.0.1 claiming to forward 127.0.0.1, unverifiable → 401, not a read.
      const self = await rawHttp(n, 'GET', '/v1/secrets/hc/closed/x', { from: '127.0.0.1', headers: { 'x-coffer-forwarded-ip': '127.0.0.1' } });
      count++;
      if (self.status !== 401) failures.push(`${where} forged forwarding header from the allowlisted address → ${self.status} (want 401)`);
    }
    console.log(`spoofing: ${count} requests, ${failures.length} deviations`);
    expect(failures).toEqual([]);
  });

  test('oversized bodies before authentication: refused before the body is read, on leader and follower, without a memory jump', async () => {
    const TEN_MIB = 10 * 1024 * 1024;
    const failures: string[] = [];
    const targets: [string, string, Record<string, string>][] = [
      ['PUT', '/v1/secrets/hc/big', { 'content-type': 'application/json' }],
      ['POST', '/v1/secret/data/hc/big', { 'content-type': 'application/json' }],
      ['POST', '/v1/cluster/restore', { 'content-type': 'application/octet-stream' }],
    ];
    for (const [where, n] of both()) {
      for (const [m, p, h] of targets) {
        // Declares 10 MiB, sends 64 KiB, waits: an answer must come before the rest of the body.
        const r = await partialBodyRequest(n, freshIp(), m, p, TEN_MIB, h, 64 * 1024, 5_000);
        const okStatuses = isVault(p) ? [403, 413] : [401, 413];
        if (r.status === null || !okStatuses.includes(r.status)) failures.push(`${where} ${m} ${p}: ${r.status === null ? `no answer within ${r.ms} ms with 64 KiB of 10 MiB sent (the node waits for the whole unauthenticated body)` : `answered ${r.status}`}`);
      }
      // Whole bodies, four at once: the node's peak RSS must not grow by anything like their size.
      const pid = n.proc?.pid as number;
      resetPeakRss(pid);
      const rssBefore = procStatusKb(pid, 'VmRSS');
      const statuses = await Promise.all([0, 1, 2, 3].map(() => bigBodyRequest(n, freshIp(), 'POST', '/v1/cluster/restore', TEN_MIB, { 'content-type': 'application/octet-stream' })));
      const peak = procStatusKb(pid, 'VmHWM');
      const growthMiB = (peak - rssBefore) / 1024;
      console.log(`${where}: 4 × 10 MiB unauthenticated restore bodies → ${JSON.stringify(statuses)}, peak RSS +${growthMiB.toFixed(1)} MiB`);
      // null: the node answered and closed while the upload was still going, and the client saw
      // the reset before the answer — the kernel drops an answer that a reset overtakes, so under
      // load all four can be null (the early answers themselves are checked above, on partial
      // bodies). What must hold: no other answer, and the node is alive and still serving (below).
      if (statuses.some((s) => s !== null && ![401, 413].includes(s))) failures.push(`${where} full bodies → ${JSON.stringify(statuses)}`);
      if (!cluster.isRunning(n)) failures.push(`${where}: the node died under 4 × 10 MiB unauthenticated bodies`);
      if (growthMiB > 16) failures.push(`${where}: peak RSS grew by ${growthMiB.toFixed(1)} MiB for 40 MiB of unauthenticated bodies`);
    }
    // The nodes still serve.
    for (const n of cluster.nodes) expect((await rawHttp(n, 'GET', '/v1/secrets/hc/closed/x', { from: '127.0.0.1' })).status).toBe(200);
    expect(failures).toEqual([]);
  });

  test('a batch read names every secret it read in the audit log, however long the names', async () => {
    const long1 = `hc/audit/${'a'.repeat(501)}`;
    const long2 = `hc/audit/${'b'.repeat(501)}`;
    expect([long1.length, long2.length]).toEqual([510, 510]);
    for (const name of [long1, long2]) expect((await admin('PUT', `/v1/secrets/${name}`, { value: 'audit-filler' })).status).toBe(200);
    const failures: string[] = [];
    for (const [where, n] of both()) {
      const requestId = `hc-batch-audit-${n.id}-${randomBytes(4).toString('hex')}`;
      const r = await rawHttp(n, 'POST', '/v1/batch/secrets', { from: '127.0.0.1', headers: { 'x-request-id': requestId }, body: { names: [long1, long2, 'app/db'] } });
      expect([where, r.status, r.body.secrets.map((s: { name: string }) => s.name)]).toEqual([where, 200, [long1, long2, 'app/db']]);
      const auditFile = path.join(n.dataDir, 'audit.jsonl');
      let mine: string[] = [];
      await cluster.eventually(async () => {
        mine = readFileSync(auditFile, 'utf8').split('\n').filter((l) => l.includes(requestId));
        return mine.length > 0;
      }, 5_000, `audit line of ${requestId} on ${n.id}`);
      const resources = mine.map((l) => JSON.parse(l) as Record<string, unknown>);
      const text = JSON.stringify(resources);
      for (const name of [long1, long2, 'app/db']) if (!text.includes(JSON.stringify(name).slice(1, -1))) failures.push(`${where}: audit of ${requestId} does not name ${name.slice(0, 20)}… (${name.length} chars)`);
    }
    expect(failures).toEqual([]);
  });

  test('hostile traffic through a follower is attributed to its senders: no 401 in the leader\'s audit names a node\'s own address, which is not locked out', async () => {
    // Every request above that failed authentication came from 127.10.x.y-style addresses of its
    // own; nodes talk to each other from 127.0.0.1. A 401 charged to 127.0.0.1 is a forwarded
    // request whose client was lost (and counted against the follower, locking it out).
    const lines = readFileSync(path.join(leader.dataDir, 'audit.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { status: number; clientIp: string; resource: string | null; action: string });
    const misattributed = lines.filter((l) => (l.status === 401 || l.status === 429) && (l.clientIp === '127.0.0.1' || l.clientIp === '::ffff:127.0.0.1'));
    expect({ misattributed: misattributed.length, first: misattributed.slice(0, 3) }).toEqual({ misattributed: 0, first: [] });
    const fromNode = await rawHttp(leader, 'GET', '/v1/tokens/self', { from: '127.0.0.1', headers: { authorization: `Bearer ${cluster.bootstrapToken}` } });
    expect(fromNode.status).toBe(200);
  });

  test('token names "." and ".." are refused: a path can never address them, so such a token could not be revoked or rotated', async () => {
    // A client that normalises paths (fetch, curl without --path-as-is, proxies) turns
    // DELETE /v1/tokens/.. into DELETE /v1/ — and a canonicalising server must refuse dot segments
    // in paths anyway. Secret names already exclude them (validate.ts); token names must too.
    const failures: string[] = [];
    for (const name of ['.', '..']) {
      const r = await admin('POST', '/v1/tokens', { name, role: 'hc-low' });
      if (r.status !== 400) failures.push(`POST /v1/tokens {"name": "${name}"} → ${r.status} ${JSON.stringify(r.body).slice(0, 120)}`);
      if (r.status === 200) {
        // Show the consequence: the ordinary revoke path cannot reach it.
        const viaFetch = await cluster.call(leader, 'DELETE', `/v1/tokens/${name}`);
        failures.push(`  … and DELETE /v1/tokens/${name} through fetch (normalised) → ${viaFetch.status}`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('escalation: membership changes and leadership transfer need cluster.manage', async () => {
    await mkRole('esc-cr', grant(ALL_ACTIONS.filter((a) => a !== 'cluster.manage')));
    const cr = await mkToken('esc-cr', 'esc-cr');
    const before = (await admin('GET', '/v1/cluster')).body;
    const failures: string[] = [];
    for (const [where, n] of both()) {
      const tries: [string, string, unknown][] = [
        ['POST', '/v1/cluster/members', { id: 'evil', raftAddr: 'http://127.0.0.1:1', apiAddr: 'http://127.0.0.1:2' }],
        // Harmless if wrongly allowed (an unknown member; the current leader), but any answer other
        // than 403 shows the action was not checked.
        ['DELETE', '/v1/cluster/members/nobody', undefined],
        ['POST', '/v1/cluster/leader/transfer', { to: leader.id }],
        ['POST', '/v1/cluster/restore', {}],
        ['GET', '/v1/cluster/snapshot', undefined],
      ];
      for (const [m, p, b] of tries) {
        const r = await as(n, m, p, b, cr);
        if (r.status !== 403) failures.push(`${where} ${m} ${p} → ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`);
      }
    }
    expect(failures).toEqual([]);
    const after = (await admin('GET', '/v1/cluster')).body;
    expect({ leader: after.leader, members: after.members.map((m: { id: string; suffrage: string }) => `${m.id}:${m.suffrage}`).sort() }).toEqual({
      leader: before.leader,
      members: before.members.map((m: { id: string; suffrage: string }) => `${m.id}:${m.suffrage}`).sort(),
    });
  });

  // Last: a restore that went through would replace the state the other tests use.
  test('escalation: cluster.manage cannot restore an edited snapshot (a token hash swapped for one of the attacker\'s)', async () => {
    await mkRole('esc-cm', [{ actions: ['cluster.manage'] }]);
    const cm = await mkToken('esc-cm', 'esc-cm');
    const victim = await mkToken('esc-victim', 'admin');
    const snapRes = await rawHttp(leader, 'GET', '/v1/cluster/snapshot', { from: ADMIN_FROM, headers: { authorization: `Bearer ${cm}` } });
    expect(snapRes.status).toBe(200);
    const snap = Buffer.from(snapRes.raw);
    const attacker = `cof_${randomBytes(32).toString('base64url')}`;
    const hv = createHash('sha256').update(victim).digest();
    const ha = createHash('sha256').update(attacker).digest();
    let edited = Buffer.from(snap);
    let how = '';
    for (const [a, b, label] of [[hv, ha, 'raw hash'], [Buffer.from(hv.toString('hex')), Buffer.from(ha.toString('hex')), 'hex hash'], [Buffer.from(hv.toString('base64')), Buffer.from(ha.toString('base64')), 'base64 hash']] as const) {
      const at = edited.indexOf(a);
      if (at !== -1) {
        b.copy(edited, at);
        how = label;
        break;
      }
    }
    if (how === '') {
      // The hash is not visible (e.g. sealed records): flip a byte in the middle instead.
      edited.writeUInt8(edited.readUInt8(edited.length >> 1) ^ 0x01, edited.length >> 1);
      how = 'byte flip';
    }
    // An attacker recomputes an unkeyed trailing checksum (the format before snapshots were MACed).
    const body = edited.subarray(0, edited.length - 32);
    if (createHash('sha256').update(snap.subarray(0, snap.length - 32)).digest().equals(snap.subarray(snap.length - 32))) {
      edited = Buffer.concat([body, createHash('sha256').update(body).digest()]);
      how += ' + recomputed sha256 trailer';
    }
    console.log(`edited snapshot: ${how}`);
    const failures: string[] = [];
    const r = await rawHttp(follower, 'POST', '/v1/cluster/restore', { from: ADMIN_FROM, headers: { authorization: `Bearer ${cm}`, 'content-type': 'application/octet-stream' }, body: edited });
    const text = r.text;
    if (r.status < 400 || r.status >= 500) failures.push(`restore of an edited snapshot (${how}) → ${r.status} ${text.slice(0, 200)}`);
    await sleep(500);
    for (const n of cluster.nodes) {
      const who = await rawHttp(n, 'GET', '/v1/tokens/self', { from: freshIp(), headers: { authorization: `Bearer ${attacker}` } });
      if (who.status !== 401) failures.push(`${n.id}: the attacker's token answers ${who.status} ${who.text.slice(0, 120)}`);
    }
    expect(failures).toEqual([]);
  });
});
