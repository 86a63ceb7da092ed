/**
 * HashiCorp Vault KV v2 compatibility (CONTRACT.md; mount `secret`): the routes an application
 * written for Vault's KV v2 engine calls, answered in Vault's shapes so that Vault clients (e.g. the
 * `node-vault` npm package) work against Coffer unchanged.
 *
 * The routes are ordinary routes of the API (api.ts registers them through the same pipeline as the
 * native ones): follower→leader forwarding, RBAC, the read allowlist, audit, lockout and rate limits
 * all apply exactly as on the native routes. A Vault path `secret/data/app/db` is the Coffer secret
 * `app/db`, so native and Vault clients share one namespace and one set of role globs.
 *
 * - A KV v2 write stores the JSON text of its `data` map as the sealed value with format `kv`;
 *   native reads answer such a secret as `{"format": "kv", "data": {...}}`. A KV v2 read of a secret
 *   written natively answers `{"value"}`, `{"valueBase64"}` or `{"username","password"}` as `data`.
 * - Reads (`GET /v1/secret/data/…`) follow the read allowlist like native reads: an allowlisted
 *   client reads with or without a token; a token it sends is only used to name it in the audit.
 * - Errors are `{"errors": [...]}` with Vault's codes: 404 `{"errors": []}`, 400 for a
 *   check-and-set mismatch, 403 for a missing or unknown token (Vault answers "permission denied").
 */
import type { ServerResponse } from 'node:http';
import { DEFAULT_MAX_VERSIONS, type SecretRecord, type VersionMeta } from '@coffer/state';
import { isAllowed, type Action } from '../auth/rbac.js';
import type { NodeContext } from '../context.js';
import { commandId } from '../service/common.js';
import { expectOk } from '../service/results.js';
import type { SecretService } from '../service/secrets.js';
import { MAX_VALUE_BYTES, valueFields } from '../service/values.js';
import { checkSecretName, MAX_SECRET_NAME_BYTES } from '../validate.js';
import type { Call, Reply, RouteSpec } from './api.js';
import { ServiceError } from './errors.js';

/** Every Vault route lives under this prefix (the `secret` mount). */
export const VAULT_PREFIX = '/v1/secret/';
const MOUNT = '/v1/secret';
/** Vault's mount-discovery route (`sys/internal/ui/mounts/<path>`). */
const MOUNTS_PREFIX = '/v1/sys/internal/ui/mounts/';

/** Vault's limits on custom metadata. */
const MAX_CUSTOM_KEYS = 64;
const MAX_CUSTOM_KEY_BYTES = 128;
const MAX_CUSTOM_VALUE_BYTES = 512;
/** Most versions one delete/undelete/destroy may name. */
const MAX_VERSIONS_PER_CALL = 1000;

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

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
 * The HTTP status Vault would answer for an error.
 *
 * @param err - the error
 * @returns the status
 */
export function vaultStatus(err: ServiceError): number {
  switch (err.code) {
    case 'missing_token':
    case 'invalid_token':
      return 403;
    case 'cas_conflict':
      return 400;
    default:
      return err.status;
  }
}

/**
 * Writes an error in Vault's envelope: `{"errors": [message]}`, or `{"errors": []}` for a 404 as
 * Vault does. `Retry-After`, `X-Coffer-Leader` are set as on native errors.
 *
 * @param res - the response (headers not sent yet)
 * @param err - the error
 * @param requestId - the request's id (already in the `X-Request-Id` header)
 */
