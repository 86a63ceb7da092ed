/**
 * KMS re-wrap routes: start a pass, read its progress.
 */
import { ServiceError } from '../../service/errors.js';
import { consistencyOf } from '../fields.js';
import type { RouteFamily, RouteSpec } from '../route.js';

/** The kms routes, in dispatch order. */
export const kmsRoutes: RouteFamily = ({ ctx, cluster }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };

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

  return routes;
};
