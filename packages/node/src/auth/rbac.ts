/**
 * Role-based access control for management actions.
 *
 * A role is a list of rules; a rule grants `actions` on names matching any of its `paths`
 * globs. `secret.*` actions are scoped by paths over secret names and `transit.*` actions over
 * transit key names (one glob namespace: `app-*` covers the secret `app-db` and the key
 * `app-orders` alike); every other action (tokens, roles, allowlist, KMS, cluster, audit) is
 * global, so a rule that lists it grants it whatever its `paths` say, and such a rule may omit
 * `paths`. Reads and verify are not actions: they are
 * governed by the IP allowlist. Deny is the default; there are no deny rules.
 */
import { parseDuration, parseRateLimit, type RateLimit } from '../duration.js';
import { checkRoleName } from '../validate.js';
import { compileGlob, globProblem, type Glob } from './glob.js';

/** Every action, in CONTRACT.md's order (the first list, then the second wave's). */
export const ACTIONS = [
  'secret.write',
  'secret.list',
  'secret.delete',
  'secret.destroy',
  'secret.rotate',
  'token.create',
  'token.read',
  'token.revoke',
  'role.read',
  'role.write',
  'allowlist.read',
  'allowlist.write',
  'kms.rewrap',
  'cluster.read',
  'cluster.manage',
  'audit.read',
  // Additions of the second wave (CONTRACT.md).
  'secret.read',
  'identity.manage',
  'access.approve',
  'approle.manage',
  'transit.encrypt',
  'transit.decrypt',
  'transit.manage',
  'operator.seal',
] as const;

/** One action from {@link ACTIONS}. */
export type Action = (typeof ACTIONS)[number];

/** The actions whose resource is a secret name (checked against rule paths). */
export const SECRET_ACTIONS: readonly Action[] = Object.freeze(
  ACTIONS.filter((a) => a.startsWith('secret.')),
);

/** The actions whose resource is a transit key name (checked against rule paths). */
export const TRANSIT_ACTIONS: readonly Action[] = Object.freeze(ACTIONS.filter((a) => a.startsWith('transit.')));

/** Every action scoped by rule paths: `secret.*` over secret names, `transit.*` over key names. */
export const PATH_SCOPED_ACTIONS: readonly Action[] = Object.freeze([...SECRET_ACTIONS, ...TRANSIT_ACTIONS]);

/**
 * @param action - an action
 * @returns whether rules grant it per name (their `paths`) rather than globally
 */
export function isPathScoped(action: Action): boolean {
  return PATH_SCOPED_ACTIONS.includes(action);
}

const ACTION_SET: ReadonlySet<string> = new Set(ACTIONS);

/**
 * @param value - anything
 * @returns whether `value` is an action name
 */
export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && ACTION_SET.has(value);
}

/** A rule as stored and as the API accepts it. */
export interface RoleRule {
  readonly paths: readonly string[];
  readonly actions: readonly Action[];
}

/** A role document: the body of `PUT /v1/roles/{name}`. */
export interface RoleDocument {
  readonly rules: readonly RoleRule[];
  readonly rateLimit?: string;
  /** Longest lifetime of a token of this role, e.g. `30d` (never above `COFFER_TOKEN_MAX_TTL`). */
  readonly maxTtl?: string;
}

/** Result of {@link validateRoleDocument}; each error names the field at fault. */
export type RoleValidation =
  | { readonly ok: true; readonly role: RoleDocument }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Bounds that keep a role small enough to evaluate on every request. */
export const MAX_RULES = 100;
/** Most path patterns in one rule. */
export const MAX_PATHS_PER_RULE = 100;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates a role document received over the API. Unknown fields are refused so a misspelt
 * `"action"` cannot silently grant nothing (or, worse, be read differently by a later version).
 *
 * @param doc - parsed JSON body
 * @returns the normalised document, or every error found, each naming its field
 *   (e.g. `rules[0].actions[1]: "secret.reed" is not an action`)
 * @example
 * ```ts
 * validateRoleDocument({ rules: [{ paths: ['payments/*'], actions: ['secret.write'] }], rateLimit: '100/m' });
 * ```
 */
