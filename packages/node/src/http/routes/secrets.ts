/**
 * Native secret routes (CONTRACT.md): write, read, batch, verify, rotate, list, versions, and the
 * version operations. Reads follow COFFER_READ_AUTH (`secretRead`); verify's mismatches count
 * toward the lockout.
 */
import type { RotationPolicy, RotationRecord } from '@coffer/state';
import { isAllowed, type CompiledRole } from '../../auth/rbac.js';
import { checkRotationTarget, decodeRotationTarget, encodeRotationTarget } from '../../rotation/postgres.js';
import { ServiceError } from '../../service/errors.js';
import { MAX_BATCH_NAMES, versionView, type OpenedSecret } from '../../service/secrets.js';
import { MAX_VALUE_BYTES, valueFields, valueFromBody } from '../../service/values.js';
import { checkSecretName, MAX_SECRET_NAME_BYTES } from '../../validate.js';
import { iso } from '../body.js';
import { auditGroups, consistencyOf, field, isNat, isStr, nameOrThrow, onlyKeys, versionsField } from '../fields.js';
import type { RouteFamily, RouteSpec } from '../route.js';

const PREFIX_RE = /^[A-Za-z0-9._/-]*$/;
const DEFAULT_LIST_LIMIT = 1000;
const MAX_LIST_LIMIT = 10_000;

/**
 * The `rotation.target` of a write: the contract's object `{"type":"postgres","role",
 * "connectionSecret"}`, checked and stored encoded; or a legacy free-text note (stored, never run).
 * Setting a target lets Coffer use the connection secret's admin credentials on the caller's
 * behalf, so the caller must hold `secret.read` on that secret too (rotation/README.md, Security).
 */
function rotationTarget(v: unknown, name: string, role: CompiledRole | undefined): { stored: string; connectionSecret?: string } | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    if (v.length === 0 || v.length > 1024) throw new ServiceError('invalid_request', '"rotation.target" must be a target object or a non-empty string of at most 1024 characters');
    // A string is never run; one that would decode as a target is refused (it would skip the check below).
    if (decodeRotationTarget(v) !== null) throw new ServiceError('invalid_request', '"rotation.target" must be sent as an object');
    return { stored: v };
  }
  const checked = checkRotationTarget(v, { secretName: name });
  if (!checked.ok) throw new ServiceError('invalid_request', checked.reason);
  const conn = checked.target.connectionSecret;
  if (role === undefined || !isAllowed(role, 'secret.read', conn)) {
    throw new ServiceError('permission_denied', `setting a rotation target needs secret.read on its connection secret "${conn}"`);
  }
  return { stored: encodeRotationTarget(checked.target), connectionSecret: conn };
}

/**
 * `secret.read` on the connection secret a rotation target in the body names, for the pipeline to
 * check where the request arrives (the handler checks the validated target again).
 */
function connectionSecretGrant(body: Record<string, unknown>): readonly { action: 'secret.read'; name: string }[] {
  const rot = body['rotation'];
  if (typeof rot !== 'object' || rot === null || Array.isArray(rot)) return [];
  const target = (rot as Record<string, unknown>)['target'];
  if (typeof target !== 'object' || target === null || Array.isArray(target)) return [];
  const conn = (target as Record<string, unknown>)['connectionSecret'];
  return typeof conn === 'string' && checkSecretName(conn).ok ? [{ action: 'secret.read', name: conn }] : [];
}

/** The versions view of a rotation policy: the target as the contract's object, the last target error, whether a rotation is pending. */
function rotationView(policy: Readonly<RotationPolicy> | null, state: Readonly<RotationRecord> | undefined): Record<string, unknown> | null {
  if (policy === null) return null;
  const e = state?.lastError ?? null;
  return {
    intervalSecs: policy.intervalSecs,
    graceSecs: policy.graceSecs,
    target: policy.target === null ? null : (decodeRotationTarget(policy.target) ?? policy.target),
    lastError: e === null ? null : { code: e.code, message: e.message, at: iso(e.at) },
    pending: state?.pending != null,
  };
}

function secretAnswer(s: OpenedSecret): Record<string, unknown> {
  return { name: s.name, version: s.version, ...valueFields(s.format, s.plaintext), createdAt: new Date(s.createdAt).toISOString() };
}

