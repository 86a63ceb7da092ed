import { encodeSegment, pickArray, type ApiCore } from '../internal/core.js';
import type { Role, RoleDefinition } from '../types.js';

/** Role management (`client.roles`). */
export class RolesApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * @returns every role (names, and definitions when the server includes them)
   * @throws {CofferError} `permission_denied`
   */
  async list(): Promise<Role[]> {
    const body = await this.#core.json<unknown>({ method: 'GET', path: '/v1/roles', idempotent: true });
    return pickArray<Role | string>(body, ['roles', 'items']).map((r) => (typeof r === 'string' ? { name: r, rules: [] } : r));
  }

  /**
   * @param name - role name
   * @returns the role
   * @throws {CofferError} `permission_denied`, `not_found`
   */
  async get(name: string): Promise<Role> {
    const role = await this.#core.json<Role>({ method: 'GET', path: `/v1/roles/${encodeSegment(name)}`, idempotent: true });
    return { ...role, name: role.name ?? name };
  }

  /**
   * Create or replace a role. A whole-value PUT, so it is retried like a read.
   *
   * @param name - role name (`admin` is immutable)
   * @param def - rules and optional rate limit
   * @returns the stored role
   * @throws {CofferError} `permission_denied`, `immutable_role`, `invalid_request`
   * @example
   * ```ts
   * await client.roles.put('deployer', { rules: [{ paths: ['payments/*'], actions: ['secret.write'] }] });
   * ```
   */
  async put(name: string, def: RoleDefinition): Promise<Role> {
    const body = await this.#core.json<Role | undefined>({ method: 'PUT', path: `/v1/roles/${encodeSegment(name)}`, json: def, idempotent: true });
    return body ?? { name, ...def };
  }

  /**
   * Delete a role (refused while a token uses it). Not retried.
   *
   * @param name - role name
   * @throws {CofferError} `permission_denied`, `not_found`, `role_in_use`, `outcome_unknown`
   */
  async delete(name: string): Promise<void> {
    await this.#core.json<unknown>({ method: 'DELETE', path: `/v1/roles/${encodeSegment(name)}`, idempotent: false });
  }
}
