/**
 * The client-facing HTTP API (CONTRACT.md): assembles the route families into one table and puts
 * the request pipeline in front of it. Nothing else happens here; see http/README.md for the
 * pipeline, the route table and the error table.
 *
 * Adding a route family: one file in http/routes/ exporting a {@link RouteFamily}, and one line in
 * {@link FAMILIES}. Order matters only where patterns overlap (the first match wins) and for the
 * `Allow` header of a 405, which lists methods in table order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NodeContext } from '../context.js';
import { AccessCache } from '../service/access.js';
import { ClusterService } from '../service/cluster.js';
import { PolicyService } from '../service/roles.js';
import { SecretService } from '../service/secrets.js';
import { TokenService } from '../service/tokens.js';
import { sendError, toServiceError } from './errors.js';
import { countAuthFailure, createPipeline } from './pipeline.js';
import { compileRoute, type Call, type Route, type RouteDeps, type RouteFamily, type RouteInfo } from './route.js';
import { approleRoutes } from './routes/approle.js';
import { accessRequestRoutes } from './routes/access-requests.js';
import { auditRoutes } from './routes/audit.js';
import { ed25519AuthRoutes } from './routes/auth-ed25519.js';
import { clusterRoutes } from './routes/cluster.js';
import { identityRoutes } from './routes/identities.js';
import { kmsRoutes } from './routes/kms.js';
import { roleRoutes } from './routes/roles.js';
import { sealRoutes } from './routes/seal.js';
import { secretRoutes } from './routes/secrets.js';
import { sysRoutes } from './routes/sys.js';
import { tokenRoutes } from './routes/tokens.js';
import { transitRoutes } from './routes/transit.js';
import { vaultKv2Routes } from './routes/vault-kv2.js';

export type { RouteAccess, RouteInfo } from './route.js';

/** Every route family, in dispatch order. */
const FAMILIES: readonly RouteFamily[] = [
  secretRoutes,
  tokenRoutes,
  roleRoutes, // and the read allowlist
  kmsRoutes,
  clusterRoutes,
  auditRoutes,
  identityRoutes, // and memberships
  accessRequestRoutes,
  ed25519AuthRoutes,
  approleRoutes,
  transitRoutes,
  vaultKv2Routes,
  sealRoutes,
  sysRoutes,
];

/** The API: a node:http request listener, and the table it serves. */
export interface Api {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Every route, in dispatch order. */
  readonly routes: readonly RouteInfo[];
}

/**
 * Builds the API.
 *
 * @param ctx - the running node (everything the routes use)
 * @returns a request listener for `http.createServer` / `https.createServer`
 * @example
 * ```ts
 * const api = createApi(ctx);
 * http.createServer(api).listen(8200, '127.0.0.1');
 * ```
 */
export function createApi(ctx: NodeContext): Api {
  const access = new AccessCache();
  const deps: RouteDeps = {
    ctx,
    access,
    secrets: new SecretService(ctx),
    tokens: new TokenService(ctx),
    policy: new PolicyService(ctx),
    cluster: new ClusterService(ctx),
    actor: (c: Call) => c.token?.name ?? '-',
    countAuthFailure: (ip) => countAuthFailure(ctx, ip),
  };
  const routes: Route[] = FAMILIES.flatMap((family) => family(deps).map(compileRoute));
  const dispatch = createPipeline(ctx, access, routes);
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    dispatch(req, res).catch((err: unknown) => {
      // The pipeline answers every request itself; this is the net under a bug in it.
      ctx.logger.error({ err }, 'request failed');
      if (res.headersSent) res.destroy();
      else sendError(res, toServiceError(err), 'unknown');
    });
  };
  return Object.assign(listener, { routes: Object.freeze(listRoutes(routes)) });
}

function listRoutes(routes: readonly Route[]): RouteInfo[] {
  return routes.map((r) => ({ method: r.method, template: r.pattern.template, access: r.access, action: r.action ?? r.auditAction }));
}

/**
 * Every route the API mounts, native and Vault KV v2 (method, template, guard, action), in
 * dispatch order. docs/API.md documents exactly these; a test keeps the two in sync.
 *
 * @param api - an API from {@link createApi}
 * @returns the routes
 */
export function apiRoutes(api: Api): readonly RouteInfo[] {
  return api.routes;
}
