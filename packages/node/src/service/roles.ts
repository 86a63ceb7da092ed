/**
 * Roles and the read allowlist: replicated access-control documents.
 */
import type { NodeContext } from '../context.js';
import { ADMIN_ROLE_DOCUMENT, ADMIN_ROLE_NAME, validateRoleDocument, type RoleDocument } from '../auth/rbac.js';
import { parseDuration } from '../duration.js';
import { ServiceError } from './errors.js';
import { validateCidrs } from '../net/allowlist.js';
import { commandId, iso } from './common.js';
import { roleDocument } from './access.js';
import { expectOk } from './results.js';

/**
 * The API view of a role.
 *
 * @param ctx - the node
 * @param name - role name
 * @returns `{name, rules, rateLimit?, builtIn, updatedAt}` or undefined
 */
export function roleView(ctx: NodeContext, name: string): Record<string, unknown> | undefined {
  const rec = ctx.state.getRole(name);
  if (rec === undefined) return undefined;
  if (name === ADMIN_ROLE_NAME) return { name, ...ADMIN_ROLE_DOCUMENT, builtIn: true, updatedAt: null };
  return { name, ...roleDocument(rec), builtIn: false, updatedAt: iso(rec.updatedAt) };
}

/** Role and allowlist operations of one node. */
export class PolicyService {
  private readonly ctx: NodeContext;

  /** @param ctx - the running node */
  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  /**
   * Creates or replaces a role.
   *
   * @param name - validated role name
   * @param body - the role document as received
   * @param actor - caller's token name
   * @returns the stored document
   * @throws {ServiceError} `immutable_role` (admin), `invalid_request` naming every bad field
   */
  async putRole(name: string, body: unknown, actor: string): Promise<RoleDocument> {
    if (name === ADMIN_ROLE_NAME) throw new ServiceError('immutable_role', 'the built-in admin role cannot be changed');
    const v = validateRoleDocument(body);
    if (!v.ok) throw new ServiceError('invalid_request', `invalid role document: ${v.errors.join('; ')}`);
    const rules = v.role.rules.map((r) => ({ paths: [...r.paths], actions: [...r.actions] as string[] }));
    const maxTtlSecs = v.role.maxTtl === undefined ? null : parseDuration(v.role.maxTtl) / 1000;
    expectOk(await this.ctx.propose({ type: 'role.put', requestId: commandId(), at: this.ctx.now(), name, rules, rateLimit: v.role.rateLimit ?? null, actor, maxTtlSecs }));
    return v.role;
  }

  /**
   * Deletes a role.
   *
   * @param name - role name
   * @param actor - caller's token name
   * @throws {ServiceError} `immutable_role`, `not_found`, `role_in_use` (409)
   */
  async deleteRole(name: string, actor: string): Promise<void> {
    if (name === ADMIN_ROLE_NAME) throw new ServiceError('immutable_role', 'the built-in admin role cannot be deleted');
    expectOk(await this.ctx.propose({ type: 'role.delete', requestId: commandId(), at: this.ctx.now(), name, actor }), {
      not_found: `no role named "${name}"`,
      role_in_use: `role "${name}" is used by a live token; revoke or re-role those tokens first`,
    });
  }

  /**
   * Replaces the read allowlist.
   *
   * @param cidrs - the list as received
   * @param actor - caller's token name
   * @returns the canonical list stored
   * @throws {ServiceError} `invalid_request` naming each bad entry
   */
  async setAllowlist(cidrs: unknown, actor: string): Promise<string[]> {
    const v = validateCidrs(cidrs);
    if (!v.ok) throw new ServiceError('invalid_request', v.errors.join('; '));
    const list = [...v.cidrs];
    expectOk(await this.ctx.propose({ type: 'allowlist.replace', requestId: commandId(), at: this.ctx.now(), cidrs: list, actor }));
    return list;
  }
}
