/**
 * Rotation through the `postgres` target, end to end: a real 3-node Coffer cluster (node
 * processes) and a real PostgreSQL 15 (src/postgres.ts; logins checked with psql/libpq).
 *
 * - `POST /v1/rotate/{name}` on the leader and through a follower: the old password stops working
 *   in PostgreSQL, the new one (read from Coffer) works, verify accepts both during the grace window.
 * - The automatic worker does the same.
 * - A refused ALTER ROLE commits nothing: same version, `lastError` in the versions view, the
 *   metric and a warn log line (no password, no URL).
 * - Setting a target needs `secret.read` on its connection secret (403 otherwise).
 * - A leader SIGKILLed while ALTER ROLE waits on a row lock: exactly one new version, whose
 *   password works.
 *
 * PostgreSQL missing: every test here fails with "run scripts/system-deps.sh" — never skipped.
 */
import { readFileSync } from 'node:fs';
import { TestCluster, type NodeHandle } from '../src/harness';
import { cleanupStalePostgres, sqlIdent, sqlLiteral, startPostgres, type PostgresServer } from '../src/postgres';

jest.setTimeout(240_000);

const ADMIN_URL_SECRET = 'pg/admin-url';
let pg: PostgresServer;
const cluster = new TestCluster({ size: 3, env: { COFFER_ROTATION_POLL_SECS: '1' } });

beforeAll(async () => {
  cleanupStalePostgres();
  pg = await startPostgres();
  await cluster.start();
  await cluster.bootstrapped();
  await cluster.ready();
  const leader = await cluster.leader();
  expect((await cluster.http(leader, 'PUT', `/v1/secrets/${ADMIN_URL_SECRET}`, { value: pg.adminUrl })).status).toBe(200);
});

afterAll(async () => {
  await cluster.stop(process.env['KEEP_CLUSTER'] === '1');
  if (process.env['KEEP_CLUSTER'] === '1') console.log(cluster.root, pg?.logFile);
  await pg?.close();
});

async function followerOf(leader: NodeHandle): Promise<NodeHandle> {
  const f = cluster.nodes.find((n) => n !== leader && cluster.isRunning(n));
  if (f === undefined) throw new Error('no running follower');
  return f;
}

/** A role of its own per test, so tests do not share a password. */
async function createRole(role: string): Promise<string> {
  const password = `initial-${role}-${Math.random().toString(36).slice(2)}`;
  await pg.superuser(`CREATE ROLE ${sqlIdent(role)} LOGIN PASSWORD ${sqlLiteral(password)}`);
  return password;
}

function target(role: string, connectionSecret = ADMIN_URL_SECRET): Record<string, string> {
  return { type: 'postgres', role, connectionSecret };
}

async function putTargeted(n: NodeHandle, name: string, role: string, password: string, rotation: { intervalSecs: number; graceSecs: number }): Promise<void> {
  const r = await cluster.http(n, 'PUT', `/v1/secrets/${name}`, { format: 'userpass', username: role, password, rotation: { ...rotation, target: target(role) } });
  expect(r).toMatchObject({ status: 200, body: { version: 1 } });
}

async function expectLogin(role: string, password: string): Promise<void> {
  const r = await pg.login(role, password);
  if (!r.ok) throw new Error(`login as ${role} failed: ${r.reason}`);
}

async function expectLoginRefused(role: string, password: string): Promise<void> {
  const r = await pg.login(role, password);
  expect(r.ok).toBe(false);
  if (!r.ok) expect(r.reason).toMatch(/password authentication failed/);
}

async function current(n: NodeHandle, name: string): Promise<{ version: number; password: string }> {
  const r = await cluster.http(n, 'GET', `/v1/secrets/${name}`, undefined, null);
  expect(r.status).toBe(200);
  return { version: r.body.version, password: r.body.password };
}

async function versions(n: NodeHandle, name: string): Promise<any> {
  const r = await cluster.http(n, 'GET', `/v1/versions/${name}`);
  expect(r.status).toBe(200);
  return r.body;
}

async function verify(n: NodeHandle, name: string, value: string): Promise<unknown> {
  return (await cluster.http(n, 'POST', `/v1/verify/${name}`, { value }, null)).body;
}

