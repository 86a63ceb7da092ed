/**
 * A real PostgreSQL 15 server for tests (Debian's `postgresql` package): a fresh cluster in a temp
 * dir, listening on a free loopback port, with an admin role (LOGIN CREATEROLE, password) and an
 * app role (LOGIN, password). `close()` stops the server and removes the temp dir. A forgotten
 * `close()` does not keep the test process alive (the server is unref'd and logs straight to a
 * file); the server is then stopped on 'exit' where that event reaches us, and in any case by the
 * next `startPostgres`, which removes servers whose test process is gone (a killed jest worker).
 *
 * - `initdb` and `postgres` refuse to run as root: when the test runs as root they run as the
 *   `postgres` user (`runuser -u postgres -- …`) in a temp dir it owns; otherwise as the caller.
 * - TCP (127.0.0.1 only) needs SCRAM-SHA-256 passwords; the Unix socket lives in the temp dir
 *   (mode 0700), trusted, and is used only by the harness's own superuser connection.
 * - Logins are checked with `psql` over TCP — a different client (libpq) from the `pg` driver
 *   under test, so a verifier that only `pg` could use would not pass.
 * - PostgreSQL missing: `startPostgres` throws, telling the reader to run `scripts/system-deps.sh`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { freePort, sleep } from './harness.js';

/** A sleep that does not keep the process alive and can be cancelled. */
function timer(ms: number): { done: Promise<void>; cancel: () => void } {
  let t: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    t = setTimeout(resolve, ms);
    t.unref();
  });
  return { done, cancel: () => clearTimeout(t) };
}

/** Where Debian's PostgreSQL 15 puts its server binaries. */
export const POSTGRES_BIN_DIR = '/usr/lib/postgresql/15/bin';

const HOST = '127.0.0.1';

/** Outcome of a login attempt: `reason` is what libpq/the server said. */
export type LoginResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** A running test PostgreSQL. */
export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  /** Role with LOGIN CREATEROLE and a password. */
  readonly adminRole: string;
  readonly adminPassword: string;
  /** `postgresql://admin:password@127.0.0.1:port/postgres` */
  readonly adminUrl: string;
  /** Role with LOGIN and a password: the one whose password rotation changes. */
  readonly appRole: string;
  readonly appPassword: string;
  readonly appUrl: string;
  /** The server's stderr log (statements included: `log_statement = all`). */
  readonly logFile: string;
  /**
   * Runs SQL as the superuser over the Unix socket.
   *
   * @returns psql's unaligned, tuples-only output
   */
  superuser(sql: string): Promise<string>;
  /** Tries to log in over TCP with a password, as `psql` (libpq) does. */
  login(role: string, password: string): Promise<LoginResult>;
  /** A `postgresql://` URL for a role and password on this server. */
  url(role: string, password: string): string;
  /** The server log so far (for failure messages and the "no plaintext in logs" check). */
  log(): string;
  /** Stops the server and removes every file; safe to call twice. */
  close(): Promise<void>;
}

/** Options of {@link startPostgres}. */
export interface StartPostgresOptions {
  /** Default `coffer_admin`. */
  adminRole?: string;
  /** Default `app_user`. */
  appRole?: string;
  /** How long to wait for the server to accept connections; default 30 s. */
  startTimeoutMs?: number;
}

/**
 * Doubles single quotes: a SQL string literal for values the harness generated or a test chose.
 *
 * @param s - the text
 * @returns `'s'`
 */
