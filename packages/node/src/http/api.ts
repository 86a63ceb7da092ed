/**
 * The client-facing HTTP API (CONTRACT.md, native routes). server.ts builds the NodeContext and
 * mounts the app this module returns.
 *
 * Request pipeline, in this order, on whichever node the request arrives at (ARCHITECTURE.md,
 * "Invariants of the request path"):
 * 1. The path is canonical or refused (400 `invalid_name`: no `.`/`..` segments, raw or
 *    percent-encoded, no empty interior segments); the route is matched and its parameter decoded
 *    once; what runs, what is authorised and what is audited is that decoded name.
 * 2. Client IP (`ctx.clientIp`: the socket's, a trusted proxy's `X-Forwarded-For`, or the signed
 *    original IP of a request a member forwarded — an unverifiable forward is 401, never a
 *    fallback), then by route kind:
 *    - token routes: lockout → token (`Authorization: Bearer` / `X-Vault-Token`) → sha256 →
 *      state → active? → name checks → RBAC → per-role rate limit;
 *    - allowlist routes (reads, batch, verify, metrics): the replicated read allowlist; verify also
 *      honours the lockout, since its mismatches count toward it;
 *    - public: health only.
 * 3. Only then is a body read (bounded; a refused request's body is never read and its connection
 *    is closed), and actions that depend on the body (`extraActions`) are checked.
 * 4. A write on a follower is forwarded to the leader now, to the canonical path, signed over
 *    exactly what is sent (method, path and query, body hash, client IP, time, sender); the leader
 *    authorises and audits it again with the original client IP.
 * 5. Every request that reaches step 2 appends audit records (denials included; every name it
 *    touches, in as many records as that takes) before the answer is sent; if the append fails the
 *    client gets 503 `audit_unavailable` instead.
 *
 * Hot routes (GET and PUT /v1/secrets/…, and Vault's GET/POST/PUT /v1/secret/data/…) skip
 * express's per-request set-up (prototype swaps, router walk): `app.handle` sends them straight to
 * the dispatcher, which only uses node's own request/response API. Everything else goes through express as one middleware.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { hashToken } from '@coffer/crypto';
import { tokenStatusAt, type TokenRecord } from '@coffer/state';
import express from 'express';
import type { AuditOutcome } from '../audit/audit-log.js';
import { ADMIN_ROLE_NAME, compileRole, isAllowed, missingGrant, validateRoleDocument, type Action, type CompiledRole } from '../auth/rbac.js';
import { formatDuration } from '../duration.js';
import { RoleRateLimiter } from '../auth/rate-limit.js';
import type { ReadAuthMode } from '../config.js';
import type { NodeContext, ReadConsistency } from '../context.js';
import { checkNodeId, checkRoleName, checkSecretName, checkTokenName, MAX_SECRET_NAME_BYTES, type NameCheck } from '../validate.js';
import { AccessCache } from '../service/access.js';
import { checkOrigin, ClusterService, health } from '../service/cluster.js';
import { iso } from '../service/common.js';
import { PolicyService, roleView } from '../service/roles.js';
import { MAX_BATCH_NAMES, SecretService, versionView, type OpenedSecret } from '../service/secrets.js';
import { TokenService, tokenView, type TokenLifetime } from '../service/tokens.js';
import { MAX_VALUE_BYTES, valueFields, valueFromBody } from '../service/values.js';
import { MAX_BODY_BYTES, MAX_RESTORE_BYTES, checkDeclaredLength, parseJsonObject, readBody } from './body.js';
import { ServiceError, errorHandler, sendServiceError, toServiceError } from './errors.js';
import { compilePattern, type Method, type Pattern } from './routes.js';
import { VAULT_PREFIX, checkFolder, isVaultList, registerVaultRoutes, sendVaultError } from './vault.js';

/** How a route is guarded. */
export type RouteAccess = 'public' | 'allowlist' | 'token' | 'anyToken';

/** What a handler answers. */
export interface Reply {
  readonly status: number;
  readonly json?: unknown;
  readonly raw?: { readonly data: Uint8Array | string; readonly contentType: string; readonly headers?: Record<string, string> };
  /** Runs after the answer is written (zeroize plaintext). */
  readonly after?: () => void;
}

/** One request in flight through the pipeline. */
export interface Call {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly query: URLSearchParams;
  /** Decoded route parameter ('' for exact routes). */
  param: string;
  ip: string | undefined;
  /** Authenticated token (token routes) or the token a reader presented, if valid. */
  token: Readonly<TokenRecord> | undefined;
  role: CompiledRole | undefined;
  /** What the audit line names as acted on. */
  resource: string | null;
  /** Further names acted on, each recorded in an audit line of its own (batch reads). */
  moreResources: readonly string[] | undefined;
  body: Record<string, unknown>;
  /** The body as received (every route with a body). */
  rawBody: Uint8Array | undefined;
}

/** A route of the API. */
export interface Route {
  readonly method: Method;
  readonly pattern: Pattern;
  readonly access: RouteAccess;
  /** RBAC action (token routes). */
  readonly action?: Action;
  /** What the audit line records (defaults to `action`). */
  readonly auditAction: string;
  /** Forwarded to the leader from followers. */
  readonly write: boolean;
  /**
   * A read a follower hands to the leader when it can (the leader's view is the accurate one,
   * e.g. replication progress), answering from its own state when no leader is reachable.
   */
  readonly preferLeader?: boolean;
  readonly body: 'none' | 'json' | 'optionalJson' | 'raw';
  /**
   * How the route parameter is checked. `folder` is a Vault KV v2 list path: a name prefix that
   * may end in `/` (or be empty); RBAC then only needs `secret.list` somewhere, names are filtered.
   */
  readonly param: 'none' | 'secret' | 'token' | 'role' | 'member' | 'folder';
  /** Errors in Vault's envelope (`{"errors": [...]}`) instead of the native one (KV v2 routes). */
  readonly vault?: boolean;
  /** Whether the lockout applies to an allowlist route (verify). */
  readonly lockout?: boolean;
  /**
   * Actions the body asks for beyond `action` (checked on the route's name once the body is read,
   * before the handler and before forwarding): one action, one permission, whatever the route.
   */
  readonly extraActions?: (body: Record<string, unknown>) => readonly Action[];
  /**
   * A secret read (get, batch, verify, Vault data read): authorised as COFFER_READ_AUTH says —
   * by address, by a token granting `secret.read` on the name, or both.
   */
  readonly secretRead?: boolean;
  /** The names a secret read reads from its body (batch), each checked for `secret.read`. */
  readonly readNames?: (body: Record<string, unknown>) => readonly string[];
  readonly handler: (call: Call) => Promise<Reply>;
}

