/**
 * AppRole machine logins against a real three-node cluster (COFFER_READ_AUTH=token, so the token a
 * login returns is what makes a read work): login on the leader and through a follower, bound
 * CIDRs checked on the address the login came from (the signed forwarded one through a
 * follower), use counts spent exactly even under parallel logins on different nodes, expired
 * secret ids, two secret ids valid at once, node-vault's `approleLogin()` followed by a KV read,
 * and the hostile cases for every route (no or low token, path tricks, follower, oversized body).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import vault from 'node-vault';
import { COFFER_BIN, TestCluster, assertLoopback, sleep, type HttpResult, type NodeHandle } from '../src/harness';

jest.setTimeout(240_000);

/** Runs `./bin/coffer ARGS` with only PATH and `env`, feeding `input` on stdin. */
function cli(args: string[], env: Record<string, string>, input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(COFFER_BIN, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(input);
  });
}

/** Declares a body of `declared` bytes, sends 1 KiB of it and waits for the answer. */
function declaredOnly(n: NodeHandle, path: string, declared: number, token?: string): Promise<{ status: number; text: string }> {
  const url = new URL(n.api);
  assertLoopback(url.href);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname, port: url.port, method: path.endsWith('big') ? 'PUT' : 'POST', path, agent: false, timeout: 15_000,
        headers: { 'content-type': 'application/json', 'content-length': String(declared), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, text });
          req.destroy();
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.write('{"role_id":"' + 'x'.repeat(1000));
  });
}

