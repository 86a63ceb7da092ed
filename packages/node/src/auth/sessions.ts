/**
 * Identity sessions as principals: a session token authenticates as `identity:<name>`, and its
 * permissions are an effective role compiled from the identity's memberships.
 *
 * | membership          | grants                                                                     |
 * |---------------------|----------------------------------------------------------------------------|
 * | `admin` of org O    | every `secret.*` action on `org/O/**` (and deciding O's access requests)   |
 * | `member` of O/P     | `secret.read`, `secret.write`, `secret.list`, `secret.delete` on `org/O/project/P/**` |
 * | `readonly` of O/P   | `secret.read`, `secret.list` on `org/O/project/P/**`                       |
 *
 * The effective role is compiled with the ordinary RBAC machinery (`compileRole`) once per
 * replicated memberships record (the state replaces the record object on every change, so record
 * identity is the cache key, as for roles). Deciding access requests is not in the compiled role:
 * `access.approve` is a global action, and an org admin may decide only its own org's requests —
 * the pipeline checks that per request ({@link isOrgAdmin}).
 *
 * A session is checked on every request against the replicated records: expired, unknown, or its
 * identity disabled or deleted → it no longer authenticates, on every node at once.
 */
import { hashToken } from '@coffer/crypto';
import { identities, memberships, sessionByHash, type FamilyTables, type MembershipEntry, type MembershipRole, type MembershipsRecord, type TokenRecord } from '@coffer/state';
import { SECRET_ACTIONS, compileRole, type Action, type CompiledRole, type RoleRule } from './rbac.js';

/** The name of the principal a session authenticates as. */
export const identityPrincipal = (identity: string): string => `identity:${identity}`;

/** The role name shown for a session's effective role (not a stored role; never writable). */
export const SESSION_ROLE_NAME = 'memberships';

const MEMBER_ACTIONS: readonly Action[] = ['secret.read', 'secret.write', 'secret.list', 'secret.delete'];
const READONLY_ACTIONS: readonly Action[] = ['secret.read', 'secret.list'];

/**
 * The secret paths and actions one membership grants.
 *
 * @param m - org, project (null for org-wide), role
 * @returns the rule
 */
export function membershipRule(m: { org: string; project: string | null; role: MembershipRole }): RoleRule {
  if (m.role === 'admin') return { paths: [`org/${m.org}/**`], actions: [...SECRET_ACTIONS] };
  const paths = [`org/${m.org}/project/${m.project ?? ''}/**`];
  return { paths, actions: [...(m.role === 'member' ? MEMBER_ACTIONS : READONLY_ACTIONS)] };
}

/**
 * Compiles memberships into a role.
 *
 * @param entries - the identity's memberships
 * @returns the role (no grants for no memberships)
 * @throws {TypeError} more memberships than a role may have rules (the service caps them below)
 */
export function compileMemberships(entries: readonly Pick<MembershipEntry, 'org' | 'project' | 'role'>[]): CompiledRole {
  return compileRole(SESSION_ROLE_NAME, { rules: entries.map(membershipRule) });
}

/** What a session authenticates as. */
export interface SessionPrincipal {
  readonly identity: string;
  /** A token-shaped view of the session (name `identity:<name>`), for audit, metrics and who-am-I. */
  readonly token: Readonly<TokenRecord>;
  readonly role: CompiledRole;
}

/** Session lookups and compiled effective roles of one node. */
export class SessionAuth {
  readonly #roles = new Map<string, { readonly rec: Readonly<MembershipsRecord> | undefined; readonly role: CompiledRole }>();

  /**
   * The session a raw token opens, if it is live and its identity active.
   *
   * @param state - the current replicated state
   * @param raw - the presented bearer token
   * @param now - the node's clock
   * @returns the principal, or undefined (unknown, expired, identity disabled or deleted)
   */
  authenticate(state: FamilyTables, raw: string, now: number): SessionPrincipal | undefined {
    const s = sessionByHash(state, hashToken(raw));
    if (s === undefined || s.expiresAt <= now) return undefined;
    const id = state.table(identities).get(s.identity);
    if (id === undefined || id.disabledAt !== null) return undefined;
    const token: TokenRecord = {
      name: identityPrincipal(s.identity),
      role: SESSION_ROLE_NAME,
      tokenHash: s.tokenHash,
      createdAt: s.createdAt,
      createdBy: 'login',
      expiresAt: s.expiresAt,
      revokedAt: null,
      rotatedAt: null,
    };
    return { identity: s.identity, token, role: this.roleOf(state, s.identity) };
  }

  /**
   * The effective role of an identity (cached per replicated memberships record).
   *
   * @param state - the current state
   * @param identity - identity name
   * @returns the compiled role; no grants when it has no memberships or they do not compile
   */
  roleOf(state: FamilyTables, identity: string): CompiledRole {
    const rec = state.table(memberships).get(identity);
    const hit = this.#roles.get(identity);
    if (hit !== undefined && hit.rec === rec) return hit.role;
    let role: CompiledRole;
    try {
      role = compileMemberships(rec?.entries ?? []);
    } catch {
      role = compileMemberships([]); // fail closed
    }
    if (this.#roles.size > 10_000) this.#roles.clear();
    this.#roles.set(identity, { rec, role });
    return role;
  }
}

/**
 * Whether an identity is `admin` of an org.
 *
 * @param state - the current state
 * @param identity - identity name
 * @param org - org name
 * @returns true for an active identity with an org-wide admin membership of `org`
 */
export function isOrgAdmin(state: FamilyTables, identity: string, org: string): boolean {
  const id = state.table(identities).get(identity);
  if (id === undefined || id.disabledAt !== null) return false;
  return state.table(memberships).get(identity)?.entries.some((e) => e.org === org && e.role === 'admin') ?? false;
}
