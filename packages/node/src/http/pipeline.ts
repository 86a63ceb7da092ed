/**
 * The request pipeline: one function from a request to an answer, for every route of the API.
 * Routes declare their security (http/route.ts); this module enforces it before any handler runs.
 *
 * Steps, in this order, on whichever node the request arrives at (ARCHITECTURE.md,
 * "Invariants of the request path"):
 * 0. A sealed node (COFFER_SEAL=shamir) answers 503 `sealed` to every route not declared
 *    `whileSealed` (health, init, unseal, seal-status) before anything else: it holds no key, and
 *    nothing it holds is served or forwarded (not even a stale read).
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
 *    - public: health and Vault's mount discovery.
 * 3. Only then is a body read (bounded; a refused request's body is never read and its connection
 *    is closed), and actions that depend on the body (`extraActions`) are checked.
 * 4. A write on a follower is forwarded to the leader now, to the canonical path, signed over
 *    exactly what is sent (method, path and query, body hash, client IP, time, sender); the leader
 *    authorises and audits it again with the original client IP. Except a `proposeHere` route
 *    (secret puts) when the leader takes proposals handed to it: the follower waits for a read
 *    barrier before step 2 (so it authorises on state as fresh as the leader's), runs the handler,
 *    whose command goes to the leader through Raft (MsgProp), and audits it itself.
 * 5. Every request that reaches step 2 appends audit records (denials included; every name it
 *    touches, in as many records as that takes) before the answer is sent; if the append fails the
 *    client gets 503 `audit_unavailable` instead.
 * 6. The answer, then `Reply.after` (zeroize plaintext), then `coffer_http_*` metrics labelled
 *    with the route template (never a secret name).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { hashToken, isTransitKeyName } from '@coffer/crypto';
import { sessionByHash, tokenStatusAt, type TokenRecord } from '@coffer/state';
import type { AuditOutcome } from '../audit/audit-log.js';
import { RoleRateLimiter } from '../auth/rate-limit.js';
import { isAllowed, isPathScoped, type Action } from '../auth/rbac.js';
import { SessionAuth, isOrgAdmin } from '../auth/sessions.js';
import type { ReadAuthMode } from '../config.js';
import type { NodeContext } from '../context.js';
import type { AccessCache } from '../service/access.js';
import { ServiceError } from '../service/errors.js';
import { checkShortId } from '../service/identities.js';
import { checkNodeId, checkRoleName, checkSecretName, checkTokenName } from '../validate.js';
import { MAX_BODY_BYTES, MAX_RESTORE_BYTES, checkDeclaredLength, parseJsonObject, readBody, sendJson } from './body.js';
import { httpStatus, sendError, toServiceError } from './errors.js';
import { clip, nameOrThrow } from './fields.js';
import type { Call, Method, Reply, Route } from './route.js';
import { VAULT_PREFIX, checkFolder, isVaultList } from './vault.js';

/** Transit's routes answer in Vault's envelope (Vault's paths and shapes). */
const TRANSIT_PREFIX = '/v1/transit/';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

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


function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'ok';
  return status === 401 || status === 403 || status === 429 ? 'denied' : 'error';
}

/**
 * Counts a failed authentication (or verify mismatch) from `ip` toward the cluster-wide lockout.
 *
 * @param ctx - the node
 * @param ip - the client address
 */
export function countAuthFailure(ctx: NodeContext, ip: string): void {
  ctx.metrics.authFailures.inc();
  ctx.lockout.fail(ip);
}

/**
 * Builds the pipeline over a route table.
 *
 * @param ctx - the node
 * @param access - the compiled-role and allowlist cache
 * @param routes - the compiled routes, in dispatch order (the first match wins)
 * @returns the dispatcher: finds the route and runs it; 400 `invalid_name` for a non-canonical
 *   path, 404 / 405 otherwise. It answers every request itself and rejects only on a bug.
 */
