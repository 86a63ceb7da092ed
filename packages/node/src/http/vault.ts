/**
 * HashiCorp Vault KV v2 compatibility (CONTRACT.md; mount `secret`): the routes an application
 * written for Vault's KV v2 engine calls, answered in Vault's shapes so that Vault clients (e.g. the
 * `node-vault` npm package) work against Coffer unchanged.
 *
 * This module holds Vault's shapes (envelope, metadata documents, durations, merge patch); the
 * routes are in routes/vault-kv2.ts, ordinary routes of the API (the same pipeline as the native
 * ones): follower→leader forwarding, RBAC, the read allowlist, audit, lockout and rate limits
 * all apply exactly as on the native routes. A Vault path `secret/data/app/db` is the Coffer secret
 * `app/db`, so native and Vault clients share one namespace and one set of role globs.
 *
 * - A KV v2 write stores the JSON text of its `data` map as the sealed value with format `kv`;
 *   native reads answer such a secret as `{"format": "kv", "data": {...}}`. A KV v2 read of a secret
 *   written natively answers `{"value"}`, `{"valueBase64"}` or `{"username","password"}` as `data`.
 * - Reads (`GET /v1/secret/data/…`) follow the read allowlist like native reads: an allowlisted
 *   client reads with or without a token; a token it sends is only used to name it in the audit.
 * - Errors are `{"errors": [...]}` with Vault's statuses (http/errors.ts, `vaultStatus` column):
 *   404 `{"errors": []}`, 400 for a check-and-set mismatch, 403 for a missing or unknown token
 *   (Vault answers "permission denied").
 */
import type { SecretRecord, VersionMeta } from '@coffer/state';
import { iso } from '../service/common.js';
import { ServiceError } from '../service/errors.js';
import { checkSecretName, MAX_SECRET_NAME_BYTES } from '../validate.js';
import { isNat, isObject } from './fields.js';

/** Every Vault route lives under this prefix (the `secret` mount). */
export const VAULT_PREFIX = '/v1/secret/';
/** The mount's paths, without the trailing slash. */
export const MOUNT = '/v1/secret';
/** Vault's mount-discovery route (`sys/internal/ui/mounts/<path>`). */
export const MOUNTS_PREFIX = '/v1/sys/internal/ui/mounts/';

/** Vault's limits on custom metadata. */
const MAX_CUSTOM_KEYS = 64;
const MAX_CUSTOM_KEY_BYTES = 128;
const MAX_CUSTOM_VALUE_BYTES = 512;
/** Most versions one delete/undelete/destroy may name. */
const MAX_VERSIONS_PER_CALL = 1000;


/**
 * Whether a query string asks for a listing (`list=true`, as Vault's HTTP layer parses it).
 *
 * @param query - the raw query string (no `?`)
 * @returns true for `list=true`, `list=1`, `list=t`, …
 */
export function isVaultList(query: string): boolean {
  if (query === '' || !query.includes('list=')) return false;
  const v = new URLSearchParams(query).get('list');
  return v !== null && /^(1|t|true|T|TRUE|True)$/.test(v);
}

/**
 * Checks a KV v2 list path: empty (the whole mount) or a secret-name prefix, with or without a
 * trailing `/`.
 *
 * @param decoded - the decoded path after `metadata/`
 * @returns the name prefix to list (`''` or `folder/`)
 * @throws {ServiceError} `invalid_name`
 */
export function checkFolder(decoded: string): string {
  const folder = decoded.endsWith('/') ? decoded.slice(0, -1) : decoded;
  if (folder === '') return '';
  const check = checkSecretName(folder);
  if (!check.ok) throw new ServiceError('invalid_name', check.reason);
  if (Buffer.byteLength(folder) >= MAX_SECRET_NAME_BYTES) throw new ServiceError('invalid_name', 'list path is too long');
  return `${folder}/`;
}

/**
 * Vault's response envelope.
 *
 * @param requestId - the request's id
 * @param data - the `data` field
 * @returns the envelope
 */
export function vaultEnvelope(requestId: string, data: unknown): Record<string, unknown> {
  return { request_id: requestId, lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings: null, auth: null, mount_type: 'kv' };
}

/**
 * Go's `time.Duration` text for whole seconds, as Vault prints `delete_version_after`.
 *
 * @param secs - whole seconds
 * @returns e.g. `0s`, `45s`, `1m30s`, `3h0m0s`
 */
