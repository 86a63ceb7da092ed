/**
 * The sealed start (COFFER_SEAL=shamir), in Vault's paths and shapes: init (once per cluster),
 * unseal (per node), seal (per node, `operator.seal`), seal-status. Init, unseal and seal-status
 * are served while this node is sealed (`whileSealed`); everything else answers 503 `sealed`.
 *
 * With COFFER_SEAL=none these answer as Vault answers for an unsealed node: seal-status says
 * sealed false, unseal reports the same, init and seal are refused with a sentence saying why.
 *
 * Wrong shares: no lockout, as in Vault. A share is 33 bytes, the 32 y-values uniformly random
 * (a guess succeeds with probability 2^-256), and a wrong combination teaches nothing (the key
 * check is an HMAC); a lockout would only let anyone who reaches the port lock the operators
 * out of unsealing during an outage. Every attempt is audited (never the share); the unseal port
 * belongs on the operators' network.
 */
import { ServiceError } from '../../service/errors.js';
import { field, isNat, isStr, onlyKeys } from '../fields.js';
import type { RouteFamily, RouteSpec } from '../route.js';

/** `{"key": "<44 base64 or 66 hex characters>"}` or `{"reset": true}`: a few hundred bytes at most. */
const UNSEAL_BODY_BYTES = 1024;

const NOT_SEALED = 'this cluster does not use a sealed start (COFFER_SEAL=none): there is nothing to initialise or seal';

/** The seal routes, in dispatch order. */
export const sealRoutes: RouteFamily = ({ ctx }) => {
  const statusBody = (): Record<string, unknown> => {
    const seal = ctx.seal;
    if (seal === undefined) return { type: 'shamir', initialized: true, sealed: false, t: 0, n: 0, progress: 0 };
    const st = seal.status();
    return { type: 'shamir', initialized: st.initialized, sealed: st.sealed, t: st.t, n: st.n, progress: st.progress };
  };

  const routes: RouteSpec[] = [
    {
      method: 'GET', path: '/v1/sys/seal-status', access: 'public', auditAction: 'sys.seal-status', write: false, body: 'none', param: 'none', whileSealed: true,
      handler: async () => ({ status: 200, json: statusBody() }),
    },
    {
      // Anyone, while the cluster is not initialised (as in Vault); forwarded to the leader like a
      // write, which makes the shares, proposes `seal.init` and answers only if its init won.
      method: 'PUT', path: '/v1/sys/init', access: 'login', auditAction: 'sys.init', write: true, body: 'json', param: 'none',
      maxBodyBytes: UNSEAL_BODY_BYTES, whileSealed: true,
      handler: async (c) => {
        const seal = ctx.seal;
        if (seal === undefined) throw new ServiceError('invalid_request', NOT_SEALED);
        onlyKeys(c.body, ['secret_shares', 'secret_threshold']);
        const shares = field(c.body, 'secret_shares', isNat, 'a whole number from 1 to 255');
        const threshold = field(c.body, 'secret_threshold', isNat, 'a whole number from 1 to secret_shares');
        if (shares === undefined || threshold === undefined) throw new ServiceError('invalid_request', 'send "secret_shares" and "secret_threshold", e.g. {"secret_shares":5,"secret_threshold":3}');
        const { keys } = await seal.init(shares, threshold);
        return { status: 200, json: { keys, keys_base64: keys } };
      },
    },
    {
      // Per node: the shares go to the node that is to be unsealed, never anywhere else.
      method: 'PUT', path: '/v1/sys/unseal', access: 'login', auditAction: 'sys.unseal', write: false, body: 'json', param: 'none',
      maxBodyBytes: UNSEAL_BODY_BYTES, whileSealed: true,
      handler: async (c) => {
        const seal = ctx.seal;
        onlyKeys(c.body, ['key', 'reset']);
        const reset = c.body['reset'];
        if (reset !== undefined && typeof reset !== 'boolean') throw new ServiceError('invalid_request', '"reset" must be true or false');
        if (seal !== undefined) {
          if (reset === true) await seal.reset();
          else {
            const key = field(c.body, 'key', isStr, 'one unseal key (base64 or hex)');
            if (key === undefined) throw new ServiceError('invalid_request', 'send one unseal key as "key" (or "reset": true)');
            await seal.unseal(key);
          }
        }
        return { status: 200, json: statusBody() };
      },
    },
    {
      method: 'PUT', path: '/v1/sys/seal', access: 'token', action: 'operator.seal', write: false, body: 'none', param: 'none',
      handler: async () => {
        const seal = ctx.seal;
        if (seal === undefined) throw new ServiceError('invalid_request', NOT_SEALED);
        await seal.seal();
        return { status: 200, json: statusBody() };
      },
    },
  ];
  return routes;
};
