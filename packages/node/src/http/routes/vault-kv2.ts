/**
 * HashiCorp Vault KV v2 routes (CONTRACT.md; mount `secret`), answered in Vault's shapes
 * (http/vault.ts) and with Vault's error envelope and statuses (`vault: true`). A Vault path
 * `secret/data/app/db` is the Coffer secret `app/db`: one namespace, one set of role globs, and
 * the same pipeline (forwarding, RBAC, allowlist, audit, lockout, rate limits) as native routes.
 */
import { DEFAULT_MAX_VERSIONS } from '@coffer/state';
import { isAllowed, type Action } from '../../auth/rbac.js';
import { commandId, iso } from '../../service/common.js';
import { ServiceError } from '../../service/errors.js';
import { expectOk } from '../../service/results.js';
import { MAX_VALUE_BYTES, valueFields } from '../../service/values.js';
import { isNat, isObject } from '../fields.js';
import type { Call, Reply, RouteFamily, RouteSpec } from '../route.js';
import {
  MAX_PATCH_ATTEMPTS, MOUNT, MOUNTS_PREFIX, customMetadata, customMetadataField, mergePatch, parseGoDuration, secretMetadata, vaultEnvelope, versionMetadata, versionsBody,
} from '../vault.js';

const NO_CONTENT: Reply = { status: 204 };
const DESTROYS: readonly Action[] = Object.freeze(['secret.destroy'] as const);
const isSet = (v: unknown): boolean => v !== undefined && v !== null;

/** The KV v2 routes (and Vault's mount discovery), in dispatch order. */
export const vaultKv2Routes: RouteFamily = ({ ctx, secrets, actor }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };
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

  route({
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

  for (const method of ['POST', 'PUT'] as const) {
    route({
      method, path: `${MOUNT}/data/{path+}`, access: 'token', action: 'secret.write', write: true, proposeHere: true, body: 'json', param: 'secret', vault,
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
            name: c.param, plaintext: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), format: 'kv', cas, description: null, rotation: null, actor: actor(c), viaLeader: true,
          });
        } catch (err) {
          if (err instanceof ServiceError && err.code === 'cas_conflict' && cas !== null) {
            throw new ServiceError('cas_conflict', 'check-and-set parameter did not match the current version');
          }
          // The secret became cas_required while this write was in flight (matched on state, never on message text).
          if (err instanceof ServiceError && err.code === 'invalid_request' && cas === null && ctx.state.getSecret(c.param)?.casRequired === true) {
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
    });
  }

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


  return routes;
};
