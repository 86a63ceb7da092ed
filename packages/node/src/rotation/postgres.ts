/**
 * The `postgres` rotation target: set a PostgreSQL role's password with `ALTER ROLE`, using admin
 * credentials that Coffer keeps in another secret (CONTRACT.md, "Rotation target: PostgreSQL").
 *
 * - The password is sent as a SCRAM-SHA-256 verifier computed here (`./scram.ts`), so the plaintext
 *   never reaches the server, its statement log or `pg_stat_activity`.
 * - The role goes through `escapeIdentifier` and the verifier through `escapeLiteral`; the role is
 *   also validated first (PostgreSQL silently truncates identifiers longer than 63 bytes, which
 *   would alter a different role).
 * - Connect and statement are bounded; the connection is always closed.
 * - Errors are {@link RotationTargetError}s whose message names the role and what PostgreSQL said,
 *   never the password, the verifier or the connection URL (which holds the admin's password).
 */
import { Client, DatabaseError, escapeIdentifier, escapeLiteral } from 'pg';
import { checkSecretName, type NameCheck } from '../validate.js';
import { RotationTargetError, type TargetOutcome } from './errors.js';
import { scramSha256Verifier } from './scram.js';

/** Longest PostgreSQL identifier, in bytes (NAMEDATALEN - 1). */
export const POSTGRES_MAX_IDENTIFIER_BYTES = 63;
/** Longest connection URL accepted, in characters. */
export const POSTGRES_MAX_URL_CHARS = 4096;
/** Default bound on connecting, and on the statement, in milliseconds. */
export const DEFAULT_TARGET_TIMEOUT_MS = 10_000;
/** Largest accepted `timeoutMs`. */
export const MAX_TARGET_TIMEOUT_MS = 300_000;
/** `application_name` of Coffer's connections, so a DBA can tell them apart in `pg_stat_activity`. */
export const POSTGRES_APPLICATION_NAME = 'coffer-rotation';

/** A rotation target that sets a PostgreSQL role's password (CONTRACT.md). */
export type PostgresRotationTarget = {
  readonly type: 'postgres';
  /** The role whose password is rotated, exactly as in `pg_roles.rolname` (case-sensitive). */
  readonly role: string;
  /** Name of the Coffer secret whose value is the admin connection URL. */
  readonly connectionSecret: string;
};

/** Every rotation target type (one so far). */
export type RotationTarget = PostgresRotationTarget;

/** Outcome of {@link checkRotationTarget}. */
export type TargetCheck = { readonly ok: true; readonly target: RotationTarget } | { readonly ok: false; readonly reason: string };

