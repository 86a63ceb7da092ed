/**
 * Ed25519 login (CONTRACT.md): `POST /v1/auth/challenge` (stateless, answered by any node) and
 * `POST /v1/auth/login` (a write: a follower forwards it; the leader verifies the nonce and the
 * signature and opens the session through consensus, where the nonce is spent). Both are `login`
 * routes: anyone may call them, but not from a locked-out address, and every call is audited.
 * Every refusal is the same 401 `invalid_token` and counts toward the lockout.
 */
import { checkShortId } from '../../service/identities.js';
import { ServiceError } from '../../service/errors.js';
import { onlyKeys } from '../fields.js';
import type { RouteFamily, RouteSpec } from '../route.js';
import { identityServiceOf } from './identities.js';

const SMALL_BODY_BYTES = 8 * 1024;

/** The Ed25519 login routes. */
export const ed25519AuthRoutes: RouteFamily = ({ ctx, countAuthFailure }) => {
  const ids = identityServiceOf(ctx);
  const routes: RouteSpec[] = [
    {
      method: 'POST', path: '/v1/auth/challenge', access: 'login', auditAction: 'auth.challenge', write: false, body: 'json', param: 'none', maxBodyBytes: SMALL_BODY_BYTES,
      handler: async (c) => {
        onlyKeys(c.body, ['identity']);
        const identity = checkShortId(c.body['identity'], 'identity');
        c.resource = `identity:${identity}`;
        return { status: 200, json: ids.challenge(identity) };
      },
    },
    {
      method: 'POST', path: '/v1/auth/login', access: 'login', auditAction: 'auth.login', write: true, body: 'json', param: 'none', maxBodyBytes: SMALL_BODY_BYTES,
      handler: async (c) => {
        onlyKeys(c.body, ['identity', 'nonce', 'signature']);
        const identity = checkShortId(c.body['identity'], 'identity');
        // The audit line names the identity logging in (never the nonce, signature or session token).
        c.resource = `identity:${identity}`;
        for (const f of ['nonce', 'signature'] as const) {
          const v = c.body[f];
          if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new ServiceError('invalid_request', `"${f}" must be a non-empty string of at most 256 characters`);
        }
        const ip = c.ip;
        const session = await ids.login(identity, c.body['nonce'], c.body['signature'], () => {
          if (ip !== undefined) countAuthFailure(ip);
        });
        return { status: 200, json: session };
      },
    },
  ];
  return routes;
};
