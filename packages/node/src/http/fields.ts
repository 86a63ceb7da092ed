/**
 * Small checks route handlers share: fields of a JSON body, names, query options. Every refusal
 * is a {@link ServiceError} naming the field.
 */
import type { ReadConsistency } from '../context.js';
import { ServiceError } from '../service/errors.js';
import type { NameCheck } from '../validate.js';

/**
 * @param check - a name check from validate.ts
 * @throws {ServiceError} `invalid_name` with the check's reason
 */
export function nameOrThrow(check: NameCheck): void {
  if (!check.ok) throw new ServiceError('invalid_name', check.reason);
}

/**
 * An optional body field of a given kind.
 *
 * @param body - the JSON body
 * @param key - the field
 * @param ok - the kind's guard
 * @param what - the kind, for the message
 * @returns the value, or undefined when absent or null
 * @throws {ServiceError} `invalid_request` for a value of another kind
 */
export function field<T>(body: Record<string, unknown>, key: string, ok: (v: unknown) => v is T, what: string): T | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (!ok(v)) throw new ServiceError('invalid_request', `"${key}" must be ${what}`);
  return v;
}

/** @returns whether `v` is a string */
export const isStr = (v: unknown): v is string => typeof v === 'string';
/** @returns whether `v` is a whole number ≥ 0 */
export const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** @returns whether `v` is a plain JSON object */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * @param body - the JSON body
 * @param allowed - the fields the route knows
 * @throws {ServiceError} `invalid_request` naming the first unknown field
 */
export function onlyKeys(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw new ServiceError('invalid_request', `unknown field "${k}" (expected ${allowed.join(', ')})`);
  }
}

/**
 * @param body - the JSON body
 * @returns its optional `versions` list (empty when absent)
 * @throws {ServiceError} `invalid_request`
 */
export function versionsField(body: Record<string, unknown>): number[] {
  const v = body['versions'];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.length > 1000 || !v.every((n) => isNat(n) && n >= 1)) {
    throw new ServiceError('invalid_request', '"versions" must be an array of version numbers (>= 1)');
  }
  return v as number[];
}

/**
 * @param query - the request's query
 * @returns the `consistency` it asks for (default linearizable)
 * @throws {ServiceError} `invalid_request`
 */
export function consistencyOf(query: URLSearchParams): ReadConsistency {
  const c = query.get('consistency');
  if (c === null || c === '' || c === 'linearizable') return 'linearizable';
  if (c === 'stale') return 'stale';
  throw new ServiceError('invalid_request', '"consistency" must be linearizable or stale');
}

/**
 * @param s - text from a request, or nothing
 * @param max - most characters kept
 * @returns the text cut to `max` characters (audit resources), or null
 */
export function clip(s: string | null | undefined, max: number): string | null {
  if (s === null || s === undefined) return null;
  return s.length > max ? s.slice(0, max) : s;
}

const AUDIT_RESOURCE_CHARS = 1024;

/**
 * Splits names into comma-joined groups that each fit one audit line's resource; names hold no
 * commas, so a group reads back unambiguously.
 *
 * @param names - validated secret names (each at most 512 characters)
 * @returns the groups, in order
 */
export function auditGroups(names: readonly string[]): string[] {
  const groups: string[] = [];
  let cur = '';
  for (const n of names) {
    if (cur !== '' && cur.length + 1 + n.length > AUDIT_RESOURCE_CHARS) {
      groups.push(cur);
      cur = '';
    }
    cur = cur === '' ? n : `${cur},${n}`;
  }
  if (cur !== '') groups.push(cur);
  return groups;
}