/** Arguments of {@link setPostgresPassword}. */
export type SetPostgresPasswordOptions = {
  /** Admin connection URL (`postgres://` or `postgresql://`), from the target's connection secret. */
  readonly connectionUrl: string;
  /** Role whose password is set. */
  readonly role: string;
  /** The new password: printable ASCII (Coffer's rotated passwords are base64url). */
  readonly password: string;
  /** Bound on connecting and on the statement, each; default {@link DEFAULT_TARGET_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
};

const OK: NameCheck = Object.freeze({ ok: true });
const TARGET_KEYS: readonly string[] = ['type', 'role', 'connectionSecret'];
// C0 and C1 controls (and DEL): legal inside a quoted identifier, but never a real role name.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

/**
 * Checks a PostgreSQL role name as {@link setPostgresPassword} will use it: verbatim (it is quoted
 * with `escapeIdentifier`, so case and any character except controls are kept).
 *
 * Refused: non-strings, empty names, names over 63 bytes (PostgreSQL would truncate them and so
 * alter another role), control characters, leading or trailing spaces, the reserved names `public`
 * and `none`, and the `pg_` prefix (PostgreSQL's own roles).
 *
 * @param role - candidate role name
 * @returns `{ok: true}` or `{ok: false, reason}`
 * @example
 * ```ts
 * checkPostgresRole('app_user');    // { ok: true }
 * checkPostgresRole('pg_monitor').ok; // false
 * ```
 */
export function checkPostgresRole(role: unknown): NameCheck {
  if (typeof role !== 'string') return fail('PostgreSQL role name must be a string');
  if (role.length === 0) return fail('PostgreSQL role name must not be empty');
  if (Buffer.byteLength(role, 'utf8') > POSTGRES_MAX_IDENTIFIER_BYTES) {
    return fail(`PostgreSQL role name ${quote(role)} is longer than ${POSTGRES_MAX_IDENTIFIER_BYTES} bytes (PostgreSQL would truncate it)`);
  }
  if (CONTROL_RE.test(role)) return fail(`PostgreSQL role name ${quote(role)} contains a control character`);
  if (role.trim() !== role) return fail(`PostgreSQL role name ${quote(role)} has leading or trailing spaces`);
  if (role === 'public' || role === 'none') return fail(`PostgreSQL role name ${quote(role)} is reserved`);
  if (role.startsWith('pg_')) return fail(`PostgreSQL role name ${quote(role)} starts with "pg_", which is reserved for PostgreSQL's own roles`);
  return OK;
}

type UrlInspection = { ok: true; user: string; secrets: string[] } | { ok: false; reason: string };

function inspectUrl(url: unknown): UrlInspection {
  // NB: no reason below quotes the URL: it may hold the admin's password.
  if (typeof url !== 'string') return fail('connection URL must be a string');
  if (url.length === 0) return fail('connection URL must not be empty');
  if (url.length > POSTGRES_MAX_URL_CHARS) return fail(`connection URL is longer than ${POSTGRES_MAX_URL_CHARS} characters`);
  // A real URL %-escapes spaces; a raw one is a paste error (and would end up in the database name).
  if (/\s/.test(url) || CONTROL_RE.test(url)) return fail('connection URL contains whitespace or control characters');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail('connection URL is not a valid URL (expected postgres://user:password@host:port/database)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    return fail(`connection URL must start with postgres:// or postgresql://, not ${quote(u.protocol.slice(0, 20))}`);
  }
  let user: string;
  let password: string;
  try {
    user = decodeURIComponent(u.username);
    password = decodeURIComponent(u.password);
  } catch {
    return fail('connection URL has a malformed %-escape in its user or password');
  }
  if (user.length === 0) return fail('connection URL must name the admin user (postgres://user:password@host/database)');
  const hostParam = u.searchParams.get('host');
  if (u.hostname.length === 0 && (hostParam === null || hostParam.length === 0)) {
    return fail('connection URL must name a host (or a socket directory with ?host=/path)');
  }
  const secrets = [url, u.password, password];
  const passwordParam = u.searchParams.get('password');
  if (passwordParam !== null) secrets.push(passwordParam, encodeURIComponent(passwordParam));
  return { ok: true, user, secrets: secrets.filter((s) => s.length > 0) };
}

/**
 * Checks an admin connection URL: `postgres://` or `postgresql://`, a user, a host (or a socket
 * directory in `?host=`), valid %-escapes. The reason never quotes the URL.
 *
 * @param url - candidate URL (any value)
 * @returns `{ok: true}` or `{ok: false, reason}`
 * @example
 * ```ts
 * checkPostgresUrl('postgres://admin:pw@db.internal:5432/postgres'); // { ok: true }
 * checkPostgresUrl('mysql://admin:pw@db/x').ok;                     // false
 * ```
 */
export function checkPostgresUrl(url: unknown): NameCheck {
  const r = inspectUrl(url);
  return r.ok ? OK : fail(r.reason);
}

/**
 * Checks a rotation target object from the API (`"rotation": {"target": …}`) and returns it in
 * canonical form.
 *
 * @param value - the parsed JSON value
 * @param opts - `secretName`: the secret the policy belongs to (it may not be its own connection secret:
 *   rotating it would replace the admin URL with a random value)
 * @returns `{ok: true, target}` or `{ok: false, reason}` (a sentence for a 400 answer)
 * @example
 * ```ts
 * const r = checkRotationTarget({ type: 'postgres', role: 'app_user', connectionSecret: 'db/admin-url' }, { secretName: 'db/app' });
 * if (r.ok) r.target.role; // 'app_user'
 * ```
 */
export function checkRotationTarget(value: unknown, opts: { readonly secretName?: string } = {}): TargetCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('rotation.target must be an object {"type":"postgres","role","connectionSecret"}');
  }
  const obj = value as Record<string, unknown>;
  const type = obj['type'];
  if (type !== 'postgres') {
    const got = typeof type === 'string' ? quote(type) : 'missing or not a string';
    return fail(`rotation.target.type must be "postgres" (the only target type), got ${got}`);
  }
  for (const k of Object.keys(obj)) {
    if (!TARGET_KEYS.includes(k)) return fail(`rotation.target has an unknown field ${quote(k)} (allowed: ${TARGET_KEYS.join(', ')})`);
  }
  const role = obj['role'];
  const roleCheck = checkPostgresRole(role);
  if (!roleCheck.ok || typeof role !== 'string') return fail(`rotation.target.role: ${roleCheck.ok ? 'must be a string' : roleCheck.reason}`);
  const conn = obj['connectionSecret'];
  const name = checkSecretName(conn);
  if (!name.ok || typeof conn !== 'string') return fail(`rotation.target.connectionSecret: ${name.ok ? 'must be a string' : name.reason}`);
  if (opts.secretName !== undefined && conn === opts.secretName) {
    return fail('rotation.target.connectionSecret must name another secret: rotating a secret would replace its own admin connection URL');
  }
  return { ok: true, target: { type: 'postgres', role, connectionSecret: conn } };
}