export function validateRoleDocument(doc: unknown): RoleValidation {
  const errors: string[] = [];
  if (!isPlainObject(doc)) return { ok: false, errors: ['role document must be a JSON object'] };
  for (const key of Object.keys(doc)) {
    if (key !== 'rules' && key !== 'rateLimit' && key !== 'maxTtl') errors.push(`${key}: unknown field (expected rules, rateLimit, maxTtl)`);
  }
  let maxTtl: string | undefined;
  if (doc['maxTtl'] !== undefined && doc['maxTtl'] !== null) {
    if (typeof doc['maxTtl'] !== 'string') errors.push('maxTtl: must be a duration such as "30d"');
    else {
      try {
        if (parseDuration(doc['maxTtl']) % 1000 !== 0) throw new Error('must be whole seconds');
        maxTtl = doc['maxTtl'];
      } catch (e) {
        errors.push(`maxTtl: ${(e as Error).message}`);
      }
    }
  }
  let rateLimit: string | undefined;
  if (doc['rateLimit'] !== undefined && doc['rateLimit'] !== null) {
    if (typeof doc['rateLimit'] !== 'string') errors.push('rateLimit: must be a string such as "100/m"');
    else {
      try {
        parseRateLimit(doc['rateLimit']);
        rateLimit = doc['rateLimit'];
      } catch (e) {
        errors.push(`rateLimit: ${(e as Error).message}`);
      }
    }
  }
  const rawRules = doc['rules'];
  const rules: RoleRule[] = [];
  if (!Array.isArray(rawRules)) {
    errors.push('rules: must be an array of {paths, actions}');
  } else if (rawRules.length > MAX_RULES) {
    errors.push(`rules: at most ${MAX_RULES} rules are allowed`);
  } else {
    rawRules.forEach((raw: unknown, i: number) => {
      const at = `rules[${i}]`;
      if (!isPlainObject(raw)) {
        errors.push(`${at}: must be an object {paths, actions}`);
        return;
      }
      for (const key of Object.keys(raw)) {
        if (key !== 'paths' && key !== 'actions') errors.push(`${at}.${key}: unknown field (expected paths, actions)`);
      }
      const actions: Action[] = [];
      if (!Array.isArray(raw['actions']) || raw['actions'].length === 0) {
        errors.push(`${at}.actions: must be a non-empty array of actions`);
      } else {
        (raw['actions'] as unknown[]).forEach((a, j) => {
          if (isAction(a)) {
            if (!actions.includes(a)) actions.push(a);
          } else errors.push(`${at}.actions[${j}]: ${JSON.stringify(a)} is not an action`);
        });
      }
      const paths: string[] = [];
      const needsPaths = actions.some(isPathScoped);
      if (raw['paths'] === undefined) {
        if (needsPaths) errors.push(`${at}.paths: required when the rule grants secret.* or transit.* actions`);
      } else if (!Array.isArray(raw['paths'])) {
        errors.push(`${at}.paths: must be an array of path patterns`);
      } else if (raw['paths'].length > MAX_PATHS_PER_RULE) {
        errors.push(`${at}.paths: at most ${MAX_PATHS_PER_RULE} patterns are allowed`);
      } else if (needsPaths && raw['paths'].length === 0) {
        errors.push(`${at}.paths: must not be empty when the rule grants secret.* or transit.* actions`);
      } else {
        (raw['paths'] as unknown[]).forEach((p, j) => {
          const problem = globProblem(p);
          if (problem !== undefined) errors.push(`${at}.paths[${j}]: ${problem}`);
          else if (!paths.includes(p as string)) paths.push(p as string);
        });
      }
      rules.push({ paths, actions });
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  const role: RoleDocument = { rules, ...(rateLimit === undefined ? {} : { rateLimit }), ...(maxTtl === undefined ? {} : { maxTtl }) };
  return { ok: true, role };
}

/** A role ready for {@link isAllowed}: globs compiled, rate limit parsed. */
export interface CompiledRole {
  readonly name: string;
  readonly document: RoleDocument;
  readonly rateLimit: RateLimit | undefined;
  /** Longest token lifetime this role allows, in ms (undefined: the cluster's cap). */
  readonly maxTtlMs: number | undefined;
  /** Per action, the globs that grant it; global actions map to `'any'`. */
  readonly grants: ReadonlyMap<Action, readonly Glob[] | 'any'>;
}

/** The built-in role's name. */
export const ADMIN_ROLE_NAME = 'admin';

/** The built-in `admin` role's document: every action on every secret; immutable. */
export const ADMIN_ROLE_DOCUMENT: RoleDocument = Object.freeze({
  rules: Object.freeze([Object.freeze({ paths: Object.freeze(['**']), actions: Object.freeze([...ACTIONS]) })]),
});

/**
 * Compiles a validated role document. Compile once per replicated role version, not per request.
 *
 * @param name - the role's name
 * @param doc - a document that passed {@link validateRoleDocument} (or was read from state)
 * @returns the compiled role
 * @throws {TypeError} if the document is invalid (a programmer error: validate first)
 * @example
 * ```ts
 * const role = compileRole('deployer', { rules: [{ paths: ['apps/**'], actions: ['secret.write'] }] });
 * ```
 */
export function compileRole(name: string, doc: RoleDocument): CompiledRole {
  const nameCheck = checkRoleName(name);
  if (!nameCheck.ok) throw new TypeError(nameCheck.reason);
  const v = validateRoleDocument(doc);
  if (!v.ok) throw new TypeError(`role ${name}: ${v.errors.join('; ')}`);
  const grants = new Map<Action, Glob[] | 'any'>();
  for (const rule of v.role.rules) {
    const globs = rule.paths.map(compileGlob);
    for (const action of rule.actions) {
      if (!isPathScoped(action)) {
        grants.set(action, 'any');
        continue;
      }
      const have = grants.get(action);
      if (have === 'any') continue;
      grants.set(action, [...(have ?? []), ...globs]);
    }
  }
  return Object.freeze({
    name,
    document: v.role,
    rateLimit: v.role.rateLimit === undefined ? undefined : parseRateLimit(v.role.rateLimit),
    maxTtlMs: v.role.maxTtl === undefined ? undefined : parseDuration(v.role.maxTtl),
    grants,
  });
}

/** The compiled built-in `admin` role. */
export const ADMIN_ROLE: CompiledRole = compileRole(ADMIN_ROLE_NAME, ADMIN_ROLE_DOCUMENT);

/**
 * Decides one request.
 *
 * @param role - the caller's compiled role
 * @param action - the action the route needs
 * @param resource - for `secret.*` actions, the secret name (for `secret.list`, a listed name);
 *   for `transit.*` actions, the key name; ignored for global actions
 * @returns whether the role grants `action` on `resource`
 * @example
 * ```ts
 * isAllowed(ADMIN_ROLE, 'cluster.manage');                 // true
 * isAllowed(role, 'secret.write', 'apps/web/db-password'); // per the role's globs
 * ```
 */
export function isAllowed(role: CompiledRole, action: Action, resource?: string): boolean {
  const grant = role.grants.get(action);
  if (grant === undefined) return false;
  if (grant === 'any') return true;
  if (resource === undefined || resource.length === 0) return false;
  for (const g of grant) if (g.matches(resource)) return true;
  return false;
}

/**
 * Whether every name one segment pattern can match is also matched by another, decided
 * symbolically: a literal character of `outer` must meet the same literal in `inner`, and a `*` of
 * `outer` may absorb any run of `inner`'s characters and stars. Sound (never says yes wrongly) and
 * exact for the patterns roles use in practice (`*`, `db-*`, literals).
 */
function segmentCovers(outer: string, inner: string): boolean {
  if (outer === '*' || outer === inner) return true;
  if (!outer.includes('*')) return false;
  // dp[j]: outer[0..i) matches inner[0..j)
  let dp: boolean[] = new Array<boolean>(inner.length + 1).fill(false);
  dp[0] = true;
  for (let i = 0; i < outer.length; i++) {
    const next: boolean[] = new Array<boolean>(inner.length + 1).fill(false);
    const oc = outer[i];
    for (let j = 0; j <= inner.length; j++) {
      if (oc === '*') next[j] = (dp[j] ?? false) || (j > 0 && (next[j - 1] ?? false));
      else next[j] = j > 0 && (dp[j - 1] ?? false) && inner[j - 1] === oc;
    }
    dp = next;
  }
  return dp[inner.length] ?? false;
}

/**
 * Whether glob `outer` matches every name glob `inner` matches (see glob.ts for the syntax).
 * Sound: a `true` is always right; a `false` may be conservative for exotic combinations.
 *
 * @param outer - pattern that must cover
 * @param inner - pattern that must be covered
 * @returns whether `outer` ⊇ `inner`
 * @example
 * ```ts
 * globCovers('payments/**', 'payments/eu/*'); // true
 * globCovers('payments/*', 'payments/**');    // false
 * ```
 */
export function globCovers(outer: string, inner: string): boolean {
  if (outer === '**' || outer === inner) return true;
  const o = outer.split('/');
  const n = inner.split('/');
  const memo = new Map<number, boolean>();
  const go = (i: number, j: number): boolean => {
    const key = i * (n.length + 1) + j;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    let r: boolean;
    if (i === o.length) r = j === n.length;
    else if (o[i] === '**') {
      if (i === o.length - 1) r = n.length - j >= 1;
      else {
        r = false;
        for (let k = j; k <= n.length && !r; k++) r = go(i + 1, k);
      }
    } else {
      const seg = n[j];
      r = seg !== undefined && seg !== '**' && segmentCovers(o[i] ?? '', seg) && go(i + 1, j + 1);
    }
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}

/**
 * Whether `outer` grants everything `inner` grants: every action of `inner`, and for `secret.*`
 * actions every path `inner` covers. Used when minting or rotating tokens: a caller may only hand
 * out a role that grants nothing its own role does not (the built-in `admin` covers every role).
 * Rate limits are restrictions, not grants, and are not compared.
 *
 * @param outer - the caller's role
 * @param inner - the role of the token being created or rotated
 * @returns the first grant `outer` lacks (e.g. `cluster.manage` or `secret.write on "a/**"`), or
 *   `undefined` when `outer` covers `inner`
 */
export function missingGrant(outer: CompiledRole, inner: CompiledRole): string | undefined {
  for (const [action, grant] of inner.grants) {
    const have = outer.grants.get(action);
    if (have === undefined) return action;
    if (have === 'any') continue;
    if (grant === 'any') return action;
    for (const g of grant) {
      if (!have.some((h) => globCovers(h.pattern, g.pattern))) return `${action} on "${g.pattern}"`;
    }
  }
  return undefined;
}