/** One labelled series from a node's /metrics (0 when absent). */
async function series(n: NodeHandle, name: string, labels: string): Promise<number> {
  const r = await cluster.http(n, 'GET', '/metrics', undefined, null);
  const line = String(r.body).split('\n').find((l) => l.startsWith(`${name}{${labels}} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('POST /v1/rotate with a postgres target', () => {
  test('on the leader and through a follower: PostgreSQL gets each new password, the old one stops working, verify keeps both during grace', async () => {
    const role = 'rot_manual';
    const p1 = await createRole(role);
    const leader = await cluster.leader();
    const follower = await followerOf(leader);
    const okBefore = await series(leader, 'coffer_rotation_target_total', 'type="postgres",outcome="ok"');
    await putTargeted(leader, 'db/manual', role, p1, { intervalSecs: 86_400, graceSecs: 3600 });
    const view = await versions(follower, 'db/manual');
    expect(view.rotation).toEqual({ intervalSecs: 86_400, graceSecs: 3600, target: target(role), lastError: null, pending: false });
    await expectLogin(role, p1);

    const r1 = await cluster.http(leader, 'POST', '/v1/rotate/db/manual');
    expect(r1).toMatchObject({ status: 200, body: { name: 'db/manual', version: 2 } });
    const v2 = await current(follower, 'db/manual');
    expect(v2.version).toBe(2);
    expect(v2.password).not.toBe(p1);
    await expectLogin(role, v2.password);
    await expectLoginRefused(role, p1);
    expect(await verify(follower, 'db/manual', p1)).toEqual({ valid: true, version: 1 });
    expect(await verify(follower, 'db/manual', v2.password)).toEqual({ valid: true, version: 2 });

    const r2 = await cluster.http(follower, 'POST', '/v1/rotate/db/manual');
    expect(r2).toMatchObject({ status: 200, body: { version: 3 } });
    const v3 = await current(leader, 'db/manual');
    expect(v3.version).toBe(3);
    await expectLogin(role, v3.password);
    await expectLoginRefused(role, v2.password);
    expect(await verify(leader, 'db/manual', v2.password)).toEqual({ valid: true, version: 2 });
    expect(await verify(leader, 'db/manual', v3.password)).toEqual({ valid: true, version: 3 });
    expect(await verify(leader, 'db/manual', 'not-the-password')).toEqual({ valid: false, version: null });

    expect(await series(leader, 'coffer_rotation_target_total', 'type="postgres",outcome="ok"')).toBe(okBefore + 2);
    // The plaintext passwords never reached PostgreSQL's statement log (a SCRAM verifier did).
    for (const p of [v2.password, v3.password]) expect(pg.log()).not.toContain(p);
    expect((await versions(leader, 'db/manual')).rotation).toMatchObject({ lastError: null, pending: false });
  });

  test('a refused ALTER ROLE commits nothing: same version, lastError, the metric and a warn log line', async () => {
    const role = 'rot_refused';
    const p1 = await createRole(role);
    const leader = await cluster.leader();
    await putTargeted(leader, 'db/refused', role, p1, { intervalSecs: 86_400, graceSecs: 60 });
    const refusedBefore = await series(leader, 'coffer_rotation_target_total', 'type="postgres",outcome="refused"');
    await pg.superuser(`ALTER ROLE ${sqlIdent(pg.adminRole)} NOCREATEROLE`);
    try {
      const r = await cluster.http(await followerOf(leader), 'POST', '/v1/rotate/db/refused');
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('rotation_target_refused');
      expect(r.body.error.message).toContain(role);
      const view = await versions(leader, 'db/refused');
      expect(view.currentVersion).toBe(1);
      expect(view.versions).toHaveLength(1);
      expect(view.rotation.pending).toBe(false);
      expect(view.rotation.lastError).toMatchObject({ code: 'rotation_target_refused' });
      expect(view.rotation.lastError.message).toContain(role);
      expect(Date.parse(view.rotation.lastError.at)).toBeGreaterThan(0);
      expect((await current(leader, 'db/refused')).password).toBe(p1);
      await expectLogin(role, p1);
      expect(await series(leader, 'coffer_rotation_target_total', 'type="postgres",outcome="refused"')).toBe(refusedBefore + 1);
      const log = readFileSync(leader.logFile, 'utf8');
      const warn = log.split('\n').find((l) => l.includes('"rotation target failed"') && l.includes('db/refused'));
      expect(warn).toBeDefined();
      expect(JSON.parse(warn as string)).toMatchObject({ name: 'db/refused', role, code: 'NODE_ROTATION_TARGET_REFUSED', targetCode: '42501', applied: 'no' });
      expect(log).not.toContain(pg.adminPassword);
      expect(log).not.toContain(p1);
    } finally {
      await pg.superuser(`ALTER ROLE ${sqlIdent(pg.adminRole)} CREATEROLE`);
    }
    // Fixed: the next rotation goes through and clears the error.
    expect((await cluster.http(leader, 'POST', '/v1/rotate/db/refused')).status).toBe(200);
    const view = await versions(leader, 'db/refused');
    expect(view).toMatchObject({ currentVersion: 2, rotation: { lastError: null, pending: false } });
    await expectLogin(role, (await current(leader, 'db/refused')).password);
    await expectLoginRefused(role, p1);
  });
});

describe('setting a target', () => {
  test('needs secret.read on the connection secret (403 otherwise, on the leader and through a follower); bad targets are 400', async () => {
    const leader = await cluster.leader();
    const follower = await followerOf(leader);
    const writer = { paths: ['app/**'], actions: ['secret.write', 'secret.rotate', 'secret.list'] };
    expect((await cluster.http(leader, 'PUT', '/v1/roles/app-writer', { rules: [writer] })).status).toBe(200);
    expect((await cluster.http(leader, 'PUT', '/v1/roles/app-dba', { rules: [writer, { paths: ['pg/*'], actions: ['secret.read'] }] })).status).toBe(200);
    const writerToken = (await cluster.http(leader, 'POST', '/v1/tokens', { name: 'app-writer-1', role: 'app-writer' })).body.token as string;
    const dbaToken = (await cluster.http(leader, 'POST', '/v1/tokens', { name: 'app-dba-1', role: 'app-dba' })).body.token as string;
    const body = { format: 'userpass', username: 'victim', password: 'x', rotation: { intervalSecs: 3600, graceSecs: 0, target: target('victim') } };

    for (const n of [leader, follower]) {
      const r = await cluster.http(n, 'PUT', '/v1/secrets/app/takeover', body, writerToken);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('permission_denied');
    }
    expect((await cluster.http(leader, 'GET', '/v1/secrets/app/takeover', undefined, null)).status).toBe(404);
    // The follower refused it itself, before forwarding: the denial is in its own audit log.
    const denials: unknown[] = [];
    for (let since = 1; ; ) {
      const page = await cluster.http(follower, 'GET', `/v1/audit?since=${since}&limit=500`);
      expect(page.status).toBe(200);
      for (const l of page.body.records as { action: string; resource: string | null; status: number }[]) {
        if (l.action === 'secret.write' && l.resource === 'app/takeover' && l.status === 403) denials.push(l);
      }
      // Reading the audit is audited too: stop at a short page, not at an end that keeps moving.
      if (page.body.next === null || page.body.records.length < 500) break;
      since = page.body.next as number;
    }
    expect(denials).toHaveLength(1);
    // The same writer may still set a policy without a target.
    expect((await cluster.http(follower, 'PUT', '/v1/secrets/app/plain', { value: 'v', rotation: { intervalSecs: 3600, graceSecs: 0 } }, writerToken)).status).toBe(200);
    // A role that may read the connection secret may set the target.
    expect((await cluster.http(follower, 'PUT', '/v1/secrets/app/allowed', body, dbaToken)).status).toBe(200);
    expect((await versions(leader, 'app/allowed')).rotation.target).toEqual(target('victim'));

    const bad = async (t: unknown): Promise<void> => {
      // As admin (who may read every secret), so the refusal is the target's shape, not the grant.
      const r = await cluster.http(leader, 'PUT', '/v1/secrets/app/bad', { value: 'v', rotation: { intervalSecs: 3600, graceSecs: 0, target: t } });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
    };
    await bad({ type: 'postgres', role: 'x', connectionSecret: 'app/bad' }); // names itself
    await bad({ type: 'postgres', role: 'pg_monitor', connectionSecret: ADMIN_URL_SECRET });
    await bad({ type: 'mysql', role: 'x', connectionSecret: ADMIN_URL_SECRET });
    // A string that would decode as a stored target (and so skip the check above) is refused.
    await bad(`coffer-target:v1:${JSON.stringify(target('victim'))}`);
  });
});

describe('automatic rotation', () => {
  test('the worker rotates through the target: the old password fails, the one Coffer holds works', async () => {
    const role = 'rot_auto';
    const p1 = await createRole(role);
    const leader = await cluster.leader();
    await putTargeted(leader, 'db/auto', role, p1, { intervalSecs: 3, graceSecs: 3600 });
    await cluster.eventually(async () => (await current(leader, 'db/auto')).version >= 2, 60_000, 'db/auto rotated by the worker');
    await expectLoginRefused(role, p1);
    expect(await verify(leader, 'db/auto', p1)).toEqual({ valid: true, version: 1 });
    // The worker keeps rotating every 3 s: check a version that stayed current (and not pending)
    // around the login.
    let checked = false;
    for (let i = 0; i < 20 && !checked; i++) {
      const before = await versions(leader, 'db/auto');
      const now = await current(leader, 'db/auto');
      const login = await pg.login(role, now.password);
      const after = await versions(leader, 'db/auto');
      if (before.currentVersion === now.version && after.currentVersion === now.version && !before.rotation.pending && !after.rotation.pending) {
        expect(login.ok).toBe(true);
        checked = true;
      }
    }
    expect(checked).toBe(true);
    const audit = readFileSync(`${leader.dataDir}/audit.jsonl`, 'utf8');
    expect(audit).toContain('"actor":"rotation-worker"');
    // Stop it: the secret goes, and with it the policy.
    expect((await cluster.http(leader, 'DELETE', '/v1/secrets/db/auto')).status).toBe(200);
  });
});

describe('leader change mid-rotation', () => {
  test('ALTER ROLE waiting on a row lock, leader SIGKILLed: the new leader finishes it, exactly one new version, its password works', async () => {
    const role = 'rot_leader';
    const p1 = await createRole(role);
    const leader = await cluster.leader();
    await putTargeted(leader, 'db/lc', role, p1, { intervalSecs: 86_400, graceSecs: 3600 });
    // Another session holds the role's row lock for 8 s: ALTER ROLE waits (lock_timeout is 10 s).
    const holder = pg
      .superuser(`BEGIN; ALTER ROLE ${sqlIdent(role)} CONNECTION LIMIT 7; SELECT pg_sleep(8); ROLLBACK;`)
      .then(() => null, (e: unknown) => e);
    await cluster.eventually(
      async () => (await pg.superuser(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(8)%' AND state = 'active' AND pid <> pg_backend_pid()`)) === '1',
      10_000,
      'lock holder active',
    );
    const rotating = cluster.http(leader, 'POST', '/v1/rotate/db/lc').then(
      (r) => r.status,
      () => 'no answer',
    );
    const survivor = await followerOf(leader);
    await cluster.eventually(async () => (await versions(survivor, 'db/lc')).rotation.pending === true, 10_000, 'rotation pending');
    // Reported on a follower too (every node's worker sets the gauge from the replicated state).
    await cluster.eventually(async () => (await series(survivor, 'coffer_rotation_pending', '')) === 1, 10_000, 'pending gauge');
    await cluster.kill(leader);
    await rotating;
    expect(await holder).toBeNull();

    const newLeader = await cluster.leader(30_000);
    expect(newLeader).not.toBe(leader);
    // NB: a leader proposes a command type only once every member has advertised it (upgrade
    // gating, cluster/command-versions.ts), and the new leader never heard from the dead one: the
    // commit waits until it is back (the resumed ALTER ROLE meanwhile sets the same password).
    await cluster.spawnNode(leader);
    await cluster.eventually(async () => {
      const v = await versions(newLeader, 'db/lc');
      return v.currentVersion === 2 && v.rotation.pending === false;
    }, 60_000, 'the new leader committed the pending rotation');
    const v2 = await current(newLeader, 'db/lc');
    await expectLogin(role, v2.password);
    await expectLoginRefused(role, p1);
    expect(await verify(newLeader, 'db/lc', p1)).toEqual({ valid: true, version: 1 });
    // Nothing doubles: a few more polls later there is still exactly one new version.
    await new Promise((r) => setTimeout(r, 3_000));
    const view = await versions(newLeader, 'db/lc');
    expect(view.currentVersion).toBe(2);
    expect(view.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(view.rotation).toMatchObject({ lastError: null, pending: false });
    await cluster.eventually(async () => (await series(newLeader, 'coffer_rotation_pending', '')) === 0, 10_000, 'pending gauge back to 0');
    await cluster.eventually(async () => (await cluster.http(leader, 'GET', '/v1/versions/db/lc?consistency=stale')).body?.currentVersion === 2, 30_000, 'restarted node caught up');
    await expectLogin(role, (await current(leader, 'db/lc')).password);
  });
});
