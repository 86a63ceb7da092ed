/**
 * Compiled access-control inputs, rebuilt only when the replicated records change.
 *
 * The state machine replaces a role or allowlist record object whenever it changes (and a snapshot
 * install replaces them all), so record identity is the cache key: a request costs a Map lookup and
 * an identity compare, never a glob compile or a CIDR parse.
 */
import type { RoleRecord, StateMachine } from '@coffer/state';
import { ADMIN_ROLE, ADMIN_ROLE_NAME, compileRole, isAction, type CompiledRole, type RoleDocument, type RoleRule } from '../auth/rbac.js';
import { formatDuration } from '../duration.js';
import { Allowlist } from '../net/allowlist.js';

const DENY_ALL: Allowlist = Allowlist.denyAll();

/** Caches compiled roles and the compiled allowlist of one node. */
export class AccessCache {
  private readonly roles = new Map<string, { readonly rec: Readonly<RoleRecord>; readonly compiled: CompiledRole | null }>();
  private allowlistCidrs: readonly string[] | undefined;
  private allowlist: Allowlist = DENY_ALL;

  /**
   * The compiled role a token's role name refers to.
   *
   * @param state - the current state (read it from the context each time)
   * @param name - role name
   * @returns the compiled role, or `undefined` when the role is missing or its stored document
   *   does not compile (fail closed: no grants)
   */
  role(state: StateMachine, name: string): CompiledRole | undefined {
    const rec = state.getRole(name);
    if (rec === undefined) return undefined;
    // NB: the state's built-in record says actions ['*'] on ['**']; rbac spells admin out.
    if (name === ADMIN_ROLE_NAME) return ADMIN_ROLE;
    const hit = this.roles.get(name);
    if (hit !== undefined && hit.rec === rec) return hit.compiled ?? undefined;
    let compiled: CompiledRole | null;
    try {
      compiled = compileRole(name, roleDocument(rec));
    } catch {
      compiled = null;
    }
    if (this.roles.size > 10_000) this.roles.clear();
    this.roles.set(name, { rec, compiled });
    return compiled ?? undefined;
  }

  /**
   * The compiled read allowlist.
   *
   * @param state - the current state
   * @returns the allowlist (deny-all when empty or invalid)
   */
  readAllowlist(state: StateMachine): Allowlist {
    const cidrs = state.getAllowlist();
    if (cidrs.length === 0) return DENY_ALL;
    if (cidrs !== this.allowlistCidrs) {
      this.allowlist = Allowlist.from(cidrs);
      this.allowlistCidrs = cidrs;
    }
    return this.allowlist;
  }
}

/**
 * A stored role as an API document.
 *
 * @param rec - the role record
 * @returns `{rules, rateLimit?, maxTtl?}`
 */
export function roleDocument(rec: Readonly<RoleRecord>): RoleDocument {
  // Stored actions were validated when written; one this node does not know (a newer member's) grants nothing here.
  const rules = rec.rules.map((r): RoleRule => ({ paths: [...r.paths], actions: r.actions.filter(isAction) }));
  return {
    rules,
    ...(rec.rateLimit === null ? {} : { rateLimit: rec.rateLimit }),
    ...(rec.maxTtlSecs === null || rec.maxTtlSecs === undefined ? {} : { maxTtl: formatDuration(rec.maxTtlSecs) }),
  };
}
