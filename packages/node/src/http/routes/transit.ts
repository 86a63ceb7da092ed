/**
 * Transit routes (CONTRACT.md "Transit"; Vault's transit engine paths and shapes, mount `transit`),
 * answered in Vault's envelope with Vault's error body and statuses (`vault: true`), so Vault
 * clients (e.g. node-vault's `encryptData`/`decryptData`) work unchanged.
 *
 * Security as declared here and enforced by the pipeline before any handler runs: the key name
 * in the path is decoded once and checked (`param: 'transitKey'`: 1–64 bytes of
 * `[A-Za-z0-9._-]`), and the action is checked on that name against the role's `paths` globs
 * (`transit.*` actions are path-scoped, auth/rbac.ts). Key management (`transit.manage`) is a
 * write, forwarded to the leader after authorisation here; encrypt/decrypt/rewrap/datakey run on
 * the node the request arrives at, after the linearizable read barrier (service/transit.ts).
 *
 * Bodies: the fields below; a request naming the key again as `name` (node-vault sends its
 * arguments as the body) is accepted, any other field is refused with 400 naming it, so a Vault
 * feature Coffer lacks (`batch_input`, `key_version`, `convergent_encryption`, …) never silently
 * does something else.
 */
import { TRANSIT_KEY_TYPES, isTransitKeyType, zeroize } from '@coffer/crypto';
import { DEFAULT_TRANSIT_KEY_TYPE, TransitService, type TransitKeyView } from '../../service/transit.js';
import { ServiceError } from '../../service/errors.js';
import { consistencyOf, field, isNat, isStr } from '../fields.js';
import type { Call, Reply, RouteFamily, RouteSpec } from '../route.js';

const PREFIX = '/v1/transit';
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

/** Vault's response envelope for the transit mount. */
function envelope(requestId: string, data: unknown): Record<string, unknown> {
  return { request_id: requestId, lease_id: '', renewable: false, lease_duration: 0, data, wrap_info: null, warnings: null, auth: null, mount_type: 'transit' };
}

/** Vault's key document: policy and version dates, never key material. */
function keyDocument(k: TransitKeyView): Record<string, unknown> {
  const keys: Record<string, number> = {};
  for (const [v, at] of k.versions) keys[String(v)] = Math.floor(at / 1000);
  return {
    name: k.name,
    type: k.type,
    latest_version: k.latestVersion,
    min_decryption_version: k.minDecryptionVersion,
    min_encryption_version: 0,
    deletion_allowed: k.deletionAllowed,
    derived: false,
    exportable: false,
    allow_plaintext_backup: false,
    supports_encryption: true,
    supports_decryption: true,
    supports_derivation: false,
    supports_signing: false,
    keys,
  };
}

/**
 * @param body - the JSON body
 * @param allowed - the fields the route knows
 * @param name - the key name in the path (a `name` field must equal it)
 * @throws {ServiceError} `invalid_request` naming the first unknown field
 */
function onlyFields(body: Record<string, unknown>, allowed: readonly string[], name: string): void {
  for (const k of Object.keys(body)) {
    if (k === 'name') {
      if (body[k] !== name) throw new ServiceError('invalid_request', '"name" in the body must be the key name of the path (or absent)');
      continue;
    }
    if (!allowed.includes(k)) {
      throw new ServiceError('invalid_request', `unknown or unsupported field "${k}" (expected ${allowed.length === 0 ? 'no fields' : allowed.join(', ')})`);
    }
  }
}

