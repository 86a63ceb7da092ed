/**
 * Cluster routes: status, members, leadership transfer, snapshot and restore.
 */
import { checkOrigin } from '../../service/cluster.js';
import { ServiceError } from '../../service/errors.js';
import { checkNodeId } from '../../validate.js';
import { clip, field, isStr, nameOrThrow, onlyKeys } from '../fields.js';
import type { RouteFamily, RouteSpec } from '../route.js';

/** The cluster routes, in dispatch order. */
export const clusterRoutes: RouteFamily = ({ ctx, cluster }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };

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

  return routes;
};
