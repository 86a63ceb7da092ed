/**
 * `GET /v1/audit`: this node's audit lines from a sequence number.
 */
import { ServiceError } from '../../service/errors.js';
import type { RouteFamily, RouteSpec } from '../route.js';

const DEFAULT_AUDIT_LIMIT = 100;
const MAX_AUDIT_LIMIT = 1000;

/** The audit routes, in dispatch order. */
export const auditRoutes: RouteFamily = ({ ctx }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };

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

  return routes;
};
