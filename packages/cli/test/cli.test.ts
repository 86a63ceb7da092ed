import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { json, run, standIn, type Hit, type StandIn } from './helpers';

const TOKEN = 'tok-ADMIN-0123456789abcdef';
let node: StandIn;
let routes: Map<string, (hit: Hit) => [number, unknown]>;
const dirs: string[] = [];

function route(key: string, f: (hit: Hit) => [number, unknown]): void {
  routes.set(key, f);
}

beforeEach(async () => {
  routes = new Map();
  node = await standIn((hit, res) => {
    const key = `${hit.method} ${hit.url}`;
    const f = routes.get(key);
    if (f === undefined) return json(res, 404, { error: { code: 'not_found', message: `no route ${key}`, requestId: 'r-404' } });
    const [status, body] = f(hit);
    json(res, status, body);
  });
});
afterEach(async () => {
  await node.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({ COFFER_ADDR: node.url, COFFER_TOKEN: TOKEN });

describe('secrets', () => {
  beforeEach(() => {
    route('PUT /v1/secrets/app/db', () => [200, { name: 'app/db', version: 4, createdAt: '2026-01-01T00:00:00Z' }]);
    route('GET /v1/secrets/app/db', () => [200, { name: 'app/db', version: 4, value: 'hunter2', createdAt: '2026-01-01T00:00:00Z' }]);
  });

  test("put reads the value from stdin with '-' (trailing newline dropped) and sends the token", async () => {
    const r = await run(['secrets', 'put', 'app/db', '-', '--cas', '3'], { stdin: 'hunter2\n', env: env() });
    expect(r).toMatchObject({ code: 0, stdout: 'app/db: version 4\n' });
    expect(JSON.parse(node.hits[0]?.body ?? '')).toEqual({ value: 'hunter2', cas: 3 });
    expect(node.hits[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  test('put reads stdin when VALUE is omitted and stdin is not a terminal', async () => {
    const r = await run(['secrets', 'put', 'app/db', '--json'], { stdin: 'from-pipe', env: env() });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ name: 'app/db', version: 4, createdAt: '2026-01-01T00:00:00Z' });
    expect(JSON.parse(node.hits[0]?.body ?? '')).toEqual({ value: 'from-pipe' });
  });

  test('put without VALUE on a terminal is a usage error and sends nothing', async () => {
    const r = await run(['secrets', 'put', 'app/db'], { stdinIsTTY: true, env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing VALUE');
    expect(node.hits).toHaveLength(0);
  });

  test('--binary sends stdin bytes as valueBase64; --username makes a userpass secret', async () => {
    const bytes = Buffer.from([0, 255, 10, 13, 10]);
    expect((await run(['secrets', 'put', 'app/db', '--binary', '-'], { stdin: bytes, env: env() })).code).toBe(0);
    expect(JSON.parse(node.hits[0]?.body ?? '')).toEqual({ valueBase64: bytes.toString('base64') });
    expect((await run(['secrets', 'put', 'app/db', '--username', 'admin', '-'], { stdin: 'pw\n', env: env() })).code).toBe(0);
    expect(JSON.parse(node.hits[1]?.body ?? '')).toEqual({ format: 'userpass', username: 'admin', password: 'pw' });
  });

  test('bad --cas is a usage error', async () => {
    const r = await run(['secrets', 'put', 'app/db', 'v', '--cas', 'three'], { env: env() });
    expect(r.code).toBe(2);
    expect(node.hits).toHaveLength(0);
  });

  test('get prints the value alone; --json the whole record; --version is passed', async () => {
    expect(await run(['secrets', 'get', 'app/db'], { env: env() })).toMatchObject({ code: 0, stdout: 'hunter2' });
    const j = await run(['secrets', 'get', 'app/db', '--json'], { env: env() });
    expect(JSON.parse(j.stdout)).toMatchObject({ name: 'app/db', version: 4, value: 'hunter2' });
    route('GET /v1/secrets/app/db?version=2', () => [200, { name: 'app/db', version: 2, valueBase64: Buffer.from([1, 2, 3]).toString('base64'), createdAt: 0 }]);
    const b = await run(['secrets', 'get', 'app/db', '--version', '2'], { env: env() });
    expect([...b.stdoutBytes]).toEqual([1, 2, 3]);
  });

  test('a refused request exits 1 with the server code on stderr; with --json the error is JSON', async () => {
    const r = await run(['secrets', 'get', 'nope'], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('not_found');
    expect(r.stderr).toContain('HTTP 404');
    const j = await run(['secrets', 'get', 'nope', '--json'], { env: env() });
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stderr)).toEqual({ error: { code: 'not_found', message: 'no route GET /v1/secrets/nope', status: 404, requestId: 'r-404' } });
  });

  test('a network failure exits 1', async () => {
    const r = await run(['secrets', 'get', 'x'], { env: { COFFER_ADDR: 'http://127.0.0.1:1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unavailable');
  });

  test('delete without --version soft-deletes the latest live version', async () => {
    route('GET /v1/versions/app/db', () => [200, { versions: [{ version: 1 }, { version: 2 }, { version: 3, deletedAt: '2026-01-02T00:00:00Z' }] }]);
    route('POST /v1/delete/app/db', () => [200, {}]);
    route('POST /v1/undelete/app/db', () => [200, {}]);
    const r = await run(['secrets', 'delete', 'app/db'], { env: env() });
    expect(r).toMatchObject({ code: 0, stdout: 'app/db: deleted version 2\n' });
    expect(JSON.parse(node.hits[1]?.body ?? '')).toEqual({ versions: [2] });
    await run(['secrets', 'undelete', 'app/db'], { env: env() });
    expect(JSON.parse(node.hits[3]?.body ?? '')).toEqual({ versions: [3] });
    await run(['secrets', 'undelete', 'app/db', '--version', '1,2'], { env: env() });
    expect(JSON.parse(node.hits[4]?.body ?? '')).toEqual({ versions: [1, 2] });
  });

  test('destroy --all erases everything; --version 0 is bad usage', async () => {
    route('DELETE /v1/secrets/app/db', () => [200, {}]);
    expect((await run(['secrets', 'destroy', 'app/db', '--all'], { env: env() })).code).toBe(0);
    expect(node.hits.map((h) => h.method)).toEqual(['DELETE']);
    expect((await run(['secrets', 'destroy', 'app/db', '--version', '0'], { env: env() })).code).toBe(2);
  });

  test('list renders a table', async () => {
    route('GET /v1/secrets?prefix=app%2F', () => [200, { secrets: [{ name: 'app/db', version: 4, createdAt: '2026-01-01T00:00:00Z' }] }]);
    const r = await run(['secrets', 'list', 'app/'], { env: env() });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('NAME    VERSION  UPDATED\napp/db  4        2026-01-01T00:00:00.000Z\n');
  });
});

describe('tokens', () => {
  test('create prints only the new token on stdout; the ttl passes through', async () => {
    route('POST /v1/tokens', () => [200, { name: 'ci', role: 'deployer', token: 'NEW-RAW-TOKEN', expiresAt: '2026-07-01T00:00:00Z' }]);
    const r = await run(['tokens', 'create', 'ci', '--role', 'deployer', '--ttl', '6m'], { env: env() });
    expect(r).toMatchObject({ code: 0, stdout: 'NEW-RAW-TOKEN\n' });
    expect(r.stderr).toContain('created token ci');
    expect(r.stderr).not.toContain(TOKEN);
    expect(JSON.parse(node.hits[0]?.body ?? '')).toEqual({ name: 'ci', role: 'deployer', ttl: '6m' });
  });

  test.each([['10'], ['5x'], ['0d'], ['6 m'], ['-1d']])('--ttl %s is a usage error', async (ttl) => {
    const r = await run(['tokens', 'create', 'ci', '--role', 'r', '--ttl', ttl], { env: env() });
    expect(r.code).toBe(2);
    expect(node.hits).toHaveLength(0);
  });

  test.each([['90d'], ['12w'], ['30min'], ['1y'], ['36h'], ['45s']])('--ttl %s is accepted', async (ttl) => {
    route('POST /v1/tokens', () => [200, { name: 'ci', role: 'r', token: 'T', expiresAt: null }]);
    expect((await run(['tokens', 'create', 'ci', '--role', 'r', '--ttl', ttl], { env: env() })).code).toBe(0);
  });

  test('list and whoami never print a token, even one the server leaked', async () => {
    route('GET /v1/tokens', () => [200, { tokens: [{ name: 'ci', role: 'deployer', token: 'LEAKED', hash: 'abc', createdAt: 0 }] }]);
    route('GET /v1/tokens/self', () => [200, { name: 'admin', role: 'admin', createdAt: 0, expiresAt: null }]);
    for (const args of [['tokens', 'list'], ['tokens', 'list', '--json'], ['tokens', 'whoami'], ['tokens', 'whoami', '--json']]) {
      const r = await run(args, { env: env() });
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/LEAKED|abc|tok-ADMIN/);
    }
  });

  test('missing --role is a usage error (commander exits 2, not 1)', async () => {
    const r = await run(['tokens', 'create', 'ci'], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--role');
  });
});

describe('usage, help and globals', () => {
  test.each([[['bogus']], [['secrets']], [['secrets', 'get']], [['secrets', 'get', 'a', '--nope']], [['secrets', 'get', 'a', 'b']]])('%j exits 2', async (args) => {
    expect((await run(args, { env: env() })).code).toBe(2);
    expect(node.hits).toHaveLength(0);
  });

  test('--help on every command exits 0, shows examples and never the token', async () => {
    const paths = [[], ['secrets'], ['secrets', 'put'], ['secrets', 'get'], ['secrets', 'list'], ['secrets', 'versions'], ['secrets', 'delete'], ['secrets', 'undelete'], ['secrets', 'destroy'], ['tokens', 'create'], ['tokens', 'list'], ['tokens', 'revoke'], ['tokens', 'rotate'], ['tokens', 'whoami'], ['roles', 'list'], ['roles', 'get'], ['roles', 'put'], ['roles', 'delete'], ['allowlist', 'get'], ['allowlist', 'set'], ['cluster', 'status'], ['cluster', 'add'], ['cluster', 'remove'], ['cluster', 'transfer'], ['snapshot', 'save'], ['kms', 'rewrap'], ['recover'], ['login'], ['login', 'ed25519'], ['identity'], ['identity', 'create'], ['identity', 'list'], ['identity', 'show'], ['identity', 'grant'], ['identity', 'revoke'], ['identity', 'disable'], ['identity', 'delete'], ['access-requests'], ['access-requests', 'create'], ['access-requests', 'list'], ['access-requests', 'approve'], ['access-requests', 'deny']];
    for (const p of paths) {
      const r = await run([...p, '--help'], { env: env() });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Examples:');
      if (p.length === 2) expect(r.stdout).toContain('--json');
      expect(r.stdout + r.stderr).not.toContain(TOKEN);
    }
  });

  test('--addr and --token flags override the environment, before or after the sub-command', async () => {
    route('GET /v1/tokens/self', () => [200, { name: 'x', role: 'r' }]);
    const r = await run(['--addr', node.url, 'tokens', 'whoami', '--token', 'flag-token'], { env: { COFFER_ADDR: 'http://127.0.0.1:1', COFFER_TOKEN: TOKEN } });
    expect(r.code).toBe(0);
    expect(node.hits[0]?.headers.authorization).toBe('Bearer flag-token');
  });

  test('coffer --version prints the version and exits 0', async () => {
    expect(await run(['--version'])).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });

  test('a malformed --addr is a usage error', async () => {
    expect((await run(['--addr', 'ftp://x', 'tokens', 'whoami'])).code).toBe(2);
  });
});

describe('roles and allowlist', () => {
  test('roles put --file - reads JSON from stdin; malformed JSON is a usage error', async () => {
    route('PUT /v1/roles/deployer', (h) => [200, { name: 'deployer', ...JSON.parse(h.body) }]);
    const def = { rules: [{ paths: ['payments/*'], actions: ['secret.write'] }], rateLimit: '100/m' };
    const r = await run(['roles', 'put', 'deployer', '--file', '-'], { stdin: JSON.stringify(def), env: env() });
    expect(r).toMatchObject({ code: 0, stdout: 'stored role deployer\n' });
    expect(JSON.parse(node.hits[0]?.body ?? '')).toEqual(def);
    expect((await run(['roles', 'put', 'deployer', '--file', '-'], { stdin: '{"rules": 5}', env: env() })).code).toBe(2);
    expect((await run(['roles', 'put', 'deployer', '--file', '-'], { stdin: 'nope', env: env() })).code).toBe(2);
    expect((await run(['roles', 'put', 'deployer', '--file', '/nonexistent/rules.json'], { env: env() })).code).toBe(1);
    expect(node.hits).toHaveLength(1);
  });

  test('allowlist set validates entries locally; a bare address is allowed (the server takes it as /32 or /128)', async () => {
    route('PUT /v1/allowlist', (h) => [200, JSON.parse(h.body)]);
    expect((await run(['allowlist', 'set', '10.8.0.0/24', '::1/128'], { env: env() })).code).toBe(0);
    expect(JSON.parse(node.hits[0]?.body ?? '')).toEqual({ cidrs: ['10.8.0.0/24', '::1/128'] });
    expect((await run(['allowlist', 'set', '::1', '10.8.0.5'], { env: env() })).code).toBe(0);
    expect(JSON.parse(node.hits[1]?.body ?? '')).toEqual({ cidrs: ['::1', '10.8.0.5'] });
    for (const bad of ['10.8.0', '10.8.0.0/33', 'example.com/8', '::1/129', '10.8.0.0/', '10.8.0.0/x']) {
      const r = await run(['allowlist', 'set', bad], { env: env() });
      expect({ bad, code: r.code }).toEqual({ bad, code: 2 });
    }
    expect(node.hits).toHaveLength(2);
  });
});

describe('cluster, snapshot and kms', () => {
  test('cluster status is a readable table with leader, term, roles, match index and health', async () => {
    route('GET /v1/cluster', () => [
      200,
      {
        id: 'c1',
        leader: 'n1',
        term: 7,
        commitIndex: 120,
        appliedIndex: 119,
        members: [
          { id: 'n1', raftAddr: 'http://h1:8201', apiAddr: 'http://h1:8200', suffrage: 'voter', matchIndex: 120, healthy: true },
          { id: 'n2', raftAddr: 'http://h2:8201', apiAddr: 'http://h2:8200', suffrage: 'voter', matchIndex: 118, healthy: true },
          { id: 'n4', raftAddr: 'http://h4:8201', apiAddr: 'http://h4:8200', suffrage: 'learner', matchIndex: 40, healthy: false },
        ],
      },
    ]);
    const r = await run(['cluster', 'status'], { env: env() });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'cluster c1',
        'leader  n1',
        'term    7',
        'commit  120   applied 119',
        '',
        'MEMBER  ROLE      MATCH  HEALTH     API             RAFT',
        'n1      leader    120    healthy    http://h1:8200  http://h1:8201',
        'n2      follower  118    healthy    http://h2:8200  http://h2:8201',
        'n4      learner   40     UNHEALTHY  http://h4:8200  http://h4:8201',
        '',
      ].join('\n'),
    );
  });

  test('cluster add validates URLs; transfer sends the target', async () => {
    route('POST /v1/cluster/members', () => [200, {}]);
    route('POST /v1/cluster/leader/transfer', () => [200, {}]);
    expect((await run(['cluster', 'add', 'n4', '--raft', 'h4:8201', '--api', 'http://h4:8200'], { env: env() })).code).toBe(2);
    expect((await run(['cluster', 'add', 'n4', '--raft', 'http://h4:8201', '--api', 'http://h4:8200'], { env: env() })).code).toBe(0);
    expect((await run(['cluster', 'transfer', 'n2'], { env: env() })).code).toBe(0);
    expect(node.hits.map((h) => h.body)).toEqual(['{"id":"n4","raftAddr":"http://h4:8201","apiAddr":"http://h4:8200"}', '{"to":"n2"}']);
  });

  test('snapshot save writes the file and reports the bytes', async () => {
    route('GET /v1/cluster/snapshot', () => [200, { fake: 'snapshot-bytes' }]);
    const dir = mkdtempSync(path.join(tmpdir(), 'coffer-cli-'));
    dirs.push(dir);
    const file = path.join(dir, 'b.snap');
    const r = await run(['snapshot', 'save', file], { env: env() });
    expect(r.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('{"fake":"snapshot-bytes"}');
    expect(r.stderr).toBe(`saved 25 B to ${file}\n`);
  });

  test('kms rewrap --wait polls the status until the pass is done', async () => {
    const statuses = [
      { enabled: true, running: false, pending: 0, done: 0, lastPassAt: null },
      { enabled: true, running: true, pending: 2, done: 1, lastPassAt: null },
      { enabled: true, running: false, pending: 0, done: 3, lastPassAt: '2026-01-01T00:00:00Z' },
    ];
    route('POST /v1/admin/kms/rewrap', () => [202, {}]);
    route('GET /v1/admin/kms/rewrap/status', () => [200, statuses.shift()]);
    const sleeps: number[] = [];
    const r = await run(['kms', 'rewrap', '--wait', '--interval', '1'], { env: env(), sleeps });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('re-wrap pass finished: 3 of 3 done, 0 pending\n');
    expect(sleeps).toEqual([1000]);
    expect(node.hits.map((h) => h.method)).toEqual(['GET', 'POST', 'GET', 'GET']);
  });
});

describe('the built entry point', () => {
  const entry = path.join(__dirname, '..', 'dist', 'main.js');
  function spawnCli(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [entry, ...args], { env: { PATH: process.env.PATH ?? '', COFFER_ADDR: node.url, COFFER_TOKEN: TOKEN } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(stdin);
    });
  }

  test('runs as a process: stdin value, exit codes 0 and 2, and it exits by itself', async () => {
    expect(existsSync(entry)).toBe(true);
    route('PUT /v1/secrets/p/q', () => [200, { name: 'p/q', version: 1, createdAt: 0 }]);
    const ok = await spawnCli(['secrets', 'put', 'p/q'], 'piped-value\n');
    expect(ok).toMatchObject({ code: 0, stdout: 'p/q: version 1\n' });
    expect(JSON.parse(node.hits[0]?.body ?? '')).toEqual({ value: 'piped-value' });
    expect((await spawnCli(['secrets', 'put'], '')).code).toBe(2);
  });
});