/**
 * Prefix of a stored target. Before targets were objects the API stored any string as a target
 * (never run, and set without the `secret.read` check on a connection secret): such a string, even
 * one that happens to be target JSON, never decodes as a target, so it is never run.
 */
export const ROTATION_TARGET_PREFIX = 'coffer-target:v1:';

/**
 * The canonical stored form of a target (prefix + JSON in a fixed key order), for a state that
 * keeps it as a string.
 *
 * @param target - a checked target
 * @returns its stored text
 */
export function encodeRotationTarget(target: RotationTarget): string {
  return ROTATION_TARGET_PREFIX + JSON.stringify({ type: target.type, role: target.role, connectionSecret: target.connectionSecret });
}

/**
 * Reads a stored target string back. Strings written before targets were objects are not JSON
 * targets: they come back as `null` (stored and reported, never run).
 *
 * @param stored - the stored text
 * @returns the target, or `null` when the text is not a valid target
 */
export function decodeRotationTarget(stored: string): RotationTarget | null {
  if (!stored.startsWith(ROTATION_TARGET_PREFIX)) return null;
  let v: unknown;
  try {
    v = JSON.parse(stored.slice(ROTATION_TARGET_PREFIX.length));
  } catch {
    return null;
  }
  const r = checkRotationTarget(v);
  return r.ok ? r.target : null;
}

function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is replaced whole.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('[redacted]');
  return out.length > 500 ? `${out.slice(0, 500)}…` : out;
}

class Deadline {
  #timer: NodeJS.Timeout | undefined;
  readonly promise: Promise<never>;

