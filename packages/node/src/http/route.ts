/**
 * What a route is: its declared security (access, action, parameter kind, body, forwarding), its
 * handler, and the request it runs on. Route families (http/routes/*.ts) return {@link RouteSpec}s;
 * api.ts compiles them in order; pipeline.ts enforces each spec before the handler runs.
 *
 * Patterns: exact paths, one-segment parameters (`{name}`), and whole-rest parameters (`{name+}`:
 * everything after the prefix is the secret name, so operations are prefixes and no name can
 * collide with a route). The dispatcher and docs/API.md share these templates.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenRecord } from '@coffer/state';
import type { Action, CompiledRole } from '../auth/rbac.js';
import type { NodeContext } from '../context.js';
import type { AccessCache } from '../service/access.js';
import type { ClusterService } from '../service/cluster.js';
import type { PolicyService } from '../service/roles.js';
import type { SecretService } from '../service/secrets.js';
import type { TokenService } from '../service/tokens.js';

/** HTTP methods the API serves (`LIST` is Vault's; see list-method.ts for how it reaches us). */
export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH' | 'LIST';

/** How a route is guarded. */
export type RouteAccess = 'public' | 'allowlist' | 'token' | 'anyToken' | 'login';

/** What a handler answers. */
export interface Reply {
  readonly status: number;
  readonly json?: unknown;
  readonly raw?: { readonly data: Uint8Array | string; readonly contentType: string; readonly headers?: Record<string, string> };
  /** Runs after the answer is written (zeroize plaintext). */
  readonly after?: () => void;
}

/** One request in flight through the pipeline. */
export interface Call {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly query: URLSearchParams;
  /** Decoded route parameter ('' for exact routes). */
  param: string;
  ip: string | undefined;
  /** Authenticated token (token routes) or the token a reader presented, if valid. */
  token: Readonly<TokenRecord> | undefined;
  role: CompiledRole | undefined;
  /** The identity a session token authenticated as (`token` is then the session's token-shaped view). */
  identity?: string | undefined;
  /** What the audit line names as acted on. */
  resource: string | null;
  /** Further names acted on, each recorded in an audit line of its own (batch reads). */
  moreResources: readonly string[] | undefined;
  body: Record<string, unknown>;
  /** The body as received (every route with a body). */
  rawBody: Uint8Array | undefined;
}

/** A compiled pattern. */
export interface Pattern {
  /** The template as documented, e.g. `/v1/tokens/{name}/rotate`. */
  readonly template: string;
  /**
   * @param path - request path without the query, still percent-encoded
   * @returns the raw (encoded) parameter, `''` for exact paths, or null when it does not match
   */
  match(path: string): string | null;
}

/** A route of the API. */
export interface Route {
  readonly method: Method;
  readonly pattern: Pattern;
  readonly access: RouteAccess;
  /** RBAC action (token routes). */
  readonly action?: Action;
  /** What the audit line records (defaults to `action`). */
  readonly auditAction: string;
  /** Forwarded to the leader from followers. */
  readonly write: boolean;
  /**
   * A write that runs where it arrives, also on a follower whose leader takes proposals handed to
   * it (Raft MsgProp): there the pipeline first waits for a read barrier, so the token, role and
   * allowlist are checked on state at least as fresh as the leader's, then authorises, runs the
   * handler (which proposes with `viaLeader`) and audits on this node. Without such a leader the
   * route is forwarded like any write. For routes whose handler only proposes commands the state
   * machine checks again at apply (secret puts: version, CAS).
   */
  readonly proposeHere?: boolean;
  /**
   * A read a follower hands to the leader when it can (the leader's view is the accurate one,
   * e.g. replication progress), answering from its own state when no leader is reachable.
   */
  readonly preferLeader?: boolean;
  readonly body: 'none' | 'json' | 'optionalJson' | 'raw';
  /** A tighter body limit than the default (e.g. the unseal key: a few hundred bytes). */
  readonly maxBodyBytes?: number;
  /**
   * Served while this node is sealed (COFFER_SEAL=shamir): health, init, unseal, seal-status.
   * Every other route answers 503 `sealed` before anything else is checked or read.
   */
  readonly whileSealed?: boolean;
  /**
   * How the route parameter is checked. `folder` is a Vault KV v2 list path: a name prefix that
   * may end in `/` (or be empty); RBAC then only needs `secret.list` somewhere, names are filtered.
   */
  readonly param: 'none' | 'secret' | 'token' | 'role' | 'member' | 'folder' | 'transitKey' | 'identity' | 'requestId';
  /** Errors in Vault's envelope (`{"errors": [...]}`) and statuses instead of the native ones. */
  readonly vault?: boolean;
  /** Whether the lockout applies to an allowlist route (verify). */
  readonly lockout?: boolean;
  /**
   * Actions the body asks for beyond `action` (checked on the route's name once the body is read,
   * before the handler and before forwarding): one action, one permission, whatever the route.
   */
  readonly extraActions?: (body: Record<string, unknown>) => readonly Action[];
  /**
   * A secret read (get, batch, verify, Vault data read): authorised as COFFER_READ_AUTH says —
   * by address, by a token granting `secret.read` on the name, or both.
   */
  readonly secretRead?: boolean;
  /** The names a secret read reads from its body (batch), each checked for `secret.read`. */
  readonly readNames?: (body: Record<string, unknown>) => readonly string[];
  /**
   * Actions on other secrets that the body asks for (e.g. `secret.read` on a rotation target's
   * connection secret), checked where the request arrives, before the handler and before
   * forwarding, whatever COFFER_READ_AUTH says.
   */
  readonly bodyGrants?: (body: Record<string, unknown>) => readonly { readonly action: Action; readonly name: string }[];
  /**
   * The org a request acts in, for routes an org `admin` may use without the route's action
   * (memberships, deciding access requests): a session lacking `action` passes when its identity
   * is admin of this org. Evaluated after the body is read, before the handler and forwarding.
   */
  readonly orgScope?: (call: Call) => string | undefined;
  /**
   * A `login` route's credential check, run where the request arrives when that node forwards it
   * (authorise where it arrives: a bad login never reaches the leader); the leader's handler
   * checks again. Throws the refusal (and counts it toward the lockout) itself.
   */
  readonly checkBeforeForward?: (call: Call) => Promise<void>;
  readonly handler: (call: Call) => Promise<Reply>;
}

