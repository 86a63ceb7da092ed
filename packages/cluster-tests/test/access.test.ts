/**
 * Access control through real processes: the RBAC matrix (every action alone against every
 * route), path globs, the immutable admin role, roles in use, no privilege escalation through
 * token minting; the read allowlist (IPv4 CIDRs, IPv6, IPv4-mapped IPv6, empty list, spoofed and
 * trusted X-Forwarded-For) from distinct loopback source addresses; and the audit files every
 * node wrote during all that (hash chain verified by `coffer audit verify`, tampering detected).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { COFFER_BIN, TestCluster, type HttpResult, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

const ACTIONS = [
  'secret.write', 'secret.list', 'secret.delete', 'secret.destroy', 'secret.rotate', 'token.create', 'token.read', 'token.revoke',
  'role.read', 'role.write', 'allowlist.read', 'allowlist.write', 'kms.rewrap', 'cluster.read', 'cluster.manage', 'audit.read',
] as const;
type Action = (typeof ACTIONS)[number];

const slug = (a: string): string => a.replace('.', '-');

/** One route guarded by an action. `safe`: also run it with the allowed role (no lasting harm). */
interface Probe {
  action: Action;
  method: string;
  path: string;
  body?: unknown;
  safe: boolean;
}

const PROBES: Probe[] = [
  { action: 'secret.write', method: 'PUT', path: '/v1/secrets/rbac/t', body: { value: 'rbac-value' }, safe: true },
  { action: 'secret.list', method: 'GET', path: '/v1/secrets?prefix=rbac/', safe: true },
  { action: 'secret.list', method: 'GET', path: '/v1/versions/rbac/t', safe: true },
  { action: 'secret.delete', method: 'POST', path: '/v1/delete/rbac/t', body: { versions: [1] }, safe: true },
  { action: 'secret.delete', method: 'POST', path: '/v1/undelete/rbac/t', body: { versions: [1] }, safe: true },
  { action: 'secret.destroy', method: 'POST', path: '/v1/destroy/rbac/t', body: { versions: [1] }, safe: true },
  { action: 'secret.destroy', method: 'DELETE', path: '/v1/secrets/rbac/t', safe: true },
  { action: 'secret.rotate', method: 'POST', path: '/v1/rotate/rbac/t', safe: true },
  { action: 'token.create', method: 'POST', path: '/v1/tokens', body: { name: 'minted-by-probe', role: 'only-token-create' }, safe: true },
  { action: 'token.create', method: 'POST', path: '/v1/tokens/victim-create/rotate', safe: true },
  { action: 'token.read', method: 'GET', path: '/v1/tokens', safe: true },
  { action: 'token.revoke', method: 'DELETE', path: '/v1/tokens/victim-revoke', safe: true },
  { action: 'role.read', method: 'GET', path: '/v1/roles', safe: true },
  { action: 'role.read', method: 'GET', path: '/v1/roles/admin', safe: true },
  // Within the caller's own grants: nobody grants what they do not hold (role.write alone).
  { action: 'role.write', method: 'PUT', path: '/v1/roles/probe-role', body: { rules: [{ actions: ['role.write'] }] }, safe: true },
  { action: 'role.write', method: 'DELETE', path: '/v1/roles/probe-role', safe: true },
  { action: 'allowlist.read', method: 'GET', path: '/v1/allowlist', safe: true },
  { action: 'allowlist.write', method: 'PUT', path: '/v1/allowlist', body: { cidrs: ['127.0.0.0/8', '::1/128'] }, safe: true },
  { action: 'kms.rewrap', method: 'POST', path: '/v1/admin/kms/rewrap', safe: true },
  { action: 'kms.rewrap', method: 'GET', path: '/v1/admin/kms/rewrap/status', safe: true },
  { action: 'cluster.read', method: 'GET', path: '/v1/cluster', safe: true },
  { action: 'cluster.manage', method: 'GET', path: '/v1/cluster/snapshot', safe: true },
  { action: 'cluster.manage', method: 'DELETE', path: '/v1/cluster/members/nobody', safe: true },
  { action: 'cluster.manage', method: 'POST', path: '/v1/cluster/members', body: { id: 'n1', raftAddr: 'http://127.0.0.1:1', apiAddr: 'http://127.0.0.1:2' }, safe: true },
  { action: 'cluster.manage', method: 'POST', path: '/v1/cluster/leader/transfer', body: { to: 'nobody' }, safe: true },
  { action: 'cluster.manage', method: 'POST', path: '/v1/cluster/restore', safe: false },
];