  constructor(ms: number, makeError: () => Error) {
    this.promise = new Promise<never>((_, reject) => {
      this.#timer = setTimeout(() => reject(makeError()), ms);
    });
    // Whoever loses the race, this rejection is never unhandled.
    this.promise.catch(() => undefined);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

async function race<T>(work: Promise<T>, ms: number, makeError: () => Error): Promise<T> {
  const d = new Deadline(ms, makeError);
  try {
    return await Promise.race([work, d.promise]);
  } finally {
    d.clear();
  }
}

async function closeQuietly(client: Client): Promise<void> {
  // end() destroys the socket when a query is still running; bound it anyway.
  await race(client.end(), 2_000, () => new Error('close timed out')).catch(() => undefined);
}

/**
 * Sets a PostgreSQL role's password: connects with the admin URL and runs
 * `ALTER ROLE <role> WITH PASSWORD '<SCRAM-SHA-256 verifier>'`.
 *
 * The admin needs `CREATEROLE` (PostgreSQL 15; 16+ also needs ADMIN OPTION on the role) or to be
 * the role itself; a superuser role's password needs a superuser admin.
 *
 * Timing: connecting is bounded by `timeoutMs`; the statement by `timeoutMs` on the server
 * (`statement_timeout`, `lock_timeout`: the statement is cancelled and nothing changes) and
 * `timeoutMs` + 1 s on the client (then the outcome is unknown: `applied: 'unknown'`).
 *
 * @param opts - admin URL, role, new password, timeout
 * @returns when PostgreSQL has committed the new password
 * @throws {NODE_ROTATION_TARGET_INVALID} bad role name or connection URL (checked before connecting)
 * @throws {NODE_ROTATION_TARGET_UNREACHABLE} connection or admin login failed (`applied: 'no'`), or
 *   the connection broke during the statement (`applied: 'unknown'`)
 * @throws {NODE_ROTATION_TARGET_REFUSED} PostgreSQL refused the statement (`targetCode` = SQLSTATE,
 *   e.g. `42501` no privilege, `42704` unknown role); nothing changed
 * @throws {NODE_ROTATION_TARGET_TIMEOUT} no answer in time
 * @throws {RangeError} a password outside printable ASCII, or a bad `timeoutMs` (programmer errors)
 * @example
 * ```ts
 * await setPostgresPassword({ connectionUrl: adminUrl, role: 'app_user', password: fresh, timeoutMs: 5000 });
 * ```
 */
export async function setPostgresPassword(opts: SetPostgresPasswordOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TARGET_TIMEOUT_MS;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > MAX_TARGET_TIMEOUT_MS) {
    throw new RangeError(`timeoutMs must be an integer from 1 to ${MAX_TARGET_TIMEOUT_MS}`);
  }
  const roleCheck = checkPostgresRole(opts.role);
  if (!roleCheck.ok) throw new RotationTargetError('NODE_ROTATION_TARGET_INVALID', roleCheck.reason);
  const url = inspectUrl(opts.connectionUrl);
  if (!url.ok) throw new RotationTargetError('NODE_ROTATION_TARGET_INVALID', `cannot set the password of PostgreSQL role ${quote(opts.role)}: ${url.reason}`);
  const verifier = (await scramSha256Verifier(opts.password)).text;
  const secrets = [...url.secrets, opts.password, verifier];
  const who = `PostgreSQL role ${quote(opts.role)}`;

  const client = new Client({
    connectionString: opts.connectionUrl,
    // pg's own connect timeout only backs ours up (it tears the socket down if ours lost the race).
    connectionTimeoutMillis: timeoutMs + 1_000,
    statement_timeout: timeoutMs,
    lock_timeout: timeoutMs,
    application_name: POSTGRES_APPLICATION_NAME,
  });
  // A connection error while no query is pending is emitted as 'error': without a listener it
  // would crash the process. The pending connect/query reports it to us anyway.
  client.on('error', () => undefined);
  let phase: 'connect' | 'statement' = 'connect';
  try {
    await race(client.connect(), timeoutMs, () => new RotationTargetError('NODE_ROTATION_TARGET_TIMEOUT', `cannot set the password of ${who}: PostgreSQL did not accept a connection within ${timeoutMs} ms`));
    phase = 'statement';
    const sql = `ALTER ROLE ${escapeIdentifier(opts.role)} WITH PASSWORD ${escapeLiteral(verifier)}`;
    await race(client.query(sql), timeoutMs + 1_000, () =>
      new RotationTargetError('NODE_ROTATION_TARGET_TIMEOUT', `PostgreSQL did not answer ALTER ROLE for ${who} within ${timeoutMs + 1_000} ms; the new password may or may not be in force`, { applied: 'unknown' }),
    );
  } catch (err) {
    throw classify(err, phase, who, secrets);
  } finally {
    await closeQuietly(client);
  }
}

function classify(err: unknown, phase: 'connect' | 'statement', who: string, secrets: readonly string[]): RotationTargetError {
  if (err instanceof RotationTargetError) return err;
  if (err instanceof DatabaseError) {
    const sqlState = err.code ?? null;
    const detail = err.detail !== undefined && err.detail.length > 0 ? ` (${err.detail})` : '';
    const said = redact(`${err.message}${detail}${sqlState === null ? '' : ` [SQLSTATE ${sqlState}]`}`, secrets);
    if (phase === 'connect') {
      return new RotationTargetError('NODE_ROTATION_TARGET_UNREACHABLE', `cannot set the password of ${who}: the admin could not log in: ${said}`, { targetCode: sqlState });
    }
    // 57014 query_canceled (statement_timeout), 55P03 lock_not_available (lock_timeout): the
    // server cancelled the statement, so nothing changed.
    if (sqlState === '57014' || sqlState === '55P03') {
      return new RotationTargetError('NODE_ROTATION_TARGET_TIMEOUT', `PostgreSQL cancelled ALTER ROLE for ${who}: ${said}`, { targetCode: sqlState });
    }
    // Any error answer means the statement's implicit transaction rolled back.
    return new RotationTargetError('NODE_ROTATION_TARGET_REFUSED', `PostgreSQL refused ALTER ROLE for ${who}: ${said}`, { targetCode: sqlState });
  }
  const message = redact(err instanceof Error ? err.message : String(err), secrets);
  const applied: TargetOutcome = phase === 'connect' ? 'no' : 'unknown';
  const context = phase === 'connect' ? `cannot connect to PostgreSQL to set the password of ${who}` : `the connection to PostgreSQL broke during ALTER ROLE for ${who}; the new password may or may not be in force`;
  return new RotationTargetError('NODE_ROTATION_TARGET_UNREACHABLE', `${context}: ${message}`, { applied });
}