export function goDuration(secs: number): string {
  if (secs === 0) return '0s';
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = secs % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/**
 * Parses `delete_version_after`: a whole number of seconds, or a Go duration of h/m/s units.
 *
 * @param v - the field
 * @returns whole seconds
 * @throws {ServiceError} `invalid_request`
 */
export function parseGoDuration(v: unknown): number {
  if (isNat(v)) return v;
  const m = typeof v === 'string' ? /^(?:(\d{1,7})h)?(?:(\d{1,9})m)?(?:(\d{1,12})s)?$/.exec(v) : null;
  if (m === null || v === '') throw new ServiceError('invalid_request', '"delete_version_after" must be a duration such as "0s", "30m" or "72h"');
  const secs = Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
  if (!Number.isSafeInteger(secs)) throw new ServiceError('invalid_request', '"delete_version_after" is too large');
  return secs;
}

/** KV v2's `custom_metadata` (null when there is none). */
export function customMetadata(s: Readonly<SecretRecord> | undefined): Record<string, string> | null {
  if (s === undefined || s.customMetadata.length === 0) return null;
  return Object.fromEntries(s.customMetadata);
}

/** When a version was or will be deleted, as KV v2 prints it (`''`: never). */
export function deletionTime(s: Readonly<SecretRecord>, v: Readonly<VersionMeta>): string {
  if (v.deletedAt !== null) return iso(v.deletedAt);
  if (s.deleteVersionAfterSecs > 0) return iso(v.createdAt + s.deleteVersionAfterSecs * 1000);
  return '';
}

/** KV v2's per-version metadata. */
export function versionMetadata(s: Readonly<SecretRecord>, v: Readonly<VersionMeta>): Record<string, unknown> {
  return { created_time: iso(v.createdAt), custom_metadata: customMetadata(s), deletion_time: deletionTime(s, v), destroyed: v.destroyed, version: v.version };
}

/** KV v2's metadata document of a secret. */
export function secretMetadata(s: Readonly<SecretRecord>): Record<string, unknown> {
  const versions: Record<string, unknown> = {};
  for (const v of s.versions) versions[String(v.version)] = { created_time: iso(v.createdAt), deletion_time: deletionTime(s, v), destroyed: v.destroyed };
  return {
    cas_required: s.casRequired,
    created_time: iso(s.createdAt),
    current_version: s.currentVersion,
    custom_metadata: customMetadata(s),
    delete_version_after: goDuration(s.deleteVersionAfterSecs),
    max_versions: s.maxVersions,
    oldest_version: s.versions[0]?.version ?? 0,
    updated_time: iso(s.updatedAt),
    versions,
  };
}

/** The `{"versions": [...]}` body of delete/undelete/destroy (required, non-empty). */
export function versionsBody(body: Record<string, unknown>): number[] {
  for (const k of Object.keys(body)) if (k !== 'versions') throw new ServiceError('invalid_request', `unknown field "${k}" (expected versions)`);
  const v = body['versions'];
  if (!Array.isArray(v) || v.length === 0) throw new ServiceError('invalid_request', 'no version number provided');
  if (v.length > MAX_VERSIONS_PER_CALL || !v.every((n) => isNat(n) && n >= 1)) {
    throw new ServiceError('invalid_request', `"versions" must be an array of at most ${MAX_VERSIONS_PER_CALL} version numbers (>= 1)`);
  }
  return v as number[];
}

/** Checks a `custom_metadata` field against Vault's limits. */
export function customMetadataField(v: unknown): Record<string, string> {
  if (!isObject(v)) throw new ServiceError('invalid_request', '"custom_metadata" must be an object of string values');
  const entries = Object.entries(v);
  if (entries.length > MAX_CUSTOM_KEYS) throw new ServiceError('invalid_request', `"custom_metadata" may hold at most ${MAX_CUSTOM_KEYS} keys`);
  for (const [k, val] of entries) {
    if (k === '' || Buffer.byteLength(k) > MAX_CUSTOM_KEY_BYTES) throw new ServiceError('invalid_request', `custom_metadata keys must be 1-${MAX_CUSTOM_KEY_BYTES} bytes`);
    if (typeof val !== 'string' || Buffer.byteLength(val) > MAX_CUSTOM_VALUE_BYTES) {
      throw new ServiceError('invalid_request', `custom_metadata values must be strings of at most ${MAX_CUSTOM_VALUE_BYTES} bytes`);
    }
  }
  return v as Record<string, string>;
}

/**
 * RFC 7386 JSON merge patch, as Vault's KV v2 PATCH applies it: `null` removes a key, objects merge
 * recursively, anything else replaces.
 *
 * @param target - the current value
 * @param patch - the patch
 * @returns the patched value (inputs are not modified)
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** How many times a PATCH without `cas` re-reads and re-applies after losing a race. */
export const MAX_PATCH_ATTEMPTS = 5;
