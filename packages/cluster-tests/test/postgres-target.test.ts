/**
 * The `postgres` rotation target against a real PostgreSQL 15 (Debian's package, started by
 * src/postgres.ts on a loopback port). Logins are checked with psql (libpq), not with the `pg`
 * driver under test.
 *
 * PostgreSQL missing: every test here fails with "run scripts/system-deps.sh" — never skipped.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { RotationTargetError } from '../../node/src/rotation/errors.js';
import { setPostgresPassword } from '../../node/src/rotation/postgres.js';
import { runRotationTarget } from '../../node/src/rotation/target.js';
import { canBind } from '../src/harness';
import { checkPostgresInstalled, cleanupStalePostgres, sqlIdent, sqlLiteral, startPostgres, type PostgresServer } from '../src/postgres';

jest.setTimeout(60_000);

let pg: PostgresServer;
/** The app role's password as far as the tests know (each rotation test moves it on). */
let current = '';

beforeAll(async () => {
  pg = await startPostgres();
  current = pg.appPassword;
});

afterAll(async () => {
  await pg?.close();
});

function fresh(): string {
  return randomBytes(32).toString('base64url');
}

async function refused(p: Promise<void>): Promise<RotationTargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof RotationTargetError)) throw new Error(`expected a RotationTargetError, got ${String(err)}`);
  return err;
}

/** Neither the message nor any own property of the error holds one of these strings. */
function expectNoSecrets(err: Error, secrets: string[]): void {
  const text = `${err.message}\n${JSON.stringify(err)}\n${String(err.stack)}`;
  for (const s of secrets) expect(text).not.toContain(s);
}

async function expectLogin(role: string, password: string): Promise<void> {
  const r = await pg.login(role, password);
  if (!r.ok) throw new Error(`login as ${role} failed: ${r.reason}`);
}

async function expectLoginRefused(role: string, password: string): Promise<void> {
  const r = await pg.login(role, password);
  expect(r.ok).toBe(false);
  // Refused for the password, not for some other reason (server down, unknown role).
  if (!r.ok) expect(r.reason).toMatch(/password authentication failed/);
}

test('a machine without PostgreSQL gets a failure that says how to install it (never a skip)', () => {
  expect(() => checkPostgresInstalled('/nonexistent/postgresql/bin')).toThrow(/scripts\/system-deps\.sh/);
  expect(() => checkPostgresInstalled()).not.toThrow();
});

test('the app role logs in with its first password (harness sanity)', async () => {
  await expectLogin(pg.appRole, current);
  await expectLoginRefused(pg.appRole, fresh());
});

test('after setPostgresPassword the new password logs in and the old one fails', async () => {
  const old = current;
  const next = fresh();
  await setPostgresPassword({ connectionUrl: pg.adminUrl, role: pg.appRole, password: next, timeoutMs: 5_000 });
  current = next;
  await expectLogin(pg.appRole, next);
  await expectLoginRefused(pg.appRole, old);

  // Stored as the verifier Coffer computed (SCRAM-SHA-256, 4096 iterations), not re-hashed.
  const stored = await pg.superuser(`SELECT rolpassword FROM pg_authid WHERE rolname = ${sqlLiteral(pg.appRole)}`);
  expect(stored).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
  // The statement log (log_statement = all) shows the ALTER ROLE with the verifier, never the plaintext.
  const log = pg.log();
  expect(log).toContain(`ALTER ROLE ${sqlIdent(pg.appRole)} WITH PASSWORD 'SCRAM-SHA-256$4096:`);
  expect(log).toContain(stored);
  expect(log).not.toContain(next);
});

test('setting the same password twice is harmless (a retried rotation)', async () => {
  const next = fresh();
  await setPostgresPassword({ connectionUrl: pg.adminUrl, role: pg.appRole, password: next });
  await setPostgresPassword({ connectionUrl: pg.adminUrl, role: pg.appRole, password: next });
  current = next;
  await expectLogin(pg.appRole, next);
});