/** A base64 field decoded strictly (standard alphabet, padded), or undefined when absent. */
function base64Field(body: Record<string, unknown>, key: string, required: boolean): Uint8Array | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) throw new ServiceError('invalid_request', `"${key}" is required (base64)`);
    return undefined;
  }
  if (typeof v !== 'string' || !BASE64_RE.test(v)) throw new ServiceError('invalid_request', `"${key}" must be standard base64 text`);
  const buf = Buffer.from(v, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

function ciphertextField(body: Record<string, unknown>): string {
  const v = body['ciphertext'];
  if (typeof v !== 'string' || v === '') throw new ServiceError('invalid_request', '"ciphertext" is required (a "coffer:vN:…" string)');
  return v;
}

/** Zeroes the request body as received (it held base64 of a plaintext): best effort. */
function wipeBody(c: Call): void {
  c.rawBody?.fill(0);
}

/** The transit routes, in dispatch order. */
export const transitRoutes: RouteFamily = ({ ctx, actor }) => {
  const transit = new TransitService(ctx);
  const routes: RouteSpec[] = [];
  const vault = true;
  const manage = (r: Omit<RouteSpec, 'access' | 'action' | 'write' | 'param' | 'vault'> & { write?: boolean }): void => {
    routes.push({ access: 'token', action: 'transit.manage', param: 'transitKey', vault, write: true, ...r });
  };
  const use = (r: Omit<RouteSpec, 'access' | 'write' | 'param' | 'vault' | 'body'>): void => {
    routes.push({ access: 'token', param: 'transitKey', vault, write: false, body: 'json', ...r });
  };
  const keyReply = (c: Call, k: TransitKeyView): Reply => ({ status: 200, json: envelope(c.requestId, keyDocument(k)) });

  // --- keys -------------------------------------------------------------------------------------

  manage({
    method: 'POST', path: `${PREFIX}/keys/{name}`, auditAction: 'transit.create', body: 'optionalJson',
    handler: async (c) => {
      onlyFields(c.body, ['type'], c.param);
      const type = field(c.body, 'type', isStr, `one of ${TRANSIT_KEY_TYPES.join(', ')}`) ?? DEFAULT_TRANSIT_KEY_TYPE;
      if (!isTransitKeyType(type)) throw new ServiceError('invalid_request', `"type" must be one of ${TRANSIT_KEY_TYPES.join(', ')}`);
      return keyReply(c, await transit.create(c.param, type, actor(c)));
    },
  });

  manage({
    method: 'GET', path: `${PREFIX}/keys/{name}`, auditAction: 'transit.read', write: false, body: 'none',
    handler: async (c) => {
      await ctx.readBarrier(consistencyOf(c.query));
      return keyReply(c, transit.get(c.param));
    },
  });

  manage({
    method: 'DELETE', path: `${PREFIX}/keys/{name}`, auditAction: 'transit.delete', body: 'none',
    handler: async (c) => {
      await transit.delete(c.param, actor(c));
      return { status: 204 };
    },
  });

  manage({
    method: 'POST', path: `${PREFIX}/keys/{name}/rotate`, auditAction: 'transit.rotate', body: 'optionalJson',
    handler: async (c) => {
      onlyFields(c.body, [], c.param);
      return keyReply(c, await transit.rotate(c.param, actor(c)));
    },
  });

  manage({
    method: 'POST', path: `${PREFIX}/keys/{name}/config`, auditAction: 'transit.config', body: 'json',
    handler: async (c) => {
      onlyFields(c.body, ['min_decryption_version', 'deletion_allowed'], c.param);
      let min = field(c.body, 'min_decryption_version', isNat, 'a key version (a whole number)');
      // Vault reads 0 as "the first version".
      if (min === 0) min = 1;
      const del = field(c.body, 'deletion_allowed', isBool, 'true or false');
      if (min === undefined && del === undefined) throw new ServiceError('invalid_request', 'send "min_decryption_version" and/or "deletion_allowed"');
      return keyReply(c, await transit.configure(c.param, min, del, actor(c)));
    },
  });

  // --- use ----------------------------------------------------------------------------------------

  use({
    method: 'POST', path: `${PREFIX}/encrypt/{name}`, action: 'transit.encrypt',
    handler: async (c) => {
      try {
        onlyFields(c.body, ['plaintext', 'context'], c.param);
        const context = base64Field(c.body, 'context', false);
        const plaintext = base64Field(c.body, 'plaintext', true) as Uint8Array;
        const out = await transit.encrypt(c.param, plaintext, context);
        return { status: 200, json: envelope(c.requestId, { ciphertext: out.ciphertext, key_version: out.keyVersion }) };
      } finally {
        wipeBody(c);
      }
    },
  });

  use({
    method: 'POST', path: `${PREFIX}/decrypt/{name}`, action: 'transit.decrypt',
    handler: async (c) => {
      onlyFields(c.body, ['ciphertext', 'context'], c.param);
      const context = base64Field(c.body, 'context', false);
      const plaintext = await transit.decrypt(c.param, ciphertextField(c.body), context);
      let b64: string;
      try {
        b64 = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.length).toString('base64');
      } finally {
        zeroize(plaintext);
      }
      return { status: 200, json: envelope(c.requestId, { plaintext: b64 }) };
    },
  });

  // Rewrap needs transit.encrypt only: the plaintext never leaves the node (decrypted and
  // re-encrypted inside one call), so the caller learns nothing it could not by encrypting.
  use({
    method: 'POST', path: `${PREFIX}/rewrap/{name}`, action: 'transit.encrypt', auditAction: 'transit.rewrap',
    handler: async (c) => {
      onlyFields(c.body, ['ciphertext', 'context'], c.param);
      const context = base64Field(c.body, 'context', false);
      const out = await transit.rewrap(c.param, ciphertextField(c.body), context);
      return { status: 200, json: envelope(c.requestId, { ciphertext: out.ciphertext, key_version: out.keyVersion }) };
    },
  });

  for (const mode of ['plaintext', 'wrapped'] as const) {
    use({
      method: 'POST', path: `${PREFIX}/datakey/${mode}/{name}`, action: 'transit.encrypt', auditAction: `transit.datakey.${mode}`,
      handler: async (c) => {
        onlyFields(c.body, ['bits', 'context'], c.param);
        const bits = field(c.body, 'bits', isNat, '128, 256 or 512') ?? 256;
        if (bits !== 128 && bits !== 256 && bits !== 512) throw new ServiceError('invalid_request', '"bits" must be 128, 256 or 512');
        const context = base64Field(c.body, 'context', false);
        const dk = await transit.dataKey(c.param, mode, bits, context);
        const data: Record<string, unknown> = { ciphertext: dk.ciphertext, key_version: dk.keyVersion };
        const pt = dk.plaintext;
        if (pt !== undefined) {
          try {
            data['plaintext'] = Buffer.from(pt.buffer, pt.byteOffset, pt.length).toString('base64');
          } finally {
            zeroize(pt);
          }
        }
        return { status: 200, json: envelope(c.requestId, data) };
      },
    });
  }

  return routes;
};
