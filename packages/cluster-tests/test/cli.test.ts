/**
 * The `coffer` CLI against a real three-node cluster: `./bin/coffer` spawned as a process with
 * COFFER_ADDR naming all three nodes and COFFER_TOKEN, as an operator or a script would run it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { COFFER_BIN, REPO_ROOT, TestCluster, freePort, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('coffer CLI against a real cluster', () => {
  const cluster = new TestCluster();
  let addr: string;
  let tmp: string;

  /** Runs `./bin/coffer ARGS` with COFFER_ADDR/COFFER_TOKEN (overridable), feeding `input` on stdin. */
  function coffer(args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const env = { PATH: process.env['PATH'] ?? '', HOME: tmp, COFFER_ADDR: addr, COFFER_TOKEN: cluster.bootstrapToken, ...opts.env };
      const p = spawn(COFFER_BIN, args, { env, cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
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
      p.stdin.end(opts.input ?? '');
    });
  }

  /** Runs and expects exit code 0; returns stdout. */
  async function ok(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<string> {
    const r = await coffer(args, opts);
    if (r.code !== 0) throw new Error(`coffer ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'coffer-cli-e2e-'));
    await cluster.start();
    addr = cluster.nodes.map((n) => n.api).join(',');
    const leader = await cluster.leader();
    // Every node knows the leader before the CLI starts writing through whichever answers first.
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await cluster.http(n, 'PUT', `/v1/secrets/warmup/${n.id}`, { value: 'x' })).status === 200, 20_000, `writes via ${n.id}`);
    }
    expect(leader).toBeDefined();
  });
  afterAll(async () => {
    await cluster.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('secrets: put (argument and stdin), get, --version, list, versions, delete, undelete, destroy', async () => {
    expect(await ok(['secrets', 'put', 'cli/db', 'first-value'])).toBe('cli/db: version 1\n');
    // `-` reads stdin; the one trailing newline `echo` adds is dropped.
    expect(await ok(['secrets', 'put', 'cli/db', '-'], { input: 'second value with spaces\n' })).toBe('cli/db: version 2\n');
    // Piped stdout gets the value byte for byte: no newline added (so `> file` and `$(…)` are exact).
    expect(await ok(['secrets', 'get', 'cli/db'])).toBe('second value with spaces');
    expect(await ok(['secrets', 'get', 'cli/db', '--version', '1'])).toBe('first-value');

    const got = JSON.parse(await ok(['secrets', 'get', 'cli/db', '--json']));
    expect(got).toMatchObject({ name: 'cli/db', version: 2, value: 'second value with spaces' });

    await ok(['secrets', 'put', 'cli/other', 'x']);
    const list = await ok(['secrets', 'list', 'cli/']);
    expect(list.split('\n')[0]).toMatch(/^NAME\s+VERSION\s+UPDATED$/);
    expect(list).toMatch(/^cli\/db\s+2\s+\d{4}-/m);
    expect(list).toMatch(/^cli\/other\s+1\s+/m);
    expect(JSON.parse(await ok(['secrets', 'list', 'cli/', '--json'])).map((s: { name: string }) => s.name)).toEqual(['cli/db', 'cli/other']);

    const versions = await ok(['secrets', 'versions', 'cli/db']);
    expect(versions).toMatch(/^VERSION\s+CREATED\s+DELETED\s+DESTROYED$/m);
    expect(versions).toMatch(/^1\s+\S+\s+-\s+no$/m);

    expect(await ok(['secrets', 'delete', 'cli/db'])).toBe('cli/db: deleted version 2\n');
    const gone = await coffer(['secrets', 'get', 'cli/db']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/not_found/);
    expect(gone.stderr).toMatch(/HTTP 404/);
    expect(await ok(['secrets', 'undelete', 'cli/db'])).toBe('cli/db: undeleted version 2\n');
    expect(await ok(['secrets', 'get', 'cli/db'])).toBe('second value with spaces');

    expect(await ok(['secrets', 'destroy', 'cli/db', '--version', '1'])).toBe('cli/db: destroyed version 1\n');
    expect((await coffer(['secrets', 'get', 'cli/db', '--version', '1'])).code).toBe(1);
    const vjson = JSON.parse(await ok(['secrets', 'versions', 'cli/db', '--json'])) as { version: number; destroyed: boolean }[];
    expect(vjson.find((v) => v.version === 1)?.destroyed).toBe(true);

    await ok(['secrets', 'destroy', 'cli/other', '--all']);
    expect((await coffer(['secrets', 'versions', 'cli/other'])).code).toBe(1);
  });

  test('secrets get: a newline is added on a terminal only', async () => {
    await ok(['secrets', 'put', 'cli/tty', 'on-a-terminal']);
    // `script` gives the command a pseudo-terminal as stdout (the pty turns \n into \r\n).
    const r = await new Promise<Run>((resolve, reject) => {
      const p = spawn('script', ['-qec', `${COFFER_BIN} secrets get cli/tty`, '/dev/null'], {
        env: { PATH: process.env['PATH'] ?? '', COFFER_ADDR: addr, COFFER_TOKEN: cluster.bootstrapToken, TERM: 'dumb' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      p.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code, stdout, stderr: '' }));
      p.stdin.end();
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('on-a-terminal\r\n');
  });

  test('secrets get of a KV v2 secret prints its data map as JSON', async () => {
    const leader = await cluster.leader();
    expect((await cluster.http(leader, 'POST', '/v1/secret/data/cli/kv', { data: { user: 'app', port: 5432 } })).status).toBe(200);
    expect(JSON.parse(await ok(['secrets', 'get', 'cli/kv']))).toEqual({ user: 'app', port: 5432 });
  });

  test('tokens: create, list, whoami, rotate, revoke', async () => {
    await ok(['roles', 'put', 'cli-reader', '--file', '-'], { input: JSON.stringify({ rules: [{ paths: ['cli/**'], actions: ['secret.list'] }] }) });
    const created = await coffer(['tokens', 'create', 'cli-bot', '--role', 'cli-reader', '--ttl', '90d']);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(created.stdout).toBe(`${token}\n`); // the token alone on stdout
    expect(created.stderr).toMatch(/created token cli-bot \(role cli-reader/);

    const me = await ok(['tokens', 'whoami'], { env: { COFFER_TOKEN: token } });
    expect(me).toMatch(/^name:\s+cli-bot$/m);
    expect(me).toMatch(/^role:\s+cli-reader$/m);
    const list = JSON.parse(await ok(['tokens', 'list', '--json'])) as { name: string; role: string }[];
    expect(list.find((t) => t.name === 'cli-bot')).toMatchObject({ role: 'cli-reader' });
    expect(await ok(['tokens', 'list'])).toMatch(/^cli-bot\s+cli-reader/m);

    const rotated = JSON.parse(await ok(['tokens', 'rotate', 'cli-bot', '--json'])) as { token: string };
    expect(rotated.token).not.toBe(token);
    const old = await coffer(['tokens', 'whoami'], { env: { COFFER_TOKEN: token } });
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/invalid_token/);
    expect(await ok(['tokens', 'whoami', '--json'], { env: { COFFER_TOKEN: rotated.token } })).toContain('"cli-bot"');

    expect(await ok(['tokens', 'revoke', 'cli-bot'])).toBe('revoked token cli-bot\n');
    expect((await coffer(['tokens', 'whoami'], { env: { COFFER_TOKEN: rotated.token } })).code).toBe(1);
  });

  test('roles: put (file), get, list, delete; a role in use cannot be deleted (exit 1)', async () => {
    const file = path.join(tmp, 'deployer.json');
    writeFileSync(file, JSON.stringify({ rules: [{ paths: ['apps/**'], actions: ['secret.write', 'secret.list'] }], rateLimit: '100/m' }));
    expect(await ok(['roles', 'put', 'cli-deployer', '--file', file])).toBe('stored role cli-deployer\n');
    expect(JSON.parse(await ok(['roles', 'get', 'cli-deployer']))).toMatchObject({ name: 'cli-deployer', rules: [{ paths: ['apps/**'], actions: ['secret.write', 'secret.list'] }], rateLimit: '100/m' });
    expect(await ok(['roles', 'list'])).toMatch(/cli-deployer/);
    const names = (JSON.parse(await ok(['roles', 'list', '--json'])) as { name: string }[]).map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['admin', 'cli-deployer']));

    await ok(['tokens', 'create', 'cli-dep', '--role', 'cli-deployer']);
    const inUse = await coffer(['roles', 'delete', 'cli-deployer', '--json']);
    expect(inUse.code).toBe(1);
    expect(JSON.parse(inUse.stderr)).toMatchObject({ error: { code: 'role_in_use', status: 409 } });
    await ok(['tokens', 'revoke', 'cli-dep']);
    expect(await ok(['roles', 'delete', 'cli-deployer'])).toBe('deleted role cli-deployer\n');
    expect((await coffer(['roles', 'get', 'cli-deployer'])).code).toBe(1);
  });

  test('allowlist: get and set', async () => {
    expect((await ok(['allowlist', 'get'])).split('\n')).toEqual(expect.arrayContaining(['127.0.0.0/8', '::1/128']));
    // The server canonicalises (10.8.0.7/24 → 10.8.0.0/24); the CLI only checks the syntax.
    expect(await ok(['allowlist', 'set', '127.0.0.0/8', '::1/128', '10.8.0.7/24'])).toBe('allowlist: 127.0.0.0/8, ::1/128, 10.8.0.0/24\n');
    expect(JSON.parse(await ok(['allowlist', 'get', '--json']))).toEqual({ cidrs: ['127.0.0.0/8', '::1/128', '10.8.0.0/24'] });
    // A malformed CIDR is bad usage, refused before any request (exit 2); nothing changes.
    expect((await coffer(['allowlist', 'set', 'not-a-cidr'])).code).toBe(2);
    expect(JSON.parse(await ok(['allowlist', 'get', '--json']))).toEqual({ cidrs: ['127.0.0.0/8', '::1/128', '10.8.0.0/24'] });
    await ok(['allowlist', 'set', '127.0.0.0/8', '::1/128']);
  });

  test('cluster status: a table with the leader and every member', async () => {
    const leader = await cluster.leader();
    const out = await ok(['cluster', 'status']);
    expect(out).toMatch(new RegExp(`^leader\\s+${leader.id}$`, 'm'));
    expect(out).toMatch(/^MEMBER\s+ROLE\s+MATCH\s+HEALTH\s+API\s+RAFT$/m);
    for (const n of cluster.nodes) {
      expect(out).toMatch(new RegExp(`^${n.id}\\s+${n === leader ? 'leader' : 'follower'}\\s+\\d+\\s+healthy\\s+${n.api.replace(/[.]/g, '\\.')}\\s+`, 'm'));
    }
    const s = JSON.parse(await ok(['cluster', 'status', '--json']));
    expect(s.leader).toBe(leader.id);
    expect(s.members).toHaveLength(3);
  });

  test('snapshot save writes a complete backup file', async () => {
    const file = path.join(tmp, 'backup.snap');
    const r = await coffer(['snapshot', 'save', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/saved .* to /);
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).size).toBeGreaterThan(100);
    expect(statSync(file).mode & 0o077).toBe(0);
    // The backup is sealed: no plaintext value in it.
    expect(readFileSync(file).includes(Buffer.from('second value with spaces'))).toBe(false);
    const j = JSON.parse(await ok(['snapshot', 'save', path.join(tmp, 'b2.snap'), '--json']));
    expect(j.bytes).toBeGreaterThan(100);
  });

  test('exit codes: 0 ok, 1 refused (403, 409, 401), 2 bad usage', async () => {
    await ok(['roles', 'put', 'cli-ro', '--file', '-'], { input: JSON.stringify({ rules: [{ paths: ['cli/**'], actions: ['secret.list'] }] }) });
    const ro = (await ok(['tokens', 'create', 'cli-ro-token', '--role', 'cli-ro'])).trim();
    const denied = await coffer(['secrets', 'put', 'cli/x', 'v'], { env: { COFFER_TOKEN: ro } });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/permission_denied; HTTP 403/);
    const deniedJson = await coffer(['secrets', 'put', 'cli/x', 'v', '--json'], { env: { COFFER_TOKEN: ro } });
    expect(deniedJson.code).toBe(1);
    expect(JSON.parse(deniedJson.stderr)).toMatchObject({ error: { code: 'permission_denied', status: 403 } });

    await ok(['secrets', 'put', 'cli/cas', 'one', '--cas', '0']);
    const conflict = await coffer(['secrets', 'put', 'cli/cas', 'two', '--cas', '0']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/cas_conflict; HTTP 409/);

    const badToken = await coffer(['tokens', 'whoami'], { env: { COFFER_TOKEN: 'cof_not_a_real_token' } });
    expect(badToken.code).toBe(1);

    for (const args of [
      ['secrets', 'get'], // missing NAME
      ['secrets', 'get', 'cli/cas', '--version', 'abc'],
      ['secrets', 'frobnicate'],
      ['secrets', 'put', 'cli/cas', 'x', '--cas', '-1'],
      ['tokens', 'create', 'x', '--role', 'admin', '--ttl', '5x'],
      ['nonsense'],
      ['secrets', 'destroy', 'cli/cas', '--all', '--version', '1'],
    ]) {
      const r = await coffer(args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
    }
    const bad = await coffer(['secrets', 'list'], { env: { COFFER_ADDR: 'ftp://127.0.0.1:1' } });
    expect(bad.code).toBe(2);
    expect((await coffer(['--help'])).code).toBe(0);
    expect((await coffer(['secrets', 'get', '--help'])).code).toBe(0);
    expect(await ok(['--version'])).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  test('COFFER_ADDR with a dead first address still works (next node tried)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const env = { COFFER_ADDR: [dead, ...cluster.nodes.map((n: NodeHandle) => n.api)].join(',') };
    expect(await ok(['secrets', 'put', 'cli/failover', 'still-here'], { env })).toBe('cli/failover: version 1\n');
    expect(await ok(['secrets', 'get', 'cli/failover'], { env })).toBe('still-here');
    // Every address dead: a network failure is exit 1.
    const none = await coffer(['secrets', 'get', 'cli/failover'], { env: { COFFER_ADDR: dead } });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/unavailable/);
  });
});