/** The secret routes, in dispatch order. */
export const secretRoutes: RouteFamily = ({ secrets, actor, countAuthFailure }) => {
  const routes: RouteSpec[] = [];
  const route = (r: RouteSpec): void => {
    routes.push(r);
  };

  route({
    method: 'PUT', path: '/v1/secrets/{name+}', access: 'token', action: 'secret.write', write: true, proposeHere: true, body: 'json', param: 'secret',
    bodyGrants: connectionSecretGrant,
    handler: async (c) => {
      onlyKeys(c.body, ['value', 'valueBase64', 'format', 'username', 'password', 'cas', 'description', 'rotation']);
      const cas = field(c.body, 'cas', isNat, 'a version number (0: the secret must not exist)') ?? null;
      const description = field(c.body, 'description', (v): v is string => isStr(v) && v.length <= 1024, 'a string of at most 1024 characters') ?? null;
      let rotation = null;
      const rot = c.body['rotation'];
      if (rot !== undefined && rot !== null) {
        if (typeof rot !== 'object' || Array.isArray(rot)) throw new ServiceError('invalid_request', '"rotation" must be {"intervalSecs","graceSecs","target"?}');
        const r = rot as Record<string, unknown>;
        onlyKeys(r, ['intervalSecs', 'graceSecs', 'target']);
        const intervalSecs = field(r, 'intervalSecs', (v): v is number => isNat(v) && v >= 1, 'a whole number of seconds >= 1');
        if (intervalSecs === undefined) throw new ServiceError('invalid_request', '"rotation.intervalSecs" is required');
        const graceSecs = field(r, 'graceSecs', isNat, 'a whole number of seconds') ?? 0;
        const target = rotationTarget(r['target'], c.param, c.role);
        if (target?.connectionSecret !== undefined) c.moreResources = [target.connectionSecret];
        rotation = { intervalSecs, graceSecs, target: target?.stored ?? null };
      }
      const value = valueFromBody(c.body);
      const w = await secrets.write({ name: c.param, ...value, cas, description, rotation, actor: actor(c), viaLeader: true });
      return { status: 200, json: { name: w.name, version: w.version, createdAt: new Date(w.createdAt).toISOString() } };
    },
  });

  route({
    method: 'GET', path: '/v1/secrets/{name+}', access: 'allowlist', auditAction: 'secret.read', write: false, body: 'none', param: 'secret', secretRead: true,
    handler: async (c) => {
      const vq = c.query.get('version');
      let version: number | undefined;
      if (vq !== null) {
        version = /^[1-9]\d{0,15}$/.test(vq) ? Number(vq) : NaN;
        if (!Number.isSafeInteger(version)) throw new ServiceError('invalid_request', '"version" must be a version number (>= 1)');
      }
      const s = await secrets.read(c.param, { version, consistency: consistencyOf(c.query) });
      return { status: 200, json: secretAnswer(s), after: () => s.plaintext.fill(0) };
    },
  });

  route({
    method: 'DELETE', path: '/v1/secrets/{name+}', access: 'token', action: 'secret.destroy', auditAction: 'secret.destroyAll', write: true, body: 'none', param: 'secret',
    handler: async (c) => ({ status: 200, json: { name: c.param, destroyed: await secrets.destroyAll(c.param, actor(c)) } }),
  });

  route({
    method: 'GET', path: '/v1/secrets', access: 'token', action: 'secret.list', write: false, body: 'none', param: 'none',
    handler: async (c) => {
      const prefix = c.query.get('prefix') ?? '';
      if (Buffer.byteLength(prefix) > MAX_SECRET_NAME_BYTES || !PREFIX_RE.test(prefix)) {
        throw new ServiceError('invalid_name', 'prefix may contain only A-Z a-z 0-9 . _ - / and be at most 512 bytes');
      }
      c.resource = prefix;
      const limitText = c.query.get('limit');
      const limit = limitText === null ? DEFAULT_LIST_LIMIT : Number(limitText);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new ServiceError('invalid_request', `"limit" must be 1-${MAX_LIST_LIMIT}`);
      const after = c.query.get('after') ?? undefined;
      const role = c.role as CompiledRole;
      const page = await secrets.list(prefix, { limit, after, consistency: consistencyOf(c.query), allow: (n) => isAllowed(role, 'secret.list', n) });
      return {
        status: 200,
        json: {
          secrets: page.secrets.map((s) => ({ name: s.name, version: s.currentVersion, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt) })),
          next: page.next,
        },
      };
    },
  });

  route({
    method: 'POST', path: '/v1/batch/secrets', access: 'allowlist', auditAction: 'secret.read', write: false, body: 'json', param: 'none', secretRead: true,
    // Checked as names once validated in the handler's order: a bad entry is a 400 there.
    readNames: (body) => (Array.isArray(body['names']) ? (body['names'] as unknown[]).filter((n): n is string => typeof n === 'string' && checkSecretName(n).ok) : []),
    handler: async (c) => {
      onlyKeys(c.body, ['names']);
      const names = c.body['names'];
      if (!Array.isArray(names) || names.length === 0) throw new ServiceError('invalid_request', '"names" must be a non-empty array of secret names');
      if (names.length > MAX_BATCH_NAMES) throw new ServiceError('invalid_request', `a batch may name at most ${MAX_BATCH_NAMES} secrets`);
      for (const n of names) nameOrThrow(checkSecretName(n));
      // Every name is audited, however long the list: as many lines as it takes (never cut).
      const groups = auditGroups(names as string[]);
      c.resource = groups[0] ?? null;
      c.moreResources = groups.slice(1);
      const found = await secrets.readMany(names as string[], consistencyOf(c.query));
      return { status: 200, json: { secrets: found.map(secretAnswer) }, after: () => found.forEach((s) => s.plaintext.fill(0)) };
    },
  });

  route({
    method: 'POST', path: '/v1/verify/{name+}', access: 'allowlist', auditAction: 'secret.verify', write: false, body: 'json', param: 'secret', lockout: true, secretRead: true,
    handler: async (c) => {
      onlyKeys(c.body, ['value', 'valueBase64']);
      const v = c.body['value'];
      const b = c.body['valueBase64'];
      let candidate: Uint8Array;
      if (isStr(v) && b === undefined) candidate = new Uint8Array(Buffer.from(v, 'utf8'));
      else if (isStr(b) && v === undefined) candidate = new Uint8Array(Buffer.from(b, 'base64'));
      else throw new ServiceError('invalid_value', 'send "value" (or "valueBase64") to verify');
      if (candidate.length > MAX_VALUE_BYTES) throw new ServiceError('body_too_large', `secret values are limited to ${MAX_VALUE_BYTES} bytes`);
      const out = await secrets.verify(c.param, candidate, consistencyOf(c.query));
      if (!out.valid && c.ip !== undefined) countAuthFailure(c.ip);
      return { status: 200, json: { valid: out.valid, version: out.version } };
    },
  });

  route({
    method: 'POST', path: '/v1/rotate/{name+}', access: 'token', action: 'secret.rotate', write: true, body: 'optionalJson', param: 'secret',
    handler: async (c) => {
      onlyKeys(c.body, []);
      const w = await secrets.rotate(c.param, actor(c));
      return { status: 200, json: { name: w.name, version: w.version, createdAt: new Date(w.createdAt).toISOString() } };
    },
  });

  route({
    method: 'GET', path: '/v1/versions/{name+}', access: 'token', action: 'secret.list', auditAction: 'secret.versions', write: false, body: 'none', param: 'secret',
    handler: async (c) => {
      const s = await secrets.metadata(c.param, consistencyOf(c.query));
      return {
        status: 200,
        json: {
          name: s.name,
          currentVersion: s.currentVersion,
          maxVersions: s.maxVersions,
          casRequired: s.casRequired,
          description: s.description,
          rotation: rotationView(s.rotation, secrets.rotationState(s.name)),
          createdAt: iso(s.createdAt),
          updatedAt: iso(s.updatedAt),
          versions: s.versions.map(versionView),
        },
      };
    },
  });

  for (const op of ['delete', 'undelete', 'destroy'] as const) {
    route({
      method: 'POST', path: `/v1/${op}/{name+}`, access: 'token', action: op === 'destroy' ? 'secret.destroy' : 'secret.delete', auditAction: `secret.${op}`,
      write: true, body: 'optionalJson', param: 'secret',
      handler: async (c) => {
        onlyKeys(c.body, ['versions']);
        const versions = versionsField(c.body);
        const count = await secrets.changeVersions(op, c.param, versions, actor(c));
        return { status: 200, json: { name: c.param, versions, changed: count } };
      },
    });
  }

  return routes;
};
