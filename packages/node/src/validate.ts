/**
 * Name rules from CONTRACT.md, checked before anything touches state or the Raft log.
 *
 * Secret names: 1–512 bytes of `[A-Za-z0-9._-]` segments joined by `/`, with no empty, `.` or
 * `..` segment (so a name can never look like a relative path or collide with a route).
 * Token and role names: 1–64 bytes of `[A-Za-z0-9._-]`; `self` is reserved (it names the caller
 * in `/v1/tokens/self`).
 */

/** Outcome of a name check: `reason` is a sentence that names the input, for a 400 answer. */
export type NameCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** Longest secret name, in bytes (all allowed characters are ASCII, so bytes = characters). */
export const MAX_SECRET_NAME_BYTES = 512;
/** Longest token or role name, in bytes. */
export const MAX_TOKEN_NAME_BYTES = 64;
/** Names that no token or role may take. */
export const RESERVED_NAMES: readonly string[] = Object.freeze(['self']);

const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;
const OK: NameCheck = Object.freeze({ ok: true });

function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

function fail(reason: string): NameCheck {
  return { ok: false, reason };
}

/**
 * Checks a secret name.
 *
 * @param name - candidate name (any value; non-strings are refused)
 * @returns `{ok: true}` or `{ok: false, reason}`
 * @example
 * ```ts
 * checkSecretName('payments/stripe/api-key'); // { ok: true }
 * checkSecretName('a//b').ok;                 // false
 * ```
 */
export function checkSecretName(name: unknown): NameCheck {
  if (typeof name !== 'string') return fail('secret name must be a string');
  if (name.length === 0) return fail('secret name must not be empty');
  if (Buffer.byteLength(name, 'utf8') > MAX_SECRET_NAME_BYTES) {
    return fail(`secret name ${quote(name)} is longer than ${MAX_SECRET_NAME_BYTES} bytes`);
  }
  const segments = name.split('/');
  for (const seg of segments) {
    if (seg.length === 0) return fail(`secret name ${quote(name)} has an empty segment`);
    if (seg === '.' || seg === '..') return fail(`secret name ${quote(name)} has a "${seg}" segment`);
    if (!SEGMENT_RE.test(seg)) {
      return fail(`secret name ${quote(name)} may contain only A-Z a-z 0-9 . _ - and / between segments`);
    }
  }
  return OK;
}

/**
 * @param name - candidate name
 * @returns whether `name` is a valid secret name
 */
export function isValidSecretName(name: unknown): name is string {
  return checkSecretName(name).ok;
}

function checkShortName(kind: string, name: unknown): NameCheck {
  if (typeof name !== 'string') return fail(`${kind} name must be a string`);
  if (name.length === 0) return fail(`${kind} name must not be empty`);
  if (Buffer.byteLength(name, 'utf8') > MAX_TOKEN_NAME_BYTES) {
    return fail(`${kind} name ${quote(name)} is longer than ${MAX_TOKEN_NAME_BYTES} bytes`);
  }
  if (!SEGMENT_RE.test(name)) return fail(`${kind} name ${quote(name)} may contain only A-Z a-z 0-9 . _ -`);
  // A name of dots is a path segment every URL normaliser rewrites: /v1/tokens/.. would name no token.
  if (name === '.' || name === '..') return fail(`${kind} name ${quote(name)} is a dot segment, which paths cannot carry`);
  if (RESERVED_NAMES.includes(name)) return fail(`${kind} name ${quote(name)} is reserved`);
  return OK;
}

/**
 * Checks a token name (1–64 bytes of `[A-Za-z0-9._-]`, not `self`).
 *
 * @param name - candidate name
 * @returns `{ok: true}` or `{ok: false, reason}`
 * @example
 * ```ts
 * checkTokenName('billing-service'); // { ok: true }
 * ```
 */
export function checkTokenName(name: unknown): NameCheck {
  return checkShortName('token', name);
}

/**
 * Checks a role name (same rule as token names). `admin` passes here: it is a valid name, and the
 * API refuses to change it because it is built in, not because it is malformed.
 *
 * @param name - candidate name
 * @returns `{ok: true}` or `{ok: false, reason}`
 * @example
 * ```ts
 * checkRoleName('self').ok; // false: reserved
 * ```
 */
export function checkRoleName(name: unknown): NameCheck {
  return checkShortName('role', name);
}

/**
 * Checks a cluster member id (`COFFER_NODE_ID`, `COFFER_INITIAL_CLUSTER` entries): the same
 * character set and length as token names, so ids are safe in URLs, logs and metric labels.
 *
 * @param id - candidate id
 * @returns `{ok: true}` or `{ok: false, reason}`
 * @example
 * ```ts
 * checkNodeId('n1'); // { ok: true }
 * ```
 */
export function checkNodeId(id: unknown): NameCheck {
  return checkShortName('node', id);
}