export function createPipeline(ctx: NodeContext, access: AccessCache, routes: readonly Route[]): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const lockout = ctx.lockout;
  const cfg = ctx.config;
  const limiter = new RoleRateLimiter(() => ctx.now());
  const countFailure = (ip: string): void => countAuthFailure(ctx, ip);
  const sessions = new SessionAuth();
  /** Token routes an org admin may pass without the action: decided once the body is read. */
  const orgDeferred = new WeakSet<Call>();

  function checkLockout(ip: string | undefined): void {
    if (ip === undefined || !lockout.enabled) return;
    const lock = lockout.check(ip);
    if (lock.locked) {
      throw new ServiceError('locked_out', 'too many failed authentications from this address; try again later', { retryAfterSecs: Math.ceil(lock.retryAfterMs / 1000) });
    }
  }

  /** @param tokenHash - `hashToken` of the presented token (hashed once per request) */
  function lookupToken(tokenHash: Uint8Array): Readonly<TokenRecord> | undefined {
    const t = ctx.state.tokenByHash(tokenHash);
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
    else if (r.param === 'identity') checkShortId(decoded, 'identity');
    else if (r.param === 'requestId') checkShortId(decoded, 'id');
    else if (r.param === 'transitKey' && !isTransitKeyName(decoded)) {
      throw new ServiceError('invalid_name', `transit key name ${JSON.stringify(clip(decoded, 80))} must be 1-64 bytes of A-Z a-z 0-9 . _ -`);
    }
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
    if (r.access === 'login') {
      // Anyone may log in (the handler checks the credentials and counts failures), but not from
      // a locked-out address; the request is still audited, bounded and forwarded like any write.
      checkLockout(call.ip);
      if (r.param !== 'none') decodeParam(r, call, rawParam);
      return;
    }
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
        if (raw !== undefined) call.token = lookupToken(hashToken(raw)) ?? sessions.authenticate(ctx.state, raw, ctx.now())?.token;
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
      // Path-scoped actions (secret.*, transit.*) are checked on the route's decoded name.
      if (r.param === 'secret' || isPathScoped(action)) requireAction(call, action);
      else {
        const role = call.role;
        const allowed = role !== undefined && (action === 'secret.list' ? role.grants.has('secret.list') : isAllowed(role, action));
        if (!allowed && r.orgScope !== undefined && call.identity !== undefined) orgDeferred.add(call);
        else if (!allowed) throw new ServiceError('permission_denied', `role "${call.token?.role ?? '-'}" does not allow ${action}`);
      }
    }
    takeRate(call);
  }

  /** Requests whose token (or session) was checked by `authenticate`, with the token's hash (hashed once per request). */
  const authenticated = new WeakMap<Call, Uint8Array>();

  /**
   * A read that passed its linearizable barrier sees every write acknowledged before it — a token
   * revoked or an approle deleted through the leader a moment ago included — but the token was
   * checked before the barrier, against what this node had applied then. Check it again against
   * the state the read was answered from, and refuse the answer if it is no longer valid.
   */
  function recheckAfterRead(call: Call): void {
    const tokenHash = authenticated.get(call);
    if (call.req.method !== 'GET' || tokenHash === undefined) return;
    const raw = presentedToken(call.req);
    if (raw !== undefined && (lookupToken(tokenHash) !== undefined || sessions.authenticate(ctx.state, raw, ctx.now()) !== undefined)) return;
    if (call.ip !== undefined) countFailure(call.ip);
    throw new ServiceError('invalid_token', 'the token is unknown, expired or revoked');
  }

  /** The presented token, active: sets `call.token` and `call.role`, or refuses (counted toward lockout). */
  async function authenticate(call: Call, raw: string | undefined): Promise<void> {
    if (raw === undefined) throw new ServiceError('missing_token', 'send a token in "Authorization: Bearer <token>" or "X-Vault-Token"');
    const tokenHash = hashToken(raw);
    let token = lookupToken(tokenHash);
    // Not a token: an identity session (checked against the replicated identity on every request).
    let session = token === undefined ? sessions.authenticate(ctx.state, raw, ctx.now()) : undefined;
    if (token === undefined && session === undefined && ctx.state.tokenByHash(tokenHash) === undefined && sessionByHash(ctx.state, tokenHash) === undefined) {
      // Unknown here may just mean "not applied here yet" (a token minted a moment ago through
      // the leader): catch up to the cluster's commit index once before refusing, so a new token
      // works on every node as soon as its creation was acknowledged. Meanwhile the request holds
      // a failure slot, so parallel guesses cannot all pass the lockout check during the wait.
      const release = call.ip === undefined ? () => undefined : lockout.hold(call.ip);
      if (release === null) throw new ServiceError('locked_out', 'too many failed authentications from this address; try again later', { retryAfterSecs: 1 });
      try {
        await ctx.readBarrier('linearizable');
        token = lookupToken(tokenHash);
        if (token === undefined) session = sessions.authenticate(ctx.state, raw, ctx.now());
      } catch {
        // no quorum: answer from what this node knows
      } finally {
        release();
      }
    }
    if (token !== undefined || session !== undefined) authenticated.set(call, tokenHash);
    if (session !== undefined) {
      call.token = session.token;
      call.role = session.role;
      call.identity = session.identity;
      return;
    }
    if (token === undefined) {
      if (call.ip !== undefined) countFailure(call.ip);
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

  const bodyLimit = (r: Route): number => r.maxBodyBytes ?? (r.body === 'raw' ? MAX_RESTORE_BYTES : MAX_BODY_BYTES);

  /**
   * A session without the route's action passes only as admin of the org the request acts in.
   * Like an unknown token, a "no" may mean "not applied here yet" (a membership or request made a
   * moment ago through the leader): catch up once before refusing.
   */
  async function checkOrgAdmin(r: Route, call: Call): Promise<void> {
    if (!orgDeferred.has(call)) return;
    const admits = (): boolean => {
      const o = r.orgScope?.(call);
      return o !== undefined && call.identity !== undefined && isOrgAdmin(ctx.state, call.identity, o);
    };
    if (admits()) return;
    await ctx.readBarrier('linearizable').catch(() => undefined);
    const org = r.orgScope?.(call);
    if (!admits()) {
      throw new ServiceError('permission_denied', `identity "${call.identity ?? '-'}" needs ${r.action ?? '-'} or an admin membership of ${org === undefined ? 'the org' : `org "${org}"`}`);
    }
  }

  /** Reads the body of an authorised request, checks it came unaltered if forwarded, parses it. */
  async function readBodyFor(r: Route, call: Call): Promise<void> {
    // Also for routes without a body: a deferred org check must never be skipped.
    if (r.body === 'none') {
      await checkOrgAdmin(r, call);
      return;
    }
    const raw = await readBody(call.req, bodyLimit(r));
    ctx.checkForwardedBody(call.req, raw);
    call.rawBody = raw;
    if (r.body !== 'raw') call.body = parseJsonObject(raw, r.body === 'optionalJson');
    await checkOrgAdmin(r, call);
    if (r.extraActions !== undefined) for (const a of r.extraActions(call.body)) requireAction(call, a);
    if (r.bodyGrants !== undefined) for (const g of r.bodyGrants(call.body)) requireActionOn(call, g.action, g.name);
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
    await audit(r, call, httpStatus(se, r.vault === true));
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
      if (r.whileSealed !== true && ctx.seal?.isSealed() === true) {
        // A sealed node holds no key and serves nothing else: not even a stale read (nothing it
        // holds may be served as current) and no forwarding (COFFER_SEAL=shamir).
        throw new ServiceError('sealed', 'this node is sealed: unseal it with `coffer operator unseal` (PUT /v1/sys/unseal), or use an unsealed node', { retryAfterSecs: 1 });
      }
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
      const forwarded = req.headers['x-coffer-forwarded-ip'] !== undefined;
      // A write that runs here although this node follows (step 4 of the module comment): what
      // the token, role and allowlist say is read after a barrier, as fresh as on the leader.
      const here = r.write && r.proposeHere === true && !forwarded && !ctx.isLeader() && ctx.canProposeViaLeader();
      if (here) await ctx.readBarrier('linearizable');
      await authorize(r, call, rawParam);
      await readBodyFor(r, call);
      if (r.write && !here && !ctx.isLeader()) {
        // A login's credentials are checked here too (audited here when refused).
        if (r.checkBeforeForward !== undefined) await r.checkBeforeForward(call);
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
      recheckAfterRead(call);
      await audit(r, call, reply.status).catch((err: unknown) => {
        throw new ServiceError('audit_unavailable', 'the audit log cannot be written; request refused', { retryAfterSecs: 1, cause: err });
      });
      send(call, reply);
    } catch (err) {
      let se = toServiceError(err);
      if (se.code === 'internal') ctx.logger.error({ err, requestId, route: r.pattern.template }, 'request failed');
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
        sendError(res, se, requestId, r.vault === true);
      }
    } finally {
      reply?.after?.();
      const status = String(res.statusCode);
      ctx.metrics.httpRequests.inc({ method: r.method, route: r.pattern.template, status, token: metricsTokenLabel(call.token) });
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
    sendError(res, err, requestId, vault);
    return Promise.resolve();
  }

  /** Finds the route and runs it; 400 `invalid_name` for a non-canonical path, 404 / 405 otherwise. */
  function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q + 1);
    const vault = path.startsWith(VAULT_PREFIX);
    // Refusals before a route is found answer in Vault's envelope where the routes do (KV v2, transit).
    const vaultShaped = vault || path.startsWith(TRANSIT_PREFIX);
    try {
      checkCanonical(path);
    } catch (err) {
      return refuse(req, res, vaultShaped, err as ServiceError);
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
      return refuse(req, res, vaultShaped, new ServiceError('method_not_allowed', `${method ?? '?'} is not allowed here (allowed: ${allow.join(', ')})`));
    }
    return refuse(req, res, vaultShaped, new ServiceError('not_found', 'no such route'));
  }

  return dispatch;
}

/**
 * The `token` label of the request metrics: the token's name, except for tokens an AppRole login
 * minted (a new name per login), which are counted under their AppRole (`approle:<name>`), so the
 * number of series stays bounded by what operators created.
 */
function metricsTokenLabel(token: { readonly name: string; readonly createdBy: string } | undefined): string {
  if (token === undefined) return '';
  return token.createdBy.startsWith('approle:') ? token.createdBy : token.name;
}