/** What a route family declares for one route: a {@link Route} with its path as text. */
export type RouteSpec = Omit<Route, 'pattern' | 'auditAction'> & { readonly path: string; readonly auditAction?: string };

/** A documented route: method and template (for docs/API.md and the sync test). */
export interface RouteInfo {
  readonly method: Method;
  readonly template: string;
  readonly access: RouteAccess;
  readonly action: string;
}

/** What every route family is given (built once per API by api.ts). */
export interface RouteDeps {
  readonly ctx: NodeContext;
  readonly access: AccessCache;
  readonly secrets: SecretService;
  readonly tokens: TokenService;
  readonly policy: PolicyService;
  readonly cluster: ClusterService;
  /** The name the audit and the state record as the actor: the token's name, or `-`. */
  readonly actor: (c: Call) => string;
  /** Counts a failed authentication (or verify mismatch) from `ip` toward the lockout. */
  readonly countAuthFailure: (ip: string) => void;
}

/**
 * A route family: one file in http/routes/, one line in api.ts's `FAMILIES`.
 *
 * @example
 * ```ts
 * export const pingRoutes: RouteFamily = () => [
 *   { method: 'GET', path: '/v1/ping', access: 'public', auditAction: 'sys.ping', write: false, body: 'none', param: 'none',
 *     handler: async () => ({ status: 200, json: { pong: true } }) },
 * ];
 * ```
 */
export type RouteFamily = (deps: RouteDeps) => readonly RouteSpec[];

/**
 * Compiles a template.
 *
 * @param template - `/exact`, `/prefix/{name}`, `/prefix/{name}/suffix` or `/prefix/{name+}`
 * @returns the pattern
 * @throws {TypeError} for a template with more than one parameter
 */
export function compilePattern(template: string): Pattern {
  const open = template.indexOf('{');
  if (open === -1) return { template, match: (p) => (p === template ? '' : null) };
  const close = template.indexOf('}', open);
  if (close === -1 || template.indexOf('{', close) !== -1) throw new TypeError(`bad route template ${template}`);
  const prefix = template.slice(0, open);
  const rest = template.slice(open + 1, close).endsWith('+');
  const suffix = template.slice(close + 1);
  if (rest) {
    if (suffix !== '') throw new TypeError(`a {name+} parameter must end the template: ${template}`);
    return { template, match: (p) => (p.length > prefix.length && p.startsWith(prefix) ? p.slice(prefix.length) : null) };
  }
  return {
    template,
    match(p) {
      if (!p.startsWith(prefix) || !p.endsWith(suffix) || p.length <= prefix.length + suffix.length) return null;
      const seg = p.slice(prefix.length, p.length - suffix.length);
      return seg.includes('/') ? null : seg;
    },
  };
}

/**
 * @param spec - a family's route
 * @returns the compiled route (`auditAction` defaults to `action`, else `none`)
 */
export function compileRoute(spec: RouteSpec): Route {
  const { path, auditAction, ...rest } = spec;
  return { ...rest, pattern: compilePattern(path), auditAction: auditAction ?? spec.action ?? 'none' };
}
