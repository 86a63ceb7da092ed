/**
 * AppRole: machine logins with a public role id and a secret id (`client.loginWithAppRole`), and
 * approle management (`client.approles`).
 */
import { CofferError } from '../errors.js';
import { encodeSegment, pickArray, type ApiCore } from '../internal/core.js';
import type { Session } from './ed25519.js';

/** What an AppRole login needs. Keep the secret id out of argv and logs: read it from a file. */
export interface AppRoleLoginOptions {
  /** The approle's public role id. */
  roleId: string;
  /** A secret id minted by `POST /v1/approles/{name}/secret-id` (or `coffer approle secret-id`). */
  secretId: string;
}

/** An approle as the server shows it (never a secret id). */
export interface AppRoleInfo {
  name: string;
  role: string;
  roleId: string;
  tokenTtl: string;
  secretIdTtl: string | null;
  secretIdUses: number | null;
  boundCidrs: string[];
  liveSecretIds: number;
  createdAt: string;
  updatedAt: string;
}

/** Settings of `PUT /v1/approles/{name}` (absent: token TTL 1 h, secret ids without expiry or use limit, no CIDR binding). */
export interface AppRoleSettings {
  role: string;
  tokenTtl?: string;
  secretIdTtl?: string;
  /** 0 or absent: unlimited. */
  secretIdUses?: number;
  boundCidrs?: string[];
}

/** A freshly minted secret id: shown once. */
export interface MintedSecretId {
  name: string;
  secretId: string;
  expiresAt: string | null;
  usesLeft: number | null;
}

/**
 * Logs in once: `POST /v1/auth/approle/login` (Vault's shape). Not retried blindly (a retry could
 * spend a second use of the secret id); retried once only when the request never reached a node.
 *
 * @param core - the client's internals
 * @param opts - role id and secret id
 * @returns the session (token and expiry)
 * @throws {CofferError} `invalid_token` (wrong, expired or used-up secret id), `permission_denied`
 *   (outside the approle's bound CIDRs), `locked_out`
 */
export async function loginWithAppRole(core: ApiCore, opts: AppRoleLoginOptions): Promise<Session> {
  if (typeof opts.roleId !== 'string' || opts.roleId === '' || typeof opts.secretId !== 'string' || opts.secretId === '') {
    throw new TypeError('loginWithAppRole needs a roleId and a secretId');
  }
  const once = async (): Promise<Session> => {
    const body = await core.json<{ auth?: { client_token?: unknown; lease_duration?: unknown } }>({
      method: 'POST',
      path: '/v1/auth/approle/login',
      json: { role_id: opts.roleId, secret_id: opts.secretId },
      idempotent: false,
    });
    const token = body?.auth?.client_token;
    const lease = body?.auth?.lease_duration;
    if (typeof token !== 'string' || typeof lease !== 'number') throw new CofferError('invalid_response', 'the login answer has no auth.client_token');
    return { token, expiresAt: new Date(core.now() + lease * 1000).toISOString() };
  };
  try {
    return await once();
  } catch (err) {
    // `unavailable`: nothing reached a node, so no use was spent.
    if (err instanceof CofferError && err.code === 'unavailable') return once();
    throw err;
  }
}

/** Approle management (`client.approles`): needs `approle.manage` and a role covering the approle's. */
export class AppRolesApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * Create or replace an approle (an update keeps its role id and its secret ids).
   *
   * @param name - approle name (1–40 characters of `[A-Za-z0-9._-]`)
   * @param settings - the role its logins get, and the limits
   * @returns the name and the public role id
   * @throws {CofferError} `permission_denied`, `invalid_request`, `invalid_name`
   * @example
   * ```ts
   * const { roleId } = await client.approles.put('ci', { role: 'deployer', secretIdTtl: '30d', boundCidrs: ['10.8.0.0/24'] });
   * ```
   */
  async put(name: string, settings: AppRoleSettings): Promise<{ name: string; roleId: string }> {
    return this.#core.json<{ name: string; roleId: string }>({ method: 'PUT', path: `/v1/approles/${encodeSegment(name)}`, json: settings, idempotent: true });
  }

  /**
   * @param name - approle name
   * @returns the approle (no secret ids)
   * @throws {CofferError} `not_found`, `permission_denied`
   */
  async get(name: string): Promise<AppRoleInfo> {
    return this.#core.json<AppRoleInfo>({ method: 'GET', path: `/v1/approles/${encodeSegment(name)}`, idempotent: true });
  }

  /** @returns every approle */
  async list(): Promise<AppRoleInfo[]> {
    return pickArray<AppRoleInfo>(await this.#core.json<unknown>({ method: 'GET', path: '/v1/approles', idempotent: true }), ['approles']);
  }

  /**
   * Mint a secret id (shown once; older ones stay valid). Not retried: a retry would mint another.
   *
   * @param name - approle name
   * @returns the secret id and its expiry
   * @throws {CofferError} `not_found`, `permission_denied`
   */
  async secretId(name: string): Promise<MintedSecretId> {
    return this.#core.json<MintedSecretId>({ method: 'POST', path: `/v1/approles/${encodeSegment(name)}/secret-id`, idempotent: false });
  }

  /**
   * Delete an approle, its secret ids and the sessions its logins created. Not retried.
   *
   * @param name - approle name
   * @throws {CofferError} `not_found`, `permission_denied`
   */
  async delete(name: string): Promise<void> {
    await this.#core.json<unknown>({ method: 'DELETE', path: `/v1/approles/${encodeSegment(name)}`, idempotent: false });
  }
}