/** What a route module passes to register one route (see vault.ts). */
export type RouteSpec = Omit<Route, 'pattern' | 'auditAction'> & { path: string; auditAction?: string };

/** A documented route: method and template (for docs/API.md and the sync test). */
export interface RouteInfo {
  readonly method: Method;
  readonly template: string;
  readonly access: RouteAccess;
  readonly action: string;
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const PREFIX_RE = /^[A-Za-z0-9._/-]*$/;
const DEFAULT_LIST_LIMIT = 1000;
const MAX_LIST_LIMIT = 10_000;
const DEFAULT_AUDIT_LIMIT = 100;
const MAX_AUDIT_LIMIT = 1000;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.setHeader('cache-control', 'no-store');
  res.end(text);
}

function nameOrThrow(check: NameCheck): void {
  if (!check.ok) throw new ServiceError('invalid_name', check.reason);
}

function field<T>(body: Record<string, unknown>, key: string, ok: (v: unknown) => v is T, what: string): T | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (!ok(v)) throw new ServiceError('invalid_request', `"${key}" must be ${what}`);
  return v;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function onlyKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw new ServiceError('invalid_request', `unknown field "${k}" (expected ${allowed.join(', ')})`);
  }
}

function versionsField(body: Record<string, unknown>): number[] {
  const v = body['versions'];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > 1000 || !v.every((n) => isNat(n) && n >= 1)) {
    throw new ServiceError('invalid_request', '"versions" must be an array of version numbers (>= 1)');
  }
  return v as number[];
}

function consistencyOf(query: URLSearchParams): ReadConsistency {
  const c = query.get('consistency');
  if (c === null || c === '' || c === 'linearizable') return 'linearizable';
  if (c === 'stale') return 'stale';
  throw new ServiceError('invalid_request', '"consistency" must be linearizable or stale');
}

function secretAnswer(s: OpenedSecret): Record<string, unknown> {
  return { name: s.name, version: s.version, ...valueFields(s.format, s.plaintext), createdAt: new Date(s.createdAt).toISOString() };
}

function presentedToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    if (m !== null) return m[1];
  }
  const vault = req.headers['x-vault-token'];
  const v = Array.isArray(vault) ? vault[0] : vault;
  return v !== undefined && v.trim() !== '' ? v.trim() : undefined;
}

/** Most characters of names one audit line records (the audit log's `resource` limit). */
const AUDIT_RESOURCE_CHARS = 1024;

/**
 * Splits names into comma-joined groups that each fit one audit line's resource; names hold no
 * commas, so a group reads back unambiguously.
 *
 * @param names - validated secret names (each at most 512 characters)
 * @returns the groups, in order
 */
export function auditGroups(names: readonly string[]): string[] {
  const groups: string[] = [];
  let cur = '';
  for (const n of names) {
    if (cur !== '' && cur.length + 1 + n.length > AUDIT_RESOURCE_CHARS) {
      groups.push(cur);
      cur = '';
    }
    cur = cur === '' ? n : `${cur},${n}`;
  }
  if (cur !== '') groups.push(cur);
  return groups;
}

function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'ok';
  return status === 401 || status === 403 || status === 429 ? 'denied' : 'error';
}

function clip(s: string | null | undefined, max: number): string | null {
  if (s === null || s === undefined) return null;
  return s.length > max ? s.slice(0, max) : s;
}

/**
 * Builds the API.
 *
 * @param ctx - the running node (everything the routes use)
 * @returns an express 5 app (etag and x-powered-by off, no global body parser)
 * @example
 * ```ts
 * const app = createApi(ctx);
 * http.createServer(app).listen(8200, '127.0.0.1');
 * ```
 */