export function sqlLiteral(s: string): string {
  if (s.includes('\0')) throw new RangeError('SQL literal cannot contain NUL');
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * Double-quotes an identifier.
 *
 * @param s - the identifier
 * @returns `"s"`
 */
export function sqlIdent(s: string): string {
  if (s.includes('\0')) throw new RangeError('SQL identifier cannot contain NUL');
  return `"${s.replaceAll('"', '""')}"`;
}

function missing(what: string): Error {
  return new Error(`PostgreSQL 15 is needed by this test and ${what}: run \`sudo bash scripts/system-deps.sh\` (installs Debian's postgresql package) and retry`);
}

/**
 * Throws a clear error when PostgreSQL 15 or the means to run it are missing.
 *
 * @param binDir - where initdb, postgres and psql are; default {@link POSTGRES_BIN_DIR}
 */
export function checkPostgresInstalled(binDir: string = POSTGRES_BIN_DIR): void {
  for (const bin of ['initdb', 'postgres', 'psql']) {
    if (!existsSync(path.join(binDir, bin))) throw missing(`${path.join(binDir, bin)} does not exist`);
  }
  if (isRoot()) {
    if (lookupUser('postgres') === null) throw missing('the "postgres" user does not exist (it comes with the package)');
    if (spawnSync('runuser', ['--help'], { stdio: 'ignore' }).error !== undefined) throw new Error('runuser (util-linux) is needed to run PostgreSQL as the postgres user');
  }
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function lookupUser(name: string): { uid: number; gid: number } | null {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return null;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** argv prefix that runs a server binary as the right user. */
function asOwner(): string[] {
  return isRoot() ? ['runuser', '-u', 'postgres', '--'] : [];
}

function run(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new RangeError('empty argv');
    const child = spawn(cmd, args, { env: opts.env ?? minimalEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A client that exits before reading its input (psql while the server is still starting)
    // makes the write fail with EPIPE: its exit code already says what happened.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

function minimalEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // No PG* variables from the caller's environment (PGPASSWORD, PGHOST …) leak into a check.
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8', PGPASSFILE: '/nonexistent/coffer-no-pgpass', PGSSLMODE: 'disable', PGCONNECT_TIMEOUT: '5', ...extra };
}

const live = new Set<{ pgroup: number | undefined; root: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of live) killAndRemoveSync(s.pgroup, s.root);
  });
}

function killAndRemoveSync(pgroup: number | undefined, root: string): void {
  if (pgroup !== undefined) {
    try {
      // SIGQUIT = PostgreSQL's immediate shutdown: the postmaster takes its children (own sessions) down too.
      process.kill(-pgroup, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
  rmSync(root, { recursive: true, force: true });
}

const DIR_PREFIX = 'coffer-pg-';
const OWNER_FILE = 'owner.json';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops and removes test servers left by test processes that no longer exist (e.g. a jest worker
 * killed with SIGKILL). Only temp dirs with our owner file are touched, and a process group is
 * signalled only if its leader's command line names that dir.
 *
 * @returns how many were removed
 */
export function cleanupStalePostgres(): number {
  let removed = 0;
  const tmp = os.tmpdir();
  for (const name of readdirSync(tmp)) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(tmp, name);
    let owner: { pid?: unknown; pgroup?: unknown };
    try {
      owner = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as { pid?: unknown; pgroup?: unknown };
    } catch {
      continue; // no owner file: starting right now, or not ours
    }
    if (typeof owner.pid !== 'number' || alive(owner.pid)) continue;
    if (typeof owner.pgroup === 'number') {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${owner.pgroup}/cmdline`, 'utf8');
      } catch {
        // gone already
      }
      if (cmdline.includes(dir)) killAndRemoveSync(owner.pgroup, dir);
    }
    rmSync(dir, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/**
 * Starts a fresh PostgreSQL 15 on a free loopback port and creates the admin and app roles.
 *
 * @param opts - role names and the start timeout
 * @returns the running server; call `close()` in `afterAll`
 * @throws when PostgreSQL is not installed (message: run scripts/system-deps.sh) or does not start
 *   (message: the server log's tail)
 */
export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresServer> {
  checkPostgresInstalled();
  cleanupStalePostgres();
  installExitHook();
  const adminRole = opts.adminRole ?? 'coffer_admin';
  const appRole = opts.appRole ?? 'app_user';
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;

  const root = mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  const writeOwner = (pgroup: number | null): void => writeFileSync(path.join(root, OWNER_FILE), JSON.stringify({ pid: process.pid, pgroup }));
  writeOwner(null);
  const handle: { pgroup: number | undefined; root: string } = { pgroup: undefined, root };
  live.add(handle);
  let child: ChildProcess | undefined;
  const fail = async (err: unknown): Promise<never> => {
    await stop(child, handle).catch(() => undefined);
    throw err;
  };

  try {
    const dataDir = path.join(root, 'data');
    const sockDir = path.join(root, 'sock');
    mkdirSync(sockDir);
    chmodSync(root, 0o700);
    chmodSync(sockDir, 0o700);
    if (isRoot()) {
      const pgUser = lookupUser('postgres');
      if (pgUser === null) throw missing('the "postgres" user does not exist');
      chownSync(root, pgUser.uid, pgUser.gid);
      chownSync(sockDir, pgUser.uid, pgUser.gid);
      // NB: the postgres user must be able to reach the temp dir (os.tmpdir() is normally /tmp).
      const probe = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-w', root]);
      if (probe.status !== 0) throw new Error(`the postgres user cannot write ${root}: set TMPDIR to a directory it can reach (e.g. /tmp)`);
    }

    const init = await run([...asOwner(), path.join(POSTGRES_BIN_DIR, 'initdb'), '-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-instructions', '--no-sync'], { timeoutMs: 120_000 });
    if (init.code !== 0) throw new Error(`initdb failed (exit ${String(init.code)}): ${(init.stderr || init.stdout).slice(-2000)}`);

    const port = await freePort();
    const logFile = path.join(root, 'postgres.log');
    const serverArgv = [
      ...asOwner(),
      path.join(POSTGRES_BIN_DIR, 'postgres'),
      '-D', dataDir,
      '-p', String(port),
      '-k', sockDir,
      '-c', `listen_addresses=${HOST}`,
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'shared_buffers=16MB',
      '-c', 'max_connections=20',
      '-c', 'password_encryption=scram-sha-256',
      // Every statement is logged, so a test can show the plaintext never reaches the server.
      '-c', 'log_statement=all',
      '-c', 'log_connections=on',
      '-c', 'logging_collector=off',
    ];
    const [serverCmd, ...serverArgs] = serverArgv;
    if (serverCmd === undefined) throw new RangeError('empty argv');
    // Its own process group, so stop() can signal postgres and everything it forked at once. Output
    // goes straight to the log file (no pipes), and the child is unref'd: a test that forgets
    // close() still lets its process exit.
    const logFd = openSync(logFile, 'a');
    let server: ChildProcess;
    try {
      server = spawn(serverCmd, serverArgs, { detached: true, stdio: ['ignore', logFd, logFd], env: minimalEnv() });
    } finally {
      closeSync(logFd);
    }
    server.unref();
    child = server;
    handle.pgroup = server.pid;
    if (server.pid !== undefined) writeOwner(server.pid);
    let exited: string | null = null;
    server.once('exit', (code, signal) => {
      exited = `exit ${String(code)} signal ${String(signal)}`;
    });

    const psqlSocket = (sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      run([path.join(POSTGRES_BIN_DIR, 'psql'), '-h', sockDir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-f', '-'], { input: sql, timeoutMs: 30_000 });

    const readLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (exited !== null) throw new Error(`postgres stopped while starting (${String(exited)}); log:\n${readLog().slice(-3000)}`);
      const r = await psqlSocket('SELECT 1');
      if (r.code === 0) break;
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${startTimeoutMs} ms; log:\n${readLog().slice(-3000)}`);
      await sleep(100);
    }

    const adminPassword = randomBytes(18).toString('base64url');
    const appPassword = randomBytes(18).toString('base64url');
    const setup = await psqlSocket(
      [
        `CREATE ROLE ${sqlIdent(adminRole)} LOGIN CREATEROLE PASSWORD ${sqlLiteral(adminPassword)};`,
        `CREATE ROLE ${sqlIdent(appRole)} LOGIN PASSWORD ${sqlLiteral(appPassword)};`,
      ].join('\n'),
    );
    if (setup.code !== 0) throw new Error(`creating the test roles failed: ${setup.stderr.slice(-2000)}`);

    const url = (role: string, password: string): string =>
      `postgresql://${encodeURIComponent(role)}:${encodeURIComponent(password)}@${HOST}:${port}/postgres`;
    return {
      host: HOST,
      port,
      adminRole,
      adminPassword,
      adminUrl: url(adminRole, adminPassword),
      appRole,
      appPassword,
      appUrl: url(appRole, appPassword),
      logFile,
      url,
      log: readLog,
      async superuser(sql: string): Promise<string> {
        const r = await psqlSocket(sql);
        if (r.code !== 0) throw new Error(`psql as superuser failed (exit ${String(r.code)}): ${r.stderr.slice(-2000)}`);
        return r.stdout.trim();
      },
      async login(role: string, password: string): Promise<LoginResult> {
        const r = await run(
          [path.join(POSTGRES_BIN_DIR, 'psql'), '-h', HOST, '-p', String(port), '-U', role, '-d', 'postgres', '-w', '-X', '-A', '-t', '-c', 'SELECT current_user'],
          { env: minimalEnv({ PGPASSWORD: password }), timeoutMs: 30_000 },
        );
        if (r.code === 0 && r.stdout.trim() === role) return { ok: true };
        return { ok: false, reason: (r.stderr || r.stdout).trim() };
      },
      async close(): Promise<void> {
        await stop(server, handle);
      },
    };
  } catch (err) {
    return fail(err);
  }
}

async function stop(child: ChildProcess | undefined, handle: { pgroup: number | undefined; root: string }): Promise<void> {
  if (!live.has(handle)) return;
  if (child !== undefined && child.exitCode === null && child.signalCode === null && handle.pgroup !== undefined) {
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // SIGINT to the group = PostgreSQL's "fast" shutdown (postmaster and runuser both get it).
    try {
      process.kill(-handle.pgroup, 'SIGINT');
    } catch {
      // already gone
    }
    const grace = timer(10_000);
    const timedOut = await Promise.race([gone.then(() => false), grace.done.then(() => true)]);
    grace.cancel();
    if (timedOut) {
      try {
        process.kill(-handle.pgroup, 'SIGKILL');
      } catch {
        // already gone
      }
      const last = timer(5_000);
      await Promise.race([gone, last.done]);
      last.cancel();
    }
  }
  // Backends may outlive a killed postmaster for a moment; SIGKILL whatever is left of the group.
  if (handle.pgroup !== undefined) {
    try {
      process.kill(-handle.pgroup, 'SIGKILL');
    } catch {
      // nothing left
    }
  }
  live.delete(handle);
  rmSync(handle.root, { recursive: true, force: true });
}
