/**
 * Token routes: mint, list, who-am-I, revoke, rotate. Minting and rotating pass the grant checks
 * (a token may only be given a role within the caller's own, with a bounded lifetime).
 */
import type { TokenRecord } from '@coffer/state';
import { checkRoleName, checkTokenName } from '../../validate.js';
import { tokenView } from '../../service/tokens.js';
import { clip, consistencyOf, field, isStr, nameOrThrow, onlyKeys } from '../fields.js';
import { createGrants } from '../grants.js';
import type { RouteFamily, RouteSpec } from '../route.js';

/** The token routes, in dispatch order. */
export const tokenRoutes: RouteFamily = ({ ctx, access, tokens, actor }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };
  const { mayHandOut, lifetimeOf } = createGrants(ctx, access);

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

  return routes;
};
