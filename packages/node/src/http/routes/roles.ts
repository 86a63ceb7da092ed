/**
 * Role routes and the replicated read allowlist. Role writes and deletes pass the grant checks
 * (nobody grants what they do not hold).
 */
import { ServiceError } from '../../service/errors.js';
import { roleView } from '../../service/roles.js';
import { consistencyOf, onlyKeys } from '../fields.js';
import { createGrants } from '../grants.js';
import type { RouteFamily, RouteSpec } from '../route.js';

/** The role routes, in dispatch order. */
export const roleRoutes: RouteFamily = ({ ctx, access, policy, actor }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };
  const { mayWriteRole } = createGrants(ctx, access);

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

  return routes;
};