export function sendVaultError(res: ServerResponse, err: ServiceError, requestId: string): void {
  const body = JSON.stringify({ errors: err.code === 'not_found' ? [] : [err.message] });
  res.statusCode = vaultStatus(err);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  if (!res.hasHeader('x-request-id')) res.setHeader('x-request-id', requestId);
  if (err.retryAfterSecs !== undefined) res.setHeader('retry-after', String(err.retryAfterSecs));
  if (err.leader !== undefined) res.setHeader('x-coffer-leader', err.leader);
  res.end(body);
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

const iso = (ms: number): string => new Date(ms).toISOString();

function customMetadata(s: Readonly<SecretRecord> | undefined): Record<string, string> | null {
  if (s === undefined || s.customMetadata.length === 0) return null;
  return Object.fromEntries(s.customMetadata);
}

function deletionTime(s: Readonly<SecretRecord>, v: Readonly<VersionMeta>): string {
  if (v.deletedAt !== null) return iso(v.deletedAt);
  if (s.deleteVersionAfterSecs > 0) return iso(v.createdAt + s.deleteVersionAfterSecs * 1000);
  return '';
}

/** KV v2's per-version metadata. */
function versionMetadata(s: Readonly<SecretRecord>, v: Readonly<VersionMeta>): Record<string, unknown> {
  return { created_time: iso(v.createdAt), custom_metadata: customMetadata(s), deletion_time: deletionTime(s, v), destroyed: v.destroyed, version: v.version };
}

/** KV v2's metadata document of a secret. */
function secretMetadata(s: Readonly<SecretRecord>): Record<string, unknown> {
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

function versionsBody(body: Record<string, unknown>): number[] {
  for (const k of Object.keys(body)) if (k !== 'versions') throw new ServiceError('invalid_request', `unknown field "${k}" (expected versions)`);
  const v = body['versions'];
  if (!Array.isArray(v) || v.length === 0) throw new ServiceError('invalid_request', 'no version number provided');
  if (v.length > MAX_VERSIONS_PER_CALL || !v.every((n) => isNat(n) && n >= 1)) {
    throw new ServiceError('invalid_request', `"versions" must be an array of at most ${MAX_VERSIONS_PER_CALL} version numbers (>= 1)`);
  }
  return v as number[];
}

function customMetadataField(v: unknown): Record<string, string> {
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

/** The data routes (the Vault clients' hot paths), for api.ts's lean dispatch. */
export interface VaultHotRoutes<R> {
  readonly GET: R;
  readonly POST: R;
  readonly PUT: R;
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
const MAX_PATCH_ATTEMPTS = 5;

/** What the Vault routes use from the API. */
export interface VaultDeps {
  readonly ctx: NodeContext;
  readonly secrets: SecretService;
  readonly actor: (c: Call) => string;
}

const NO_CONTENT: Reply = { status: 204 };
const DESTROYS: readonly Action[] = Object.freeze(['secret.destroy'] as const);
const isSet = (v: unknown): boolean => v !== undefined && v !== null;

/**
 * Registers the KV v2 routes (api.ts calls this once, in its route table).
 *
 * @param route - api.ts's route registrar
 * @param deps - node context, secret service, actor naming
 */
export function registerVaultRoutes<R>(route: (r: RouteSpec) => R, deps: VaultDeps): VaultHotRoutes<R> {
  const { ctx, secrets, actor } = deps;
  const vault = true;

  /** Soft-deletes/undeletes/destroys; a secret that does not exist is a no-op, as in Vault. */
  async function changeVersions(op: 'delete' | 'undelete' | 'destroy', c: Call, versions: number[]): Promise<Reply> {
    try {
      await secrets.changeVersions(op, c.param, versions, actor(c));
    } catch (err) {
      if (!(err instanceof ServiceError && err.code === 'not_found')) throw err;
    }
    return NO_CONTENT;
  }

  // --- data ----------------------------------------------------------------------------------------

  const getData = route({
    method: 'GET', path: `${MOUNT}/data/{path+}`, access: 'allowlist', auditAction: 'secret.read', write: false, body: 'none', param: 'secret', vault, secretRead: true,
    handler: async (c) => {
      const vq = c.query.get('version');
      let version = 0;
      if (vq !== null && vq !== '') {
        version = /^\d{1,15}$/.test(vq) ? Number(vq) : NaN;
        if (!Number.isSafeInteger(version)) throw new ServiceError('invalid_request', '"version" must be a version number (0 = current)');
      }
      await ctx.readBarrier('linearizable');
      const rec = ctx.state.getSecret(c.param);
      const target = version === 0 ? rec?.currentVersion : version;
      const meta = rec?.versions.find((v) => v.version === target);
      if (rec === undefined || meta === undefined) throw new ServiceError('not_found', `no secret at "${c.param}"`);
      if (ctx.state.readableVersion(c.param, ctx.now(), meta.version) === undefined) {
        // Vault answers a deleted or destroyed version with 404 and its metadata.
        return { status: 404, json: vaultEnvelope(c.requestId, { data: null, metadata: versionMetadata(rec, meta) }) };
      }
      const s = await secrets.read(c.param, { version: meta.version, consistency: 'stale' });
      try {
        const fields = valueFields(s.format, s.plaintext);
        let data: unknown;
        if (s.format === 'kv') data = fields['data'];
        else {
          delete fields['format'];
          data = fields;
        }
        return { status: 200, json: vaultEnvelope(c.requestId, { data, metadata: versionMetadata(rec, meta) }), after: () => s.plaintext.fill(0) };
      } catch (err) {
        s.plaintext.fill(0);
        throw err;
      }
    },
  });

  const writeData = (['POST', 'PUT'] as const).map((method) =>
    route({
      method, path: `${MOUNT}/data/{path+}`, access: 'token', action: 'secret.write', write: true, body: 'json', param: 'secret', vault,
      handler: async (c) => {
        for (const k of Object.keys(c.body)) if (k !== 'data' && k !== 'options' && k !== 'version') throw new ServiceError('invalid_request', `unknown field "${k}" (expected data, options)`);
        const data = c.body['data'];
        if (!isObject(data)) throw new ServiceError('invalid_request', 'no data provided');
        const options = c.body['options'] ?? {};
        if (!isObject(options)) throw new ServiceError('invalid_request', '"options" must be an object');
        const casOpt = options['cas'];
        if (casOpt !== undefined && casOpt !== null && !isNat(casOpt)) throw new ServiceError('invalid_request', '"options.cas" must be a version number (0: must not exist)');
        const cas = isNat(casOpt) ? casOpt : null;
        const rec = ctx.state.getSecret(c.param);
        if (cas === null && rec?.casRequired === true) throw new ServiceError('invalid_request', 'check-and-set parameter required for this call');
        const text = JSON.stringify(data);
        const buf = Buffer.from(text, 'utf8');
        if (buf.length > MAX_VALUE_BYTES) throw new ServiceError('body_too_large', `secret values are limited to ${MAX_VALUE_BYTES} bytes`);
        let written;
        try {
          written = await secrets.write({
            name: c.param, plaintext: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), format: 'kv', cas, description: null, rotation: null, actor: actor(c),
          });
        } catch (err) {
          if (err instanceof ServiceError && err.code === 'cas_conflict' && cas !== null) {
            throw new ServiceError('cas_conflict', 'check-and-set parameter did not match the current version');
          }
          if (err instanceof ServiceError && err.code === 'invalid_request' && /check-and-set/.test(err.message)) {
            throw new ServiceError('invalid_request', 'check-and-set parameter required for this call');
          }
          throw err;
        }
        const after = ctx.state.getSecret(c.param);
        return {
          status: 200,
          json: vaultEnvelope(c.requestId, {
            created_time: iso(written.createdAt), custom_metadata: customMetadata(after), deletion_time: '', destroyed: false, version: written.version,
          }),
        };
      },
    }),
  );

  route({
    method: 'PATCH', path: `${MOUNT}/data/{path+}`, access: 'token', action: 'secret.write', auditAction: 'secret.patch', write: true, body: 'json', param: 'secret', vault,
    handler: async (c) => {
      for (const k of Object.keys(c.body)) if (k !== 'data' && k !== 'options') throw new ServiceError('invalid_request', `unknown field "${k}" (expected data, options)`);
      const patch = c.body['data'];
      if (!isObject(patch)) throw new ServiceError('invalid_request', 'no data provided');
      const options = c.body['options'] ?? {};
      if (!isObject(options)) throw new ServiceError('invalid_request', '"options" must be an object');
      const casOpt = options['cas'];
      if (casOpt !== undefined && casOpt !== null && !isNat(casOpt)) throw new ServiceError('invalid_request', '"options.cas" must be a version number');
      const explicitCas = isNat(casOpt) ? casOpt : null;
      for (let attempt = 1; ; attempt++) {
        // Read-modify-write of the current version, made atomic by check-and-set on it.
        const rec = ctx.state.getSecret(c.param);
        const current = rec?.currentVersion ?? 0;
        if (rec === undefined || ctx.state.readableVersion(c.param, ctx.now()) === undefined) throw new ServiceError('not_found', `no data at "${c.param}" to patch`);
        if (explicitCas !== null && explicitCas !== current) throw new ServiceError('cas_conflict', 'check-and-set parameter did not match the current version');
        const s = await secrets.read(c.param, { version: current, consistency: 'stale' });
        let merged: unknown;
        try {
          if (s.format !== 'kv') throw new ServiceError('invalid_request', 'only KV v2 data maps can be patched; this secret holds a plain value');
          merged = mergePatch(valueFields(s.format, s.plaintext)['data'], patch);
        } finally {
          s.plaintext.fill(0);
        }
        const buf = Buffer.from(JSON.stringify(merged), 'utf8');
        if (buf.length > MAX_VALUE_BYTES) throw new ServiceError('body_too_large', `secret values are limited to ${MAX_VALUE_BYTES} bytes`);
        try {
          const written = await secrets.write({
            name: c.param, plaintext: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), format: 'kv', cas: current, description: null, rotation: null, actor: actor(c),
          });
          const after = ctx.state.getSecret(c.param);
          return {
            status: 200,
            json: vaultEnvelope(c.requestId, {
              created_time: iso(written.createdAt), custom_metadata: customMetadata(after), deletion_time: '', destroyed: false, version: written.version,
            }),
          };
        } catch (err) {
          const lostRace = err instanceof ServiceError && err.code === 'cas_conflict';
          if (lostRace && explicitCas !== null) throw new ServiceError('cas_conflict', 'check-and-set parameter did not match the current version');
          if (!lostRace || attempt >= MAX_PATCH_ATTEMPTS) throw err;
        }
      }
    },
  });

  route({
    method: 'DELETE', path: `${MOUNT}/data/{path+}`, access: 'token', action: 'secret.delete', auditAction: 'secret.delete', write: true, body: 'none', param: 'secret', vault,
    handler: (c) => changeVersions('delete', c, []),
  });

  // --- version operations ------------------------------------------------------------------------------

  route({
    method: 'POST', path: `${MOUNT}/delete/{path+}`, access: 'token', action: 'secret.delete', write: true, body: 'json', param: 'secret', vault,
    handler: (c) => changeVersions('delete', c, versionsBody(c.body)),
  });

  route({
    method: 'POST', path: `${MOUNT}/undelete/{path+}`, access: 'token', action: 'secret.delete', auditAction: 'secret.undelete', write: true, body: 'json', param: 'secret', vault,
    handler: (c) => changeVersions('undelete', c, versionsBody(c.body)),
  });

  for (const method of ['POST', 'PUT'] as const) {
    route({
      method, path: `${MOUNT}/destroy/{path+}`, access: 'token', action: 'secret.destroy', write: true, body: 'json', param: 'secret', vault,
      handler: (c) => changeVersions('destroy', c, versionsBody(c.body)),
    });
  }

  // --- metadata -------------------------------------------------------------------------------------

  route({
    method: 'GET', path: `${MOUNT}/metadata/{path+}`, access: 'token', action: 'secret.list', auditAction: 'secret.versions', write: false, body: 'none', param: 'secret', vault,
    handler: async (c) => {
      const s = await secrets.metadata(c.param, 'linearizable');
      return { status: 200, json: vaultEnvelope(c.requestId, secretMetadata(s)) };
    },
  });

  for (const method of ['POST', 'PUT'] as const) {
    route({
      method, path: `${MOUNT}/metadata/{path+}`, access: 'token', action: 'secret.write', auditAction: 'secret.metadata', write: true, body: 'optionalJson', param: 'secret', vault,
      // Lowering max_versions erases older versions and delete_version_after hides them: that is
      // destroying history, which needs `secret.destroy` exactly as the native destroy does.
      extraActions: (body) => (isSet(body['max_versions']) || isSet(body['delete_version_after']) ? DESTROYS : []),
      handler: async (c) => {
        const allowed = ['max_versions', 'cas_required', 'custom_metadata', 'delete_version_after'];
        for (const k of Object.keys(c.body)) if (!allowed.includes(k)) throw new ServiceError('invalid_request', `unknown field "${k}" (expected ${allowed.join(', ')})`);
        const mv = c.body['max_versions'];
        if (mv !== undefined && mv !== null && !isNat(mv)) throw new ServiceError('invalid_request', '"max_versions" must be a whole number (0: the default)');
        const cr = c.body['cas_required'];
        if (cr !== undefined && cr !== null && typeof cr !== 'boolean') throw new ServiceError('invalid_request', '"cas_required" must be true or false');
        const cm = c.body['custom_metadata'];
        const dva = c.body['delete_version_after'];
        expectOk(
          await ctx.propose({
            type: 'secret.metadata',
            requestId: commandId(),
            at: ctx.now(),
            name: c.param,
            maxVersions: isNat(mv) ? (mv === 0 ? DEFAULT_MAX_VERSIONS : mv) : null,
            casRequired: typeof cr === 'boolean' ? cr : null,
            customMetadata: cm === undefined || cm === null ? null : customMetadataField(cm),
            description: null,
            rotation: null,
            deleteVersionAfterSecs: dva === undefined || dva === null ? null : parseGoDuration(dva),
            actor: actor(c),
          }),
        );
        return NO_CONTENT;
      },
    });
  }

  route({
    method: 'DELETE', path: `${MOUNT}/metadata/{path+}`, access: 'token', action: 'secret.destroy', auditAction: 'secret.destroyAll', write: true, body: 'none', param: 'secret', vault,
    handler: async (c) => {
      try {
        await secrets.destroyAll(c.param, actor(c));
      } catch (err) {
        if (!(err instanceof ServiceError && err.code === 'not_found')) throw err;
      }
      return NO_CONTENT;
    },
  });

  // --- listing ------------------------------------------------------------------------------------------

  async function list(c: Call, folder: string): Promise<Reply> {
    c.resource = folder;
    const role = c.role;
    await ctx.readBarrier('linearizable');
    const keys = new Set<string>();
    const state = ctx.state;
    let after: string | undefined;
    for (;;) {
      const names = state.listNames(folder, 1024, after);
      for (const n of names) {
        if (role === undefined || !isAllowed(role, 'secret.list', n)) continue;
        const rest = n.slice(folder.length);
        const slash = rest.indexOf('/');
        keys.add(slash === -1 ? rest : rest.slice(0, slash + 1));
      }
      if (names.length < 1024) break;
      after = names[names.length - 1];
    }
    if (keys.size === 0) throw new ServiceError('not_found', `nothing to list at "${folder}"`);
    return { status: 200, json: vaultEnvelope(c.requestId, { keys: [...keys].sort() }) };
  }

  route({
    method: 'LIST', path: `${MOUNT}/metadata/{path+}`, access: 'token', action: 'secret.list', write: false, body: 'none', param: 'folder', vault,
    handler: (c) => list(c, c.param),
  });
  for (const path of [`${MOUNT}/metadata/`, `${MOUNT}/metadata`]) {
    route({
      method: 'LIST', path, access: 'token', action: 'secret.list', write: false, body: 'none', param: 'none', vault,
      handler: (c) => list(c, ''),
    });
  }
  // --- mount discovery ---------------------------------------------------------------------------

  // The `vault kv …` CLI (and other clients that accept a path like `secret/app/db`) first asks
  // which mount a path belongs to and which KV version it runs. The answer is the same for every
  // caller (one fixed `secret` mount), so it needs no token and reveals nothing about secrets.
  route({
    method: 'GET', path: `${MOUNTS_PREFIX}{path+}`, access: 'public', auditAction: 'sys.mounts', write: false, body: 'none', param: 'none', vault,
    handler: async (c) => {
      const url = c.req.url ?? '';
      const q = url.indexOf('?');
      const raw = (q === -1 ? url : url.slice(0, q)).slice(MOUNTS_PREFIX.length);
      let path: string;
      try {
        path = decodeURIComponent(raw);
      } catch {
        throw new ServiceError('invalid_request', 'the path is not valid percent-encoding');
      }
      // Vault answers 403 for a path under no mount, so the route cannot enumerate mounts.
      if (path !== 'secret' && !path.startsWith('secret/')) throw new ServiceError('permission_denied', 'permission denied');
      const data = {
        accessor: 'kv_coffer', config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
        description: 'key/value secret storage (Coffer)', external_entropy_access: false, local: false,
        options: { version: '2' }, path: 'secret/', plugin_version: '', running_plugin_version: '', running_sha256: '',
        seal_wrap: false, type: 'kv', uuid: '00000000-0000-0000-0000-000000000000',
      };
      return { status: 200, json: { ...vaultEnvelope(c.requestId, data), mount_type: 'system' } };
    },
  });

  return { GET: getData, POST: writeData[0] as R, PUT: writeData[1] as R };
}
