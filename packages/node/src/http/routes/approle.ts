/**
 * AppRole routes: manage approles and mint secret ids (`approle.manage`, and the caller's role
 * must cover the approle's role: nobody hands out what they do not hold), and the Vault-shaped
 * login (`POST /v1/auth/approle/login`, anyone; lockout, body limit, forwarding and audit still
 * apply) that node-vault's `approleLogin()` calls unchanged.
 */
import { approleByName } from '@coffer/state';
import { ApproleService, checkApproleName } from '../../service/approles.js';
import { ServiceError } from '../../service/errors.js';
import { clip, consistencyOf, field, isNat, isStr, nameOrThrow, onlyKeys } from '../fields.js';
import { createGrants } from '../grants.js';
import type { Call, RouteFamily, RouteSpec } from '../route.js';
import { checkRoleName } from '../../validate.js';

/** Body limits: anyone may send a login, so it is refused past a few KiB before it is read. */
const LOGIN_BODY_BYTES = 4 * 1024;
/** An approle document: at most 64 CIDRs and a few fields. */
const PUT_BODY_BYTES = 16 * 1024;
/** Longest role id / secret id a login may present. */
const MAX_CREDENTIAL_CHARS = 256;

function credential(c: Call, key: 'role_id' | 'secret_id'): string {
  const v = c.body[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_CREDENTIAL_CHARS) {
    throw new ServiceError('invalid_request', `"${key}" must be a non-empty string of at most ${MAX_CREDENTIAL_CHARS} characters`);
  }
  return v;
}

/** The approle routes, in dispatch order. */
export const approleRoutes: RouteFamily = ({ ctx, access, actor, countAuthFailure }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };
  const approles = new ApproleService(ctx);
  const { mayHandOut, lifetimeOf } = createGrants(ctx, access);

  /** The caller must cover the role the approle hands out now (if it exists). */
  const mayManage = (c: Call, name: string): void => {
    const a = approleByName(ctx.state, name);
    if (a !== undefined) mayHandOut(c, a.role);
  };

  route({
    method: 'GET', path: '/v1/approles', access: 'token', action: 'approle.manage', auditAction: 'approle.list', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: { approles: approles.list() } };
    },
  });

  route({
    method: 'GET', path: '/v1/approles/{name}', access: 'token', action: 'approle.manage', auditAction: 'approle.read', write: false, body: 'none', param: 'role',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: approles.get(c.param) };
    },
  });

  route({
    method: 'PUT', path: '/v1/approles/{name}', access: 'token', action: 'approle.manage', auditAction: 'approle.put', write: true, body: 'json', param: 'role', maxBodyBytes: PUT_BODY_BYTES,
    handler: async (c) => {
      checkApproleName(c.param);
      onlyKeys(c.body, ['role', 'tokenTtl', 'secretIdTtl', 'secretIdUses', 'boundCidrs']);
      const role = c.body['role'];
      nameOrThrow(checkRoleName(role));
      const tokenTtl = field(c.body, 'tokenTtl', isStr, 'a duration such as "1h" or "30min"');
      const secretIdTtl = field(c.body, 'secretIdTtl', isStr, 'a duration such as "30d" or "12h"');
      const secretIdUses = field(c.body, 'secretIdUses', isNat, 'a whole number >= 0 (0 or absent: unlimited)');
      const boundCidrs = field(c.body, 'boundCidrs', Array.isArray, 'an array of CIDR strings');
      // Nobody hands out what they do not hold: the role now and the role after the change.
      mayManage(c, c.param);
      mayHandOut(c, role as string);
      const out = await approles.put(c.param, { role: role as string, tokenTtl, secretIdTtl, secretIdUses, boundCidrs }, actor(c), lifetimeOf(role as string));
      return { status: 200, json: out };
    },
  });

  route({
    method: 'DELETE', path: '/v1/approles/{name}', access: 'token', action: 'approle.manage', auditAction: 'approle.delete', write: true, body: 'none', param: 'role',
    handler: async (c) => {
      mayManage(c, c.param);
      const tokensEnded = await approles.delete(c.param, actor(c));
      return { status: 200, json: { name: c.param, deleted: true, tokensEnded } };
    },
  });

  route({
    method: 'POST', path: '/v1/approles/{name}/secret-id', access: 'token', action: 'approle.manage', auditAction: 'approle.secret-id', write: true, body: 'optionalJson', param: 'role', maxBodyBytes: LOGIN_BODY_BYTES,
    handler: async (c) => {
      onlyKeys(c.body, []);
      if (approleByName(ctx.state, c.param) === undefined) throw new ServiceError('not_found', `no approle named "${c.param}"`);
      mayManage(c, c.param);
      // Shown once: only its sha256 is kept.
      return { status: 200, json: { name: c.param, ...(await approles.secretId(c.param, actor(c))) } };
    },
  });

  route({
    method: 'POST', path: '/v1/auth/approle/login', access: 'login', auditAction: 'approle.login', write: true, body: 'json', param: 'none', maxBodyBytes: LOGIN_BODY_BYTES,
    handler: async (c) => {
      onlyKeys(c.body, ['role_id', 'secret_id']);
      const roleId = credential(c, 'role_id');
      c.resource = `role_id:${clip(roleId, 128) ?? ''}`;
      const secretId = credential(c, 'secret_id');
      const ip = c.ip;
      const login = await approles.login(roleId, secretId, ip, () => {
        if (ip !== undefined) countAuthFailure(ip);
      });
      // The audit line names the approle and the token the login created (never the token itself).
      // NB: not set as `c.token`: the HTTP metrics label requests by token name, and one series
      // per login would grow without bound.
      c.resource = `approle:${login.approle} token:${login.tokenName}`;
      const auth = {
        client_token: login.token,
        accessor: login.tokenName,
        policies: [login.role],
        token_policies: [login.role],
        metadata: { role_name: login.approle },
        lease_duration: login.leaseSecs,
        renewable: false,
        entity_id: '',
        token_type: 'service',
        orphan: true,
      };
      return {
        status: 200,
        json: { request_id: c.requestId, lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth },
      };
    },
  });

  return routes;
};
