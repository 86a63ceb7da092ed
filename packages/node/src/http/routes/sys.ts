/**
 * Health (public, Vault's status overrides) and Prometheus metrics (allowlisted).
 */
import { health } from '../../service/cluster.js';
import { ServiceError } from '../../service/errors.js';
import type { RouteFamily, RouteSpec } from '../route.js';

/** The sys routes, in dispatch order. */
export const sysRoutes: RouteFamily = ({ ctx }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };

  route({
    method: 'GET', path: '/v1/sys/health', access: 'public', auditAction: 'sys.health', write: false, body: 'none', param: 'none', whileSealed: true,
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

  return routes;
};
