/**
 * Access requests (CONTRACT.md): any session or token files one; `access.approve` (or `admin` of
 * the request's org, through the pipeline's `orgScope` check) lists and decides them; a requester
 * sees its own and never decides them (403 `self_approval`, checked again at apply). Approval
 * creates the membership in the same replicated step, and the approver must hold what it grants.
 */
import { isAllowed } from '../../auth/rbac.js';
import { isOrgAdmin } from '../../auth/sessions.js';
import { checkMembershipRole, checkShortId } from '../../service/identities.js';
import { ServiceError } from '../../service/errors.js';
import { consistencyOf, isStr, onlyKeys } from '../fields.js';
import type { Call, RouteFamily, RouteSpec } from '../route.js';
import { identityServiceOf, mayGrantMembership } from './identities.js';

const SMALL_BODY_BYTES = 16 * 1024;

/** The access-request routes, in dispatch order. */
export const accessRequestRoutes: RouteFamily = ({ ctx, actor }) => {
  const ids = identityServiceOf(ctx);
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };

  route({
    method: 'POST', path: '/v1/access-requests', access: 'anyToken', auditAction: 'access.request', write: true, body: 'json', param: 'none', maxBodyBytes: SMALL_BODY_BYTES,
    handler: async (c) => {
      onlyKeys(c.body, ['org', 'project', 'role', 'justification']);
      const org = checkShortId(c.body['org'], 'org');
      const project = checkShortId(c.body['project'], 'project');
      const role = checkMembershipRole(c.body['role']);
      const j = c.body['justification'];
      if (!isStr(j)) throw new ServiceError('invalid_request', '"justification" must be a string (why the access is needed)');
      c.resource = `org/${org}/project/${project} ${role}`;
      const id = await ids.request(actor(c), c.identity ?? null, org, project, role, j);
      c.resource = `access-request:${id} org/${org}/project/${project} ${role}`;
      return { status: 200, json: { id, status: 'pending' } };
    },
  });

  route({
    method: 'GET', path: '/v1/access-requests', access: 'anyToken', auditAction: 'access.list', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      const status = c.query.get('status');
      if (status !== null && status !== 'pending' && status !== 'approved' && status !== 'denied') {
        throw new ServiceError('invalid_request', '"status" must be pending, approved or denied');
      }
      await ctx.readBarrier(consistencyOf(c.query));
      const me = actor(c);
      // Visibility: everything with access.approve; an org admin also its orgs'; everyone its own.
      const all = c.role !== undefined && isAllowed(c.role, 'access.approve');
      const admin = (org: string): boolean => c.identity !== undefined && isOrgAdmin(ctx.state, c.identity, org);
      const requests = ids.requests((q) => (status === null || q.status === status) && (all || q.requester === me || admin(q.org)));
      return { status: 200, json: { requests } };
    },
  });

  const orgOfRequest = (c: Call): string | undefined => ids.requestById(c.param)?.org;

  for (const verb of ['approve', 'deny'] as const) {
    route({
      method: 'POST', path: `/v1/access-requests/{id}/${verb}`, access: 'token', action: 'access.approve', auditAction: `access.${verb}`, write: true, body: 'optionalJson', param: 'requestId', maxBodyBytes: SMALL_BODY_BYTES,
      orgScope: orgOfRequest,
      handler: async (c) => {
        onlyKeys(c.body, []);
        const q = ids.requestById(c.param);
        if (q === undefined) throw new ServiceError('not_found', `no access request "${c.param}"`);
        c.resource = `access-request:${q.id} ${q.requester} org/${q.org}/project/${q.project} ${q.role}`;
        if (q.requester === actor(c)) throw new ServiceError('self_approval', 'the requester cannot approve or deny its own access request');
        if (verb === 'approve') mayGrantMembership(c, { org: q.org, project: q.role === 'admin' ? null : q.project, role: q.role });
        return { status: 200, json: await ids.decide(q.id, verb === 'approve' ? 'approved' : 'denied', actor(c)) };
      },
    });
  }

  return routes;
};
