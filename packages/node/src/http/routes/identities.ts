/**
 * Identity and membership routes (CONTRACT.md, "Identities, sessions, orgs and access requests"):
 * register, list, show, disable and delete Ed25519 identities (`identity.manage`), and grant or
 * remove org/project memberships (`identity.manage`, or `admin` of that org — the pipeline's
 * `orgScope` check). Nobody grants what they do not hold: the granter's own role must cover the
 * membership's effective grants (an org admin covers its org; a token needs the `secret.*` grants).
 */
import { missingGrant } from '../../auth/rbac.js';
import { compileMemberships } from '../../auth/sessions.js';
import { ChallengeKeys } from '../../auth/challenges.js';
import { IdentityService, checkMembershipRole, checkShortId } from '../../service/identities.js';
import { ServiceError } from '../../service/errors.js';
import type { MembershipRole } from '@coffer/state';
import { consistencyOf, isStr, onlyKeys } from '../fields.js';
import type { Call, RouteDeps, RouteFamily, RouteSpec } from '../route.js';

/** Small bodies only: every field here is a short name or a 32-byte key. */
const SMALL_BODY_BYTES = 16 * 1024;

const services = new WeakMap<RouteDeps['ctx'], IdentityService>();

/**
 * The node's one identity service (the challenge key must be the same for every route family
 * of one API: a nonce issued by the challenge route is verified by the login route).
 *
 * @param ctx - the node
 * @returns its service
 */
export function identityServiceOf(ctx: RouteDeps['ctx']): IdentityService {
  let s = services.get(ctx);
  if (s === undefined) {
    s = new IdentityService(ctx, new ChallengeKeys(ctx.config.clusterKey, () => ctx.now(), undefined, ctx.config.previousClusterKey));
    services.set(ctx, s);
  }
  return s;
}

/** The membership a PUT/DELETE body names: org, project (null for org-wide), role (PUT only). */
function membershipOf(body: Record<string, unknown>, withRole: boolean): { org: string; project: string | null; role: MembershipRole | undefined } {
  onlyKeys(body, withRole ? ['org', 'project', 'role'] : ['org', 'project']);
  const org = checkShortId(body['org'], 'org');
  const p = body['project'];
  const project = p === undefined || p === null ? null : checkShortId(p, 'project');
  const role = withRole ? checkMembershipRole(body['role']) : undefined;
  if (role === 'admin' && project !== null) throw new ServiceError('invalid_request', 'an admin membership is org-wide: leave "project" out');
  if ((role === 'member' || role === 'readonly') && project === null) throw new ServiceError('invalid_request', `a ${role} membership needs "project"`);
  return { org, project, role };
}

/**
 * Refuses granting a membership whose grants the caller's own role does not cover.
 *
 * @param c - the call (its role is the token's or the session's effective role)
 * @param m - the membership
 * @throws {ServiceError} `permission_denied`
 */
export function mayGrantMembership(c: Call, m: { org: string; project: string | null; role: MembershipRole }): void {
  const missing = c.role === undefined ? 'everything' : missingGrant(c.role, compileMemberships([m]));
  if (missing !== undefined) {
    throw new ServiceError('permission_denied', `a ${m.role} membership of ${m.project === null ? `org "${m.org}"` : `"${m.org}/${m.project}"`} grants ${missing}, which the caller does not hold; nobody grants what they do not hold`);
  }
}

/** The identity and membership routes, in dispatch order. */
export const identityRoutes: RouteFamily = ({ ctx, actor }) => {
  const ids = identityServiceOf(ctx);
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };

  route({
    method: 'POST', path: '/v1/identities', access: 'token', action: 'identity.manage', auditAction: 'identity.create', write: true, body: 'json', param: 'none', maxBodyBytes: SMALL_BODY_BYTES,
    handler: async (c) => {
      onlyKeys(c.body, ['name', 'type', 'publicKey']);
      const name = checkShortId(c.body['name'], 'name');
      c.resource = `identity:${name}`;
      return { status: 201, json: await ids.create(name, c.body['type'], c.body['publicKey'], actor(c)) };
    },
  });

  route({
    method: 'GET', path: '/v1/identities', access: 'token', action: 'identity.manage', auditAction: 'identity.list', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: { identities: ids.list() } };
    },
  });

  route({
    method: 'GET', path: '/v1/identities/{name}', access: 'token', action: 'identity.manage', auditAction: 'identity.read', write: false, body: 'none', param: 'identity',
    handler: async (c) => {
      c.resource = `identity:${c.param}`;
      await ctx.readBarrier(consistencyOf(c.query));
      return { status: 200, json: ids.get(c.param) };
    },
  });

  route({
    method: 'DELETE', path: '/v1/identities/{name}', access: 'token', action: 'identity.manage', auditAction: 'identity.delete', write: true, body: 'none', param: 'identity',
    handler: async (c) => {
      c.resource = `identity:${c.param}`;
      return { status: 200, json: { name: c.param, deleted: true, sessionsEnded: await ids.end('delete', c.param, actor(c)) } };
    },
  });

  route({
    method: 'POST', path: '/v1/identities/{name}/disable', access: 'token', action: 'identity.manage', auditAction: 'identity.disable', write: true, body: 'optionalJson', param: 'identity', maxBodyBytes: SMALL_BODY_BYTES,
    handler: async (c) => {
      onlyKeys(c.body, []);
      c.resource = `identity:${c.param}`;
      const ended = await ids.end('disable', c.param, actor(c));
      return { status: 200, json: { ...ids.get(c.param), sessionsEnded: ended } };
    },
  });

  const orgOfBody = (c: Call): string | undefined => (isStr(c.body['org']) ? c.body['org'] : undefined);

  route({
    method: 'PUT', path: '/v1/memberships/{identity}', access: 'token', action: 'identity.manage', auditAction: 'membership.put', write: true, body: 'json', param: 'identity', maxBodyBytes: SMALL_BODY_BYTES,
    orgScope: orgOfBody,
    handler: async (c) => {
      const m = membershipOf(c.body, true);
      const role = m.role as MembershipRole;
      c.resource = `identity:${c.param} ${m.project === null ? `org/${m.org}` : `org/${m.org}/project/${m.project}`} ${role}`;
      mayGrantMembership(c, { org: m.org, project: m.project, role });
      await ids.grant(c.param, m.org, m.project, role, actor(c));
      return { status: 200, json: { identity: c.param, org: m.org, project: m.project, role } };
    },
  });

  route({
    method: 'DELETE', path: '/v1/memberships/{identity}', access: 'token', action: 'identity.manage', auditAction: 'membership.delete', write: true, body: 'json', param: 'identity', maxBodyBytes: SMALL_BODY_BYTES,
    orgScope: orgOfBody,
    handler: async (c) => {
      const m = membershipOf(c.body, false);
      c.resource = `identity:${c.param} ${m.project === null ? `org/${m.org}` : `org/${m.org}/project/${m.project}`}`;
      await ids.revoke(c.param, m.org, m.project, actor(c));
      return { status: 200, json: { identity: c.param, org: m.org, project: m.project, deleted: true } };
    },
  });

  return routes;
};