/** One request with the path exactly as given (no client-side dot resolution), admin token. */
function rawRequest(n: NodeHandle, method: string, rawPath: string, body: string, token?: string): Promise<{ status: number; text: string }> {
  const url = new URL(n.api);
  assertLoopback(url.href);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname, port: url.port, method, path: rawPath, agent: false, timeout: 15_000,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('AppRole logins (real cluster)', () => {
  const cluster = new TestCluster({ env: { COFFER_READ_AUTH: 'token', COFFER_AUTH_MAX_FAILURES: '3' } });
  let leader: NodeHandle;
  let follower: NodeHandle;
  let other: NodeHandle;
  let lowToken: string;
  let managerToken: string;
  // Each failing login comes from an address of its own, so the lockout (3 failures) never
  // turns an expected 401 into a 429 for another check.
  let nextAddr = 10;
  const freshAddr = (): string => `127.0.3.${nextAddr++}`;

  const admin = (n: NodeHandle, method: string, p: string, body?: unknown): Promise<HttpResult> => cluster.http(n, method, p, body);
  const login = (n: NodeHandle, roleId: string, secretId: string, from = '127.0.0.1'): Promise<HttpResult> =>
    cluster.httpFrom(n, from, 'POST', '/v1/auth/approle/login', { role_id: roleId, secret_id: secretId }, null);

  async function approle(name: string, body: Record<string, unknown>): Promise<string> {
    const r = await admin(leader, 'PUT', `/v1/approles/${name}`, body);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ name, roleId: expect.any(String) });
    return r.body.roleId as string;
  }
  async function secretId(name: string, n: NodeHandle = leader): Promise<string> {
    const r = await admin(n, 'POST', `/v1/approles/${name}/secret-id`);
    expect(r.status).toBe(200);
    expect(typeof r.body.secretId).toBe('string');
    return r.body.secretId as string;
  }

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
    leader = await cluster.leader();
    [follower, other] = cluster.nodes.filter((n) => n !== leader) as [NodeHandle, NodeHandle];
    expect((await admin(leader, 'PUT', '/v1/roles/app-reader', { rules: [{ paths: ['app/**'], actions: ['secret.read'] }] })).status).toBe(200);
    expect((await admin(leader, 'PUT', '/v1/roles/low', { rules: [{ paths: ['app/**'], actions: ['secret.read'] }] })).status).toBe(200);
    expect((await admin(leader, 'PUT', '/v1/roles/manager', { rules: [{ paths: ['app/**'], actions: ['secret.read'] }, { actions: ['approle.manage'] }] })).status).toBe(200);
    lowToken = (await admin(leader, 'POST', '/v1/tokens', { name: 'low', role: 'low', ttl: '1d' })).body.token as string;
    managerToken = (await admin(leader, 'POST', '/v1/tokens', { name: 'manager', role: 'manager', ttl: '1d' })).body.token as string;
    expect((await admin(leader, 'PUT', '/v1/secrets/app/db', { value: 'pw-approle' })).status).toBe(200);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('login on the leader and through a follower gives a working token of the approle role, in Vault shape', async () => {
    const roleId = await approle('ci', { role: 'app-reader', tokenTtl: '10min' });
    const sid = await secretId('ci', follower);
    for (const n of [leader, follower]) {
      const r = await login(n, roleId, sid);
      expect(r.status).toBe(200);
      expect(r.body.auth).toMatchObject({ policies: ['app-reader'], lease_duration: 600, renewable: false, metadata: { role_name: 'ci' } });
      expect(r.body.auth.client_token).toMatch(/^\S{40,}$/);
      // The token reads what the role grants, on every node, and nothing else.
      for (const m of cluster.nodes) {
        const read = await cluster.http(m, 'GET', '/v1/secrets/app/db', undefined, r.body.auth.client_token as string);
        expect(read.status).toBe(200);
        expect(read.body.value).toBe('pw-approle');
      }
      expect((await cluster.http(n, 'GET', '/v1/tokens', undefined, r.body.auth.client_token as string)).status).toBe(403);
    }
    // Request metrics count login tokens under their AppRole: one series per approle, never one per login.
    for (const m of cluster.nodes) {
      const metrics = String((await cluster.http(m, 'GET', '/metrics', undefined, null)).body);
      expect(metrics).toContain('token="approle:ci"');
      expect(metrics).not.toMatch(/token="approle-ci-/);
    }
    const view = await admin(other, 'GET', '/v1/approles/ci');
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ name: 'ci', role: 'app-reader', roleId, tokenTtl: '10min', liveSecretIds: 1, boundCidrs: [] });
    expect(JSON.stringify(view.body)).not.toContain(sid);
  });

  test('bound CIDRs: checked on the client address, on the leader and (signed forwarded address) through a follower', async () => {
    const outside = await approle('outside', { role: 'app-reader', boundCidrs: ['10.0.0.0/8'] });
    const sOutside = await secretId('outside');
    const only5 = await approle('only5', { role: 'app-reader', boundCidrs: ['127.0.0.5/32'] });
    const s5 = await secretId('only5');
    for (const n of [leader, follower]) {
      const r = await login(n, outside, sOutside, '127.0.0.1');
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('permission_denied');
      expect(r.body.error.message).toContain('bound CIDRs');
      expect((await login(n, only5, s5, '127.0.0.6')).status).toBe(403);
      expect((await login(n, only5, s5, '127.0.0.5')).status).toBe(200);
    }
    // A CIDR that includes the client: fine.
    const incl = await approle('incl', { role: 'app-reader', boundCidrs: ['127.0.0.0/8'] });
    expect((await login(follower, incl, await secretId('incl'))).status).toBe(200);
  });

  test('use counts: refused past the count; N parallel logins on all nodes with uses=N give exactly N successes', async () => {
    const roleId = await approle('once', { role: 'app-reader', secretIdUses: 1 });
    const sid = await secretId('once');
    expect((await login(follower, roleId, sid)).status).toBe(200);
    const again = await login(leader, roleId, sid, freshAddr());
    expect(again.status).toBe(401);
    expect(again.body.error.code).toBe('invalid_token');

    const N = 4;
    const par = await approle('par', { role: 'app-reader', secretIdUses: N });
    const psid = await secretId('par');
    const attempts = 12;
    const results = await Promise.all(Array.from({ length: attempts }, (_, i) => login(cluster.nodes[i % 3] as NodeHandle, par, psid, `127.0.4.${i + 1}`)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(N);
    expect(statuses.filter((s) => s === 401)).toHaveLength(attempts - N);
    const tokens = new Set(results.filter((r) => r.status === 200).map((r) => r.body.auth.client_token as string));
    expect(tokens.size).toBe(N);
    expect((await admin(other, 'GET', '/v1/approles/par')).body.liveSecretIds).toBe(0);
  });

  test('an expired secret id is refused; two secret ids are valid at once (rotation without downtime)', async () => {
    const roleId = await approle('short', { role: 'app-reader', secretIdTtl: '2s' });
    const old = await secretId('short');
    const fresh = await secretId('short');
    expect((await login(leader, roleId, old)).status).toBe(200);
    expect((await login(follower, roleId, fresh)).status).toBe(200);
    await sleep(2_500);
    const expired = await login(follower, roleId, old, freshAddr());
    expect(expired.status).toBe(401);
    // Rotation: a new secret id works while an older one still does.
    const longLived = await approle('rot', { role: 'app-reader' });
    const s1 = await secretId('rot');
    const s2 = await secretId('rot');
    expect((await login(leader, longLived, s1)).status).toBe(200);
    expect((await login(follower, longLived, s2)).status).toBe(200);
    expect((await login(other, longLived, s1)).status).toBe(200);
  });

  test('wrong secret ids count toward the lockout; the secret id never appears in the audit or logs', async () => {
    const roleId = await approle('locky', { role: 'app-reader' });
    const sid = await secretId('locky');
    const from = freshAddr();
    for (let i = 0; i < 3; i++) expect((await login(follower, roleId, `wrong-${i}`, from)).status).toBe(401);
    const locked = await login(leader, roleId, sid, from);
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).not.toBeNull();
    // The lockout is per address: the same secret id works from another one (and was not spent by the refusal).
    expect((await login(follower, roleId, sid, freshAddr())).status).toBe(200);
    // Parallel guesses from one address cannot all get past the limit while nodes catch up.
    const guesser = freshAddr();
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => login(cluster.nodes[i % 3] as NodeHandle, roleId, `guess-${i}`, guesser)));
    const burstStatuses = burst.map((r) => r.status);
    expect(burstStatuses.filter((st) => st === 401).length).toBeLessThanOrEqual(3);
    expect(burstStatuses.filter((st) => st !== 401 && st !== 429)).toEqual([]);
    expect((await login(leader, roleId, 'x'.repeat(40), freshAddr())).status).toBe(401);
    expect((await login(leader, 'no-such-role-id', sid, freshAddr())).status).toBe(401);
    // Followers forward logins; the leader audits them (denials too), naming the role id, never the secret id.
    const lines = readFileSync(`${leader.dataDir}/audit.jsonl`, 'utf8').split('\n').filter((l) => l.includes('"approle.login"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l['status'] === 401 && l['resource'] === `role_id:${roleId}` && l['clientIp'] === from)).toBe(true);
    expect(lines.some((l) => l['status'] === 200 && /^approle:locky token:approle-locky-[0-9a-f]{12}$/.test(String(l['resource'])))).toBe(true);
    for (const n of cluster.nodes) {
      expect(readFileSync(`${n.dataDir}/audit.jsonl`, 'utf8')).not.toContain(sid);
      expect(readFileSync(n.logFile, 'utf8')).not.toContain(sid);
    }
  });

  test("node-vault's approleLogin() then a KV read with the returned token", async () => {
    const roleId = await approle('vaultish', { role: 'app-reader' });
    const sid = await secretId('vaultish');
    for (const n of [leader, follower]) {
      const client = vault({ apiVersion: 'v1', endpoint: n.api });
      const res = await client.approleLogin({ role_id: roleId, secret_id: sid });
      expect(res.auth.policies).toEqual(['app-reader']);
      expect(client.token).toBe(res.auth.client_token);
      const kv = await client.read('secret/data/app/db');
      expect(kv.data.data).toEqual({ value: 'pw-approle' });
      // Without a token the same read is refused (COFFER_READ_AUTH=token). (No wrong token from
      // 127.0.0.1 here: it would count toward that address's lockout, which later checks share.)
      const anon = vault({ apiVersion: 'v1', endpoint: n.api, token: '' });
      await expect(anon.read('secret/data/app/db')).rejects.toMatchObject({ response: { statusCode: 403 } });
    }
  });

  test('nobody hands out what they do not hold; no or low token is refused on every management route', async () => {
    await approle('adminish', { role: 'admin' });
    for (const n of [leader, follower]) {
      for (const [method, p, body] of [
        ['PUT', '/v1/approles/x1', { role: 'app-reader' }],
        ['POST', '/v1/approles/adminish/secret-id', undefined],
        ['GET', '/v1/approles/adminish', undefined],
        ['GET', '/v1/approles', undefined],
        ['DELETE', '/v1/approles/adminish', undefined],
      ] as const) {
        expect((await cluster.httpFrom(n, freshAddr(), method, p, body, null)).status).toBe(401);
        expect((await cluster.http(n, method, p, body, lowToken)).status).toBe(403);
      }
      // approle.manage, but the approle's role grants more than the manager's own.
      const mint = await cluster.http(n, 'POST', '/v1/approles/adminish/secret-id', undefined, managerToken);
      expect(mint.status).toBe(403);
      expect(mint.body.error.message).toContain('admin');
      expect((await cluster.http(n, 'PUT', '/v1/approles/esc', { role: 'admin' }, managerToken)).status).toBe(403);
      expect((await cluster.http(n, 'PUT', '/v1/approles/adminish', { role: 'app-reader' }, managerToken)).status).toBe(403);
      expect((await cluster.http(n, 'DELETE', '/v1/approles/adminish', undefined, managerToken)).status).toBe(403);
    }
    // Within its own role the manager may.
    const own = await cluster.http(follower, 'PUT', '/v1/approles/mine', { role: 'app-reader' }, managerToken);
    expect(own.status).toBe(200);
    expect((await cluster.http(follower, 'POST', '/v1/approles/mine/secret-id', undefined, managerToken)).status).toBe(200);
  });

  test('bad input, path tricks and oversized bodies are refused with a clear 4xx, on leader and follower', async () => {
    for (const n of [leader, follower]) {
      for (const p of ['/v1/approles/%2e%2e', '/v1/approles/..', '/v1/approles/a%2fb', '/v1/approles/%2e%2e/secret-id', '/v1/approles/ci/%2e%2e/secret-id', '/v1/auth/approle/%2e%2e/login']) {
        // Sent as written (fetch would resolve the dots itself before sending).
        const r = await rawRequest(n, 'PUT', p, JSON.stringify({ role: 'app-reader' }), cluster.bootstrapToken);
        expect([400, 404, 405]).toContain(r.status);
        const g = await rawRequest(n, 'POST', p, JSON.stringify({ role_id: 'x', secret_id: 'y' }), cluster.bootstrapToken);
        expect([400, 404, 405]).toContain(g.status);
      }
      expect((await admin(n, 'GET', '/v1/approles/secret-id')).status).toBe(404);
      const bad: [unknown, string][] = [
        [{ role: 'nope' }, 'role'],
        [{ role: 'app-reader', tokenTtl: 'forever' }, 'tokenTtl'],
        [{ role: 'app-reader', secretIdUses: -1 }, 'secretIdUses'],
        [{ role: 'app-reader', boundCidrs: ['300.0.0.0/8'] }, 'boundCidrs'],
        [{ role: 'app-reader', extra: 1 }, 'extra'],
        [{ role: 'app-reader', tokenTtl: '1000y' }, 'tokenTtl'],
      ];
      for (const [body, named] of bad) {
        const r = await admin(n, 'PUT', '/v1/approles/badinput', body);
        expect([400, 403]).toContain(r.status);
        expect(r.body.error.message).toContain(named === 'role' ? 'nope' : named);
      }
      expect((await admin(n, 'PUT', `/v1/approles/${'a'.repeat(41)}`, { role: 'app-reader' })).body.error.code).toBe('invalid_name');
      for (const body of [{}, { role_id: 'x' }, { role_id: 1, secret_id: 'y' }, { role_id: 'x', secret_id: 'y'.repeat(300) }, { role_id: 'x', secret_id: 'y', z: 1 }]) {
        const r = await cluster.httpFrom(n, freshAddr(), 'POST', '/v1/auth/approle/login', body, null);
        expect(r.status).toBe(400);
        expect(r.body.error.code).toBe('invalid_request');
      }
      // A body declared over the limit is refused before it is read (no token needed to be refused).
      for (const [p, token] of [['/v1/auth/approle/login', undefined], ['/v1/approles/big', cluster.bootstrapToken], ['/v1/approles/big/secret-id', cluster.bootstrapToken]] as const) {
        const huge = await declaredOnly(n, p, 3 * 1024 * 1024, token);
        expect(huge.status).toBe(413);
        expect(huge.text).toContain('body_too_large');
      }
      // Anyone may send a login, so its limit is a few KiB: an 8 KiB body is refused too.
      const big = await cluster.httpFrom(n, freshAddr(), 'POST', '/v1/auth/approle/login', { role_id: 'x', secret_id: 'y', pad: 'p'.repeat(8 * 1024) }, null);
      expect(big.status).toBe(413);
    }
  });

  test('CLI: approle put / secret-id --json / login approle from a file and from stdin; usage errors exit 2; the secret id never on argv', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'coffer-approle-cli-'));
    try {
      const env = { COFFER_ADDR: cluster.nodes.map((n) => n.api).join(','), COFFER_TOKEN: cluster.bootstrapToken };
      const put = await cli(['approle', 'put', 'cli-ci', '--role', 'app-reader', '--token-ttl', '5min', '--secret-id-uses', '3', '--bound-cidr', '127.0.0.0/8', '--json'], env);
      expect(put.code).toBe(0);
      const roleId = (JSON.parse(put.stdout) as { roleId: string }).roleId;
      const minted = await cli(['approle', 'secret-id', 'cli-ci', '--json'], env);
      expect(minted.code).toBe(0);
      const sid = (JSON.parse(minted.stdout) as { secretId: string; usesLeft: number }).secretId;
      expect(JSON.parse(minted.stdout)).toMatchObject({ name: 'cli-ci', usesLeft: 3 });
      const plain = await cli(['approle', 'secret-id', 'cli-ci'], env);
      expect(plain.stdout.trim()).toMatch(/^\S+$/);
      expect(plain.stderr).toContain('shown once');
      const file = path.join(dir, 'secret-id');
      writeFileSync(file, `${sid}\n`, { mode: 0o600 });
      const noToken = { COFFER_ADDR: env.COFFER_ADDR };
      const fromFile = await cli(['login', 'approle', '--role-id', roleId, '--secret-id-file', file], noToken);
      expect(fromFile.code).toBe(0);
      const token = fromFile.stdout.trim();
      expect((await cluster.http(follower, 'GET', '/v1/secrets/app/db', undefined, token)).body.value).toBe('pw-approle');
      const fromStdin = await cli(['login', 'approle', '--role-id', roleId, '--secret-id-file', '-', '--json'], noToken, sid);
      expect(fromStdin.code).toBe(0);
      expect(JSON.parse(fromStdin.stdout)).toMatchObject({ token: expect.any(String), expiresAt: expect.any(String) });
      const shown = await cli(['approle', 'get', 'cli-ci', '--json'], env);
      expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'cli-ci', roleId, tokenTtl: '5min', secretIdUses: 3, boundCidrs: ['127.0.0.0/8'], liveSecretIds: 2 });
      // Refused: a used-up / wrong secret id (1), bad usage (2): no secret id on argv is accepted.
      writeFileSync(file, 'wrong\n');
      expect((await cli(['login', 'approle', '--role-id', roleId, '--secret-id-file', file], noToken)).code).toBe(1);
      expect((await cli(['login', 'approle', '--role-id', roleId, '--secret-id', sid], noToken)).code).toBe(2);
      expect((await cli(['approle', 'put', 'cli-ci', '--role', 'app-reader', '--secret-id-uses', 'many'], env)).code).toBe(2);
      expect((await cli(['approle', 'put', 'cli-ci'], env)).code).toBe(2);
      expect((await cli(['approle', 'secret-id', 'cli-ci'], { COFFER_ADDR: env.COFFER_ADDR, COFFER_TOKEN: lowToken })).code).toBe(1);
      const help = await cli(['approle', '--help'], {});
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('secret-id');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('deleting an approle ends its sessions and its secret ids at once, on every node', async () => {
    const roleId = await approle('gone', { role: 'app-reader' });
    const sid = await secretId('gone');
    const r = await login(follower, roleId, sid);
    const tok = r.body.auth.client_token as string;
    expect((await cluster.http(other, 'GET', '/v1/secrets/app/db', undefined, tok)).status).toBe(200);
    const del = await admin(follower, 'DELETE', '/v1/approles/gone');
    expect(del.status).toBe(200);
    expect(del.body.tokensEnded).toBe(1);
    for (const n of cluster.nodes) expect((await cluster.httpFrom(n, freshAddr(), 'GET', '/v1/secrets/app/db', undefined, tok)).status).toBe(401);
    expect((await login(leader, roleId, sid, freshAddr())).status).toBe(401);
    expect((await admin(leader, 'GET', '/v1/approles/gone')).status).toBe(404);
  });
});
