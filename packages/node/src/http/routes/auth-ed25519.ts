/**
 * Ed25519 login (CONTRACT.md): `POST /v1/auth/challenge` (stateless, answered by any node) and
 * `POST /v1/auth/login` (a write: the node where it arrives checks the nonce and the signature
 * first, a follower then forwards it, and the leader checks again and opens the session through
 * consensus, where the nonce is spent). Both are `login`
 * routes: anyone may call them, but not from a locked-out address, and every call is audited.
 * Every refusal is the same 401 `invalid_token` and counts toward the lockout.
 */
import { checkShortId } from '../../service/identities.js';
import { ServiceError } from '../../service/errors.js';
import { onlyKeys } from '../fields.js';
import type { Call, RouteFamily, RouteSpec } from '../route.js';
import { identityServiceOf } from './identities.js';

const SMALL_BODY_BYTES = 8 * 1024;

/** The login body, checked (400 naming the field); the audit line names the identity (never the nonce, signature or token). */
function loginBody(c: Call): { identity: string; nonce: string; signature: string } {
  onlyKeys(c.body, ['identity', 'nonce', 'signature']);
  const identity = checkShortId(c.body['identity'], 'identity');
  c.resource = `identity:${identity}`;
  const out: string[] = [];
  for (const f of ['nonce', 'signature'] as const) {
    const v = c.body[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > 256) throw new ServiceError('invalid_request', `"${f}" must be a non-empty string of at most 256 characters`);
    out.push(v);
  }
  return { identity, nonce: out[0] as string, signature: out[1] as string };
}

/** The Ed25519 login routes. */
export const ed25519AuthRoutes: RouteFamily = ({ ctx, countAuthFailure }) => {
  const ids = identityServiceOf(ctx);
  const failureOf = (c: Call) => (): void => {
    if (c.ip !== undefined) countAuthFailure(c.ip);
  };
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
      // Where the login arrives, before it is forwarded: a bad one never reaches the leader.
      checkBeforeForward: async (c) => {
        const b = loginBody(c);
        await ids.verifyLogin(b.identity, b.nonce, b.signature, failureOf(c));
      },
      handler: async (c) => {
        const b = loginBody(c);
        return { status: 200, json: await ids.login(b.identity, b.nonce, b.signature, failureOf(c)) };
      },
    },
  ];
  return routes;
};