test('postgres:// and postgresql:// URLs both work; the connection is closed afterwards', async () => {
  const next = fresh();
  await setPostgresPassword({ connectionUrl: pg.adminUrl.replace(/^postgresql:/, 'postgres:'), role: pg.appRole, password: next });
  current = next;
  await expectLogin(pg.appRole, next);
  // The backend exits just after the client's Terminate message: give it a moment.
  let open = '';
  for (let i = 0; i < 40; i++) {
    open = await pg.superuser(`SELECT count(*) FROM pg_stat_activity WHERE application_name = 'coffer-rotation'`);
    if (open === '0') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(open).toBe('0');
});

test('runRotationTarget reads the admin URL from the connection secret and rotates the role', async () => {
  const secrets = new Map([['db/admin-url', pg.adminUrl]]);
  const next = fresh();
  await runRotationTarget({
    target: { type: 'postgres', role: pg.appRole, connectionSecret: 'db/admin-url' },
    password: next,
    readSecret: async (name) => secrets.get(name),
    timeoutMs: 5_000,
  });
  const old = current;
  current = next;
  await expectLogin(pg.appRole, next);
  await expectLoginRefused(pg.appRole, old);
});

describe('refusals leave the old password working', () => {
  test('an admin without CREATEROLE: NODE_ROTATION_TARGET_REFUSED, SQLSTATE 42501', async () => {
    const weakPassword = fresh();
    await pg.superuser(`CREATE ROLE weak_admin LOGIN PASSWORD ${sqlLiteral(weakPassword)}`);
    const next = fresh();
    const err = await refused(setPostgresPassword({ connectionUrl: pg.url('weak_admin', weakPassword), role: pg.appRole, password: next }));
    expect(err.code).toBe('NODE_ROTATION_TARGET_REFUSED');
    expect(err.targetCode).toBe('42501');
    expect(err.applied).toBe('no');
    expect(err.message).toContain(`"${pg.appRole}"`);
    expect(err.message).toMatch(/permission denied/);
    expectNoSecrets(err, [next, weakPassword, pg.url('weak_admin', weakPassword)]);
    await expectLogin(pg.appRole, current);
    await expectLoginRefused(pg.appRole, next);
  });

  test('an unknown role: NODE_ROTATION_TARGET_REFUSED, SQLSTATE 42704, naming the role', async () => {
    const next = fresh();
    const err = await refused(setPostgresPassword({ connectionUrl: pg.adminUrl, role: 'no_such_role', password: next }));
    expect(err.code).toBe('NODE_ROTATION_TARGET_REFUSED');
    expect(err.targetCode).toBe('42704');
    expect(err.message).toMatch(/"no_such_role"/);
    expect(err.message).toMatch(/does not exist/);
    expectNoSecrets(err, [next, pg.adminPassword]);
  });

  test('a superuser role cannot be changed by a CREATEROLE admin (42501)', async () => {
    const next = fresh();
    const err = await refused(setPostgresPassword({ connectionUrl: pg.adminUrl, role: 'postgres', password: next }));
    expect(err.code).toBe('NODE_ROTATION_TARGET_REFUSED');
    expect(err.targetCode).toBe('42501');
    expectNoSecrets(err, [next, pg.adminPassword]);
  });

  test('a wrong admin password: NODE_ROTATION_TARGET_UNREACHABLE, SQLSTATE 28P01, no password in the error', async () => {
    const wrong = `Wr0ng-${fresh()}`;
    const next = fresh();
    const err = await refused(setPostgresPassword({ connectionUrl: pg.url(pg.adminRole, wrong), role: pg.appRole, password: next }));
    expect(err.code).toBe('NODE_ROTATION_TARGET_UNREACHABLE');
    expect(err.targetCode).toBe('28P01');
    expect(err.applied).toBe('no');
    expect(err.message).toMatch(/password authentication failed/);
    expectNoSecrets(err, [next, wrong, pg.adminPassword]);
    await expectLogin(pg.appRole, current);
    await expectLoginRefused(pg.appRole, next);
  });

  test('a role locked by another transaction: lock_timeout cancels the statement (TIMEOUT, applied "no")', async () => {
    // Another session changes the role and holds the row lock for 4 s.
    const holder = pg
      .superuser(`BEGIN; ALTER ROLE ${sqlIdent(pg.appRole)} CONNECTION LIMIT 7; SELECT pg_sleep(2.5); ROLLBACK;`)
      .then(() => null, (e: unknown) => e);
    for (let i = 0; i < 100; i++) {
      const n = await pg.superuser(`SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(2.5)%' AND state = 'active' AND pid <> pg_backend_pid()`);
      if (n === '1') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const next = fresh();
    const t0 = Date.now();
    const err = await refused(setPostgresPassword({ connectionUrl: pg.adminUrl, role: pg.appRole, password: next, timeoutMs: 700 }));
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(err.code).toBe('NODE_ROTATION_TARGET_TIMEOUT');
    // statement_timeout (57014) or lock_timeout (55P03), whichever the server hits first: both cancel it.
    expect(['57014', '55P03']).toContain(err.targetCode);
    expect(err.applied).toBe('no');
    expectNoSecrets(err, [next, pg.adminPassword]);
    expect(await holder).toBeNull();
    await expectLogin(pg.appRole, current);
    await expectLoginRefused(pg.appRole, next);
  });
});

describe('bad inputs are refused before anything reaches PostgreSQL', () => {
  test('a 64-byte role name whose 63-byte prefix is a real role does not touch that role', async () => {
    // PostgreSQL truncates identifiers to 63 bytes: without the check this would alter `long`.
    const long = `r${'x'.repeat(62)}`;
    const longPassword = fresh();
    await pg.superuser(`CREATE ROLE ${sqlIdent(long)} LOGIN PASSWORD ${sqlLiteral(longPassword)}`);
    const next = fresh();
    const err = await refused(setPostgresPassword({ connectionUrl: pg.adminUrl, role: `${long}y`, password: next }));
    expect(err.code).toBe('NODE_ROTATION_TARGET_INVALID');
    expect(err.message).toMatch(/longer than 63 bytes/);
    await expectLogin(long, longPassword);
    // The control: the 63-byte name itself is accepted and works.
    await setPostgresPassword({ connectionUrl: pg.adminUrl, role: long, password: next });
    await expectLogin(long, next);
  });

  test.each([
    ['pg_monitor', /pg_/],
    ['', /empty/],
    ['app\nuser', /control character/],
  ])('role %j', async (role, re) => {
    const err = await refused(setPostgresPassword({ connectionUrl: pg.adminUrl, role, password: fresh() }));
    expect(err.code).toBe('NODE_ROTATION_TARGET_INVALID');
    expect(err.message).toMatch(re);
  });

  test('URLs that are not postgres:// or postgresql:// are refused without quoting them', async () => {
    for (const url of [pg.adminUrl.replace(/^postgresql:/, 'mysql:'), pg.adminUrl.replace(/^postgresql:/, 'http:'), `${pg.adminUrl} trailing`]) {
      const err = await refused(setPostgresPassword({ connectionUrl: url, role: pg.appRole, password: fresh() }));
      expect(err.code).toBe('NODE_ROTATION_TARGET_INVALID');
      expectNoSecrets(err, [pg.adminPassword]);
    }
    await expectLogin(pg.appRole, current);
  });

  test('a role name with quotes and spaces is an identifier, not SQL', async () => {
    const odd = `odd "role"; DROP ROLE ${pg.appRole}; --`;
    const oddPassword = fresh();
    await pg.superuser(`CREATE ROLE ${sqlIdent(odd)} LOGIN PASSWORD ${sqlLiteral(oddPassword)}`);
    const next = fresh();
    await setPostgresPassword({ connectionUrl: pg.adminUrl, role: odd, password: next });
    await expectLogin(odd, next);
    await expectLogin(pg.appRole, current);
  });
});

test('a server left by a killed test process is stopped and removed by cleanupStalePostgres', async () => {
  // A separate node process starts a server (from the built harness) and is SIGKILLed: no close(), no 'exit' hook.
  const dist = path.resolve(__dirname, '../dist/postgres.js');
  const child = spawn(process.execPath, ['-e', `require(${JSON.stringify(dist)}).startPostgres().then((pg) => { console.log(JSON.stringify({ dir: require('node:path').dirname(pg.logFile), port: pg.port })); setInterval(() => {}, 1000); })`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`the child exited (${String(code)}) before starting a server`)));
  });
  const { dir, port } = JSON.parse(line) as { dir: string; port: number };
  const gone = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await gone;
  expect(existsSync(dir)).toBe(true);
  expect(await canBind(port)).toBe(false); // the orphaned server still listens

  expect(cleanupStalePostgres()).toBeGreaterThanOrEqual(1);
  expect(existsSync(dir)).toBe(false);
  let free = false;
  for (let i = 0; i < 100 && !free; i++) {
    free = await canBind(port);
    if (!free) await new Promise((r) => setTimeout(r, 50));
  }
  expect(free).toBe(true);
  // Our own live server is not touched.
  await expectLogin(pg.appRole, current);
});