function expectDenied(what: string, r: HttpResult, code = 'permission_denied', status = 403): void {
  expect({ what, status: r.status }).toEqual({ what, status });
  expect({ what, keys: Object.keys(r.body ?? {}) }).toEqual({ what, keys: ['error'] });
  expect({ what, code: r.body.error.code, message: typeof r.body.error.message }).toEqual({ what, code, message: 'string' });
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
}

describe('access control on a three-node cluster (real processes)', () => {
  const cluster = new TestCluster();
  /** Every raw token this file saw: none may appear in an audit file. */
  const rawTokens: string[] = [];
  const canaries = ['rbac-value', 'allowlist-canary-51c2', 'glob-canary-9d0e'];
  let rr = 0;
  /** Round-robin over the nodes, so followers forward and answer too. */
  const anyNode = (): NodeHandle => cluster.nodes[rr++ % cluster.nodes.length] as NodeHandle;

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
    rawTokens.push(cluster.bootstrapToken);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  /** Creates role `name` with `rules` and a token of that role; returns the raw token. */
  async function roleAndToken(name: string, rules: unknown[], tokenName = name): Promise<string> {
    const r1 = await cluster.call(anyNode(), 'PUT', `/v1/roles/${name}`, { rules });
    expect([name, r1.status]).toEqual([name, 200]);
    return token(tokenName, name);
  }
  async function token(name: string, role: string, by: string = cluster.bootstrapToken): Promise<string> {
    const r = await cluster.call(anyNode(), 'POST', '/v1/tokens', { name, role }, by);
    expect([name, r.status, r.body?.error]).toEqual([name, 200, undefined]);
    rawTokens.push(r.body.token);
    return r.body.token as string;
  }

  test('RBAC matrix: a role with only one action may use exactly that action\'s routes, on every node', async () => {
    const tokens = new Map<Action, string>();
    for (const a of ACTIONS) {
      const rules = a.startsWith('secret.') ? [{ paths: ['rbac/**'], actions: [a] }] : [{ actions: [a] }];
      tokens.set(a, await roleAndToken(`only-${slug(a)}`, rules));
    }
    // Re-creates what allowed probes consume.
    const seed = async (): Promise<void> => {
      expect((await cluster.call(anyNode(), 'PUT', '/v1/secrets/rbac/t', { value: 'rbac-value' })).status).toBe(200);
      for (const [name, role] of [['victim-create', 'only-token-create'], ['victim-revoke', 'only-token-revoke']] as const) {
        const cur = await cluster.call(anyNode(), 'GET', '/v1/tokens');
        const live = cur.body.tokens.some((t: { name: string; status: string }) => t.name === name && t.status === 'active');
        if (!live) await token(name, role);
      }
      await cluster.call(anyNode(), 'DELETE', '/v1/tokens/minted-by-probe');
    };
    await seed();
    // Every action has at least one probe except audit.read, which guards no native route yet.
    expect(new Set(PROBES.map((p) => p.action))).toEqual(new Set(ACTIONS.filter((a) => a !== 'audit.read')));
    for (const holder of ACTIONS) {
      const tok = tokens.get(holder) as string;
      for (const p of PROBES) {
        const what = `${holder} → ${p.method} ${p.path}`;
        if (p.action !== holder) {
          expectDenied(what, await cluster.call(anyNode(), p.method, p.path, p.body, tok));
        } else if (p.safe) {
          await seed();
          const r = await cluster.call(anyNode(), p.method, p.path, p.body, tok);
          // Allowed: whatever the route answers, it is not an auth refusal (e.g. 404 for a missing member).
          expect({ what, status: r.status, denied: r.status === 401 || r.status === 403 || r.status >= 500 }).toEqual({ what, status: r.status, denied: false });
          if (r.body?.token !== undefined) rawTokens.push(r.body.token);
        }
      }
    }
    // The admin token may do all of it.
    for (const p of PROBES.filter((x) => x.safe)) {
      await seed();
      const r = await cluster.call(anyNode(), p.method, p.path, p.body);
      expect({ p: p.path, s: r.status === 401 || r.status === 403 || r.status >= 500 }).toEqual({ p: p.path, s: false });
    }
  });

  test('path globs: * stays inside a segment, ** spans segments', async () => {
    const one = await roleAndToken('glob-one', [{ paths: ['g/*'], actions: ['secret.write'] }]);
    const deep = await roleAndToken('glob-deep', [{ paths: ['g/**'], actions: ['secret.write'] }]);
    const mid = await roleAndToken('glob-mid', [{ paths: ['**/db-*'], actions: ['secret.write'] }]);
    const put = (name: string, tok: string): Promise<HttpResult> => cluster.call(anyNode(), 'PUT', `/v1/secrets/${name}`, { value: 'glob-canary-9d0e' }, tok);
    expect((await put('g/a', one)).status).toBe(200);
    expectDenied('g/* on g/a/b', await put('g/a/b', one));
    expectDenied('g/* on h/a', await put('h/a', one));
    expect((await put('g/a/b/c', deep)).status).toBe(200);
    expect((await put('g/x', deep)).status).toBe(200);
    expectDenied('g/** on g', await put('g', deep));
    expectDenied('g/** on gx/a', await put('gx/a', deep));
    expect((await put('db-main', mid)).status).toBe(200);
    expect((await put('a/b/db-main', mid)).status).toBe(200);
    expectDenied('**/db-* on a/b/dbmain', await put('a/b/dbmain', mid));
    // secret.list filters by the same globs.
    const lister = await roleAndToken('glob-list', [{ paths: ['g/*'], actions: ['secret.list'] }]);
    const listed = await cluster.call(anyNode(), 'GET', '/v1/secrets?prefix=g', undefined, lister);
    expect(listed.status).toBe(200);
    expect(listed.body.secrets.map((s: { name: string }) => s.name).sort()).toEqual(['g/a', 'g/x']);
  });

  test('the built-in admin role is immutable; a role in use cannot be deleted', async () => {
    const before = await cluster.call(anyNode(), 'GET', '/v1/roles/admin');
    for (const n of cluster.nodes) {
      const put = await cluster.call(n, 'PUT', '/v1/roles/admin', { rules: [{ paths: ['x'], actions: ['secret.write'] }] });
      expectDenied(`PUT admin on ${n.id}`, put, 'immutable_role', put.status);
      expect(put.status).toBeGreaterThanOrEqual(400);
      expect(put.status).toBeLessThan(500);
      const del = await cluster.call(n, 'DELETE', '/v1/roles/admin');
      expect([del.status >= 400 && del.status < 500, del.body.error.code]).toEqual([true, 'immutable_role']);
    }
    expect((await cluster.call(anyNode(), 'GET', '/v1/roles/admin')).body).toEqual(before.body);

    await roleAndToken('in-use', [{ actions: ['cluster.read'] }], 'in-use-token');
    const busy = await cluster.call(anyNode(), 'DELETE', '/v1/roles/in-use');
    expectDenied('delete a role in use', busy, 'role_in_use', 409);
    expect((await cluster.call(anyNode(), 'DELETE', '/v1/tokens/in-use-token')).status).toBe(200);
    expect((await cluster.call(anyNode(), 'DELETE', '/v1/roles/in-use')).status).toBe(200);
    expect((await cluster.call(anyNode(), 'GET', '/v1/roles/in-use')).status).toBe(404);
  });

  test('token.create cannot mint or rotate a token with more than the caller\'s own role', async () => {
    const minter = await roleAndToken('minter', [{ paths: ['apps/**'], actions: ['secret.write'] }, { actions: ['token.create'] }]);
    await cluster.call(anyNode(), 'PUT', '/v1/roles/wider', { rules: [{ paths: ['**'], actions: ['secret.write'] }] });
    await cluster.call(anyNode(), 'PUT', '/v1/roles/narrow', { rules: [{ paths: ['apps/web/*'], actions: ['secret.write'] }] });
    await cluster.call(anyNode(), 'PUT', '/v1/roles/extra', { rules: [{ paths: ['apps/**'], actions: ['secret.write'] }, { actions: ['cluster.manage'] }] });
    for (const n of cluster.nodes) {
      for (const role of ['admin', 'wider', 'extra']) {
        expectDenied(`minter mints ${role} via ${n.id}`, await cluster.call(n, 'POST', '/v1/tokens', { name: `esc-${role}-${n.id}`, role }, minter));
      }
    }
    const listed = await cluster.call(anyNode(), 'GET', '/v1/tokens');
    expect(listed.body.tokens.map((t: { name: string }) => t.name).filter((x: string) => x.startsWith('esc-'))).toEqual([]);
    // Within its own role: fine, and the new token has exactly that role.
    const narrow = await token('narrow-1', 'narrow', minter);
    expect((await cluster.call(anyNode(), 'PUT', '/v1/secrets/apps/web/x', { value: 'v' }, narrow)).status).toBe(200);
    expectDenied('narrow on apps/db', await cluster.call(anyNode(), 'PUT', '/v1/secrets/apps/db', { value: 'v' }, narrow));
    const same = await token('minter-2', 'minter', minter);
    expect((await cluster.call(anyNode(), 'GET', '/v1/tokens/self', undefined, same)).body.role).toBe('minter');
    // Rotation follows the same rule.
    const adminVictim = await token('admin-victim', 'admin');
    expectDenied('minter rotates an admin token', await cluster.call(anyNode(), 'POST', '/v1/tokens/admin-victim/rotate', {}, minter));
    expect((await cluster.call(anyNode(), 'GET', '/v1/tokens/self', undefined, adminVictim)).status).toBe(200);
    const rotated = await cluster.call(anyNode(), 'POST', '/v1/tokens/narrow-1/rotate', {}, minter);
    expect(rotated.status).toBe(200);
    rawTokens.push(rotated.body.token);
    // Admin may mint anything.
    await token('admin-2', 'admin');
  });

  describe('read allowlist from distinct loopback addresses', () => {
    const readFrom = (n: NodeHandle, ip: string, headers: Record<string, string> = {}): Promise<HttpResult> =>
      cluster.httpFrom(n, ip, 'GET', '/v1/secrets/allow/x?consistency=stale', undefined, null, headers);
    const setList = async (cidrs: string[]): Promise<HttpResult> => {
      const r = await cluster.call(anyNode(), 'PUT', '/v1/allowlist', { cidrs });
      expect(r.status).toBe(200);
      return r;
    };
    /** Waits until every node agrees on the list (it is replicated). */
    const everywhere = async (cidrs: string[]): Promise<void> => {
      for (const n of cluster.nodes) {
        await cluster.eventually(async () => JSON.stringify((await cluster.call(n, 'GET', '/v1/allowlist?consistency=stale')).body.cidrs) === JSON.stringify(cidrs), 15_000, `allowlist on ${n.id}`);
      }
    };

    test('IPv4 CIDRs and single addresses, IPv4-mapped IPv6 normalised; others get 403 on every node', async () => {
      expect((await cluster.call(anyNode(), 'PUT', '/v1/secrets/allow/x', { value: 'allowlist-canary-51c2' })).status).toBe(200);
      const set = await setList(['127.0.0.2', '127.0.1.0/24', '::ffff:127.0.0.9', '::1/128']);
      expect(set.body.cidrs).toEqual(expect.arrayContaining(['127.0.0.2/32', '127.0.1.0/24', '127.0.0.9/32', '::1/128']));
      expect(set.body.cidrs.some((c: string) => c.includes('ffff'))).toBe(false);
      await everywhere(set.body.cidrs);
      for (const n of cluster.nodes) {
        for (const ip of ['127.0.0.2', '127.0.1.77', '127.0.0.9']) {
          const r = await readFrom(n, ip);
          expect([n.id, ip, r.status, r.body.value]).toEqual([n.id, ip, 200, 'allowlist-canary-51c2']);
        }
        for (const ip of ['127.0.0.1', '127.0.0.3', '127.0.2.1']) expectDenied(`${ip} on ${n.id}`, await readFrom(n, ip), 'not_allowlisted');
        // COFFER_TRUST_PROXY is off: a spoofed X-Forwarded-For changes nothing.
        expectDenied(`spoofed XFF on ${n.id}`, await readFrom(n, '127.0.0.3', { 'x-forwarded-for': '127.0.0.2' }), 'not_allowlisted');
        expect((await readFrom(n, '127.0.0.2', { 'x-forwarded-for': '10.9.9.9' })).status).toBe(200);
        // Batch and verify are reads too.
        expectDenied(`batch on ${n.id}`, await cluster.httpFrom(n, '127.0.0.3', 'POST', '/v1/batch/secrets', { names: ['allow/x'] }, null), 'not_allowlisted');
        expect((await cluster.httpFrom(n, '127.0.0.2', 'POST', '/v1/batch/secrets', { names: ['allow/x'] }, null)).body.secrets).toHaveLength(1);
      }
    });

    test('an empty list denies every read on every node', async () => {
      await setList([]);
      await everywhere([]);
      for (const n of cluster.nodes) {
        for (const ip of ['127.0.0.1', '127.0.0.2', '127.0.1.77']) expectDenied(`${ip} on ${n.id} (empty list)`, await readFrom(n, ip), 'not_allowlisted');
        expectDenied(`metrics on ${n.id} (empty list)`, await cluster.call(n, 'GET', '/metrics', undefined, null), 'not_allowlisted');
      }
      // Token routes are not governed by the allowlist.
      expect((await cluster.call(anyNode(), 'GET', '/v1/tokens/self')).status).toBe(200);
      await setList(['127.0.0.0/8', '::1/128']);
      await everywhere(['127.0.0.0/8', '::1/128']);
    });
  });

  test('audit: every node\'s file verifies, holds the 401s and 403s, and no secret value or raw token; tampering is caught', async () => {
    // A few 401s on every node (missing and unknown tokens), from addresses of their own.
    for (const [i, n] of cluster.nodes.entries()) {
      expect((await cluster.httpFrom(n, `127.0.3.${i + 1}`, 'GET', '/v1/tokens', undefined, null)).status).toBe(401);
      expect((await cluster.httpFrom(n, `127.0.3.${i + 1}`, 'GET', '/v1/tokens', undefined, 'cof_unknown_token_for_audit')).status).toBe(401);
      expectDenied(`403 on ${n.id}`, await cluster.call(n, 'GET', '/v1/cluster', undefined, rawTokens[1] as string));
    }
    // SIGTERM every node so the files are complete and closed.
    for (const n of cluster.nodes) expect((await cluster.terminate(n)).code).toBe(0);
    for (const n of cluster.nodes) {
      const file = path.join(n.dataDir, 'audit.jsonl');
      const ok = spawnSync(COFFER_BIN, ['audit', 'verify', file], { encoding: 'utf8' });
      expect([n.id, ok.status, ok.stdout]).toEqual([n.id, 0, expect.stringMatching(/^ok: \d+ lines, chain intact/)]);
      const text = readFileSync(file, 'utf8');
      const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l) as { status: number; outcome: string; clientIp: string; action: string });
      expect(lines.some((l) => l.status === 401 && l.outcome === 'denied' && l.clientIp.startsWith('127.0.3.'))).toBe(true);
      expect(lines.some((l) => l.status === 403 && l.outcome === 'denied')).toBe(true);
      expect(lines.some((l) => l.status === 200)).toBe(true);
      for (const t of rawTokens) expect({ node: n.id, leaked: text.includes(t) }).toEqual({ node: n.id, leaked: false });
      expect({ node: n.id, unknownToken: text.includes('cof_unknown_token_for_audit') }).toEqual({ node: n.id, unknownToken: false });
      for (const c of canaries) expect({ node: n.id, canary: c, leaked: text.includes(c) }).toEqual({ node: n.id, canary: c, leaked: false });

      // Tamper with one line in a copy: verify fails and names that line.
      const copy = path.join(cluster.root, `${n.id}-tampered.jsonl`);
      copyFileSync(file, copy);
      const raw = readFileSync(copy, 'utf8').split('\n');
      const at = Math.floor(lines.length / 2);
      raw[at] = (raw[at] as string).replace(/"status":(\d+)/, (_m, s: string) => `"status":${s === '200' ? 201 : 200}`);
      writeFileSync(copy, raw.join('\n'));
      const bad = spawnSync(COFFER_BIN, ['audit', 'verify', copy], { encoding: 'utf8' });
      expect(bad.status).not.toBe(0);
      expect(`${bad.stdout}${bad.stderr}`).toContain(`line ${at + 1}`);
    }
  });
});

