/**
 * "Nobody grants what they do not hold" (ARCHITECTURE.md): the checks a token creator and a role
 * editor pass on top of their route's RBAC action.
 */
import { ADMIN_ROLE_NAME, compileRole, missingGrant, validateRoleDocument } from '../auth/rbac.js';
import type { NodeContext } from '../context.js';
import { formatDuration } from '../duration.js';
import type { AccessCache } from '../service/access.js';
import { ServiceError } from '../service/errors.js';
import type { TokenLifetime } from '../service/tokens.js';
import type { Call } from './route.js';

/** The grant checks of one API. */
export interface Grants {
  /** Refuses handing out a token of `roleName` unless the caller's role covers it. */
  mayHandOut(c: Call, roleName: string): void;
  /** The lifetime cap of tokens of `roleName`: its `maxTtl`, never above COFFER_TOKEN_MAX_TTL. */
  lifetimeOf(roleName: string): TokenLifetime;
  /** Refuses a role write (body) or delete (no body) the caller's role does not cover. */
  mayWriteRole(c: Call, name: string, body: Record<string, unknown> | undefined): void;
}

/**
 * @param ctx - the node
 * @param access - the compiled-role cache
 * @returns the checks
 */
export function createGrants(ctx: NodeContext, access: AccessCache): Grants {
  const lifetimeOf = (roleName: string): TokenLifetime => {
    const cluster = ctx.config.tokenMaxTtlMs;
    const own = access.role(ctx.state, roleName)?.maxTtlMs;
    return own !== undefined && own < cluster
      ? { maxMs: own, source: `role "${roleName}" (maxTtl ${formatDuration(own / 1000)})` }
      : { maxMs: cluster, source: `the cluster (COFFER_TOKEN_MAX_TTL ${formatDuration(Math.floor(cluster / 1000))})` };
  };

  return {
    lifetimeOf,

    // A caller may only mint or rotate a token whose role grants nothing the caller's own role
    // does not grant (admin covers every role), so `token.create` cannot be used to escalate.
    mayHandOut(c, roleName) {
      const target = access.role(ctx.state, roleName);
      if (target === undefined) return; // unknown role: the service answers; a role that does not compile grants nothing
      const mine = c.role;
      const missing = mine === undefined ? 'everything' : missingGrant(mine, target);
      if (missing !== undefined) {
        throw new ServiceError('permission_denied', `role "${roleName}" grants ${missing}, which your role "${c.token?.role ?? '-'}" does not; a token may only be given a role within the caller's own`);
      }
    },

    // A role editor may only write (or delete) a role whose every grant its own role covers,
    // before and after the change, with a token lifetime no longer than its own; `admin` stays
    // immutable (the service refuses it).
    mayWriteRole(c, name, body) {
      const mine = c.role;
      const who = `your role "${c.token?.role ?? '-'}"`;
      if (mine === undefined) throw new ServiceError('permission_denied', `${who} grants nothing`);
      const current = name === ADMIN_ROLE_NAME ? undefined : access.role(ctx.state, name);
      const had = current === undefined ? undefined : missingGrant(mine, current);
      if (had !== undefined) throw new ServiceError('permission_denied', `role "${name}" grants ${had}, which ${who} does not; only a holder of everything a role grants may change it`);
      if (body === undefined || name === ADMIN_ROLE_NAME) return;
      const v = validateRoleDocument(body);
      if (!v.ok) return; // the service answers 400 naming every bad field
      const next = compileRole(name, v.role);
      const missing = missingGrant(mine, next);
      if (missing !== undefined) throw new ServiceError('permission_denied', `role "${name}" would grant ${missing}, which ${who} does not; a role may only be given grants within the editor's own`);
      const mineCap = lifetimeOf(c.token?.role ?? '').maxMs;
      if ((next.maxTtlMs ?? ctx.config.tokenMaxTtlMs) > mineCap) {
        throw new ServiceError('permission_denied', `role "${name}" would allow tokens to live longer than ${who} does; set "maxTtl" to at most ${formatDuration(Math.floor(mineCap / 1000))}`);
      }
    },
  };
}