export function createApi(ctx: NodeContext): express.Express {
  const access = new AccessCache();
  const limiter = new RoleRateLimiter(() => ctx.now());
  const secrets = new SecretService(ctx);
  const tokens = new TokenService(ctx);
  const policy = new PolicyService(ctx);
  const cluster = new ClusterService(ctx);
  const cfg = ctx.config;

  const routes: Route[] = [];
  const route = (r: RouteSpec): Route => {
    const { path, auditAction, ...rest } = r;
    const full: Route = { ...rest, pattern: compilePattern(path), auditAction: auditAction ?? r.action ?? 'none' };
    routes.push(full);
    return full;
  };
  const actor = (c: Call): string => c.token?.name ?? '-';

  /**
   * A caller may only mint or rotate a token whose role grants nothing the caller's own role does
   * not grant (admin covers every role), so `token.create` cannot be used to escalate.
   */
  const mayHandOut = (c: Call, roleName: string): void => {
    const target = access.role(ctx.state, roleName);
    if (target === undefined) return; // unknown role: the service answers; a role that does not compile grants nothing
    const mine = c.role;
    const missing = mine === undefined ? 'everything' : missingGrant(mine, target);
    if (missing !== undefined) {
      throw new ServiceError('permission_denied', `role "${roleName}" grants ${missing}, which your role "${c.token?.role ?? '-'}" does not; a token may only be given a role within the caller's own`);
    }
  };

  /** The lifetime cap of tokens of `roleName`: its `maxTtl`, never above COFFER_TOKEN_MAX_TTL. */
  const lifetimeOf = (roleName: string): TokenLifetime => {
    const cluster = ctx.config.tokenMaxTtlMs;
    const own = access.role(ctx.state, roleName)?.maxTtlMs;
    return own !== undefined && own < cluster
      ? { maxMs: own, source: `role "${roleName}" (maxTtl ${formatDuration(own / 1000)})` }
      : { maxMs: cluster, source: `the cluster (COFFER_TOKEN_MAX_TTL ${formatDuration(Math.floor(cluster / 1000))})` };
  };

  /**
   * Nobody grants what they do not hold: a role editor may only write (or delete) a role whose
   * every grant its own role covers, before and after the change, with a token lifetime no longer
   * than its own; `admin` stays immutable (the service refuses it).
   */
  const mayWriteRole = (c: Call, name: string, body: Record<string, unknown> | undefined): void => {
    const mine = c.role;
    const who = `your role "${c.token?.role ?? '-'}"`;
    if (mine === undefined) throw new ServiceError('permission_denied', `${who} grants nothing`);
    const current = name === ADMIN_ROLE_NAME ? undefined : access.role(ctx.state, name);
    const had = current === undefined ? undefined : missingGrant(mine, current);
    if (had !== undefined) throw new ServiceError('permission_denied', `role "${name}" grants ${had}, which ${who} does not; only a holder of everything a role grants may change it`);
    if (body === undefined || name === ADMIN_ROLE_NAME) return;
    const v = validateRoleDocument(body);
    if (!v.ok) return; // the service answers 400 naming every bad field
    const next = compileRole(name, v.role);
    const missing = missingGrant(mine, next);
    if (missing !== undefined) throw new ServiceError('permission_denied', `role "${name}" would grant ${missing}, which ${who} does not; a role may only be given grants within the editor's own`);
    const mineCap = lifetimeOf(c.token?.role ?? '').maxMs;
    if ((next.maxTtlMs ?? ctx.config.tokenMaxTtlMs) > mineCap) {
      throw new ServiceError('permission_denied', `role "${name}" would allow tokens to live longer than ${who} does; set "maxTtl" to at most ${formatDuration(Math.floor(mineCap / 1000))}`);
    }
  };

  // --- secrets -------------------------------------------------------------------------------

  const putSecret = route({
    method: 'PUT', path: '/v1/secrets/{name+}', access: 'token', action: 'secret.write', write: true, body: 'json', param: 'secret',
    handler: async (c) => {
      onlyKeys(c.body, ['value', 'valueBase64', 'format', 'username', 'password', 'cas', 'description', 'rotation']);
      const cas = field(c.body, 'cas', isNat, 'a version number (0: the secret must not exist)') ?? null;
      const description = field(c.body, 'description', (v): v is string => isStr(v) && v.length <= 1024, 'a string of at most 1024 characters') ?? null;
      let rotation = null;
      const rot = c.body['rotation'];
      if (rot !== undefined && rot !== null) {
        if (typeof rot !== 'object' || Array.isArray(rot)) throw new ServiceError('invalid_request', '"rotation" must be {"intervalSecs","graceSecs","target"?}');
        const r = rot as Record<string, unknown>;
        onlyKeys(r, ['intervalSecs', 'graceSecs', 'target']);
        const intervalSecs = field(r, 'intervalSecs', (v): v is number => isNat(v) && v >= 1, 'a whole number of seconds >= 1');
        if (intervalSecs === undefined) throw new ServiceError('invalid_request', '"rotation.intervalSecs" is required');
        const graceSecs = field(r, 'graceSecs', isNat, 'a whole number of seconds') ?? 0;
        const target = field(r, 'target', (v): v is string => isStr(v) && v.length > 0 && v.length <= 1024, 'a non-empty string of at most 1024 characters') ?? null;
        rotation = { intervalSecs, graceSecs, target };
      }
      const value = valueFromBody(c.body);
      const w = await secrets.write({ name: c.param, ...value, cas, description, rotation, actor: actor(c) });
      return { status: 200, json: { name: w.name, version: w.version, createdAt: new Date(w.createdAt).toISOString() } };
    },
  });

  const getSecret = route({
    method: 'GET', path: '/v1/secrets/{name+}', access: 'allowlist', auditAction: 'secret.read', write: false, body: 'none', param: 'secret', secretRead: true,
    handler: async (c) => {
      const vq = c.query.get('version');
      let version: number | undefined;
      if (vq !== null) {
        version = /^[1-9]\d{0,15}$/.test(vq) ? Number(vq) : NaN;
        if (!Number.isSafeInteger(version)) throw new ServiceError('invalid_request', '"version" must be a version number (>= 1)');
      }
      const s = await secrets.read(c.param, { version, consistency: consistencyOf(c.query) });
      return { status: 200, json: secretAnswer(s), after: () => s.plaintext.fill(0) };
    },
  });

  route({
    method: 'DELETE', path: '/v1/secrets/{name+}', access: 'token', action: 'secret.destroy', auditAction: 'secret.destroyAll', write: true, body: 'none', param: 'secret',
    handler: async (c) => ({ status: 200, json: { name: c.param, destroyed: await secrets.destroyAll(c.param, actor(c)) } }),
  });

  route({
    method: 'GET', path: '/v1/secrets', access: 'token', action: 'secret.list', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      const prefix = c.query.get('prefix') ?? '';
      if (Buffer.byteLength(prefix) > MAX_SECRET_NAME_BYTES || !PREFIX_RE.test(prefix)) {
        throw new ServiceError('invalid_name', 'prefix may contain only A-Z a-z 0-9 . _ - / and be at most 512 bytes');
      }
      c.resource = prefix;
      const limitText = c.query.get('limit');
      const limit = limitText === null ? DEFAULT_LIST_LIMIT : Number(limitText);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new ServiceError('invalid_request', `"limit" must be 1-${MAX_LIST_LIMIT}`);
      const after = c.query.get('after') ?? undefined;
      const role = c.role as CompiledRole;
      const page = await secrets.list(prefix, { limit, after, consistency: consistencyOf(c.query), allow: (n) => isAllowed(role, 'secret.list', n) });
      return {
        status: 200,
        json: {
          secrets: page.secrets.map((s) => ({ name: s.name, version: s.currentVersion, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt) })),
          next: page.next,
        },
      };
    },
  });

  route({
    method: 'POST', path: '/v1/batch/secrets', access: 'allowlist', auditAction: 'secret.read', write: false, body: 'json', param: 'none', secretRead: true,
    // Checked as names once validated in the handler's order: a bad entry is a 400 there.
    readNames: (body) => (Array.isArray(body['names']) ? (body['names'] as unknown[]).filter((n): n is string => typeof n === 'string' && checkSecretName(n).ok) : []),
    handler: async (c) => {
      onlyKeys(c.body, ['names']);
      const names = c.body['names'];
      if (!Array.isArray(names) || names.length === 0) throw new ServiceError('invalid_request', '"names" must be a non-empty array of secret names');
      if (names.length > MAX_BATCH_NAMES) throw new ServiceError('invalid_request', `a batch may name at most ${MAX_BATCH_NAMES} secrets`);
      for (const n of names) nameOrThrow(checkSecretName(n));
      // Every name is audited, however long the list: as many lines as it takes (never cut).
      const groups = auditGroups(names as string[]);
      c.resource = groups[0] ?? null;
      c.moreResources = groups.slice(1);
      const found = await secrets.readMany(names as string[], consistencyOf(c.query));
      return { status: 200, json: { secrets: found.map(secretAnswer) }, after: () => found.forEach((s) => s.plaintext.fill(0)) };
    },
  });

  route({
    method: 'POST', path: '/v1/verify/{name+}', access: 'allowlist', auditAction: 'secret.verify', write: false, body: 'json', param: 'secret', lockout: true, secretRead: true,
    handler: async (c) => {
      onlyKeys(c.body, ['value', 'valueBase64']);
      const v = c.body['value'];
      const b = c.body['valueBase64'];
      let candidate: Uint8Array;
      if (isStr(v) && b === undefined) candidate = new Uint8Array(Buffer.from(v, 'utf8'));
      else if (isStr(b) && v === undefined) candidate = new Uint8Array(Buffer.from(b, 'base64'));
      else throw new ServiceError('invalid_value', 'send "value" (or "valueBase64") to verify');
      if (candidate.length > MAX_VALUE_BYTES) throw new ServiceError('body_too_large', `secret values are limited to ${MAX_VALUE_BYTES} bytes`);
      const out = await secrets.verify(c.param, candidate, consistencyOf(c.query));
      if (!out.valid && c.ip !== undefined) countAuthFailure(c.ip);
      return { status: 200, json: { valid: out.valid, version: out.version } };
    },
  });

  route({
    method: 'POST', path: '/v1/rotate/{name+}', access: 'token', action: 'secret.rotate', write: true, body: 'optionalJson', param: 'secret',
    handler: async (c) => {
      onlyKeys(c.body, []);
      const w = await secrets.rotate(c.param, actor(c));
      return { status: 200, json: { name: w.name, version: w.version, createdAt: new Date(w.createdAt).toISOString() } };
    },
  });

  route({
    method: 'GET', path: '/v1/versions/{name+}', access: 'token', action: 'secret.list', auditAction: 'secret.versions', write: false, body: 'none', param: 'secret',
    handler: async (c) => {
      const s = await secrets.metadata(c.param, consistencyOf(c.query));
      return {
        status: 200,
        json: {
          name: s.name,
          currentVersion: s.currentVersion,
          maxVersions: s.maxVersions,
          casRequired: s.casRequired,
          description: s.description,
          rotation: s.rotation,
          createdAt: iso(s.createdAt),
          updatedAt: iso(s.updatedAt),
          versions: s.versions.map(versionView),
        },
      };
    },
  });

  for (const op of ['delete', 'undelete', 'destroy'] as const) {
    route({
      method: 'POST', path: `/v1/${op}/{name+}`, access: 'token', action: op === 'destroy' ? 'secret.destroy' : 'secret.delete', auditAction: `secret.${op}`,
      write: true, body: 'optionalJson', param: 'secret',
      handler: async (c) => {
        onlyKeys(c.body, ['versions']);
        const versions = versionsField(c.body);
        const count = await secrets.changeVersions(op, c.param, versions, actor(c));
        return { status: 200, json: { name: c.param, versions, changed: count } };
      },
    });
  }

  // --- tokens ----------------------------------------------------------------------------------

  route({
    method: 'POST', path: '/v1/tokens', access: 'token', action: 'token.create', write: true, body: 'json', param: 'none',
    handler: async (c) => {
      onlyKeys(c.body, ['name', 'role', 'ttl']);
      const name = c.body['name'];
      const role = c.body['role'];
      c.resource = isStr(name) ? clip(name, 128) : null;
      nameOrThrow(checkTokenName(name));
      nameOrThrow(checkRoleName(role));
      const ttl = field(c.body, 'ttl', isStr, 'a duration such as "90d", "12w" or "6m"');
      mayHandOut(c, role as string);
      const t = await tokens.create(name as string, role as string, ttl, actor(c), lifetimeOf(role as string));
      return { status: 200, json: t };
    },
  });

  route({
    method: 'GET', path: '/v1/tokens', access: 'token', action: 'token.read', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: { tokens: tokens.list() } };
    },
  });

  route({
    method: 'GET', path: '/v1/tokens/self', access: 'anyToken', auditAction: 'token.self', write: false, body: 'none', param: 'none',
    handler: async (c) => ({ status: 200, json: tokenView(c.token as TokenRecord, ctx.now()) }),
  });

  route({
    method: 'DELETE', path: '/v1/tokens/{name}', access: 'token', action: 'token.revoke', write: true, body: 'none', param: 'token',
    handler: async (c) => ({ status: 200, json: { name: c.param, revokedAt: await tokens.revoke(c.param, actor(c)) } }),
  });

  route({
    method: 'POST', path: '/v1/tokens/{name}/rotate', access: 'token', action: 'token.create', auditAction: 'token.rotate', write: true, body: 'optionalJson', param: 'token',
    handler: async (c) => {
      onlyKeys(c.body, ['ttl']);
      const ttl = field(c.body, 'ttl', isStr, 'a duration such as "90d", "12w" or "6m"');
      const rec = ctx.state.tokenByName(c.param);
      if (rec !== undefined) mayHandOut(c, rec.role);
      const life = lifetimeOf(rec?.role ?? '');
      return { status: 200, json: await tokens.rotate(c.param, ttl, actor(c), life, c.token?.name === c.param) };
    },
  });

  // --- roles and allowlist -----------------------------------------------------------------------

  route({
    method: 'GET', path: '/v1/roles', access: 'token', action: 'role.read', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: { roles: ctx.state.listRoles().map((r) => roleView(ctx, r.name)) } };
    },
  });

  route({
    method: 'GET', path: '/v1/roles/{name}', access: 'token', action: 'role.read', write: false, body: 'none', param: 'role',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      const view = roleView(ctx, c.param);
      if (view === undefined) throw new ServiceError('not_found', `no role named "${c.param}"`);
      return { status: 200, json: view };
    },
  });

  route({
    method: 'PUT', path: '/v1/roles/{name}', access: 'token', action: 'role.write', write: true, body: 'json', param: 'role',
    handler: async (c) => {
      mayWriteRole(c, c.param, c.body);
      const doc = await policy.putRole(c.param, c.body, actor(c));
      return { status: 200, json: { name: c.param, ...doc } };
    },
  });

  route({
    method: 'DELETE', path: '/v1/roles/{name}', access: 'token', action: 'role.write', auditAction: 'role.delete', write: true, body: 'none', param: 'role',
    handler: async (c) => {
      mayWriteRole(c, c.param, undefined);
      await policy.deleteRole(c.param, actor(c));
      return { status: 200, json: { name: c.param, deleted: true } };
    },
  });

  route({
    method: 'GET', path: '/v1/allowlist', access: 'token', action: 'allowlist.read', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: { cidrs: [...ctx.state.getAllowlist()] } };
    },
  });

  route({
    method: 'PUT', path: '/v1/allowlist', access: 'token', action: 'allowlist.write', write: true, body: 'json', param: 'none',
    handler: async (c) => {
      onlyKeys(c.body, ['cidrs']);
      return { status: 200, json: { cidrs: await policy.setAllowlist(c.body['cidrs'], actor(c)) } };
    },
  });

  // --- KMS -----------------------------------------------------------------------------------------

  route({
    method: 'POST', path: '/v1/admin/kms/rewrap', access: 'token', action: 'kms.rewrap', write: true, body: 'optionalJson', param: 'none',
    handler: async () => {
      if (!ctx.requestRewrapPass()) {
        throw new ServiceError('invalid_request', 'the re-wrap worker is disabled on this cluster (COFFER_KMS_REWRAP_ENABLED=false)');
      }
      return { status: 202, json: { accepted: true } };
    },
  });

  route({
    method: 'GET', path: '/v1/admin/kms/rewrap/status', access: 'token', action: 'kms.rewrap', auditAction: 'kms.rewrap.status', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: cluster.rewrapStatus() };
    },
  });

  // --- cluster ---------------------------------------------------------------------------------------

  route({
    method: 'GET', path: '/v1/cluster', access: 'token', action: 'cluster.read', write: false, body: 'none', param: 'none',
    preferLeader: true,
    handler: async () => ({ status: 200, json: cluster.status() }),
  });

  route({
    method: 'POST', path: '/v1/cluster/members', access: 'token', action: 'cluster.manage', auditAction: 'cluster.member.add', write: true, body: 'json', param: 'none',
    handler: async (c) => {
      onlyKeys(c.body, ['id', 'raftAddr', 'apiAddr']);
      const id = c.body['id'];
      c.resource = isStr(id) ? clip(id, 128) : null;
      nameOrThrow(checkNodeId(id));
      const raftAddr = checkOrigin('raftAddr', c.body['raftAddr']);
      const apiAddr = checkOrigin('apiAddr', c.body['apiAddr']);
      if (cluster.isMember(id as string)) throw new ServiceError('already_exists', `member "${id as string}" is already in the cluster`);
      await ctx.addMember(id as string, raftAddr, apiAddr);
      return { status: 200, json: { id, raftAddr, apiAddr, suffrage: 'learner' } };
    },
  });

  route({
    method: 'DELETE', path: '/v1/cluster/members/{id}', access: 'token', action: 'cluster.manage', auditAction: 'cluster.member.remove', write: true, body: 'none', param: 'member',
    handler: async (c) => {
      if (!cluster.isMember(c.param)) throw new ServiceError('not_found', `no member "${c.param}"`);
      await ctx.removeMember(c.param);
      return { status: 200, json: { id: c.param, removed: true } };
    },
  });

  route({
    method: 'POST', path: '/v1/cluster/leader/transfer', access: 'token', action: 'cluster.manage', auditAction: 'cluster.transfer', write: true, body: 'optionalJson', param: 'none',
    handler: async (c) => {
      onlyKeys(c.body, ['to']);
      const to = field(c.body, 'to', isStr, 'a member id');
      if (to !== undefined) {
        c.resource = clip(to, 128);
        if (!ctx.confState().voters.includes(to)) throw new ServiceError('invalid_request', `"${to}" is not a voting member`);
      }
      const leader = await ctx.transferLeadership(to);
      return { status: 200, json: { leader } };
    },
  });

  route({
    method: 'GET', path: '/v1/cluster/snapshot', access: 'token', action: 'cluster.manage', auditAction: 'cluster.snapshot', write: false, body: 'none', param: 'none',
    handler: async () => {
      await ctx.readBarrier('linearizable');
      const snap = await ctx.snapshot();
      return {
        status: 200,
        raw: {
          data: snap.data,
          contentType: 'application/octet-stream',
          headers: {
            'content-disposition': `attachment; filename="coffer-${snap.index}.snap"`,
            'x-coffer-snapshot-index': String(snap.index),
            'x-coffer-snapshot-term': String(snap.term),
          },
        },
      };
    },
  });

  route({
    method: 'POST', path: '/v1/cluster/restore', access: 'token', action: 'cluster.manage', auditAction: 'cluster.restore', write: true, body: 'raw', param: 'none',
    handler: async (c) => ({ status: 200, json: { restored: true, secrets: await cluster.restore(c.rawBody ?? new Uint8Array(0)) } }),
  });

  // --- audit -------------------------------------------------------------------------------------------

  route({
    method: 'GET', path: '/v1/audit', access: 'token', action: 'audit.read', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      const num = (key: string, dflt: number, min: number, max: number): number => {
        const v = c.query.get(key);
        if (v === null || v === '') return dflt;
        const n = /^\d{1,15}$/.test(v) ? Number(v) : NaN;
        if (!(n >= min && n <= max)) throw new ServiceError('invalid_request', `"${key}" must be a whole number from ${min} to ${max}`);
        return n;
      };
      const since = num('since', 1, 1, Number.MAX_SAFE_INTEGER);
      const limit = num('limit', DEFAULT_AUDIT_LIMIT, 1, MAX_AUDIT_LIMIT);
      c.resource = `since=${since}`;
      const page = await ctx.audit.read(since, limit);
      return { status: 200, json: { node: ctx.config.nodeId, head: ctx.audit.head().seq, records: page.records, next: page.next } };
    },
  });

  // --- Vault KV v2 (mount `secret`) ------------------------------------------------------------------

  const vaultHot = registerVaultRoutes(route, { ctx, secrets, actor });

  // --- health and metrics ------------------------------------------------------------------------------

  route({
    method: 'GET', path: '/v1/sys/health', access: 'public', auditAction: 'sys.health', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      const h = health(ctx, c.query.get('standbyok') === 'true');
      // Vault's overrides: ?activecode=n answers n instead of 200 on the leader, ?standbycode=n
      // instead of 429 on a follower.
      const code = (key: string): number | undefined => {
        const v = c.query.get(key);
        if (v === null || v === '') return undefined;
        const n = /^\d{3}$/.test(v) ? Number(v) : NaN;
        if (!(n >= 200 && n <= 599)) throw new ServiceError('invalid_request', `"${key}" must be an HTTP status code (200-599)`);
        return n;
      };
      const active = code('activecode');
      const standby = code('standbycode');
      let status = h.status;
      if (status === 200 && !h.body.standby && active !== undefined) status = active;
      else if (status === 429 && standby !== undefined) status = standby;
      return { status, json: h.body };
    },
  });

  route({
    method: 'GET', path: '/metrics', access: 'allowlist', auditAction: 'metrics.read', write: false, body: 'none', param: 'none',
    handler: async () => ({ status: 200, raw: { data: await ctx.metrics.registry.metrics(), contentType: ctx.metrics.registry.contentType } }),
  });

  // --- pipeline -----------------------------------------------------------------------------------------

  const lockout = ctx.lockout;

  function countAuthFailure(ip: string): void {
    ctx.metrics.authFailures.inc();
    lockout.fail(ip);
  }

  function checkLockout(ip: string | undefined): void {
    if (ip === undefined || !lockout.enabled) return;
    const lock = lockout.check(ip);
    if (lock.locked) {
      throw new ServiceError('locked_out', 'too many failed authentications from this address; try again later', { retryAfterSecs: Math.ceil(lock.retryAfterMs / 1000) });
    }
  }

  function lookupToken(raw: string): Readonly<TokenRecord> | undefined {
    const t = ctx.state.tokenByHash(hashToken(raw));
    return t !== undefined && tokenStatusAt(t, ctx.now()) === 'active' ? t : undefined;
  }

  function decodeParam(r: Route, call: Call, raw: string): void {
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw new ServiceError('invalid_name', 'the name in the path is not valid percent-encoding');
    }
    call.param = decoded;
    call.resource = clip(decoded, 1024);
    if (r.param === 'secret') nameOrThrow(checkSecretName(decoded));
    else if (r.param === 'token') nameOrThrow(checkTokenName(decoded));
    else if (r.param === 'role') nameOrThrow(checkRoleName(decoded));
    else if (r.param === 'member') nameOrThrow(checkNodeId(decoded));
    else if (r.param === 'folder') call.param = checkFolder(decoded);
  }

  /** A learner (joined, not yet promoted) or a node still waiting to be added. */
  function catchingUp(): boolean {
    const cs = ctx.confState();
    const id = ctx.config.nodeId;
    if (cs.voters.includes(id)) return false;
    return cs.learners.includes(id) || !ctx.isRemoved();
  }

  function requireAction(call: Call, action: Action): void {
    requireActionOn(call, action, call.param);
  }

  function requireActionOn(call: Call, action: Action, name: string): void {
    const role = call.role;
    const onName = name !== '';
    const allowed = role !== undefined && (onName ? isAllowed(role, action, name) : action === 'secret.list' ? role.grants.has('secret.list') : isAllowed(role, action));
    if (!allowed) throw new ServiceError('permission_denied', `role "${call.token?.role ?? '-'}" does not allow ${action}${onName ? ` on "${name}"` : ''}`);
  }

  /** How a secret read on `r` is authorised (COFFER_READ_AUTH); other allowlist routes: by address. */
  const readModeOf = (r: Route): ReadAuthMode => (r.secretRead === true ? cfg.readAuth : 'allowlist');

  async function authorize(r: Route, call: Call, rawParam: string): Promise<void> {
    const raw = presentedToken(call.req);
    if (r.access === 'allowlist') {
      if (r.lockout === true) checkLockout(call.ip);
      const mode = readModeOf(r);
      if (r.param !== 'none') decodeParam(r, call, rawParam);
      if (mode !== 'token' && !access.readAllowlist(ctx.state).allows(call.ip)) {
        throw new ServiceError('not_allowlisted', 'this client address is not on the read allowlist');
      }
      if (mode === 'allowlist') {
        // A token is only used to name the reader in the audit.
        if (raw !== undefined) call.token = lookupToken(raw);
        return;
      }
      // COFFER_READ_AUTH token/both: a token whose role grants secret.read on every name read.
      if (r.lockout !== true) checkLockout(call.ip);
      await authenticate(call, raw);
      if (r.param === 'secret') requireAction(call, 'secret.read');
      takeRate(call);
      return;
    }
    checkLockout(call.ip);
    await authenticate(call, raw);
    if (r.param !== 'none') decodeParam(r, call, rawParam);
    if (r.access === 'token') {
      const action = r.action as Action;
      if (r.param === 'secret') requireAction(call, action);
      else {
        const role = call.role;
        const allowed = role !== undefined && (action === 'secret.list' ? role.grants.has('secret.list') : isAllowed(role, action));
        if (!allowed) throw new ServiceError('permission_denied', `role "${call.token?.role ?? '-'}" does not allow ${action}`);
      }
    }
    takeRate(call);
  }

  /** The presented token, active: sets `call.token` and `call.role`, or refuses (counted toward lockout). */
  async function authenticate(call: Call, raw: string | undefined): Promise<void> {
    if (raw === undefined) throw new ServiceError('missing_token', 'send a token in "Authorization: Bearer <token>" or "X-Vault-Token"');
    let token = lookupToken(raw);
    if (token === undefined && ctx.state.tokenByHash(hashToken(raw)) === undefined) {
      // Unknown here may just mean "not applied here yet" (a token minted a moment ago through
      // the leader): catch up to the cluster's commit index once before refusing, so a new token
      // works on every node as soon as its creation was acknowledged. Meanwhile the request holds
      // a failure slot, so parallel guesses cannot all pass the lockout check during the wait.
      const release = call.ip === undefined ? () => undefined : lockout.hold(call.ip);
      if (release === null) throw new ServiceError('locked_out', 'too many failed authentications from this address; try again later', { retryAfterSecs: 1 });
      try {
        await ctx.readBarrier('linearizable');
        token = lookupToken(raw);
      } catch {
        // no quorum: answer from what this node knows
      } finally {
        release();
      }
    }
    if (token === undefined) {
      if (call.ip !== undefined) countAuthFailure(call.ip);
      throw new ServiceError('invalid_token', 'the token is unknown, expired or revoked');
    }
    call.token = token;
    call.role = access.role(ctx.state, token.role);
  }

  function takeRate(call: Call): void {
    const token = call.token as Readonly<TokenRecord>;
    const rate = limiter.take(token.role, call.role?.rateLimit);
    if (!rate.allowed) {
      ctx.metrics.rateLimited.inc();
      throw new ServiceError('rate_limited', `role "${token.role}" is over its rate limit`, { retryAfterSecs: rate.retryAfterSecs });
    }
  }

  const bodyLimit = (r: Route): number => (r.body === 'raw' ? MAX_RESTORE_BYTES : MAX_BODY_BYTES);

  /** Reads the body of an authorised request, checks it came unaltered if forwarded, parses it. */
  async function readBodyFor(r: Route, call: Call): Promise<void> {
    if (r.body === 'none') return;
    const raw = await readBody(call.req, bodyLimit(r));
    ctx.checkForwardedBody(call.req, raw);
    call.rawBody = raw;
    if (r.body !== 'raw') call.body = parseJsonObject(raw, r.body === 'optionalJson');
    if (r.extraActions !== undefined) for (const a of r.extraActions(call.body)) requireAction(call, a);
    if (r.readNames !== undefined && readModeOf(r) !== 'allowlist') {
      for (const name of r.readNames(call.body)) requireActionOn(call, 'secret.read', name);
    }
  }

  /**
   * The path a follower forwards to: the route's template with the decoded, validated parameter
   * encoded again, and the query as received. The leader matches exactly this, so what was
   * authorised here is what runs there.
   */
  function canonicalTarget(r: Route, call: Call, query: string): string {
    const t = r.pattern.template;
    const open = t.indexOf('{');
    let path = t;
    if (open !== -1) {
      const close = t.indexOf('}', open);
      const encoded = call.param.split('/').map(encodeURIComponent).join('/');
      path = t.slice(0, open) + encoded + t.slice(close + 1);
    }
    return query === '' ? path : `${path}?${query}`;
  }

  function send(call: Call, reply: Reply): void {
    const res = call.res;
    if (reply.raw !== undefined) {
      const data = reply.raw.data;
      res.statusCode = reply.status;
      res.setHeader('content-type', reply.raw.contentType);
      res.setHeader('content-length', typeof data === 'string' ? Buffer.byteLength(data) : data.length);
      res.setHeader('cache-control', 'no-store');
      for (const [k, v] of Object.entries(reply.raw.headers ?? {})) res.setHeader(k, v);
      res.end(data);
    } else sendJson(res, reply.status, reply.json);
  }

  function auditOne(action: string, call: Call, resource: string | null, status: number): Promise<void> {
    return ctx.audit.append({
      requestId: call.requestId,
      actor: call.token?.name ?? '-',
      clientIp: clip(call.ip ?? null, 64),
      action,
      resource,
      outcome: outcomeOf(status),
      status,
    });
  }

  /** One record per resource group: every name the request touched is in some line. */
  async function audit(r: Route, call: Call, status: number): Promise<void> {
    const more = call.moreResources !== undefined && status < 400 ? call.moreResources : [];
    await Promise.all([auditOne(r.auditAction, call, call.resource, status), ...more.map((m) => auditOne(r.auditAction, call, m, status))]);
  }

  /** Denials of a locked-out address: one line per window, plus a count of those left out. */
  async function auditDenial(r: Route, call: Call, se: ServiceError): Promise<void> {
    if (se.code === 'locked_out' && call.ip !== undefined) {
      const v = lockout.auditLocked(call.ip);
      if (v.suppressed > 0) await auditOne('auth.lockout.suppressed', call, `${v.suppressed} denied requests from this address were not audited singly`, 429);
      if (!v.audit) return;
    }
    await audit(r, call, se.status);
  }

  async function run(r: Route, rawParam: string, req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    const started = performance.now();
    const header = req.headers['x-request-id'];
    const given = Array.isArray(header) ? header[0] : header;
    const requestId = given !== undefined && REQUEST_ID_RE.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', requestId);
    const call: Call = {
      req, res, requestId, query: new URLSearchParams(query), param: '', ip: undefined, token: undefined, role: undefined,
      resource: null, moreResources: undefined, body: {}, rawBody: undefined,
    };
    let audited = false;
    let reply: Reply | undefined;
    try {
      if (r.access !== 'public' && ctx.isRemoved()) {
        throw new ServiceError('removed', 'this node was removed from the cluster and no longer serves; use another member', { retryAfterSecs: 1 });
      }
      audited = r.access !== 'public';
      call.ip = ctx.clientIp(req);
      if (r.access === 'public') {
        reply = await r.handler(call);
        send(call, reply);
        return;
      }
      if (catchingUp()) {
        // A node that joined and has not caught up yet holds no (or old) tokens and allowlist:
        // answering from them would refuse valid clients with 401/403. Send them elsewhere.
        audited = false;
        throw new ServiceError('no_leader', 'this node is still catching up with the cluster; retry on another node', { retryAfterSecs: 1 });
      }
      if (r.body !== 'none') checkDeclaredLength(req, bodyLimit(r));
      await authorize(r, call, rawParam);
      await readBodyFor(r, call);
      const forwarded = req.headers['x-coffer-forwarded-ip'] !== undefined;
      if (r.write && !ctx.isLeader()) {
        // Authorised here on the canonical request; the leader checks and audits it again.
        audited = false;
        await ctx.forwardToLeader(req, res, { path: canonicalTarget(r, call, query), body: r.body === 'none' ? undefined : call.rawBody });
        return;
      }
      if (r.preferLeader === true && !ctx.isLeader() && !forwarded && ctx.leaderApiAddr() !== undefined) {
        try {
          await ctx.forwardToLeader(req, res, { path: canonicalTarget(r, call, query), body: undefined });
          return;
        } catch (err) {
          // Nothing was sent yet when forwarding fails: answer from this node's own view.
          if (res.headersSent) throw err;
        }
      }
      reply = await r.handler(call);
      await audit(r, call, reply.status).catch((err: unknown) => {
        throw new ServiceError('audit_unavailable', 'the audit log cannot be written; request refused', { retryAfterSecs: 1, cause: err });
      });
      send(call, reply);
    } catch (err) {
      let se = toServiceError(err);
      if (se.code === 'internal') ctx.logger.error({ err, requestId, route: r.pattern.template }, 'request failed');
      const sendError = r.vault === true ? sendVaultError : sendServiceError;
      if (audited && se.code !== 'audit_unavailable') {
        try {
          await auditDenial(r, call, se);
        } catch (auditErr) {
          se = new ServiceError('audit_unavailable', 'the audit log cannot be written; request refused', { retryAfterSecs: 1, cause: auditErr });
        }
      }
      if (res.headersSent) res.destroy();
      else {
        // A body nobody read stays unread: close the connection instead of draining it.
        if (r.body !== 'none' && !req.complete) res.setHeader('connection', 'close');
        sendError(res, se, requestId);
      }
    } finally {
      reply?.after?.();
      const status = String(res.statusCode);
      ctx.metrics.httpRequests.inc({ method: r.method, route: r.pattern.template, status, token: call.token?.name ?? '' });
      ctx.metrics.httpDuration.observe({ method: r.method, route: r.pattern.template }, (performance.now() - started) / 1000);
    }
  }

  /** Refuses a path that is not in canonical form; see the module comment (step 1). */
  function checkCanonical(path: string): void {
    if (!path.includes('/.') && !path.includes('//') && !path.includes('%')) return;
    const segments = path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const raw = segments[i] as string;
      if (raw === '') {
        if (i === segments.length - 1) continue; // a trailing slash (Vault's LIST paths)
        throw new ServiceError('invalid_name', 'the path has an empty segment ("//")');
      }
      let seg: string;
      try {
        seg = decodeURIComponent(raw);
      } catch {
        throw new ServiceError('invalid_name', 'the path is not valid percent-encoding');
      }
      if (seg === '.' || seg === '..') throw new ServiceError('invalid_name', `the path has a "${seg}" segment; send the canonical path`);
    }
  }

  function refuse(req: IncomingMessage, res: ServerResponse, vault: boolean, err: ServiceError): Promise<void> {
    const requestId = randomUUID();
    res.setHeader('x-request-id', requestId);
    if (req.method !== 'GET' && req.method !== 'HEAD' && !req.complete) res.setHeader('connection', 'close');
    (vault ? sendVaultError : sendServiceError)(res, err, requestId);
    return Promise.resolve();
  }

  /** Finds the route and runs it; 400 `invalid_name` for a non-canonical path, 404 / 405 otherwise. */
  function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q + 1);
    const vault = path.startsWith(VAULT_PREFIX);
    try {
      checkCanonical(path);
    } catch (err) {
      return refuse(req, res, vault, err as ServiceError);
    }
    // Vault's `GET …?list=true` is its LIST method (which the LIST rewrite in list-method.ts also becomes).
    const method = vault && req.method === 'GET' && isVaultList(query) ? 'LIST' : req.method;
    let allow: Method[] | undefined;
    for (const r of routes) {
      const p = r.pattern.match(path);
      if (p === null) continue;
      if (r.method === method) return run(r, p, req, res, query);
      (allow ??= []).push(r.method);
    }
    if (allow !== undefined) {
      res.setHeader('allow', allow.join(', '));
      return refuse(req, res, vault, new ServiceError('method_not_allowed', `${method ?? '?'} is not allowed here (allowed: ${allow.join(', ')})`));
    }
    return refuse(req, res, vault, new ServiceError('not_found', 'no such route'));
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use((req, res, next) => {
    dispatch(req, res).catch(next);
  });
  app.use(errorHandler({ onInternal: (err, id) => ctx.logger.error({ err, requestId: id }, 'request failed') }));

  // Hot routes bypass express's per-request set-up; see the module comment.
  const expressHandle = (app as unknown as { handle: (req: IncomingMessage, res: ServerResponse, next?: unknown) => void }).handle.bind(app);
  const HOT = '/v1/secrets/';
  const HOT_VAULT = '/v1/secret/data/';
  (app as unknown as { handle: unknown }).handle = (req: IncomingMessage, res: ServerResponse, next?: unknown): void => {
    const url = req.url;
    let r: Route | undefined;
    if (url === undefined) r = undefined;
    else if (url.startsWith(HOT)) r = req.method === 'GET' ? getSecret : req.method === 'PUT' ? putSecret : undefined;
    else if (url.startsWith(HOT_VAULT)) r = req.method === 'GET' ? vaultHot.GET : req.method === 'POST' ? vaultHot.POST : req.method === 'PUT' ? vaultHot.PUT : undefined;
    if (r !== undefined && url !== undefined) {
      const hot = r;
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      const p = hot.pattern.match(path);
      if (p !== null && !path.includes('/.') && !path.includes('//') && !path.includes('%2')) {
        run(hot, p, req, res, q === -1 ? '' : url.slice(q + 1)).catch((err: unknown) => {
          ctx.logger.error({ err }, 'request failed');
          if (!res.headersSent) (hot.vault === true ? sendVaultError : sendServiceError)(res, toServiceError(err), 'unknown');
        });
        return;
      }
    }
    expressHandle(req, res, next);
  };
  (app as unknown as { locals: Record<string, unknown> }).locals['routes'] = listRoutes(routes);
  return app;
}

function listRoutes(routes: readonly Route[]): RouteInfo[] {
  return routes.map((r) => ({ method: r.method, template: r.pattern.template, access: r.access, action: r.action ?? r.auditAction }));
}

/**
 * Every route the API mounts, native and Vault KV v2 (method, template, guard, action), in
 * registration order.
 * docs/API.md documents exactly these; a test keeps the two in sync.
 *
 * @param app - an app from {@link createApi}
 * @returns the routes
 */
export function apiRoutes(app: express.Express): readonly RouteInfo[] {
  return (app.locals as Record<string, unknown>)['routes'] as RouteInfo[];
}