describe('allowlist with IPv6 and a trusted proxy (one node on [::1])', () => {
  const single = new TestCluster({ size: 1, apiHost: '::1', env: { COFFER_TRUST_PROXY: 'true', COFFER_READ_ALLOWLIST: '::1/128' } });
  beforeAll(async () => {
    await single.start();
    await single.ready();
  });
  afterAll(async () => {
    await single.stop();
  });

  test('::1/128 admits the IPv6 loopback; with COFFER_TRUST_PROXY the direct peer is the one trusted proxy, so the right-most X-Forwarded-For entry is the client', async () => {
    const n = single.nodes[0] as NodeHandle;
    expect(n.api).toMatch(/^http:\/\/\[::1\]:/);
    expect((await single.call(n, 'PUT', '/v1/secrets/v6/x', { value: 'v6-value' })).status).toBe(200);
    const read = (headers: Record<string, string> = {}): Promise<HttpResult> => single.httpFrom(n, '::1', 'GET', '/v1/secrets/v6/x', undefined, null, headers);
    expect((await read()).body.value).toBe('v6-value');
    expect((await single.call(n, 'PUT', '/v1/allowlist', { cidrs: ['127.0.0.0/8'] })).status).toBe(200);
    expectDenied('::1 not on an IPv4-only list', await read(), 'not_allowlisted');
    // Trusted proxy: the forwarded client decides, IPv4-mapped forms included.
    expect((await read({ 'x-forwarded-for': '::1, 127.0.0.5' })).status).toBe(200);
    // An entry the client wrote before the proxy's own is never read.
    expectDenied('spoofed left-most entry', await read({ 'x-forwarded-for': '127.0.0.5, ::1' }), 'not_allowlisted');
    expect((await read({ 'x-forwarded-for': '::ffff:127.0.0.5' })).status).toBe(200);
    expectDenied('forwarded client outside the list', await read({ 'x-forwarded-for': '10.1.2.3' }), 'not_allowlisted');
    expect((await single.call(n, 'PUT', '/v1/allowlist', { cidrs: ['::1'] })).body.cidrs).toEqual(['::1/128']);
    expect((await read()).status).toBe(200);
    expectDenied('forwarded IPv4 client on an IPv6-only list', await read({ 'x-forwarded-for': '127.0.0.5' }), 'not_allowlisted');
  });
});
